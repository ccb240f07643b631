//! One thread's per-request figures: plain integers and histograms, written by that thread
//! only and added up at scrape time (see the module doc of [`super`]).

use std::sync::{Arc, Mutex};

use thread_local::ThreadLocal;

use super::labels::{RequestLabels, UpstreamOutcome};

/// Upper bounds of the latency buckets: 0.25 ms doubling to ~8 s, then +Inf.
pub(super) const BUCKETS: usize = 16;

pub(super) fn bucket_bounds() -> [f64; BUCKETS] {
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
pub(super) struct Hist {
    /// Per bucket (not cumulative), the last one is +Inf.
    pub(super) counts: [u64; BUCKETS + 1],
    pub(super) sum: f64,
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
    pub(super) fn observe(&mut self, secs: f64) {
        // Bucket i holds values <= 0.25 ms * 2^i: ceil(log2(secs / 0.25 ms)), read from the
        // float's exponent and mantissa (a `log2` call cost more than the rest of a request's
        // metrics).
        let i = if secs.is_nan() || secs <= 0.00025 {
            0
        } else {
            let bits = (secs / 0.00025).to_bits();
            let exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
            let above = (bits & ((1 << 52) - 1) != 0) as i64;
            (exponent + above).clamp(0, BUCKETS as i64) as usize
        };
        self.counts[i] += 1;
        self.sum += secs;
    }

    pub(super) fn add(&mut self, other: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.sum += other.sum;
    }

    pub(super) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// One thread's per-request figures. Few distinct label sets exist (routes × statuses), so a
/// vector searched linearly beats hashing, and a label string is allocated once per shard,
/// not per request.
#[derive(Default)]
pub(super) struct Shard {
    pub(super) in_flight: i64,
    pub(super) requests: Vec<(RequestLabels, u64, Hist)>,
    pub(super) upstream: Vec<(String, UpstreamOutcome, Hist)>,
    pub(super) audit: Vec<([String; 4], u64)>,
}

pub(super) type Shards = Arc<ThreadLocal<Mutex<Shard>>>;

/// The shard's cell for a label set: found by a linear search, added on first use (the one
/// time its label strings are allocated).
pub(super) fn cell<T>(
    cells: &mut Vec<T>,
    is: impl Fn(&T) -> bool,
    new: impl FnOnce() -> T,
) -> &mut T {
    match cells.iter().position(is) {
        Some(i) => &mut cells[i],
        None => {
            cells.push(new());
            cells.last_mut().expect("just pushed")
        }
    }
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shard")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_from_the_exponent_are_those_of_log2() {
        let mut secs: f64 = 1e-6;
        while secs < 100.0 {
            let by_log2 = if secs <= 0.00025 {
                0
            } else {
                ((secs / 0.00025).log2().ceil() as usize).min(BUCKETS)
            };
            let mut h = Hist::default();
            h.observe(secs);
            assert_eq!(h.counts[by_log2], 1, "{secs}");
            secs *= 1.013;
        }
    }

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
}
