//! The event table (`mappings/events.toml`). The table is the event transcoder's
//! (`legacy-gateway-events`), which reads it through its `TomlSource` trait; implemented here
//! for [`Source`], a bad table is reported as every other file the gateway reads: file, line
//! and field.

use std::ops::Range;

use serde::de::DeserializeOwned;

pub use legacy_gateway_events::table::{EventTable, LegacyEvent, Side, V4Event};
use legacy_gateway_events::TomlSource;

use crate::source::{Source, SourceError};

impl TomlSource for Source {
    type Error = SourceError;

    fn parse<T: DeserializeOwned>(&self) -> Result<T, SourceError> {
        Source::parse(self)
    }

    fn error(&self, span: Range<usize>, field: String, message: String) -> SourceError {
        Source::error(self, span, field, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_table_names_file_line_and_field() {
        let text = "[[events]]\ncode = \"A\"\nid = 1\nv4 = [{ code = \"X\", id = 10, side = \"subscribe\" }]\n\
                    [[events]]\ncode = \"B\"\nid = 1\nv4 = [{ code = \"Y\", id = 11, side = \"subscribe\" }]\n";
        let e = EventTable::load(&Source::new("events.toml", text)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "events.toml:7: field `events[1].id`: duplicate legacy event id 1"
        );
        let e =
            EventTable::load(&Source::new("events.toml", "[[events]]\ncode = 5\n")).unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.line, e.field.as_str()),
            ("events.toml", 2, "events[0].code")
        );
    }
}
