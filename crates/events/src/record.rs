//! One record at a time: finding which event a record is, and the legacy → v4 translation.
//! No I/O, so the stream, the joiner, the HTTP handler and the benchmark share them. The work
//! is done on bytes ([`super::transcode`]); [`legacy_to_v4`] is the same path, for callers
//! that hold a tree.
//!
//! Key case: legacy records are PascalCase, v4 records lowerCamelCase, converted by
//! [`crate::key`] as for every other caller. Keys are converted at every depth,
//! including objects inside arrays, because a nested object is data of the same system and
//! written in its case. heck normalises acronyms (`IPAddress` → `ipAddress` → `IpAddress`), so
//! such keys do not survive a round trip byte for byte; keys already in the shipped shape
//! (`CustomerRegistrationId`) do. Two keys of one object that become the same key, or a key
//! that becomes one of the identity keys the translator writes itself, make the record
//! invalid: dropping either value silently would lose data.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::transcode::{self, push_str, push_u64, Entries, Members, Transcoder};
use super::RecordError;
use crate::key::Case;
use crate::table::{LegacyEvent, Side};
use crate::EventTable;

/// The legacy record's event code key.
pub const LEGACY_CODE: &str = "EventTypeCode";
/// The legacy record's event id key.
pub const LEGACY_ID: &str = "EventId";
/// The v4 record's event code key.
pub const V4_CODE: &str = "eventTypeCode";
/// The v4 record's event id key.
pub const V4_ID: &str = "eventId";
/// The v4 record's side key (which system wrote it); dropped when going back to legacy.
pub const V4_SIDE: &str = "side";
/// The v4 key that joins the records of one legacy event.
pub const V4_CORRELATION: &str = "correlationId";

/// Reads a record's identity from its raw members: its code (a string) or, when the code is
/// absent, its id (an integer or a string of digits: older writers stringify numbers).
/// Returns the event found through `by_code` / `by_id`, or an error saying why not.
pub(crate) fn identify<T>(
    record: &Entries<'_>,
    code_key: &str,
    id_key: &str,
    by_code: impl Fn(&str) -> Option<T>,
    by_id: impl Fn(u32) -> Option<T>,
    id_of: impl Fn(&T) -> u32,
) -> Result<T, RecordError> {
    let id = match record.get(id_key) {
        None => None,
        Some(v) if transcode::is_null(v) => None,
        Some(v) => Some(parse_id(v).ok_or_else(|| {
            RecordError::Invalid(format!("`{id_key}` is not an event id: {}", v.get()))
        })?),
    };
    match record.get(code_key) {
        Some(v) if transcode::is_null(v) => by_id_only(id, code_key, id_key, by_id),
        None => by_id_only(id, code_key, id_key, by_id),
        Some(v) => {
            let Some(code) = transcode::as_str(v) else {
                return Err(RecordError::Invalid(format!(
                    "`{code_key}` is not a string: {}",
                    v.get()
                )));
            };
            let found = by_code(&code).ok_or_else(|| RecordError::Unknown {
                code: code.clone().into_owned(),
            })?;
            match id {
                Some(id) if id != id_of(&found) => Err(RecordError::Invalid(format!(
                    "`{code_key}` {code} has id {}, but `{id_key}` is {id}",
                    id_of(&found)
                ))),
                _ => Ok(found),
            }
        }
    }
}

fn by_id_only<T>(
    id: Option<u32>,
    code_key: &str,
    id_key: &str,
    by_id: impl Fn(u32) -> Option<T>,
) -> Result<T, RecordError> {
    match id {
        Some(id) => by_id(id).ok_or_else(|| RecordError::Unknown {
            code: format!("id {id}"),
        }),
        None => Err(RecordError::Invalid(format!(
            "the record has neither `{code_key}` nor `{id_key}`"
        ))),
    }
}

