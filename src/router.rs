//! The core service: which legacy route a request is for, which mode serves it (translate,
//! shadow, legacy; see `modes.rs`), and the 404/405 answers for the rest, each in the shape
//! of the API the path belongs to. Requests no mapping covers go to the legacy backend when
//! one is configured (strangler pattern).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response};

use crate::body::{Body, BoxError};
use crate::config::Mode;
use crate::error::{GatewayError, Reply};
use crate::gateway::{Gateway, Runtime};
use crate::legacy::Family;
use crate::modes;
use crate::ops;
use crate::passthrough::LegacyBackend;
use crate::request;
use crate::routes::{self, RouteLabel, Target};
use crate::shadow::{self, Shadow};
use crate::tenant;

#[derive(Clone)]
pub struct Router {
    gw: Arc<Gateway>,
}

impl Router {
    pub fn new(gw: Arc<Gateway>) -> Self {
        Self { gw }
    }
}

impl<B> tower::Service<Request<B>> for Router
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let gw = self.gw.clone();
        Box::pin(async move { Ok(dispatch(gw, req).await) })
    }
}

/// A matched legacy call, before its mode is applied.
struct Matched {
    route: shadow::Route,
    /// Canonical action name (action API).
    action: Option<String>,
    tenant: String,
    raw_id: String,
    writes: bool,
}

async fn dispatch<B>(gw: Arc<Gateway>, req: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let path = req.uri().path().to_string();
    if path.starts_with("/_gateway/") {
        let mut resp = ops::handle(&gw, req).await;
        resp.extensions_mut().insert(RouteLabel("ops"));
        return resp;
    }
    let rt = gw.runtime();
    let (parts, body) = req.into_parts();
    let family = rt.family_of(&path);

    let matched = match family {
        Family::Registry if path.eq_ignore_ascii_case(&rt.registry_path) => {
            let action = routes::registry::action_name(&rt, &parts.uri);
            let writes = action
                .as_deref()
                .and_then(|a| rt.mappings.registry.action(a))
                .is_none_or(|(a, _)| a.writes);
            Some(Matched {
                route: shadow::Route::Registry,
                action,
                tenant: tenant::request_host(&parts).unwrap_or_default(),
                raw_id: String::new(),
                writes,
            })
        }
        // Below the registry path: no route, but the registry's shape.
        Family::Registry => None,
        Family::UserApi => match_user_api(&rt, &path).map(|raw_id| Matched {
            route: shadow::Route::UserApi,
            action: None,
            tenant: parts
                .headers
                .get(&rt.mappings.v4.headers.client_code)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase(),
            raw_id,
            writes: rt.mappings.user_api.writes,
        }),
    };
    let Some(m) = matched else {
        // No mapping covers the path: the legacy backend answers if there is one.
        let mut resp = match rt.backend_for(family) {
            Some(_) => legacy(&gw, &rt, family, parts, body).await,
            None => refuse(&rt, family, &parts.headers, GatewayError::NotFound),
        };
        resp.extensions_mut().insert(RouteLabel("unmatched"));
        return resp;
    };

    let mode = modes::choose(
        &rt.config.modes,
        m.route.name(),
        m.action.as_deref(),
        Some(&m.tenant),
        || split_key(&rt, &m, &parts),
    );
    let label = match (m.route, mode) {
        (shadow::Route::UserApi, Mode::Translate) => "user-api",
        (shadow::Route::UserApi, Mode::Shadow) => "user-api.shadow",
        (shadow::Route::UserApi, Mode::Legacy) => "user-api.legacy",
        (shadow::Route::Registry, Mode::Translate) => "registry",
        (shadow::Route::Registry, Mode::Shadow) => "registry.shadow",
        (shadow::Route::Registry, Mode::Legacy) => "registry.legacy",
    };
    crate::telemetry::annotate(&[
        ("gateway.route", m.route.name()),
        ("gateway.mode", label),
        ("gateway.tenant", &m.tenant),
    ]);
    let mut resp = match mode {
        Mode::Translate => translate(&gw, rt.clone(), &m, parts, body).await,
        Mode::Legacy => legacy(&gw, &rt, family, parts, body).await,
        Mode::Shadow => shadowed(&gw, &rt, family, m, parts, body).await,
    };
    resp.extensions_mut().insert(RouteLabel(label));
    if crate::telemetry::enabled() {
        crate::telemetry::annotate(&[("http.response.status_code", resp.status().as_str())]);
    }
    resp
}

/// What keeps a user on one side of a canary split or shadow sample: the customer
/// registration id (User API) or the user in the token (action API). Computed only when a
/// rule or the shadow needs it: for the action API it means reading the JWT.
fn split_key(rt: &Runtime, m: &Matched, parts: &http::request::Parts) -> String {
    match m.route {
        shadow::Route::UserApi => {
            crate::translate::path::decode_id(&m.raw_id).unwrap_or_else(|_| m.raw_id.clone())
        }
        shadow::Route::Registry => routes::registry::split_key(rt, parts),
    }
}

