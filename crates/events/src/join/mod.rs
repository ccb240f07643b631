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
//!
//! # Layout
//! - here: the [`Joiner`]: the open groups in arrival order, and the limits.
//! - `group`: one open group, and what is left of it when it ends unmatched.
//! - `assemble`: the correlation id, the field check, the legacy record written.
//! - `outcome`: what the joiner hands back ([`Joined`], [`Pushed`], [`Unmatched`]).

mod assemble;
mod group;
mod outcome;

use std::hash::BuildHasher;

use hashlink::linked_hash_map::RawEntryMut;
use hashlink::LinkedHashMap;
use serde_json::Value;

use super::record::{identify, V4_CODE, V4_ID};
use super::transcode::{Entries, Transcoder};
use super::Limits;
use super::RecordError;
use crate::EventTable;
use assemble::{check, correlation_id, write_legacy};
use group::{members, missing, unmatched, GroupKey, Member, OpenGroup};
pub use outcome::{Flushed, Joined, Pushed, Unmatched};

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> EventTable {
        crate::table::shipped()
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