fn parse_id(v: &RawValue) -> Option<u32> {
    if transcode::is_number(v) {
        return v
            .get()
            .parse::<u64>()
            .ok()
            .and_then(|n| u32::try_from(n).ok());
    }
    transcode::as_str(v)?.parse().ok()
}

/// The JSON object inside a record, or why the record is not one.
pub fn as_object(record: &Value) -> Result<&Map<String, Value>, RecordError> {
    record.as_object().ok_or_else(|| {
        RecordError::Invalid(format!("a record is a JSON object, not {}", kind(record)))
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn legacy_event_of<'t>(
    table: &'t EventTable,
    entries: &Entries<'_>,
) -> Result<&'t LegacyEvent, RecordError> {
    identify(
        entries,
        LEGACY_CODE,
        LEGACY_ID,
        |c| table.get(c),
        |i| table.by_legacy_id(i),
        |e| e.id,
    )
}

/// The `side` value written on v4 records; the same spelling as in `mappings/events.toml`.
pub fn side_name(side: Side) -> &'static str {
    match side {
        Side::Authsystem => "authsystem",
        Side::Subscribe => "subscribe",
    }
}

/// Translates one legacy record into its v4 records, in table order. Each carries the other
/// fields in camelCase, the v4 `eventTypeCode` / `eventId` and `side`. A missing
/// `CorrelationId` stays missing: nothing is invented, so such records can only be joined back
/// when their event has a single v4 event (see the module docs of `events`).
pub fn legacy_to_v4(table: &EventTable, record: &Value) -> Result<Vec<Value>, RecordError> {
    as_object(record)?;
    let text = record.to_string();
    let mut out = Vec::new();
    ToV4::new(table).write(&text, &mut out)?;
    Ok(out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("the transcoder writes JSON"))
        .collect())
}

/// legacy → v4 on bytes, with the state kept across the records of a run.
#[derive(Debug)]
pub struct ToV4<'t> {
    table: &'t EventTable,
    tc: Transcoder,
    fields: Vec<u8>,
}

impl<'t> ToV4<'t> {
    pub fn new(table: &'t EventTable) -> Self {
        Self {
            table,
            tc: Transcoder::new(),
            fields: Vec::new(),
        }
    }

    /// Appends the v4 records of the legacy record `text` to `out`, one line each; returns
    /// how many. On an error nothing is appended.
    pub fn write(&mut self, text: &str, out: &mut Vec<u8>) -> Result<usize, RecordError> {
        let entries = Entries::parse(text)?;
        let event = legacy_event_of(self.table, &entries)?;
        self.fields.clear();
        let mark = self.tc.keys_mark();
        let how = Members {
            case: Case::Camel,
            skip: &[LEGACY_CODE, LEGACY_ID],
            reserved: &[V4_CODE, V4_ID, V4_SIDE],
        };
        let written = self
            .tc
            .members(&mut self.fields, &entries, &how, true, mark);
        self.tc.release(mark);
        written?;
        for v4 in &event.v4 {
            out.extend_from_slice(b"{\"eventTypeCode\":");
            push_str(out, &v4.code);
            out.extend_from_slice(b",\"eventId\":");
            push_u64(out, v4.id.into());
            out.extend_from_slice(b",\"side\":\"");
            out.extend_from_slice(side_name(v4.side).as_bytes());
            out.push(b'"');
            out.extend_from_slice(&self.fields);
            out.extend_from_slice(b"}\n");
        }
        Ok(event.v4.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Converts the keys of `map` (recursively) to `case`, through the byte path.
    fn convert_fields(
        map: &Map<String, Value>,
        case: Case,
    ) -> Result<Map<String, Value>, RecordError> {
        let text = serde_json::to_string(map).expect("a map serializes");
        let entries = Entries::parse(&text)?;
        let mut tc = Transcoder::new();
        let mut out = vec![b'{'];
        let how = Members {
            case,
            skip: &[],
            reserved: &[],
        };
        tc.members(&mut out, &entries, &how, false, 0)?;
        out.push(b'}');
        Ok(serde_json::from_slice(&out).expect("the transcoder writes JSON"))
    }

    /// Converts every object key inside `value` to `case`.
    fn convert_value(value: &Value, case: Case) -> Result<Value, RecordError> {
        match value {
            Value::Object(map) => convert_fields(map, case).map(Value::Object),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    convert_value(v, case).map_err(|e| transcode::in_key(&format!("[{i}]"), e))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            other => Ok(other.clone()),
        }
    }

    /// Which legacy event a legacy record is.
    fn legacy_event<'t>(
        table: &'t EventTable,
        record: &Value,
    ) -> Result<&'t LegacyEvent, RecordError> {
        as_object(record)?;
        let text = record.to_string();
        legacy_event_of(table, &Entries::parse(&text)?)
    }

