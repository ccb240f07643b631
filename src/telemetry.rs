//! OpenTelemetry traces over OTLP (HTTP/protobuf), off unless `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. One span per request (the request span
//! of `stack.rs`), a child per upstream call (v4 part, legacy backend) and per shadow copy;
//! W3C `traceparent`/`tracestate` taken from the client and sent on to every upstream.
//!
//! **Off costs nothing on the request path.** Every hook here starts with [`enabled`], one
//! relaxed atomic load; when it is false no span is created, no header touched, no
//! attribute recorded, and `logging` builds exactly the subscriber it builds without
//! telemetry. The client's own `traceparent`/`tracestate` are still forwarded (they are on
//! the allow-list), so a trace that starts before the gateway continues behind it.
//!
//! **What leaves the process.** Only spans of this crate are exported, never log events,
//! and their fields are method, path (no query), request id, route, mode, tenant, legacy and
//! v4 event names and outcomes: never a body, a header value, a token or a password
//! (`tests/telemetry.rs` greps the exported bytes).

use std::sync::atomic::{AtomicBool, Ordering};

use http::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::{Layer, Registry};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// The W3C trace-context headers: on the forwarded-header allow-list.
/// Names, not strings: a `&str` key is parsed again on every lookup.
pub const TRACE_HEADERS: [http::HeaderName; 2] = [
    http::HeaderName::from_static("traceparent"),
    http::HeaderName::from_static("tracestate"),
];

/// Whether traces are exported (set once, at start).
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The subscriber layer that turns this crate's spans into OTel spans.
pub type OtelLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Owns the exporter: dropping it flushes the spans still queued and stops the export thread.
pub struct Telemetry {
    provider: SdkTracerProvider,
    endpoint: String,
    ratio: f64,
}

impl Telemetry {
    /// The start-up line (once logging is set up).
    pub fn log_started(&self) {
        tracing::info!(endpoint = %shown(&self.endpoint), sample_ratio = self.ratio, "exporting traces over OTLP");
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        ENABLED.store(false, Ordering::Relaxed);
        if let Err(e) = self.provider.shutdown() {
            eprintln!("telemetry: flushing the last spans failed: {e}");
        }
    }
}

/// Where the traces go, from the standard variables (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
/// as given; `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces` appended) or, when neither is
/// set, the configuration's `telemetry.otlp_endpoint` (treated like the latter).
fn endpoint(configured: Option<&str>) -> Option<String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    if let Some(full) = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return Some(full);
    }
    env("OTEL_EXPORTER_OTLP_ENDPOINT")
        .or_else(|| configured.map(str::to_string))
        .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
}

/// `OTEL_TRACES_SAMPLER_ARG` (a ratio, 0..=1), else the configured one, else 1. A client
/// that sent a sampled `traceparent` is followed (parent-based), as the standard sampler
/// `parentbased_traceidratio` does.
fn sample_ratio(configured: Option<f64>) -> f64 {
    std::env::var("OTEL_TRACES_SAMPLER_ARG")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .or(configured)
        .unwrap_or(1.0)
        .clamp(0.0, 1.0)
}

/// Starts the exporter when an endpoint is configured. Call before any runtime exists (the
/// exporter's HTTP client runs on a thread of its own).
pub fn init(
    configured_endpoint: Option<&str>,
    configured_service: Option<&str>,
    configured_ratio: Option<f64>,
) -> Result<Option<(Telemetry, OtelLayer)>, String> {
    let Some(endpoint) = endpoint(configured_endpoint) else {
        return Ok(None);
    };
    remember_secrets(&endpoint);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint.clone())
        .build()
        .map_err(|e| format!("OTLP exporter for {}: {e}", shown(&endpoint)))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(
            configured_service
                .unwrap_or(env!("CARGO_PKG_NAME"))
                .to_string(),
        );
    }
    let ratio = sample_ratio(configured_ratio);
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))))
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        // Spans of this crate only; log events never become span events.
        .with_filter(filter_fn(|meta| {
            meta.is_span() && meta.target().starts_with("legacy_gateway")
        }));
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some((
        Telemetry {
            provider,
            endpoint,
            ratio,
        },
        Box::new(layer),
    )))
}

/// The collector's credentials (a password in the endpoint URL, an API key in
/// `OTEL_EXPORTER_OTLP_HEADERS`) are masked wherever they could appear, like the gateway's own.
fn remember_secrets(endpoint: &str) {
    if let Some(password) = url::Url::parse(endpoint)
        .ok()
        .and_then(|u| u.password().map(str::to_string))
    {
        crate::redact::known::remember(&password);
    }
    for var in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    ] {
        for pair in std::env::var(var).unwrap_or_default().split(',') {
            // Values are percent-encoded there (`Bearer%20abc`).
            if let Some((_, value)) = pair.split_once('=') {
                crate::redact::remember_credential(
                    &percent_encoding::percent_decode_str(value.trim()).decode_utf8_lossy(),
                );
            }
        }
    }
}

/// The endpoint as logged: credentials in it masked.
fn shown(endpoint: &str) -> String {
    url::Url::parse(endpoint).map_or_else(|_| endpoint.to_string(), |u| crate::redact::url(&u))
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The request span continues the client's trace (its `traceparent`), if it sent one.
pub fn adopt_parent(span: &Span, headers: &HeaderMap) {
    if !enabled() {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Headers(headers));
    let _ = span.set_parent(cx);
}

/// Copies the client's trace-context headers into an allow-listed upstream request.
pub fn forward_client_headers(incoming: &HeaderMap, out: &mut HeaderMap) {
    for name in TRACE_HEADERS {
        if let Some(v) = incoming.get(&name) {
            out.insert(name, v.clone());
        }
    }
}

/// The current span (the upstream call's) as the upstream request's `traceparent`, replacing
/// the client's: the upstream's spans then hang under the gateway's.
pub fn inject(headers: &mut HeaderMap) {
    if !enabled() {
        return;
    }
    let cx = Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeadersMut(headers));
}

/// A child span for one upstream call (only called when [`enabled`]).
pub fn upstream_span(call: &str) -> Span {
    tracing::info_span!("upstream", call = %call)
}

/// Records an upstream call's outcome on its span.
pub fn upstream_done(span: &Span, outcome: crate::metrics::UpstreamOutcome) {
    use crate::metrics::UpstreamOutcome as O;
    let text = match outcome {
        O::Status(code) => code.to_string(),
        O::Timeout => "timeout".into(),
        O::Unreachable => "unreachable".into(),
        O::Invalid => "invalid".into(),
    };
    span.set_attribute("gateway.upstream.outcome", text);
}

/// A span for one shadow copy, child of the request span that offered it (the copy runs
/// later, on the shadow lane).
pub fn shadow_span(route: &str, tenant: &str) -> Span {
    let span = tracing::info_span!(parent: Span::current(), "shadow copy");
    span.set_attribute("gateway.route", route.to_string());
    span.set_attribute("gateway.tenant", tenant.to_string());
    span
}

/// Attributes of the current (request) span: route, mode, tenant, events, outcome.
pub fn annotate(attributes: &[(&'static str, &str)]) {
    if !enabled() {
        return;
    }
    let span = Span::current();
    for (k, v) in attributes {
        span.set_attribute(*k, v.to_string());
    }
}
