//! What v4 said to the calls of one request, for the router's fallback: the routes answer in
//! many ways (a mixed body, a read, an action), but every translated call goes through
//! [`super::Upstream::v4`], which notes its outcome here. Noted only inside [`watched`], a
//! task-local scope the router opens for the rows it watches; anywhere else (shadow copies run
//! on a lane of their own, the probes of `readyz`) noting is one failed thread-local lookup.

use std::cell::RefCell;
use std::future::Future;

use super::UpstreamError;
use crate::translate::envelope::V4Answer;

tokio::task_local! {
    static SEEN: RefCell<Seen>;
}

/// The worst thing v4 did to a request's calls.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum Seen {
    /// No v4 call was made (a refusal, a call passed to the legacy backend).
    #[default]
    Nothing,
    /// v4 answered, with a success or a client error.
    Answered,
    /// v4 answered 5xx with this code (prefix included): a business error or a failure,
    /// depending on the configuration.
    ServerError(Box<str>),
    /// No usable answer: unreachable, timed out, broken, too large.
    Failed,
}

/// Runs `fut` and returns what v4 said to the calls it made.
pub async fn watched<F: Future>(fut: F) -> (F::Output, Seen) {
    SEEN.scope(RefCell::new(Seen::Nothing), async {
        let out = fut.await;
        (out, SEEN.with(RefCell::take))
    })
    .await
}

/// Notes one v4 call's result; a failure already noted stays (the calls after one are not
/// made, but the worst is what counts).
pub(super) fn note(result: &Result<V4Answer, UpstreamError>) {
    let _ = SEEN.try_with(|seen| {
        let mut seen = seen.borrow_mut();
        if matches!(*seen, Seen::Failed | Seen::ServerError(_)) {
            return;
        }
        *seen = match result {
            Ok(a) if a.status >= 500 => Seen::ServerError(a.code.as_str().into()),
            Ok(_) => Seen::Answered,
            Err(_) => Seen::Failed,
        };
    });
}
