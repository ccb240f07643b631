//! What each mode does with a matched call: translate it (or pass what the mapping does not
//! cover to the legacy backend), forward it untouched (legacy), or forward it and offer the
//! shadow a copy; and the refusals, in the shape of the path's API.

use std::sync::Arc;

use bytes::Bytes;
use http::Response;

use super::{split_key, Matched};
use crate::body::{Body, BoxError};
use crate::deadline::Deadline;
use crate::error::{AnswerContext, GatewayError};
use crate::gateway::Gateway;
use crate::legacy::Family;
use crate::passthrough::LegacyBackend;
use crate::request;
use crate::routes::{self, Target};
use crate::runtime::Runtime;
use crate::shadow;

pub(super) async fn translate<B>(
    gw: &Gateway,
    rt: Arc<Runtime>,
    m: &Matched,
    parts: http::request::Parts,
    body: B,
    deadline: Option<&Deadline>,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let target = Target {
        upstream: &rt.upstream,
        shadow_of: None,
        deadline,
    };
    // Strangler pattern: what the gateway does not translate goes to the legacy backend when
    // there is one, in translate mode too: other methods on the User API route, actions the
    // mapping does not know.
    let untranslated = match m.family {
        Family::UserApi => !rt.mappings.user_api.allows(&parts.method),
        Family::Registry => m
            .action
            .as_deref()
            .and_then(|a| rt.mappings.registry.action(a))
            .is_none(),
    };
    let family = m.family;
    if untranslated && rt.backend_for(family).is_some() {
        // Not captured: a replay could not translate it either.
        return legacy(gw, &rt, family, None, parts, body, deadline).await;
    }
    match m.family {
        Family::UserApi if !rt.mappings.user_api.allows(&parts.method) => {
            let id = crate::translate::path::as_sent(&m.raw_id);
            let mut resp = GatewayError::MethodNotAllowed.into_response(
                Family::UserApi,
                &AnswerContext {
                    request_id: &request::request_id(&parts.headers),
                    customer_id: Some(&id),
                    ..AnswerContext::default()
                },
                &rt.mappings,
            );
            if let Ok(v) = http::HeaderValue::from_str(&rt.mappings.user_api.allow_header()) {
                resp.headers_mut().insert(http::header::ALLOW, v);
            }
            resp
        }
        Family::UserApi => {
            routes::user_api::handle(rt.clone(), &gw.metrics, parts, body, &m.raw_id, target).await
        }
        Family::Registry => {
            routes::registry::handle(rt.clone(), &gw.metrics, parts, body, target).await
        }
    }
}

/// The legacy backend of the path's API and the whole request body (bounded), or the
/// legacy-shaped refusal. Action API calls are held to the same rate limits as translated
/// ones: the legacy backend sends the same mails.
async fn backend_and_body<'r, B>(
    rt: &'r Runtime,
    metrics: &crate::metrics::Metrics,
    family: Family,
    parts: &http::request::Parts,
    body: B,
) -> Result<(&'r LegacyBackend, Bytes), Response<Body>>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let Some(backend) = rt.backend_for(family) else {
        return Err(refuse(rt, family, parts, GatewayError::NotFound));
    };
    let bytes = match request::read_body(body, rt.config.limits.body_bytes).await {
        Ok(b) => b,
        Err(e) => return Err(refuse(rt, family, parts, e)),
    };
    if family == Family::Registry {
        if let Some(refused) =
            routes::registry::check_limits_untranslated(rt, metrics, parts, &bytes)
        {
            return Err(refused);
        }
    }
    Ok((backend, bytes))
}

