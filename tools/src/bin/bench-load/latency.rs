//! Latency recording on an HDR histogram, with the exact mean and maximum kept beside it.
//!
//! The histogram's own mean and maximum are bucket-rounded; the report's `mean` and `max` have
//! always been exact, and quantiles are clamped to the exact maximum so that `p999` can never
//! exceed `max` in one report.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::json;

/// The largest latency the histogram holds without clamping: an hour, far past any run's
/// hard stop (duration + grace).
const HIGHEST_NS: u64 = 3_600 * 1_000_000_000;

/// Two significant digits: at most 1/128 (0.8 %) relative error per value, about 36 KiB of
/// counts per connection slot (the hand-written log-linear histogram had 1.6 %, 25 KiB).
const SIGFIG: u8 = 2;

/// Latencies in nanoseconds.
#[derive(Clone)]
pub struct Latency {
    hist: Histogram<u64>,
    sum_ns: u128,
    max_ns: u64,
}

impl Latency {
    pub fn new() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, HIGHEST_NS, SIGFIG)
                .expect("static histogram bounds are valid"),
            sum_ns: 0,
            max_ns: 0,
        }
    }

    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // Zero is below the histogram's lowest discernible value; it counts in the first bucket.
        self.hist.saturating_record(ns.max(1));
        self.sum_ns += u128::from(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    pub fn merge(&mut self, o: &Latency) {
        self.hist
            .add(&o.hist)
            .expect("histograms with the same bounds always add");
        self.sum_ns += o.sum_ns;
        self.max_ns = self.max_ns.max(o.max_ns);
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.count() == 0 {
            return 0;
        }
        self.hist.value_at_quantile(q).min(self.max_ns)
    }

    /// The `latency_us` object of the report, in microseconds rounded to 0.1.
    pub fn summary_us(&self) -> serde_json::Value {
        let us = |ns: u64| (ns as f64 / 1000.0 * 10.0).round() / 10.0;
        let total = self.count();
        json!({
            "count": total,
            "mean": if total == 0 { 0.0 } else { us((self.sum_ns / u128::from(total)) as u64) },
            "p50": us(self.quantile_ns(0.50)),
            "p90": us(self.quantile_ns(0.90)),
            "p99": us(self.quantile_ns(0.99)),
            "p999": us(self.quantile_ns(0.999)),
            "max": us(self.max_ns),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_one_percent_and_never_above_max() {
        let mut h = Latency::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile_ns(0.5) as f64 / 1000.0;
        let p99 = h.quantile_ns(0.99) as f64 / 1000.0;
        assert!((p50 - 500.0).abs() <= 5.0, "{p50}");
        assert!((p99 - 990.0).abs() <= 10.0, "{p99}");
        assert_eq!(h.quantile_ns(1.0), 1_000_000, "clamped to the exact max");
        let s = h.summary_us();
        assert_eq!(s["count"], 1000);
        assert_eq!(s["mean"], 500.5);
        assert_eq!(s["max"], 1000.0);
    }

    #[test]
    fn merging_adds_counts_and_keeps_the_larger_max() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        a.record(Duration::from_millis(1));
        b.record(Duration::from_millis(3));
        b.record(Duration::ZERO);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.summary_us()["max"], 3000.0);
        assert_eq!(a.summary_us()["mean"], 1333.3);
    }

    #[test]
    fn an_empty_histogram_reports_zeros() {
        let s = Latency::new().summary_us();
        assert_eq!(s["count"], 0);
        assert_eq!(s["p99"], 0.0);
        assert_eq!(s["mean"], 0.0);
    }

    #[test]
    fn values_past_the_top_are_clamped_not_lost() {
        let mut h = Latency::new();
        h.record(Duration::from_secs(7200));
        assert_eq!(h.count(), 1);
        assert_eq!(h.summary_us()["max"], 7_200_000_000.0);
    }
}
