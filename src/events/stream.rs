//! The line loop behind [`translate`](super::translate): read one JSON line, translate it, write
//! what is ready, report anomalies, count. Nothing of the input is kept except the open groups
//! of the joiner.

use std::io::{BufRead, Write};

use serde_json::Value;

use super::join::{Joined, Joiner, Unmatched};
use super::record::{legacy_to_v4, RecordError};
use super::{Direction, EventsError, Options, Summary};
use crate::mapping::EventTable;

/// The outputs of one run and its counters.
struct Sink<'a, O: Write, R: Write> {
    strict: bool,
    skip_invalid: bool,
    out: O,
    report: R,
    unmatched: Option<&'a mut dyn Write>,
    summary: Summary,
}

pub(super) fn run(
    direction: Direction,
    table: &EventTable,
    opts: &Options,
    mut input: impl BufRead,
    out: impl Write,
    report: impl Write,
    unmatched: Option<&mut dyn Write>,
) -> Result<Summary, EventsError> {
    let mut sink = Sink {
        strict: opts.strict,
        skip_invalid: opts.skip_invalid,
        out,
        report,
        unmatched,
        summary: Summary::default(),
    };
    let mut joiner = Joiner::new(table);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // Bytes, not `read_line`: invalid UTF-8 is then a malformed line with its number,
        // not an I/O error that ends the run.
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        sink.summary.lines += 1;
        let line = sink.summary.lines;
        let text = trim_end(&buf);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue; // blank lines separate nothing in JSON lines; skip them quietly
        }
        let record: Value = match serde_json::from_slice(text) {
            Ok(v) => v,
            Err(e) => {
                sink.invalid(line, e.to_string())?;
                continue;
            }
        };
        match direction {
            Direction::ToV4 => match legacy_to_v4(table, &record) {
                Ok(records) => {
                    for r in &records {
                        sink.write(r)?;
                    }
                }
                Err(e) => sink.refused(line, text, e)?,
            },
            Direction::ToLegacy => match joiner.push(record, line) {
                Ok(Joined::Complete(r)) => sink.write(&r)?,
                Ok(Joined::Pending) => {}
                Ok(Joined::Duplicate {
                    code,
                    correlation_id,
                    first_line,
                    record,
                }) => {
                    writeln!(
                        sink.report,
                        "line {line}: duplicate {code} in the group with correlationId \
                         {correlation_id} opened at line {first_line}: kept the first, \
                         this one goes to the unmatched output"
                    )?;
                    sink.write_unmatched(&record)?;
                }
                Ok(Joined::Unmatched(u)) => sink.unmatched_group(&u)?,
                Err(e) => sink.refused(line, text, e)?,
            },
        }
    }
    for u in joiner.finish() {
        sink.unmatched_group(&u)?;
    }
    sink.out.flush()?;
    sink.report.flush()?;
    if let Some(w) = sink.unmatched.as_mut() {
        w.flush()?;
    }
    Ok(sink.summary)
}

impl<O: Write, R: Write> Sink<'_, O, R> {
    fn write(&mut self, record: &Value) -> Result<(), EventsError> {
        serde_json::to_writer(&mut self.out, record).map_err(std::io::Error::from)?;
        self.out.write_all(b"\n")?;
        self.summary.written += 1;
        Ok(())
    }

    /// A record the translation refused: unknown (passed through as read, or an error when
    /// strict) or invalid.
    fn refused(&mut self, line: u64, text: &[u8], e: RecordError) -> Result<(), EventsError> {
        match e {
            RecordError::Invalid(reason) => self.invalid(line, reason),
            RecordError::Unknown { code } if self.strict => {
                Err(EventsError::Unknown { line, code })
            }
            RecordError::Unknown { code } => {
                writeln!(
                    self.report,
                    "line {line}: unknown event {code}: passed through unchanged"
                )?;
                self.out.write_all(text)?;
                self.out.write_all(b"\n")?;
                self.summary.unknown += 1;
                self.summary.written += 1;
                Ok(())
            }
        }
    }

    fn invalid(&mut self, line: u64, reason: String) -> Result<(), EventsError> {
        if !self.skip_invalid {
            return Err(EventsError::Invalid { line, reason });
        }
        writeln!(self.report, "line {line}: skipped invalid record: {reason}")?;
        self.summary.invalid += 1;
        Ok(())
    }

    fn unmatched_group(&mut self, u: &Unmatched) -> Result<(), EventsError> {
        writeln!(self.report, "{u}")?;
        for r in &u.records {
            self.write_unmatched(r)?;
        }
        self.summary.unmatched_groups += 1;
        Ok(())
    }

    fn write_unmatched(&mut self, record: &Value) -> Result<(), EventsError> {
        if let Some(w) = self.unmatched.as_mut() {
            serde_json::to_writer(&mut **w, record).map_err(std::io::Error::from)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// The line without its terminator (`\n` or `\r\n`).
fn trim_end(buf: &[u8]) -> &[u8] {
    let buf = buf.strip_suffix(b"\n").unwrap_or(buf);
    buf.strip_suffix(b"\r").unwrap_or(buf)
}
