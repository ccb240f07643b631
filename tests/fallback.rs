//! `[fallback]`: a row v4 answers goes to the legacy backend by itself while v4 fails, probes
//! v4 after the cool-down and returns when the probes succeed. Over loopback, with a fake v4
//! whose health the test switches and a fake legacy backend, both recording what they got:
//! every write reaches exactly one of them.

mod common;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::binary::GatewayProcess;
use common::{admin, client, get_json, metrics_text, user_api_headers, v4};
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

const HEALTHY: u8 = 0;
/// 503 `E503`: v4 itself is failing.
const FAILING: u8 = 1;
/// 500 `E500_01`: "the user was not found", an answer about the user.
const USER_NOT_FOUND: u8 = 2;
/// 500 with a code no rule calls a business error.
const OTHER_500: u8 = 3;

/// A fake v4 whose health the test switches.
#[derive(Clone)]
struct V4(Arc<AtomicU8>);

impl V4 {
    fn set(&self, state: u8) {
        self.0.store(state, Ordering::SeqCst);
    }
}

impl Respond for V4 {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        match self.0.load(Ordering::SeqCst) {
            HEALTHY => ResponseTemplate::new(200).set_body_json(v4("S200_01", "ok", "Success")),
            FAILING => {
                ResponseTemplate::new(503).set_body_json(v4("E503", "Service Unavailable", "Error"))
            }
            USER_NOT_FOUND => {
                ResponseTemplate::new(500).set_body_json(v4("E500_01", "GetById failed", "Error"))
            }
            _ => ResponseTemplate::new(500).set_body_json(v4("E500_77", "Database gone", "Error")),
        }
    }
}

/// The fakes: v4 (healthy at first) and the legacy User API, which answers every `PUT` with
/// its own request id, so a test can tell who answered.
async fn fakes() -> (MockServer, V4, MockServer) {
    let v4s = MockServer::start().await;
    let health = V4(Arc::new(AtomicU8::new(HEALTHY)));
    Mock::given(wiremock::matchers::any())
        .respond_with(health.clone())
        .mount(&v4s)
        .await;
    let legacy = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "Code": 0, "Errors": [], "Result": {"Updated": true},
            "SessionId": null, "RequestId": "from-legacy"
        })))
        .mount(&legacy)
        .await;
    (v4s, health, legacy)
}

/// Four v4 calls make a window; half of them failing sends the row to legacy; two probes in a
/// row bring it back.
fn settings(legacy: &str, cooldown: &str) -> String {
    format!(
        "user_api_url = \"{legacy}\"\nmode = \"translate\"\n\n[fallback]\nerror_ratio = 0.5\nmin_calls = 4\nwindow = 3600\ncooldown = {cooldown}\nprobes = 2\n"
    )
}

/// Who answered one update, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
enum By {
    Legacy,
    /// v4's answer (a success, or its failure in the legacy shape), with the status.
    V4(u16),
}

/// `PUT /User/{id}` with a profile change; a new id per call, so the fakes' records say
/// which call reached which side.
async fn update(base: &str, id: usize) -> By {
    let resp = client()
        .put(format!("{base}/User/{id}"))
        .headers(user_api_headers())
        .json(&json!({"FirstName": "Ann"}))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("answered");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("a JSON answer");
    if body["RequestId"] == "from-legacy" {
        By::Legacy
    } else {
        By::V4(status)
    }
}

/// The ids each fake received an update for.
async fn writes(v4s: &MockServer, legacy: &MockServer) -> (Vec<String>, Vec<String>) {
    let ids = |reqs: Vec<wiremock::Request>, prefix: &str| -> Vec<String> {
        reqs.iter()
            .filter(|r| r.method.as_str() == "PUT")
            .filter_map(|r| {
                let p = r.url.path();
                p.strip_prefix(prefix)
                    .map(|id| id.trim_end_matches('/').to_string())
            })
            .collect()
    };
    (
        ids(common::received(v4s).await, "/v4/Users/"),
        ids(common::received(legacy).await, "/User/"),
    )
}

/// Every update id up to `n` reached exactly one side, once.
async fn each_write_once(v4s: &MockServer, legacy: &MockServer, n: usize) {
    let (to_v4, to_legacy) = writes(v4s, legacy).await;
    for id in 1..=n {
        let id = id.to_string();
        let times = to_v4.iter().chain(&to_legacy).filter(|x| **x == id).count();
        assert_eq!(
            times, 1,
            "update {id} sent {times} times; v4 got {to_v4:?}, legacy got {to_legacy:?}"
        );
    }
}

