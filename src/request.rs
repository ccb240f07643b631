//! Reading a legacy request: its request id, its body (bounded) and its JSON object.

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;
use serde_json::{Map, Value};

use crate::body::BoxError;
use crate::error::GatewayError;

/// A name, not a string: a `&str` key is parsed and, being no standard header, allocated
/// again on every use.
pub const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// Whether a client's `X-Request-Id` is kept as the request's id: 1 to 128 printable ASCII
/// characters. Anything else (control characters, bytes beyond ASCII, a kilobyte of text)
/// would be copied into every log line, answer and v4 call of the request, so it is replaced
/// by a fresh id. One rule for every answer, the edge's and the overload answer's alike.
pub fn usable_id(v: &http::HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= 128 && b.iter().all(u8::is_ascii_graphic)
}

/// The connection's peer, in every request's extensions (the accept loop puts it there): the
/// client IP for rate limits and `X-Forwarded-For` comes from the socket, not from what the
/// client writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr, std::sync::Arc<PeerText>);

/// The peer's address as the forwarding headers write it, formatted once per connection (an
/// address formatted per request went through the formatting machinery, digit by digit, for
/// every forwarded call) and shared by the connection's requests, so each gets it for a
/// reference count.
#[derive(Debug)]
struct PeerText {
    /// `127.0.0.1`, `::1`: `X-Forwarded-For` and `X-Real-IP`.
    ip: http::HeaderValue,
    /// `127.0.0.1`, `"[::1]"`: the node of a `Forwarded` element (RFC 7239 6: an IPv6 node
    /// is bracketed and quoted).
    node: String,
    /// The last `Forwarded` element written, and the `Host` it names: a connection's requests
    /// almost always name one host, so the element is written once, not per request.
    forwarded: std::sync::Mutex<Option<(Option<http::HeaderValue>, http::HeaderValue)>>,
}

impl PartialEq for PeerText {
    fn eq(&self, other: &Self) -> bool {
        self.ip == other.ip && self.node == other.node
    }
}

impl Eq for PeerText {}

impl PeerAddr {
    pub fn new(addr: std::net::SocketAddr) -> Self {
        let ip = addr.ip().to_string();
        let node = match addr.ip() {
            std::net::IpAddr::V4(_) => ip.clone(),
            std::net::IpAddr::V6(_) => format!("\"[{ip}]\""),
        };
        let ip = http::HeaderValue::from_maybe_shared(bytes::Bytes::from(ip))
            .expect("an IP address is a valid header value");
        Self(
            addr,
            std::sync::Arc::new(PeerText {
                ip,
                node,
                forwarded: std::sync::Mutex::new(None),
            }),
        )
    }

    /// The IP as header text (`X-Forwarded-For`, `X-Real-IP`).
    pub fn ip_text(&self) -> &http::HeaderValue {
        &self.1.ip
    }

    /// The node of a `Forwarded` element.
    pub fn forwarded_node(&self) -> &str {
        &self.1.node
    }

    /// This hop's `Forwarded` element (RFC 7239): `for=<node>;proto=http`, and
    /// `;host="<host>"` when the request names one; `None` when the host cannot be written
    /// into it.
    pub fn forwarded_element(&self, host: Option<&http::HeaderValue>) -> Option<http::HeaderValue> {
        let mut last = self
            .1
            .forwarded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((named, element)) = last.as_ref() {
            if named.as_ref() == host {
                return Some(element.clone());
            }
        }
        let text = host.map(|h| h.to_str());
        let text = match text {
            Some(Ok(h)) => Some(h),
            Some(Err(_)) => None,
            None => None,
        };
        let node = &self.1.node;
        let mut e = String::with_capacity(24 + node.len() + text.map_or(0, |h| h.len() + 8));
        e.push_str("for=");
        e.push_str(node);
        e.push_str(";proto=http");
        if let Some(h) = text {
            e.push_str(";host=\"");
            e.push_str(h);
            e.push('"');
        }
        let element = http::HeaderValue::from_maybe_shared(bytes::Bytes::from(e)).ok()?;
        // A copy of the host, not the request's own value: that one shares (and would keep
        // alive for the connection's life) the buffer hyper read the request into.
        let named = host.and_then(|h| http::HeaderValue::from_bytes(h.as_bytes()).ok());
        *last = Some((named, element.clone()));
        Some(element)
    }
}

