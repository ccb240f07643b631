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
    request_authority(parts).map(|(host, _)| host)
}

/// The request's host, lower-cased, and its port when it names one.
pub fn request_authority(parts: &Parts) -> Option<(String, Option<u16>)> {
    let raw = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_string()))?;
    Some(split_host_port(&raw))
}

/// `name:port` or `[v6]:port` into the lower-cased name and the port (`None` when absent or
/// not a number).
pub fn split_host_port(raw: &str) -> (String, Option<u16>) {
    let (host, port) = match raw.strip_prefix('[') {
        // [::1]:8080
        Some(rest) => {
            let (h, after) = rest.split_once(']').unwrap_or((rest, ""));
            (h, after.strip_prefix(':'))
        }
        None => match raw.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (raw, None),
        },
    };
    (host.to_ascii_lowercase(), port.and_then(|p| p.parse().ok()))
}

/// The tenant for a request's host and port: a tenant configured with this exact port wins;
/// a tenant configured without a port matches any port.
pub fn find<'a>(tenants: &'a [Tenant], host: &str, port: Option<u16>) -> Option<&'a Tenant> {
    let exact = port.and_then(|p| {
        tenants.iter().find(|t| {
            let (h, tp) = split_host_port(&t.host);
            h == host && tp == Some(p)
        })
    });
    exact.or_else(|| tenants.iter().find(|t| t.host == host))
}

/// Why a configured tenant `host` can never match a request's `Host`, if it cannot.
pub fn unmatchable(host: &str) -> Option<&'static str> {
    if host.is_empty() {
        return Some("is empty");
    }
    if host.contains("://") || host.contains('/') {
        return Some(
            "is a URL or has a path: give the Host only, e.g. paper.example or paper.example:8443",
        );
    }
    if host.bytes().any(|b| {
        b.is_ascii_whitespace() || b.is_ascii_control() || b == b'@' || b == b'?' || b == b'#'
    }) {
        return Some("holds characters a Host header cannot carry");
    }
    let (name, _) = split_host_port(host);
    let port_text = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((_, "")) => None,
            Some((_, after)) => Some(after.strip_prefix(':').unwrap_or(after)),
            None => return Some("has an unclosed [ of an IPv6 address"),
        },
        None => host.split_once(':').map(|(_, p)| p),
    };
    if name.is_empty() {
        return Some("has no host name");
    }
    if let Some(p) = port_text {
        if p.parse::<u16>().map_or(true, |n| n == 0) {
            return Some("has a port that is not a number from 1 to 65535");
        }
    }
    None
}
