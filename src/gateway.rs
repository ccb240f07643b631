//! The gateway's state: the current [`Runtime`] (configuration, mappings, upstream clients),
//! swapped atomically on reload, and what lives as long as the process (metrics, shadow
//! figures). A request takes one snapshot of the runtime and keeps it to the end, so a reload
//! never changes the rules under a call in flight and never drops a connection.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;

use crate::config::{Config, Overrides};
use crate::identity::Verifier;
use crate::legacy::Family;
use crate::mapping::Mappings;
use crate::metrics::Metrics;
use crate::passthrough::LegacyBackend;
use crate::shadow::Shadow;
use crate::upstream::client::ClientOptions;
use crate::upstream::{Upstream, UpstreamOptions};

/// Everything a request needs, fixed for the life of the request even if a reload happens.
///
/// Cloned once per worker thread and reload (see [`Gateway::runtime`]): every field is either
/// small or shared behind an `Arc`, so a clone is cheap, and it gives each worker an `Arc` of
/// its own to clone per request.
#[derive(Clone)]
pub struct Runtime {
    pub config: Config,
    pub mappings: Arc<Mappings>,
    pub upstream: Upstream,
    /// The client shadow copies use, only from the shadow lane (see `shadow::lane`): towards
    /// the staging v4 (`shadow.orchestrator_url`) when set, else the orchestrator.
    pub shadow_copies: Upstream,
    /// A staging v4 is configured: only then may writes be copied (never to the live v4).
    pub shadow_writes: bool,
    pub shadow_permits: Arc<Semaphore>,
    pub user_api_backend: Option<LegacyBackend>,
    pub registry_backend: Option<LegacyBackend>,
    /// Legacy User API paths, lower-cased (the legacy API matched paths case-insensitively).
    pub user_api_paths: matchit::Router<()>,
    pub registry_path: String,
    pub verifier: Arc<Verifier>,
    pub rate_limits: Arc<crate::ratelimit::RateLimits>,
    /// True when running on the embedded sandbox: the action API then serves any Host as
    /// the built-in sandbox tenant, so the README's curl lines work with no configuration.
    pub sandbox: bool,
}

impl Runtime {
    pub async fn new(
        config: Config,
        mappings: Mappings,
        orchestrator: &reqwest::Url,
        sandbox: bool,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let ca_pem = match &config.ca_file {
            Some(p) => Some(
                std::fs::read(p)
                    .map_err(|e| format!("{}: cannot read the CA file: {e}", p.display()))?,
            ),
            None => None,
        };
        let l = &config.limits;
        let opts = UpstreamOptions {
            timeout: l.upstream_timeout,
            connect_timeout: l.connect_timeout,
            max_body: l.upstream_body_bytes,
            ca_pem,
            idle_connections: l.upstream_idle_connections,
        };
        let upstream = Upstream::new(orchestrator, opts.clone(), metrics.clone())?;
        let shadow_writes = config.shadow.orchestrator.is_some();
        let shadow_copies = Upstream::new(
            config.shadow.orchestrator.as_ref().unwrap_or(orchestrator),
            opts.clone(),
            metrics,
        )?;
        let legacy_client = ClientOptions {
            connect_timeout: l.connect_timeout,
            ca_pem: opts.ca_pem.as_deref(),
            preserve_header_case: true,
            max_idle_per_host: l.upstream_idle_connections,
        };
        let backend = |url: &Option<url::Url>, label| {
            url.as_ref()
                .map(|u| {
                    LegacyBackend::new(
                        u,
                        &legacy_client,
                        l.upstream_timeout,
                        l.upstream_body_bytes,
                        label,
                        config.trusted_proxies.clone(),
                    )
                })
                .transpose()
        };
        let user_api_backend = backend(&config.user_api_url, "legacy.user-api")?;
        let registry_backend = backend(&config.registry_api_url, "legacy.registry")?;
        let fetch = crate::identity::FetchOptions {
            ca_pem: opts.ca_pem.clone(),
            connect_timeout: l.connect_timeout,
            timeout: l.upstream_timeout,
            max_bytes: l.upstream_body_bytes,
        };
        let verifier = Arc::new(Verifier::load(&config.identity, &fetch).await?);
        let mut user_api_paths = matchit::Router::new();
        user_api_paths
            .insert(mappings.user_api.path.to_ascii_lowercase(), ())
            .map_err(|e| format!("user-api route: {e}"))?;
        let registry_path = config
            .registry_path
            .clone()
            .unwrap_or_else(|| mappings.registry.path.clone());
        let rate_limits = Arc::new(crate::ratelimit::RateLimits::new(&config.rate_limits));
        Ok(Self {
            shadow_permits: Arc::new(Semaphore::new(config.shadow.max_concurrency)),
            config,
            mappings: Arc::new(mappings),
            upstream,
            shadow_writes,
            shadow_copies,
            user_api_backend,
            registry_backend,
            user_api_paths,
            registry_path,
            verifier,
            rate_limits,
            sandbox,
        })
    }

