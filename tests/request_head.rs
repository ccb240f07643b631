//! The request head as RFC 9110 and RFC 9112 allow it (its headers and its target),
//! the upstream named in its failures, and the per-tenant figures, all over loopback: a raw
//! TCP client where a well-behaved one (reqwest) could not send the head at all.

mod common;

use std::time::Duration;

use common::fakes::{accepting_anything, legacy_accepts, password_changes};
use common::{dead_url, metrics_text, mount, received, v4, PASSWORD, TOKEN};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::{MockServer, ResponseTemplate};

/// A hang guard, never the thing checked.
const GUARD: Duration = Duration::from_secs(20);

/// Sends `head` (with `body`) on a new connection and reads the answer until the gateway
/// closes it (`Connection: close` is added): status and JSON body.
async fn raw(gw: &legacy_gateway::Running, head: &str, body: &str) -> (u16, Value) {
    let mut conn = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let request = format!(
        "{head}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(GUARD, conn.read_to_end(&mut out))
        .await
        .expect("answered")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    let status: u16 = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The five legacy headers, as raw lines, with `extra` lines after them.
fn legacy_lines(extra: &str) -> String {
    format!(
        "Authorization: {TOKEN}\r\nX-SourceSystem: legacy-user-api\r\nX-ClientCode: CA\r\nX-PaperCode: PA\r\nX-ClientGroupCode: GA\r\nContent-Type: application/json\r\n{extra}"
    )
}

fn password_body() -> String {
    format!(r#"{{"Password":"{PASSWORD}"}}"#)
}

fn code(answer: &Value) -> &str {
    answer["Errors"][0]["Code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn heads_two_parsers_could_read_two_ways_are_refused_before_v4() {
    let v4s = accepting_anything().await;
    let gw = common::gateway(&v4s.uri()).await;
    let put = |host_lines: &str, extra: &str| {
        format!(
            "PUT /User/1001 HTTP/1.1\r\n{host_lines}{}",
            legacy_lines(extra)
        )
    };
    let cases = [
        (put("", ""), 400, "Gateway_E400_14", "no Host"),
        (
            put("Host: a.test\r\nHost: b.test\r\n", ""),
            400,
            "Gateway_E400_13",
            "two Hosts",
        ),
        (
            put("Host: a.test:0\r\n", ""),
            400,
            "Gateway_E400_14",
            "port 0",
        ),
        (
            put("Host: a.test:99999\r\n", ""),
            400,
            "Gateway_E400_14",
            "port over 65535",
        ),
        (
            put("Host: a.test:\r\n", ""),
            400,
            "Gateway_E400_14",
            "an empty port",
        ),
        (
            put("Host: a.test:08443\r\n", ""),
            400,
            "Gateway_E400_14",
            "a leading zero",
        ),
        (
            put("Host: a.test\r\n", "X-ClientCode: CB\r\n"),
            400,
            "Gateway_E400_13",
            "X-ClientCode twice",
        ),
        (
            put("Host: a.test\r\n", &format!("Authorization: {TOKEN}\r\n")),
            400,
            "Gateway_E400_13",
            "two Authorization headers",
        ),
    ];
    for (head, status, expected, what) in cases {
        let (got, answer) = raw(&gw, &head, &password_body()).await;
        assert_eq!((got, code(&answer)), (status, expected), "{what}: {answer}");
        assert_eq!(answer["Result"]["CustomerRegistrationId"], "1001", "{what}");
    }
    // One header line holding two values is the same as two lines (RFC 9110 5.3).
    let joined = "PUT /User/1001 HTTP/1.1\r\nHost: a.test\r\nAuthorization: Bearer a\r\nX-SourceSystem: s\r\nX-ClientCode: CA, CB\r\nX-PaperCode: PA\r\nX-ClientGroupCode: GA\r\n";
    let (got, answer) = raw(&gw, joined, &password_body()).await;
    assert_eq!((got, code(&answer)), (400, "Gateway_E400_13"), "{answer}");
    assert!(
        answer["Errors"][0]["Message"]
            .as_str()
            .unwrap()
            .contains("X-ClientCode"),
        "{answer}"
    );
    // A scheme with no credential is no token: 401, as a missing one.
    let bare = "PUT /User/1001 HTTP/1.1\r\nHost: a.test\r\nAuthorization: Bearer\r\nX-SourceSystem: s\r\nX-ClientCode: CA\r\nX-PaperCode: PA\r\nX-ClientGroupCode: GA\r\n";
    let (got, answer) = raw(&gw, bare, &password_body()).await;
    assert_eq!((got, code(&answer)), (401, "Gateway_E401_01"), "{answer}");
    // A tunnel is not a legacy call.
    let (got, answer) = raw(
        &gw,
        "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n",
        "",
    )
    .await;
    assert_eq!((got, code(&answer)), (405, "Gateway_E405_01"), "{answer}");
    assert!(received(&v4s).await.is_empty(), "nothing reached v4");
    gw.shutdown().await;
}

#[tokio::test]
async fn the_authority_of_an_absolute_target_wins_over_host() {
    let v4s = MockServer::start().await;
    mount(
        &v4s,
        "POST",
        "/v4/Users/ForgotPassword",
        ResponseTemplate::new(200).set_body_json(v4(
            "S200_08",
            "Start ForgotPassword completed.",
            "Success",
        )),
    )
    .await;
    let gw = common::gateway_with(common::REGISTRY_TENANT, Some(&v4s.uri())).await;
    let body = r#"{"email":"a@b.cd"}"#;
    // The target names the configured tenant, `Host` an unknown one: the target wins.
    let head = format!(
        "POST http://paper-a.test{}?action=registernewpassword HTTP/1.1\r\nHost: unknown.test\r\nContent-Type: application/json\r\n",
        common::REGISTRY
    );
    let (got, answer) = raw(&gw, &head, body).await;
    assert_eq!(
        (got, answer["status"].as_str()),
        (200, Some("OK")),
        "{answer}"
    );
    // And the other way round: `Host` names the tenant, the target does not.
    let head = format!(
        "POST http://unknown.test{}?action=registernewpassword HTTP/1.1\r\nHost: paper-a.test\r\nContent-Type: application/json\r\n",
        common::REGISTRY
    );
    let (got, answer) = raw(&gw, &head, body).await;
    assert_eq!(got, 404, "{answer}");
    assert_eq!(received(&v4s).await.len(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_query_parameter_sent_twice_is_forwarded_once() {
    let v4s = MockServer::start().await;
    mount(
        &v4s,
        "GET",
        "/v4/Users/1001/",
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "message": {"code": "UsersOrchestrator_S200_01", "text": "ok", "type": "Success"},
            "data": {"customerRegistrationId": "1001", "email": "a@b.cd"}
        })),
    )
    .await;
    let gw = common::gateway(&v4s.uri()).await;
    let resp = common::client()
        .get(format!(
            "{}/User/1001?IgnoreProvider=true&ignoreprovider=false",
            gw.url()
        ))
        .headers(common::user_api_headers())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got = received(&v4s).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].url.query(), Some("ignoreProvider=true"));
    gw.shutdown().await;
}

#[tokio::test]
async fn legacy_mode_rewrites_forwarded_and_x_real_ip() {
    let legacy = MockServer::start().await;
    legacy_accepts(&legacy, "1001", "legacy-rid").await;
    let gw = common::gateway_with(
        &format!(
            "mode = \"legacy\"\nuser_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n",
            legacy.uri()
        ),
        Some(&dead_url()),
    )
    .await;
    let resp = common::put_request(&gw.url(), "1001")
        .header("Forwarded", "for=203.0.113.9;proto=https")
        .header("X-Real-IP", "203.0.113.9")
        .body(password_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got = received(&legacy).await;
    let h = &got[0].headers;
    assert_eq!(
        h["x-real-ip"], "127.0.0.1",
        "the peer, not what the client wrote"
    );
    let forwarded = h["forwarded"].to_str().unwrap();
    assert!(
        forwarded.starts_with("for=127.0.0.1;proto=http"),
        "{forwarded}"
    );
    assert!(!forwarded.contains("203.0.113.9"), "{forwarded}");
    gw.shutdown().await;
}

#[tokio::test]
async fn each_upstream_is_named_in_its_own_failures() {
    // The legacy backend down, in legacy mode: its own code and name, not v4's.
    let gw = common::gateway_with(
        &format!(
            "mode = \"legacy\"\nuser_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n",
            dead_url()
        ),
        Some(&dead_url()),
    )
    .await;
    let answer = common::put_user(&gw, "1001", password_body()).await;
    answer.assert_refused(502, "Gateway_E502_03", "the legacy backend is down");
    assert_eq!(
        answer.json["Errors"][0]["Message"],
        "The legacy User API could not be reached."
    );
    gw.shutdown().await;

    // v4 answering something that is not HTTP after reading the request: it was reached.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let garbage = tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"NOT HTTP AT ALL\r\n\r\n").await;
        }
    });
    let gw = common::gateway(&format!("http://{addr}")).await;
    let answer = common::put_user(&gw, "1001", password_body()).await;
    answer.assert_refused(502, "Gateway_E502_02", "garbage from v4");
    assert_eq!(
        answer.json["Errors"][0]["Message"],
        "The Users Orchestrator answered with an invalid response."
    );
    gw.shutdown().await;
    garbage.abort();
}

