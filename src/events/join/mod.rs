//! to-legacy grouping: v4 records arrive one by one, in any order and interleaved with other
//! groups; the [`Joiner`] holds each open group until every v4 event of its legacy event has
//! been seen, then writes the one legacy record. Only open groups are held, and at most
//! [`Limits::max_open_groups`] of them: beyond that (or beyond [`Limits::max_group_age`]
//! records) the oldest open group is flushed as unmatched, so memory is bounded whatever the
//! input.
//!
//! A group is keyed by legacy event *and* correlation id: one request may cause several legacy
//! events under one correlation id (a `PUT /User` that changes password and e-mail), and those
//! are separate legacy records. Once a group completes it is forgotten, so a correlation id
//! seen again later opens a new group.
//!
//! Memory per open group is its records' bytes as read plus about 150 bytes of bookkeeping:
//! the converted fields are not kept but written again from the raw record when the group
//! completes (a second parse of a 150-byte record costs less than the memory it would take
//! to keep it converted, with 100,000 groups open).

use std::hash::BuildHasher;

use hashlink::linked_hash_map::RawEntryMut;
use hashlink::LinkedHashMap;
use serde_json::Value;

use super::record::{
    identify, Case, RecordError, LEGACY_CODE, LEGACY_ID, V4_CODE, V4_CORRELATION, V4_ID, V4_SIDE,
};
use super::transcode::{self, push_str, push_u64, Entries, Members, Transcoder};
use super::Limits;
use crate::mapping::events::LegacyEvent;
use crate::mapping::EventTable;

/// How the members of a v4 record are written into its legacy record.
const TO_LEGACY: Members<'static> = Members {
    case: Case::Pascal,
    skip: &[V4_CODE, V4_ID, V4_SIDE],
    reserved: &[LEGACY_CODE, LEGACY_ID],
};

/// Joins v4 records into legacy records. Feed records with [`Joiner::push_line`] (or
/// [`Joiner::push`] for trees); take the groups a limit flushed with [`Joiner::take_flushed`];
/// at end of input, [`Joiner::finish`] returns the groups that never completed.
#[derive(Debug)]
pub struct Joiner<'t> {
    table: &'t EventTable,
    open: LinkedHashMap<GroupKey, OpenGroup<'t>>,
    limits: Limits,
    peak_open: usize,
    tc: Transcoder,
    scratch: Vec<u8>,
    flushed: Vec<Unmatched>,
}

/// An open group's key, which also holds the group's first record: `buf` is that record as
/// read, followed by the correlation id only when the id is not a plain part of it (an
/// escaped id). One allocation per waiting group; the id is found inside it by offsets.
#[derive(Debug)]
struct GroupKey {
    legacy_id: u32,
    raw_len: u32,
    cid_start: u32,
    cid_len: u32,
    buf: Box<str>,
}

impl GroupKey {
    /// `cid` borrowed from `raw` (the usual case) is kept as its offsets in it.
    fn new(legacy_id: u32, raw: &str, cid: &str) -> Self {
        // Address arithmetic only, to see whether `cid` lies inside `raw`: no pointer is made.
        let (base, at) = (raw.as_ptr() as usize, cid.as_ptr() as usize);
        let inside = at >= base && at + cid.len() <= base + raw.len();
        let (buf, cid_start) = if inside {
            (Box::from(raw), at - base)
        } else {
            ([raw, cid].concat().into_boxed_str(), raw.len())
        };
        Self {
            legacy_id,
            raw_len: raw.len() as u32,
            cid_start: cid_start as u32,
            cid_len: cid.len() as u32,
            buf,
        }
    }

    fn raw(&self) -> &str {
        &self.buf[..self.raw_len as usize]
    }

    fn cid(&self) -> &str {
        let start = self.cid_start as usize;
        &self.buf[start..start + self.cid_len as usize]
    }
}

/// Hashes as the tuple `(legacy_id, cid)` does: lookups hash that tuple.
impl std::hash::Hash for GroupKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.legacy_id.hash(state);
        self.cid().hash(state);
    }
}

impl PartialEq for GroupKey {
    fn eq(&self, other: &Self) -> bool {
        self.legacy_id == other.legacy_id && self.cid() == other.cid()
    }
}

