//! The hyper 1.x accept loop: HTTP/1.1 and HTTP/2, a bound on open connections, slow-client
//! timeouts and graceful shutdown. Knows nothing about legacy APIs: it serves any tower service.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The connection's peer, in every request's extensions: the client IP for rate limits and
/// `X-Forwarded-For` comes from the socket, not from what the client writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Connection-level limits; the defaults suit a gateway in front of browsers and apps.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time a client has to send its request headers (slowloris guard).
    pub header_read_timeout: Duration,
    /// How long in-flight requests may run after shutdown begins.
    pub shutdown_grace: Duration,
    /// Connections served at once; the excess gets `overload` and is closed.
    pub max_connections: usize,
    /// Asked once per new connection: keep the header-name case of its requests (and write
    /// answers with the case they carry)? Only a legacy backend needs it, and keeping a case
    /// map costs every request a second header map (issue #6), so the gateway answers
    /// "yes" only while a legacy backend is configured.
    pub preserve_header_case: CaseSwitch,
}

/// See [`ServeOptions::preserve_header_case`].
#[derive(Clone)]
pub struct CaseSwitch(pub Arc<dyn Fn() -> bool + Send + Sync>);

impl std::fmt::Debug for CaseSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CaseSwitch")
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(20),
            max_connections: 10_000,
            preserve_header_case: CaseSwitch(Arc::new(|| true)),
        }
    }
}

/// What a listener serves: a cloneable tower service of hyper requests that answers every
/// request (its errors are answers too).
pub trait Serves<B>:
    tower::Service<
        Request<Incoming>,
        Response = Response<B>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S, B> Serves<B> for S where
    S: tower::Service<
            Request<Incoming>,
            Response = Response<B>,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// A body hyper can send.
pub trait AnswerBody:
    http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static
{
}

impl<B> AnswerBody for B where
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static
{
}

/// The answer to a connection over the limit, made from its first request.
pub trait Overload<B>:
    Fn(&Request<Incoming>) -> Response<B> + Clone + Send + Sync + 'static
{
}

impl<O, B> Overload<B> for O where
    O: Fn(&Request<Incoming>) -> Response<B> + Clone + Send + Sync + 'static
{
}

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
async fn serve_with<S, B, O, OB>(
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

/// The HTTP/2 client preface; `auto::Builder` reads up to this many bytes to pick the protocol.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Bounds the protocol sniffing of a new connection by `header_read_timeout`.
///
/// `auto::Builder` reads the first bytes (up to the 24-byte HTTP/2 preface) to choose HTTP/1
/// or HTTP/2 with no timeout of its own, and HTTP/1's header-read timeout only starts after
/// that: a client that connects and sends nothing (or a few preface bytes) would otherwise
/// hold a connection permit forever (tests/faults.rs, slowloris). Reads fail with `TimedOut`
/// once the deadline passes while the bytes seen so far could still be the preface; the
/// deadline is dropped as soon as they cannot (HTTP/1) or the preface is complete (HTTP/2).
struct SniffDeadline<I> {
    io: I,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    matched: usize,
}

impl<I> SniffDeadline<I> {
    fn new(io: I, timeout: Duration) -> Self {
        Self {
            io,
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
            matched: 0,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for SniffDeadline<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        let Some(deadline) = this.deadline.as_mut() else {
            return result;
        };
        match &result {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                let rest = &H2_PREFACE[this.matched..];
                let n = new.len().min(rest.len());
                if new.is_empty() || new[..n] != rest[..n] || this.matched + n == H2_PREFACE.len() {
                    this.deadline = None;
                } else {
                    this.matched += n;
                }
            }
            Poll::Ready(Err(_)) => this.deadline = None,
            Poll::Pending => {
                if deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no request started within the header read timeout",
                    )));
                }
            }
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for SniffDeadline<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Serves the client listener thread-per-core (issue #15): `workers` threads, each with its
/// own current-thread tokio runtime, its own listening socket on `addr` (`SO_REUSEPORT`, so
/// the kernel spreads new connections over them) and its own service built by `make` on that
/// thread. A connection lives on the worker that accepted it, with everything its requests
/// touch: no work stealing, no wake-ups on other cores, no shared pool or counter. Nginx and
/// the fastest hyper servers are arranged the same way; one multi-threaded runtime reached
/// only half their throughput per core on 8 cores.
///
/// Only the connection limit is shared (one permit per connection, not per request), so
/// `max_connections` keeps meaning the whole process.
pub struct Workers {
    /// The address actually bound (port 0 picks one free port for every worker).
    pub addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    done: Vec<tokio::sync::oneshot::Receiver<()>>,
}

impl Workers {
    /// Binds every worker's socket now, so a bad address fails the start, not a thread.
    pub fn bind(
        addr: SocketAddr,
        workers: usize,
    ) -> std::io::Result<(Vec<std::net::TcpListener>, SocketAddr)> {
        let first = reuseport_listener(addr)?;
        let bound = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..workers.max(1) {
            listeners.push(reuseport_listener(bound)?);
        }
        Ok((listeners, bound))
    }

    /// Starts one thread per listener.
    pub fn start<F, S, B, O, OB>(
        listeners: Vec<std::net::TcpListener>,
        make: F,
        overload: O,
        opts: ServeOptions,
    ) -> std::io::Result<Self>
    where
        F: Fn() -> S + Send + Sync + 'static,
        S: Serves<B>,
        B: AnswerBody,
        O: Overload<OB>,
        OB: AnswerBody,
    {
        let addr = listeners[0].local_addr()?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let make = Arc::new(make);
        let permits = Arc::new(Semaphore::new(opts.max_connections.max(1)));
        let mut done = Vec::with_capacity(listeners.len());
        // Each worker says once it is ready (runtime built, socket registered) or why not,
        // so `start` returns only when every worker accepts.
        let (ready, readiness) = std::sync::mpsc::channel::<Result<(), String>>();
        let count = listeners.len();
        for (i, listener) in listeners.into_iter().enumerate() {
            let (finished, finished_rx) = tokio::sync::oneshot::channel();
            done.push(finished_rx);
            let (make, overload, opts, permits, ready) = (
                make.clone(),
                overload.clone(),
                opts.clone(),
                permits.clone(),
                ready.clone(),
            );
            let mut stopped = stopped.clone();
            std::thread::Builder::new()
                .name(format!("gw-worker-{i}"))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = ready.send(Err(format!("worker {i}: runtime: {e}")));
                            return;
                        }
                    };
                    rt.block_on(async move {
                        let listener = match listener
                            .set_nonblocking(true)
                            .and_then(|()| TcpListener::from_std(listener))
                        {
                            Ok(l) => l,
                            Err(e) => {
                                let _ = ready.send(Err(format!("worker {i}: listener: {e}")));
                                return;
                            }
                        };
                        let service = make();
                        crate::logging::batch_this_thread();
                        tokio::spawn(async {
                            let mut every = tokio::time::interval(Duration::from_millis(100));
                            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                            loop {
                                every.tick().await;
                                crate::logging::flush_this_thread();
                            }
                        });
                        let _ = ready.send(Ok(()));
                        let shutdown = async move {
                            let _ = stopped.wait_for(|s| *s).await;
                        };
                        serve_with(listener, service, overload, opts, permits, shutdown).await;
                    });
                    crate::logging::flush_this_thread();
                    let _ = finished.send(());
                })?;
        }
        drop(ready);
        for _ in 0..count {
            match readiness.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let _ = stop.send(true);
                    return Err(std::io::Error::other(e));
                }
                Err(_) => {
                    let _ = stop.send(true);
                    return Err(std::io::Error::other(
                        "a worker thread ended while starting",
                    ));
                }
            }
        }
        Ok(Self { addr, stop, done })
    }

    /// Stops accepting on every worker; each finishes its in-flight requests within the grace.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Resolves when every worker has stopped.
    pub async fn wait(self) {
        for d in self.done {
            let _ = d.await;
        }
    }
}

