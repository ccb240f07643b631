//! The shadow report as the evidence for a cut-over, over loopback with a fake legacy backend
//! and fake live and staging v4s: rows per route part and tenant (reads apart from writes),
//! every call accounted for (compared, or not shadowed and why), the current mode per row,
//! the window since the last change (reload, reset), latency side by side, reads against the
//! live v4, no value in any log line, the diff file's lines, the readiness gauge, and the
//! fleet merge of two gateways by `legacy-gateway shadow-report`.

mod common;

use std::time::Duration;

use common::binary::{Binary, GatewayProcess};
use common::fakes::{legacy_accepts, password_changes};
use common::{admin, client, get_json, metrics_text, mount, put_as, user_api_headers, v4};
use http::HeaderValue;
use serde_json::{json, Value};
use wiremock::{MockServer, ResponseTemplate};

/// What the legacy backend answers to `GET /User/{id}`.
fn legacy_user(id: &str, first_name: &str) -> String {
    json!({
        "Code": 0, "Errors": [],
        "Result": {"CustomerRegistrationId": id, "FirstName": first_name, "LastName": "Anderson",
                   "Email": "alice@example.test", "Verified": true},
        "RequestId": "legacy-req"
    })
    .to_string()
}

/// What a v4 answers to `GET /v4/Users/{id}/`.
fn v4_user(id: &str, first_name: &str) -> Value {
    let mut env = v4("S200_01", "Get user completed.", "Success");
    env["data"] = json!({
        "customerRegistrationId": id, "email": "alice@example.test", "firstName": first_name,
        "lastName": "Anderson", "verified": true
    });
    env
}

struct Fakes {
    live: MockServer,
    staging: MockServer,
    legacy: MockServer,
}

/// User 1001 reads alike everywhere; user 1002 is `Bob` on the legacy backend and `Robert` on
/// the live v4 (one difference). The staging v4 knows user 1001 under another name, as
/// staging data drifts. Every PUT is accepted.
async fn fakes() -> Fakes {
    let f = Fakes {
        live: MockServer::start().await,
        staging: MockServer::start().await,
        legacy: MockServer::start().await,
    };
    for (id, legacy_name, live_name) in [("1001", "Alice", "Alice"), ("1002", "Bob", "Robert")] {
        mount(
            &f.legacy,
            "GET",
            &format!("/User/{id}"),
            ResponseTemplate::new(200)
                .insert_header("Content-Type", "application/json")
                .set_body_string(legacy_user(id, legacy_name)),
        )
        .await;
        mount(
            &f.live,
            "GET",
            &format!("/v4/Users/{id}/"),
            ResponseTemplate::new(200).set_body_json(v4_user(id, live_name)),
        )
        .await;
        legacy_accepts(&f.legacy, id, "legacy").await;
        password_changes(&f.staging, id).await;
    }
    mount(
        &f.staging,
        "GET",
        "/v4/Users/1001/",
        ResponseTemplate::new(200).set_body_json(v4_user("1001", "Staging-Alice")),
    )
    .await;
    f
}

fn upstreams(f: &Fakes) -> String {
    format!(
        "user_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n",
        f.legacy.uri()
    )
}

