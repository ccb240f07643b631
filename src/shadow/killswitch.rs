//! The per-route kill switch: when the v4 copies of a route fail too often or answer too
//! slowly over a window of calls, shadowing of that route pauses by itself for a cool-down,
//! then resumes with a fresh window. It protects v4 (and the gateway's shadow capacity) from
//! a copy stream that only produces noise.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::ShadowRoute;

#[derive(Debug, Default)]
pub struct KillSwitch {
    window: VecDeque<(bool, u64)>,
    paused_until: Option<Instant>,
    pub trips: u64,
}

/// Why the switch tripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trip {
    pub error_rate_percent: u64,
    pub mean_latency_ms: u64,
}

impl KillSwitch {
    /// Whether a copy may go out now; ends a finished pause.
    pub fn allows(&mut self, now: Instant) -> bool {
        match self.paused_until {
            Some(t) if now < t => false,
            Some(_) => {
                self.paused_until = None;
                self.window.clear();
                true
            }
            None => true,
        }
    }

    pub fn paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|t| now < t)
    }

    /// Records one copy's outcome; returns the trip if this one paused the route.
    pub fn record(
        &mut self,
        cfg: &ShadowRoute,
        error: bool,
        latency_ms: u64,
        now: Instant,
    ) -> Option<Trip> {
        if self.paused(now) {
            return None;
        }
        self.window.push_back((error, latency_ms));
        let size = cfg.kill_window.max(1) as usize;
        while self.window.len() > size {
            self.window.pop_front();
        }
        if self.window.len() < size {
            return None;
        }
        let n = self.window.len() as u64;
        let errors = self.window.iter().filter(|(e, _)| *e).count() as u64;
        let mean = self.window.iter().map(|(_, l)| *l).sum::<u64>() / n;
        let rate = errors * 100 / n;
        if rate >= u64::from(cfg.kill_error_rate_percent) || mean > cfg.kill_latency_ms {
            self.paused_until = Some(now + Duration::from_millis(cfg.kill_cooldown_ms));
            self.window.clear();
            self.trips += 1;
            return Some(Trip {
                error_rate_percent: rate,
                mean_latency_ms: mean,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_on_errors_and_resumes_after_cooldown() {
        let cfg = ShadowRoute {
            kill_window: 4,
            kill_error_rate_percent: 50,
            kill_cooldown_ms: 1000,
            ..ShadowRoute::default()
        };
        let mut k = KillSwitch::default();
        let t0 = Instant::now();
        assert!(k.record(&cfg, true, 1, t0).is_none());
        assert!(k.record(&cfg, false, 1, t0).is_none());
        assert!(k.record(&cfg, false, 1, t0).is_none());
        let trip = k.record(&cfg, true, 1, t0).unwrap();
        assert_eq!(trip.error_rate_percent, 50);
        assert!(!k.allows(t0 + Duration::from_millis(999)));
        assert!(k.allows(t0 + Duration::from_millis(1000)));
        assert!(!k.paused(t0 + Duration::from_millis(1000)));
    }

    #[test]
    fn trips_on_latency() {
        let cfg = ShadowRoute {
            kill_window: 2,
            kill_latency_ms: 100,
            ..ShadowRoute::default()
        };
        let mut k = KillSwitch::default();
        let t0 = Instant::now();
        k.record(&cfg, false, 150, t0);
        assert!(k.record(&cfg, false, 90, t0).is_some());
    }
}
