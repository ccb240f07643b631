//! Checks `user-api.toml` into the model the routes run on: the route, its parts in order,
//! the field index, the read and the error table. Every refusal names file, line and field.

use std::collections::HashMap;

use toml::Spanned;

use super::super::checks::{event_list, parse_method};
use super::super::rules::{Matcher, RawMatcher};
use super::super::v4::header_name;
use super::super::EventTable;
use super::raw::RawFile;
use super::read::load_read;
use super::{ErrorRule, Field, FieldType, Part, UserApi};
use crate::source::{Source, SourceError};
use crate::translate::key::Case;
use crate::translate::path::PathTemplate;

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
        // The request path tracks them in one 64-bit set.
        if required_headers.len() > 64 {
            return Err(src.error(
                r.path.span(),
                "route.required_headers",
                "at most 64 required headers",
            ));
        }

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
                    .unwrap_or_else(|| Case::Camel.convert(legacy));
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

        // A misspelt secret field would mask nothing while the real field's values reach
        // logs and diffs: each must name a body field of some part.
        for (i, f) in r.secret_fields.iter().enumerate() {
            if !index.contains_key(&f.get_ref().to_lowercase()) {
                return Err(src.error(
                    f.span(),
                    format!("route.secret_fields[{i}]"),
                    format!(
                        "{:?} is no field of any part, so it would mask nothing",
                        f.get_ref()
                    ),
                ));
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
            secret_fields: r
                .secret_fields
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            writes: r.writes,
            shadow_noise: r.shadow_noise.iter().map(|n| n.to_lowercase()).collect(),
            parts,
            read,
            index,
            errors,
        })
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