impl Eq for GroupKey {}

#[derive(Debug)]
struct OpenGroup<'t> {
    event: &'t LegacyEvent,
    /// The first record's line and position in the event's v4 list (its text is the key's).
    first_line: u64,
    first_pos: usize,
    /// The records after the first, in arrival order: none while most groups wait (most
    /// events have two v4 events), so no allocation.
    rest: Box<[Member]>,
}

/// A v4 record held in an open group after its first, as read (its conversion was checked
/// when it arrived, so an error names its own line).
#[derive(Debug)]
struct Member {
    pos: usize,
    line: u64,
    raw: Box<str>,
}

/// The records of an open group: (position, line, text), the first one first.
fn members<'a>(
    key: &'a GroupKey,
    group: &'a OpenGroup<'_>,
) -> impl Iterator<Item = (usize, u64, &'a str)> {
    std::iter::once((group.first_pos, group.first_line, key.raw()))
        .chain(group.rest.iter().map(|m| (m.pos, m.line, &*m.raw)))
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

/// What became of one pushed v4 line ([`Joiner::push_line`]).
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

impl<'t> Joiner<'t> {
    /// A joiner with the default limits.
    pub fn new(table: &'t EventTable) -> Self {
        Self::with_limits(table, Limits::default())
    }

    pub fn with_limits(table: &'t EventTable, limits: Limits) -> Self {
        Self {
            table,
            open: LinkedHashMap::new(),
            limits,
            peak_open: 0,
            tc: Transcoder::new(),
            scratch: Vec::new(),
            flushed: Vec::new(),
        }
    }

    /// Takes one v4 record (a tree) read at `line`; see [`Joiner::push_line`].
    pub fn push(&mut self, record: Value, line: u64) -> Result<Joined, RecordError> {
        super::record::as_object(&record)?;
        let text = record.to_string();
        let mut out = Vec::new();
        Ok(match self.push_line(&text, line, &mut out)? {
            Pushed::Complete => {
                Joined::Complete(serde_json::from_slice(&out).expect("the joiner writes JSON"))
            }
            Pushed::Pending => Joined::Pending,
            Pushed::Duplicate {
                code,
                correlation_id,
                first_line,
            } => Joined::Duplicate {
                code,
                correlation_id,
                first_line,
                record,
            },
            Pushed::Unmatched(u) => Joined::Unmatched(u),
        })
    }

    /// Takes one v4 record, the JSON text `text` read at `line` (1-based, used in reports).
    /// A completed group's legacy record is appended to `out` with its line end. An unknown
    /// event code is `Err(RecordError::Unknown)`: the caller still has the text to pass
    /// through. Groups a limit flushes on the way wait in [`Joiner::take_flushed`].
    pub fn push_line(
        &mut self,
        text: &str,
        line: u64,
        out: &mut Vec<u8>,
    ) -> Result<Pushed, RecordError> {
        self.expire(line);
        let table = self.table;
        let entries = Entries::parse(text)?;
        let (event, pos) = identify(
            &entries,
            V4_CODE,
            V4_ID,
            |c| table.legacy_of_v4(c),
            |i| table.legacy_of_v4_id(i),
            |(e, p)| e.v4[*p].id,
        )?;
        let cid = correlation_id(&entries)?;
        if event.v4.len() == 1 {
            write_legacy(&mut self.tc, out, event, [&entries].into_iter())?;
            return Ok(Pushed::Complete);
        }
        let Some(cid) = cid else {
            self.check(&entries)?;
            return Ok(Pushed::Unmatched(Unmatched {
                legacy_code: event.code.clone(),
                correlation_id: None,
                first_line: line,
                missing: missing(event, |i| i == pos),
                records: vec![text.into()],
                flushed: None,
            }));
        };

        let hash = self.open.hasher().hash_one((event.id, &*cid));
        let entry = self
            .open
            .raw_entry_mut()
            .from_hash(hash, |k| k.legacy_id == event.id && k.cid() == cid);
        match entry {
            RawEntryMut::Occupied(mut entry) => {
                let (key, group) = entry.get_key_value();
                if members(key, group).any(|(p, _, _)| p == pos) {
                    return Ok(Pushed::Duplicate {
                        code: event.v4[pos].code.clone(),
                        correlation_id: cid.into_owned(),
                        first_line: group.first_line,
                    });
                }
                if group.rest.len() + 2 < event.v4.len() {
                    check(&mut self.tc, &mut self.scratch, &entries)?;
                    let group = entry.get_mut();
                    let mut rest = std::mem::take(&mut group.rest).into_vec();
                    rest.push(Member {
                        pos,
                        line,
                        raw: text.into(),
                    });
                    group.rest = rest.into_boxed_slice();
                    return Ok(Pushed::Pending);
                }
                // The last member: the legacy record of the group, in table order.
                let mut parsed: Vec<(usize, Entries<'_>)> = Vec::with_capacity(event.v4.len());
                for (p, _, raw) in members(key, group) {
                    parsed.push((p, Entries::parse(raw)?));
                }
                parsed.push((pos, entries));
                parsed.sort_unstable_by_key(|(p, _)| *p);
                write_legacy(&mut self.tc, out, event, parsed.iter().map(|(_, e)| e))?;
                drop(parsed);
                entry.remove();
                Ok(Pushed::Complete)
            }
            RawEntryMut::Vacant(vacant) => {
                check(&mut self.tc, &mut self.scratch, &entries)?;
                vacant.insert_hashed_nocheck(
                    hash,
                    GroupKey::new(event.id, text, &cid),
                    OpenGroup {
                        event,
                        first_line: line,
                        first_pos: pos,
                        rest: Box::default(),
                    },
                );
                let max = self.limits.max_open_groups.max(1);
                while self.open.len() > max {
                    self.flush_oldest(Flushed::OpenGroups(max));
                }
                self.peak_open = self.peak_open.max(self.open.len());
                Ok(Pushed::Pending)
            }
        }
    }

    /// Checks that a record's fields convert (same errors as when written).
    fn check(&mut self, entries: &Entries<'_>) -> Result<(), RecordError> {
        check(&mut self.tc, &mut self.scratch, entries)
    }

    /// Flushes the groups older than `max_group_age` records at `line`.
    fn expire(&mut self, line: u64) {
        let Some(age) = self.limits.max_group_age else {
            return;
        };
        while let Some((_, oldest)) = self.open.front() {
            if line.saturating_sub(oldest.first_line) <= age {
                break;
            }
            self.flush_oldest(Flushed::Age(age));
        }
    }

    fn flush_oldest(&mut self, why: Flushed) {
        if let Some((key, group)) = self.open.pop_front() {
            self.flushed.push(unmatched(key, group, Some(why)));
        }
    }

    /// The groups a limit flushed since the last call, oldest first.
    pub fn take_flushed(&mut self) -> std::vec::Drain<'_, Unmatched> {
        self.flushed.drain(..)
    }

    /// Groups open right now.
    pub fn open_groups(&self) -> usize {
        self.open.len()
    }

    /// The most groups that were open at once: what the joiner's memory was bounded by.
    pub fn peak_open(&self) -> usize {
        self.peak_open
    }

    /// Ends the input: the groups flushed and not yet taken, then every group still open,
    /// oldest first.
    pub fn finish(mut self) -> Vec<Unmatched> {
        let mut left = std::mem::take(&mut self.flushed);
        left.extend(self.drain_open());
        left
    }

    /// Ends the input one group at a time, oldest first, for a caller that writes each out
    /// (collecting 100,000 of them first would double the memory the limit promises).
    pub fn drain_open(&mut self) -> impl Iterator<Item = Unmatched> + use<'_, 't> {
        std::iter::from_fn(move || {
            let (key, group) = self.open.pop_front()?;
            Some(unmatched(key, group, None))
        })
    }
}

/// Converts a record's fields into the scratch buffer, for their errors only.
fn check(
    tc: &mut Transcoder,
    scratch: &mut Vec<u8>,
    entries: &Entries<'_>,
) -> Result<(), RecordError> {
    scratch.clear();
    let mark = tc.keys_mark();
    let result = tc.members(scratch, entries, &TO_LEGACY, false, mark);
    tc.release(mark);
    result
}

fn unmatched(key: GroupKey, group: OpenGroup<'_>, flushed: Option<Flushed>) -> Unmatched {
    let missing = missing(group.event, |i| {
        members(&key, &group).any(|(p, _, _)| p == i)
    });
    let correlation_id = Some(key.cid().to_owned());
    let first: Box<str> = if key.raw_len as usize == key.buf.len() {
        key.buf
    } else {
        key.raw().into()
    };
    // Most groups wait with their first record only: no sorting, one small allocation.
    let records = if group.rest.is_empty() {
        vec![first]
    } else {
        let mut all: Vec<(u64, Box<str>)> = vec![(group.first_line, first)];
        all.extend(group.rest.into_vec().into_iter().map(|m| (m.line, m.raw)));
        all.sort_by_key(|(line, _)| *line);
        all.into_iter().map(|(_, r)| r).collect()
    };
    Unmatched {
        legacy_code: group.event.code.clone(),
        correlation_id,
        first_line: group.first_line,
        missing,
        records,
        flushed,
    }
}

/// The correlation id as a string; a number is accepted (and used as its digits), null
/// counts as absent, anything else makes the record invalid.
fn correlation_id<'a>(
    entries: &Entries<'a>,
) -> Result<Option<std::borrow::Cow<'a, str>>, RecordError> {
    let Some(raw) = entries.get(V4_CORRELATION) else {
        return Ok(None);
    };
    if transcode::is_null(raw) {
        return Ok(None);
    }
    if transcode::is_number(raw) {
        return Ok(Some(std::borrow::Cow::Borrowed(raw.get())));
    }
    transcode::as_str(raw).map(Some).ok_or_else(|| {
        RecordError::Invalid(format!("`{V4_CORRELATION}` is not a string: {}", raw.get()))
    })
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

