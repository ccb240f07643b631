//! Prometheus metrics, one registry per gateway instance (no global recorder, so several
//! gateways in one test process keep their own figures). Labels are bounded: route names,
//! status codes, event codes, never ids or values.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// A route name from the code (`RouteLabel`), never from a request: bounded, and no
    /// allocation per request.
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    call: String,
    outcome: UpstreamOutcome,
}

/// How an upstream call ended: its HTTP status, or why there is none. A type rather than a
/// string so the hot path does not format a status code per call.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
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

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~8 s
    Histogram::new(exponential_buckets(0.00025, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily<RequestLabels>,
    in_flight: Gauge,
    upstream: HistogramFamily<UpstreamLabels>,
    audit: Family<AuditLabels, Counter>,
    shadow: Family<ShadowLabels, Counter>,
    fleet: Fleet,
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
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration = HistogramFamily::<RequestLabels>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let in_flight = Gauge::default();
        let upstream = HistogramFamily::<UpstreamLabels>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let audit = Family::<AuditLabels, Counter>::default();
        let shadow = Family::<ShadowLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by route and HTTP status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer a request, by route and HTTP status",
            request_duration.clone(),
        );
        registry.register(
            "in_flight_requests",
            "Requests being handled now",
            in_flight.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Upstream call latency, by call and outcome (HTTP status, timeout, unreachable, invalid)",
            upstream.clone(),
        );
        registry.register(
            "audit_events",
            "Translated operations by legacy event, the v4 events they cause, and outcome",
            audit.clone(),
        );
        registry.register(
            "shadow",
            "Shadow copies by route, tenant and result (compared, matched, differing, v4_error, dropped, skipped, refused, paused)",
            shadow.clone(),
        );
        let fleet = Fleet::register(&mut registry);
        Arc::new(Self {
            registry,
            fleet,
            requests,
            request_duration,
            in_flight,
            upstream,
            audit,
            shadow,
        })
    }

    pub fn observe_request(&self, route: &'static str, status: u16, secs: f64) {
        let labels = RequestLabels { route, status };
        self.requests.get_or_create(&labels).inc();
        self.request_duration.get_or_create(&labels).observe(secs);
    }

    pub fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }

    pub fn observe_upstream(&self, call: &str, outcome: UpstreamOutcome, secs: f64) {
        self.upstream
            .get_or_create(&UpstreamLabels {
                call: call.to_string(),
                outcome,
            })
            .observe(secs);
    }

    pub fn audit(&self, route: &str, legacy_event: &str, v4_events: &str, outcome: &str) {
        self.audit
            .get_or_create(&AuditLabels {
                route: route.to_string(),
                legacy_event: legacy_event.to_string(),
                v4_events: v4_events.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
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
