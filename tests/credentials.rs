//! URLs in the configuration that carry `user:password@` are logged
//! with the credentials masked.

mod common;

use common::binary::{Binary, GatewayProcess};

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
    let o = Binary::new(["check", "--config", config.to_str().unwrap()]).run();
    let text = &o.stderr;
    assert!(!o.success());
    assert!(text.contains("***:***@"), "{text}");
    assert!(!text.contains("ks-secret"), "{text}");
}

/// A verifying gateway without `identity.audience` or `identity.issuer` says at start-up that
/// they are not checked (an operator may not know a token is accepted for any audience), and
/// `LEGACY_GATEWAY_ADMIN_LISTEN` moves the admin listener.
#[tokio::test]
async fn start_up_warns_about_unchecked_claims_and_the_admin_address_comes_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        "[identity]\nhmac_secret = \"0123456789abcdef0123456789abcdef\"\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // No --admin-listen: the address must come from the environment.
    let gw = Binary::new(["serve", "--listen", "127.0.0.1:0"])
        .config(&config)
        .env("LEGACY_GATEWAY_ADMIN_LISTEN", format!("127.0.0.1:{port}"))
        .rust_log("info")
        .start(dir.path())
        .await;
    assert_eq!(gw.admin_addr.port(), port);
    let metrics = common::client()
        .get(format!("http://127.0.0.1:{port}/_gateway/metrics"))
        .send()
        .await
        .map(|r| r.status().as_u16());
    let (_, log) = gw.stop().await;
    assert_eq!(metrics.ok(), Some(200), "{log}");
    assert!(log.contains("identity.audience is not set"), "{log}");
    assert!(log.contains("identity.issuer is not set"), "{log}");
}

/// A mistyped secret is not echoed into the error that names its line: the error reaches
/// terminals, CI logs and crash reports. Other keys keep their value in the message.
#[test]
fn a_mistyped_secret_is_not_echoed_in_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    for (text, line) in [
        ("\n[identity]\nhmac_secret = 987654321987\n", 3),
        ("[identity]\nhmac_secret = 9876543219.87\n", 2),
    ] {
        std::fs::write(&config, text).unwrap();
        for command in ["check", "serve"] {
            let o = Binary::new([command, "--config", config.to_str().unwrap()]).run();
            let all = format!("{}{}", o.stdout, o.stderr);
            assert!(!o.success(), "{command}: {all}");
            assert!(
                all.contains(&format!(
                    "gateway.toml:{line}: field `identity.hmac_secret`"
                )),
                "{command}: {all}"
            );
            assert!(all.contains("invalid type"), "{command}: {all}");
            assert!(!all.contains("987654321"), "{command}: {all}");
        }
    }
    std::fs::write(&config, "[limits]\nbody_bytes = \"12ab34\"\n").unwrap();
    let o = Binary::new(["check", "--config", config.to_str().unwrap()]).run();
    assert!(o.stderr.contains("12ab34"), "{}", o.stderr);
}

/// The trace collector's credentials in its endpoint URL are masked like an upstream's.
#[tokio::test]
async fn credentials_in_the_otlp_endpoint_are_masked_in_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, "").unwrap();
    let gw = Binary::serve()
        .config(&config)
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!(
                "{}/",
                common::dead_url().replace("http://", "http://otel:c0llector-secret@")
            ),
        )
        .rust_log("info")
        .start(dir.path())
        .await;
    let (out, err) = gw.stop().await;
    let all = format!("{out}{err}");
    assert!(all.contains("exporting traces over OTLP"), "{all}");
    assert!(all.contains("***:***@"), "{all}");
    assert!(!all.contains("c0llector-secret"), "{all}");
}
