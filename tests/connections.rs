//! Connections, not requests: idle HTTP/2 connections are closed as idle HTTP/1 ones are, so
//! they cannot hold the connection permits; a request in progress keeps its connection; and
//! one address belongs to one process.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use common::binary::Binary;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// Hang guards: the waits below end long before these unless the behaviour is broken.
const CLOSE_GUARD: Duration = Duration::from_secs(30);

type H2Sender = hyper::client::conn::http2::SendRequest<Empty<Bytes>>;

/// An HTTP/2 connection to `addr`: the sender, and a channel that fires once the server has
/// closed the connection. Its driver answers the server's pings, as a live client does.
async fn h2_connect(addr: std::net::SocketAddr) -> (H2Sender, tokio::sync::oneshot::Receiver<()>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let (closed, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = conn.await;
        let _ = closed.send(());
    });
    (sender, closed_rx)
}

async fn h2_get(sender: &mut H2Sender, uri: &str) -> Result<u16, hyper::Error> {
    sender.ready().await?;
    let req = http::Request::get(uri).body(Empty::new()).unwrap();
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    resp.into_body().collect().await?;
    Ok(status)
}

/// An HTTP/1.1 request on a connection of its own.
async fn h1_get(url: &str) -> reqwest::StatusCode {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .http1_only()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn idle_http2_connections_are_closed_and_cannot_starve_http1_clients() {
    // Five connections in all; four idle HTTP/2 ones would hold four of them forever.
    let gw = common::gateway_with(
        "[limits]\nmax_connections = 5\nheader_read_timeout_ms = 1000\n",
        None,
    )
    .await;
    let healthz = format!("http://{}/_gateway/healthz", gw.addr);
    let mut idle = Vec::new();
    // Three that made a request and went quiet, and one that only said hello (its preface
    // and SETTINGS): the attack as reported.
    for _ in 0..3 {
        let (mut sender, closed) = h2_connect(gw.addr).await;
        assert_eq!(h2_get(&mut sender, &healthz).await.unwrap(), 200);
        idle.push((sender, closed));
    }
    idle.push(h2_connect(gw.addr).await);

    // HTTP/1 clients are served while the idle HTTP/2 connections are held (on the one
    // permit left: one keep-alive connection).
    let h1 = reqwest::Client::builder().http1_only().build().unwrap();
    for i in 0..3 {
        let status = h1.get(&healthz).send().await.unwrap().status();
        assert_eq!(status, 200, "request {i}");
    }
    drop(h1);

    // The server closes every idle HTTP/2 connection (their clients keep answering pings
    // and never close them).
    for (i, (mut sender, closed)) in idle.into_iter().enumerate() {
        tokio::time::timeout(CLOSE_GUARD, closed)
            .await
            .unwrap_or_else(|_| panic!("idle HTTP/2 connection {i} is still open"))
            .unwrap();
        assert!(
            h2_get(&mut sender, &healthz).await.is_err(),
            "connection {i} still takes requests after being closed"
        );
    }

    // Their permits came back: four HTTP/1 connections at once are all served. A client sees
    // its connection closed a moment before the server's task for it ends and returns the
    // permit (the dropped HTTP/1 client's too), so the four are retried on new connections
    // until they all get through; the hang guard fails the test if the permits never return.
    let all_served = async {
        loop {
            let clients: Vec<_> = (0..4)
                .map(|_| {
                    reqwest::Client::builder()
                        .http1_only()
                        .pool_idle_timeout(Duration::from_secs(60))
                        .build()
                        .unwrap()
                })
                .collect();
            let answers =
                futures_util::future::join_all(clients.iter().map(|c| c.get(&healthz).send()))
                    .await;
            let statuses: Vec<u16> = answers
                .into_iter()
                .map(|a| a.unwrap().status().as_u16())
                .collect();
            if statuses.iter().all(|s| *s == 200) {
                break;
            }
            assert!(
                statuses.iter().all(|s| *s == 200 || *s == 503),
                "{statuses:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(CLOSE_GUARD, all_served)
        .await
        .expect("the idle connections' permits came back");
    gw.shutdown().await;
}

#[tokio::test]
async fn an_http2_connection_with_a_request_in_progress_is_not_idle() {
    // A handler slower than the idle timeout: the connection must stay open for it and for
    // the next request sent right after its answer.
    let idle = Duration::from_secs(2);
    let service = tower::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
        if req.uri().path() == "/slow" {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"done"))))
    });
    let (listener, addr) = legacy_gateway::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let opts = legacy_gateway::server::ServeOptions {
        header_read_timeout: idle,
        ..Default::default()
    };
    tokio::spawn(legacy_gateway::server::serve(
        listener,
        service,
        |_: &_| http::Response::new(Full::new(Bytes::from_static(b"busy"))),
        opts,
        std::future::pending(),
    ));

    let (mut sender, closed) = h2_connect(addr).await;
    let slow = format!("http://{addr}/slow");
    let answered = tokio::time::timeout(CLOSE_GUARD, h2_get(&mut sender, &slow)).await;
    assert_eq!(answered.expect("hang guard").unwrap(), 200);
    assert_eq!(
        h2_get(&mut sender, &format!("http://{addr}/next"))
            .await
            .expect("the connection was kept while its request ran"),
        200
    );
    // Idle from here on: closed by the server.
    tokio::time::timeout(CLOSE_GUARD, closed)
        .await
        .expect("closed once idle")
        .unwrap();
}

#[tokio::test]
async fn a_second_serve_on_the_same_client_or_admin_address_refuses_to_start() {
    let logs = tempfile::tempdir().unwrap();
    let first = Binary::serve().start(logs.path()).await;

    for (listen, admin, taken) in [
        (
            first.addr.to_string(),
            "127.0.0.1:0".to_string(),
            first.addr,
        ),
        (
            "127.0.0.1:0".to_string(),
            first.admin_addr.to_string(),
            first.admin_addr,
        ),
    ] {
        let second = Binary::new(["serve", "--listen", &listen, "--admin-listen", &admin])
            .rust_log("info")
            .run();
        assert_ne!(
            second.code(),
            0,
            "a second serve started: {}",
            second.stderr
        );
        assert!(
            second
                .stderr
                .contains(&format!("another process already listens on {taken}")),
            "the error names the address and the cause: {}",
            second.stderr
        );
        assert!(
            !second.stderr.contains("legacy-gateway listening"),
            "{}",
            second.stderr
        );
    }

    // Every new connection still reaches the first process (none went to a second one).
    for _ in 0..10 {
        assert_eq!(
            h1_get(&format!("{}/_gateway/healthz", first.url())).await,
            200
        );
    }

    // Once the first has stopped, the address is free again.
    let addr = first.addr;
    first.stop().await;
    let logs = tempfile::tempdir().unwrap();
    let again = Binary::new([
        "serve",
        "--listen",
        &addr.to_string(),
        "--admin-listen",
        "127.0.0.1:0",
    ])
    .rust_log("info")
    .start(logs.path())
    .await;
    assert_eq!(again.addr, addr);
    again.stop().await;
}
