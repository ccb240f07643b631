//! Configuration: a TOML file (every key optional, documented in README "Configuration"),
//! command-line flags and `LEGACY_GATEWAY_*` environment variables over it, checked into
//! [`Config`]. The raw file type is kept apart from the checked one, as rust-rpxy does, so
//! every check has one place and an error names the file, the line and the field. Each
//! section's types and check live in a file of their own; `Config::check` runs them in the
//! order the file documents them, so the first error reported is the same every time.

mod capture;
mod clients;
mod fallback;
mod identity;
mod limits;
mod listeners;
pub mod modes;
mod shadow;
mod telemetry;
mod tenants;
mod upstreams;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::source::{Source, SourceError};

pub use capture::CaptureConfig;
pub use clients::RateLimitConfig;
pub use fallback::FallbackConfig;
pub use identity::{Identity, KeySource};
pub use limits::Limits;
pub use listeners::Secret;
pub use modes::{Mode, ModeRule, Modes};
pub use shadow::{ShadowConfig, ShadowRoute};
pub use telemetry::TelemetryConfig;
pub use tenants::Tenant;
pub use upstreams::base_of;

/// Values given on the command line or in the environment; they win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub orchestrator: Option<String>,
    pub mappings: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub jwt_secret: Option<String>,
    pub mode: Option<Mode>,
    pub user_api: Option<String>,
    pub registry_api: Option<String>,
    pub workers: Option<usize>,
    pub admin_listen: Option<SocketAddr>,
    /// From `LEGACY_GATEWAY_ADMIN_TOKEN` only (a flag would show it in `ps`).
    pub admin_token: Option<String>,
    /// `--sandbox` / `LEGACY_GATEWAY_SANDBOX`: the embedded sandbox chosen on purpose.
    pub sandbox: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The checked configuration the gateway runs on.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, for reloads; `None` when built from defaults and flags.
    pub file: Option<PathBuf>,
    pub listen: SocketAddr,
    /// Worker threads serving clients; `None`: decided at start (`server::worker_count`).
    pub workers: Option<usize>,
    /// The operator listener (`/_gateway/…`); loopback by default, as Envoy's admin is.
    pub admin_listen: SocketAddr,
    /// Bearer token the admin listener requires, when set.
    pub admin_token: Option<Secret>,
    /// `None`: run against the embedded sandbox.
    pub orchestrator: Option<reqwest::Url>,
    /// `readyz` fails when an upstream the modes answer from is unreachable (off by default:
    /// one backend's outage would take every instance out of the load balancer at once).
    pub readyz_requires_upstreams: bool,
    pub mappings_dir: Option<PathBuf>,
    pub log_format: LogFormat,
    pub limits: Limits,
    pub ca_file: Option<PathBuf>,
    pub identity: Identity,
    pub registry_path: Option<String>,
    pub tenants: Vec<Tenant>,
    /// The legacy User API backend (legacy and shadow modes, unmatched paths).
    pub user_api_url: Option<reqwest::Url>,
    /// The legacy user-registry backend.
    pub registry_api_url: Option<reqwest::Url>,
    pub modes: Modes,
    pub shadow: ShadowConfig,
    pub rate_limits: RateLimitConfig,
    /// Peers whose `X-Forwarded-For` is believed (load balancers, ingress).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `[telemetry]`: OpenTelemetry traces; the standard `OTEL_*` variables win. Read at
    /// start only.
    pub telemetry: TelemetryConfig,
    /// `[fallback]`: rows v4 answers go to the legacy backend by themselves while v4 fails;
    /// `None` when the section is absent.
    pub fallback: Option<FallbackConfig>,
    /// `[capture]`: `None` when absent (nothing recorded, no capture work per call).
    pub capture: Option<CaptureConfig>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Spanned<String>>,
    workers: Option<Spanned<usize>>,
    admin_listen: Option<Spanned<String>>,
    admin_token_file: Option<Spanned<PathBuf>>,
    orchestrator_url: Option<Spanned<String>>,
    sandbox: Option<Spanned<bool>>,
    readyz_requires_upstreams: Option<bool>,
    mappings_dir: Option<PathBuf>,
    log_format: Option<LogFormat>,
    #[serde(default)]
    limits: limits::RawLimits,
    #[serde(default)]
    upstream: upstreams::RawUpstream,
    #[serde(default)]
    identity: identity::RawIdentity,
    #[serde(default)]
    registry: tenants::RawRegistry,
    #[serde(default)]
    tenants: Vec<Spanned<Tenant>>,
    mode: Option<Spanned<Mode>>,
    user_api_url: Option<Spanned<String>>,
    registry_api_url: Option<Spanned<String>>,
    #[serde(default)]
    modes: Vec<Spanned<ModeRule>>,
    #[serde(default)]
    shadow: shadow::RawShadow,
    rate_limits: Option<Spanned<RateLimitConfig>>,
    #[serde(default)]
    trusted_proxies: Vec<Spanned<String>>,
    #[serde(default)]
    telemetry: TelemetryConfig,
    fallback: Option<fallback::RawFallback>,
    capture: Option<Spanned<capture::RawCapture>>,
}

