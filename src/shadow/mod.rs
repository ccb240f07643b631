//! Shadow mode (SPEC 3): the legacy backend answers the client, untouched; a translated copy
//! of the call goes to v4 off the request path, and the two answers are compared.
//!
//! Isolation is the point of this module. The copy starts only after the client's answer is
//! ready and runs in its own task, on a low-priority thread of its own (`lane`), so the
//! client's latency, throughput and result never depend on v4, even when v4 hangs or is
//! down. Copies are sampled per user, bounded in number (running
//! plus queued; the excess is dropped and counted, never queued without bound) and in size
//! (bodies over the cap are skipped and counted), and a per-route kill switch pauses a route
//! whose copies fail or crawl. Writes are not shadowed unless the route opts in, and then only
//! towards a separate shadow orchestrator (config check).

pub mod compare;
pub mod diffs;
pub mod killswitch;
pub mod lane;
pub mod page;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderName, Response};
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use serde_json::{json, Value};

use crate::body::Body;
use crate::gateway::{Gateway, Runtime};
use crate::legacy::Refused;
use crate::routes::Target;
use compare::Difference;
use diffs::DiffWriter;
use killswitch::KillSwitch;
use lane::Lane;

/// The marker every shadow copy carries, with the original request id: v4 logs can tell
/// copies apart, and a gateway that receives one never shadows it again.
pub const SHADOW_OF: HeaderName = HeaderName::from_static("x-shadow-of");

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

/// Which legacy API a shadowed call belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    UserApi,
    Registry,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::UserApi => "user-api",
            Route::Registry => "registry",
        }
    }
}

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
    paths: HashMap<String, u64>,
    /// One masked example difference for the first `MAX_EXAMPLES` paths seen.
    #[serde(skip)]
    examples: HashMap<String, String>,
    #[serde(skip)]
    history: std::collections::VecDeque<Bucket>,
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

#[derive(Default)]
struct State {
    rows: BTreeMap<(String, String), Stats>,
    kill: HashMap<String, KillSwitch>,
}

impl State {
    fn row(&mut self, route: &str, tenant: &str) -> &mut Stats {
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
}

/// What one call tells the shadow: everything needed to translate the copy later.
pub struct Call {
    pub route: Route,
    /// Canonical action name for the action API, for mode rules and reports.
    pub tenant: String,
    pub sample_key: String,
    pub request_id: String,
    pub parts: http::request::Parts,
    pub body: Bytes,
    /// The raw id path segment of `PUT /User/{id}`.
    pub raw_id: String,
    pub writes: bool,
}

impl Shadow {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain counters: still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(
        &self,
        gw: &Gateway,
        route: &str,
        tenant: &str,
        result: &str,
        f: impl FnOnce(&mut Stats),
    ) {
        let mut st = self.lock();
        let row = st.row(route, tenant);
        f(row);
        drop(st);
        gw.metrics.shadow(route, tenant, result);
    }

    /// Decides whether the call gets a copy and, if so, starts it in the background.
    /// Returns immediately; never fails the caller.
    pub fn offer(
        gw: &Arc<Gateway>,
        rt: &Arc<Runtime>,
        call: Call,
        legacy_status: u16,
        legacy_body: Bytes,
    ) {
        let shadow = &gw.shadow;
        let mut call = call;
        call.tenant = tenant_label(rt, call.route, &call.tenant);
        let route = call.route.name();
        let cfg = rt.config.shadow.route(route);
        if call.parts.headers.contains_key(&SHADOW_OF) {
            return; // a copy of a copy: never
        }
        if call.writes && !cfg.writes {
            tracing::debug!(route, "write not shadowed (route has not opted in)");
            return;
        }
        if crate::modes::bucket(&call.sample_key) >= cfg.sample_percent {
            return;
        }
        let now = Instant::now();
        {
            let mut st = shadow.lock();
            if !st.kill.entry(route.to_string()).or_default().allows(now) {
                drop(st);
                shadow.count(gw, route, &call.tenant, "paused", |s| s.paused += 1);
                return;
            }
        }
        if call.body.len() > rt.config.shadow.max_body_bytes {
            shadow.count(gw, route, &call.tenant, "skipped", |s| s.skipped += 1);
            return;
        }
        let limit = rt.config.shadow.max_concurrency + rt.config.shadow.max_queue;
        if shadow.in_system.fetch_add(1, Ordering::AcqRel) >= limit {
            shadow.in_system.fetch_sub(1, Ordering::AcqRel);
            shadow.count(gw, route, &call.tenant, "dropped", |s| s.dropped += 1);
            return;
        }
        // A child of the request span, when traces are exported: the copy runs later.
        let span =
            crate::telemetry::enabled().then(|| crate::telemetry::shadow_span(route, &call.tenant));
        let copy = {
            let gw = gw.clone();
            let rt = rt.clone();
            async move {
                let permit = rt.shadow_permits.clone().acquire_owned().await;
                run_copy(&gw, &rt, call, legacy_status, legacy_body).await;
                drop(permit);
                gw.shadow.in_system.fetch_sub(1, Ordering::AcqRel);
            }
        };
        let copy = {
            use futures_util::FutureExt;
            use tracing::Instrument;
            match span {
                Some(span) => copy.instrument(span).left_future(),
                None => copy.right_future(),
            }
        };
        match shadow.lane.get_or_init(Lane::start) {
            Some(lane) => lane.spawn(copy),
            None => {
                tokio::spawn(copy);
            }
        }
    }

