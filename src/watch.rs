//! `serve --watch-config`: reload when the configuration file or the mapping files change,
//! through the same [`Gateway::reload`] as SIGHUP, so a Kubernetes ConfigMap update takes
//! effect without a sidecar or a restart.
//!
//! Kubernetes never writes a mounted ConfigMap file in place: it writes a new timestamped
//! directory and swaps the `..data` symlink beside the file, so a watch on the file itself
//! would keep watching the old inode and miss every update. The watch is therefore on the
//! directories: the one holding the configured path, the one holding the file it resolves
//! to (an in-place edit through a symlink), and the mappings directory. Those directories
//! may hold other files, so after a quiet period (editors and the kubelet write in several
//! steps) the configuration hash decides: unchanged content is no reload, a changed one is
//! reloaded once, refused or not (a broken file is not retried until it changes again).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_mini::{new_debouncer, DebounceEventResult};

use crate::gateway::Gateway;
use crate::instance::config_hash;

/// How long the files must stay quiet before a reload.
pub const QUIET: Duration = Duration::from_millis(500);

/// Starts the watch; it ends with the gateway. Errors (no such directory, no inotify
/// instance left) are returned so `serve` can refuse to start half-configured.
pub fn spawn(gw: &Arc<Gateway>) -> Result<(), String> {
    let rt = gw.runtime();
    let Some(file) = rt.config.file.clone() else {
        return Err("--watch-config needs a configuration file (--config)".into());
    };
    let dirs = directories(&file, rt.config.mappings_dir.as_deref());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut debouncer = new_debouncer(QUIET, move |res: DebounceEventResult| {
        if res.is_ok() {
            let _ = tx.send(());
        }
    })
    .map_err(|e| format!("cannot watch the configuration: {e}"))?;
    for dir in &dirs {
        debouncer
            .watcher()
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    }
    tracing::info!(dirs = ?dirs, "watching the configuration for changes");
    let weak = Arc::downgrade(gw);
    let mut loaded = config_hash(&rt.config);
    drop(rt);
    tokio::spawn(async move {
        // Owned by the task: dropping it ends the watch thread.
        let _debouncer = debouncer;
        while rx.recv().await.is_some() {
            while rx.try_recv().is_ok() {}
            let Some(gw) = weak.upgrade() else { break };
            let now = config_hash(&gw.runtime().config);
            if now == loaded {
                continue;
            }
            loaded = now;
            tracing::debug!("configuration file changed: reloading");
            // A success is logged once, by the reload itself ("configuration reloaded").
            if let Err(e) = gw.reload().await {
                tracing::error!(
                    error = %e,
                    "configuration file changed but was refused; the running configuration stays"
                );
            }
        }
    });
    Ok(())
}

/// The directories to watch, each once. Each is canonicalized before it is compared: `.` and
/// its absolute path are one directory, and watching it under both names delivered every
/// change twice.
fn directories(file: &Path, mappings: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = BTreeSet::new();
    let canonical = |d: PathBuf| std::fs::canonicalize(&d).unwrap_or(d);
    let parent = |p: &Path| {
        p.parent()
            .map(|d| {
                if d.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    d.to_path_buf()
                }
            })
            .unwrap_or_else(|| PathBuf::from("."))
    };
    dirs.insert(canonical(parent(file)));
    if let Ok(resolved) = std::fs::canonicalize(file) {
        dirs.insert(canonical(parent(&resolved)));
    }
    if let Some(m) = mappings {
        dirs.insert(canonical(m.to_path_buf()));
    }
    dirs.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_named_twice_is_watched_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(&file, "").unwrap();
        let dotted = dir.path().join(".").join("gateway.toml");
        let root = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            directories(&dotted, Some(&dir.path().join("."))),
            vec![root]
        );
    }

    #[test]
    fn a_bare_file_name_watches_the_current_directory() {
        assert_eq!(
            directories(Path::new("no-such-gateway.toml"), None),
            vec![std::fs::canonicalize(".").unwrap()]
        );
        assert_eq!(
            directories(Path::new("/nope/a.toml"), Some(Path::new("/nope/maps"))),
            vec![PathBuf::from("/nope"), PathBuf::from("/nope/maps")]
        );
    }
}
