//! The idle timeout of an HTTP/2 connection.
//!
//! An HTTP/1 connection waiting for its next request is closed by hyper's header-read timer.
//! HTTP/2 has no such timer: hyper pings the client, and a client that answers the pings
//! keeps an idle connection (and its connection permit) forever, so a few idle clients can
//! hold every permit and starve everyone else. Here an HTTP/2 connection with no request in
//! progress for the idle timeout is closed gracefully (GOAWAY: a request that races it is
//! either served or refused as retryable), the timeout being the one HTTP/1 has.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

const SNIFFING: u8 = 0;
const HTTP1: u8 = 1;
const HTTP2: u8 = 2;

/// What one connection is doing: its protocol once known, and its requests in progress.
pub(super) struct Activity {
    born: Instant,
    protocol: AtomicU8,
    busy: AtomicUsize,
    /// Milliseconds after `born` when the last request in progress ended.
    idle_since_ms: AtomicU64,
}

impl Activity {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            born: Instant::now(),
            protocol: AtomicU8::new(SNIFFING),
            busy: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
        })
    }

    /// The protocol sniffing has decided: HTTP/2 (the preface arrived) or HTTP/1.
    pub(super) fn sniffed(&self, http2: bool) {
        self.protocol
            .store(if http2 { HTTP2 } else { HTTP1 }, Ordering::Relaxed);
    }

    /// A request starts; it is in progress until the guard is dropped (its answer's head is
    /// ready, or the request was abandoned).
    pub(super) fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Resolves once this is an HTTP/2 connection with no request in progress for `timeout`;
    /// never for an HTTP/1 connection, which hyper's own timer closes.
    pub(super) async fn idle_for(&self, timeout: Duration) {
        let mut at = self.born + timeout;
        loop {
            tokio::time::sleep_until(at).await;
            let now = Instant::now();
            match self.protocol.load(Ordering::Relaxed) {
                HTTP1 => std::future::pending::<()>().await,
                // The sniffing has its own deadline, the same timeout.
                SNIFFING => at = now + timeout,
                _ if self.busy.load(Ordering::Acquire) > 0 => at = now + timeout,
                _ => {
                    let since = self.born
                        + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
                    if since + timeout <= now {
                        return;
                    }
                    at = since + timeout;
                }
            }
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
