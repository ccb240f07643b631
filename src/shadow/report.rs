//! The figures per route and tenant (`GET /_gateway/shadow`, the shadow page): counters,
//! the most frequent differing paths with one masked example each, and a match-ratio
//! history. Bounded everywhere: rows, paths, examples and history all have a cap, so a
//! client inventing tenants or a v4 differing everywhere cannot grow memory.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};

use super::compare::Difference;
use super::killswitch::KillSwitch;
use super::Shadow;
use crate::legacy::Family;
use crate::runtime::Runtime;

/// Distinct (route, tenant) rows kept; further tenants are counted as `other`, so a client
/// inventing `X-ClientCode` values cannot grow memory or metric labels.
const MAX_ROWS: usize = 1000;
/// Distinct differing paths kept per row.
const MAX_PATHS: usize = 100;
/// Differing paths per row that keep one (masked, shortened) example difference.
const MAX_EXAMPLES: usize = 20;
/// An example is cut to this many characters of JSON.
const EXAMPLE_CHARS: usize = 400;
/// The match-ratio history: one bucket per minute, the last three hours, per row.
const HISTORY_BUCKET_SECS: u64 = 60;
const HISTORY_BUCKETS: usize = 180;

/// The figures of one route and tenant, as `GET /_gateway/shadow` reports them.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    pub compared: u64,
    pub matched: u64,
    pub differing: u64,
    pub v4_errors: u64,
    pub dropped: u64,
    pub skipped: u64,
    pub refused: u64,
    pub paused: u64,
    #[serde(skip)]
    pub(super) paths: HashMap<String, u64>,
    /// One masked example difference for the first `MAX_EXAMPLES` paths seen.
    #[serde(skip)]
    pub(super) examples: HashMap<String, String>,
    #[serde(skip)]
    pub(super) history: VecDeque<Bucket>,
}

/// Copies compared and matched during one minute (`start`: Unix seconds).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub start: u64,
    pub compared: u64,
    pub matched: u64,
}

impl Stats {
    fn record_history(&mut self, matched: bool) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let start = now - now % HISTORY_BUCKET_SECS;
        if self.history.back().is_none_or(|b| b.start != start) {
            if self.history.len() == HISTORY_BUCKETS {
                self.history.pop_front();
            }
            self.history.push_back(Bucket {
                start,
                ..Bucket::default()
            });
        }
        if let Some(b) = self.history.back_mut() {
            b.compared += 1;
            b.matched += u64::from(matched);
        }
    }
}

/// One row of the shadow page: a route and tenant's figures, its most frequent differing
/// paths (count and a masked example each) and its match-ratio history.
#[derive(Debug, Clone)]
pub struct RowView {
    pub route: String,
    pub tenant: String,
    pub stats: Stats,
    pub top_paths: Vec<(String, u64, Option<String>)>,
    pub history: Vec<Bucket>,
}

/// Everything the shadow page shows, taken under the lock once.
#[derive(Debug, Clone)]
pub struct View {
    pub rows: Vec<RowView>,
    /// Route → (paused now, trips so far), for both routes.
    pub kill_switches: Vec<(&'static str, bool, u64)>,
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub diff_file: Option<std::path::PathBuf>,
}

/// The rows and the kill switches, behind the shadow's one lock.
#[derive(Default)]
pub(super) struct State {
    rows: BTreeMap<(String, String), Stats>,
    pub(super) kill: HashMap<String, KillSwitch>,
}

impl State {
    pub(super) fn row(&mut self, route: &str, tenant: &str) -> &mut Stats {
        let key = if self.rows.len() >= MAX_ROWS
            && !self
                .rows
                .contains_key(&(route.to_string(), tenant.to_string()))
        {
            (route.to_string(), "other".to_string())
        } else {
            (route.to_string(), tenant.to_string())
        };
        self.rows.entry(key).or_default()
    }
}

/// What one compared copy adds to the report.
pub(super) struct Outcome<'a> {
    pub differences: &'a [Difference],
    /// The differences with secrets masked (present when there are any).
    pub masked: Option<&'a Value>,
    pub v4_error: bool,
    pub latency_ms: u64,
}

