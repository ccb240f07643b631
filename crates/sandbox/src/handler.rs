//! One request through the sandbox, in the order v4 checks things: route (404/405), tenant
//! headers (E400), media type and body size (415/413), input model (E400_00), then the user
//! store (E500_01 and the workflow errors), the event log, and the envelope.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};

use super::envelope::{with_body, Failure, Success};
use super::input;
use super::log::Operation;
use super::routes::{self, Route};
use super::Sandbox;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Larger bodies get `413 E413`; no v4 body comes close.
pub(crate) const MAX_BODY_BYTES: usize = 1 << 20;

/// Required on every v4 call (SPEC 1.1). The sandbox checks presence only: it verifies no
/// token, and the tenant values select nothing.
const TENANT_HEADERS: [&str; 5] = [
    "authorization",
    "x-sourcesystem",
    "x-clientcode",
    "x-papercode",
    "x-clientgroupcode",
];

/// The whole sandbox for one request. Generic over the body so unit tests need no socket.
pub(crate) async fn handle<B>(sandbox: &Sandbox, req: Request<B>) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let method = req.method().clone();
    let (name, res) = match routes::resolve(req.method(), req.uri().path()) {
        Err(e) => ("unmatched", Failure::from(e).into_response()),
        Ok(route) => (route.name(), answer(sandbox, route, req).await),
    };
    // Method, route name and status only: never the path's id, a header or a body.
    tracing::debug!(%method, route = name, status = res.status().as_u16(), "sandbox request");
    res
}

async fn answer<B>(sandbox: &Sandbox, route: Route, req: Request<B>) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match route {
        Route::Health => with_body(
            StatusCode::OK,
            "application/json",
            Bytes::from_static(br#"{"status":"ok"}"#),
        ),
        Route::Events => {
            let mut lines = Vec::new();
            for record in sandbox.events() {
                lines.extend_from_slice(record.to_string().as_bytes());
                lines.push(b'\n');
            }
            with_body(StatusCode::OK, "application/x-ndjson", lines.into())
        }
        Route::Outbox => {
            let mut lines = Vec::new();
            for mail in sandbox.outbox() {
                lines.extend_from_slice(mail.to_string().as_bytes());
                lines.push(b'\n');
            }
            with_body(StatusCode::OK, "application/x-ndjson", lines.into())
        }
        Route::Reset => {
            sandbox.reset();
            let mut res = Response::new(Full::new(Bytes::new()));
            *res.status_mut() = StatusCode::NO_CONTENT;
            res
        }
        v4 => match call(sandbox, v4, req).await {
            Ok(success) => success.into_response(),
            Err(failure) => failure.into_response(),
        },
    }
}

/// A v4 call; each arm validates its input fully before touching the store.
async fn call<B>(sandbox: &Sandbox, route: Route, req: Request<B>) -> Result<Success, Failure>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    check_tenant_headers(req.headers())?;
    match route {
        Route::ChangePassword(id) => {
            let password = input::password_change(&json_body(req).await?)?;
            sandbox.transact(Operation::ChangePassword, |s| {
                s.set_password(&id, password).map(|()| (id.clone(), ()))
            })?;
            Ok(Success::new("S200_11", "Update password completed."))
        }
        Route::ChangeEmail(id) => {
            let email = input::email_change(&json_body(req).await?)?;
            sandbox.transact(Operation::ChangeEmail, |s| {
                s.set_email(&id, email).map(|()| (id.clone(), ()))
            })?;
            Ok(Success::new("S200_12", "Update Email completed."))
        }
        Route::UpdateUser(id) => {
            let update = input::user_update(&json_body(req).await?)?;
            let user = sandbox.transact(Operation::GetOrUpdateUser, |s| {
                s.update(&id, update).map(|u| (id.clone(), u.to_json()))
            })?;
            Ok(Success::new("S200_10", "Update user completed.").with_data(user))
        }
        Route::GetUser(id) => {
            let user = sandbox.transact(Operation::GetOrUpdateUser, |s| {
                s.user(&id).map(|u| (id.clone(), u.to_json()))
            })?;
            Ok(Success::new("S200_01", "Get user completed.").with_data(user))
        }
        Route::StartForgotPassword => {
            let (login, return_url) = input::forgot_start(&json_body(req).await?)?;
            let token = uuid::Uuid::new_v4().simple().to_string();
            sandbox.transact(Operation::StartForgotPassword, |s| {
                s.start_reset(&login, token.clone()).map(|user| (user, ()))
            })?;
            let link = return_url.map(|u| {
                let sep = if u.contains('?') { '&' } else { '?' };
                format!("{u}{sep}id={token}")
            });
            sandbox.send_mail(
                serde_json::json!({"to": login, "encryptedEventId": token, "link": link}),
            );
            Ok(Success::new("S200_08", "Start ForgotPassword completed.")
                .with_data(serde_json::json!({ "encryptedEventId": token })))
        }
        Route::FinishForgotPassword => {
            let (token, password) = input::forgot_finish(&json_body(req).await?)?;
            sandbox.transact(Operation::FinishForgotPassword, |s| {
                s.finish_reset(&token, password).map(|user| (user, ()))
            })?;
            Ok(Success::new("S200_09", "Finish ForgotPassword completed."))
        }
        Route::Events | Route::Outbox | Route::Reset | Route::Health => Err(Failure::NotFound),
    }
}

