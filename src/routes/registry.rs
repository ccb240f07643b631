//! The user-registry action API: `{path}?action=<name>`, one v4 call per action, answered
//! `{status, error, messages, trace, action}` as the legacy service did (validation in the
//! body with HTTP 200, HTTP 500 only when the service itself failed).
//!
//! Order of checks, each refusing before anything is forwarded: action and method, tenant
//! (by Host), current user (JWT, for actions that need one), body, inputs.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response};
use serde_json::{Map, Value};

use crate::audit::{self, Operation};
use crate::body::{Body, BoxError};
use crate::config::Tenant;
use crate::error::{GatewayError, Reply};
use crate::legacy::registry::{http_status, Answer};
use crate::legacy::{json, Family};
use crate::mapping::registry::{Action, Format, Input, InputSource};
use crate::mapping::Failure;
use crate::metrics::Metrics;
use crate::redact::scrub;
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
    parts: http::request::Parts,
    body: B,
    target: Target<'_>,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let request_id = request::request_id(&parts.headers);
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let reg = &rt.mappings.registry;
    let called = query
        .iter()
        .find(|(k, _)| *k == reg.action_param)
        .map(|(_, v)| v.clone());
    let refuse = |e: GatewayError, action: Option<&str>| {
        e.into_response(
            Family::Registry,
            &Reply {
                request_id: &request_id,
                customer_id: None,
                action,
                ..Reply::default()
            },
            &rt.mappings,
        )
    };

    let Some(called) = called.filter(|a| !a.is_empty()) else {
        return refuse(GatewayError::UnknownAction(None), None);
    };
    let Some((action, methods)) = reg.action(&called) else {
        let shown: String = called.chars().take(64).collect();
        return refuse(GatewayError::UnknownAction(Some(shown)), None);
    };
    let called = called.as_str();
    if !methods.contains(&parts.method) {
        let mut resp = refuse(GatewayError::MethodNotAllowed, Some(called));
        let allow: Vec<&str> = methods.iter().map(http::Method::as_str).collect();
        if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
            resp.headers_mut().insert(header::ALLOW, v);
        }
        return resp;
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
        None => return refuse(GatewayError::UnknownTenant, Some(called)),
    };

    let client_auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let user = if action.identity {
        match rt.verifier.user_id_fetching(client_auth).await {
            Ok(id) => Some(id),
            Err(e) => return refuse(GatewayError::Unauthorized(e), Some(called)),
        }
    } else {
        None
    };

    // GET is read too: the old `activate` was a GET, and its new password comes in a body.
    let body = async {
        let bytes = request::read_body(body, rt.config.limits.body_bytes).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            Ok(Map::new())
        } else {
            request::json_object(&bytes)
        }
    }
    .await;
    let body = match body {
        Ok(b) => b,
        Err(e) => return refuse(e, Some(called)),
    };
    let (v4_body, secrets) = match collect_inputs(action, &body, &query, tenant) {
        Ok(x) => x,
        Err(e) => return refuse(e, Some(called)),
    };
    // Copies are not limited: the client's call was, where it was answered.
    if target.shadow_of.is_none() {
        let peer = parts
            .extensions
            .get::<crate::server::PeerAddr>()
            .map(|p| p.0.ip());
        let ip = crate::ratelimit::client_ip(peer, &parts.headers, &rt.config.trusted_proxies);
        let key = user.clone().or_else(|| limit_key(action, &v4_body));
        if let Err(l) = rt.rate_limits.check(&action.name, ip, key.as_deref()) {
            metrics.rate_limited(&action.name, l.kind.as_str());
            tracing::warn!(action = %action.name, key = l.kind.as_str(), "rate limit reached; refused");
            return refuse(GatewayError::RateLimited(l.retry_after_secs), Some(called));
        }
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
    let mut headers = v4_headers(&rt, tenant, auth.as_deref(), &request_id);
    crate::telemetry::forward_client_headers(&parts.headers, &mut headers);
    if let Some(v) = target.shadow_of.and_then(|s| HeaderValue::from_str(s).ok()) {
        headers.insert(SHADOW_OF, v);
    }
    let call = Call {
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
            let text = scrub(&a.text, &secrets);
            let legacy = reg.legacy_error(&Failure {
                status: a.status,
                code: rt.mappings.v4.short_code(&a.code),
                text: &text,
                action: Some(&action.name),
            });
            let messages = legacy
                .messages
                .iter()
                .map(|m| m.replace("{text}", &text))
                .collect();
            (
                http_status(legacy.response),
                Answer::failure(
                    legacy.response,
                    legacy.error,
                    messages,
                    Some(called),
                    &request_id,
                ),
                "failed",
            )
        }
        Err(e) => {
            let (status, answer) =
                GatewayError::Upstream(e).registry_answer(Some(called), &request_id);
            (status, answer, "failed")
        }
    };
    // Not for a shadow copy: the legacy backend carried the operation out (see user_api.rs).
    if target.shadow_of.is_none() {
        for event in &action.events {
            audit::record(
                metrics,
                &rt.mappings.events,
                &Operation {
                    route: &action.name,
                    legacy_event: event,
                    request_id: &request_id,
                    customer_id: user.as_deref(),
                    outcome,
                    status: status.as_u16(),
                },
            );
        }
    }
    json(status, &answer)
}

