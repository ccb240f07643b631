//! The current user of the action API: the customer registration id read from the JWT in
//! `Authorization` (claim configurable, default `sub`).
//!
//! With a key configured (HMAC secret, or a JWKS file or URL) the signature, `exp` and `nbf`
//! are checked (with `identity.leeway_seconds` of clock skew), and `aud` and `iss` when
//! `identity.audience` and `identity.issuer` are set: then a token without them is refused,
//! and a registered claim of the wrong type always is ([`claims`]). Without a key the claim is only read to
//! route the call: `aud`, `iss` and the times are ignored, the token is forwarded untouched and
//! v4, which verifies it, stays the authority.
//!
//! A JWKS URL is fetched at start, again every `identity.jwks_refresh_seconds`, and on a token
//! whose `kid` is unknown (a key rotation), at most once per
//! `identity.jwks_refetch_min_seconds` so that tokens with made-up `kid`s cannot turn the
//! gateway into a load generator against the identity provider. The fetch uses the upstream
//! CA file, the connect and call timeouts, and reads at most `limits.upstream_body_bytes`.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::config::{Identity, KeySource};
use crate::translate::path::check_id;

mod claims;

/// Why no user could be read from the request; the texts are safe to show (no token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("no bearer token in Authorization")]
    Missing,
    #[error("the token cannot be read")]
    Unreadable,
    #[error("the token's signature or expiry is not valid")]
    Rejected,
    #[error("the token has no usable user claim")]
    NoClaim,
}

/// How a JWKS URL is fetched: the same TLS roots, timeouts and size bound as upstream calls.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    pub ca_pem: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_bytes: usize,
}

enum Keys {
    None,
    Hmac(DecodingKey),
    Jwks(JwkSet),
    Remote(Arc<RemoteJwks>),
}

/// A JWKS behind a URL, replaced whole on each successful fetch.
struct RemoteJwks {
    url: reqwest::Url,
    client: reqwest::Client,
    max_bytes: usize,
    set: ArcSwap<JwkSet>,
    /// When the last fetch started; also serialises fetches (one in flight at a time).
    last_fetch: tokio::sync::Mutex<Instant>,
    min_gap: Duration,
}

impl RemoteJwks {
    async fn fetch(&self) -> Result<JwkSet, String> {
        use futures_util::StreamExt;
        let shown = crate::redact::url(&self.url);
        let fail =
            |e: reqwest::Error| format!("{shown}: cannot fetch the JWKS: {}", e.without_url());
        let resp = self
            .client
            .get(self.url.clone())
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(fail)?;
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(format!(
                "{shown}: the JWKS is larger than {} bytes",
                self.max_bytes
            ));
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(fail)?;
            if body.len() + chunk.len() > self.max_bytes {
                return Err(format!(
                    "{shown}: the JWKS is larger than {} bytes",
                    self.max_bytes
                ));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{shown}: invalid JWKS: {e}"))
    }

    /// Fetches again unless a fetch started less than `min_gap` ago; true when the keys were
    /// replaced.
    async fn refresh_if_due(&self, min_gap: Duration) -> bool {
        let mut last = self.last_fetch.lock().await;
        if last.elapsed() < min_gap {
            return false;
        }
        *last = Instant::now();
        match self.fetch().await {
            Ok(set) => {
                self.set.store(Arc::new(set));
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWKS refresh failed; the previous keys stay");
                false
            }
        }
    }
}

/// Refreshes on a schedule for as long as the verifier (its runtime) lives.
fn spawn_refresh(remote: Weak<RemoteJwks>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(r) = remote.upgrade() else { break };
            r.refresh_if_due(Duration::ZERO).await;
        }
    });
}

pub struct Verifier {
    claim: String,
    keys: Keys,
    audience: Vec<String>,
    issuer: Option<String>,
    leeway: u64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("claim", &self.claim)
            .finish_non_exhaustive()
    }
}

/// A token failed; `UnknownKid` may succeed after the keys are fetched again.
enum Rejection {
    Id(IdentityError),
    UnknownKid,
}

impl From<IdentityError> for Rejection {
    fn from(e: IdentityError) -> Self {
        Rejection::Id(e)
    }
}

