//! The checks more than one mapping file makes (`user-api.toml` and `registry.toml`): an HTTP
//! method, a list of legacy events, the default of a `writes` flag. In their own module so
//! that the files' loaders share them without using each other.

use http::Method;
use toml::Spanned;

use super::EventTable;
use crate::source::{Source, SourceError};

/// A list of legacy event codes, each known to `events.toml`, at least one.
pub(super) fn event_list(
    src: &Source,
    events: &EventTable,
    list: &Spanned<Vec<Spanned<String>>>,
    field: &str,
) -> Result<Vec<String>, SourceError> {
    if list.get_ref().is_empty() {
        return Err(src.error(list.span(), field, "list at least one legacy event"));
    }
    list.get_ref()
        .iter()
        .enumerate()
        .map(|(i, e)| match events.get(e.get_ref()) {
            Some(_) => Ok(e.get_ref().clone()),
            None => Err(src.error(
                e.span(),
                format!("{field}[{i}]"),
                format!("unknown event {:?} (not in events.toml)", e.get_ref()),
            )),
        })
        .collect()
}

/// An HTTP method a mapping may name, in any case: GET, POST, PUT, PATCH or DELETE.
pub(super) fn parse_method(
    src: &Source,
    v: &Spanned<String>,
    field: &str,
) -> Result<Method, SourceError> {
    match v.get_ref().to_ascii_uppercase().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE") => {
            Ok(Method::from_bytes(m.as_bytes())
                .map_err(|_| src.error(v.span(), field, "invalid method"))?)
        }
        other => Err(src.error(
            v.span(),
            field,
            format!("unsupported method {other:?} (GET, POST, PUT, PATCH, DELETE)"),
        )),
    }
}

/// The default of `writes`: unknown means "may write", the safe reading for shadow mode.
pub(super) fn yes() -> bool {
    true
}
