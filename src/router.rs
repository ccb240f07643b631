//! The core service: which legacy route a request is for, and the 404/405 answers for the
//! rest, each in the shape of the API the path belongs to.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response};

use crate::body::{Body, BoxError};
use crate::error::{GatewayError, Reply};
use crate::gateway::Gateway;
use crate::ops;
use crate::request;
use crate::routes::{self, RouteLabel};

#[derive(Clone)]
pub struct Router {
    gw: Arc<Gateway>,
}

impl Router {
    pub fn new(gw: Arc<Gateway>) -> Self {
        Self { gw }
    }
}

impl<B> tower::Service<Request<B>> for Router
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let gw = self.gw.clone();
        Box::pin(async move { Ok(dispatch(gw, req).await) })
    }
}

async fn dispatch<B>(gw: Arc<Gateway>, req: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let path = req.uri().path().to_string();
    if path.starts_with("/_gateway/") {
        let mut resp = ops::handle(&gw, req).await;
        resp.extensions_mut().insert(RouteLabel("ops"));
        return resp;
    }
    let rt = gw.runtime();
    let (parts, body) = req.into_parts();

    if rt.family_of(&path) == crate::legacy::Family::Registry {
        let mut resp = routes::registry::handle(rt.clone(), &gw.metrics, parts, body).await;
        resp.extensions_mut().insert(RouteLabel("registry"));
        return resp;
    }
    // Legacy paths matched case-insensitively; the id is taken from the original path at the
    // same position (ASCII lower-casing keeps byte offsets).
    let lower = path.to_ascii_lowercase();
    if let Ok(m) = rt.user_api_paths.at(&lower) {
        let ua = &rt.mappings.user_api;
        let raw_id = m
            .params
            .get(&ua.id_param.to_ascii_lowercase())
            .map(|v| {
                let start = v.as_ptr() as usize - lower.as_ptr() as usize;
                path[start..start + v.len()].to_string()
            })
            .unwrap_or_default();
        let mut resp = if parts.method == ua.method {
            routes::user_api::handle(rt.clone(), &gw.metrics, parts, body, &raw_id).await
        } else {
            refuse(&gw, &path, &parts.headers, GatewayError::MethodNotAllowed)
        };
        resp.extensions_mut().insert(RouteLabel("user-api"));
        return resp;
    }
    let mut resp = refuse(&gw, &path, &parts.headers, GatewayError::NotFound);
    resp.extensions_mut().insert(RouteLabel("unmatched"));
    resp
}

fn refuse(gw: &Gateway, path: &str, headers: &http::HeaderMap, e: GatewayError) -> Response<Body> {
    let rt = gw.runtime();
    let request_id = request::request_id(headers);
    e.into_response(
        rt.family_of(path),
        &Reply {
            request_id: &request_id,
            ..Reply::default()
        },
        &rt.mappings,
    )
}
