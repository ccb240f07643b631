//! The copy itself, off the request path: the call replayed through its route (writes
//! towards the staging v4, reads towards the live one unless `shadow.reads_to_staging`), the
//! two answers compared, the outcome recorded (report, kill switch, metrics, diff file, one
//! log line per differing call). The log line names the row and the paths, never a value:
//! logs are kept and shipped more widely than the diff file. Secrets are masked before
//! anything is written.

use std::time::Instant;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use super::compare::{self, Difference};
use super::diffs::DiffWriter;
use super::report::Outcome;
use super::{secrets, LegacyAnswer, Original, RowId, Shadow};
use crate::body::Body;
use crate::error::GatewayError;
use crate::legacy::Family;
use crate::metrics::Metrics;
use crate::routes::Target;
use crate::runtime::Runtime;
use std::sync::Arc;

/// Translates and sends the copy, compares, records.
pub(super) async fn run(
    shadow: &Shadow,
    metrics: &Metrics,
    rt: &Arc<Runtime>,
    id: RowId,
    call: Original,
    legacy: LegacyAnswer,
) {
    let family = call.ctx.family;
    let route = family.name();
    if call.ctx.writes && !rt.shadow_writes {
        // The config check makes this unreachable; never send a write to the live v4.
        return;
    }
    let started = Instant::now();
    let resp = replay(metrics, rt, &call).await;
    let v4_ms = started.elapsed().as_secs_f64() * 1000.0;
    let Ok(resp) = resp else {
        shadow.refused(metrics, &id);
        return;
    };
    let v4_status = resp.status().as_u16();
    let v4_body = resp
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    // A HEAD answer has no body on either side: only the status is compared.
    let v4_body = if call.parts.method == http::Method::HEAD {
        Bytes::new()
    } else {
        v4_body
    };
    let v4_error = v4_status >= 500;
    let differences = compare::answers(rt, family, &legacy, v4_status, &v4_body);
    let learned = if differences.is_empty() {
        Vec::new()
    } else {
        shadow.learn_noise(rt, &call, &legacy).await
    };
    // Masked and serialised before any lock is taken.
    let record = (!differences.is_empty()).then(|| masked_record(rt, &id, &call, &differences));
    let sources: Vec<_> = differences
        .iter()
        .map(|d| super::provenance::of(rt, id.route, &id.part, &d.path))
        .collect();
    if let (Some(record), Some(path)) = (&record, &rt.config.shadow.diff_file) {
        let mut diffs = shadow.diffs.lock().unwrap_or_else(|e| e.into_inner());
        if diffs.as_ref().is_none_or(|w| w.path() != path.as_path()) {
            *diffs = Some(DiffWriter::new(path, rt.config.shadow.diff_file_max_bytes));
        }
        if let Some(w) = diffs.as_mut() {
            if let Err(e) = w.write_line(record.to_string().as_bytes()) {
                tracing::warn!(error = %e, "cannot write the shadow diff file");
            }
        }
    }
    metrics.shadow(route, &id.tenant, "compared");
    let result = if differences.is_empty() {
        "matched"
    } else {
        "differing"
    };
    metrics.shadow(route, &id.tenant, result);
    if v4_error {
        metrics.shadow(route, &id.tenant, "v4_error");
    }
    if record.is_some() {
        let paths: Vec<&str> = differences.iter().map(|d| d.path.as_str()).collect();
        tracing::info!(
            target: "shadow",
            row = %id.name(),
            tenant = %id.tenant,
            request_id = %call.ctx.request_id(),
            paths = ?paths,
            "shadow difference"
        );
    }
    // Counted in the report last: whoever sees the call there (the shadow page, a test, a
    // cut-over check) finds its diff line and its log line already written.
    shadow.record(
        rt,
        metrics,
        &id,
        Outcome {
            differences: &differences,
            masked: record.as_ref().map(|r| &r["differences"]),
            sources: &sources,
            learned: &learned,
            v4_error,
            legacy_ms: legacy.latency.as_secs_f64() * 1000.0,
            v4_ms,
        },
    );
}

/// The call through its own route, towards the shadow orchestrator, marked as a copy. A
/// copy the gateway refuses is `Err`; an upstream's failure is an answer, compared as one.
async fn replay(
    metrics: &Metrics,
    rt: &Arc<Runtime>,
    call: &Original,
) -> Result<Response<Body>, GatewayError> {
    let ctx = &call.ctx;
    let target = Target {
        deadline: None,
        upstream: if ctx.writes {
            &rt.shadow_copies
        } else {
            &rt.shadow_reads
        },
        shadow_of: Some(ctx.request_id()),
    };
    let body = Full::new(call.body.clone());
    let parts = call.parts.clone();
    let answered = match ctx.family {
        Family::UserApi => {
            crate::routes::user_api::handle(rt.clone(), metrics, ctx, parts, body, target).await
        }
        Family::Registry => {
            crate::routes::registry::handle(rt.clone(), metrics, ctx, parts, body, target).await
        }
    };
    match answered {
        Err(e) if e.is_upstream_failure() => Ok(ctx.answer(rt, e)),
        answered => answered,
    }
}

/// The diff file's record of one differing call, with the call's secrets masked.
fn masked_record(rt: &Runtime, id: &RowId, call: &Original, differences: &[Difference]) -> Value {
    let (secret_keys, secret_values) = secrets::of_call(rt, &call.parts, &call.body);
    let values: Vec<&str> = secret_values.iter().map(String::as_str).collect();
    let mut diffs = serde_json::to_value(differences).unwrap_or(Value::Null);
    compare::mask(&mut diffs, &secret_keys, &values);
    let time = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({
        "time": time,
        "method": call.parts.method.as_str(),
        "route": id.route,
        "part": id.part,
        "row": id.name(),
        "tenant": id.tenant,
        "request_id": call.ctx.request_id(),
        "differences": diffs,
    })
}
