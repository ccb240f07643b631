//! `PUT /User/{customerRegistrationId}`: the body's fields choose the v4 calls (parts); the
//! parts are carried out one at a time in the mapping's order, stopping at the first failure,
//! and answered with one legacy envelope that says what was applied. `GET` (and `HEAD`) on the
//! same path is the read, in [`read`].
//!
//! Nothing is forwarded until the whole body has been checked: an unknown field, a wrong
//! type or a missing header refuses the call before the first v4 request.

mod plan;
pub mod read;

pub use plan::{plan, plan_tree, Planned, PlannedTree};

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

use crate::audit::{self, AuditLine};
use crate::body::Body;
use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::legacy::json;
use crate::legacy::user_api::{v4_failure, Envelope, ErrorEntry, ResultBody};
use crate::mapping::UserApi;
use crate::metrics::Metrics;
use crate::request::{self, REQUEST_ID};
use crate::routes::Target;
use crate::routes::SHADOW_OF;
use crate::runtime::Runtime;
use crate::translate::path;
use crate::upstream::Call;

/// The v4 headers: the mandatory ones as the client sent them, the request id, JSON. An
/// allow-list, so hop-by-hop and unrelated headers never pass. A missing or blank
/// `Authorization` is a 401 (legacy clients renew their token on it), before the other
/// headers are named: a client missing both needs a token first.
pub(crate) fn forward_headers(
    ua: &UserApi,
    incoming: &HeaderMap,
    request_id: &str,
) -> Result<HeaderMap, GatewayError> {
    // Sized for the allow-list plus the three set below: no rehash while filling it.
    let mut out = HeaderMap::with_capacity(ua.required_headers.len() + 5);
    let blank = |v: &HeaderValue| v.as_bytes().trim_ascii().is_empty();
    // One pass over the client's few headers, each name compared with the allow-list (an
    // integer comparison for standard names, a short byte comparison for the others), where
    // a lookup per allowed name would hash each of them.
    let required = &ua.required_headers;
    let mut found: u64 = 0;
    let mut authorized = false;
    let mut id = None;
    for (name, v) in incoming.iter() {
        if *name == header::AUTHORIZATION {
            authorized = !no_credentials(v.as_bytes());
        }
        if let Some(i) = required.iter().position(|(n, _)| n == name) {
            if !blank(v) {
                // The mapping's name, not the request's: a parsed custom name is a fresh
                // buffer each request, and its first clone allocates to share it.
                out.append(required[i].0.clone(), v.clone());
                found |= 1u64 << i;
            }
        } else if *name == REQUEST_ID {
            id = Some(v);
        } else if crate::telemetry::TRACE_HEADERS.contains(name) {
            out.insert(name.clone(), v.clone());
        }
    }
    if !authorized {
        return Err(GatewayError::Unauthorized(
            crate::identity::IdentityError::Missing,
        ));
    }
    let missing: Vec<String> = required
        .iter()
        .enumerate()
        .filter(|(i, _)| found & (1u64 << i) == 0)
        .map(|(_, (_, spelled))| spelled.clone())
        .collect();
    if !missing.is_empty() {
        return Err(GatewayError::MissingHeaders(missing));
    }
    // The edge's value, shared rather than parsed again; `request_id` only when the edge
    // did not run (a shadow copy made from a request that lost it).
    match id {
        Some(v) => {
            out.insert(REQUEST_ID, v.clone());
        }
        None => {
            if let Ok(v) = HeaderValue::from_str(request_id) {
                out.insert(REQUEST_ID, v);
            }
        }
    }
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    Ok(out)
}

/// An `Authorization` that carries no credential: blank, or a scheme alone (`Bearer`). Sent
/// on, it would reach v4 as a call without a token; refused, the client renews its token.
fn no_credentials(value: &[u8]) -> bool {
    let value = value.trim_ascii();
    value.is_empty() || value.eq_ignore_ascii_case(b"bearer")
}

pub async fn handle<B>(
    rt: Arc<Runtime>,
    metrics: &Metrics,
    ctx: &RequestContext,
    parts: http::request::Parts,
    body: B,
    target: Target<'_>,
) -> Result<Response<Body>, GatewayError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<crate::body::BoxError>,
{
    let ua = &rt.mappings.user_api;
    let raw_id = ctx.raw_id.as_deref().unwrap_or("");
    if ctx.read {
        return read::handle(&rt, metrics, ctx, &parts, target).await;
    }
    let request_id = ctx.request_id();
    // Headers before the id: a client without a token gets its 401 whatever else is wrong.
    let mut headers = forward_headers(ua, &parts.headers, request_id)?;
    if let Some(v) = target.shadow_of.and_then(|s| HeaderValue::from_str(s).ok()) {
        headers.insert(SHADOW_OF, v);
    }
    let id = path::decode_id(raw_id).map_err(GatewayError::BadId)?;
    let bytes = request::read_body(body, rt.config.limits.body_bytes).await?;
    let planned = plan(ua, &bytes)?;
    let call = Exchange {
        target,
        id: &id,
        request_id,
        client_headers: &parts.headers,
    };
    Ok(run(&rt, metrics, call, headers, planned).await)
}

