//! Dispatch, the core service: which legacy route a request is for, which mode serves it
//! (translate, shadow, legacy: the rules are in `crate::config::modes`, what each mode does in
//! `serve.rs`), and the 404/405 answers for the rest, each in the shape of the API the path
//! belongs to. Requests no mapping covers go to the legacy backend when one is configured
//! (strangler pattern). Not to be confused with `crate::routes`, the handlers of the routes it
//! dispatches to.

mod head;
mod serve;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response};

use crate::body::{Body, BoxError};
use crate::config::modes;
use crate::config::Mode;
use crate::context::RequestContext;
use crate::deadline::Deadline;
use crate::error::GatewayError;
use crate::fallback;
use crate::gateway::{Gateway, Local};
use crate::legacy::Family;
use crate::ops;
use crate::routes::{self, RouteLabel, Served};
use crate::runtime::Runtime;
use serve::{legacy, shadowed, translate, Capture};

#[derive(Clone)]
pub struct Dispatcher {
    gw: Local,
}

impl Dispatcher {
    /// Call it on the worker that will use it: the handle it makes is that worker's own.
    pub fn new(gw: &Arc<Gateway>) -> Self {
        Self { gw: Local::new(gw) }
    }
}

impl<B> tower::Service<Request<B>> for Dispatcher
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
        use futures_util::FutureExt;
        Box::pin(dispatch(self.gw.clone(), req).map(Ok))
    }
}

async fn dispatch<B>(gw: Local, req: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if req.uri().path().starts_with("/_gateway/") {
        // Only the probes answer here; the rest of `/_gateway/` is on the admin listener and
        // is, on this one, an unknown path that never reaches a legacy backend.
        if ops::is_probe(req.uri().path()) {
            // Boxed: a probe's future (it may connect to the upstreams) is large, and inline
            // it would grow every request's future.
            let mut resp = Box::pin(ops::handle(&gw, req)).await;
            resp.extensions_mut().insert(RouteLabel("ops"));
            return resp;
        }
        let rt = gw.runtime();
        let (parts, _) = req.into_parts();
        let ctx = RequestContext::of(&rt, &parts);
        let mut resp = ctx.answer(&rt, GatewayError::NotFound);
        resp.extensions_mut().insert(RouteLabel("unmatched"));
        return resp;
    }
    let rt = gw.runtime();
    let (mut parts, body) = req.into_parts();
    // Taken out, so nothing that copies the request's extensions (a shadow copy, the legacy
    // forward) carries a deadline whose timer it does not run under.
    let deadline = parts.extensions.remove::<Arc<Deadline>>();
    let deadline = deadline.as_deref();
    let ctx = RequestContext::of(&rt, &parts);
    let family = ctx.family;
    if let Err(e) = head::check(&rt, family, &parts) {
        let mut resp = ctx.answer(&rt, e);
        resp.extensions_mut().insert(RouteLabel("unmatched"));
        return resp;
    }
    if !ctx.routed() {
        // No mapping covers the path: the legacy backend answers if there is one.
        if rt.backend_for(family).is_none() {
            let mut resp = ctx.answer(&rt, GatewayError::NotFound);
            resp.extensions_mut().insert(RouteLabel("unmatched"));
            return resp;
        }
        let mut resp = legacy(&gw, &rt, &ctx, Capture::No, parts, body, deadline)
            .await
            .unwrap_or_else(|e| ctx.answer(&rt, e));
        resp.extensions_mut().insert(Served {
            route: "unmatched",
            mode: "legacy",
            tenant: rt.tenant_label(family, ""),
        });
        return resp;
    }

    let mode = modes::choose(
        &rt.config.modes,
        family.name(),
        ctx.part.as_deref(),
        Some(&ctx.tenant),
        || split_key(&rt, &ctx, &parts),
    );
    let tenant = rt.tenant_label(family, &ctx.tenant);
    // `[fallback]`: a row v4 answers goes to the legacy backend while v4 fails (see
    // `crate::fallback`); a call decided for v4 is watched, and its outcome counted.
    let (watch, fell_back) = match mode {
        Mode::Translate if rt.config.fallback.is_some() && rt.backend_for(family).is_some() => {
            match gw
                .fallback
                .decide(&rt, family, ctx.part.as_deref(), &tenant.0)
            {
                fallback::Decision::V4(w) => (Some(w), false),
                fallback::Decision::Legacy => (None, true),
            }
        }
        _ => (None, false),
    };
    let mode = if fell_back { Mode::Legacy } else { mode };
    let label = match (family, mode) {
        (Family::UserApi, Mode::Translate) => "user-api",
        (Family::UserApi, Mode::Shadow) => "user-api.shadow",
        (Family::UserApi, Mode::Legacy) => "user-api.legacy",
        (Family::Registry, Mode::Translate) => "registry",
        (Family::Registry, Mode::Shadow) => "registry.shadow",
        (Family::Registry, Mode::Legacy) => "registry.legacy",
    };
    crate::telemetry::annotate(&[
        ("gateway.route", family.name()),
        ("gateway.mode", label),
        ("gateway.tenant", &ctx.tenant),
    ]);
    let served = Served {
        route: label,
        mode: match mode {
            _ if fell_back => "fallback",
            Mode::Translate => "translate",
            Mode::Shadow => "shadow",
            Mode::Legacy => "legacy",
        },
        tenant,
    };
    let answered = match (mode, watch) {
        (Mode::Translate, Some(w)) => {
            // Boxed: only watched calls pay for the scope, and the others' futures stay small.
            let watched =
                crate::upstream::outcome::watched(translate(&gw, &rt, &ctx, parts, body, deadline));
            let (answered, seen) = Box::pin(watched).await;
            gw.fallback.record(&rt, &gw.metrics, w, seen);
            answered
        }
        (Mode::Translate, None) => translate(&gw, &rt, &ctx, parts, body, deadline).await,
        (Mode::Legacy, _) => legacy(&gw, &rt, &ctx, Capture::Yes, parts, body, deadline).await,
        (Mode::Shadow, _) => shadowed(&gw, &rt, &ctx, parts, body, deadline).await,
    };
    // The one place a handler's error becomes its answer.
    let mut resp = answered.unwrap_or_else(|e| ctx.answer(&rt, e));
    resp.extensions_mut().insert(served);
    if crate::telemetry::enabled() {
        crate::telemetry::annotate(&[("http.response.status_code", resp.status().as_str())]);
    }
    resp
}

