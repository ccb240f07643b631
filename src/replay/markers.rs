//! A capture never holds a password or a token: each is replaced by the marker
//! `"<redacted>"`. Replaying a call with the marker itself would only test v4's refusal of
//! it, so every marker is filled with a generated value v4 accepts: a fresh password that
//! meets the v4 password policy (8–16 characters, upper and lower case, a digit, no white
//! space) in any field whose name says password, a fresh opaque value in other secret
//! fields and query parameters, and the replay's bearer token in `Authorization`
//! ([`super::target`] decides which). Every generated value is handed back, so the reports
//! mask it like any secret.

use serde_json::Value;

/// What the capture writes in place of a secret.
pub const MARKER: &str = "<redacted>";

/// Whether `value` is a marker or ends in one (`Bearer <redacted>`).
pub fn is_marker(value: &str) -> bool {
    value.trim() == MARKER || value.trim_end().ends_with(&format!(" {MARKER}"))
}

/// A password v4's policy accepts, different on every call: `Rp`, 12 random hex digits, `7`.
pub fn password() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("Rp{}7", &random[..12])
}

/// A value for a secret that is not a password (a confirmation id): random, recognisable.
fn opaque() -> String {
    format!("replay-{}", uuid::Uuid::new_v4().simple())
}

fn value_for(key: &str) -> String {
    let k = key.to_ascii_lowercase();
    if k.contains("passw") {
        password()
    } else {
        opaque()
    }
}

/// Fills every marker in a JSON body, at any depth; the generated values are pushed to
/// `generated`.
pub fn fill_json(v: &mut Value, generated: &mut Vec<String>) {
    fill_under(v, "", generated);
}

fn fill_under(v: &mut Value, key: &str, generated: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                fill_under(v, k, generated);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| fill_under(v, key, generated)),
        Value::String(s) if s == MARKER => {
            let value = value_for(key);
            generated.push(value.clone());
            *s = value;
        }
        _ => {}
    }
}

/// The query with every marker value filled, re-encoded; untouched (as sent) when it holds
/// none.
pub fn fill_query(query: &str, generated: &mut Vec<String>) -> String {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    if !pairs.iter().any(|(_, v)| v == MARKER) {
        return query.to_string();
    }
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if v == MARKER {
            let value = value_for(&k);
            generated.push(value.clone());
            out.append_pair(&k, &value);
        } else {
            out.append_pair(&k, &v);
        }
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The v4 policy, written out again here as the oracle.
    fn meets_policy(p: &str) -> bool {
        (8..=16).contains(&p.chars().count())
            && p.chars().any(|c| c.is_ascii_uppercase())
            && p.chars().any(|c| c.is_ascii_lowercase())
            && p.chars().any(|c| c.is_ascii_digit())
            && !p.chars().any(char::is_whitespace)
    }

    #[test]
    fn passwords_meet_the_policy_and_differ() {
        let (a, b) = (password(), password());
        assert!(meets_policy(&a) && meets_policy(&b), "{a} {b}");
        assert_ne!(a, b);
    }

    #[test]
    fn markers_are_filled_by_their_field_name() {
        let mut v = serde_json::json!({"Password": MARKER, "Email": "a@b.test",
            "n": [{"oldpasswort": MARKER}], "id": MARKER});
        let mut generated = Vec::new();
        fill_json(&mut v, &mut generated);
        assert_eq!(generated.len(), 3);
        assert!(meets_policy(v["Password"].as_str().unwrap()));
        assert!(meets_policy(v["n"][0]["oldpasswort"].as_str().unwrap()));
        assert!(v["id"].as_str().unwrap().starts_with("replay-"));
        assert_eq!(v["Email"], "a@b.test");
        assert!(!v.to_string().contains(MARKER));
    }

    #[test]
    fn query_markers_are_filled_and_other_queries_kept_as_sent() {
        let mut generated = Vec::new();
        assert_eq!(fill_query("a=%41&b", &mut generated), "a=%41&b");
        let q = fill_query("action=activate&id=%3Credacted%3E", &mut generated);
        assert!(q.starts_with("action=activate&id=replay-"), "{q}");
        assert_eq!(generated.len(), 1);
        assert!(is_marker("Bearer <redacted>") && is_marker(MARKER));
        assert!(!is_marker("Bearer abc"));
    }
}
