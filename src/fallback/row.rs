//! One row's breaker, in atomics: every worker reads it on every call of the row, so it takes
//! no lock. Its states: on v4 (counting failures over a window), on legacy (cooling down),
//! probing (after the cool-down, one call in ten goes to v4; enough successes in a row close
//! it, one failure restarts the cool-down).
//!
//! Times are milliseconds since the owning [`super::Fallback`] was made, so they fit a word.
//! A race at a window's edge may lose a count or two; nothing here needs to be exact, only
//! cheap and never stuck.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::RowId;
use crate::config::FallbackConfig;

/// One call in this many goes to v4 while probing.
pub const PROBE_EVERY: u64 = 10;

#[derive(Debug)]
pub struct Row {
    pub id: RowId,
    /// On legacy (cooling down or probing).
    open: AtomicBool,
    /// When the cool-down ends.
    open_until: AtomicU64,
    window_start: AtomicU64,
    /// Failures in the high half, calls in the low half: one atomic add counts a call.
    counts: AtomicU64,
    /// Calls decided while probing, to pick one in ten.
    tick: AtomicU64,
    /// Successful probes in a row.
    streak: AtomicU32,
    /// Times the row went to legacy.
    pub trips: AtomicU64,
    /// When the row last changed sides (milliseconds since the Unix epoch; 0: never).
    pub switched_at: AtomicU64,
}

/// Where one call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// To v4; `probe` when it tests a row on legacy.
    V4 {
        probe: bool,
    },
    Legacy,
}

/// What a call's outcome changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The row went to legacy, on these figures.
    Opened { calls: u64, failures: u64 },
    /// A probe failed: the cool-down starts again.
    ProbeFailed,
    /// Enough probes succeeded: the row is back on v4.
    Closed,
}

/// A row's state as the admin endpoint shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    V4,
    Legacy,
    Probing,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::V4 => "v4",
            State::Legacy => "legacy",
            State::Probing => "probing",
        }
    }
}

const CALL: u64 = 1;
const FAILURE: u64 = 1 << 32;

impl Row {
    pub fn new(id: RowId, now: u64) -> Self {
        Self {
            id,
            open: AtomicBool::new(false),
            open_until: AtomicU64::new(0),
            window_start: AtomicU64::new(now),
            counts: AtomicU64::new(0),
            tick: AtomicU64::new(0),
            streak: AtomicU32::new(0),
            trips: AtomicU64::new(0),
            switched_at: AtomicU64::new(0),
        }
    }

    /// Where a call goes; `now` is asked only for a row on legacy.
    pub fn choose(&self, now: impl FnOnce() -> u64) -> Choice {
        if !self.open.load(Ordering::Acquire) {
            return Choice::V4 { probe: false };
        }
        if now() < self.open_until.load(Ordering::Acquire) {
            return Choice::Legacy;
        }
        // The first call after a cool-down is a probe: `tick` starts at 0.
        if self.tick.fetch_add(1, Ordering::Relaxed) % PROBE_EVERY == 0 {
            Choice::V4 { probe: true }
        } else {
            Choice::Legacy
        }
    }

    /// Counts the outcome of a call sent to v4 (`failed`: a gateway-side failure).
    pub fn record(
        &self,
        cfg: &FallbackConfig,
        probe: bool,
        failed: bool,
        now: u64,
    ) -> Option<Change> {
        if probe {
            return self.record_probe(cfg, failed, now);
        }
        // Decided before the row went to legacy: answered as it was, and not counted.
        if self.open.load(Ordering::Acquire) {
            return None;
        }
        let window = millis(cfg.window);
        let start = self.window_start.load(Ordering::Relaxed);
        if now.saturating_sub(start) >= window
            && self
                .window_start
                .compare_exchange(start, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.counts.store(0, Ordering::Relaxed);
        }
        let add = if failed { CALL + FAILURE } else { CALL };
        let counts = self.counts.fetch_add(add, Ordering::AcqRel) + add;
        let (calls, failures) = (counts & (FAILURE - 1), counts >> 32);
        let over = calls >= cfg.min_calls && failures as f64 >= cfg.error_ratio * calls as f64;
        if !over {
            return None;
        }
        self.arm_cooldown(cfg, now);
        // One caller wins the switch; the others' calls were counted all the same.
        self.open
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .ok()?;
        self.trips.fetch_add(1, Ordering::Relaxed);
        self.switched_at.store(epoch_millis(), Ordering::Relaxed);
        Some(Change::Opened { calls, failures })
    }

