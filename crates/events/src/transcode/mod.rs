//! The byte path every record takes: a record is parsed into borrowed `(key, raw value)` pairs
//! (serde_json's `RawValue`, no tree, no string copies), and written straight into one output
//! buffer with its keys converted. Scalars are copied as read; only nested objects and arrays
//! are parsed again, one level at a time, because their keys change case too.
//!
//! Why not `serde_json::Value`: building and dropping a tree of maps and strings per record
//! was most of the old cost (about 4 µs a record); these records are small and flat, so the
//! borrowed pairs are a few dozen bytes of stack-like data per record.
//!
//! Keys: the key set of a log is small, so each key is converted once and its escaped JSON kept
//! in a direct-mapped cache ([`KEY_SLOTS`] slots per case, found by a cheap hash of the key,
//! so a lookup is one comparison and hostile input cannot grow it). A miss converts through
//! [`crate::key`], the one key-case rule of the gateway (a fast path for the
//! `fooBar` / `FooBar` keys nearly every record has, heck for the rest).
//!
//! # Layout
//! - here: the [`Transcoder`], which writes members with their keys converted and refuses
//!   colliding keys.
//! - `entries`: reading a record into borrowed members ([`Entries`]) and raw values.
//! - `keys`: the key cache ([`KEY_SLOTS`]).

mod entries;
mod keys;

use serde_json::value::RawValue;

use super::RecordError;
use crate::key::Case;
pub use entries::{as_str, is_null, is_number, Entries};
use keys::Slot;
pub use keys::KEY_SLOTS;

/// Nesting deeper than this makes a record invalid (serde_json's own limit for trees; its
/// raw-value scanner has none, and the writer recurses).
pub const MAX_DEPTH: usize = 128;

/// Appends `n` in decimal.
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends `s` as a JSON string.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// The writer's state kept across records: the key cache and a stack of the keys written in
/// the objects being written (to find collisions without allocating per object).
#[derive(Debug)]
pub struct Transcoder {
    /// `2 * KEY_SLOTS` slots: camelCase conversions first, then PascalCase.
    cache: Vec<Option<Slot>>,
    /// (start, end, fingerprint) of each key written, for the objects open right now.
    keys: Vec<(usize, usize, u64)>,
}

impl Default for Transcoder {
    fn default() -> Self {
        Self {
            cache: (0..2 * KEY_SLOTS).map(|_| None).collect(),
            keys: Vec::with_capacity(64),
        }
    }
}

/// A cheap summary of a written key (its length and last bytes): equal keys have equal
/// fingerprints, so only equal fingerprints are compared byte for byte.
fn fingerprint(key: &[u8]) -> u64 {
    let tail = &key[key.len().saturating_sub(8)..];
    let mut b = [0u8; 8];
    b[..tail.len()].copy_from_slice(tail);
    u64::from_le_bytes(b) ^ ((key.len() as u64) << 56)
}

/// How the members of one object are written.
pub struct Members<'s> {
    pub case: Case,
    /// Source keys left out (the identity fields the caller writes itself).
    pub skip: &'s [&'s str],
    /// Converted keys refused (the keys the caller writes itself).
    pub reserved: &'s [&'s str],
}

