//! Prometheus metrics, one registry per gateway instance (no global recorder, so several
//! gateways in one test process keep their own figures). Labels are bounded: route names,
//! status codes, event codes, never ids or values.
//!
//! The per-request figures (requests, latency, in-flight, upstream calls, audit events) are
//! kept in one shard per thread and added up only when `/metrics` is scraped. A
//! shared counter is a cache line every core writes on every request: on 8 cores that alone
//! costs more than the translation. A shard is touched by its own thread only (its mutex is
//! never contended except for the instant a scrape reads it), so a request writes no memory
//! another core reads. Rare figures (shadow results, written by the shadow lane) stay in
//! ordinary prometheus-client families.
//!
//! # Layout
//! - `labels`: the label set of each family ([`UpstreamOutcome`] is the public one).
//! - `shard`: one thread's figures (counts and latency histograms).
//! - `collector`: the scrape-time sum of the shards, written as the families.
//! - `fleet`: build, configuration, reload and shadow-lane families.
//! - here: [`Metrics`], the registry, and what a request records.

mod collector;
mod fleet;
mod labels;
mod shard;

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use thread_local::ThreadLocal;

use collector::ShardCollector;
use fleet::Fleet;
use labels::{CutoverLabels, RateLimitLabels, RequestLabels, ShadowLabels};
pub use labels::{TenantLabel, UpstreamOutcome};
use shard::{cell, Hist, Shard, Shards};

pub struct Metrics {
    registry: Registry,
    shards: Shards,
    shadow: Family<ShadowLabels, Counter>,
    cutover_ready: Family<CutoverLabels, Gauge>,
    rate_limited: Family<RateLimitLabels, Counter>,
    fallback_active: Family<CutoverLabels, Gauge>,
    fallback: Family<CutoverLabels, Counter>,
    capture_lines: Family<[(&'static str, &'static str); 1], Counter>,
    fleet: Fleet,
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
            "Shadow calls by route, tenant and result (compared, matched, differing, v4_error, refused; not shadowed: writes_off, sampled_out, body_too_large, queue_full, kill_switch)",
            shadow.clone(),
        );
        let cutover_ready = Family::<CutoverLabels, Gauge>::default();
        registry.register(
            "cutover_ready",
            "1 when the shadow report's row meets shadow.ready_min_compared and shadow.ready_max_diff_ratio since the last configuration change (sampled at scrape time)",
            cutover_ready.clone(),
        );
        registry.register(
            "rate_limited",
            "Calls refused with 429 by a rate limit, by action and the key that was over (email, user, id, ip)",
            rate_limited.clone(),
        );
        let fallback_active = Family::<CutoverLabels, Gauge>::default();
        registry.register(
            "fallback_active",
            "1 while the row's calls go to the legacy backend because v4 failed ([fallback]; cooling down or probing), 0 once back on v4 (sampled at scrape time)",
            fallback_active.clone(),
        );
        let fallback = Family::<CutoverLabels, Counter>::default();
        registry.register(
            "fallback",
            "Times a row switched to the legacy backend because v4 failed ([fallback])",
            fallback.clone(),
        );
        let capture_lines = Family::<[(&'static str, &'static str); 1], Counter>::default();
        registry.register(
            "capture_lines",
            "Capture lines by outcome: written, dropped (the writer was capture.buffer_lines behind), failed (the file could not be written)",
            capture_lines.clone(),
        );
        let fleet = Fleet::register(&mut registry);
        Arc::new(Self {
            fallback_active,
            fallback,
            registry,
            shards,
            fleet,
            shadow,
            cutover_ready,
            rate_limited,
            capture_lines,
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
    pub fn request_done(
        &self,
        route: &'static str,
        status: u16,
        tenant: &TenantLabel,
        mode: &'static str,
        secs: f64,
    ) {
        self.with_shard(|s| {
            s.in_flight -= 1;
            let cell = cell(
                &mut s.requests,
                |(l, _, _)| {
                    l.status == status
                        && l.route == route
                        && l.mode == mode
                        // The same label is the same pointer, but for a reload's new one.
                        && (std::sync::Arc::ptr_eq(&l.tenant.0, &tenant.0)
                            || l.tenant.0 == tenant.0)
                },
                || {
                    let labels = RequestLabels {
                        route,
                        status,
                        tenant: tenant.clone(),
                        mode,
                    };
                    (labels, 0, Hist::default())
                },
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

    /// Scrape-time readiness per shadow report row: (route, part, tenant, ready). Rows gone
    /// from the report (a reset, a reload) leave the gauge.
    pub fn sample_cutover_ready<'a>(
        &self,
        rows: impl Iterator<Item = (&'a str, &'a str, &'a str, bool)>,
    ) {
        self.cutover_ready.clear();
        for (route, part, tenant, ready) in rows {
            self.cutover_ready
                .get_or_create(&CutoverLabels {
                    route: route.to_string(),
                    part: part.to_string(),
                    tenant: tenant.to_string(),
                })
                .set(i64::from(ready));
        }
    }

    pub fn rate_limited(&self, action: &str, key: &'static str) {
        self.rate_limited
            .get_or_create(&RateLimitLabels {
                action: action.to_string(),
                key,
            })
            .inc();
    }

    /// A row switched to the legacy backend.
    pub fn fallback_opened(&self, route: &str, part: &str, tenant: &str) {
        self.fallback
            .get_or_create(&CutoverLabels {
                route: route.to_string(),
                part: part.to_string(),
                tenant: tenant.to_string(),
            })
            .inc();
    }

    /// Scrape-time fallback state per row: (route, part, tenant, on legacy). Rows stay once
    /// seen: a row that fell back once keeps showing 0 after, which an alert can tell from a
    /// row never watched.
    pub fn sample_fallback<'a>(
        &self,
        rows: impl Iterator<Item = (&'a str, &'a str, &'a str, bool)>,
    ) {
        self.fallback_active.clear();
        for (route, part, tenant, active) in rows {
            let labels = CutoverLabels {
                route: route.to_string(),
                part: part.to_string(),
                tenant: tenant.to_string(),
            };
            // The row's counter from 0, so `increase` sees its first switch.
            let _ = self.fallback.get_or_create(&labels);
            self.fallback_active
                .get_or_create(&labels)
                .set(i64::from(active));
        }
    }

    /// One capture line: `written`, `dropped` or `failed`.
    pub fn capture_line(&self, outcome: &'static str) {
        self.capture_lines
            .get_or_create(&[("outcome", outcome)])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_of_several_threads_add_up() {
        let m = Metrics::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                let m = &m;
                s.spawn(move || {
                    for _ in 0..10 {
                        m.request_started();
                        m.request_done(
                            "user-api",
                            200,
                            &TenantLabel(std::sync::Arc::from("other")),
                            "translate",
                            0.001,
                        );
                        m.observe_upstream("v4.password", UpstreamOutcome::Status(200), 0.001);
                        m.audit("user-api", "CHGPWD", "4609+4010", "applied");
                    }
                });
            }
        });
        m.request_started();
        let text = m.render();
        assert!(
            text.contains("gateway_requests_total{route=\"user-api\",status=\"200\",tenant=\"other\",mode=\"translate\"} 40"),
            "{text}"
        );
        assert!(
            text.contains(
                "gateway_request_duration_seconds_count{route=\"user-api\",status=\"200\",tenant=\"other\",mode=\"translate\"} 40"
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
