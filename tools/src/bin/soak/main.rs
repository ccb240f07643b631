//! `soak`: the load driver of `bench/soak.sh`. Sends a bounded, paced mix of every legacy
//! route to a gateway on loopback for a fixed time, with about 10 % bad input, and watches
//! the gateway process's memory from `/proc/<pid>/status`. Prints one JSON object and exits
//! non-zero when the run fails its bounds.
//!
//! The mix (weights out of 100), against the embedded sandbox's seeded users:
//! User API `PUT /User/{id}`: password 18, e-mail 14, profile 14, mixed 9; action API:
//! `updatechangepassword` 15 (JWT `sub` 1001, unverified), `registernewpassword` 12,
//! `activatenewpassword`/`activate` 8 (unknown confirmation ids: answered
//! `validationfailed`); bad input 10 (malformed or unknown-field bodies, missing headers,
//! no token, unknown action, a bad id, an oversized body — sent with `Connection: close`,
//! because the gateway closes the connection after an early 413 without announcing it).
//!
//! Memory: `VmRSS`/`VmHWM` once the warm-up is over (the sandbox's bounded logs have had time
//! to fill) and at the end, sampled every second in between. The run fails when RSS grew by
//! more than `--max-rss-growth-mb` from the end of the warm-up to the end, when any answer
//! is a 5xx, or when any request failed at the transport level.
//!
//! ```text
//! soak --url http://127.0.0.1:18080 --pid 12345 --seconds 180 --warmup 15 --rate 300
//! ```
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod memory;
mod mix;

use clap::Parser;
use serde_json::json;

use memory::{mem, mem_json};
use mix::{plan, Rng};

#[derive(Debug, Parser)]
#[command(
    name = "soak",
    about = "Paced mixed-route load with an RSS bound, JSON out"
)]
struct Args {
    /// Gateway base URL (loopback only).
    #[arg(long)]
    url: String,
    /// The gateway's process id, for /proc/<pid>/status.
    #[arg(long)]
    pid: u32,
    /// Measured seconds, after the warm-up.
    #[arg(long, default_value_t = 180)]
    seconds: u64,
    /// Seconds of the same load before the starting RSS is taken.
    #[arg(long, default_value_t = 15)]
    warmup: u64,
    /// Requests per second, all workers together.
    #[arg(long, default_value_t = 300.0)]
    rate: f64,
    /// Concurrent workers (one keep-alive connection each).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Fail when RSS grows by more than this many MiB from the end of the warm-up.
    #[arg(long, default_value_t = 20)]
    max_rss_growth_mb: u64,
}

#[derive(Default)]
struct Tally {
    by_status: BTreeMap<u16, u64>,
    by_route: BTreeMap<&'static str, BTreeMap<u16, u64>>,
    transport_errors: BTreeMap<String, u64>,
    error_samples: Vec<String>,
    latency_max_us: u64,
    latency_sum_us: u64,
}

/// What every worker shares.
struct Shared {
    client: reqwest::Client,
    base: String,
    token: String,
    interval: Duration,
    stop: AtomicBool,
    measuring: AtomicBool,
    sent: AtomicU64,
    tally: Mutex<Tally>,
}

async fn worker(id: usize, sh: Arc<Shared>) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((id as u64 + 1) * 0x1000_0000_01b3));
    let mut tick = tokio::time::interval(sh.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !sh.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let n = sh.sent.fetch_add(1, Ordering::Relaxed);
        let p = plan(&mut rng, n, &sh.token);
        let mut req = sh
            .client
            .request(p.method, format!("{}{}", sh.base, p.path));
        for (k, v) in &p.headers {
            req = req.header(*k, v);
        }
        if let Some(b) = p.body {
            req = req.body(b);
        }
        let started = Instant::now();
        let result = async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            resp.bytes().await?;
            Ok::<u16, reqwest::Error>(status)
        }
        .await;
        if !sh.measuring.load(Ordering::Relaxed) {
            continue;
        }
        let us = started.elapsed().as_micros() as u64;
        let mut t = sh.tally.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(status) => {
                *t.by_status.entry(status).or_default() += 1;
                *t.by_route
                    .entry(p.route)
                    .or_default()
                    .entry(status)
                    .or_default() += 1;
                t.latency_max_us = t.latency_max_us.max(us);
                t.latency_sum_us += us;
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "other"
                };
                *t.transport_errors
                    .entry(format!("{}: {kind}", p.route))
                    .or_default() += 1;
                if t.error_samples.len() < 5 {
                    t.error_samples.push(format!("{}: {e:?}", p.route));
                }
            }
        }
    }
}

