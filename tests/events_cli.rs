//! Event translation as operators use it: the `events` command (stdin/--input, stdout,
//! --unmatched, --strict, --skip-invalid, --max-open-groups, --max-group-age, --progress), the
//! same over HTTP (streamed, with the same limits, past the general body limit), and the audit
//! record every translated request writes.

mod common;

use common::binary::Binary;
use common::put_request;
use serde_json::{json, Value};

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let ran = Binary::new(args).stdin(stdin).run();
    (ran.code(), ran.stdout, ran.stderr)
}

/// The `X-Events-Summary` header of an `/_gateway/events/…` answer, as JSON.
fn summary_of(resp: &reqwest::Response) -> Value {
    let header = resp.headers()["x-events-summary"].to_str().unwrap();
    serde_json::from_str(header).unwrap()
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
    let summary = summary_of(&resp);
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

/// A first half of CHGPWD (its second half never comes) with correlation id `cid`.
fn half(cid: &str) -> String {
    format!(
        "{{\"eventTypeCode\":\"AUTHSYSTEM_USER_CHANGEPASSWORD\",\"eventId\":4609,\"side\":\"authsystem\",\"correlationId\":\"{cid}\"}}\n"
    )
}

fn other_half(cid: &str) -> String {
    format!(
        "{{\"eventTypeCode\":\"SUBSCRIBE_USER_CHANGEPASSWORD\",\"eventId\":4010,\"side\":\"subscribe\",\"correlationId\":\"{cid}\"}}\n"
    )
}

fn pwdreq(cid: &str) -> String {
    format!("{{\"eventTypeCode\":\"SUBSCRIBE_USER_STARTFORGOTPASSWORD\",\"correlationId\":\"{cid}\"}}\n")
}

#[test]
fn past_max_open_groups_the_oldest_group_goes_to_unmatched_and_stderr_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let unmatched = dir.path().join("unmatched.jsonl");
    // Ten halves that never complete, then a pair that completes inside the window, then the
    // late second half of h0 (flushed long before): it opens a group of its own.
    let mut input: String = (0..10).map(|i| half(&format!("h{i}"))).collect();
    input += &half("ok");
    input += &other_half("ok");
    input += &other_half("h0");
    let (code, out, err) = run(
        &[
            "events",
            "to-legacy",
            "--max-open-groups",
            "3",
            "--unmatched",
            unmatched.to_str().unwrap(),
        ],
        &input,
    );
    assert_eq!(code, 0, "{err}");
    let out = lines(&out);
    assert_eq!(out.len(), 1, "only the complete pair is translated");
    assert_eq!(out[0]["CorrelationId"], "ok");
    assert!(
        err.contains(
            "line 1: unmatched CHGPWD group, correlationId h0: missing \
             SUBSCRIBE_USER_CHANGEPASSWORD (flushed early: more than 3 groups open)"
        ),
        "{err}"
    );
    let kept = lines(&std::fs::read_to_string(&unmatched).unwrap());
    let cids: Vec<&str> = kept
        .iter()
        .map(|r| r["correlationId"].as_str().unwrap())
        .collect();
    // Every half is kept, oldest first, none twice; the late half comes last.
    let mut expected: Vec<String> = (0..10).map(|i| format!("h{i}")).collect();
    expected.push("h0".into());
    assert_eq!(cids, expected);
    assert_eq!(kept[10]["eventId"], 4010);
    assert!(
        err.contains("11 unmatched groups (8 flushed early by the limits), at most 3 groups open"),
        "{err}"
    );
}

#[test]
fn past_max_group_age_the_group_goes_to_unmatched() {
    let dir = tempfile::tempdir().unwrap();
    let unmatched = dir.path().join("unmatched.jsonl");
    // "young" completes two records after it opened; "old" waits four: over the age of 2.
    let input = [
        half("young"),
        pwdreq("p1"),
        other_half("young"),
        half("old"),
        pwdreq("p2"),
        pwdreq("p3"),
        pwdreq("p4"),
        other_half("old"),
    ]
    .concat();
    let (code, out, err) = run(
        &[
            "events",
            "to-legacy",
            "--max-group-age",
            "2",
            "--unmatched",
            unmatched.to_str().unwrap(),
        ],
        &input,
    );
    assert_eq!(code, 0, "{err}");
    let out = lines(&out);
    let cids: Vec<&str> = out
        .iter()
        .map(|r| r["CorrelationId"].as_str().unwrap())
        .collect();
    assert_eq!(cids, ["p1", "young", "p2", "p3", "p4"]);
    assert!(
        err.contains(
            "line 4: unmatched CHGPWD group, correlationId old: missing \
             SUBSCRIBE_USER_CHANGEPASSWORD (flushed early: open for more than 2 records)"
        ),
        "{err}"
    );
    let kept = lines(&std::fs::read_to_string(&unmatched).unwrap());
    assert_eq!(kept.len(), 2, "both halves of `old` are kept");
    assert!(kept.iter().all(|r| r["correlationId"] == "old"));
}