impl Verifier {
    /// Loads the keys (a JWKS URL is fetched here, then refreshed in the background).
    pub async fn load(cfg: &Identity, fetch: &FetchOptions) -> Result<Self, String> {
        let keys = match &cfg.key {
            None => Keys::None,
            Some(KeySource::Hmac(secret)) => Keys::Hmac(DecodingKey::from_secret(secret)),
            Some(KeySource::JwksFile(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: cannot read the JWKS file: {e}", path.display()))?;
                Keys::Jwks(
                    serde_json::from_str(&text)
                        .map_err(|e| format!("{}: invalid JWKS: {e}", path.display()))?,
                )
            }
            Some(KeySource::JwksUrl(url)) => {
                let mut b = reqwest::Client::builder()
                    .no_proxy()
                    .connect_timeout(fetch.connect_timeout)
                    .timeout(fetch.timeout);
                if let Some(pem) = &fetch.ca_pem {
                    for cert in reqwest::Certificate::from_pem_bundle(pem)
                        .map_err(|e| format!("the CA file cannot be read: {}", e.without_url()))?
                    {
                        b = b.add_root_certificate(cert);
                    }
                }
                let client = b
                    .build()
                    .map_err(|e| format!("cannot build the JWKS client: {e}"))?;
                let remote = Arc::new(RemoteJwks {
                    url: url.clone(),
                    client,
                    max_bytes: fetch.max_bytes,
                    set: ArcSwap::from_pointee(JwkSet { keys: Vec::new() }),
                    // A key rotated just after start may be fetched at once.
                    last_fetch: tokio::sync::Mutex::new(
                        Instant::now()
                            .checked_sub(cfg.jwks_refetch_min)
                            .unwrap_or_else(Instant::now),
                    ),
                    min_gap: cfg.jwks_refetch_min,
                });
                let set = remote.fetch().await?;
                remote.set.store(Arc::new(set));
                spawn_refresh(Arc::downgrade(&remote), cfg.jwks_refresh);
                Keys::Remote(remote)
            }
        };
        let verifier = Self {
            claim: cfg.claim.clone(),
            keys,
            audience: cfg.audience.clone(),
            issuer: cfg.issuer.clone(),
            leeway: cfg.leeway_seconds,
        };
        if verifier.verifies() {
            if verifier.audience.is_empty() {
                tracing::warn!("identity.audience is not set: tokens issued for other applications are accepted");
            }
            if verifier.issuer.is_none() {
                tracing::warn!("identity.issuer is not set: the token's issuer is not checked");
            }
        }
        Ok(verifier)
    }

    pub fn verifies(&self) -> bool {
        !matches!(self.keys, Keys::None)
    }

    /// The user id from an `Authorization` header value, with the keys at hand.
    pub fn user_id(&self, authorization: Option<&str>) -> Result<String, IdentityError> {
        self.verify(authorization).map_err(|f| match f {
            Rejection::Id(e) => e,
            Rejection::UnknownKid => IdentityError::Rejected,
        })
    }

    /// [`Self::user_id`], fetching a JWKS URL again first when the token names a key it does
    /// not hold (at most once per `identity.jwks_refetch_min_seconds`).
    pub async fn user_id_fetching(
        &self,
        authorization: Option<&str>,
    ) -> Result<String, IdentityError> {
        match self.verify(authorization) {
            Ok(id) => Ok(id),
            Err(Rejection::Id(e)) => Err(e),
            Err(Rejection::UnknownKid) => {
                if let Keys::Remote(r) = &self.keys {
                    if r.refresh_if_due(r.min_gap).await {
                        return self.user_id(authorization);
                    }
                }
                Err(IdentityError::Rejected)
            }
        }
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway;
        v.validate_nbf = true;
        if self.audience.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.audience);
        }
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
        }
        v
    }

    fn expected(&self) -> claims::Expected<'_> {
        claims::Expected {
            audience: &self.audience,
            issuer: self.issuer.as_deref(),
            leeway: self.leeway,
            now: jsonwebtoken::get_current_timestamp(),
        }
    }

    fn verify(&self, authorization: Option<&str>) -> Result<String, Rejection> {
        let token = authorization
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(IdentityError::Missing)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| IdentityError::Unreadable)?;
        let from_set = |set: &JwkSet| -> Result<Map<String, Value>, Rejection> {
            let jwk = match &header.kid {
                Some(kid) => set.find(kid).ok_or(Rejection::UnknownKid)?,
                None if set.keys.len() == 1 => &set.keys[0],
                None => return Err(IdentityError::Rejected.into()),
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|_| IdentityError::Rejected)?;
            Ok(decode(token, &key, &self.validation(header.alg))?)
        };
        let claims: Map<String, Value> = match &self.keys {
            Keys::None => {
                // Only read: aud, iss and the times are v4's to judge.
                let mut v = Validation::new(header.alg);
                v.insecure_disable_signature_validation();
                v.validate_exp = false;
                v.validate_nbf = false;
                v.validate_aud = false;
                v.required_spec_claims.clear();
                decode(token, &DecodingKey::from_secret(&[]), &v)
                    .map_err(|_| IdentityError::Unreadable)?
            }
            Keys::Hmac(key) => {
                if !matches!(
                    header.alg,
                    Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
                ) {
                    return Err(IdentityError::Rejected.into());
                }
                decode(token, key, &self.validation(header.alg))?
            }
            Keys::Jwks(set) => from_set(set)?,
            Keys::Remote(r) => from_set(&r.set.load())?,
        };
        if self.verifies() && !claims::acceptable(&claims, &self.expected()) {
            return Err(IdentityError::Rejected.into());
        }
        let id = match claims.get(&self.claim) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(IdentityError::NoClaim.into()),
        };
        check_id(&id).map_err(|_| IdentityError::NoClaim)?;
        Ok(id)
    }
}

