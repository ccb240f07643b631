//! The progress line of `legacy-gateway events`: records, records/s, open groups and
//! unmatched groups on stderr, so a run over a billion-record log says where it is. Report
//! lines (unmatched groups, skipped records) share stderr with it: they are buffered and
//! written with the line lifted out of the way.
//!
//! `auto` shows it only on a terminal: a log file or a pipe gets nothing until the summary.
//! On a terminal it is one line redrawn a few times a second (indicatif), in the terminal's
//! own colour (a styled rate was black on dark themes). `always` off a terminal writes plain
//! lines instead, at most one a second and the final figures at the end, with no cursor
//! movement, escape codes or blank lines, so a log keeps a readable trail.

use std::cell::Cell;
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Progress;

/// When the progress line is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum When {
    Never,
    Auto,
    Always,
}

/// Report bytes held before they are written (with the progress line lifted).
const REPORT_BUF: usize = 16 * 1024;
/// No style specifiers (`{x:.red}`): the figures are in `{msg}`, written by [`line`].
const TEMPLATE: &str = "events: {msg} [{elapsed}]";
/// Plain lines off a terminal: one a second is a trail, not a flood.
const PLAIN_EVERY: Duration = Duration::from_secs(1);

/// The progress line of one run, or nothing.
#[derive(Debug)]
pub struct Display {
    bar: Option<ProgressBar>,
    /// Off a terminal with `always`: when the last plain line was written (`None`: not yet).
    plain: Option<Cell<Option<Instant>>>,
    started: Instant,
    last: Cell<Progress>,
}

impl Display {
    pub fn new(when: When) -> Self {
        let terminal = io::stderr().is_terminal();
        let shown = match when {
            When::Never => false,
            When::Auto => terminal,
            When::Always => true,
        };
        let mut d = Self {
            bar: None,
            plain: None,
            started: Instant::now(),
            last: Cell::new(Progress::default()),
        };
        if shown && terminal {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(ProgressStyle::with_template(TEMPLATE).expect("the template is valid"));
            bar.set_message(line(&Progress::default(), Duration::ZERO));
            d.bar = Some(bar);
        } else if shown {
            d.plain = Some(Cell::new(None));
        }
        d
    }

    /// Whether a progress line is drawn.
    pub fn shown(&self) -> bool {
        self.bar.is_some() || self.plain.is_some()
    }

    pub fn update(&self, p: &Progress) {
        self.last.set(*p);
        if let Some(bar) = &self.bar {
            bar.set_message(line(p, self.started.elapsed()));
        }
        if let Some(written) = &self.plain {
            if written.get().is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
                written.set(Some(Instant::now()));
                self.plain_line(p);
            }
        }
    }

    /// Removes the line on a terminal, so the summary stands alone; off one, writes the
    /// final figures as the last progress line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.plain.is_some() {
            self.plain_line(&self.last.get());
        }
    }

    /// One progress line off a terminal, with the whole seconds since the start.
    fn plain_line(&self, p: &Progress) {
        let elapsed = self.started.elapsed();
        let _ = writeln!(
            io::stderr().lock(),
            "events: {} [{}s]",
            line(p, elapsed),
            elapsed.as_secs()
        );
    }

    /// The writer for report lines: stderr, buffered, around the progress line.
    pub fn report(&self) -> Report {
        Report {
            buf: Vec::with_capacity(REPORT_BUF),
            bar: self.bar.clone(),
        }
    }
}

/// `1,234,567 records, 98,765 records/s, 3 open groups, 0 unmatched`: whole records per
/// second, grouped by thousands, and the unit said once.
fn line(p: &Progress, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    format!(
        "{} records, {} records/s, {} open groups, {} unmatched",
        grouped(p.lines),
        grouped((p.lines as f64 / secs).round() as u64),
        grouped(p.open_groups),
        grouped(p.unmatched_groups)
    )
}

/// `1234567` → `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Report lines to stderr. Buffered (stderr itself is not: one system call per line would
/// cost more than translating the record), flushed when full and at the end.
#[derive(Debug)]
pub struct Report {
    buf: Vec<u8>,
    bar: Option<ProgressBar>,
}

impl Write for Report {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= REPORT_BUF {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let write = || io::stderr().lock().write_all(&self.buf);
        match &self.bar {
            Some(bar) => bar.suspend(write)?,
            None => write()?,
        }
        self.buf.clear();
        Ok(())
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_whole_records_per_second_said_once() {
        let p = Progress {
            lines: 1_255_140,
            written: 0,
            open_groups: 3,
            unmatched_groups: 1234,
        };
        assert_eq!(
            line(&p, Duration::from_secs(2)),
            "1,255,140 records, 627,570 records/s, 3 open groups, 1,234 unmatched"
        );
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
    }

    #[test]
    fn the_terminal_template_leaves_colours_to_the_terminal() {
        // `{key:.style}` colours the field (`{per_sec:.0}` was black).
        let fields = TEMPLATE
            .split('{')
            .skip(1)
            .map(|f| f.split('}').next().unwrap());
        assert!(fields.clone().all(|f| !f.contains(':')), "{TEMPLATE}");
        assert_eq!(fields.collect::<Vec<_>>(), ["msg", "elapsed"]);
    }
}
