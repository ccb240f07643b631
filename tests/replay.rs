//! `legacy-gateway replay`: captured calls (capture lines, HAR entries) sent again through the
//! gateway's translation to the embedded sandbox or a fake v4 on loopback, judged against
//! the captured legacy answers. Every assertion is on the binary's exit code, its output
//! files, or what the fake v4 received.

mod common;

use std::path::{Path, PathBuf};

use common::binary::Ran;
use serde_json::{json, Value};
use wiremock::MockServer;

const TOKEN: &str = "replay-token-5f1e";

/// The five User API headers as a capture records them: the token replaced by the marker.
fn captured_headers(request_id: &str) -> Value {
    json!({
        "content-type": "application/json",
        "authorization": "<redacted>",
        "x-sourcesystem": "legacy-user-api",
        "x-clientcode": "CA",
        "x-papercode": "PA",
        "x-clientgroupcode": "GA",
        "x-request-id": request_id,
    })
}

/// The sandbox's user 1001 as the legacy User API answers a read of it.
fn alice(request_id: &str, session: Value) -> Value {
    json!({"Code": 0, "Errors": [], "Result": {
        "CustomerRegistrationId": "1001", "Email": "alice@example.test", "FirstName": "Alice",
        "LastName": "Anderson", "LastLogoutDate": "2026-11-01T08:30:00Z", "Verified": true,
        "Metadata": {"NewsLetter": true, "Preferences": {"FavouriteSection": "sports"}}},
        "SessionId": session, "RequestId": request_id})
}

/// One capture line, in the shape `[capture]` writes.
fn line(method: &str, path: &str, request_id: &str, body: Option<Value>, legacy: Value) -> String {
    let part = if method == "PUT" { "update" } else { "read" };
    let mut l = json!({"v": 1, "time": "2026-12-07T00:00:00.123Z", "route": "user-api",
        "part": part, "tenant": "CA", "method": method, "path": path, "query": null,
        "headers": captured_headers(request_id), "legacy": {"status": 200, "body": legacy}});
    if let Some(b) = body {
        l["body"] = b;
    }
    l.to_string()
}

fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

