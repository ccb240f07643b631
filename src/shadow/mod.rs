//! Shadow mode (SPEC 3): the legacy backend answers the client, untouched; a translated copy
//! of the call goes to v4 off the request path, and the two answers are compared.
//!
//! Isolation is the point of this module. The copy starts only after the client's answer is
//! ready and runs in its own task, on a low-priority thread of its own (`lane`), so the
//! client's latency, throughput and result never depend on v4, even when v4 hangs or is
//! down. Copies are sampled per user, bounded in number (running plus queued; the excess is
//! dropped and counted, never queued without bound) and in size (bodies over the cap are
//! skipped and counted), and a per-route kill switch pauses a route whose copies fail or
//! crawl. Writes are not shadowed unless the route opts in, and then only towards a separate
//! shadow orchestrator (config check).
//!
//! The parts, in the order a copy meets them: [`offer`] (sampling and admission, on the
//! request path), [`copy`] (the translated call, off it), [`compare`] (normalising and
//! diffing the two answers), [`secrets`] (what is masked before anything is written),
//! [`report`] (the figures per route part and tenant, over the [`window`]s, judged by
//! [`verdict`], with each row's [`current`] mode), [`diffs`] (the diff file), [`page`],
//! [`noise`] (learned from the legacy backend answering twice), [`fleet`] (several
//! instances' reports as one).
//!
//! The shadow sits above the routes (a copy replays a route) and below the gateway (which
//! holds its state): it takes the runtime, the metrics and its own state, never the gateway.

pub mod compare;
pub mod copy;
pub mod current;
pub mod diffs;
pub mod fleet;
pub mod killswitch;
pub mod lane;
pub mod noise;
pub mod offer;
pub mod page;
pub mod provenance;
pub mod report;
pub mod secrets;
pub mod verdict;
pub mod window;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use bytes::Bytes;

use crate::legacy::Family;
use diffs::DiffWriter;
use lane::Lane;
use report::State;
pub use report::{Report, RowId, RowReport};

/// Shadow state that outlives configuration reloads.
#[derive(Default)]
pub struct Shadow {
    /// Counters and kill switches: the request path takes this lock too, so it is held only
    /// for counter updates, never for serialising or writing a diff (the idle-priority lane
    /// may be descheduled for long while it holds a lock).
    state: Mutex<State>,
    /// The diff file, only ever touched by the shadow lane.
    diffs: Mutex<Option<DiffWriter>>,
    /// Copies running or waiting for a permit.
    in_system: AtomicUsize,
    /// Started with the first copy: no thread for a gateway that never shadows.
    lane: OnceLock<Option<Lane>>,
    /// Shadowed reads so far, for the noise sample (`noise`).
    noise_reads: std::sync::atomic::AtomicU64,
    /// The client of the second legacy calls, used on the lane only.
    noise_client: OnceLock<reqwest::Client>,
}

/// What one call tells the shadow: everything needed to translate the copy later.
pub struct Original {
    /// The call as dispatch worked it out (route, part, tenant, id, request id).
    pub ctx: crate::context::RequestContext,
    pub sample_key: String,
    pub parts: http::request::Parts,
    pub body: Bytes,
}

/// What the legacy backend answered, to compare the copy with.
pub struct LegacyAnswer {
    pub status: u16,
    pub body: Bytes,
    /// How long the legacy backend took to answer, set side by side with the copy's.
    pub latency: std::time::Duration,
}

impl Shadow {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain counters: still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Copies running or waiting for a permit now.
    pub fn queue_depth(&self) -> usize {
        self.in_system.load(Ordering::Acquire)
    }

    /// Whether the route's kill switch pauses its copies now.
    pub fn kill_switch_engaged(&self, family: Family) -> bool {
        self.lock()
            .kill
            .get(family.name())
            .is_some_and(|k| k.paused(Instant::now()))
    }
}