/// Legacy mode: the legacy backend answers, untouched. `m`: the matched route, for capture
/// (`None` for calls no mapping translates).
pub(super) async fn legacy<B>(
    gw: &Gateway,
    rt: &Runtime,
    family: Family,
    m: Option<&Matched>,
    parts: http::request::Parts,
    body: B,
    deadline: Option<&Deadline>,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (backend, bytes) = match backend_and_body(rt, &gw.metrics, family, &parts, body).await {
        Ok(x) => x,
        Err(refused) => return refused,
    };
    // Taken before the headers move into the forwarded request.
    let captured = m.and_then(|m| capture(gw, rt, m, &parts, &bytes));
    let mut parts = parts;
    // The headers move into the forwarded request; the failure answer still names the id.
    let request_id = parts.headers.get(crate::request::REQUEST_ID).cloned();
    let how = crate::passthrough::Forwarding {
        deadline,
        ..Default::default()
    };
    match backend
        .forward_raw(&mut parts, bytes, &gw.metrics, how)
        .await
    {
        Ok((head, answer)) => {
            if let Some(c) = captured {
                gw.capture
                    .finish(rt, &gw.metrics, c, head.status.as_u16(), &answer);
            }
            Response::from_parts(head, crate::body::full(answer))
        }
        Err(e) => {
            if let Some(id) = request_id {
                parts.headers.insert(crate::request::REQUEST_ID, id);
            }
            upstream_failure(rt, family, &parts, e)
        }
    }
}

/// Shadow mode: the legacy backend answers; a translated copy is offered to the shadow.
pub(super) async fn shadowed<B>(
    gw: &Gateway,
    rt: &Arc<Runtime>,
    family: Family,
    m: Matched,
    parts: http::request::Parts,
    body: B,
    deadline: Option<&Deadline>,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (backend, bytes) = match backend_and_body(rt, &gw.metrics, family, &parts, body).await {
        Ok(x) => x,
        Err(refused) => return refused,
    };
    let started = std::time::Instant::now();
    // The copy keeps the request whole: the forwarded request takes a clone.
    let mut sent = parts.clone();
    let (head, answer) = match backend
        .forward_raw(
            &mut sent,
            bytes.clone(),
            &gw.metrics,
            crate::passthrough::Forwarding {
                identity_encoding: true,
                deadline,
            },
        )
        .await
    {
        Ok(x) => x,
        Err(e) => return upstream_failure(rt, family, &parts, e),
    };
    let latency = started.elapsed();
    let status = head.status.as_u16();
    let resp = Response::from_parts(head, crate::body::full(answer.clone()));
    if let Some(c) = capture(gw, rt, &m, &parts, &bytes) {
        gw.capture.finish(rt, &gw.metrics, c, status, &answer);
    }
    let sample_key = split_key(rt, &m, &parts);
    let call = shadow::Original {
        family: m.family,
        tenant: m.tenant,
        part: m.action,
        sample_key,
        request_id: request::request_id(&parts.headers),
        parts,
        body: bytes,
        raw_id: m.raw_id,
        writes: m.writes,
    };
    gw.shadow.offer(
        &gw.metrics,
        rt,
        call,
        shadow::LegacyAnswer {
            status,
            body: answer,
            latency,
        },
    );
    resp
}

/// The capture of a call the legacy backend answers, when `[capture]` selects it.
fn capture(
    gw: &Gateway,
    rt: &Runtime,
    m: &Matched,
    parts: &http::request::Parts,
    body: &Bytes,
) -> Option<crate::capture::Pending> {
    let subject = crate::capture::Subject {
        family: m.family,
        part: m.action.as_deref(),
        tenant: &m.tenant,
        writes: m.writes,
    };
    gw.capture
        .begin(rt, &subject, parts, body, || split_key(rt, m, parts))
}

fn upstream_failure(
    rt: &Runtime,
    family: Family,
    parts: &http::request::Parts,
    e: crate::upstream::UpstreamError,
) -> Response<Body> {
    let mut resp = refuse(rt, family, parts, GatewayError::Legacy(family, e));
    // Not a refusal: the call was forwarded.
    resp.extensions_mut().remove::<crate::legacy::Refused>();
    resp
}

pub(super) fn refuse(
    rt: &Runtime,
    family: Family,
    parts: &http::request::Parts,
    e: GatewayError,
) -> Response<Body> {
    let request_id = request::request_id(&parts.headers);
    let id = match family {
        Family::UserApi => rt
            .user_api_raw_id(parts.uri.path())
            .map(|raw| crate::translate::path::as_sent(&raw)),
        Family::Registry => None,
    };
    e.into_response(
        family,
        &AnswerContext {
            request_id: &request_id,
            customer_id: id.as_deref(),
            read: id.is_some()
                && (parts.method == http::Method::GET || parts.method == http::Method::HEAD),
            ..AnswerContext::default()
        },
        &rt.mappings,
    )
}
