//! Towards legacy backends: `X-Forwarded-*`, header-name case both ways, `Content-Length` on
//! HEAD, no `Accept-Encoding` in shadow mode, bounded tenant labels, and a request path that
//! does not wait on the shadow lane's diff writing.

mod common;

use std::time::Duration;

use common::fakes::legacy_accepts;
use common::put_request;
use common::{client, metrics_text, mount, received, user_api_headers, v4, PASSWORD};
use serde_json::{json, Value};
use wiremock::{MockServer, ResponseTemplate};

fn legacy_config(legacy: &MockServer, extra: &str) -> String {
    format!(
        "mode = \"legacy\"\nuser_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n{extra}",
        legacy.uri()
    )
}

fn header(r: &wiremock::Request, name: &str) -> Option<String> {
    r.headers.get(name).map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn forwarded_headers_are_replaced_from_untrusted_peers_and_extended_from_trusted_ones() {
    let legacy = MockServer::start().await;
    mount(&legacy, "PUT", "/User/1001", ResponseTemplate::new(200)).await;
    let send = |gw_url: String| async move {
        put_request(&gw_url, "1001")
            .header("X-Forwarded-For", "1.2.3.4")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "paper.example")
            .body("{}")
            .send()
            .await
            .unwrap()
            .status()
    };
    let gw = common::gateway_with(&legacy_config(&legacy, ""), None).await;
    assert_eq!(send(gw.url()).await, 200);
    let r = &received(&legacy).await[0];
    assert_eq!(header(r, "x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(header(r, "x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(header(r, "x-forwarded-host"), Some(gw.addr.to_string()));
    gw.shutdown().await;

    let gw = common::gateway_with(
        &legacy_config(&legacy, "trusted_proxies = [\"127.0.0.1\"]\n"),
        None,
    )
    .await;
    assert_eq!(send(gw.url()).await, 200);
    let r = &received(&legacy).await[1];
    assert_eq!(
        header(r, "x-forwarded-for").as_deref(),
        Some("1.2.3.4, 127.0.0.1")
    );
    assert_eq!(header(r, "x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(
        header(r, "x-forwarded-host").as_deref(),
        Some("paper.example")
    );
    gw.shutdown().await;
}

/// A raw HTTP/1.1 legacy backend that keeps the head it was sent and answers with names that
/// are not lower-case: the backend gets lower-case names (no case map is kept per request),
/// the client gets the answer's names as the backend wrote them.
#[tokio::test]
async fn requests_reach_the_backend_lower_cased_and_answers_keep_its_case() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (heads, mut seen) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let heads = heads.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                let _ = heads.send(String::from_utf8_lossy(&got).into_owned());
                let body = b"{\"Code\":0}";
                let head = format!(
                    "HTTP/1.1 200 OK\r\nX-Legacy-Trace: abc\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body).await;
            });
        }
    });
    let cfg = format!(
        "mode = \"legacy\"\nuser_api_url = \"http://{addr}\"\nregistry_api_url = \"http://{addr}\"\n"
    );
    let gw = common::gateway_with(&cfg, Some("http://127.0.0.1:9")).await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(
        b"GET /User/1001 HTTP/1.1\r\nHost: x\r\nX-SourceSystem: app\r\nX-ClientCode: CA\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("the gateway answers")
        .unwrap();
    let answer = String::from_utf8_lossy(&raw);
    assert!(answer.contains("\r\nX-Legacy-Trace: abc\r\n"), "{answer}");
    assert!(
        answer.contains("\r\nContent-Type: application/json\r\n"),
        "{answer}"
    );
    let head = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the backend was called")
        .unwrap();
    assert!(head.contains("\r\nx-sourcesystem: app\r\n"), "{head}");
    assert!(head.contains("\r\nx-clientcode: CA\r\n"), "{head}");
    assert!(!head.contains("X-SourceSystem"), "{head}");
    gw.shutdown().await;
}

#[tokio::test]
async fn head_answers_keep_their_content_length() {
    let legacy = MockServer::start().await;
    mount(
        &legacy,
        "HEAD",
        "/User/1001",
        ResponseTemplate::new(200).set_body_string("x".repeat(1234)),
    )
    .await;
    let gw = common::gateway_with(&legacy_config(&legacy, ""), None).await;
    let resp = client()
        .head(format!("{}/User/1001", gw.url()))
        .headers(user_api_headers())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], "1234");
    gw.shutdown().await;
}