impl Shadow {
    /// Counts a compared copy and feeds the route's kill switch.
    pub(super) fn record(&self, rt: &Runtime, route: &str, tenant: &str, o: Outcome<'_>) {
        let cfg = rt.config.shadow.route(route);
        let mut st = self.lock();
        if let Some(trip) = st.kill.entry(route.to_string()).or_default().record(
            &cfg,
            o.v4_error,
            o.latency_ms,
            Instant::now(),
        ) {
            tracing::warn!(
                route,
                error_rate_percent = trip.error_rate_percent,
                mean_latency_ms = trip.mean_latency_ms,
                cooldown_ms = cfg.kill_cooldown_ms,
                "shadow kill switch tripped: shadowing of this route paused"
            );
        }
        let row = st.row(route, tenant);
        row.compared += 1;
        row.record_history(o.differences.is_empty());
        for d in o.masked.and_then(Value::as_array).into_iter().flatten() {
            let Some(path) = d["path"].as_str() else {
                continue;
            };
            if row.examples.len() < MAX_EXAMPLES && !row.examples.contains_key(path) {
                row.examples.insert(path.to_string(), example_text(d));
            }
        }
        if o.v4_error {
            row.v4_errors += 1;
        }
        if o.differences.is_empty() {
            row.matched += 1;
        } else {
            row.differing += 1;
            for d in o.differences {
                if row.paths.len() < MAX_PATHS || row.paths.contains_key(&d.path) {
                    *row.paths.entry(d.path.clone()).or_default() += 1;
                }
            }
        }
    }

    /// What the shadow page shows (`page::render`).
    pub fn view(&self, rt: &Runtime) -> View {
        let st = self.lock();
        let now = Instant::now();
        let rows = st
            .rows
            .iter()
            .map(|((route, tenant), s)| RowView {
                route: route.clone(),
                tenant: tenant.clone(),
                top_paths: top_paths(s, 10)
                    .into_iter()
                    .map(|(p, n)| (p.clone(), *n, s.examples.get(p).cloned()))
                    .collect(),
                history: s.history.iter().copied().collect(),
                stats: Stats {
                    paths: HashMap::new(),
                    examples: HashMap::new(),
                    history: Default::default(),
                    ..s.clone()
                },
            })
            .collect();
        let kill_switches = Family::ALL
            .into_iter()
            .map(|f| {
                let k = st.kill.get(f.name());
                (
                    f.name(),
                    k.is_some_and(|k| k.paused(now)),
                    k.map_or(0, |k| k.trips),
                )
            })
            .collect();
        View {
            rows,
            kill_switches,
            queue_depth: self.queue_depth(),
            queue_capacity: rt.config.shadow.max_concurrency + rt.config.shadow.max_queue,
            diff_file: rt.config.shadow.diff_file.clone(),
        }
    }

    /// The summary per route and tenant, with the most frequent differing paths.
    pub fn report(&self, rt: &Runtime) -> Value {
        let st = self.lock();
        let now = Instant::now();
        let rows: Vec<Value> = st
            .rows
            .iter()
            .map(|((route, tenant), s)| {
                let paths = top_paths(s, 10);
                let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
                v["route"] = json!(route);
                v["tenant"] = json!(tenant);
                v["top_differing_paths"] = json!(paths
                    .iter()
                    .map(|(p, n)| json!({"path": p, "count": n}))
                    .collect::<Vec<_>>());
                v
            })
            .collect();
        let kill: BTreeMap<&String, Value> = st
            .kill
            .iter()
            .map(|(r, k)| (r, json!({"paused": k.paused(now), "trips": k.trips})))
            .collect();
        json!({
            "rows": rows,
            "kill_switches": kill,
            "in_flight": self.queue_depth(),
            "diff_file": rt.config.shadow.diff_file,
        })
    }
}

/// The `n` most frequent differing paths of a row, most frequent first.
fn top_paths(s: &Stats, n: usize) -> Vec<(&String, &u64)> {
    let mut paths: Vec<(&String, &u64)> = s.paths.iter().collect();
    paths.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    paths.truncate(n);
    paths
}

/// One masked difference as the page shows it (`legacy … → v4 …`, values as JSON), cut to
/// `EXAMPLE_CHARS`.
fn example_text(masked: &Value) -> String {
    let text = format!("legacy {} → v4 {}", masked["legacy"], masked["v4"]);
    match text.char_indices().nth(EXAMPLE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
