//! `bench-upstream`: a minimal, fast stand-in for the Users Orchestrator API (v4) and for the
//! legacy User API backend, used only by the load benchmark (`bench/run.sh`).
//!
//! Every v4 call the gateway's routes make answers 200 with the v4 success envelope; the
//! legacy `PUT /User/{id}` answers the legacy success envelope (shadow mode's "legacy
//! backend"). Bodies are fixed bytes, connections are kept alive, nothing is logged or stored:
//! the point is to cost as little CPU as possible so the proxy in front of it is what the
//! benchmark measures.
//!
//! ```text
//! bench-upstream --listen 127.0.0.1:18081 [--listen 127.0.0.1:18082] [--threads 1]
//! ```
//! `--threads 1` (the default) runs a single-threaded runtime: the benchmark pins this
//! process to one core together with the load generator.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use clap::Parser;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// v4 `PATCH /v4/Users/{id}/Password` success (the seed's example answer).
const V4_PASSWORD: &[u8] = br#"{"message":{"code":"UsersOrchestrator_S200_11","text":"Update password completed.","type":"Success"},"meta":null}"#;
const V4_EMAIL: &[u8] = br#"{"message":{"code":"UsersOrchestrator_S200_12","text":"Update Email completed.","type":"Success"},"meta":null}"#;
const V4_PROFILE: &[u8] = br#"{"message":{"code":"UsersOrchestrator_S200_00","text":"Update user completed.","type":"Success"},"meta":null}"#;
const V4_FORGOT: &[u8] = br#"{"message":{"code":"UsersOrchestrator_S200_08","text":"Start ForgotPassword completed.","type":"Success"},"meta":null,"data":{"encryptedEventId":"bench-event"}}"#;
const V4_FINISH: &[u8] = br#"{"message":{"code":"UsersOrchestrator_S200_09","text":"Finish ForgotPassword completed.","type":"Success"},"meta":null}"#;
const V4_NOT_FOUND: &[u8] = br#"{"message":{"code":"UsersOrchestrator_E404","text":"Not Found","type":"Error"},"meta":null}"#;
/// Legacy User API `PUT /User/{id}` success (shadow mode's primary answer).
const LEGACY_USER: &[u8] = br#"{"Code":0,"Errors":[],"Result":{"CustomerRegistrationId":"1001","Updated":true},"SessionId":null,"RequestId":"x"}"#;
/// Legacy user-registry action API success.
const LEGACY_REGISTRY: &[u8] = br#"{"status":"OK","action":"updatechangepassword"}"#;

/// Picks the canned answer for a request line. No allocation, no regex: path segments only.
fn answer(method: &Method, path: &str) -> (StatusCode, &'static [u8]) {
    let mut segs = [""; 6];
    let mut n = 0;
    for s in path.trim_end_matches('/').split('/').skip(1) {
        if n == segs.len() {
            return (StatusCode::NOT_FOUND, V4_NOT_FOUND);
        }
        segs[n] = s;
        n += 1;
    }
    let ok = StatusCode::OK;
    match (method, &segs[..n]) {
        (&Method::PATCH, ["v4", "Users", _, "Password"]) => (ok, V4_PASSWORD),
        (&Method::PATCH, ["v4", "Users", _, "Email"]) => (ok, V4_EMAIL),
        (&Method::POST, ["v4", "Users", "ForgotPassword"]) => (ok, V4_FORGOT),
        (&Method::POST, ["v4", "Users", "ForgotPassword", "Finish"]) => (ok, V4_FINISH),
        (&Method::PUT, ["v4", "Users", _]) => (ok, V4_PROFILE),
        (&Method::PUT, ["User", _]) => (ok, LEGACY_USER),
        (_, [p, "profileserviceregistration"]) if p.starts_with('$') => (ok, LEGACY_REGISTRY),
        _ => (StatusCode::NOT_FOUND, V4_NOT_FOUND),
    }
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = answer(req.method(), req.uri().path());
    // Read the request body to its end so the connection stays reusable.
    let _ = req.into_body().collect().await;
    let mut resp = Response::new(Full::new(Bytes::from_static(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    Ok(resp)
}

async fn serve(listener: TcpListener) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("bench-upstream: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "bench-upstream",
    about = "Canned v4 and legacy answers over HTTP/1.1, for the load benchmark"
)]
struct Args {
    /// Address to serve on; repeat for several.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:18081")]
    listen: Vec<SocketAddr>,
    /// Runtime worker threads; 1 runs a single-threaded runtime (for a pinned core).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
}

fn main() {
    let Args { listen, threads } = Args::parse();
    let threads = usize::from(threads);
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    }
    .enable_all()
    .build()
    .expect("tokio runtime");
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for addr in listen {
            let listener = match TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("bench-upstream: cannot listen on {addr}: {e}");
                    std::process::exit(1);
                }
            };
            eprintln!("bench-upstream: listening on {addr}");
            tasks.push(tokio::spawn(serve(listener)));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_as_before() {
        let a = Args::parse_from([
            "bench-upstream",
            "--listen",
            "127.0.0.1:1",
            "--listen",
            "127.0.0.1:2",
            "--threads",
            "3",
        ]);
        assert_eq!(a.listen.len(), 2);
        assert_eq!(a.threads, 3);
        let a = Args::parse_from(["bench-upstream"]);
        assert_eq!(a.listen, [SocketAddr::from(([127, 0, 0, 1], 18081))]);
        assert_eq!(a.threads, 1);
        assert!(Args::try_parse_from(["bench-upstream", "--threads", "0"]).is_err());
        assert!(Args::try_parse_from(["bench-upstream", "--listen", "nope"]).is_err());
    }

    #[test]
    fn routes_answer_their_envelopes() {
        let p = |m: Method, path: &str| answer(&m, path).1;
        assert_eq!(p(Method::PATCH, "/v4/Users/1001/Password"), V4_PASSWORD);
        assert_eq!(p(Method::PATCH, "/v4/Users/1001/Email"), V4_EMAIL);
        assert_eq!(p(Method::PUT, "/v4/Users/1001/"), V4_PROFILE);
        assert_eq!(p(Method::POST, "/v4/Users/ForgotPassword"), V4_FORGOT);
        assert_eq!(
            p(Method::POST, "/v4/Users/ForgotPassword/Finish"),
            V4_FINISH
        );
        assert_eq!(p(Method::PUT, "/User/1001"), LEGACY_USER);
        assert_eq!(answer(&Method::GET, "/nope").0, StatusCode::NOT_FOUND);
    }
}
