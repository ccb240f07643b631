//! The accept loop of one listener: protocol choice (HTTP/1.1 or HTTP/2), the connection
//! limit and its refusal, the peer address, idle HTTP/2 connections, and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::idle::Activity;
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
    // Every connection holds a receiver: `true` asks it to finish gracefully, and the
    // sender's `closed()` says when the last one has.
    let (closing, close_rx) = tokio::sync::watch::channel(false);
    let idle_timeout = opts.header_read_timeout;
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
                let activity = Activity::new();
                let io = TokioIo::new(SniffDeadline::new(
                    stream,
                    opts.header_read_timeout,
                    activity.clone(),
                ));
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
                let counted = {
                    let activity = activity.clone();
                    tower::ServiceExt::map_future(with_peer, move |answer| {
                        let busy = activity.busy();
                        async move {
                            let answer = answer.await;
                            drop(busy);
                            answer
                        }
                    })
                };
                let conn = builder
                    .serve_connection_with_upgrades(io, TowerToHyperService::new(counted))
                    .into_owned();
                let mut close = close_rx.clone();
                tokio::spawn(async move {
                    tokio::pin!(conn);
                    let idle = activity.idle_for(idle_timeout);
                    tokio::pin!(idle);
                    let mut finishing = false;
                    loop {
                        tokio::select! {
                            ended = conn.as_mut() => {
                                if let Err(e) = ended {
                                    tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                                }
                                break;
                            }
                            _ = close.wait_for(|c| *c), if !finishing => {
                                conn.as_mut().graceful_shutdown();
                                finishing = true;
                            }
                            () = &mut idle, if !finishing => {
                                tracing::debug!(peer = %peer, "idle HTTP/2 connection closed");
                                conn.as_mut().graceful_shutdown();
                                finishing = true;
                            }
                        }
                    }
                    drop(close);
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
    drop(close_rx);
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    let _ = closing.send(true);
    if tokio::time::timeout(opts.shutdown_grace, closing.closed())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?opts.shutdown_grace, "in-flight requests did not finish in time");
    }
}