impl Config {
    /// Hands the secrets this configuration holds to `redact`, so that they are masked from
    /// now on: the HMAC secret, the admin token, and each tenant's service token (read from
    /// its variable).
    pub fn remember_secrets(&self) {
        if let Some(KeySource::Hmac(secret)) = &self.identity.key {
            crate::redact::remember(&String::from_utf8_lossy(secret));
        }
        if let Some(token) = &self.admin_token {
            crate::redact::remember(&token.0);
        }
        for t in &self.tenants {
            if let Some(value) = t
                .service_token_env
                .as_deref()
                .and_then(|n| std::env::var(n).ok())
            {
                crate::redact::remember_credential(&value);
            }
        }
    }

    /// Reads `file` (if any), applies the overrides and checks everything.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, SourceError> {
        let (src, raw) = match file {
            Some(path) => {
                let src = Source::read(path)?;
                let raw: RawConfig = src.parse()?;
                (src, raw)
            }
            None => (Source::new("<defaults>", ""), RawConfig::default()),
        };
        Self::check(src, raw, file.map(Path::to_path_buf), overrides)
    }

    /// From TOML text, for tests.
    pub fn from_toml(name: &str, text: &str, overrides: &Overrides) -> Result<Self, SourceError> {
        let src = Source::new(name, text);
        let raw: RawConfig = src.parse()?;
        Self::check(src, raw, None, overrides)
    }

    fn check(
        src: Source,
        raw: RawConfig,
        file: Option<PathBuf>,
        o: &Overrides,
    ) -> Result<Self, SourceError> {
        let listeners = listeners::check(&src, &raw, o)?;
        let orchestrator = upstreams::orchestrator(&src, &raw, o)?;
        upstreams::sandbox(&src, &raw, o, orchestrator.as_ref(), listeners.listen)?;
        let limits = limits::check(&src, &raw.limits)?;
        let identity = identity::check(&src, &raw.identity, o)?;
        let registry_path = tenants::registry_path(&src, &raw.registry)?;
        let tenants = tenants::check(&src, &raw.tenants)?;
        let (user_api_url, registry_api_url) = upstreams::legacy_backends(&src, &raw, o)?;
        let backends = modes::Backends {
            user_api: user_api_url.is_some(),
            registry_api: registry_api_url.is_some(),
        };
        let default_mode = modes::default_mode(raw.mode.as_ref(), o.mode);
        let modes = modes::check(&src, default_mode, &raw.modes, &backends)?;
        let shadow = shadow::check(&src, &raw.shadow, orchestrator.as_ref())?;
        let rate_limits = clients::rate_limits(&src, &raw.rate_limits)?;
        let trusted_proxies = clients::trusted_proxies(&src, &raw.trusted_proxies)?;
        let fallback = fallback::check(&src, raw.fallback.as_ref())?;
        let capture = capture::check(&src, raw.capture.as_ref())?;

        Ok(Self {
            file,
            listen: listeners.listen,
            workers: listeners.workers,
            admin_listen: listeners.admin_listen,
            admin_token: listeners.admin_token,
            orchestrator,
            readyz_requires_upstreams: raw.readyz_requires_upstreams.unwrap_or(false),
            mappings_dir: o.mappings.clone().or(raw.mappings_dir),
            log_format: o.log_format.or(raw.log_format).unwrap_or_default(),
            limits,
            ca_file: raw.upstream.ca_file,
            identity,
            registry_path,
            tenants,
            user_api_url,
            registry_api_url,
            modes,
            shadow,
            rate_limits,
            trusted_proxies,
            telemetry: raw.telemetry,
            fallback,
            capture,
        })
    }
}

fn parse_url(s: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("invalid URL: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err("expected an http:// or https:// URL with a host".into()),
    }
}

/// A count or a duration that must be above zero when it is given: zero would refuse every
/// call or time it out at once.
fn positive<T: Copy + Default + PartialEq>(
    src: &Source,
    value: &Option<Spanned<T>>,
    field: &str,
) -> Result<Option<T>, SourceError> {
    match value {
        Some(s) if *s.get_ref() == T::default() => {
            Err(src.error(s.span(), field, "must be greater than 0"))
        }
        Some(s) => Ok(Some(*s.get_ref())),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_toml(
            "c.toml",
            "listen = \"127.0.0.1:9000\"\n",
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert!(c.orchestrator.is_none());
        assert_eq!(c.limits.body_bytes, 64 * 1024);
        let o = Overrides {
            orchestrator: Some("http://127.0.0.1:1".into()),
            ..Default::default()
        };
        let c = Config::from_toml("c.toml", "", &o).unwrap();
        assert_eq!(c.orchestrator.unwrap().as_str(), "http://127.0.0.1:1/");
    }

    #[test]
    fn errors_name_line_and_field() {
        let e = Config::from_toml(
            "c.toml",
            "listen = \"x\"\n\n[limits]\nbody_bytes = 0\n",
            &Overrides::default(),
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (1, "listen"));
        let e = Config::from_toml(
            "c.toml",
            "[limits]\nbody_bytes = 0\n",
            &Overrides::default(),
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "limits.body_bytes"));
        let e = Config::from_toml("c.toml", "[limits]\nbogus = 1\n", &Overrides::default())
            .unwrap_err();
        assert_eq!(e.field, "limits.bogus");
    }
}
