//! TLS to upstreams: a fake v4 behind rustls with a private CA made in the test,
//! the gateway trusting it only through `upstream.ca_file`; and the start-up warning for a
//! plain-HTTP upstream outside loopback, read from the binary's stderr.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::gateway_with;
use common::put_request;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use serde_json::Value;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

const ENVELOPE: &str = r#"{"message":{"code":"UsersOrchestrator_S200_11","text":"Update password completed.","type":"Success"},"meta":null}"#;
const GUARD: Duration = Duration::from_secs(20);

/// A private CA and a server certificate it signed for `localhost` and 127.0.0.1.
struct Pki {
    ca_pem: String,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.distinguished_name
        .push(DnType::CommonName, "legacy-gateway test CA");
    let ca = ca.self_signed(&ca_key).expect("CA certificate");

    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .expect("server certificate");
    Pki {
        ca_pem: ca.pem(),
        cert: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// A v4 over TLS on 127.0.0.1 answering the password-change success envelope. Counts the
/// HTTP requests it received and the TLS handshakes that failed.
struct TlsV4 {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    failed_handshakes: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TlsV4 {
    async fn start(pki: &Pki) -> Self {
        Self::serving(pki, ENVELOPE).await
    }

    /// The same server answering `body` to every request.
    async fn serving(pki: &Pki, body: &'static str) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![pki.cert.clone()], pki.key.clone_key())
            .expect("server config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let failed_handshakes = Arc::new(AtomicUsize::new(0));
        let (req_count, failed) = (requests.clone(), failed_handshakes.clone());
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let (acceptor, req_count, failed) =
                    (acceptor.clone(), req_count.clone(), failed.clone());
                conns.spawn(async move {
                    let tls = match tokio::time::timeout(GUARD, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => tls,
                        _ => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    };
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let req_count = req_count.clone();
                        async move {
                            let _ = req.into_body().collect().await;
                            req_count.fetch_add(1, Ordering::SeqCst);
                            let resp = hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from_static(body.as_bytes())))
                                .expect("response");
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            requests,
            failed_handshakes,
            task,
        }
    }
}

impl Drop for TlsV4 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn change_password(gw: &legacy_gateway::Running) -> (u16, Value) {
    let resp = put_request(&gw.url(), "1001")
        .header("Content-Type", "application/json")
        .body(r#"{"Password":"Abcdefg1"}"#)
        .timeout(GUARD)
        .send()
        .await
        .expect("an answer");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON answer"))
}

#[tokio::test]
async fn a_private_ca_in_ca_file_makes_the_tls_upstream_trusted() {
    let pki = pki();
    let v4 = TlsV4::start(&pki).await;
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &pki.ca_pem).unwrap();
    let extra = format!("[upstream]\nca_file = '{}'\n", ca.path().display());
    for host in ["localhost", "127.0.0.1"] {
        let gw = gateway_with(&extra, Some(&format!("https://{host}:{}", v4.addr.port()))).await;
        let (status, json) = change_password(&gw).await;
        assert_eq!(status, 200, "{host}: {json}");
        assert_eq!(json["Code"], 0, "{host}: {json}");
        assert_eq!(json["Result"]["Updated"], true, "{host}: {json}");
        gw.shutdown().await;
    }
    assert_eq!(
        v4.requests.load(Ordering::SeqCst),
        2,
        "both calls went over TLS"
    );
    assert_eq!(v4.failed_handshakes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn without_the_ca_file_the_upstream_is_untrusted_502_and_nothing_is_sent() {
    let pki = pki();
    let v4 = TlsV4::start(&pki).await;
    let gw = gateway_with("", Some(&format!("https://localhost:{}", v4.addr.port()))).await;
    let (status, json) = change_password(&gw).await;
    assert_eq!(status, 502, "{json}");
    assert_eq!(json["Code"], 502, "{json}");
    assert_eq!(json["Errors"][0]["Code"], "Gateway_E502_01", "{json}");
    assert_eq!(json["Errors"][0]["ErrorSource"], "Gateway", "{json}");
    assert_eq!(
        json["Errors"][0]["Message"], "The Users Orchestrator could not be reached.",
        "names no host, port or TLS detail: {json}"
    );
    assert_eq!(json["Result"]["Updated"], false, "{json}");
    // The handshake was refused by the gateway: the password never left it.
    tokio::time::timeout(GUARD, async {
        while v4.failed_handshakes.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the fake saw the failed handshake");
    assert_eq!(v4.requests.load(Ordering::SeqCst), 0, "no request was sent");
    gw.shutdown().await;
}

/// Starts `legacy-gateway serve --orchestrator <orchestrator>`, waits until it answers
/// `/_gateway/healthz`, stops it with SIGTERM and returns what it logged on stderr.
async fn startup_log(orchestrator: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let gw = common::binary::Binary::serve()
        .args(["--orchestrator", orchestrator])
        .start(dir.path())
        .await;
    let health = common::client()
        .get(format!("{}/_gateway/healthz", gw.url()))
        .send()
        .await;
    assert!(
        health.is_ok_and(|r| r.status().is_success()),
        "{orchestrator}: never answered healthz: {}",
        gw.stderr_so_far()
    );
    // `stop` sends SIGTERM and requires exit status 0.
    let (_, logs) = gw.stop().await;
    assert!(logs.contains("legacy-gateway listening"), "{logs}");
    logs
}

const WARNING: &str = "plain-HTTP upstream outside loopback";

#[tokio::test]
async fn plain_http_upstream_outside_loopback_is_warned_about_at_start_up() {
    // Nothing is sent to it: the gateway only logs at start-up and is stopped after healthz.
    let logs = startup_log("http://example.invalid:80").await;
    let line = logs
        .lines()
        .find(|l| l.contains(WARNING))
        .unwrap_or_else(|| panic!("no warning: {logs}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("example.invalid"), "{line}");
}

#[tokio::test]
async fn loopback_or_https_upstreams_are_not_warned_about() {
    for orchestrator in [
        "http://127.0.0.1:9",
        "http://localhost:9",
        "https://example.invalid",
    ] {
        let logs = startup_log(orchestrator).await;
        assert!(!logs.contains(WARNING), "{orchestrator}: {logs}");
    }
}

/// The JWKS fetch trusts `upstream.ca_file` as upstream calls do.
#[tokio::test]
async fn a_jwks_url_behind_a_private_ca_is_fetched_with_ca_file() {
    let pki = pki();
    let jwks: &'static str = include_str!("fixtures/jwks.json");
    let server = TlsV4::serving(&pki, jwks).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let url = format!("https://localhost:{}/jwks.json", server.addr.port());
    let start = |extra: String| {
        let url = url.clone();
        async move {
            let extra = format!("{extra}[identity]\njwks_url = \"{url}\"\n");
            let mappings = legacy_gateway::mapping::Mappings::embedded().unwrap();
            common::try_gateway_with(&extra, None, mappings).await
        }
    };
    let untrusted = start(String::new()).await;
    let Err(e) = untrusted else {
        panic!("a JWKS behind an unknown CA was trusted")
    };
    assert!(e.to_string().contains("cannot fetch the JWKS"), "{e}");
    let gw = start(format!("[upstream]\nca_file = {:?}\n", ca))
        .await
        .expect("with ca_file the JWKS is fetched");
    assert!(server.requests.load(Ordering::SeqCst) >= 1);
    gw.shutdown().await;
}
