//! The update's body, checked against the mapping and split into v4 calls (parts).
//!
//! The body is read once, from its bytes straight into each part's v4 body: keys recased as
//! they are copied ([`rekey`]), no tree and no map built. Every check of the reference
//! reading ([`plan_tree`], on a parsed object) is made on the way. When the copy refuses the
//! body, the reference reading decides the answer, so every refusal, and which of several
//! comes first, is the reference's; the copy adds one refusal of its own, a key given twice,
//! which a parsed object cannot see (it keeps the last value).

use std::ops::Range;

use bytes::Bytes;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::GatewayError;
use crate::mapping::user_api::{Field, FieldType};
use crate::mapping::UserApi;
use crate::request;
use crate::translate::case::{self, CaseError};
use crate::translate::key::{push_json_str, Case};
use crate::translate::rekey::{Key, KeySeed, Kind, Rekey, Stop};

/// One v4 call to make: which part, and its camelCase JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub part: usize,
    pub body: Bytes,
    /// Where the secret fields' string values are in `body`, for masking v4's echo of them.
    secrets: Vec<Secret>,
}

#[derive(Debug, Clone, PartialEq)]
enum Secret {
    /// The JSON string's content: no escapes, so these are the value's own bytes.
    At(Range<usize>),
    Decoded(String),
}

impl Planned {
    /// The values of this call's secret fields (the mapping's `secret_fields`).
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.secrets.iter().map(|s| match s {
            Secret::At(r) => std::str::from_utf8(&self.body[r.clone()]).unwrap_or_default(),
            Secret::Decoded(s) => s.as_str(),
        })
    }
}

/// Checks a legacy body (its bytes, as received) against the mapping and splits it into v4
/// calls, in the mapping's order.
pub fn plan(ua: &UserApi, body: &[u8]) -> Result<Vec<Planned>, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::EmptyBody);
    }
    let refused = match copy(ua, body) {
        Ok(planned) => return Ok(planned),
        Err(refused) => refused,
    };
    let reference = plan_tree(ua, request::json_object(body)?)?;
    match refused {
        Some(e) => Err(e),
        // Nothing the reference accepts is refused by the copy but a repeated key; should
        // they ever disagree otherwise, the reference's reading is sent.
        None => Ok(reference
            .into_iter()
            .map(|(part, map)| planned_of_tree(ua, part, map))
            .collect()),
    }
}

/// One v4 call of the reference reading: its part and its camelCase body as a tree.
pub type PlannedTree = (usize, Map<String, Value>);

/// The reference reading: a parsed object checked field by field, each value's keys recased
/// as a tree. Refusals come in this order: an empty body, unknown fields (all of them), then
/// the first field (in key order) given twice, of the wrong type, or holding keys that
/// collide once recased.
pub fn plan_tree(ua: &UserApi, body: Map<String, Value>) -> Result<Vec<PlannedTree>, GatewayError> {
    if body.is_empty() {
        return Err(GatewayError::EmptyBody);
    }
    let unknown: Vec<String> = body
        .keys()
        .filter(|k| ua.field(k).is_none())
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(GatewayError::UnknownFields(unknown));
    }
    let mut planned: Vec<PlannedTree> = Vec::new();
    let mut seen: Vec<(String, &str)> = Vec::new();
    for (key, value) in body {
        let Some((part, field)) = ua.field(&key) else {
            continue;
        };
        if let Some((other, _)) = seen.iter().find(|(_, legacy)| *legacy == field.legacy) {
            return Err(GatewayError::DuplicateKeys(format!(
                "{other} and {key} name the same field {}",
                field.legacy
            )));
        }
        let null_ok = value.is_null() && field.nullable;
        if !null_ok && !field.ty.accepts(&value) {
            return Err(wrong_type(field));
        }
        seen.push((key, field.legacy.as_str()));
        let v4_value = case::to_camel(value).map_err(|e| in_field(field, e))?;
        match planned.iter_mut().find(|(p, _)| *p == part) {
            Some((_, m)) => {
                m.insert(field.v4.clone(), v4_value);
            }
            None => planned.push((part, Map::from_iter([(field.v4.clone(), v4_value)]))),
        }
    }
    planned.sort_by_key(|(p, _)| *p);
    Ok(planned)
}

fn wrong_type(field: &Field) -> GatewayError {
    GatewayError::WrongType {
        field: field.legacy.clone(),
        expected: if field.nullable {
            format!("{} or null", field.ty.name())
        } else {
            field.ty.name().to_string()
        },
    }
}

