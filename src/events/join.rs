//! to-legacy grouping: v4 records arrive one by one, in any order and interleaved with other
//! groups; the [`Joiner`] holds each open group until every v4 event of its legacy event has
//! been seen, then hands back the one legacy record. Only open groups are held, so memory is
//! bounded by how many groups are in flight, never by the input size.
//!
//! A group is keyed by legacy event *and* correlation id: one request may cause several legacy
//! events under one correlation id (a `PUT /User` that changes password and e-mail), and those
//! are separate legacy records. Once a group completes it is forgotten, so a correlation id
//! seen again later opens a new group.

use std::collections::hash_map::{Entry, HashMap};

use serde_json::{Map, Value};

use super::record::{
    as_object, convert_fields, identify, Case, RecordError, LEGACY_CODE, LEGACY_ID, V4_CODE,
    V4_CORRELATION, V4_ID, V4_SIDE,
};
use crate::mapping::events::LegacyEvent;
use crate::mapping::EventTable;

/// Joins v4 records into legacy records. Feed records with [`Joiner::push`]; at end of input,
/// [`Joiner::finish`] returns the groups that never completed.
#[derive(Debug)]
pub struct Joiner<'t> {
    table: &'t EventTable,
    open: HashMap<GroupKey, OpenGroup<'t>>,
    peak_open: usize,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct GroupKey {
    legacy_id: u32,
    correlation_id: String,
}

#[derive(Debug)]
struct OpenGroup<'t> {
    event: &'t LegacyEvent,
    first_line: u64,
    /// One slot per v4 event of the legacy event, in table order.
    slots: Vec<Option<Member>>,
    filled: usize,
}

/// One v4 record held in an open group: as read (for the unmatched output) and with its other
/// fields already in PascalCase (checked when it arrived, so an error names its own line).
#[derive(Debug)]
struct Member {
    line: u64,
    raw: Value,
    fields: Map<String, Value>,
}

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

/// A group that did not complete: which one, what is missing, and its v4 records as read
/// (in input order).
#[derive(Debug, Clone, PartialEq)]
pub struct Unmatched {
    pub legacy_code: String,
    pub correlation_id: Option<String>,
    pub first_line: u64,
    pub missing: Vec<String>,
    pub records: Vec<Value>,
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
        )
    }
}

impl<'t> Joiner<'t> {
    pub fn new(table: &'t EventTable) -> Self {
        Self {
            table,
            open: HashMap::new(),
            peak_open: 0,
        }
    }

    /// Takes one v4 record read at `line` (1-based, used in reports). An unknown event code is
    /// `Err(RecordError::Unknown)`: the caller still has the raw text to pass through.
    pub fn push(&mut self, record: Value, line: u64) -> Result<Joined, RecordError> {
        let table = self.table;
        let obj = as_object(&record)?;
        let (event, pos) = identify(
            obj,
            V4_CODE,
            V4_ID,
            |c| table.legacy_of_v4(c),
            |i| table.legacy_of_v4_id(i),
            |(e, p)| e.v4[*p].id,
        )?;
        let correlation_id = correlation_id(obj)?;
        let fields = convert_fields(
            obj,
            Case::Pascal,
            &[V4_CODE, V4_ID, V4_SIDE],
            &[LEGACY_CODE, LEGACY_ID],
        )?;

        if event.v4.len() == 1 {
            return Ok(Joined::Complete(legacy_record(event, [fields])));
        }
        let Some(correlation_id) = correlation_id else {
            return Ok(Joined::Unmatched(Unmatched {
                legacy_code: event.code.clone(),
                correlation_id: None,
                first_line: line,
                missing: missing(event, |i| i == pos),
                records: vec![record],
            }));
        };

        let key = GroupKey {
            legacy_id: event.id,
            correlation_id,
        };
        let member = Member {
            line,
            raw: record,
            fields,
        };
        let mut entry = match self.open.entry(key) {
            Entry::Occupied(entry) => entry,
            Entry::Vacant(vacant) => {
                let mut slots: Vec<Option<Member>> = event.v4.iter().map(|_| None).collect();
                slots[pos] = Some(member);
                vacant.insert(OpenGroup {
                    event,
                    first_line: line,
                    slots,
                    filled: 1,
                });
                self.peak_open = self.peak_open.max(self.open.len());
                return Ok(Joined::Pending);
            }
        };
        if entry.get().slots[pos].is_some() {
            return Ok(Joined::Duplicate {
                code: event.v4[pos].code.clone(),
                correlation_id: entry.key().correlation_id.clone(),
                first_line: entry.get().first_line,
                record: member.raw,
            });
        }
        let group = entry.get_mut();
        group.slots[pos] = Some(member);
        group.filled += 1;
        if group.filled < group.slots.len() {
            return Ok(Joined::Pending);
        }
        let group = entry.remove();
        Ok(Joined::Complete(legacy_record(
            group.event,
            group.slots.into_iter().flatten().map(|m| m.fields),
        )))
    }

    /// Groups open right now.
    pub fn open_groups(&self) -> usize {
        self.open.len()
    }

    /// The most groups that were open at once: what the joiner's memory was bounded by.
    pub fn peak_open(&self) -> usize {
        self.peak_open
    }

    /// Ends the input: every group still open, oldest first.
    pub fn finish(self) -> Vec<Unmatched> {
        let mut left: Vec<Unmatched> = self
            .open
            .into_iter()
            .map(|(key, group)| {
                let slots = &group.slots;
                let missing = missing(group.event, |i| slots[i].is_some());
                let mut members: Vec<Member> = group.slots.into_iter().flatten().collect();
                members.sort_by_key(|m| m.line);
                Unmatched {
                    legacy_code: group.event.code.clone(),
                    correlation_id: Some(key.correlation_id),
                    first_line: group.first_line,
                    missing,
                    records: members.into_iter().map(|m| m.raw).collect(),
                }
            })
            .collect();
        left.sort_by_key(|u| u.first_line);
        left
    }
}

