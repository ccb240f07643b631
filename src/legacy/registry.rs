//! The user-registry action API answer (SPEC 1.3, the Darwino `RequestResult`):
//! `{"status","error","messages","trace","action"}`, optional fields left out when empty.

use serde::Serialize;

use http::StatusCode;

use crate::error::GatewayError;
use crate::mapping::registry::ResponseKind;
use crate::mapping::{Mappings, V4Failure};
use crate::redact::scrub;
use crate::translate::envelope::V4Answer;

pub const OK: &str = "OK";
pub const VALIDATION_FAILED: &str = "validationfailed";
pub const ERROR: &str = "error";

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Answer {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<String>>,
    /// Never upstream data (no stack trace leaves the gateway); the request id for support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

impl Answer {
    pub fn ok(action: &str) -> Self {
        Self {
            status: OK,
            error: None,
            messages: None,
            trace: None,
            action: Some(action.to_string()),
        }
    }

    /// A failure answer of the given kind; exceptions carry the request id in `trace`.
    pub fn failure(
        kind: ResponseKind,
        error: impl Into<String>,
        messages: Vec<String>,
        action: Option<&str>,
        request_id: &str,
    ) -> Self {
        Self {
            status: match kind {
                ResponseKind::Validationfailed => VALIDATION_FAILED,
                ResponseKind::Error | ResponseKind::Exception => ERROR,
            },
            error: Some(error.into()),
            messages: (!messages.is_empty()).then_some(messages),
            trace: (kind == ResponseKind::Exception).then(|| format!("request id {request_id}")),
            action: action.map(str::to_string),
        }
    }
}

/// A v4 failure as the action API reports it: the mapping's error rule for v4's status and
/// code (an exception when none matches), `{text}` in its messages replaced by v4's text with
/// this call's secrets scrubbed. `action` is the mapping's name for the action (what rules
/// match), `called` the name as the client wrote it (what the answer echoes).
pub fn v4_failure(
    mappings: &Mappings,
    answer: &V4Answer,
    secrets: &[&str],
    action: &str,
    called: &str,
    request_id: &str,
) -> (StatusCode, Answer) {
    let text = scrub(&answer.text, secrets);
    let legacy = mappings.registry.legacy_error(&V4Failure {
        status: answer.status,
        code: mappings.v4.short_code(&answer.code),
        text: &text,
        action: Some(action),
    });
    let messages = legacy
        .messages
        .iter()
        .map(|m| m.replace("{text}", &text))
        .collect();
    (
        http_status(legacy.response),
        Answer::failure(
            legacy.response,
            legacy.error,
            messages,
            Some(called),
            request_id,
        ),
    )
}

/// The HTTP status the legacy service used for each kind: the answer is in the body.
pub fn http_status(kind: ResponseKind) -> http::StatusCode {
    match kind {
        ResponseKind::Validationfailed | ResponseKind::Error => http::StatusCode::OK,
        ResponseKind::Exception => http::StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl GatewayError {
    /// The action API answer and its HTTP status. Gateway-side validation is a
    /// `validationfailed` answer as the legacy service gave it; failures of v4 or of the
    /// gateway itself are an ExceptionResponse without upstream detail.
    pub fn registry_answer(&self, action: Option<&str>, request_id: &str) -> (StatusCode, Answer) {
        use GatewayError::*;
        let (kind, error, messages) = match self {
            MissingAttributes(names) => (
                ResponseKind::Validationfailed,
                "Missing attributes",
                names
                    .iter()
                    .map(|n| format!("Missing attribute: {n}"))
                    .collect(),
            ),
            InvalidValue(m) => (
                ResponseKind::Validationfailed,
                "Validation Failed",
                vec![m.clone()],
            ),
            MalformedJson { .. }
            | NotAnObject
            | EmptyBody
            | IncompleteBody
            | UnknownFields(_)
            | WrongType { .. }
            | DuplicateKeys(_)
            | UnknownAction(_)
            | MissingHeaders(_)
            | DuplicateHeader(_)
            | BadHost(_)
            | BadId(_)
            | MethodNotAllowed
            | BodyTooLarge(_) => (
                ResponseKind::Validationfailed,
                "Validation Failed",
                vec![self.to_string()],
            ),
            Upstream(_) | Legacy(..) | Internal => (
                ResponseKind::Exception,
                "Exception was thrown",
                vec!["Exception was thrown".to_string()],
            ),
            Unauthorized(_) | NotFound | UnknownTenant | RequestTimeout | Overloaded
            | RateLimited(_) => {
                let answer = Answer::failure(
                    ResponseKind::Error,
                    match self {
                        Unauthorized(_) => "Not authorized",
                        RateLimited(_) => "Too many requests",
                        UnknownTenant => "Unknown tenant",
                        NotFound => "Not found",
                        RequestTimeout => "Request timeout",
                        _ => "Service unavailable",
                    },
                    vec![self.to_string()],
                    action,
                    request_id,
                );
                return (self.status(), answer);
            }
        };
        let status = match self {
            // The legacy API answered validation in the body with 200, except for a body it
            // could not take at all.
            BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            _ => http_status(kind),
        };
        (
            status,
            Answer::failure(kind, error, messages, action, request_id),
        )
    }
}
