//! The line loop behind [`translate`](super::translate): read one JSON line, translate it into
//! the output buffer, write the buffer out in large pieces, report anomalies, count, tell
//! progress. Nothing of the input is kept except the open groups of the joiner.

use std::io::{BufRead, Write};

use super::join::{Joiner, Pushed, Unmatched};
use super::record::ToV4;
use super::RecordError;
use super::{Direction, EventsError, Io, Limits, Options, Progress, Summary, PROGRESS_EVERY};
use crate::EventTable;

/// Output is handed to the writer in pieces of about this size: one `write` per few hundred
/// records, and a streamed HTTP answer gets chunks worth sending.
const OUT_CHUNK: usize = 64 * 1024;

/// The outputs of one run and its counters.
struct Sink<'a, O: Write, R: Write> {
    strict: bool,
    skip_invalid: bool,
    out: O,
    buf: Vec<u8>,
    report: R,
    unmatched: Option<&'a mut dyn Write>,
    summary: Summary,
}

pub(super) fn run<O: Write, R: Write>(
    direction: Direction,
    table: &EventTable,
    opts: &Options,
    limits: Limits,
    mut input: impl BufRead,
    io: Io<'_, O, R>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Summary, EventsError> {
    let mut sink = Sink {
        strict: opts.strict,
        skip_invalid: opts.skip_invalid,
        out: io.out,
        buf: Vec::with_capacity(2 * OUT_CHUNK),
        report: io.report,
        unmatched: io.unmatched,
        summary: Summary::default(),
    };
    let mut to_v4 = ToV4::new(table);
    let mut joiner = Joiner::with_limits(table, limits);
    let result = lines(
        direction,
        &mut input,
        &mut sink,
        &mut to_v4,
        &mut joiner,
        progress,
    );
    // What was translated before an error still reaches the output, as it would unbuffered.
    let flushed = sink.flush_out();
    result?;
    flushed?;
    for u in joiner.take_flushed() {
        sink.unmatched_group(&u)?;
    }
    for u in joiner.drain_open() {
        sink.unmatched_group(&u)?;
    }
    sink.flush_out()?;
    sink.out.flush()?;
    sink.report.flush()?;
    if let Some(w) = sink.unmatched.as_mut() {
        w.flush()?;
    }
    progress(&sink.progress(0));
    Ok(sink.summary)
}

fn lines<O: Write, R: Write>(
    direction: Direction,
    input: &mut impl BufRead,
    sink: &mut Sink<'_, O, R>,
    to_v4: &mut ToV4<'_>,
    joiner: &mut Joiner<'_>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(), EventsError> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        // Bytes, not `read_line`: invalid UTF-8 is then a malformed line with its number,
        // not an I/O error that ends the run.
        if input.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        sink.summary.lines += 1;
        let line = sink.summary.lines;
        if line % PROGRESS_EVERY == 0 {
            sink.flush_out()?;
            progress(&sink.progress(joiner.open_groups()));
        }
        let bytes = trim_end(&buf);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue; // blank lines separate nothing in JSON lines; skip them quietly
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                sink.invalid(line, format!("invalid UTF-8: {e}"))?;
                continue;
            }
        };
        match direction {
            Direction::ToV4 => match to_v4.write(text, &mut sink.buf) {
                Ok(n) => sink.summary.written += n as u64,
                Err(e) => sink.refused(line, text, e)?,
            },
            Direction::ToLegacy => {
                let pushed = joiner.push_line(text, line, &mut sink.buf);
                for u in joiner.take_flushed() {
                    sink.summary.flushed_groups += 1;
                    sink.unmatched_group(&u)?;
                }
                sink.summary.peak_open_groups = joiner.peak_open() as u64;
                match pushed {
                    Ok(Pushed::Complete) => sink.summary.written += 1,
                    Ok(Pushed::Pending) => {}
                    Ok(Pushed::Duplicate {
                        code,
                        correlation_id,
                        first_line,
                    }) => {
                        writeln!(
                            sink.report,
                            "line {line}: duplicate {code} in the group with correlationId \
                             {correlation_id} opened at line {first_line}: kept the first, \
                             this one goes to the unmatched output"
                        )?;
                        sink.write_unmatched(text)?;
                    }
                    Ok(Pushed::Unmatched(u)) => sink.unmatched_group(&u)?,
                    Err(e) => sink.refused(line, text, e)?,
                }
            }
        }
        if sink.buf.len() >= OUT_CHUNK {
            sink.flush_out()?;
        }
    }
}

impl<O: Write, R: Write> Sink<'_, O, R> {
    fn flush_out(&mut self) -> Result<(), EventsError> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn progress(&self, open_groups: usize) -> Progress {
        Progress {
            lines: self.summary.lines,
            written: self.summary.written,
            open_groups: open_groups as u64,
            unmatched_groups: self.summary.unmatched_groups,
        }
    }

    /// A record the translation refused: unknown (passed through as read, or an error when
    /// strict) or invalid.
    fn refused(&mut self, line: u64, text: &str, e: RecordError) -> Result<(), EventsError> {
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
                self.buf.extend_from_slice(text.as_bytes());
                self.buf.push(b'\n');
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

    fn write_unmatched(&mut self, record: &str) -> Result<(), EventsError> {
        if let Some(w) = self.unmatched.as_mut() {
            w.write_all(record.as_bytes())?;
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
