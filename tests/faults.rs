//! Fault tests: the gateway over real HTTP on loopback, with fake v4 servers that
//! fail on purpose and clients that misbehave on purpose.
//!
//! The fault model these tests prove:
//!
//! - **v4 goes away and comes back.** Every legacy call still gets an answer: a success, or a
//!   legacy-shaped `502` (`Gateway_E502_01` unreachable, `Gateway_E502_02` unusable answer) or
//!   `504` (`Gateway_E504_01`), never a hang and never a bare error; once v4 is back, calls
//!   succeed again without restarting the gateway.
//! - **v4 misbehaves** (resets connections, truncates its answer, mislabels it, answers a 200
//!   that is not an envelope, or streams an endless body): the caller gets a legacy-shaped
//!   answer, the gateway reads at most `limits.upstream_body_bytes`, and the next call is
//!   served normally.
//! - **Writes are never retried**: a v4 that drops the connection after reading the request has
//!   received it exactly once, and the caller is told (502), never answered by a second try.
//! - **Slow or idle clients** cannot hold the gateway: unfinished headers are cut off after
//!   `limits.header_read_timeout_ms`, an unfinished body answers `408 Gateway_E408_01`, and
//!   other clients are served meanwhile.
//! - **The connection bound** (`limits.max_connections`) refuses the excess with a clean
//!   `503 Gateway_E503_01` and `Connection: close`, and frees up when connections close.
//! - **Shutdown** (library `Running::shutdown`, binary SIGTERM) stops accepting, lets in-flight
//!   calls finish within `limits.shutdown_grace_ms`, and returns (the binary exits 0).
//!
//! Every test is bounded in requests and in time: waits are on events (a counter, a closed
//! connection, a refused connect) with generous timeouts only as hang guards.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{gateway_with, user_api_headers};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

const ENVELOPE: &str = r#"{"message":{"code":"UsersOrchestrator_S200_11","text":"Update password completed.","type":"Success"},"meta":null}"#;
const BODY: &str = r#"{"Password":"Abcdefg1"}"#;
/// Hang guard for one step; far above anything a healthy run needs.
const GUARD: Duration = Duration::from_secs(20);

// --- fakes and helpers ---

/// A listener on 127.0.0.1:`port` (0: any) with SO_REUSEADDR, so a stopped fake can bind
/// its port again while the old connections are in TIME_WAIT.
fn listen(port: u16) -> TcpListener {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .unwrap_or_else(|e| panic!("bind 127.0.0.1:{port}: {e}"));
    socket.listen(1024).expect("listen")
}

/// What a well-behaved fake v4 shares with the test: how many requests it received, and a
/// gate that holds its answers while closed.
#[derive(Clone)]
struct V4State {
    received: Arc<AtomicUsize>,
    open: watch::Receiver<bool>,
}

impl V4State {
    fn new(open: bool) -> (Self, watch::Sender<bool>) {
        let (tx, rx) = watch::channel(open);
        (
            Self {
                received: Arc::new(AtomicUsize::new(0)),
                open: rx,
            },
            tx,
        )
    }

    fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }
}

