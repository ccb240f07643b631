//! Pure translation functions, no I/O: key case, JSON copied with its keys recased, v4
//! paths, v4 envelopes.

pub mod case;
pub mod envelope;
pub mod path;
pub mod rekey;

/// The key-case rule lives with the event transcoder, the lowest crate that needs it; the
/// gateway's bodies use the same one.
pub use legacy_gateway_events::key;
