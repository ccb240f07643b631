//! `[shadow]`: where shadow copies go and how much of them. Shadowing a write changes data a
//! second time (a second password change, a second mail), so it is only allowed towards a
//! separate, staging v4.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::parse_url;
use crate::source::{Source, SourceError};

#[derive(Debug, Clone)]
pub struct ShadowConfig {
    /// Where shadow copies go; required for routes that shadow writes (a staging v4).
    pub orchestrator: Option<reqwest::Url>,
    pub max_concurrency: usize,
    pub max_queue: usize,
    pub max_body_bytes: usize,
    pub diff_file: Option<PathBuf>,
    pub diff_file_max_bytes: u64,
    pub routes: BTreeMap<String, ShadowRoute>,
    /// Reads go to `orchestrator` too (else to the live v4, whose data the legacy backend's
    /// matches: staging data drifts, and every drift would read as a difference).
    pub reads_to_staging: bool,
    /// Share of shadowed reads asked of the legacy backend twice, to learn which fields
    /// differ between two legacy answers (noise).
    pub noise_sample_percent: u8,
    /// A row is ready with at least this many copies compared since the last change…
    pub ready_min_compared: u64,
    /// …and at most this share of them differing (learned noise counted as matched).
    pub ready_max_diff_ratio: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShadowRoute {
    pub sample_percent: u8,
    /// Shadow calls that change data (password changes!). Off by default: a shadowed write
    /// changes the password twice and sends two mails. Needs `shadow.orchestrator_url`.
    pub writes: bool,
    pub kill_error_rate_percent: u8,
    pub kill_latency_ms: u64,
    pub kill_window: u32,
    pub kill_cooldown_ms: u64,
}

impl Default for ShadowRoute {
    fn default() -> Self {
        Self {
            sample_percent: 100,
            writes: false,
            kill_error_rate_percent: 50,
            kill_latency_ms: 2000,
            kill_window: 20,
            kill_cooldown_ms: 30_000,
        }
    }
}

impl ShadowConfig {
    pub fn route(&self, name: &str) -> ShadowRoute {
        self.routes.get(name).cloned().unwrap_or_default()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawShadow {
    orchestrator_url: Option<Spanned<String>>,
    max_concurrency: Option<usize>,
    max_queue: Option<usize>,
    max_body_bytes: Option<usize>,
    diff_file: Option<PathBuf>,
    diff_file_max_bytes: Option<u64>,
    #[serde(default)]
    routes: BTreeMap<String, Spanned<ShadowRoute>>,
    reads_to_staging: Option<Spanned<bool>>,
    noise_sample_percent: Option<Spanned<u8>>,
    ready_min_compared: Option<u64>,
    ready_max_diff_ratio: Option<Spanned<f64>>,
}

/// `live` is the orchestrator the gateway translates to, which shadowed writes must not reach.
pub(super) fn check(
    src: &Source,
    sh: &RawShadow,
    live: Option<&reqwest::Url>,
) -> Result<ShadowConfig, SourceError> {
    let orchestrator = match &sh.orchestrator_url {
        Some(u) => Some(
            parse_url(u.get_ref())
                .map_err(|m| src.error(u.span(), "shadow.orchestrator_url", m))?,
        ),
        None => None,
    };
    // "Separate" means another base URL, not only another spelling of the live one.
    let staging_is_live = match (live, &orchestrator) {
        (Some(live), Some(staging)) => super::base_of(live) == super::base_of(staging),
        _ => false,
    };
    let mut routes = BTreeMap::new();
    for (name, r) in &sh.routes {
        let field = |f: &str| format!("shadow.routes.{name}.{f}");
        if !(name == "user-api" || name == "registry") {
            return Err(src.error(
                r.span(),
                format!("shadow.routes.{name}"),
                "expected user-api or registry",
            ));
        }
        let route = r.get_ref();
        if route.sample_percent > 100 || route.kill_error_rate_percent > 100 {
            return Err(src.error(r.span(), field("sample_percent"), "percentages are 0-100"));
        }
        if route.writes && orchestrator.is_none() {
            return Err(src.error(
                r.span(),
                field("writes"),
                "shadowing writes needs shadow.orchestrator_url (a separate, staging v4): a shadowed password change would otherwise change the password twice and send two mails",
            ));
        }
        if route.writes && staging_is_live {
            let span = sh.orchestrator_url.as_ref().map_or(r.span(), |u| u.span());
            return Err(src.error(
                span,
                "shadow.orchestrator_url",
                "is the live orchestrator_url: shadowed writes would reach the live v4 (a second password change, a second mail); point it at a separate, staging v4",
            ));
        }
        if route.kill_window == 0 {
            return Err(src.error(r.span(), field("kill_window"), "must be greater than 0"));
        }
        routes.insert(name.clone(), route.clone());
    }
    let reads_to_staging = match &sh.reads_to_staging {
        Some(r) if *r.get_ref() && orchestrator.is_none() => {
            return Err(src.error(
                r.span(),
                "shadow.reads_to_staging",
                "needs shadow.orchestrator_url (the staging v4 the reads would go to)",
            ))
        }
        Some(r) => *r.get_ref(),
        None => false,
    };
    let noise_sample_percent = match &sh.noise_sample_percent {
        Some(p) if *p.get_ref() > 100 => {
            return Err(src.error(
                p.span(),
                "shadow.noise_sample_percent",
                "a percentage (0-100)",
            ))
        }
        Some(p) => *p.get_ref(),
        None => 1,
    };
    let ready_max_diff_ratio = match &sh.ready_max_diff_ratio {
        Some(r) if !(0.0..=1.0).contains(r.get_ref()) => {
            return Err(src.error(
                r.span(),
                "shadow.ready_max_diff_ratio",
                "a ratio between 0 and 1 (0.001 is one copy in a thousand)",
            ))
        }
        Some(r) => *r.get_ref(),
        None => 0.001,
    };
    Ok(ShadowConfig {
        reads_to_staging,
        noise_sample_percent,
        ready_min_compared: sh.ready_min_compared.unwrap_or(1000),
        ready_max_diff_ratio,
        orchestrator,
        max_concurrency: sh.max_concurrency.unwrap_or(32).max(1),
        max_queue: sh.max_queue.unwrap_or(256),
        max_body_bytes: sh.max_body_bytes.unwrap_or(64 * 1024),
        diff_file: sh.diff_file.clone(),
        diff_file_max_bytes: sh.diff_file_max_bytes.unwrap_or(10 * 1024 * 1024),
        routes,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Overrides};

    fn load(text: &str) -> Result<Config, crate::source::SourceError> {
        Config::from_toml("c.toml", text, &Overrides::default())
    }

    #[test]
    fn routes_are_named_and_their_values_checked() {
        let e = load("[shadow.routes.users]\nsample_percent = 5\n").unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("shadow.routes.users", "expected user-api or registry")
        );
        let e = load("[shadow.routes.registry]\nkill_error_rate_percent = 101\n").unwrap_err();
        assert_eq!(e.field, "shadow.routes.registry.sample_percent");
        let e = load("[shadow.routes.user-api]\nkill_window = 0\n").unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            (
                "shadow.routes.user-api.kill_window",
                "must be greater than 0"
            )
        );
        let c =
            load("[shadow]\nmax_concurrency = 0\n[shadow.routes.registry]\nsample_percent = 5\n")
                .unwrap();
        assert_eq!(c.shadow.max_concurrency, 1);
        assert_eq!(c.shadow.route("registry").sample_percent, 5);
        assert_eq!(c.shadow.route("user-api").sample_percent, 100);
    }

    #[test]
    fn report_settings_have_defaults_and_bounds() {
        let c = load("").unwrap();
        assert_eq!(
            (
                c.shadow.reads_to_staging,
                c.shadow.noise_sample_percent,
                c.shadow.ready_min_compared,
                c.shadow.ready_max_diff_ratio
            ),
            (false, 1, 1000, 0.001)
        );
        let e = load("[shadow]\nreads_to_staging = true\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "shadow.reads_to_staging"));
        let e = load("[shadow]\nready_max_diff_ratio = 1.5\n").unwrap_err();
        assert_eq!(e.field, "shadow.ready_max_diff_ratio");
        let e = load("[shadow]\nnoise_sample_percent = 101\n").unwrap_err();
        assert_eq!(e.field, "shadow.noise_sample_percent");
    }

    #[test]
    fn shadowed_writes_need_a_separate_staging_orchestrator() {
        let e = load("[shadow.routes.user-api]\nwrites = true\n").unwrap_err();
        assert_eq!(e.field, "shadow.routes.user-api.writes");
        let text = "orchestrator_url = \"http://v4.test/api/\"\n[shadow]\norchestrator_url = \"http://V4.test/api\"\n[shadow.routes.registry]\nwrites = true\n";
        let e = load(text).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "shadow.orchestrator_url"));
        assert!(
            e.message.starts_with("is the live orchestrator_url"),
            "{}",
            e.message
        );
        let text = text.replace("V4.test", "staging.test");
        let c = load(&text).unwrap();
        assert!(c.shadow.route("registry").writes);
    }
}
