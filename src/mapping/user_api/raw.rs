//! `user-api.toml` as serde reads it: strings with their spans, so every check after this
//! can name the file, line and field it refuses.

use std::collections::HashMap;

use serde::Deserialize;
use toml::Spanned;

use super::super::rules::RawStatus;
use super::ErrorType;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) route: RawRoute,
    pub(super) read: RawRead,
    pub(super) parts: Vec<RawPart>,
    pub(super) errors: Vec<RawError>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) name: String,
    pub(super) method: Spanned<String>,
    pub(super) path: Spanned<String>,
    pub(super) required_headers: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) secret_fields: Vec<Spanned<String>>,
    #[serde(default = "super::super::checks::yes")]
    pub(super) writes: bool,
    #[serde(default)]
    pub(super) shadow_noise: Vec<String>,
    pub(super) order: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRead {
    pub(super) name: String,
    pub(super) method: Spanned<String>,
    pub(super) path: Spanned<String>,
    pub(super) events: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) writes: bool,
    #[serde(default)]
    pub(super) query: std::collections::BTreeMap<String, RawQueryParam>,
    pub(super) rename: Option<Spanned<HashMap<String, String>>>,
    pub(super) shadow_sets: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQueryParam {
    pub(super) v4: String,
    #[serde(rename = "type")]
    pub(super) ty: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPart {
    pub(super) name: Spanned<String>,
    pub(super) label: Option<String>,
    pub(super) method: Spanned<String>,
    pub(super) path: Spanned<String>,
    pub(super) events: Spanned<Vec<Spanned<String>>>,
    pub(super) fields: Spanned<std::collections::BTreeMap<String, Spanned<String>>>,
    #[serde(default)]
    pub(super) rename: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawError {
    pub(super) status: Option<Spanned<RawStatus>>,
    pub(super) code: Option<String>,
    pub(super) text: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub(super) ty: ErrorType,
}