/// `replay ARGS… --report R --junit J` in `dir` (`common::replay`): the run, the report and
/// the JUnit text.
async fn replay(
    dir: &Path,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
) -> (Ran, Value, String) {
    let r = common::replay::replay(dir, args, env).await;
    (r.ran, r.report, r.junit)
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_against_the_sandbox_match_differ_only_in_noise_or_differ_by_named_field() {
    let dir = tempfile::tempdir().unwrap();

    // The sandbox answers exactly what the legacy backend did (the request id is the one
    // the client sent, which the gateway echoes).
    let matched = write(
        dir.path(),
        "matched.jsonl",
        &[line(
            "GET",
            "/User/1001",
            "rq-1",
            None,
            alice("rq-1", Value::Null),
        )],
    );
    let (ran, report, junit) = replay(dir.path(), vec![path_arg(&matched)], vec![]).await;
    assert_eq!(ran.code(), 0, "{ran:?}");
    assert_eq!(report["calls"][0]["outcome"], "matched", "{report}");
    assert_eq!(report["summary"]["matched"], 1);
    let name = format!("GET /User/1001 ({}:1)", matched.display());
    assert!(junit.contains(&format!("name=\"{name}\" file=")), "{junit}");
    assert!(junit.contains("tests=\"1\" failures=\"0\""), "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");

    // The legacy backend's own request and session ids: declared noise, shown, passing.
    let noise = write(
        dir.path(),
        "noise.jsonl",
        &[line(
            "GET",
            "/User/1001",
            "rq-2",
            None,
            alice("legacy-77", json!("sess-1")),
        )],
    );
    let (ran, report, junit) = replay(dir.path(), vec![path_arg(&noise)], vec![]).await;
    assert_eq!(ran.code(), 0, "{ran:?}");
    assert_eq!(report["calls"][0]["outcome"], "noise", "{report}");
    assert_eq!(
        report["calls"][0]["noise"],
        json!(["$.RequestId", "$.SessionId"])
    );
    assert!(
        junit.contains("<system-out>differs only in noise: $.RequestId, $.SessionId</system-out>"),
        "{junit}"
    );
    assert!(!junit.contains("<failure"), "{junit}");

    // A field v4 answers otherwise: named by its path and the mapping line, exit 1.
    let mut changed = alice("rq-3", Value::Null);
    changed["Result"]["FirstName"] = json!("Alicia");
    let differing = write(
        dir.path(),
        "differing.jsonl",
        &[
            line(
                "GET",
                "/User/1001",
                "rq-4",
                None,
                alice("rq-4", Value::Null),
            ),
            line("GET", "/User/1001", "rq-3", None, changed),
        ],
    );
    let html = dir.path().join("replay.html");
    let (ran, report, junit) = replay(
        dir.path(),
        vec![
            path_arg(&differing),
            "--html".into(),
            path_arg(&html),
            "--progress".into(),
            "always".into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(ran.code(), 1, "{ran:?}");
    // Off a terminal, `always` leaves plain progress lines, the last with every call.
    assert!(
        ran.stderr
            .lines()
            .any(|l| l == "replay: 2/2 calls, 1 differing"),
        "{}",
        ran.stderr
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("FAIL") && page.contains("$.Result.FirstName"),
        "{page}"
    );
    assert!(
        page.contains("&quot;Alicia&quot;") && !page.contains("<script"),
        "{page}"
    );
    let mapping = common::replay::read_mapping_line();
    let call = &report["calls"][1];
    assert_eq!(call["outcome"], "differing", "{report}");
    assert_eq!(call["line"], 2);
    assert_eq!(
        call["differences"],
        json!([{"path": "$.Result.FirstName", "captured": "Alicia", "replayed": "Alice",
                "v4_pointer": "/data/firstName", "mapping": mapping}])
    );
    assert_eq!(report["calls"][0]["outcome"], "matched");
    assert!(junit.contains("tests=\"2\" failures=\"1\""), "{junit}");
    let failing = format!("name=\"GET /User/1001 ({}:2)\"", differing.display());
    let case = junit
        .split("<testcase")
        .find(|c| c.contains(&failing))
        .expect("the call's test case");
    assert!(
        case.contains(&format!(
            "<failure type=\"difference\" message=\"differs at $.Result.FirstName ({mapping})\">"
        )),
        "{case}"
    );
    assert!(
        case.contains("captured &quot;Alicia&quot; / replayed &quot;Alice&quot;"),
        "{case}"
    );
    assert!(
        ran.stdout.contains(&format!(
            "DIFF GET /User/1001 ({}:2): $.Result.FirstName ({mapping})",
            differing.display()
        )),
        "{}",
        ran.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_har_file_with_reads_is_replayed_and_other_entries_counted() {
    let dir = tempfile::tempdir().unwrap();
    let headers = |id: &str| {
        json!([{"name": ":authority", "value": "users.example.test"},
               {"name": "Authorization", "value": "Bearer from-the-browser"},
               {"name": "X-SourceSystem", "value": "legacy-user-api"},
               {"name": "X-ClientCode", "value": "CA"}, {"name": "X-PaperCode", "value": "PA"},
               {"name": "X-ClientGroupCode", "value": "GA"}, {"name": "X-Request-Id", "value": id}])
    };
    let mut bob = alice("h-3", Value::Null);
    bob["Result"] = json!({"CustomerRegistrationId": "1002", "Email": "bob@example.test",
        "FirstName": "Bob", "LastName": "Browne", "LastLogoutDate": null, "Verified": true, "Metadata": {}});
    let har = json!({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": [
        {"request": {"method": "GET", "url": "https://users.example.test/User/1001", "headers": headers("h-1")},
         "response": {"status": 200, "content": {"mimeType": "application/json", "text": alice("h-1", Value::Null).to_string()}}},
        {"request": {"method": "GET", "url": "https://users.example.test/static/app.js", "headers": []},
         "response": {"status": 200, "content": {"mimeType": "text/javascript", "text": "x()"}}},
        {"request": {"method": "GET", "url": "https://users.example.test/User/1002", "headers": headers("h-3")},
         "response": {"status": 200, "content": {"mimeType": "application/json", "text": bob.to_string()}}},
        {"request": {"method": "GET", "url": "https://users.example.test/User/1003", "headers": headers("h-4")},
         "response": {"status": 0, "content": {}}}
    ]}});
    let file = dir.path().join("browser.har");
    std::fs::write(&file, har.to_string()).unwrap();
    let (ran, report, junit) = replay(
        dir.path(),
        vec![path_arg(&file), "--concurrency".into(), "1".into()],
        vec![],
    )
    .await;
    assert_eq!(ran.code(), 1, "{ran:?}");
    assert_eq!(report["summary"]["calls"], 2, "{report}");
    assert_eq!(
        report["summary"]["skipped"],
        json!({"not_legacy": 1, "unanswered": 1, "writes": 0})
    );
    assert_eq!(report["calls"][0]["outcome"], "matched", "{report}");
    assert_eq!(
        report["calls"][1]["line"], 3,
        "entries are numbered in file order"
    );
    let paths: Vec<&str> = report["calls"][1]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    // The sandbox's Bob is "Brown" with a logout date; the HAR's answer says otherwise.
    assert!(paths.contains(&"$.Result.LastName"), "{paths:?}");
    assert!(junit.contains("tests=\"2\" failures=\"1\""), "{junit}");
    assert!(
        ran.stdout
            .contains("skipped: 1 not legacy API calls, 1 without an answer"),
        "{}",
        ran.stdout
    );

    // Nothing to replay is no green build: exit 2, saying why.
    let only_assets =
        json!({"log": {"version": "1.2", "entries": [har["log"]["entries"][1].clone()]}});
    let file = dir.path().join("assets.har");
    std::fs::write(&file, only_assets.to_string()).unwrap();
    let (ran, _, _) = replay(dir.path(), vec![path_arg(&file)], vec![]).await;
    assert_eq!(ran.code(), 2, "{ran:?}");
    assert!(
        ran.stderr.contains("nothing to replay") && ran.stderr.contains("1 not legacy API calls"),
        "{}",
        ran.stderr
    );
}

/// A fake v4 that says yes to reads of 1001 and to password changes, counting each.
async fn fake_v4() -> MockServer {
    let v4 = MockServer::start().await;
    let user = json!({"message": {"code": "UsersOrchestrator_S200_01", "text": "ok", "type": "Success"},
        "meta": null, "data": {"customerRegistrationId": "1001", "email": "alice@example.test",
        "firstName": "Alice", "lastName": "Anderson", "lastLogoutDate": "2026-11-01T08:30:00Z",
        "verified": true, "metadata": {"newsLetter": true, "preferences": {"favouriteSection": "sports"}}}});
    common::mount(
        &v4,
        "GET",
        "/v4/Users/1001/",
        wiremock::ResponseTemplate::new(200).set_body_json(user),
    )
    .await;
    for id in ["1001", "1002", "1003"] {
        common::fakes::password_changes(&v4, id).await;
    }
    v4
}

fn password_change(id: &str, request_id: &str) -> String {
    line(
        "PUT",
        &format!("/User/{id}"),
        request_id,
        Some(json!({"Password": "<redacted>"})),
        common::fakes::legacy_updated(id, "legacy-id"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_are_skipped_without_writes_and_the_token_comes_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let v4 = fake_v4().await;
    let file = write(
        dir.path(),
        "mixed.jsonl",
        &[
            password_change("1001", "w-1"),
            line("GET", "/User/1001", "r-1", None, alice("r-1", Value::Null)),
        ],
    );
    let args = vec![path_arg(&file), "--orchestrator".into(), v4.uri()];
    // A real orchestrator and a redacted token: refused before anything is sent.
    let (ran, _, _) = replay(dir.path(), args.clone(), vec![]).await;
    assert_eq!(ran.code(), 2, "{ran:?}");
    assert!(
        ran.stderr.contains("LEGACY_GATEWAY_REPLAY_TOKEN"),
        "{}",
        ran.stderr
    );
    assert!(common::received(&v4).await.is_empty());

    let (ran, report, junit) = replay(
        dir.path(),
        args,
        vec![("LEGACY_GATEWAY_REPLAY_TOKEN", TOKEN.into())],
    )
    .await;
    assert_eq!(ran.code(), 0, "{ran:?}");
    assert_eq!(report["calls"][0]["outcome"], "skipped", "{report}");
    assert_eq!(report["summary"]["skipped"]["writes"], 1);
    assert!(
        junit.contains("<skipped message=\"a write: replayed only with --writes\"/>"),
        "{junit}"
    );
    let got = common::received(&v4).await;
    assert_eq!(
        got.iter().map(|r| r.method.to_string()).collect::<Vec<_>>(),
        ["GET"]
    );
    assert_eq!(
        got[0].headers["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_are_refused_against_the_configurations_live_orchestrator() {
    let dir = tempfile::tempdir().unwrap();
    let v4 = fake_v4().await;
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, format!("orchestrator_url = \"{}/\"\n", v4.uri())).unwrap();
    let file = write(dir.path(), "w.jsonl", &[password_change("1001", "w-1")]);
    let (ran, _, _) = replay(
        dir.path(),
        vec![
            path_arg(&file),
            "--config".into(),
            path_arg(&config),
            "--orchestrator".into(),
            v4.uri(),
            "--writes".into(),
        ],
        vec![("LEGACY_GATEWAY_REPLAY_TOKEN", TOKEN.into())],
    )
    .await;
    assert_eq!(ran.code(), 2, "{ran:?}");
    assert!(ran.stderr.contains("--writes refused"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains(&format!(
            "the live v4 (the orchestrator_url of {})",
            config.display()
        )),
        "{}",
        ran.stderr
    );
    assert!(common::received(&v4).await.is_empty());

    // A line that is no capture line stops the run before anything is sent, naming it.
    let bad = write(
        dir.path(),
        "bad.jsonl",
        &[
            line("GET", "/User/1001", "r", None, json!({})),
            "{\"v\":1".into(),
        ],
    );
    let (ran, _, _) = replay(
        dir.path(),
        vec![path_arg(&bad), "--orchestrator".into(), v4.uri()],
        vec![],
    )
    .await;
    assert_eq!(ran.code(), 2, "{ran:?}");
    assert!(
        ran.stderr
            .contains(&format!("{}:2: not a capture line", bad.display())),
        "{}",
        ran.stderr
    );
    // So does a rate that is no rate.
    let good = write(
        dir.path(),
        "good.jsonl",
        &[line("GET", "/User/1001", "r", None, json!({}))],
    );
    let (ran, _, _) = replay(
        dir.path(),
        vec![
            path_arg(&good),
            "--orchestrator".into(),
            v4.uri(),
            "--rate".into(),
            "0".into(),
        ],
        vec![("LEGACY_GATEWAY_REPLAY_TOKEN", TOKEN.into())],
    )
    .await;
    assert_eq!(ran.code(), 2, "{ran:?}");
    assert!(
        ran.stderr.contains("--rate must be a positive number"),
        "{}",
        ran.stderr
    );
    assert!(common::received(&v4).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn with_writes_against_a_fake_v4_each_write_is_sent_once_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let v4 = fake_v4().await;
    let ids = ["1001", "1002", "1003"];
    let lines: Vec<String> = (0..12)
        .map(|i| password_change(ids[i % 3], &format!("w-{i}")))
        .collect();
    let file = write(dir.path(), "writes.jsonl", &lines);
    let (ran, report, junit) = replay(
        dir.path(),
        vec![
            path_arg(&file),
            "--orchestrator".into(),
            v4.uri(),
            "--writes".into(),
            "--concurrency".into(),
            "8".into(),
        ],
        vec![("LEGACY_GATEWAY_REPLAY_TOKEN", TOKEN.into())],
    )
    .await;
    // The legacy backend's request id is noise: every call passes.
    assert_eq!(ran.code(), 0, "{ran:?}");
    assert_eq!(report["summary"]["noise"], 12, "{report}");
    let got = common::received(&v4).await;
    assert_eq!(got.len(), 12, "one v4 call per captured write, none twice");
    for id in ids {
        let n = got
            .iter()
            .filter(|r| r.url.path() == format!("/v4/Users/{id}/Password"))
            .count();
        assert_eq!(n, 4, "{id}");
    }
    // Markers filled with passwords v4 accepts, never sent as the marker.
    for r in &got {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let p = body["password"].as_str().unwrap();
        assert!(
            p.len() >= 8
                && p.chars().any(|c| c.is_ascii_uppercase())
                && p.chars().any(|c| c.is_ascii_digit()),
            "{p}"
        );
        assert!(!p.contains("redacted"));
    }
    let lines: Vec<u64> = report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["line"].as_u64().unwrap())
        .collect();
    assert_eq!(
        lines,
        (1..=12).collect::<Vec<u64>>(),
        "file order, whatever finished first"
    );
    let names: Vec<&str> = junit
        .match_indices("name=\"PUT /User/")
        .map(|(i, _)| &junit[i..i + 40])
        .collect();
    assert_eq!(names.len(), 12);
    // No generated password reaches the report.
    let text = report.to_string();
    for r in &got {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(!text.contains(body["password"].as_str().unwrap()));
    }
}
