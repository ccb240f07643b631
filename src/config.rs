//! Configuration: a TOML file (every key optional, documented in README "Configuration"),
//! command-line flags and `LEGACY_GATEWAY_*` environment variables over it, checked into
//! [`Config`]. The raw file type is kept apart from the checked one, as rust-rpxy does, so
//! every check has one place and an error names the file, the line and the field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::source::{Source, SourceError};

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
}

/// `[rate_limits]`: calls per hour for each key (0: no limit), and the keys kept per limiter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// `registernewpassword` (sends a mail) per e-mail address.
    pub reset_mail_per_email_per_hour: u32,
    /// `registernewpassword` per client IP.
    pub reset_mail_per_ip_per_hour: u32,
    /// `updatechangepassword` per user and `activatenewpassword` per confirmation id.
    pub password_per_user_per_hour: u32,
    /// `updatechangepassword` and `activatenewpassword` per client IP.
    pub password_per_ip_per_hour: u32,
    pub max_keys: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            reset_mail_per_email_per_hour: 5,
            reset_mail_per_ip_per_hour: 30,
            password_per_user_per_hour: 10,
            password_per_ip_per_hour: 60,
            max_keys: 100_000,
        }
    }
}

/// A value that must never reach a log: `Debug` prints a mask.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `[telemetry]` keys (issue #17): off unless an endpoint is set here or in the environment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP base URL (`/v1/traces` is appended), like `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub otlp_endpoint: Option<String>,
    /// Like `OTEL_SERVICE_NAME` [default: legacy-gateway].
    pub service_name: Option<String>,
    /// Share of traces kept (0..=1), like `OTEL_TRACES_SAMPLER_ARG` [default: 1].
    pub sample_ratio: Option<f64>,
}

/// What happens to a call (SPEC 3): answered by v4 through translation, by the legacy backend
/// with a translated copy compared off the request path, or by the legacy backend alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Legacy,
    Shadow,
    Translate,
}

/// The global mode and the per-route, per-tenant overrides (first match wins).
#[derive(Debug, Clone)]
pub struct Modes {
    pub default: Mode,
    pub rules: Vec<ModeRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeRule {
    /// `user-api` (`user-api.read`: `GET`/`HEAD /User/{id}` only, `user-api.update`: `PUT`
    /// only), `registry`, or `registry.<action>`; absent: every route.
    pub route: Option<String>,
    /// `X-ClientCode` for the User API, the Host for the action API; absent: every tenant.
    pub tenant: Option<String>,
    pub mode: Mode,
    /// With `translate`: the canary share of calls translated (the rest go to the legacy
    /// backend), chosen stably per customer registration id.
    pub translate_percent: Option<u8>,
}

#[derive(Debug, Clone)]
pub struct ShadowConfig {
    /// Where shadow copies go; required for routes that shadow writes (a staging v4).
    pub orchestrator: Option<reqwest::Url>,
    pub max_concurrency: usize,
    pub max_queue: usize,
    pub max_body_bytes: usize,
    pub diff_file: Option<PathBuf>,
    pub diff_file_max_bytes: u64,
    pub routes: std::collections::BTreeMap<String, ShadowRoute>,
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

#[derive(Debug, Clone)]
pub struct Limits {
    pub body_bytes: usize,
    pub request_timeout: Duration,
    pub upstream_timeout: Duration,
    pub connect_timeout: Duration,
    pub upstream_body_bytes: usize,
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    /// Idle keep-alive connections kept per upstream. Each holds its buffers (~20 KiB); a
    /// burst above this concurrency reconnects the excess afterwards.
    pub upstream_idle_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            upstream_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            upstream_body_bytes: 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(20),
            upstream_idle_connections: 64,
        }
    }
}

/// How the action API finds the current user in the JWT.
#[derive(Debug, Clone)]
pub struct Identity {
    pub claim: String,
    pub key: Option<KeySource>,
    /// Accepted `aud` values; empty: not checked (with a start-up warning).
    pub audience: Vec<String>,
    /// The required `iss`; `None`: not checked (with a start-up warning).
    pub issuer: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// A JWKS URL is fetched again this often.
    pub jwks_refresh: Duration,
    /// ...and on an unknown `kid`, at most this often.
    pub jwks_refetch_min: Duration,
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            claim: "sub".into(),
            key: None,
            audience: Vec::new(),
            issuer: None,
            leeway_seconds: 60,
            jwks_refresh: Duration::from_secs(300),
            jwks_refetch_min: Duration::from_secs(30),
        }
    }
}

