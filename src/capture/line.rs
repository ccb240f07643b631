//! One captured call as its JSON line, with every secret taken out. Two layers, because
//! either alone misses something: the mappings' secret fields (and secret query parameters,
//! and `Authorization`) are replaced by [`MARKER`] wherever they stand, so a replay knows a
//! value was there; then the finished line is scrubbed of this call's secret values in every
//! form (raw, JSON-escaped, percent-encoded) and of the configuration's own secrets, which
//! catches a legacy answer that echoes a password in an error text.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::Entry;
use crate::mapping::registry::InputSource;
use crate::mapping::Mappings;

/// What stands in the file where a secret was: a replay fills it with a generated value.
pub const MARKER: &str = "<redacted>";

/// The marker as a query value: percent-encoded, as a query string must be to be a request
/// target again (a replay decodes it to the marker).
const QUERY_MARKER: &str = "%3Credacted%3E";

/// Bodies that are not JSON are kept as text up to this many bytes: enough to recognise an
/// HTML error page, not enough to let one answer fill the file.
const TEXT_CAP: usize = 16 * 1024;

/// The secret names of the mappings, found once per mappings (they change on reload only).
pub(super) struct SecretNames {
    /// Body fields, at any depth, compared case-insensitively.
    fields: Vec<String>,
    /// Query parameters.
    query: Vec<String>,
    /// A secret field's value in text that is not JSON as a whole: `"password": "…"` (JSON
    /// with an error elsewhere) or `password=…` (a form).
    in_text: Option<regex::Regex>,
    /// Any secret field's name, in any case, anywhere in a body's bytes.
    any_field: Option<regex::bytes::Regex>,
}

impl SecretNames {
    pub(super) fn of(m: &Mappings) -> Self {
        let mut fields = m.user_api.secret_fields.clone();
        let mut query = Vec::new();
        for i in m
            .registry
            .actions
            .iter()
            .flat_map(|a| a.inputs.iter())
            .filter(|i| i.secret)
        {
            let names = i.names().map(str::to_string);
            match i.from {
                InputSource::Body => fields.extend(names),
                InputSource::Query => query.extend(names),
                InputSource::Tenant => {}
            }
        }
        let alternatives = fields
            .iter()
            .map(|f| regex::escape(f))
            .collect::<Vec<_>>()
            .join("|");
        let in_text = regex::Regex::new(&format!(
            r#"(?i)"(?:{alternatives})"\s*:\s*"((?:[^"\\]|\\.)*)"|(?:^|[&?\s])(?:{alternatives})=([^&\s]*)"#
        ))
        .ok();
        let any_field = regex::bytes::Regex::new(&format!("(?i){alternatives}")).ok();
        Self {
            fields,
            query,
            in_text,
            any_field,
        }
    }

    /// Whether a body may hold a secret field: it names one, or escapes characters (a key
    /// written `\u0050assword` is `Password`). Only a body that may not is kept as it came.
    fn may_hold_field(&self, bytes: &[u8]) -> bool {
        bytes.contains(&b'\\') || self.any_field.as_ref().is_none_or(|re| re.is_match(bytes))
    }

