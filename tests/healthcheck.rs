//! `legacy-gateway healthcheck` (the container probe) against a running gateway binary and
//! against a closed port, with the address from the flag, the environment and the file.

mod common;

use common::binary::{Binary, GatewayProcess, Ran};

fn healthcheck(args: &[&str], env: &[(&str, &str)]) -> Ran {
    Binary::new(["healthcheck"]).args(args).envs(env).run()
}

#[tokio::test]
async fn healthy_gateway_exits_zero_closed_port_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, "").unwrap();
    let gw = GatewayProcess::start(&config, dir.path(), &[], "info").await;
    let addr = gw.addr.to_string();

    let by_flag = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || healthcheck(&["--listen", &addr], &[])
    })
    .await
    .unwrap();
    assert!(by_flag.status.success(), "flag: {}", by_flag.stderr);
    assert!(by_flag.stdout.contains("healthy"));

    let by_env = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || healthcheck(&[], &[("LEGACY_GATEWAY_LISTEN", &addr)])
    })
    .await
    .unwrap();
    assert!(by_env.success(), "env: {by_env:?}");

    let file = dir.path().join("probe.toml");
    std::fs::write(&file, format!("listen = \"{addr}\"\n")).unwrap();
    let by_file = tokio::task::spawn_blocking({
        let file = file.clone();
        move || healthcheck(&["--config", file.to_str().unwrap()], &[])
    })
    .await
    .unwrap();
    assert!(by_file.success(), "file: {by_file:?}");

    // The same port once the gateway has stopped: nothing listens there any more.
    gw.stop().await;
    let closed = tokio::task::spawn_blocking(move || healthcheck(&["--listen", &addr], &[]))
        .await
        .unwrap();
    assert!(!closed.success(), "closed port: {closed:?}");
    let err = &closed.stderr;
    assert!(err.contains("unhealthy"), "{err}");
}

#[test]
fn a_port_that_is_not_the_gateway_exits_nonzero() {
    // Something answers, but not 200 on /_gateway/healthz: unhealthy.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    let out = healthcheck(&["--listen", &addr, "--timeout-ms", "5000"], &[]);
    server.join().unwrap();
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("404"));
}

#[test]
fn an_unspecified_bind_address_is_probed_on_loopback() {
    use legacy_gateway::healthcheck::probe_addr;
    assert_eq!(
        probe_addr("0.0.0.0:8080".parse().unwrap()).to_string(),
        "127.0.0.1:8080"
    );
    assert_eq!(
        probe_addr("[::]:8080".parse().unwrap()).to_string(),
        "[::1]:8080"
    );
    assert_eq!(
        probe_addr("10.1.2.3:8080".parse().unwrap()).to_string(),
        "10.1.2.3:8080"
    );
}
