//! legacy-gateway: keeps legacy User API and user-registry clients working in front of
//! Naviga's Users Orchestrator API (v4).
//!
//! # Layout
//! Modules in layers, each using only its own layer and those below (`.ci/layers.py` checks
//! it in CI; docs/architecture.md's Layout section has the same list with files):
//! - Building blocks: [`api`] (the two legacy APIs), [`body`], [`deadline`] (one timer per request), [`redact`] (what never leaves), [`host`] (Host syntax),
//!   [`metrics`] (per-thread shards, summed at scrape time), [`source`] (TOML with errors
//!   naming file, line and field).
//! - Data: [`translate`] (pure: key case, v4 paths, the v4 envelope), [`mapping`] (the
//!   files under `mappings/`, checked), [`telemetry`] (OpenTelemetry traces, free when off).
//! - Configuration and what reads only it: [`config`] (one file and check per section;
//!   `config::modes`: mode rules, the canary split), [`logging`], [`ratelimit`], [`instance`]
//!   (the configuration hash).
//! - Talking to others: [`identity`] (JWT → current user), [`upstream`] (v4 calls over
//!   per-worker HTTP/1.1 pools), [`tenant`] (Host → tenant), [`healthcheck`] (the container
//!   probe command).
//! - Failures and answers: [`error`] (the [`error::GatewayError`] types), [`legacy`] (the two
//!   legacy shapes, and `legacy::refusal`: the one renderer of an error's answer),
//!   [`request`], [`audit`].
//! - One request's world: [`runtime`] (everything a request needs, rebuilt on reload),
//!   [`passthrough`] (legacy mode), [`events`] (event record translation); [`context`] (what
//!   one request is, worked out once, and where its errors become answers).
//! - [`routes`]: the legacy routes (User API update and read, action API).
//! - [`shadow`]: copies replayed through the routes and compared, on an idle-priority lane;
//!   [`fallback`]: rows sent to the legacy backend by themselves while v4 fails.
//!   [`capture`]: the calls the legacy backend answered, written for a later replay.
//! - [`gateway`]: the current runtime (arc-swapped; a copy per worker thread), shadow
//!   figures, reload.
//! - Serving: [`dispatch`] (route and mode, 404/405), [`layers`] (the one edge layer), [`ops`]
//!   (`/_gateway/` endpoints), [`watch`] (reload on file change).
//! - Listeners: [`stack`] (the service a worker serves), [`admin`] (the admin listener),
//!   [`server`] (thread-per-core workers, the accept loop, graceful shutdown), [`sandbox`]
//!   (the embedded v4 orchestrator).
//! - [`replay`]: captured calls sent again through a gateway started in-process, compared.
//! - [`cli`]: the commands (`serve`, `check`, `sandbox`, `events`, `healthcheck`, `replay`); `main.rs`
//!   only calls it. `start.rs` wires a gateway together ([`start`]); this file only
//!   lists the modules.
#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
pub mod audit;
pub mod body;
pub mod capture;
pub mod cli;
pub mod config;
pub mod context;
pub mod deadline;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod fallback;
pub mod gateway;
pub mod healthcheck;
pub mod host;
pub mod identity;
pub mod instance;
pub mod layers;
pub mod legacy;
pub mod logging;
pub mod mapping;
pub mod metrics;
pub mod ops;
pub mod passthrough;
pub mod ratelimit;
pub mod redact;
pub mod replay;
pub mod request;
pub mod routes;
pub mod runtime;
pub mod sandbox;
pub mod server;
pub mod shadow;
pub mod source;
pub mod stack;
mod start;
pub mod telemetry;
pub mod tenant;
pub mod translate;
pub mod upstream;
pub mod watch;

pub use start::{start, start_with, Running, StartError};
