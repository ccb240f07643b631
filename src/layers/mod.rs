//! The gateway's own tower layers, one per cross-cutting concern (tower-http covers the rest;
//! the order of all of them is in `stack.rs`).

pub mod metrics;
pub mod shape;
