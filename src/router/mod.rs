//! The core service: which legacy route a request is for, which mode serves it (translate,
//! shadow, legacy: the rules are in `crate::modes`, what each mode does in `mode.rs`), and the
//! 404/405 answers for the rest, each in the shape of the API the path belongs to. Requests no mapping covers go to the legacy backend when
//! one is configured (strangler pattern).

mod mode;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response};

use crate::body::{Body, BoxError};
use crate::config::Mode;
use crate::error::GatewayError;
use crate::gateway::{Gateway, Local};
use crate::legacy::Family;
use crate::modes;
use crate::ops;
use crate::routes::{self, RouteLabel};
use crate::runtime::Runtime;
use crate::tenant;
use mode::{legacy, refuse, shadowed, translate};

#[derive(Clone)]
pub struct Router {
    gw: Local,
}

impl Router {
    /// Call it on the worker that will use it: the handle it makes is that worker's own.
    pub fn new(gw: &Arc<Gateway>) -> Self {
        Self { gw: Local::new(gw) }
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
    family: Family,
    /// Canonical action name (action API).
    action: Option<String>,
    tenant: String,
    raw_id: String,
    writes: bool,
}

async fn dispatch<B>(gw: Local, req: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if req.uri().path().starts_with("/_gateway/") {
        // Only the probes answer here; the rest of `/_gateway/` is on the admin listener and
        // is, on this one, an unknown path that never reaches a legacy backend.
        if ops::is_probe(req.uri().path()) {
            let mut resp = ops::handle(&gw, req).await;
            resp.extensions_mut().insert(RouteLabel("ops"));
            return resp;
        }
        let rt = gw.runtime();
        let (parts, _) = req.into_parts();
        let family = rt.family_of(parts.uri.path());
        let mut resp = refuse(&rt, family, &parts, GatewayError::NotFound);
        resp.extensions_mut().insert(RouteLabel("unmatched"));
        return resp;
    }
    let rt = gw.runtime();
    let (parts, body) = req.into_parts();
    // Borrowed from the request unless `%24` has to be decoded.
    let path = rt.route_path(parts.uri.path());
    let family = rt.family_of(&path);
    let twice = match family {
        Family::UserApi => duplicate_tenant_header(&rt, &parts.headers),
        // The action API's tenant is the Host.
        Family::Registry => {
            (parts.headers.get_all(http::header::HOST).iter().nth(1)).map(|_| "Host".to_string())
        }
    };
    if let Some(name) = twice {
        let mut resp = refuse(&rt, family, &parts, GatewayError::DuplicateHeader(name));
        resp.extensions_mut().insert(RouteLabel("unmatched"));
        return resp;
    }

    let matched = match family {
        Family::Registry if path.eq_ignore_ascii_case(&rt.registry_path) => {
            let action = routes::registry::action_name(&rt, &parts.uri);
            let writes = action
                .as_deref()
                .and_then(|a| rt.mappings.registry.action(a))
                .is_none_or(|(a, _)| a.writes);
            Some(Matched {
                family: Family::Registry,
                action,
                tenant: tenant::request_host(&parts).unwrap_or_default(),
                raw_id: String::new(),
                writes,
            })
        }
        // Below the registry path: no route, but the registry's shape.
        Family::Registry => None,
        Family::UserApi => rt.user_api_raw_id(&path).map(|raw_id| Matched {
            family: Family::UserApi,
            // `[[modes]] route = "user-api.read"` cuts over reads alone.
            action: user_api_operation(&rt, &parts.method).map(str::to_string),
            tenant: parts
                .headers
                .get(&rt.mappings.v4.headers.client_code)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase(),
            raw_id,
            writes: rt.mappings.user_api.writes_for(&parts.method),
        }),
    };
    let Some(m) = matched else {
        // No mapping covers the path: the legacy backend answers if there is one.
        let mut resp = match rt.backend_for(family) {
            Some(_) => legacy(&gw, &rt, family, parts, body).await,
            None => refuse(&rt, family, &parts, GatewayError::NotFound),
        };
        resp.extensions_mut().insert(RouteLabel("unmatched"));
        return resp;
    };

    let mode = modes::choose(
        &rt.config.modes,
        m.family.name(),
        m.action.as_deref(),
        Some(&m.tenant),
        || split_key(&rt, &m, &parts),
    );
    let label = match (m.family, mode) {
        (Family::UserApi, Mode::Translate) => "user-api",
        (Family::UserApi, Mode::Shadow) => "user-api.shadow",
        (Family::UserApi, Mode::Legacy) => "user-api.legacy",
        (Family::Registry, Mode::Translate) => "registry",
        (Family::Registry, Mode::Shadow) => "registry.shadow",
        (Family::Registry, Mode::Legacy) => "registry.legacy",
    };
    crate::telemetry::annotate(&[
        ("gateway.route", m.family.name()),
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
    match m.family {
        Family::UserApi => {
            crate::translate::path::decode_id(&m.raw_id).unwrap_or_else(|_| m.raw_id.clone())
        }
        Family::Registry => routes::registry::split_key(rt, parts),
    }
}

/// The User API operation a method asks for, as `[[modes]]` names it (`user-api.read`).
fn user_api_operation(rt: &Runtime, method: &http::Method) -> Option<&'static str> {
    let ua = &rt.mappings.user_api;
    if *method == ua.read.method || *method == http::Method::HEAD {
        Some("read")
    } else if *method == ua.method {
        Some("update")
    } else {
        None
    }
}

/// The first tenant header of the User API sent more than once, by its mapping name. Checked
/// before any mode is chosen, so no route (translated, shadowed, legacy or unmatched) sees
/// two values.
fn duplicate_tenant_header(rt: &Runtime, headers: &http::HeaderMap) -> Option<String> {
    let h = &rt.mappings.v4.headers;
    [
        &h.source_system,
        &h.client_code,
        &h.paper_code,
        &h.client_group_code,
    ]
    .into_iter()
    .find(|name| headers.get_all(*name).iter().nth(1).is_some())
    .map(|name| display_name(&rt.mappings, name))
}

/// The header's name as the legacy API documents it (`X-ClientCode`), when the mapping
/// lists it among the required headers; else as received.
fn display_name(m: &crate::mapping::Mappings, name: &http::HeaderName) -> String {
    m.user_api
        .required_headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, shown)| shown.clone())
        .unwrap_or_else(|| name.to_string())
}
