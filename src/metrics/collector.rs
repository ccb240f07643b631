//! The scrape-time side of the shards: adds every thread's shard up and writes the sums as
//! the families they always were, so dashboards never saw the sharding.

use std::collections::BTreeMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::MetricType;

use super::labels::{AuditLabels, RequestLabels, UpstreamLabels};
use super::shard::{bucket_bounds, Hist, Shards};

type NoExemplars = std::collections::HashMap<usize, Exemplar<NoLabelSet, f64>>;

/// Adds the shards up at scrape time and writes them as the families they always were:
/// `requests`, `request_duration_seconds`, `in_flight_requests`, `upstream_duration_seconds`,
/// `audit_events`.
#[derive(Debug)]
pub(super) struct ShardCollector {
    pub(super) shards: Shards,
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
