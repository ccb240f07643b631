//! What a listener can serve, named once: the bounds [`serve`](super::serve) and
//! [`Workers::start`](super::Workers::start) share, so neither spells them out.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;

use crate::body::BoxError;

/// What a listener serves: a cloneable tower service of hyper requests that answers every
/// request (its errors are answers too).
pub trait Serves<B>:
    tower::Service<
        Request<Incoming>,
        Response = Response<B>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S, B> Serves<B> for S where
    S: tower::Service<
            Request<Incoming>,
            Response = Response<B>,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// A body hyper can send.
pub trait AnswerBody:
    http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static
{
}

impl<B> AnswerBody for B where
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static
{
}

/// The answer to a connection over the limit, made from its first request.
pub trait Overload<B>:
    Fn(&Request<Incoming>) -> Response<B> + Clone + Send + Sync + 'static
{
}

impl<O, B> Overload<B> for O where
    O: Fn(&Request<Incoming>) -> Response<B> + Clone + Send + Sync + 'static
{
}
