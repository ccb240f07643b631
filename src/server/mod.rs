//! The hyper 1.x accept loop: HTTP/1.1 and HTTP/2, a bound on open connections, slow-client
//! timeouts and graceful shutdown. Knows nothing about legacy APIs: it serves any tower service.
//!
//! # Layout
//! - `accept`: one listener's accept loop ([`serve`]): the connection limit, [`PeerAddr`],
//!   graceful shutdown.
//! - `sniff`: the deadline on a new connection's protocol sniffing (slowloris guard).
//! - `idle`: the idle timeout of HTTP/2 connections (HTTP/1's is hyper's).
//! - `workers`: thread-per-core [`Workers`], a runtime and an `SO_REUSEPORT` socket each.
//! - `release`: each worker gives its free memory back to the system once it goes quiet.
//! - `claim`: one process per address (the port the workers share is no one else's).
//! - `sizing`: how many workers ([`worker_count`]): configuration, environment, CPUs.
//! - `options`: [`ServeOptions`], the connection-level limits.
//! - `service`: what a listener can serve ([`Serves`], [`AnswerBody`], [`Overload`]).
//! - `signal`: the signals that end a run ([`shutdown_signal`]).

mod accept;
mod claim;
mod idle;
mod options;
mod release;
mod service;
mod signal;
mod sizing;
mod sniff;
mod workers;

pub use accept::{serve, PeerAddr};
pub use options::ServeOptions;
pub use service::{AnswerBody, Overload, Serves};
pub use signal::shutdown_signal;
pub use sizing::worker_count;
pub use workers::{Bound, Workers};

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Binds and returns the listener with its actual address (port 0 picks a free port). Not
/// shared: a second process on the same address gets an error that says so.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => claim::in_use(addr),
        _ => e,
    })?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
