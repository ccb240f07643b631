//! The HTTP client under every upstream call, v4 and legacy backends alike: per-worker pools of
//! hyper HTTP/1.1 connections over rustls ([`PerWorker`]). It replaced reqwest on the v4 path
//! (per call reqwest parsed a URL and ran its redirect and retry layers, about 40% of the
//! gateway's instructions per translated request), then hyper-util's shared pooled client
//! (one pool for all cores, found through a mutex and a hashed map per call).
//! Requests go out in origin form (`/v4/Users/…`) against a target parsed once at start-up.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{header, HeaderValue, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::UpstreamError;
use crate::body::BoxError;
use crate::translate::envelope::EnvelopeError;

#[derive(Debug, Clone)]
pub struct ClientOptions<'a> {
    pub connect_timeout: Duration,
    /// Extra root certificate(s), PEM, for upstreams behind a private CA.
    pub ca_pem: Option<&'a [u8]>,
    /// Legacy backends: their clients may depend on header-name case (see `passthrough`).
    pub preserve_header_case: bool,
    /// Idle keep-alive connections kept per host. Each one holds its buffers (~20 KiB), so
    /// this bounds the memory a burst leaves behind without limiting concurrency.
    pub max_idle_per_host: usize,
}

/// Connections to one upstream, pooled per thread: each worker keeps its own idle
/// HTTP/1.1 connections, made with `hyper::client::conn::http1` and driven by a task on that
/// worker's runtime. hyper-util's pooled client, used before, shares one pool behind a mutex
/// and a SipHash-keyed map between every thread, and spent about 13k instructions per call
/// finding a connection in it; here a worker pops one from a vector it alone touches.
///
/// What the pooled client gave and this keeps: keep-alive with an idle timeout (60 s) and a
/// bound on idle connections per worker (`limits.upstream_idle_connections`, like nginx's
/// `keepalive`, which is per worker process too), `TCP_NODELAY`, the connect timeout, rustls
/// with the webpki roots plus an optional private CA, no redirects, and no retries except of a
/// request that was never written (a reused connection the upstream had just closed), which
/// cannot have been carried out.
pub struct PerWorker {
    connector: HttpsConnector<HttpConnector>,
    /// `scheme://authority/` of the upstream: what is connected to.
    target: Uri,
    /// The `Host` header a request gets when it carries none.
    host: HeaderValue,
    max_idle: usize,
    preserve_header_case: bool,
    idle: thread_local::ThreadLocal<RefCell<Vec<Idle>>>,
}

struct Idle {
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

/// How long an idle connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection lent to one call: [`Lease::release`] returns it once the answer was read to
/// its end; dropped instead (an error, a cut answer), the connection is closed.
pub struct Lease<'a> {
    pool: &'a PerWorker,
    sender: SendRequest<Full<Bytes>>,
}

impl Lease<'_> {
    pub fn release(self) {
        if self.sender.is_closed() {
            return;
        }
        let mut idle = self.pool.idle.get_or_default().borrow_mut();
        if idle.len() < self.pool.max_idle {
            idle.push(Idle {
                sender: self.sender,
                since: Instant::now(),
            });
        }
    }
}

impl PerWorker {
    pub fn new(opts: &ClientOptions<'_>, base: &url::Url) -> Result<Self, String> {
        let tls = tls_config(opts.ca_pem)?;
        let host = base.host_str().unwrap_or("localhost");
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let authority = match base.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        let target = Uri::try_from(format!("{}://{authority}/", base.scheme()))
            .map_err(|e| format!("upstream URL {base}: {e}"))?;
        let host = HeaderValue::from_str(&authority).map_err(|e| format!("upstream host: {e}"))?;
        Ok(Self {
            connector: connector(tls, opts.connect_timeout),
            target,
            host,
            max_idle: opts.max_idle_per_host,
            preserve_header_case: opts.preserve_header_case,
            idle: thread_local::ThreadLocal::new(),
        })
    }

