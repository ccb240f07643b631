//! Mapping files under `mappings/`: the only place that says what maps to what. Each file is
//! parsed into raw types (serde, every error with file, line and field) and checked into the
//! types the gateway runs on; cross-file references (a route's event) are checked here.

mod checks;
pub mod events;
pub mod registry;
pub mod rules;
pub mod user_api;
pub mod v4;

use std::path::Path;
use std::sync::Arc;

pub use events::EventTable;
pub use registry::Registry;
pub use rules::V4Failure;
pub use user_api::UserApi;
pub use v4::V4Facts;

use crate::source::{Source, SourceError};

/// The mapping files compiled into the binary, so it runs anywhere without the repository.
pub const EMBEDDED_EVENTS: &str = include_str!("../../mappings/events.toml");
pub const EMBEDDED_V4: &str = include_str!("../../mappings/v4.toml");
pub const EMBEDDED_USER_API: &str = include_str!("../../mappings/user-api.toml");
pub const EMBEDDED_REGISTRY: &str = include_str!("../../mappings/registry.toml");

/// Every mapping, checked together.
#[derive(Debug, Clone)]
pub struct Mappings {
    pub v4: V4Facts,
    pub events: Arc<EventTable>,
    pub user_api: UserApi,
    pub registry: Registry,
}

impl Mappings {
    /// The copies compiled into the binary (the repository's `mappings/` at build time).
    pub fn embedded() -> Result<Self, SourceError> {
        Self::from_sources(
            Source::new("mappings/v4.toml", EMBEDDED_V4),
            Source::new("mappings/events.toml", EMBEDDED_EVENTS),
            Source::new("mappings/user-api.toml", EMBEDDED_USER_API),
            Source::new("mappings/registry.toml", EMBEDDED_REGISTRY),
        )
    }

    /// The four files of a mappings directory, for deployments that change them without a rebuild.
    pub fn load_dir(dir: &Path) -> Result<Self, SourceError> {
        Self::from_sources(
            Source::read(&dir.join("v4.toml"))?,
            Source::read(&dir.join("events.toml"))?,
            Source::read(&dir.join("user-api.toml"))?,
            Source::read(&dir.join("registry.toml"))?,
        )
    }

    /// `dir` when given, else the embedded copies.
    pub fn load(dir: Option<&Path>) -> Result<Self, SourceError> {
        match dir {
            Some(d) => Self::load_dir(d),
            None => Self::embedded(),
        }
    }

    fn from_sources(
        v4: Source,
        events: Source,
        user_api: Source,
        registry: Source,
    ) -> Result<Self, SourceError> {
        let v4 = V4Facts::load(&v4)?;
        let events = EventTable::load(&events)?;
        let user_api = UserApi::load(&user_api, &events)?;
        let registry = Registry::load(&registry, &events)?;
        Ok(Self {
            v4,
            events: Arc::new(events),
            user_api,
            registry,
        })
    }
}
