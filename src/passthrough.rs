//! Legacy mode: a plain reverse proxy to a legacy backend. The request and the answer pass
//! untouched apart from hop-by-hop headers and the forwarding ones. Answers keep their
//! header-name case: old clients can depend on `Content-Type` being spelled the way their
//! backend spelled it, so this client keeps the case of what it reads (v4's does not need
//! to). Requests reach the backend with lower-case names, as HTTP/2 clients' always did:
//! a server reads names case-insensitively (RFC 9110 5.1), and keeping the client's case
//! cost every request a second header map (see `crate::server`'s accept loop).

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::{Request, Response, Uri};
use http_body_util::Full;

use crate::body::{full, Body};
use crate::deadline::Deadline;
use crate::legacy::Shaped;
use crate::metrics::Metrics;
use crate::request::PeerAddr;
use crate::upstream::client::{self, ClientOptions, PerWorker};
use crate::upstream::{observed, UpstreamError};

/// Headers that describe one connection, not the message (RFC 9110 7.6.1), plus the ones the
/// `Connection` header names.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Where a name stands in [`HOP_BY_HOP`] (`Upgrade`: after them), if it is one: a match on
/// the text, which costs less than comparing it with each name in turn.
fn hop_by_hop_index(n: &HeaderName) -> Option<usize> {
    Some(match n.as_str() {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "proxy-authenticate" => 3,
        "proxy-authorization" => 4,
        "te" => 5,
        "trailer" => 6,
        "transfer-encoding" => 7,
        "upgrade" => 8,
        _ => return None,
    })
}

/// Whether a name is one of [`HOP_BY_HOP`] or `Upgrade`.
fn is_hop_by_hop(n: &HeaderName) -> bool {
    hop_by_hop_index(n).is_some()
}

/// Headers a second sending of a client's request leaves out (a shadow's second legacy call, a
/// replay): the hop-by-hop ones, the length (recomputed for the body sent), and
/// `Accept-Encoding`, so the answer comes uncompressed and compares as the first one did.
pub fn not_resent(name: &HeaderName) -> bool {
    is_hop_by_hop(name) || *name == header::CONTENT_LENGTH || *name == header::ACCEPT_ENCODING
}

/// Removes the hop-by-hop headers and the ones `Connection` names. One look at the names
/// first, noting which are present: a message rarely carries more than `Connection` (a
/// keep-alive upstream's answers do), and removing each name blindly costs a hashed lookup
/// per name, nine of them per message.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = hop_by_hop_index(name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    // Names `Connection` lists beyond the fixed ones (`close` names no header), compared as
    // text first: `keep-alive`, the usual one, would otherwise be parsed into a name (an
    // allocation) only to be found among the fixed ones.
    let named: Vec<HeaderName> = if present & 1 != 0 {
        headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|n| {
                !n.is_empty()
                    && !n.eq_ignore_ascii_case("close")
                    && !n.eq_ignore_ascii_case("keep-alive")
            })
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .filter(|n| !is_hop_by_hop(n))
            .collect()
    } else {
        Vec::new()
    };
    for (i, name) in HOP_BY_HOP.iter().chain([&header::UPGRADE]).enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    for n in &named {
        headers.remove(n);
    }
}

#[derive(Clone)]
pub struct LegacyBackend {
    client: std::sync::Arc<PerWorker>,
    /// The path of the configured URL, which the client's path is appended to.
    prefix: String,
    timeout: Duration,
    max_body: usize,
    label: &'static str,
    /// Peers whose `X-Forwarded-*` headers are extended rather than replaced.
    trusted_proxies: Vec<ipnet::IpNet>,
}

/// What a forwarded request is, besides the client's request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Forwarding<'a> {
    /// Shadow mode: the legacy answer is compared with v4's, so it must not come compressed
    /// (`Accept-Encoding` is not forwarded).
    pub identity_encoding: bool,
    /// The client's request deadline (see `crate::deadline`).
    pub deadline: Option<&'a Deadline>,
}

impl LegacyBackend {
    pub fn new(
        base: &url::Url,
        opts: &ClientOptions<'_>,
        timeout: Duration,
        max_body: usize,
        label: &'static str,
        trusted_proxies: Vec<ipnet::IpNet>,
    ) -> Result<Self, String> {
        Ok(Self {
            client: std::sync::Arc::new(PerWorker::new(opts, base)?),
            prefix: base.path().trim_end_matches('/').to_string(),
            timeout,
            max_body,
            label,
            trusted_proxies,
        })
    }

    /// Forwards one request and returns the backend's answer as it came. The request's
    /// headers and extensions move into the forwarded request (not copied): `parts` keeps its
    /// method and target only.
    pub async fn forward(
        &self,
        parts: &mut http::request::Parts,
        body: Bytes,
        metrics: &Metrics,
        deadline: Option<&Deadline>,
    ) -> Result<Response<Body>, UpstreamError> {
        let how = Forwarding {
            deadline,
            ..Forwarding::default()
        };
        let (head, body) = self.forward_raw(parts, body, metrics, how).await?;
        Ok(Response::from_parts(head, full(body)))
    }

    /// [`Self::forward`], with the body kept as bytes for shadow comparison.
    pub async fn forward_raw(
        &self,
        parts: &mut http::request::Parts,
        body: Bytes,
        metrics: &Metrics,
        how: Forwarding<'_>,
    ) -> Result<(http::response::Parts, Bytes), UpstreamError> {
        observed(
            metrics,
            self.label,
            self.label,
            self.timeout,
            how.deadline,
            // Boxed once, as `Upstream::send` boxes its exchange.
            Box::pin(self.forward_inner(parts, body, how)),
            |(head, _)| head.status,
        )
        .await
    }

