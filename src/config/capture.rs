//! `[capture]`: recording the calls the legacy backend answers, to replay them against a v4
//! release later. Absent, nothing is recorded and the request path does no capture work at
//! all. Reads alone by default: a captured write is a password change someone may replay.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::source::{Source, SourceError};

#[derive(Debug, Clone, PartialEq)]
pub struct CaptureConfig {
    pub file: PathBuf,
    /// Share of users whose calls are recorded, by the same per-user bucket as the canary
    /// split and shadow sampling: a user is always in or always out.
    pub sample_percent: u8,
    /// The file is rotated (renamed to `<file>.1`) before it would grow past this.
    pub max_bytes: u64,
    /// `user-api`, `user-api.read`, `registry.<action>`…; empty: every route.
    pub routes: Vec<String>,
    /// Calls that change data are recorded too (else reads only).
    pub writes: bool,
    /// Lines waiting for the writer; past this, lines are dropped and counted, never waited
    /// for.
    pub buffer_lines: usize,
}

impl CaptureConfig {
    /// Whether a call of `route` (`user-api`, `registry`) and `part` (`read`, an action)
    /// that does (`writes`) or does not change data is recorded at all (sampling aside).
    pub fn selects(&self, route: &str, part: &str, writes: bool) -> bool {
        if writes && !self.writes {
            return false;
        }
        self.routes.is_empty()
            || self.routes.iter().any(|r| match r.split_once('.') {
                Some((family, p)) => family == route && p.eq_ignore_ascii_case(part),
                None => r == route,
            })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCapture {
    file: Option<PathBuf>,
    sample_percent: Option<Spanned<u8>>,
    max_bytes: Option<Spanned<u64>>,
    #[serde(default)]
    routes: Vec<Spanned<String>>,
    writes: Option<bool>,
    buffer_lines: Option<Spanned<usize>>,
}

pub(super) fn check(
    src: &Source,
    raw: Option<&Spanned<RawCapture>>,
) -> Result<Option<CaptureConfig>, SourceError> {
    let Some(section) = raw else {
        return Ok(None);
    };
    let c = section.get_ref();
    let Some(file) = c.file.clone() else {
        return Err(src.error(
            section.span(),
            "capture.file",
            "required: the file the captured calls are written to (remove [capture] to capture nothing)",
        ));
    };
    let sample_percent = match &c.sample_percent {
        Some(p) if *p.get_ref() > 100 => {
            return Err(src.error(p.span(), "capture.sample_percent", "a percentage (0-100)"))
        }
        Some(p) => *p.get_ref(),
        None => 100,
    };
    let max_bytes = match &c.max_bytes {
        Some(m) if *m.get_ref() < 1024 => {
            return Err(src.error(
                m.span(),
                "capture.max_bytes",
                "at least 1024 (one captured call is often larger)",
            ))
        }
        Some(m) => *m.get_ref(),
        None => 100 * 1024 * 1024,
    };
    let buffer_lines = match &c.buffer_lines {
        Some(b) if *b.get_ref() == 0 => {
            return Err(src.error(b.span(), "capture.buffer_lines", "must be greater than 0"))
        }
        Some(b) => *b.get_ref(),
        None => 1024,
    };
    let writes = c.writes.unwrap_or(false);
    let mut routes = Vec::new();
    for (i, r) in c.routes.iter().enumerate() {
        let name = r.get_ref();
        let known = matches!(
            name.as_str(),
            "user-api" | "user-api.read" | "user-api.update" | "registry"
        ) || name
            .strip_prefix("registry.")
            .is_some_and(|a| !a.is_empty());
        if !known {
            return Err(src.error(
                r.span(),
                format!("capture.routes[{i}]"),
                "expected user-api, user-api.read, user-api.update, registry or registry.<action>",
            ));
        }
        if name == "user-api.update" && !writes {
            return Err(src.error(
                r.span(),
                format!("capture.routes[{i}]"),
                "user-api.update changes data: set capture.writes = true to record it (a recorded write is a password change someone may replay)",
            ));
        }
        routes.push(name.clone());
    }
    Ok(Some(CaptureConfig {
        file,
        sample_percent,
        max_bytes,
        routes,
        writes,
        buffer_lines,
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Overrides};

    fn load(text: &str) -> Result<Config, crate::source::SourceError> {
        Config::from_toml("c.toml", text, &Overrides::default())
    }

    #[test]
    fn absent_means_off_and_present_has_defaults() {
        assert!(load("").unwrap().capture.is_none());
        let c = load("[capture]\nfile = \"c.jsonl\"\n")
            .unwrap()
            .capture
            .unwrap();
        assert_eq!(
            (c.sample_percent, c.max_bytes, c.writes, c.buffer_lines),
            (100, 100 * 1024 * 1024, false, 1024)
        );
        assert!(c.selects("user-api", "read", false));
        assert!(c.selects("registry", "login", false));
        assert!(!c.selects("user-api", "update", true));
    }

    #[test]
    fn errors_name_line_and_field() {
        let e = load("\n[capture]\nsample_percent = 5\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "capture.file"));
        let e = load("[capture]\nfile = \"c\"\nsample_percent = 101\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "capture.sample_percent"));
        let e = load("[capture]\nfile = \"c\"\nmax_bytes = 10\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "capture.max_bytes"));
        let e = load("[capture]\nfile = \"c\"\nbuffer_lines = 0\n").unwrap_err();
        assert_eq!(e.field, "capture.buffer_lines");
        let e = load("[capture]\nfile = \"c\"\nroutes = [\"user-api\", \"users\"]\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "capture.routes[1]"));
        let e = load("[capture]\nfile = \"c\"\nroutes = [\"user-api.update\"]\n").unwrap_err();
        assert_eq!(e.field, "capture.routes[0]");
        let e = load("[capture]\nfile = \"c\"\nbogus = 1\n").unwrap_err();
        assert_eq!(e.field, "capture.bogus");
    }

    #[test]
    fn routes_select_parts_and_writes_need_opting_in() {
        let c = load("[capture]\nfile = \"c\"\nroutes = [\"user-api.update\", \"registry.activatenewpassword\"]\nwrites = true\n")
            .unwrap()
            .capture
            .unwrap();
        assert!(c.selects("user-api", "update", true));
        assert!(!c.selects("user-api", "read", false));
        assert!(c.selects("registry", "ActivateNewPassword", true));
        assert!(!c.selects("registry", "registernewpassword", true));
    }
}
