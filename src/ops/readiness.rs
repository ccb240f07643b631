//! `readyz` and `gateway_upstream_up`. Readiness answers one question: can this instance
//! serve? Its configuration is loaded (it has a runtime), its listeners are up (it answers)
//! and it is not shutting down. Whether an upstream answers is a different question: every
//! instance shares the same upstreams, so an outage would take the whole fleet out of the load
//! balancer at once, and clients would get connection errors instead of the legacy 502 their
//! code handles. Reachability is therefore reported (the body, the gauge, an alert) and fails
//! readiness only where an operator asks for it (`readyz_requires_upstreams = true`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::config::Mode;
use crate::gateway::Gateway;
use crate::runtime::Runtime;

/// How long a TCP connect may take before the upstream counts as unreachable: well under the
/// kubelet's probe timeout (2 s in `deploy/`).
const CONNECT: Duration = Duration::from_secs(1);

/// One upstream this instance calls.
struct Target {
    name: &'static str,
    url: reqwest::Url,
    /// Clients are answered from it (so `readyz_requires_upstreams` may fail on it).
    serves_clients: bool,
}

/// Every configured upstream: v4 (the embedded sandbox on it), the staging v4 shadow copies
/// go to, and the legacy backends.
fn targets(rt: &Runtime) -> Vec<Target> {
    let modes = &rt.config.modes;
    let translates =
        modes.default == Mode::Translate || modes.rules.iter().any(|r| r.mode == Mode::Translate);
    let mut t = Vec::new();
    if let Ok(url) = reqwest::Url::parse(rt.upstream.base()) {
        t.push(Target {
            name: "orchestrator",
            url,
            serves_clients: translates,
        });
    }
    if let Some(url) = &rt.config.shadow.orchestrator {
        t.push(Target {
            name: "shadow_orchestrator",
            url: url.clone(),
            serves_clients: false,
        });
    }
    for (name, url) in [
        ("user_api", &rt.config.user_api_url),
        ("registry_api", &rt.config.registry_api_url),
    ] {
        if let Some(url) = url {
            t.push(Target {
                name,
                url: url.clone(),
                serves_clients: true,
            });
        }
    }
    t
}

/// Probes every upstream at once and records the result in `gateway_upstream_up`.
async fn probe_all(gw: &Gateway, rt: &Runtime) -> Vec<(Target, bool)> {
    let targets = targets(rt);
    let up = futures_util::future::join_all(targets.iter().map(|t| reachable(&t.url))).await;
    let probed: Vec<(&'static str, bool)> = targets
        .iter()
        .map(|t| t.name)
        .zip(up.iter().copied())
        .collect();
    gw.metrics.upstreams_up(&probed);
    targets.into_iter().zip(up).collect()
}

/// For the metrics scrape: the gauges sampled, the answer not needed.
pub async fn probe(gw: &Gateway) {
    let rt = gw.runtime();
    probe_all(gw, &rt).await;
}

/// Whether this instance is ready, and the body that says why, naming every upstream by its
/// role (and the embedded sandbox as such).
pub async fn readyz(gw: &Gateway) -> (bool, Value) {
    let rt = gw.runtime();
    let probed = probe_all(gw, &rt).await;
    let draining = gw.draining.load(Ordering::Relaxed);
    let requires = rt.config.readyz_requires_upstreams;
    let mut reasons = Vec::new();
    if draining {
        reasons.push("shutting down".to_string());
    }
    let mut upstreams = Map::new();
    for (t, up) in &probed {
        if requires && t.serves_clients && !up {
            reasons.push(format!("{} unreachable", t.name));
        }
        // No URL: the probes answer on the client listener too, unauthenticated, and the
        // backends' addresses are no client's business.
        let mut entry = json!({ "reachable": up });
        if t.name == "orchestrator" && rt.sandbox {
            entry["embedded_sandbox"] = json!(true);
        }
        upstreams.insert(t.name.into(), entry);
    }
    let ready = reasons.is_empty();
    let mut body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "sandbox": rt.sandbox,
        "draining": draining,
        "readyz_requires_upstreams": requires,
        "upstreams": upstreams,
    });
    if !ready {
        body["reasons"] = json!(reasons);
    }
    (ready, body)
}

async fn reachable(url: &reqwest::Url) -> bool {
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    matches!(tokio::time::timeout(CONNECT, connect).await, Ok(Ok(_)))
}
