//! The body limit of the listener that serves the event paths.

use std::task::{Context, Poll};

use http::Request;
use tower_http::limit::RequestBodyLimit;

use super::{is_events_path, EVENTS_BODY_LIMIT};

/// The gateway's body limit, with [`EVENTS_BODY_LIMIT`] for the event paths instead of the
/// general one: a general limit sized for API calls (64 KiB) would otherwise cut every
/// event log. Both limits are tower-http's (over-long `Content-Length` refused at once,
/// chunked bodies cut while read); only the number differs.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimitLayer {
    general: usize,
}

impl BodyLimitLayer {
    pub fn new(general: usize) -> Self {
        Self { general }
    }
}

impl<S: Clone> tower::Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;
    fn layer(&self, inner: S) -> BodyLimit<S> {
        BodyLimit {
            general: RequestBodyLimit::new(inner.clone(), self.general),
            events: RequestBodyLimit::new(inner, EVENTS_BODY_LIMIT.max(self.general)),
        }
    }
}

/// See [`BodyLimitLayer`]. Both inner services wrap clones of one always-ready router.
#[derive(Debug, Clone)]
pub struct BodyLimit<S> {
    general: RequestBodyLimit<S>,
    events: RequestBodyLimit<S>,
}

impl<S, B> tower::Service<Request<B>> for BodyLimit<S>
where
    RequestBodyLimit<S>: tower::Service<Request<B>>,
{
    type Response = <RequestBodyLimit<S> as tower::Service<Request<B>>>::Response;
    type Error = <RequestBodyLimit<S> as tower::Service<Request<B>>>::Error;
    type Future = <RequestBodyLimit<S> as tower::Service<Request<B>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.general.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.events.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if is_events_path(req.uri().path()) {
            self.events.call(req)
        } else {
            self.general.call(req)
        }
    }
}
