//! Secrets never leave the gateway: the real binary runs with debug logging in front of a fake
//! v4 that even echoes the password back, is driven through success, v4 refusals, gateway
//! refusals and a dead upstream with a known password and token, and then everything it wrote
//! (stdout, stderr), every answer and its metrics are searched for them.
//! Also: `--log-format json` writes nothing but JSON lines.

mod common;

use std::net::SocketAddr;

use common::binary::GatewayProcess;
use common::{dead_url, mount, user_api_headers, v4, PASSWORD, TOKEN};
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The token without its scheme: a log that dropped `Bearer ` would still leak it.
fn bare_token() -> &'static str {
    TOKEN.strip_prefix("Bearer ").unwrap()
}

/// The binary with a short shutdown grace (the tests end it with SIGTERM).
struct Gateway {
    process: GatewayProcess,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Gateway {
    async fn start(extra: &[&str], rust_log: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("gateway.toml");
        std::fs::write(&config, "[limits]\nshutdown_grace_ms = 2000\n").unwrap();
        let process = GatewayProcess::start(&config, dir.path(), extra, rust_log).await;
        Self {
            addr: process.addr,
            process,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        self.process.url()
    }

    fn admin(&self, path: &str) -> String {
        self.process.admin(path)
    }

    async fn stop(self) -> (String, String) {
        self.process.stop().await
    }
}

/// Sends one request and returns status and body; keeps every answer for the final search.
struct Driver {
    client: reqwest::Client,
    answers: Vec<String>,
}

impl Driver {
    fn new() -> Self {
        Self {
            client: common::client(),
            answers: Vec::new(),
        }
    }

    async fn put(&mut self, gw: &Gateway, id: &str, body: impl Into<String>) -> (u16, Value) {
        let resp = self
            .client
            .put(format!("{}/User/{id}", gw.url()))
            .headers(user_api_headers())
            .header("Content-Type", "application/json")
            .body(body.into())
            .send()
            .await
            .expect("the gateway answers");
        let status = resp.status().as_u16();
        let mut seen = format!("{:?}\n", resp.headers());
        let text = resp.text().await.unwrap();
        seen.push_str(&text);
        self.answers.push(seen);
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON answer: {text}")),
        )
    }

    async fn get(&mut self, url: String) -> String {
        let text = self
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        self.answers.push(text.clone());
        text
    }
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [PASSWORD, TOKEN, bare_token()] {
        assert!(
            !text.contains(secret),
            "{what} contains {secret:?}:\n{}",
            text.lines()
                .filter(|l| l.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_password_or_token_in_logs_answers_or_metrics() {
    let v4s = MockServer::start().await;
    mount(
        &v4s,
        "PATCH",
        "/v4/Users/1001/Password",
        ResponseTemplate::new(200).set_body_json(v4(
            "S200_11",
            "Update password completed.",
            "Success",
        )),
    )
    .await;
    // A careless v4 that echoes the password in its error text.
    let echo = format!(
        "Invalid InputModel - Password '{PASSWORD}' does not meet the complexity requirements."
    );
    mount(
        &v4s,
        "PATCH",
        "/v4/Users/2002/Password",
        ResponseTemplate::new(400).set_body_json(v4("E400_00", &echo, "Error")),
    )
    .await;
    mount(
        &v4s,
        "PUT",
        "/v4/Users/2002/",
        ResponseTemplate::new(200).set_body_json(v4(
            "S200_10",
            "Update user completed.",
            "Success",
        )),
    )
    .await;
    mount(
        &v4s,
        "PATCH",
        "/v4/Users/2002/Email",
        ResponseTemplate::new(400).set_body_json(v4(
            "E400_08",
            &format!(
                "The email is already in use by another user. (request had password {PASSWORD})"
            ),
            "Error",
        )),
    )
    .await;
    mount(
        &v4s,
        "PATCH",
        "/v4/Users/3003/Password",
        ResponseTemplate::new(500).set_body_raw(
            format!("<html>NullReferenceException at SetPassword(\"{PASSWORD}\")</html>"),
            "text/html",
        ),
    )
    .await;

    let live = Gateway::start(&["--orchestrator", &v4s.uri()], "debug").await;
    let dead = Gateway::start(&["--orchestrator", &dead_url()], "debug").await;
    let mut d = Driver::new();
    let pw = json!({"Password": PASSWORD}).to_string();

    // Success.
    let (s, a) = d.put(&live, "1001", pw.clone()).await;
    assert_eq!((s, &a["Code"]), (200, &json!(0)), "{a}");
    // v4 refuses and echoes the password: the text reaches the client scrubbed.
    let (s, a) = d.put(&live, "2002", pw.clone()).await;
    assert_eq!(s, 400, "{a}");
    assert_eq!(
        a["Errors"][0]["Message"],
        "Invalid InputModel - Password '***' does not meet the complexity requirements."
    );
    assert_eq!(a["Errors"][0]["Type"]["Code"], "PasswordComplexity");
    // The same in a mixed body, where the failing part is not the password's.
    let (s, a) = d
        .put(
            &live,
            "2002",
            json!({"Password": PASSWORD, "FirstName": "A", "Email": "b@example.test"}).to_string(),
        )
        .await;
    assert_eq!(s, 400, "{a}");
    assert_eq!(a["Errors"][0]["Part"], "Email");
    assert_eq!(
        a["Errors"][0]["Message"],
        "The email is already in use by another user. (request had password ***)"
    );
    // An HTML error page holding the password.
    let (s, a) = d.put(&live, "3003", pw.clone()).await;
    assert_eq!(s, 500, "{a}");
    // Malformed JSON, in several ways, around the password.
    for body in [
        format!(r#"{{"Password": "{PASSWORD}""#),
        format!(r#"{{"Password": {PASSWORD}}}"#),
        format!(r#"{{"Password" "{PASSWORD}"}}"#),
        format!(r#"["{PASSWORD}"]"#),
        format!(r#""{PASSWORD}""#),
    ] {
        let (s, a) = d.put(&live, "1001", body).await;
        assert_eq!(s, 400, "{a}");
    }
    // Unknown field, wrong type, duplicate key, all carrying the password.
    for body in [
        json!({"Password": PASSWORD, "Nickname": "x"}).to_string(),
        json!({"Verified": PASSWORD}).to_string(),
        json!({"Metadata": PASSWORD}).to_string(),
        format!(r#"{{"Password": "{PASSWORD}", "password": "{PASSWORD}"}}"#),
    ] {
        let (s, a) = d.put(&live, "1001", body).await;
        assert_eq!(s, 400, "{a}");
    }
    // Through a path that cannot be used as an id.
    let (s, _) = d.put(&live, "..%2Fx", pw.clone()).await;
    assert_eq!(s, 400);
    // A dead upstream.
    let (s, a) = d.put(&dead, "1001", pw.clone()).await;
    assert_eq!(
        (s, &a["Errors"][0]["Code"]),
        (502, &json!("Gateway_E502_01"))
    );

    let metrics_live = d.get(live.admin("metrics")).await;
    let metrics_dead = d.get(dead.admin("metrics")).await;
    assert!(metrics_live.contains("gateway_requests_total"));
    assert_no_secret("metrics (live)", &metrics_live);
    assert_no_secret("metrics (dead upstream)", &metrics_dead);
    for (i, answer) in d.answers.iter().enumerate() {
        assert_no_secret(&format!("answer {i}"), answer);
    }
    // The fake v4 did get the password: the gateway had it in hand all along.
    let got = v4s.received_requests().await.unwrap();
    assert!(got
        .iter()
        .any(|r| String::from_utf8_lossy(&r.body).contains(PASSWORD)));
    drop(d);

    for (name, gw) in [("live", live), ("dead", dead)] {
        let (out, err) = gw.stop().await;
        // The logs are there and at debug level: an empty log would prove nothing.
        assert!(err.contains("legacy-gateway listening"), "{name}: {err}");
        assert!(err.contains("DEBUG"), "{name}: no debug lines");
        assert!(
            err.contains("translated operation"),
            "{name}: no audit line"
        );
        assert_no_secret(&format!("stdout ({name})"), &out);
        assert_no_secret(&format!("stderr ({name})"), &err);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_echoed_by_v4_is_not_passed_on() {
    let v4s = MockServer::start().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(401).set_body_json(v4(
            "E401",
            &format!("Token '{TOKEN}' is expired."),
            "Error",
        )))
        .mount(&v4s)
        .await;
    let gw = Gateway::start(&["--orchestrator", &v4s.uri()], "debug").await;
    let mut d = Driver::new();
    let (s, _) = d
        .put(&gw, "1001", json!({"Password": PASSWORD}).to_string())
        .await;
    assert_eq!(s, 401);
    let (_, err) = gw.stop().await;
    assert_no_secret("stderr", &err);
    for answer in &d.answers {
        assert_no_secret("answer", answer);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_log_format_writes_only_json_lines() {
    let gw = Gateway::start(&["--log-format", "json"], "info").await;
    let mut d = Driver::new();
    let (s, a) = d
        .put(&gw, "1001", json!({"Password": "NewPassw0rd"}).to_string())
        .await;
    assert_eq!(s, 200, "{a}");
    let (s, _) = d.put(&gw, "1001", "{not json").await;
    assert_eq!(s, 400);
    let health = d.get(format!("{}/_gateway/healthz", gw.url())).await;
    assert!(health.contains("ok"));
    drop(d);
    let addr = gw.addr.to_string();
    let (out, err) = gw.stop().await;

    assert!(out.is_empty(), "stdout is for command output: {out}");
    let lines: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    assert!(lines.len() >= 3, "{err}");
    for l in &lines {
        assert!(l["level"].is_string() && l["timestamp"].is_string(), "{l}");
    }
    // The first thing a newcomer reads: no orchestrator, so the sandbox.
    let first = &lines[0];
    assert!(
        first["message"].as_str().unwrap_or("").contains("sandbox"),
        "{first}"
    );
    assert!(
        first["sandbox"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:")),
        "{first}"
    );
    assert!(lines
        .iter()
        .any(|l| l["message"] == "legacy-gateway listening" && l["addr"] == addr.as_str()));
    assert!(lines
        .iter()
        .any(|l| l["message"] == "translated operation" && l["legacy_event"] == "CHGPWD"));
    assert_no_secret("stderr", &err);
    assert!(!err.contains("NewPassw0rd"));
}
