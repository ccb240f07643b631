//! The legacy User API mapping (`mappings/user-api.toml`): one legacy path, `/User/{id}`, with
//! `PUT`, whose body fields choose the v4 calls (parts), and `GET` (the read, [`Read`]); the
//! legacy events each v4 call stands for; and the table that gives each failure its legacy
//! error `Type`.
//!
//! # Layout
//! - here: [`UserApi`], the checked model the routes run on, and its [`Part`]s.
//! - `raw`: the file as serde reads it.
//! - `load`: the checks that turn it into the model.
//! - `field`: a body field and its JSON type ([`Field`], [`FieldType`]).
//! - `read`: the read route's part ([`Read`]).

mod field;
mod load;
mod raw;
mod read;

use std::collections::HashMap;

use http::{HeaderName, Method};
use serde::Deserialize;

use super::rules::{Matcher, V4Failure};
use crate::translate::path::PathTemplate;
pub use field::{Field, FieldType};
pub use read::{QueryParam, Read};

#[derive(Debug, Clone)]
pub struct UserApi {
    pub name: String,
    pub method: Method,
    /// The legacy path in matchit syntax, e.g. `/User/{customerRegistrationId}`.
    pub path: String,
    pub id_param: String,
    /// With the spelling of the mapping file, for error messages.
    pub required_headers: Vec<(HeaderName, String)>,
    pub secret_fields: Vec<String>,
    /// The call changes data: not shadowed unless the route opts in.
    pub writes: bool,
    /// Answer fields that differ by nature (request ids), ignored by shadow comparison;
    /// lower-cased.
    pub shadow_noise: Vec<String>,
    /// In the order they are carried out.
    pub parts: Vec<Part>,
    /// `GET` on the same path.
    pub read: Read,
    /// Lower-cased legacy field name → (part index, field index).
    index: HashMap<String, (usize, usize)>,
    errors: Vec<ErrorRule>,
}

/// One v4 call and the legacy fields that select it.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    /// How the part is named to the legacy client (`Errors[].Part`, `Applied`).
    pub label: String,
    pub method: Method,
    pub path: PathTemplate,
    /// The legacy events the v4 call stands for, in the order v4 writes them.
    pub events: Vec<String>,
    pub fields: Vec<Field>,
}

/// The legacy `Type` of an error entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorType {
    pub id: i64,
    pub code: String,
}

#[derive(Debug, Clone)]
struct ErrorRule {
    matcher: Matcher,
    ty: ErrorType,
}

impl UserApi {
    /// The part and field a legacy key names (case-insensitive, as the legacy API bound JSON).
    pub fn field(&self, key: &str) -> Option<(usize, &Field)> {
        self.index
            .get(&key.to_lowercase())
            .map(|&(p, f)| (p, &self.parts[p].fields[f]))
    }

    /// The legacy error `Type` for a failure; the generic one when no rule matches.
    pub fn error_type(&self, failure: &V4Failure<'_>) -> ErrorType {
        self.errors
            .iter()
            .find(|r| r.matcher.matches(failure))
            .map(|r| r.ty.clone())
            .unwrap_or(ErrorType {
                id: 0,
                code: "Unknown".into(),
            })
    }

    /// Every legacy event the route can cause, for the audit and `check`.
    pub fn events(&self) -> impl Iterator<Item = &str> {
        self.parts
            .iter()
            .flat_map(|p| p.events.iter())
            .chain(self.read.events.iter())
            .map(String::as_str)
    }

    /// The legacy methods the path answers: the update's, the read's and `HEAD`.
    pub fn allows(&self, method: &Method) -> bool {
        *method == self.method || self.is_read(method)
    }

    /// The method reads the user (`HEAD` too: the same read, without the body).
    pub fn is_read(&self, method: &Method) -> bool {
        *method == self.read.method || *method == Method::HEAD
    }

    /// The `Allow` header of a 405 on the path.
    pub fn allow_header(&self) -> String {
        let mut methods = vec![
            self.method.as_str(),
            self.read.method.as_str(),
            Method::HEAD.as_str(),
        ];
        methods.sort_unstable();
        methods.dedup();
        methods.join(", ")
    }

    /// Whether a call with this method changes data (shadow mode copies writes only where
    /// the route opts in).
    pub fn writes_for(&self, method: &Method) -> bool {
        if self.is_read(method) {
            self.read.writes
        } else {
            self.writes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::EventTable;
    use super::*;
    use crate::source::Source;

    fn events() -> EventTable {
        EventTable::load(&Source::new("events.toml", super::super::EMBEDDED_EVENTS)).unwrap()
    }

    #[test]
    fn shipped_mapping_loads_in_order() {
        let m = UserApi::load(
            &Source::new("user-api.toml", super::super::EMBEDDED_USER_API),
            &events(),
        )
        .unwrap();
        let names: Vec<_> = m.parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["profile", "email", "password"]);
        assert_eq!(m.id_param, "customerRegistrationId");
        let (p, f) = m.field("password").unwrap();
        assert_eq!((p, f.v4.as_str()), (2, "password"));
        assert_eq!(m.field("IgnoreProvider").unwrap().1.v4, "ignoreProvider");
        assert_eq!(m.parts[2].events, ["GETUSERBYID", "CHGPWD"]);
        assert_eq!(m.read.events, ["GETUSERBYID"]);
        assert_eq!(m.read.path.render(Some("1001")), "/v4/Users/1001/");
        assert!(!m.writes_for(&Method::GET) && m.writes_for(&Method::PUT));
        assert_eq!(m.allow_header(), "GET, HEAD, PUT");
    }
    #[test]
    fn unknown_event_names_its_line() {
        let text = super::super::EMBEDDED_USER_API.replace("\"CHGEMAIL\"", "\"NOPE\"");
        let e = UserApi::load(&Source::new("user-api.toml", text.clone()), &events()).unwrap_err();
        let line = text.lines().position(|l| l.contains("NOPE")).unwrap() + 1;
        assert_eq!((e.line, e.field.as_str()), (line, "parts[1].events[1]"));
    }
}
