//! `serve --watch-config`: the running binary reloads when its configuration file changes,
//! edited in place and swapped the way Kubernetes updates a mounted ConfigMap (a new
//! directory behind the `..data` symlink).

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use common::binary::{Binary, GatewayProcess};
use common::fakes::legacy_accepts;
use common::put_request;
use serde_json::Value;
use wiremock::MockServer;

/// `mode` for every route; legacy backends point at the fake.
fn config(mode: &str, legacy: &str) -> String {
    format!("mode = \"{mode}\"\nuser_api_url = \"{legacy}\"\nregistry_api_url = \"{legacy}\"\n")
}

/// Who answered `PUT /User/1001`: the fake legacy backend or the gateway's translation.
async fn answered_by(url: &str) -> &'static str {
    let resp = put_request(url, "1001")
        .body(r#"{"FirstName":"Ada"}"#)
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    if body["RequestId"] == "from-the-legacy-backend" {
        "legacy"
    } else {
        assert_eq!(body["Code"], 0, "{body}");
        "translate"
    }
}

async fn until_answered_by(url: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while answered_by(url).await != want {
        assert!(Instant::now() < deadline, "never answered by {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A ConfigMap-style mount: `dir/gateway.toml -> ..data/gateway.toml`, `..data -> version`.
fn publish(dir: &Path, version: &str, text: &str) {
    let v = dir.join(version);
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join("gateway.toml"), text).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(version, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    if !dir.join("gateway.toml").exists() {
        symlink("..data/gateway.toml", dir.join("gateway.toml")).unwrap();
    }
}

#[tokio::test]
async fn a_changed_configuration_file_takes_effect_without_a_signal() {
    let legacy = MockServer::start().await;
    legacy_accepts(&legacy, "1001", "from-the-legacy-backend").await;
    let logs = tempfile::tempdir().unwrap();
    let mount_dir = tempfile::tempdir().unwrap();
    publish(
        mount_dir.path(),
        "..v1",
        &config("translate", &legacy.uri()),
    );
    let file = mount_dir.path().join("gateway.toml");
    let gw = GatewayProcess::start(&file, logs.path(), &["--watch-config"], "info").await;
    let url = gw.url();
    assert_eq!(answered_by(&url).await, "translate");

    // An edit in place (through the symlink, as an operator's editor would).
    std::fs::write(&file, config("legacy", &legacy.uri())).unwrap();
    until_answered_by(&url, "legacy").await;

    // The kubelet's update: a new directory, the ..data link swapped atomically.
    publish(
        mount_dir.path(),
        "..v2",
        &config("translate", &legacy.uri()),
    );
    until_answered_by(&url, "translate").await;

    // A broken update is refused once, and the running configuration keeps serving.
    publish(mount_dir.path(), "..v3", "mode = \"sideways\"\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = common::metrics_text_at(&format!("http://{}", gw.admin_addr)).await;
        if m.contains("gateway_config_reloads_total{result=\"failure\"} 1") {
            assert!(
                m.contains("gateway_config_reloads_total{result=\"success\"} 2"),
                "{m}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broken file was never tried: {m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answered_by(&url).await, "translate");
    let (_, stderr) = gw.stop().await;
    assert!(stderr.contains("watching the configuration"), "{stderr}");
    assert!(stderr.contains("was refused"), "{stderr}");
}

/// Polls the admin listener until `gateway_config_reloads_total{result="success"}` is `n`.
async fn until_reloads(gw: &GatewayProcess, n: u32) {
    let want = format!("gateway_config_reloads_total{{result=\"success\"}} {n}\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = common::metrics_text_at(&format!("http://{}", gw.admin_addr)).await;
        if m.contains(&want) {
            return;
        }
        assert!(Instant::now() < deadline, "never {want}: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A file named relative to the working directory: its folder is `.` and its absolute path,
/// one directory under two names, watched once. Each change is one reload and one log line.
#[tokio::test]
async fn a_change_reloads_once_with_a_relative_path() {
    let logs = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, "log_format = \"text\"\n").unwrap();
    let gw = Binary::serve()
        .current_dir(dir.path())
        .args(["--config", "gateway.toml", "--watch-config"])
        .start(logs.path())
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !gw.stderr_so_far().contains("watching the configuration") {
        assert!(Instant::now() < deadline, "{}", gw.stderr_so_far());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::fs::write(&file, "log_format = \"text\"\n# one\n").unwrap();
    until_reloads(&gw, 1).await;
    // The second change is a barrier: changes are handled in order, so a second reload of
    // the first one would have been counted before it.
    std::fs::write(&file, "log_format = \"text\"\n# two\n").unwrap();
    until_reloads(&gw, 2).await;
    let (_, stderr) = gw.stop().await;
    let watching = stderr
        .lines()
        .find(|l| l.contains("watching the configuration"))
        .unwrap();
    assert_eq!(
        watching.matches('"').count(),
        2,
        "one directory: {watching}"
    );
    let reloaded = stderr.lines().filter(|l| l.contains("reloaded")).count();
    assert_eq!(reloaded, 2, "one line per reload: {stderr}");
}

#[tokio::test]
async fn watching_needs_a_configuration_file() {
    let out = Binary::new(["serve", "--listen", "127.0.0.1:0", "--watch-config"]).run();
    assert!(!out.success());
    assert!(out.stderr.contains("needs a configuration file"));
    // The same from the environment (any boolish value).
    let out = Binary::new(["serve", "--listen", "127.0.0.1:0"])
        .env("LEGACY_GATEWAY_WATCH_CONFIG", "1")
        .run();
    assert!(!out.success());
    assert!(out.stderr.contains("needs a configuration file"));
}
