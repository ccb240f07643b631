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
//! Latencies go into a log-linear histogram (64 sub-buckets per power of two: ≤ 1.6 % error).
//! The client is a hand-written HTTP/1.1 client over one keep-alive TCP connection per
//! connection slot: a fixed request, no allocation per request, answers framed by
//! `Content-Length` or chunked encoding. It only talks to IP literals (`http://127.0.0.1:…`).
//!
//! ```text
//! bench-load --url http://127.0.0.1:18080/User/1001 --method PUT \
//!   --header 'Authorization: Bearer x' --body '{"Password":"Abcdefg1"}' \
//!   --connections 64 --duration 5 --warmup 1 [--rate 10000]
//! ```
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout_at;

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

/// Log-linear latency histogram in nanoseconds.
#[derive(Clone)]
struct Hist {
    counts: Vec<u64>,
    total: u64,
    sum_ns: u128,
    max_ns: u64,
}

impl Hist {
    const BUCKETS: usize = 128 + 48 * 64;

    fn new() -> Self {
        Self {
            counts: vec![0; Self::BUCKETS],
            total: 0,
            sum_ns: 0,
            max_ns: 0,
        }
    }

    /// Values below 128 ns exactly; above, 64 sub-buckets per power of two.
    fn index(v: u64) -> usize {
        if v < 128 {
            return v as usize;
        }
        let msb = 63 - u64::from(v.leading_zeros());
        let shift = msb - 6;
        let mantissa = v >> shift; // in [64, 128)
        let i = 128 + (shift - 1) * 64 + (mantissa - 64);
        (i as usize).min(Self::BUCKETS - 1)
    }

    /// The middle of bucket `i`.
    fn value(i: usize) -> u64 {
        if i < 128 {
            return i as u64;
        }
        let k = (i - 128) as u64;
        let shift = k / 64 + 1;
        let mantissa = k % 64 + 64;
        (mantissa << shift) + (1u64 << shift) / 2
    }

    fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[Self::index(ns)] += 1;
        self.total += 1;
        self.sum_ns += u128::from(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.total += o.total;
        self.sum_ns += o.sum_ns;
        self.max_ns = self.max_ns.max(o.max_ns);
    }

    fn quantile_ns(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value(i).min(self.max_ns);
            }
        }
        self.max_ns
    }

    fn summary_us(&self) -> serde_json::Value {
        let us = |ns: u64| (ns as f64 / 1000.0 * 10.0).round() / 10.0;
        json!({
            "count": self.total,
            "mean": if self.total == 0 { 0.0 } else { us((self.sum_ns / u128::from(self.total)) as u64) },
            "p50": us(self.quantile_ns(0.50)),
            "p90": us(self.quantile_ns(0.90)),
            "p99": us(self.quantile_ns(0.99)),
            "p999": us(self.quantile_ns(0.999)),
            "max": us(self.max_ns),
        })
    }
}

/// What one connection slot saw.
struct Stats {
    latency: Hist,
    /// Open loop: how late the timer woke for requests sent on an idle connection.
    lag_sum_ns: u128,
    lag_max_ns: u64,
    lag_n: u64,
    statuses: BTreeMap<u16, u64>,
    /// Answers recorded in the measured window.
    measured: u64,
    /// Measured answers that arrived before the end of the window (open loop: the rate the
    /// target kept up with; an overloaded target falls behind its schedule).
    in_window: u64,
    /// Every answer, warm-up and tail included (for CPU per request).
    total: u64,
    io_errors: u64,
    reconnects: u64,
    unfinished: u64,
}

impl Stats {
    fn new() -> Self {
        Self {
            latency: Hist::new(),
            lag_sum_ns: 0,
            lag_max_ns: 0,
            lag_n: 0,
            statuses: BTreeMap::new(),
            measured: 0,
            in_window: 0,
            total: 0,
            io_errors: 0,
            reconnects: 0,
            unfinished: 0,
        }
    }

