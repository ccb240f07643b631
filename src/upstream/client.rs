//! The HTTP client under every upstream call, v4 and legacy backends alike: hyper-util's
//! pooled client over rustls. It replaced reqwest on the v4 path (issue #6): per call reqwest
//! parsed a URL, ran its redirect and retry layers and converted back to a `Uri`, about 40%
//! of the gateway's instructions per translated request; this client takes a `Uri` built from
//! a base parsed once at start-up.
//!
//! What reqwest gave and this keeps: keep-alive pooling with an idle timeout, `TCP_NODELAY`, a
//! connect timeout, the webpki roots plus an optional private CA, no redirects (hyper-util
//! never follows them) and no retries (see `upstream`).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::UpstreamError;
use crate::translate::envelope::EnvelopeError;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

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

/// One client per thread that calls an upstream (issue #15). A pooled connection is driven
/// by a task on the runtime that opened it; with one runtime per worker thread, a shared pool
/// would hand a worker connections whose reads and writes wake another core, and its mutex
/// would be taken by every core on every call. Each worker gets its own pool, built on first
/// use from the one TLS configuration made at start-up.
pub struct PerWorker {
    make: Box<dyn Fn() -> HttpClient + Send + Sync>,
    clients: thread_local::ThreadLocal<HttpClient>,
}

impl PerWorker {
    pub fn new(opts: &ClientOptions<'_>) -> Result<Self, String> {
        let tls = tls_config(opts.ca_pem)?;
        let (connect_timeout, preserve, idle) = (
            opts.connect_timeout,
            opts.preserve_header_case,
            opts.max_idle_per_host,
        );
        Ok(Self {
            make: Box::new(move || client_with(tls.clone(), connect_timeout, preserve, idle)),
            clients: thread_local::ThreadLocal::new(),
        })
    }

    /// This thread's client.
    pub fn get(&self) -> &HttpClient {
        self.clients.get_or(|| (self.make)())
    }
}

pub fn build(opts: &ClientOptions<'_>) -> Result<HttpClient, String> {
    Ok(client_with(
        tls_config(opts.ca_pem)?,
        opts.connect_timeout,
        opts.preserve_header_case,
        opts.max_idle_per_host,
    ))
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

fn client_with(
    tls: rustls::ClientConfig,
    connect_timeout: Duration,
    preserve_header_case: bool,
    max_idle_per_host: usize,
) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .http1_preserve_header_case(preserve_header_case)
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(max_idle_per_host)
        .build(https)
}

/// `scheme://host[:port]/prefix` without a trailing slash: what a request path is appended to.
/// User info, query and fragment of the configured URL are not part of it.
pub fn base_of(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("localhost");
    let mut base = if host.contains(':') && !host.starts_with('[') {
        format!("{}://[{host}]", url.scheme())
    } else {
        format!("{}://{host}", url.scheme())
    };
    if let Some(port) = url.port() {
        base.push(':');
        base.push_str(&port.to_string());
    }
    base.push_str(url.path().trim_end_matches('/'));
    base
}

/// Reads a whole answer body, at most `max` bytes. A body cut short after the status arrived
/// is an invalid answer, not an unreachable upstream: v4 was reached and may have carried the
/// call out (tests/faults.rs).
pub async fn read_bounded(
    headers: &http::HeaderMap,
    mut body: hyper::body::Incoming,
    max: usize,
) -> Result<Bytes, UpstreamError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(UpstreamError::TooLarge);
    }
    let mut buf = BytesMut::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            tracing::debug!(error = %e, "upstream answer could not be read completely");
            UpstreamError::Invalid(EnvelopeError::NotJson)
        })?;
        if let Some(chunk) = frame.data_ref() {
            if buf.len() + chunk.len() > max {
                return Err(UpstreamError::TooLarge);
            }
            buf.extend_from_slice(chunk);
        }
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_keeps_scheme_host_port_and_path_prefix_only() {
        let cases = [
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
            ("https://v4.example.com/api/", "https://v4.example.com/api"),
            ("http://[::1]:9/", "http://[::1]:9"),
            ("http://user:pw@h.example/p?q=1", "http://h.example/p"),
        ];
        for (url, want) in cases {
            assert_eq!(base_of(&url::Url::parse(url).unwrap()), want, "{url}");
        }
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let opts = ClientOptions {
            connect_timeout: Duration::from_secs(1),
            ca_pem: Some(b"not a certificate"),
            preserve_header_case: false,
            max_idle_per_host: 1,
        };
        let Err(err) = build(&opts) else {
            panic!("a file without certificates was accepted")
        };
        assert!(err.contains("invalid CA file"), "{err}");
    }
}
