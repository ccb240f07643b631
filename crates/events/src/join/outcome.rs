//! What the joiner hands back: the fate of each pushed record, and the groups that never
//! completed.

use serde_json::Value;

/// What became of one pushed v4 record.
#[derive(Debug, Clone, PartialEq)]
pub enum Joined {
    /// The record completed its group: here is the legacy record.
    Complete(Value),
    /// Held in an open group until the other v4 events arrive.
    Pending,
    /// The open group already holds this v4 event. The first one is kept (it is the one the
    /// legacy record will show); this one is handed back so it can be reported and kept.
    Duplicate {
        code: String,
        correlation_id: String,
        first_line: u64,
        record: Value,
    },
    /// The record can never be joined: it has no correlation id and its legacy event needs
    /// more than one v4 event.
    Unmatched(Unmatched),
}

/// What became of one pushed v4 line ([`Joiner::push_line`](super::Joiner::push_line)).
#[derive(Debug, Clone, PartialEq)]
pub enum Pushed {
    /// The record completed its group; the legacy record was appended to the output.
    Complete,
    /// Held in an open group until the other v4 events arrive.
    Pending,
    /// The open group already holds this v4 event: the first one is kept, this line is the
    /// caller's to report and keep.
    Duplicate {
        code: String,
        correlation_id: String,
        first_line: u64,
    },
    /// The record can never be joined (no correlation id, several v4 events).
    Unmatched(Unmatched),
}

/// Why a group was written out as unmatched before the end of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// More groups were open than `max_open_groups` (the limit).
    OpenGroups(usize),
    /// The group stayed open longer than `max_group_age` records (the limit).
    Age(u64),
}

/// A group that did not complete: which one, what is missing, and its v4 records as read
/// (in input order, without their line ends).
#[derive(Debug, Clone, PartialEq)]
pub struct Unmatched {
    pub legacy_code: String,
    pub correlation_id: Option<String>,
    pub first_line: u64,
    pub missing: Vec<String>,
    pub records: Vec<Box<str>>,
    /// Set when a limit flushed the group before the input ended.
    pub flushed: Option<Flushed>,
}

impl std::fmt::Display for Unmatched {
    /// The one line the report stream gets for this group.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cid = self.correlation_id.as_deref().unwrap_or("(none)");
        write!(
            f,
            "line {}: unmatched {} group, correlationId {cid}: missing {}",
            self.first_line,
            self.legacy_code,
            self.missing.join(", ")
        )?;
        match self.flushed {
            Some(Flushed::OpenGroups(n)) => {
                write!(f, " (flushed early: more than {n} groups open)")
            }
            Some(Flushed::Age(n)) => write!(f, " (flushed early: open for more than {n} records)"),
            None => Ok(()),
        }
    }
}