fn row<'a>(state: &'a Value, part: &str) -> &'a Value {
    state["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["route"] == "user-api" && r["part"] == part)
        .unwrap_or_else(|| panic!("no user-api.{part} row: {state}"))
}

#[tokio::test]
async fn a_failing_v4_sends_the_row_to_legacy_each_write_once_until_reset() {
    let (v4s, health, legacy) = fakes().await;
    let gw = common::gateway_with(&settings(&legacy.uri(), "3600"), Some(&v4s.uri())).await;
    let base = gw.url();

    assert_eq!(update(&base, 1).await, By::V4(200));
    assert_eq!(update(&base, 2).await, By::V4(200));
    health.set(FAILING);
    // Calls 3 and 4 fail on v4 and are answered as v4's failure: 2 failures in 4 calls.
    assert_eq!(update(&base, 3).await, By::V4(503));
    assert_eq!(update(&base, 4).await, By::V4(503));
    // Decided after the switch: the legacy backend answers.
    for id in 5..=7 {
        assert_eq!(update(&base, id).await, By::Legacy, "update {id}");
    }
    // Reads are a row of their own, with no failure counted: still v4.
    let read = client()
        .get(format!("{base}/User/8"))
        .headers(user_api_headers())
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 503, "the read went to v4");
    each_write_once(&v4s, &legacy, 7).await;

    let state = get_json(admin(&gw, "fallback")).await;
    assert_eq!(state["enabled"], true, "{state}");
    assert_eq!(state["settings"]["min_calls"], 4, "{state}");
    let update_row = row(&state, "update");
    assert_eq!(
        (&update_row["state"], &update_row["trips"]),
        (&json!("legacy"), &json!(1)),
        "{state}"
    );
    assert!(update_row["switched_at"].is_string(), "{state}");
    assert_eq!(row(&state, "read")["state"], "v4", "{state}");

    let text = metrics_text(&gw).await;
    for line in [
        "gateway_fallback_active{route=\"user-api\",part=\"update\",tenant=\"other\"} 1",
        "gateway_fallback_active{route=\"user-api\",part=\"read\",tenant=\"other\"} 0",
        "gateway_fallback_total{route=\"user-api\",part=\"update\",tenant=\"other\"} 1",
        "gateway_requests_total{route=\"user-api.legacy\",status=\"200\",tenant=\"other\",mode=\"fallback\"} 3",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }

    // Re-armed by hand: the rows picked are listed, and the next call goes to v4.
    health.set(HEALTHY);
    let reset: Value = client()
        .post(admin(&gw, "fallback/reset?route=user-api&part=update"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        reset,
        json!({"status": "reset", "rows": [
            {"route": "user-api", "part": "update", "tenant": "other", "was": "legacy"}
        ]})
    );
    assert_eq!(update(&base, 9).await, By::V4(200));
    let text = metrics_text(&gw).await;
    assert!(
        text.contains(
            "gateway_fallback_active{route=\"user-api\",part=\"update\",tenant=\"other\"} 0"
        ),
        "{text}"
    );
    assert_eq!(
        row(&get_json(admin(&gw, "fallback")).await, "update")["state"],
        "v4"
    );
}

#[tokio::test]
async fn business_errors_do_not_trip_it_other_5xx_do() {
    let (v4s, health, legacy) = fakes().await;
    let gw = common::gateway_with(&settings(&legacy.uri(), "3600"), Some(&v4s.uri())).await;
    let base = gw.url();
    health.set(USER_NOT_FOUND);
    for id in 1..=10 {
        assert_eq!(update(&base, id).await, By::V4(500), "update {id}");
    }
    health.set(OTHER_500);
    // The 10 calls before count: 2 failures more make 2 in 12, 6 make 6 in 16, 10 in 20.
    for id in 11..=20 {
        assert_eq!(update(&base, id).await, By::V4(500), "update {id}");
    }
    assert_eq!(update(&base, 21).await, By::Legacy);
    each_write_once(&v4s, &legacy, 21).await;
}

