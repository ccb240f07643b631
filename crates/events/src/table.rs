//! The event table: each legacy event code and the v4 events that replace it (SPEC section 2),
//! read from a TOML text (the gateway's `mappings/events.toml`). A legacy event maps to any
//! number of v4 events.
//!
//! The table is read through [`TomlSource`] rather than from a path or a string, so that each
//! caller reports a bad table its own way: the gateway names file, line and field like every
//! other file it reads, and a caller without the gateway passes the text (`&str`) and gets a
//! [`TableError`] with the line.

use std::collections::HashMap;
use std::ops::Range;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// A TOML text the table is read from, and how an error in it is told.
pub trait TomlSource {
    type Error;
    /// The whole text, deserialized.
    fn parse<T: DeserializeOwned>(&self) -> Result<T, Self::Error>;
    /// A value that parsed but is refused (a duplicate code): where (`span`, bytes of the
    /// text), which field (`events[1].v4[0].code`), and why.
    fn error(&self, span: Range<usize>, field: String, message: String) -> Self::Error;
}

/// A table refused, when it is read from a plain `&str`: line 1-based, field as
/// [`TomlSource::error`] names it (empty for a TOML syntax error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {}{message}", field_of(.field))]
pub struct TableError {
    pub line: usize,
    pub field: String,
    pub message: String,
}

fn field_of(field: &str) -> String {
    match field {
        "" => String::new(),
        f => format!("field `{f}`: "),
    }
}

impl TomlSource for str {
    type Error = TableError;

    fn parse<T: DeserializeOwned>(&self) -> Result<T, TableError> {
        toml::from_str(self).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            self.error(span, String::new(), e.message().trim().to_string())
        })
    }

    fn error(&self, span: Range<usize>, field: String, message: String) -> TableError {
        let end = span.start.min(self.len());
        let line = self.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        TableError {
            line,
            field,
            message,
        }
    }
}

