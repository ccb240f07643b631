//! The accept loop of one listener: protocol choice (HTTP/1.1 or HTTP/2), the connection
//! limit and its refusal, the peer address, and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::sniff::SniffDeadline;
use super::{AnswerBody, Overload, ServeOptions, Serves};

pub use crate::request::PeerAddr;

/// Serves `service` until `shutdown` resolves, then stops accepting, lets in-flight requests
/// finish within `shutdown_grace`, and returns.
///
/// `overload` answers the requests of connections beyond `max_connections`: accepting them and answering
/// (rather than leaving them in the kernel backlog) gives the client a clear, fast refusal.
pub async fn serve<S, B, O, OB>(
    listener: TcpListener,
    service: S,
    overload: O,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) where
    S: Serves<B>,
    B: AnswerBody,
    O: Overload<OB>,
    OB: AnswerBody,
{
    let permits = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    serve_with(listener, service, overload, opts, permits, shutdown).await
}

/// [`serve`] with a connection limit shared with other listeners (the workers').
pub(super) async fn serve_with<S, B, O, OB>(
    listener: TcpListener,
    service: S,
    overload: O,
    opts: ServeOptions,
    permits: Arc<Semaphore>,
    shutdown: impl Future<Output = ()>,
) where
    S: Serves<B>,
    B: AnswerBody,
    O: Overload<OB>,
    OB: AnswerBody,
{
    let builder = |preserve_case: bool| {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(opts.header_read_timeout)
            // Legacy passthrough answers keep their header-name case (see passthrough.rs).
            .preserve_header_case(preserve_case);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(30)));
        builder
    };
    let (plain, preserving) = (builder(false), builder(true));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let io = TokioIo::new(SniffDeadline::new(stream, opts.header_read_timeout));
                let builder = if (opts.preserve_header_case.0)() {
                    &preserving
                } else {
                    &plain
                };
                let with_peer = tower::ServiceExt::map_request(
                    service.clone(),
                    move |mut req: Request<Incoming>| {
                        req.extensions_mut().insert(PeerAddr(peer));
                        req
                    },
                );
                let conn = builder
                    .serve_connection_with_upgrades(io, TowerToHyperService::new(with_peer))
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                    drop(permit);
                });
            }
            Err(_) => {
                let io = TokioIo::new(stream);
                tracing::warn!(peer = %peer, "connection limit reached; refusing");
                let overload = overload.clone();
                let svc = hyper::service::service_fn(move |req| {
                    let resp = overload(&req);
                    async move { Ok::<_, Infallible>(resp) }
                });
                let mut one = hyper::server::conn::http1::Builder::new();
                one.keep_alive(false)
                    .timer(TokioTimer::new())
                    .header_read_timeout(opts.header_read_timeout);
                tokio::spawn(async move {
                    let _ = one.serve_connection(io, svc).await;
                });
            }
        }
    }

    drop(listener);
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    if tokio::time::timeout(opts.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?opts.shutdown_grace, "in-flight requests did not finish in time");
    }
}
