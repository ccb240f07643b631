//! What the gateway knows about one request, worked out once where it enters dispatch: which
//! API and route it is for, the customer id or action it names, its tenant, whether it reads
//! or writes, and its request id. Everything below (modes, routes, capture, the shadow copy,
//! refusals) borrows it rather than reading the request again.
//!
//! It is also where a [`GatewayError`] meets the facts its answer echoes: [`RequestContext::answer`]
//! is the one place a handler's error becomes a response.

use std::borrow::Cow;

use http::{HeaderValue, Method, Response};

use crate::body::Body;
use crate::error::{AnswerContext, GatewayError};
use crate::legacy::Family;
use crate::runtime::Runtime;
use crate::translate::path;

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub family: Family,
    /// The id the edge gave the request (or the client's own); every answer echoes it. A
    /// clone of the header's value, which shares its bytes.
    request_id: HeaderValue,
    /// User API: the id segment of the path, percent-encoded as sent; `None` off the route.
    pub raw_id: Option<String>,
    /// Action API: the request is for the action path itself (not below it).
    pub registry_route: bool,
    /// The query, decoded once (action API route only: the User API's reads take theirs
    /// from the URI, where `Include` options are parsed with their types).
    pub query: Vec<(String, String)>,
    /// Action API: the action as the client named it (the `action` parameter).
    pub called: Option<String>,
    /// The part `[[modes]]` rules name: the action's canonical name, or the User API's
    /// `read` / `update`.
    pub part: Option<Cow<'static, str>>,
    /// The tenant as the request names it: the User API's `X-ClientCode` (lower-cased), the
    /// action API's host.
    pub tenant: String,
    /// The call changes something (a shadow copy of it needs `writes = true`).
    pub writes: bool,
    /// A User API read (`GET`, `HEAD`): its answers carry no `Updated`.
    pub read: bool,
}

impl RequestContext {
    /// The facts of a request.
    pub fn of(rt: &Runtime, parts: &http::request::Parts) -> Self {
        // Borrowed from the request unless `%24` has to be decoded.
        let (path, family) = rt.route(parts.uri.path());
        let request_id = parts.headers.get(crate::request::REQUEST_ID).cloned();
        let mut ctx = Self::unrouted(
            family,
            request_id.unwrap_or_else(|| HeaderValue::from_static("")),
        );
        match family {
            Family::Registry => {
                if !path.eq_ignore_ascii_case(&rt.registry_path) {
                    return ctx;
                }
                let reg = &rt.mappings.registry;
                ctx.registry_route = true;
                ctx.query = query_pairs(&parts.uri);
                ctx.called = ctx
                    .query
                    .iter()
                    .find(|(k, _)| *k == reg.action_param)
                    .map(|(_, v)| v.clone());
                let action = ctx.called.as_deref().and_then(|c| reg.action(c));
                ctx.part = action.map(|(a, _)| Cow::Owned(a.name.clone()));
                ctx.writes = action.is_none_or(|(a, _)| a.writes);
                ctx.tenant = crate::tenant::request_host(parts).unwrap_or_default();
            }
            Family::UserApi => {
                let Some(raw_id) = rt.user_api_raw_id(&path) else {
                    return ctx;
                };
                let ua = &rt.mappings.user_api;
                ctx.raw_id = Some(raw_id);
                ctx.read = ua.is_read(&parts.method);
                ctx.part = if ctx.read {
                    Some(Cow::Borrowed("read"))
                } else if parts.method == ua.method {
                    Some(Cow::Borrowed("update"))
                } else {
                    None
                };
                ctx.writes = ua.writes_for(&parts.method);
                ctx.tenant = parts
                    .headers
                    .get(&rt.mappings.v4.headers.client_code)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_ascii_lowercase();
            }
        }
        ctx
    }

    /// The facts of a call that never reached dispatch (an edge refusal): its API and id.
    pub fn at_edge(rt: &Runtime, uri: &http::Uri, request_id: HeaderValue) -> Self {
        let family = rt.family_of(uri.path());
        let mut ctx = Self::unrouted(family, request_id);
        if family == Family::UserApi {
            ctx.raw_id = rt.user_api_raw_id(uri.path());
        }
        ctx
    }

    /// A request no route has matched yet: taken as a write, as anything unknown is.
    fn unrouted(family: Family, request_id: HeaderValue) -> Self {
        RequestContext {
            family,
            request_id,
            raw_id: None,
            registry_route: false,
            query: Vec::new(),
            called: None,
            part: None,
            tenant: String::new(),
            writes: true,
            read: false,
        }
    }

    pub fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or("")
    }

    /// A mapped route matched: the User API path with an id, or the action path.
    pub fn routed(&self) -> bool {
        self.raw_id.is_some() || self.registry_route
    }

    /// The error as the caller's API answers it, echoing the request's id, customer id and
    /// action. A 405 names the methods that would work (RFC 9110 15.5.6).
    pub fn answer(&self, rt: &Runtime, e: GatewayError) -> Response<Body> {
        // The customer id as the client sent it: the legacy API echoed it in `Result`,
        // refusals included.
        let sent = self.raw_id.as_deref().map(path::as_sent);
        let allow = matches!(e, GatewayError::MethodNotAllowed)
            .then(|| self.allowed_methods(rt))
            .flatten();
        // The action is echoed, as the client named it, only when it is one the API knows.
        let action = self
            .called
            .as_deref()
            .filter(|_| self.part.is_some() && !matches!(e, GatewayError::UnknownAction(_)));
        let mut resp = e.into_response(
            self.family,
            &AnswerContext {
                request_id: self.request_id(),
                customer_id: sent.as_deref(),
                action,
                read: self.read,
            },
            &rt.mappings,
        );
        if let Some(v) = allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            resp.headers_mut().insert(http::header::ALLOW, v);
        }
        resp
    }

    fn allowed_methods(&self, rt: &Runtime) -> Option<String> {
        if self.raw_id.is_some() {
            return Some(rt.mappings.user_api.allow_header());
        }
        let (_, methods) = rt.mappings.registry.action(self.called.as_deref()?)?;
        Some(
            methods
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

/// The query string as (name, value) pairs, decoded.
pub fn query_pairs(uri: &http::Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}
