//! The edge of every request: what used to be seven layers (sensitive headers, request id,
//! trace span, request-id propagation, metrics, legacy shape, catch-panic, body limit and
//! timeout) folded into one service with one future. Each layer had its own
//! future, most of them boxed, its own `Arc` clones and its own copy of the path or the id;
//! together they cost more instructions per request than the translation they wrap.
//!
//! In order, what it does to a request and its answer:
//! 1. `Authorization`, `Proxy-Authorization` and `Cookie` are marked sensitive, so no
//!    `Debug` print of the headers can show them;
//! 2. the request id: the client's `x-request-id` when usable (printable ASCII, 1–128 bytes),
//!    else a generated UUID v4; set on the request (handlers forward it) and on the answer;
//! 3. the body limit: a declared `Content-Length` over `limits.body_bytes` is refused at once
//!    (413), a chunked body is cut while read;
//! 4. the timeout: the whole request, slow client bodies included (408). v4 calls have their
//!    own, shorter limit (504), so a slow v4 is never reported as the client's fault; both run
//!    on one timer per request ([`crate::deadline`]);
//! 5. a panic below becomes a 500, never a dropped connection; its message (which may hold
//!    request data) goes nowhere;
//! 6. the legacy shape: an unshaped 4xx/5xx (from 3–5, or a bare answer of the service below)
//!    is rewritten into the caller's legacy envelope; 408 and 413 close the connection, since
//!    the request body was not read to its end;
//! 7. metrics (in-flight, requests and latency by route and status) on this worker's shard;
//! 8. the access log: one `info` event per answer (target `legacy_gateway::access`), and a
//!    span per request only when `debug` is enabled for it. Nothing is formatted when the
//!    level is off.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Limited;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::body::Body;
use crate::context::RequestContext;
use crate::deadline::{Deadline, Fired};
use crate::error::GatewayError;
use crate::gateway::Local;
use crate::legacy::Shaped;
use crate::metrics::TenantLabel;
use crate::request::{usable_id, RequestIds, REQUEST_ID};
use crate::routes::{RouteLabel, Served};

/// Builds [`Edge`] around a service; made per worker (its [`Local`] handle is that worker's).
#[derive(Clone)]
pub struct EdgeLayer {
    gw: Local,
}

impl EdgeLayer {
    pub fn new(gw: Local) -> Self {
        Self { gw }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;
    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            gw: self.gw.clone(),
            ids: RequestIds,
        }
    }
}

#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    gw: Local,
    ids: RequestIds,
}

/// What an answer needs from its request once the request itself has moved on.
struct Seen {
    started: tokio::time::Instant,
    request_id: HeaderValue,
    uri: http::Uri,
    method: http::Method,
}

/// Counts a request that never got its answer (the client went away) out of flight.
struct InFlight {
    gw: Local,
    done: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            self.gw.metrics.request_abandoned();
        }
    }
}

pub type EdgeFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<S, B> Service<Request<B>> for Edge<S>
where
    S: Service<Request<Limited<B>>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = EdgeFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> EdgeFuture {
        let (body_limit, timeout) = {
            let rt = self.gw.runtime();
            (
                rt.config.limits.body_bytes,
                rt.config.limits.request_timeout,
            )
        };
        // Its start is the request's: the latency metric and the access log read it too.
        let deadline = Arc::new(Deadline::new(timeout));
        let headers = req.headers_mut();
        // One pass over the few headers a request has: comparing standard names is an integer
        // comparison, where a lookup per name would hash five names.
        let mut client_id: Option<HeaderValue> = None;
        let mut id_seen = false;
        let mut declared: Option<u64> = None;
        for (name, v) in headers.iter_mut() {
            if *name == header::AUTHORIZATION
                || *name == header::PROXY_AUTHORIZATION
                || *name == header::COOKIE
            {
                v.set_sensitive(true);
            } else if *name == header::CONTENT_LENGTH {
                // hyper has refused a request with two different lengths.
                declared = v.to_str().ok().and_then(|v| v.parse::<u64>().ok());
            } else if *name == REQUEST_ID && !id_seen {
                // The first one decides, as a lookup would have.
                id_seen = true;
                if usable_id(v) {
                    client_id = Some(v.clone());
                }
            }
        }
        let request_id = match client_id {
            Some(v) => v,
            None => {
                let id = self.ids.next();
                headers.insert(REQUEST_ID, id.clone());
                id
            }
        };
        let seen = Seen {
            started: deadline.started(),
            request_id,
            uri: req.uri().clone(),
            method: req.method().clone(),
        };
        self.gw.metrics.request_started();
        let in_flight = InFlight {
            gw: self.gw.clone(),
            done: false,
        };

        // A span only when something reads it: `debug` logs, or exported traces, where it
        // continues the client's trace (`traceparent`).
        let span = if crate::telemetry::enabled() {
            let span = tracing::info_span!(
                "request",
                method = %seen.method,
                path = %seen.uri.path(),
                request_id = ?seen.request_id,
            );
            crate::telemetry::adopt_parent(&span, req.headers());
            span
        } else if tracing::enabled!(target: "legacy_gateway::access", tracing::Level::DEBUG) {
            tracing::debug_span!(
                target: "legacy_gateway::access",
                "request",
                method = %seen.method,
                path = %seen.uri.path(),
                request_id = ?seen.request_id,
            )
        } else {
            tracing::Span::none()
        };
        let inner = if declared.is_some_and(|n| n > body_limit as u64) {
            None
        } else {
            let mut req = req.map(|b| Limited::new(b, body_limit));
            req.extensions_mut().insert(deadline.clone());
            // A panic while the service below starts its work is caught like one in its future.
            match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
                Ok(fut) => Some(Ok(fut)),
                Err(_) => Some(Err(())),
            }
        };
        let fut = async move {
            // Moved in whole (not only the field written below), so dropping the future
            // before the answer counts the request out of flight.
            let mut in_flight = in_flight;
            let gw = &in_flight.gw;
            let outcome = match inner {
                None => Err(GatewayError::BodyTooLarge(body_limit)),
                Some(Err(())) => Err(panicked()),
                Some(Ok(fut)) => match bounded(&deadline, fut).await {
                    Some(Ok(Ok(resp))) => Ok(resp),
                    Some(Ok(Err(never))) => match never {},
                    Some(Err(_panic)) => Err(panicked()),
                    None => Err(GatewayError::RequestTimeout),
                },
            };
            let mut resp = match outcome {
                Ok(resp) => shape(gw, &seen, resp),
                Err(e) => answer(gw, &seen, e),
            };
            resp.headers_mut()
                .insert(REQUEST_ID, seen.request_id.clone());
            let (route, mode, tenant) = match resp.extensions().get::<Served>() {
                Some(s) => (s.route, s.mode, &s.tenant),
                None => {
                    let route = resp
                        .extensions()
                        .get::<RouteLabel>()
                        .map_or("unmatched", |r| r.0);
                    (route, "none", &gw.unrouted_tenant)
                }
            };
            let elapsed = seen.started.elapsed();
            gw.metrics.request_done(
                route,
                resp.status().as_u16(),
                tenant,
                mode,
                elapsed.as_secs_f64(),
            );
            in_flight.done = true;
            if tracing::enabled!(target: "legacy_gateway::access", tracing::Level::INFO) {
                access_log(&seen, resp.status(), elapsed, mode, tenant, &deadline);
            }
            Ok(resp)
        };
        Box::pin(fut.instrument(span))
    }
}

