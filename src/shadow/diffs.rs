//! The shadow diff file: one JSON line per differing call, rotated by size (the current file
//! is renamed to `<name>.1`, replacing the previous one), so it can run unattended.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct DiffWriter {
    path: PathBuf,
    max_bytes: u64,
    file: Option<File>,
    size: u64,
}

impl DiffWriter {
    pub fn new(path: &Path, max_bytes: u64) -> Self {
        Self {
            path: path.to_path_buf(),
            max_bytes: max_bytes.max(1024),
            file: None,
            size: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line (a newline is added), rotating first if it would not fit.
    pub fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
            self.file = Some(f);
        }
        if self.size > 0 && self.size + line.len() as u64 + 1 > self.max_bytes {
            self.file = None;
            let mut rotated = self.path.clone().into_os_string();
            rotated.push(".1");
            std::fs::rename(&self.path, &rotated)?;
            self.file = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
            self.size = 0;
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(line)?;
            f.write_all(b"\n")?;
            self.size += line.len() as u64 + 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        let mut w = DiffWriter::new(&p, 1024);
        let line = vec![b'x'; 300];
        for _ in 0..5 {
            w.write_line(&line).unwrap();
        }
        let current = std::fs::metadata(&p).unwrap().len();
        let old = std::fs::metadata(dir.path().join("d.jsonl.1"))
            .unwrap()
            .len();
        assert!(current <= 1024 && old <= 1024, "{current} {old}");
        assert!(current >= 301 && old >= 301, "{current} {old}");
    }
}
