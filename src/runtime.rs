//! The runtime: everything one request needs (configuration, mappings, upstream clients,
//! identity, limits), built from one configuration and never changed afterwards. A reload
//! builds a new one (`gateway.rs` swaps it in); a request keeps the one it started with, so
//! a reload never changes the rules under a call in flight.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::config::Config;
use crate::identity::Verifier;
use crate::legacy::Family;
use crate::mapping::Mappings;
use crate::metrics::{Metrics, TenantLabel};
use crate::passthrough::LegacyBackend;
use crate::upstream::client::ClientOptions;
use crate::upstream::{Upstream, UpstreamOptions};

/// Everything a request needs, fixed for the life of the request even if a reload happens.
///
/// Cloned once per worker thread and reload (see `Gateway::runtime`): every field is either
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
    /// The client copies of reads use, from the shadow lane too: the live v4 unless
    /// `shadow.reads_to_staging` sends them to the staging one.
    pub shadow_reads: Upstream,
    /// A staging v4 is configured: only then may writes be copied (never to the live v4).
    pub shadow_writes: bool,
    pub shadow_permits: Arc<Semaphore>,
    pub user_api_backend: Option<LegacyBackend>,
    pub registry_backend: Option<LegacyBackend>,
    /// Legacy User API paths, lower-cased (the legacy API matched paths case-insensitively).
    pub user_api_paths: matchit::Router<()>,
    pub registry_path: String,
    /// The User API path template around its one parameter (`/User/` and ``), when it has
    /// exactly one: then the id is found without the router.
    user_api_id_at: Option<(String, String)>,
    pub verifier: Arc<Verifier>,
    pub rate_limits: Arc<crate::ratelimit::RateLimits>,
    /// True when running on the embedded sandbox: the action API then serves any Host as
    /// the built-in sandbox tenant, so the README's curl lines work with no configuration.
    pub sandbox: bool,
    /// The tenants figures are labelled with, as configured, per API; anything else is
    /// `other` (a label per value a client sends would let clients grow the metrics).
    tenant_labels: [Vec<TenantLabel>; 2],
    other_tenant: TenantLabel,
}

impl Runtime {
    pub async fn new(
        config: Config,
        mappings: Mappings,
        orchestrator: &reqwest::Url,
        sandbox: bool,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        config.remember_secrets();
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
            metrics.clone(),
        )?;
        let shadow_reads = match &config.shadow.orchestrator {
            Some(staging) if config.shadow.reads_to_staging => staging,
            _ => orchestrator,
        };
        let shadow_reads = Upstream::new(shadow_reads, opts.clone(), metrics)?;
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
        let tenant_labels = configured_tenants(&config);
        let user_api_id_at = one_parameter(&mappings.user_api.path);
        Ok(Self {
            user_api_id_at,
            tenant_labels,
            other_tenant: TenantLabel(Arc::from("other")),
            shadow_permits: Arc::new(Semaphore::new(config.shadow.max_concurrency)),
            config,
            mappings: Arc::new(mappings),
            upstream,
            shadow_writes,
            shadow_copies,
            shadow_reads,
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

    /// The path as the routes compare it, and its API: `%24` decoded when that puts it under
    /// the registry path (only there: a User API id keeps its own encoding). One search for
    /// `%24` serves both.
    pub fn route<'p>(&self, path: &'p str) -> (std::borrow::Cow<'p, str>, Family) {
        if path.contains("%24") {
            let decoded = path.replace("%24", "$");
            if self.family_of_decoded(&decoded) == Family::Registry {
                return (std::borrow::Cow::Owned(decoded), Family::Registry);
            }
            return (std::borrow::Cow::Borrowed(path), Family::UserApi);
        }
        (
            std::borrow::Cow::Borrowed(path),
            self.family_of_decoded(path),
        )
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
        if let Some((prefix, suffix)) = &self.user_api_id_at {
            // The usual template, `/User/{id}`: matched in place, with no lower-cased copy.
            let id = path
                .get(..prefix.len())
                .filter(|p| p.eq_ignore_ascii_case(prefix))
                .and_then(|_| path.get(prefix.len()..path.len().checked_sub(suffix.len())?))
                .filter(|_| {
                    path.get(path.len() - suffix.len()..)
                        .is_some_and(|s| s.eq_ignore_ascii_case(suffix))
                })?;
            return (!id.is_empty() && !id.contains('/')).then(|| id.to_string());
        }
        let lower = path.to_ascii_lowercase();
        let m = self.user_api_paths.at(&lower).ok()?;
        let param = self.mappings.user_api.id_param.to_ascii_lowercase();
        let v = m.params.get(&param)?;
        let start = v.as_ptr() as usize - lower.as_ptr() as usize;
        Some(path[start..start + v.len()].to_string())
    }

    /// The label of a request's tenant (the User API's `X-ClientCode`, the action API's
    /// Host): as configured when it is a configured one, else `other`.
    pub fn tenant_label(&self, family: Family, tenant: &str) -> TenantLabel {
        let i = (family == Family::Registry) as usize;
        self.tenant_labels[i]
            .iter()
            .find(|t| t.0.eq_ignore_ascii_case(tenant))
            .unwrap_or(&self.other_tenant)
            .clone()
    }

    /// The legacy backend for a path's API, if configured.
    pub fn backend_for(&self, family: Family) -> Option<&LegacyBackend> {
        match family {
            Family::UserApi => self.user_api_backend.as_ref(),
            Family::Registry => self.registry_backend.as_ref(),
        }
    }
}

/// Every tenant the configuration names, per API, in its configured spelling: `[[tenants]]`
/// (a client code for the User API, a Host for the action API) and the `[[modes]]` rules'
/// tenants.
fn configured_tenants(config: &Config) -> [Vec<TenantLabel>; 2] {
    let mut user_api: Vec<TenantLabel> = Vec::new();
    let mut registry: Vec<TenantLabel> = Vec::new();
    let add = |list: &mut Vec<TenantLabel>, name: &str| {
        let name = name.trim();
        if !name.is_empty() && !list.iter().any(|t| t.0.eq_ignore_ascii_case(name)) {
            list.push(TenantLabel(Arc::from(name)));
        }
    };
    for t in &config.tenants {
        add(&mut user_api, &t.client_code);
        add(&mut registry, &crate::host::split_host_port(&t.host).0);
    }
    for rule in &config.modes.rules {
        let Some(tenant) = rule.tenant.as_deref() else {
            continue;
        };
        match rule
            .route
            .as_deref()
            .map(|r| r.split('.').next().unwrap_or(r))
        {
            Some("registry") => add(&mut registry, tenant),
            Some(_) => add(&mut user_api, tenant),
            None => {
                add(&mut user_api, tenant);
                add(&mut registry, tenant);
            }
        }
    }
    [user_api, registry]
}

/// A path template's text before and after its only `{parameter}`, when it has exactly one.
fn one_parameter(template: &str) -> Option<(String, String)> {
    let open = template.find('{')?;
    let close = open + template[open..].find('}')?;
    let (prefix, suffix) = (&template[..open], &template[close + 1..]);
    let single = !prefix.contains(['{', '}']) && !suffix.contains(['{', '}']);
    // The parameter must be a whole segment, as the router matches it.
    let whole = prefix.ends_with('/') && (suffix.is_empty() || suffix.starts_with('/'));
    (single && whole).then(|| (prefix.to_string(), suffix.to_string()))
}
