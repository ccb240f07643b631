//! Tenants of the action API: legacy registry clients send no tenant headers, so the gateway
//! chooses them from the request's `Host` (one configured entry per newspaper site).

use http::request::Parts;

use crate::config::Tenant;
use crate::host::split_host_port;

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
        header_values: Vec::new(),
    }
    .with_header_values()
    .expect("the sandbox tenant's values are header text")
}

/// The request's host without port, lower-cased: `Host`, or the URI authority (HTTP/2).
pub fn request_host(parts: &Parts) -> Option<String> {
    request_authority(parts).map(|(host, _)| host)
}

/// The request's host, lower-cased, and its port when it names one. The authority of an
/// absolute-form target (`POST http://paper.test/…`, and every HTTP/2 request) wins over
/// `Host`, as RFC 9112 3.2.2 requires of a server: the two can disagree only when a client
/// or an intermediary is confused or lying, and the target is what was asked for.
pub fn request_authority(parts: &Parts) -> Option<(String, Option<u16>)> {
    if let Some(a) = parts.uri.authority() {
        return Some(split_host_port(a.as_str()));
    }
    let raw = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())?;
    Some(split_host_port(raw))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(host: &str) -> Tenant {
        Tenant {
            host: host.into(),
            client_code: host.into(),
            ..sandbox_tenant()
        }
    }

    #[test]
    fn a_tenant_with_the_exact_port_wins_over_one_without() {
        let tenants = [
            tenant("paper.test"),
            tenant("paper.test:8443"),
            tenant("[::1]:8080"),
        ];
        let code = |host: &str, port| find(&tenants, host, port).map(|t| t.client_code.as_str());
        assert_eq!(code("paper.test", Some(8443)), Some("paper.test:8443"));
        assert_eq!(code("paper.test", Some(443)), Some("paper.test"));
        assert_eq!(code("paper.test", None), Some("paper.test"));
        assert_eq!(code("::1", Some(8080)), Some("[::1]:8080"));
        assert_eq!(code("::1", Some(9090)), None);
        assert_eq!(code("other.test", Some(8443)), None);
    }
}