    /// Sends `req` (origin-form URI) on an idle connection of this thread, or a new one.
    /// A failure says whether the upstream was reached: see [`UpstreamError::of_exchange`].
    pub async fn request(
        &self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, Lease<'_>), UpstreamError> {
        if !req.headers().contains_key(header::HOST) {
            req.headers_mut().insert(header::HOST, self.host.clone());
        }
        if let Some(mut sender) = self.idle_connection().await {
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok((resp, Lease { pool: self, sender })),
                // Never written: the upstream closed the idle connection just now. Sending it
                // on a new connection is not a retry of anything the upstream saw.
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(exchange_failed(&e.into_error())),
                },
            }
        }
        // Boxed: a new connection's handshake holds the TLS state (kilobytes), and inline it
        // would sit in every request's future, copied with it each time it moves, for the
        // few calls that connect.
        let mut sender = Box::pin(self.connect()).await.map_err(|e| {
            tracing::debug!(error = %e, "upstream connection failed");
            UpstreamError::Unreachable
        })?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| exchange_failed(&e))?;
        Ok((resp, Lease { pool: self, sender }))
    }

    /// The most recently used idle connection that is still open and ready.
    async fn idle_connection(&self) -> Option<SendRequest<Full<Bytes>>> {
        loop {
            let Idle { mut sender, since } = self.idle.get_or_default().borrow_mut().pop()?;
            if sender.is_closed() || since.elapsed() > IDLE_TIMEOUT {
                continue;
            }
            // Ready at once unless the connection is still finishing the previous answer.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, BoxError> {
        use tower::Service as _;
        let io = self.connector.clone().call(self.target.clone()).await?;
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .preserve_header_case(self.preserve_header_case)
            .handshake(io)
            .await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

fn exchange_failed(e: &hyper::Error) -> UpstreamError {
    tracing::debug!(error = %e, "upstream call failed");
    UpstreamError::of_exchange(e)
}

fn tls_config(ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = ca_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("invalid CA file: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("invalid CA file: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err("invalid CA file: no PEM certificate in it".into());
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tls)
}

fn connector(
    tls: rustls::ClientConfig,
    connect_timeout: Duration,
) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

/// Reads a whole answer body, at most `max` bytes. A body cut short after the status arrived
/// is an invalid answer, not an unreachable upstream: v4 was reached and may have carried the
/// call out (tests/faults.rs).
///
/// Read to its end, the connection goes back to the worker's pool (`lease`); otherwise it is
/// closed, since what is left of the answer would be read as the next one.
pub async fn read_bounded(
    headers: &http::HeaderMap,
    mut body: hyper::body::Incoming,
    max: usize,
    lease: Lease<'_>,
) -> Result<Bytes, UpstreamError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(UpstreamError::TooLarge);
    }
    // A small answer arrives in one frame: kept as it came, with no buffer and no copy.
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut read = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            tracing::debug!(error = %e, "upstream answer could not be read completely");
            UpstreamError::Invalid(EnvelopeError::NotJson)
        })?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        read += chunk.len();
        if read > max {
            return Err(UpstreamError::TooLarge);
        }
        match (&first, &mut rest) {
            (None, _) => first = Some(chunk),
            (Some(head), None) => {
                let size = declared.map_or(0, |n| n as usize).max(read);
                let mut buf = BytesMut::with_capacity(size);
                buf.extend_from_slice(head);
                buf.extend_from_slice(&chunk);
                rest = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(&chunk),
        }
    }
    lease.release();
    Ok(match (first, rest) {
        (_, Some(buf)) => buf.freeze(),
        (Some(one), None) => one,
        (None, None) => Bytes::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_certificates_is_refused() {
        let opts = ClientOptions {
            connect_timeout: Duration::from_secs(1),
            ca_pem: Some(b"not a certificate"),
            preserve_header_case: false,
            max_idle_per_host: 1,
        };
        let base = url::Url::parse("https://v4.example.com/").unwrap();
        let Err(err) = PerWorker::new(&opts, &base) else {
            panic!("a file without certificates was accepted")
        };
        assert!(err.contains("invalid CA file"), "{err}");
    }
}
