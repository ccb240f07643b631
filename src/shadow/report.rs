//! The figures per route part and tenant (`GET /_gateway/shadow`, the shadow page, the
//! readiness gauge): every call a shadowing route saw is accounted for (compared, refused, or
//! not shadowed and why), over the window since the last configuration change or `reset`
//! and over the last 5 minutes and hour, with the most frequent differing paths. A cut-over
//! is decided per part (`user-api.read` apart from `user-api.update`, each action apart), on
//! figures gathered under the configuration being judged only.
//!
//! Bounded everywhere: rows, paths and examples all have a cap, so a client inventing
//! tenants or a v4 differing everywhere cannot grow memory.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::compare::Difference;
use super::killswitch::KillSwitch;
use super::verdict::{Criteria, Verdict};
use super::window::{self, Counts, Reason, Windows};
use super::Shadow;
use crate::legacy::Family;
use crate::metrics::Metrics;
use crate::runtime::Runtime;

/// Distinct (route, part, tenant) rows kept; further ones are counted under tenant `other`.
const MAX_ROWS: usize = 500;
/// Distinct differing paths kept per row.
const MAX_PATHS: usize = 100;
/// Differing paths per row that keep one (masked, shortened) example difference.
const MAX_EXAMPLES: usize = 20;
/// An example is cut to this many characters of JSON.
const EXAMPLE_CHARS: usize = 400;
/// Differing paths shown per row.
const TOP_PATHS: usize = 10;

pub use crate::api::RowId;

/// A differing path's count, its first masked example and where it came from.
#[derive(Debug, Default, Clone)]
struct PathStat {
    count: u64,
    example: Option<String>,
    source: Option<super::provenance::Origin>,
}

#[derive(Debug, Default)]
struct Row {
    windows: Windows,
    paths: HashMap<String, PathStat>,
    /// Paths that differed between two legacy answers to the same read (noise, learned),
    /// with how often they did.
    noise: HashMap<String, u64>,
}

/// What the figures are counted since.
#[derive(Debug, Clone)]
struct Opened {
    hash: String,
    at: SystemTime,
    by: &'static str,
}

/// The rows, the window and the kill switches, behind the shadow's one lock.
#[derive(Default)]
pub(super) struct State {
    rows: BTreeMap<RowId, Row>,
    pub(super) kill: HashMap<String, KillSwitch>,
    opened: Option<Opened>,
}

impl State {
    fn row(&mut self, id: &RowId) -> &mut Row {
        if self.rows.len() >= MAX_ROWS && !self.rows.contains_key(id) {
            let other = RowId {
                tenant: "other".into(),
                ..id.clone()
            };
            return self.rows.entry(other).or_default();
        }
        self.rows.entry(id.clone()).or_default()
    }

    /// Opens a new window when the configuration changed since this one opened: figures
    /// gathered under another configuration say nothing about this one.
    fn roll(&mut self, hash: &str) {
        match &self.opened {
            Some(o) if o.hash == hash => {}
            previous => {
                // Calls counted before the first look at the window belong to it.
                let by = if previous.is_some() {
                    self.rows.clear();
                    "reload"
                } else {
                    "start"
                };
                self.opened = Some(Opened {
                    hash: hash.to_string(),
                    at: SystemTime::now(),
                    by,
                });
            }
        }
    }
}

/// What one compared copy adds to the report.
pub(super) struct Outcome<'a> {
    pub differences: &'a [Difference],
    /// The differences with secrets masked (present when there are any).
    pub masked: Option<&'a serde_json::Value>,
    /// Where each differing path came from, in the order of `differences`.
    pub sources: &'a [Option<super::provenance::Origin>],
    /// Paths where a second legacy answer to this call differed from the first.
    pub learned: &'a [String],
    pub v4_error: bool,
    pub legacy_ms: f64,
    pub v4_ms: f64,
}

impl Shadow {
    /// Counts a call that got no copy, in the report and the metrics (on the request path:
    /// one short lock, no allocation beyond a new row's).
    pub(super) fn not_shadowed(&self, metrics: &Metrics, id: &RowId, reason: Reason) {
        self.lock()
            .row(id)
            .windows
            .apply(window::minute_now(), |c| c.not_shadowed(reason));
        metrics.shadow(id.route, &id.tenant, reason.name());
    }