    fn record_probe(&self, cfg: &FallbackConfig, failed: bool, now: u64) -> Option<Change> {
        if !self.open.load(Ordering::Acquire) {
            return None; // reset by hand meanwhile
        }
        if failed {
            self.arm_cooldown(cfg, now);
            return Some(Change::ProbeFailed);
        }
        let streak = self.streak.fetch_add(1, Ordering::AcqRel) + 1;
        if streak < cfg.probes {
            return None;
        }
        self.close(now).then_some(Change::Closed)
    }

    /// The cool-down from `now`; probing starts afresh after it.
    fn arm_cooldown(&self, cfg: &FallbackConfig, now: u64) {
        self.open_until
            .store(now.saturating_add(millis(cfg.cooldown)), Ordering::Release);
        self.tick.store(0, Ordering::Relaxed);
        self.streak.store(0, Ordering::Relaxed);
    }

    /// Back on v4 with a fresh window; false when it already was.
    pub fn close(&self, now: u64) -> bool {
        self.window_start.store(now, Ordering::Relaxed);
        self.counts.store(0, Ordering::Relaxed);
        self.streak.store(0, Ordering::Relaxed);
        let was_open = self.open.swap(false, Ordering::AcqRel);
        if was_open {
            self.switched_at.store(epoch_millis(), Ordering::Relaxed);
        }
        was_open
    }

    pub fn state(&self, now: u64) -> State {
        if !self.open.load(Ordering::Acquire) {
            State::V4
        } else if now < self.open_until.load(Ordering::Acquire) {
            State::Legacy
        } else {
            State::Probing
        }
    }

    /// (calls, failures) in the current window.
    pub fn counts(&self) -> (u64, u64) {
        let c = self.counts.load(Ordering::Relaxed);
        (c & (FAILURE - 1), c >> 32)
    }

    /// Milliseconds left in the cool-down.
    pub fn cooldown_left(&self, now: u64) -> u64 {
        self.open_until.load(Ordering::Relaxed).saturating_sub(now)
    }

    pub fn probe_successes(&self) -> u32 {
        self.streak.load(Ordering::Relaxed)
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn epoch_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn id() -> RowId {
        RowId {
            route: "user-api",
            part: "update".into(),
            tenant: "other".into(),
        }
    }

    fn cfg() -> FallbackConfig {
        FallbackConfig {
            error_ratio: 0.5,
            min_calls: 4,
            window: Duration::from_millis(1000),
            cooldown: Duration::from_millis(100),
            probes: 2,
            ..FallbackConfig::default()
        }
    }

    #[test]
    fn trips_at_the_ratio_once_enough_calls_were_seen() {
        let (c, row) = (cfg(), Row::new(id(), 0));
        assert_eq!(row.record(&c, false, true, 1), None);
        assert_eq!(row.record(&c, false, true, 2), None);
        assert_eq!(row.record(&c, false, false, 3), None);
        assert_eq!(
            row.record(&c, false, false, 4),
            Some(Change::Opened {
                calls: 4,
                failures: 2
            })
        );
        assert_eq!(row.choose(|| 5), Choice::Legacy);
        assert_eq!(row.state(5), State::Legacy);
        // A call decided before the switch, ending after it, changes nothing.
        assert_eq!(row.record(&c, false, true, 6), None);
    }

    #[test]
    fn a_new_window_forgets_the_old_failures() {
        let (c, row) = (cfg(), Row::new(id(), 0));
        for t in 0..3 {
            assert_eq!(row.record(&c, false, true, t), None);
        }
        for t in 1000..1003 {
            assert_eq!(row.record(&c, false, false, t), None);
        }
        assert_eq!(row.counts(), (3, 0));
    }

    #[test]
    fn probes_one_call_in_ten_after_the_cooldown_and_closes_on_successes() {
        let (c, row) = (cfg(), Row::new(id(), 0));
        for t in 0..4 {
            row.record(&c, false, true, t);
        }
        assert_eq!(row.choose(|| 50), Choice::Legacy);
        let choices: Vec<Choice> = (0..20).map(|_| row.choose(|| 200)).collect();
        let probes = choices
            .iter()
            .filter(|c| **c == Choice::V4 { probe: true })
            .count();
        assert_eq!((choices[0], probes), (Choice::V4 { probe: true }, 2));
        // A failing probe restarts the cool-down.
        assert_eq!(row.record(&c, true, true, 200), Some(Change::ProbeFailed));
        assert_eq!(row.choose(|| 250), Choice::Legacy);
        assert_eq!(row.record(&c, true, false, 301), None);
        assert_eq!(row.record(&c, true, false, 302), Some(Change::Closed));
        assert_eq!(row.choose(|| 303), Choice::V4 { probe: false });
        assert_eq!(row.counts(), (0, 0));
    }
}