/// The correlation id as a string; a number is accepted (and written as its digits), null
/// counts as absent, anything else makes the record invalid.
fn correlation_id(obj: &Map<String, Value>) -> Result<Option<String>, RecordError> {
    match obj.get(V4_CORRELATION) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(RecordError::Invalid(format!(
            "`{V4_CORRELATION}` is not a string: {other}"
        ))),
    }
}

/// The v4 codes of `event` whose position is not `seen`.
fn missing(event: &LegacyEvent, seen: impl Fn(usize) -> bool) -> Vec<String> {
    event
        .v4
        .iter()
        .enumerate()
        .filter(|(i, _)| !seen(*i))
        .map(|(_, e)| e.code.clone())
        .collect()
}

/// The legacy record of a complete group: the members' fields merged in table order, the
/// first value of a key winning, then the legacy code and id. Table order rather than arrival
/// order, so the result does not depend on how the v4 streams were interleaved.
fn legacy_record(
    event: &LegacyEvent,
    members: impl IntoIterator<Item = Map<String, Value>>,
) -> Value {
    let mut out = Map::new();
    for fields in members {
        for (k, v) in fields {
            out.entry(k).or_insert(v);
        }
    }
    out.insert(LEGACY_CODE.into(), Value::String(event.code.clone()));
    out.insert(LEGACY_ID.into(), Value::from(event.id));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> EventTable {
        EventTable::embedded().expect("shipped table loads")
    }

    fn v4(code: &str, cid: &str, extra: Value) -> Value {
        let mut v = json!({"eventTypeCode": code, "correlationId": cid});
        if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        v
    }

    #[test]
    fn table_order_wins_whatever_the_arrival_order() {
        let t = table();
        let mut j = Joiner::new(&t);
        let sub = v4(
            "SUBSCRIBE_USER_CHANGEPASSWORD",
            "c",
            json!({"who": "subscribe"}),
        );
        let auth = v4(
            "AUTHSYSTEM_USER_CHANGEPASSWORD",
            "c",
            json!({"who": "auth"}),
        );
        assert_eq!(j.push(sub, 1).unwrap(), Joined::Pending);
        let Joined::Complete(rec) = j.push(auth, 2).unwrap() else {
            panic!("group should complete")
        };
        assert_eq!(
            rec,
            json!({"EventTypeCode": "CHGPWD", "EventId": 22, "CorrelationId": "c", "Who": "auth"})
        );
        assert_eq!((j.open_groups(), j.peak_open()), (0, 1));
    }

    #[test]
    fn duplicate_is_handed_back_and_the_first_kept() {
        let t = table();
        let mut j = Joiner::new(&t);
        let a1 = v4("AUTHSYSTEM_USER_CHANGEEMAIL", "c", json!({"n": 1}));
        let a2 = v4("AUTHSYSTEM_USER_CHANGEEMAIL", "c", json!({"n": 2}));
        j.push(a1, 1).unwrap();
        let Joined::Duplicate {
            first_line, record, ..
        } = j.push(a2.clone(), 2).unwrap()
        else {
            panic!("duplicate expected")
        };
        assert_eq!((first_line, record), (1, a2));
        let s = v4("SUBSCRIBE_USER_CHANGEEMAIL", "c", json!({}));
        let Joined::Complete(rec) = j.push(s, 3).unwrap() else {
            panic!("group should complete")
        };
        assert_eq!(rec["N"], json!(1));
    }

    #[test]
    fn same_correlation_id_different_events_are_separate_groups() {
        let t = table();
        let mut j = Joiner::new(&t);
        j.push(v4("AUTHSYSTEM_USER_CHANGEEMAIL", "c", json!({})), 1)
            .unwrap();
        j.push(v4("AUTHSYSTEM_USER_CHANGEPASSWORD", "c", json!({})), 2)
            .unwrap();
        assert_eq!(j.open_groups(), 2);
        let left = j.finish();
        assert_eq!(left.len(), 2);
        assert_eq!(left[0].missing, ["SUBSCRIBE_USER_CHANGEEMAIL"]);
        assert_eq!(
            left[1].to_string(),
            "line 2: unmatched CHGPWD group, correlationId c: missing SUBSCRIBE_USER_CHANGEPASSWORD"
        );
    }

    #[test]
    fn no_correlation_id_single_member_completes_multi_member_is_unmatched() {
        let t = table();
        let mut j = Joiner::new(&t);
        let pwdreq = json!({"eventId": 4009, "email": "a@b"});
        assert!(matches!(j.push(pwdreq, 1).unwrap(), Joined::Complete(_)));
        let chg = json!({"eventTypeCode": "SUBSCRIBE_USER_GETBYID"});
        let Joined::Unmatched(u) = j.push(chg, 2).unwrap() else {
            panic!("unmatched expected")
        };
        assert_eq!(
            (u.correlation_id, u.missing),
            (None, vec!["AUTHSYSTEM_USER_GETBYID".to_string()])
        );
        assert_eq!(j.open_groups(), 0);
    }

    #[test]
    fn a_field_that_would_become_event_id_is_refused() {
        let t = table();
        let mut j = Joiner::new(&t);
        let r = v4(
            "SUBSCRIBE_USER_STARTFORGOTPASSWORD",
            "c",
            json!({"EventId": 1}),
        );
        assert!(matches!(j.push(r, 1), Err(RecordError::Invalid(_))));
    }
}
