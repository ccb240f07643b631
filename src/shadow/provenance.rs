//! Where a differing path comes from: the v4 JSON pointer its value is translated from, and
//! the mapping entry (`file:line` under `mappings/`) that translates it, so an operator fixes
//! that line instead of guessing.
//!
//! Known for what a mapping entry alone decides: the fields of a read's `Result`, which the
//! `[read]` entry takes from v4's `data` key by key (PascalCase from camelCase), or a
//! `[read.rename]` line for a top-level field whose names differ beyond case. Envelope fields
//! (`Code`, `Errors`, the status) come from the error rules as a whole and name no line.

use crate::runtime::Runtime;
use crate::translate::key::Case;

/// The origin of one legacy answer field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub v4_pointer: String,
    pub mapping: Option<String>,
}

/// Where the legacy field at `path` (as the diff names it) of a row's `route` and `part`
/// comes from, when the mapping says. Takes the row's parts rather than the report's row
/// type, so the report can name sources.
pub fn of(rt: &Runtime, route: &str, part: &str, path: &str) -> Option<Origin> {
    if route != "user-api" || part != "read" {
        return None;
    }
    let rest = path.strip_prefix("$.Result.")?;
    let segments = segments(rest);
    let first = match segments.first()? {
        Segment::Key(k) => k.clone(),
        Segment::Index(_) => return None,
    };
    let renamed = rt
        .mappings
        .user_api
        .read
        .rename
        .iter()
        .find(|(_, legacy)| legacy.eq_ignore_ascii_case(&first))
        .map(|(v4, _)| v4.clone());
    let mut pointer = String::from("/data");
    for (i, s) in segments.iter().enumerate() {
        pointer.push('/');
        match s {
            Segment::Key(_) if i == 0 && renamed.is_some() => {
                pointer.push_str(&escape(renamed.as_deref().unwrap_or_default()));
            }
            Segment::Key(k) => pointer.push_str(&escape(&Case::Camel.cased(k))),
            Segment::Index(n) => pointer.push_str(&n.to_string()),
        }
    }
    let (file, text) = mapping_text(rt);
    let line = match &renamed {
        Some(v4) => line_in_section(&text, "[read.rename]", v4),
        None => line_of(&text, "[read]"),
    };
    Some(Origin {
        v4_pointer: pointer,
        mapping: line.map(|l| format!("{file}:{l}")),
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// `Metadata.Topics[0]` → `Metadata`, `Topics`, `0`.
fn segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut indexes) = match part.split_once('[') {
            Some((k, rest)) => (k, Some(rest)),
            None => (part, None),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key.to_string()));
        }
        while let Some(rest) = indexes {
            let (n, after) = rest.split_once(']').unwrap_or((rest, ""));
            if let Ok(n) = n.parse() {
                out.push(Segment::Index(n));
            }
            indexes = after.strip_prefix('[');
        }
    }
    out
}

/// RFC 6901: `~` and `/` in a key.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The User API mapping as loaded: the configured directory's file, else the built-in copy.
fn mapping_text(rt: &Runtime) -> (String, String) {
    match &rt.config.mappings_dir {
        Some(dir) => {
            let path = dir.join("user-api.toml");
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            (path.display().to_string(), text)
        }
        None => (
            "mappings/user-api.toml".to_string(),
            crate::mapping::EMBEDDED_USER_API.to_string(),
        ),
    }
}

/// The 1-based line that is `header` alone.
fn line_of(text: &str, header: &str) -> Option<usize> {
    text.lines().position(|l| l.trim() == header).map(|i| i + 1)
}

/// The 1-based line of `key = …` within the section `header`.
fn line_in_section(text: &str, header: &str, key: &str) -> Option<usize> {
    let start = line_of(text, header)?;
    text.lines()
        .enumerate()
        .skip(start)
        .take_while(|(_, l)| !l.trim_start().starts_with('['))
        .find(|(_, l)| {
            l.split_once('=')
                .is_some_and(|(k, _)| k.trim().trim_matches('"') == key)
        })
        .map(|(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_keys_and_indexes() {
        assert_eq!(
            segments("Metadata.Preferences.Topics[0][2]"),
            [
                Segment::Key("Metadata".into()),
                Segment::Key("Preferences".into()),
                Segment::Key("Topics".into()),
                Segment::Index(0),
                Segment::Index(2)
            ]
        );
    }

    #[test]
    fn lines_are_found_in_their_section() {
        let text = "[read]\nname = \"x\"\n[read.rename]\nmail = \"Email\"\n[[parts]]\nmail = 1\n";
        assert_eq!(line_of(text, "[read]"), Some(1));
        assert_eq!(line_in_section(text, "[read.rename]", "mail"), Some(4));
        assert_eq!(line_in_section(text, "[read.rename]", "other"), None);
    }
}
