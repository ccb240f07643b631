//! Calls to v4: a timeout over the whole call, a bounded read of the answer, the v4 envelope
//! parsed, and every failure turned into an [`UpstreamError`] here so nothing above sees the
//! client's errors. The client itself (pool, TLS) is in [`client`], shared with `passthrough`.
//!
//! Nothing is retried: every v4 call the gateway makes can be a write (a retried password
//! change sends a second mail), and the pool already replaces dead idle connections.

pub mod client;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::Full;

use crate::metrics::{Metrics, UpstreamOutcome};
use crate::translate::envelope::{self, EnvelopeError, V4Answer};
use client::ClientOptions;

/// Why an upstream call has no usable answer. The texts are what the legacy client reads:
/// they name the system, never the host, the port or the error chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("The Users Orchestrator could not be reached.")]
    Unreachable,
    #[error("The Users Orchestrator did not answer in time.")]
    Timeout,
    #[error("The Users Orchestrator answered with an invalid response.")]
    Invalid(EnvelopeError),
    #[error("The Users Orchestrator answered with a response that is too large.")]
    TooLarge,
}

#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_body: usize,
    /// Extra root certificate (PEM) for upstreams with a private CA.
    pub ca_pem: Option<Vec<u8>>,
    /// Idle keep-alive connections kept (`limits.upstream_idle_connections`).
    pub idle_connections: usize,
}

/// One call to make.
#[derive(Debug)]
pub struct Call<'a> {
    pub method: Method,
    /// Absolute path, already encoded (see `translate::path`).
    pub path: String,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// Bounded label for metrics (`v4.password`), never an id.
    pub label: &'a str,
}

/// A raw answer, for callers that pass bodies through (legacy mode, shadow).
#[derive(Debug)]
pub struct RawAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct Upstream {
    client: std::sync::Arc<client::PerWorker>,
    base: String,
    /// The path of the configured URL, which every call's path is appended to.
    prefix: String,
    opts: UpstreamOptions,
    metrics: std::sync::Arc<Metrics>,
}

impl Upstream {
    pub fn new(
        base: &url::Url,
        opts: UpstreamOptions,
        metrics: std::sync::Arc<Metrics>,
    ) -> Result<Self, String> {
        let client = client::PerWorker::new(
            &ClientOptions {
                connect_timeout: opts.connect_timeout,
                ca_pem: opts.ca_pem.as_deref(),
                preserve_header_case: false,
                max_idle_per_host: opts.idle_connections,
            },
            base,
        )?;
        Ok(Self {
            client: std::sync::Arc::new(client),
            base: crate::config::base_of(base),
            prefix: base.path().trim_end_matches('/').to_string(),
            opts,
            metrics,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Calls v4 and reads its envelope.
    pub async fn v4(&self, call: Call<'_>) -> Result<V4Answer, UpstreamError> {
        let raw = self.send(call).await?;
        envelope::parse(raw.status.as_u16(), &raw.body).map_err(UpstreamError::Invalid)
    }

    /// Sends one request and reads the whole answer, at most `max_body` bytes, all within
    /// the call timeout.
    pub async fn send(&self, call: Call<'_>) -> Result<RawAnswer, UpstreamError> {
        let label = call.label;
        observed(
            &self.metrics,
            label,
            self.opts.timeout,
            self.send_inner(call),
            |a| a.status,
        )
        .await
    }

    async fn send_inner(&self, call: Call<'_>) -> Result<RawAnswer, UpstreamError> {
        let mut uri = String::with_capacity(self.prefix.len() + call.path.len());
        uri.push_str(&self.prefix);
        uri.push_str(&call.path);
        let uri = Uri::try_from(uri).map_err(|e| {
            tracing::debug!(error = %e, "upstream URI could not be built");
            UpstreamError::Unreachable
        })?;
        let mut req = Request::new(Full::new(call.body.unwrap_or_default()));
        *req.method_mut() = call.method;
        *req.uri_mut() = uri;
        *req.headers_mut() = call.headers;
        crate::telemetry::inject(req.headers_mut());
        let (resp, lease) = self.client.request(req).await.map_err(|e| {
            tracing::debug!(error = %e, "upstream call failed");
            UpstreamError::Unreachable
        })?;
        let (head, incoming) = resp.into_parts();
        let body = client::read_bounded(&head.headers, incoming, self.opts.max_body, lease).await?;
        Ok(RawAnswer {
            status: head.status,
            headers: head.headers,
            body,
        })
    }
}

/// One upstream call under `timeout` (connect, send and the whole answer read), its latency
/// and outcome recorded: the same for v4 calls and legacy backends.
pub async fn observed<T>(
    metrics: &Metrics,
    label: &str,
    timeout: Duration,
    call: impl std::future::Future<Output = Result<T, UpstreamError>>,
    status: impl Fn(&T) -> StatusCode,
) -> Result<T, UpstreamError> {
    let started = Instant::now();
    if crate::telemetry::enabled() {
        use tracing::Instrument;
        let span = crate::telemetry::upstream_span(label);
        let result = tokio::time::timeout(timeout, call)
            .instrument(span.clone())
            .await
            .unwrap_or(Err(UpstreamError::Timeout));
        let outcome = outcome_of(result.as_ref().map(&status));
        crate::telemetry::upstream_done(&span, outcome);
        metrics.observe_upstream(label, outcome, started.elapsed().as_secs_f64());
        return result;
    }
    let result = tokio::time::timeout(timeout, call)
        .await
        .unwrap_or(Err(UpstreamError::Timeout));
    metrics.observe_upstream(
        label,
        outcome_of(result.as_ref().map(&status)),
        started.elapsed().as_secs_f64(),
    );
    result
}

/// The `outcome` label of `gateway_upstream_duration_seconds`: a status code or the failure.
fn outcome_of(result: Result<StatusCode, &UpstreamError>) -> UpstreamOutcome {
    match result {
        Ok(status) => UpstreamOutcome::Status(status.as_u16()),
        Err(UpstreamError::Timeout) => UpstreamOutcome::Timeout,
        Err(UpstreamError::Unreachable) => UpstreamOutcome::Unreachable,
        Err(_) => UpstreamOutcome::Invalid,
    }
}
