//! Item 15 of issue #13: URLs in the configuration that carry `user:password@` are logged
//! with the credentials masked.

mod common;

use common::binary::GatewayProcess;

#[tokio::test]
async fn credentials_in_configured_urls_are_masked_in_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    // Plain HTTP outside loopback: the start-up warning names the URL as well.
    std::fs::write(
        &config,
        "orchestrator_url = \"http://bob:hunter2-secret@v4.invalid:8081/\"\n",
    )
    .unwrap();
    let gw = GatewayProcess::start(&config, dir.path(), &[], "info").await;
    let (out, err) = gw.stop().await;
    let all = format!("{out}{err}");
    assert!(
        all.contains("http://***:***@v4.invalid:8081/"),
        "the URL is still logged, masked: {all}"
    );
    assert!(all.contains("plain-HTTP upstream"), "{all}");
    assert!(!all.contains("hunter2-secret"), "{all}");
    assert!(!all.contains("bob:"), "{all}");

    // A JWKS URL that cannot be fetched: the error names it, masked.
    let dead = common::dead_url().replace("http://", "http://jw:ks-secret@");
    std::fs::write(
        &config,
        format!("[identity]\njwks_url = \"{dead}/jwks.json\"\n"),
    )
    .unwrap();
    let o = std::process::Command::new(common::binary::BIN)
        .args(["check", "--config", config.to_str().unwrap()])
        .env_remove("LEGACY_GATEWAY_JWT_SECRET")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(text.contains("***:***@"), "{text}");
    assert!(!text.contains("ks-secret"), "{text}");
}
