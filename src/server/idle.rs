//! The idle timeout of an HTTP/2 connection.
//!
//! An HTTP/1 connection waiting for its next request is closed by hyper's header-read timer.
//! HTTP/2 has no such timer: hyper pings the client, and a client that answers the pings
//! keeps an idle connection (and its connection permit) forever, so a few idle clients can
//! hold every permit and starve everyone else. Here an HTTP/2 connection with no request in
//! progress for the idle timeout is closed gracefully (GOAWAY: a request that races it is
//! either served or refused as retryable), the timeout being the one HTTP/1 has.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// The requests in progress on one connection.
pub(super) struct Activity {
    born: Instant,
    busy: AtomicUsize,
    /// Milliseconds after `born` when the last request in progress ended.
    idle_since_ms: AtomicU64,
}

impl Activity {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            born: Instant::now(),
            busy: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
        })
    }

    /// A request starts; it is in progress until the guard is dropped (its answer's head is
    /// ready, or the request was abandoned).
    pub(super) fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Resolves once no request has been in progress for `timeout` (counted from the
    /// connection's start before its first request). Only HTTP/2 connections ask: hyper's own
    /// timer closes idle HTTP/1 ones.
    pub(super) async fn idle_for(&self, timeout: Duration) {
        let mut at = self.born + timeout;
        loop {
            tokio::time::sleep_until(at).await;
            let now = Instant::now();
            if self.busy.load(Ordering::Acquire) > 0 {
                at = now + timeout;
                continue;
            }
            let since =
                self.born + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
            if since + timeout <= now {
                return;
            }
            at = since + timeout;
        }
    }
}

/// A request in progress on its connection.
pub(super) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = a.born.elapsed().as_millis() as u64;
        a.idle_since_ms.fetch_max(ms, Ordering::Release);
        a.busy.fetch_sub(1, Ordering::Release);
    }
}