struct Shadowed {
    legacy: MockServer,
    staging: MockServer,
}

/// Shadow mode on the User API, writes copied to a staging v4 that answers differently from
/// the legacy backend (every copy differs).
async fn shadowed(extra: &str) -> (Shadowed, legacy_gateway::Running) {
    let f = Shadowed {
        legacy: MockServer::start().await,
        staging: MockServer::start().await,
    };
    legacy_accepts(&f.legacy, "1001", "r").await;
    mount(
        &f.staging,
        "PATCH",
        "/v4/Users/1001/Password",
        ResponseTemplate::new(400).set_body_json(v4("E400_00", "Invalid InputModel", "Error")),
    )
    .await;
    let gw = common::gateway_with(
        &format!(
            "mode = \"shadow\"\nuser_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n[[modes]]\ntenant = \"CA\"\nmode = \"shadow\"\n[shadow]\norchestrator_url = \"{1}\"\n{extra}\n[shadow.routes.\"user-api\"]\nwrites = true\n",
            f.legacy.uri(),
            f.staging.uri()
        ),
        Some(&common::dead_url()),
    )
    .await;
    (f, gw)
}

async fn put_as(gw: &legacy_gateway::Running, client_code: &str) -> u16 {
    common::put_as(&gw.url(), "1001", client_code)
        .header("Accept-Encoding", "gzip, br")
        .body(json!({"Password": PASSWORD}).to_string())
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("the client is answered")
        .status()
        .as_u16()
}

async fn shadow_total(gw: &legacy_gateway::Running, tenant: &str) -> bool {
    let needle = format!(
        r#"gateway_shadow_total{{route="user-api",tenant="{tenant}",result="compared"}} 1"#
    );
    for _ in 0..200 {
        if metrics_text(gw).await.contains(&needle) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn shadow_asks_for_uncompressed_answers_and_bounds_tenant_labels() {
    let (f, gw) = shadowed("").await;
    assert_eq!(put_as(&gw, "CA").await, 200);
    assert!(shadow_total(&gw, "CA").await, "{}", metrics_text(&gw).await);
    // An X-ClientCode nobody configured is `other`, in the metric and the report.
    assert_eq!(put_as(&gw, "INVENTED-42").await, 200);
    assert!(
        shadow_total(&gw, "other").await,
        "{}",
        metrics_text(&gw).await
    );
    let m = metrics_text(&gw).await;
    assert!(!m.contains("invented-42"), "{m}");
    let report: Value = common::shadow_report(&gw).await;
    assert!(!report.to_string().contains("invented-42"), "{report}");
    // The legacy backend was not asked for a compressed answer (it is compared).
    for r in received(&f.legacy).await {
        assert_eq!(header(&r, "accept-encoding"), None);
    }
    assert_eq!(received(&f.staging).await.len(), 2);
    gw.shutdown().await;
}

/// The shadow lane stuck writing a diff (a FIFO nobody reads: `open` blocks) must not hold
/// up clients or the report: the diff is written outside the lock the request path takes.
#[tokio::test]
async fn a_stuck_diff_write_does_not_hold_up_the_request_path() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("diffs.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let (f, gw) = shadowed(&format!("diff_file = {:?}\n", fifo)).await;
    assert_eq!(put_as(&gw, "CA").await, 200);
    // Wait until the copy was compared: the lane is now blocked opening the FIFO.
    let mut staged = false;
    for _ in 0..200 {
        if !received(&f.staging).await.is_empty() {
            staged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(staged);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Clients (which count shadow figures on the request path) and the report still answer.
    for _ in 0..3 {
        assert_eq!(put_as(&gw, "CA").await, 200);
    }
    let report = client()
        .get(common::admin(&gw, "shadow"))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("the report answers");
    assert_eq!(report.status(), 200);
    // Unblock the lane: read the FIFO, which gets the first diff.
    let reader = std::thread::spawn(move || std::fs::read_to_string(&fifo).unwrap_or_default());
    gw.shutdown().await;
    let _ = reader;
}
