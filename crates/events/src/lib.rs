//! The event transcoder of legacy-gateway (SPEC section 2): legacy event records ↔ v4 event
//! records, as JSON lines, streamed, by an [`EventTable`]. The gateway's
//! `legacy-gateway events to-v4|to-legacy` and `POST /_gateway/events/to-v4|to-legacy` both
//! call [`translate_with`]; anything else that holds a table can too, without the gateway.
//! This crate knows only the table it is given: no configuration, server or HTTP.
//!
//! # Layout
//! - here: [`translate`], the options and limits of a run, and [`RecordError`], which every
//!   part below refuses a record with.
//! - [`key`]: the one key-case rule (heck, with a fast path), which the gateway's request
//!   and answer bodies use as well.
//! - [`table`]: the [`EventTable`], read from TOML and checked.
//! - [`record`]: one record at a time — which event a record is, legacy → v4.
//! - [`join`]: v4 → legacy, the [`Joiner`] that groups v4 records on their correlation id,
//!   within the [`Limits`].
//! - [`transcode`]: the byte path both directions take: borrowed parsing, keys converted
//!   straight into one output buffer.
//! - `stream`: the line loop — read, translate, write, report, count, tell progress.
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
//!   the `unmatched` writer, oldest group first. So do groups a [limit](Limits) flushes early
//!   (the oldest open group, the moment the limit is passed), their report line saying which
//!   limit; a late member of such a group opens a new group, which ends unmatched as well. Together with the duplicates, every input
//!   record ends up in exactly one place: the output, the unmatched writer or (invalid lines)
//!   the report.
//! - **Output** is compact JSON: scalars and strings as read (escapes kept), keys in input
//!   order after the identity keys, which come first. Unmatched and unknown records are
//!   written byte for byte as read. A key that appears twice in one object makes the record
//!   invalid (a tree parser would silently keep one of the two values).
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
//! use legacy_gateway_events::{translate, Direction, EventTable, Options};
//!
//! let table = EventTable::load(include_str!("../../../mappings/events.toml")).unwrap();
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
pub mod key;
pub mod record;
mod stream;
pub mod table;
pub mod transcode;

pub use join::{Flushed, Joined, Joiner, Pushed, Unmatched};
pub use record::{legacy_to_v4, ToV4};
pub use table::{EventTable, TableError, TomlSource};

/// Why one record could not be translated. Here rather than in `record`, because every part
/// of the byte path (`transcode`, `record`, `join`) refuses records with it: defined below
/// them all, it ties none of them to another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not a JSON object, keys that collide after case conversion, an identity field of the
    /// wrong type, or a code and an id naming different events.
    #[error("{0}")]
    Invalid(String),
    /// An event the table does not know; `code` is the code, or `id <n>` when only an id was
    /// given. The stream passes such records through unchanged (or stops, in strict mode).
    #[error("unknown event {code}")]
    Unknown { code: String },
}

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

/// What bounds the memory of a to-legacy run: the open groups. Beyond either limit the oldest
/// open group is flushed as unmatched (written to the unmatched output and reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open groups held at most (at least 1). At about 300 bytes per open group of two
    /// 150-byte records, the default keeps the joiner near 30 MB.
    pub max_open_groups: usize,
    /// Records (input lines) a group may stay open; `None`: no age limit.
    pub max_group_age: Option<u64>,
}

/// The default `max_open_groups`.
pub const DEFAULT_MAX_OPEN_GROUPS: usize = 100_000;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_open_groups: DEFAULT_MAX_OPEN_GROUPS,
            max_group_age: None,
        }
    }
}

/// Where a run is, handed to the progress callback every [`PROGRESS_EVERY`] lines and at
/// the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub lines: u64,
    pub written: u64,
    pub open_groups: u64,
    pub unmatched_groups: u64,
}

/// Lines between two progress callbacks: often enough for a display, rare enough to cost
/// nothing.
pub const PROGRESS_EVERY: u64 = 1 << 14;

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
    /// Groups that never completed (to-legacy only), those flushed early included.
    pub unmatched_groups: u64,
    /// Of those, the groups a limit flushed before the end of the input.
    pub flushed_groups: u64,
    /// The most groups open at once.
    pub peak_open_groups: u64,
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
/// default [`Limits`], not by the input.
pub fn translate(
    direction: Direction,
    table: &EventTable,
    opts: &Options,
    input: impl std::io::BufRead,
    out: impl std::io::Write,
    report: impl std::io::Write,
    unmatched: Option<&mut dyn std::io::Write>,
) -> Result<Summary, EventsError> {
    let io = Io {
        out,
        report,
        unmatched,
    };
    translate_with(
        direction,
        table,
        opts,
        Limits::default(),
        input,
        io,
        &mut |_| {},
    )
}

/// The outputs of a run: translated records, report lines, unmatched records.
pub struct Io<'u, O, R> {
    pub out: O,
    pub report: R,
    pub unmatched: Option<&'u mut dyn std::io::Write>,
}

/// [`translate`] with explicit limits and a progress callback (called every
/// [`PROGRESS_EVERY`] lines and once at the end).
pub fn translate_with<O: std::io::Write, R: std::io::Write>(
    direction: Direction,
    table: &EventTable,
    opts: &Options,
    limits: Limits,
    input: impl std::io::BufRead,
    io: Io<'_, O, R>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Summary, EventsError> {
    stream::run(direction, table, opts, limits, input, io, progress)
}
