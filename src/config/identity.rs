//! `[identity]`: how the action API finds the current user in the JWT. One key source only,
//! so that which key verified a token is never in doubt.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{parse_url, positive, Overrides};
use crate::source::{Source, SourceError};

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

#[derive(Debug, Clone)]
pub enum KeySource {
    Hmac(Vec<u8>),
    JwksFile(PathBuf),
    JwksUrl(reqwest::Url),
}

/// `audience = "x"` or `audience = ["x", "y"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIdentity {
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

pub(super) fn check(
    src: &Source,
    id: &RawIdentity,
    o: &Overrides,
) -> Result<Identity, SourceError> {
    let secret = o.jwt_secret.clone().or_else(|| id.hmac_secret.clone());
    let key = match (secret, &id.jwks_file, &id.jwks_url) {
        (Some(s), None, None) if !s.is_empty() => Some(KeySource::Hmac(s.into_bytes())),
        (None, Some(f), None) => Some(KeySource::JwksFile(f.clone())),
        (None, None, Some(u)) => Some(KeySource::JwksUrl(
            parse_url(u.get_ref()).map_err(|m| src.error(u.span(), "identity.jwks_url", m))?,
        )),
        (None, None, None) => None,
        _ => return Err(src.error(
            0..0,
            "identity",
            "set exactly one of hmac_secret (or LEGACY_GATEWAY_JWT_SECRET), jwks_file, jwks_url",
        )),
    };
    let d = Identity::default();
    let secs = |v: &Option<Spanned<u64>>, field: &str, def: Duration| {
        Ok::<_, SourceError>(positive(src, v, field)?.map_or(def, Duration::from_secs))
    };
    Ok(Identity {
        claim: id.claim.clone().unwrap_or(d.claim),
        key,
        audience: match &id.audience {
            None => Vec::new(),
            Some(OneOrMany::One(a)) => vec![a.clone()],
            Some(OneOrMany::Many(v)) => v.clone(),
        },
        issuer: id.issuer.clone(),
        leeway_seconds: id.leeway_seconds.unwrap_or(d.leeway_seconds),
        jwks_refresh: secs(
            &id.jwks_refresh_seconds,
            "identity.jwks_refresh_seconds",
            d.jwks_refresh,
        )?,
        jwks_refetch_min: secs(
            &id.jwks_refetch_min_seconds,
            "identity.jwks_refetch_min_seconds",
            d.jwks_refetch_min,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::KeySource;
    use crate::config::{Config, Overrides};

    fn load(text: &str, o: &Overrides) -> Result<Config, crate::source::SourceError> {
        Config::from_toml("c.toml", text, o)
    }

    #[test]
    fn one_key_source_and_the_audience_in_either_form() {
        let c = load(
            "[identity]\njwks_url = \"https://idp.test/jwks\"\naudience = \"a\"\n",
            &Overrides::default(),
        )
        .unwrap();
        assert!(matches!(c.identity.key, Some(KeySource::JwksUrl(_))));
        assert_eq!(c.identity.audience, ["a"]);
        let c = load(
            "[identity]\naudience = [\"a\", \"b\"]\n",
            &Overrides::default(),
        )
        .unwrap();
        assert!(c.identity.key.is_none());
        assert_eq!(c.identity.audience, ["a", "b"]);
    }

    #[test]
    fn two_key_sources_are_refused_even_when_one_is_a_flag() {
        let o = Overrides {
            jwt_secret: Some("s".into()),
            ..Default::default()
        };
        let e = load("[identity]\njwks_file = \"/k.json\"\n", &o).unwrap_err();
        assert_eq!(e.field, "identity");
        assert!(e.message.starts_with("set exactly one of"), "{}", e.message);
        let e = load("[identity]\nhmac_secret = \"\"\n", &Overrides::default()).unwrap_err();
        assert_eq!(e.field, "identity");
    }

    #[test]
    fn bad_urls_and_zero_intervals_are_named() {
        let e = load(
            "[identity]\njwks_url = \"file:///k.json\"\n",
            &Overrides::default(),
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "identity.jwks_url"));
        let e = load(
            "[identity]\njwks_refetch_min_seconds = 0\n",
            &Overrides::default(),
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str(), e.message.as_str()),
            (
                2,
                "identity.jwks_refetch_min_seconds",
                "must be greater than 0"
            )
        );
    }
}