/// A refusal inside a field's value, named by the field (`Metadata.Tags[0]`).
fn in_field(field: &Field, e: CaseError) -> GatewayError {
    let at = |path: &str| path.replacen('$', &field.legacy, 1);
    match e {
        CaseError::Collision {
            path,
            first,
            second,
            ..
        } => GatewayError::DuplicateKeys(format!(
            "{first} and {second} in {} name the same field",
            at(&path)
        )),
        CaseError::Repeated { path, key } => {
            GatewayError::DuplicateKeys(format!("{key} appears twice in {}", at(&path)))
        }
        CaseError::TooDeep => GatewayError::WrongType {
            field: field.legacy.clone(),
            expected: "nested less deeply".into(),
        },
    }
}

fn is_secret(ua: &UserApi, field: &Field) -> bool {
    ua.secret_fields
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&field.legacy))
}

fn planned_of_tree(ua: &UserApi, part: usize, map: Map<String, Value>) -> Planned {
    let body = serde_json::to_vec(&map).unwrap_or_default();
    let secrets = ua.parts[part]
        .fields
        .iter()
        .filter(|f| is_secret(ua, f))
        .filter_map(|f| map.get(&f.v4).and_then(Value::as_str))
        .map(|s| Secret::Decoded(s.to_string()))
        .collect();
    Planned {
        part,
        body: body.into(),
        secrets,
    }
}

fn accepts(field: &Field, kind: Kind) -> bool {
    if kind == Kind::Null && field.nullable {
        return true;
    }
    matches!(
        (field.ty, kind),
        (FieldType::Any, _)
            | (FieldType::String, Kind::String)
            | (FieldType::Boolean, Kind::Bool)
            | (FieldType::Number, Kind::Number)
            | (FieldType::Object, Kind::Object)
            | (FieldType::Array, Kind::Array)
    )
}

/// The one-pass reading. `Err(Some(_))`: a refusal the reference cannot make (a repeated
/// key); `Err(None)`: the reference decides.
fn copy(ua: &UserApi, body: &[u8]) -> Result<Vec<Planned>, Option<GatewayError>> {
    let mut top = Top {
        ua,
        body_len: body.len(),
        rk: Rekey::new(Case::Camel),
        parts: (0..ua.parts.len()).map(|_| None).collect(),
        seen: 0,
        refused: None,
    };
    // UTF-8 checked once for the whole body rather than string by string; a body that is
    // not UTF-8 is the reference's to refuse, with the parser's line and column.
    let text = std::str::from_utf8(body).map_err(|_| None)?;
    let mut de = serde_json::Deserializer::from_str(text);
    let read = (&mut de)
        .deserialize_map(TopVisitor(&mut top))
        .and_then(|()| de.end());
    if read.is_err() {
        return Err(top.refused);
    }
    let planned: Vec<Planned> = top
        .parts
        .into_iter()
        .enumerate()
        .filter_map(|(part, p)| {
            let (mut body, secrets) = p?;
            body.push(b'}');
            Some(Planned {
                part,
                body: body.into(),
                secrets,
            })
        })
        .collect();
    if planned.is_empty() {
        return Err(None);
    }
    Ok(planned)
}

/// The one-pass reading's state: each part's v4 body so far, the fields seen.
struct Top<'u, 'de> {
    ua: &'u UserApi,
    body_len: usize,
    rk: Rekey<'de>,
    parts: Vec<Option<(Vec<u8>, Vec<Secret>)>>,
    /// One bit per field (part × field of part), for fields given twice.
    seen: u128,
    refused: Option<GatewayError>,
}

struct TopVisitor<'t, 'u, 'de>(&'t mut Top<'u, 'de>);

