//! Capture (`[capture]`): the calls the legacy backend answers, written one JSON line each for
//! a later replay. A fake legacy backend on loopback answers; the file the gateway wrote is
//! read back and parsed.
//!
//! - A read in legacy mode: every field of the line, the headers allow-listed, the
//!   `Authorization` a marker, a non-JSON answer as `body_text`; writes and calls no mapping
//!   translates are not captured by default.
//! - Writes with `writes = true`, the route parts chosen by `routes`; shadow mode and the
//!   legacy side of a canary are captured, the translated side is not.
//! - Sampling per user: a user's calls are all in or all out.
//! - Rotation by `max_bytes`.
//! - Every form of every secret the mappings name (and the token) absent from the file byte
//!   for byte, with a legacy backend that echoes them all.
//! - A writer that cannot write (a pipe nobody reads): clients still answered, lines dropped
//!   and counted, written again once the pipe is read.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{dead_url, jwt, metrics_text, user_api_headers, PASSWORD, REGISTRY, TOKEN};
use serde_json::{json, Value};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The tenant `CA` is configured (so it is its own label), and the action API's tenant.
const TENANTS: &str = common::REGISTRY_TENANT;

/// A legacy backend answering every `GET /User/{id}` with the user, and `PUT`s with success.
async fn legacy_backend() -> MockServer {
    let legacy = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex("^/User/[^/]+$"))
        .respond_with(|req: &wiremock::Request| {
            let id = req.url.path().rsplit('/').next().unwrap().to_string();
            ResponseTemplate::new(200).set_body_json(
                json!({"Code": 0, "Errors": [], "Result": {"CustomerRegistrationId": id, "FirstName": "Ada"}}),
            )
        })
        .mount(&legacy)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex("^/User/[^/]+$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"Code": 0, "Errors": [], "Result": {"Updated": true}})),
        )
        .mount(&legacy)
        .await;
    legacy
}

fn legacy_mode(legacy: &MockServer, capture: &str) -> String {
    format!(
        "mode = \"legacy\"\nuser_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n{TENANTS}\n[capture]\n{capture}\n",
        legacy.uri()
    )
}

async fn get_user(base: &str, id: &str, query: &str) -> reqwest::Response {
    common::client()
        .get(format!("{base}/User/{id}{query}"))
        .headers(user_api_headers())
        .header("Cookie", "session=abc")
        .header("X-Custom", "kept-out")
        .send()
        .await
        .expect("answered")
}

