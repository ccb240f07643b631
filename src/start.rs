//! A gateway wired together: the configuration checked, the runtime built (on the embedded
//! sandbox when no orchestrator is configured), the workers and the admin listener started,
//! SIGHUP and shutdown hooked up. `cli.rs` calls it for `serve`; the tests call it to run
//! gateways in-process.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::Config;
use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::mapping::Mappings;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::{admin, body, config, redact, request, sandbox, server, stack};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the embedded sandbox: {0}")]
    Sandbox(std::io::Error),
}

/// A started gateway.
pub struct Running {
    pub addr: SocketAddr,
    /// The admin listener (`/_gateway/…`).
    pub admin_addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    /// The embedded sandbox, when no orchestrator is configured.
    pub sandbox: Option<sandbox::SandboxHandle>,
    stop: tokio::sync::oneshot::Sender<()>,
    join: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    /// Stops accepting, finishes in-flight requests within the grace period, and returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.join.await;
        if let Some(s) = self.sandbox {
            s.shutdown().await;
        }
    }

    /// Runs until the server stops by itself (after `shutdown` resolved).
    pub async fn wait(self) {
        let _ = self.join.await;
        if let Some(s) = self.sandbox {
            s.shutdown().await;
        }
    }
}

/// Starts the gateway: the sandbox if no orchestrator is configured, the listener, the
/// server task. Returns once it accepts connections; `shutdown` ends it.
pub async fn start(
    config: Config,
    mappings: Mappings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    start_with(config, mappings, config::Overrides::default(), shutdown).await
}

/// [`start`], remembering the command-line overrides so a reload applies them again.
pub async fn start_with(
    config: Config,
    mappings: Mappings,
    overrides: config::Overrides,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    let metrics = Metrics::new();
    let (orchestrator, sandbox) = match &config.orchestrator {
        Some(url) => {
            warn_if_plain_http(url);
            (url.clone(), None)
        }
        None => {
            let sb = sandbox::Sandbox::new(mappings.events.clone());
            let handle = sandbox::spawn(SocketAddr::from(([127, 0, 0, 1], 0)), sb)
                .await
                .map_err(StartError::Sandbox)?;
            if config.listen.ip().is_loopback() {
                tracing::info!(
                    sandbox = %handle.url(),
                    "no orchestrator configured: using the embedded v4 sandbox (in-memory users; not for production)"
                );
            } else {
                // Only with `sandbox = true` (the configuration refuses it otherwise).
                tracing::warn!(
                    sandbox = %handle.url(),
                    listen = %config.listen,
                    "serving the embedded v4 sandbox off loopback, as asked (--sandbox): fake users, any token accepted; not for production"
                );
            }
            let url = reqwest::Url::parse(&handle.url())
                .map_err(|e| StartError::Invalid(e.to_string()))?;
            (url, Some(handle))
        }
    };
    let listen = config.listen;
    let runtime_workers = config.workers;
    let admin_listen = config.admin_listen;
    let limits = config.limits.clone();
    let runtime = Runtime::new(
        config,
        mappings,
        &orchestrator,
        sandbox.is_some(),
        metrics.clone(),
    )
    .await
    .map_err(StartError::Invalid)?;
    let sandbox_url = sandbox.as_ref().map(|_| orchestrator.clone());
    let gw = Gateway::new(runtime, metrics.clone(), overrides, sandbox_url);
    metrics.sandbox_active(sandbox.is_some());
    spawn_sighup_reload(gw.clone());
    let workers = server::worker_count(runtime_workers);
    let (listeners, addr) =
        server::Workers::bind(listen, workers).map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
    let (admin_listener, admin_addr) =
        server::bind(admin_listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: admin_listen,
                source,
            })?;

    let overload_gw = gw.clone();
    let ids = request::RequestIds;
    let overload = move |req: &http::Request<hyper::body::Incoming>| {
        let rt = overload_gw.runtime();
        // Outside the edge: make the id here, so even this answer can be traced.
        let request_id = req
            .headers()
            .get(request::REQUEST_ID)
            .filter(|v| request::usable_id(v))
            .cloned()
            .unwrap_or_else(|| ids.next());
        let mut resp = RequestContext::at_edge(&rt, req.uri(), request_id.clone())
            .answer(&rt, GatewayError::Overloaded);
        resp.headers_mut().insert(request::REQUEST_ID, request_id);
        resp
    };
    let opts = server::ServeOptions {
        header_read_timeout: limits.header_read_timeout,
        shutdown_grace: limits.shutdown_grace,
        max_connections: limits.max_connections,
    };
    let admin_opts = server::ServeOptions {
        max_connections: 256,
        ..opts.clone()
    };
    let admin_service = admin::service(gw.clone());
    // Each worker builds its own service, on its own thread.
    let make = {
        let gw = gw.clone();
        move || stack::build(gw.clone())
    };
    let pool = server::Workers::start(listeners, make, overload, opts)
        .map_err(|e| StartError::Invalid(format!("cannot start the worker threads: {e}")))?;
    // Logged once every worker accepts: tools wait for these lines.
    tracing::info!(%addr, workers, orchestrator = %redact::url(&orchestrator), "legacy-gateway listening");
    tracing::info!(addr = %admin_addr, "legacy-gateway admin endpoints (/_gateway/) on this address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let draining = gw.clone();
    let join = tokio::spawn(async move {
        let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin_overload = |_: &http::Request<hyper::body::Incoming>| {
            let mut resp = http::Response::new(body::empty());
            *resp.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            resp
        };
        // The admin listener runs on this (the process's) runtime; the client listener on
        // the workers'. Both stop together.
        let admin = tokio::spawn(server::serve(
            admin_listener,
            admin_service,
            admin_overload,
            admin_opts,
            async move {
                let _ = admin_stopped.await;
            },
        ));
        tokio::select! {
            _ = shutdown => {},
            _ = stopped => {},
        }
        draining
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        pool.stop();
        let _ = admin_stop.send(());
        pool.wait().await;
        let _ = admin.await;
    });
    Ok(Running {
        addr,
        admin_addr,
        gateway: gw,
        sandbox,
        stop,
        join,
    })
}

/// Passwords travel in these calls: plain HTTP is only acceptable on the machine itself.
fn warn_if_plain_http(url: &reqwest::Url) {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        tracing::warn!(upstream = %redact::url(url), "plain-HTTP upstream outside loopback: passwords and tokens would cross the network unencrypted");
    }
}

/// SIGHUP reloads the configuration, as operators expect of a long-running daemon.
fn spawn_sighup_reload(gw: Arc<Gateway>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        let weak = Arc::downgrade(&gw);
        drop(gw);
        while hup.recv().await.is_some() {
            let Some(gw) = weak.upgrade() else { break };
            if let Err(e) = gw.reload().await {
                tracing::error!(error = %e, "reload refused; the running configuration stays");
            }
        }
    });
    #[cfg(not(unix))]
    let _ = gw;
}