    /// The registry path and anything below it answer in the registry's shape. Some HTTP
    /// client libraries percent-encode the `$` of `/$dwo3rd-userregistry-api/…` as `%24`; that
    /// is the same path (RFC 3986 6.2.2.2 leaves the choice to the client).
    pub fn family_of(&self, path: &str) -> Family {
        if path.contains("%24") {
            return self.family_of_decoded(&path.replace("%24", "$"));
        }
        self.family_of_decoded(path)
    }

    /// The path as the routes compare it: `%24` decoded when that puts it under the registry
    /// path (only there: a User API id keeps its own encoding).
    pub fn route_path<'p>(&self, path: &'p str) -> std::borrow::Cow<'p, str> {
        if path.contains("%24") {
            let decoded = path.replace("%24", "$");
            if self.family_of_decoded(&decoded) == Family::Registry {
                return std::borrow::Cow::Owned(decoded);
            }
        }
        std::borrow::Cow::Borrowed(path)
    }

    fn family_of_decoded(&self, path: &str) -> Family {
        let prefix = self.registry_path.len();
        let under = path.len() >= prefix
            && path.is_char_boundary(prefix)
            && path[..prefix].eq_ignore_ascii_case(&self.registry_path)
            && (path.len() == prefix || path.as_bytes()[prefix] == b'/');
        if under {
            Family::Registry
        } else {
            Family::UserApi
        }
    }

    /// The raw id segment when the path is the User API route: matched case-insensitively,
    /// with one trailing slash accepted (ASP.NET accepted both), the id taken from the
    /// original path at the same byte offset.
    pub fn user_api_raw_id(&self, path: &str) -> Option<String> {
        let path = path.strip_suffix('/').unwrap_or(path);
        let lower = path.to_ascii_lowercase();
        let m = self.user_api_paths.at(&lower).ok()?;
        let param = self.mappings.user_api.id_param.to_ascii_lowercase();
        let v = m.params.get(&param)?;
        let start = v.as_ptr() as usize - lower.as_ptr() as usize;
        Some(path[start..start + v.len()].to_string())
    }

    /// The legacy backend for a path's API, if configured.
    pub fn backend_for(&self, family: Family) -> Option<&LegacyBackend> {
        match family {
            Family::UserApi => self.user_api_backend.as_ref(),
            Family::Registry => self.registry_backend.as_ref(),
        }
    }
}

/// A worker's own handle on the gateway (issue #15). Services clone their handle on every
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

    /// The shared gateway, for the rare paths that keep it beyond the request (shadow copies).
    pub fn shared(&self) -> &Arc<Gateway> {
        &self.0.gw
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
    pub shadow: Shadow,
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
            shadow: Shadow::default(),
            overrides,
            sandbox_url,
            reload_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The runtime for one request: a snapshot, unaffected by a concurrent reload.
    ///
    /// Each thread keeps its own copy of the current runtime (issue #15): requests clone an
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