/// The value of `gateway_capture_lines_total{outcome=…}` (0 when not yet counted).
fn lines_counted(metrics: &str, outcome: &str) -> u64 {
    let prefix = format!("gateway_capture_lines_total{{outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Waits until the writer has handled `n` lines (written or failed): it runs off the request
/// path. The bound is a hang guard.
async fn handled(gw: &legacy_gateway::Running, n: u64) -> String {
    for _ in 0..500 {
        let m = metrics_text(gw).await;
        if lines_counted(&m, "written") + lines_counted(&m, "failed") >= n {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the capture writer never handled {n} lines");
}

fn lines(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_captured_with_the_call_and_the_legacy_answer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("capture.jsonl");
    let legacy = legacy_backend().await;
    Mock::given(method("GET"))
        .and(path_regex("^/User/html$"))
        .respond_with(ResponseTemplate::new(503).set_body_string("<html>maintenance</html>"))
        .with_priority(1)
        .mount(&legacy)
        .await;
    let gw = common::gateway_with(
        &legacy_mode(&legacy, &format!("file = {file:?}")),
        Some(&dead_url()),
    )
    .await;
    let base = gw.url();

    let resp = get_user(&base, "u1", "?ignoreProvider=true").await;
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(get_user(&base, "html", "").await.status(), 503);
    // A write, and a call no mapping translates: not captured by default.
    let put = common::put_request(&base, "u1")
        .header("Content-Type", "application/json")
        .body(format!(r#"{{"Password":"{PASSWORD}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let other = common::client()
        .get(format!("{base}/Other/path"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let m = handled(&gw, 2).await;
    assert_eq!(lines_counted(&m, "dropped"), 0);

    let got = lines(&file);
    assert_eq!(got.len(), 2, "{got:#?}");
    let line = &got[0];
    let host = base.strip_prefix("http://").unwrap();
    let want = json!({
        "v": 1,
        "time": line["time"],
        "route": "user-api",
        "part": "read",
        "tenant": "CA",
        "method": "GET",
        "path": "/User/u1",
        "query": "ignoreProvider=true",
        "headers": {
            "accept": "*/*",
            "authorization": "<redacted>",
            "host": host,
            "x-clientcode": "CA",
            "x-clientgroupcode": "GA",
            "x-papercode": "PA",
            "x-request-id": request_id,
            "x-sourcesystem": "legacy-user-api",
        },
        "body": null,
        "legacy": {
            "status": 200,
            "body": {"Code": 0, "Errors": [], "Result": {"CustomerRegistrationId": "u1", "FirstName": "Ada"}},
        },
    });
    assert_eq!(line, &want);
    let time = line["time"].as_str().unwrap();
    assert!(
        time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{time}"
    );
    // Not JSON: kept as text, with the status.
    assert_eq!(got[1]["path"], "/User/html");
    assert_eq!(
        (&got[1]["legacy"]["status"], &got[1]["legacy"]["body"]),
        (&json!(503), &Value::Null)
    );
    assert_eq!(got[1]["legacy"]["body_text"], "<html>maintenance</html>");
    assert_eq!(got[1]["query"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_only_with_writes_true_and_only_the_chosen_parts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("capture.jsonl");
    let legacy = legacy_backend().await;
    let capture = format!("file = {file:?}\nroutes = [\"user-api.update\"]\nwrites = true");
    let gw = common::gateway_with(&legacy_mode(&legacy, &capture), Some(&dead_url())).await;
    let base = gw.url();
    assert_eq!(get_user(&base, "u1", "").await.status(), 200);
    let body = json!({"FirstName": "Ada", "Password": PASSWORD});
    let put = common::put_request(&base, "u2")
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    handled(&gw, 1).await;
    let got = lines(&file);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(
        (&got[0]["part"], &got[0]["method"], &got[0]["path"]),
        (&json!("update"), &json!("PUT"), &json!("/User/u2"))
    );
    assert_eq!(
        got[0]["body"],
        json!({"FirstName": "Ada", "Password": "<redacted>"})
    );
    assert_eq!(got[0]["headers"]["content-type"], "application/json");
    assert_eq!(
        got[0]["legacy"],
        json!({"status": 200, "body": {"Code": 0, "Errors": [], "Result": {"Updated": true}}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_and_the_legacy_side_of_a_canary_are_captured() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = legacy_backend().await;
    let v4s = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": {"customerRegistrationId": "x", "firstName": "Ada"}, "statusCode": "S200_00"
        })))
        .mount(&v4s)
        .await;

    // Shadow mode: the legacy backend answers, a copy goes to v4; the call is captured.
    let file = dir.path().join("shadow.jsonl");
    let config = format!(
        "mode = \"shadow\"\nuser_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n{TENANTS}\n[capture]\nfile = {file:?}\n",
        legacy.uri()
    );
    let gw = common::gateway_with(&config, Some(&v4s.uri())).await;
    assert_eq!(get_user(&gw.url(), "s1", "").await.status(), 200);
    handled(&gw, 1).await;
    let got = lines(&file);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0]["legacy"]["body"]["Result"]["CustomerRegistrationId"],
        "s1"
    );

    // A canary: half the users translated, half on the legacy backend; only the calls the
    // legacy backend answered are captured.
    let file = dir.path().join("canary.jsonl");
    let config = format!(
        "mode = \"legacy\"\nuser_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n{TENANTS}\n[[modes]]\nroute = \"user-api\"\nmode = \"translate\"\ntranslate_percent = 50\n[capture]\nfile = {file:?}\n",
        legacy.uri()
    );
    let gw = common::gateway_with(&config, Some(&v4s.uri())).await;
    let before = common::received(&legacy).await.len();
    for i in 0..20 {
        // The translated half answers from the fake v4, whatever it makes of it.
        get_user(&gw.url(), &format!("c{i}"), "").await;
    }
    let at_legacy: Vec<String> = common::received(&legacy).await[before..]
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    assert!(
        !at_legacy.is_empty() && at_legacy.len() < 20,
        "{at_legacy:?}"
    );
    handled(&gw, at_legacy.len() as u64).await;
    let captured: Vec<String> = lines(&file)
        .iter()
        .map(|l| l["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(captured, at_legacy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_is_always_in_or_always_out_of_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("capture.jsonl");
    let legacy = legacy_backend().await;
    let capture = format!("file = {file:?}\nsample_percent = 30");
    let gw = common::gateway_with(&legacy_mode(&legacy, &capture), Some(&dead_url())).await;
    let ids: Vec<String> = (0..40).map(|i| format!("user{i}")).collect();
    for _ in 0..2 {
        for id in &ids {
            assert_eq!(get_user(&gw.url(), id, "").await.status(), 200);
        }
    }
    let expected: Vec<&String> = ids
        .iter()
        .filter(|id| legacy_gateway::config::modes::bucket(id) < 30)
        .collect();
    assert!(!expected.is_empty() && expected.len() < ids.len());
    handled(&gw, 2 * expected.len() as u64).await;
    let got = lines(&file);
    let mut paths: Vec<String> = got
        .iter()
        .map(|l| l["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    let mut want: Vec<String> = expected
        .iter()
        .flat_map(|id| [format!("/User/{id}"), format!("/User/{id}")])
        .collect();
    want.sort();
    assert_eq!(paths, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_is_rotated_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("capture.jsonl");
    let legacy = legacy_backend().await;
    let capture = format!("file = {file:?}\nmax_bytes = 2048");
    let gw = common::gateway_with(&legacy_mode(&legacy, &capture), Some(&dead_url())).await;
    for i in 0..12 {
        assert_eq!(
            get_user(&gw.url(), &format!("r{i}"), "").await.status(),
            200
        );
    }
    handled(&gw, 12).await;
    let rotated = dir.path().join("capture.jsonl.1");
    for f in [&file, &rotated] {
        let size = std::fs::metadata(f).unwrap().len();
        assert!(size <= 2048 && size > 0, "{}: {size}", f.display());
    }
    // Whole lines on both sides of the rotation, the newest in the current file.
    let (old, current) = (lines(&rotated), lines(&file));
    assert!(!old.is_empty() && !current.is_empty());
    assert_eq!(current.last().unwrap()["path"], "/User/r11");
}

/// Every form a secret may be written in (`common::secret_forms`): raw, JSON-escaped once
/// (index 1) and twice, percent-encoded three ways.
fn forms(value: &str) -> Vec<String> {
    common::secret_forms::secret_forms(value)
        .into_iter()
        .map(|(_, f)| f)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_form_of_any_secret_reaches_the_file() {
    const PW: &str = "PW-quote\"d-Secret11";
    const OLD: &str = "0ld-Pa\"ss/w0rdXq";
    const CONFIRMATION: &str = "evt/Conf\"1rm7c1dA9";
    let token = format!(
        "Bearer {}",
        jwt::hs256(&json!({"sub": "2002"}), b"capture-test-hmac")
    );
    let bare = token.strip_prefix("Bearer ").unwrap().to_string();
    let signature = bare.rsplit('.').next().unwrap().to_string();
    let secrets = [
        PW,
        OLD,
        CONFIRMATION,
        token.as_str(),
        bare.as_str(),
        signature.as_str(),
        PASSWORD,
        TOKEN,
    ];
    // The legacy backend echoes every form of each secret the call carried (in its body,
    // query or token), in JSON fields, in a message and in plain text, as a careless one would.
    let known: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
    let echo_of = move |req: &wiremock::Request| -> String {
        let body = String::from_utf8_lossy(&req.body).into_owned();
        let query: String = req
            .url
            .query_pairs()
            .map(|(k, v)| format!("{k}={v}&"))
            .collect();
        let auth = req
            .headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        known
            .iter()
            .filter(|s| {
                let escaped = &forms(s)[1];
                body.contains(escaped.as_str())
                    || query.contains(s.as_str())
                    || auth.contains(s.as_str())
            })
            .flat_map(|s| forms(s))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let legacy = MockServer::start().await;
    let echo = echo_of.clone();
    Mock::given(method("PUT"))
        .respond_with(move |req: &wiremock::Request| {
            let echo = echo(req);
            ResponseTemplate::new(400).set_body_json(json!({
                "Code": 400, "Errors": [{"Message": format!("rejected: {echo}")}],
                "Result": {"Password": PW, "Nested": [{"password": OLD}], "Echo": echo}
            }))
        })
        .mount(&legacy)
        .await;
    let echo = echo_of.clone();
    Mock::given(method("GET"))
        .respond_with(move |req: &wiremock::Request| {
            ResponseTemplate::new(500).set_body_string(format!("failed: {}", echo(req)))
        })
        .mount(&legacy)
        .await;
    let echo = echo_of;
    Mock::given(method("POST"))
        .respond_with(move |req: &wiremock::Request| {
            let echo = echo(req);
            ResponseTemplate::new(200).set_body_json(json!({
                "status": "error", "error": format!("bad input {echo}"), "messages": [echo], "action": "x"
            }))
        })
        .mount(&legacy)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("capture.jsonl");
    let gw = common::gateway_with(
        &legacy_mode(&legacy, &format!("file = {file:?}\nwrites = true")),
        Some(&dead_url()),
    )
    .await;
    let base = gw.url();
    let c = common::client();
    let mut calls = 0;

    // The User API: the password at the top, nested, in other spellings; in the token too.
    for (auth, body) in [
        (
            token.as_str(),
            json!({"Password": PW, "Profile": {"password": PW, "Old": [{"PASSWORD": OLD}]}}),
        ),
        (TOKEN, json!({"Password": PASSWORD, "FirstName": "Ada"})),
    ] {
        let mut h = user_api_headers();
        h.insert("Authorization", auth.parse().unwrap());
        let r = c
            .put(format!("{base}/User/1001"))
            .headers(h)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        calls += 1;
    }
    // A body that is not JSON but holds the password.
    let r = common::put_request(&base, "1001")
        .header("Content-Type", "application/json")
        .body(format!("{{\"Password\": {}, oops", json!(PW)))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error() || r.status().is_success());
    calls += 1;
    // A read whose answer is text echoing everything.
    let mut h = user_api_headers();
    h.insert("Authorization", token.parse().unwrap());
    let r = c
        .get(format!("{base}/User/1001"))
        .headers(h)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    calls += 1;

    // The action API: both passwords, old alias, the confirmation id in the query (`id` and
    // the old `cid`), raw and percent-encoded.
    let encoded: String = url::form_urlencoded::byte_serialize(CONFIRMATION.as_bytes()).collect();
    for (query, body) in [
        (
            "action=updatechangepassword".to_string(),
            json!({"oldpassword": OLD, "password": PW}),
        ),
        (
            "action=updatechangepassword".to_string(),
            json!({"oldpasswort": OLD, "password": PW}),
        ),
        (
            format!("action=activatenewpassword&id={encoded}"),
            json!({"password": PW}),
        ),
        (
            format!("action=activate&cid={encoded}&x=1"),
            json!({"password": PW}),
        ),
    ] {
        let r = c
            .post(format!("{base}{REGISTRY}?{query}"))
            .header("Host", "paper-a.test")
            .header("Authorization", &token)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{query}");
        calls += 1;
    }

    handled(&gw, calls).await;
    let bytes = std::fs::read(&file).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    // Non-trivial: every call is there, each with its markers.
    let got = lines(&file);
    assert_eq!(got.len() as u64, calls, "{text}");
    assert!(got
        .iter()
        .all(|l| l["headers"]["authorization"] == "<redacted>"));
    assert_eq!(
        got[0]["body"]["Profile"]["Old"][0]["PASSWORD"],
        "<redacted>"
    );
    assert_eq!(got[0]["legacy"]["body"]["Result"]["Password"], "<redacted>");
    assert_eq!(got[2]["body_text"], "<redacted>");
    let activate = got
        .iter()
        .find(|l| {
            l["part"] == "activatenewpassword" && l["query"].as_str().unwrap().contains("cid")
        })
        .expect("the old alias is captured");
    assert_eq!(activate["query"], "action=activate&cid=%3Credacted%3E&x=1");
    for secret in secrets {
        for form in forms(secret) {
            assert!(
                !text.contains(&form),
                "the capture file holds {form:?} (a form of {secret:?}):\n{}",
                text.lines()
                    .filter(|l| l.contains(&form))
                    .take(2)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_writer_drops_lines_and_never_holds_a_client() {
    let dir = tempfile::tempdir().unwrap();
    // A named pipe nobody reads yet: opening it for writing blocks the writer thread.
    let fifo = dir.path().join("capture.pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let legacy = legacy_backend().await;
    let capture = format!("file = {fifo:?}\nbuffer_lines = 4");
    let gw = common::gateway_with(&legacy_mode(&legacy, &capture), Some(&dead_url())).await;
    for i in 0..20 {
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            get_user(&gw.url(), &format!("b{i}"), ""),
        )
        .await
        .expect("answered while the writer is blocked");
        assert_eq!(r.status(), 200);
    }
    let m = metrics_text(&gw).await;
    assert_eq!(lines_counted(&m, "written"), 0);
    assert_eq!(lines_counted(&m, "dropped"), 16, "{m}");

    // Once the pipe is read, the lines that were queued are written.
    let reader = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let f = std::io::BufReader::new(std::fs::File::open(&fifo).unwrap());
        f.lines().take(4).map(Result::unwrap).collect::<Vec<_>>()
    });
    let read = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the queued lines arrive")
        .unwrap();
    let paths: Vec<Value> = read
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["path"].clone())
        .collect();
    assert_eq!(
        paths,
        [
            json!("/User/b0"),
            json!("/User/b1"),
            json!("/User/b2"),
            json!("/User/b3")
        ]
    );
    let m = handled(&gw, 4).await;
    assert_eq!(lines_counted(&m, "written"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_the_settings_and_reopens_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = legacy_backend().await;
    let config = dir.path().join("gateway.toml");
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    let base = format!(
        "listen = \"127.0.0.1:0\"\norchestrator_url = \"{}\"\n{}",
        dead_url(),
        legacy_mode(&legacy, "")
    );
    let write = |capture: &str| std::fs::write(&config, format!("{base}{capture}")).unwrap();
    let reload = |gw: &legacy_gateway::Running| {
        let url = common::admin(gw, "reload");
        async move {
            let r = common::client().post(url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    };
    let paths = |f: &Path| -> Vec<String> {
        lines(f)
            .iter()
            .map(|l| l["path"].as_str().unwrap().to_string())
            .collect()
    };
    write(&format!("file = {a:?}\n"));
    let gw = common::gateway_from_file(&config).await;
    assert_eq!(get_user(&gw.url(), "u1", "").await.status(), 200);
    handled(&gw, 1).await;

    // Moved away (as logrotate does), then a reload: the file is opened again.
    let moved = dir.path().join("a.jsonl.old");
    std::fs::rename(&a, &moved).unwrap();
    reload(&gw).await;
    assert_eq!(get_user(&gw.url(), "u2", "").await.status(), 200);
    handled(&gw, 2).await;
    assert_eq!(
        (paths(&moved), paths(&a)),
        (vec!["/User/u1".to_string()], vec!["/User/u2".to_string()])
    );

    // Another file: the next line goes there.
    write(&format!("file = {b:?}\n"));
    reload(&gw).await;
    assert_eq!(get_user(&gw.url(), "u3", "").await.status(), 200);
    handled(&gw, 3).await;
    assert_eq!(paths(&b), ["/User/u3"]);

    // No [capture] any more: nothing is captured (seen once it is back: the writer keeps
    // the order of the calls, so a line for u4 would come before u5's).
    std::fs::write(&config, base.trim_end().trim_end_matches("[capture]")).unwrap();
    reload(&gw).await;
    assert_eq!(get_user(&gw.url(), "u4", "").await.status(), 200);
    write(&format!("file = {b:?}\n"));
    reload(&gw).await;
    assert_eq!(get_user(&gw.url(), "u5", "").await.status(), 200);
    handled(&gw, 4).await;
    assert_eq!(paths(&b), ["/User/u3", "/User/u5"]);
    assert_eq!(lines_counted(&metrics_text(&gw).await, "written"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_capture_nothing_is_counted() {
    let legacy = legacy_backend().await;
    let config = format!(
        "mode = \"legacy\"\nuser_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n",
        legacy.uri()
    );
    let gw = common::gateway_with(&config, Some(&dead_url())).await;
    assert_eq!(get_user(&gw.url(), "u1", "").await.status(), 200);
    let m = metrics_text(&gw).await;
    assert!(!m.contains("gateway_capture_lines_total{"), "{m}");
}
