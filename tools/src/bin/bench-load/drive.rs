//! The two ways of sending load: closed loop (saturation) and open loop (a fixed schedule,
//! coordinated omission corrected). One task per connection slot, each with its own `Stats`,
//! merged at the end, so slots never share a lock or a cache line while measuring.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::time::timeout_at;

use crate::http1::Conn;
use crate::latency::Latency;

/// What every slot needs to know: where, what, and the run's clock.
pub struct Plan {
    pub addr: SocketAddr,
    pub request: Vec<u8>,
    pub connections: usize,
    pub rate: Option<f64>,
    pub start: Instant,
    pub measure_from: Instant,
    pub end: Instant,
    pub hard_stop: Instant,
}

/// What one connection slot saw.
pub struct Stats {
    pub latency: Latency,
    /// Open loop: how late the timer woke for requests sent on an idle connection.
    pub lag_sum_ns: u128,
    pub lag_max_ns: u64,
    pub lag_n: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// Answers recorded in the measured window.
    pub measured: u64,
    /// Measured answers that arrived before the end of the window (open loop: the rate the
    /// target kept up with; an overloaded target falls behind its schedule).
    pub in_window: u64,
    /// Every answer, warm-up and tail included (for CPU per request).
    pub total: u64,
    pub io_errors: u64,
    pub reconnects: u64,
    pub unfinished: u64,
}

impl Stats {
    pub fn new() -> Self {
        Self {
            latency: Latency::new(),
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

    pub fn merge(&mut self, o: Stats) {
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
pub async fn closed(plan: Arc<Plan>) -> Stats {
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
pub async fn open(plan: Arc<Plan>, c: usize) -> Stats {
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
