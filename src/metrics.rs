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
    rate_limited: Family<RateLimitLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RateLimitLabels {
    action: String,
    key: &'static str,
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
        let rate_limited = Family::<RateLimitLabels, Counter>::default();
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
        registry.register(
            "rate_limited",
            "Calls refused with 429 by a rate limit, by action and the key that was over (email, user, id, ip)",
            rate_limited.clone(),
        );
        Arc::new(Self {
            registry,
            requests,
            request_duration,
            in_flight,
            upstream,
            audit,
            shadow,
            rate_limited,
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

    pub fn rate_limited(&self, action: &str, key: &'static str) {
        self.rate_limited
            .get_or_create(&RateLimitLabels {
                action: action.to_string(),
                key,
            })
            .inc();
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
