//! The request head as RFC 9110 and RFC 9112 allow it, checked before any route or mode sees
//! it: a head that two parsers could read two ways (two `Host`s, a comma-joined tenant header)
//! is refused rather than routed by one reading and forwarded with both.

use http::{header, HeaderMap, HeaderName, Method, Version};

use crate::error::GatewayError;
use crate::legacy::Family;
use crate::runtime::Runtime;

/// Refuses what no route may see; the error is answered in the path's legacy shape.
pub(super) fn check(
    rt: &Runtime,
    family: Family,
    parts: &http::request::Parts,
) -> Result<(), GatewayError> {
    // A tunnel is not a legacy call, and forwarded as `CONNECT /` it would reach a backend
    // as a request it never expects.
    if parts.method == Method::CONNECT {
        return Err(GatewayError::MethodNotAllowed);
    }
    host(parts)?;
    if !once(&parts.headers, &header::AUTHORIZATION) {
        return Err(GatewayError::DuplicateHeader("Authorization".into()));
    }
    if family == Family::UserApi {
        let h = &rt.mappings.v4.headers;
        for name in [
            &h.source_system,
            &h.client_code,
            &h.paper_code,
            &h.client_group_code,
        ] {
            if !once(&parts.headers, name) {
                return Err(GatewayError::DuplicateHeader(display_name(rt, name)));
            }
        }
    }
    Ok(())
}

/// One `Host`, naming a host and a usable port. The authority of an absolute-form target
/// replaces it (RFC 9112 3.2.2), so only that is checked then; HTTP/2 always carries one.
/// HTTP/1.0 had no `Host`, so only HTTP/1.1 must send it.
fn host(parts: &http::request::Parts) -> Result<(), GatewayError> {
    let mut all = parts.headers.get_all(header::HOST).iter();
    let first = all.next();
    if all.next().is_some() {
        return Err(GatewayError::DuplicateHeader("Host".into()));
    }
    let raw = match (parts.uri.authority(), first) {
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

/// Whether a header that must carry one value does: not sent twice, nor comma-joined into one
/// line (RFC 9110 5.3 makes the two the same).
fn once(headers: &HeaderMap, name: &HeaderName) -> bool {
    let mut all = headers.get_all(name).iter();
    let Some(first) = all.next() else {
        return true;
    };
    all.next().is_none() && !first.as_bytes().contains(&b',')
}

/// The header's name as the legacy API documents it (`X-ClientCode`), when the mapping
/// lists it among the required headers; else as received.
pub(super) fn display_name(rt: &Runtime, name: &HeaderName) -> String {
    rt.mappings
        .user_api
        .required_headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, shown)| shown.clone())
        .unwrap_or_else(|| name.to_string())
}