/// What a call without a user is limited by: its inputs that identify the target (the e-mail
/// address, the confirmation id), i.e. those from the query or not secret; never the new
/// password. Read from the mapping, so a new action is keyed without code.
fn limit_key(action: &Action, v4_body: &Map<String, Value>) -> Option<String> {
    let parts: Vec<&str> = action
        .inputs
        .iter()
        .filter(|i| i.from != InputSource::Tenant && (i.from == InputSource::Query || !i.secret))
        .filter_map(|i| v4_body.get(i.v4.as_deref().unwrap_or(&i.name))?.as_str())
        .collect();
    (!parts.is_empty()).then(|| parts.join("|"))
}

/// The rate-limit check for a call the legacy backend answers (legacy and shadow modes): the
/// same limits and keys as when translating, read from the raw request (the user from the
/// token, the e-mail address from the body, the confirmation id from the query). `Some` is
/// the 429 answer.
pub fn check_limits_untranslated(
    rt: &Runtime,
    metrics: &Metrics,
    parts: &http::request::Parts,
    body: &[u8],
) -> Option<Response<Body>> {
    let reg = &rt.mappings.registry;
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    // No known action: nothing to limit (`None`, the call passes).
    let (called, (action, _)) = query
        .iter()
        .find(|(k, _)| *k == reg.action_param)
        .and_then(|(_, v)| reg.action(v).map(|a| (v.clone(), a)))?;
    let user = action
        .identity
        .then(|| {
            let auth = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            rt.verifier.user_id(auth).ok()
        })
        .flatten();
    let json: Map<String, Value> = serde_json::from_slice(body).unwrap_or_default();
    let key = user.or_else(|| {
        let parts: Vec<String> = action
            .inputs
            .iter()
            .filter(|i| {
                i.from != InputSource::Tenant && (i.from == InputSource::Query || !i.secret)
            })
            .filter_map(|i| match i.from {
                InputSource::Query => i
                    .names()
                    .find_map(|n| query.iter().find(|(k, _)| k == n))
                    .map(|(_, v)| v.clone()),
                _ => i
                    .names()
                    .find_map(|n| json.get(n)?.as_str().map(str::to_string)),
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("|"))
    });
    let peer = parts
        .extensions
        .get::<crate::server::PeerAddr>()
        .map(|p| p.0.ip());
    let ip = crate::ratelimit::client_ip(peer, &parts.headers, &rt.config.trusted_proxies);
    rt.rate_limits
        .check(&action.name, ip, key.as_deref())
        .err()
        .map(|l| {
            metrics.rate_limited(&action.name, l.kind.as_str());
            tracing::warn!(action = %action.name, key = l.kind.as_str(), "rate limit reached; refused");
            GatewayError::RateLimited(l.retry_after_secs).into_response(
                Family::Registry,
                &Reply {
                    request_id: &request::request_id(&parts.headers),
                    customer_id: None,
                    action: Some(&called),
                    ..Reply::default()
                },
                &rt.mappings,
            )
        })
}

/// The canonical name of the action a request asks for, if it names a known one.
pub fn action_name(rt: &Runtime, uri: &http::Uri) -> Option<String> {
    let reg = &rt.mappings.registry;
    let called = url::form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, _)| *k == reg.action_param)
        .map(|(_, v)| v.into_owned())?;
    reg.action(&called).map(|(a, _)| a.name.clone())
}

