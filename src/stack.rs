//! The middleware stack around the router, in one place with its order explained.
//!
//! Outer to inner:
//! 1. sensitive headers: `Authorization`/`Cookie` marked sensitive before anything can log them;
//! 2. request id: `x-request-id` kept from the client or generated (UUID v4, `request.rs`);
//! 3. trace: one span per request with method, path (never the query: it can carry a reset
//!    token) and request id;
//! 4. propagate request id: copied onto every answer, including the ones below;
//! 5. metrics: sees every answer, after shaping, with its final status;
//! 6. legacy shape: rewrites the bare answers of the layers under it into legacy envelopes;
//! 7. catch panic: a panic becomes a 500 (shaped by 6), never a dropped connection;
//! 8. body limit: over-long `Content-Length` refused at once, chunked bodies cut while read;
//!    the streamed event paths have their own, larger one (`events::http::BodyLimitLayer`);
//! 9. timeout: bounds the whole request, slow client bodies included (408). v4 calls have
//!    their own, shorter timeout (504), so a slow v4 is never reported as the client's fault.

use std::convert::Infallible;
use std::sync::Arc;

use http::{header, HeaderName, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tower::util::BoxCloneService;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::body::{empty, Body};
use crate::gateway::Gateway;
use crate::layers::metrics::MetricsLayer;
use crate::layers::shape::LegacyShapeLayer;
use crate::request::{MakeRequestId, REQUEST_ID};
use crate::router::Router;

pub type GatewayService = BoxCloneService<Request<Incoming>, Response<Body>, Infallible>;

/// A client `x-request-id` that is empty, over 128 bytes or not printable ASCII cannot be
/// traced or forwarded: drop it so the request-id layer generates one.
fn drop_unusable_request_id<B>(mut req: Request<B>) -> Request<B> {
    let unusable = req.headers().get(REQUEST_ID).is_some_and(|v| {
        let b = v.as_bytes();
        b.is_empty() || b.len() > 128 || !b.iter().all(u8::is_ascii_graphic)
    });
    if unusable {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

pub fn build(gw: Arc<Gateway>) -> GatewayService {
    let router = Router::new(gw.clone());
    build_with(gw, router)
}

/// The same stack around any inner service: tests use it to prove what the layers do
/// (a panicking handler still gets a legacy-shaped 500).
pub fn build_with<S>(gw: Arc<Gateway>, inner: S) -> GatewayService
where
    S: tower::Service<
            Request<tower_http::body::Limited<Incoming>>,
            Response = Response<Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let rt = gw.runtime();
    let limits = &rt.config.limits;
    let request_id = HeaderName::from_static(REQUEST_ID);
    let service = ServiceBuilder::new()
        // One body type for hyper, whatever the layers below wrapped it in.
        .map_response(|resp: Response<_>| resp.map(|b: _| BodyExt::map_err(b, Into::into).boxed_unsync()))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::PROXY_AUTHORIZATION,
            header::COOKIE,
        ]))
        .map_request(drop_unusable_request_id)
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestId))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(MetricsLayer::new(gw.metrics.clone()))
        .layer(LegacyShapeLayer::new(gw.clone()))
        .layer(CatchPanicLayer::custom(|_panic: Box<dyn std::any::Any + Send>| {
            // The panic message may hold request data: it goes nowhere.
            tracing::error!("a request handler panicked");
            let mut resp = Response::new(empty());
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            resp
        }))
        .layer(crate::events::http::BodyLimitLayer::new(limits.body_bytes))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
        .service(inner);
    BoxCloneService::new(service)
}
