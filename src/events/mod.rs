//! Event record translation (SPEC section 2) as the gateway offers it: the HTTP endpoint
//! ([`http`]: `POST /_gateway/events/to-v4|to-legacy`, streamed, and the body limit that lets
//! it be) and the progress line of `legacy-gateway events` ([`progress`]). The transcoder
//! itself is the `legacy-gateway-events` crate (`crates/events`), which knows only the event
//! table it is given; its items are re-exported here, so `events::translate_with`,
//! `events::Joiner` and the rest are the same names inside the gateway as before.

pub mod http;
pub mod progress;

pub use legacy_gateway_events::*;
