//! One timer per request. The edge arms it for the whole request (408: the client was too
//! slow); an upstream call narrows it to the call's own limit while the call runs (504: the
//! upstream was too slow) and widens it back when the call returns. The edge's one `Sleep` is
//! reset rather than a second timer registered: each timer costs a registration and a removal
//! in the runtime's timer wheel, per request.
//!
//! The call still ends itself, with its own error, when its limit passes: the edge marks the
//! deadline expired and polls the request again, and the call's [`Deadline::within`] returns
//! [`Expired`]. So a mixed body whose second part times out still reports the first as
//! applied, as it did with a timer per call.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

/// A request's deadline, shared by the edge (which owns the timer) and the calls below it.
#[derive(Debug)]
pub struct Deadline {
    start: Instant,
    /// The whole request's end, as nanoseconds after `start`.
    request_end: u64,
    /// The end the timer should be armed for now: `request_end`, or an upstream call's.
    armed_for: AtomicU64,
    /// An upstream call is waiting under [`Deadline::within`].
    in_call: AtomicBool,
    /// The edge saw the call's limit pass: the call ends with [`Expired`] on its next poll.
    expired: AtomicBool,
    /// The last upstream call, for the access log: which upstream (an index into
    /// [`UPSTREAMS`]; 0 before any call), and its status and latency packed into one word.
    last_upstream: AtomicU8,
    last_call: AtomicU64,
}

/// The upstreams an access line can name.
pub const UPSTREAMS: [&str; 4] = ["none", "v4", "legacy.user-api", "legacy.registry"];

/// The last upstream call of a request: which upstream, its HTTP status (0: none came),
/// and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastCall {
    pub upstream: &'static str,
    pub status: u16,
    pub micros: u64,
}

/// The limit passed before the call finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired;

/// What the edge does when its timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    /// An upstream call's limit: poll the request again, the call ends with its own error.
    CallExpired,
    /// The whole request's limit.
    RequestExpired,
}

impl Deadline {
    pub fn new(timeout: Duration) -> Self {
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX / 2);
        Self {
            start: Instant::now(),
            request_end: nanos,
            armed_for: AtomicU64::new(nanos),
            in_call: AtomicBool::new(false),
            expired: AtomicBool::new(false),
            last_upstream: AtomicU8::new(0),
            last_call: AtomicU64::new(0),
        }
    }

    /// When the request began.
    pub fn started(&self) -> Instant {
        self.start
    }

    /// Notes an upstream call's end (`upstream` as named in [`UPSTREAMS`]).
    pub fn record_call(&self, upstream: &str, status: u16, took: Duration) {
        let i = UPSTREAMS.iter().position(|u| *u == upstream).unwrap_or(0) as u8;
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX) & ((1 << 48) - 1);
        self.last_call
            .store(((status as u64) << 48) | micros, Ordering::Relaxed);
        self.last_upstream.store(i, Ordering::Relaxed);
    }

    /// The last upstream call, if the request made one.
    pub fn last_call(&self) -> Option<LastCall> {
        let i = self.last_upstream.load(Ordering::Relaxed) as usize;
        if i == 0 {
            return None;
        }
        let word = self.last_call.load(Ordering::Relaxed);
        Some(LastCall {
            upstream: UPSTREAMS.get(i).copied().unwrap_or("none"),
            status: (word >> 48) as u16,
            micros: word & ((1 << 48) - 1),
        })
    }

    /// When the edge's timer should fire now.
    pub fn due(&self) -> Instant {
        self.start + Duration::from_nanos(self.armed_for.load(Ordering::Relaxed))
    }

    /// The timer fired at `due`: whose limit it was.
    pub fn fire(&self) -> Fired {
        // A call's own limit, or the request's end cutting a call short: either way the call
        // reports it (504), since it was the upstream, not the client, that had not finished.
        if self.in_call.load(Ordering::Relaxed) {
            self.expired.store(true, Ordering::Relaxed);
            Fired::CallExpired
        } else {
            Fired::RequestExpired
        }
    }

    /// Runs `call` for at most `limit`, and never past the request's end.
    pub async fn within<F: Future>(&self, limit: Duration, call: F) -> Result<F::Output, Expired> {
        let limit = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX / 2);
        let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX / 2);
        let end = now.saturating_add(limit).min(self.request_end);
        self.armed_for.store(end, Ordering::Relaxed);
        self.expired.store(false, Ordering::Relaxed);
        self.in_call.store(true, Ordering::Relaxed);
        let _restore = Restore(self);
        let mut call = std::pin::pin!(call);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = call.as_mut().poll(cx) {
                return Poll::Ready(Ok(out));
            }
            if self.expired.load(Ordering::Relaxed) {
                return Poll::Ready(Err(Expired));
            }
            Poll::Pending
        })
        .await
    }
}

/// Puts the request's own end back when a call returns (or is dropped).
struct Restore<'a>(&'a Deadline);

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let d = self.0;
        d.in_call.store(false, Ordering::Relaxed);
        d.expired.store(false, Ordering::Relaxed);
        d.armed_for.store(d.request_end, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_narrows_the_deadline_and_restores_it() {
        let d = Deadline::new(Duration::from_secs(30));
        let request_end = d.due();
        let inside = d
            .within(Duration::from_secs(5), async {
                let due = d.due();
                assert!(due < request_end);
                assert_eq!(d.fire(), Fired::CallExpired);
            })
            .await;
        // The call finished on its first poll, before the expiry could be seen.
        assert_eq!(inside, Ok(()));
        assert_eq!(d.due(), request_end);
        assert_eq!(d.fire(), Fired::RequestExpired);
    }

    #[tokio::test]
    async fn an_expired_call_ends_with_its_own_error() {
        let d = Deadline::new(Duration::from_secs(30));
        let call = d.within(Duration::from_secs(5), std::future::pending::<()>());
        let mut call = std::pin::pin!(call);
        assert!(futures_util::poll!(call.as_mut()).is_pending());
        assert_eq!(d.fire(), Fired::CallExpired);
        assert_eq!(
            futures_util::poll!(call.as_mut()),
            Poll::Ready(Err(Expired))
        );
    }
}
