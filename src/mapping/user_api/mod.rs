//! The legacy User API mapping (`mappings/user-api.toml`): one legacy path, `/User/{id}`, with
//! `PUT`, whose body fields choose the v4 calls (parts), and `GET` (the read, [`Read`]); the
//! legacy events each v4 call stands for; and the table that gives each failure its legacy
//! error `Type`.

use std::collections::HashMap;

use heck::ToLowerCamelCase;
use http::{HeaderName, Method};
use serde::Deserialize;
use toml::Spanned;

use super::rules::{Failure, Matcher, RawMatcher, RawStatus};
use super::v4::header_name;
use super::EventTable;
use crate::source::{Source, SourceError};
use crate::translate::path::PathTemplate;

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

/// `GET /User/{id}`: one v4 call whose `data` is the legacy `Result`.
#[derive(Debug, Clone)]
pub struct Read {
    pub name: String,
    /// The legacy method and v4's (`GET`); `HEAD` is answered like it, without a body.
    pub method: Method,
    pub path: PathTemplate,
    pub events: Vec<String>,
    /// False for a read: shadow mode copies it without the route opting in.
    pub writes: bool,
    /// The query parameters passed on.
    pub query: Vec<QueryParam>,
    /// v4 field name → legacy field name, for the top-level fields of `data`.
    pub rename: HashMap<String, String>,
    /// Lower-cased dotted paths (`result.roles`) of arrays compared as sets in shadow mode.
    pub shadow_sets: Vec<String>,
}

/// A legacy query parameter of the read and its v4 name.
#[derive(Debug, Clone)]
pub struct QueryParam {
    /// As the mapping spells it, for error messages.
    pub legacy: String,
    pub v4: String,
    /// `string` or `boolean` (`true`/`false` in any case, sent lower-case).
    pub ty: FieldType,
}

impl Read {
    /// The v4 query string for a legacy one: only the declared parameters, renamed, checked
    /// and encoded. A value of the wrong type is refused, naming the parameter, as ASP.NET's
    /// model binding refused it.
    pub fn v4_query(&self, legacy: Option<&str>) -> Result<Option<String>, (String, FieldType)> {
        let Some(legacy) = legacy else {
            return Ok(None);
        };
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        let mut any = false;
        for (k, v) in url::form_urlencoded::parse(legacy.as_bytes()) {
            let Some(p) = self
                .query
                .iter()
                .find(|p| p.legacy.eq_ignore_ascii_case(&k))
            else {
                continue;
            };
            let value = match p.ty {
                FieldType::Boolean if v.eq_ignore_ascii_case("true") => "true".into(),
                FieldType::Boolean if v.eq_ignore_ascii_case("false") => "false".into(),
                FieldType::Boolean => return Err((p.legacy.clone(), p.ty)),
                _ => v,
            };
            out.append_pair(&p.v4, &value);
            any = true;
        }
        Ok(any.then(|| out.finish()))
    }
}

#[derive(Debug, Clone)]
pub struct Field {
    pub legacy: String,
    pub v4: String,
    pub ty: FieldType,
    pub nullable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Boolean,
    Number,
    Object,
    Array,
    Any,
}