#[tokio::test]
async fn the_reset_endpoint_picks_rows_and_refuses_what_it_cannot_read() {
    let (v4s, health, legacy) = fakes().await;
    let gw = common::gateway_with(&settings(&legacy.uri(), "3600"), Some(&v4s.uri())).await;
    health.set(FAILING);
    for id in 1..=4 {
        update(&gw.url(), id).await;
    }
    assert_eq!(update(&gw.url(), 5).await, By::Legacy);
    let post = |path: &str, body: &'static str| client().post(admin(&gw, path)).body(body).send();
    // A tenant no row has: nothing reset, the row stays on legacy.
    let none: Value = post("fallback/reset", r#"{"tenant":"ZZ"}"#)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none, json!({"status": "reset", "rows": []}));
    assert_eq!(update(&gw.url(), 6).await, By::Legacy);
    for (path, body) in [
        ("fallback/reset?rout=user-api", ""),
        ("fallback/reset", "{\"route\":\"users\"}"),
        ("fallback/reset", "not json"),
    ] {
        let resp = post(path, body).await.unwrap();
        assert_eq!(resp.status(), 400, "{path} {body}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["status"], "error", "{v}");
    }
    let get = client()
        .get(admin(&gw, "fallback/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    // An empty body resets every row.
    let all: Value = post("fallback/reset", "")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["rows"].as_array().map(Vec::len), Some(1), "{all}");
    health.set(HEALTHY);
    assert_eq!(update(&gw.url(), 7).await, By::V4(200));
    each_write_once(&v4s, &legacy, 7).await;
}

#[tokio::test]
async fn without_the_section_a_failing_v4_keeps_answering() {
    let (v4s, health, legacy) = fakes().await;
    let text = format!(
        "mode = \"translate\"\nuser_api_url = \"{}\"\n",
        legacy.uri()
    );
    let gw = common::gateway_with(&text, Some(&v4s.uri())).await;
    health.set(FAILING);
    for id in 1..=60 {
        assert_eq!(update(&gw.url(), id).await, By::V4(503));
    }
    let state = get_json(admin(&gw, "fallback")).await;
    assert_eq!(
        state,
        json!({"enabled": false, "settings": null, "rows": []})
    );
}

/// The whole cycle in the binary, as an operator runs it: trips (a `warn` line), probes after
/// a short cool-down (a failing probe keeps the row on legacy), returns once v4 recovers (a
/// `warn` line), and no write is ever sent to both sides.
#[tokio::test]
async fn probes_after_the_cooldown_and_returns_to_v4_when_it_recovers() {
    let (v4s, health, legacy) = fakes().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "orchestrator_url = \"{}\"\n{}",
            v4s.uri(),
            settings(&legacy.uri(), "0.05")
        ),
    )
    .unwrap();
    let gw = GatewayProcess::start(&config, dir.path(), &[], "info").await;
    let base = gw.url();
    let next = AtomicUsize::new(0);
    let id = || next.fetch_add(1, Ordering::SeqCst) + 1;

    health.set(FAILING);
    // Hang guards: bounded numbers of calls, never a timed assertion.
    let mut tripped = false;
    for _ in 0..10 {
        if update(&base, id()).await == By::Legacy {
            tripped = true;
            break;
        }
    }
    assert!(tripped, "never fell back: {}", gw.stderr_so_far());
    let v4_before = writes(&v4s, &legacy).await.0.len();
    // After the cool-down a probe reaches the failing v4, is answered as v4's failure, and
    // the row stays on legacy.
    let mut probed = false;
    for _ in 0..5000 {
        if let By::V4(status) = update(&base, id()).await {
            assert_eq!(status, 503);
            probed = true;
            break;
        }
    }
    assert!(probed, "no probe reached v4");
    assert_eq!(writes(&v4s, &legacy).await.0.len(), v4_before + 1);
    assert_ne!(
        row(&get_json(gw.admin("fallback")).await, "update")["state"],
        "v4"
    );

    health.set(HEALTHY);
    let mut back = false;
    for _ in 0..5000 {
        update(&base, id()).await;
        if row(&get_json(gw.admin("fallback")).await, "update")["state"] == "v4" {
            back = true;
            break;
        }
    }
    assert!(back, "never returned to v4: {}", gw.stderr_so_far());
    for _ in 0..3 {
        assert_eq!(update(&base, id()).await, By::V4(200));
    }
    let sent = next.load(Ordering::SeqCst);
    each_write_once(&v4s, &legacy, sent).await;

    let (_, log) = gw.stop().await;
    let warned = |text: &str| {
        log.lines()
            .any(|l| l.contains("WARN") && l.contains(text) && l.contains("update"))
    };
    assert!(warned("v4 is failing for this row"), "{log}");
    assert!(warned("v4 probes succeeded"), "{log}");
}

/// A canary's legacy side is never watched: only its translated users' calls reach v4, and
/// after the switch none does.
#[tokio::test]
async fn a_canary_falls_back_on_its_translated_side() {
    let (v4s, health, legacy) = fakes().await;
    let text = settings(&legacy.uri(), "3600").replace(
        "mode = \"translate\"\n",
        "mode = \"translate\"\n[[modes]]\nroute = \"user-api\"\ntenant = \"CA\"\nmode = \"translate\"\ntranslate_percent = 50\n",
    );
    let gw = common::gateway_with(&text, Some(&v4s.uri())).await;
    health.set(FAILING);
    let mut to_v4 = 0;
    for id in 1..=40 {
        if let By::V4(status) = update(&gw.url(), id).await {
            assert_eq!(status, 503, "update {id}");
            to_v4 += 1;
        }
    }
    // Four translated calls, all failing, make the window: the fifth would go to legacy.
    assert_eq!(to_v4, 4);
    each_write_once(&v4s, &legacy, 40).await;
    let state = get_json(admin(&gw, "fallback")).await;
    let r = row(&state, "update");
    assert_eq!(
        (&r["tenant"], &r["state"]),
        (&json!("CA"), &json!("legacy")),
        "{state}"
    );
}

/// The action API: each action is a row of its own.
#[tokio::test]
async fn an_action_falls_back_alone() {
    let (v4s, health, _) = fakes().await;
    let legacy = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"status": "OK", "action": "legacy"})),
        )
        .mount(&legacy)
        .await;
    let text = format!(
        "mode = \"translate\"\nregistry_api_url = \"{}\"\n[fallback]\nerror_ratio = 0.5\nmin_calls = 4\nwindow = 3600\ncooldown = 3600\n{}",
        legacy.uri(),
        common::REGISTRY_TENANT,
    );
    let gw = common::gateway_with(&text, Some(&v4s.uri())).await;
    health.set(FAILING);
    let call = |query: String, body: String| {
        let url = format!("{}{}?{query}", gw.url(), common::REGISTRY);
        async move {
            let resp = client()
                .post(url)
                .header("Host", "paper-a.test")
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let forgot = |i: usize| {
        call(
            "action=registernewpassword".into(),
            json!({"email": format!("user{i}@example.test")}).to_string(),
        )
    };
    for i in 1..=4 {
        let (status, answer) = forgot(i).await;
        assert_eq!(status, 500, "{answer}");
        assert_ne!(answer["action"], "legacy", "{answer}");
    }
    let (status, answer) = forgot(5).await;
    assert_eq!(
        (status, &answer["action"]),
        (200, &json!("legacy")),
        "{answer}"
    );
    // Another action has its own row, still on v4.
    let v4_before = common::received(&v4s).await.len();
    let (status, _) = call(
        "action=activatenewpassword&id=abc".into(),
        json!({"password": "Brand-New1"}).to_string(),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(common::received(&v4s).await.len(), v4_before + 1);

    // Each address reached one side, once.
    let emails = |reqs: Vec<wiremock::Request>| -> Vec<String> {
        reqs.iter()
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .filter_map(|b| {
                b.get("loginName")
                    .or_else(|| b.get("email"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect()
    };
    let (at_v4, at_legacy) = (
        emails(common::received(&v4s).await),
        emails(common::received(&legacy).await),
    );
    for i in 1..=5 {
        let email = format!("user{i}@example.test");
        let times = at_v4
            .iter()
            .chain(&at_legacy)
            .filter(|e| **e == email)
            .count();
        assert_eq!(times, 1, "{email}: v4 {at_v4:?}, legacy {at_legacy:?}");
    }
    let state = get_json(admin(&gw, "fallback")).await;
    let rows = state["rows"].as_array().unwrap();
    let r = rows
        .iter()
        .find(|r| r["part"] == "registernewpassword")
        .unwrap_or_else(|| panic!("{state}"));
    assert_eq!(
        (&r["route"], &r["tenant"], &r["state"]),
        (&json!("registry"), &json!("paper-a.test"), &json!("legacy")),
        "{state}"
    );
    assert!(
        rows.iter()
            .any(|r| r["part"] == "activatenewpassword" && r["state"] == "v4"),
        "{state}"
    );
}
