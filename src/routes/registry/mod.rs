//! The user-registry action API: `{path}?action=<name>`, one v4 call per action, answered
//! `{status, error, messages, trace, action}` as the legacy service did (validation in the
//! body with HTTP 200, HTTP 500 only when the service itself failed).
//!
//! Order of checks, each refusing before anything is forwarded: action and method, tenant
//! (by Host), current user (JWT, for actions that need one), body, inputs.

mod inputs;
mod limits;

pub use limits::check_limits_untranslated;

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response};
use serde_json::{Map, Value};

use crate::audit::{self, AuditLine};
use crate::body::{Body, BoxError};
use crate::config::Tenant;
use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::legacy::json;
use crate::legacy::registry::{v4_failure, Answer};
use crate::metrics::Metrics;
use crate::request::{self, REQUEST_ID};
use crate::routes::Target;
use crate::routes::SHADOW_OF;
use crate::runtime::Runtime;
use crate::tenant;
use crate::upstream::Call;

/// The Authorization the sandbox tenant sends when the client has none: the sandbox wants
/// the header present, and verifies nothing.
const SANDBOX_SERVICE_TOKEN: &str = "Bearer sandbox-service-token";

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
    B::Error: Into<BoxError>,
{
    let request_id = ctx.request_id();
    let query = &ctx.query;
    let reg = &rt.mappings.registry;
    let Some(called) = ctx.called.as_deref().filter(|a| !a.is_empty()) else {
        return Err(GatewayError::UnknownAction(None));
    };
    let Some((action, methods)) = reg.action(called) else {
        let shown: String = called.chars().take(64).collect();
        return Err(GatewayError::UnknownAction(Some(shown)));
    };
    if !methods.contains(&parts.method) {
        return Err(GatewayError::MethodNotAllowed);
    }

    let sandbox_tenant;
    let tenant = match tenant::request_authority(&parts)
        .and_then(|(h, port)| tenant::find(&rt.config.tenants, &h, port))
    {
        Some(t) => t,
        None if rt.sandbox && rt.config.tenants.is_empty() => {
            sandbox_tenant = tenant::sandbox_tenant();
            &sandbox_tenant
        }
        None => return Err(GatewayError::UnknownTenant),
    };

    let client_auth = client_auth(&parts);
    let user = if action.identity {
        Some(
            rt.verifier
                .user_id_fetching(client_auth)
                .await
                .map_err(GatewayError::Unauthorized)?,
        )
    } else {
        None
    };

    // GET is read too: the old `activate` was a GET, and its new password comes in a body.
    let bytes = request::read_body(body, rt.config.limits.body_bytes).await?;
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        request::json_object(&bytes)?
    };
    let (v4_body, secrets) = inputs::collect_inputs(action, &body, query, tenant)?;
    // Copies are not limited: the client's call was, where it was answered.
    if target.shadow_of.is_none() {
        let key = user.clone().or_else(|| limits::limit_key(action, &v4_body));
        limits::check(&rt, metrics, action, &parts, key.as_deref())?;
    }

    let auth = client_auth
        .map(str::to_string)
        .or_else(|| {
            tenant
                .service_token_env
                .as_ref()
                .and_then(|n| std::env::var(n).ok())
        })
        .or_else(|| rt.sandbox.then(|| SANDBOX_SERVICE_TOKEN.to_string()));
    let mut headers = v4_headers(&rt, tenant, auth.as_deref(), request_id);
    crate::telemetry::forward_client_headers(&parts.headers, &mut headers);
    if let Some(v) = target.shadow_of.and_then(|s| HeaderValue::from_str(s).ok()) {
        headers.insert(SHADOW_OF, v);
    }
    let call = Call {
        deadline: target.deadline,
        method: action.method.clone(),
        path: action.path.render(user.as_deref()),
        headers,
        body: Some(Bytes::from(
            serde_json::to_vec(&Value::Object(v4_body)).unwrap_or_default(),
        )),
        label: &action.name,
    };
    let mut secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    secrets.extend(crate::redact::authorization_secrets(&parts.headers));
    let (status, answer, outcome) = match target.upstream.v4(call).await {
        Ok(a) if a.is_success() => (http::StatusCode::OK, Answer::ok(called), "applied"),
        Ok(a) => {
            let (status, answer) =
                v4_failure(&rt.mappings, &a, &secrets, &action.name, called, request_id);
            (status, answer, "failed")
        }
        Err(e) => {
            let (status, answer) =
                GatewayError::Upstream(e).registry_answer(Some(called), request_id);
            (status, answer, "failed")
        }
    };
    // Not for a shadow copy: the legacy backend carried the operation out (see user_api.rs).
    if target.shadow_of.is_none() {
        for event in &action.events {
            audit::record(
                metrics,
                &rt.mappings.events,
                &AuditLine {
                    route: &action.name,
                    legacy_event: event,
                    request_id,
                    customer_id: user.as_deref(),
                    outcome,
                    status: status.as_u16(),
                },
            );
        }
    }
    Ok(json(status, &answer))
}

/// The key that keeps a user on one side of a canary split or shadow sample: the user from
/// the token when there is one, else the request id (calls without a user, such as the
/// forgotten-password start, are split per call).
pub fn split_key(rt: &Runtime, ctx: &RequestContext, parts: &http::request::Parts) -> String {
    rt.verifier
        .user_id(client_auth(parts))
        .unwrap_or_else(|_| ctx.request_id().to_string())
}

/// The client's `Authorization`, when it is text.
fn client_auth(parts: &http::request::Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn v4_headers(rt: &Runtime, t: &Tenant, auth: Option<&str>, request_id: &str) -> HeaderMap {
    let names = &rt.mappings.v4.headers;
    let tenant_names = [
        &names.source_system,
        &names.client_code,
        &names.paper_code,
        &names.client_group_code,
    ];
    // Room for the tenant's four, the token, the request id, JSON both ways and a trace
    // context: no rehash while filling it.
    let mut h = HeaderMap::with_capacity(10);
    for (name, value) in tenant_names.into_iter().zip(&t.header_values) {
        h.insert(name.clone(), value.clone());
    }
    let mut put = |name: http::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    if let Some(a) = auth {
        put(header::AUTHORIZATION, a);
    }
    put(REQUEST_ID, request_id);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    h
}
