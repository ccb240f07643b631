//! `listen`, `workers`, `admin_listen` and the admin token: where the gateway listens. The
//! admin listener can reload the configuration and read the metrics, so off loopback it needs
//! a token.

use std::net::SocketAddr;

use super::{Overrides, RawConfig};
use crate::source::{Source, SourceError};

/// A value that must never reach a log: `Debug` prints a mask.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

pub(super) struct Listeners {
    pub listen: SocketAddr,
    pub workers: Option<usize>,
    pub admin_listen: SocketAddr,
    pub admin_token: Option<Secret>,
}

pub(super) fn check(
    src: &Source,
    raw: &RawConfig,
    o: &Overrides,
) -> Result<Listeners, SourceError> {
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
            return Err(SourceError::outside_file(
                "--workers or LEGACY_GATEWAY_WORKERS",
                "workers",
                "expected at least 1 worker",
            ))
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
    let admin_token = admin_token(src, raw, o)?;
    if !admin_listen.ip().is_loopback() && admin_token.is_none() {
        let why = "is not a loopback address: set LEGACY_GATEWAY_ADMIN_TOKEN or admin_token_file, or anyone who reaches it can reload the configuration and read the metrics";
        return Err(match (o.admin_listen, &raw.admin_listen) {
            (None, Some(s)) => src.error(s.span(), "admin_listen", why),
            _ => SourceError::outside_file(
                "--admin-listen or LEGACY_GATEWAY_ADMIN_LISTEN",
                "admin_listen",
                why,
            ),
        });
    }
    Ok(Listeners {
        listen,
        workers,
        admin_listen,
        admin_token,
    })
}

/// The shortest admin token accepted: a guessable one would open reload and the metrics.
const MIN_ADMIN_TOKEN_CHARS: usize = 16;
const WEAK_ADMIN_TOKEN: &str =
    "the admin token is shorter than 16 characters: use a random one, e.g. `openssl rand -hex 32`";

/// The environment's token, else the file's first non-blank content: an empty token would
/// let anyone in.
fn admin_token(
    src: &Source,
    raw: &RawConfig,
    o: &Overrides,
) -> Result<Option<Secret>, SourceError> {
    match (&o.admin_token, &raw.admin_token_file) {
        (Some(t), _) if t.chars().count() < MIN_ADMIN_TOKEN_CHARS => {
            Err(SourceError::outside_file(
                "LEGACY_GATEWAY_ADMIN_TOKEN",
                "admin_token",
                WEAK_ADMIN_TOKEN,
            ))
        }
        (Some(t), _) => Ok(Some(Secret(t.clone()))),
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
            if token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
                return Err(src.error(f.span(), "admin_token_file", WEAK_ADMIN_TOKEN));
            }
            Ok(Some(Secret(token.to_string())))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Overrides};

    fn load(text: &str, o: &Overrides) -> Result<Config, crate::source::SourceError> {
        Config::from_toml("c.toml", text, o)
    }

    #[test]
    fn zero_workers_are_refused_from_the_file_and_the_flag() {
        let e = load("\nworkers = 0\n", &Overrides::default()).unwrap_err();
        assert_eq!(
            (
                e.file.as_str(),
                e.line,
                e.field.as_str(),
                e.message.as_str()
            ),
            ("c.toml", 2, "workers", "expected at least 1 worker")
        );
        let o = Overrides {
            workers: Some(0),
            ..Default::default()
        };
        let e = load("workers = 4\n", &o).unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.line),
            ("--workers or LEGACY_GATEWAY_WORKERS", 0)
        );
        let c = load("workers = 4\n", &Overrides::default()).unwrap();
        assert_eq!(c.workers, Some(4));
    }

    #[test]
    fn an_admin_token_file_must_hold_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, " \n").unwrap();
        let text = format!("admin_token_file = {file:?}\n");
        let e = load(&text, &Overrides::default()).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("admin_token_file", "the file is empty")
        );
        std::fs::write(&file, "t0ken\n").unwrap();
        let e = load(&text, &Overrides::default()).unwrap_err();
        assert!(
            e.message.starts_with("the admin token is shorter than 16"),
            "{}",
            e.message
        );
        assert!(!e.to_string().contains("t0ken"), "{e}");
        std::fs::write(&file, "t0ken-t0ken-t0ken\n").unwrap();
        let c = load(&text, &Overrides::default()).unwrap();
        assert_eq!(c.admin_token.unwrap().0, "t0ken-t0ken-t0ken");
        std::fs::remove_file(&file).unwrap();
        let e = load(&text, &Overrides::default()).unwrap_err();
        assert!(e.message.starts_with("cannot read "), "{}", e.message);
    }

    #[test]
    fn the_environment_token_opens_a_public_admin_listener() {
        let o = Overrides {
            admin_token: Some("a-long-enough-admin-token".into()),
            ..Default::default()
        };
        let c = load("admin_listen = \"0.0.0.0:9901\"\n", &o).unwrap();
        assert!(!c.admin_listen.ip().is_loopback());
        assert_eq!(format!("{:?}", c.admin_token), "Some(Secret(***))");
    }
}
