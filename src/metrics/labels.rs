//! The label sets of every family. Each is a type, not a list of strings, so a label set is
//! bounded by construction (route names from the code, status codes, event codes) and the
//! hot path compares integers and static strings rather than formatting labels.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

/// How an upstream call ended: its HTTP status, or why there is none. A type rather than a
/// string so the hot path does not format a status code per call.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum UpstreamOutcome {
    Status(u16),
    Timeout,
    Unreachable,
    Invalid,
}

impl EncodeLabelValue for UpstreamOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        match self {
            Self::Status(code) => write!(encoder, "{code}"),
            Self::Timeout => encoder.write_str("timeout"),
            Self::Unreachable => encoder.write_str("unreachable"),
            Self::Invalid => encoder.write_str("invalid"),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub(super) struct RequestLabels {
    /// A route name from the code (`RouteLabel`), never from a request: bounded, and no
    /// allocation per request.
    pub(super) route: &'static str,
    pub(super) status: u16,
    pub(super) tenant: TenantLabel,
    /// `translate`, `shadow`, `legacy`, or `none` (probes, refusals before routing).
    pub(super) mode: &'static str,
}

/// A tenant as configured (`CA`), or `other`: one of a bounded set made at start-up and on
/// reload, shared, so a request clones a pointer and never formats or allocates a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct TenantLabel(pub std::sync::Arc<str>);

impl EncodeLabelValue for TenantLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        encoder.write_str(&self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub(super) struct UpstreamLabels {
    pub(super) call: String,
    pub(super) outcome: UpstreamOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub(super) struct AuditLabels {
    pub(super) route: String,
    pub(super) legacy_event: String,
    pub(super) v4_events: String,
    pub(super) outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct CutoverLabels {
    pub(super) route: String,
    pub(super) part: String,
    pub(super) tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ShadowLabels {
    pub(super) route: String,
    pub(super) tenant: String,
    pub(super) result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct BuildLabels {
    pub(super) version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ConfigLabels {
    pub(super) hash: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ReloadLabels {
    pub(super) result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RouteOnly {
    pub(super) route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct UpstreamOnly {
    pub(super) upstream: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RateLimitLabels {
    pub(super) action: String,
    pub(super) key: &'static str,
}
