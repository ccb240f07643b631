//! Event translation as operators use it: the `events` command (stdin/--input, stdout,
//! --unmatched, --strict, --skip-invalid), the same over HTTP, and the audit record every
//! translated request writes.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_legacy-gateway");

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn to_v4_then_to_legacy_round_trips_through_the_binary() {
    let legacy = [
        json!({"EventTypeCode": "CHGPWD", "EventId": 22, "CustomerRegistrationId": "1001", "CorrelationId": "c1", "SourceSystem": "web"}),
        json!({"EventTypeCode": "PWDREQ", "EventId": 64, "CustomerRegistrationId": "1002", "CorrelationId": "c2"}),
    ];
    let input: String = legacy.iter().map(|v| format!("{v}\n")).collect();
    let (code, out, err) = run(&["events", "to-v4"], &input);
    assert_eq!(code, 0, "{err}");
    let v4 = lines(&out);
    let ids: Vec<i64> = v4.iter().map(|r| r["eventId"].as_i64().unwrap()).collect();
    assert_eq!(ids, [4609, 4010, 4009]);
    assert_eq!(v4[0]["sourceSystem"], "web");
    assert_eq!(v4[0]["side"], "authsystem");

    // Back, in reverse order: the groups are joined on correlationId whatever the order.
    let reversed: String = out.lines().rev().map(|l| format!("{l}\n")).collect();
    let dir = tempfile::tempdir().unwrap();
    let input_file = dir.path().join("v4.jsonl");
    std::fs::write(&input_file, reversed).unwrap();
    let (code, out, err) = run(
        &[
            "events",
            "to-legacy",
            "--input",
            input_file.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let mut back = lines(&out);
    back.sort_by_key(|r| r["CorrelationId"].as_str().unwrap().to_string());
    assert_eq!(back[0]["EventTypeCode"], "CHGPWD");
    assert_eq!(back[0]["EventId"], 22);
    assert_eq!(back[0]["SourceSystem"], "web");
    assert_eq!(back[1]["EventTypeCode"], "PWDREQ");
    assert!(err.contains("2 written"), "{err}");
}

#[test]
fn incomplete_groups_unknown_codes_and_bad_lines_are_never_silent() {
    let dir = tempfile::tempdir().unwrap();
    let unmatched = dir.path().join("unmatched.jsonl");
    let input = concat!(
        r#"{"eventTypeCode":"AUTHSYSTEM_USER_CHANGEPASSWORD","eventId":4609,"correlationId":"half"}"#,
        "\n",
        r#"{"eventTypeCode":"SOMETHING_NEW","eventId":9999,"correlationId":"x"}"#,
        "\n",
    );
    let (code, out, err) = run(
        &[
            "events",
            "to-legacy",
            "--unmatched",
            unmatched.to_str().unwrap(),
        ],
        input,
    );
    assert_eq!(code, 0, "{err}");
    // The unknown code passes through unchanged; the half group is reported and kept.
    assert_eq!(
        lines(&out),
        [json!({"eventTypeCode":"SOMETHING_NEW","eventId":9999,"correlationId":"x"})]
    );
    assert!(err.contains("half"), "{err}");
    let kept = std::fs::read_to_string(&unmatched).unwrap();
    assert_eq!(lines(&kept)[0]["correlationId"], "half");

    let (code, _, err) = run(&["events", "to-legacy", "--strict"], input);
    assert_ne!(code, 0);
    assert!(err.contains("line 2"), "{err}");

    let bad = "{\"EventTypeCode\":\"CHGPWD\",\"EventId\":22,\"CorrelationId\":\"a\"}\nnot json\n";
    let (code, _, err) = run(&["events", "to-v4"], bad);
    assert_ne!(code, 0);
    assert!(err.contains("line 2"), "{err}");
    let (code, out, err) = run(&["events", "to-v4", "--skip-invalid"], bad);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines(&out).len(), 2);
    assert!(err.contains("1 invalid"), "{err}");
}

#[tokio::test]
async fn the_same_translation_over_http() {
    let gw = common::gateway_with("", None).await;
    let url = |p: &str| common::admin(&gw, &format!("events/{p}"));
    let resp = common::client()
        .post(url("to-v4"))
        .body("{\"EventTypeCode\":\"CHGEMAIL\",\"EventId\":21,\"CorrelationId\":\"e1\"}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v4 = lines(&resp.text().await.unwrap());
    assert_eq!(
        v4.iter()
            .map(|r| r["eventId"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [4610, 4011]
    );

    let half = "{\"eventTypeCode\":\"AUTHSYSTEM_USER_CHANGEEMAIL\",\"eventId\":4610,\"correlationId\":\"h\"}\n";
    let resp = common::client()
        .post(url("to-legacy") + "?unmatched=true")
        .body(half)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let summary: Value =
        serde_json::from_str(resp.headers()["x-events-summary"].to_str().unwrap()).unwrap();
    assert_eq!(summary["unmatched_groups"], 1);
    assert!(resp.headers().get("x-events-report").is_some());
    assert_eq!(lines(&resp.text().await.unwrap())[0]["correlationId"], "h");

    let resp = common::client()
        .post(url("to-v4"))
        .body("nope\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let e: Value = resp.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("line 1"), "{e}");
}

/// Each translated operation logs one audit event naming the legacy event and the v4 events
/// it causes, with request id, customer id and outcome.
#[test]
fn every_translated_request_is_audited() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    // Wait for the listening line.
    loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "gateway exited early"
        );
        if line.contains("listening") {
            break;
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let resp = common::client()
            .put(format!("http://127.0.0.1:{port}/User/1001"))
            .headers(common::user_api_headers())
            .header("x-request-id", "audit-req-1")
            .body(r#"{"Email":"alice.new@example.test","Password":"Abcdefg1"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut audits = Vec::new();
    for l in reader.lines() {
        let v: Value = serde_json::from_str(&l.unwrap()).unwrap();
        if v["target"] == "audit" {
            audits.push(v);
        }
    }
    assert!(child.wait().unwrap().success());
    // Each v4 call audits its GetById step first (SPEC 2): e-mail, then password.
    let events: Vec<&Value> = audits.iter().map(|a| &a["legacy_event"]).collect();
    assert_eq!(
        events,
        ["GETUSERBYID", "CHGEMAIL", "GETUSERBYID", "CHGPWD"],
        "{audits:?}"
    );
    let email = &audits[1];
    assert_eq!(email["legacy_event"], "CHGEMAIL");
    assert_eq!(email["legacy_event_id"], 21);
    assert_eq!(audits[0]["legacy_event_id"], 1042);
    let pwd = &audits[3];
    assert_eq!(pwd["legacy_event"], "CHGPWD");
    assert_eq!(
        pwd["v4_events"],
        "AUTHSYSTEM_USER_CHANGEPASSWORD (4609) + SUBSCRIBE_USER_CHANGEPASSWORD (4010)"
    );
    assert_eq!(pwd["request_id"], "audit-req-1");
    assert_eq!(pwd["customer_registration_id"], "1001");
    assert_eq!(pwd["outcome"], "applied");
    assert!(!pwd.to_string().contains("Abcdefg1"));
}
