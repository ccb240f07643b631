//! Event record translation (SPEC section 2): legacy event records ↔ v4 event records, as
//! JSON lines, streamed. `legacy-gateway events to-v4|to-legacy` and
//! `POST /_gateway/events/to-v4|to-legacy` both call [`translate`].
//!
//! # Layout
//! - [`record`]: one record at a time — key case, which event a record is, legacy → v4.
//! - [`join`]: v4 → legacy, the [`Joiner`] that groups v4 records on their correlation id.
//! - `stream`: the line loop — read, translate, write, report, count.
//!
//! # Formats
//! Legacy records are PascalCase and name their event by `EventTypeCode` (or, when that is
//! absent, `EventId`); v4 records are camelCase with `eventTypeCode` / `eventId` and `side`.
//! All other fields are carried over with their keys converted at every depth (objects inside
//! arrays too), see [`record`].
//!
//! # Decisions
//! - **to-v4** writes one record per v4 event of the legacy event, in table order. A legacy
//!   record without `CorrelationId` keeps none: nothing is invented, so its v4 records can be
//!   joined back only when its event has a single v4 event (PWDREQ); otherwise to-legacy
//!   reports them as unmatched.
//! - **Identity:** the code wins; an id alone is looked up by id (an integer, or a string of
//!   digits); a code and an id that name different events, or neither present, make the record
//!   invalid. A v4 record's `side` is not checked against the table, only dropped.
//! - **Groups** are keyed by legacy event and correlation id (one request may write several
//!   legacy events under one id). The legacy record is written the moment its group completes.
//!   Fields are merged in table order, the first value of a key winning, so the result does
//!   not depend on the arrival order. A correlation id that is a number is used as its digits.
//! - **Duplicate** v4 event in an open group: reported, the first one kept, the duplicate
//!   written to the `unmatched` writer.
//! - **Incomplete** groups at end of input (and multi-event records without a correlation id,
//!   at once) are reported one line each with their missing v4 codes, and their records go to
//!   the `unmatched` writer, oldest group first. Together with the duplicates, every input
//!   record ends up in exactly one place: the output, the unmatched writer or (invalid lines)
//!   the report.
//! - **Unknown** events pass through as read, byte for byte, and are counted and reported;
//!   with `strict` they stop the run. `strict` is about unknown events only: with both
//!   options, an unknown event still stops the run.
//! - **Invalid** lines (not JSON, not an object, keys colliding after case conversion, an
//!   identity field of the wrong type) stop the run with their 1-based line number; with
//!   `skip_invalid` they are reported and counted. Blank lines are skipped silently but counted
//!   in `lines`, so line numbers match an editor's.
//! - When the run stops on an error, the groups still open are not reported: the run failed
//!   as a whole and says so.
//!
//! # Example
//! ```
//! use legacy_gateway::events::{translate, Direction, Options};
//! use legacy_gateway::mapping::{EventTable, EMBEDDED_EVENTS};
//! use legacy_gateway::source::Source;
//!
//! let table = EventTable::load(&Source::new("events.toml", EMBEDDED_EVENTS)).unwrap();
//! let input = br#"{"EventTypeCode":"CHGPWD","CorrelationId":"c-1","CustomerRegistrationId":"1001"}"#;
//! let mut out = Vec::new();
//! let summary = translate(Direction::ToV4, &table, &Options::default(), &input[..], &mut out,
//!                         std::io::sink(), None).unwrap();
//! assert_eq!(summary.written, 2); // AUTHSYSTEM_USER_CHANGEPASSWORD + SUBSCRIBE_USER_CHANGEPASSWORD
//!
//! let mut back = Vec::new();
//! translate(Direction::ToLegacy, &table, &Options::default(), &out[..], &mut back,
//!           std::io::sink(), None).unwrap();
//! let legacy: serde_json::Value = serde_json::from_slice(&back).unwrap();
//! assert_eq!(legacy["EventId"], 22);
//! ```

pub mod join;
pub mod record;
mod stream;

pub use join::{Joined, Joiner, Unmatched};
pub use record::{legacy_to_v4, RecordError};

use crate::mapping::EventTable;

/// Which way a stream is translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Legacy records in, v4 records out.
    ToV4,
    /// v4 records in, joined legacy records out.
    ToLegacy,
}

/// How strictly a run treats records it cannot translate.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Stop on an unknown event instead of passing it through.
    pub strict: bool,
    /// Report and skip malformed lines instead of stopping.
    pub skip_invalid: bool,
}

/// What a run did, for the CLI's last line and the HTTP answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Lines read (blank ones included, so the count matches line numbers).
    pub lines: u64,
    /// Records written to the output (translated and passed through).
    pub written: u64,
    /// Records with an unknown event, passed through.
    pub unknown: u64,
    /// Malformed lines skipped (only with `skip_invalid`).
    pub invalid: u64,
    /// Groups that never completed (to-legacy only).
    pub unmatched_groups: u64,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// A malformed line; `line` is 1-based.
    #[error("line {line}: invalid record: {reason}")]
    Invalid { line: u64, reason: String },
    /// An unknown event in strict mode.
    #[error("line {line}: unknown event {code} (strict mode)")]
    Unknown { line: u64, code: String },
    /// Reading the input or writing an output failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// The streaming core: reads JSON lines from `input`, writes translated JSON lines to `out`
/// as soon as they are ready (pass a buffered writer; `out` is flushed at the end).
///
/// `report` gets one human-readable line per anomaly (unmatched group, duplicate, skipped
/// invalid line, unknown event). `unmatched` gets the raw records of groups that did not
/// complete and of duplicates; without it they are only reported. Memory is bounded by the
/// number of open groups, not by the input.
pub fn translate(
    direction: Direction,
    table: &EventTable,
    opts: &Options,
    input: impl std::io::BufRead,
    out: impl std::io::Write,
    report: impl std::io::Write,
    unmatched: Option<&mut dyn std::io::Write>,
) -> Result<Summary, EventsError> {
    stream::run(direction, table, opts, input, out, report, unmatched)
}
