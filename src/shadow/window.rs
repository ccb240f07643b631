//! The figures of one report row over time: since the window opened (the last configuration
//! change or `reset`), and per minute for the last hour, from which the 5-minute and 1-hour
//! figures are summed. A decision needs figures gathered under the configuration being
//! judged; a moving window shows whether something changed a minute ago.
//!
//! Latency is a histogram with fixed, logarithmic buckets (each 25% wider than the last), so
//! a row costs the same memory after a million copies as after ten, and p50/p99 are read
//! off it to within one bucket.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Minutes kept per row: the longest window shown.
pub const MINUTES: u64 = 60;
/// The short window.
pub const SHORT_MINUTES: u64 = 5;

/// Why a call handed to the shadow got no copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A write on a route whose `writes` is off.
    WritesOff,
    /// The user is outside the route's `sample_percent`.
    SampledOut,
    /// The body is over `shadow.max_body_bytes`.
    BodyTooLarge,
    /// Copies running and waiting are at their bound.
    QueueFull,
    /// The route's kill switch pauses its copies.
    KillSwitch,
}

impl Reason {
    /// The name in the report and the `result` label of `gateway_shadow_total`.
    pub fn name(self) -> &'static str {
        match self {
            Reason::WritesOff => "writes_off",
            Reason::SampledOut => "sampled_out",
            Reason::BodyTooLarge => "body_too_large",
            Reason::QueueFull => "queue_full",
            Reason::KillSwitch => "kill_switch",
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NotShadowed {
    pub writes_off: u64,
    pub sampled_out: u64,
    pub body_too_large: u64,
    pub queue_full: u64,
    pub kill_switch: u64,
}

impl NotShadowed {
    fn slot(&mut self, r: Reason) -> &mut u64 {
        match r {
            Reason::WritesOff => &mut self.writes_off,
            Reason::SampledOut => &mut self.sampled_out,
            Reason::BodyTooLarge => &mut self.body_too_large,
            Reason::QueueFull => &mut self.queue_full,
            Reason::KillSwitch => &mut self.kill_switch,
        }
    }

    pub fn total(&self) -> u64 {
        self.writes_off
            + self.sampled_out
            + self.body_too_large
            + self.queue_full
            + self.kill_switch
    }

    fn add(&mut self, o: &NotShadowed) {
        self.writes_off += o.writes_off;
        self.sampled_out += o.sampled_out;
        self.body_too_large += o.body_too_large;
        self.queue_full += o.queue_full;
        self.kill_switch += o.kill_switch;
    }
}

const BUCKETS: usize = 60;
const FIRST_MS: f64 = 0.25;
const RATIO: f64 = 1.25;

/// Latency in milliseconds, as counts per logarithmic bucket (0.25 ms up to about 170 s; the
/// last bucket holds everything slower). In a report it carries its buckets too, so the
/// reports of several instances merge into true quantiles (`shadow-report`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "LatencyJson", from = "LatencyJson")]
pub struct Latency {
    counts: [u32; BUCKETS],
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            counts: [0; BUCKETS],
        }
    }
}

impl Latency {
    pub fn observe(&mut self, ms: f64) {
        let i = if ms <= FIRST_MS {
            0
        } else {
            ((ms / FIRST_MS).ln() / RATIO.ln()).ceil() as usize
        };
        let c = &mut self.counts[i.min(BUCKETS - 1)];
        *c = c.saturating_add(1);
    }

    fn add(&mut self, o: &Latency) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| u64::from(*c)).sum()
    }

    /// The upper bound of the bucket holding the `q` quantile, in ms; `None` with no figures.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let target = ((q * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= target {
                let bound = FIRST_MS * RATIO.powi(i as i32);
                return Some((bound * 100.0).round() / 100.0);
            }
        }
        None
    }
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct LatencyJson {
    p50: Option<f64>,
    p99: Option<f64>,
    /// Counts per bucket, trailing empty buckets left out.
    buckets: Vec<u32>,
}

impl From<Latency> for LatencyJson {
    fn from(l: Latency) -> Self {
        let used = l.counts.iter().rposition(|c| *c > 0).map_or(0, |i| i + 1);
        LatencyJson {
            p50: l.quantile(0.5),
            p99: l.quantile(0.99),
            buckets: l.counts[..used].to_vec(),
        }
    }
}

impl From<LatencyJson> for Latency {
    fn from(j: LatencyJson) -> Self {
        let mut l = Latency::default();
        for (a, b) in l.counts.iter_mut().zip(j.buckets) {
            *a = b;
        }
        l
    }
}

/// Every call of one row accounted for: copies compared (and how they came out), copies the
/// gateway refused to send, calls that got no copy and why.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    pub compared: u64,
    pub matched: u64,
    pub differing: u64,
    /// Differing copies whose every difference is learned noise: matched for the verdict.
    pub noise_only: u64,
    pub v4_errors: u64,
    pub refused: u64,
    pub not_shadowed: NotShadowed,
    pub latency_ms: Latencies,
}

