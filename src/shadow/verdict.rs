//! What a row's figures support, judged on the window since the last configuration change:
//! ready to cut over, review the differences, not ready, too few copies, or never compared
//! (the calls were all left unshadowed, for example writes with `writes` off). A verdict
//! speaks only for the part it measured: reads being ready says nothing about writes.

use serde::{Deserialize, Serialize};

use super::window::Counts;
use crate::config::ShadowConfig;

/// Below this match ratio a row reads as not ready rather than "review" (the alert rule
/// `LegacyGatewayShadowMatchRatioLow` uses the same line).
pub const REVIEW_RATIO: f64 = 0.99;

/// What makes a row ready (`shadow.ready_min_compared`, `shadow.ready_max_diff_ratio`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Criteria {
    pub ready_min_compared: u64,
    pub ready_max_diff_ratio: f64,
}

impl Criteria {
    pub fn of(cfg: &ShadowConfig) -> Self {
        Criteria {
            ready_min_compared: cfg.ready_min_compared,
            ready_max_diff_ratio: cfg.ready_max_diff_ratio,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Calls arrived but none was compared.
    NotCompared,
    TooFew,
    Ready,
    Review,
    NotReady,
}

impl Verdict {
    pub fn of(c: &Counts, criteria: &Criteria) -> Self {
        let Some(ratio) = c.diff_ratio() else {
            return Verdict::NotCompared;
        };
        if c.compared < criteria.ready_min_compared {
            Verdict::TooFew
        } else if ratio <= criteria.ready_max_diff_ratio {
            Verdict::Ready
        } else if 1.0 - ratio >= REVIEW_RATIO {
            Verdict::Review
        } else {
            Verdict::NotReady
        }
    }

    /// The CSS class and `data-verdict` of the page.
    pub fn class(self) -> &'static str {
        match self {
            Verdict::NotCompared => "none",
            Verdict::TooFew => "few",
            Verdict::Ready => "ready",
            Verdict::Review => "review",
            Verdict::NotReady => "notready",
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Verdict::NotCompared => "never compared",
            Verdict::TooFew => "too few copies yet",
            Verdict::Ready => "ready to cut over",
            Verdict::Review => "review the differences",
            Verdict::NotReady => "not ready",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(compared: u64, differing: u64, noise_only: u64) -> Counts {
        Counts {
            compared,
            matched: compared - differing,
            differing,
            noise_only,
            ..Counts::default()
        }
    }

    #[test]
    fn verdicts_follow_the_criteria_and_noise_counts_as_matched() {
        let c = Criteria {
            ready_min_compared: 1000,
            ready_max_diff_ratio: 0.001,
        };
        assert_eq!(Verdict::of(&Counts::default(), &c), Verdict::NotCompared);
        assert_eq!(Verdict::of(&counts(999, 0, 0), &c), Verdict::TooFew);
        assert_eq!(Verdict::of(&counts(1000, 1, 0), &c), Verdict::Ready);
        assert_eq!(Verdict::of(&counts(1000, 2, 0), &c), Verdict::Review);
        assert_eq!(Verdict::of(&counts(1000, 200, 199), &c), Verdict::Ready);
        assert_eq!(Verdict::of(&counts(1000, 100, 0), &c), Verdict::NotReady);
    }
}