impl Transcoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the members of a top-level object (no braces), each preceded by a comma when
    /// `comma` or when one was written before it. Keys colliding after conversion, or becoming
    /// a reserved key, make the record invalid.
    ///
    /// `merge_base`: a [`Transcoder::keys_mark`] taken before the first record of the output
    /// object. Keys written since then by earlier records of the same object (to-legacy joins
    /// several v4 records into one legacy record) are left out here, the first value winning;
    /// the caller [`Transcoder::release`]s the mark when the object is done. Collisions are
    /// found by a scan of the object's keys (fingerprints first), so an object with thousands
    /// of keys costs quadratic time, bounded by the line.
    pub fn members(
        &mut self,
        out: &mut Vec<u8>,
        entries: &Entries<'_>,
        how: &Members<'_>,
        mut comma: bool,
        merge_base: usize,
    ) -> Result<(), RecordError> {
        let own_base = self.keys.len();
        for (i, (key, value)) in entries.0.iter().enumerate() {
            if how.skip.contains(&key.as_ref()) {
                continue;
            }
            let entry_start = out.len();
            if comma {
                out.push(b',');
            }
            let ks = out.len();
            self.write_key(out, key, how.case);
            let ke = out.len();
            if !how.reserved.is_empty() {
                let new_key = &out[ks + 1..ke - 1];
                if how.reserved.iter().any(|r| r.as_bytes() == new_key) {
                    let new_key = String::from_utf8_lossy(new_key).into_owned();
                    return Err(RecordError::Invalid(format!(
                        "key `{key}` becomes `{new_key}`, which the translator writes itself"
                    )));
                }
            }
            match self.find(out, merge_base, ks, ke) {
                Some(at) if at >= own_base => return Err(collision(entries, i, how.case)),
                Some(_) => {
                    // Held by an earlier record of a joined group: the first value wins.
                    out.truncate(entry_start);
                    continue;
                }
                None => {}
            }
            self.keys.push((ks, ke, fingerprint(&out[ks..ke])));
            out.push(b':');
            self.value(out, value, how.case, 1)
                .map_err(|e| in_key(key, e))?;
            comma = true;
        }
        Ok(())
    }

    /// A mark for [`Transcoder::members`]' `merge_base`: keys written after it are compared.
    pub fn keys_mark(&self) -> usize {
        self.keys.len()
    }

    /// Forgets the keys written since `mark` (the output object is complete).
    pub fn release(&mut self, mark: usize) {
        self.keys.truncate(mark);
    }

    /// The index in `keys` of a key written since `base` equal to the one at `ks..ke`.
    fn find(&self, out: &[u8], base: usize, ks: usize, ke: usize) -> Option<usize> {
        let new = &out[ks..ke];
        let fp = fingerprint(new);
        self.keys[base..]
            .iter()
            .position(|&(s, e, f)| f == fp && &out[s..e] == new)
            .map(|p| p + base)
    }

    /// Writes one value: scalars as read, objects and arrays with their keys converted.
    fn value(
        &mut self,
        out: &mut Vec<u8>,
        raw: &RawValue,
        case: Case,
        depth: usize,
    ) -> Result<(), RecordError> {
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'{') | Some(b'[') if depth >= MAX_DEPTH => Err(RecordError::Invalid(format!(
                "nested deeper than {MAX_DEPTH} levels"
            ))),
            Some(b'{') => {
                let entries: Entries<'_> =
                    serde_json::from_str(text).map_err(|e| RecordError::Invalid(e.to_string()))?;
                out.push(b'{');
                let base = self.keys.len();
                let result = self.object(out, &entries, case, depth);
                self.keys.truncate(base);
                result?;
                out.push(b'}');
                Ok(())
            }
            Some(b'[') => {
                let items: Vec<&RawValue> =
                    serde_json::from_str(text).map_err(|e| RecordError::Invalid(e.to_string()))?;
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.value(out, item, case, depth + 1)
                        .map_err(|e| in_key(&format!("[{i}]"), e))?;
                }
                out.push(b']');
                Ok(())
            }
            _ => {
                out.extend_from_slice(text.as_bytes());
                Ok(())
            }
        }
    }

    /// The members of a nested object: every key converted, collisions refused.
    fn object(
        &mut self,
        out: &mut Vec<u8>,
        entries: &Entries<'_>,
        case: Case,
        depth: usize,
    ) -> Result<(), RecordError> {
        let base = self.keys.len();
        for (i, (key, value)) in entries.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let ks = out.len();
            self.write_key(out, key, case);
            let ke = out.len();
            if self.find(out, base, ks, ke).is_some() {
                return Err(collision(entries, i, case));
            }
            self.keys.push((ks, ke, fingerprint(&out[ks..ke])));
            out.push(b':');
            self.value(out, value, case, depth + 1)
                .map_err(|e| in_key(key, e))?;
        }
        Ok(())
    }
}

/// The error for member `i` of `entries`, whose key becomes one already written: names both
/// source keys (found again here: this is the error path only).
fn collision(entries: &Entries<'_>, i: usize, case: Case) -> RecordError {
    let key = &entries.0[i].0;
    let new_key = case.convert(key);
    let other = entries.0[..i]
        .iter()
        .map(|(k, _)| k)
        .find(|k| case.convert(k) == new_key);
    match other {
        Some(other) if other == key => {
            RecordError::Invalid(format!("key `{key}` appears twice in one object"))
        }
        Some(other) => RecordError::Invalid(format!(
            "keys `{other}` and `{key}` both become `{new_key}`"
        )),
        None => RecordError::Invalid(format!("key `{key}` becomes `{new_key}` twice")),
    }
}

/// Prefixes a nested error with the key it was found under (`Metadata.`), so the reader finds it.
pub fn in_key(key: &str, e: RecordError) -> RecordError {
    match e {
        RecordError::Invalid(m) => RecordError::Invalid(format!("in `{key}`: {m}")),
        other => other,
    }
}
