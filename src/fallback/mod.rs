//! Fallback to legacy, by itself (`[fallback]`): for each route part and tenant v4 answers
//! (translate, or the translated side of a canary) with a legacy backend configured, v4's
//! gateway-side failures are counted over a window; past the ratio, the row's calls go to the
//! legacy backend for a cool-down, then one call in ten probes v4, and the row returns when
//! the probes succeed.
//!
//! One decision per process, shared by every worker: each instance judges v4 by the calls it
//! made itself (scaling out is the load balancer's business). The rows outlive reloads, so a
//! reload during an outage does not send calls back to a failing v4. A call looks its row up
//! in a per-thread cache of `Arc`s and reads atomics: no lock is taken per request.
//!
//! - `row`: one row's breaker.
//! - `admin`: `GET /_gateway/fallback` and `POST /_gateway/fallback/reset`.

pub mod admin;
mod row;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::FallbackConfig;
use crate::legacy::Family;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::upstream::outcome::Seen;
pub use row::{Change, Choice, Row, State, PROBE_EVERY};

/// A row: the API, its part (`read`, `update`, an action as the mapping names it, `other`),
/// the tenant label (as configured, or `other`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowId {
    pub route: &'static str,
    pub part: String,
    pub tenant: String,
}

/// The rows of one gateway.
pub struct Fallback {
    /// Tells this gateway's rows from another's in the per-thread cache (tests run several).
    id: u64,
    started: Instant,
    rows: Mutex<BTreeMap<RowId, Arc<Row>>>,
}

impl Default for Fallback {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            started: Instant::now(),
            rows: Mutex::default(),
        }
    }
}

/// Rows this thread has used, by `gateway id, route, part, tenant` joined; and the buffer the
/// key is written into, so a lookup allocates nothing.
#[derive(Default)]
struct Cache {
    key: String,
    rows: HashMap<Box<str>, Arc<Row>>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::default();
}

/// A call the router sends to v4 on a watched row: its outcome is reported with
/// [`Fallback::record`].
pub struct Watch {
    row: Arc<Row>,
    probe: bool,
}

/// What the router does with a call of a watched row.
pub enum Decision {
    V4(Watch),
    Legacy,
}

impl Fallback {
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Where a call of this row goes. `part` is the part as the router matched it: a
    /// User API operation, or an action name the client sent (checked against the mapping).
    pub fn decide(
        &self,
        rt: &Runtime,
        family: Family,
        part: Option<&str>,
        tenant: &str,
    ) -> Decision {
        let now = self.now();
        let part = part_name(rt, family, part);
        let row = self.row(family.name(), part, tenant, now);
        match row.choose(now) {
            Choice::Legacy => Decision::Legacy,
            Choice::V4 { probe } => Decision::V4(Watch { row, probe }),
        }
    }

    /// Counts what v4 did to a watched call; logs and counts a change of side.
    pub fn record(&self, rt: &Runtime, metrics: &Metrics, watch: Watch, seen: Seen) {
        let Some(cfg) = rt.config.fallback.as_ref() else {
            return;
        };
        let failed = match seen {
            Seen::Nothing => return, // no v4 call: a refusal, or passed to legacy anyway
            Seen::Answered => false,
            Seen::Failed => true,
            Seen::ServerError(code) => !is_business(rt, cfg, &code),
        };
        let Watch { row, probe } = watch;
        let id = &row.id;
        let (route, part, tenant) = (id.route, id.part.as_str(), id.tenant.as_str());
        match row.record(cfg, probe, failed, self.now()) {
            None => {}
            Some(Change::Opened { calls, failures }) => {
                metrics.fallback_opened(route, part, tenant);
                tracing::warn!(
                    route,
                    part,
                    tenant,
                    calls,
                    failures,
                    cooldown_seconds = cfg.cooldown.as_secs_f64(),
                    "fallback: v4 is failing for this row; its calls go to the legacy backend"
                );
            }
            Some(Change::ProbeFailed) => tracing::info!(
                route,
                part,
                tenant,
                "fallback: a probe to v4 failed; the row stays on the legacy backend for another cool-down"
            ),
            Some(Change::Closed) => tracing::warn!(
                route,
                part,
                tenant,
                probes = cfg.probes,
                "fallback: v4 probes succeeded; the row's calls go to v4 again"
            ),
        }
    }

    /// This thread's handle on a row, made on first use.
    fn row(&self, route: &'static str, part: &str, tenant: &str, now: u64) -> Arc<Row> {
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            let Cache { key, rows } = &mut *cache;
            key.clear();
            let _ = write!(key, "{}\u{1f}{route}\u{1f}{part}\u{1f}{tenant}", self.id);
            if let Some(row) = rows.get(key.as_str()) {
                return row.clone();
            }
            let id = RowId {
                route,
                part: part.to_string(),
                tenant: tenant.to_string(),
            };
            let row = self
                .lock()
                .entry(id.clone())
                .or_insert_with(|| Arc::new(Row::new(id, now)))
                .clone();
            rows.insert(key.as_str().into(), row.clone());
            row
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<RowId, Arc<Row>>> {
        // The map holds only `Arc`s; a panic elsewhere cannot leave it half-written.
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every row seen, in order, with its state now.
    pub fn rows(&self) -> Vec<(RowId, Arc<Row>, State)> {
        let now = self.now();
        self.lock()
            .iter()
            .map(|(id, row)| (id.clone(), row.clone(), row.state(now)))
            .collect()
    }

    /// Puts the rows `select` picks back on v4 with a fresh window; returns them with the
    /// state each was in.
    pub fn reset(&self, select: impl Fn(&RowId) -> bool) -> Vec<(RowId, State)> {
        let now = self.now();
        let mut reset = Vec::new();
        for (id, row) in self.lock().iter() {
            if select(id) {
                let was = row.state(now);
                if row.close(now) {
                    tracing::warn!(
                        route = id.route,
                        part = %id.part,
                        tenant = %id.tenant,
                        "fallback: reset by hand; the row's calls go to v4 again"
                    );
                }
                reset.push((id.clone(), was));
            }
        }
        reset
    }

    /// Milliseconds since this gateway's rows started counting: what `Row` times are in.
    pub fn clock(&self) -> u64 {
        self.now()
    }
}

/// A v4 5xx whose code the configuration names as an answer about the user, not a failure.
fn is_business(rt: &Runtime, cfg: &FallbackConfig, code: &str) -> bool {
    let short = rt.mappings.v4.short_code(code);
    cfg.business_errors.iter().any(|b| b == short)
}

/// The part of the API a row stands for, bounded: an action the mapping does not know is
/// `other`, so a client cannot grow the rows.
fn part_name<'a>(rt: &'a Runtime, family: Family, part: Option<&'a str>) -> &'a str {
    match (family, part) {
        (Family::Registry, Some(a)) => rt
            .mappings
            .registry
            .action(a)
            .map_or("other", |(a, _)| a.name.as_str()),
        (Family::UserApi, Some(p)) => p,
        (_, None) => "other",
    }
}
