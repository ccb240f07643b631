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
    pub data: Option<Value>,
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

fn read(body: &[u8]) -> Result<(String, String, Option<Value>), EnvelopeError> {
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
    let data = v.get("data").filter(|d| !d.is_null()).cloned();
    Ok((code.to_string(), text, data))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
