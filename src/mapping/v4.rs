//! Facts about the v4 contract shared by both legacy APIs (`mappings/v4.toml`): the code
//! prefix and the names of the tenant headers.

use http::HeaderName;
use serde::Deserialize;
use toml::Spanned;

use crate::source::{Source, SourceError};

#[derive(Debug, Clone)]
pub struct V4Facts {
    pub code_prefix: String,
    pub headers: TenantHeaders,
}

/// The four tenant headers every v4 call carries besides `Authorization`.
#[derive(Debug, Clone)]
pub struct TenantHeaders {
    pub source_system: HeaderName,
    pub client_code: HeaderName,
    pub paper_code: HeaderName,
    pub client_group_code: HeaderName,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    code_prefix: String,
    headers: RawHeaders,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaders {
    source_system: Spanned<String>,
    client_code: Spanned<String>,
    paper_code: Spanned<String>,
    client_group_code: Spanned<String>,
}

impl V4Facts {
    pub fn load(src: &Source) -> Result<Self, SourceError> {
        let raw: RawFile = src.parse()?;
        let h = |v: &Spanned<String>, f: &str| header_name(src, v, &format!("headers.{f}"));
        Ok(Self {
            code_prefix: raw.code_prefix,
            headers: TenantHeaders {
                source_system: h(&raw.headers.source_system, "source_system")?,
                client_code: h(&raw.headers.client_code, "client_code")?,
                paper_code: h(&raw.headers.paper_code, "paper_code")?,
                client_group_code: h(&raw.headers.client_group_code, "client_group_code")?,
            },
        })
    }

    /// `UsersOrchestrator_E400_00` → `E400_00`; a code without the prefix is kept as it is.
    pub fn short_code<'a>(&self, code: &'a str) -> &'a str {
        code.strip_prefix(self.code_prefix.as_str()).unwrap_or(code)
    }
}

pub(crate) fn header_name(
    src: &Source,
    v: &Spanned<String>,
    field: &str,
) -> Result<HeaderName, SourceError> {
    HeaderName::from_bytes(v.get_ref().as_bytes()).map_err(|_| {
        src.error(
            v.span(),
            field,
            format!("invalid header name {:?}", v.get_ref()),
        )
    })
}
