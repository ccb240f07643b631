//! What a copy's diff must never show: the mapping's secret body fields (by key, at any
//! depth) and this call's secret values wherever they appear (those fields' values, secret
//! query inputs such as the reset id, the credential of `Authorization`). Gathered only for
//! a copy that differs: matching copies write nothing.

use serde_json::Value;

use crate::mapping::registry::InputSource;
use crate::runtime::Runtime;

/// Secret key names and this call's secret values.
pub fn of_call(
    rt: &Runtime,
    parts: &http::request::Parts,
    body: &[u8],
) -> (Vec<String>, Vec<String>) {
    let mut keys: Vec<String> = rt.mappings.user_api.secret_fields.clone();
    let mut query_names: Vec<String> = Vec::new();
    for a in &rt.mappings.registry.actions {
        for i in a.inputs.iter().filter(|i| i.secret) {
            match i.from {
                InputSource::Body => keys.extend(i.names().map(str::to_string)),
                InputSource::Query => query_names.extend(i.names().map(str::to_string)),
                InputSource::Tenant => {}
            }
        }
    }
    keys.push("authorization".into());
    let mut values: Vec<String> = crate::redact::authorization_secrets(&parts.headers)
        .into_iter()
        .map(str::to_string)
        .collect();
    if let Some(q) = parts.uri.query() {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            if query_names.iter().any(|n| *n == k) {
                values.push(v.into_owned());
            }
        }
    }
    if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) {
        for (k, v) in m {
            if keys.iter().any(|s| s.eq_ignore_ascii_case(&k)) {
                if let Value::String(s) = v {
                    values.push(s);
                }
            }
        }
    }
    (keys, values)
}
