//! What a replay found, per call in file order and summed up, and the files it is written
//! to: `--report` (JSON), `--junit` ([`super::junit`]), `--html` ([`super::html`]). The
//! outputs hold no timing per call, so two runs over the same input and v4 write the same
//! files but for the summary's duration and rate.

use std::time::Duration;

use serde::Serialize;

use super::call::{Location, Skipped};
use super::verdict::{Judged, Kind};

/// One call and what became of it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub at: Location,
    pub method: String,
    pub target: String,
    pub route: &'static str,
    pub part: String,
    pub judged: Judged,
}

impl Outcome {
    /// `GET /User/1001 (capture.jsonl:3)`: the test-case name.
    pub fn name(&self) -> String {
        format!("{} {} ({})", self.method, self.target, self.at)
    }

    /// `user-api.read`: the row the shadow report would count it under.
    pub fn row(&self) -> String {
        format!("{}.{}", self.route, self.part)
    }
}

/// The figures of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Calls replayed (sent).
    pub calls: u64,
    pub matched: u64,
    pub noise: u64,
    pub differing: u64,
    pub failed: u64,
    pub skipped: Skipped,
    pub seconds: f64,
    pub calls_per_second: f64,
}

impl Summary {
    pub fn of(outcomes: &[Outcome], skipped: Skipped, elapsed: Duration) -> Self {
        let count = |k: Kind| outcomes.iter().filter(|o| o.judged.kind == k).count() as u64;
        let calls = outcomes
            .iter()
            .filter(|o| o.judged.kind != Kind::Skipped)
            .count() as u64;
        let seconds = elapsed.as_secs_f64();
        Self {
            calls,
            matched: count(Kind::Matched),
            noise: count(Kind::Noise),
            differing: count(Kind::Differing),
            failed: count(Kind::Failed),
            skipped,
            seconds,
            calls_per_second: if seconds > 0.0 {
                calls as f64 / seconds
            } else {
                0.0
            },
        }
    }

    /// Every call replayed matched or differed only in noise.
    pub fn green(&self) -> bool {
        self.differing == 0 && self.failed == 0
    }

    /// The closing line on stdout.
    pub fn line(&self) -> String {
        let skipped = match self.skipped.total() {
            0 => String::new(),
            _ => format!("; skipped: {}", self.skipped.describe()),
        };
        format!(
            "replay: {} calls: {} matched, {} noise only, {} differing, {} failed{skipped} ({:.1} s, {:.0} calls/s) -> {}",
            self.calls,
            self.matched,
            self.noise,
            self.differing,
            self.failed,
            self.seconds,
            self.calls_per_second,
            if self.green() { "PASS" } else { "FAIL" }
        )
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Ran {
    /// What the calls went to (credentials masked).
    pub target: String,
    pub outcomes: Vec<Outcome>,
    pub summary: Summary,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    target: &'a str,
    summary: &'a Summary,
    calls: Vec<JsonCall<'a>>,
}

#[derive(Serialize)]
struct JsonCall<'a> {
    name: String,
    file: &'a str,
    line: usize,
    method: &'a str,
    target: &'a str,
    row: String,
    outcome: Kind,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    differences: &'a [super::verdict::Difference],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    noise: &'a [String],
}

/// The `--report` document.
pub fn json(ran: &Ran) -> String {
    let report = JsonReport {
        version: 1,
        target: &ran.target,
        summary: &ran.summary,
        calls: ran
            .outcomes
            .iter()
            .map(|o| JsonCall {
                name: o.name(),
                file: &o.at.file,
                line: o.at.line,
                method: &o.method,
                target: &o.target,
                row: o.row(),
                outcome: o.judged.kind,
                differences: &o.judged.differences,
                noise: &o.judged.noise,
            })
            .collect(),
    };
    serde_json::to_string_pretty(&report).unwrap_or_default()
}
