//! One call judged: the replayed answer against the captured one, by the shadow comparator
//! (the same normalising, noise rules and paths a shadow copy gets), each differing path
//! with its provenance (the v4 pointer and the mapping line it is translated by).
//!
//! A replay has no second legacy answer to learn noise from, so noise here is the declared
//! kind (`shadow_noise` in the mappings): a call whose answers differ only there is `noise`,
//! shown apart from `matched` so a reviewer sees what the rules hid, and passes.

use bytes::Bytes;
use serde_json::Value;

use crate::legacy::Family;
use crate::runtime::Runtime;
use crate::shadow::compare::{self, Rules};
use crate::shadow::{provenance, LegacyAnswer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The answers are the same (after the comparator's normalising).
    Matched,
    /// They differ only in declared noise fields.
    Noise,
    /// They differ: a v4 or mapping problem to look at.
    Differing,
    /// Not replayed (a write without `--writes`).
    Skipped,
    /// Sent, but no answer came back from the gateway.
    Failed,
}

/// A differing path, with both values (secrets masked) and where the value comes from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Difference {
    pub path: String,
    pub captured: Value,
    pub replayed: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v4_pointer: Option<String>,
    /// `file:line` of the mapping entry that translates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping: Option<String>,
}

impl Difference {
    /// `$.Result.FirstName (mappings/user-api.toml:29)`.
    pub fn named(&self) -> String {
        match &self.mapping {
            Some(m) => format!("{} ({m})", self.path),
            None => self.path.clone(),
        }
    }
}

/// What one comparison found.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub kind: Kind,
    pub differences: Vec<Difference>,
    /// Paths that differed only in declared noise.
    pub noise: Vec<String>,
}

/// The secrets the values shown must not carry: key names and this call's values.
pub struct Secrets {
    pub keys: Vec<String>,
    pub values: Vec<String>,
}

/// Compares the replayed answer (`status`, `body`) with the captured one, for a call of
/// `family`'s `part` (`read`, `update`, an action).
pub fn judge(
    rt: &Runtime,
    family: Family,
    part: &str,
    captured: (u16, Bytes),
    replayed: (u16, Bytes),
    secrets: &Secrets,
) -> Judged {
    let legacy = LegacyAnswer {
        status: captured.0,
        body: captured.1,
        latency: std::time::Duration::ZERO,
    };
    let differences = compare::answers(rt, family, &legacy, replayed.0, &replayed.1);
    if !differences.is_empty() {
        let values: Vec<&str> = secrets.values.iter().map(String::as_str).collect();
        let shown = differences
            .into_iter()
            .map(|d| {
                let source = provenance::of(rt, family.name(), part, &d.path);
                let (mut captured, mut replayed) = (d.legacy, d.v4);
                compare::mask(&mut captured, &secrets.keys, &values);
                compare::mask(&mut replayed, &secrets.keys, &values);
                Difference {
                    path: d.path,
                    captured,
                    replayed,
                    v4_pointer: source.as_ref().map(|s| s.v4_pointer.clone()),
                    mapping: source.and_then(|s| s.mapping),
                }
            })
            .collect();
        return Judged {
            kind: Kind::Differing,
            differences: shown,
            noise: Vec::new(),
        };
    }
    // Equal under the rules: equal without the noise rules too, or only noise differed.
    let without_noise = Rules {
        noise: &[],
        ..Rules::of(rt, family)
    };
    let a = compare::normalise(&compare::body_value(&legacy.body), without_noise);
    let b = compare::normalise(&compare::body_value(&replayed.1), without_noise);
    let noise: Vec<String> = compare::diff(&a, &b).into_iter().map(|d| d.path).collect();
    Judged {
        kind: if noise.is_empty() {
            Kind::Matched
        } else {
            Kind::Noise
        },
        differences: Vec::new(),
        noise,
    }
}