/// Appends the legacy record of a complete group: its code and id, then the members' fields
/// merged in table order, the first value of a key winning. Table order rather than arrival
/// order, so the result does not depend on how the v4 streams were interleaved. On an error
/// nothing is appended.
fn write_legacy<'e, 'a: 'e>(
    tc: &mut Transcoder,
    out: &mut Vec<u8>,
    event: &LegacyEvent,
    members: impl Iterator<Item = &'e Entries<'a>>,
) -> Result<(), RecordError> {
    let start = out.len();
    out.extend_from_slice(b"{\"EventTypeCode\":");
    push_str(out, &event.code);
    out.extend_from_slice(b",\"EventId\":");
    push_u64(out, event.id.into());
    let mark = tc.keys_mark();
    let mut result = Ok(());
    for entries in members {
        result = tc.members(out, entries, &TO_LEGACY, true, mark);
        if result.is_err() {
            break;
        }
    }
    tc.release(mark);
    match result {
        Ok(()) => {
            out.extend_from_slice(b"}\n");
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
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
    fn escaped_and_numeric_correlation_ids_join_and_stay_as_read() {
        let t = table();
        let mut j = Joiner::new(&t);
        let mut out = Vec::new();
        let a = r#"{"eventTypeCode":"AUTHSYSTEM_USER_CHANGEEMAIL","correlationId":"q\u0022d"}"#;
        let s = r#"{"eventTypeCode":"SUBSCRIBE_USER_CHANGEEMAIL","correlationId":"q\"d"}"#;
        assert_eq!(j.push_line(a, 1, &mut out).unwrap(), Pushed::Pending);
        assert_eq!(j.push_line(s, 2, &mut out).unwrap(), Pushed::Complete);
        let rec: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(rec["CorrelationId"], "q\"d");
        let n = r#"{"eventTypeCode":"AUTHSYSTEM_USER_GETBYID","correlationId":17}"#;
        let e = r#"{"eventTypeCode":"AUTHSYSTEM_USER_CHANGEEMAIL","correlationId":"x\ty"}"#;
        j.push_line(n, 3, &mut out).unwrap();
        j.push_line(e, 4, &mut out).unwrap();
        let left = j.finish();
        assert_eq!(left[0].correlation_id.as_deref(), Some("17"));
        assert_eq!(&*left[0].records[0], n);
        assert_eq!(left[1].correlation_id.as_deref(), Some("x\ty"));
        assert_eq!(
            &*left[1].records[0], e,
            "the record as read, not the id appended"
        );
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
