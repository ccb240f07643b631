//! Pure translation functions, no I/O: key case, v4 paths, v4 envelopes.

pub mod case;
pub mod envelope;
pub mod path;
