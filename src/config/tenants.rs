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
    /// `source_system`, `client_code`, `paper_code`, `client_group_code` as header values,
    /// made once when the tenant is loaded: a request clones them (sharing their bytes)
    /// rather than checking and copying four strings.
    #[serde(skip)]
    pub header_values: Vec<http::HeaderValue>,
}

impl Tenant {
    /// The tenant with its header values made, or the field whose value cannot be sent as
    /// a header (a control character).
    pub fn with_header_values(mut self) -> Result<Self, &'static str> {
        let fields = [
            ("source_system", &self.source_system),
            ("client_code", &self.client_code),
            ("paper_code", &self.paper_code),
            ("client_group_code", &self.client_group_code),
        ];
        let mut values = Vec::with_capacity(fields.len());
        for (field, value) in fields {
            values.push(http::HeaderValue::from_str(value).map_err(|_| field)?);
        }
        self.header_values = values;
        Ok(self)
    }
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
        let tenant = Tenant {
            host,
            ..t.get_ref().clone()
        }
        .with_header_values()
        .map_err(|field| {
            src.error(
                t.span(),
                format!("tenants[{i}].{field}"),
                "expected text that can be sent as a header value (no control characters)",
            )
        })?;
        tenants.push(tenant);
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

    /// A value v4 could never receive as a header is refused at load, with its line, rather
    /// than dropped from every call of the tenant.
    #[test]
    fn tenant_values_must_be_header_text() {
        let c = load(&tenant("paper.test", "https://paper.test/r")).unwrap();
        assert_eq!(c.tenants[0].header_values.len(), 4);
        assert_eq!(c.tenants[0].header_values[1], "c");
        let bad = tenant("paper.test", "https://paper.test/r")
            .replace("paper_code = \"p\"", "paper_code = \"p\\u0001\"");
        let e = load(&bad).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str()),
            (1, "tenants[0].paper_code"),
            "{e:?}"
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
