//! The embedded v4 sandbox, seen from the gateway: the [`legacy_gateway_sandbox`] crate (the
//! stand-in itself; its doc lists the seeded users, endpoints and event log) given what it
//! takes as plain data: the event codes of this gateway's [`EventTable`], and a listener bound
//! here. The stand-in shares no code with the gateway, so that it catches the translator's
//! bugs instead of repeating them; this adapter is the only place the two meet.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use legacy_gateway::mapping::Mappings;
//! use legacy_gateway::sandbox::{self, Sandbox};
//!
//! let events = Mappings::embedded().expect("shipped mappings").events;
//! let handle = sandbox::spawn("127.0.0.1:0".parse().unwrap(), Sandbox::new(events)).await?;
//! println!("v4 orchestrator at {}", handle.url());
//! handle.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use legacy_gateway_sandbox::{self as stand_in, EventCode, EventCodes};

use crate::mapping::events::Side;
use crate::mapping::EventTable;
use crate::server;

pub use stand_in::SandboxHandle;

/// The sandbox, built from the gateway's event table.
pub struct Sandbox {
    inner: Arc<stand_in::Sandbox>,
}

impl Sandbox {
    /// A sandbox holding the seeded users; `events` names what each call logs.
    pub fn new(events: Arc<EventTable>) -> Arc<Self> {
        Arc::new(Self {
            inner: stand_in::Sandbox::new(event_codes(&events)),
        })
    }

    /// The v4 event log so far, oldest first.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.inner.events()
    }

    /// The forgotten-password mails "sent" so far (`to`, `encryptedEventId`, `link`).
    pub fn outbox(&self) -> Vec<serde_json::Value> {
        self.inner.outbox()
    }
}

/// The table as the sandbox takes it: legacy code → its v4 events' codes, ids and sides.
fn event_codes(table: &EventTable) -> EventCodes {
    table
        .iter()
        .map(|legacy| {
            let v4 = legacy
                .v4
                .iter()
                .map(|ev| EventCode::new(ev.code.clone(), ev.id, side_name(ev.side)))
                .collect();
            (legacy.code.clone(), v4)
        })
        .collect()
}

/// The side as the event files spell it.
fn side_name(side: Side) -> &'static str {
    match side {
        Side::Authsystem => "authsystem",
        Side::Subscribe => "subscribe",
    }
}

/// Binds `addr` (port 0 picks a free port) and serves `sandbox` in a background task until
/// the handle is dropped or shut down.
pub async fn spawn(addr: SocketAddr, sandbox: Arc<Sandbox>) -> std::io::Result<SandboxHandle> {
    let (listener, _) = server::bind(addr).await?;
    stand_in::spawn(listener, Arc::clone(&sandbox.inner))
}

/// The `sandbox` command: serves a fresh sandbox on `addr` until SIGTERM or Ctrl-C.
pub async fn run(addr: SocketAddr, events: Arc<EventTable>) -> std::io::Result<()> {
    let sandbox = stand_in::Sandbox::new(event_codes(&events));
    let (listener, local) = server::bind(addr).await?;
    tracing::info!(addr = %local, "v4 sandbox listening");
    stand_in::serve(listener, sandbox, server::shutdown_signal()).await;
    Ok(())
}
