//! Request metrics: in-flight gauge, requests and latency by route and status. The route is
//! read from the [`RouteLabel`] the router puts on each answer, so labels stay bounded.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use http::{Request, Response};
use tower::{Layer, Service};

use crate::metrics::Metrics;
use crate::routes::RouteLabel;

#[derive(Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
}

impl MetricsLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = RecordMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RecordMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RecordMetrics<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// Decrements the in-flight gauge even when the client goes away mid-request.
struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight().dec();
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for RecordMetrics<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResB: Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<ResB>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let metrics = self.metrics.clone();
        metrics.in_flight().inc();
        let guard = InFlight(metrics.clone());
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await;
            if let Ok(resp) = &result {
                let route = resp
                    .extensions()
                    .get::<RouteLabel>()
                    .map_or("unmatched", |r| r.0);
                metrics.observe_request(
                    route,
                    resp.status().as_u16(),
                    started.elapsed().as_secs_f64(),
                );
            }
            drop(guard);
            result
        })
    }
}
