//! `GET /User/{customerRegistrationId}` (and `HEAD`): one v4 call, `GET /v4/Users/{id}/`, whose
//! `data` becomes the legacy `Result` with keys in PascalCase at every depth, the inverse of
//! the update. Errors follow the update's rules; a read has no `Updated` to report.
//!
//! A read changes nothing, so it is the one call shadow mode copies to v4 by default.

use http::{header, Method, Response, StatusCode};
use serde_json::{Map, Value};

use crate::audit::{self, Operation};
use crate::body::Body;
use crate::error::{GatewayError, Reply};
use crate::legacy::user_api::{v4_failure, Envelope, ErrorEntry};
use crate::legacy::{json, Family};
use crate::mapping::user_api::Read;
use crate::metrics::Metrics;
use crate::request;
use crate::routes::Target;
use crate::routes::SHADOW_OF;
use crate::runtime::Runtime;
use crate::translate::case;
use crate::translate::envelope::EnvelopeError;
use crate::translate::path;
use crate::upstream::{Call, UpstreamError};

pub async fn handle(
    rt: &Runtime,
    metrics: &Metrics,
    parts: &http::request::Parts,
    raw_id: &str,
    target: Target<'_>,
) -> Response<Body> {
    let ua = &rt.mappings.user_api;
    let read = &ua.read;
    let request_id = request::request_id(&parts.headers);
    let sent = path::as_sent(raw_id);
    let reply = Reply {
        request_id: &request_id,
        customer_id: Some(&sent),
        action: None,
        read: true,
    };
    // Headers before the id: a client without a token gets its 401 whatever else is wrong.
    let mut headers = match super::forward_headers(ua, &parts.headers, &request_id) {
        Ok(h) => h,
        Err(e) => return e.into_response(Family::UserApi, &reply, &rt.mappings),
    };
    let id = match path::decode_id(raw_id) {
        Ok(id) => id,
        Err(e) => {
            return GatewayError::BadId(e).into_response(Family::UserApi, &reply, &rt.mappings)
        }
    };
    // No body goes to v4.
    headers.remove(header::CONTENT_TYPE);
    if let Some(v) = target
        .shadow_of
        .and_then(|s| http::HeaderValue::from_str(s).ok())
    {
        headers.insert(SHADOW_OF, v);
    }
    let mut v4_path = read.path.render(Some(&id));
    match read.v4_query(parts.uri.query()) {
        Ok(Some(q)) => {
            v4_path.push('?');
            v4_path.push_str(&q);
        }
        Ok(None) => {}
        Err((field, ty)) => {
            let e = GatewayError::WrongType {
                field,
                expected: ty.name().to_string(),
            };
            return e.into_response(Family::UserApi, &reply, &rt.mappings);
        }
    }
    let call = Call {
        deadline: target.deadline,
        method: read.method.clone(),
        path: v4_path,
        headers,
        body: None,
        label: "read",
    };
    let result = target.upstream.v4(call).await;
    let answer = match result {
        Ok(a) if a.is_success() => match user_result(read, a.data, &id) {
            Ok(user) => Ok((a.status, user)),
            Err(e) => Err(failure_of_gateway(rt, GatewayError::Upstream(e))),
        },
        Ok(a) => {
            let secrets = crate::redact::authorization_secrets(&parts.headers);
            Err(v4_failure(&rt.mappings, a, &secrets, None))
        }
        Err(e) => Err(failure_of_gateway(rt, GatewayError::Upstream(e))),
    };
    // Not for a shadow copy: the legacy backend answered that read (see the update).
    if target.shadow_of.is_none() {
        let (outcome, status) = match &answer {
            Ok((s, _)) => ("applied", *s),
            Err((s, _)) => ("failed", s.as_u16()),
        };
        audit::record_all(
            metrics,
            &rt.mappings.events,
            &read.events,
            &Operation {
                route: &read.name,
                legacy_event: "",
                request_id: &request_id,
                customer_id: Some(&id),
                outcome,
                status,
            },
        );
    }
    match answer {
        Ok((status, user)) => json(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            &Envelope {
                code: 0,
                errors: vec![],
                result: user,
                session_id: None,
                request_id,
            },
        ),
        Err((status, entry)) => json(
            status,
            &Envelope {
                code: status.as_u16(),
                errors: vec![entry],
                result: crate::legacy::user_api::ResultBody {
                    customer_registration_id: sent,
                    updated: None,
                    applied: None,
                    not_attempted: None,
                },
                session_id: None,
                request_id,
            },
        ),
    }
}

fn failure_of_gateway(rt: &Runtime, e: GatewayError) -> (StatusCode, ErrorEntry) {
    (e.status(), e.user_api_entry(&rt.mappings))
}

/// v4's `data` as the legacy `Result`: keys PascalCase at every depth, the mapping's renames
/// on the top-level fields, and `CustomerRegistrationId` the id as the client asked for it.
/// A success without a user object is not a usable v4 answer.
pub fn user_result(read: &Read, data: Option<Value>, id: &str) -> Result<Value, UpstreamError> {
    let invalid = || UpstreamError::Invalid(EnvelopeError::NotEnvelope);
    let Some(Value::Object(user)) = data else {
        return Err(invalid());
    };
    let mut renamed = Map::new();
    for (k, v) in user {
        let key = read.rename.get(&k).cloned().unwrap_or(k);
        if renamed.insert(key, v).is_some() {
            return Err(invalid());
        }
    }
    let Value::Object(mut user) = case::to_pascal(Value::Object(renamed)).map_err(|_| invalid())?
    else {
        return Err(invalid());
    };
    user.insert(
        "CustomerRegistrationId".to_string(),
        Value::String(id.to_string()),
    );
    Ok(Value::Object(user))
}

/// `HEAD` is answered like `GET`; the server sends no body for it.
pub fn is_read(read: &Read, method: &Method) -> bool {
    *method == read.method || *method == Method::HEAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Mappings;
    use serde_json::json;

    #[test]
    fn keys_become_pascal_case_at_every_depth() {
        let m = Mappings::embedded().unwrap();
        let v = user_result(
            &m.user_api.read,
            Some(
                json!({"customerRegistrationId": "1001", "firstName": "Alice",
                "metadata": {"newsLetter": true, "favouriteTeams": [{"teamName": "x"}]}}),
            ),
            "1001",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"CustomerRegistrationId": "1001", "FirstName": "Alice",
                "Metadata": {"NewsLetter": true, "FavouriteTeams": [{"TeamName": "x"}]}})
        );
    }

    #[test]
    fn renames_apply_before_case_and_a_missing_user_is_invalid() {
        let mut read = Mappings::embedded().unwrap().user_api.read.clone();
        read.rename.insert("mail".into(), "Email".into());
        let v = user_result(&read, Some(json!({"mail": "a@b.test"})), "7").unwrap();
        assert_eq!(
            v,
            json!({"Email": "a@b.test", "CustomerRegistrationId": "7"})
        );
        assert!(user_result(&read, None, "7").is_err());
        assert!(user_result(&read, Some(json!([1])), "7").is_err());
        assert!(user_result(&read, Some(json!({"a": 1, "A": 2})), "7").is_err());
    }
}