/// The key that keeps a user on one side of a canary split or shadow sample: the user from
/// the token when there is one, else the request id (calls without a user, such as the
/// forgotten-password start, are split per call).
pub fn split_key(rt: &Runtime, parts: &http::request::Parts) -> String {
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    rt.verifier
        .user_id(auth)
        .unwrap_or_else(|_| request::request_id(&parts.headers))
}

/// Reads every input of the action, checks it, and builds the v4 body. Returns the secret
/// values too, so v4 texts can be scrubbed of them.
fn collect_inputs(
    action: &Action,
    body: &Map<String, Value>,
    query: &[(String, String)],
    tenant: &Tenant,
) -> Result<(Map<String, Value>, Vec<String>), GatewayError> {
    let mut values: Vec<(&Input, Option<String>)> = Vec::new();
    for input in &action.inputs {
        let value = match input.from {
            InputSource::Body => match input.names().find_map(|n| body.get(n)) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(_) => {
                    return Err(GatewayError::InvalidValue(format!(
                        "{} must be a string",
                        input.name
                    )))
                }
            },
            InputSource::Query => input
                .names()
                .find_map(|n| query.iter().find(|(k, _)| k == n))
                .map(|(_, v)| v.clone()),
            InputSource::Tenant => tenant_field(tenant, &input.name),
        };
        values.push((input, value));
    }
    let missing: Vec<String> = values
        .iter()
        .filter(|(i, v)| i.required && v.is_none())
        .map(|(i, _)| i.name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(GatewayError::MissingAttributes(missing));
    }
    let mut out = Map::new();
    let mut secrets = Vec::new();
    for (input, value) in values {
        let Some(value) = value else { continue };
        if value.trim().is_empty() {
            if input.required {
                let msg = input
                    .empty_message
                    .clone()
                    .unwrap_or_else(|| format!("{} is empty!", input.name));
                return Err(GatewayError::InvalidValue(msg));
            }
            continue;
        }
        if input.format == Some(Format::Email) && !looks_like_email(&value) {
            return Err(GatewayError::InvalidValue(
                input.format_message.clone().unwrap_or_default(),
            ));
        }
        if input.secret {
            secrets.push(value.clone());
        }
        if let Some(v4) = &input.v4 {
            out.insert(v4.clone(), Value::String(value));
        }
    }
    Ok((out, secrets))
}

fn tenant_field(t: &Tenant, name: &str) -> Option<String> {
    match name {
        "return_url" => Some(t.return_url.clone()),
        "source_system" => Some(t.source_system.clone()),
        "client_code" => Some(t.client_code.clone()),
        "paper_code" => Some(t.paper_code.clone()),
        "client_group_code" => Some(t.client_group_code.clone()),
        _ => None,
    }
}

/// One `@`, something before it, a dot after it, no spaces: the legacy check's strictness.
fn looks_like_email(s: &str) -> bool {
    let mut it = s.splitn(2, '@');
    match (it.next(), it.next()) {
        (Some(local), Some(domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.chars().any(char::is_whitespace)
        }
        _ => false,
    }
}

fn v4_headers(rt: &Runtime, t: &Tenant, auth: Option<&str>, request_id: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    let names = &rt.mappings.v4.headers;
    let mut put = |name: &http::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name.clone(), v);
        }
    };
    if let Some(a) = auth {
        put(&header::AUTHORIZATION, a);
    }
    put(&names.source_system, &t.source_system);
    put(&names.client_code, &t.client_code);
    put(&names.paper_code, &t.paper_code);
    put(&names.client_group_code, &t.client_group_code);
    put(&http::HeaderName::from_static(REQUEST_ID), request_id);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    h
}

#[cfg(test)]
mod tests {
    use super::looks_like_email;

    #[test]
    fn email_check_is_the_simple_legacy_one() {
        assert!(looks_like_email("a@b.cd"));
        for bad in [
            "", "a", "a@", "@b.c", "a@b", "a b@c.d", "a@b@c.d", "a@.b", "a@b.",
        ] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }
}
