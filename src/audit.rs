//! The audit record of a translated operation: which legacy event it stands for and which v4
//! events it causes, as one structured tracing event (target `audit`) and a Prometheus counter.
//! Never a value from the body: ids, codes and outcomes only.

use crate::mapping::EventTable;
use crate::metrics::Metrics;

#[derive(Clone, Copy)]
pub struct AuditLine<'a> {
    pub route: &'a str,
    pub legacy_event: &'a str,
    pub request_id: &'a str,
    pub customer_id: Option<&'a str>,
    /// `applied`, `failed`, `not_attempted`, `refused`.
    pub outcome: &'a str,
    pub status: u16,
}

pub fn record(metrics: &Metrics, events: &EventTable, op: &AuditLine<'_>) {
    let v4 = log_and_count(metrics, events, op);
    crate::telemetry::annotate(&[
        ("gateway.legacy_event", op.legacy_event),
        ("gateway.v4_events", v4),
        ("gateway.outcome", op.outcome),
    ]);
}

/// The audit line and counter of one legacy event; its v4 events' summary.
fn log_and_count<'e>(metrics: &Metrics, events: &'e EventTable, op: &AuditLine<'_>) -> &'e str {
    let (legacy_id, v4) = match events.get(op.legacy_event) {
        Some(ev) => (ev.id, ev.v4_summary.as_str()),
        None => (0, ""),
    };
    tracing::info!(
        target: "audit",
        route = op.route,
        legacy_event = op.legacy_event,
        legacy_event_id = legacy_id,
        v4_events = v4,
        request_id = op.request_id,
        customer_registration_id = op.customer_id.unwrap_or(""),
        outcome = op.outcome,
        status = op.status,
        "translated operation"
    );
    metrics.audit(op.route, op.legacy_event, v4, op.outcome);
    v4
}

/// One record per legacy event of an operation, in order: a v4 `{id}` call stands for its
/// GetById step and then its own event (SPEC 2). `op.legacy_event` is replaced by each.
pub fn record_all(metrics: &Metrics, events: &EventTable, legacy: &[String], op: &AuditLine<'_>) {
    let traced = crate::telemetry::enabled();
    let mut v4_all = Vec::new();
    for ev in legacy {
        let v4 = log_and_count(
            metrics,
            events,
            &AuditLine {
                legacy_event: ev,
                ..*op
            },
        );
        if traced {
            v4_all.push(v4);
        }
    }
    // The request span names the whole operation: every legacy event, in order.
    if traced {
        crate::telemetry::annotate(&[
            ("gateway.legacy_event", &legacy.join(", ")),
            ("gateway.v4_events", &v4_all.join(", ")),
            ("gateway.outcome", op.outcome),
        ]);
    }
}
