//! The legacy routes: each turns one legacy call into v4 calls and the answer back.

pub mod registry;
pub mod user_api;

/// Response extension naming the route that answered, for metrics (bounded values only).
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);
