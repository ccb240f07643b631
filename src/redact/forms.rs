//! The shapes one secret takes on its way out: an upstream that puts a password into a JSON
//! string escapes its quotes, one that builds a URL percent-encodes it, and a log line that
//! formats a value with `{:?}` escapes it again. Masking only the raw text would let every
//! one of those through.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What `encodeURIComponent` leaves alone: the form most web clients and servers write.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Every distinct form of `secret`, longest first (so a longer form is masked whole before
/// a shorter one could match inside it); none for an empty secret.
pub fn of(secret: &str) -> Vec<String> {
    if secret.is_empty() {
        return Vec::new();
    }
    let json = json_escaped(secret);
    let mut out = vec![
        secret.to_string(),
        json_escaped(&json),
        debug_escaped(secret),
        utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string(),
        utf8_percent_encode(secret, COMPONENT).to_string(),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        json,
    ];
    // Some encoders write hex digits in lower case (`%2f`).
    let lower: Vec<String> = out[3..6].iter().map(|f| lower_hex(f)).collect();
    out.extend(lower);
    out.sort_by_key(|f| std::cmp::Reverse(f.len()));
    out.dedup();
    let mut seen = std::collections::HashSet::new();
    out.retain(|f| seen.insert(f.clone()));
    out
}

/// The inside of a JSON string holding `s`.
fn json_escaped(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted[1..quoted.len() - 1].to_string()
}

/// The inside of `format!("{s:?}")`.
fn debug_escaped(s: &str) -> String {
    let quoted = format!("{s:?}");
    quoted[1..quoted.len() - 1].to_string()
}

/// `%2F` written as `%2f`, the rest unchanged.
fn lower_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut chars = encoded.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            out.extend(chars.by_ref().take(2).map(|h| h.to_ascii_lowercase()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::of;

    #[test]
    fn quoted_and_encoded_forms_are_all_there() {
        let f = of("PW-quote\"d-Secret11");
        for form in [
            "PW-quote\"d-Secret11",
            "PW-quote\\\"d-Secret11",
            "PW-quote\\\\\\\"d-Secret11",
            "PW%2Dquote%22d%2DSecret11",
            "PW-quote%22d-Secret11",
            "PW%2dquote%22d%2dSecret11",
        ] {
            assert!(f.iter().any(|x| x == form), "{form} missing from {f:?}");
        }
        assert!(of("").is_empty());
        assert_eq!(of("plain"), vec!["plain".to_string()]);
    }
}
