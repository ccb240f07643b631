//! What a fleet's monitoring needs to tell instances apart: the configuration hash
//! (`gateway_config_info{hash}`: instances that disagree after a ConfigMap change show up as
//! two hashes). The gauges sampled when Prometheus scrapes are in `ops.rs`.

use std::path::Path;

use ring::digest::{Context, SHA256};

use crate::config::Config;
use crate::mapping;

/// The first 16 hex digits of the SHA-256 over the configuration file's bytes and the four
/// mapping files in use (the built-in copies when no directory is configured), each preceded
/// by its length as 8 big-endian bytes so no two different sets of files run together into
/// the same input. Environment overrides are not part of it: they are the same for every pod
/// of a Deployment, and the drift it exists to show is a file that reached some pods only.
pub fn config_hash(config: &Config) -> String {
    let mut ctx = Context::new(&SHA256);
    let mut add = |bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    };
    add(&config.file.as_deref().map(read).unwrap_or_default());
    let embedded = [
        ("v4.toml", mapping::EMBEDDED_V4),
        ("events.toml", mapping::EMBEDDED_EVENTS),
        ("user-api.toml", mapping::EMBEDDED_USER_API),
        ("registry.toml", mapping::EMBEDDED_REGISTRY),
    ];
    for (name, built_in) in embedded {
        match &config.mappings_dir {
            Some(dir) => add(&read(&dir.join(name))),
            None => add(built_in.as_bytes()),
        }
    }
    let digest = ctx.finish();
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}
