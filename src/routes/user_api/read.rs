//! `GET /User/{customerRegistrationId}` (and `HEAD`): one v4 call, `GET /v4/Users/{id}/`, whose
//! `data` becomes the legacy `Result` with keys in PascalCase at every depth, the inverse of
//! the update. Errors follow the update's rules; a read has no `Updated` to report.
//!
//! A read changes nothing, so it is the one call shadow mode copies to v4 by default.

use http::{header, Method, Response, StatusCode};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::audit::{self, AuditLine};
use crate::body::Body;
use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::legacy::json;
use crate::legacy::user_api::{v4_failure, Envelope, ErrorEntry};
use crate::mapping::user_api::Read;
use crate::metrics::Metrics;
use crate::routes::Target;
use crate::routes::SHADOW_OF;
use crate::runtime::Runtime;
use crate::translate::case;
use crate::translate::envelope::EnvelopeError;
use crate::translate::key::{push_json_str, Case};
use crate::translate::path;
use crate::translate::rekey::{Key, KeySeed, Rekey};
use crate::upstream::{Call, UpstreamError};

pub async fn handle(
    rt: &Runtime,
    metrics: &Metrics,
    ctx: &RequestContext,
    parts: &http::request::Parts,
    target: Target<'_>,
) -> Result<Response<Body>, GatewayError> {
    let ua = &rt.mappings.user_api;
    let read = &ua.read;
    let request_id = ctx.request_id();
    // Headers before the id: a client without a token gets its 401 whatever else is wrong.
    let mut headers = super::forward_headers(ua, &parts.headers, request_id)?;
    let id = path::decode_id(ctx.raw_id.as_deref().unwrap_or("")).map_err(GatewayError::BadId)?;
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
            return Err(GatewayError::WrongType {
                field,
                expected: ty.name().to_string(),
            })
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
        Ok(a) if a.is_success() => match user_result(read, a.data.as_deref(), &id) {
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
            &AuditLine {
                route: &read.name,
                legacy_event: "",
                request_id,
                customer_id: Some(&id),
                outcome,
                status,
            },
        );
    }
    Ok(match answer {
        Ok((status, user)) => json(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            &Envelope {
                code: 0,
                errors: vec![],
                result: user,
                session_id: None,
                request_id: request_id.to_string(),
            },
        ),
        Err((status, entry)) => json(
            status,
            &Envelope {
                code: status.as_u16(),
                errors: vec![entry],
                result: crate::legacy::user_api::ResultBody {
                    customer_registration_id: id,
                    updated: None,
                    applied: None,
                    not_attempted: None,
                },
                session_id: None,
                request_id: request_id.to_string(),
            },
        ),
    })
}

fn failure_of_gateway(rt: &Runtime, e: GatewayError) -> (StatusCode, ErrorEntry) {
    (e.status(), e.user_api_entry(&rt.mappings))
}

/// v4's `data` as the legacy `Result`: keys PascalCase at every depth, the mapping's renames
/// on the top-level fields, and `CustomerRegistrationId` the id as the client asked for it
/// (written first). A success without a user object is not a usable v4 answer.
///
/// `data` is copied from v4's text with its keys recased on the way ([`rekey`]); anything
/// the copy is unsure of (keys that collide, a key twice, a body that is not an object) is
/// left to the tree reading, [`user_result_tree`], which decides.
pub fn user_result(
    read: &Read,
    data: Option<&str>,
    id: &str,
) -> Result<Box<RawValue>, UpstreamError> {
    let invalid = || UpstreamError::Invalid(EnvelopeError::NotEnvelope);
    let data = data.ok_or_else(invalid)?;
    if let Some(copied) = copy_user(read, data, id) {
        return Ok(copied);
    }
    let user = serde_json::from_str(data).map_err(|_| invalid())?;
    let user = user_result_tree(read, user, id)?;
    serde_json::value::to_raw_value(&user).map_err(|_| invalid())
}

