//! An open group as the joiner holds it: the key that also carries its first record, the
//! records after it, and what is left of it when it ends without completing. Kept small
//! because 100,000 of them may be open at once.

use super::outcome::{Flushed, Unmatched};
use crate::table::LegacyEvent;

/// An open group's key, which also holds the group's first record: `buf` is that record as
/// read, followed by the correlation id only when the id is not a plain part of it (an
/// escaped id). One allocation per waiting group; the id is found inside it by offsets.
#[derive(Debug)]
pub(super) struct GroupKey {
    pub(super) legacy_id: u32,
    raw_len: u32,
    cid_start: u32,
    cid_len: u32,
    buf: Box<str>,
}

impl GroupKey {
    /// `cid` borrowed from `raw` (the usual case) is kept as its offsets in it.
    pub(super) fn new(legacy_id: u32, raw: &str, cid: &str) -> Self {
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

    pub(super) fn raw(&self) -> &str {
        &self.buf[..self.raw_len as usize]
    }

    pub(super) fn cid(&self) -> &str {
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
pub(super) struct OpenGroup<'t> {
    pub(super) event: &'t LegacyEvent,
    /// The first record's line and position in the event's v4 list (its text is the key's).
    pub(super) first_line: u64,
    pub(super) first_pos: usize,
    /// The records after the first, in arrival order: none while most groups wait (most
    /// events have two v4 events), so no allocation.
    pub(super) rest: Box<[Member]>,
}

/// A v4 record held in an open group after its first, as read (its conversion was checked
/// when it arrived, so an error names its own line).
#[derive(Debug)]
pub(super) struct Member {
    pub(super) pos: usize,
    pub(super) line: u64,
    pub(super) raw: Box<str>,
}

/// The records of an open group: (position, line, text), the first one first.
pub(super) fn members<'a>(
    key: &'a GroupKey,
    group: &'a OpenGroup<'_>,
) -> impl Iterator<Item = (usize, u64, &'a str)> {
    std::iter::once((group.first_pos, group.first_line, key.raw()))
        .chain(group.rest.iter().map(|m| (m.pos, m.line, &*m.raw)))
}

/// What is left of a group that never completed: the report line's facts and its records in
/// input order.
pub(super) fn unmatched(
    key: GroupKey,
    group: OpenGroup<'_>,
    flushed: Option<Flushed>,
) -> Unmatched {
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

/// The v4 codes of `event` whose position is not `seen`.
pub(super) fn missing(event: &LegacyEvent, seen: impl Fn(usize) -> bool) -> Vec<String> {
    event
        .v4
        .iter()
        .enumerate()
        .filter(|(i, _)| !seen(*i))
        .map(|(_, e)| e.code.clone())
        .collect()
}
