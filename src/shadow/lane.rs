//! Where shadow copies run: a thread of their own, with its own single-threaded tokio runtime,
//! at the operating system's lowest CPU priority (`SCHED_IDLE` on Linux).
//!
//! Why: a copy costs as much CPU as a translated request, and the client's answer never
//! depends on it. On the request runtime, copies competed with client requests as equals, so
//! enabling shadow mode cost a third of the throughput. At idle priority they use
//! only CPU the client requests leave free; when there is none, copies wait, the bounded queue
//! fills, and further copies are dropped and counted (`dropped` in `/_gateway/shadow`), which
//! is the behaviour shadow mode already promised under overload. With spare CPU, as in normal
//! operation, every sampled copy still runs.
//!
//! Copies use their own upstream client (`Runtime::shadow_copies`): a pooled connection is
//! driven by the runtime that opened it, and a client connection opened at idle priority must
//! never carry a client's request.

use std::future::Future;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

pub struct Lane {
    handle: Handle,
    /// Dropped with the lane: the thread then ends, and its runtime with the copies in it.
    _stop: oneshot::Sender<()>,
}

impl Lane {
    /// Starts the thread. `None` when it cannot be started (thread or runtime creation
    /// failed): the caller then runs copies on the request runtime, as before.
    pub fn start() -> Option<Self> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("shadow-copies".into())
            .spawn(move || {
                lower_priority();
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::warn!(error = %e, "shadow copies: no runtime of their own");
                        return;
                    }
                };
                if ready_tx.send(rt.handle().clone()).is_err() {
                    return;
                }
                rt.block_on(async {
                    let _ = stopped.await;
                });
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "shadow copies: no thread of their own");
            return None;
        }
        let handle = ready_rx.recv().ok()?;
        Some(Self {
            handle,
            _stop: stop,
        })
    }

    pub fn spawn<F>(&self, copy: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.handle.spawn(copy);
    }
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    use thread_priority::unix::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadSchedulePolicy,
    };
    use thread_priority::ThreadPriority;
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    if let Err(e) = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle) {
        // Still correct, only no longer yielding to client requests: say so once.
        tracing::warn!(error = ?e, "shadow copies: cannot lower their CPU priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {
    use thread_priority::{set_current_thread_priority, ThreadPriority};
    if let Err(e) = set_current_thread_priority(ThreadPriority::Min) {
        tracing::warn!(error = ?e, "shadow copies: cannot lower their CPU priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_run_on_the_lane_thread_at_idle_priority() {
        let lane = Lane::start().expect("lane");
        let (tx, rx) = std::sync::mpsc::channel();
        lane.spawn(async move {
            let name = std::thread::current().name().map(str::to_string);
            #[cfg(target_os = "linux")]
            let policy = thread_priority::unix::thread_schedule_policy().ok();
            #[cfg(not(target_os = "linux"))]
            let policy: Option<()> = None;
            let _ = tx.send((name, format!("{policy:?}")));
        });
        let (name, policy) = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the copy ran");
        assert_eq!(name.as_deref(), Some("shadow-copies"));
        #[cfg(target_os = "linux")]
        assert!(policy.contains("Idle"), "{policy}");
        let _ = policy;
    }
}
