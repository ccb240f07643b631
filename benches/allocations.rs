//! Heap allocations per request, counted by a counting allocator (dhat's): how many blocks
//! the gateway allocates for one translated password change (`PUT /User/1001
//! {"Password":…}` → `PATCH /v4/Users/1001/Password`), and for one call in legacy mode.
//!
//! Everything runs in this process over 127.0.0.1: a small hyper upstream answering the v4
//! envelope, the gateway (one worker) in front of it, and a keep-alive client writing fixed
//! request bytes. The client and the upstream allocate too, so each figure is a difference:
//! the same requests through the gateway, minus the same requests sent to the upstream
//! directly. Instructions and allocations of the bare hyper proxy (`../shared/tools/floor`)
//! are counted with callgrind beside it (`bench/README.md`).
//!
//! `cargo bench --bench allocations`

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const ENVELOPE: &str = r#"{"message":{"code":"UsersOrchestrator_S200_11","text":"Update password completed.","type":"Success"},"meta":null}"#;
const REQUESTS: u64 = 2_000;
const WARM_UP: u64 = 200;

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let upstream = upstream().await;
        let put = |path: &str, body: &str| {
            format!(
                "PUT {path} HTTP/1.1\r\nHost: bench.test\r\nContent-Type: application/json\r\nAuthorization: Bearer eyJ.bench.token\r\nX-SourceSystem: bench\r\nX-ClientCode: C1\r\nX-PaperCode: P1\r\nX-ClientGroupCode: G1\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let direct = per_request(upstream, &put("/v4/Users/1001/Password", r#"{"password":"Str0ng-Passw0rd"}"#)).await;
        let legacy_request = put("/User/1001", r#"{"Password":"Str0ng-Passw0rd"}"#);
        let translate = gateway(upstream, "").await;
        let through = per_request(translate, &legacy_request).await;
        let legacy = gateway(
            upstream,
            &format!("mode = \"legacy\"\nuser_api_url = \"http://{upstream}\"\nregistry_api_url = \"http://{upstream}\"\n"),
        )
        .await;
        let passed = per_request(legacy, &legacy_request).await;
        println!("allocations per request ({REQUESTS} requests, after {WARM_UP} to warm up):");
        println!("  client and upstream alone:  {direct:.1}");
        println!("  gateway, translate:         {:.1}", through - direct);
        println!("  gateway, legacy mode:       {:.1}", passed - direct);
    });
}

/// Heap blocks allocated in the whole process per request, over `REQUESTS` requests on one
/// keep-alive connection.
async fn per_request(addr: SocketAddr, request: &str) -> f64 {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    conn.set_nodelay(true).expect("nodelay");
    let mut buf = vec![0u8; 16 * 1024];
    for _ in 0..WARM_UP {
        exchange(&mut conn, request.as_bytes(), &mut buf).await;
    }
    let before = dhat::HeapStats::get().total_blocks;
    for _ in 0..REQUESTS {
        exchange(&mut conn, request.as_bytes(), &mut buf).await;
    }
    let after = dhat::HeapStats::get().total_blocks;
    (after - before) as f64 / REQUESTS as f64
}

/// One request written, one answer read to its end (by `Content-Length`); 200 required.
async fn exchange(conn: &mut TcpStream, request: &[u8], buf: &mut [u8]) {
    conn.write_all(request).await.expect("write");
    let mut filled = 0;
    loop {
        let n = conn.read(&mut buf[filled..]).await.expect("read");
        assert!(n > 0, "connection closed");
        filled += n;
        let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = std::str::from_utf8(&buf[..end]).expect("head");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .expect("content-length");
        while filled < end + 4 + length {
            let n = conn.read(&mut buf[filled..]).await.expect("read body");
            assert!(n > 0, "connection closed");
            filled += n;
        }
        return;
    }
}

/// The v4 stand-in: every request answered with the password change's success envelope.
async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    let mut resp =
                        http::Response::new(Full::new(Bytes::from_static(ENVELOPE.as_bytes())));
                    resp.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, std::convert::Infallible>(resp)
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    addr
}

/// A gateway with one worker in front of `upstream`, with `extra` configuration.
async fn gateway(upstream: SocketAddr, extra: &str) -> SocketAddr {
    let text = format!(
        "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 1\norchestrator_url = \"http://{upstream}\"\n{extra}"
    );
    let config = legacy_gateway::config::Config::from_toml(
        "bench.toml",
        &text,
        &legacy_gateway::config::Overrides::default(),
    )
    .expect("bench configuration");
    let mappings = legacy_gateway::mapping::Mappings::embedded().expect("mappings");
    let running = legacy_gateway::start(config, mappings, std::future::pending())
        .await
        .expect("gateway starts");
    let addr = running.addr;
    // Kept running until the process ends.
    std::mem::forget(running);
    addr
}
