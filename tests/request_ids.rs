//! A client's `X-Request-Id` is judged by one rule on every answer: the answers of the edge
//! and the 503 answered at the connection limit (before any layer sees the request) keep an
//! id of 1 to 128 printable ASCII characters, and replace anything else by a fresh id, in the
//! header and in the body's `RequestId` alike. Raw requests over TCP on loopback, because the
//! ids under test are ones an HTTP client library would refuse to send.

mod common;

use std::time::Duration;

use common::{gateway_with, user_api_headers};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Hang guard for one exchange; far above anything a healthy run needs.
const GUARD: Duration = Duration::from_secs(20);

/// A request the sandbox answers, carrying `id` (raw bytes) as its `X-Request-Id`.
fn request(id: &[u8]) -> Vec<u8> {
    let mut req = b"GET /User/1001 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n".to_vec();
    for (name, value) in user_api_headers().iter() {
        req.extend_from_slice(format!("{name}: ").as_bytes());
        req.extend_from_slice(value.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"X-Request-Id: ");
    req.extend_from_slice(id);
    req.extend_from_slice(b"\r\n\r\n");
    req
}

/// One answer as it crossed the socket: status, the `X-Request-Id` header's bytes, the body.
struct Raw {
    status: u16,
    id: Option<Vec<u8>>,
    json: Value,
}

/// Sends `req` on `s` and reads until the server closes (both requests say `Connection:
/// close`; the connection limit's answer closes by itself).
async fn exchange(mut s: TcpStream, req: &[u8]) -> Raw {
    s.write_all(req).await.expect("request written");
    let mut bytes = Vec::new();
    tokio::time::timeout(GUARD, s.read_to_end(&mut bytes))
        .await
        .expect("hang guard: the server closes the connection")
        .expect("answer read");
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("a complete head: {}", String::from_utf8_lossy(&bytes)));
    let (head, body) = (&bytes[..split], &bytes[split + 4..]);
    let lines: Vec<&[u8]> = head.split(|b| *b == b'\n').collect();
    let status = std::str::from_utf8(&lines[0][9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let header = |name: &str| {
        lines[1..].iter().find_map(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            let colon = l.iter().position(|b| *b == b':')?;
            l[..colon]
                .eq_ignore_ascii_case(name.as_bytes())
                .then(|| l[colon + 1..].trim_ascii().to_vec())
        })
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case(b"chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    let json = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "a JSON body ({e}): {}{}",
            String::from_utf8_lossy(head),
            String::from_utf8_lossy(&body)
        )
    });
    Raw {
        status,
        id: header("x-request-id"),
        json,
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .expect("a chunk size");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = &body[eol + 2 + size + 2..];
    }
    out
}

/// Ids a client may send, and whether the gateway keeps them.
const IDS: &[(&[u8], bool)] = &[
    (b"client-id-0001", true),
    (b"a.b_c~d!e", true),
    (b"with\ttab", false),
    (b"caf\xc3\xa9", false),
    (b"obs\x80text", false),
];

/// The answer carries the client's id when it is usable, otherwise a fresh one (printable,
/// and in the body as in the header).
fn assert_id(label: &str, sent: &[u8], keep: bool, a: &Raw) {
    let id =
        a.id.as_deref()
            .unwrap_or_else(|| panic!("{label}: an X-Request-Id header ({})", a.json));
    if keep {
        assert_eq!(id, sent, "{label}: the client's id is kept");
    } else {
        assert_ne!(id, sent, "{label}: the client's id is replaced");
        assert!(
            !id.is_empty() && id.iter().all(u8::is_ascii_graphic),
            "{label}: a fresh printable id, got {:?}",
            String::from_utf8_lossy(id)
        );
    }
    assert_eq!(
        a.json["RequestId"].as_str().map(str::as_bytes),
        Some(id),
        "{label}: RequestId is the header's id: {}",
        a.json
    );
}

fn long_id() -> Vec<u8> {
    vec![b'a'; 129]
}

#[tokio::test]
async fn the_edge_keeps_only_usable_ids() {
    let gw = gateway_with("", None).await;
    let long = long_id();
    for (sent, keep) in IDS.iter().copied().chain([(&long[..], false)]) {
        let s = TcpStream::connect(gw.addr).await.expect("connect");
        let a = exchange(s, &request(sent)).await;
        assert_ne!(a.status, 503, "served by the edge: {}", a.json);
        assert_id(
            &format!("edge {:?}", String::from_utf8_lossy(sent)),
            sent,
            keep,
            &a,
        );
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn the_503_at_the_connection_limit_keeps_ids_by_the_same_rule() {
    let gw = gateway_with(
        "[limits]\nmax_connections = 1\nheader_read_timeout_ms = 60000\n",
        None,
    )
    .await;
    // Holds the one permit: a kept-alive connection that has been answered once, so the
    // server has surely accepted it before the others connect.
    let mut held = TcpStream::connect(gw.addr).await.expect("connect");
    let keep_alive = String::from_utf8(request(b"held"))
        .unwrap()
        .replace("Connection: close\r\n", "");
    held.write_all(keep_alive.as_bytes()).await.unwrap();
    let mut first = [0u8; 12];
    tokio::time::timeout(GUARD, held.read_exact(&mut first))
        .await
        .expect("hang guard: the held connection is answered")
        .expect("answer read");
    assert!(first.starts_with(b"HTTP/1.1 "), "{first:?}");

    let long = long_id();
    for (sent, keep) in IDS.iter().copied().chain([(&long[..], false)]) {
        let s = TcpStream::connect(gw.addr).await.expect("connect");
        let a = exchange(s, &request(sent)).await;
        assert_eq!(a.status, 503, "refused at the limit: {}", a.json);
        assert_eq!(a.json["Errors"][0]["Code"], "Gateway_E503_01", "{}", a.json);
        assert_id(
            &format!("limit {:?}", String::from_utf8_lossy(sent)),
            sent,
            keep,
            &a,
        );
    }
    drop(held);
    gw.shutdown().await;
}