async fn wait_healthy(client: &reqwest::Client, base: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/_gateway/healthz")).send().await {
            if r.status().is_success() {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn loopback(url: &str) -> bool {
    reqwest::Url::parse(url)
        .is_ok_and(|u| matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if !loopback(&args.url) {
        eprintln!("soak: loopback URLs only (http://127.0.0.1:PORT)");
        return std::process::ExitCode::from(2);
    }
    if args.connections == 0 || args.rate <= 0.0 || args.seconds == 0 {
        eprintln!("soak: connections, rate and seconds must be positive");
        return std::process::ExitCode::from(2);
    }
    let base = args.url.trim_end_matches('/').to_string();
    let client = match reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.connections)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("soak: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if !wait_healthy(&client, &base).await {
        eprintln!("soak: {base}/_gateway/healthz did not answer within 30 s");
        return std::process::ExitCode::from(2);
    }
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "1001"}),
        &jsonwebtoken::EncodingKey::from_secret(b"unverified"),
    )
    .map(|t| format!("Bearer {t}"))
    .unwrap_or_default();

    let idle = mem(args.pid);
    let sh = Arc::new(Shared {
        client,
        base,
        token,
        interval: Duration::from_secs_f64(args.connections as f64 / args.rate),
        stop: AtomicBool::new(false),
        measuring: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        tally: Mutex::new(Tally::default()),
    });
    let workers: Vec<_> = (0..args.connections)
        .map(|i| tokio::spawn(worker(i, sh.clone())))
        .collect();

    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let warm_sent = sh.sent.load(Ordering::Relaxed);
    let start = mem(args.pid);
    sh.measuring.store(true, Ordering::Relaxed);
    let began = Instant::now();
    let mut max_rss_kb = start.map_or(0, |m| m.rss_kb);
    let mut samples = Vec::new();
    while began.elapsed() < Duration::from_secs(args.seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(m) = mem(args.pid) {
            max_rss_kb = max_rss_kb.max(m.rss_kb);
            if samples.len() < 600 {
                samples.push(m.rss_kb);
            }
        } else {
            eprintln!("soak: the gateway process {} is gone", args.pid);
            break;
        }
    }
    sh.stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let elapsed = began.elapsed().as_secs_f64();
    let end = mem(args.pid);

    let t = sh.tally.lock().unwrap_or_else(|e| e.into_inner());
    let total: u64 = t.by_status.values().sum();
    let errors: u64 = t.transport_errors.values().sum();
    let server_errors: u64 = t
        .by_status
        .iter()
        .filter(|(s, _)| **s >= 500)
        .map(|(_, n)| n)
        .sum();
    let bad: u64 = t
        .by_route
        .iter()
        .filter(|(r, _)| r.starts_with("bad."))
        .flat_map(|(_, m)| m.values())
        .sum();
    let growth_kb = match (start, end) {
        (Some(s), Some(e)) => e.rss_kb as i64 - s.rss_kb as i64,
        _ => i64::MAX,
    };
    let bound_kb = (args.max_rss_growth_mb * 1024) as i64;
    let mut failures = Vec::new();
    if growth_kb > bound_kb {
        failures.push(format!(
            "RSS grew by {growth_kb} KiB (bound {bound_kb} KiB)"
        ));
    }
    if server_errors > 0 {
        failures.push(format!("{server_errors} answers were 5xx"));
    }
    if errors > 0 {
        failures.push(format!("{errors} transport errors"));
    }
    if end.is_none() {
        failures.push("the gateway process was gone at the end".into());
    }
    let report = json!({
        "seconds": (elapsed * 10.0).round() / 10.0,
        "warmup_seconds": args.warmup,
        "warmup_requests": warm_sent,
        "target_rate": args.rate,
        "connections": args.connections,
        "total": total,
        "rate": ((total as f64 / elapsed) * 10.0).round() / 10.0,
        "bad_input_share": if total > 0 { ((bad as f64 / total as f64) * 1000.0).round() / 1000.0 } else { 0.0 },
        "by_status": t.by_status.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "by_route": t.by_route.iter().map(|(r, m)| (r.to_string(), json!(m.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()))).collect::<serde_json::Map<_, _>>(),
        "transport_errors": t.transport_errors,
        "transport_error_samples": t.error_samples,
        "latency_ms": {
            "mean": if total > 0 { ((t.latency_sum_us as f64 / total as f64) / 10.0).round() / 100.0 } else { 0.0 },
            "max": (t.latency_max_us as f64 / 10.0).round() / 100.0,
        },
        "memory": {
            "idle": mem_json(idle),
            "start": mem_json(start),
            "end": mem_json(end),
            "max_rss_kb": max_rss_kb,
            "rss_growth_kb": growth_kb,
            "rss_growth_bound_kb": bound_kb,
            "rss_samples_kb": samples,
        },
        "pass": failures.is_empty(),
        "failures": failures,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    if failures.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
