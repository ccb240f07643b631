//! One captured call, whatever file it came from: the request as the legacy client sent it
//! (secrets possibly replaced by markers) and the answer the legacy backend gave.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Where a call was read: the file and its line (capture) or entry number (HAR), 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Shared by every call of the file: a long capture holds one copy.
    pub file: Arc<str>,
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A body as captured: JSON, text that is not JSON, or none.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    None,
    Json(serde_json::Value),
    Text(String),
}

impl Body {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Body::None => Vec::new(),
            Body::Json(v) => serde_json::to_vec(v).unwrap_or_default(),
            Body::Text(t) => t.as_bytes().to_vec(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Call {
    pub at: Location,
    pub method: http::Method,
    /// Path and query, as sent (`/User/1001?IgnoreProvider=true`).
    pub target: String,
    /// Header names lower-cased; the last of a repeated name wins (the capture keeps one).
    pub headers: BTreeMap<String, String>,
    pub body: Body,
    /// The tenant the capture recorded, used as the `Host` of an action-API call that
    /// carries none.
    pub tenant: Option<String>,
    pub legacy_status: u16,
    pub legacy_body: Body,
}

impl Call {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// Calls and entries of the input not replayed, by why.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// No legacy API call (a HAR file's pages, assets and other APIs).
    pub not_legacy: u64,
    /// HAR entries without an answer (status 0: blocked, cancelled, failed).
    pub unanswered: u64,
    /// Writes, without `--writes`.
    pub writes: u64,
}

impl Skipped {
    pub fn total(&self) -> u64 {
        self.not_legacy + self.unanswered + self.writes
    }

    /// `2 not legacy API calls, 3 writes (replayed only with --writes)`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.not_legacy > 0 {
            parts.push(format!("{} not legacy API calls", self.not_legacy));
        }
        if self.unanswered > 0 {
            parts.push(format!("{} without an answer", self.unanswered));
        }
        if self.writes > 0 {
            parts.push(format!(
                "{} writes (replayed only with --writes)",
                self.writes
            ));
        }
        if parts.is_empty() {
            "no calls".into()
        } else {
            parts.join(", ")
        }
    }
}
