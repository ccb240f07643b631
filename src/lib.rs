//! legacy-gateway: keeps legacy User API and user-registry clients working in front of
//! Naviga's Users Orchestrator API (v4).
//!
//! # Layout
//! Modules in layers, each using only its own layer and those below (`.ci/layers.py` checks
//! it in CI; the README's Layout section has the same list with files):
//! - Building blocks: [`body`], [`redact`] (what never leaves), [`host`] (Host syntax),
//!   [`metrics`] (per-thread shards, summed at scrape time), [`source`] (TOML with errors
//!   naming file, line and field).
//! - Data: [`translate`] (pure: key case, v4 paths, the v4 envelope), [`mapping`] (the
//!   files under `mappings/`, checked), [`telemetry`] (OpenTelemetry traces, free when off).
//! - Configuration and what reads only it: [`config`] (one file and check per section),
//!   [`logging`], [`modes`] (mode rules, the canary split), [`ratelimit`], [`instance`]
//!   (the configuration hash).
//! - Talking to others: [`identity`] (JWT → current user), [`upstream`] (v4 calls over
//!   per-worker HTTP/1.1 pools), [`tenant`] (Host → tenant), [`healthcheck`] (the container
//!   probe command).
//! - Failures and answers: [`error`] (the [`error::GatewayError`] types), [`legacy`] (the two
//!   legacy shapes, and `legacy::refusal`: the one place an error becomes an answer),
//!   [`request`], [`audit`].
//! - One request's world: [`runtime`] (everything a request needs, rebuilt on reload),
//!   [`passthrough`] (legacy mode), [`events`] (event record translation).
//! - [`routes`]: the legacy routes (User API update and read, action API).
//! - [`shadow`]: copies replayed through the routes and compared, on an idle-priority lane.
//! - [`gateway`]: the current runtime (arc-swapped; a copy per worker thread), shadow
//!   figures, reload.
//! - Serving: [`router`] (route and mode, 404/405), [`layers`] (the one edge layer), [`ops`]
//!   (`/_gateway/` endpoints), [`watch`] (reload on file change).
//! - Listeners: [`stack`] (the service a worker serves), [`admin`] (the admin listener),
//!   [`server`] (thread-per-core workers, the accept loop, graceful shutdown), [`sandbox`]
//!   (the embedded v4 orchestrator).
//! - [`cli`]: the commands (`serve`, `check`, `sandbox`, `events`, `healthcheck`); `main.rs`
//!   only calls it. This file wires a gateway together ([`start`], [`app`]).
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod body;
pub mod cli;
pub mod config;
pub mod error;
pub mod events;
pub mod gateway;
pub mod healthcheck;
pub mod host;
pub mod identity;
pub mod instance;
pub mod layers;
pub mod legacy;
pub mod logging;
pub mod mapping;
pub mod metrics;
pub mod modes;
pub mod ops;
pub mod passthrough;
pub mod ratelimit;
pub mod redact;
pub mod request;
pub mod router;
pub mod routes;
pub mod runtime;
pub mod sandbox;
pub mod server;
pub mod shadow;
pub mod source;
pub mod stack;
pub mod telemetry;
pub mod tenant;
pub mod translate;
pub mod upstream;
pub mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use config::Config;
use error::{GatewayError, Reply};
use gateway::Gateway;
use mapping::Mappings;
use metrics::Metrics;
use runtime::Runtime;

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

/// The whole service, without a socket. Build it on the thread that serves it (each worker
/// builds its own).
pub fn app(gw: Arc<Gateway>) -> stack::GatewayService {
    stack::build(gw)
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
            tracing::info!(
                sandbox = %handle.url(),
                "no orchestrator configured: using the embedded v4 sandbox (in-memory users; not for production)"
            );
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
    let gw = Gateway::new(runtime, metrics, overrides, sandbox_url);
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
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .cloned()
            .unwrap_or_else(|| ids.next());
        let mut resp = GatewayError::Overloaded.into_response(
            rt.family_of(req.uri().path()),
            &Reply {
                request_id: request_id.to_str().unwrap_or(""),
                ..Reply::default()
            },
            &rt.mappings,
        );
        resp.headers_mut().insert(request::REQUEST_ID, request_id);
        resp
    };
    let opts = server::ServeOptions {
        header_read_timeout: limits.header_read_timeout,
        shutdown_grace: limits.shutdown_grace,
        max_connections: limits.max_connections,
        preserve_header_case: {
            let gw = gw.clone();
            server::CaseSwitch(Arc::new(move || {
                let rt = gw.runtime();
                rt.user_api_backend.is_some() || rt.registry_backend.is_some()
            }))
        },
    };
    let admin_opts = server::ServeOptions {
        max_connections: 256,
        preserve_header_case: server::CaseSwitch(Arc::new(|| false)),
        ..opts.clone()
    };
    let admin_service = admin::service(gw.clone());
    let make = {
        let gw = gw.clone();
        move || app(gw.clone())
    };
    let pool = server::Workers::start(listeners, make, overload, opts)
        .map_err(|e| StartError::Invalid(format!("cannot start the worker threads: {e}")))?;
    // Logged once every worker accepts: tools wait for these lines.
    tracing::info!(%addr, workers, orchestrator = %redact::url(&orchestrator), "legacy-gateway listening");
    tracing::info!(addr = %admin_addr, "legacy-gateway admin endpoints (/_gateway/) on this address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
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