fn decode(
    token: &str,
    key: &DecodingKey,
    v: &Validation,
) -> Result<Map<String, Value>, IdentityError> {
    jsonwebtoken::decode::<Map<String, Value>>(token, key, v)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidToken
            | jsonwebtoken::errors::ErrorKind::Base64(_)
            | jsonwebtoken::errors::ErrorKind::Json(_)
            | jsonwebtoken::errors::ErrorKind::Utf8(_) => IdentityError::Unreadable,
            _ => IdentityError::Rejected,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn token(claims: Value, secret: &[u8]) -> String {
        format!(
            "Bearer {}",
            encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(secret)
            )
            .unwrap()
        )
    }

    fn verifier(key: Option<KeySource>) -> Verifier {
        let cfg = Identity {
            claim: "sub".into(),
            key,
            ..Identity::default()
        };
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(Verifier::load(&cfg, &FetchOptions::default()))
            .unwrap()
    }

    #[test]
    fn reads_the_claim_without_a_key() {
        let v = verifier(None);
        assert_eq!(
            v.user_id(Some(&token(json!({"sub": "1001"}), b"any")))
                .unwrap(),
            "1001"
        );
        assert_eq!(v.user_id(None), Err(IdentityError::Missing));
        assert_eq!(
            v.user_id(Some("Bearer nope")),
            Err(IdentityError::Unreadable)
        );
        assert_eq!(
            v.user_id(Some(&token(json!({"name": "x"}), b"k"))),
            Err(IdentityError::NoClaim)
        );
        assert_eq!(
            v.user_id(Some(&token(json!({"sub": "../x"}), b"k"))),
            Err(IdentityError::NoClaim)
        );
    }

    #[test]
    fn checks_signature_and_expiry_with_a_key() {
        let v = verifier(Some(KeySource::Hmac(b"right".to_vec())));
        let exp = 4_102_444_800u64; // 2100-01-01
        assert_eq!(
            v.user_id(Some(&token(json!({"sub": "7", "exp": exp}), b"right")))
                .unwrap(),
            "7"
        );
        assert_eq!(
            v.user_id(Some(&token(json!({"sub": "7", "exp": exp}), b"wrong"))),
            Err(IdentityError::Rejected)
        );
        assert_eq!(
            v.user_id(Some(&token(
                json!({"sub": "7", "exp": 1_000_000}),
                b"right"
            ))),
            Err(IdentityError::Rejected)
        );
    }
}
