//! The answer's two shapes: whole (status and summary in headers), or streamed (output as it
//! comes, the summary in trailers, an aborted body on a late error).

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::json;
use tokio::sync::mpsc;

use super::super::{EventsError, Summary};
use super::channel::TooLarge;
use super::report::ReportLines;
use crate::body::{Body, BoxError};

type Worker =
    std::pin::Pin<Box<tokio::task::JoinHandle<(Result<Summary, EventsError>, ReportLines)>>>;

/// The answer of a long run: its output as it comes, then the summary as trailers, or an
/// aborted body on an error.
pub(super) fn streamed(out_rx: mpsc::Receiver<Bytes>, worker: Worker) -> Response<Body> {
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

pub(super) fn ndjson(body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    resp
}

pub(super) fn summary_headers(headers: &mut HeaderMap, summary: &Summary, report: &ReportLines) {
    if let Ok(v) = HeaderValue::from_str(&serde_json::to_string(summary).unwrap_or_default()) {
        headers.insert("x-events-summary", v);
    }
    for line in &report.lines {
        if let Ok(v) = HeaderValue::from_str(line) {
            headers.append("x-events-report", v);
        }
    }
}

pub(super) fn error(status: StatusCode, text: &str) -> Response<Body> {
    crate::legacy::json(status, &json!({"status": "error", "error": text}))
}

/// The status and text of a run that stopped before answering.
pub(super) fn refusal(e: &EventsError) -> (StatusCode, String) {
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
