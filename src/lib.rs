//! legacy-gateway: keeps legacy User API and user-registry clients working in front of
//! Naviga's Users Orchestrator API (v4).
#![forbid(unsafe_code)]

pub mod events;
pub mod mapping;
pub mod sandbox;
pub mod server;
pub mod source;