    /// Counts a copy the gateway refused to send (it would refuse the call itself).
    pub(super) fn refused(&self, metrics: &Metrics, id: &RowId) {
        self.lock()
            .row(id)
            .windows
            .apply(window::minute_now(), |c| c.refused += 1);
        metrics.shadow(id.route, &id.tenant, "refused");
    }

    /// Counts a compared copy and feeds the route's kill switch.
    pub(super) fn record(&self, rt: &Runtime, metrics: &Metrics, id: &RowId, o: Outcome<'_>) {
        let cfg = rt.config.shadow.route(id.route);
        let hash = metrics.config_hash();
        let mut st = self.lock();
        st.roll(&hash);
        if let Some(trip) = st.kill.entry(id.route.to_string()).or_default().record(
            &cfg,
            o.v4_error,
            o.v4_ms as u64,
            std::time::Instant::now(),
        ) {
            tracing::warn!(
                route = id.route,
                error_rate_percent = trip.error_rate_percent,
                mean_latency_ms = trip.mean_latency_ms,
                cooldown_ms = cfg.kill_cooldown_ms,
                "shadow kill switch tripped: shadowing of this route paused"
            );
        }
        let row = st.row(id);
        for path in o.learned {
            if row.noise.len() < MAX_PATHS || row.noise.contains_key(path) {
                *row.noise.entry(path.clone()).or_default() += 1;
            }
        }
        let differing = !o.differences.is_empty();
        let is_noise = |path: &str| row.noise.contains_key(path);
        let noise_only = differing && o.differences.iter().all(|d| is_noise(&d.path));
        row.windows.apply(window::minute_now(), |c| {
            c.compared += 1;
            c.matched += u64::from(!differing);
            c.differing += u64::from(differing);
            c.noise_only += u64::from(noise_only);
            c.v4_errors += u64::from(o.v4_error);
            c.latency_ms.legacy.observe(o.legacy_ms);
            c.latency_ms.v4.observe(o.v4_ms);
        });
        let masked = o.masked.and_then(serde_json::Value::as_array);
        for (i, d) in o.differences.iter().enumerate() {
            if row.noise.contains_key(&d.path) {
                continue;
            }
            if row.paths.len() >= MAX_PATHS && !row.paths.contains_key(&d.path) {
                continue;
            }
            let with_examples = row.paths.values().filter(|p| p.example.is_some()).count();
            let p = row.paths.entry(d.path.clone()).or_default();
            p.count += 1;
            if p.example.is_none() && with_examples < MAX_EXAMPLES {
                p.example = masked.and_then(|m| m.get(i)).map(example_text);
            }
            if p.source.is_none() {
                p.source = o.sources.get(i).cloned().flatten();
            }
        }
    }

    /// Forgets every figure: `POST /_gateway/shadow/reset`.
    pub fn reset(&self, config_hash: &str) {
        let mut st = self.lock();
        st.rows.clear();
        st.opened = Some(Opened {
            hash: config_hash.to_string(),
            at: SystemTime::now(),
            by: "reset",
        });
    }

