//! The request head as RFC 9110 and RFC 9112 allow it, checked before any route or mode sees
//! it: a head that two parsers could read two ways (two `Host`s, a comma-joined tenant header)
//! is refused rather than routed by one reading and forwarded with both.

use http::{header, HeaderName, Method, Version};

use crate::error::GatewayError;
use crate::legacy::Family;
use crate::runtime::Runtime;

/// Refuses what no route may see; the error is answered in the path's legacy shape.
///
/// One pass over the headers, comparing names, rather than a hashed lookup per name: a head
/// has a dozen headers, and six lookups cost more than reading them all once.
pub(super) fn check(
    rt: &Runtime,
    family: Family,
    parts: &http::request::Parts,
) -> Result<(), GatewayError> {
    if parts.method == Method::CONNECT {
        return Err(GatewayError::MethodNotAllowed);
    }
    let h = &rt.mappings.v4.headers;
    let tenant_names = [
        &h.source_system,
        &h.client_code,
        &h.paper_code,
        &h.client_group_code,
    ];
    let tenant_checked = family == Family::UserApi;
    let mut hosts = Occurrences::default();
    let mut authorization = Occurrences::default();
    let mut tenant = [Occurrences::default(); 4];
    for (name, value) in parts.headers.iter() {
        if *name == header::HOST {
            hosts.add(value);
        } else if *name == header::AUTHORIZATION {
            authorization.add(value);
        } else if tenant_checked {
            if let Some(k) = tenant_names.iter().position(|n| *n == name) {
                tenant[k].add(value);
            }
        }
    }
    host(parts, hosts)?;
    if !authorization.once() {
        return Err(GatewayError::DuplicateHeader("Authorization".into()));
    }
    if let Some(k) = tenant.iter().position(|t| !t.once()) {
        return Err(GatewayError::DuplicateHeader(display_name(
            rt,
            tenant_names[k],
        )));
    }
    Ok(())
}

/// How often a header came, and the first value.
#[derive(Clone, Copy, Default)]
struct Occurrences<'a> {
    count: u8,
    first: Option<&'a http::HeaderValue>,
}

impl<'a> Occurrences<'a> {
    fn add(&mut self, value: &'a http::HeaderValue) {
        self.count = self.count.saturating_add(1);
        self.first.get_or_insert(value);
    }

    /// Whether a header that must carry one value does: not sent twice, nor comma-joined
    /// into one line (RFC 9110 5.3 makes the two the same).
    fn once(&self) -> bool {
        self.count <= 1 && self.first.is_none_or(|v| !v.as_bytes().contains(&b','))
    }
}

/// One `Host`, naming a host and a usable port. The authority of an absolute-form target
/// replaces it (RFC 9112 3.2.2), so only that is checked then; HTTP/2 always carries one.
/// HTTP/1.0 had no `Host`, so only HTTP/1.1 must send it.
fn host(parts: &http::request::Parts, hosts: Occurrences<'_>) -> Result<(), GatewayError> {
    if hosts.count > 1 {
        return Err(GatewayError::DuplicateHeader("Host".into()));
    }
    let raw = match (parts.uri.authority(), hosts.first) {
        (Some(a), _) => a.as_str(),
        (None, Some(v)) => v
            .to_str()
            .map_err(|_| GatewayError::BadHost("is not a host name with an optional port"))?,
        (None, None) if parts.version == Version::HTTP_11 => {
            return Err(GatewayError::BadHost("is missing"))
        }
        (None, None) => return Ok(()),
    };
    match crate::host::request_host_problem(raw) {
        Some(problem) => Err(GatewayError::BadHost(problem)),
        None => Ok(()),
    }
}

pub(super) fn display_name(rt: &Runtime, name: &HeaderName) -> String {
    rt.mappings
        .user_api
        .required_headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, shown)| shown.clone())
        .unwrap_or_else(|| name.to_string())
}
