//! Pure translation functions, no I/O: key case, JSON copied with its keys recased, v4
//! paths, v4 envelopes.

pub mod case;
pub mod envelope;
pub mod key;
pub mod path;
pub mod rekey;
