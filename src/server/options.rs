//! The connection-level limits a listener is served with.

use std::sync::Arc;
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
    /// Asked once per new connection: keep the header-name case of its requests (and write
    /// answers with the case they carry)? Only a legacy backend needs it, and keeping a case
    /// map costs every request a second header map, so the gateway answers
    /// "yes" only while a legacy backend is configured.
    pub preserve_header_case: CaseSwitch,
}

/// See [`ServeOptions::preserve_header_case`].
#[derive(Clone)]
pub struct CaseSwitch(pub Arc<dyn Fn() -> bool + Send + Sync>);

impl std::fmt::Debug for CaseSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CaseSwitch")
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(20),
            max_connections: 10_000,
            preserve_header_case: CaseSwitch(Arc::new(|| true)),
        }
    }
}