impl<'de> Visitor<'de> for TopVisitor<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let top = self.0;
        let step = || de::Error::custom("step aside");
        while let Some(Key(key)) = map.next_key_seed(KeySeed)? {
            let Some((part, field)) = top.ua.field(&key) else {
                return Err(step());
            };
            let fields = &top.ua.parts[part].fields;
            let bit = fields
                .iter()
                .position(|f| std::ptr::eq(f, field))
                .map(|i| part * 16 + i)
                .filter(|&b| b < 128 && fields.len() <= 16)
                .ok_or_else(step)?;
            if top.seen & (1 << bit) != 0 {
                // Two spellings of one field are the reference's to name; one spelling twice
                // only the copy sees.
                if fields[bit % 16].legacy.eq_ignore_ascii_case(&key) && top.refused.is_none() {
                    top.refused = Some(GatewayError::DuplicateKeys(format!("{key} appears twice")));
                }
                return Err(step());
            }
            top.seen |= 1 << bit;
            let (out, secrets) = top.parts[part].get_or_insert_with(|| {
                let mut out = Vec::with_capacity(top.body_len + 16);
                out.push(b'{');
                (out, Vec::new())
            });
            if out.len() > 1 {
                out.push(b',');
            }
            push_json_str(out, &field.v4);
            out.push(b':');
            let start = out.len();
            let accept = |kind| accepts(field, kind);
            if let Err(e) = map.next_value_seed(top.rk.seed(out, &accept)) {
                if let Some(Stop::Case(c @ CaseError::Repeated { .. })) = top.rk.take_stop() {
                    top.refused = Some(in_field(field, c));
                }
                return Err(e);
            }
            if is_secret(top.ua, field) && out[start] == b'"' {
                let inner = start + 1..out.len() - 1;
                secrets.push(if out[inner.clone()].contains(&b'\\') {
                    Secret::Decoded(serde_json::from_slice(&out[start..]).unwrap_or_default())
                } else {
                    Secret::At(inner)
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Mappings;
    use serde_json::json;

    fn plan_json(ua: &UserApi, v: Value) -> Result<Vec<(usize, Value)>, GatewayError> {
        let p = plan(ua, &serde_json::to_vec(&v).unwrap())?;
        Ok(p.into_iter()
            .map(|p| (p.part, serde_json::from_slice(&p.body).unwrap()))
            .collect())
    }

    #[test]
    fn mixed_body_splits_in_mapping_order() {
        let m = Mappings::embedded().unwrap();
        let p = plan_json(
            &m.user_api,
            json!({"Password": "Abcdefg1", "FirstName": "A", "Metadata": {"NewsLetter": true}}),
        )
        .unwrap();
        let names: Vec<_> = p
            .iter()
            .map(|x| m.user_api.parts[x.0].name.as_str())
            .collect();
        assert_eq!(names, ["profile", "password"]);
        assert_eq!(
            p[0].1,
            json!({"firstName": "A", "metadata": {"newsLetter": true}})
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let m = Mappings::embedded().unwrap();
        let ua = &m.user_api;
        let e = plan_json(ua, json!({"Password": "x", "Nickname": "y"})).unwrap_err();
        assert_eq!(e.to_string(), "Unknown fields: Nickname.");
        let e = plan_json(ua, json!({"Verified": "yes"})).unwrap_err();
        assert_eq!(e.to_string(), "Field Verified must be a boolean.");
        let e = plan_json(ua, json!({"Password": "x", "password": "y"})).unwrap_err();
        assert!(matches!(e, GatewayError::DuplicateKeys(_)), "{e}");
        let e = plan_json(ua, json!({"Metadata": {"A": 1, "a": 2}})).unwrap_err();
        assert!(e.to_string().contains("Metadata"), "{e}");
    }

    #[test]
    fn a_key_given_twice_is_refused_not_overwritten() {
        let m = Mappings::embedded().unwrap();
        let ua = &m.user_api;
        let e = plan(ua, br#"{"Password":"a","Password":"b"}"#).unwrap_err();
        assert_eq!(e.to_string(), "Duplicate fields: Password appears twice.");
        let e = plan(ua, br#"{"Metadata":{"Tags":[{"A":1,"A":2}]}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Duplicate fields: A appears twice in Metadata.Tags[0]."
        );
        // Other refusals still come first, as the reference orders them.
        let e = plan(ua, br#"{"Password":"a","Password":"b","Nope":1}"#).unwrap_err();
        assert_eq!(e.to_string(), "Unknown fields: Nope.");
        let e = plan(ua, br#"{"Password":"a","Password":"b"} x"#).unwrap_err();
        assert!(matches!(e, GatewayError::MalformedJson { .. }), "{e}");
    }

    #[test]
    fn secrets_are_found_escaped_or_not() {
        let m = Mappings::embedded().unwrap();
        let p = plan(
            &m.user_api,
            br#"{"Password":"Abc\"d\u00e9","FirstName":"A"}"#,
        )
        .unwrap();
        let secrets: Vec<&str> = p.iter().flat_map(Planned::secrets).collect();
        assert_eq!(secrets, ["Abc\"dé"]);
        let p = plan(&m.user_api, br#"{"password":"plain"}"#).unwrap();
        assert_eq!(p[0].secrets().collect::<Vec<_>>(), ["plain"]);
    }
}
