//! The v4 answer envelope `{"message":{"code","text","type"},"meta","data"}`, read leniently
//! where the docs disagree with themselves (`type` is an integer in the schema and a string in
//! the examples) and strictly where it matters (a success must be an envelope).

use serde_json::Value;

/// A v4 answer reduced to what the gateway uses.
#[derive(Debug, Clone, PartialEq)]
pub struct V4Answer {
    pub status: u16,
    /// As sent, prefix included (`UsersOrchestrator_S200_11`).
    pub code: String,
    pub text: String,
    /// `data` as v4 wrote it (JSON text), absent when null: copied into the legacy answer
    /// with its keys recased, never built into a tree.
    pub data: Option<Box<str>>,
}

impl V4Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a v4 answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the answer is not JSON")]
    NotJson,
    #[error("the answer is JSON but not a v4 envelope")]
    NotEnvelope,
}

/// Reads a v4 answer. An error status whose body is not an envelope (a load balancer's HTML
/// page, an empty 503) still says what happened, so it becomes code `E<status>` with the
/// status's reason phrase; a success that is not an envelope is a broken upstream.
pub fn parse(status: u16, body: &[u8]) -> Result<V4Answer, EnvelopeError> {
    match read(body) {
        Ok((code, text, data)) => Ok(V4Answer {
            status,
            code,
            text,
            data,
        }),
        Err(e) if status < 400 => Err(e),
        Err(_) => Ok(V4Answer {
            status,
            code: format!("E{status}"),
            text: http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error")
                .to_string(),
            data: None,
        }),
    }
}

fn read(body: &[u8]) -> Result<(String, String, Option<Box<str>>), EnvelopeError> {
    fast::read(body).map_or_else(|| read_value(body), Ok)
}

/// The envelope read straight into borrowed typed fields: no `Value` tree, no map of keys
/// (the `Value` parse was ~6% of a translated request). It answers only when the
/// answer is a well-formed envelope; anything else, or anything it is unsure of (duplicate
/// keys, a body that is not an object), goes to [`read_value`], the reference reading, so
/// both agree on every input (the tests below check it).
mod fast {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{self, Deserializer, Visitor};
    use serde::Deserialize;
    use serde_json::value::RawValue;

    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        message: Message<'a>,
        #[serde(borrow, default)]
        data: Option<&'a RawValue>,
    }

    #[derive(Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        code: Cow<'a, str>,
        #[serde(borrow, default)]
        text: Option<Cow<'a, str>>,
        #[serde(rename = "type", default)]
        _type: Option<Scalar>,
    }

    /// `message.type`: a string, a number or null; anything else is not an envelope.
    struct Scalar;

    impl<'de> Deserialize<'de> for Scalar {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Scalar;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a string or a number")
                }
                fn visit_str<E: de::Error>(self, _: &str) -> Result<Scalar, E> {
                    Ok(Scalar)
                }
                fn visit_i64<E: de::Error>(self, _: i64) -> Result<Scalar, E> {
                    Ok(Scalar)
                }
                fn visit_u64<E: de::Error>(self, _: u64) -> Result<Scalar, E> {
                    Ok(Scalar)
                }
                fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scalar, E> {
                    Ok(Scalar)
                }
            }
            d.deserialize_any(V)
        }
    }

    pub(super) fn read(body: &[u8]) -> Option<(String, String, Option<Box<str>>)> {
        // serde's derived structs also accept a JSON array; an envelope is an object.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return None;
        }
        let e: Envelope<'_> = serde_json::from_slice(body).ok()?;
        Some((
            e.message.code.into_owned(),
            e.message.text.map(Cow::into_owned).unwrap_or_default(),
            e.data.map(|d| d.get().into()),
        ))
    }
}

