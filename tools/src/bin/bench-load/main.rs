//! `bench-load`: the HTTP/1.1 load generator of the benchmark (`bench/run.sh`), closed or open
//! loop, printing one JSON object.
//!
//! Debian has `wrk` but not `wrk2`, and the benchmark needs latency measured at a fixed arrival
//! rate without coordinated omission; this is that tool, kept small:
//!
//! - **closed loop** (no `--rate`): each connection sends its next request as soon as the
//!   previous answer is in; the figure is saturated throughput.
//! - **open loop** (`--rate R`): requests are due on a fixed schedule (connection `c` of `N`
//!   sends at `start + c/R + k·N/R`, as wrk2 does). When a request is due while its connection
//!   is still waiting for an earlier answer, its latency counts from the **due time**, not from
//!   when it could finally be sent (coordinated-omission correction). When the connection was
//!   idle, latency counts from the actual send, so the timer's own millisecond slack is not
//!   charged to the server (the slack is reported as `send_lag_us`).
//!
//! Latencies go into an HDR histogram (`latency.rs`: ≤ 0.8 % error, exact mean and max).
//! The client is a hand-written HTTP/1.1 client (`http1.rs`) over one keep-alive TCP
//! connection per connection slot: a fixed request, no allocation per request. It only talks
//! to IP literals (`http://127.0.0.1:…`). The closed and open loops are in `drive.rs`.
//!
//! ```text
//! bench-load --url http://127.0.0.1:18080/User/1001 --method PUT \
//!   --header 'Authorization: Bearer x' --body '{"Password":"Abcdefg1"}' \
//!   --connections 64 --duration 5 --warmup 1 [--rate 10000]
//! ```
#![forbid(unsafe_code)]

mod drive;
mod http1;
mod latency;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

use drive::{Plan, Stats};
use http1::bad;

#[derive(Debug, Parser)]
#[command(
    name = "bench-load",
    about = "Closed- or open-loop HTTP/1.1 load, JSON out"
)]
struct Args {
    /// Target URL; the host must be an IP literal with a port (http://127.0.0.1:8080/path).
    #[arg(long)]
    url: String,
    #[arg(long, default_value = "GET")]
    method: String,
    /// `Name: value`, repeatable. A `Host` header replaces the default (the URL's authority).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Request body (sent with Content-Length).
    #[arg(long)]
    body: Option<String>,
    /// Read the request body from this file instead.
    #[arg(long, conflicts_with = "body")]
    body_file: Option<std::path::PathBuf>,
    #[arg(long, short = 'c', default_value_t = 64)]
    connections: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, short = 'd', default_value_t = 5.0)]
    duration: f64,
    /// Seconds of load before measuring (answers not recorded).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Open loop: requests per second on a fixed schedule. Without it: closed loop.
    #[arg(long, short = 'R')]
    rate: Option<f64>,
    /// After the end, how long answers still due may take before they count as unfinished.
    #[arg(long, default_value_t = 2.0)]
    grace: f64,
    /// Worker threads (1: a single-threaded runtime, for a pinned core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Free text copied into the JSON output.
    #[arg(long, default_value = "")]
    label: String,
}

fn build_request(args: &Args, authority: &str, path: &str) -> io::Result<Vec<u8>> {
    let body = match (&args.body, &args.body_file) {
        (Some(b), _) => b.clone().into_bytes(),
        (None, Some(f)) => std::fs::read(f)?,
        (None, None) => Vec::new(),
    };
    let mut head = format!("{} {} HTTP/1.1\r\n", args.method, path);
    let mut has_host = false;
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| bad("a header is written Name: value"))?;
        has_host |= name.trim().eq_ignore_ascii_case("host");
        head.push_str(&format!("{}: {}\r\n", name.trim(), value.trim()));
    }
    if !has_host {
        head.push_str(&format!("Host: {authority}\r\n"));
    }
    if !body.is_empty() || matches!(args.method.as_str(), "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut req = head.into_bytes();
    req.extend_from_slice(&body);
    Ok(req)
}

