//! Prometheus metrics, one registry per gateway instance (no global recorder, so several
//! gateways in one test process keep their own figures). Labels are bounded: route names,
//! status codes, event codes, never ids or values.
//!
//! The per-request figures (requests, latency, in-flight, upstream calls, audit events) are
//! kept in one shard per thread and added up only when `/metrics` is scraped (issue #15). A
//! shared counter is a cache line every core writes on every request: on 8 cores that alone
//! costs more than the translation. A shard is touched by its own thread only (its mutex is
//! never contended except for the instant a scrape reads it), so a request writes no memory
//! another core reads. Rare figures (shadow results, written by the shadow lane) stay in
//! ordinary prometheus-client families.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, LabelValueEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use thread_local::ThreadLocal;

/// How an upstream call ended: its HTTP status, or why there is none. A type rather than a
/// string so the hot path does not format a status code per call.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum UpstreamOutcome {
    Status(u16),
    Timeout,
    Unreachable,
    Invalid,
}

impl EncodeLabelValue for UpstreamOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        match self {
            Self::Status(code) => write!(encoder, "{code}"),
            Self::Timeout => encoder.write_str("timeout"),
            Self::Unreachable => encoder.write_str("unreachable"),
            Self::Invalid => encoder.write_str("invalid"),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct RequestLabels {
    /// A route name from the code (`RouteLabel`), never from a request: bounded, and no
    /// allocation per request.
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct UpstreamLabels {
    call: String,
    outcome: UpstreamOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct AuditLabels {
    route: String,
    legacy_event: String,
    v4_events: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShadowLabels {
    route: String,
    tenant: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConfigLabels {
    hash: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteOnly {
    route: &'static str,
}

/// Upper bounds of the latency buckets: 0.25 ms doubling to ~8 s, then +Inf.
const BUCKETS: usize = 16;

fn bucket_bounds() -> [f64; BUCKETS] {
    let mut b = [0.0; BUCKETS];
    let mut v = 0.00025;
    for slot in &mut b {
        *slot = v;
        v *= 2.0;
    }
    b
}

/// A latency histogram of one shard: plain integers, added up at scrape time.
#[derive(Clone, Debug)]
struct Hist {
    /// Per bucket (not cumulative), the last one is +Inf.
    counts: [u64; BUCKETS + 1],
    sum: f64,
}

impl Default for Hist {
    fn default() -> Self {
        Self {
            counts: [0; BUCKETS + 1],
            sum: 0.0,
        }
    }
}

impl Hist {
    fn observe(&mut self, secs: f64) {
        // Bucket i holds values <= 0.25 ms * 2^i: found from the exponent, no search.
        let i = if secs <= 0.00025 {
            0
        } else {
            ((secs / 0.00025).log2().ceil() as usize).min(BUCKETS)
        };
        self.counts[i] += 1;
        self.sum += secs;
    }

    fn add(&mut self, other: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.sum += other.sum;
    }

    fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// One thread's per-request figures. Few distinct label sets exist (routes × statuses), so a
/// vector searched linearly beats hashing, and a label string is allocated once per shard,
/// not per request.
#[derive(Default)]
struct Shard {
    in_flight: i64,
    requests: Vec<(RequestLabels, u64, Hist)>,
    upstream: Vec<(String, UpstreamOutcome, Hist)>,
    audit: Vec<([String; 4], u64)>,
}

type Shards = Arc<ThreadLocal<Mutex<Shard>>>;

/// The shard's cell for a label set: found by a linear search, added on first use (the one
/// time its label strings are allocated).
fn cell<T>(cells: &mut Vec<T>, is: impl Fn(&T) -> bool, new: impl FnOnce() -> T) -> &mut T {
    match cells.iter().position(is) {
        Some(i) => &mut cells[i],
        None => {
            cells.push(new());
            cells.last_mut().expect("just pushed")
        }
    }
}
type NoExemplars = std::collections::HashMap<usize, Exemplar<NoLabelSet, f64>>;

pub struct Metrics {
    registry: Registry,
    shards: Shards,
    shadow: Family<ShadowLabels, Counter>,
    rate_limited: Family<RateLimitLabels, Counter>,
    fleet: Fleet,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RateLimitLabels {
    action: String,
    key: &'static str,
}

/// What a fleet's dashboards and alerts need beyond the per-request figures: which build and
/// which configuration each instance runs, whether reloads work, and shadow-lane state.
/// None of it is touched per request: set at start and reload, or sampled at scrape time.
struct Fleet {
    config_info: Family<ConfigLabels, Gauge>,
    reloads: Family<ReloadLabels, Counter>,
    last_reload_success: Gauge,
    last_reload_successful: Gauge,
    shadow_queue_depth: Gauge,
    shadow_queue_capacity: Gauge,
    kill_switch: Family<RouteOnly, Gauge>,
    /// The hash `config_info` shows, for pages that name it.
    hash: std::sync::Mutex<String>,
}

impl Fleet {
    fn register(registry: &mut Registry) -> Self {
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "build_info",
            "Always 1; the label says which release this instance runs",
            build,
        );
        let f = Self {
            config_info: Family::default(),
            reloads: Family::default(),
            last_reload_success: Gauge::default(),
            last_reload_successful: Gauge::default(),
            shadow_queue_depth: Gauge::default(),
            shadow_queue_capacity: Gauge::default(),
            kill_switch: Family::default(),
            hash: std::sync::Mutex::new(String::new()),
        };
        // Both series from the start, so `increase()` sees the first failure.
        for result in ["success", "failure"] {
            drop(f.reloads.get_or_create(&ReloadLabels { result }));
        }
        f.last_reload_successful.set(1);
        registry.register(
            "config_info",
            "Always 1; the label is the SHA-256 (first 16 hex digits) of the configuration file and mapping files in use",
            f.config_info.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads (SIGHUP, POST /_gateway/reload, file watch) by result (success, failure)",
            f.reloads.clone(),
        );
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load (start or reload)",
            f.last_reload_success.clone(),
        );
        registry.register(
            "config_last_reload_successful",
            "1 if the last reload succeeded (or none was tried), 0 if it was refused",
            f.last_reload_successful.clone(),
        );
        registry.register(
            "shadow_queue_depth",
            "Shadow copies running or waiting now (sampled at scrape time)",
            f.shadow_queue_depth.clone(),
        );
        registry.register(
            "shadow_queue_capacity",
            "Shadow copies that may run or wait at once (shadow.max_concurrency + shadow.max_queue); beyond it copies are dropped",
            f.shadow_queue_capacity.clone(),
        );
        registry.register(
            "shadow_kill_switch_engaged",
            "1 while the route's shadow kill switch pauses its copies (sampled at scrape time)",
            f.kill_switch.clone(),
        );
        f
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("gateway");
        let shards: Shards = Arc::new(ThreadLocal::new());
        let shadow = Family::<ShadowLabels, Counter>::default();
        registry.register_collector(Box::new(ShardCollector {
            shards: shards.clone(),
        }));
        let rate_limited = Family::<RateLimitLabels, Counter>::default();
        registry.register(
            "shadow",
            "Shadow copies by route, tenant and result (compared, matched, differing, v4_error, dropped, skipped, refused, paused)",
            shadow.clone(),
        );
        registry.register(
            "rate_limited",
            "Calls refused with 429 by a rate limit, by action and the key that was over (email, user, id, ip)",
            rate_limited.clone(),
        );
        let fleet = Fleet::register(&mut registry);
        Arc::new(Self {
            registry,
            shards,
            fleet,
            shadow,
            rate_limited,
        })
    }

    /// This thread's shard. A poisoned lock (a panic while recording, which nothing here
    /// does) still holds valid integers: keep counting.
    fn with_shard<R>(&self, f: impl FnOnce(&mut Shard) -> R) -> R {
        let shard = self.shards.get_or_default();
        let mut guard = shard.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// A request starts: counted in flight until [`Metrics::request_done`].
    pub fn request_started(&self) {
        self.with_shard(|s| s.in_flight += 1);
    }

    /// A request ended without an answer (the client went away).
    pub fn request_abandoned(&self) {
        self.with_shard(|s| s.in_flight -= 1);
    }

    /// A request was answered: one lock for the in-flight gauge, counter and histogram.
    pub fn request_done(&self, route: &'static str, status: u16, secs: f64) {
        self.with_shard(|s| {
            s.in_flight -= 1;
            let cell = cell(
                &mut s.requests,
                |(l, _, _)| l.status == status && l.route == route,
                || (RequestLabels { route, status }, 0, Hist::default()),
            );
            cell.1 += 1;
            cell.2.observe(secs);
        });
    }

    pub fn observe_upstream(&self, call: &str, outcome: UpstreamOutcome, secs: f64) {
        self.with_shard(|s| {
            let cell = cell(
                &mut s.upstream,
                |(c, o, _)| *o == outcome && c == call,
                || (call.to_string(), outcome, Hist::default()),
            );
            cell.2.observe(secs);
        });
    }

    pub fn audit(&self, route: &str, legacy_event: &str, v4_events: &str, outcome: &str) {
        let key = [route, legacy_event, v4_events, outcome];
        self.with_shard(|s| {
            cell(
                &mut s.audit,
                |(k, _)| k.iter().zip(key.iter()).all(|(a, b)| a == b),
                || (key.map(str::to_string), 0),
            )
            .1 += 1;
        });
    }

    pub fn shadow(&self, route: &str, tenant: &str, result: &str) {
        self.shadow
            .get_or_create(&ShadowLabels {
                route: route.to_string(),
                tenant: tenant.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    pub fn rate_limited(&self, action: &str, key: &'static str) {
        self.rate_limited
            .get_or_create(&RateLimitLabels {
                action: action.to_string(),
                key,
            })
            .inc();
    }

    /// A configuration was loaded (at start or by a reload): its hash becomes the one
    /// `gateway_config_info` reports, and the success time is now.
    pub fn config_loaded(&self, hash: &str, reload: bool) {
        *self.fleet.hash.lock().unwrap_or_else(|e| e.into_inner()) = hash.to_string();
        self.fleet.config_info.clear();
        self.fleet
            .config_info
            .get_or_create(&ConfigLabels {
                hash: hash.to_string(),
            })
            .set(1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.fleet.last_reload_success.set(now);
        self.fleet.last_reload_successful.set(1);
        if reload {
            self.fleet
                .reloads
                .get_or_create(&ReloadLabels { result: "success" })
                .inc();
        }
    }

    /// The hash of the configuration in use (as `gateway_config_info` reports it).
    pub fn config_hash(&self) -> String {
        self.fleet
            .hash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A reload was refused; the running configuration (and its hash) stays.
    pub fn reload_failed(&self) {
        self.fleet.last_reload_successful.set(0);
        self.fleet
            .reloads
            .get_or_create(&ReloadLabels { result: "failure" })
            .inc();
    }

    /// Scrape-time samples of the shadow lane (cheaper than updating a gauge per copy).
    pub fn sample_shadow(&self, queue_depth: usize, queue_capacity: usize) {
        self.fleet.shadow_queue_depth.set(queue_depth as i64);
        self.fleet.shadow_queue_capacity.set(queue_capacity as i64);
    }

    pub fn sample_kill_switch(&self, route: &'static str, engaged: bool) {
        self.fleet
            .kill_switch
            .get_or_create(&RouteOnly { route })
            .set(i64::from(engaged));
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Adds the shards up at scrape time and writes them as the families they always were:
/// `requests`, `request_duration_seconds`, `in_flight_requests`, `upstream_duration_seconds`,
/// `audit_events`.
#[derive(Debug)]
struct ShardCollector {
    shards: Shards,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shard")
    }
}

impl Collector for ShardCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut in_flight = 0i64;
        let mut requests: BTreeMap<RequestLabels, (u64, Hist)> = BTreeMap::new();
        let mut upstream: BTreeMap<UpstreamLabels, Hist> = BTreeMap::new();
        let mut audit: BTreeMap<AuditLabels, u64> = BTreeMap::new();
        for shard in self.shards.iter() {
            let s = shard.lock().unwrap_or_else(|p| p.into_inner());
            in_flight += s.in_flight;
            for (l, n, h) in &s.requests {
                let e = requests.entry(l.clone()).or_default();
                e.0 += n;
                e.1.add(h);
            }
            for (call, outcome, h) in &s.upstream {
                let key = UpstreamLabels {
                    call: call.clone(),
                    outcome: *outcome,
                };
                upstream.entry(key).or_default().add(h);
            }
            for (k, n) in &s.audit {
                let [route, legacy_event, v4_events, outcome] = k.clone();
                let key = AuditLabels {
                    route,
                    legacy_event,
                    v4_events,
                    outcome,
                };
                *audit.entry(key).or_default() += n;
            }
        }
        let bounds = bucket_bounds();
        let buckets = |h: &Hist| -> Vec<(f64, u64)> {
            bounds
                .iter()
                .copied()
                .chain(std::iter::once(f64::MAX))
                .zip(h.counts.iter().copied())
                .collect()
        };

        let mut m = encoder.encode_descriptor(
            "requests",
            "Requests answered, by route and HTTP status",
            None,
            MetricType::Counter,
        )?;
        for (labels, (n, _)) in &requests {
            m.encode_family(labels)?
                .encode_counter::<NoLabelSet, _, u64>(n, None)?;
        }
        let mut m = encoder.encode_descriptor(
            "request_duration_seconds",
            "Time to answer a request, by route and HTTP status",
            None,
            MetricType::Histogram,
        )?;
        for (labels, (_, h)) in &requests {
            m.encode_family(labels)?.encode_histogram(
                h.sum,
                h.count(),
                &buckets(h),
                None::<&NoExemplars>,
            )?;
        }
        let m = encoder.encode_descriptor(
            "in_flight_requests",
            "Requests being handled now",
            None,
            MetricType::Gauge,
        )?;
        let mut m = m;
        m.encode_gauge(&in_flight)?;
        let mut m = encoder.encode_descriptor(
            "upstream_duration_seconds",
            "Upstream call latency, by call and outcome (HTTP status, timeout, unreachable, invalid)",
            None,
            MetricType::Histogram,
        )?;
        for (labels, h) in &upstream {
            m.encode_family(labels)?.encode_histogram(
                h.sum,
                h.count(),
                &buckets(h),
                None::<&NoExemplars>,
            )?;
        }
        let mut m = encoder.encode_descriptor(
            "audit_events",
            "Translated operations by legacy event, the v4 events they cause, and outcome",
            None,
            MetricType::Counter,
        )?;
        for (labels, n) in &audit {
            m.encode_family(labels)?
                .encode_counter::<NoLabelSet, _, u64>(n, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_match_their_bounds() {
        let bounds = bucket_bounds();
        for (i, b) in bounds.iter().enumerate() {
            let mut h = Hist::default();
            h.observe(*b);
            assert_eq!(h.counts[i], 1, "a value equal to bound {i} belongs in it");
            let mut h = Hist::default();
            h.observe(b * 1.01);
            assert_eq!(h.counts[(i + 1).min(BUCKETS)], 1, "just above bound {i}");
        }
        let mut h = Hist::default();
        h.observe(1e9);
        assert_eq!(h.counts[BUCKETS], 1);
    }

    #[test]
    fn shards_of_several_threads_add_up() {
        let m = Metrics::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                let m = &m;
                s.spawn(move || {
                    for _ in 0..10 {
                        m.request_started();
                        m.request_done("user-api", 200, 0.001);
                        m.observe_upstream("v4.password", UpstreamOutcome::Status(200), 0.001);
                        m.audit("user-api", "CHGPWD", "4609+4010", "applied");
                    }
                });
            }
        });
        m.request_started();
        let text = m.render();
        assert!(
            text.contains("gateway_requests_total{route=\"user-api\",status=\"200\"} 40"),
            "{text}"
        );
        assert!(
            text.contains(
                "gateway_request_duration_seconds_count{route=\"user-api\",status=\"200\"} 40"
            ),
            "{text}"
        );
        assert!(text.contains("gateway_in_flight_requests 1"), "{text}");
        assert!(
            text.contains(
                "gateway_upstream_duration_seconds_count{call=\"v4.password\",outcome=\"200\"} 40"
            ),
            "{text}"
        );
        assert!(text.contains("gateway_audit_events_total{route=\"user-api\",legacy_event=\"CHGPWD\",v4_events=\"4609+4010\",outcome=\"applied\"} 40"), "{text}");
        assert!(text.contains("# TYPE gateway_requests counter"), "{text}");
        assert!(
            text.contains("# TYPE gateway_request_duration_seconds histogram"),
            "{text}"
        );
    }
}
