//! Memory given back when connections close: the gateway's resident set, after thousands of
//! keep-alive connections made a request each and closed, falls back near where it was before
//! them while the gateway sits idle, with no further traffic to prompt the allocator.
//!
//! The gateway runs as the real binary (its own process, its own allocator), and its resident
//! set is read from `/proc/PID/status`: Linux only, skipped elsewhere with a message.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::binary::Binary;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wiremock::MockServer;

/// Keep-alive connections held at once (fewer when this process may not open that many).
const CONNECTIONS: usize = 2000;
/// Connections opened at once while filling up.
const PARALLEL: usize = 50;
/// Hang guard on the wait for the memory to come back: it comes back within a few seconds of
/// the close (a worker's quiet period is one second) unless the behaviour is broken.
const GIVEN_BACK_GUARD: Duration = Duration::from_secs(40);

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The soft limit on this process's open files (the gateway inherits it).
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    soft.parse().ok().or(Some(usize::MAX))
}

fn password_change() -> Vec<u8> {
    let body = format!(r#"{{"Password":"{}"}}"#, common::PASSWORD);
    format!(
        "PUT /User/1001 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Authorization: {}\r\nX-SourceSystem: legacy-user-api\r\nX-ClientCode: CA\r\n\
         X-PaperCode: PA\r\nX-ClientGroupCode: GA\r\nContent-Length: {}\r\n\r\n{body}",
        common::TOKEN,
        body.len()
    )
    .into_bytes()
}

/// A connection that sent one password change and read its answer (framed by
/// `Content-Length`, as the gateway's are), kept open; and the answer's status.
async fn keep_alive_after_one_request(addr: SocketAddr, request: &[u8]) -> (TcpStream, u16) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("send the request");
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).await.expect("read the answer");
        assert!(n > 0, "the gateway closed the connection before answering");
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() < end + 4 + length {
            continue;
        }
        let status = head.split(' ').nth(1).and_then(|c| c.parse().ok());
        return (s, status.unwrap_or(0));
    }
}

#[tokio::test]
async fn memory_of_closed_connections_is_given_back_while_the_gateway_is_idle() {
    if rss_kb(std::process::id()).is_none() {
        eprintln!("skipped: no /proc/PID/status to read the gateway's resident set from");
        return;
    }
    // Two descriptors per connection on this machine (ours and the gateway's, one each per
    // process), and some to spare.
    let connections =
        open_files_limit().map_or(CONNECTIONS, |n| CONNECTIONS.min(n.saturating_sub(256)));
    if connections < 1000 {
        eprintln!("skipped: {connections} open files allowed; `ulimit -n 2300` or more");
        return;
    }

    let v4 = MockServer::start().await;
    common::fakes::password_changes(&v4, "1001").await;
    let logs = tempfile::tempdir().unwrap();
    let gw = Binary::serve()
        .args(["--orchestrator", v4.uri().as_str(), "--workers", "1"])
        .rust_log("warn,legacy_gateway=info")
        .start(logs.path())
        .await;
    let pid = gw.pid();
    let request = password_change();

    // A few requests first, so that what the first ones build (the upstream pool, caches) is
    // not counted as the connections'; then the worker's first quiet period gives back what
    // the start freed, and the resident set is read.
    for _ in 0..8 {
        let (_, status) = keep_alive_after_one_request(gw.addr, &request).await;
        assert_eq!(status, 200, "{}", gw.stderr_so_far());
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = rss_kb(pid).unwrap();

    let mut held = Vec::with_capacity(connections);
    while held.len() < connections {
        let batch = PARALLEL.min(connections - held.len());
        let opened = futures_util::future::join_all(
            (0..batch).map(|_| keep_alive_after_one_request(gw.addr, &request)),
        )
        .await;
        for (s, status) in opened {
            assert_eq!(status, 200, "{}", gw.stderr_so_far());
            held.push(s);
        }
    }
    let open = rss_kb(pid).unwrap();
    let grown = open.saturating_sub(before);
    // What the test stands on: the connections cost memory worth giving back.
    assert!(
        grown >= 8 * 1024,
        "{connections} connections grew the gateway's RSS by {grown} kB only ({before} → {open} kB)"
    );

    drop(held);
    // Nothing more is sent: the memory must come back on its own. Three quarters of what the
    // connections took is the bar (what they left behind elsewhere, tokio's grown run queue
    // and the like, stays).
    let bar = before + grown / 4;
    let mut last = open;
    let given_back = tokio::time::timeout(GIVEN_BACK_GUARD, async {
        loop {
            last = rss_kb(pid).unwrap();
            if last <= bar {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(
        given_back.is_ok(),
        "RSS {before} kB before, {open} kB with {connections} connections open, still {last} kB \
         after they closed (at most {bar} kB expected)"
    );
    eprintln!(
        "RSS {before} kB before, {open} kB with {connections} connections open, {last} kB after \
         they closed"
    );
    gw.stop().await;
}
