//! The one HTTP client for every upstream call (v4, and later the legacy backends): pooled
//! keep-alive connections, rustls, no redirects, a timeout per call and a bounded read of the
//! answer. reqwest's errors become [`UpstreamError`] here so nothing above sees them.
//!
//! Nothing is retried: every v4 call the gateway makes can be a write (a retried password
//! change sends a second mail), and the pool already replaces dead idle connections.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode};

use crate::metrics::Metrics;
use crate::translate::envelope::{self, EnvelopeError, V4Answer};

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
    client: reqwest::Client,
    base: String,
    opts: UpstreamOptions,
    metrics: std::sync::Arc<Metrics>,
}

impl Upstream {
    pub fn new(
        base: &reqwest::Url,
        opts: UpstreamOptions,
        metrics: std::sync::Arc<Metrics>,
    ) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(512)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .use_rustls_tls();
        if let Some(pem) = &opts.ca_pem {
            let cert =
                reqwest::Certificate::from_pem(pem).map_err(|e| format!("invalid CA file: {e}"))?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            client,
            base: base.as_str().trim_end_matches('/').to_string(),
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

    /// Sends one request and reads the whole answer, at most `max_body` bytes.
    pub async fn send(&self, call: Call<'_>) -> Result<RawAnswer, UpstreamError> {
        let started = Instant::now();
        let label = call.label;
        let result = self.send_inner(call).await;
        let outcome = match &result {
            Ok(a) => a.status.as_str().to_string(),
            Err(UpstreamError::Timeout) => "timeout".into(),
            Err(UpstreamError::Unreachable) => "unreachable".into(),
            Err(_) => "invalid".into(),
        };
        self.metrics
            .observe_upstream(label, &outcome, started.elapsed().as_secs_f64());
        result
    }

    async fn send_inner(&self, call: Call<'_>) -> Result<RawAnswer, UpstreamError> {
        let url = format!("{}{}", self.base, call.path);
        let mut req = self
            .client
            .request(call.method, url)
            .headers(call.headers)
            .timeout(self.opts.timeout);
        if let Some(body) = call.body {
            req = req.body(body);
        }
        let mut resp = req.send().await.map_err(classify)?;
        if resp
            .content_length()
            .is_some_and(|n| n > self.opts.max_body as u64)
        {
            return Err(UpstreamError::TooLarge);
        }
        let status = resp.status();
        let headers = std::mem::take(resp.headers_mut());
        let mut body = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(classify_body)? {
            if body.len() + chunk.len() > self.opts.max_body {
                return Err(UpstreamError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(RawAnswer {
            status,
            headers,
            body: body.freeze(),
        })
    }
}

/// A failure while reading the body (a truncated answer, a connection cut mid-body): v4 was
/// reached and has answered a status, so the call may have been carried out. "Could not be
/// reached" would tell the client otherwise: the answer is unusable instead (tests/faults.rs).
fn classify_body(e: reqwest::Error) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::Timeout
    } else {
        tracing::debug!(error = %e, "upstream answer could not be read completely");
        UpstreamError::Invalid(EnvelopeError::NotJson)
    }
}

fn classify(e: reqwest::Error) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::Timeout
    } else {
        tracing::debug!(error = %e, "upstream call failed");
        UpstreamError::Unreachable
    }
}
