//! The rate limits of the action API: the same limits and keys whether the call
//! is translated (keys read from the v4 body built) or answered by the legacy backend (keys
//! read from the raw request), so a cut-over never changes who is limited.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::client_auth;
use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::mapping::registry::{Action, Input, InputSource};
use crate::metrics::Metrics;
use crate::runtime::Runtime;

/// What a translated call without a user is limited by, read from the v4 body it built.
/// From the mapping, so a new action is keyed without code.
pub(super) fn limit_key(action: &Action, v4_body: &Map<String, Value>) -> Option<String> {
    key_of(action, |i| {
        v4_body
            .get(i.v4.as_deref().unwrap_or(&i.name))?
            .as_str()
            .map(Cow::Borrowed)
    })
}

/// The rate-limit check for a call the legacy backend answers (legacy and shadow modes): the
/// same limits and keys as when translating, read from the raw request (the user from the
/// token, the e-mail address from the body, the confirmation id from the query). A call
/// naming no known action passes.
pub fn check_limits_untranslated(
    rt: &Runtime,
    metrics: &Metrics,
    ctx: &RequestContext,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<(), GatewayError> {
    let reg = &rt.mappings.registry;
    let query = &ctx.query;
    let Some((action, _)) = ctx.called.as_deref().and_then(|c| reg.action(c)) else {
        return Ok(());
    };
    let user = action
        .identity
        .then(|| rt.verifier.user_id(client_auth(parts)).ok())
        .flatten();
    let json: Map<String, Value> = serde_json::from_slice(body).unwrap_or_default();
    let key = user.or_else(|| {
        key_of(action, |i| match i.from {
            InputSource::Query => i
                .names()
                .find_map(|n| query.iter().find(|(k, _)| k == n))
                .map(|(_, v)| Cow::Borrowed(v.as_str())),
            _ => i
                .names()
                .find_map(|n| json.get(n)?.as_str().map(Cow::Borrowed)),
        })
    });
    check(rt, metrics, action, parts, key.as_deref())
}

/// One action's limits for this client and key; the refusal names when to retry.
pub(super) fn check(
    rt: &Runtime,
    metrics: &Metrics,
    action: &Action,
    parts: &http::request::Parts,
    key: Option<&str>,
) -> Result<(), GatewayError> {
    let peer = parts
        .extensions
        .get::<crate::request::PeerAddr>()
        .map(|p| p.0.ip());
    let ip = crate::ratelimit::client_ip(peer, &parts.headers, &rt.config.trusted_proxies);
    rt.rate_limits.check(&action.name, ip, key).map_err(|l| {
        metrics.rate_limited(&action.name, l.kind.as_str());
        tracing::warn!(action = %action.name, key = l.kind.as_str(), "rate limit reached; refused");
        GatewayError::RateLimited(l.retry_after_secs)
    })
}

/// The key of a call without a user: the values of the inputs that identify what it targets
/// (the e-mail address, the confirmation id: those from the query or not secret, never the
/// new password), joined by `|`; `value` reads one input where the caller has it (the v4
/// body built, or the raw request). One function for both, so a cut-over never changes a key.
fn key_of<'v>(
    action: &Action,
    value: impl FnMut(&Input) -> Option<Cow<'v, str>>,
) -> Option<String> {
    let parts: Vec<Cow<'v, str>> = action
        .inputs
        .iter()
        .filter(|i| i.from != InputSource::Tenant && (i.from == InputSource::Query || !i.secret))
        .filter_map(value)
        .collect();
    (!parts.is_empty()).then(|| parts.join("|"))
}