/// `GET /User/{id}` as tenant `tenant`.
async fn read(gw_url: &str, id: &str, tenant: &str) {
    let mut h = user_api_headers();
    h.insert("X-ClientCode", HeaderValue::from_str(tenant).unwrap());
    let r = client()
        .get(format!("{gw_url}/User/{id}"))
        .headers(h)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn write(gw_url: &str, id: &str, tenant: &str) {
    let r = put_as(gw_url, id, tenant)
        .body(r#"{"FirstName":"Al"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// The report's row for `row` (`user-api.read`) and `tenant`, once `done` holds for it.
/// Copies are compared off the request path: polled, the bound a hang guard only.
async fn row_when(url: &str, row: &str, tenant: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..250 {
        last = get_json(url.to_string()).await;
        if let Some(r) = find(&last, row, tenant) {
            if done(&r) {
                return r;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the row {row} {tenant} never got there: {last:#}");
}

fn find(report: &Value, row: &str, tenant: &str) -> Option<Value> {
    report["rows"]
        .as_array()?
        .iter()
        .find(|r| r["row"] == row && r["tenant"] == tenant)
        .cloned()
}

#[tokio::test]
async fn reads_and_writes_are_rows_apart_and_every_write_is_accounted_for() {
    let f = fakes().await;
    // Shadow for tenant CA (spelled so in the rule); writes not opted in.
    let cfg = format!(
        "mode = \"legacy\"\n{}[[modes]]\nroute = \"user-api\"\ntenant = \"CA\"\nmode = \"shadow\"\n",
        upstreams(&f)
    );
    let gw = common::gateway_with(&cfg, Some(&f.live.uri())).await;
    for _ in 0..3 {
        read(&gw.url(), "1001", "ca").await;
    }
    for _ in 0..2 {
        write(&gw.url(), "1001", "ca").await;
    }
    let url = admin(&gw, "shadow");
    let reads = row_when(&url, "user-api.read", "CA", |r| r["compared"] == 3).await;
    assert_eq!(
        (&reads["matched"], &reads["mode"], &reads["verdict"]),
        (&json!(3), &json!("shadow"), &json!("too_few")),
        "{reads}"
    );
    // The writes: counted, not compared, and never judged by the reads' figures.
    let writes = row_when(&url, "user-api.update", "CA", |r| {
        r["not_shadowed"]["writes_off"] == 2
    })
    .await;
    assert_eq!(writes["compared"], 0, "{writes}");
    assert_eq!(writes["verdict"], "not_compared", "{writes}");
    assert_eq!(writes["ready"], false);
    // The latency of both sides of the compared reads.
    for side in ["legacy", "v4"] {
        assert!(
            reads["latency_ms"][side]["p50"].as_f64().is_some(),
            "{side}: {reads}"
        );
    }
    // No copy of a write reached any v4.
    let live = common::fakes::received(&f.live).await;
    assert!(live.iter().all(|r| r.method.as_str() == "GET"), "{live:?}");
    // The page says the same, without a tenant nobody configured.
    let page = common::get_text(admin(&gw, "shadow.html")).await;
    assert!(page.contains(r#"data-part="update""#) && page.contains("writes are not shadowed"));
    assert!(page.contains(r#"data-tenant="CA""#), "as configured");
}

#[tokio::test]
async fn each_reason_for_no_copy_is_counted() {
    let f = fakes().await;
    // A v4 that fails every copy trips the kill switch after one (window 1).
    let failing = MockServer::start().await;
    mount(
        &failing,
        "GET",
        "/v4/Users/1001/",
        ResponseTemplate::new(500),
    )
    .await;
    let cfg = format!(
        "mode = \"shadow\"\n{}[[modes]]\ntenant = \"CA\"\nmode = \"shadow\"\n[[modes]]\ntenant = \"CB\"\nmode = \"shadow\"\n[shadow.routes.\"user-api\"]\nkill_window = 1\nkill_error_rate_percent = 1\nkill_cooldown_ms = 600000\n",
        upstreams(&f)
    );
    let gw = common::gateway_with(&cfg, Some(&failing.uri())).await;
    let url = admin(&gw, "shadow");
    // The first read is copied and fails: the kill switch pauses the route.
    read(&gw.url(), "1001", "CA").await;
    row_when(&url, "user-api.read", "CA", |r| r["v4_errors"] == 1).await;
    read(&gw.url(), "1001", "CA").await;
    let r = row_when(&url, "user-api.read", "CA", |r| {
        r["not_shadowed"]["kill_switch"] == 1
    })
    .await;
    assert_eq!(r["compared"], 1, "{r}");
    // Tenant CB's reads are outside the sample (sample_percent = 0 on another gateway).
    let sampled = common::gateway_with(
        &cfg.replace("kill_window = 1", "sample_percent = 0"),
        Some(&f.live.uri()),
    )
    .await;
    read(&sampled.url(), "1001", "CB").await;
    let r = row_when(&admin(&sampled, "shadow"), "user-api.read", "CB", |r| {
        r["not_shadowed"]["sampled_out"] == 1
    })
    .await;
    assert_eq!(
        (&r["compared"], &r["verdict"]),
        (&json!(0), &json!("not_compared"))
    );
    assert!(common::fakes::received(&f.live).await.is_empty());
    let metrics = metrics_text(&gw).await;
    assert!(
        metrics.contains(
            r#"gateway_shadow_total{route="user-api",tenant="CA",result="kill_switch"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_body_over_the_cap_and_a_full_queue_are_counted() {
    let f = fakes().await;
    // A staging v4 that takes its time keeps the one copy slot busy.
    let slow = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(v4("S200_00", "ok", "Success"))
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&slow)
        .await;
    let cfg = format!(
        "mode = \"shadow\"\n{}[[modes]]\ntenant = \"CA\"\nmode = \"shadow\"\n[shadow]\norchestrator_url = \"{}\"\nmax_concurrency = 1\nmax_queue = 0\nmax_body_bytes = 30\n[shadow.routes.\"user-api\"]\nwrites = true\n",
        upstreams(&f),
        slow.uri()
    );
    let gw = common::gateway_with(&cfg, Some(&f.live.uri())).await;
    let url = admin(&gw, "shadow");
    let big = put_as(&gw.url(), "1001", "CA")
        .body(json!({"FirstName": "A name longer than thirty bytes"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 200);
    // Two writes back to back: the second finds the only slot taken by the first's copy.
    write(&gw.url(), "1001", "CA").await;
    write(&gw.url(), "1001", "CA").await;
    // Three calls, each accounted for once: one compared, one too large, one queue full.
    let r = row_when(&url, "user-api.update", "CA", |r| r["compared"] == 1).await;
    assert_eq!(
        (
            &r["not_shadowed"]["body_too_large"],
            &r["not_shadowed"]["queue_full"]
        ),
        (&json!(1), &json!(1)),
        "{r}"
    );
}

#[tokio::test]
async fn reads_go_to_the_live_v4_unless_told_otherwise() {
    for to_staging in [false, true] {
        let f = fakes().await;
        let cfg = format!(
            "mode = \"shadow\"\n{}[[modes]]\ntenant = \"CA\"\nmode = \"shadow\"\n[shadow]\norchestrator_url = \"{}\"\nreads_to_staging = {to_staging}\n",
            upstreams(&f),
            f.staging.uri()
        );
        let gw = common::gateway_with(&cfg, Some(&f.live.uri())).await;
        read(&gw.url(), "1001", "CA").await;
        let r = row_when(&admin(&gw, "shadow"), "user-api.read", "CA", |r| {
            r["compared"] == 1
        })
        .await;
        let (to, not) = if to_staging {
            (&f.staging, &f.live)
        } else {
            (&f.live, &f.staging)
        };
        assert_eq!(common::fakes::received(to).await.len(), 1);
        assert!(common::fakes::received(not).await.is_empty());
        // Staging's drifted data is a difference only when reads are sent there.
        assert_eq!(r["differing"], json!(u64::from(to_staging)), "{r}");
    }
}

#[tokio::test]
async fn a_reload_and_a_reset_open_a_new_window() {
    let f = fakes().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    let cfg = format!(
        "listen = \"127.0.0.1:0\"\nmode = \"shadow\"\norchestrator_url = \"{}\"\n{}[[modes]]\ntenant = \"CA\"\nmode = \"shadow\"\n",
        f.live.uri(),
        upstreams(&f)
    );
    std::fs::write(&file, &cfg).unwrap();
    let gw = common::gateway_from_file(&file).await;
    let url = admin(&gw, "shadow");
    read(&gw.url(), "1002", "CA").await;
    row_when(&url, "user-api.read", "CA", |r| r["differing"] == 1).await;

    let reset = client()
        .post(admin(&gw, "shadow/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    let report = get_json(url.clone()).await;
    assert_eq!(report["rows"], json!([]), "{report:#}");
    assert_eq!(report["window"]["by"], "reset");
    let get_reset = client()
        .get(admin(&gw, "shadow/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(get_reset.status(), 405);

    read(&gw.url(), "1001", "CA").await;
    row_when(&url, "user-api.read", "CA", |r| r["compared"] == 1).await;
    // A reload of the same file changes nothing: the window stays.
    let reload = client().post(admin(&gw, "reload")).send().await.unwrap();
    assert_eq!(reload.status(), 200);
    let r = row_when(&url, "user-api.read", "CA", |_| true).await;
    assert_eq!(r["compared"], 1);
    // Another configuration: a new window, under its hash.
    std::fs::write(&file, format!("{cfg}[shadow]\nready_min_compared = 5\n")).unwrap();
    let reload = client().post(admin(&gw, "reload")).send().await.unwrap();
    assert_eq!(reload.status(), 200);
    let report = get_json(url.clone()).await;
    assert_eq!(report["rows"], json!([]), "{report:#}");
    assert_eq!(report["window"]["by"], "reload");
    assert_eq!(report["criteria"]["ready_min_compared"], 5);
    let metrics = metrics_text(&gw).await;
    let hash = report["config_hash"].as_str().unwrap();
    assert!(metrics.contains(&format!("hash=\"{hash}\"")), "{hash}");
}

#[tokio::test]
async fn latency_of_both_sides_is_reported() {
    let f = fakes().await;
    let slow = MockServer::start().await;
    mount(
        &slow,
        "GET",
        "/v4/Users/1001/",
        ResponseTemplate::new(200)
            .set_body_json(v4_user("1001", "Alice"))
            .set_delay(Duration::from_millis(300)),
    )
    .await;
    let cfg = format!(
        "mode = \"shadow\"\n{}[[modes]]\ntenant = \"CA\"\nmode = \"shadow\"\n",
        upstreams(&f)
    );
    let gw = common::gateway_with(&cfg, Some(&slow.uri())).await;
    for _ in 0..3 {
        read(&gw.url(), "1001", "CA").await;
    }
    let r = row_when(&admin(&gw, "shadow"), "user-api.read", "CA", |r| {
        r["compared"] == 3
    })
    .await;
    // The v4 fake waits 300 ms before it answers: no copy took less.
    let v4_p50 = r["latency_ms"]["v4"]["p50"].as_f64().unwrap();
    assert!(v4_p50 >= 300.0, "{r}");
    assert!(r["latency_ms"]["legacy"]["p99"].as_f64().is_some(), "{r}");
    assert_eq!(r["last_5m"]["compared"], 3);
    assert_eq!(r["last_1h"]["compared"], 3);
}

#[tokio::test]
async fn the_readiness_gauge_flips_when_the_ratio_crosses_the_bound() {
    let f = fakes().await;
    let cfg = format!(
        "mode = \"shadow\"\n{}[[modes]]\ntenant = \"CA\"\nmode = \"shadow\"\n[shadow]\nready_min_compared = 4\nready_max_diff_ratio = 0.25\n",
        upstreams(&f)
    );
    let gw = common::gateway_with(&cfg, Some(&f.live.uri())).await;
    let url = admin(&gw, "shadow");
    let gauge = r#"gateway_cutover_ready{route="user-api",part="read",tenant="CA"}"#;
    for _ in 0..3 {
        read(&gw.url(), "1001", "CA").await;
    }
    row_when(&url, "user-api.read", "CA", |r| r["compared"] == 3).await;
    assert!(
        metrics_text(&gw).await.contains(&format!("{gauge} 0")),
        "too few yet"
    );
    read(&gw.url(), "1001", "CA").await;
    read(&gw.url(), "1002", "CA").await;
    // 1 of 5 differs: 0.2 ≤ 0.25.
    let r = row_when(&url, "user-api.read", "CA", |r| r["compared"] == 5).await;
    assert_eq!(r["verdict"], "ready", "{r}");
    assert!(metrics_text(&gw).await.contains(&format!("{gauge} 1")));
    // 2 of 6: over the bound.
    read(&gw.url(), "1002", "CA").await;
    let r = row_when(&url, "user-api.read", "CA", |r| r["compared"] == 6).await;
    assert_ne!(r["verdict"], "ready", "{r}");
    assert!(metrics_text(&gw).await.contains(&format!("{gauge} 0")));
    // The differing path as the legacy API spells it.
    assert_eq!(
        r["top_differing_paths"][0]["path"], "$.Result.FirstName",
        "{r}"
    );
}

#[tokio::test]
async fn no_value_reaches_a_log_line_and_the_diff_file_names_the_call() {
    let f = fakes().await;
    let dir = tempfile::tempdir().unwrap();
    let diffs = dir.path().join("diffs.jsonl");
    let file = dir.path().join("gateway.toml");
    std::fs::write(
        &file,
        format!(
            "mode = \"shadow\"\norchestrator_url = \"{}\"\n{}[[modes]]\ntenant = \"CA\"\nmode = \"shadow\"\n[shadow]\ndiff_file = {:?}\n",
            f.live.uri(),
            upstreams(&f),
            diffs.display().to_string()
        ),
    )
    .unwrap();
    let gw = GatewayProcess::start(&file, dir.path(), &[], "trace").await;
    let mut h = user_api_headers();
    h.insert("x-request-id", HeaderValue::from_static("req-pii-1"));
    let r = client()
        .get(format!("{}/User/1002", gw.url()))
        .headers(h)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut row = Value::Null;
    for _ in 0..250 {
        row = find(&get_json(gw.admin("shadow")).await, "user-api.read", "CA").unwrap_or_default();
        if row["differing"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(row["differing"], 1, "{row}");
    let (stdout, stderr) = gw.stop().await;
    let logs = format!("{stdout}{stderr}");
    let difference = logs
        .lines()
        .find(|l| l.contains("shadow difference"))
        .expect("the difference is logged");
    assert!(
        difference.contains("$.Result.FirstName") && difference.contains("user-api.read"),
        "{difference}"
    );
    for value in ["Bob", "Robert"] {
        assert!(
            !logs.lines().any(|l| l.contains(value)),
            "{value} in a log line"
        );
    }
    let text = std::fs::read_to_string(&diffs).unwrap();
    let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        (
            &line["method"],
            &line["row"],
            &line["tenant"],
            &line["request_id"]
        ),
        (
            &json!("GET"),
            &json!("user-api.read"),
            &json!("CA"),
            &json!("req-pii-1")
        ),
        "{line}"
    );
    assert!(line["time"].as_str().unwrap().ends_with('Z'), "{line}");
    assert_eq!(line["differences"][0]["legacy"], "Bob");
}

#[tokio::test]
async fn shadow_report_adds_up_two_gateways() {
    let f = fakes().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin-token");
    std::fs::write(&token_file, "fleet-admin-token-1").unwrap();
    let cfg = format!(
        "mode = \"shadow\"\n{}admin_token_file = {:?}\n[[modes]]\ntenant = \"CA\"\nmode = \"shadow\"\n",
        upstreams(&f),
        token_file.display().to_string()
    );
    let a = common::gateway_with(&cfg, Some(&f.live.uri())).await;
    let b = common::gateway_with(&cfg, Some(&f.live.uri())).await;
    read(&a.url(), "1001", "CA").await;
    read(&b.url(), "1001", "CA").await;
    read(&b.url(), "1002", "CA").await;
    for (gw, n) in [(&a, 1), (&b, 2)] {
        let url = admin(gw, "shadow");
        for _ in 0..250 {
            let r = client()
                .get(&url)
                .bearer_auth("fleet-admin-token-1")
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap();
            if find(&r, "user-api.read", "CA").is_some_and(|r| r["compared"] == n) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let html = dir.path().join("fleet.html");
    let urls = [a.admin_url(), b.admin_url()];
    let html_arg = html.display().to_string();
    let (json_run, html_run, refused) = tokio::task::spawn_blocking(move || {
        let json_run = Binary::new(["shadow-report", &urls[0], &urls[1]])
            .env("LEGACY_GATEWAY_ADMIN_TOKEN", "fleet-admin-token-1")
            .run();
        let html_run = Binary::new(["shadow-report", &urls[0], &urls[1], "--html", &html_arg])
            .env("LEGACY_GATEWAY_ADMIN_TOKEN", "fleet-admin-token-1")
            .run();
        let refused = Binary::new(["shadow-report", &urls[0]]).run();
        (json_run, html_run, refused)
    })
    .await
    .unwrap();
    assert!(json_run.status.success(), "{}", json_run.stderr);
    let merged: Value = serde_json::from_str(&json_run.stdout).unwrap();
    assert_eq!(merged["instances"], 2);
    let row = find(&merged, "user-api.read", "CA").unwrap();
    assert_eq!(
        (&row["compared"], &row["matched"], &row["differing"]),
        (&json!(3), &json!(2), &json!(1)),
        "{row}"
    );
    assert!(row["latency_ms"]["v4"]["p99"].as_f64().is_some(), "{row}");
    assert!(html_run.status.success(), "{}", html_run.stderr);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains(r#"id="instances""#));
    // Without the token: a clear refusal, the token never echoed.
    assert!(!refused.status.success());
    assert!(refused.stderr.contains("401"), "{}", refused.stderr);
    assert!(!json_run.stderr.contains("fleet-admin-token-1"));
}

#[tokio::test]
async fn a_differing_path_names_its_v4_field_and_mapping_line() {
    let f = fakes().await;
    let cfg = format!(
        "mode = \"shadow\"\n{}[[modes]]\ntenant = \"CA\"\nmode = \"shadow\"\n",
        upstreams(&f)
    );
    let gw = common::gateway_with(&cfg, Some(&f.live.uri())).await;
    read(&gw.url(), "1002", "CA").await;
    let r = row_when(&admin(&gw, "shadow"), "user-api.read", "CA", |r| {
        r["differing"] == 1
    })
    .await;
    let mapping = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mappings/user-api.toml"
    ))
    .unwrap();
    let line = mapping.lines().position(|l| l.trim() == "[read]").unwrap() + 1;
    assert_eq!(
        r["top_differing_paths"][0],
        json!({
            "path": "$.Result.FirstName",
            "count": 1,
            "example": "legacy \"Bob\" → v4 \"Robert\"",
            "v4_pointer": "/data/firstName",
            "mapping": format!("mappings/user-api.toml:{line}"),
        })
    );
    let page = common::get_text(admin(&gw, "shadow.html")).await;
    assert!(page.contains(&format!("mappings/user-api.toml:{line}")));
}

/// A legacy backend whose answer carries the moment it was made: it differs from itself.
struct Clock(std::sync::atomic::AtomicU64);

impl wiremock::Respond for Clock {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut body: Value = serde_json::from_str(&legacy_user("1001", "Alice")).unwrap();
        body["Result"]["ServedAt"] = json!(format!("2026-12-06T21:00:{:02}Z", n % 60));
        ResponseTemplate::new(200).set_body_json(body)
    }
}

#[tokio::test]
async fn a_field_the_legacy_backend_changes_itself_is_learned_as_noise() {
    let f = fakes().await;
    let legacy = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(Clock(Default::default()))
        .mount(&legacy)
        .await;
    let cfg = format!(
        "mode = \"shadow\"\nuser_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n[[modes]]\ntenant = \"CA\"\nmode = \"shadow\"\n[shadow]\nnoise_sample_percent = 100\nready_min_compared = 3\n",
        legacy.uri()
    );
    let gw = common::gateway_with(&cfg, Some(&f.live.uri())).await;
    for _ in 0..3 {
        read(&gw.url(), "1001", "CA").await;
    }
    let r = row_when(&admin(&gw, "shadow"), "user-api.read", "CA", |r| {
        r["compared"] == 3
    })
    .await;
    // v4 has no such field: every copy differs there, and only there.
    assert_eq!(r["differing"], 3, "{r}");
    assert_eq!(r["noise_only"], 3, "{r}");
    assert_eq!(r["noise_paths"][0]["path"], "$.Result.ServedAt", "{r}");
    assert_eq!(r["top_differing_paths"], json!([]), "{r}");
    assert_eq!(r["verdict"], "ready", "{r}");
    // Each read was asked twice of the legacy backend, the second time marked as a copy.
    let asked = common::fakes::received(&legacy).await;
    assert_eq!(asked.len(), 6);
    assert_eq!(
        asked
            .iter()
            .filter(|r| r.headers.contains_key("x-shadow-of"))
            .count(),
        3
    );
}

#[tokio::test]
async fn each_action_of_the_action_api_is_a_row_of_its_own() {
    let f = fakes().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "OK"})))
        .mount(&f.legacy)
        .await;
    let cfg = format!(
        "mode = \"shadow\"\n{}{}",
        upstreams(&f),
        common::REGISTRY_TENANT
    );
    let gw = common::gateway_with(&cfg, Some(&f.live.uri())).await;
    for (action, body) in [
        ("registernewpassword", r#"{"email":"a@b.test"}"#),
        ("activate", r#"{"password":"Abcdefg1"}"#),
    ] {
        let r = client()
            .post(format!(
                "{}{}?action={action}&id=x",
                gw.url(),
                common::REGISTRY
            ))
            .header("Host", "PAPER-A.test")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{action}");
    }
    let url = admin(&gw, "shadow");
    // An alias counts under the action it names; the tenant is the configured host.
    for row in [
        "registry.registernewpassword",
        "registry.activatenewpassword",
    ] {
        let r = row_when(&url, row, "paper-a.test", |r| {
            r["not_shadowed"]["writes_off"] == 1
        })
        .await;
        assert_eq!(
            (&r["mode"], &r["verdict"]),
            (&json!("shadow"), &json!("not_compared"))
        );
    }
}
