//! One limiter: a GCRA (the algorithm `governor` uses) over a bounded table of keys. Its own
//! table rather than `governor`'s, because the table is what an attacker aims at: a flood of
//! made-up keys must cost only *new* keys their place, never a key already there (a user
//! mid-reset, a mailbox already counted), and keys whose budget is whole again are dropped
//! first, so a full table recovers by itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a call was refused, with the seconds to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This key spent its budget.
    Spent(u64),
    /// The table is full of keys still counting, and this key is new.
    Full(u64),
}

pub struct Table {
    /// Time between two calls at the steady rate.
    interval: Duration,
    /// How far ahead of now a key's theoretical arrival time may run (the burst).
    tolerance: Duration,
    max_keys: usize,
    state: Mutex<State>,
}

struct State {
    /// Each key's theoretical arrival time: when its budget is whole again.
    keys: HashMap<String, Instant>,
    /// No key is whole again before this, so sweeping earlier would find nothing.
    next_sweep: Instant,
}

impl Table {
    /// `per_hour` calls per hour in a burst of as many; `None` when 0 (no limit).
    pub fn new(per_hour: u32, max_keys: usize) -> Option<Self> {
        let n = per_hour.checked_sub(1)?;
        let interval = Duration::from_secs(3600) / per_hour;
        Some(Self {
            interval,
            tolerance: interval * n,
            max_keys,
            state: Mutex::new(State {
                keys: HashMap::new(),
                next_sweep: Instant::now(),
            }),
        })
    }

    pub fn check(&self, key: &str) -> Result<(), Refused> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Refused> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let tat = match st.keys.get(key) {
            Some(&tat) => tat.max(now),
            None => {
                if st.keys.len() >= self.max_keys {
                    st.sweep(now);
                    if st.keys.len() >= self.max_keys {
                        let wait = st.next_sweep.saturating_duration_since(now);
                        return Err(Refused::Full(wait.as_secs() + 1));
                    }
                }
                now
            }
        };
        let allowed_from = tat.checked_sub(self.tolerance).unwrap_or(now);
        if allowed_from > now {
            return Err(Refused::Spent((allowed_from - now).as_secs() + 1));
        }
        let next = tat + self.interval;
        st.next_sweep = st.next_sweep.min(next);
        st.keys.insert(key.to_string(), next);
        Ok(())
    }

    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state.lock().unwrap().keys.len()
    }
}

impl State {
    /// Drops the keys whose budget is whole again (indistinguishable from new ones).
    fn sweep(&mut self, now: Instant) {
        if now < self.next_sweep {
            return;
        }
        self.keys.retain(|_, tat| *tat > now);
        self.next_sweep = self.keys.values().copied().min().unwrap_or(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_hourly_budget_then_one_per_interval() {
        let t = Table::new(2, 10).unwrap();
        let now = Instant::now();
        assert_eq!(t.check_at("a", now), Ok(()));
        assert_eq!(t.check_at("a", now), Ok(()));
        assert_eq!(t.check_at("a", now), Err(Refused::Spent(1801)));
        assert_eq!(t.check_at("a", now + Duration::from_secs(1800)), Ok(()));
        assert!(Table::new(0, 10).is_none());
    }

    #[test]
    fn a_full_table_refuses_only_new_keys_and_drops_whole_ones_first() {
        let t = Table::new(2, 2).unwrap();
        let now = Instant::now();
        assert_eq!(t.check_at("a", now), Ok(()));
        assert_eq!(t.check_at("b", now), Ok(()));
        assert!(matches!(t.check_at("c", now), Err(Refused::Full(_))));
        // Keys already there keep their budget.
        assert_eq!(t.check_at("a", now), Ok(()));
        assert_eq!(t.check_at("b", now), Ok(()));
        assert!(matches!(t.check_at("a", now), Err(Refused::Spent(_))));
        // Once both budgets are whole again, they make room.
        let later = now + Duration::from_secs(3600);
        assert_eq!(t.check_at("c", later), Ok(()));
        assert_eq!(t.len(), 1);
    }
}
