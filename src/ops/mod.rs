//! Operator endpoints under the reserved prefix `/_gateway/`: liveness, readiness (see
//! `readiness`), Prometheus metrics, the shadow report, the fallback rows, reload,
//! event-record translation over HTTP, and the OpenAPI documents of the two legacy APIs as the gateway accepts them
//! (`/_gateway/openapi/user-api.json`, `/_gateway/openapi/registry.json`).

pub mod readiness;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::json;

use crate::body::{full, Body, BoxError};
use crate::gateway::Gateway;
use crate::legacy::json as json_response;

/// The paths both listeners answer, unauthenticated: probes carry no credentials.
pub fn is_probe(path: &str) -> bool {
    matches!(path, "/_gateway/healthz" | "/_gateway/readyz")
}

/// `GET /_gateway/metrics`: the registry, after sampling the gauges that are read only when
/// Prometheus scrapes (shadow queue depth, kill-switch state, upstream reachability), so they
/// cost nothing per request.
async fn render_metrics(gw: &Gateway) -> String {
    readiness::probe(gw).await;
    let rt = gw.runtime();
    let shadow = &rt.config.shadow;
    gw.metrics.sample_shadow(
        gw.shadow.queue_depth(),
        shadow.max_concurrency + shadow.max_queue,
    );
    for family in crate::legacy::Family::ALL {
        gw.metrics
            .sample_kill_switch(family.name(), gw.shadow.kill_switch_engaged(family));
    }
    let report = gw.shadow.report(&rt, &gw.metrics.config_hash());
    gw.metrics.sample_cutover_ready(report.rows.iter().map(|r| {
        (
            r.route.as_str(),
            r.part.as_str(),
            r.tenant.as_str(),
            r.ready,
        )
    }));
    let fallback_rows = gw.fallback.rows();
    gw.metrics
        .sample_fallback(fallback_rows.iter().map(|(id, _, state)| {
            let active = rt.config.fallback.is_some() && *state != crate::fallback::State::V4;
            (id.route, id.part.as_str(), id.tenant.as_str(), active)
        }));
    gw.metrics.render()
}

pub async fn handle<B>(gw: &Gateway, req: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let path = req.uri().path().to_string();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/_gateway/healthz") => {
            json_response(StatusCode::OK, &json!({"status": "ok"}))
        }
        (Method::GET, "/_gateway/readyz") => {
            let (ready, body) = readiness::readyz(gw).await;
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json_response(status, &body)
        }
        (Method::GET, "/_gateway/metrics") => text(
            StatusCode::OK,
            // What prometheus-client writes: OpenMetrics text, ending in `# EOF`.
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            render_metrics(gw).await,
        ),
        (Method::GET, "/_gateway/openapi/user-api.json") => text(
            StatusCode::OK,
            "application/json",
            include_str!("../../openapi/user-api.json").to_string(),
        ),
        (Method::GET, "/_gateway/openapi/registry.json") => text(
            StatusCode::OK,
            "application/json",
            include_str!("../../openapi/registry.json").to_string(),
        ),
        (Method::GET, "/_gateway/shadow") if wants_html(req.headers()) => shadow_page(gw),
        (Method::GET, "/_gateway/shadow.html") => shadow_page(gw),
        (Method::GET, "/_gateway/shadow") => json_response(
            StatusCode::OK,
            &gw.shadow.report(&gw.runtime(), &gw.metrics.config_hash()),
        ),
        (Method::POST, "/_gateway/shadow/reset") => {
            let hash = gw.metrics.config_hash();
            gw.shadow.reset(&hash);
            json_response(
                StatusCode::OK,
                &json!({"status": "reset", "config_hash": hash}),
            )
        }
        (Method::GET, "/_gateway/fallback") => json_response(
            StatusCode::OK,
            &crate::fallback::admin::view(&gw.fallback, &gw.runtime()),
        ),
        (Method::POST, "/_gateway/fallback/reset") => fallback_reset(gw, req).await,
        (Method::POST, "/_gateway/reload") => match gw.reload().await {
            Ok(()) => json_response(StatusCode::OK, &json!({"status": "reloaded"})),
            Err(e) => json_response(
                StatusCode::BAD_REQUEST,
                &json!({"status": "error", "error": e}),
            ),
        },
        (Method::GET, "/_gateway/sandbox/events" | "/_gateway/sandbox/outbox") => {
            sandbox_view(gw, &path).await
        }
        (Method::POST, "/_gateway/events/to-v4") => {
            events(gw, req, crate::events::Direction::ToV4).await
        }
        (Method::POST, "/_gateway/events/to-legacy") => {
            events(gw, req, crate::events::Direction::ToLegacy).await
        }
        (_, p) if allowed(p).is_some() => {
            let mut resp = json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({"status": "error", "error": "method not allowed"}),
            );
            if let Some(allow) = allowed(p) {
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            resp
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({"status": "error", "error": "not found"}),
        ),
    }
}