    /// The report: every row with its figures, verdict and current mode.
    pub fn report(&self, rt: &Runtime, config_hash: &str) -> Report {
        let criteria = Criteria::of(&rt.config.shadow);
        let now = std::time::Instant::now();
        let minute = window::minute_now();
        let mut st = self.lock();
        st.roll(config_hash);
        let rows = st
            .rows
            .iter()
            .map(|(id, row)| {
                let mut top: Vec<(&String, &PathStat)> = row.paths.iter().collect();
                top.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
                top.truncate(TOP_PATHS);
                let mut noise: Vec<(&String, &u64)> = row.noise.iter().collect();
                noise.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                noise.truncate(TOP_PATHS);
                let since = row.windows.since_change.clone();
                let verdict = Verdict::of(&since, &criteria);
                RowReport {
                    route: id.route.to_string(),
                    part: id.part.clone(),
                    row: id.name(),
                    tenant: id.tenant.clone(),
                    mode: super::current::mode(rt, id.route, &id.part, &id.tenant),
                    verdict,
                    ready: verdict == Verdict::Ready,
                    since_change: since,
                    last_5m: row.windows.last(window::SHORT_MINUTES, minute),
                    last_1h: row.windows.last(window::MINUTES, minute),
                    per_minute: row.windows.per_minute(minute),
                    top_differing_paths: top
                        .into_iter()
                        .map(|(path, p)| PathReport {
                            path: path.clone(),
                            count: p.count,
                            example: p.example.clone(),
                            v4_pointer: p.source.as_ref().map(|s| s.v4_pointer.clone()),
                            mapping: p.source.as_ref().and_then(|s| s.mapping.clone()),
                        })
                        .collect(),
                    noise_paths: noise
                        .into_iter()
                        .map(|(path, n)| NoiseReport {
                            path: path.clone(),
                            count: *n,
                        })
                        .collect(),
                }
            })
            .collect();
        let kill_switches = Family::ALL
            .into_iter()
            .map(|f| {
                let k = st.kill.get(f.name());
                (
                    f.name().to_string(),
                    KillReport {
                        paused: k.is_some_and(|k| k.paused(now)),
                        trips: k.map_or(0, |k| k.trips),
                    },
                )
            })
            .collect();
        let opened = st.opened.clone();
        drop(st);
        Report {
            config_hash: config_hash.to_string(),
            window: WindowReport {
                opened: opened
                    .as_ref()
                    .map(|o| httpdate::fmt_http_date(o.at))
                    .unwrap_or_default(),
                by: opened.map_or("start", |o| o.by).to_string(),
            },
            criteria,
            rows,
            kill_switches,
            in_flight: self.queue_depth(),
            queue_capacity: rt.config.shadow.max_concurrency + rt.config.shadow.max_queue,
            diff_file: rt
                .config
                .shadow
                .diff_file
                .as_ref()
                .map(|p| p.display().to_string()),
            instances: 1,
        }
    }
}

/// `GET /_gateway/shadow` as JSON; the page and the fleet merge read the same structure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The configuration the figures were gathered under (`mixed` in a merge of instances
    /// running different ones).
    pub config_hash: String,
    pub window: WindowReport,
    pub criteria: Criteria,
    pub rows: Vec<RowReport>,
    pub kill_switches: BTreeMap<String, KillReport>,
    pub in_flight: usize,
    pub queue_capacity: usize,
    pub diff_file: Option<String>,
    /// How many instances' reports these figures add up.
    pub instances: usize,
}

/// Since when the verdict's figures are counted, and what opened the window (`start`,
/// `reload`, `reset`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowReport {
    pub opened: String,
    pub by: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct KillReport {
    pub paused: bool,
    pub trips: u64,
}

/// One route part and tenant. The figures at the top level are those of the window since
/// the last change (the verdict's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowReport {
    pub route: String,
    pub part: String,
    pub row: String,
    pub tenant: String,
    /// Where the row's calls go now: `legacy`, `shadow`, `canary N%`, `translate`.
    pub mode: String,
    pub verdict: Verdict,
    pub ready: bool,
    #[serde(flatten)]
    pub since_change: Counts,
    pub last_5m: Counts,
    pub last_1h: Counts,
    /// (minute since the Unix epoch, compared, matched counting noise) over the last hour.
    pub per_minute: Vec<(u64, u64, u64)>,
    pub top_differing_paths: Vec<PathReport>,
    pub noise_paths: Vec<NoiseReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathReport {
    /// As the legacy API spells it (`$.Result.DisplayName`).
    pub path: String,
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
    /// The v4 JSON pointer the legacy field is translated from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v4_pointer: Option<String>,
    /// The mapping entry that translates it, `file:line` under `mappings/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoiseReport {
    pub path: String,
    pub count: u64,
}

/// One masked difference as the page shows it (`legacy … → v4 …`, values as JSON), cut to
/// `EXAMPLE_CHARS`.
fn example_text(masked: &serde_json::Value) -> String {
    let text = format!("legacy {} → v4 {}", masked["legacy"], masked["v4"]);
    match text.char_indices().nth(EXAMPLE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
