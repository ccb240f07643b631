//! Capture, then replay: the path a migration team takes from live legacy traffic to a
//! red/green CI result for a v4 release. A fake legacy User API on loopback answers three
//! users; the gateway in legacy mode captures the calls a client makes; the real binary's
//! `replay` sends the captured file to the embedded sandbox and judges each call. Nothing is
//! written by hand between the two: the replay reads exactly the bytes the capture wrote.
//!
//! - Alice's legacy answer is what the sandbox and the translation give: `matched`, exit 0.
//! - Carol's differs only in `SessionId`, declared noise: `noise`, exit 0, the path named.
//! - Bob's `FirstName` differs: `differing`, exit 1, a JUnit failure naming the JSON path and
//!   the mapping line.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::replay::{read_mapping_line, replay, testcase};
use common::{dead_url, user_api_headers};
use serde_json::{json, Value};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The legacy backend's read of each user: the sandbox's seeded users (Alice with every field
/// filled), except Bob's first name and Carol's session, which the sandbox never gives.
fn legacy_result(id: &str) -> (Value, Value) {
    match id {
        "1001" => (
            json!({"CustomerRegistrationId": "1001", "Email": "alice@example.test",
                "FirstName": "Alice", "LastName": "Anderson",
                "LastLogoutDate": "2026-11-01T08:30:00Z", "Verified": true,
                "Metadata": {"NewsLetter": true, "Preferences": {"FavouriteSection": "sports"}}}),
            Value::Null,
        ),
        "1002" => (
            json!({"CustomerRegistrationId": "1002", "Email": "bob@example.test",
                "FirstName": "Robert", "LastName": "Brown", "LastLogoutDate": null,
                "Verified": true, "Metadata": {}}),
            Value::Null,
        ),
        _ => (
            json!({"CustomerRegistrationId": "auth0|abc123", "Email": "carol@example.test",
                "FirstName": "Carol", "LastName": "Clark", "LastLogoutDate": null,
                "Verified": true, "Metadata": {}}),
            json!("legacy-session-9"),
        ),
    }
}

/// A legacy User API answering `GET /User/{id}` as the real one does: the user, and the
/// caller's request id echoed.
async fn legacy_backend() -> MockServer {
    let legacy = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex("^/User/[^/]+$"))
        .respond_with(|req: &Request| {
            let id = req
                .url
                .path()
                .rsplit('/')
                .next()
                .unwrap()
                .replace("%7C", "|");
            let request_id = req
                .headers
                .get("x-request-id")
                .map_or("legacy-own-id", |v| v.to_str().unwrap());
            let (result, session) = legacy_result(&id);
            ResponseTemplate::new(200).set_body_json(json!({"Code": 0, "Errors": [],
                "Result": result, "SessionId": session, "RequestId": request_id}))
        })
        .mount(&legacy)
        .await;
    legacy
}

