//! The event codes the sandbox logs, as plain data handed in by whoever starts it: for each
//! legacy event, the v4 events v4 writes in its place. The sandbox holds a copy rather than a
//! reference to the gateway's event table, so nothing it logs depends on the gateway's code.

use std::collections::HashMap;

/// One v4 event as the log writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCode {
    /// `AUTHSYSTEM_USER_CHANGEPASSWORD`: the record's `eventTypeCode`.
    pub code: String,
    /// `4609`: the record's `eventId`.
    pub id: u32,
    /// `authsystem` or `subscribe`: the system that records it, the record's `side`.
    pub side: String,
}

impl EventCode {
    pub fn new(code: impl Into<String>, id: u32, side: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            id,
            side: side.into(),
        }
    }
}

/// Legacy event code (`CHGPWD`) → its v4 events, in the order v4 writes them. A code missing
/// here is logged as nothing, the way a deployment's own, smaller table would have it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventCodes {
    by_legacy: HashMap<String, Vec<EventCode>>,
}

impl EventCodes {
    /// Sets the v4 events of one legacy event, replacing any given before.
    pub fn insert(&mut self, legacy_code: impl Into<String>, v4: Vec<EventCode>) {
        self.by_legacy.insert(legacy_code.into(), v4);
    }

    pub fn get(&self, legacy_code: &str) -> Option<&[EventCode]> {
        self.by_legacy.get(legacy_code).map(Vec::as_slice)
    }
}

impl<K: Into<String>> FromIterator<(K, Vec<EventCode>)> for EventCodes {
    fn from_iter<T: IntoIterator<Item = (K, Vec<EventCode>)>>(iter: T) -> Self {
        let mut codes = Self::default();
        for (legacy, v4) in iter {
            codes.insert(legacy, v4);
        }
        codes
    }
}

/// The codes of the four legacy events the sandbox logs, as `mappings/events.toml` ships
/// them: the unit tests' table (the gateway's own table is tested over HTTP in its tests).
#[cfg(test)]
pub(crate) fn shipped() -> EventCodes {
    let ev = EventCode::new;
    [
        (
            "GETUSERBYID",
            vec![
                ev("AUTHSYSTEM_USER_GETBYID", 4601, "authsystem"),
                ev("SUBSCRIBE_USER_GETBYID", 4001, "subscribe"),
            ],
        ),
        (
            "CHGPWD",
            vec![
                ev("AUTHSYSTEM_USER_CHANGEPASSWORD", 4609, "authsystem"),
                ev("SUBSCRIBE_USER_CHANGEPASSWORD", 4010, "subscribe"),
            ],
        ),
        (
            "CHGEMAIL",
            vec![
                ev("AUTHSYSTEM_USER_CHANGEEMAIL", 4610, "authsystem"),
                ev("SUBSCRIBE_USER_CHANGEEMAIL", 4011, "subscribe"),
            ],
        ),
        (
            "PWDREQ",
            vec![ev("SUBSCRIBE_USER_STARTFORGOTPASSWORD", 4009, "subscribe")],
        ),
    ]
    .into_iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_entry_of_a_code_wins() {
        let codes: EventCodes = [
            ("PWDREQ", vec![EventCode::new("OLD", 1, "subscribe")]),
            ("PWDREQ", vec![EventCode::new("NEW", 2, "subscribe")]),
        ]
        .into_iter()
        .collect();
        assert_eq!(codes.get("PWDREQ").unwrap()[0].code, "NEW");
        assert!(codes.get("CHGPWD").is_none());
    }
}
