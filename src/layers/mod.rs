//! The gateway's tower layers. The cross-cutting concerns of every request are one layer,
//! [`edge`], because each separate layer cost a future, `Arc` clones and copies per request;
//! its module doc gives their order.

pub mod edge;
