//! Admission, on the request path: whether a call gets a copy at all (never a copy of a
//! copy, writes only where the route opted in, the per-user sample, the kill switch, the body
//! cap, the bound on copies in the system), and handing the copy to the lane. Everything
//! here is cheap and never fails the caller.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::window::Reason;
use super::{copy, LegacyAnswer, Original, RowId, Shadow};
use crate::legacy::Family;
use crate::metrics::Metrics;
use crate::routes::SHADOW_OF;
use crate::runtime::Runtime;

impl Shadow {
    /// Decides whether the call gets a copy and, if so, starts it in the background; a call
    /// that gets none is counted with the reason. Returns immediately.
    pub fn offer(
        self: &Arc<Self>,
        metrics: &Arc<Metrics>,
        rt: &Arc<Runtime>,
        call: Original,
        legacy: LegacyAnswer,
    ) {
        if call.parts.headers.contains_key(&SHADOW_OF) {
            return; // a copy of a copy: never, and not a client's call to count
        }
        let family = call.ctx.family;
        let id = RowId {
            route: family.name(),
            part: part_name(rt, family, call.ctx.part.as_deref()),
            tenant: tenant_label(rt, family, &call.ctx.tenant),
        };
        let cfg = rt.config.shadow.route(family.name());
        if call.ctx.writes && !cfg.writes {
            self.not_shadowed(metrics, &id, Reason::WritesOff);
            return;
        }
        if crate::config::modes::bucket(&call.sample_key) >= cfg.sample_percent {
            self.not_shadowed(metrics, &id, Reason::SampledOut);
            return;
        }
        let now = Instant::now();
        let allowed = self
            .lock()
            .kill
            .entry(family.name().to_string())
            .or_default()
            .allows(now);
        if !allowed {
            self.not_shadowed(metrics, &id, Reason::KillSwitch);
            return;
        }
        if call.body.len() > rt.config.shadow.max_body_bytes {
            self.not_shadowed(metrics, &id, Reason::BodyTooLarge);
            return;
        }
        let limit = rt.config.shadow.max_concurrency + rt.config.shadow.max_queue;
        if self.in_system.fetch_add(1, Ordering::AcqRel) >= limit {
            self.in_system.fetch_sub(1, Ordering::AcqRel);
            self.not_shadowed(metrics, &id, Reason::QueueFull);
            return;
        }
        // A child of the request span, when traces are exported: the copy runs later.
        let span = crate::telemetry::enabled()
            .then(|| crate::telemetry::shadow_span(family.name(), &id.tenant));
        let run = {
            let shadow = self.clone();
            let metrics = metrics.clone();
            let rt = rt.clone();
            async move {
                let permit = rt.shadow_permits.clone().acquire_owned().await;
                copy::run(&shadow, &metrics, &rt, id, call, legacy).await;
                drop(permit);
                shadow.in_system.fetch_sub(1, Ordering::AcqRel);
            }
        };
        let run = {
            use futures_util::FutureExt;
            use tracing::Instrument;
            match span {
                Some(span) => run.instrument(span).left_future(),
                None => run.right_future(),
            }
        };
        match self.lane.get_or_init(super::lane::Lane::start) {
            Some(lane) => lane.spawn(run),
            None => {
                tokio::spawn(run);
            }
        }
    }
}

/// The part of the API a row stands for: `read` or `update`, or the action as the mapping
/// names it; `other` for an action the mapping does not know.
pub(crate) fn part_name(rt: &Runtime, family: Family, part: Option<&str>) -> String {
    match (family, part) {
        (Family::Registry, Some(a)) => rt
            .mappings
            .registry
            .action(a)
            .map_or_else(|| "other".to_string(), |(a, _)| a.name.clone()),
        (_, Some(p)) => p.to_string(),
        (_, None) => "other".to_string(),
    }
}

/// The tenant as a label, spelled as configured: a `[[modes]]` rule's tenant, or a
/// `[[tenants]]` entry's client code (User API) or host (action API); `other` for any other,
/// so a client inventing `X-ClientCode` values or Hosts cannot grow the metric's label set
/// or the report.
fn tenant_label(rt: &Runtime, family: Family, tenant: &str) -> String {
    let modes = rt
        .config
        .modes
        .rules
        .iter()
        .filter_map(|r| r.tenant.as_deref());
    let configured = match family {
        Family::UserApi => modes
            .chain(rt.config.tenants.iter().map(|t| t.client_code.as_str()))
            .find(|t| t.eq_ignore_ascii_case(tenant)),
        Family::Registry => modes
            .chain(rt.config.tenants.iter().map(|t| t.host.as_str()))
            .find(|t| {
                t.eq_ignore_ascii_case(tenant) || crate::host::split_host_port(t).0 == tenant
            }),
    };
    configured.unwrap_or("other").to_string()
}