/// The values v4 must not echo back to the client: the secret fields of this request and the
/// caller's token. Only a failed call needs them, so they are gathered only then.
fn secrets<'a>(planned: &'a [Planned], headers: &'a HeaderMap) -> Vec<&'a str> {
    let mut secrets: Vec<&str> = planned.iter().flat_map(Planned::secrets).collect();
    // v4 echoing the caller's token in an error text must not pass it on.
    secrets.extend(crate::redact::authorization_secrets(headers));
    secrets
}

/// What the calls of one update share: where they go and what they answer with.
struct Exchange<'a> {
    target: Target<'a>,
    id: &'a str,
    request_id: &'a str,
    /// The client's own headers: its token is what v4 must not echo back.
    client_headers: &'a HeaderMap,
}

/// Carries out the planned calls in order and builds the one legacy answer.
async fn run(
    rt: &Runtime,
    metrics: &Metrics,
    x: Exchange<'_>,
    headers: HeaderMap,
    planned: Vec<Planned>,
) -> Response<Body> {
    let Exchange {
        target,
        id,
        request_id,
        client_headers,
    } = x;
    let ua = &rt.mappings.user_api;
    let multi = planned.len() > 1;
    let mut applied = Vec::new();
    let mut failure: Option<(StatusCode, ErrorEntry)> = None;
    let mut last_status = StatusCode::OK;
    // The last call takes the headers; only the calls before it need a copy.
    let mut headers = Some(headers);
    let mut done = 0;
    for (i, p) in planned.iter().enumerate() {
        done = i + 1;
        let part = &ua.parts[p.part];
        let call_headers = if i + 1 == planned.len() {
            headers.take().unwrap_or_default()
        } else {
            headers.clone().unwrap_or_default()
        };
        let call = Call {
            deadline: target.deadline,
            method: part.method.clone(),
            path: part.path.render(Some(id)),
            headers: call_headers,
            body: Some(p.body.clone()),
            label: &part.name,
        };
        let result = target.upstream.v4(call).await;
        let (outcome, status) = match result {
            Ok(answer) if answer.is_success() => {
                applied.push(part.label.clone());
                last_status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
                ("applied", answer.status)
            }
            Ok(answer) => {
                let status = answer.status;
                let secrets = secrets(&planned, client_headers);
                let part = multi.then(|| part.label.clone());
                failure = Some(v4_failure(&rt.mappings, answer, &secrets, part));
                ("failed", status)
            }
            Err(e) => {
                let e = GatewayError::Upstream(e);
                let mut entry = e.user_api_entry(&rt.mappings);
                entry.part = multi.then(|| part.label.clone());
                failure = Some((e.status(), entry));
                ("failed", e.status().as_u16())
            }
        };
        // A shadow copy is not an operation the client asked for: the legacy backend carried
        // that one out. Auditing it would count every shadowed call twice.
        if target.shadow_of.is_none() {
            audit::record_all(
                metrics,
                &rt.mappings.events,
                &part.events,
                &AuditLine {
                    route: &ua.name,
                    legacy_event: "",
                    request_id,
                    customer_id: Some(id),
                    outcome,
                    status,
                },
            );
        }
        if failure.is_some() {
            break;
        }
    }
    let not_attempted: Vec<String> = planned[done..]
        .iter()
        .map(|p| ua.parts[p.part].label.clone())
        .collect();

    if failure.is_none() && !multi {
        return crate::legacy::success_json(
            last_status,
            crate::legacy::user_api::updated(id, request_id),
        );
    }
    let (status, code, errors, updated) = match failure {
        None => (last_status, 0, vec![], true),
        Some((status, entry)) => (status, status.as_u16(), vec![entry], false),
    };
    let envelope = Envelope {
        code,
        errors,
        result: ResultBody {
            customer_registration_id: id.to_string(),
            updated: Some(updated),
            applied: multi.then_some(applied),
            not_attempted: multi.then_some(not_attempted),
        },
        session_id: None,
        request_id: request_id.to_string(),
    };
    json(status, &envelope)
}
