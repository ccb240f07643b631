//! The progress bar of a replay, on the conventions of `events --progress` (the same `When`
//! flag): on a terminal, one bar on stderr redrawn a few times a second in the terminal's own
//! colours, cleared at the end so the summary stands alone; off a terminal nothing unless
//! `always`, and then plain lines at most once a second, with no escape codes.

use std::cell::Cell;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::verdict::Kind;
use crate::events::progress::When;

/// No style specifiers: the figures are in `{msg}`, written by [`Bar::advance`].
const TEMPLATE: &str = "replay: {bar:30} {pos}/{len} calls, {per_sec}, {msg} [{elapsed}]";
const PLAIN_EVERY: Duration = Duration::from_secs(1);

pub struct Bar {
    bar: Option<ProgressBar>,
    plain: Option<Cell<Option<Instant>>>,
    total: u64,
    done: Cell<u64>,
    failing: Cell<u64>,
}

impl Bar {
    pub fn new(when: When, total: u64) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let shown = match when {
            When::Never => false,
            When::Auto => terminal,
            When::Always => true,
        };
        let mut b = Self {
            bar: None,
            plain: None,
            total,
            done: Cell::new(0),
            failing: Cell::new(0),
        };
        if shown && terminal {
            let bar =
                ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(ProgressStyle::with_template(TEMPLATE).expect("the template is valid"));
            bar.set_message("0 differing");
            b.bar = Some(bar);
        } else if shown {
            b.plain = Some(Cell::new(None));
        }
        b
    }

    /// One more call judged.
    pub fn advance(&self, kind: Kind) {
        self.done.set(self.done.get() + 1);
        if matches!(kind, Kind::Differing | Kind::Failed) {
            self.failing.set(self.failing.get() + 1);
        }
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} differing", self.failing.get()));
            bar.inc(1);
        }
        if let Some(written) = &self.plain {
            if written.get().is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
                written.set(Some(Instant::now()));
                self.plain_line();
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.plain.is_some() {
            self.plain_line();
        }
    }

    fn plain_line(&self) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "replay: {}/{} calls, {} differing",
            self.done.get(),
            self.total,
            self.failing.get()
        );
    }
}