/// `audience = "x"` or `audience = ["x", "y"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone)]
pub enum KeySource {
    Hmac(Vec<u8>),
    JwksFile(PathBuf),
    JwksUrl(reqwest::Url),
}

/// One newspaper site of the action API: its Host and the v4 tenant headers it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub host: String,
    pub source_system: String,
    pub client_code: String,
    pub paper_code: String,
    pub client_group_code: String,
    pub return_url: String,
    /// Name of an environment variable holding a service JWT, sent as `Authorization` on
    /// calls whose client has no user token (the forgotten-password flow).
    #[serde(default)]
    pub service_token_env: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Spanned<String>>,
    workers: Option<Spanned<usize>>,
    admin_listen: Option<Spanned<String>>,
    admin_token_file: Option<Spanned<PathBuf>>,
    orchestrator_url: Option<Spanned<String>>,
    mappings_dir: Option<PathBuf>,
    log_format: Option<LogFormat>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    upstream: RawUpstream,
    #[serde(default)]
    identity: RawIdentity,
    #[serde(default)]
    registry: RawRegistry,
    #[serde(default)]
    tenants: Vec<Spanned<Tenant>>,
    mode: Option<Mode>,
    user_api_url: Option<Spanned<String>>,
    registry_api_url: Option<Spanned<String>>,
    #[serde(default)]
    modes: Vec<Spanned<ModeRule>>,
    #[serde(default)]
    shadow: RawShadow,
    rate_limits: Option<Spanned<RateLimitConfig>>,
    #[serde(default)]
    trusted_proxies: Vec<Spanned<String>>,
    #[serde(default)]
    telemetry: TelemetryConfig,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawShadow {
    orchestrator_url: Option<Spanned<String>>,
    max_concurrency: Option<usize>,
    max_queue: Option<usize>,
    max_body_bytes: Option<usize>,
    diff_file: Option<PathBuf>,
    diff_file_max_bytes: Option<u64>,
    #[serde(default)]
    routes: std::collections::BTreeMap<String, Spanned<ShadowRoute>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    body_bytes: Option<Spanned<usize>>,
    request_timeout_ms: Option<Spanned<u64>>,
    upstream_timeout_ms: Option<Spanned<u64>>,
    connect_timeout_ms: Option<Spanned<u64>>,
    upstream_body_bytes: Option<Spanned<usize>>,
    header_read_timeout_ms: Option<Spanned<u64>>,
    max_connections: Option<Spanned<usize>>,
    shutdown_grace_ms: Option<Spanned<u64>>,
    upstream_idle_connections: Option<Spanned<usize>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    ca_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    claim: Option<String>,
    audience: Option<OneOrMany>,
    issuer: Option<String>,
    leeway_seconds: Option<u64>,
    jwks_refresh_seconds: Option<Spanned<u64>>,
    jwks_refetch_min_seconds: Option<Spanned<u64>>,
    hmac_secret: Option<String>,
    jwks_file: Option<PathBuf>,
    jwks_url: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    path: Option<Spanned<String>>,
}

