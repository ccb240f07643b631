//! Every failure the gateway answers, as one enum: its message, HTTP status and code are
//! decided here, and only here. The answer in the caller's legacy shape is written in one
//! place too, `legacy::refusal`, which reads them. Internal detail goes to the log; the
//! answer says what the caller needs (which field, which header) and never a value, a token
//! or an upstream stack trace.
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
//! | `Gateway_E400_13` | 400 | a tenant header, `Authorization` or `Host` sent more than once or comma-joined (named) |
//! | `Gateway_E400_14` | 400 | `Host` missing (HTTP/1.1) or not a valid host and port |
//! | `Gateway_E401_01` | 401 | no usable token (action API), no `Authorization` (User API) |
//! | `Gateway_E404_01` | 404 | unknown path |
//! | `Gateway_E404_02` | 404 | no tenant configured for the Host (action API) |
//! | `Gateway_E405_01` | 405 | method not allowed on this path or action |
//! | `Gateway_E408_01` | 408 | the client was too slow sending its request |
//! | `Gateway_E413_01` | 413 | body over the configured limit |
//! | `Gateway_E429_01` | 429 | over a rate limit (`Retry-After` says when to retry) |
//! | `Gateway_E500_01` | 500 | internal error (a caught panic) |
//! | `Gateway_E502_01` | 502 | v4 unreachable: no answer at all (nothing sent, or the connection reset before any answer) |
//! | `Gateway_E502_02` | 502 | v4 answered, but not usably: not HTTP, cut short, too large, not a v4 envelope |
//! | `Gateway_E502_03` | 502 | the legacy User API backend unreachable (legacy and shadow modes) |
//! | `Gateway_E502_04` | 502 | the legacy User API backend answered, but not usably |
//! | `Gateway_E502_05` | 502 | the legacy registry backend unreachable |
//! | `Gateway_E502_06` | 502 | the legacy registry backend answered, but not usably |
//! | `Gateway_E503_01` | 503 | the gateway is at its connection limit |
//! | `Gateway_E504_01` | 504 | v4 did not answer within the timeout |
//! | `Gateway_E504_02` | 504 | the legacy User API backend did not answer within the timeout |
//! | `Gateway_E504_03` | 504 | the legacy registry backend did not answer within the timeout |

use http::StatusCode;

use crate::api::Family;
use crate::identity::IdentityError;
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
    /// v4 failed.
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    /// The legacy backend of that API failed (legacy and shadow modes): named apart from
    /// v4, so a client and an operator can tell which system is down.
    #[error("{}", .1.describe(legacy_system(*.0)))]
    Legacy(Family, UpstreamError),
    #[error("The gateway is at its connection limit; retry later.")]
    Overloaded,
    /// A header that chooses the tenant, sent twice: routing by one value and forwarding both
    /// would let the two disagree.
    #[error("Header {0} must be sent once.")]
    DuplicateHeader(String),
    /// RFC 9112 3.2: a request names the host it is for, once, with a usable port.
    #[error("The Host header {0}.")]
    BadHost(&'static str),
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
            | BadHost(_)
            | InvalidValue(_) => StatusCode::BAD_REQUEST,
            RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Unauthorized(_) => StatusCode::UNAUTHORIZED,
            NotFound | UnknownTenant => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Upstream(UpstreamError::Timeout) | Legacy(_, UpstreamError::Timeout) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            Upstream(_) | Legacy(..) => StatusCode::BAD_GATEWAY,
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
            BadHost(_) => "Gateway_E400_14",
            RateLimited(_) => "Gateway_E429_01",
            Unauthorized(_) => "Gateway_E401_01",
            NotFound => "Gateway_E404_01",
            UnknownTenant => "Gateway_E404_02",
            MethodNotAllowed => "Gateway_E405_01",
            RequestTimeout => "Gateway_E408_01",
            BodyTooLarge(_) => "Gateway_E413_01",
            Internal => "Gateway_E500_01",
            Upstream(UpstreamError::Unreachable) => "Gateway_E502_01",
            Upstream(UpstreamError::Timeout) => "Gateway_E504_01",
            Upstream(_) => "Gateway_E502_02",
            Legacy(Family::UserApi, UpstreamError::Unreachable) => "Gateway_E502_03",
            Legacy(Family::UserApi, UpstreamError::Timeout) => "Gateway_E504_02",
            Legacy(Family::UserApi, _) => "Gateway_E502_04",
            Legacy(Family::Registry, UpstreamError::Unreachable) => "Gateway_E502_05",
            Legacy(Family::Registry, UpstreamError::Timeout) => "Gateway_E504_03",
            Legacy(Family::Registry, _) => "Gateway_E502_06",
            Overloaded => "Gateway_E503_01",
        }
    }

    /// The call was sent on and an upstream failed it: not a refusal of the gateway's (the
    /// shadow compares such an answer; it skips a copy the gateway refused).
    pub fn is_upstream_failure(&self) -> bool {
        matches!(self, GatewayError::Upstream(_) | GatewayError::Legacy(..))
    }

    /// Whether the answer must close the connection: the request (or its body) was not read
    /// to the end, so the connection cannot carry another request, or the gateway is shedding
    /// connections. Without `Connection: close` a keep-alive client would send its next
    /// request into a socket about to close.
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            GatewayError::BodyTooLarge(_) | GatewayError::RequestTimeout | GatewayError::Overloaded
        )
    }
}

/// How a legacy backend is named in its failures.
fn legacy_system(family: Family) -> &'static str {
    match family {
        Family::UserApi => "The legacy User API",
        Family::Registry => "The legacy user registry",
    }
}

/// What an answer echoes back besides the error.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnswerContext<'a> {
    pub request_id: &'a str,
    pub customer_id: Option<&'a str>,
    pub action: Option<&'a str>,
    /// The call was a read (`GET /User/{id}`): `Result` carries no `Updated`.
    pub read: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each system is named in its own failures: a legacy outage never reads as v4's.
    #[test]
    fn legacy_backend_failures_name_the_backend() {
        let e = GatewayError::Legacy(Family::UserApi, UpstreamError::Unreachable);
        assert_eq!(e.to_string(), "The legacy User API could not be reached.");
        let e = GatewayError::Legacy(Family::Registry, UpstreamError::Timeout);
        assert_eq!(
            e.to_string(),
            "The legacy user registry did not answer in time."
        );
        let e = GatewayError::Upstream(UpstreamError::BrokenAnswer);
        assert_eq!(
            e.to_string(),
            "The Users Orchestrator answered with an invalid response."
        );
    }

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
            GatewayError::Upstream(UpstreamError::BrokenAnswer),
            GatewayError::Legacy(Family::UserApi, UpstreamError::Unreachable),
            GatewayError::Legacy(Family::UserApi, UpstreamError::BrokenAnswer),
            GatewayError::Legacy(Family::UserApi, UpstreamError::Timeout),
            GatewayError::Legacy(Family::Registry, UpstreamError::Unreachable),
            GatewayError::Legacy(Family::Registry, UpstreamError::TooLarge),
            GatewayError::Legacy(Family::Registry, UpstreamError::Timeout),
            GatewayError::DuplicateHeader("X-ClientCode".into()),
            GatewayError::BadHost("is missing"),
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
