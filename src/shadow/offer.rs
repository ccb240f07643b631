//! Admission, on the request path: whether a call gets a copy at all (never a copy of a
//! copy, writes only where the route opted in, the per-user sample, the kill switch, the body
//! cap, the bound on copies in the system), and handing the copy to the lane. Everything
//! here is cheap and never fails the caller.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::{copy, Call, LegacyAnswer, Shadow};
use crate::legacy::Family;
use crate::metrics::Metrics;
use crate::routes::SHADOW_OF;
use crate::runtime::Runtime;

impl Shadow {
    /// Decides whether the call gets a copy and, if so, starts it in the background.
    /// Returns immediately.
    pub fn offer(
        self: &Arc<Self>,
        metrics: &Arc<Metrics>,
        rt: &Arc<Runtime>,
        mut call: Call,
        legacy: LegacyAnswer,
    ) {
        call.tenant = tenant_label(rt, call.family, &call.tenant);
        let family = call.family;
        let cfg = rt.config.shadow.route(family.name());
        if call.parts.headers.contains_key(&SHADOW_OF) {
            return; // a copy of a copy: never
        }
        if call.writes && !cfg.writes {
            tracing::debug!(
                route = family.name(),
                "write not shadowed (route has not opted in)"
            );
            return;
        }
        if crate::modes::bucket(&call.sample_key) >= cfg.sample_percent {
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
            self.count(metrics, family, &call.tenant, "paused", |s| s.paused += 1);
            return;
        }
        if call.body.len() > rt.config.shadow.max_body_bytes {
            self.count(metrics, family, &call.tenant, "skipped", |s| s.skipped += 1);
            return;
        }
        let limit = rt.config.shadow.max_concurrency + rt.config.shadow.max_queue;
        if self.in_system.fetch_add(1, Ordering::AcqRel) >= limit {
            self.in_system.fetch_sub(1, Ordering::AcqRel);
            self.count(metrics, family, &call.tenant, "dropped", |s| s.dropped += 1);
            return;
        }
        // A child of the request span, when traces are exported: the copy runs later.
        let span = crate::telemetry::enabled()
            .then(|| crate::telemetry::shadow_span(family.name(), &call.tenant));
        let run = {
            let shadow = self.clone();
            let metrics = metrics.clone();
            let rt = rt.clone();
            async move {
                let permit = rt.shadow_permits.clone().acquire_owned().await;
                copy::run(&shadow, &metrics, &rt, call, legacy).await;
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

/// The tenant as a label: a configured one (a `[[tenants]]` entry or a `[[modes]]` rule's
/// tenant), or `other`, so a client inventing `X-ClientCode` values or Hosts cannot grow the
/// metric's label set or the report.
fn tenant_label(rt: &Runtime, family: Family, tenant: &str) -> String {
    let modes = rt
        .config
        .modes
        .rules
        .iter()
        .filter_map(|r| r.tenant.as_deref());
    let known = match family {
        Family::UserApi => modes
            .chain(rt.config.tenants.iter().map(|t| t.client_code.as_str()))
            .any(|t| t.eq_ignore_ascii_case(tenant)),
        Family::Registry => modes
            .chain(rt.config.tenants.iter().map(|t| t.host.as_str()))
            .any(|t| t.eq_ignore_ascii_case(tenant) || crate::host::split_host_port(t).0 == tenant),
    };
    if known {
        tenant.to_string()
    } else {
        "other".to_string()
    }
}
