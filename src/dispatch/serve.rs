//! What each mode does with a matched call: translate it (or pass what the mapping does not
//! cover to the legacy backend), forward it untouched (legacy), or forward it and offer the
//! shadow a copy. Each returns the answer or the error dispatch turns into one.

use bytes::Bytes;
use http::Response;

use super::split_key;
use crate::body::{Body, BoxError};
use crate::context::RequestContext;
use crate::deadline::Deadline;
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::legacy::Family;
use crate::passthrough::LegacyBackend;
use crate::request;
use crate::routes::{self, Target};
use crate::runtime::Runtime;
use crate::shadow;

/// Whether a call the legacy backend answers may be captured: not when no mapping covers
/// it, since a replay could not translate it either.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Capture {
    Yes,
    No,
}

pub(super) async fn translate<B>(
    gw: &Gateway,
    rt: &std::sync::Arc<Runtime>,
    ctx: &RequestContext,
    parts: http::request::Parts,
    body: B,
    deadline: Option<&Deadline>,
) -> Result<Response<Body>, GatewayError>
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
    let untranslated = match ctx.family {
        Family::UserApi => !rt.mappings.user_api.allows(&parts.method),
        Family::Registry => ctx.part.is_none(),
    };
    if untranslated && rt.backend_for(ctx.family).is_some() {
        return legacy(gw, rt, ctx, Capture::No, parts, body, deadline).await;
    }
    match ctx.family {
        Family::UserApi if !rt.mappings.user_api.allows(&parts.method) => {
            Err(GatewayError::MethodNotAllowed)
        }
        Family::UserApi => {
            routes::user_api::handle(rt.clone(), &gw.metrics, ctx, parts, body, target).await
        }
        Family::Registry => {
            routes::registry::handle(rt.clone(), &gw.metrics, ctx, parts, body, target).await
        }
    }
}

/// The legacy backend of the path's API and the whole request body (bounded). Action API
/// calls are held to the same rate limits as translated ones: the legacy backend sends the
/// same mails.
async fn backend_and_body<'r, B>(
    rt: &'r Runtime,
    metrics: &crate::metrics::Metrics,
    ctx: &RequestContext,
    parts: &http::request::Parts,
    body: B,
) -> Result<(&'r LegacyBackend, Bytes), GatewayError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let backend = rt.backend_for(ctx.family).ok_or(GatewayError::NotFound)?;
    let bytes = request::read_body(body, rt.config.limits.body_bytes).await?;
    if ctx.family == Family::Registry {
        routes::registry::check_limits_untranslated(rt, metrics, ctx, parts, &bytes)?;
    }
    Ok((backend, bytes))
}

/// Legacy mode: the legacy backend answers, untouched.
pub(super) async fn legacy<B>(
    gw: &Gateway,
    rt: &Runtime,
    ctx: &RequestContext,
    capture: Capture,
    parts: http::request::Parts,
    body: B,
    deadline: Option<&Deadline>,
) -> Result<Response<Body>, GatewayError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (backend, bytes) = backend_and_body(rt, &gw.metrics, ctx, &parts, body).await?;
    // Taken before the headers move into the forwarded request.
    let captured = match capture {
        Capture::Yes => begin_capture(gw, rt, ctx, &parts, &bytes),
        Capture::No => None,
    };
    let mut parts = parts;
    let how = crate::passthrough::Forwarding {
        deadline,
        ..Default::default()
    };
    let (head, answer) = backend
        .forward_raw(&mut parts, bytes, &gw.metrics, how)
        .await
        .map_err(|e| GatewayError::Legacy(ctx.family, e))?;
    if let Some(c) = captured {
        gw.capture
            .finish(rt, &gw.metrics, c, head.status.as_u16(), &answer);
    }
    Ok(Response::from_parts(head, crate::body::full(answer)))
}

/// Shadow mode: the legacy backend answers; a translated copy is offered to the shadow.
pub(super) async fn shadowed<B>(
    gw: &Gateway,
    rt: &std::sync::Arc<Runtime>,
    ctx: &RequestContext,
    parts: http::request::Parts,
    body: B,
    deadline: Option<&Deadline>,
) -> Result<Response<Body>, GatewayError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (backend, bytes) = backend_and_body(rt, &gw.metrics, ctx, &parts, body).await?;
    let started = std::time::Instant::now();
    // The copy keeps the request whole: the forwarded request takes a clone.
    let mut sent = parts.clone();
    let (head, answer) = backend
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
        .map_err(|e| GatewayError::Legacy(ctx.family, e))?;
    let latency = started.elapsed();
    let status = head.status.as_u16();
    let resp = Response::from_parts(head, crate::body::full(answer.clone()));
    if let Some(c) = begin_capture(gw, rt, ctx, &parts, &bytes) {
        gw.capture.finish(rt, &gw.metrics, c, status, &answer);
    }
    let call = shadow::Original {
        sample_key: split_key(rt, ctx, &parts),
        ctx: ctx.clone(),
        parts,
        body: bytes,
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
    Ok(resp)
}

/// The capture of a call the legacy backend answers, when `[capture]` selects it.
fn begin_capture(
    gw: &Gateway,
    rt: &Runtime,
    ctx: &RequestContext,
    parts: &http::request::Parts,
    body: &Bytes,
) -> Option<crate::capture::Pending> {
    gw.capture
        .begin(rt, ctx, parts, body, || split_key(rt, ctx, parts))
}