/// A small hyper v4 that answers every request with the password-change success envelope.
/// `stop` drops the listener and every open connection at once, as a killed process would.
struct FakeV4 {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl FakeV4 {
    fn start(port: u16, state: V4State) -> Self {
        let listener = listen(port);
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            // Owned by this task: aborting it drops (and so aborts) every connection.
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let state = state.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move {
                            let _ = req.into_body().collect().await;
                            state.received.fetch_add(1, Ordering::SeqCst);
                            let mut open = state.open.clone();
                            let _ = open.wait_for(|o| *o).await;
                            let resp = hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from_static(ENVELOPE.as_bytes())))
                                .expect("response");
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Self { addr, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills the fake: the listener and all connections are gone when this returns.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// How the raw fake v4 misbehaves (read when a connection opens, and after each request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    /// A correct success answer, connection kept alive.
    Answer,
    /// The same answer after 200 ms: concurrent calls each need a connection of their own.
    Slow,
    /// Accept, then close with SO_LINGER 0 (RST) before reading anything.
    ResetOnAccept,
    /// Read the whole request, then close with RST without answering.
    ResetAfterRequest,
    /// `Content-Length: 100`, then 10 bytes, then close.
    Truncated,
    /// A success envelope labelled `Content-Type: text/html`.
    HtmlLabelled,
    /// A 200 whose JSON body is not a v4 envelope.
    InvalidEnvelope,
    /// A chunked 200 that never ends (until the peer goes away, or a 256 MiB cap).
    Endless,
}

const ENDLESS_CAP: u64 = 256 * 1024 * 1024;

#[derive(Clone)]
struct RawState {
    act: Arc<Mutex<Act>>,
    requests: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    /// Bytes of the endless body written, and whether writing stopped on an error.
    endless_sent: Arc<AtomicU64>,
    endless_cut: Arc<AtomicBool>,
    endless_done: Arc<tokio::sync::Notify>,
}

/// A fake v4 on raw TCP, for the faults hyper would not produce on purpose.
struct RawV4 {
    addr: SocketAddr,
    state: RawState,
    task: JoinHandle<()>,
}

impl RawV4 {
    fn start(act: Act) -> Self {
        let listener = listen(0);
        let addr = listener.local_addr().expect("local addr");
        let state = RawState {
            act: Arc::new(Mutex::new(act)),
            requests: Arc::new(AtomicUsize::new(0)),
            accepted: Arc::new(AtomicUsize::new(0)),
            endless_sent: Arc::new(AtomicU64::new(0)),
            endless_cut: Arc::new(AtomicBool::new(false)),
            endless_done: Arc::new(tokio::sync::Notify::new()),
        };
        let st = state.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                st.accepted.fetch_add(1, Ordering::SeqCst);
                conns.spawn(raw_connection(stream, st.clone()));
                while conns.try_join_next().is_some() {}
            }
        });
        Self { addr, state, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, act: Act) {
        *self.state.act.lock().unwrap() = act;
    }

    fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

impl Drop for RawV4 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn raw_connection(mut s: TcpStream, st: RawState) {
    let act = |st: &RawState| *st.act.lock().unwrap();
    if act(&st) == Act::ResetOnAccept {
        let _ = s.set_zero_linger();
        return;
    }
    let mut buf = Vec::new();
    loop {
        if read_message(&mut s, &mut buf).await.is_none() {
            return;
        }
        st.requests.fetch_add(1, Ordering::SeqCst);
        let reply = |ct: &str, body: &str| {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {ct}\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        match act(&st) {
            Act::Answer | Act::Slow => {
                if act(&st) == Act::Slow {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                if s.write_all(reply("application/json", ENVELOPE).as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Act::ResetOnAccept | Act::ResetAfterRequest => {
                let _ = s.set_zero_linger();
                return;
            }
            Act::Truncated => {
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"message\"",
                    )
                    .await;
                let _ = s.flush().await;
                return;
            }
            Act::HtmlLabelled => {
                if s.write_all(reply("text/html; charset=utf-8", ENVELOPE).as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Act::InvalidEnvelope => {
                let body = r#"{"message":"Update password completed.","meta":null}"#;
                if s.write_all(reply("application/json", body).as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Act::Endless => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{ENVELOPE}\r\n", ENVELOPE.len());
                let chunk = format!("4000\r\n{}\r\n", " ".repeat(0x4000));
                let mut result = s.write_all(head.as_bytes()).await;
                let mut sent = head.len() as u64;
                while result.is_ok() && sent < ENDLESS_CAP {
                    result = s.write_all(chunk.as_bytes()).await;
                    sent += chunk.len() as u64;
                }
                st.endless_sent.store(sent, Ordering::SeqCst);
                st.endless_cut.store(result.is_err(), Ordering::SeqCst);
                st.endless_done.notify_one();
                return;
            }
        }
    }
}

/// Reads one HTTP/1.1 message (head, then a `Content-Length` body) from `s`, keeping any
/// bytes past it in `buf` for the next one. Returns the head, or `None` at EOF or an error.
async fn read_message(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    buf.drain(..head_end + len);
    Some(head)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// One raw answer read from the gateway: status, head and JSON body.
struct RawAnswer {
    status: u16,
    head: String,
    json: Value,
}

/// Reads one answer (head and `Content-Length` body) from a raw connection to the gateway.
async fn read_answer(s: &mut TcpStream) -> RawAnswer {
    let mut buf = Vec::new();
    let head = tokio::time::timeout(GUARD, async {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.expect("read the answer");
            assert!(
                n > 0,
                "connection closed before an answer: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let len: usize = header(&head, "content-length")
            .expect("a Content-Length")
            .parse()
            .unwrap();
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.expect("read the body");
            assert!(n > 0, "connection closed inside the body");
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.drain(..head_end);
        head
    })
    .await
    .expect("an answer within the guard");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let json = serde_json::from_slice(&buf).unwrap_or_else(|e| {
        panic!(
            "a JSON answer ({e}): {head}{}",
            String::from_utf8_lossy(&buf)
        )
    });
    RawAnswer { status, head, json }
}

/// A complete `PUT /User/1001` password change as raw bytes, keep-alive.
fn raw_put() -> String {
    let mut req = format!(
        "PUT /User/1001 HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        BODY.len()
    );
    for (name, value) in user_api_headers().iter() {
        req.push_str(&format!("{}: {}\r\n", name, value.to_str().unwrap()));
    }
    req.push_str("\r\n");
    req.push_str(BODY);
    req
}

/// Waits until the server closes `s` (EOF or reset); panics if it stays open past the guard.
async fn closed_by_server(s: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    match tokio::time::timeout(GUARD, s.read_to_end(&mut buf)).await {
        Ok(_) => buf,
        Err(_) => panic!("{what}: the gateway kept the connection open"),
    }
}

/// One password change through the gateway, with a per-request guard.
async fn change_password(client: &reqwest::Client, gw: &str) -> Result<(u16, Value), String> {
    let resp = client
        .put(format!("{gw}/User/1001"))
        .headers(user_api_headers())
        .header("Content-Type", "application/json")
        .body(BODY)
        .timeout(GUARD)
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| format!("body: {e}"))?;
    let json = serde_json::from_str(&text).map_err(|_| format!("{status}, not JSON: {text}"))?;
    Ok((status, json))
}

/// The legacy success answer for the password change.
fn assert_success(status: u16, json: &Value, what: &str) {
    assert_eq!(status, 200, "{what}: {json}");
    assert_eq!(json["Code"], 0, "{what}: {json}");
    assert_eq!(json["Errors"], json!([]), "{what}: {json}");
    assert_eq!(
        json["Result"]["CustomerRegistrationId"], "1001",
        "{what}: {json}"
    );
    assert_eq!(json["Result"]["Updated"], true, "{what}: {json}");
}

/// A legacy User API failure answered by the gateway itself with `code`, with its request id.
fn assert_gateway_failure(status: u16, json: &Value, code: &str, what: &str) {
    assert_gateway_shape(status, json, code, what);
    assert!(
        json["RequestId"].as_str().is_some_and(|r| !r.is_empty()),
        "{what}: {json}"
    );
}

/// [`assert_gateway_failure`] short of the request id.
fn assert_gateway_shape(status: u16, json: &Value, code: &str, what: &str) {
    let expected: u16 = code["Gateway_E".len()..][..3].parse().unwrap();
    assert_eq!(status, expected, "{what}: {json}");
    assert_eq!(json["Code"], expected, "{what}: {json}");
    let errors = json["Errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: {json}"));
    assert_eq!(errors.len(), 1, "{what}: {json}");
    assert_eq!(errors[0]["Code"], code, "{what}: {json}");
    assert_eq!(errors[0]["ErrorSource"], "Gateway", "{what}: {json}");
    assert!(
        errors[0]["Message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {json}"
    );
    assert!(errors[0]["Type"]["Id"].is_u64(), "{what}: {json}");
    assert_eq!(json["Result"]["Updated"], false, "{what}: {json}");
}

// --- 1. v4 killed in the middle of a load, then restarted ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_killed_mid_load_and_restarted_every_call_answered_then_recovers() {
    const TOTAL: usize = 3000;
    const CONCURRENCY: usize = 32;
    const KILL_AT: usize = 1000;
    const RESTART_AT: usize = 1500;

    let (state, _gate) = V4State::new(true);
    let v4 = FakeV4::start(0, state.clone());
    let port = v4.addr.port();
    let gw = gateway_with("[limits]\nupstream_timeout_ms = 1000\n", Some(&v4.url())).await;
    let client = common::client();

    let next = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::channel(CONCURRENCY * 2);
    for _ in 0..CONCURRENCY {
        let (next, tx, client, url) = (next.clone(), tx.clone(), client.clone(), gw.url());
        tokio::spawn(async move {
            while next.fetch_add(1, Ordering::SeqCst) < TOTAL {
                let answer = change_password(&client, &url).await;
                if tx.send(answer).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);

    #[derive(Default, Debug)]
    struct Tally {
        ok: usize,
        e502_01: usize,
        e502_02: usize,
        e504_01: usize,
        ok_after_restart: usize,
        bad: Vec<String>,
    }
    let mut v4 = Some(v4);
    let tally = tokio::time::timeout(Duration::from_secs(180), async {
        let mut t = Tally::default();
        let mut done = 0;
        while let Some(answer) = rx.recv().await {
            done += 1;
            match answer {
                Ok((200, json)) if json["Code"] == 0 && json["Result"]["Updated"] == true => {
                    t.ok += 1;
                    if done > RESTART_AT {
                        t.ok_after_restart += 1;
                    }
                }
                Ok((status, json)) => {
                    let code = json["Errors"][0]["Code"].as_str().unwrap_or("");
                    let shaped = json["Errors"][0]["ErrorSource"] == "Gateway"
                        && json["Code"] == status
                        && json["Result"]["Updated"] == false;
                    match (status, code) {
                        (502, "Gateway_E502_01") if shaped => t.e502_01 += 1,
                        (502, "Gateway_E502_02") if shaped => t.e502_02 += 1,
                        (504, "Gateway_E504_01") if shaped => t.e504_01 += 1,
                        _ => t.bad.push(format!("{status}: {json}")),
                    }
                }
                Err(e) => t.bad.push(e),
            }
            if done == KILL_AT {
                v4.take().expect("running").stop().await;
            }
            if done == RESTART_AT {
                v4 = Some(FakeV4::start(port, state.clone()));
            }
        }
        assert_eq!(done, TOTAL, "every request produced an outcome");
        t
    })
    .await
    .expect("the load finished: no request hung");

    eprintln!("TALLY {tally:?}");
    assert!(
        tally.bad.is_empty(),
        "unexpected answers: {:?}",
        &tally.bad[..tally.bad.len().min(5)]
    );
    assert_eq!(
        tally.ok + tally.e502_01 + tally.e502_02 + tally.e504_01,
        TOTAL,
        "{tally:?}"
    );
    // At most CONCURRENCY calls were already answered by v4 when it was killed; the rest of
    // the window between kill and restart must have failed, cleanly.
    let failed = tally.e502_01 + tally.e502_02 + tally.e504_01;
    assert!(failed >= RESTART_AT - KILL_AT - CONCURRENCY, "{tally:?}");
    assert!(tally.ok >= KILL_AT - CONCURRENCY, "{tally:?}");
    assert!(
        tally.ok_after_restart > 0,
        "calls succeed again after the restart: {tally:?}"
    );

    // The next calls succeed: poll (bounded in calls) for the first success, then a run of them.
    let mut first_ok = None;
    for i in 0..50 {
        if let Ok((200, _)) = change_password(&client, &gw.url()).await {
            first_ok = Some(i);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        first_ok.is_some(),
        "no success within 50 calls after the restart"
    );
    for i in 0..20 {
        let (status, json) = change_password(&client, &gw.url())
            .await
            .expect("an answer");
        assert_success(status, &json, &format!("call {i} after recovery"));
    }
    assert!(
        state.received() >= tally.ok,
        "every success was a call v4 received"
    );
    gw.shutdown().await;
    if let Some(v4) = v4 {
        v4.stop().await;
    }
}

// --- 2. v4 misbehaving; 3. writes are never retried ---

/// Runs one misbehaviour: the first call gets `expect` (a Gateway code, or `None` for
/// success), then v4 behaves and the next call through the same gateway succeeds.
async fn misbehaving(act: Act, extra: &str, expect: Option<&str>) -> RawV4 {
    let v4 = RawV4::start(act);
    let gw = gateway_with(extra, Some(&v4.url())).await;
    let client = common::client();
    let (status, json) = change_password(&client, &gw.url())
        .await
        .expect("an answer");
    let what = format!("{act:?}");
    match expect {
        Some(code) => assert_gateway_failure(status, &json, code, &what),
        None => assert_success(status, &json, &what),
    }
    v4.set(Act::Answer);
    let (status, json) = change_password(&client, &gw.url())
        .await
        .expect("an answer");
    assert_success(status, &json, &format!("the call after {what}"));
    gw.shutdown().await;
    v4
}

#[tokio::test]
async fn v4_resetting_connections_is_502_unreachable_and_the_next_call_is_served() {
    let v4 = misbehaving(Act::ResetOnAccept, "", Some("Gateway_E502_01")).await;
    assert_eq!(v4.requests(), 1, "only the call after the fault was read");
}

#[tokio::test]
async fn v4_truncating_its_answer_is_502_invalid_answer() {
    // v4 did answer (a status line and part of a body): the call reached it and may have
    // changed the password, so "could not be reached" (E502_01) would mislead the client.
    misbehaving(Act::Truncated, "", Some("Gateway_E502_02")).await;
}

#[tokio::test]
async fn v4_envelope_labelled_text_html_is_read_as_the_envelope() {
    // The gateway reads v4's body, not its Content-Type (translate::envelope::parse): a
    // success envelope mislabelled by a proxy is still the success v4 sent. (A real HTML
    // page is not an envelope: 502 Gateway_E502_02, see tests/core.rs.)
    misbehaving(Act::HtmlLabelled, "", None).await;
}

#[tokio::test]
async fn v4_200_with_an_invalid_envelope_is_502_invalid_answer() {
    misbehaving(Act::InvalidEnvelope, "", Some("Gateway_E502_02")).await;
}

#[tokio::test]
async fn v4_endless_chunked_body_is_read_bounded_and_is_502() {
    let v4 = misbehaving(
        Act::Endless,
        "[limits]\nupstream_body_bytes = 4096\n",
        Some("Gateway_E502_02"),
    )
    .await;
    // The gateway stopped reading and dropped the connection: the fake's writes failed
    // long before its cap (an unbounded read would have taken all 256 MiB).
    tokio::time::timeout(GUARD, async {
        while !v4.state.endless_cut.load(Ordering::SeqCst)
            && v4.state.endless_sent.load(Ordering::SeqCst) == 0
        {
            v4.state.endless_done.notified().await;
        }
    })
    .await
    .expect("the fake's endless body ended");
    let sent = v4.state.endless_sent.load(Ordering::SeqCst);
    assert!(
        v4.state.endless_cut.load(Ordering::SeqCst),
        "the gateway read the whole endless body"
    );
    assert!(sent < ENDLESS_CAP, "{sent}");
}

#[tokio::test]
async fn writes_are_never_retried_when_v4_drops_the_connection_after_reading() {
    let v4 = RawV4::start(Act::Answer);
    let gw = gateway_with("", Some(&v4.url())).await;
    let client = common::client();
    // A first call leaves a pooled keep-alive connection to v4: the faulty calls below go
    // out on a reused connection as well as on new ones, where a client might be tempted
    // to retry.
    let (status, json) = change_password(&client, &gw.url())
        .await
        .expect("an answer");
    assert_success(status, &json, "warm-up");
    assert_eq!(v4.requests(), 1);

    v4.set(Act::ResetAfterRequest);
    for i in 1..=3 {
        let before = v4.requests();
        let (status, json) = change_password(&client, &gw.url())
            .await
            .expect("an answer");
        assert_gateway_failure(status, &json, "Gateway_E502_01", &format!("reset {i}"));
        assert_eq!(
            v4.requests() - before,
            1,
            "reset {i}: v4 received the write exactly once"
        );
    }
    v4.set(Act::Answer);
    let (status, json) = change_password(&client, &gw.url())
        .await
        .expect("an answer");
    assert_success(status, &json, "after the resets");
    assert_eq!(v4.requests(), 5);
    gw.shutdown().await;
}

// --- 4. slow clients ---

#[tokio::test]
async fn slowloris_headers_are_cut_off_while_others_are_served() {
    let (state, _gate) = V4State::new(true);
    let v4 = FakeV4::start(0, state.clone());
    let gw = gateway_with("[limits]\nheader_read_timeout_ms = 300\n", Some(&v4.url())).await;

    let mut slow = TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"PUT /User/1001 HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A client that connects and sends nothing at all, and one that stops inside what could
    // still be the HTTP/2 preface (both held their connection forever before the sniffing
    // deadline in src/server.rs).
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    let mut preface = TcpStream::connect(gw.addr).await.unwrap();
    preface.write_all(b"PRI * HT").await.unwrap();

    // Meanwhile a normal client is served.
    let (status, json) = change_password(&common::client(), &gw.url())
        .await
        .expect("an answer");
    assert_success(status, &json, "normal client during the slowloris");

    closed_by_server(&mut slow, "partial headers").await;
    closed_by_server(&mut silent, "no bytes at all").await;
    closed_by_server(&mut preface, "part of the HTTP/2 preface").await;
    assert_eq!(
        state.received(),
        1,
        "nothing of the slow clients reached v4"
    );
    gw.shutdown().await;
    v4.stop().await;
}

#[tokio::test]
async fn http2_connections_outlive_the_sniffing_deadline() {
    // The sniffing deadline (src/server.rs) ends with the HTTP/2 preface: an HTTP/2
    // connection used after header_read_timeout_ms keeps working.
    let (state, _gate) = V4State::new(true);
    let v4 = FakeV4::start(0, state.clone());
    let gw = gateway_with("[limits]\nheader_read_timeout_ms = 300\n", Some(&v4.url())).await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let call = || {
        h2.put(format!("{}/User/1001", gw.url()))
            .headers(user_api_headers())
            .header("Content-Type", "application/json")
            .body(BODY)
            .timeout(GUARD)
            .send()
    };
    let resp = call().await.expect("an HTTP/2 answer");
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let status = resp.status().as_u16();
    assert_success(status, &resp.json().await.unwrap(), "HTTP/2");
    // A silent connection opened after the HTTP/2 one is cut off by its deadline: the
    // HTTP/2 connection's deadline has passed too. It still serves (reqwest multiplexes
    // every call on its one HTTP/2 connection).
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    closed_by_server(&mut silent, "silent connection").await;
    let resp = call().await.expect("a second HTTP/2 answer");
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let status = resp.status().as_u16();
    assert_success(status, &resp.json().await.unwrap(), "HTTP/2, later");
    assert_eq!(state.received(), 2);
    gw.shutdown().await;
    v4.stop().await;
}

#[tokio::test]
async fn a_partial_body_is_answered_408_in_the_legacy_shape() {
    let (state, _gate) = V4State::new(true);
    let v4 = FakeV4::start(0, state.clone());
    let gw = gateway_with(
        "[limits]\nrequest_timeout_ms = 500\nupstream_timeout_ms = 200\n",
        Some(&v4.url()),
    )
    .await;
    let mut req = String::from(
        "PUT /User/1001 HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 100\r\n",
    );
    for (name, value) in user_api_headers().iter() {
        req.push_str(&format!("{}: {}\r\n", name, value.to_str().unwrap()));
    }
    req.push_str("\r\n{\"Passwor");
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let a = read_answer(&mut s).await;
    assert_gateway_failure(a.status, &a.json, "Gateway_E408_01", "partial body");
    // The id as sent, even in an answer of the timeout: the legacy API echoed it in `Result`.
    assert_eq!(
        a.json["Result"]["CustomerRegistrationId"], "1001",
        "{}",
        a.json
    );
    closed_by_server(&mut s, "after the 408").await;
    assert_eq!(state.received(), 0, "nothing was forwarded");
    let (status, json) = change_password(&common::client(), &gw.url())
        .await
        .expect("an answer");
    assert_success(status, &json, "the next client");
    gw.shutdown().await;
    v4.stop().await;
}

// --- 5. connection bound ---

#[tokio::test]
async fn connections_beyond_max_connections_get_a_clean_503_and_are_served_after() {
    let (state, _gate) = V4State::new(true);
    let v4 = FakeV4::start(0, state.clone());
    // A long header-read timeout, so the idle keep-alive connections stay open throughout.
    let gw = gateway_with(
        "[limits]\nmax_connections = 2\nheader_read_timeout_ms = 60000\n",
        Some(&v4.url()),
    )
    .await;

    let mut held = Vec::new();
    for i in 0..2 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(raw_put().as_bytes()).await.unwrap();
        let a = read_answer(&mut s).await;
        assert_success(a.status, &a.json, &format!("held connection {i}"));
        assert!(
            !header(&a.head, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close")),
            "kept alive: {}",
            a.head
        );
        held.push(s);
    }

    let mut third = TcpStream::connect(gw.addr).await.unwrap();
    third.write_all(raw_put().as_bytes()).await.unwrap();
    let a = read_answer(&mut third).await;
    // Its request id: see the test below.
    assert_gateway_shape(a.status, &a.json, "Gateway_E503_01", "third connection");
    assert_eq!(header(&a.head, "connection"), Some("close"), "{}", a.head);
    closed_by_server(&mut third, "the refused connection").await;
    assert_eq!(state.received(), 2, "the refused call never reached v4");

    // The held connections still work: the limit did not break them.
    held[0].write_all(raw_put().as_bytes()).await.unwrap();
    let a = read_answer(&mut held[0]).await;
    assert_success(a.status, &a.json, "second call on a held connection");

    drop(held);
    // Their permits come back once the server sees them closed: poll, bounded in calls.
    let mut served = None;
    for i in 0..100 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(raw_put().as_bytes()).await.unwrap();
        let a = read_answer(&mut s).await;
        if a.status == 200 {
            assert_success(a.status, &a.json, "after the held connections closed");
            served = Some(i);
            break;
        }
        assert_gateway_shape(
            a.status,
            &a.json,
            "Gateway_E503_01",
            "while permits come back",
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served.is_some(), "new connections are served again");
    gw.shutdown().await;
    v4.stop().await;
}

#[tokio::test]
async fn the_503_at_the_connection_limit_carries_a_request_id() {
    let (state, _gate) = V4State::new(true);
    let v4 = FakeV4::start(0, state.clone());
    let gw = gateway_with(
        "[limits]\nmax_connections = 1\nheader_read_timeout_ms = 60000\n",
        Some(&v4.url()),
    )
    .await;
    let mut held = TcpStream::connect(gw.addr).await.unwrap();
    held.write_all(raw_put().as_bytes()).await.unwrap();
    let a = read_answer(&mut held).await;
    assert_success(a.status, &a.json, "held connection");

    let mut refused = TcpStream::connect(gw.addr).await.unwrap();
    refused.write_all(raw_put().as_bytes()).await.unwrap();
    let a = read_answer(&mut refused).await;
    assert_gateway_shape(a.status, &a.json, "Gateway_E503_01", "refused connection");
    let id = header(&a.head, "x-request-id");
    assert!(
        id.is_some_and(|v| !v.is_empty()),
        "an x-request-id header: {}{}",
        a.head,
        a.json
    );
    assert_eq!(
        a.json["RequestId"].as_str(),
        id,
        "RequestId is the header's id"
    );
    drop(held);
    gw.shutdown().await;
    v4.stop().await;
}

// --- 6. graceful shutdown ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_calls_and_refuses_new_connections() {
    const IN_FLIGHT: usize = 8;
    let (state, gate) = V4State::new(false);
    let v4 = FakeV4::start(0, state.clone());
    let gw = gateway_with("[limits]\nshutdown_grace_ms = 15000\n", Some(&v4.url())).await;
    let (addr, url) = (gw.addr, gw.url());

    let client = common::client();
    let calls: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { change_password(&client, &url).await })
        })
        .collect();
    // Every call is in flight: v4 holds all of them.
    tokio::time::timeout(GUARD, async {
        while state.received() < IN_FLIGHT {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every call reached v4");

    let shutdown = tokio::spawn(gw.shutdown());
    // While the calls are still held, new connections are refused (bounded in attempts; a
    // connect that wins the race with the listener closing is simply dropped).
    let mut refused = false;
    for _ in 0..500 {
        match TcpStream::connect(addr).await {
            Err(_) => {
                refused = true;
                break;
            }
            Ok(s) => drop(s),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "new connections are refused once shutdown began");
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the in-flight calls"
    );
    assert_eq!(state.received(), IN_FLIGHT, "no new call got through");

    gate.send(true).unwrap();
    for (i, call) in calls.into_iter().enumerate() {
        let (status, json) = tokio::time::timeout(GUARD, call)
            .await
            .expect("the call finished")
            .unwrap()
            .expect("an answer");
        assert_success(status, &json, &format!("in-flight call {i}"));
    }
    tokio::time::timeout(GUARD, shutdown)
        .await
        .expect("shutdown returned")
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still refused after shutdown"
    );
    v4.stop().await;
}

#[tokio::test]
async fn shutdown_returns_after_the_grace_even_if_a_call_never_finishes() {
    let (state, _gate) = V4State::new(false);
    let v4 = FakeV4::start(0, state.clone());
    // v4 would be waited on for 25 s; the grace is 300 ms; the guard (20 s) sits between.
    let gw = gateway_with(
        "[limits]\nshutdown_grace_ms = 300\nupstream_timeout_ms = 25000\nrequest_timeout_ms = 30000\n",
        Some(&v4.url()),
    )
    .await;
    let url = gw.url();
    let call = tokio::spawn(async move { change_password(&common::client(), &url).await });
    tokio::time::timeout(GUARD, async {
        while state.received() < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the call reached v4");
    tokio::time::timeout(GUARD, gw.shutdown())
        .await
        .expect("shutdown returned within the guard, bounded by the grace");
    call.abort();
    v4.stop().await;
}

#[tokio::test]
async fn the_binary_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let gw = common::binary::Binary::serve().start(dir.path()).await;
    let healthz = common::client()
        .get(format!("{}/_gateway/healthz", gw.url()))
        .send()
        .await
        .expect("healthz answered");
    assert!(
        healthz.status().is_success(),
        "healthz: {}",
        gw.stderr_so_far()
    );
    // `stop` sends SIGTERM and requires exit status 0.
    let (_, logs) = gw.stop().await;
    assert!(logs.contains("shutting down"), "{logs}");
}

/// `limits.upstream_idle_connections` bounds the v4 connections kept after a burst: with 1,
/// a second burst of 4 concurrent calls reuses one connection and opens 3; with the default
/// (64) it reuses all 4. The bound is per worker (each owns its pool, as each nginx worker
/// owns its `keepalive` cache), so the gateway runs one worker here to make it exact.
#[tokio::test]
async fn idle_v4_connections_kept_after_a_burst_are_bounded_by_the_setting() {
    async fn burst(client: &reqwest::Client, url: &str) {
        let calls = (0..4).map(|_| change_password(client, url));
        for (status, json) in futures_util::future::join_all(calls)
            .await
            .into_iter()
            .map(|r| r.expect("an answer"))
        {
            assert_success(status, &json, "burst");
        }
    }
    for (config, expected) in [
        ("workers = 1\n[limits]\nupstream_idle_connections = 1\n", 7),
        ("workers = 1\n", 4),
    ] {
        let v4 = RawV4::start(Act::Slow);
        let gw = gateway_with(config, Some(&v4.url())).await;
        let client = common::client();
        burst(&client, &gw.url()).await;
        assert_eq!(
            v4.state.accepted.load(Ordering::SeqCst),
            4,
            "{config:?}: first burst"
        );
        // Let the pool settle: answers read, excess connections closed.
        tokio::time::sleep(Duration::from_millis(100)).await;
        burst(&client, &gw.url()).await;
        assert_eq!(
            v4.state.accepted.load(Ordering::SeqCst),
            expected,
            "{config:?}: connections opened after the second burst"
        );
        assert_eq!(v4.requests(), 8);
    }
}
