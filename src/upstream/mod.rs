//! Calls to v4: a timeout over the whole call, a bounded read of the answer, the v4 envelope
//! parsed, and every failure turned into an [`UpstreamError`] here so nothing above sees the
//! client's errors. The client itself (pool, TLS) is in [`client`], shared with `passthrough`.
//!
//! Nothing is retried: every v4 call the gateway makes can be a write (a retried password
//! change sends a second mail), and the pool already replaces dead idle connections.

pub mod client;
pub mod outcome;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::Full;

use crate::deadline::Deadline;
use crate::metrics::{Metrics, UpstreamOutcome};
use crate::translate::envelope::{self, EnvelopeError, V4Answer};
use client::ClientOptions;

/// Why an upstream call has no usable answer. The texts are what the legacy client reads:
/// they name the system, never the host, the port or the error chain ([`UpstreamError::describe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    /// No answer at all: the connection could not be made, the request was not sent, or the
    /// connection was reset before any answer arrived.
    Unreachable,
    Timeout,
    Invalid(EnvelopeError),
    TooLarge,
    /// The request went out and what came back was not HTTP: a garbage status line, headers
    /// over hyper's limit, a connection closed part-way through the head. The call reached
    /// the upstream and may have been carried out, so "could not be reached" would mislead.
    BrokenAnswer,
}

impl std::error::Error for UpstreamError {}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe("The Users Orchestrator"))
    }
}

impl UpstreamError {
    /// The failure as the legacy client reads it, naming the system that failed (v4 or a
    /// legacy backend): one message per system and failure.
    pub fn describe(&self, system: &str) -> String {
        match self {
            UpstreamError::Unreachable => format!("{system} could not be reached."),
            UpstreamError::Timeout => format!("{system} did not answer in time."),
            UpstreamError::Invalid(_) | UpstreamError::BrokenAnswer => {
                format!("{system} answered with an invalid response.")
            }
            UpstreamError::TooLarge => {
                format!("{system} answered with a response that is too large.")
            }
        }
    }

    /// A failure of the HTTP exchange itself, sorted by whether an answer had begun to
    /// arrive: a parse error or a cut head means the upstream answered (badly); a refused or
    /// reset connection means no answer came at all.
    pub fn of_exchange(e: &hyper::Error) -> Self {
        if e.is_parse()
            || e.is_parse_status()
            || e.is_parse_too_large()
            || e.is_incomplete_message()
        {
            UpstreamError::BrokenAnswer
        } else {
            UpstreamError::Unreachable
        }
    }
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
    /// The request's deadline, when the call is made for a client's request (the edge's
    /// timer bounds it); a shadow copy has none and gets a timer of its own.
    pub deadline: Option<&'a Deadline>,
}

/// A v4 answer as read, before its envelope is parsed: what [`Upstream::v4`] parses, and what
/// an operator endpoint that shows an answer as it came (the sandbox's log) passes on.
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
        let answer = self.send(call).await.and_then(|raw| {
            envelope::parse(raw.status.as_u16(), &raw.body).map_err(UpstreamError::Invalid)
        });
        outcome::note(&answer);
        answer
    }

    /// Sends one request and reads the whole answer, at most `max_body` bytes, all within
    /// the call timeout. Routes call [`Upstream::v4`], which reads the envelope; this is for
    /// answers that are not one.
    pub async fn send(&self, call: Call<'_>) -> Result<RawAnswer, UpstreamError> {
        let (label, deadline) = (call.label, call.deadline);
        // Boxed once, where it is made: the exchange's future (the request, the pooled
        // connection, the answer being read) would otherwise sit inline in every future above
        // it, and be copied whole each time one of them moves. One allocation costs less than
        // those copies.
        observed(
            &self.metrics,
            "v4",
            label,
            self.opts.timeout,
            deadline,
            Box::pin(self.send_inner(call)),
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
        let (resp, lease) = self.client.request(req).await?;
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
/// and outcome recorded: the same for v4 calls and legacy backends. Under a request's
/// `deadline` the edge's timer bounds it; without one (shadow copies) it gets its own.
pub async fn observed<T>(
    metrics: &Metrics,
    upstream: &str,
    label: &str,
    timeout: Duration,
    deadline: Option<&Deadline>,
    call: impl std::future::Future<Output = Result<T, UpstreamError>>,
    status: impl Fn(&T) -> StatusCode,
) -> Result<T, UpstreamError> {
    let started = Instant::now();
    let bounded = async {
        match deadline {
            Some(d) => d.within(timeout, call).await.map_err(|_| ()),
            None => tokio::time::timeout(timeout, call).await.map_err(|_| ()),
        }
        .unwrap_or(Err(UpstreamError::Timeout))
    };
    let result = if crate::telemetry::enabled() {
        use tracing::Instrument;
        let span = crate::telemetry::upstream_span(label);
        let result = bounded.instrument(span.clone()).await;
        crate::telemetry::upstream_done(&span, outcome_of(result.as_ref().map(&status)));
        result
    } else {
        bounded.await
    };
    let outcome = outcome_of(result.as_ref().map(&status));
    let took = started.elapsed();
    metrics.observe_upstream(label, outcome, took.as_secs_f64());
    if let Some(d) = deadline {
        let code = match outcome {
            UpstreamOutcome::Status(code) => code,
            _ => 0,
        };
        d.record_call(upstream, code, took);
    }
    result
}

/// The `outcome` label of `gateway_upstream_duration_seconds`: a status code or the failure.
fn outcome_of(result: Result<StatusCode, &UpstreamError>) -> UpstreamOutcome {
    match result {
        Ok(status) => UpstreamOutcome::Status(status.as_u16()),
        Err(UpstreamError::Timeout) => UpstreamOutcome::Timeout,
        Err(UpstreamError::Unreachable) => UpstreamOutcome::Unreachable,
        Err(UpstreamError::Invalid(_) | UpstreamError::TooLarge | UpstreamError::BrokenAnswer) => {
            UpstreamOutcome::Invalid
        }
    }
}
