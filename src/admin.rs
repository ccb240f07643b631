//! The admin listener: everything under `/_gateway/` that changes the gateway or shows its
//! insides (metrics, reload, the shadow report, event translation, the OpenAPI documents,
//! the sandbox views) answers only here, on an address of its own that defaults to loopback,
//! as Envoy's admin does. The client listener keeps only `healthz` and `readyz`, which load
//! balancers probe.
//!
//! With a token configured every admin call but the two probes must carry
//! `Authorization: Bearer <token>`, compared in constant time so the answer's timing does not
//! tell an attacker how much of a guess was right.

use std::convert::Infallible;
use std::sync::Arc;

use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use subtle::ConstantTimeEq;
use tower::util::BoxCloneService;
use tower::ServiceBuilder;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use crate::body::Body;
use crate::gateway::Gateway;
use crate::legacy::json as json_response;

pub type AdminService = BoxCloneService<Request<Incoming>, Response<Body>, Infallible>;

/// The admin service: the token check, then the operator endpoints of [`crate::ops`].
///
/// Bodies are bounded like the client listener's (`limits.body_bytes`, fixed at start), except
/// the streamed event paths, which have their own, larger limit (`events::http`).
pub fn service(gw: Arc<Gateway>) -> AdminService {
    let body_limit = gw.runtime().config.limits.body_bytes;
    let svc = tower::service_fn(move |req: Request<tower_http::body::Limited<Incoming>>| {
        let gw = gw.clone();
        async move {
            let rt = gw.runtime();
            let allowed = crate::ops::is_probe(req.uri().path())
                || authorized(rt.config.admin_token.as_ref().map(|t| t.0.as_str()), &req);
            drop(rt);
            if !allowed {
                return Ok::<_, Infallible>(unauthorized());
            }
            Ok(crate::ops::handle(&gw, req).await)
        }
    });
    BoxCloneService::new(
        ServiceBuilder::new()
            .map_response(|resp: Response<tower_http::limit::ResponseBody<Body>>| {
                use http_body_util::BodyExt;
                resp.map(|b| b.boxed_unsync())
            })
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
            ]))
            .layer(crate::events::http::BodyLimitLayer::new(body_limit))
            .service(svc),
    )
}

/// True when no token is configured, or the request's bearer token equals it.
fn authorized<B>(token: Option<&str>, req: &Request<B>) -> bool {
    let Some(token) = token else { return true };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .unwrap_or("");
    // `ct_eq` on slices of different lengths is false without comparing bytes; the length of
    // the token is not the secret.
    bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

fn unauthorized() -> Response<Body> {
    let mut resp = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"status": "error", "error": "admin token missing or wrong"}),
    );
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}
