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
    pub verifier: Verifier,
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
                    )
                })
                .transpose()
        };
        let user_api_backend = backend(&config.user_api_url, "legacy.user-api")?;
        let registry_backend = backend(&config.registry_api_url, "legacy.registry")?;
        let verifier = Verifier::load(&config.identity).await?;
        let mut user_api_paths = matchit::Router::new();
        user_api_paths
            .insert(mappings.user_api.path.to_ascii_lowercase(), ())
            .map_err(|e| format!("user-api route: {e}"))?;
        let registry_path = config
            .registry_path
            .clone()
            .unwrap_or_else(|| mappings.registry.path.clone());
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
            sandbox,
        })
    }

    /// The registry path and anything below it answer in the registry's shape.
    pub fn family_of(&self, path: &str) -> Family {
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

    /// The legacy backend for a path's API, if configured.
    pub fn backend_for(&self, family: Family) -> Option<&LegacyBackend> {
        match family {
            Family::UserApi => self.user_api_backend.as_ref(),
            Family::Registry => self.registry_backend.as_ref(),
        }
    }
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

    /// The runtime for one request: a cheap snapshot, unaffected by a concurrent reload.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
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
        if config.listen != current.config.listen {
            tracing::warn!("`listen` changed: it takes effect at the next restart, not on reload");
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
