//! The fleet families and what sets them. Nothing here is touched per request, so these are
//! ordinary prometheus-client families, not shards.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::labels::{BuildLabels, ConfigLabels, ReloadLabels, RouteOnly, UpstreamOnly};
use super::Metrics;

/// What a fleet's dashboards and alerts need beyond the per-request figures: which build and
/// which configuration each instance runs, whether reloads work, and shadow-lane state.
/// None of it is touched per request: set at start and reload, or sampled at scrape time.
pub(super) struct Fleet {
    config_info: Family<ConfigLabels, Gauge>,
    reloads: Family<ReloadLabels, Counter>,
    last_reload_success: Gauge,
    last_reload_successful: Gauge,
    shadow_queue_depth: Gauge,
    shadow_queue_capacity: Gauge,
    kill_switch: Family<RouteOnly, Gauge>,
    sandbox_active: Gauge,
    upstream_up: Family<UpstreamOnly, Gauge>,
    /// The hash `config_info` shows, for pages that name it.
    hash: std::sync::Mutex<String>,
}

impl Fleet {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "build_info",
            "Always 1; the label says which release this instance runs",
            build,
        );
        let f = Self {
            config_info: Family::default(),
            reloads: Family::default(),
            last_reload_success: Gauge::default(),
            last_reload_successful: Gauge::default(),
            shadow_queue_depth: Gauge::default(),
            shadow_queue_capacity: Gauge::default(),
            kill_switch: Family::default(),
            sandbox_active: Gauge::default(),
            upstream_up: Family::default(),
            hash: std::sync::Mutex::new(String::new()),
        };
        // Both series from the start, so `increase()` sees the first failure.
        for result in ["success", "failure"] {
            drop(f.reloads.get_or_create(&ReloadLabels { result }));
        }
        f.last_reload_successful.set(1);
        registry.register(
            "config_info",
            "Always 1; the label is the SHA-256 (first 16 hex digits) of the configuration file and mapping files in use",
            f.config_info.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads (SIGHUP, POST /_gateway/reload, file watch) by result (success, failure)",
            f.reloads.clone(),
        );
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load (start or reload)",
            f.last_reload_success.clone(),
        );
        registry.register(
            "config_last_reload_successful",
            "1 if the last reload succeeded (or none was tried), 0 if it was refused",
            f.last_reload_successful.clone(),
        );
        registry.register(
            "shadow_queue_depth",
            "Shadow copies running or waiting now (sampled at scrape time)",
            f.shadow_queue_depth.clone(),
        );
        registry.register(
            "shadow_queue_capacity",
            "Shadow copies that may run or wait at once (shadow.max_concurrency + shadow.max_queue); beyond it copies are dropped",
            f.shadow_queue_capacity.clone(),
        );
        registry.register(
            "shadow_kill_switch_engaged",
            "1 while the route's shadow kill switch pauses its copies (sampled at scrape time)",
            f.kill_switch.clone(),
        );
        registry.register(
            "sandbox_active",
            "1 while this instance serves the embedded sandbox (fake users, any token accepted) instead of a Users Orchestrator",
            f.sandbox_active.clone(),
        );
        registry.register(
            "upstream_up",
            "1 if a TCP connection to the upstream opened at the last readiness probe or scrape, else 0",
            f.upstream_up.clone(),
        );
        f
    }
}

impl Metrics {
    /// A configuration was loaded (at start or by a reload): its hash becomes the one
    /// `gateway_config_info` reports, and the success time is now.
    pub fn config_loaded(&self, hash: &str, reload: bool) {
        *self.fleet.hash.lock().unwrap_or_else(|e| e.into_inner()) = hash.to_string();
        self.fleet.config_info.clear();
        self.fleet
            .config_info
            .get_or_create(&ConfigLabels {
                hash: hash.to_string(),
            })
            .set(1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.fleet.last_reload_success.set(now);
        self.fleet.last_reload_successful.set(1);
        if reload {
            self.fleet
                .reloads
                .get_or_create(&ReloadLabels { result: "success" })
                .inc();
        }
    }

    /// The hash of the configuration in use (as `gateway_config_info` reports it).
    pub fn config_hash(&self) -> String {
        self.fleet
            .hash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A reload was refused; the running configuration (and its hash) stays.
    pub fn reload_failed(&self) {
        self.fleet.last_reload_successful.set(0);
        self.fleet
            .reloads
            .get_or_create(&ReloadLabels { result: "failure" })
            .inc();
    }

    /// Scrape-time samples of the shadow lane (cheaper than updating a gauge per copy).
    pub fn sample_shadow(&self, queue_depth: usize, queue_capacity: usize) {
        self.fleet.shadow_queue_depth.set(queue_depth as i64);
        self.fleet.shadow_queue_capacity.set(queue_capacity as i64);
    }

    pub fn sandbox_active(&self, active: bool) {
        self.fleet.sandbox_active.set(i64::from(active));
    }

    /// The upstreams probed, each 1 (reachable) or 0; one dropped by a reload disappears.
    pub fn upstreams_up(&self, probed: &[(&'static str, bool)]) {
        self.fleet.upstream_up.clear();
        for (upstream, up) in probed {
            self.fleet
                .upstream_up
                .get_or_create(&UpstreamOnly { upstream })
                .set(i64::from(*up));
        }
    }

    pub fn sample_kill_switch(&self, route: &'static str, engaged: bool) {
        self.fleet
            .kill_switch
            .get_or_create(&RouteOnly { route })
            .set(i64::from(engaged));
    }
}