#[test]
fn progress_never_prints_nothing_but_the_summary() {
    let input: String = (0..100).map(|i| pwdreq(&format!("p{i}"))).collect();
    for flags in [&["--progress", "never"][..], &[]] {
        // stderr is a pipe here: `auto` (the default) is silent too.
        let args = [&["events", "to-legacy"][..], flags].concat();
        let (code, out, err) = run(&args, &input);
        assert_eq!(code, 0, "{err}");
        assert_eq!(lines(&out).len(), 100);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("events: 100 lines, 100 written"), "{err}");
    }
    // `always` draws even off a terminal, one plain line per draw, before the summary.
    let (code, _, err) = run(&["events", "to-legacy", "--progress", "always"], &input);
    assert_eq!(code, 0, "{err}");
    let progress: Vec<&str> = err.lines().filter(|l| l.contains("records/s")).collect();
    assert!(!progress.is_empty(), "{err}");
    assert!(progress[0].contains("open groups"), "{err}");
    assert!(
        err.lines().last().unwrap().starts_with("events: 100 lines"),
        "{err}"
    );
    // Plain off a terminal: no blank lines, no escape codes (colours, cursor moves), and the
    // last progress line has the final figures, the rate in whole records a second.
    assert!(err.lines().all(|l| !l.trim().is_empty()), "{err:?}");
    assert!(!err.contains('\x1b'), "{err:?}");
    let last = progress.last().unwrap();
    let rate = regex::Regex::new(
        r"^events: 100 records, \d{1,3}(,\d{3})* records/s, 0 open groups, 0 unmatched \[\d+s\]$",
    )
    .unwrap();
    assert!(rate.is_match(last), "{last:?}");
}

#[tokio::test]
async fn http_streams_with_the_same_limits_past_the_general_body_limit() {
    let gw = common::gateway_with("", None).await;
    let url = |p: &str| common::admin(&gw, &format!("events/{p}"));
    // 3,000 halves: ~400 KB, well over the general 64 KiB body limit.
    let body: String = (0..3000).map(|i| half(&format!("h{i}"))).collect();
    assert!(body.len() > 64 * 1024);
    let resp = common::client()
        .post(url("to-legacy") + "?unmatched=true&max_open_groups=3")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let summary = summary_of(&resp);
    assert_eq!(summary["unmatched_groups"], 3000);
    assert_eq!(summary["flushed_groups"], 2997);
    assert_eq!(summary["peak_open_groups"], 3);
    let first = resp.headers()["x-events-report"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        first.contains("correlationId h0") && first.contains("more than 3 groups open"),
        "{first}"
    );
    let kept = lines(&resp.text().await.unwrap());
    assert_eq!(kept.len(), 3000);
    assert_eq!(kept[0]["correlationId"], "h0");

    // The age limit, and limits a client may not raise.
    let resp = common::client()
        .post(url("to-legacy") + "?max_group_age=1")
        .body([half("a"), pwdreq("p"), pwdreq("q"), other_half("a")].concat())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let summary = summary_of(&resp);
    assert_eq!(
        (
            summary["written"].as_u64(),
            summary["flushed_groups"].as_u64()
        ),
        (Some(2), Some(1))
    );
    for bad in [
        "max_open_groups=0",
        "max_open_groups=100001",
        "max_group_age=x",
    ] {
        let resp = common::client()
            .post(url("to-legacy") + "?" + bad)
            .body(pwdreq("p"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn http_answers_a_long_run_as_a_stream_and_aborts_it_on_a_late_error() {
    let gw = common::gateway_with("", None).await;
    let url = common::admin(&gw, "events/to-v4");
    let record = |i: u32| {
        format!(
            "{{\"EventTypeCode\":\"CHGPWD\",\"EventId\":22,\"CorrelationId\":\"c{i}\",\"CustomerRegistrationId\":\"{i}\",\"Timestamp\":\"2024-05-01T10:00:00Z\"}}\n"
        )
    };
    // ~2.6 MB out: more than the answer holds back, so it streams.
    let body: String = (0..12_000).map(record).collect();
    let resp = common::client()
        .post(&url)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().get("x-events-summary").is_none(),
        "streamed: the summary is a trailer"
    );
    let out = lines(&resp.text().await.unwrap());
    assert_eq!(out.len(), 24_000);
    assert_eq!(out[23_999]["correlationId"], "c11999");

    // The same with a malformed last line: the answer has begun, so it is cut, not ended.
    let resp = common::client()
        .post(&url)
        .body(body + "not json\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text().await.is_err(),
        "a failed run must not look complete"
    );
}

#[tokio::test]
async fn http_events_body_limit_is_its_own() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = common::gateway_with("", None).await;
    // The event paths are on the admin listener.
    let addr = gw.admin_url().trim_start_matches("http://").to_string();
    // Over the events limit (1 GiB): refused from the declared length, nothing read.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(
        b"POST /_gateway/events/to-v4 HTTP/1.1\r\nhost: x\r\ncontent-length: 2000000000\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 512];
    let n = s.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    // The general limit still holds elsewhere.
    let resp = put_request(&gw.url(), "1001")
        .body(format!("{{\"FirstName\":\"{}\"}}", "x".repeat(100 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
}

/// Each translated operation logs one audit event naming the legacy event and the v4 events
/// it causes, with request id, customer id and outcome.
#[tokio::test]
async fn every_translated_request_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Binary::serve()
        .args(["--log-format", "json"])
        .start(dir.path())
        .await;
    let resp = put_request(&gw.url(), "1001")
        .header("x-request-id", "audit-req-1")
        .body(r#"{"Email":"alice.new@example.test","Password":"Abcdefg1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, stderr) = gw.stop().await;
    let audits: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["target"] == "audit")
        .collect();
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
