//! `orchestrator_url`, `sandbox`, the legacy backends and `[upstream]`: the services the
//! gateway calls. A URL given as a flag is reported under the flag's name, since no file line
//! holds it.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{parse_url, Overrides, RawConfig};
use crate::source::{Source, SourceError};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    pub ca_file: Option<PathBuf>,
}

/// v4; `None`: the embedded sandbox.
pub(super) fn orchestrator(
    src: &Source,
    raw: &RawConfig,
    o: &Overrides,
) -> Result<Option<reqwest::Url>, SourceError> {
    url(
        src,
        &o.orchestrator,
        &raw.orchestrator_url,
        "orchestrator_url",
    )
}

/// Whether the embedded sandbox may serve. It accepts any token and fakes every user, so
/// reaching it from the network must be a decision, never the result of a missing
/// `orchestrator_url`: without an orchestrator, a listener off loopback needs `sandbox = true`
/// (or `--sandbox`). Asking for the sandbox and an orchestrator at once is refused too: one of
/// the two is a mistake, and guessing which would serve the wrong users.
pub(super) fn sandbox(
    src: &Source,
    raw: &RawConfig,
    o: &Overrides,
    orchestrator: Option<&reqwest::Url>,
    listen: std::net::SocketAddr,
) -> Result<(), SourceError> {
    let asked = o.sandbox || raw.sandbox.as_ref().is_some_and(|s| *s.get_ref());
    let blame = |field: &str, flag: &str, message: String| match (field, &raw.sandbox, &raw.listen)
    {
        ("sandbox", Some(s), _) if !o.sandbox => src.error(s.span(), field, message),
        ("listen", _, Some(l)) if o.listen.is_none() => src.error(l.span(), field, message),
        _ => SourceError::outside_file(flag, field, message),
    };
    match orchestrator {
        Some(_) if asked => Err(blame(
            "sandbox",
            "--sandbox or LEGACY_GATEWAY_SANDBOX",
            "the embedded sandbox and an orchestrator are both configured: drop --orchestrator \
             (orchestrator_url, LEGACY_GATEWAY_ORCHESTRATOR) to serve the sandbox, or --sandbox \
             (sandbox, LEGACY_GATEWAY_SANDBOX) to serve the orchestrator"
                .into(),
        )),
        None if !asked && !listen.ip().is_loopback() => Err(blame(
            "listen",
            "--listen or LEGACY_GATEWAY_LISTEN",
            format!(
                "{listen} is not a loopback address and no orchestrator is configured: set \
                 --orchestrator (orchestrator_url, LEGACY_GATEWAY_ORCHESTRATOR) to serve a Users \
                 Orchestrator, or --sandbox (sandbox = true, LEGACY_GATEWAY_SANDBOX) to serve the \
                 embedded sandbox (fake users, any token accepted) on purpose"
            ),
        )),
        _ => Ok(()),
    }
}

/// The legacy User API and user-registry backends.
pub(super) fn legacy_backends(
    src: &Source,
    raw: &RawConfig,
    o: &Overrides,
) -> Result<(Option<reqwest::Url>, Option<reqwest::Url>), SourceError> {
    Ok((
        url(src, &o.user_api, &raw.user_api_url, "user_api_url")?,
        url(
            src,
            &o.registry_api,
            &raw.registry_api_url,
            "registry_api_url",
        )?,
    ))
}

/// `field`'s flag is `--` and its name without `_url`: `--orchestrator`, `--user-api`.
fn url(
    src: &Source,
    flag: &Option<String>,
    raw: &Option<Spanned<String>>,
    field: &str,
) -> Result<Option<reqwest::Url>, SourceError> {
    match (flag, raw) {
        (Some(u), _) => parse_url(u).map(Some).map_err(|m| {
            let flag = format!("--{}", field.replace('_', "-").trim_end_matches("-url"));
            SourceError::outside_file(flag, field, m)
        }),
        (None, Some(s)) => parse_url(s.get_ref())
            .map(Some)
            .map_err(|m| src.error(s.span(), field, m)),
        (None, None) => Ok(None),
    }
}

/// `scheme://host[:port]/prefix` without a trailing slash: what a request path is appended to.
/// User info, query and fragment of the configured URL are not part of it. Here because the
/// configuration compares bases too (a staging v4 must not be the live one).
pub fn base_of(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("localhost");
    let mut base = if host.contains(':') && !host.starts_with('[') {
        format!("{}://[{host}]", url.scheme())
    } else {
        format!("{}://{host}", url.scheme())
    };
    if let Some(port) = url.port() {
        base.push(':');
        base.push_str(&port.to_string());
    }
    base.push_str(url.path().trim_end_matches('/'));
    base
}

#[cfg(test)]
mod tests {
    #[test]
    fn base_keeps_scheme_host_port_and_path_prefix_only() {
        let cases = [
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
            ("https://v4.example.com/api/", "https://v4.example.com/api"),
            ("http://[::1]:9/", "http://[::1]:9"),
            ("http://user:pw@h.example/p?q=1", "http://h.example/p"),
        ];
        for (url, want) in cases {
            assert_eq!(
                super::base_of(&url::Url::parse(url).unwrap()),
                want,
                "{url}"
            );
        }
    }

    use crate::config::{Config, Overrides};

    #[test]
    fn a_bad_url_is_named_by_the_flag_or_the_line_that_gave_it() {
        let o = Overrides {
            orchestrator: Some("nowhere".into()),
            ..Default::default()
        };
        let e = Config::from_toml("c.toml", "", &o).unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.line, e.field.as_str()),
            ("--orchestrator", 0, "orchestrator_url")
        );
        let o = Overrides {
            registry_api: Some("ftp://legacy.test".into()),
            ..Default::default()
        };
        let e = Config::from_toml("c.toml", "", &o).unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.field.as_str()),
            ("--registry-api", "registry_api_url")
        );
        assert_eq!(e.message, "expected an http:// or https:// URL with a host");
        let text = "\nuser_api_url = \"http://\"\n";
        let e = Config::from_toml("c.toml", text, &Overrides::default()).unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.line, e.field.as_str()),
            ("c.toml", 2, "user_api_url")
        );
        assert!(e.message.starts_with("invalid URL: "), "{}", e.message);
    }
}
