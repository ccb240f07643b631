//! Key case conversion of parsed trees, recursive: legacy PascalCase ↔ v4 lowerCamelCase.
//! The request and read paths convert bytes as they copy them ([`super::rekey`]); trees are
//! converted here for the reference readings those paths fall back to, and for callers that
//! hold a `Value`.
//!
//! Two keys of one object that become the same key (`Password` and `password`) are refused
//! rather than merged: picking one would silently drop the other's value.

use serde_json::{Map, Value};

use super::key::Case;

/// Deeper than this is refused; serde_json's parser already stops at 128, this also covers
/// values built in code.
pub const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("keys {first:?} and {second:?} at {path} both become {converted:?}")]
    Collision {
        path: String,
        first: String,
        second: String,
        converted: String,
    },
    /// One key twice in one object: only bytes can say so, a parsed tree has kept one.
    #[error("key {key:?} appears twice at {path}")]
    Repeated { path: String, key: String },
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

impl CaseError {
    /// The error as seen one level up: `segment` (`.Key` or `[3]`) goes in front of its path.
    pub(crate) fn within(mut self, segment: &str) -> Self {
        if let Self::Collision { path, .. } | Self::Repeated { path, .. } = &mut self {
            // Paths are built from the root `$` outwards, only when something is refused.
            let rest = path.strip_prefix('$').unwrap_or(path);
            *path = format!("${segment}{rest}");
        }
        self
    }
}

/// Converts every object key to lowerCamelCase, at every depth.
pub fn to_camel(v: Value) -> Result<Value, CaseError> {
    convert(v, Case::Camel, 0)
}

/// Converts every object key to PascalCase, at every depth.
pub fn to_pascal(v: Value) -> Result<Value, CaseError> {
    convert(v, Case::Pascal, 0)
}

fn convert(v: Value, case: Case, depth: usize) -> Result<Value, CaseError> {
    if depth > MAX_DEPTH {
        return Err(CaseError::TooDeep);
    }
    match v {
        Value::Object(map) => {
            let mut out = Map::new();
            let mut originals: Vec<(String, String)> = Vec::new();
            for (k, v) in map {
                let key = case.convert(&k);
                let v = convert(v, case, depth + 1).map_err(|e| e.within(&format!(".{k}")))?;
                if out.contains_key(&key) {
                    let first = originals
                        .iter()
                        .find(|(c, _)| *c == key)
                        .map(|(_, o)| o.clone())
                        .unwrap_or_default();
                    return Err(CaseError::Collision {
                        path: "$".to_string(),
                        first,
                        second: k,
                        converted: key,
                    });
                }
                originals.push((key.clone(), k));
                out.insert(key, v);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| convert(v, case, depth + 1).map_err(|e| e.within(&format!("[{i}]"))))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_keys_convert_both_ways() {
        let legacy = json!({"FirstName": "A", "Metadata": {"FavouriteColour": "red", "Tags": [{"TagName": "x"}]}});
        let v4 = to_camel(legacy.clone()).unwrap();
        assert_eq!(
            v4,
            json!({"firstName": "A", "metadata": {"favouriteColour": "red", "tags": [{"tagName": "x"}]}})
        );
        assert_eq!(to_pascal(v4).unwrap(), legacy);
    }

    #[test]
    fn colliding_keys_are_refused() {
        let e = to_camel(json!({"Metadata": {"Foo": 1, "foo": 2}})).unwrap_err();
        match e {
            CaseError::Collision {
                path, converted, ..
            } => {
                assert_eq!(path, "$.Metadata");
                assert_eq!(converted, "foo");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn depth_is_bounded() {
        let mut v = json!(1);
        for _ in 0..(MAX_DEPTH + 2) {
            v = json!([v]);
        }
        assert_eq!(to_camel(v), Err(CaseError::TooDeep));
    }
}
