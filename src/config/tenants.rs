//! `[registry]` and `[[tenants]]`: where the action API is served and which newspaper site
//! each Host stands for. A tenant whose host could never equal a request's Host would leave
//! that site answering "unknown tenant", so such hosts are refused here, at start.

use serde::Deserialize;
use toml::Spanned;

use super::parse_url;
use crate::source::{Source, SourceError};

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
pub(super) struct RawRegistry {
    path: Option<Spanned<String>>,
}

pub(super) fn registry_path(
    src: &Source,
    raw: &RawRegistry,
) -> Result<Option<String>, SourceError> {
    match &raw.path {
        Some(p) if !p.get_ref().starts_with('/') => {
            Err(src.error(p.span(), "registry.path", "expected an absolute path"))
        }
        Some(p) => Ok(Some(p.get_ref().clone())),
        None => Ok(None),
    }
}

/// The tenants with their hosts lower-cased, as request hosts are before they are compared.
pub(super) fn check(src: &Source, raw: &[Spanned<Tenant>]) -> Result<Vec<Tenant>, SourceError> {
    let mut tenants: Vec<Tenant> = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let host = t.get_ref().host.to_ascii_lowercase();
        if let Some(why) = crate::host::unmatchable(&host) {
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
    Ok(tenants)
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Overrides};

    fn tenant(host: &str, return_url: &str) -> String {
        format!(
            "[[tenants]]\nhost = {host:?}\nsource_system = \"s\"\nclient_code = \"c\"\npaper_code = \"p\"\nclient_group_code = \"g\"\nreturn_url = {return_url:?}\n"
        )
    }

    fn load(text: &str) -> Result<Config, crate::source::SourceError> {
        Config::from_toml("c.toml", text, &Overrides::default())
    }

    #[test]
    fn hosts_are_lower_cased_and_kept_unique() {
        let ok = tenant("Paper.Test:8443", "https://paper.test/r");
        let c = load(&ok).unwrap();
        assert_eq!(c.tenants[0].host, "paper.test:8443");
        let twice = format!(
            "{ok}\n{}",
            tenant("paper.test:8443", "https://paper.test/r")
        );
        let e = load(&twice).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str(), e.message.as_str()),
            (9, "tenants[1].host", "empty or duplicate host")
        );
    }

    #[test]
    fn an_unmatchable_host_and_a_relative_return_url_are_refused() {
        let e = load(&tenant("[::1", "https://paper.test/r")).unwrap_err();
        assert_eq!(e.field, "tenants[0].host");
        assert_eq!(
            e.message,
            "\"[::1\" has an unclosed [ of an IPv6 address; it would never match a request's Host"
        );
        let e = load(&tenant("paper.test", "/reset")).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("tenants[0].return_url", "expected an absolute URL")
        );
    }

    #[test]
    fn the_registry_path_must_be_absolute() {
        let e = load("[registry]\npath = \"registry\"\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str(), e.message.as_str()),
            (2, "registry.path", "expected an absolute path")
        );
        let c = load("[registry]\npath = \"/registry\"\n").unwrap();
        assert_eq!(c.registry_path.as_deref(), Some("/registry"));
    }
}