/// What keeps a user on one side of a canary split or shadow sample: the customer
/// registration id (User API) or the user in the token (action API). Computed only when a
/// rule or the shadow needs it: for the action API it means reading the JWT.
fn split_key(rt: &Runtime, ctx: &RequestContext, parts: &http::request::Parts) -> String {
    match ctx.family {
        Family::UserApi => {
            let raw = ctx.raw_id.as_deref().unwrap_or("");
            crate::translate::path::decode_id(raw).unwrap_or_else(|_| raw.to_string())
        }
        Family::Registry => routes::registry::split_key(rt, ctx, parts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A future is moved by value at least once when it is awaited or boxed, and every byte
    /// of it is copied each time: a request whose futures nest kilobytes deep spends more on
    /// `memcpy` than on its translation. This reports the sizes and keeps them bounded.
    #[tokio::test]
    async fn per_request_futures_stay_small() {
        let overrides = crate::config::Overrides {
            orchestrator: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        };
        let config = crate::config::Config::from_toml(
            "t.toml",
            "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n",
            &overrides,
        )
        .unwrap();
        let metrics = crate::metrics::Metrics::new();
        let url = reqwest::Url::parse("http://127.0.0.1:9").unwrap();
        let rt = Runtime::new(
            config,
            crate::mapping::Mappings::embedded().unwrap(),
            &url,
            false,
            metrics.clone(),
        )
        .await
        .unwrap();
        let gw = Gateway::new(rt, metrics, Default::default(), None);
        let local = Local::new(&gw);
        let req = || {
            Request::builder()
                .uri("/User/1")
                .body(http_body_util::Empty::<Bytes>::new())
                .unwrap()
        };
        let rt = local.runtime();
        let parts = || req().into_parts().0;
        let body = http_body_util::Empty::<Bytes>::new;
        let ctx = {
            let p = parts();
            RequestContext::of(&rt, &p)
        };
        let target = || crate::routes::Target {
            deadline: None,
            upstream: &rt.upstream,
            shadow_of: None,
        };
        let call = || crate::upstream::Call {
            deadline: None,
            method: http::Method::GET,
            path: "/".into(),
            headers: http::HeaderMap::new(),
            body: None,
            label: "x",
        };
        let sizes = [
            (
                "dispatch",
                std::mem::size_of_val(&dispatch(local.clone(), req())),
            ),
            (
                "translate",
                std::mem::size_of_val(&translate(&local, &rt, &ctx, parts(), body(), None)),
            ),
            (
                "legacy",
                std::mem::size_of_val(&legacy(
                    &local,
                    &rt,
                    &ctx,
                    Capture::Yes,
                    parts(),
                    body(),
                    None,
                )),
            ),
            (
                "shadowed",
                std::mem::size_of_val(&serve::shadowed(&local, &rt, &ctx, parts(), body(), None)),
            ),
            (
                "user_api::handle",
                std::mem::size_of_val(&routes::user_api::handle(
                    rt.clone(),
                    &local.metrics,
                    &ctx,
                    parts(),
                    body(),
                    target(),
                )),
            ),
            (
                "registry::handle",
                std::mem::size_of_val(&routes::registry::handle(
                    rt.clone(),
                    &local.metrics,
                    &ctx,
                    parts(),
                    body(),
                    target(),
                )),
            ),
            (
                "user_api::read::handle",
                std::mem::size_of_val(&routes::user_api::read::handle(
                    &rt,
                    &local.metrics,
                    &ctx,
                    &parts(),
                    target(),
                )),
            ),
            (
                "Upstream::v4",
                std::mem::size_of_val(&rt.upstream.v4(call())),
            ),
            (
                "Upstream::send",
                std::mem::size_of_val(&rt.upstream.send(call())),
            ),
            (
                "read_body",
                std::mem::size_of_val(&crate::request::read_body(body(), 1)),
            ),
        ];
        // Bounds with room for the compiler's layout, far below what the futures were when
        // a TLS handshake and two copies of each upstream call sat inline in them (dispatch:
        // 8.5 KB, an upstream call: 5.6 KB).
        let bound = |name: &str| match name {
            "dispatch" => 4096,
            "Upstream::v4" | "Upstream::send" | "read_body" => 1024,
            _ => 3072,
        };
        for (name, size) in sizes {
            eprintln!("future {name}: {size} bytes");
            assert!(
                size <= bound(name),
                "future {name}: {size} bytes, over {}",
                bound(name)
            );
        }
    }
}