    fn merge(&mut self, o: Stats) {
        self.latency.merge(&o.latency);
        self.lag_sum_ns += o.lag_sum_ns;
        self.lag_max_ns = self.lag_max_ns.max(o.lag_max_ns);
        self.lag_n += o.lag_n;
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        self.measured += o.measured;
        self.in_window += o.in_window;
        self.total += o.total;
        self.io_errors += o.io_errors;
        self.reconnects += o.reconnects;
        self.unfinished += o.unfinished;
    }
}

/// One keep-alive connection and its read buffer.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends the request, reads one whole answer: its status, and whether the server closes.
    async fn roundtrip(&mut self, req: &[u8]) -> io::Result<(u16, bool)> {
        self.stream.write_all(req).await?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some((status, used, close)) = parse_response(&self.buf)? {
                self.buf.drain(..used);
                return Ok((status, close));
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed mid-answer",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// `Some((status, bytes used, close))` once `buf` holds a whole answer.
fn parse_response(buf: &[u8]) -> io::Result<Option<(u16, usize, bool)>> {
    let Some(head_end) = find(buf, b"\r\n\r\n", 0) else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("non-UTF-8 head"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut close = status_line.starts_with("HTTP/1.0");
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse().map_err(|_| bad("bad content-length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            close = v.contains("close") || (close && !v.contains("keep-alive"));
        }
    }
    let body_start = head_end + 4;
    if chunked {
        let mut pos = body_start;
        loop {
            let Some(line_end) = find(buf, b"\r\n", pos) else {
                return Ok(None);
            };
            let size_text = std::str::from_utf8(&buf[pos..line_end]).map_err(|_| bad("chunk"))?;
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("bad chunk size"))?;
            pos = line_end + 2;
            if size == 0 {
                // Trailers (rare) end with an empty line.
                if buf.len() >= pos + 2 && &buf[pos..pos + 2] == b"\r\n" {
                    return Ok(Some((status, pos + 2, close)));
                }
                return match find(buf, b"\r\n\r\n", pos) {
                    Some(e) => Ok(Some((status, e + 4, close))),
                    None => Ok(None),
                };
            }
            if buf.len() < pos + size + 2 {
                return Ok(None);
            }
            pos += size + 2;
        }
    }
    let length = match (length, status) {
        (_, 204 | 304) | (_, 100..=199) => 0,
        (Some(n), _) => n,
        // No framing: the body runs to the close; not expected from anything benchmarked.
        (None, _) => {
            close = true;
            0
        }
    };
    if buf.len() < body_start + length {
        return Ok(None);
    }
    Ok(Some((status, body_start + length, close)))
}

struct Plan {
    addr: SocketAddr,
    request: Vec<u8>,
    connections: usize,
    rate: Option<f64>,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    hard_stop: Instant,
}

/// Connects, retrying briefly (the target may be busy accepting 256 connections at once).
async fn connect(addr: SocketAddr, until: Instant, stats: &mut Stats) -> Option<Conn> {
    loop {
        match Conn::open(addr).await {
            Ok(c) => return Some(c),
            Err(_) => {
                stats.io_errors += 1;
                if Instant::now() >= until {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// Closed loop: next request as soon as the answer is in.
async fn closed(plan: Arc<Plan>) -> Stats {
    let mut st = Stats::new();
    let Some(mut conn) = connect(plan.addr, plan.end, &mut st).await else {
        return st;
    };
    loop {
        let t0 = Instant::now();
        if t0 >= plan.end {
            break;
        }
        match timeout_at(plan.hard_stop.into(), conn.roundtrip(&plan.request)).await {
            Ok(Ok((status, close))) => {
                let t1 = Instant::now();
                st.total += 1;
                if t0 >= plan.measure_from && t1 <= plan.end {
                    st.latency.record(t1 - t0);
                    st.measured += 1;
                    st.in_window += 1;
                    *st.statuses.entry(status).or_default() += 1;
                }
                if close {
                    st.reconnects += 1;
                    match connect(plan.addr, plan.end, &mut st).await {
                        Some(c) => conn = c,
                        None => break,
                    }
                }
            }
            Ok(Err(_)) => {
                st.io_errors += 1;
                st.reconnects += 1;
                match connect(plan.addr, plan.end, &mut st).await {
                    Some(c) => conn = c,
                    None => break,
                }
            }
            Err(_) => {
                st.unfinished += 1;
                break;
            }
        }
    }
    st
}

/// Open loop: connection `c` sends request `k` at `start + c/R + k·N/R`.
async fn open(plan: Arc<Plan>, c: usize) -> Stats {
    let mut st = Stats::new();
    let rate = plan.rate.unwrap_or(1.0);
    let interval = Duration::from_secs_f64(plan.connections as f64 / rate);
    let first = plan.start + Duration::from_secs_f64(c as f64 / rate);
    let mut conn = connect(plan.addr, plan.end, &mut st).await;
    let mut k: u32 = 0;
    loop {
        let due = first + interval * k;
        k += 1;
        if due >= plan.end {
            break;
        }
        let Some(cn) = conn.as_mut() else {
            st.unfinished += 1;
            continue;
        };
        let now = Instant::now();
        let basis = if due > now {
            tokio::time::sleep_until(due.into()).await;
            let woke = Instant::now();
            let lag = u64::try_from((woke - due).as_nanos()).unwrap_or(u64::MAX);
            st.lag_sum_ns += u128::from(lag);
            st.lag_max_ns = st.lag_max_ns.max(lag);
            st.lag_n += 1;
            woke
        } else {
            // Still busy with an earlier answer when this one was due: count from the due time.
            due
        };
        let measured = due >= plan.measure_from;
        match timeout_at(plan.hard_stop.into(), cn.roundtrip(&plan.request)).await {
            Ok(Ok((status, close))) => {
                st.total += 1;
                if measured {
                    let done = Instant::now();
                    st.latency.record(done - basis);
                    st.measured += 1;
                    if done <= plan.end {
                        st.in_window += 1;
                    }
                    *st.statuses.entry(status).or_default() += 1;
                }
                if close {
                    st.reconnects += 1;
                    conn = connect(plan.addr, plan.hard_stop, &mut st).await;
                }
            }
            Ok(Err(_)) => {
                st.io_errors += 1;
                st.reconnects += 1;
                conn = connect(plan.addr, plan.hard_stop, &mut st).await;
            }
            Err(_) => {
                // Past the hard stop: this answer and every later one due before the end are
                // unfinished; they are recorded at the latency they had reached (a lower bound).
                let mut due = due;
                loop {
                    if due >= plan.measure_from {
                        st.latency
                            .record(plan.hard_stop.saturating_duration_since(due));
                        st.unfinished += 1;
                    }
                    due += interval;
                    if due >= plan.end {
                        break;
                    }
                }
                break;
            }
        }
    }
    st
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
                    Some(_) => open(plan, c).await,
                    None => closed(plan).await,
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

    #[test]
    fn histogram_buckets_round_trip_within_two_percent() {
        for v in [
            0u64,
            1,
            127,
            128,
            129,
            255,
            256,
            1_000,
            123_456,
            9_999_999,
            1 << 40,
        ] {
            let back = Hist::value(Hist::index(v));
            let err = (back as f64 - v as f64).abs() / (v.max(1) as f64);
            assert!(err <= 0.016, "{v} -> {back}");
        }
        let mut h = Hist::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile_ns(0.5) as f64 / 1000.0;
        let p99 = h.quantile_ns(0.99) as f64 / 1000.0;
        assert!((p50 - 500.0).abs() < 10.0, "{p50}");
        assert!((p99 - 990.0).abs() < 20.0, "{p99}");
    }

    #[test]
    fn answers_are_framed() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1";
        assert_eq!(parse_response(r).unwrap(), Some((200, 40, false)));
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok";
        assert_eq!(parse_response(r).unwrap(), None);
        let r = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        assert_eq!(parse_response(r).unwrap(), Some((404, r.len(), true)));
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n";
        assert_eq!(parse_response(r).unwrap(), None);
    }
}
