//! The sandbox's v4 event log: which legacy event each operation stands for, its v4 events
//! from the [`EventCodes`] written as one record each under a shared correlation id, a bound
//! on how many records are kept, and the RFC 3339 timestamps they carry.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::codes::EventCodes;

/// Records kept; the oldest go first, so a long-running sandbox stays small.
pub(crate) const LOG_CAPACITY: usize = 10_000;

/// A successful sandbox operation, named by the legacy events it replaces (SPEC section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    ChangePassword,
    ChangeEmail,
    GetOrUpdateUser,
    StartForgotPassword,
    FinishForgotPassword,
}

impl Operation {
    /// The legacy codes looked up in `mappings/events.toml`, in the order v4 writes their
    /// events. Every `{id}` workflow of v4 starts with its GetById step (its error reads
    /// "There was a problem during the GetById workflow"), so those log GETUSERBYID first.
    /// ForgotPassword/Finish is no `{id}` call; it changes the password, so it logs as one.
    pub fn legacy_codes(self) -> &'static [&'static str] {
        match self {
            Operation::ChangePassword => &["GETUSERBYID", "CHGPWD"],
            Operation::ChangeEmail => &["GETUSERBYID", "CHGEMAIL"],
            Operation::GetOrUpdateUser => &["GETUSERBYID"],
            Operation::StartForgotPassword => &["PWDREQ"],
            Operation::FinishForgotPassword => &["CHGPWD"],
        }
    }
}

/// The newest `capacity` records, oldest first.
#[derive(Debug)]
pub(crate) struct EventLog {
    records: VecDeque<Value>,
    capacity: usize,
}

impl Default for EventLog {
    fn default() -> Self {
        Self::with_capacity(LOG_CAPACITY)
    }
}

impl EventLog {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            records: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Appends one record per v4 event of one legacy event. A table without it (a
    /// deployment's own `events.toml`) logs nothing rather than failing the request.
    pub fn record(
        &mut self,
        table: &EventCodes,
        legacy_code: &str,
        customer_registration_id: &str,
        correlation_id: &str,
        timestamp: &str,
    ) {
        let Some(v4) = table.get(legacy_code) else {
            tracing::warn!(
                legacy = legacy_code,
                "event table has no such legacy event; nothing logged"
            );
            return;
        };
        for ev in v4 {
            self.records.push_back(json!({
                "eventTypeCode": ev.code,
                "eventId": ev.id,
                "customerRegistrationId": customer_registration_id,
                "correlationId": correlation_id,
                "side": ev.side,
                "timestamp": timestamp,
            }));
        }
        while self.records.len() > self.capacity {
            self.records.pop_front();
        }
    }

    pub fn records(&self) -> impl Iterator<Item = &Value> {
        self.records.iter()
    }
}

/// `2024-05-01T12:34:56.789Z`: RFC 3339 in UTC with milliseconds, without a date crate.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn table() -> EventCodes {
        crate::codes::shipped()
    }

    #[test]
    fn timestamps() {
        let at = |s: u64, ms: u64| {
            rfc3339(UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_700_000_000, 0), "2023-11-14T22:13:20.000Z");
        assert_eq!(at(4_102_444_799, 999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn one_record_per_v4_event_sharing_the_correlation_id() {
        let mut log = EventLog::default();
        log.record(&table(), "CHGPWD", "1001", "c1", "t");
        log.record(&table(), "PWDREQ", "1002", "c2", "t");
        let recs: Vec<&Value> = log.records().collect();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0]["eventId"], 4609);
        assert_eq!(recs[0]["side"], "authsystem");
        assert_eq!(recs[1]["eventTypeCode"], "SUBSCRIBE_USER_CHANGEPASSWORD");
        assert_eq!(recs[1]["correlationId"], "c1");
        assert_eq!(recs[2]["eventId"], 4009);
        assert_eq!(recs[2]["customerRegistrationId"], "1002");
    }

    #[test]
    fn id_workflows_start_with_get_by_id() {
        assert_eq!(
            Operation::ChangePassword.legacy_codes(),
            ["GETUSERBYID", "CHGPWD"]
        );
        assert_eq!(
            Operation::ChangeEmail.legacy_codes(),
            ["GETUSERBYID", "CHGEMAIL"]
        );
        assert_eq!(Operation::GetOrUpdateUser.legacy_codes(), ["GETUSERBYID"]);
        assert_eq!(Operation::FinishForgotPassword.legacy_codes(), ["CHGPWD"]);
    }

    #[test]
    fn keeps_only_the_newest() {
        let mut log = EventLog::with_capacity(3);
        for i in 0..4 {
            log.record(&table(), "CHGEMAIL", "1001", &i.to_string(), "t");
        }
        let ids: Vec<&Value> = log.records().map(|r| &r["correlationId"]).collect();
        assert_eq!(ids, ["2", "3", "3"]);
    }

    #[test]
    fn unknown_legacy_event_logs_nothing() {
        let mut log = EventLog::default();
        log.record(&EventCodes::default(), "CHGPWD", "1001", "c", "t");
        assert_eq!(log.records().count(), 0);
    }
}
