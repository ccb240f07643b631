//! The v4 answer: `{"message":{"code","text","type"},"meta":null,"data":…}`, and every
//! failure the sandbox can answer with, each turned into its status, code and text here and
//! nowhere else.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};

use super::input::InputError;
use super::routes::RouteError;
use super::store::StoreError;

/// Every v4 code is this prefix + `<E|S><status>[_<nn>]`.
pub(crate) const CODE_PREFIX: &str = "UsersOrchestrator_";

/// A successful v4 answer.
#[derive(Debug)]
pub(crate) struct Success {
    code: &'static str,
    text: &'static str,
    data: Option<Value>,
}

impl Success {
    pub fn new(code: &'static str, text: &'static str) -> Self {
        Self {
            code,
            text,
            data: None,
        }
    }

    pub fn with_data(self, data: Value) -> Self {
        Self {
            data: Some(data),
            ..self
        }
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        envelope(StatusCode::OK, self.code, "Success", self.text, self.data)
    }
}

/// Everything the sandbox refuses, in the contract's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    MissingHeaders,
    InvalidInput(String),
    EmailTaken,
    UpdateRejected,
    UnknownLogin,
    UnknownRequest,
    NotFound,
    MethodNotAllowed { allow: &'static str },
    PayloadTooLarge,
    UnsupportedMediaType,
    UnknownUser,
    Overloaded,
}

impl Failure {
    fn parts(&self) -> (StatusCode, &'static str, Cow<'static, str>) {
        use Failure::*;
        let (status, code, text) = match self {
            MissingHeaders => (StatusCode::BAD_REQUEST, "E400", "Bad Request"),
            InvalidInput(reason) => {
                return (
                    StatusCode::BAD_REQUEST,
                    "E400_00",
                    Cow::Owned(format!("Invalid InputModel - {reason}")),
                )
            }
            EmailTaken => (
                StatusCode::BAD_REQUEST,
                "E400_08",
                "The email is already in use by another user.",
            ),
            UpdateRejected => (
                StatusCode::BAD_REQUEST,
                "E400_22",
                "There was an error trying to update the user.",
            ),
            UnknownLogin => (StatusCode::NOT_FOUND, "E404_01", "User not found."),
            UnknownRequest => (
                StatusCode::NOT_FOUND,
                "E404_02",
                "Forgot password request not found or already used.",
            ),
            NotFound => (StatusCode::NOT_FOUND, "E404", "Not Found"),
            MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, "E405", "Method Not Allowed")
            }
            PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "E413", "Payload Too Large"),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "E415",
                "Unsupported Media Type",
            ),
            UnknownUser => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "E500_01",
                "There was a problem during the GetById workflow.",
            ),
            Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "E503",
                "Service Unavailable",
            ),
        };
        (status, code, Cow::Borrowed(text))
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let (status, code, text) = self.parts();
        let mut res = envelope(status, code, "Error", &text, None);
        if let Failure::MethodNotAllowed { allow } = self {
            res.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
        }
        res
    }
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Self {
        Failure::InvalidInput(e.0)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownUser => Failure::UnknownUser,
            StoreError::EmailTaken => Failure::EmailTaken,
            StoreError::UpdateRejected => Failure::UpdateRejected,
            StoreError::UnknownLogin => Failure::UnknownLogin,
            StoreError::UnknownRequest => Failure::UnknownRequest,
        }
    }
}

impl From<RouteError> for Failure {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::NotFound => Failure::NotFound,
            RouteError::MethodNotAllowed { allow } => Failure::MethodNotAllowed { allow },
        }
    }
}

fn envelope(
    status: StatusCode,
    code: &str,
    kind: &str,
    text: &str,
    data: Option<Value>,
) -> Response<Full<Bytes>> {
    let body = json!({
        "message": { "code": format!("{CODE_PREFIX}{code}"), "text": text, "type": kind },
        "meta": null,
        "data": data,
    });
    with_body(
        status,
        "application/json; charset=utf-8",
        body.to_string().into(),
    )
}

/// A response without a fallible builder: every header here is static.
pub(crate) fn with_body(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn json_of(res: Response<Full<Bytes>>) -> Value {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn error_envelope() {
        let res = Failure::InvalidInput("The Password field is required.".into()).into_response();
        assert_eq!(res.status(), 400);
        let v = json_of(res).await;
        assert_eq!(v["message"]["code"], "UsersOrchestrator_E400_00");
        assert_eq!(
            v["message"]["text"],
            "Invalid InputModel - The Password field is required."
        );
        assert_eq!(v["message"]["type"], "Error");
        assert!(v["meta"].is_null() && v["data"].is_null());
    }

    #[tokio::test]
    async fn success_envelope_and_allow_header() {
        let v = json_of(
            Success::new("S200_01", "Get user completed.")
                .with_data(json!({"a": 1}))
                .into_response(),
        )
        .await;
        assert_eq!(v["message"]["type"], "Success");
        assert_eq!(v["data"]["a"], 1);
        let res = Failure::MethodNotAllowed { allow: "PATCH" }.into_response();
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers()[ALLOW], "PATCH");
    }
}