    /// The values of secret fields in `text`, as well as they can be read, to scrub the rest
    /// of the line of (the legacy backend may echo them).
    fn values_in(&self, text: &str, secrets: &mut Vec<String>) {
        let Some(re) = &self.in_text else { return };
        for c in re.captures_iter(text) {
            if let Some(quoted) = c.get(1) {
                let raw = quoted.as_str();
                let decoded: Option<String> = serde_json::from_str(&format!("\"{raw}\"")).ok();
                secrets.extend(decoded);
                secrets.push(raw.to_string());
            }
            if let Some(form) = c.get(2) {
                let raw = form.as_str();
                let decoded = url::form_urlencoded::parse(format!("x={raw}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned());
                secrets.extend(decoded);
                secrets.push(raw.to_string());
            }
        }
    }

    fn is_field(&self, key: &str) -> bool {
        self.fields.iter().any(|f| f.eq_ignore_ascii_case(key))
    }

    /// Whether a text we could not parse names a secret field: then none of it is kept.
    fn named_in(&self, text: &str) -> bool {
        let lower = text.to_ascii_lowercase();
        self.fields
            .iter()
            .any(|f| lower.contains(&f.to_ascii_lowercase()))
    }
}

/// The line, without its newline.
pub(super) fn render(e: &Entry, names: &SecretNames) -> String {
    let mut secrets: Vec<String> = Vec::new();
    let mut headers = Map::new();
    for (name, value) in &e.headers {
        let shown = if *name == http::header::AUTHORIZATION {
            if let Ok(v) = value.to_str() {
                let auth = http::HeaderMap::from_iter([(name.clone(), value.clone())]);
                secrets.extend(
                    crate::redact::authorization_secrets(&auth)
                        .into_iter()
                        .map(str::to_string),
                );
                secrets.push(v.to_string());
            }
            Value::from(MARKER)
        } else {
            Value::from(String::from_utf8_lossy(value.as_bytes()).into_owned())
        };
        headers.insert(name.as_str().to_string(), shown);
    }
    let query = e
        .query
        .as_deref()
        .map(|q| masked_query(q, names, &mut secrets));
    // The request first: its secret values are what the answer is scrubbed of.
    let (body, body_text) = shown_body(&e.body, names, &mut secrets);
    let (answer, answer_text) = shown_body(&e.answer, names, &mut secrets);
    let line = Line {
        v: 1,
        time: rfc3339(e.time),
        route: e.route,
        part: &e.part,
        tenant: e.tenant.as_deref(),
        method: e.method.as_str(),
        path: &e.path,
        query,
        headers,
        body,
        body_text,
        legacy: Legacy {
            status: e.status,
            body: answer,
            body_text: answer_text,
        },
    };
    // Serialising plain values into a string cannot fail.
    let text = serde_json::to_string(&line).unwrap_or_default();
    let present: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty() && *s != MARKER && may_appear(&text, s))
        .collect();
    let known = crate::redact::known::any()
        && crate::redact::known::may_hold(&crate::redact::known::snapshot(), &text);
    if present.is_empty() && !known {
        return text;
    }
    crate::redact::scrub(&text, &present)
}

/// Whether `secret` may appear in `text` in any of the forms it is scrubbed in. Each form
/// (JSON-escaped, percent-encoded…) keeps the secret's ASCII letters and digits as they are,
/// so a text without its longest run of them holds none of its forms: no form need be built
/// for the usual line, whose secrets are all masked already.
fn may_appear(text: &str, secret: &str) -> bool {
    let longest = secret
        .split(|c: char| !c.is_ascii_alphanumeric())
        .max_by_key(|run| run.len())
        .unwrap_or("");
    longest.is_empty() || text.contains(longest)
}

/// A body as the line holds it: parsed (its secret fields masked), or the legacy bytes
/// themselves when they hold no secret field (no parse, no second serialisation).
#[derive(Serialize, Debug)]
#[serde(untagged)]
enum Shown<'a> {
    Parsed(Value),
    AsSent(&'a RawValue),
}

impl PartialEq for Shown<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Parsed(a), Self::Parsed(b)) => a == b,
            (Self::AsSent(a), Self::AsSent(b)) => a.get() == b.get(),
            _ => false,
        }
    }
}

/// The line's fields, in the order a reader expects them.
#[derive(Serialize)]
struct Line<'a> {
    v: u8,
    time: String,
    route: &'a str,
    part: &'a str,
    tenant: Option<&'a str>,
    method: &'a str,
    path: &'a str,
    query: Option<String>,
    headers: Map<String, Value>,
    body: Shown<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_text: Option<String>,
    legacy: Legacy<'a>,
}

#[derive(Serialize)]
struct Legacy<'a> {
    status: u16,
    body: Shown<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_text: Option<String>,
}

/// A body as `body` (JSON, the secret fields masked) or, when it is not JSON, `body: null`
/// and `body_text`; `null` alone when there was none.
fn shown_body<'a>(
    bytes: &'a [u8],
    names: &SecretNames,
    secrets: &mut Vec<String>,
) -> (Shown<'a>, Option<String>) {
    if bytes.is_empty() {
        return (Shown::Parsed(Value::Null), None);
    }
    // Kept as sent only on one line: a pretty-printed answer would break the line format.
    if !names.may_hold_field(bytes) && !bytes.contains(&b'\n') && !bytes.contains(&b'\r') {
        if let Ok(raw) = serde_json::from_slice::<&RawValue>(bytes) {
            return (Shown::AsSent(raw), None);
        }
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(mut v) => {
            mask_fields(&mut v, names, secrets);
            (Shown::Parsed(v), None)
        }
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            let kept = if names.named_in(&text) {
                names.values_in(&text, secrets);
                MARKER.to_string()
            } else {
                capped(&text).to_string()
            };
            (Shown::Parsed(Value::Null), Some(kept))
        }
    }
}

/// Replaces the value of every secret field, at any depth, by the marker, and keeps the
/// values to scrub the rest of the line of.
fn mask_fields(v: &mut Value, names: &SecretNames, secrets: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if names.is_field(k) {
                    collect_values(val, secrets);
                    *val = Value::from(MARKER);
                } else {
                    mask_fields(val, names, secrets);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                mask_fields(item, names, secrets);
            }
        }
        _ => {}
    }
}

fn collect_values(v: &Value, secrets: &mut Vec<String>) {
    match v {
        Value::String(s) => secrets.push(s.clone()),
        Value::Number(n) => secrets.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|i| collect_values(i, secrets)),
        Value::Object(m) => m.values().for_each(|i| collect_values(i, secrets)),
        Value::Bool(_) | Value::Null => {}
    }
}

