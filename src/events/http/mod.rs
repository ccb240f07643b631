//! `POST /_gateway/events/to-v4|to-legacy` over HTTP, streamed: the body is translated as it
//! arrives, on a blocking thread, and the answer leaves as it is produced, so a request's
//! memory is its open groups (the same [`Limits`] as the command line) and a few buffers,
//! whatever the body's size.
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
//! `?max_open_groups=` (1 to [`DEFAULT_MAX_OPEN_GROUPS`], the default) and `?max_group_age=`
//! as on the command line: a client may lower the server's bound, never raise it. The body
//! may be up to [`EVENTS_BODY_LIMIT`]; [`BodyLimitLayer`] gives these two paths that limit
//! instead of the gateway's general one, on whichever listener serves them.

use std::io::{self, BufReader, Read, Write};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tower_http::limit::RequestBodyLimit;

use super::{Direction, EventsError, Io, Limits, Options, Summary, DEFAULT_MAX_OPEN_GROUPS};
use crate::body::{full, Body, BoxError};
use crate::mapping::Mappings;

/// The largest body one request may send. Memory does not grow with it (the body streams);
/// it bounds how long one request may hold a translation thread.
pub const EVENTS_BODY_LIMIT: usize = 1024 * 1024 * 1024;

/// A run without output answers its headers after this long (then streams).
pub const HEADERS_AFTER: Duration = Duration::from_secs(5);

/// Output chunks (of about 64 KiB) queued towards the client before the run waits for it.
const OUT_CHUNKS: usize = 16;

/// Report lines carried in headers or trailers; the count is always in the summary.
const REPORT_LINES: usize = 50;

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

type Worker =
    std::pin::Pin<Box<tokio::task::JoinHandle<(Result<Summary, EventsError>, ReportLines)>>>;

/// The answer of a long run: its output as it comes, then the summary as trailers, or an
/// aborted body on an error.
fn streamed(out_rx: mpsc::Receiver<Bytes>, worker: Worker) -> Response<Body> {
    enum State {
        Chunks(mpsc::Receiver<Bytes>, Worker),
        Done,
    }
    let frames = futures_util::stream::unfold(State::Chunks(out_rx, worker), |state| async move {
        let State::Chunks(mut rx, worker) = state else {
            return None;
        };
        if let Some(chunk) = rx.recv().await {
            return Some((Ok(Frame::data(chunk)), State::Chunks(rx, worker)));
        }
        let frame = match worker.await {
            Ok((Ok(summary), report)) => {
                let mut trailers = HeaderMap::new();
                summary_headers(&mut trailers, &summary, &report);
                Ok(Frame::trailers(trailers))
            }
            Ok((Err(e), _)) => {
                tracing::warn!(error = %e, "event translation failed after its answer began");
                Err(BoxError::from(e.to_string()))
            }
            Err(_) => Err(BoxError::from("the translation failed")),
        };
        Some((frame, State::Done))
    });
    ndjson(StreamBody::new(frames).boxed_unsync())
}

fn ndjson(body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    resp
}

fn summary_headers(headers: &mut HeaderMap, summary: &Summary, report: &ReportLines) {
    if let Ok(v) = HeaderValue::from_str(&serde_json::to_string(summary).unwrap_or_default()) {
        headers.insert("x-events-summary", v);
    }
    for line in &report.lines {
        if let Ok(v) = HeaderValue::from_str(line) {
            headers.append("x-events-report", v);
        }
    }
}

fn error(status: StatusCode, text: &str) -> Response<Body> {
    crate::legacy::json(status, &json!({"status": "error", "error": text}))
}

/// The status and text of a run that stopped before answering.
fn refusal(e: &EventsError) -> (StatusCode, String) {
    if let EventsError::Io(io) = e {
        if let Some(tl) = io.get_ref().and_then(|e| e.downcast_ref::<TooLarge>()) {
            return (StatusCode::PAYLOAD_TOO_LARGE, tl.to_string());
        }
        return (
            StatusCode::BAD_REQUEST,
            "the request body ended with an error".into(),
        );
    }
    (StatusCode::BAD_REQUEST, e.to_string())
}

#[derive(Debug, thiserror::Error)]
#[error("the body is over the events limit of {0} bytes")]
struct TooLarge(usize);

/// Moves the request body into the translation's channel, frame by frame.
async fn feed<B>(body: B, tx: mpsc::Sender<io::Result<Bytes>>)
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    loop {
        let Some(item) = body.frame().await.and_then(data) else {
            return;
        };
        let last = item.is_err();
        if tx.send(item).await.is_err() || last {
            return; // the run stopped (an error), or the body did: nothing more to move
        }
    }
}

