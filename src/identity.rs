//! The current user of the action API: the customer registration id read from the JWT in
//! `Authorization` (claim configurable, default `sub`).
//!
//! With a key configured (HMAC secret, or a JWKS file or URL) the signature and `exp` are
//! checked. Without one the claim is only read to route the call: the token is forwarded
//! untouched and v4, which verifies it, stays the authority.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::config::{Identity, KeySource};
use crate::translate::path::check_id;

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

enum Keys {
    None,
    Hmac(DecodingKey),
    Jwks(JwkSet),
}

pub struct Verifier {
    claim: String,
    keys: Keys,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("claim", &self.claim)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Loads the keys (a JWKS URL is fetched once, here; a reload fetches it again).
    pub async fn load(cfg: &Identity) -> Result<Self, String> {
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
            Some(KeySource::JwksUrl(jwks_url)) => {
                let url = crate::redact::url(jwks_url);
                let set = reqwest::Client::new()
                    .get(jwks_url.clone())
                    .timeout(std::time::Duration::from_secs(5))
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| format!("{url}: cannot fetch the JWKS: {}", e.without_url()))?
                    .bytes()
                    .await
                    .map_err(|e| format!("{url}: cannot fetch the JWKS: {}", e.without_url()))?;
                let set: JwkSet = serde_json::from_slice(&set)
                    .map_err(|e| format!("{url}: invalid JWKS: {e}"))?;
                Keys::Jwks(set)
            }
        };
        Ok(Self {
            claim: cfg.claim.clone(),
            keys,
        })
    }

    pub fn verifies(&self) -> bool {
        !matches!(self.keys, Keys::None)
    }

    /// The user id from an `Authorization` header value.
    pub fn user_id(&self, authorization: Option<&str>) -> Result<String, IdentityError> {
        let token = authorization
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(IdentityError::Missing)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| IdentityError::Unreadable)?;
        let claims: Map<String, Value> = match &self.keys {
            Keys::None => {
                let mut v = Validation::new(header.alg);
                v.insecure_disable_signature_validation();
                v.validate_exp = false;
                v.required_spec_claims.clear();
                decode(token, &DecodingKey::from_secret(&[]), &v)
                    .map_err(|_| IdentityError::Unreadable)?
            }
            Keys::Hmac(key) => {
                if !matches!(
                    header.alg,
                    Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
                ) {
                    return Err(IdentityError::Rejected);
                }
                decode(token, key, &Validation::new(header.alg))?
            }
            Keys::Jwks(set) => {
                let jwk = match &header.kid {
                    Some(kid) => set.find(kid),
                    None if set.keys.len() == 1 => set.keys.first(),
                    None => None,
                }
                .ok_or(IdentityError::Rejected)?;
                let key = DecodingKey::from_jwk(jwk).map_err(|_| IdentityError::Rejected)?;
                decode(token, &key, &Validation::new(header.alg))?
            }
        };
        let id = match claims.get(&self.claim) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(IdentityError::NoClaim),
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
        };
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(Verifier::load(&cfg))
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