impl Config {
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
        let listen = match (o.listen, &raw.listen) {
            (Some(a), _) => a,
            (None, Some(s)) => s.get_ref().parse().map_err(|_| {
                src.error(
                    s.span(),
                    "listen",
                    "expected an address such as 127.0.0.1:8080",
                )
            })?,
            (None, None) => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let workers = match (o.workers, &raw.workers) {
            (Some(0), _) => {
                return Err(SourceError {
                    file: "--workers".into(),
                    line: 0,
                    field: "workers".into(),
                    message: "expected at least 1 worker".into(),
                })
            }
            (Some(n), _) => Some(n),
            (None, Some(n)) if *n.get_ref() == 0 => {
                return Err(src.error(n.span(), "workers", "expected at least 1 worker"))
            }
            (None, Some(n)) => Some(*n.get_ref()),
            (None, None) => None,
        };
        let admin_listen = match (o.admin_listen, &raw.admin_listen) {
            (Some(a), _) => a,
            (None, Some(s)) => s.get_ref().parse().map_err(|_| {
                src.error(
                    s.span(),
                    "admin_listen",
                    "expected an address such as 127.0.0.1:9901",
                )
            })?,
            (None, None) => SocketAddr::from(([127, 0, 0, 1], 9901)),
        };
        let admin_token = match (&o.admin_token, &raw.admin_token_file) {
            (Some(t), _) => Some(Secret(t.clone())),
            (None, Some(f)) => {
                let text = std::fs::read_to_string(f.get_ref()).map_err(|e| {
                    src.error(
                        f.span(),
                        "admin_token_file",
                        format!("cannot read {}: {e}", f.get_ref().display()),
                    )
                })?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(src.error(f.span(), "admin_token_file", "the file is empty"));
                }
                Some(Secret(token.to_string()))
            }
            (None, None) => None,
        };
        if !admin_listen.ip().is_loopback() && admin_token.is_none() {
            let span = raw.admin_listen.as_ref().map_or(0..0, |s| s.span());
            return Err(src.error(
                span,
                "admin_listen",
                "is not a loopback address: set LEGACY_GATEWAY_ADMIN_TOKEN or admin_token_file, or anyone who reaches it can reload the configuration and read the metrics",
            ));
        }
        let orchestrator = match (&o.orchestrator, &raw.orchestrator_url) {
            (Some(u), _) => Some(parse_url(u).map_err(|m| SourceError {
                file: "--orchestrator".into(),
                line: 0,
                field: "orchestrator_url".into(),
                message: m,
            })?),
            (None, Some(s)) => Some(
                parse_url(s.get_ref()).map_err(|m| src.error(s.span(), "orchestrator_url", m))?,
            ),
            (None, None) => None,
        };

        let d = Limits::default();
        let ms = |v: &Option<Spanned<u64>>,
                  field: &str,
                  def: Duration|
         -> Result<Duration, SourceError> {
            match v {
                None => Ok(def),
                Some(s) if *s.get_ref() == 0 => {
                    Err(src.error(s.span(), field, "must be greater than 0"))
                }
                Some(s) => Ok(Duration::from_millis(*s.get_ref())),
            }
        };
        let count =
            |v: &Option<Spanned<usize>>, field: &str, def: usize| -> Result<usize, SourceError> {
                match v {
                    None => Ok(def),
                    Some(s) if *s.get_ref() == 0 => {
                        Err(src.error(s.span(), field, "must be greater than 0"))
                    }
                    Some(s) => Ok(*s.get_ref()),
                }
            };
        let l = &raw.limits;
        let limits = Limits {
            body_bytes: count(&l.body_bytes, "limits.body_bytes", d.body_bytes)?,
            request_timeout: ms(
                &l.request_timeout_ms,
                "limits.request_timeout_ms",
                d.request_timeout,
            )?,
            upstream_timeout: ms(
                &l.upstream_timeout_ms,
                "limits.upstream_timeout_ms",
                d.upstream_timeout,
            )?,
            connect_timeout: ms(
                &l.connect_timeout_ms,
                "limits.connect_timeout_ms",
                d.connect_timeout,
            )?,
            upstream_body_bytes: count(
                &l.upstream_body_bytes,
                "limits.upstream_body_bytes",
                d.upstream_body_bytes,
            )?,
            header_read_timeout: ms(
                &l.header_read_timeout_ms,
                "limits.header_read_timeout_ms",
                d.header_read_timeout,
            )?,
            max_connections: count(
                &l.max_connections,
                "limits.max_connections",
                d.max_connections,
            )?,
            shutdown_grace: ms(
                &l.shutdown_grace_ms,
                "limits.shutdown_grace_ms",
                d.shutdown_grace,
            )?,
            upstream_idle_connections: count(
                &l.upstream_idle_connections,
                "limits.upstream_idle_connections",
                d.upstream_idle_connections,
            )?,
        };
        if limits.upstream_timeout >= limits.request_timeout {
            let span = l
                .upstream_timeout_ms
                .as_ref()
                .map(|s| s.span())
                .unwrap_or(0..0);
            return Err(src.error(
                span,
                "limits.upstream_timeout_ms",
                "must be shorter than limits.request_timeout_ms, or a slow v4 answers 408 instead of 504",
            ));
        }