/// The capture file's lines once it holds `n` (the writer runs off the request path, so it
/// is polled; the bound is a hang guard).
async fn captured_lines(file: &Path, n: usize) -> Vec<String> {
    for _ in 0..500 {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n && text.ends_with('\n') {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the capture file never held {n} lines: {:?}",
        std::fs::read_to_string(file)
    );
}

/// The captured line of `path`, alone in a file of its own, byte for byte as captured.
fn split_out(dir: &Path, lines: &[String], path: &str, name: &str) -> PathBuf {
    let line = lines
        .iter()
        .find(|l| serde_json::from_str::<Value>(l).unwrap()["path"] == path)
        .unwrap_or_else(|| panic!("no captured line for {path}: {lines:#?}"));
    let file = dir.join(name);
    std::fs::write(&file, format!("{line}\n")).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_legacy_reads_replay_against_the_sandbox_as_matched_noise_and_differing() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("capture.jsonl");
    let legacy = legacy_backend().await;
    let config = format!(
        "mode = \"legacy\"\nuser_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n{1}\n\
         [capture]\nfile = {capture:?}\nsample_percent = 100\n",
        legacy.uri(),
        common::REGISTRY_TENANT
    );
    // No v4 is reachable: every answer the client gets is the legacy backend's.
    let gw = common::gateway_with(&config, Some(&dead_url())).await;

    let reads = [
        ("1001", "ci-alice-1"),
        ("1002", "ci-bob-1"),
        ("auth0%7Cabc123", "ci-carol-1"),
    ];
    for (id, request_id) in reads {
        let resp = common::client()
            .get(format!("{}/User/{id}", gw.url()))
            .headers(user_api_headers())
            .header("X-Request-Id", request_id)
            .send()
            .await
            .expect("answered");
        assert_eq!(resp.status(), 200, "{id}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["RequestId"], request_id, "the legacy backend's answer");
    }
    assert_eq!(common::received(&legacy).await.len(), 3);

    let lines = captured_lines(&capture, 3).await;
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let root = dir.path();
    let matched = split_out(root, &lines, "/User/1001", "alice.jsonl");
    let differing = split_out(root, &lines, "/User/1002", "bob.jsonl");
    let noise = split_out(root, &lines, "/User/auth0%7Cabc123", "carol.jsonl");
    let arg = |p: &Path| p.display().to_string();

    // Alice: the sandbox through the translation answers what the legacy backend did.
    let r = replay(root, vec![arg(&matched)], vec![]).await;
    assert_eq!(r.ran.code(), 0, "{:?}", r.ran);
    assert_eq!(r.report["calls"][0]["outcome"], "matched", "{}", r.report);
    assert_eq!(r.report["summary"]["matched"], 1);
    assert!(
        r.junit.contains("tests=\"1\" failures=\"0\""),
        "{}",
        r.junit
    );
    let case = testcase(
        &r.junit,
        &format!("name=\"GET /User/1001 ({}:1)\"", matched.display()),
    );
    assert!(
        !case.contains("<failure") && !case.contains("<system-out>"),
        "{case}"
    );

    // Carol: only the legacy backend's session differs, which the mappings declare noise.
    let r = replay(root, vec![arg(&noise)], vec![]).await;
    assert_eq!(r.ran.code(), 0, "{:?}", r.ran);
    assert_eq!(r.report["calls"][0]["outcome"], "noise", "{}", r.report);
    assert_eq!(r.report["calls"][0]["noise"], json!(["$.SessionId"]));
    let case = testcase(
        &r.junit,
        &format!("name=\"GET /User/auth0%7Cabc123 ({}:1)\"", noise.display()),
    );
    assert!(
        case.contains("<system-out>differs only in noise: $.SessionId</system-out>"),
        "{case}"
    );
    assert!(!r.junit.contains("<failure"), "{}", r.junit);

    // Bob: v4 says "Bob" where the legacy backend said "Robert": named by path and mapping
    // line, and the build is red.
    let r = replay(root, vec![arg(&differing)], vec![]).await;
    assert_eq!(r.ran.code(), 1, "{:?}", r.ran);
    let mapping = read_mapping_line();
    assert_eq!(r.report["calls"][0]["outcome"], "differing", "{}", r.report);
    assert_eq!(
        r.report["calls"][0]["differences"],
        json!([{"path": "$.Result.FirstName", "captured": "Robert", "replayed": "Bob",
                "v4_pointer": "/data/firstName", "mapping": mapping}])
    );
    assert!(
        r.junit.contains("tests=\"1\" failures=\"1\""),
        "{}",
        r.junit
    );
    let case = testcase(
        &r.junit,
        &format!("name=\"GET /User/1002 ({}:1)\"", differing.display()),
    );
    assert!(
        case.contains(&format!(
            "<failure type=\"difference\" message=\"differs at $.Result.FirstName ({mapping})\">"
        )),
        "{case}"
    );
    assert!(
        case.contains("captured &quot;Robert&quot; / replayed &quot;Bob&quot;"),
        "{case}"
    );

    // The whole capture at once, as CI runs it: one red call makes the run red.
    let r = replay(root, vec![arg(&capture)], vec![]).await;
    assert_eq!(r.ran.code(), 1, "{:?}", r.ran);
    assert_eq!(
        (
            &r.report["summary"]["matched"],
            &r.report["summary"]["noise"],
            &r.report["summary"]["differing"]
        ),
        (&json!(1), &json!(1), &json!(1)),
        "{}",
        r.report
    );
    assert!(
        r.junit.contains("tests=\"3\" failures=\"1\""),
        "{}",
        r.junit
    );
}
