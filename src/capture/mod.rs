//! Capture: one JSON line per call the legacy backend answered (legacy and shadow modes, the
//! legacy side of a canary), so that the calls real clients make can be replayed against a
//! v4 release before it sees live traffic (`replay`). The line format is in
//! `docs/capture.md`.
//!
//! The request path only decides and hands over: whether `[capture]` selects the call (route
//! part, writes, the per-user sample), then the few allow-listed headers and reference-counted
//! handles on the request and answer bodies. Masking the secrets, serialising and writing
//! happen on a thread of their own ([`writer`]), behind a bound: when the writer falls
//! behind (a slow disk, a blocked pipe), lines are dropped and counted rather than waited
//! for, so capture can never slow a client. Without `[capture]` the path does nothing more
//! than one `Option` check.

mod line;
mod writer;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use crate::context::RequestContext;
use crate::mapping::Mappings;
use crate::metrics::Metrics;
use crate::runtime::Runtime;

pub use line::MARKER;

/// Capture state that outlives configuration reloads: the writer thread and its queue.
#[derive(Default)]
pub struct Capture {
    /// Lines handed to the writer and not yet written.
    queued: Arc<AtomicUsize>,
    /// Started with the first captured call: no thread for a gateway that never captures.
    writer: OnceLock<Option<writer::Writer>>,
}

/// A call chosen for capture, waiting for the legacy answer. Boxed: it rides in the request's
/// future only while capture is on, as one pointer.
pub struct Pending(Box<Entry>);

/// Everything one line is made of, gathered on the request path without parsing anything.
struct Entry {
    /// When the legacy backend answered.
    time: SystemTime,
    route: &'static str,
    part: String,
    tenant: Option<Arc<str>>,
    method: http::Method,
    path: String,
    query: Option<String>,
    /// The allow-listed headers, `Authorization` among them (written as the marker only).
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    status: u16,
    answer: Bytes,
    /// Where the secret field names come from, for the writer.
    mappings: Arc<Mappings>,
    file: std::path::PathBuf,
    max_bytes: u64,
}

impl Capture {
    /// Before the call is forwarded (its headers move into the forwarded request): `None`,
    /// at the cost of one check, unless `[capture]` is set and selects the call.
    pub fn begin(
        &self,
        rt: &Runtime,
        ctx: &RequestContext,
        parts: &http::request::Parts,
        body: &Bytes,
        split_key: impl FnOnce() -> String,
    ) -> Option<Pending> {
        let cfg = rt.config.capture.as_ref()?;
        let route = ctx.family.name();
        let part = crate::shadow::offer::part_name(rt, ctx.family, ctx.part.as_deref());
        // A part the mappings do not know (`other`) could not be replayed: never captured.
        if part == "other" || !cfg.selects(route, &part, ctx.writes) {
            return None;
        }
        if cfg.sample_percent < 100
            && crate::config::modes::bucket(&split_key()) >= cfg.sample_percent
        {
            return None;
        }
        let tenant = (!ctx.tenant.is_empty()).then(|| rt.tenant_label(ctx.family, &ctx.tenant).0);
        Some(Pending(Box::new(Entry {
            // Set when the answer is known.
            time: SystemTime::UNIX_EPOCH,
            route,
            part,
            tenant,
            method: parts.method.clone(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_string),
            headers: allowed_headers(rt, &parts.headers),
            body: body.clone(),
            status: 0,
            answer: Bytes::new(),
            mappings: rt.mappings.clone(),
            file: cfg.file.clone(),
            max_bytes: cfg.max_bytes,
        })))
    }

    /// Once the legacy backend has answered: hands the line to the writer, or drops and
    /// counts it when the writer is `buffer_lines` behind. Never waits.
    pub fn finish(
        &self,
        rt: &Runtime,
        metrics: &Arc<Metrics>,
        pending: Pending,
        status: u16,
        answer: &Bytes,
    ) {
        let mut entry = pending.0;
        entry.time = SystemTime::now();
        entry.status = status;
        entry.answer = answer.clone();
        let bound = rt.config.capture.as_ref().map_or(1, |c| c.buffer_lines);
        if self.queued.fetch_add(1, Ordering::AcqRel) >= bound {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            metrics.capture_line("dropped");
            return;
        }
        let writer = self
            .writer
            .get_or_init(|| writer::Writer::start(self.queued.clone(), metrics.clone()));
        let sent = writer.as_ref().is_some_and(|w| w.send(entry));
        if !sent {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            metrics.capture_line("dropped");
        }
    }
}

/// The headers a replay needs to make the same call, and nothing else: the media types, the
/// request id, the `Host` (it chooses the action API's tenant), the User API's mandatory
/// headers and the tenant headers. `Authorization` is kept only to be written as the marker;
/// cookies and anything else a client sends are never recorded.
fn allowed_headers(rt: &Runtime, headers: &http::HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    let tenant = &rt.mappings.v4.headers;
    let required = &rt.mappings.user_api.required_headers;
    let always = [
        &http::header::CONTENT_TYPE,
        &http::header::ACCEPT,
        &http::header::HOST,
        &http::header::AUTHORIZATION,
        &crate::request::REQUEST_ID,
        &tenant.source_system,
        &tenant.client_code,
        &tenant.paper_code,
        &tenant.client_group_code,
    ];
    headers
        .iter()
        .filter(|(name, _)| always.contains(name) || required.iter().any(|(n, _)| n == *name))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}