    fn table() -> EventTable {
        crate::table::shipped()
    }

    #[test]
    fn keys_convert_at_every_depth() {
        let v = json!({"Metadata": {"FavouriteColour": "red", "Tags": [{"TagName": "x"}]}});
        let camel = convert_value(&v, Case::Camel).unwrap();
        assert_eq!(
            camel,
            json!({"metadata": {"favouriteColour": "red", "tags": [{"tagName": "x"}]}})
        );
        assert_eq!(convert_value(&camel, Case::Pascal).unwrap(), v);
    }

    #[test]
    fn colliding_keys_name_both_and_the_path() {
        let v = json!({"Metadata": {"Foo": 1, "foo": 2}});
        let e = convert_value(&v, Case::Camel).unwrap_err().to_string();
        assert!(e.contains("`Metadata`"), "{e}");
        assert!(e.contains("`Foo`") && e.contains("`foo`"), "{e}");
    }

    #[test]
    fn id_alone_identifies_and_disagreement_is_invalid() {
        let t = table();
        assert_eq!(
            legacy_event(&t, &json!({"EventId": 22})).unwrap().code,
            "CHGPWD"
        );
        assert_eq!(
            legacy_event(&t, &json!({"EventId": "64"})).unwrap().code,
            "PWDREQ"
        );
        assert!(matches!(
            legacy_event(&t, &json!({"EventTypeCode": "CHGPWD", "EventId": 21})),
            Err(RecordError::Invalid(_))
        ));
        assert_eq!(
            legacy_event(&t, &json!({"EventId": 9999})),
            Err(RecordError::Unknown {
                code: "id 9999".into()
            })
        );
        assert!(matches!(
            legacy_event(&t, &json!({})),
            Err(RecordError::Invalid(_))
        ));
        assert!(matches!(
            legacy_event(&t, &json!([1])),
            Err(RecordError::Invalid(_))
        ));
    }

    #[test]
    fn a_field_that_would_overwrite_side_is_refused() {
        let t = table();
        let e = legacy_to_v4(&t, &json!({"EventTypeCode": "CHGPWD", "Side": "x"})).unwrap_err();
        assert!(e.to_string().contains("`side`"), "{e}");
    }

    #[test]
    fn one_record_per_v4_event_in_table_order() {
        let t = table();
        let out = legacy_to_v4(
            &t,
            &json!({"EventTypeCode": "PWDREQ", "CorrelationId": "c"}),
        )
        .unwrap();
        assert_eq!(
            out,
            [
                json!({"eventTypeCode": "SUBSCRIBE_USER_STARTFORGOTPASSWORD", "eventId": 4009,
                     "side": "subscribe", "correlationId": "c"})
            ]
        );
        let out = legacy_to_v4(&t, &json!({"EventTypeCode": "CHGPWD"})).unwrap();
        let ids: Vec<_> = out.iter().map(|r| r[V4_ID].clone()).collect();
        assert_eq!(ids, [json!(4609), json!(4010)]);
    }
}
