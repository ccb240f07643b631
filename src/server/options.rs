//! The connection-level limits a listener is served with.

use std::time::Duration;

/// Connection-level limits; the defaults suit a gateway in front of browsers and apps.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time a client has to send its request headers (slowloris guard).
    pub header_read_timeout: Duration,
    /// How long in-flight requests may run after shutdown begins.
    pub shutdown_grace: Duration,
    /// Connections served at once; the excess gets `overload` and is closed.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(20),
            max_connections: 10_000,
        }
    }
}