/// Present and non-blank; values may be any bytes (they are never read as text or logged).
fn check_tenant_headers(headers: &HeaderMap) -> Result<(), Failure> {
    let present = |name: &str| {
        headers
            .get(name)
            .is_some_and(|v| !v.as_bytes().trim_ascii().is_empty())
    };
    if TENANT_HEADERS.iter().all(|h| present(h)) {
        Ok(())
    } else {
        Err(Failure::MissingHeaders)
    }
}

/// The body of a JSON call: JSON media type (as ASP.NET's `[FromBody]` insists), at most
/// `MAX_BODY_BYTES`, refused early when `Content-Length` already says it is too big.
async fn json_body<B>(req: Request<B>) -> Result<Bytes, Failure>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if !is_json(req.headers()) {
        return Err(Failure::UnsupportedMediaType);
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(Failure::PayloadTooLarge);
    }
    match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Failure::PayloadTooLarge),
        Err(_) => Err(Failure::InvalidInput(
            "The request body could not be read.".into(),
        )),
    }
}

/// `application/json` or any `application/*+json`, parameters (charset) allowed.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::Method;
    use serde_json::Value;

    use super::*;

    fn sandbox() -> Arc<Sandbox> {
        Sandbox::new(crate::codes::shipped())
    }

    fn request(method: Method, path: &str) -> http::request::Builder {
        let mut b = Request::builder().method(method).uri(path);
        for h in TENANT_HEADERS {
            b = b.header(h, "x");
        }
        b.header(CONTENT_TYPE, "application/json")
    }

    async fn send(sb: &Sandbox, req: Request<Full<Bytes>>) -> (StatusCode, Value) {
        let res = handle(sb, req).await;
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn without_a_socket() {
        let sb = sandbox();
        let req = request(Method::PATCH, "/v4/Users/1001/Password")
            .body(Full::new(Bytes::from_static(
                br#"{"password":"Newpass123"}"#,
            )))
            .unwrap();
        let (status, v) = send(&sb, req).await;
        assert_eq!(status, 200);
        assert_eq!(v["message"]["code"], "UsersOrchestrator_S200_11");
        // GetById, then the password change: two v4 events each.
        let codes: Vec<Value> = sb.events().iter().map(|e| e["eventId"].clone()).collect();
        assert_eq!(codes, [4601, 4001, 4609, 4010]);
    }

    #[tokio::test]
    async fn media_type_and_size() {
        let sb = sandbox();
        let req = Request::builder()
            .method(Method::PATCH)
            .uri("/v4/Users/1001/Password")
            .header("authorization", "x")
            .header("x-sourcesystem", "x")
            .header("x-clientcode", "x")
            .header("x-papercode", "x")
            .header("x-clientgroupcode", "x")
            .header(CONTENT_TYPE, "text/plain")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        assert_eq!(send(&sb, req).await.0, 415);

        let big = Bytes::from(vec![b' '; MAX_BODY_BYTES + 1]);
        let req = request(Method::PATCH, "/v4/Users/1001/Password")
            .body(Full::new(big))
            .unwrap();
        let (status, v) = send(&sb, req).await;
        assert_eq!(status, 413);
        assert_eq!(v["message"]["code"], "UsersOrchestrator_E413");
    }

    #[test]
    fn json_media_types() {
        let h = |v: &'static str| {
            let mut m = HeaderMap::new();
            m.insert(CONTENT_TYPE, http::HeaderValue::from_static(v));
            is_json(&m)
        };
        assert!(h("application/json"));
        assert!(h("Application/JSON; charset=utf-8"));
        assert!(h("application/problem+json"));
        assert!(!h("text/json+x"));
        assert!(!h("text/plain"));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn blank_tenant_header_counts_as_missing() {
        let mut m = HeaderMap::new();
        for h in TENANT_HEADERS {
            m.insert(h, http::HeaderValue::from_static("v"));
        }
        assert!(check_tenant_headers(&m).is_ok());
        m.insert("x-papercode", http::HeaderValue::from_static("  "));
        assert_eq!(check_tenant_headers(&m), Err(Failure::MissingHeaders));
    }
}