    async fn forward_inner(
        &self,
        parts: &mut http::request::Parts,
        body: Bytes,
        how: Forwarding<'_>,
    ) -> Result<(http::response::Parts, Bytes), UpstreamError> {
        let uri = self.target(&parts.uri)?;
        let mut headers = std::mem::take(&mut parts.headers);
        // The peer's address, for the forwarding headers.
        let extensions = std::mem::take(&mut parts.extensions);
        strip_hop_by_hop(&mut headers);
        self.set_forwarded(extensions.get::<PeerAddr>(), &parts.uri, &mut headers);
        if how.identity_encoding {
            headers.remove(header::ACCEPT_ENCODING);
        }
        crate::telemetry::inject(&mut headers);
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        *req.extensions_mut() = extensions;
        let (resp, lease) = self.client.request(req).await?;
        let (mut head, incoming) = resp.into_parts();
        let body = client::read_bounded(&head.headers, incoming, self.max_body, lease).await?;
        strip_hop_by_hop(&mut head.headers);
        // The backend's own answer, in its own shape: the edge must not reshape it. Only a
        // 4xx or 5xx could be reshaped, so only those carry the mark (an extension is an
        // allocation and a hashed insert).
        if head.status.is_client_error() || head.status.is_server_error() {
            head.extensions.insert(Shaped);
        }
        // Recomputed by hyper for the buffered body; a HEAD answer has no body to recompute
        // it from, and its Content-Length is the size a GET would return: kept.
        if parts.method != http::Method::HEAD {
            head.headers.remove(header::CONTENT_LENGTH);
        }
        Ok((head, body))
    }

    /// The backend's target: the client's path and query under the configured URL's path.
    /// With no path to add (a backend at `/`), the client's own is reused, not parsed again.
    fn target(&self, client: &Uri) -> Result<Uri, UpstreamError> {
        let pq = client.path_and_query().map_or("/", |p| p.as_str());
        if self.prefix.is_empty() && client.path_and_query().is_some() {
            let mut p = http::uri::Parts::default();
            p.path_and_query = client.path_and_query().cloned();
            if let Ok(uri) = Uri::from_parts(p) {
                return Ok(uri);
            }
        }
        let mut joined = String::with_capacity(self.prefix.len() + pq.len());
        joined.push_str(&self.prefix);
        joined.push_str(pq);
        Uri::try_from(joined).map_err(|_| UpstreamError::Unreachable)
    }

    /// `X-Forwarded-For`, `-Proto` and `-Host`, `Forwarded` (RFC 7239) and `X-Real-IP`, as a
    /// proxy owes its backend: a trusted peer's chain is extended with the peer, anyone
    /// else's is replaced (a client can write any of them it likes, and a backend that trusts
    /// one of them for its rate limits or audit would believe it).
    fn set_forwarded(&self, peer: Option<&PeerAddr>, target: &Uri, headers: &mut HeaderMap) {
        // Five names are added to a map sized for the client's headers: made room for once,
        // rather than grown while they are inserted.
        headers.reserve(5);
        let trusted = peer.is_some_and(|p| {
            let ip = p.0.ip();
            self.trusted_proxies.iter().any(|n| n.contains(&ip))
        });
        let host = headers.get(header::HOST).cloned().or_else(|| {
            target
                .authority()
                .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
        });
        extend_chain(
            headers,
            X_FORWARDED_FOR,
            trusted,
            peer.map(|p| p.ip_text().clone()),
        );
        let element = peer.and_then(|p| p.forwarded_element(host.as_ref()));
        extend_chain(headers, header::FORWARDED, trusted, element);
        // `insert` replaces every value the client sent: no `remove` first.
        if !(trusted && headers.contains_key(X_REAL_IP)) {
            match peer {
                Some(p) => {
                    headers.insert(X_REAL_IP, p.ip_text().clone());
                }
                None => {
                    headers.remove(X_REAL_IP);
                }
            }
        }
        if !(trusted && headers.contains_key(X_FORWARDED_PROTO)) {
            // The gateway itself speaks plain HTTP (TLS ends in front of it).
            headers.insert(X_FORWARDED_PROTO, http::HeaderValue::from_static("http"));
        }
        if !(trusted && headers.contains_key(X_FORWARDED_HOST)) {
            match host {
                Some(h) => {
                    headers.insert(X_FORWARDED_HOST, h);
                }
                None => {
                    headers.remove(X_FORWARDED_HOST);
                }
            }
        }
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// A list header naming the proxies a request passed (`X-Forwarded-For`, `Forwarded`): a
/// trusted peer's list gains this hop, anyone else's is replaced by it.
fn extend_chain(
    headers: &mut HeaderMap,
    name: HeaderName,
    trusted: bool,
    hop: Option<http::HeaderValue>,
) {
    if trusted && headers.contains_key(&name) {
        let mut value = headers
            .get_all(&name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        if let Some(hop) = hop.as_ref().and_then(|h| h.to_str().ok()) {
            value.push_str(", ");
            value.push_str(hop);
        }
        match http::HeaderValue::from_str(&value) {
            Ok(v) if !value.is_empty() => {
                headers.insert(name, v);
            }
            _ => {
                headers.remove(&name);
            }
        }
        return;
    }
    match hop {
        // Replaces whatever the client wrote.
        Some(hop) => {
            headers.insert(name, hop);
        }
        None => {
            headers.remove(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_check_knows_every_hop_by_hop_name() {
        for n in HOP_BY_HOP.iter().chain([&header::UPGRADE]) {
            assert!(is_hop_by_hop(n), "{n}");
        }
        assert!(!is_hop_by_hop(&header::CONTENT_TYPE));
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "keep-alive, X-Private".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-private", "1".parse().unwrap());
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::CONTENT_TYPE));
    }
}
