//! The capture writer: a thread of its own that masks, serialises and appends the lines,
//! rotating the file by size as the shadow diff file is rotated (the same writer). A blocking
//! write (a full disk, a pipe nobody reads) stalls this thread only; the request path sees
//! the queue bound reached and drops lines.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use super::line::{self, SecretNames};
use super::Entry;
use crate::mapping::Mappings;
use crate::metrics::Metrics;
use crate::shadow::diffs::DiffWriter;

pub(super) struct Writer {
    /// Dropped with the gateway's capture state: the thread then ends.
    tx: mpsc::Sender<Box<Entry>>,
}

impl Writer {
    /// `None` when no thread can be started: lines are then dropped and counted.
    pub(super) fn start(queued: Arc<AtomicUsize>, metrics: Arc<Metrics>) -> Option<Self> {
        let (tx, rx) = mpsc::channel::<Box<Entry>>();
        let spawned = std::thread::Builder::new()
            .name("capture-writer".into())
            .spawn(move || run(&rx, &queued, &metrics));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "capture: no writer thread, lines are dropped");
            return None;
        }
        Some(Self { tx })
    }

    /// False when the writer has stopped.
    pub(super) fn send(&self, entry: Box<Entry>) -> bool {
        self.tx.send(entry).is_ok()
    }
}

fn run(rx: &mpsc::Receiver<Box<Entry>>, queued: &AtomicUsize, metrics: &Metrics) {
    // The file as configured when the line was taken.
    let mut file: Option<(DiffWriter, PathBuf, u64)> = None;
    let mut names: Option<(Arc<Mappings>, SecretNames)> = None;
    // Failures are logged when they start, not once per line.
    let mut failing = false;
    while let Ok(entry) = rx.recv() {
        // Each configuration (re)load makes new mappings: a reload reopens the file, so a
        // rotation by logrotate and SIGHUP is followed as the operator expects.
        let reloaded = !names
            .as_ref()
            .is_some_and(|(m, _)| Arc::ptr_eq(m, &entry.mappings));
        if reloaded {
            names = Some((entry.mappings.clone(), SecretNames::of(&entry.mappings)));
        }
        let text = match &names {
            Some((_, n)) => line::render(&entry, n),
            None => String::new(),
        };
        let same = file
            .as_ref()
            .is_some_and(|(_, p, m)| *p == entry.file && *m == entry.max_bytes);
        if reloaded || !same {
            file = Some((
                DiffWriter::new(&entry.file, entry.max_bytes),
                entry.file.clone(),
                entry.max_bytes,
            ));
        }
        let written = match file.as_mut() {
            Some((w, _, _)) => w.write_line(text.as_bytes()),
            None => Ok(()),
        };
        match written {
            Ok(()) => {
                failing = false;
                metrics.capture_line("written");
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(file = %entry.file.display(), error = %e, "cannot write the capture file");
                }
                failing = true;
                // Reopened at the next line: the directory may come back.
                file = None;
                metrics.capture_line("failed");
            }
        }
        queued.fetch_sub(1, Ordering::AcqRel);
    }
}
