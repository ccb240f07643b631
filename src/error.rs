//! Every failure the gateway answers, as one enum, turned into the caller's legacy answer here
//! and nowhere else. Internal detail goes to the log; the answer says what the caller needs
//! (which field, which header) and never a value, a token or an upstream stack trace.
//!
//! | code | status | when |
//! |---|---|---|
//! | `Gateway_E400_01` | 400 | mandatory headers missing (named) |
//! | `Gateway_E400_02` | 400 | body is not valid JSON |
//! | `Gateway_E400_03` | 400 | body is not a JSON object |
//! | `Gateway_E400_04` | 400 | body is empty or has no fields |
//! | `Gateway_E400_05` | 400 | unknown fields (named) |
//! | `Gateway_E400_06` | 400 | a field has the wrong type (named) |
//! | `Gateway_E400_07` | 400 | the customer registration id cannot be used in a path |
//! | `Gateway_E400_08` | 400 | two keys name the same field once case is ignored |
//! | `Gateway_E400_09` | 400 | action missing or unknown (action API) |
//! | `Gateway_E400_10` | 400 | required attributes missing (action API) |
//! | `Gateway_E400_11` | 400 | an attribute is empty or malformed (action API) |
//! | `Gateway_E400_12` | 400 | the request body could not be read completely |
//! | `Gateway_E400_13` | 400 | a tenant header was sent more than once (named) |
//! | `Gateway_E401_01` | 401 | no usable token (action API), no `Authorization` (User API) |
//! | `Gateway_E404_01` | 404 | unknown path |
//! | `Gateway_E404_02` | 404 | no tenant configured for the Host (action API) |
//! | `Gateway_E405_01` | 405 | method not allowed on this path or action |
//! | `Gateway_E408_01` | 408 | the client was too slow sending its request |
//! | `Gateway_E413_01` | 413 | body over the configured limit |
//! | `Gateway_E429_01` | 429 | over a rate limit (`Retry-After` says when to retry) |
//! | `Gateway_E500_01` | 500 | internal error (a caught panic) |
//! | `Gateway_E502_01` | 502 | v4 unreachable |
//! | `Gateway_E502_02` | 502 | v4 answered something that is not a usable v4 answer |
//! | `Gateway_E503_01` | 503 | the gateway is at its connection limit |
//! | `Gateway_E504_01` | 504 | v4 did not answer within the timeout |

use http::{Response, StatusCode};