/// One frame as the translation reads it: data, nothing (trailers, empty), or an io::Error
/// (the body's own error type need not be `Send`, so it is not held across an await).
fn data<E: Into<BoxError>>(frame: Result<Frame<Bytes>, E>) -> Option<io::Result<Bytes>> {
    match frame {
        Ok(frame) => frame.into_data().ok().map(Ok),
        Err(e) => {
            let e: BoxError = e.into();
            Some(Err(if crate::request::is_length_limit(&*e) {
                io::Error::new(io::ErrorKind::InvalidData, TooLarge(EVENTS_BODY_LIMIT))
            } else {
                io::Error::new(io::ErrorKind::UnexpectedEof, e.to_string())
            }))
        }
    }
}

/// The request's query: the command line's options and limits.
struct Query {
    opts: Options,
    limits: Limits,
    unmatched: bool,
}

impl Query {
    fn parse(query: Option<&str>) -> Result<Self, String> {
        let mut q = Query {
            opts: Options::default(),
            limits: Limits::default(),
            unmatched: false,
        };
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let flag = v == "true" || v == "1";
            match k.as_ref() {
                "strict" => q.opts.strict = flag,
                "skip_invalid" => q.opts.skip_invalid = flag,
                "unmatched" => q.unmatched = flag,
                "max_open_groups" => {
                    q.limits.max_open_groups = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=DEFAULT_MAX_OPEN_GROUPS).contains(n))
                        .ok_or_else(|| {
                            format!(
                            "max_open_groups: a whole number from 1 to {DEFAULT_MAX_OPEN_GROUPS}"
                        )
                        })?
                }
                "max_group_age" => {
                    q.limits.max_group_age = Some(
                        v.parse::<u64>()
                            .ok()
                            .filter(|n| *n >= 1)
                            .ok_or("max_group_age: a whole number of records, at least 1")?,
                    )
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

/// The blocking side of the input channel.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        Self {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}

/// The blocking side of the output channel. The first time the channel is full it says so
/// (the answer then starts streaming) and waits for the client.
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    full: Arc<std::sync::Mutex<Option<oneshot::Sender<()>>>>,
}

impl ChannelWriter {
    fn new(
        tx: mpsc::Sender<Bytes>,
        full: Arc<std::sync::Mutex<Option<oneshot::Sender<()>>>>,
    ) -> Self {
        Self { tx, full }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let chunk = Bytes::copy_from_slice(data);
        let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "the client went away");
        match self.tx.try_send(chunk) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(chunk)) => {
                if let Some(tx) = self.full.lock().ok().and_then(|mut f| f.take()) {
                    let _ = tx.send(());
                }
                self.tx.blocking_send(chunk).map_err(|_| gone())?;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(gone()),
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The first report lines (for headers or trailers) and nothing more: a run's report can be
/// millions of lines.
#[derive(Debug, Default)]
struct ReportLines {
    lines: Vec<String>,
    partial: Vec<u8>,
}

impl Write for &mut ReportLines {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.lines.len() < REPORT_LINES {
            self.partial.extend_from_slice(data);
            while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
                let line = String::from_utf8_lossy(&self.partial[..end]).into_owned();
                self.partial.drain(..=end);
                if self.lines.len() < REPORT_LINES {
                    self.lines.push(line);
                }
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The gateway's body limit, with [`EVENTS_BODY_LIMIT`] for the event paths instead of the
/// general one: a general limit sized for API calls (64 KiB) would otherwise cut every
/// event log. Both limits are tower-http's (over-long `Content-Length` refused at once,
/// chunked bodies cut while read); only the number differs.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimitLayer {
    general: usize,
}

impl BodyLimitLayer {
    pub fn new(general: usize) -> Self {
        Self { general }
    }
}

impl<S: Clone> tower::Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;
    fn layer(&self, inner: S) -> BodyLimit<S> {
        BodyLimit {
            general: RequestBodyLimit::new(inner.clone(), self.general),
            events: RequestBodyLimit::new(inner, EVENTS_BODY_LIMIT.max(self.general)),
        }
    }
}

/// See [`BodyLimitLayer`]. Both inner services wrap clones of one always-ready router.
#[derive(Debug, Clone)]
pub struct BodyLimit<S> {
    general: RequestBodyLimit<S>,
    events: RequestBodyLimit<S>,
}

impl<S, B> tower::Service<Request<B>> for BodyLimit<S>
where
    RequestBodyLimit<S>: tower::Service<Request<B>>,
{
    type Response = <RequestBodyLimit<S> as tower::Service<Request<B>>>::Response;
    type Error = <RequestBodyLimit<S> as tower::Service<Request<B>>>::Error;
    type Future = <RequestBodyLimit<S> as tower::Service<Request<B>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.general.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.events.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if is_events_path(req.uri().path()) {
            self.events.call(req)
        } else {
            self.general.call(req)
        }
    }
}
