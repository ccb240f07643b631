//! What `deploy/` promises about the gateway, checked against the gateway itself: every
//! metric the Grafana dashboard and the alert rules query exists in a real scrape of
//! `/_gateway/metrics` after traffic through every mode, and the Kubernetes ConfigMap's
//! configuration passes `legacy-gateway check`. (Schemas and rules: deploy/validate.sh.)

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::fakes::legacy_accepts;
use common::fakes::password_changes;
use common::put_as;
use common::{client, metrics_text, mount, v4};
use wiremock::{MockServer, ResponseTemplate};

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");

/// Every `gateway_…` metric name in a text (PromQL inside JSON or YAML).
fn names_in(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\bgateway_[a-z0-9_]+").unwrap();
    re.find_iter(text).map(|m| m.as_str().to_string()).collect()
}

/// The sample names of a scrape: series that exist, not only declared families.
fn sampled(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_metric_the_dashboard_and_alerts_use_is_exported() {
    let dashboard =
        std::fs::read_to_string(format!("{DEPLOY}/observability/grafana-dashboard.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard is JSON");
    let exprs: Vec<&str> = parsed["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() >= 20, "the dashboard has its queries");
    let rules = std::fs::read_to_string(format!("{DEPLOY}/observability/alerts.yaml")).unwrap();
    let mut wanted = names_in(&exprs.join("\n"));
    wanted.extend(names_in(&rules));
    let analysis =
        std::fs::read_to_string(format!("{DEPLOY}/argo-rollouts/analysistemplate.yaml")).unwrap();
    wanted.extend(names_in(&analysis));
    assert!(wanted.len() >= 12, "{wanted:?}");

    // Traffic through every mode: CB translated (audit, v4 calls, a fallback row), CA shadowed
    // (copies to a staging v4 that answers differently), a refusal (4xx), one copy dropped.
    let live = MockServer::start().await;
    let staging = MockServer::start().await;
    let legacy = MockServer::start().await;
    password_changes(&live, "1001").await;
    mount(
        &staging,
        "PATCH",
        "/v4/Users/1001/Password",
        ResponseTemplate::new(400).set_body_json(v4(
            "E400_00",
            "Invalid InputModel - nope",
            "Error",
        )),
    )
    .await;
    legacy_accepts(&legacy, "1001", "r").await;
    let cfg = format!(
        "user_api_url = \"{l}\"\nregistry_api_url = \"{l}\"\n[[modes]]\nroute = \"user-api\"\ntenant = \"CA\"\nmode = \"shadow\"\n[shadow]\norchestrator_url = \"{s}\"\n[shadow.routes.\"user-api\"]\nwrites = true\n[fallback]\n",
        l = legacy.uri(),
        s = staging.uri()
    );
    let gw = common::gateway_with(&cfg, Some(&live.uri())).await;
    for tenant in ["CA", "CB"] {
        let status = put_as(&gw.url(), "1001", tenant)
            .body(r#"{"Password":"Abcdefg1"}"#)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{tenant}");
    }
    let refused = client()
        .put(format!("{}/User/1001", gw.url()))
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    // No `Authorization`: refused with 401 before anything else is checked, so a probe without
    // the token learns nothing about the endpoints behind it.
    assert_eq!(refused, 401);

    let mut missing = BTreeSet::new();
    for _ in 0..200 {
        let have = sampled(&metrics_text(&gw).await);
        missing = wanted.difference(&have).cloned().collect();
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        missing.is_empty(),
        "queried by deploy/observability but not exported: {missing:?}"
    );
}

#[test]
fn the_configmap_configuration_passes_check() {
    let text = std::fs::read_to_string(format!("{DEPLOY}/kubernetes/configmap.yaml")).unwrap();
    // The block scalar under `gateway.toml: |`, indented four spaces.
    let toml: String = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("gateway.toml: |"))
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert!(toml.contains("orchestrator_url"), "{toml}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, &toml).unwrap();
    // On the Deployment's public listener: the orchestrator URL must be there.
    let out = common::binary::Binary::new(["check", "--config"])
        .arg(&file)
        .env("LEGACY_GATEWAY_LISTEN", "0.0.0.0:8080")
        .run();
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("serves https://users-orchestrator"),
        "{}",
        out.stdout
    );
}

/// The image is rebuilt from pinned base images, and leaves no anonymous volume behind.
#[test]
fn the_dockerfile_pins_its_base_images_and_declares_no_volume() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile");
    let text = std::fs::read_to_string(root).unwrap();
    let instructions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert!(
        !instructions.iter().any(|l| l.starts_with("VOLUME")),
        "{text}"
    );
    let images: Vec<&str> = instructions
        .iter()
        .filter_map(|l| l.strip_prefix("ARG "))
        .filter_map(|a| a.split_once('=').map(|(_, v)| v))
        .filter(|v| v.contains(':'))
        .collect();
    assert_eq!(images.len(), 2, "{text}");
    // A full version (x.y or x.y.z) in the tag, not `1-bookworm`, `bookworm-slim` or `latest`.
    let pinned = regex::Regex::new(r"^[a-z/]+:\d+\.\d+(\.\d+)?-[a-z-]+$").unwrap();
    for image in images {
        assert!(pinned.is_match(image), "{image} is not pinned by version");
    }
    let from: Vec<&str> = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .copied()
        .collect();
    assert_eq!(
        from,
        ["FROM ${RUST_IMAGE} AS build", "FROM ${RUNTIME_IMAGE}"],
        "every FROM takes a pinned ARG"
    );
}
