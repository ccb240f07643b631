//! Memory given back when a worker goes quiet.
//!
//! What a burst of connections allocated stays with the allocator after they close: mimalloc
//! purges the pages a thread freed only when that thread next allocates, and glibc's arenas
//! shrink only from their top. An idle gateway would keep its busiest moment's resident set
//! until traffic came back. So each worker watches its own runtime and, once it has been quiet
//! for a whole period after some work, asks the allocator to give back what it holds free
//! (`legacy_gateway_alloc_release`).
//!
//! It runs on the worker's own thread because mimalloc's heaps are per thread: only the
//! thread that freed the pages can purge them. It is off the request path: one timer per
//! worker reads two runtime counters once per period, and the collection itself (a walk over
//! the heap's pages and an `madvise` per free run) runs at most once per quiet period, never
//! while the worker is busy.

use std::time::Duration;

/// How long a worker must be quiet before it gives memory back, and how often it looks.
const QUIET_PERIOD: Duration = Duration::from_secs(1);

/// Busy time within one period below which the worker counts as quiet: 1%. A worker serving a
/// trickle (a probe now and then) is quiet; one serving real traffic is not.
const BUSY_WHEN_QUIET: Duration = Duration::from_millis(10);

/// What the worker's runtime says at the end of a period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sample {
    /// Tasks alive: one per connection (and per HTTP/2 stream), the upstream connections,
    /// and a few fixed ones. A change means connections opened or closed.
    tasks: usize,
    /// The worker's total busy time since it started.
    busy: Duration,
}

/// Decides, period by period, when to give memory back: on the first quiet period after a
/// period with work (connections opened or closed, or busy for at least 1% of it). Once per
/// quiet spell, so an idle worker collects once and then sleeps; a busy one never does.
#[derive(Debug, Default)]
struct Quiet {
    last: Option<Sample>,
    worked: bool,
}

impl Quiet {
    /// Takes the sample at the end of a period; `true` when memory should be given back now.
    fn release_after(&mut self, now: Sample) -> bool {
        let Some(last) = self.last.replace(now) else {
            // The first period started with the worker: whatever it did (its start) counts.
            self.worked = true;
            return false;
        };
        let busy = now.busy.saturating_sub(last.busy);
        if now.tasks != last.tasks || busy >= BUSY_WHEN_QUIET {
            self.worked = true;
            return false;
        }
        std::mem::take(&mut self.worked)
    }
}

/// Runs on a worker's runtime for as long as the worker does: every [`QUIET_PERIOD`] it
/// samples the runtime and, when [`Quiet`] says so, gives the free memory back.
pub(super) async fn give_back_when_quiet() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let mut every = tokio::time::interval(QUIET_PERIOD);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut quiet = Quiet::default();
    loop {
        every.tick().await;
        let now = Sample {
            tasks: metrics.num_alive_tasks(),
            // A current-thread runtime has one worker: this thread.
            busy: metrics.worker_total_busy_duration(0),
        };
        if quiet.release_after(now) {
            let started = std::time::Instant::now();
            legacy_gateway_alloc_release::release_free_memory();
            tracing::debug!(
                allocator = legacy_gateway_alloc_release::ALLOCATOR,
                took_us = started.elapsed().as_micros() as u64,
                "worker quiet: free memory given back to the system"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(tasks: usize, busy_ms: u64) -> Sample {
        Sample {
            tasks,
            busy: Duration::from_millis(busy_ms),
        }
    }

    #[test]
    fn memory_is_given_back_once_per_quiet_spell_after_work() {
        let mut q = Quiet::default();
        // Start-up, then the first quiet period: the start's allocations are given back.
        assert!(!q.release_after(sample(3, 5)));
        assert!(q.release_after(sample(3, 6)));
        // Still quiet: nothing more to do.
        assert!(!q.release_after(sample(3, 7)));
        assert!(!q.release_after(sample(3, 8)));
        // Connections open and close, then quiet: once.
        assert!(!q.release_after(sample(2003, 400)));
        assert!(!q.release_after(sample(3, 900)));
        assert!(q.release_after(sample(3, 901)));
        assert!(!q.release_after(sample(3, 902)));
    }

    #[test]
    fn a_busy_worker_never_collects() {
        let mut q = Quiet::default();
        q.release_after(sample(259, 0));
        // The same 256 keep-alive connections, busy every period.
        for i in 1..100 {
            assert!(!q.release_after(sample(259, i * 300)), "period {i}");
        }
    }

    #[test]
    fn a_trickle_on_the_same_connections_is_quiet() {
        let mut q = Quiet::default();
        q.release_after(sample(10, 0));
        assert!(q.release_after(sample(10, 2)));
        // A few requests a second on open connections: under 1% busy, no collection each time.
        for i in 1..50 {
            assert!(!q.release_after(sample(10, 2 + i * 3)), "period {i}");
        }
    }

    #[test]
    fn connections_that_come_and_go_count_as_work_even_when_cheap() {
        let mut q = Quiet::default();
        q.release_after(sample(10, 0));
        q.release_after(sample(10, 1));
        // One connection more, then one fewer, little busy time: work all the same.
        assert!(!q.release_after(sample(11, 2)));
        assert!(!q.release_after(sample(10, 3)));
        assert!(q.release_after(sample(10, 4)));
    }
}
