//! The accept loop of one listener: protocol choice (HTTP/1.1 or HTTP/2), the connection
//! limit and its refusal, the peer address, idle HTTP/2 connections, and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::idle::Activity;
use super::sniff::sniff;
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
    // Requests are read without a header-case map (field names are case-insensitive, RFC
    // 9110 5.1; the map cost every request a second one). Answers are still written with
    // the case map an answer carries: legacy answers keep the backend's case (see
    // `passthrough`).
    let mut h1 = hyper::server::conn::http1::Builder::new();
    h1.timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout);
    let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builders = Arc::new(Builders { h1, h2 });
    // Every connection holds a receiver: `true` asks it to finish gracefully, and the
    // sender's `closed()` says when the last one has.
    let (closing, close_rx) = tokio::sync::watch::channel(false);
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
                let (builders, close) = (builders.clone(), close_rx.clone());
                let (service, sniff_timeout) = (service.clone(), opts.header_read_timeout);
                // The sniffing task ends here; the connection gets a task sized for its own
                // protocol.
                tokio::spawn(async move {
                    let Some((io, http2)) = sniff(stream, sniff_timeout).await else {
                        return;
                    };
                    let io = TokioIo::new(io);
                    if http2 {
                        let activity = Activity::new();
                        let service = counted(service, peer, &activity);
                        let conn = builders.h2.serve_connection(io, service);
                        let idle = async move { activity.idle_for(sniff_timeout).await };
                        tokio::spawn(drive(
                            conn,
                            |c| c.graceful_shutdown(),
                            idle,
                            close,
                            permit,
                            peer,
                        ));
                    } else {
                        // No activity count: hyper's header-read timer closes an idle
                        // HTTP/1 connection, and counting would cost every request.
                        let conn = builders.h1.serve_connection(io, with_peer(service, peer));
                        let idle = std::future::pending();
                        tokio::spawn(drive(
                            conn,
                            |c| c.graceful_shutdown(),
                            idle,
                            close,
                            permit,
                            peer,
                        ));
                    }
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

/// The connection builders of one listener, made once.
struct Builders {
    h1: hyper::server::conn::http1::Builder,
    h2: hyper::server::conn::http2::Builder<TokioExecutor>,
}

/// `service` for one connection: each request carries the peer's address.
fn peer_tagged<S, B>(service: S, peer: std::net::SocketAddr) -> impl Serves<B>
where
    S: Serves<B>,
{
    let peer = PeerAddr::new(peer);
    tower::ServiceExt::map_request(service, move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(peer.clone());
        req
    })
}

/// [`peer_tagged`], as hyper serves it: an HTTP/1 connection's.
fn with_peer<S, B>(service: S, peer: std::net::SocketAddr) -> TowerToHyperService<impl Serves<B>>
where
    S: Serves<B>,
{
    TowerToHyperService::new(peer_tagged(service, peer))
}

/// [`peer_tagged`], each request counting as in progress on `activity` until its answer's
/// head is ready: an HTTP/2 connection's, whose idle timeout reads the count.
fn counted<S, B>(
    service: S,
    peer: std::net::SocketAddr,
    activity: &Arc<Activity>,
) -> TowerToHyperService<impl Serves<B>>
where
    S: Serves<B>,
{
    let with_peer = peer_tagged(service, peer);
    let activity = activity.clone();
    TowerToHyperService::new(tower::ServiceExt::map_future(with_peer, move |answer| {
        let busy = activity.busy();
        async move {
            let answer = answer.await;
            drop(busy);
            answer
        }
    }))
}

/// Runs one connection to its end: asked to finish gracefully when the listener closes or
/// when `idle` resolves, it ends once its requests in progress are answered. The permit is
/// given back then.
///
/// The listener's close signal is polled once, to register this task with it, and after that
/// only when its version says it was sent (one atomic load). A connection's task is woken for
/// every read and write of every request, and polling the signal each time (a lock on the
/// channel's waiter list, as a `select!` does) cost every request more than the rest of this
/// loop. The registration stays while the future is kept, so the signal still wakes an idle
/// connection.
async fn drive<C, E>(
    conn: C,
    finish: impl Fn(Pin<&mut C>),
    idle: impl Future<Output = ()>,
    close: tokio::sync::watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
    peer: std::net::SocketAddr,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    {
        let mut signal = close.clone();
        let closing = signal.wait_for(|c| *c);
        tokio::pin!(conn);
        tokio::pin!(idle);
        tokio::pin!(closing);
        let mut finishing = false;
        let mut registered = false;
        std::future::poll_fn(|cx| loop {
            if let Poll::Ready(ended) = conn.as_mut().poll(cx) {
                if let Err(e) = ended {
                    tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                }
                return Poll::Ready(());
            }
            if finishing {
                return Poll::Pending;
            }
            // Sent (or the listener gone, which `has_changed` reports as an error).
            let look = !registered || !matches!(close.has_changed(), Ok(false));
            registered = true;
            if look && closing.as_mut().poll(cx).is_ready() {
                finish(conn.as_mut());
                finishing = true;
                continue;
            }
            if idle.as_mut().poll(cx).is_ready() {
                tracing::debug!(peer = %peer, "idle HTTP/2 connection closed");
                finish(conn.as_mut());
                finishing = true;
                continue;
            }
            return Poll::Pending;
        })
        .await;
    }
    drop(close);
    drop(permit);
}
