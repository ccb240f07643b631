//! The input files of a run, in the order given, walked as one sequence of calls.

use std::path::PathBuf;

use super::call::{Call, Skipped};
use super::jsonl::Lines;
use super::ReplayError;

/// The input files, in the order given. Capture files are read a line at a time each time
/// the calls are walked (twice: checked, then sent), so a day of capture is never held in
/// memory; a HAR file is one JSON document and is held, parsed.
#[derive(Debug, Default)]
pub struct Inputs {
    sources: Vec<Input>,
    /// Entries skipped while loading (HAR entries without an answer).
    pub skipped: Skipped,
}

#[derive(Debug)]
enum Input {
    Lines { name: String, path: PathBuf },
    Har(Vec<Call>),
}

impl Inputs {
    pub fn push_lines(&mut self, name: String, path: PathBuf) {
        self.sources.push(Input::Lines { name, path });
    }

    pub fn push_har(&mut self, calls: Vec<Call>) {
        self.sources.push(Input::Har(calls));
    }

    /// Every call, in file order.
    pub fn calls(&self) -> impl Iterator<Item = Result<Call, ReplayError>> + '_ {
        self.sources
            .iter()
            .flat_map(|s| -> Box<dyn Iterator<Item = _>> {
                match s {
                    Input::Har(calls) => Box::new(calls.iter().cloned().map(Ok)),
                    Input::Lines { name, path } => match std::fs::File::open(path) {
                        Ok(f) => Box::new(Lines::new(
                            name.as_str().into(),
                            std::io::BufReader::with_capacity(256 * 1024, f),
                        )),
                        Err(source) => Box::new(std::iter::once(Err(ReplayError::Read {
                            file: name.clone(),
                            source,
                        }))),
                    },
                }
            })
    }
}