/// Which system records a v4 event: the third-party auth provider or the Subscribe database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Authsystem,
    Subscribe,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct V4Event {
    pub code: String,
    pub id: u32,
    pub side: Side,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegacyEvent {
    pub code: String,
    pub id: u32,
    pub v4: Vec<V4Event>,
    /// `AUTHSYSTEM_USER_CHANGEPASSWORD (4609) + …`: the audit record's `v4_events`, built once
    /// here rather than formatted on every translated request.
    #[serde(skip)]
    pub v4_summary: String,
}

/// The checked table: codes and ids unique on both sides, so every record translates one way.
#[derive(Debug, Clone, Default)]
pub struct EventTable {
    events: Vec<LegacyEvent>,
    by_code: HashMap<String, usize>,
    by_id: HashMap<u32, usize>,
    /// v4 code → (legacy index, position in its `v4` list)
    by_v4_code: HashMap<String, (usize, usize)>,
    by_v4_id: HashMap<u32, (usize, usize)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    events: Vec<RawEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    code: Spanned<String>,
    id: Spanned<u32>,
    v4: Spanned<Vec<RawV4>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawV4 {
    code: Spanned<String>,
    id: Spanned<u32>,
    side: Side,
}

impl EventTable {
    /// Reads and checks a table: every code and id unique on its side, every legacy event
    /// with at least one v4 event.
    pub fn load<S: TomlSource + ?Sized>(src: &S) -> Result<Self, S::Error> {
        let raw: RawFile = src.parse()?;
        let mut table = EventTable::default();
        for (i, ev) in raw.events.into_iter().enumerate() {
            let field = |f: &str| format!("events[{i}].{f}");
            if ev.code.get_ref().trim().is_empty() {
                return Err(src.error(ev.code.span(), field("code"), "empty event code".into()));
            }
            if table.by_code.contains_key(ev.code.get_ref()) {
                return Err(src.error(
                    ev.code.span(),
                    field("code"),
                    format!("duplicate legacy event code {:?}", ev.code.get_ref()),
                ));
            }
            if table.by_id.contains_key(ev.id.get_ref()) {
                return Err(src.error(
                    ev.id.span(),
                    field("id"),
                    format!("duplicate legacy event id {}", ev.id.get_ref()),
                ));
            }
            if ev.v4.get_ref().is_empty() {
                return Err(src.error(
                    ev.v4.span(),
                    field("v4"),
                    "a legacy event needs at least one v4 event".into(),
                ));
            }
            let idx = table.events.len();
            let mut v4 = Vec::new();
            for (j, e) in ev.v4.into_inner().into_iter().enumerate() {
                let field = |f: &str| format!("events[{i}].v4[{j}].{f}");
                if table.by_v4_code.contains_key(e.code.get_ref()) {
                    return Err(src.error(
                        e.code.span(),
                        field("code"),
                        format!("duplicate v4 event code {:?}", e.code.get_ref()),
                    ));
                }
                if table.by_v4_id.contains_key(e.id.get_ref()) {
                    return Err(src.error(
                        e.id.span(),
                        field("id"),
                        format!("duplicate v4 event id {}", e.id.get_ref()),
                    ));
                }
                table.by_v4_code.insert(e.code.get_ref().clone(), (idx, j));
                table.by_v4_id.insert(*e.id.get_ref(), (idx, j));
                v4.push(V4Event {
                    code: e.code.into_inner(),
                    id: e.id.into_inner(),
                    side: e.side,
                });
            }
            table.by_code.insert(ev.code.get_ref().clone(), idx);
            table.by_id.insert(*ev.id.get_ref(), idx);
            let v4_summary = v4
                .iter()
                .map(|e| format!("{} ({})", e.code, e.id))
                .collect::<Vec<_>>()
                .join(" + ");
            table.events.push(LegacyEvent {
                code: ev.code.into_inner(),
                id: ev.id.into_inner(),
                v4,
                v4_summary,
            });
        }
        Ok(table)
    }

    pub fn get(&self, legacy_code: &str) -> Option<&LegacyEvent> {
        self.by_code.get(legacy_code).map(|&i| &self.events[i])
    }

    pub fn by_legacy_id(&self, id: u32) -> Option<&LegacyEvent> {
        self.by_id.get(&id).map(|&i| &self.events[i])
    }

    /// The legacy event a v4 event belongs to, and the v4 event's position in that group.
    pub fn legacy_of_v4(&self, v4_code: &str) -> Option<(&LegacyEvent, usize)> {
        self.by_v4_code
            .get(v4_code)
            .map(|&(i, j)| (&self.events[i], j))
    }

    pub fn legacy_of_v4_id(&self, v4_id: u32) -> Option<(&LegacyEvent, usize)> {
        self.by_v4_id
            .get(&v4_id)
            .map(|&(i, j)| (&self.events[i], j))
    }

    pub fn iter(&self) -> impl Iterator<Item = &LegacyEvent> {
        self.events.iter()
    }
}

/// The table the gateway ships, for the tests of every module here.
#[cfg(test)]
pub(crate) fn shipped() -> EventTable {
    EventTable::load(include_str!("../../../mappings/events.toml")).expect("shipped table loads")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<EventTable, TableError> {
        EventTable::load(text)
    }

    #[test]
    fn shipped_table_has_the_four_rows() {
        let t = shipped();
        let chg = t.get("CHGPWD").unwrap();
        assert_eq!(chg.id, 22);
        let ids: Vec<u32> = chg.v4.iter().map(|e| e.id).collect();
        assert_eq!(ids, [4609, 4010]);
        assert_eq!(t.get("PWDREQ").unwrap().v4.len(), 1);
        assert_eq!(t.legacy_of_v4("SUBSCRIBE_USER_GETBYID").unwrap().0.id, 1042);
        assert_eq!(t.iter().count(), 4);
    }

    #[test]
    fn duplicates_are_refused_with_their_line() {
        let e = load(
            "[[events]]\ncode = \"A\"\nid = 1\nv4 = [{ code = \"X\", id = 10, side = \"subscribe\" }]\n\
             [[events]]\ncode = \"B\"\nid = 1\nv4 = [{ code = \"Y\", id = 11, side = \"subscribe\" }]\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (7, "events[1].id"));
        assert_eq!(
            e.to_string(),
            "line 7: field `events[1].id`: duplicate legacy event id 1"
        );
        let e = load(
            "[[events]]\ncode = \"A\"\nid = 1\nv4 = [{ code = \"X\", id = 10, side = \"subscribe\" }]\n\
             [[events]]\ncode = \"B\"\nid = 2\nv4 = [{ code = \"X\", id = 11, side = \"subscribe\" }]\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "events[1].v4[0].code");
    }

    #[test]
    fn a_text_that_is_no_table_is_refused_with_its_line() {
        let e = load("[[events]]\ncode = \"A\"\nid = \"one\"\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert_eq!(
            e.to_string(),
            "line 3: invalid type: string \"one\", expected u32"
        );
        let e = load("[[events]]\ncode = \n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }
}
