//! The read route's part of the mapping: `GET /User/{id}`, its query parameters and the
//! renames of its answer, checked from `[read]`.

use std::collections::HashMap;

use http::Method;
use toml::Spanned;

use super::super::checks::{event_list, parse_method};
use super::super::EventTable;
use super::raw::RawRead;
use super::FieldType;
use crate::source::{Source, SourceError};
use crate::translate::path::PathTemplate;

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
    /// model binding refused it. A parameter sent twice is forwarded once, with its first
    /// value, as ASP.NET bound a simple type: v4 never sees two values to choose between.
    pub fn v4_query(&self, legacy: Option<&str>) -> Result<Option<String>, (String, FieldType)> {
        let Some(legacy) = legacy else {
            return Ok(None);
        };
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        let mut any = false;
        let mut sent: Vec<&str> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(legacy.as_bytes()) {
            let Some(p) = self
                .query
                .iter()
                .find(|p| p.legacy.eq_ignore_ascii_case(&k))
            else {
                continue;
            };
            if sent.contains(&p.v4.as_str()) {
                continue;
            }
            sent.push(&p.v4);
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

/// `[read]`, checked. Its method must differ from the update's: both share one path, so the
/// method alone chooses the route.
pub(super) fn load_read(
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

#[cfg(test)]
mod tests {
    use super::super::super::{EMBEDDED_EVENTS, EMBEDDED_USER_API};
    use super::super::UserApi;
    use super::*;

    fn events() -> EventTable {
        EventTable::load(&Source::new("events.toml", EMBEDDED_EVENTS)).unwrap()
    }

    #[test]
    fn read_query_passes_declared_parameters_only() {
        let m = UserApi::load(&Source::new("user-api.toml", EMBEDDED_USER_API), &events()).unwrap();
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
        assert_eq!(
            q("IgnoreProvider=true&ignoreprovider=false"),
            Ok(Some("ignoreProvider=true".into())),
            "sent twice, forwarded once with the first value"
        );
        assert_eq!(m.read.v4_query(None), Ok(None));
        assert_eq!(
            q("IgnoreProvider=yes"),
            Err(("IgnoreProvider".into(), FieldType::Boolean))
        );
    }

    #[test]
    fn unknown_read_event_names_its_line() {
        let text =
            EMBEDDED_USER_API.replacen("events = [\"GETUSERBYID\"]", "events = [\"NOPE\"]", 1);
        let e = UserApi::load(&Source::new("user-api.toml", text.clone()), &events()).unwrap_err();
        let line = text.lines().position(|l| l.contains("NOPE")).unwrap() + 1;
        assert_eq!((e.line, e.field.as_str()), (line, "read.events[0]"));
    }

    #[test]
    fn malformed_shadow_sets_are_refused() {
        let text =
            EMBEDDED_USER_API.replace("shadow_sets = []", "shadow_sets = [\"Result..Roles\"]");
        let e = UserApi::load(&Source::new("user-api.toml", text.clone()), &events()).unwrap_err();
        let line = text
            .lines()
            .position(|l| l.contains("Result..Roles"))
            .unwrap()
            + 1;
        assert_eq!((e.line, e.field.as_str()), (line, "read.shadow_sets"));
    }
}