use crate::body::Body;
use crate::identity::IdentityError;
use crate::legacy::registry::{self as reg, Answer};
use crate::legacy::user_api::{Envelope, ErrorEntry, ErrorSource, ResultBody};
use crate::legacy::{json, Family, Refused};
use crate::mapping::registry::ResponseKind;
use crate::mapping::{Failure, Mappings};
use crate::translate::path::BadId;
use crate::upstream::UpstreamError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    #[error("Missing mandatory headers: {}.", .0.join(", "))]
    MissingHeaders(Vec<String>),
    #[error("The request body is not valid JSON (line {line}, column {column}).")]
    MalformedJson { line: usize, column: usize },
    #[error("The request body must be a JSON object.")]
    NotAnObject,
    #[error("The request body is empty.")]
    EmptyBody,
    #[error("The request body could not be read completely.")]
    IncompleteBody,
    #[error("Unknown fields: {}.", .0.join(", "))]
    UnknownFields(Vec<String>),
    #[error("Field {field} must be {expected}.")]
    WrongType { field: String, expected: String },
    #[error("The customer registration id is invalid: {0}.")]
    BadId(BadId),
    #[error("Duplicate fields: {0}.")]
    DuplicateKeys(String),
    #[error("{}", match .0 { Some(a) => format!("Unknown action {a:?}."), None => "The action parameter is missing.".into() })]
    UnknownAction(Option<String>),
    #[error("Missing attributes: {}.", .0.join(", "))]
    MissingAttributes(Vec<String>),
    /// Carries the legacy wording (`Password is empty!`).
    #[error("{0}")]
    InvalidValue(String),
    #[error("Not authorized: {0}.")]
    Unauthorized(IdentityError),
    #[error("No route for this path.")]
    NotFound,
    #[error("No tenant is configured for this host.")]
    UnknownTenant,
    #[error("Method not allowed.")]
    MethodNotAllowed,
    #[error("The request was not received in time.")]
    RequestTimeout,
    #[error("The request body is larger than {0} bytes.")]
    BodyTooLarge(usize),
    #[error("Internal error.")]
    Internal,
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    #[error("The gateway is at its connection limit; retry later.")]
    Overloaded,
    /// A header that chooses the tenant, sent twice: routing by one value and forwarding both
    /// would let the two disagree.
    #[error("Header {0} must be sent once.")]
    DuplicateHeader(String),
    #[error("Too many requests; retry in {0} seconds.")]
    RateLimited(u64),
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        use GatewayError::*;
        match self {
            MissingHeaders(_)
            | MalformedJson { .. }
            | NotAnObject
            | EmptyBody
            | IncompleteBody
            | UnknownFields(_)
            | WrongType { .. }
            | BadId(_)
            | DuplicateKeys(_)
            | UnknownAction(_)
            | MissingAttributes(_)
            | DuplicateHeader(_)
            | InvalidValue(_) => StatusCode::BAD_REQUEST,
            RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Unauthorized(_) => StatusCode::UNAUTHORIZED,
            NotFound | UnknownTenant => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Upstream(UpstreamError::Timeout) => StatusCode::GATEWAY_TIMEOUT,
            Upstream(_) => StatusCode::BAD_GATEWAY,
            Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        use GatewayError::*;
        match self {
            MissingHeaders(_) => "Gateway_E400_01",
            MalformedJson { .. } => "Gateway_E400_02",
            NotAnObject => "Gateway_E400_03",
            EmptyBody => "Gateway_E400_04",
            IncompleteBody => "Gateway_E400_12",
            UnknownFields(_) => "Gateway_E400_05",
            WrongType { .. } => "Gateway_E400_06",
            BadId(_) => "Gateway_E400_07",
            DuplicateKeys(_) => "Gateway_E400_08",
            UnknownAction(_) => "Gateway_E400_09",
            MissingAttributes(_) => "Gateway_E400_10",
            InvalidValue(_) => "Gateway_E400_11",
            DuplicateHeader(_) => "Gateway_E400_13",
            RateLimited(_) => "Gateway_E429_01",
            Unauthorized(_) => "Gateway_E401_01",
            NotFound => "Gateway_E404_01",
            UnknownTenant => "Gateway_E404_02",
            MethodNotAllowed => "Gateway_E405_01",
            RequestTimeout => "Gateway_E408_01",
            BodyTooLarge(_) => "Gateway_E413_01",
            Internal => "Gateway_E500_01",
            Upstream(UpstreamError::Unreachable) => "Gateway_E502_01",
            Upstream(UpstreamError::Invalid(_) | UpstreamError::TooLarge) => "Gateway_E502_02",
            Overloaded => "Gateway_E503_01",
            Upstream(UpstreamError::Timeout) => "Gateway_E504_01",
        }
    }

    /// The `Errors[]` entry of a User API answer.
    pub fn user_api_entry(&self, mappings: &Mappings) -> ErrorEntry {
        let message = self.to_string();
        let status = self.status().as_u16();
        let ty = mappings.user_api.error_type(&Failure {
            status,
            code: self.code(),
            text: &message,
            action: None,
        });
        ErrorEntry {
            message,
            code: self.code().to_string(),
            ty: ty.into(),
            error_source: ErrorSource::Gateway,
            part: None,
        }
    }

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
            | BadId(_)
            | MethodNotAllowed
            | BodyTooLarge(_) => (
                ResponseKind::Validationfailed,
                "Validation Failed",
                vec![self.to_string()],
            ),
            Upstream(_) | Internal => (
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
            _ => reg::http_status(kind),
        };
        (
            status,
            Answer::failure(kind, error, messages, action, request_id),
        )
    }

    /// The whole answer, in the shape of the caller's API, marked [`Refused`].
    pub fn into_response(
        self,
        family: Family,
        ctx: &Reply<'_>,
        mappings: &Mappings,
    ) -> Response<Body> {
        // RFC 9110: a 401 names the scheme that would work; legacy clients renew their
        // token on it.
        let unauthorized = matches!(self, GatewayError::Unauthorized(_));
        let retry_after = match &self {
            GatewayError::RateLimited(secs) => Some(*secs),
            _ => None,
        };
        let mut resp = self.shaped(family, ctx, mappings);
        if unauthorized {
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        resp.extensions_mut().insert(Refused);
        resp
    }

    fn shaped(self, family: Family, ctx: &Reply<'_>, mappings: &Mappings) -> Response<Body> {
        match family {
            Family::UserApi => {
                let status = self.status();
                let envelope = Envelope {
                    code: status.as_u16(),
                    errors: vec![self.user_api_entry(mappings)],
                    result: ResultBody {
                        customer_registration_id: ctx.customer_id.unwrap_or("").to_string(),
                        updated: (!ctx.read).then_some(false),
                        applied: None,
                        not_attempted: None,
                    },
                    session_id: None,
                    request_id: ctx.request_id.to_string(),
                };
                json(status, &envelope)
            }
            Family::Registry => {
                let (status, answer) = self.registry_answer(ctx.action, ctx.request_id);
                json(status, &answer)
            }
        }
    }
}

/// What an answer echoes back besides the error.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reply<'a> {
    pub request_id: &'a str,
    pub customer_id: Option<&'a str>,
    pub action: Option<&'a str>,
    /// The call was a read (`GET /User/{id}`): `Result` carries no `Updated`.
    pub read: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the status and code of every variant: operators alert on these.
    #[test]
    fn status_and_code_agree() {
        let all = [
            GatewayError::MissingHeaders(vec![]),
            GatewayError::MalformedJson { line: 1, column: 1 },
            GatewayError::NotAnObject,
            GatewayError::EmptyBody,
            GatewayError::IncompleteBody,
            GatewayError::UnknownFields(vec![]),
            GatewayError::WrongType {
                field: "x".into(),
                expected: "a string".into(),
            },
            GatewayError::BadId(BadId::Empty),
            GatewayError::DuplicateKeys(String::new()),
            GatewayError::UnknownAction(None),
            GatewayError::MissingAttributes(vec![]),
            GatewayError::InvalidValue(String::new()),
            GatewayError::Unauthorized(IdentityError::Missing),
            GatewayError::NotFound,
            GatewayError::UnknownTenant,
            GatewayError::MethodNotAllowed,
            GatewayError::RequestTimeout,
            GatewayError::BodyTooLarge(1),
            GatewayError::Internal,
            GatewayError::Upstream(UpstreamError::Unreachable),
            GatewayError::Upstream(UpstreamError::TooLarge),
            GatewayError::Overloaded,
            GatewayError::Upstream(UpstreamError::Timeout),
            GatewayError::DuplicateHeader("X-ClientCode".into()),
            GatewayError::RateLimited(1),
        ];
        for e in all {
            let code = e.code();
            assert!(
                code.starts_with(&format!("Gateway_E{}_", e.status().as_u16())),
                "{code} vs {}",
                e.status()
            );
        }
    }
}
