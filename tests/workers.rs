//! Thread-per-core serving: several workers, each with its own runtime and
//! listening socket on the one address, serve every connection, count each request once in
//! the metrics added up from their shards, and all stop on shutdown.

mod common;

use std::time::Duration;

use common::binary::GatewayProcess;

/// Names of this process's threads that are gateway workers.
fn worker_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .filter(|n| n.starts_with("gw-worker-"))
        .collect()
}

#[tokio::test]
async fn four_workers_serve_every_connection_count_once_and_stop_together() {
    let gw = common::gateway_with("workers = 4\n", None).await;
    let mut names = worker_threads();
    names.sort();
    assert_eq!(
        names,
        ["gw-worker-0", "gw-worker-1", "gw-worker-2", "gw-worker-3"],
        "one thread per worker"
    );

    // A new connection per request: the kernel spreads them over the four sockets.
    let calls = (0..40).map(|_| common::put_user(&gw, "1001", r#"{"FirstName":"Ada"}"#));
    for a in futures_util::future::join_all(calls).await {
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.json["Code"], 0, "{}", a.text);
    }
    let text = common::metrics_text(&gw).await;
    assert!(
        text.lines()
            .any(|l| l == r#"gateway_requests_total{route="user-api",status="200",tenant="other",mode="translate"} 40"#),
        "every request counted once across the shards: {text}"
    );
    assert!(
        text.lines().any(|l| l == "gateway_in_flight_requests 0"),
        "nothing in flight (the scrape is on the admin listener, not counted): {text}"
    );

    gw.shutdown().await;
    // Each worker's thread ends once its runtime has finished its connections.
    for _ in 0..100 {
        if worker_threads().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(worker_threads().is_empty(), "{:?}", worker_threads());
}

#[tokio::test]
async fn workers_zero_is_refused_naming_the_field() {
    let err = legacy_gateway::config::Config::from_toml(
        "gw.toml",
        "listen = \"127.0.0.1:0\"\nworkers = 0\n",
        &Default::default(),
    )
    .expect_err("zero workers cannot serve");
    let text = err.to_string();
    assert!(
        text.contains("gw.toml:2") && text.contains("workers"),
        "{text}"
    );
}

/// `--workers` reaches the binary's start-up line and the gateway answers on every worker.
#[tokio::test]
async fn the_workers_flag_sets_the_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gw.toml");
    std::fs::write(&config, "").unwrap();
    let gw = GatewayProcess::start(&config, dir.path(), &["--workers", "3"], "info").await;
    for _ in 0..6 {
        let resp = common::client()
            .get(format!("{}/_gateway/healthz", gw.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let (_, stderr) = gw.stop().await;
    let line = stderr
        .lines()
        .find(|l| l.contains("legacy-gateway listening"))
        .unwrap();
    assert!(line.contains("workers=3"), "{line}");
}
