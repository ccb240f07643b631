//! Fallback to legacy, by itself (`[fallback]`): for each route part and tenant v4 answers
//! (translate, or the translated side of a canary) with a legacy backend configured, v4's
//! gateway-side failures are counted over a window; past the ratio, the row's calls go to the
//! legacy backend for a cool-down, then one call in ten probes v4, and the row returns when
//! the probes succeed.
//!
//! One decision per process, shared by every worker: each instance judges v4 by the calls it
//! made itself (scaling out is the load balancer's business). The rows outlive reloads, so a
//! reload during an outage does not send calls back to a failing v4. A call looks its row up
//! in a per-thread cache and reads atomics: no lock is taken per request. Rows live as long
//! as the process (one per route part and tenant, a hundred bytes each, bounded by the
//! configuration), so a call holds a plain reference and touches no shared reference count.
//!
//! - `row`: one row's breaker.
//! - `admin`: `GET /_gateway/fallback` and `POST /_gateway/fallback/reset`.

pub mod admin;
mod row;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::config::FallbackConfig;
use crate::legacy::Family;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::upstream::outcome::Seen;
pub use row::{Change, Choice, Row, State, PROBE_EVERY};

pub use crate::api::RowId;

/// The rows of one gateway.
pub struct Fallback {
    /// Tells this gateway's rows from another's in the per-thread cache (tests run several).
    id: u64,
    started: Instant,
    rows: Mutex<BTreeMap<RowId, &'static Row>>,
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

/// Rows this thread has used, by a hash of gateway id, route, part and tenant: a lookup
/// writes no key and takes no lock. A hit is checked against the row's own names.
#[derive(Default)]
struct Cache {
    rows: HashMap<u64, (u64, &'static Row), BuildHasherDefault<Prehashed>>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::default();
}

/// The cache's keys are FNV-1a hashes already: hashing them again would only cost time.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn fnv(id: u64, parts: [&str; 3]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    id.to_le_bytes().into_iter().for_each(&mut eat);
    for p in parts {
        p.bytes().for_each(&mut eat);
        eat(0x1f);
    }
    h
}

/// A call the router sends to v4 on a watched row: its outcome is reported with
/// [`Fallback::record`].
pub struct Watch {
    row: &'static Row,
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
        let part = part_name(rt, family, part);
        let row = self.row(family.name(), part, tenant);
        // The clock is read only for a row on legacy: a healthy row costs no time read here.
        match row.choose(|| self.now()) {
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
    fn row(&self, route: &'static str, part: &str, tenant: &str) -> &'static Row {
        let key = fnv(self.id, [route, part, tenant]);
        let named =
            |row: &Row| row.id.route == route && row.id.part == part && row.id.tenant == tenant;
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            if let Some((owner, row)) = cache.rows.get(&key) {
                if *owner == self.id && named(row) {
                    return *row;
                }
            }
            let id = RowId {
                route,
                part: part.to_string(),
                tenant: tenant.to_string(),
            };
            let now = self.now();
            let row = *self
                .lock()
                .entry(id.clone())
                .or_insert_with(|| Box::leak(Box::new(Row::new(id, now))));
            // On a hash collision (never seen) the first row keeps the slot; the other is
            // found under the lock each time.
            cache.rows.entry(key).or_insert((self.id, row));
            row
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<RowId, &'static Row>> {
        // The map holds only references; a panic elsewhere cannot leave it half-written.
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every row seen, in order, with its state now.
    pub fn rows(&self) -> Vec<(RowId, &'static Row, State)> {
        let now = self.now();
        self.lock()
            .iter()
            .map(|(id, row)| (id.clone(), *row, row.state(now)))
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
