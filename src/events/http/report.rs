//! The report lines an answer carries.

use std::io::{self, Write};

/// Report lines carried in headers or trailers; the count is always in the summary.
const REPORT_LINES: usize = 50;

/// The first report lines (for headers or trailers) and nothing more: a run's report can be
/// millions of lines.
#[derive(Debug, Default)]
pub(super) struct ReportLines {
    pub(super) lines: Vec<String>,
    partial: Vec<u8>,
}

impl Write for &mut ReportLines {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.lines.len() < REPORT_LINES {
            self.partial.extend_from_slice(data);
            while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
                let line = String::from_utf8_lossy(&self.partial[..end]).into_owned();
                self.partial.drain(..=end);
                if self.lines.len() < REPORT_LINES {
                    self.lines.push(line);
                }
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
