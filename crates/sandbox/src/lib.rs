//! The embedded v4 sandbox: an in-process stand-in for Naviga's Users Orchestrator API v4
//! (SPEC 1.1, 4), served over real HTTP on loopback. The gateway uses it when no orchestrator
//! URL is configured, `legacy-gateway sandbox --listen ADDR` serves it for other tools, and the
//! tests use it as their v4 backend.
//!
//! # Seeded users
//!
//! Every start and every `POST /_sandbox/reset` begins from these three users, all with the
//! password `Sandbox123`, verified, with empty metadata and no last logout date:
//!
//! | customerRegistrationId | email                | firstName | lastName |
//! |------------------------|----------------------|-----------|----------|
//! | `1001`                 | `alice@example.test` | Alice     | Anderson |
//! | `1002`                 | `bob@example.test`   | Bob       | Brown    |
//! | `auth0\|abc123`        | `carol@example.test` | Carol     | Clark    |
//!
//! (`auth0|abc123` travels percent-encoded in paths: `/v4/Users/auth0%7Cabc123/`.)
//!
//! # Endpoints
//!
//! The v4 calls of SPEC 1.1, each needing `Authorization` (any value: no token is verified)
//! and the four `X-*` tenant headers, and answering in the v4 envelope:
//! `PATCH /v4/Users/{id}/Password`, `PATCH /v4/Users/{id}/Email`, `PUT /v4/Users/{id}/`,
//! `GET /v4/Users/{id}/`, `POST /v4/Users/ForgotPassword`, `POST /v4/Users/ForgotPassword/Finish`.
//! Bodies must be JSON (`415` otherwise), at most 1 MiB (`413`), with the contract's exact
//! camelCase keys (any other key is `E400_00 Unknown field`). Checks run in v4's order:
//! route (`404`/`405`), tenant headers (`E400`), media type and size, the input model
//! (`E400_00`, password policy included), then the user (`E500_01`) and the workflow errors.
//!
//! Control endpoints, outside the contract and without tenant headers:
//! `GET /_sandbox/events` (the event log as JSON lines), `GET /_sandbox/outbox` (the reset
//! mails v4 would have sent: `to`, `encryptedEventId`, `link`), `POST /_sandbox/reset` (back to the
//! seeded state and an empty log, `204`), `GET /_sandbox/health`.
//!
//! # Event log
//!
//! Each successful call appends the v4 events of its legacy event (password change and
//! ForgotPassword Finish: `CHGPWD`; e-mail change: `CHGEMAIL`; user update and read:
//! `GETUSERBYID`; ForgotPassword start: `PWDREQ`), as the [`EventCodes`] it was given list
//! them (the gateway gives those of `mappings/events.toml`): one record per v4 event, the
//! records of one call sharing a fresh `correlationId`. The newest 10,000 are kept.
//! A record:
//!
//! ```json
//! {"eventTypeCode":"AUTHSYSTEM_USER_CHANGEPASSWORD","eventId":4609,"customerRegistrationId":"1001",
//!  "correlationId":"…","side":"authsystem","timestamp":"2024-05-01T12:00:00.000Z"}
//! ```
//!
//! # Why it shares no code with the gateway
//!
//! The sandbox is what the gateway's translation is checked against. A stand-in that reused
//! the translator's code (its v4 paths, envelope, key case, event table or server) would
//! agree with the translator's bugs instead of catching them: a misspelt key or a wrong path
//! would be wrong on both ends, and every test would still pass. So this crate reads the
//! contract on its own and depends on no part of the gateway (Cargo would refuse the circle
//! anyway). What it must share comes in as plain data: the event codes to log
//! ([`EventCodes`], which the gateway builds from its event table) and the listener to serve
//! on. Its serve loop is its own, small one.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use legacy_gateway_sandbox::{spawn, EventCode, EventCodes, Sandbox};
//!
//! let codes: EventCodes = [(
//!     "PWDREQ",
//!     vec![EventCode::new("SUBSCRIBE_USER_STARTFORGOTPASSWORD", 4009, "subscribe")],
//! )]
//! .into_iter()
//! .collect();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let handle = spawn(listener, Sandbox::new(codes))?;
//! println!("v4 orchestrator at {}", handle.url());
//! handle.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod codes;
mod envelope;
mod handler;
mod input;
mod log;
mod routes;
mod serve;
mod store;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

pub use codes::{EventCode, EventCodes};
pub use serve::{serve, spawn, SandboxHandle};

use log::{EventLog, Operation};
use store::{Store, StoreError};

/// The sandbox's state. One lock covers users and log, so the log's order is the order in
/// which changes happened.
pub struct Sandbox {
    events: EventCodes,
    state: Mutex<State>,
}

struct State {
    store: Store,
    log: EventLog,
    /// The reset mails v4 would have sent, newest last, at most [`OUTBOX_CAPACITY`].
    outbox: std::collections::VecDeque<serde_json::Value>,
}

/// Enough mails to follow a test or a demo; the oldest go first.
const OUTBOX_CAPACITY: usize = 100;

impl State {
    fn seeded() -> Self {
        Self {
            store: Store::seeded(),
            log: EventLog::default(),
            outbox: std::collections::VecDeque::new(),
        }
    }
}

impl Sandbox {
    /// A sandbox holding the seeded users (crate doc); `events` names what each call logs.
    pub fn new(events: EventCodes) -> Arc<Self> {
        Arc::new(Self {
            events,
            state: Mutex::new(State::seeded()),
        })
    }

    /// The v4 event log so far, oldest first, in the record shape of the crate doc.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.lock().log.records().cloned().collect()
    }

    /// The forgotten-password mails "sent" so far (`to`, `encryptedEventId`, `link`), so a
    /// demo or a test can finish the flow the way a user clicking the link would.
    pub fn outbox(&self) -> Vec<serde_json::Value> {
        self.lock().outbox.iter().cloned().collect()
    }

    pub(crate) fn send_mail(&self, mail: serde_json::Value) {
        let mut st = self.lock();
        if st.outbox.len() >= OUTBOX_CAPACITY {
            st.outbox.pop_front();
        }
        st.outbox.push_back(mail);
    }

    /// Back to the seeded users, no outstanding forgot-password requests, an empty log.
    pub(crate) fn reset(&self) {
        *self.lock() = State::seeded();
    }

    /// Runs one store operation and, when it succeeds, logs `op`'s v4 events for the user id
    /// it returns, under one lock so the two cannot interleave with another request.
    pub(crate) fn transact<T>(
        &self,
        op: Operation,
        f: impl FnOnce(&mut Store) -> Result<(String, T), StoreError>,
    ) -> Result<T, StoreError> {
        let mut state = self.lock();
        let (user_id, value) = f(&mut state.store)?;
        let timestamp = log::rfc3339(SystemTime::now());
        // One correlation id per legacy event: each group translates back to one legacy
        // record (`events to-legacy`).
        for code in op.legacy_codes() {
            let correlation_id = uuid::Uuid::new_v4().to_string();
            state
                .log
                .record(&self.events, code, &user_id, &correlation_id, &timestamp);
        }
        Ok(value)
    }

    /// A panic elsewhere while holding the lock must not take the sandbox down with it: the
    /// state is still consistent (every store operation checks before it changes anything).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
