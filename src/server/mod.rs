//! The hyper 1.x accept loop: HTTP/1.1 and HTTP/2, a bound on open connections, slow-client
//! timeouts and graceful shutdown. Knows nothing about legacy APIs: it serves any tower service.
//!
//! # Layout
//! - `accept`: one listener's accept loop ([`serve`]): the connection limit, [`PeerAddr`],
//!   graceful shutdown.
//! - `sniff`: the deadline on a new connection's protocol sniffing (slowloris guard).
//! - `workers`: thread-per-core [`Workers`], a runtime and an `SO_REUSEPORT` socket each.
//! - `sizing`: how many workers ([`worker_count`]): configuration, environment, CPUs.
//! - `options`: [`ServeOptions`], the connection-level limits.
//! - `service`: what a listener can serve ([`Serves`], [`AnswerBody`], [`Overload`]).
//! - `signal`: the signals that end a run ([`shutdown_signal`]).

mod accept;
mod options;
mod service;
mod signal;
mod sizing;
mod sniff;
mod workers;

pub use accept::{serve, PeerAddr};
pub use options::{CaseSwitch, ServeOptions};
pub use service::{AnswerBody, Overload, Serves};
pub use signal::shutdown_signal;
pub use sizing::worker_count;
pub use workers::Workers;

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Binds and returns the listener with its actual address (port 0 picks a free port).
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
