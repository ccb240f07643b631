//! The progress line of `legacy-gateway events`: records, records/s, open groups and
//! unmatched groups on stderr, redrawn a few times a second (indicatif), so a run over a
//! billion-record log says where it is. Report lines (unmatched groups, skipped records) share
//! stderr with it: they are buffered and written with the line lifted out of the way.
//!
//! `auto` shows it only on a terminal: a log file or a pipe gets nothing until the summary.
//! `always` shows it anyway; off a terminal it is then one plain line per second (no cursor
//! movement), so a log keeps a readable trail.

use std::io::{self, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

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

/// The progress line of one run, or nothing.
#[derive(Debug)]
pub struct Display {
    bar: Option<ProgressBar>,
}

impl Display {
    pub fn new(when: When) -> Self {
        let terminal = io::stderr().is_terminal();
        let shown = match when {
            When::Never => false,
            When::Auto => terminal,
            When::Always => true,
        };
        if !shown {
            return Self { bar: None };
        }
        let target = if terminal {
            ProgressDrawTarget::stderr_with_hz(4)
        } else {
            ProgressDrawTarget::term_like_with_hz(Box::new(PlainLines), 1)
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template(
                "events: {human_pos} records, {per_sec:.0} records/s, {msg} [{elapsed}]",
            )
            .expect("the template is valid"),
        );
        bar.set_message("0 open groups, 0 unmatched");
        Self { bar: Some(bar) }
    }

    /// Whether a progress line is drawn.
    pub fn shown(&self) -> bool {
        self.bar.is_some()
    }

    pub fn update(&self, p: &Progress) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{} open groups, {} unmatched",
                p.open_groups, p.unmatched_groups
            ));
            bar.set_position(p.lines);
        }
    }

    /// Removes the line, so the summary stands alone.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// The writer for report lines: stderr, buffered, around the progress line.
    pub fn report(&self) -> Report {
        Report {
            buf: Vec::with_capacity(REPORT_BUF),
            bar: self.bar.clone(),
        }
    }
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

/// A "terminal" that is not one: each draw becomes one line of its own.
#[derive(Debug)]
struct PlainLines;

impl TermLike for PlainLines {
    fn width(&self) -> u16 {
        120
    }
    fn move_cursor_up(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        writeln!(io::stderr().lock(), "{s}")
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        if s.is_empty() {
            return Ok(());
        }
        writeln!(io::stderr().lock(), "{s}")
    }
    fn clear_line(&self) -> io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}
