//! Comparing the legacy answer with the translated one: both normalised (noise fields and the
//! fields the gateway itself adds dropped, timestamps read as instants, the mapping's
//! unordered arrays sorted), then compared structurally, keys matched without regard to
//! case, into a list of JSON paths with both values. A path is spelled as the legacy answer
//! spells it (`$.Result.DisplayName`): that is the name the operator knows. Pure functions;
//! masking happens before anything is written.

use serde_json::{json, Map, Value};

use super::LegacyAnswer;
use crate::legacy::Family;
use crate::runtime::Runtime;

/// At most this many differences are kept per call: enough to see what differs, bounded.
pub const MAX_DIFFERENCES: usize = 50;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Difference {
    pub path: String,
    pub legacy: Value,
    pub v4: Value,
}

/// Marks a side that has no value at a path.
pub fn absent() -> Value {
    Value::String("<absent>".into())
}

/// What normalising drops or reorders, from the route's mapping.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules<'a> {
    /// Keys dropped at any depth (lower-cased).
    pub noise: &'a [String],
    /// Dotted paths from the root, lower-cased (`result.roles`), of arrays compared as sets.
    pub sets: &'a [String],
    /// Dotted paths from the root, lower-cased, of fields the gateway writes itself.
    pub gateway_made: &'a [&'a str],
}

/// Fields of a User API answer the gateway writes itself (which parts of a mixed body it
/// carried out): the legacy backend has no such fields, so they are no difference.
const USER_API_GATEWAY_MADE: &[&str] = &["result.applied", "result.notattempted"];

impl<'a> Rules<'a> {
    /// The API's rules from the mappings: its noise fields, and (User API reads) the arrays
    /// whose order carries no meaning.
    pub fn of(rt: &'a Runtime, family: Family) -> Self {
        match family {
            Family::UserApi => Rules {
                noise: &rt.mappings.user_api.shadow_noise,
                sets: &rt.mappings.user_api.read.shadow_sets,
                gateway_made: USER_API_GATEWAY_MADE,
            },
            Family::Registry => Rules {
                noise: &rt.mappings.registry.shadow_noise,
                sets: &[],
                gateway_made: &[],
            },
        }
    }
}

/// Everything that differs between the legacy answer and the copy's: a different HTTP status
/// first (as the path `status`), then the bodies, normalised by the API's rules.
pub fn answers(
    rt: &Runtime,
    family: Family,
    legacy: &LegacyAnswer,
    v4_status: u16,
    v4_body: &[u8],
) -> Vec<Difference> {
    let rules = Rules::of(rt, family);
    let legacy_value = normalise(&body_value(&legacy.body), rules);
    let v4 = normalise(&body_value(v4_body), rules);
    let mut differences = diff(&legacy_value, &v4);
    if legacy.status != v4_status {
        differences.insert(
            0,
            Difference {
                path: "status".into(),
                legacy: json!(legacy.status),
                v4: json!(v4_status),
            },
        );
    }
    differences
}

/// Drops noise keys (at any depth) and gateway-made fields, writes every RFC 3339 timestamp as
/// the same instant in UTC (`+02:00` and `Z` forms of one moment compare equal; a timestamp
/// without an offset is read as UTC), and sorts the arrays the mapping calls sets.
pub fn normalise(v: &Value, rules: Rules<'_>) -> Value {
    walk_normalise(v, rules, "")
}

fn walk_normalise(v: &Value, rules: Rules<'_>, path: &str) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = k.to_lowercase();
                if rules.noise.contains(&key) {
                    continue;
                }
                let child = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                if rules.gateway_made.contains(&child.as_str()) {
                    continue;
                }
                out.insert(k.clone(), walk_normalise(v, rules, &child));
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let mut items: Vec<Value> = items
                .iter()
                .map(|v| walk_normalise(v, rules, path))
                .collect();
            if rules.sets.iter().any(|s| s == path) {
                // Keys of either case sort alike.
                items.sort_by_cached_key(|v| lower_keys(v).to_string());
            }
            Value::Array(items)
        }
        Value::String(s) => instant(s).map_or_else(|| v.clone(), Value::String),
        other => other.clone(),
    }
}

fn lower_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.to_lowercase(), lower_keys(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(lower_keys).collect()),
        other => other.clone(),
    }
}

/// An RFC 3339 timestamp as UTC in one canonical spelling; `None` for any other string.
fn instant(s: &str) -> Option<String> {
    use time::format_description::well_known::Rfc3339;
    // Cheap filter first: most strings are not timestamps.
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let t = time::OffsetDateTime::parse(s, &Rfc3339)
        .or_else(|_| time::OffsetDateTime::parse(&format!("{s}Z"), &Rfc3339))
        .ok()?;
    t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).ok()
}

/// The paths where the two values differ, `$`-rooted, at most [`MAX_DIFFERENCES`].
pub fn diff(legacy: &Value, v4: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    walk("$", legacy, v4, &mut out);
    out
}

fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<Difference>) {
    if out.len() >= MAX_DIFFERENCES {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            // Keys match without regard to case; the path takes the legacy spelling.
            let by_case =
                |m: &'_ Map<String, Value>| -> std::collections::BTreeMap<String, String> {
                    m.keys().map(|k| (k.to_lowercase(), k.clone())).collect()
                };
            let (lx, ly) = (by_case(x), by_case(y));
            let mut keys: Vec<&String> = lx.keys().chain(ly.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (kx, ky) = (lx.get(k), ly.get(k));
                let spelled = kx.or(ky).map_or(k.as_str(), String::as_str);
                let p = format!("{path}.{spelled}");
                match (kx.and_then(|k| x.get(k)), ky.and_then(|k| y.get(k))) {
                    (Some(l), Some(r)) => walk(&p, l, r, out),
                    (Some(l), None) => push(out, p, l.clone(), absent()),
                    (None, Some(r)) => push(out, p, absent(), r.clone()),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let p = format!("{path}[{i}]");
                match (x.get(i), y.get(i)) {
                    (Some(l), Some(r)) => walk(&p, l, r, out),
                    (Some(l), None) => push(out, p, l.clone(), absent()),
                    (None, Some(r)) => push(out, p, absent(), r.clone()),
                    (None, None) => {}
                }
            }
        }
        (l, r) if l == r => {}
        (l, r) => push(out, path.to_string(), l.clone(), r.clone()),
    }
}

fn push(out: &mut Vec<Difference>, path: String, legacy: Value, v4: Value) {
    if out.len() < MAX_DIFFERENCES {
        out.push(Difference { path, legacy, v4 });
    }
}

/// Replaces the values of secret keys (any depth, case-insensitive) with `***`, and the
/// known secret values wherever they stand in a string.
pub fn mask(v: &mut Value, secret_keys: &[String], secret_values: &[&str]) {
    match v {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if secret_keys.iter().any(|s| s.eq_ignore_ascii_case(k)) {
                    *v = Value::String("***".into());
                } else {
                    mask(v, secret_keys, secret_values);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| mask(v, secret_keys, secret_values)),
        Value::String(s) => *s = crate::redact::scrub(s, secret_values),
        _ => {}
    }
}

/// A body as a JSON value; a body that is not JSON is described, never copied.
pub fn body_value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(format!("<non-JSON body, {} bytes>", bytes.len())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn case_and_noise_do_not_count() {
        let noise = vec!["requestid".to_string()];
        let rules = Rules {
            noise: &noise,
            ..Rules::default()
        };
        let a = normalise(
            &json!({"Code": 0, "RequestId": "a", "Result": {"Updated": true}}),
            rules,
        );
        let b = normalise(
            &json!({"code": 0, "requestId": "b", "result": {"updated": true}}),
            rules,
        );
        assert!(diff(&a, &b).is_empty());
    }

    #[test]
    fn timestamps_compare_as_instants() {
        let n = |v| normalise(&v, Rules::default());
        let a = n(json!({"At": "2026-11-01T10:30:00+02:00", "B": "2026-11-01T08:30:00"}));
        let b = n(json!({"at": "2026-11-01T08:30:00.000Z", "b": "2026-11-01T08:30:00Z"}));
        assert!(diff(&a, &b).is_empty(), "{a} vs {b}");
        let c = n(json!({"at": "2026-11-01T08:30:01Z", "b": "2026-11-01T08:30:00Z"}));
        assert_eq!(diff(&a, &c)[0].path, "$.At");
        // Strings that only look alike stay strings.
        assert_eq!(n(json!("2026-11-01 tea")), json!("2026-11-01 tea"));
    }

    #[test]
    fn declared_sets_ignore_order_and_others_do_not() {
        let sets = vec!["result.roles".to_string()];
        let rules = Rules {
            sets: &sets,
            ..Rules::default()
        };
        let a = normalise(
            &json!({"Result": {"Roles": ["b", "a", {"X": 1}], "List": [1, 2]}}),
            rules,
        );
        let b = normalise(
            &json!({"result": {"roles": [{"x": 1}, "a", "b"], "list": [2, 1]}}),
            rules,
        );
        let d = diff(&a, &b);
        let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
        // Named as the legacy answer spells them.
        assert_eq!(paths, ["$.Result.List[0]", "$.Result.List[1]"]);
    }

    #[test]
    fn gateway_made_fields_are_no_difference() {
        let rules = Rules {
            gateway_made: USER_API_GATEWAY_MADE,
            ..Rules::default()
        };
        let legacy = normalise(&json!({"Result": {"Updated": false}}), rules);
        let v4 = normalise(
            &json!({"Result": {"Updated": false, "Applied": ["email"], "NotAttempted": ["password"]}}),
            rules,
        );
        assert!(diff(&legacy, &v4).is_empty());
    }

    #[test]
    fn real_differences_have_paths_and_both_values() {
        let d = diff(
            &json!({"errors": [], "code": 0}),
            &json!({"errors": [{"code": "E"}], "code": 400}),
        );
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].path, "$.code");
        assert_eq!(
            (d[0].legacy.clone(), d[0].v4.clone()),
            (json!(0), json!(400))
        );
        assert_eq!(d[1].path, "$.errors[0]");
        assert_eq!(d[1].legacy, absent());
    }

    #[test]
    fn masking_covers_keys_and_values() {
        let mut v = json!({"Password": "Abc", "msg": "the password Hunter22 is weak", "n": [{"password": 1}]});
        mask(&mut v, &["password".into()], &["Hunter22"]);
        assert_eq!(
            v,
            json!({"Password": "***", "msg": "the password *** is weak", "n": [{"password": "***"}]})
        );
    }
}
