//! The gateway's state: the current [`Runtime`], swapped atomically on reload, and what lives
//! as long as the process (metrics, shadow figures). A request takes one snapshot of the
//! runtime and keeps it to the end, so a reload never changes the rules under a call in flight
//! and never drops a connection.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{Config, Overrides};
use crate::mapping::Mappings;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::shadow::Shadow;

/// A worker's own handle on the gateway. Services clone their handle on every
/// request; cloning the one shared `Arc<Gateway>` from every core would bounce its reference
/// count between the cores' caches. Each worker's stack holds a `Local` it made itself, so a
/// clone writes memory only that worker touches; the gateway behind it is only read.
#[derive(Clone)]
pub struct Local(Arc<WorkerHandle>);

/// What a [`Local`] points to: allocated by the worker, so its reference count is the
/// worker's own.
struct WorkerHandle {
    gw: Arc<Gateway>,
}

impl Local {
    pub fn new(gw: &Arc<Gateway>) -> Self {
        Self(Arc::new(WorkerHandle { gw: gw.clone() }))
    }
}

impl std::ops::Deref for Local {
    type Target = Gateway;
    fn deref(&self) -> &Gateway {
        &self.0.gw
    }
}

thread_local! {
    /// This thread's copy of the runtime last used here: (the shared one, the local copy).
    static LOCAL_RUNTIME: std::cell::RefCell<Option<(Arc<Runtime>, Arc<Runtime>)>> =
        const { std::cell::RefCell::new(None) };
}

pub struct Gateway {
    runtime: ArcSwap<Runtime>,
    pub metrics: Arc<Metrics>,
    pub shadow: Arc<Shadow>,
    /// `[fallback]`'s rows: kept across reloads, so a reload during a v4 outage does not send
    /// calls back to it.
    pub fallback: crate::fallback::Fallback,
    pub capture: crate::capture::Capture,
    /// Set once shutdown starts: `readyz` then says not ready while in-flight calls finish.
    pub draining: std::sync::atomic::AtomicBool,
    /// The tenant label of answers given before a route (and so a tenant) was chosen.
    pub unrouted_tenant: crate::metrics::TenantLabel,
    /// What a reload starts from: the command-line overrides and, on the embedded sandbox,
    /// its URL (the sandbox keeps running across reloads).
    overrides: Overrides,
    sandbox_url: Option<reqwest::Url>,
    reload_lock: tokio::sync::Mutex<()>,
}

impl Gateway {
    pub fn new(
        runtime: Runtime,
        metrics: Arc<Metrics>,
        overrides: Overrides,
        sandbox_url: Option<reqwest::Url>,
    ) -> Arc<Self> {
        metrics.config_loaded(&crate::instance::config_hash(&runtime.config), false);
        Arc::new(Self {
            runtime: ArcSwap::from_pointee(runtime),
            metrics,
            shadow: Arc::default(),
            fallback: Default::default(),
            capture: Default::default(),
            draining: std::sync::atomic::AtomicBool::new(false),
            unrouted_tenant: crate::metrics::TenantLabel(Arc::from("none")),
            overrides,
            sandbox_url,
            reload_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The runtime for one request: a snapshot, unaffected by a concurrent reload.
    ///
    /// Each thread keeps its own copy of the current runtime: requests clone an
    /// `Arc` per call, and clones of one shared `Arc` from every core would bounce its
    /// reference count between their caches on every request. The shared one is only read
    /// here (an arc-swap load takes no reference count), and compared by address; the cached
    /// pair holds the shared `Arc` too, so that address cannot be reused while cached.
    pub fn runtime(&self) -> Arc<Runtime> {
        let current = self.runtime.load();
        LOCAL_RUNTIME.with(|cell| {
            let mut cell = cell.borrow_mut();
            match &*cell {
                Some((shared, local)) if Arc::ptr_eq(shared, &current) => local.clone(),
                _ => {
                    let shared = arc_swap::Guard::into_inner(current);
                    let local = Arc::new(Runtime::clone(&shared));
                    *cell = Some((shared, local.clone()));
                    local
                }
            }
        })
    }

    /// Reads the configuration file and the mappings again and swaps them in atomically.
    /// On any error the running configuration stays, and the error says what is wrong.
    pub async fn reload(&self) -> Result<(), String> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let result = self.reload_locked().await;
        match &result {
            Ok(hash) => self.metrics.config_loaded(hash, true),
            Err(_) => self.metrics.reload_failed(),
        }
        result.map(|_| ())
    }

    /// The reload itself; returns the new configuration hash.
    async fn reload_locked(&self) -> Result<String, String> {
        let current = self.runtime();
        let config = Config::load(current.config.file.as_deref(), &self.overrides)
            .map_err(|e| e.to_string())?;
        // Sockets and threads are made once, at start.
        for (key, changed) in [
            ("listen", config.listen != current.config.listen),
            (
                "admin_listen",
                config.admin_listen != current.config.admin_listen,
            ),
            ("workers", config.workers != current.config.workers),
        ] {
            if changed {
                tracing::warn!(
                    key,
                    "changed: it takes effect at the next restart, not on reload"
                );
            }
        }
        let mappings = Mappings::load(config.mappings_dir.as_deref()).map_err(|e| e.to_string())?;
        let orchestrator = match (&config.orchestrator, &self.sandbox_url) {
            (Some(u), _) => u.clone(),
            (None, Some(s)) => s.clone(),
            (None, None) => return Err(
                "orchestrator_url was removed and no sandbox is running: restart to change that"
                    .into(),
            ),
        };
        let runtime = Runtime::new(
            config,
            mappings,
            &orchestrator,
            self.sandbox_url.is_some() && current.sandbox,
            self.metrics.clone(),
        )
        .await?;
        let hash = crate::instance::config_hash(&runtime.config);
        self.runtime.store(Arc::new(runtime));
        tracing::info!(config_hash = %hash, "configuration reloaded");
        Ok(hash)
    }
}