/// The tree reading of [`user_result`].
pub fn user_result_tree(read: &Read, data: Value, id: &str) -> Result<Value, UpstreamError> {
    let invalid = || UpstreamError::Invalid(EnvelopeError::NotEnvelope);
    let Value::Object(user) = data else {
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
    user.insert(ID_KEY.to_string(), Value::String(id.to_string()));
    Ok(Value::Object(user))
}

const ID_KEY: &str = "CustomerRegistrationId";

/// Top-level keys of a user past which the copy leaves the answer to the tree reading (its
/// keys are compared by a scan).
const COPY_KEYS: usize = 64;

/// The one-pass reading of [`user_result`]; `None`: the tree reading decides.
fn copy_user(read: &Read, data: &str, id: &str) -> Option<Box<RawValue>> {
    let mut out = Vec::with_capacity(data.len() + id.len() + 32);
    out.extend_from_slice(b"{\"CustomerRegistrationId\":");
    push_json_str(&mut out, id);
    let mut de = serde_json::Deserializer::from_str(data);
    let mut top = User {
        read,
        out,
        rk: Rekey::new(Case::Pascal),
    };
    (&mut de).deserialize_map(UserVisitor(&mut top)).ok()?;
    de.end().ok()?;
    top.out.push(b'}');
    let text = String::from_utf8(top.out).ok()?;
    RawValue::from_string(text).ok()
}

struct User<'r, 'de> {
    read: &'r Read,
    out: Vec<u8>,
    rk: Rekey<'de>,
}

struct UserVisitor<'t, 'r, 'de>(&'t mut User<'r, 'de>);

impl<'de> Visitor<'de> for UserVisitor<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a user object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let top = self.0;
        let step = || de::Error::custom("step aside");
        let mut keys: Vec<(usize, usize)> = Vec::new();
        let mut id_seen = false;
        while let Some(Key(key)) = map.next_key_seed(KeySeed)? {
            let name = top
                .read
                .rename
                .get(key.as_ref())
                .map_or(&*key, String::as_str);
            let at = top.out.len();
            top.out.push(b',');
            let ks = top.out.len();
            Case::Pascal.write(&mut top.out, name);
            let ke = top.out.len();
            let new = &top.out[ks..ke];
            if new == b"\"CustomerRegistrationId\"" {
                // The id as the client asked for it stands in for v4's.
                top.out.truncate(at);
                if std::mem::replace(&mut id_seen, true) {
                    return Err(step());
                }
                map.next_value::<de::IgnoredAny>()?;
                continue;
            }
            if keys.len() >= COPY_KEYS || keys.iter().any(|&(s, e)| &top.out[s..e] == new) {
                return Err(step());
            }
            keys.push((ks, ke));
            top.out.push(b':');
            map.next_value_seed(top.rk.seed(&mut top.out, &|_| true))?;
        }
        Ok(())
    }
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

    fn result(read: &Read, data: Option<Value>, id: &str) -> Result<Value, UpstreamError> {
        let text = data.map(|d| d.to_string());
        let raw = user_result(read, text.as_deref(), id)?;
        Ok(serde_json::from_str(raw.get()).unwrap())
    }

    #[test]
    fn keys_become_pascal_case_at_every_depth() {
        let m = Mappings::embedded().unwrap();
        let v = result(
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
        let v = result(&read, Some(json!({"mail": "a@b.test"})), "7").unwrap();
        assert_eq!(
            v,
            json!({"Email": "a@b.test", "CustomerRegistrationId": "7"})
        );
        assert!(result(&read, None, "7").is_err());
        assert!(result(&read, Some(json!([1])), "7").is_err());
        assert!(result(&read, Some(json!({"a": 1, "A": 2})), "7").is_err());
        assert!(result(&read, Some(json!({"mail": 1, "email": 2})), "7").is_err());
    }

    /// The copy and the tree reading give the same user, whatever v4 sends; where v4 repeats
    /// a key, the tree's reading (the last value) is the answer.
    #[test]
    fn the_copy_is_the_tree_reading() {
        let read = Mappings::embedded().unwrap().user_api.read.clone();
        for data in [
            r#"{"customerRegistrationId":"1001","firstName":"A\"b","n":[1,2.5,null],"m":{"x_y":{"IPAddress":1}}}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"CustomerRegistrationId":"x","customerRegistrationId":"y"}"#,
            r#"{"m":{"a":1,"a":2}}"#,
            r#"{}"#,
        ] {
            let tree = serde_json::from_str(data)
                .map_err(|_| ())
                .and_then(|v| user_result_tree(&read, v, "7").map_err(|_| ()));
            let copy = user_result(&read, Some(data), "7")
                .map(|r| serde_json::from_str::<Value>(r.get()).unwrap())
                .map_err(|_| ());
            assert_eq!(copy, tree, "{data}");
        }
    }
}
