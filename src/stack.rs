//! The service a worker serves: the dispatcher inside the edge (`layers::edge`), which holds
//! every cross-cutting concern in one place with its order explained.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use http_body_util::Limited;
use hyper::body::Incoming;
use tower::Layer;

use crate::body::Body;
use crate::dispatch::Dispatcher;
use crate::gateway::{Gateway, Local};
use crate::layers::edge::{Edge, EdgeLayer};

/// The whole service; one per worker, built on that worker's thread.
pub type GatewayService = Edge<Dispatcher>;

/// Builds the service on the calling thread: the per-request handles it holds are this
/// thread's own, so call it once per worker.
pub fn build(gw: Arc<Gateway>) -> GatewayService {
    build_with(gw.clone(), Dispatcher::new(&gw))
}

/// The same edge around any inner service: tests use it to prove what the edge does
/// (a panicking handler still gets a legacy-shaped 500).
pub fn build_with<S>(gw: Arc<Gateway>, inner: S) -> Edge<S>
where
    S: tower::Service<Request<Limited<Incoming>>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    EdgeLayer::new(Local::new(&gw)).layer(inner)
}