    /// Copies running or waiting for a permit now.
    pub fn queue_depth(&self) -> usize {
        self.in_system.load(Ordering::Acquire)
    }

    /// Whether the route's kill switch pauses its copies now.
    pub fn kill_switch_engaged(&self, route: &str) -> bool {
        self.lock()
            .kill
            .get(route)
            .is_some_and(|k| k.paused(Instant::now()))
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
        let kill_switches = [Route::UserApi, Route::Registry]
            .into_iter()
            .map(|r| {
                let k = st.kill.get(r.name());
                (
                    r.name(),
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
            "in_flight": self.in_system.load(Ordering::Acquire),
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

/// Translates and sends the copy, compares, records. Runs off the request path.
async fn run_copy(
    gw: &Arc<Gateway>,
    rt: &Arc<Runtime>,
    call: Call,
    legacy_status: u16,
    legacy_body: Bytes,
) {
    let route = call.route.name();
    if call.writes && !rt.shadow_writes {
        // The config check makes this unreachable; never send a write to the live v4.
        return;
    }
    let target = Target {
        upstream: &rt.shadow_copies,
        shadow_of: Some(&call.request_id),
    };
    let started = Instant::now();
    let body = Full::new(call.body.clone());
    let resp: Response<Body> = match call.route {
        Route::UserApi => {
            crate::routes::user_api::handle(
                rt.clone(),
                &gw.metrics,
                call.parts.clone(),
                body,
                &call.raw_id,
                target,
            )
            .await
        }
        Route::Registry => {
            crate::routes::registry::handle(
                rt.clone(),
                &gw.metrics,
                call.parts.clone(),
                body,
                target,
            )
            .await
        }
    };
    let latency_ms = started.elapsed().as_millis() as u64;
    if resp.extensions().get::<Refused>().is_some() {
        gw.shadow
            .count(gw, route, &call.tenant, "refused", |s| s.refused += 1);
        return;
    }
    let v4_status = resp.status().as_u16();
    let v4_body = resp
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    // A HEAD answer has no body on either side: only the status is compared.
    let v4_body = if call.parts.method == http::Method::HEAD {
        Bytes::new()
    } else {
        v4_body
    };
    let v4_error = v4_status >= 500;

    let rules = match call.route {
        Route::UserApi => compare::Rules {
            noise: &rt.mappings.user_api.shadow_noise,
            sets: &rt.mappings.user_api.read.shadow_sets,
        },
        Route::Registry => compare::Rules {
            noise: &rt.mappings.registry.shadow_noise,
            sets: &[],
        },
    };
    let legacy = compare::normalise(&compare::body_value(&legacy_body), rules);
    let v4 = compare::normalise(&compare::body_value(&v4_body), rules);
    let mut differences = compare::diff(&legacy, &v4);
    if legacy_status != v4_status {
        differences.insert(
            0,
            Difference {
                path: "status".into(),
                legacy: json!(legacy_status),
                v4: json!(v4_status),
            },
        );
    }

    let cfg = rt.config.shadow.route(route);
    let (secret_keys, secret_values) = secrets(rt, &call.parts, &call.body);
    // Masked and serialised before any lock is taken.
    let record = (!differences.is_empty()).then(|| {
        let values: Vec<&str> = secret_values.iter().map(String::as_str).collect();
        let mut diffs = serde_json::to_value(&differences).unwrap_or(Value::Null);
        compare::mask(&mut diffs, &secret_keys, &values);
        json!({
            "route": route,
            "tenant": call.tenant,
            "request_id": call.request_id,
            "differences": diffs,
        })
    });
    let line = record.as_ref().map(Value::to_string);
    let mut st = gw.shadow.lock();
    if let Some(trip) = st.kill.entry(route.to_string()).or_default().record(
        &cfg,
        v4_error,
        latency_ms,
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
    let row = st.row(route, &call.tenant);
    row.compared += 1;
    row.record_history(differences.is_empty());
    if let Some(record) = &record {
        for d in record["differences"].as_array().into_iter().flatten() {
            let Some(path) = d["path"].as_str() else {
                continue;
            };
            if row.examples.len() < MAX_EXAMPLES && !row.examples.contains_key(path) {
                row.examples.insert(path.to_string(), example_text(d));
            }
        }
    }
    if v4_error {
        row.v4_errors += 1;
    }
    if differences.is_empty() {
        row.matched += 1;
    } else {
        row.differing += 1;
        for d in &differences {
            if row.paths.len() < MAX_PATHS || row.paths.contains_key(&d.path) {
                *row.paths.entry(d.path.clone()).or_default() += 1;
            }
        }
    }
    drop(st);
    if let (Some(line), Some(path)) = (&line, &rt.config.shadow.diff_file) {
        let mut diffs = gw.shadow.diffs.lock().unwrap_or_else(|e| e.into_inner());
        if diffs.as_ref().is_none_or(|w| w.path() != path.as_path()) {
            *diffs = Some(DiffWriter::new(path, rt.config.shadow.diff_file_max_bytes));
        }
        if let Some(w) = diffs.as_mut() {
            if let Err(e) = w.write_line(line.as_bytes()) {
                tracing::warn!(error = %e, "cannot write the shadow diff file");
            }
        }
    }
    gw.metrics.shadow(route, &call.tenant, "compared");
    gw.metrics.shadow(
        route,
        &call.tenant,
        if differences.is_empty() {
            "matched"
        } else {
            "differing"
        },
    );
    if v4_error {
        gw.metrics.shadow(route, &call.tenant, "v4_error");
    }
    if let Some(record) = record {
        let paths: Vec<&str> = differences.iter().map(|d| d.path.as_str()).collect();
        tracing::info!(
            target: "shadow",
            route,
            tenant = %call.tenant,
            request_id = %call.request_id,
            paths = ?paths,
            diff = %record["differences"],
            "shadow difference"
        );
    }
}

/// The tenant as a label: a configured one (a `[[tenants]]` entry or a `[[modes]]` rule's
/// tenant), or `other`, so a client inventing `X-ClientCode` values or Hosts cannot grow the
/// metric's label set or the report.
fn tenant_label(rt: &Runtime, route: Route, tenant: &str) -> String {
    let modes = rt
        .config
        .modes
        .rules
        .iter()
        .filter_map(|r| r.tenant.as_deref());
    let known = match route {
        Route::UserApi => modes
            .chain(rt.config.tenants.iter().map(|t| t.client_code.as_str()))
            .any(|t| t.eq_ignore_ascii_case(tenant)),
        Route::Registry => modes
            .chain(rt.config.tenants.iter().map(|t| t.host.as_str()))
            .any(|t| {
                t.eq_ignore_ascii_case(tenant) || crate::tenant::split_host_port(t).0 == tenant
            }),
    };
    if known {
        tenant.to_string()
    } else {
        "other".to_string()
    }
}

/// Secret key names (body fields marked secret in the mappings) and the secret values of
/// this request: those fields' values, secret query inputs (the reset id), and the
/// `Authorization` value with its credential alone.
fn secrets(rt: &Runtime, parts: &http::request::Parts, body: &[u8]) -> (Vec<String>, Vec<String>) {
    use crate::mapping::registry::InputSource;
    let mut keys: Vec<String> = rt.mappings.user_api.secret_fields.clone();
    let mut query_names: Vec<String> = Vec::new();
    for a in &rt.mappings.registry.actions {
        for i in a.inputs.iter().filter(|i| i.secret) {
            match i.from {
                InputSource::Body => keys.extend(i.names().map(str::to_string)),
                InputSource::Query => query_names.extend(i.names().map(str::to_string)),
                InputSource::Tenant => {}
            }
        }
    }
    keys.push("authorization".into());
    let mut values: Vec<String> = crate::redact::authorization_secrets(&parts.headers)
        .into_iter()
        .map(str::to_string)
        .collect();
    if let Some(q) = parts.uri.query() {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            if query_names.iter().any(|n| *n == k) {
                values.push(v.into_owned());
            }
        }
    }
    if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) {
        for (k, v) in m {
            if keys.iter().any(|s| s.eq_ignore_ascii_case(&k)) {
                if let Value::String(s) = v {
                    values.push(s);
                }
            }
        }
    }
    (keys, values)
}