/// A listening socket that shares its port with the other workers' (`SO_REUSEPORT`). Like
/// std's listener it sets `SO_REUSEADDR`, so a restart can bind while old connections linger in
/// `TIME_WAIT`.
fn reuseport_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// How many workers serve clients: `--workers` / `workers` / `LEGACY_GATEWAY_WORKERS` when
/// given, else `TOKIO_WORKER_THREADS` (which meant the same before workers existed), else the
/// CPUs this process may run on (its affinity mask, as `taskset` or a container's cpuset sets
/// it, and its cgroup CPU quota).
pub fn worker_count(configured: Option<usize>) -> usize {
    choose_workers(
        configured,
        std::env::var("TOKIO_WORKER_THREADS").ok().as_deref(),
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
    )
}

fn choose_workers(
    configured: Option<usize>,
    tokio_env: Option<&str>,
    cpus: impl FnOnce() -> usize,
) -> usize {
    configured
        .or_else(|| tokio_env.and_then(|v| v.trim().parse().ok()))
        .filter(|n| *n > 0)
        .unwrap_or_else(cpus)
        .max(1)
}

/// Binds and returns the listener with its actual address (port 0 picks a free port).
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Resolves on SIGTERM or Ctrl-C: the signals an orchestrator or an operator sends.
///
/// The handlers are installed when this is called, not when the future is first polled: a
/// SIGTERM that arrives while the gateway is still starting is then a clean shutdown, not the
/// default action (death by the signal). Call it inside the runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = term => {},
                _ = int => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::choose_workers;

    #[test]
    fn the_worker_count_comes_from_config_then_tokio_then_the_cpus() {
        assert_eq!(choose_workers(Some(3), Some("5"), || 8), 3);
        assert_eq!(choose_workers(None, Some("5"), || 8), 5);
        assert_eq!(choose_workers(None, Some(" 2 "), || 8), 2);
        assert_eq!(choose_workers(None, Some("zero"), || 8), 8);
        assert_eq!(choose_workers(None, Some("0"), || 8), 8);
        assert_eq!(choose_workers(None, None, || 8), 8);
        assert_eq!(choose_workers(None, None, || 0), 1);
    }
}
