//! `POST /_gateway/events/to-v4|to-legacy` over HTTP, streamed: the body is translated as it
//! arrives, on a blocking thread, and the answer leaves as it is produced, so a request's
//! memory is its open groups (the same [`Limits`](super::Limits) as the command line) and a
//! few buffers, whatever the body's size.
//!
//! # The answer
//! - A run that ends while its output still fits the channel (about 1 MiB) is answered whole,
//!   as before streaming: `200` with `X-Events-Summary` (JSON) and up to 50
//!   `X-Events-Report` lines, or `400` / `413` with `{"status":"error","error":…}` naming
//!   the line.
//! - A longer run starts answering `200` as soon as its output fills the channel, or after
//!   [`HEADERS_AFTER`] without output (so the request timeout never cuts a long
//!   translation). The summary and report lines then come as HTTP trailers (ask with
//!   `TE: trailers`); an error after that point aborts the answer, so a client sees a failed
//!   transfer, never a short answer that looks complete.
//! - `?unmatched=true`: the records of unmatched groups (and duplicates) are written into the
//!   answer as they are flushed; without it they are reported and counted only.
//!
//! # Limits
//! `?max_open_groups=` (1 to [`DEFAULT_MAX_OPEN_GROUPS`](super::DEFAULT_MAX_OPEN_GROUPS),
//! the default) and `?max_group_age=` as on the command line: a client may lower the
//! server's bound, never raise it. The body may be up to [`EVENTS_BODY_LIMIT`];
//! [`BodyLimitLayer`] gives these two paths that limit instead of the gateway's general one,
//! on whichever listener serves them.
//!
//! # Layout
//! - here: [`handle`], which starts the run and chooses the answer's shape.
//! - `answer`: the whole and the streamed answer, summary and report in headers or trailers.
//! - `channel`: the body in and the output out, between async and the blocking thread.
//! - `query`: the query string's options and limits.
//! - `report`: the first report lines, kept for the answer.
//! - `limit`: [`BodyLimitLayer`], the larger body limit of the event paths.

mod answer;
mod channel;
mod limit;
mod query;
mod report;

use std::io::{self, BufReader, Write};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use tokio::sync::{mpsc, oneshot};

use super::{Direction, EventsError, Io};
use crate::body::{full, Body, BoxError};
use crate::mapping::Mappings;
use answer::{error, ndjson, refusal, streamed, summary_headers};
use channel::{feed, ChannelReader, ChannelWriter};
pub use limit::{BodyLimit, BodyLimitLayer};
use query::Query;
use report::ReportLines;

/// The largest body one request may send. Memory does not grow with it (the body streams);
/// it bounds how long one request may hold a translation thread.
pub const EVENTS_BODY_LIMIT: usize = 1024 * 1024 * 1024;

/// A run without output answers its headers after this long (then streams).
pub const HEADERS_AFTER: Duration = Duration::from_secs(5);

/// Output chunks (of about 64 KiB) queued towards the client before the run waits for it.
const OUT_CHUNKS: usize = 16;

/// The paths that stream event records.
pub fn is_events_path(path: &str) -> bool {
    matches!(
        path,
        "/_gateway/events/to-v4" | "/_gateway/events/to-legacy"
    )
}

/// Translates one request. `mappings` are the running ones (their event table).
pub async fn handle<B>(
    mappings: Arc<Mappings>,
    req: Request<B>,
    direction: Direction,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let query = match Query::parse(req.uri().query()) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let (in_tx, in_rx) = mpsc::channel::<io::Result<Bytes>>(OUT_CHUNKS);
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(OUT_CHUNKS);
    let (full_tx, full_rx) = oneshot::channel::<()>();
    tokio::spawn(feed(req.into_body(), in_tx));
    let worker = tokio::task::spawn_blocking(move || {
        let input = BufReader::with_capacity(64 * 1024, ChannelReader::new(in_rx));
        let full = Arc::new(std::sync::Mutex::new(Some(full_tx)));
        let out = ChannelWriter::new(out_tx.clone(), full.clone());
        let mut unmatched = query
            .unmatched
            .then(|| io::BufWriter::with_capacity(64 * 1024, ChannelWriter::new(out_tx, full)));
        let mut report = ReportLines::default();
        let result = super::translate_with(
            direction,
            &mappings.events,
            &query.opts,
            query.limits,
            input,
            Io {
                out,
                report: &mut report,
                unmatched: unmatched.as_mut().map(|w| w as &mut dyn Write),
            },
            &mut |_| {},
        );
        let result = match (result, unmatched.map(|mut w| w.flush())) {
            (Ok(_), Some(Err(e))) => Err(EventsError::Io(e)),
            (r, _) => r,
        };
        (result, report)
    });
    let mut worker = Box::pin(worker);

    tokio::select! {
        done = &mut worker => {
            // Ended with its output queued: one whole answer, status and summary in headers.
            let (result, report) = match done {
                Ok(r) => r,
                Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "the translation failed"),
            };
            let mut out = Vec::new();
            while let Ok(chunk) = out_rx.try_recv() {
                out.extend_from_slice(&chunk);
            }
            match result {
                Ok(summary) => {
                    let mut resp = ndjson(full(out));
                    summary_headers(resp.headers_mut(), &summary, &report);
                    resp
                }
                Err(e) => {
                    let (status, text) = refusal(&e);
                    error(status, &text)
                }
            }
        }
        // Only a real signal: the sender is also dropped when the run ends.
        Ok(()) = full_rx => streamed(out_rx, worker),
        _ = tokio::time::sleep(HEADERS_AFTER) => streamed(out_rx, worker),
    }
}