/// Generates request ids: UUID v4 text, its random bits from a per-thread SplitMix64 sequence
/// seeded once from uuid's `fast-rng` (rand's thread-local generator). Drawing each id from
/// rand's ChaCha generator cost a few hundred instructions per request, and the OS a
/// `getrandom` system call. A request id has to be unique and traceable, not unpredictable:
/// it authorises nothing. Each half of an id is a bijection of the thread's counter, so a
/// thread repeats no id, and threads start at independent random points.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestIds;

thread_local! {
    /// This thread's counter and the offset of the second half.
    static SEQUENCE: std::cell::Cell<(u64, u64)> = std::cell::Cell::new(uuid::Uuid::new_v4().as_u64_pair());
}

/// SplitMix64's output function: a bijection that scatters consecutive counters.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl RequestIds {
    pub fn next(&self) -> http::HeaderValue {
        let (hi, lo) = SEQUENCE.with(|s| {
            let (counter, offset) = s.get();
            let counter = counter.wrapping_add(0x9E37_79B9_7F4A_7C15);
            s.set((counter, offset));
            (mix(counter), mix(counter ^ offset))
        });
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&hi.to_be_bytes());
        bytes[8..].copy_from_slice(&lo.to_be_bytes());
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        let mut buf = uuid::Uuid::encode_buffer();
        let text = id.hyphenated().encode_lower(&mut buf);
        http::HeaderValue::from_str(text).expect("a UUID is a valid header value")
    }
}

/// The request's id, as the edge set it (the client's, when [`usable_id`], or a fresh one).
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Reads the whole body. The edge has already wrapped it in the body limit, so "too large"
/// arrives here as an error of the body and becomes a 413 in the caller's shape.
pub async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, GatewayError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    // A small body arrives in one frame: kept as it came, with no buffer list and no copy.
    let mut first: Option<Bytes> = None;
    let mut rest: Option<bytes::BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            let e: BoxError = e.into();
            if is_length_limit(&*e) {
                GatewayError::BodyTooLarge(limit)
            } else {
                GatewayError::IncompleteBody
            }
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        match (&mut first, &mut rest) {
            (None, _) => first = Some(data),
            (Some(head), None) => {
                let mut buf = bytes::BytesMut::with_capacity(head.len() + data.len());
                buf.extend_from_slice(head);
                buf.extend_from_slice(&data);
                rest = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(&data),
        }
    }
    Ok(match (first, rest) {
        (_, Some(buf)) => buf.freeze(),
        (Some(one), None) => one,
        (None, None) => Bytes::new(),
    })
}

pub(crate) fn is_length_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Parses a JSON object. serde_json stops at 128 levels of nesting, so depth is bounded
/// before anything recursive runs on the value.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::EmptyBody);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(GatewayError::NotAnObject),
        Err(e) => Err(GatewayError::MalformedJson {
            line: e.line(),
            column: e.column(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_forwarded_element_follows_the_host_a_request_names() {
        let peer = super::PeerAddr::new("[::1]:40000".parse().unwrap());
        let a = http::HeaderValue::from_static("a.example");
        let b = http::HeaderValue::from_static("b.example:8080");
        let element = |h: Option<&http::HeaderValue>| peer.forwarded_element(h).unwrap();
        assert_eq!(
            element(Some(&a)),
            "for=\"[::1]\";proto=http;host=\"a.example\""
        );
        assert_eq!(
            element(Some(&a)),
            "for=\"[::1]\";proto=http;host=\"a.example\""
        );
        assert_eq!(
            element(Some(&b)),
            "for=\"[::1]\";proto=http;host=\"b.example:8080\""
        );
        assert_eq!(element(None), "for=\"[::1]\";proto=http");
        assert_eq!(
            element(Some(&a)),
            "for=\"[::1]\";proto=http;host=\"a.example\""
        );
    }

    #[test]
    fn generated_request_ids_are_distinct_uuid_v4() {
        let make = super::RequestIds;
        let ids: std::collections::HashSet<String> = (0..1000)
            .map(|_| make.next().to_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            let parsed = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(parsed.get_version_num(), 4, "{id}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{id}");
        }
    }
}