fn read_value(body: &[u8]) -> Result<(String, String, Option<Box<str>>), EnvelopeError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| EnvelopeError::NotJson)?;
    let msg = v
        .get("message")
        .and_then(Value::as_object)
        .ok_or(EnvelopeError::NotEnvelope)?;
    let code = msg
        .get("code")
        .and_then(Value::as_str)
        .ok_or(EnvelopeError::NotEnvelope)?;
    let text = match msg.get("text") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(_) => return Err(EnvelopeError::NotEnvelope),
    };
    match msg.get("type") {
        None | Some(Value::Null | Value::String(_) | Value::Number(_)) => {}
        Some(_) => return Err(EnvelopeError::NotEnvelope),
    }
    let data = v
        .get("data")
        .filter(|d| !d.is_null())
        .map(|d| d.to_string().into());
    Ok((code.to_string(), text, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy as _;

    #[test]
    fn type_may_be_string_or_integer() {
        let s = br#"{"message":{"code":"UsersOrchestrator_S200_11","text":"Update password completed.","type":"Success"},"meta":null}"#;
        let n = br#"{"message":{"code":"UsersOrchestrator_S200_11","text":"Update password completed.","type":1},"meta":null}"#;
        assert_eq!(parse(200, s).unwrap(), parse(200, n).unwrap());
        assert_eq!(parse(200, s).unwrap().code, "UsersOrchestrator_S200_11");
    }

    #[test]
    fn success_must_be_an_envelope_errors_need_not() {
        assert_eq!(parse(200, b"<html>"), Err(EnvelopeError::NotJson));
        assert_eq!(
            parse(200, br#"{"ok":true}"#),
            Err(EnvelopeError::NotEnvelope)
        );
        let a = parse(503, b"").unwrap();
        assert_eq!(
            (a.code.as_str(), a.text.as_str()),
            ("E503", "Service Unavailable")
        );
    }

    /// Whatever the body, the fast reading either agrees with the reference one or steps aside.
    /// `data` is compared as JSON: the fast reading keeps v4's text, the reference writes
    /// its tree again.
    fn agrees(body: &[u8]) {
        type Read = (String, String, Option<Value>);
        let as_json = |(code, text, data): (String, String, Option<Box<str>>)| -> Read {
            let data = data.map(|d| serde_json::from_str(&d).expect("data is JSON"));
            (code, text, data)
        };
        if let Some(fast) = super::fast::read(body) {
            assert_eq!(
                Ok(as_json(fast)),
                read_value(body).map(as_json),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn fast_reading_agrees_with_the_reference_on_edge_cases() {
        let cases: &[&[u8]] = &[
            br#"{"message":{"code":"C","text":"t","type":1},"data":{"a":1}}"#,
            br#"{"message":{"code":"C"}}"#,
            br#"{"message":{"code":"C","text":null,"type":null},"data":null}"#,
            br#"{"message":{"code":"C","text":"a\"b\u00e9"},"meta":{}}"#,
            br#"{"message":{"code":"C","code":"D"}}"#,
            br#"{"message":{"code":"C"},"message":{"code":"D"}}"#,
            br#"{"message":{"code":"C","type":true}}"#,
            br#"{"message":{"code":"C","type":{}}}"#,
            br#"{"message":{"code":"C","text":5}}"#,
            br#"{"message":{"code":7}}"#,
            br#"{"message":null}"#,
            br#"[{"code":"C"},null]"#,
            br#"  {"message":{"code":"C"}}  "#,
            br#"{"message":{"code":"C"}} x"#,
            br#"{"message":{"code":"C","type":1e400}}"#,
            br#"{"data":[1,2],"message":{"type":"Success","code":"C"}}"#,
        ];
        for body in cases {
            agrees(body);
        }
        assert!(super::fast::read(br#"{"message":{"code":"C"}}"#).is_some());
        assert!(super::fast::read(br#"[{"code":"C"},null]"#).is_none());
    }

    proptest::proptest! {
        #[test]
        fn fast_reading_agrees_with_the_reference(
            code in proptest::option::of(proptest::prop_oneof![
                proptest::strategy::Just(Value::Null),
                "[A-Za-z_0-9\\\\\"]{0,12}".prop_map(Value::from),
                proptest::num::i64::ANY.prop_map(Value::from),
            ]),
            text in proptest::option::of(proptest::prop_oneof![
                proptest::strategy::Just(Value::Null),
                "\\PC{0,16}".prop_map(Value::from),
                proptest::bool::ANY.prop_map(Value::from),
            ]),
            ty in proptest::option::of(proptest::prop_oneof![
                proptest::strategy::Just(Value::Null),
                "[a-z]{0,6}".prop_map(Value::from),
                proptest::num::f64::NORMAL.prop_map(Value::from),
                proptest::bool::ANY.prop_map(Value::from),
                proptest::strategy::Just(serde_json::json!({"x": 1})),
            ]),
            data in proptest::option::of(proptest::prop_oneof![
                proptest::strategy::Just(Value::Null),
                "[a-z]{0,6}".prop_map(Value::from),
                proptest::strategy::Just(serde_json::json!({"id": "1", "n": [1, 2]})),
            ]),
            message_is_object in proptest::bool::ANY,
        ) {
            let mut msg = serde_json::Map::new();
            for (k, v) in [("code", code), ("text", text), ("type", ty)] {
                if let Some(v) = v {
                    msg.insert(k.into(), v);
                }
            }
            let mut env = serde_json::Map::new();
            env.insert(
                "message".into(),
                if message_is_object { Value::Object(msg) } else { Value::from("m") },
            );
            if let Some(d) = data {
                env.insert("data".into(), d);
            }
            agrees(&serde_json::to_vec(&Value::Object(env)).unwrap());
        }
    }
}
