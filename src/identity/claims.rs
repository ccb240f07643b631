//! The registered claims of a verified token, checked as RFC 7519 types them rather than as
//! the JWT library parses them: it treats a claim it cannot parse as absent, so `nbf: "x"`
//! skipped the time check and a configured audience let a token without `aud` through.
//! Here a configured `aud` or `iss` is required, and any registered claim of the wrong type
//! refuses the token.

use serde_json::{Map, Value};

/// What a verifying gateway demands of the claims.
pub struct Expected<'a> {
    pub audience: &'a [String],
    pub issuer: Option<&'a str>,
    pub leeway: u64,
    /// Seconds since the epoch.
    pub now: u64,
}

/// Whether the claims pass; `false` refuses the token.
pub fn acceptable(claims: &Map<String, Value>, e: &Expected<'_>) -> bool {
    times_hold(claims, e) && audience_holds(claims, e) && issuer_holds(claims, e)
}

/// `exp` and `nbf`, when present, are numbers, and `now` is within them (with the leeway).
fn times_hold(claims: &Map<String, Value>, e: &Expected<'_>) -> bool {
    let now = e.now as f64;
    let leeway = e.leeway as f64;
    let number = |name: &str| match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(()),
        Some(_) => Err(()),
    };
    match (number("exp"), number("nbf")) {
        (Ok(exp), Ok(nbf)) => {
            exp.is_none_or(|exp| now <= exp + leeway) && nbf.is_none_or(|nbf| nbf <= now + leeway)
        }
        _ => false,
    }
}

/// `aud` is a string or an array of strings; with an audience configured it must be there
/// and name one of it.
fn audience_holds(claims: &Map<String, Value>, e: &Expected<'_>) -> bool {
    let named: Vec<&str> = match claims.get("aud") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => {
            let strings: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            if strings.len() != items.len() {
                return false;
            }
            strings
        }
        Some(_) => return false,
    };
    e.audience.is_empty() || named.iter().any(|a| e.audience.iter().any(|x| x == a))
}

/// `iss` is a string; with an issuer configured it must be there and be it.
fn issuer_holds(claims: &Map<String, Value>, e: &Expected<'_>) -> bool {
    match (claims.get("iss"), e.issuer) {
        (None, None) => true,
        (Some(Value::String(iss)), want) => want.is_none_or(|w| w == iss),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(claims: Value, audience: &[&str], issuer: Option<&str>) -> bool {
        let audience: Vec<String> = audience.iter().map(|s| s.to_string()).collect();
        acceptable(
            claims.as_object().unwrap(),
            &Expected {
                audience: &audience,
                issuer,
                leeway: 60,
                now: 1_000_000,
            },
        )
    }

    #[test]
    fn configured_claims_are_required_and_typed() {
        let aud = &["web"];
        let iss = Some("https://idp");
        let good = json!({"aud": "web", "iss": "https://idp", "exp": 1_000_100, "nbf": 999_000});
        assert!(check(good, aud, iss));
        assert!(check(
            json!({"aud": ["x", "web"], "iss": "https://idp"}),
            aud,
            iss
        ));
        for bad in [
            json!({"iss": "https://idp"}),
            json!({"aud": "web"}),
            json!({"aud": 5, "iss": "https://idp"}),
            json!({"aud": {"web": true}, "iss": "https://idp"}),
            json!({"aud": ["web", 5], "iss": "https://idp"}),
            json!({"aud": "web", "iss": 7}),
            json!({"aud": "web", "iss": {"u": "https://idp"}}),
            json!({"aud": "web", "iss": "https://idp", "nbf": "0"}),
            json!({"aud": "web", "iss": "https://idp", "exp": "9999999999"}),
            json!({"aud": "web", "iss": "https://idp", "exp": 999_000}),
            json!({"aud": "web", "iss": "https://idp", "nbf": 1_000_100}),
        ] {
            assert!(!check(bad.clone(), aud, iss), "{bad}");
        }
    }

    #[test]
    fn unconfigured_claims_may_be_absent_but_not_mistyped() {
        assert!(check(json!({}), &[], None));
        assert!(check(json!({"aud": "any", "iss": "any"}), &[], None));
        assert!(!check(json!({"aud": 5}), &[], None));
        assert!(!check(json!({"iss": ["a"]}), &[], None));
    }
}