/// Runs the request under its one timer: `None` when the whole request's time ran out. When
/// an upstream call's limit passes instead, the request is polled again at once, and the call
/// ends with its own error (see `crate::deadline`).
async fn bounded<F: Future>(deadline: &Deadline, fut: F) -> Option<std::thread::Result<F::Output>> {
    let mut fut = std::pin::pin!(AssertUnwindSafe(fut).catch_unwind());
    let mut armed = deadline.due();
    let mut timer = std::pin::pin!(tokio::time::sleep_until(armed));
    std::future::poll_fn(|cx| loop {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        let due = deadline.due();
        if due != armed {
            armed = due;
            timer.as_mut().reset(due);
        }
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        match deadline.fire() {
            Fired::CallExpired => continue,
            Fired::RequestExpired => return Poll::Ready(None),
        }
    })
    .await
}

fn panicked() -> GatewayError {
    tracing::error!("a request handler panicked");
    GatewayError::Internal
}

/// The longest path an access line carries: a client can send a path of tens of kilobytes,
/// and each line would carry it whole.
const LOGGED_PATH_BYTES: usize = 512;

fn access_log(
    seen: &Seen,
    status: StatusCode,
    elapsed: Duration,
    mode: &str,
    tenant: &TenantLabel,
    deadline: &Deadline,
) {
    let path = seen.uri.path();
    let path = if path.len() > LOGGED_PATH_BYTES {
        let mut end = LOGGED_PATH_BYTES;
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        &path[..end]
    } else {
        path
    };
    let last = deadline.last_call();
    tracing::info!(
        target: "legacy_gateway::access",
        method = %seen.method,
        path,
        status = status.as_u16(),
        latency_us = elapsed.as_micros() as u64,
        request_id = seen.request_id.to_str().unwrap_or(""),
        tenant = &*tenant.0,
        mode,
        backend = last.map_or("none", |c| c.upstream),
        upstream_status = last.map_or(0, |c| c.status),
        upstream_latency_us = last.map_or(0, |c| c.micros),
        "answered"
    );
}

/// The gateway's own refusal, in the caller's shape.
fn answer(gw: &Local, seen: &Seen, e: GatewayError) -> Response<Body> {
    let rt = gw.runtime();
    // `Connection: close` where the body was not read to the end: the error knows.
    RequestContext::at_edge(&rt, &seen.uri, seen.request_id.clone()).answer(&rt, e)
}

/// Rewrites a bare 4xx/5xx of the service below into the caller's legacy shape. Shaped
/// answers, successes and the operations endpoints pass as they are.
fn shape(gw: &Local, seen: &Seen, resp: Response<Body>) -> Response<Body> {
    let status = resp.status();
    if resp.extensions().get::<Shaped>().is_some()
        || !(status.is_client_error() || status.is_server_error())
        || seen.uri.path().starts_with("/_gateway/")
    {
        return resp;
    }
    let err = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            GatewayError::BodyTooLarge(gw.runtime().config.limits.body_bytes)
        }
        StatusCode::REQUEST_TIMEOUT => GatewayError::RequestTimeout,
        StatusCode::NOT_FOUND => GatewayError::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => GatewayError::MethodNotAllowed,
        StatusCode::SERVICE_UNAVAILABLE => GatewayError::Overloaded,
        _ => GatewayError::Internal,
    };
    let mut shaped = answer(gw, seen, err);
    if let Some(label) = resp.extensions().get::<RouteLabel>() {
        shaped.extensions_mut().insert(*label);
    }
    if let Some(served) = resp.extensions().get::<Served>() {
        shaped.extensions_mut().insert(served.clone());
    }
    shaped
}
