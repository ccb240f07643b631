//! Every form a secret may be written in, for the tests that look for it in outputs: raw,
//! JSON-escaped (once, and as a JSON text inside a JSON string), percent-encoded (every
//! non-alphanumeric, `encodeURIComponent`'s set, and a form body's). Written here apart from
//! the gateway's own list (`src/redact/forms.rs`), so a form the gateway forgets is still
//! looked for.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

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

/// `(name of the form, the secret in it)`, raw first, then JSON-escaped once.
pub fn secret_forms(value: &str) -> Vec<(&'static str, String)> {
    let inside = |s: &str| {
        let q = serde_json::to_string(s).unwrap();
        q[1..q.len() - 1].to_string()
    };
    let json = inside(value);
    vec![
        ("raw", value.to_string()),
        ("JSON-escaped", json.clone()),
        ("JSON-escaped twice", inside(&json)),
        (
            "percent-encoded",
            utf8_percent_encode(value, NON_ALPHANUMERIC).to_string(),
        ),
        (
            "URI-component-encoded",
            utf8_percent_encode(value, COMPONENT).to_string(),
        ),
        (
            "form-encoded",
            url::form_urlencoded::byte_serialize(value.as_bytes()).collect(),
        ),
    ]
}
