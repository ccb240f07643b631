//! Where a [`GatewayError`] becomes an answer, in the shape of the caller's API: the one
//! place errors are rendered (`error.rs` decides their messages, statuses and codes; the
//! shapes' own modules write the fields).
//! The headers an error implies are set here too: `WWW-Authenticate` on a 401,
//! `Retry-After` on a 429, `Connection: close` when the connection cannot carry another
//! request.

use http::Response;

use super::user_api::{Envelope, ResultBody};
use super::{json, Family};
use crate::body::Body;
use crate::error::{AnswerContext, GatewayError};
use crate::mapping::Mappings;

impl GatewayError {
    /// The whole answer, in the shape of the caller's API. (Whether the gateway refused the
    /// call or an upstream failed it is the error's to say: `is_upstream_failure`.)
    pub fn into_response(
        self,
        family: Family,
        ctx: &AnswerContext<'_>,
        mappings: &Mappings,
    ) -> Response<Body> {
        // RFC 9110: a 401 names the scheme that would work; legacy clients renew their
        // token on it.
        let unauthorized = matches!(self, GatewayError::Unauthorized(_));
        let closes = self.closes_connection();
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
        if closes {
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        resp
    }

    fn shaped(
        self,
        family: Family,
        ctx: &AnswerContext<'_>,
        mappings: &Mappings,
    ) -> Response<Body> {
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
