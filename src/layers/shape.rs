//! Legacy shape: every answer a legacy client gets is in its API's shape. tower-http's layers
//! answer in their own way (413 from the body limit, 408 from the timeout, 500 from a caught
//! panic); this layer rewrites any such unshaped error into the caller's legacy envelope, so
//! the rule holds however an answer was produced.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::{Layer, Service};

use crate::body::{Body, BoxError};
use crate::error::{GatewayError, Reply};
use crate::gateway::Gateway;
use crate::legacy::Shaped;
use crate::request;

#[derive(Clone)]
pub struct LegacyShapeLayer {
    gw: Arc<Gateway>,
}

impl LegacyShapeLayer {
    pub fn new(gw: Arc<Gateway>) -> Self {
        Self { gw }
    }
}

impl<S> Layer<S> for LegacyShapeLayer {
    type Service = LegacyShape<S>;
    fn layer(&self, inner: S) -> Self::Service {
        LegacyShape {
            inner,
            gw: self.gw.clone(),
        }
    }
}

#[derive(Clone)]
pub struct LegacyShape<S> {
    inner: S,
    gw: Arc<Gateway>,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for LegacyShape<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>, Error = Infallible>,
    S::Future: Send + 'static,
    ResB: http_body::Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let path = req.uri().path().to_string();
        let request_id = request::request_id(req.headers());
        let gw = self.gw.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            let status = resp.status();
            // The request body was not (fully) read: the connection cannot carry another
            // request, so say so, or a keep-alive client sends its next one into a closed
            // socket.
            if status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::REQUEST_TIMEOUT {
                resp.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            if resp.extensions().get::<Shaped>().is_some()
                || !(status.is_client_error() || status.is_server_error())
                || path.starts_with("/_gateway/")
            {
                return Ok(resp.map(|b| b.map_err(Into::into).boxed_unsync()));
            }
            let rt = gw.runtime();
            let err = match status {
                StatusCode::PAYLOAD_TOO_LARGE => {
                    GatewayError::BodyTooLarge(rt.config.limits.body_bytes)
                }
                StatusCode::REQUEST_TIMEOUT => GatewayError::RequestTimeout,
                StatusCode::NOT_FOUND => GatewayError::NotFound,
                StatusCode::METHOD_NOT_ALLOWED => GatewayError::MethodNotAllowed,
                StatusCode::SERVICE_UNAVAILABLE => GatewayError::Overloaded,
                _ => GatewayError::Internal,
            };
            // The id as sent, even in these answers (issue #13, item 7).
            let id = rt
                .user_api_raw_id(&path)
                .map(|raw| crate::translate::path::as_sent(&raw));
            let reply = Reply {
                request_id: &request_id,
                customer_id: id.as_deref(),
                ..Reply::default()
            };
            let mut shaped = err.into_response(rt.family_of(&path), &reply, &rt.mappings);
            if status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::REQUEST_TIMEOUT {
                shaped.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok(shaped)
        })
    }
}
