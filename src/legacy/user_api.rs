//! The legacy User API answer (SPEC 1.2), field order as the legacy API wrote it:
//! `{"Code","Errors","Result","SessionId","RequestId"}`.

use serde::Serialize;

use crate::error::GatewayError;
use crate::mapping::user_api::ErrorType;
use crate::mapping::{Mappings, V4Failure};
use crate::redact::scrub;
use crate::translate::envelope::V4Answer;

/// The answer to an update whose one part succeeded, the most common answer there is,
/// written directly: byte for byte what serializing its [`Envelope`] writes (a test holds
/// the two together), at a fraction of the cost of serde's field-by-field path.
pub fn updated(id: &str, request_id: &str) -> Vec<u8> {
    const HEAD: &[u8] = br#"{"Code":0,"Errors":[],"Result":{"CustomerRegistrationId":"#;
    const MIDDLE: &[u8] = br#","Updated":true},"SessionId":null,"RequestId":"#;
    let mut out = Vec::with_capacity(HEAD.len() + MIDDLE.len() + id.len() + request_id.len() + 8);
    out.extend_from_slice(HEAD);
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, id);
    out.extend_from_slice(MIDDLE);
    let _ = serde_json::to_writer(&mut out, request_id);
    out.push(b'}');
    out
}

/// Where an error was produced: by v4, or by the gateway before or instead of v4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorSource {
    UsersOrchestrator,
    Gateway,
}

/// `R`: what `Result` holds; the update's [`ResultBody`], or the user for a read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope<R = ResultBody> {
    /// 0 on success, else the HTTP status.
    pub code: u16,
    pub errors: Vec<ErrorEntry>,
    pub result: R,
    /// Always null: v4 returns no session cookie.
    pub session_id: Option<String>,
    pub request_id: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorEntry {
    pub message: String,
    pub code: String,
    #[serde(rename = "Type")]
    pub ty: LegacyType,
    pub error_source: ErrorSource,
    /// The part of a mixed body that failed; only for bodies with more than one part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LegacyType {
    pub id: i64,
    pub code: String,
}

impl From<ErrorType> for LegacyType {
    fn from(t: ErrorType) -> Self {
        Self {
            id: t.id,
            code: t.code,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResultBody {
    /// The id as the client sent it (percent-decoded), even when it was refused; empty for
    /// a path that carries none. Never null: legacy clients read it unconditionally.
    pub customer_registration_id: String,
    /// Absent on a failed read: a read updates nothing, so there is nothing to report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<bool>,
    /// Parts carried out, for bodies with more than one part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<Vec<String>>,
    /// Parts not attempted after a failure, for bodies with more than one part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_attempted: Option<Vec<String>>,
}

impl GatewayError {
    /// The `Errors[]` entry of a User API answer.
    pub fn user_api_entry(&self, mappings: &Mappings) -> ErrorEntry {
        let message = self.to_string();
        let status = self.status().as_u16();
        let ty = mappings.user_api.error_type(&V4Failure {
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
}

/// A v4 failure as the User API reports it: v4's status, its text with this call's secrets
/// scrubbed, its code, and the legacy `Type` the mapping gives that code. `part` names the
/// part of a mixed body that failed.
pub fn v4_failure(
    mappings: &Mappings,
    answer: V4Answer,
    secrets: &[&str],
    part: Option<String>,
) -> (http::StatusCode, ErrorEntry) {
    let text = scrub(&answer.text, secrets);
    let ty = mappings.user_api.error_type(&V4Failure {
        status: answer.status,
        code: mappings.v4.short_code(&answer.code),
        text: &text,
        action: None,
    });
    let status = http::StatusCode::from_u16(answer.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    (
        status,
        ErrorEntry {
            message: text,
            code: answer.code,
            ty: ty.into(),
            error_source: ErrorSource::UsersOrchestrator,
            part,
        },
    )
}

#[cfg(test)]
mod written_tests {
    use super::*;

    #[test]
    fn the_written_success_is_what_serde_writes() {
        for (id, rid) in [
            ("1001", "3f0b0c9e-6a7e-4c1e-9d1a-0a0b0c0d0e0f"),
            ("auth0|abc", "r"),
            ("quote\"d\\ and \u{1}", "é ☃"),
            ("", ""),
        ] {
            let envelope = Envelope {
                code: 0,
                errors: vec![],
                result: ResultBody {
                    customer_registration_id: id.to_string(),
                    updated: Some(true),
                    applied: None,
                    not_attempted: None,
                },
                session_id: None,
                request_id: rid.to_string(),
            };
            assert_eq!(
                String::from_utf8(updated(id, rid)).unwrap(),
                serde_json::to_string(&envelope).unwrap()
            );
        }
    }
}