        let id = &raw.identity;
        let secret = o.jwt_secret.clone().or_else(|| id.hmac_secret.clone());
        let key = match (secret, &id.jwks_file, &id.jwks_url) {
            (Some(s), None, None) if !s.is_empty() => Some(KeySource::Hmac(s.into_bytes())),
            (None, Some(f), None) => Some(KeySource::JwksFile(f.clone())),
            (None, None, Some(u)) => Some(KeySource::JwksUrl(
                parse_url(u.get_ref()).map_err(|m| src.error(u.span(), "identity.jwks_url", m))?,
            )),
            (None, None, None) => None,
            _ => {
                return Err(src.error(
                    0..0,
                    "identity",
                    "set exactly one of hmac_secret (or LEGACY_GATEWAY_JWT_SECRET), jwks_file, jwks_url",
                ))
            }
        };
        let di = Identity::default();
        let secs = |v: &Option<Spanned<u64>>, field: &str, def: Duration| match v {
            Some(s) if *s.get_ref() == 0 => {
                Err(src.error(s.span(), field, "must be greater than 0"))
            }
            Some(s) => Ok(Duration::from_secs(*s.get_ref())),
            None => Ok(def),
        };
        let identity = Identity {
            claim: id.claim.clone().unwrap_or_else(|| "sub".into()),
            key,
            audience: match &id.audience {
                None => Vec::new(),
                Some(OneOrMany::One(a)) => vec![a.clone()],
                Some(OneOrMany::Many(v)) => v.clone(),
            },
            issuer: id.issuer.clone(),
            leeway_seconds: id.leeway_seconds.unwrap_or(di.leeway_seconds),
            jwks_refresh: secs(
                &id.jwks_refresh_seconds,
                "identity.jwks_refresh_seconds",
                di.jwks_refresh,
            )?,
            jwks_refetch_min: secs(
                &id.jwks_refetch_min_seconds,
                "identity.jwks_refetch_min_seconds",
                di.jwks_refetch_min,
            )?,
        };

        let registry_path = match &raw.registry.path {
            Some(p) if !p.get_ref().starts_with('/') => {
                return Err(src.error(p.span(), "registry.path", "expected an absolute path"))
            }
            Some(p) => Some(p.get_ref().clone()),
            None => None,
        };

        let mut tenants: Vec<Tenant> = Vec::new();
        for (i, t) in raw.tenants.iter().enumerate() {
            let host = t.get_ref().host.to_ascii_lowercase();
            if let Some(why) = crate::tenant::unmatchable(&host) {
                return Err(src.error(
                    t.span(),
                    format!("tenants[{i}].host"),
                    format!("{host:?} {why}; it would never match a request's Host"),
                ));
            }
            if tenants.iter().any(|x| x.host == host) {
                return Err(src.error(
                    t.span(),
                    format!("tenants[{i}].host"),
                    "empty or duplicate host",
                ));
            }
            if parse_url(&t.get_ref().return_url).is_err() {
                return Err(src.error(
                    t.span(),
                    format!("tenants[{i}].return_url"),
                    "expected an absolute URL",
                ));
            }
            tenants.push(Tenant {
                host,
                ..t.get_ref().clone()
            });
        }

