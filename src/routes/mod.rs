//! The legacy routes: each turns one legacy call into v4 calls and the answer back.

pub mod registry;
pub mod user_api;

use http::HeaderName;

/// The marker every shadow copy carries, with the original request id: v4 logs can tell
/// copies apart, and a gateway that receives one never shadows it again. It lives with the
/// routes because they write it; the shadow only reads it.
pub const SHADOW_OF: HeaderName = HeaderName::from_static("x-shadow-of");

/// Response extension naming the route that answered, for metrics (bounded values only).
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

/// Response extension: where a routed call went, for the per-tenant figures and the access
/// log, in place of a [`RouteLabel`] (one extension, not two: each costs an allocation per
/// request). Absent on answers given before a route was chosen.
#[derive(Debug, Clone)]
pub struct Served {
    pub route: &'static str,
    /// `translate`, `shadow` or `legacy`: the mode this call was served in (a canary's call
    /// is one or the other).
    pub mode: &'static str,
    pub tenant: crate::metrics::TenantLabel,
}

/// Where a translated call goes: the live v4, or (shadow copies) the shadow orchestrator with
/// the marker header naming the original request.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub upstream: &'a crate::upstream::Upstream,
    pub shadow_of: Option<&'a str>,
    /// The client's request deadline (see `crate::deadline`); none for a shadow copy.
    pub deadline: Option<&'a crate::deadline::Deadline>,
}