impl FieldType {
    fn parse(s: &str) -> Option<(Self, bool)> {
        let (base, nullable) = match s.strip_suffix('?') {
            Some(b) => (b, true),
            None => (s, false),
        };
        let ty = match base {
            "string" => Self::String,
            "boolean" => Self::Boolean,
            "number" => Self::Number,
            "object" => Self::Object,
            "array" => Self::Array,
            "any" => Self::Any,
            _ => return None,
        };
        Some((ty, nullable))
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Boolean => "a boolean",
            Self::Number => "a number",
            Self::Object => "an object",
            Self::Array => "an array",
            Self::Any => "a value",
        }
    }

    pub fn accepts(self, v: &serde_json::Value) -> bool {
        use serde_json::Value as V;
        matches!(
            (self, v),
            (Self::Any, _)
                | (Self::String, V::String(_))
                | (Self::Boolean, V::Bool(_))
                | (Self::Number, V::Number(_))
                | (Self::Object, V::Object(_))
                | (Self::Array, V::Array(_))
        )
    }
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    route: RawRoute,
    read: RawRead,
    parts: Vec<RawPart>,
    errors: Vec<RawError>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: String,
    method: Spanned<String>,
    path: Spanned<String>,
    required_headers: Vec<Spanned<String>>,
    #[serde(default)]
    secret_fields: Vec<String>,
    #[serde(default = "yes")]
    writes: bool,
    #[serde(default)]
    shadow_noise: Vec<String>,
    order: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRead {
    name: String,
    method: Spanned<String>,
    path: Spanned<String>,
    events: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    writes: bool,
    #[serde(default)]
    query: std::collections::BTreeMap<String, RawQueryParam>,
    rename: Option<Spanned<HashMap<String, String>>>,
    shadow_sets: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueryParam {
    v4: String,
    #[serde(rename = "type")]
    ty: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPart {
    name: Spanned<String>,
    label: Option<String>,
    method: Spanned<String>,
    path: Spanned<String>,
    events: Spanned<Vec<Spanned<String>>>,
    fields: Spanned<std::collections::BTreeMap<String, Spanned<String>>>,
    #[serde(default)]
    rename: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawError {
    status: Option<Spanned<RawStatus>>,
    code: Option<String>,
    text: Option<Spanned<String>>,
    #[serde(rename = "type")]
    ty: ErrorType,
}

impl UserApi {
    pub fn load(src: &Source, events: &EventTable) -> Result<Self, SourceError> {
        let raw: RawFile = src.parse()?;
        let r = raw.route;
        let method = parse_method(src, &r.method, "route.method")?;
        let id_param = single_param(r.path.get_ref()).ok_or_else(|| {
            src.error(
                r.path.span(),
                "route.path",
                "the legacy path needs exactly one {param} for the customer registration id",
            )
        })?;
        matchit::Router::<()>::new()
            .insert(r.path.get_ref().as_str(), ())
            .map_err(|e| src.error(r.path.span(), "route.path", e.to_string()))?;
        let required_headers = r
            .required_headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                header_name(src, h, &format!("route.required_headers[{i}]"))
                    .map(|n| (n, h.get_ref().clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let mut parts_by_name: HashMap<String, Part> = HashMap::new();
        let mut index_by_name: HashMap<String, (String, String)> = HashMap::new();
        for (i, p) in raw.parts.iter().enumerate() {
            let at = |f: &str| format!("parts[{i}].{f}");
            let name = p.name.get_ref().clone();
            if parts_by_name.contains_key(&name) {
                return Err(src.error(
                    p.name.span(),
                    at("name"),
                    format!("duplicate part {name:?}"),
                ));
            }
            let path = PathTemplate::parse(p.path.get_ref())
                .filter(PathTemplate::needs_id)
                .ok_or_else(|| {
                    src.error(
                        p.path.span(),
                        at("path"),
                        "expected an absolute v4 path with one {id}",
                    )
                })?;
            let part_events = event_list(src, events, &p.events, &at("events"))?;
            let mut fields = Vec::new();
            for (legacy, ty) in p.fields.get_ref() {
                let parsed = FieldType::parse(ty.get_ref()).ok_or_else(|| {
                    src.error(
                        ty.span(),
                        format!("parts[{i}].fields.{legacy}"),
                        "expected one of string, boolean, number, object, array, any (with an optional trailing ?)",
                    )
                })?;
                let key = legacy.to_lowercase();
                if let Some((other, _)) = index_by_name.get(&key) {
                    return Err(src.error(
                        ty.span(),
                        format!("parts[{i}].fields.{legacy}"),
                        format!(
                            "field already belongs to part {other:?} (names are case-insensitive)"
                        ),
                    ));
                }
                index_by_name.insert(key, (name.clone(), legacy.clone()));
                let v4 = p
                    .rename
                    .get(legacy)
                    .cloned()
                    .unwrap_or_else(|| legacy.to_lower_camel_case());
                fields.push(Field {
                    legacy: legacy.clone(),
                    v4,
                    ty: parsed.0,
                    nullable: parsed.1,
                });
            }
            if fields.is_empty() {
                return Err(src.error(
                    p.fields.span(),
                    at("fields"),
                    "a part needs at least one field",
                ));
            }
            parts_by_name.insert(
                name.clone(),
                Part {
                    label: p.label.clone().unwrap_or_else(|| name.clone()),
                    name,
                    method: parse_method(src, &p.method, &at("method"))?,
                    path,
                    events: part_events,
                    fields,
                },
            );
        }

        let mut parts = Vec::new();
        for (i, n) in r.order.get_ref().iter().enumerate() {
            let part = parts_by_name.remove(n.get_ref()).ok_or_else(|| {
                src.error(
                    n.span(),
                    format!("route.order[{i}]"),
                    format!("{:?} is not a part, or is listed twice", n.get_ref()),
                )
            })?;
            parts.push(part);
        }
        if let Some(left) = parts_by_name.keys().next() {
            return Err(src.error(
                r.order.span(),
                "route.order",
                format!("part {left:?} is missing from the order"),
            ));
        }
        let mut index = HashMap::new();
        for (pi, part) in parts.iter().enumerate() {
            for (fi, f) in part.fields.iter().enumerate() {
                index.insert(f.legacy.to_lowercase(), (pi, fi));
            }
        }

        let read = load_read(src, events, &method, &raw.read)?;

        let errors = raw
            .errors
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let matcher = Matcher::compile(
                    src,
                    &format!("errors[{i}]"),
                    RawMatcher {
                        status: &e.status,
                        code: &e.code,
                        text: &e.text,
                        actions: &None,
                    },
                )?;
                Ok(ErrorRule {
                    matcher,
                    ty: e.ty.clone(),
                })
            })
            .collect::<Result<Vec<_>, SourceError>>()?;

        Ok(Self {
            name: r.name,
            method,
            path: r.path.into_inner(),
            id_param,
            required_headers,
            secret_fields: r.secret_fields,
            writes: r.writes,
            shadow_noise: r.shadow_noise.iter().map(|n| n.to_lowercase()).collect(),
            parts,
            read,
            index,
            errors,
        })
    }

    /// The part and field a legacy key names (case-insensitive, as the legacy API bound JSON).
    pub fn field(&self, key: &str) -> Option<(usize, &Field)> {
        self.index
            .get(&key.to_lowercase())
            .map(|&(p, f)| (p, &self.parts[p].fields[f]))
    }

    /// The legacy error `Type` for a failure; the generic one when no rule matches.
    pub fn error_type(&self, failure: &Failure<'_>) -> ErrorType {
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
        *method == self.method || *method == self.read.method || *method == Method::HEAD
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
        if *method == self.read.method || *method == Method::HEAD {
            self.read.writes
        } else {
            self.writes
        }
    }
}

/// A list of legacy event codes, each known to `events.toml`, at least one.
pub(crate) fn event_list(
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

fn load_read(
    src: &Source,
    events: &EventTable,
    update_method: &Method,
    r: &RawRead,
) -> Result<Read, SourceError> {
    let method = parse_method(src, &r.method, "read.method")?;
    if method == *update_method {
        return Err(src.error(
            r.method.span(),
            "read.method",
            "the read needs another method than route.method",
        ));
    }
    let path = PathTemplate::parse(r.path.get_ref())
        .filter(PathTemplate::needs_id)
        .ok_or_else(|| {
            src.error(
                r.path.span(),
                "read.path",
                "expected an absolute v4 path with one {id}",
            )
        })?;
    let empty_sets = Spanned::new(0..0, Vec::new());
    let sets = r.shadow_sets.as_ref().unwrap_or(&empty_sets);
    let malformed = |p: &&String| {
        p.split('.')
            .any(|seg| seg.is_empty() || seg.contains(char::is_whitespace))
    };
    if let Some(bad) = sets.get_ref().iter().find(malformed) {
        return Err(src.error(
            sets.span(),
            "read.shadow_sets",
            format!("{bad:?} is not a dotted path of the legacy answer (e.g. \"Result.Roles\")"),
        ));
    }
    let empty_rename = Spanned::new(0..0, HashMap::new());
    let rename = r.rename.as_ref().unwrap_or(&empty_rename);
    let blank = |(_, legacy): &(&String, &String)| legacy.trim().is_empty();
    if let Some((v4, _)) = rename.get_ref().iter().find(blank) {
        return Err(src.error(
            rename.span(),
            format!("read.rename.{v4}"),
            "the legacy name is empty",
        ));
    }
    Ok(Read {
        name: r.name.clone(),
        method,
        path,
        events: event_list(src, events, &r.events, "read.events")?,
        writes: r.writes,
        query: r
            .query
            .iter()
            .map(|(k, q)| {
                match q.ty.get_ref().as_str() {
                    "string" => Ok(FieldType::String),
                    "boolean" => Ok(FieldType::Boolean),
                    _ => Err(src.error(
                        q.ty.span(),
                        format!("read.query.{k}.type"),
                        "expected string or boolean",
                    )),
                }
                .map(|ty| QueryParam {
                    legacy: k.clone(),
                    v4: q.v4.clone(),
                    ty,
                })
            })
            .collect::<Result<_, _>>()?,
        rename: rename.get_ref().clone(),
        shadow_sets: sets.get_ref().iter().map(|p| p.to_lowercase()).collect(),
    })
}

/// Unknown means "may write": the safe reading for shadow mode.
pub(crate) fn yes() -> bool {
    true
}

pub(crate) fn parse_method(
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

/// The one `{param}` of a matchit path, if it has exactly one.
fn single_param(path: &str) -> Option<String> {
    let mut names = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'));
    let first = names.next()?;
    (names.next().is_none() && !first.is_empty()).then(|| first.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn read_query_passes_declared_parameters_only() {
        let m = UserApi::load(
            &Source::new("user-api.toml", super::super::EMBEDDED_USER_API),
            &events(),
        )
        .unwrap();
        let q = |s| m.read.v4_query(Some(s));
        assert_eq!(
            q("ignoreprovider=true"),
            Ok(Some("ignoreProvider=true".into()))
        );
        assert_eq!(
            q("IGNOREPROVIDER=False&other=x"),
            Ok(Some("ignoreProvider=false".into()))
        );
        assert_eq!(q("other=x"), Ok(None));
        assert_eq!(m.read.v4_query(None), Ok(None));
        assert_eq!(
            q("IgnoreProvider=yes"),
            Err(("IgnoreProvider".into(), FieldType::Boolean))
        );
    }

    #[test]
    fn unknown_read_event_names_its_line() {
        let text = super::super::EMBEDDED_USER_API.replacen(
            "events = [\"GETUSERBYID\"]",
            "events = [\"NOPE\"]",
            1,
        );
        let e = UserApi::load(&Source::new("user-api.toml", text.clone()), &events()).unwrap_err();
        let line = text.lines().position(|l| l.contains("NOPE")).unwrap() + 1;
        assert_eq!((e.line, e.field.as_str()), (line, "read.events[0]"));
    }

    #[test]
    fn malformed_shadow_sets_are_refused() {
        let text = super::super::EMBEDDED_USER_API
            .replace("shadow_sets = []", "shadow_sets = [\"Result..Roles\"]");
        let e = UserApi::load(&Source::new("user-api.toml", text.clone()), &events()).unwrap_err();
        let line = text
            .lines()
            .position(|l| l.contains("Result..Roles"))
            .unwrap()
            + 1;
        assert_eq!((e.line, e.field.as_str()), (line, "read.shadow_sets"));
    }

    #[test]
    fn unknown_event_names_its_line() {
        let text = super::super::EMBEDDED_USER_API.replace("\"CHGEMAIL\"", "\"NOPE\"");
        let e = UserApi::load(&Source::new("user-api.toml", text.clone()), &events()).unwrap_err();
        let line = text.lines().position(|l| l.contains("NOPE")).unwrap() + 1;
        assert_eq!((e.line, e.field.as_str()), (line, "parts[1].events[1]"));
    }
}
