//! The two legacy answer shapes, and the plumbing to send one as an HTTP response.

pub mod refusal;
pub mod registry;
pub mod user_api;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use serde::Serialize;

use crate::body::{full, Body};

pub use crate::api::Family;

/// Response extension: this answer is already in its legacy shape. An error status without
/// it (a bare 404 or 405 of the router, a body limit's 413) is rewritten into the caller's
/// shape by the edge (`layers::edge`), so no client ever sees a bare error.
#[derive(Debug, Clone, Copy)]
pub struct Shaped;

/// A JSON answer marked as shaped.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    // Serializing plain structs of strings and numbers cannot fail.
    json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
}

/// [`json`], for an answer already written.
pub fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response<Body> {
    let mut resp = success_json(status, bytes);
    resp.extensions_mut().insert(Shaped);
    resp
}

/// A JSON success, already written, left unmarked: only error statuses are ever reshaped, so
/// the mark would cost an allocation per answer for nothing.
pub fn success_json(status: StatusCode, bytes: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}
