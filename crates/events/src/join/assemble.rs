//! The byte work of a group: reading a v4 record's correlation id, checking that its fields
//! convert when it arrives (so an error names its own line), and writing the legacy record
//! once the group is complete.

use super::super::record::{LEGACY_CODE, LEGACY_ID, V4_CODE, V4_CORRELATION, V4_ID, V4_SIDE};
use super::super::transcode::{self, push_str, push_u64, Entries, Members, Transcoder};
use super::super::RecordError;
use crate::key::Case;
use crate::table::LegacyEvent;

/// How the members of a v4 record are written into its legacy record.
const TO_LEGACY: Members<'static> = Members {
    case: Case::Pascal,
    skip: &[V4_CODE, V4_ID, V4_SIDE],
    reserved: &[LEGACY_CODE, LEGACY_ID],
};

/// Converts a record's fields into the scratch buffer, for their errors only.
pub(super) fn check(
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

/// The correlation id as a string; a number is accepted (and used as its digits), null
/// counts as absent, anything else makes the record invalid.
pub(super) fn correlation_id<'a>(
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

/// Appends the legacy record of a complete group: its code and id, then the members' fields
/// merged in table order, the first value of a key winning. Table order rather than arrival
/// order, so the result does not depend on how the v4 streams were interleaved. On an error
/// nothing is appended.
pub(super) fn write_legacy<'e, 'a: 'e>(
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