/// The method each operator endpoint answers, for 405s and their `Allow` header.
fn allowed(path: &str) -> Option<&'static str> {
    match path {
        "/_gateway/healthz"
        | "/_gateway/readyz"
        | "/_gateway/metrics"
        | "/_gateway/shadow"
        | "/_gateway/shadow.html"
        | "/_gateway/fallback"
        | "/_gateway/openapi/user-api.json"
        | "/_gateway/openapi/registry.json"
        | "/_gateway/sandbox/events"
        | "/_gateway/sandbox/outbox" => Some("GET"),
        "/_gateway/reload"
        | "/_gateway/shadow/reset"
        | "/_gateway/fallback/reset"
        | "/_gateway/events/to-v4"
        | "/_gateway/events/to-legacy" => Some("POST"),
        _ => None,
    }
}

/// A browser asks for HTML; scripts and `curl` (no Accept, or `*/*`) keep getting JSON.
fn wants_html(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"))
}

/// The shadow report as a page; its headers forbid anything not inline (see `shadow::page`).
fn shadow_page(gw: &Gateway) -> Response<Body> {
    let rt = gw.runtime();
    let hash = gw.metrics.config_hash();
    let html = crate::shadow::page::render(
        &gw.shadow.report(&rt, &hash),
        &crate::shadow::page::Meta {
            version: env!("CARGO_PKG_VERSION"),
            now: std::time::SystemTime::now(),
        },
    );
    let mut resp = text(StatusCode::OK, "text/html; charset=utf-8", html);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept"));
    resp
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// On the embedded sandbox, its event log and outbox through the gateway's own port, so a
/// newcomer can follow a reset mail without knowing the sandbox's ephemeral address.
async fn sandbox_view(gw: &Gateway, path: &str) -> Response<Body> {
    let rt = gw.runtime();
    if !rt.sandbox {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"status": "error", "error": "not running on the embedded sandbox"}),
        );
    }
    let call = crate::upstream::Call {
        deadline: None,
        method: Method::GET,
        path: path
            .trim_start_matches("/_gateway/sandbox")
            .replacen('/', "/_sandbox/", 1),
        headers: http::HeaderMap::new(),
        body: None,
        label: "sandbox",
    };
    match rt.upstream.send(call).await {
        Ok(a) => text(
            a.status,
            "application/x-ndjson",
            String::from_utf8_lossy(&a.body).into_owned(),
        ),
        Err(e) => json_response(
            StatusCode::BAD_GATEWAY,
            &json!({"status": "error", "error": e.to_string()}),
        ),
    }
}

/// JSON lines in, JSON lines out, streamed: see `events::http`.
async fn events<B>(
    gw: &Gateway,
    req: Request<B>,
    direction: crate::events::Direction,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    crate::events::http::handle(gw.runtime().mappings.clone(), req, direction).await
}

/// `POST /_gateway/fallback/reset`: the rows the query or body picks, back on v4.
async fn fallback_reset<B>(gw: &Gateway, req: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let limit = gw.runtime().config.limits.body_bytes;
    let select = match crate::request::read_body(body, limit).await {
        Ok(bytes) => crate::fallback::admin::Select::parse(parts.uri.query(), &bytes),
        Err(e) => Err(e.to_string()),
    };
    match select {
        Ok(select) => json_response(
            StatusCode::OK,
            &crate::fallback::admin::reset(&gw.fallback, &select),
        ),
        Err(e) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({"status": "error", "error": e}),
        ),
    }
}
