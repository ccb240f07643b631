//! `conn-memory`: what an idle client connection costs the gateway, as the kernel counts it
//! (`VmRSS` of the gateway's process), and whether that memory comes back once the
//! connections close. Used by `bench/conn-memory.sh`; talks to 127.0.0.1 only and stops by
//! itself.
//!
//! ```text
//! conn-memory --addr 127.0.0.1:18083 --pid 1234 --connections 2000 [--protocol http1|h2-idle]
//! ```
//! `http1`: each connection sends one translated password change (`PUT /User/1001`), reads
//! its answer, and stays open, idle, as a browser's or an app's keep-alive connection does.
//! `h2-idle`: each connection sends the HTTP/2 preface and an empty SETTINGS frame, nothing
//! else. Prints one JSON object: RSS before, with every connection open, `--settle` seconds
//! after they closed and `--idle` seconds after (no traffic in between: what an idle gateway
//! gives back by itself), and the cost per connection.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Protocol {
    Http1,
    H2Idle,
}

#[derive(Parser, Debug)]
struct Args {
    /// The gateway's client address (loopback only).
    #[arg(long)]
    addr: SocketAddr,
    /// The gateway's process id, whose resident set is read.
    #[arg(long)]
    pid: u32,
    /// Idle connections held at once.
    #[arg(long, default_value_t = 2000)]
    connections: usize,
    #[arg(long, value_enum, default_value = "http1")]
    protocol: Protocol,
    /// Seconds to wait before each reading, so the gateway has handled what was sent (and,
    /// after the close, noticed it).
    #[arg(long, default_value_t = 2.0)]
    settle: f64,
    /// Seconds after the close at which the idle resident set is read (nothing is sent
    /// meanwhile); at least `--settle`.
    #[arg(long, default_value_t = 5.0)]
    idle: f64,
    /// Connections opened at once while filling up.
    #[arg(long, default_value_t = 32)]
    parallel: usize,
    /// Fill and close this many times: the resident set after a later round shows whether
    /// the memory kept after a close is reused by the next connections.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Free text copied into the output.
    #[arg(long, default_value = "")]
    label: String,
}

const REQUEST: &[u8] = b"PUT /User/1001 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer bench-token\r\nX-SourceSystem: x\r\nX-ClientCode: CA\r\nX-PaperCode: PA\r\nX-ClientGroupCode: GA\r\nContent-Length: 23\r\n\r\n{\"Password\":\"Abcdefg1\"}";

/// The client preface and an empty SETTINGS frame: a connection that says "HTTP/2" and
/// then nothing more.
const H2_HELLO: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Reads one answer framed by `Content-Length` (the gateway's answers are) and returns its
/// status code.
async fn read_answer(s: &mut TcpStream) -> std::io::Result<u16> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + length {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        return Ok(status);
    }
}

async fn open(addr: SocketAddr, protocol: Protocol) -> std::io::Result<(TcpStream, u16)> {
    let mut s = TcpStream::connect(addr).await?;
    match protocol {
        Protocol::Http1 => {
            s.write_all(REQUEST).await?;
            let status = read_answer(&mut s).await?;
            Ok((s, status))
        }
        Protocol::H2Idle => {
            s.write_all(H2_HELLO).await?;
            Ok((s, 0))
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    assert!(
        args.addr.ip().is_loopback(),
        "conn-memory talks to 127.0.0.1 only"
    );
    let settle = Duration::from_secs_f64(args.settle);
    let idle_rest = Duration::from_secs_f64((args.idle - args.settle).max(0.0));

    // One warm-up connection first, so that what starts lazily (the upstream pool, the
    // first answer's caches) is not charged to the idle connections.
    for _ in 0..8 {
        let (s, status) = open(args.addr, Protocol::Http1).await.expect("warm-up");
        assert_eq!(status, 200, "the warm-up request must be answered 200");
        drop(s);
    }
    tokio::time::sleep(settle).await;
    let before = rss_kb(args.pid);

    let mut rounds = Vec::with_capacity(args.rounds);
    let mut not_ok = 0usize;
    for _ in 0..args.rounds.max(1) {
        let mut held = Vec::with_capacity(args.connections);
        while held.len() < args.connections {
            let batch = args.parallel.min(args.connections - held.len());
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..batch {
                set.spawn(open(args.addr, args.protocol));
            }
            while let Some(r) = set.join_next().await {
                let (s, status) = r.expect("task").expect("connect and first answer");
                if matches!(args.protocol, Protocol::Http1) && status != 200 {
                    not_ok += 1;
                }
                held.push(s);
            }
        }
        tokio::time::sleep(settle).await;
        let open_kb = rss_kb(args.pid);
        drop(held);
        tokio::time::sleep(settle).await;
        let closed_kb = rss_kb(args.pid);
        tokio::time::sleep(idle_rest).await;
        rounds.push((open_kb, closed_kb, rss_kb(args.pid)));
    }
    let (open_kb, closed_kb, idle_kb) = rounds[0];
    let (last_open_kb, last_closed_kb, last_idle_kb) = rounds[rounds.len() - 1];

    let per_conn = (open_kb.saturating_sub(before) as f64) * 1024.0 / args.connections as f64;
    println!(
        "{}",
        json!({
            "label": args.label,
            "protocol": format!("{:?}", args.protocol),
            "connections": args.connections,
            "answers_not_200": not_ok,
            "rss_before_kb": before,
            "rss_open_kb": open_kb,
            "rss_closed_kb": closed_kb,
            "bytes_per_connection": per_conn.round(),
            "retained_after_close_kb": closed_kb.saturating_sub(before) as i64,
            "idle_s": args.idle.max(args.settle),
            "rss_idle_after_close_kb": idle_kb,
            "retained_idle_kb": idle_kb.saturating_sub(before) as i64,
            "rounds": rounds.len(),
            "rss_open_last_round_kb": last_open_kb,
            "rss_closed_last_round_kb": last_closed_kb,
            "rss_idle_last_round_kb": last_idle_kb,
        })
    );
}
