//! The metrics a fleet's dashboards and alerts need beyond the per-request ones, scraped over
//! HTTP: build info, configuration hash, reload outcomes, shadow queue depth and kill switch.

mod common;

use std::time::Duration;

use common::fakes::legacy_accepts;
use common::mount_method;
use common::put_request;
use common::{client, metrics_text, v4};
use wiremock::{MockServer, ResponseTemplate};

/// The value of one exact series (`name{labels}`) in a scrape.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// The `hash` label of the one `gateway_config_info` series.
fn config_hash(metrics: &str) -> String {
    let hashes: Vec<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("gateway_config_info{hash=\""))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(hashes.len(), 1, "exactly one configuration hash: {metrics}");
    hashes[0].to_string()
}

async fn reload(gw: &legacy_gateway::Running) -> u16 {
    client()
        .post(common::admin(gw, "reload"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn build_config_hash_and_reload_outcomes_are_exported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\n").unwrap();
    let a = common::gateway_from_file(&file).await;
    let b = common::gateway_from_file(&file).await;

    let m = metrics_text(&a).await;
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(&m, &format!("gateway_build_info{{version=\"{version}\"}}")),
        Some(1.0),
        "{m}"
    );
    let hash = config_hash(&m);
    assert_eq!(hash.len(), 16);
    assert_eq!(
        hash,
        config_hash(&metrics_text(&b).await),
        "same files, same hash"
    );
    assert_eq!(
        value(&m, "gateway_config_reloads_total{result=\"success\"}"),
        Some(0.0)
    );
    assert_eq!(
        value(&m, "gateway_config_reloads_total{result=\"failure\"}"),
        Some(0.0)
    );
    assert_eq!(
        value(&m, "gateway_config_last_reload_successful"),
        Some(1.0)
    );
    let started = value(&m, "gateway_config_last_reload_success_timestamp_seconds").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(started > now - 600.0 && started <= now + 1.0, "{started}");

    // A changed file, reloaded on one instance only: the two now report different hashes.
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nmode = \"translate\"\n").unwrap();
    assert_eq!(reload(&a).await, 200);
    let m = metrics_text(&a).await;
    let changed = config_hash(&m);
    assert_ne!(changed, hash);
    assert_eq!(config_hash(&metrics_text(&b).await), hash);
    assert_eq!(
        value(&m, "gateway_config_reloads_total{result=\"success\"}"),
        Some(1.0)
    );

    // A broken file is refused: counted, flagged, and the running hash stays.
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nmode = \"sideways\"\n").unwrap();
    assert_eq!(reload(&a).await, 400);
    let m = metrics_text(&a).await;
    assert_eq!(
        value(&m, "gateway_config_reloads_total{result=\"failure\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "gateway_config_last_reload_successful"),
        Some(0.0)
    );
    assert_eq!(config_hash(&m), changed);
}

struct Fakes {
    v4: MockServer,
    staging: MockServer,
    legacy: MockServer,
}

async fn fakes(staging_answer: ResponseTemplate) -> Fakes {
    let f = Fakes {
        v4: MockServer::start().await,
        staging: MockServer::start().await,
        legacy: MockServer::start().await,
    };
    mount_method(&f.staging, "PATCH", staging_answer).await;
    legacy_accepts(&f.legacy, "1001", "r").await;
    f
}

fn shadow_config(f: &Fakes, shadow_extra: &str, route_extra: &str) -> String {
    format!(
        "mode = \"shadow\"\nuser_api_url = \"{}\"\nregistry_api_url = \"{}\"\n[shadow]\norchestrator_url = \"{}\"\n{shadow_extra}\n[shadow.routes.\"user-api\"]\nwrites = true\n{route_extra}\n",
        f.legacy.uri(),
        f.legacy.uri(),
        f.staging.uri()
    )
}

async fn put_password(gw: &legacy_gateway::Running) {
    let status = put_request(&gw.url(), "1001")
        .body(r#"{"Password":"Abcdefg1"}"#)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

/// Scrapes until `series` has `want`, or fails with the last scrape.
async fn until(gw: &legacy_gateway::Running, series: &str, want: f64) -> String {
    let mut m = String::new();
    for _ in 0..300 {
        m = metrics_text(gw).await;
        if value(&m, series) == Some(want) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{series} never became {want}: {m}");
}

#[tokio::test]
async fn shadow_queue_depth_and_capacity_are_sampled_at_scrape_time() {
    let f = fakes(ResponseTemplate::new(200).set_delay(Duration::from_secs(30))).await;
    let cfg = shadow_config(&f, "max_concurrency = 1\nmax_queue = 3", "");
    let gw = common::gateway_with(&cfg, Some(&f.v4.uri())).await;
    let m = metrics_text(&gw).await;
    assert_eq!(value(&m, "gateway_shadow_queue_depth"), Some(0.0));
    assert_eq!(value(&m, "gateway_shadow_queue_capacity"), Some(4.0));
    put_password(&gw).await;
    put_password(&gw).await;
    // One copy hangs on the staging v4, the second waits for its permit: both count.
    until(&gw, "gateway_shadow_queue_depth", 2.0).await;
    // A third fits (capacity 4); the depth stays there while the staging v4 hangs.
    put_password(&gw).await;
    until(&gw, "gateway_shadow_queue_depth", 3.0).await;
}

#[tokio::test]
async fn kill_switch_state_per_route() {
    let failing =
        ResponseTemplate::new(500).set_body_json(v4("E500", "Internal Server Error", "Error"));
    let f = fakes(failing).await;
    let cfg = shadow_config(
        &f,
        "",
        "kill_window = 1\nkill_error_rate_percent = 50\nkill_cooldown_ms = 600000",
    );
    let gw = common::gateway_with(&cfg, Some(&f.v4.uri())).await;
    let m = metrics_text(&gw).await;
    assert_eq!(
        value(&m, "gateway_shadow_kill_switch_engaged{route=\"user-api\"}"),
        Some(0.0)
    );
    assert_eq!(
        value(&m, "gateway_shadow_kill_switch_engaged{route=\"registry\"}"),
        Some(0.0)
    );
    put_password(&gw).await;
    let m = until(
        &gw,
        "gateway_shadow_kill_switch_engaged{route=\"user-api\"}",
        1.0,
    )
    .await;
    assert_eq!(
        value(&m, "gateway_shadow_kill_switch_engaged{route=\"registry\"}"),
        Some(0.0)
    );
}
