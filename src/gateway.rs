//! The gateway's state: the current [`Runtime`] (configuration, mappings, upstream client),
//! swapped atomically on reload, and what lives as long as the process (metrics).

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::identity::Verifier;
use crate::legacy::Family;
use crate::mapping::Mappings;
use crate::metrics::Metrics;
use crate::upstream::{Upstream, UpstreamOptions};

/// Everything a request needs, fixed for the life of the request even if a reload happens.
pub struct Runtime {
    pub config: Config,
    pub mappings: Arc<Mappings>,
    pub upstream: Upstream,
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
        let upstream = Upstream::new(
            orchestrator,
            UpstreamOptions {
                timeout: l.upstream_timeout,
                connect_timeout: l.connect_timeout,
                max_body: l.upstream_body_bytes,
                ca_pem,
            },
            metrics,
        )?;
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
            config,
            mappings: Arc::new(mappings),
            upstream,
            user_api_paths,
            registry_path,
            verifier,
            sandbox,
        })
    }

    pub fn family_of(&self, path: &str) -> Family {
        if path.eq_ignore_ascii_case(&self.registry_path) {
            Family::Registry
        } else {
            Family::UserApi
        }
    }
}

pub struct Gateway {
    runtime: ArcSwap<Runtime>,
    pub metrics: Arc<Metrics>,
}

impl Gateway {
    pub fn new(runtime: Runtime, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            runtime: ArcSwap::from_pointee(runtime),
            metrics,
        })
    }

    /// The runtime for one request: a cheap snapshot, unaffected by a concurrent reload.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    pub fn swap(&self, runtime: Runtime) {
        self.runtime.store(Arc::new(runtime));
    }
}
