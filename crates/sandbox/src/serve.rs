//! The sandbox's own serve loop, on a listener its caller binds: HTTP/1.1 and HTTP/2 (hyper
//! 1 through hyper-util's auto builder), a bound on open connections answered with v4's
//! `E503`, a deadline on a new connection's first byte and on request headers, and graceful
//! shutdown. Deliberately small: it serves
//! a stand-in on loopback, and it is not the gateway's server, so a fault in that server
//! shows up in the gateway's tests instead of being shared by both ends.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;

use crate::envelope::Failure;
use crate::handler;
use crate::Sandbox;

/// The connection-level bounds of one serve loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Connections served at once; one more is answered `503 E503` and closed, which tells a
    /// client more than a connection left waiting in the kernel's backlog.
    pub max_connections: usize,
    /// Time a new connection has to send its first byte, and an HTTP/1 client a request's
    /// headers.
    pub header_read_timeout: Duration,
    /// How long requests in progress may run once shutdown begins.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A sandbox served in the background; dropping it stops the server too.
pub struct SandboxHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SandboxHandle {
    /// The bound address (the actual port when the listener was bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to configure as the v4 orchestrator; an unspecified bind address
    /// (`0.0.0.0`) is given as loopback, which is where a local client reaches it.
    pub fn url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// Stops accepting, lets requests in progress finish (within the grace period) and
    /// returns once the server task has ended.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        // Dropping the sender is enough: the serve loop treats a closed channel as shutdown.
        self.stop.take();
    }
}

/// Serves `sandbox` on `listener` in a background task until the handle is dropped or shut
/// down. Call it inside a tokio runtime.
pub fn spawn(listener: TcpListener, sandbox: Arc<Sandbox>) -> std::io::Result<SandboxHandle> {
    let limits = Limits {
        // A test fixture: dropping it should not keep a test waiting long.
        shutdown_grace: Duration::from_secs(2),
        ..Limits::default()
    };
    spawn_with(listener, sandbox, limits)
}

pub(crate) fn spawn_with(
    listener: TcpListener,
    sandbox: Arc<Sandbox>,
    limits: Limits,
) -> std::io::Result<SandboxHandle> {
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stopped = async {
            let _ = stopped.await;
        };
        serve_with(listener, sandbox, limits, stopped).await;
    });
    Ok(SandboxHandle {
        addr,
        stop: Some(stop),
        task: Some(task),
    })
}

/// Serves `sandbox` on `listener` until `shutdown` resolves, then stops accepting, lets
/// requests in progress finish and returns.
pub async fn serve(
    listener: TcpListener,
    sandbox: Arc<Sandbox>,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, sandbox, Limits::default(), shutdown).await;
}

async fn serve_with(
    listener: TcpListener,
    sandbox: Arc<Sandbox>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, peer)) =
            accepted.inspect_err(|e| tracing::warn!(error = %e, "sandbox: accept failed"))
        else {
            // Out of file descriptors and the like: wait a little instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            let io = TokioIo::new(stream);
            tracing::warn!(%peer, "sandbox: connection limit reached; refusing");
            let refuse = service_fn(|_: http::Request<Incoming>| async {
                Ok::<_, Infallible>(Failure::Overloaded.into_response())
            });
            let mut one = hyper::server::conn::http1::Builder::new();
            one.keep_alive(false)
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            tokio::spawn(async move {
                let _ = one.serve_connection(io, refuse).await;
            });
            continue;
        };
        let sandbox = Arc::clone(&sandbox);
        let service = service_fn(move |req: http::Request<Incoming>| {
            let sandbox = Arc::clone(&sandbox);
            async move { Ok::<_, Infallible>(handler::handle(&sandbox, req).await) }
        });
        let (builder, watcher) = (Arc::clone(&builder), graceful.watcher());
        let first_byte = limits.header_read_timeout;
        tokio::spawn(async move {
            // hyper's header timeout starts once the protocol is known; a client that sends
            // nothing at all would hold its slot until shutdown.
            let mut byte = [0u8; 1];
            if !matches!(
                tokio::time::timeout(first_byte, stream.peek(&mut byte)).await,
                Ok(Ok(1..))
            ) {
                // The slot is free before the client sees the connection end.
                drop(permit);
                return;
            }
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "sandbox: connection ended with an error");
            }
            drop(permit);
        });
    }

    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?limits.shutdown_grace, "sandbox: requests did not finish in time");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    async fn start(limits: Limits) -> SandboxHandle {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        spawn_with(listener, Sandbox::new(crate::codes::shipped()), limits).unwrap()
    }

    async fn health(client: &reqwest::Client, handle: &SandboxHandle) -> (u16, Value) {
        let res = client
            .get(format!("{}/_sandbox/health", handle.url()))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    #[tokio::test]
    async fn serves_http1_and_http2() {
        let handle = start(Limits::default()).await;
        let h1 = reqwest::Client::builder().http1_only().build().unwrap();
        let h2 = reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap();
        for client in [h1, h2] {
            assert_eq!(
                health(&client, &handle).await,
                (200, serde_json::json!({"status": "ok"}))
            );
        }
        handle.shutdown().await;
    }

    #[tokio::test]
    async fn a_connection_beyond_the_limit_is_answered_e503() {
        let handle = start(Limits {
            max_connections: 1,
            ..Limits::default()
        })
        .await;
        // The first client keeps its connection open (idle in its pool), holding the one slot.
        let first = reqwest::Client::new();
        assert_eq!(health(&first, &handle).await.0, 200);
        let (status, body) = health(&reqwest::Client::new(), &handle).await;
        assert_eq!(status, 503);
        assert_eq!(body["message"]["code"], "UsersOrchestrator_E503");
        assert_eq!(body["message"]["type"], "Error");
        // The connection holding the slot still answers.
        assert_eq!(health(&first, &handle).await.0, 200);
        handle.shutdown().await;
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_and_gives_its_slot_back() {
        use tokio::io::AsyncReadExt;

        let handle = start(Limits {
            max_connections: 1,
            header_read_timeout: Duration::from_millis(100),
            ..Limits::default()
        })
        .await;
        let mut silent = tokio::net::TcpStream::connect(handle.addr()).await.unwrap();
        // Hang guard only: the server closes the connection (end of stream, nothing written).
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(30), silent.read_to_end(&mut buf))
            .await
            .expect("the server closes a silent connection");
        assert_eq!(read.unwrap(), 0);
        assert_eq!(health(&reqwest::Client::new(), &handle).await.0, 200);
        handle.shutdown().await;
    }

    #[tokio::test]
    async fn shutdown_closes_the_listener() {
        let handle = start(Limits::default()).await;
        let url = format!("{}/_sandbox/health", handle.url());
        handle.shutdown().await;
        let refused = reqwest::Client::new().get(url).send().await;
        assert!(refused.is_err(), "{refused:?}");
    }
}
