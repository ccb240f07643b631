//! Tenants of the action API: legacy registry clients send no tenant headers, so the gateway
//! chooses them from the request's `Host` (one configured entry per newspaper site).

use http::request::Parts;

use crate::config::Tenant;

/// The tenant that serves every Host when the gateway runs on the embedded sandbox and no
/// tenant is configured, so the README's curl lines work as they are.
pub fn sandbox_tenant() -> Tenant {
    Tenant {
        host: "*".into(),
        source_system: "dwo3rd-userregistry".into(),
        client_code: "SANDBOX".into(),
        paper_code: "SANDBOX".into(),
        client_group_code: "SANDBOX".into(),
        return_url: "http://localhost:8080/reset-password".into(),
        service_token_env: None,
    }
}

/// The request's host without port, lower-cased: `Host`, or the URI authority (HTTP/2).
pub fn request_host(parts: &Parts) -> Option<String> {
    let raw = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_string()))?;
    let host = match raw.strip_prefix('[') {
        // [::1]:8080
        Some(rest) => rest.split(']').next().unwrap_or("").to_string(),
        None => raw.split(':').next().unwrap_or("").to_string(),
    };
    Some(host.to_ascii_lowercase())
}

pub fn find<'a>(tenants: &'a [Tenant], host: &str) -> Option<&'a Tenant> {
    tenants.iter().find(|t| t.host == host)
}