        let url_of = |flag: &Option<String>,
                      raw: &Option<Spanned<String>>,
                      field: &str|
         -> Result<Option<reqwest::Url>, SourceError> {
            match (flag, raw) {
                (Some(u), _) => parse_url(u).map(Some).map_err(|m| SourceError {
                    file: format!("--{}", field.replace('_', "-").trim_end_matches("-url")),
                    line: 0,
                    field: field.into(),
                    message: m,
                }),
                (None, Some(s)) => parse_url(s.get_ref())
                    .map(Some)
                    .map_err(|m| src.error(s.span(), field, m)),
                (None, None) => Ok(None),
            }
        };
        let user_api_url = url_of(&o.user_api, &raw.user_api_url, "user_api_url")?;
        let registry_api_url = url_of(&o.registry_api, &raw.registry_api_url, "registry_api_url")?;
        let default_mode = o.mode.or(raw.mode).unwrap_or(Mode::Translate);
        let needs_backend = |route: Option<&str>| -> Option<&'static str> {
            let user = route.is_none_or(|r| r == "user-api" || r.starts_with("user-api."));
            let registry = route.is_none_or(|r| r == "registry" || r.starts_with("registry."));
            if user && user_api_url.is_none() {
                Some("user_api_url")
            } else if registry && registry_api_url.is_none() {
                Some("registry_api_url")
            } else {
                None
            }
        };
        if default_mode != Mode::Translate {
            if let Some(missing) = needs_backend(None) {
                return Err(SourceError {
                    file: src.name.clone(),
                    line: 0,
                    field: "mode".into(),
                    message: format!(
                        "mode {default_mode:?} needs the legacy backends: set {missing}"
                    ),
                });
            }
        }
        let mut rules = Vec::new();
        for (i, r) in raw.modes.iter().enumerate() {
            let rule = r.get_ref();
            if let Some(route) = &rule.route {
                let user_api = matches!(
                    route.as_str(),
                    "user-api" | "user-api.read" | "user-api.update"
                );
                if !(user_api || route == "registry" || route.starts_with("registry.")) {
                    return Err(src.error(
                        r.span(),
                        format!("modes[{i}].route"),
                        "expected user-api, user-api.read, user-api.update, registry or registry.<action>",
                    ));
                }
            }
            let partial = matches!(rule.translate_percent, Some(p) if p < 100);
            if rule.translate_percent.is_some_and(|p| p > 100)
                || (rule.translate_percent.is_some() && rule.mode != Mode::Translate)
            {
                return Err(src.error(
                    r.span(),
                    format!("modes[{i}].translate_percent"),
                    "a percentage (0-100), only with mode = \"translate\"",
                ));
            }
            if rule.mode != Mode::Translate || partial {
                if let Some(missing) = needs_backend(rule.route.as_deref()) {
                    return Err(src.error(
                        r.span(),
                        format!("modes[{i}].mode"),
                        format!("this mode needs the legacy backend: set {missing}"),
                    ));
                }
            }
            rules.push(ModeRule {
                tenant: rule.tenant.as_ref().map(|t| t.to_ascii_lowercase()),
                ..rule.clone()
            });
        }
        let sh = &raw.shadow;
        let shadow_orchestrator = match &sh.orchestrator_url {
            Some(u) => Some(
                parse_url(u.get_ref())
                    .map_err(|m| src.error(u.span(), "shadow.orchestrator_url", m))?,
            ),
            None => None,
        };
        // "Separate" means another base URL, not only another spelling of the live one.
        let staging_is_live = match (&orchestrator, &shadow_orchestrator) {
            (Some(live), Some(staging)) => {
                crate::upstream::client::base_of(live) == crate::upstream::client::base_of(staging)
            }
            _ => false,
        };
        let mut shadow_routes = std::collections::BTreeMap::new();
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
            if route.writes && shadow_orchestrator.is_none() {
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
            shadow_routes.insert(name.clone(), route.clone());
        }
        let shadow = ShadowConfig {
            orchestrator: shadow_orchestrator,
            max_concurrency: sh.max_concurrency.unwrap_or(32).max(1),
            max_queue: sh.max_queue.unwrap_or(256),
            max_body_bytes: sh.max_body_bytes.unwrap_or(64 * 1024),
            diff_file: sh.diff_file.clone(),
            diff_file_max_bytes: sh.diff_file_max_bytes.unwrap_or(10 * 1024 * 1024),
            routes: shadow_routes,
        };

        let rate_limits = match &raw.rate_limits {
            Some(r) if r.get_ref().max_keys == 0 => {
                return Err(src.error(r.span(), "rate_limits.max_keys", "must be greater than 0"))
            }
            Some(r) => r.get_ref().clone(),
            None => RateLimitConfig::default(),
        };
        let mut trusted_proxies = Vec::new();
        for (i, p) in raw.trusted_proxies.iter().enumerate() {
            let text = p.get_ref().trim();
            let net = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    src.error(
                        p.span(),
                        format!("trusted_proxies[{i}]"),
                        "expected an IP address or a network such as 10.0.0.0/8",
                    )
                })?;
            trusted_proxies.push(net);
        }

        Ok(Self {
            file,
            listen,
            workers,
            admin_listen,
            admin_token,
            orchestrator,
            mappings_dir: o.mappings.clone().or(raw.mappings_dir),
            log_format: o.log_format.or(raw.log_format).unwrap_or_default(),
            limits,
            ca_file: raw.upstream.ca_file,
            identity,
            registry_path,
            tenants,
            user_api_url,
            registry_api_url,
            modes: Modes {
                default: default_mode,
                rules,
            },
            shadow,
            rate_limits,
            trusted_proxies,
            telemetry: raw.telemetry,
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
