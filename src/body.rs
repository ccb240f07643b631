//! The response body type every part of the gateway answers with.

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};

/// The error of any body the gateway reads or answers with; defined once, here, for every
/// module that bounds a body by it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Boxed so our own answers, proxied legacy bodies and the streamed event answers share one
/// type. Unsync: hyper asks only for `Send`, and `Sync` would be one more bound on every body
/// wrapped, for nothing.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    full(Bytes::new())
}