/// The raw id segment when the path is the User API route (matched case-insensitively; the
/// id is taken from the original path at the same byte offset).
fn match_user_api(rt: &Runtime, path: &str) -> Option<String> {
    let lower = path.to_ascii_lowercase();
    let m = rt.user_api_paths.at(&lower).ok()?;
    let param = rt.mappings.user_api.id_param.to_ascii_lowercase();
    let v = m.params.get(&param)?;
    let start = v.as_ptr() as usize - lower.as_ptr() as usize;
    Some(path[start..start + v.len()].to_string())
}

async fn translate<B>(
    gw: &Gateway,
    rt: Arc<Runtime>,
    m: &Matched,
    parts: http::request::Parts,
    body: B,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let target = Target {
        upstream: &rt.upstream,
        shadow_of: None,
    };
    match m.route {
        shadow::Route::UserApi if parts.method != rt.mappings.user_api.method => {
            let mut resp = refuse(
                &rt,
                Family::UserApi,
                &parts.headers,
                GatewayError::MethodNotAllowed,
            );
            if let Ok(v) = http::HeaderValue::from_str(rt.mappings.user_api.method.as_str()) {
                resp.headers_mut().insert(http::header::ALLOW, v);
            }
            resp
        }
        shadow::Route::UserApi => {
            routes::user_api::handle(rt.clone(), &gw.metrics, parts, body, &m.raw_id, target).await
        }
        shadow::Route::Registry => {
            routes::registry::handle(rt.clone(), &gw.metrics, parts, body, target).await
        }
    }
}

/// The legacy backend of the path's API and the whole request body (bounded), or the
/// legacy-shaped refusal.
async fn backend_and_body<'r, B>(
    rt: &'r Runtime,
    family: Family,
    parts: &http::request::Parts,
    body: B,
) -> Result<(&'r LegacyBackend, Bytes), Response<Body>>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let Some(backend) = rt.backend_for(family) else {
        return Err(refuse(rt, family, &parts.headers, GatewayError::NotFound));
    };
    match request::read_body(body, rt.config.limits.body_bytes).await {
        Ok(b) => Ok((backend, b)),
        Err(e) => Err(refuse(rt, family, &parts.headers, e)),
    }
}

/// Legacy mode: the legacy backend answers, untouched.
async fn legacy<B>(
    gw: &Gateway,
    rt: &Runtime,
    family: Family,
    parts: http::request::Parts,
    body: B,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (backend, bytes) = match backend_and_body(rt, family, &parts, body).await {
        Ok(x) => x,
        Err(refused) => return refused,
    };
    match backend.forward(&parts, bytes, &gw.metrics).await {
        Ok(resp) => resp,
        Err(e) => upstream_failure(rt, family, &parts.headers, e),
    }
}

/// Shadow mode: the legacy backend answers; a translated copy is offered to the shadow.
async fn shadowed<B>(
    gw: &Arc<Gateway>,
    rt: &Arc<Runtime>,
    family: Family,
    m: Matched,
    parts: http::request::Parts,
    body: B,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (backend, bytes) = match backend_and_body(rt, family, &parts, body).await {
        Ok(x) => x,
        Err(refused) => return refused,
    };
    let (head, answer) = match backend
        .forward_raw(&parts, bytes.clone(), &gw.metrics)
        .await
    {
        Ok(x) => x,
        Err(e) => return upstream_failure(rt, family, &parts.headers, e),
    };
    let status = head.status.as_u16();
    let resp = Response::from_parts(head, crate::body::full(answer.clone()));
    let sample_key = split_key(rt, &m, &parts);
    let call = shadow::Call {
        route: m.route,
        tenant: m.tenant,
        sample_key,
        request_id: request::request_id(&parts.headers),
        parts,
        body: bytes,
        raw_id: m.raw_id,
        writes: m.writes,
    };
    Shadow::offer(gw, rt, call, status, answer);
    resp
}

fn upstream_failure(
    rt: &Runtime,
    family: Family,
    headers: &http::HeaderMap,
    e: crate::upstream::UpstreamError,
) -> Response<Body> {
    let mut resp = refuse(rt, family, headers, GatewayError::Upstream(e));
    // Not a refusal: the call was forwarded.
    resp.extensions_mut().remove::<crate::legacy::Refused>();
    resp
}

fn refuse(
    rt: &Runtime,
    family: Family,
    headers: &http::HeaderMap,
    e: GatewayError,
) -> Response<Body> {
    let request_id = request::request_id(headers);
    e.into_response(
        family,
        &Reply {
            request_id: &request_id,
            ..Reply::default()
        },
        &rt.mappings,
    )
}
