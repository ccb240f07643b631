//! The legacy routes: each turns one legacy call into v4 calls and the answer back.

pub mod registry;
pub mod user_api;

/// Response extension naming the route that answered, for metrics (bounded values only).
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

/// Where a translated call goes: the live v4, or (shadow copies) the shadow orchestrator with
/// the marker header naming the original request.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub upstream: &'a crate::upstream::Upstream,
    pub shadow_of: Option<&'a str>,
}
