//! Operator endpoints under the reserved prefix `/_gateway/`: liveness, readiness (is the
//! orchestrator reachable) and Prometheus metrics.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::json;

use crate::body::{full, Body};
use crate::gateway::Gateway;
use crate::legacy::json as json_response;

pub async fn handle<B>(gw: &Gateway, req: Request<B>) -> Response<Body> {
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::GET, "/_gateway/healthz") => {
            json_response(StatusCode::OK, &json!({"status": "ok"}))
        }
        (&Method::GET, "/_gateway/readyz") => readyz(gw).await,
        (&Method::GET, "/_gateway/metrics") => {
            let mut resp = Response::new(full(Bytes::from(gw.metrics.render())));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        (_, "/_gateway/healthz" | "/_gateway/readyz" | "/_gateway/metrics") => json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"status": "error", "error": "method not allowed"}),
        ),
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({"status": "error", "error": "not found"}),
        ),
    }
}

/// Ready when a TCP connection to the orchestrator opens within a second: cheap, needs no
/// credentials, and tells a load balancer the one thing it must know.
async fn readyz(gw: &Gateway) -> Response<Body> {
    let rt = gw.runtime();
    let url = match reqwest::Url::parse(rt.upstream.base()) {
        Ok(u) => u,
        Err(_) => return not_ready("invalid orchestrator URL"),
    };
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    match tokio::time::timeout(Duration::from_secs(1), connect).await {
        Ok(Ok(_)) => json_response(
            StatusCode::OK,
            &json!({"status": "ready", "orchestrator": "reachable", "sandbox": rt.sandbox}),
        ),
        _ => not_ready("orchestrator unreachable"),
    }
}

fn not_ready(why: &str) -> Response<Body> {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({"status": "not ready", "orchestrator": why}),
    )
}
