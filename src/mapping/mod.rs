//! Mapping files under `mappings/`: the only place that says what maps to what.

pub mod events;

pub use events::EventTable;

/// The mapping files compiled into the binary, so it runs anywhere without the repo.
pub const EMBEDDED_EVENTS: &str = include_str!("../../mappings/events.toml");