fn main() {
    let args = Args::parse();
    let rest = args.url.strip_prefix("http://").unwrap_or_else(|| {
        eprintln!("bench-load: only http:// URLs");
        std::process::exit(2)
    });
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr: SocketAddr = authority.parse().unwrap_or_else(|_| {
        eprintln!("bench-load: the host must be an IP literal with a port, e.g. 127.0.0.1:8080");
        std::process::exit(2)
    });
    if args.connections == 0 || args.duration <= 0.0 || args.rate.is_some_and(|r| r <= 0.0) {
        eprintln!("bench-load: connections, duration and rate must be positive");
        std::process::exit(2);
    }
    let request = build_request(&args, authority, path).unwrap_or_else(|e| {
        eprintln!("bench-load: {e}");
        std::process::exit(2)
    });

    let rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(args.threads);
        b
    }
    .enable_all()
    .build()
    .expect("tokio runtime");

    let stats = rt.block_on(async {
        // A short delay lets every task be spawned before the schedule starts.
        let start = Instant::now() + Duration::from_millis(20);
        let measure_from = start + Duration::from_secs_f64(args.warmup.max(0.0));
        let end = measure_from + Duration::from_secs_f64(args.duration);
        let plan = Arc::new(Plan {
            addr,
            request,
            connections: args.connections,
            rate: args.rate,
            start,
            measure_from,
            end,
            hard_stop: end + Duration::from_secs_f64(args.grace.max(0.1)),
        });
        let mut tasks = Vec::with_capacity(args.connections);
        for c in 0..args.connections {
            let plan = plan.clone();
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(plan.start.into()).await;
                match plan.rate {
                    Some(_) => drive::open(plan, c).await,
                    None => drive::closed(plan).await,
                }
            }));
        }
        let mut all = Stats::new();
        for t in tasks {
            if let Ok(s) = t.await {
                all.merge(s);
            }
        }
        all
    });

    let ok: u64 = stats
        .statuses
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    let statuses: BTreeMap<String, u64> = stats
        .statuses
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    let out = json!({
        "label": args.label,
        "mode": if args.rate.is_some() { "open" } else { "closed" },
        "url": args.url,
        "method": args.method,
        "connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "target_rate": args.rate,
        "requests": stats.measured,
        "ok": ok,
        "non_2xx": stats.measured - ok,
        "statuses": statuses,
        "io_errors": stats.io_errors,
        "reconnects": stats.reconnects,
        "unfinished": stats.unfinished,
        "total_answers": stats.total,
        // Closed loop: throughput. Open loop: answers in the window per second (below the
        // target rate when the target fell behind its schedule).
        "rps": (stats.in_window as f64 / args.duration * 10.0).round() / 10.0,
        "latency_us": stats.latency.summary_us(),
        "send_lag_us": {
            "mean": if stats.lag_n == 0 { 0.0 } else { (stats.lag_sum_ns / u128::from(stats.lag_n)) as f64 / 1000.0 },
            "max": stats.lag_max_ns as f64 / 1000.0,
        },
    });
    println!("{out}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["bench-load", "--url", "http://127.0.0.1:9/x"];
        v.extend_from_slice(extra);
        Args::parse_from(v)
    }

    #[test]
    fn the_request_gets_host_and_length_unless_given() {
        let a = args(&["--method", "PUT", "-H", "X-A: 1", "--body", "{}"]);
        let req = build_request(&a, "127.0.0.1:9", "/x").unwrap();
        assert_eq!(
            String::from_utf8(req).unwrap(),
            "PUT /x HTTP/1.1\r\nX-A: 1\r\nHost: 127.0.0.1:9\r\nContent-Length: 2\r\n\r\n{}"
        );
        let a = args(&["-H", "host: bench.test"]);
        let req = build_request(&a, "127.0.0.1:9", "/x").unwrap();
        assert_eq!(
            String::from_utf8(req).unwrap(),
            "GET /x HTTP/1.1\r\nhost: bench.test\r\n\r\n"
        );
        assert!(build_request(&args(&["-H", "no colon"]), "a", "/").is_err());
    }
}