/// Latency of the calls that were compared, both sides of the same calls.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Latencies {
    /// The legacy answer, as the client waited for it.
    pub legacy: Latency,
    /// The v4 copy: translation, v4, and translation back.
    pub v4: Latency,
}

impl Counts {
    pub fn not_shadowed(&mut self, r: Reason) {
        *self.not_shadowed.slot(r) += 1;
    }

    pub fn add(&mut self, o: &Counts) {
        self.compared += o.compared;
        self.matched += o.matched;
        self.differing += o.differing;
        self.noise_only += o.noise_only;
        self.v4_errors += o.v4_errors;
        self.refused += o.refused;
        self.not_shadowed.add(&o.not_shadowed);
        self.latency_ms.legacy.add(&o.latency_ms.legacy);
        self.latency_ms.v4.add(&o.latency_ms.v4);
    }

    /// Every call the row saw.
    pub fn calls(&self) -> u64 {
        self.compared + self.refused + self.not_shadowed.total()
    }

    /// Copies that differ beyond learned noise, as a share of those compared.
    pub fn diff_ratio(&self) -> Option<f64> {
        (self.compared > 0).then(|| {
            (self.differing - self.noise_only.min(self.differing)) as f64 / self.compared as f64
        })
    }
}

/// One row's figures: since the window opened, and per minute for the last [`MINUTES`].
#[derive(Debug, Default, Clone)]
pub struct Windows {
    pub since_change: Counts,
    /// (minute since the Unix epoch, figures), oldest first; only minutes with calls.
    minutes: VecDeque<(u64, Counts)>,
}

/// The current minute since the Unix epoch.
pub fn minute_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

impl Windows {
    /// Applies `f` to the figures since the change and to those of minute `now`.
    pub fn apply(&mut self, now: u64, f: impl Fn(&mut Counts)) {
        f(&mut self.since_change);
        if self.minutes.back().is_none_or(|(m, _)| *m != now) {
            self.minutes.push_back((now, Counts::default()));
        }
        while self
            .minutes
            .front()
            .is_some_and(|(m, _)| *m + MINUTES <= now)
        {
            self.minutes.pop_front();
        }
        if let Some((_, c)) = self.minutes.back_mut() {
            f(c);
        }
    }

    /// The figures of the last `n` minutes, the current one included.
    pub fn last(&self, n: u64, now: u64) -> Counts {
        let mut sum = Counts::default();
        for (_, c) in self.minutes.iter().filter(|(m, _)| *m + n > now) {
            sum.add(c);
        }
        sum
    }

    /// (minute, compared, matched) for the minutes of the last hour with copies compared.
    pub fn per_minute(&self, now: u64) -> Vec<(u64, u64, u64)> {
        self.minutes
            .iter()
            .filter(|(m, c)| *m + MINUTES > now && c.compared > 0)
            .map(|(m, c)| (*m, c.compared, c.matched + c.noise_only))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_read_to_within_a_bucket() {
        let mut l = Latency::default();
        assert_eq!(l.quantile(0.5), None);
        for _ in 0..98 {
            l.observe(10.0);
        }
        l.observe(400.0);
        l.observe(400.0);
        let p50 = l.quantile(0.5).unwrap();
        let p99 = l.quantile(0.99).unwrap();
        assert!((10.0..12.5).contains(&p50), "{p50}");
        assert!((400.0..500.0).contains(&p99), "{p99}");
        let back: Latency = serde_json::from_value(serde_json::to_value(&l).unwrap()).unwrap();
        assert_eq!(back, l);
    }

    #[test]
    fn minutes_roll_and_windows_sum() {
        let mut w = Windows::default();
        for m in 100..170 {
            w.apply(m, |c| c.compared += 1);
        }
        assert_eq!(w.since_change.compared, 70);
        assert_eq!(w.last(SHORT_MINUTES, 169).compared, 5);
        assert_eq!(w.last(MINUTES, 169).compared, 60);
        // Nothing since: the hour empties, the window since the change keeps its figures.
        assert_eq!(w.last(MINUTES, 300).compared, 0);
        assert_eq!(w.since_change.compared, 70);
    }

    #[test]
    fn every_reason_has_its_own_count() {
        let mut c = Counts::default();
        for r in [
            Reason::WritesOff,
            Reason::SampledOut,
            Reason::BodyTooLarge,
            Reason::QueueFull,
            Reason::KillSwitch,
            Reason::KillSwitch,
        ] {
            c.not_shadowed(r);
        }
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["not_shadowed"]["kill_switch"], 2);
        assert_eq!(v["not_shadowed"]["writes_off"], 1);
        let back: Counts = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
        assert_eq!(c.calls(), 6);
    }
}
