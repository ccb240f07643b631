//! The gateway a replay sends its calls through: the gateway's own stack, started in-process
//! on loopback ports, translating every call to the target v4 (`--orchestrator`, else the
//! embedded sandbox). Only the translation comes from `--config` (mappings, tenants, limits,
//! identity, registry path): every route is put in translate mode with no legacy backend and
//! no fallback, since a replay judges v4, and the rate limits are off, since one machine
//! replays what many clients sent.
//!
//! Writes change data and send mail, so they are replayed only with `--writes`, and never
//! towards the configuration's own `orchestrator_url` (the live v4), compared as base URLs
//! the way the shadow's staging check compares them.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{ReplayArgs, ReplayError, TOKEN_ENV};
use crate::config::{Config, KeySource, Mode, Modes, Overrides, RateLimitConfig};
use crate::mapping::Mappings;
use crate::runtime::Runtime;
use crate::Running;

pub struct Target {
    running: Running,
    /// The `Authorization` value that replaces a redacted one; `None`: the target is a real
    /// orchestrator and no token was given.
    pub authorization: Option<String>,
    /// What the calls go to, for the reports (credentials masked).
    pub name: String,
    pub writes: bool,
}

impl Target {
    pub async fn start(args: &ReplayArgs) -> Result<Self, ReplayError> {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let overrides = Overrides {
            listen: Some(loopback),
            admin_listen: Some(loopback),
            mappings: args.mappings.clone(),
            mode: Some(Mode::Translate),
            ..Overrides::default()
        };
        let mut config = Config::load(args.config.as_deref(), &overrides)
            .map_err(|e| ReplayError::Config(e.to_string()))?;
        let target = match &args.orchestrator {
            Some(u) => Some(
                reqwest::Url::parse(u)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .ok_or_else(|| {
                        // The value is not echoed: it may hold credentials.
                        ReplayError::Config(
                            "--orchestrator: expected an http:// or https:// URL with a host"
                                .into(),
                        )
                    })?,
            ),
            None => None,
        };
        if args.writes {
            refuse_live_writes(&config, target.as_ref(), args)?;
        }
        let authorization = authorization(&config, target.is_none())?;
        config.orchestrator = target.clone();
        config.modes = Modes {
            default: Mode::Translate,
            rules: Vec::new(),
        };
        config.user_api_url = None;
        config.registry_api_url = None;
        // A v4 failure is what a replay reports, never a reason to answer from elsewhere.
        config.fallback = None;
        // A replay writes no capture of its own: the in-process gateway never answers from a
        // legacy backend, and a capture file named in the config belongs to the live gateway.
        config.capture = None;
        config.rate_limits = RateLimitConfig {
            reset_mail_per_email_per_hour: 0,
            reset_mail_per_ip_per_hour: 0,
            password_per_user_per_hour: 0,
            password_per_ip_per_hour: 0,
            ..config.rate_limits
        };
        // One worker per two calls in flight is plenty: the work is v4's.
        config.workers = Some(args.concurrency.div_ceil(2).clamp(1, 4) as usize);
        // A SIGHUP to the replay must not reload the file over these settings.
        config.file = None;
        let mappings = Mappings::load(config.mappings_dir.as_deref())
            .map_err(|e| ReplayError::Config(e.to_string()))?;
        let running = crate::start(config, mappings, std::future::pending())
            .await
            .map_err(|e| ReplayError::Start(e.to_string()))?;
        Ok(Self {
            running,
            authorization,
            name: target.map_or_else(
                || "the embedded sandbox".to_string(),
                |u| crate::redact::url(&u),
            ),
            writes: args.writes,
        })
    }

    pub fn url(&self) -> String {
        self.running.url()
    }

    /// The runtime the gateway translates with: its mappings decide which calls are legacy
    /// API calls, which are writes, and how answers compare.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.running.gateway.runtime()
    }

    pub async fn stop(self) {
        self.running.shutdown().await;
    }
}

fn refuse_live_writes(
    config: &Config,
    target: Option<&reqwest::Url>,
    args: &ReplayArgs,
) -> Result<(), ReplayError> {
    // `serve` would take the live v4 from the environment as readily as from the file.
    let from_env = std::env::var("LEGACY_GATEWAY_ORCHESTRATOR")
        .ok()
        .and_then(|u| reqwest::Url::parse(&u).ok());
    let Some(target) = target else {
        return Ok(());
    };
    let file = args
        .config
        .as_ref()
        .map_or("the configuration".into(), |p| p.display().to_string());
    let live = [
        (
            config.orchestrator.as_ref(),
            format!("orchestrator_url of {file}"),
        ),
        (from_env.as_ref(), "LEGACY_GATEWAY_ORCHESTRATOR".to_string()),
    ];
    for (url, origin) in live {
        if url.is_some_and(|u| crate::config::base_of(u) == crate::config::base_of(target)) {
            return Err(ReplayError::WritesToLive {
                target: crate::redact::url(target),
                origin,
            });
        }
    }
    Ok(())
}

/// The token from [`TOKEN_ENV`] (with `Bearer ` added when it has no scheme); else, towards
/// the sandbox, which accepts any token, a JWT made here whose user claim is the sandbox's
/// first user, signed with the configuration's HMAC secret when it has one, so that the
/// action API's identity check passes as it would for the client.
fn authorization(config: &Config, sandbox: bool) -> Result<Option<String>, ReplayError> {
    if let Some(token) = std::env::var(TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        let token = token.trim();
        return Ok(Some(if token.contains(' ') {
            token.to_string()
        } else {
            format!("Bearer {token}")
        }));
    }
    if !sandbox {
        return Ok(None);
    }
    let secret: Vec<u8> = match &config.identity.key {
        Some(KeySource::Hmac(s)) => s.clone(),
        // Not verified by the gateway (no key) nor by the sandbox; a JWKS-verifying
        // configuration needs the environment's token.
        _ => uuid::Uuid::new_v4().as_bytes().to_vec(),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = serde_json::Map::new();
    claims.insert(config.identity.claim.clone(), "1001".into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + 24 * 3600).into());
    if let Some(aud) = config.identity.audience.first() {
        claims.insert("aud".into(), aud.clone().into());
    }
    if let Some(iss) = &config.identity.issuer {
        claims.insert("iss".into(), iss.clone().into());
    }
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .map_err(|e| ReplayError::Config(format!("cannot make the replay token: {e}")))?;
    Ok(Some(format!("Bearer {token}")))
}

/// Unused when every call carries its own token; checked before the first call is sent.
pub fn needs_token(target: &Target) -> Result<&str, ReplayError> {
    target.authorization.as_deref().ok_or(ReplayError::NoToken)
}