/// The raw query with the value of each secret parameter replaced by the marker; the rest
/// exactly as sent.
fn masked_query(q: &str, names: &SecretNames, secrets: &mut Vec<String>) -> String {
    q.split('&')
        .map(|pair| {
            let Some((name, value)) = url::form_urlencoded::parse(pair.as_bytes()).next() else {
                return pair.to_string();
            };
            if !names.query.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                return pair.to_string();
            }
            let raw_name = pair.split_once('=').map_or(pair, |(n, _)| n);
            let raw_value = pair.split_once('=').map_or("", |(_, v)| v);
            secrets.push(value.into_owned());
            secrets.push(raw_value.to_string());
            format!("{raw_name}={QUERY_MARKER}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// At most [`TEXT_CAP`] bytes, cut at a character boundary.
fn capped(text: &str) -> &str {
    if text.len() <= TEXT_CAP {
        return text;
    }
    let mut end = TEXT_CAP;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `2026-12-07T00:00:00.123Z`.
fn rfc3339(at: std::time::SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> SecretNames {
        SecretNames::of(&Mappings::embedded().unwrap())
    }

    #[test]
    fn secret_fields_are_masked_at_any_depth_and_their_values_scrubbed_elsewhere() {
        let mut v =
            json!({"a": {"PASSWORD": "Hunter2xyz", "list": [{"oldpasswort": 7}]}, "note": "x"});
        let mut secrets = Vec::new();
        mask_fields(&mut v, &names(), &mut secrets);
        assert_eq!(
            v,
            json!({"a": {"PASSWORD": MARKER, "list": [{"oldpasswort": MARKER}]}, "note": "x"})
        );
        assert_eq!(secrets, ["Hunter2xyz", "7"]);
    }

    #[test]
    fn secret_query_parameters_are_masked_the_rest_kept_as_sent() {
        let mut secrets = Vec::new();
        let q = masked_query(
            "action=activate&CID=ab%2Fc&x=1&flag",
            &names(),
            &mut secrets,
        );
        assert_eq!(q, "action=activate&CID=%3Credacted%3E&x=1&flag");
        assert_eq!(secrets, ["ab/c", "ab%2Fc"]);
        let q = masked_query("id=s3cr3t&id=again", &names(), &mut Vec::new());
        assert_eq!(q, "id=%3Credacted%3E&id=%3Credacted%3E");
    }

    #[test]
    fn text_naming_a_secret_field_is_not_kept() {
        let n = names();
        fn text<'a>(b: &'a [u8], n: &SecretNames) -> (Shown<'a>, Option<String>) {
            shown_body(b, n, &mut Vec::new())
        }
        assert_eq!(
            text(b"{\"Password\": oops", &n),
            (Shown::Parsed(Value::Null), Some(MARKER.into()))
        );
        assert_eq!(
            text(b"<html>down</html>", &n),
            (Shown::Parsed(Value::Null), Some("<html>down</html>".into()))
        );
        assert_eq!(text(b"", &n), (Shown::Parsed(Value::Null), None));
        let mut secrets = Vec::new();
        shown_body(
            br#"{"PASSWORD" : "a\"b", oops; oldpassword=c%2Fd&x=1"#,
            &n,
            &mut secrets,
        );
        assert_eq!(secrets, ["a\"b", "a\\\"b", "c/d", "c%2Fd"]);
        assert_eq!(capped(&"\u{e9}".repeat(TEXT_CAP)).len(), TEXT_CAP);
    }

    #[test]
    fn a_body_without_secret_fields_is_kept_as_sent_and_an_escaped_key_is_read() {
        let n = names();
        let body = br#"{"Code":0,"Result":{"B":1,"A":[true]}}"#;
        let (shown, _) = shown_body(body, &n, &mut Vec::new());
        assert_eq!(serde_json::to_string(&shown).unwrap().as_bytes(), body);
        let (shown, _) = shown_body(br#"{"\u0050assword":"x1y2"}"#, &n, &mut Vec::new());
        assert_eq!(shown, Shown::Parsed(json!({"Password": MARKER})));
        let (shown, _) = shown_body(b"{\n\"A\": 1\n}", &n, &mut Vec::new());
        assert_eq!(shown, Shown::Parsed(json!({"A": 1})));
    }

    #[test]
    fn a_secret_is_looked_for_by_its_longest_run_of_letters_and_digits() {
        assert!(may_appear(
            "x PW%2Dquote%22d%2DSecret11 y",
            "PW-quote\"d-Secret11"
        ));
        assert!(!may_appear("x PW-quote y", "PW-quote\"d-Secret11"));
        assert!(may_appear("anything", "\"/\""));
    }

    #[test]
    fn time_is_utc_with_milliseconds() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_601_600_123);
        assert_eq!(rfc3339(at), "2026-12-07T00:00:00.123Z");
    }
}