#[tokio::test]
async fn requests_are_counted_per_tenant_and_mode() {
    let v4s = MockServer::start().await;
    password_changes(&v4s, "1001").await;
    let gw = common::gateway_with(
        "[[modes]]\nroute = \"user-api\"\ntenant = \"CA\"\nmode = \"translate\"\n",
        Some(&v4s.uri()),
    )
    .await;
    for tenant in ["CA", "ca", "ZZ"] {
        let resp = common::put_as(&gw.url(), "1001", tenant)
            .body(password_body())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let text = metrics_text(&gw).await;
    // A configured tenant under its configured spelling; any other value is `other`.
    assert!(
        text.contains(r#"gateway_requests_total{route="user-api",status="200",tenant="CA",mode="translate"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"gateway_requests_total{route="user-api",status="200",tenant="other",mode="translate"} 1"#),
        "{text}"
    );
    assert!(!text.contains("ZZ"), "no label per value a client sends");
    gw.shutdown().await;
}

#[tokio::test]
async fn access_lines_name_tenant_mode_backend_and_cut_long_paths() {
    let v4s = MockServer::start().await;
    password_changes(&v4s, "1001").await;
    let log_dir = tempfile::tempdir().unwrap();
    let gw = common::binary::Binary::serve()
        .args(["--orchestrator", v4s.uri().as_str()])
        .rust_log("info")
        .start(log_dir.path())
        .await;
    let resp = common::put_request(&gw.url(), "1001")
        .body(password_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let long = format!("/User/{}", "x".repeat(4000));
    let resp = common::put_request(&gw.url(), &long[6..])
        .body(password_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "an id over 256 characters");
    let (_, stderr) = gw.stop().await;
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("legacy_gateway::access"))
        .collect();
    let ok = lines
        .iter()
        .find(|l| l.contains("status=200"))
        .unwrap_or_else(|| panic!("{stderr}"));
    for field in [
        "tenant=",
        "mode=\"translate\"",
        "backend=\"v4\"",
        "upstream_status=200",
        "upstream_latency_us=",
    ] {
        assert!(ok.contains(field), "{field} in {ok}");
    }
    let cut = lines
        .iter()
        .find(|l| l.contains("status=400"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(cut.contains(&"x".repeat(500)), "{cut}");
    assert!(
        !cut.contains(&"x".repeat(520)),
        "the path is cut to 512 bytes: {cut}"
    );
}
