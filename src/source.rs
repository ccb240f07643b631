//! TOML files (configuration and mappings) read with errors that name the file, the line and
//! the field, so an operator can fix a bad deploy without reading Rust.

use std::ops::Range;

use serde::de::DeserializeOwned;

/// An invalid configuration or mapping file: where, which field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: field `{field}`: {message}")]
pub struct SourceError {
    pub file: String,
    pub line: usize,
    pub field: String,
    pub message: String,
}

/// The text of one TOML file and the name it is reported under.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }

    /// Reads a file from disk; an unreadable file is reported like any other error in it.
    pub fn read(path: &std::path::Path) -> Result<Self, SourceError> {
        let text = std::fs::read_to_string(path).map_err(|e| SourceError {
            file: path.display().to_string(),
            line: 0,
            field: String::new(),
            message: format!("cannot read the file: {e}"),
        })?;
        Ok(Self::new(path.display().to_string(), text))
    }

    /// Deserializes the whole file. serde's message says what is wrong; the span says where,
    /// and the field is taken from the message (`missing field `x``) or the key on that line.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, SourceError> {
        toml::from_str(&self.text).map_err(|e| {
            let message = e.message().trim().to_string();
            let span = e.span().unwrap_or(0..0);
            let key = field_in_message(&message).unwrap_or_else(|| self.key_at(span.start));
            let field = match self.table_at(span.start) {
                Some(table) if !key.is_empty() && !key.starts_with('[') => format!("{table}.{key}"),
                Some(table) => table,
                None => key,
            };
            SourceError {
                file: self.name.clone(),
                line: self.line_of(span.start),
                field,
                message,
            }
        })
    }

    /// An error about a value that parsed but does not make sense (unknown event, bad regex).
    pub fn error(
        &self,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> SourceError {
        SourceError {
            file: self.name.clone(),
            line: self.line_of(span.start),
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    /// The table a position is in, as a field path: `limits`, `parts[1]`, `parts[1].fields`
    /// (the index counts the `[[parts]]` headers before it).
    fn table_at(&self, offset: usize) -> Option<String> {
        let end = offset.min(self.text.len());
        let line_start = self.text[..end].rfind('\n').map_or(0, |i| i + 1);
        let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut current: Option<String> = None;
        for line in self.text[..line_start].lines() {
            let t = line.trim();
            if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
                let name = name.trim().to_string();
                let n = counts.entry(name.clone()).or_insert(0);
                *n += 1;
                current = Some(format!("{name}[{}]", *n - 1));
            } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
                let name = name.trim();
                // A sub-table of the latest element of an array of tables.
                let parent = counts
                    .iter()
                    .filter(|(a, _)| name.starts_with(&format!("{a}.")))
                    .max_by_key(|(a, _)| a.len());
                current = Some(match parent {
                    Some((a, n)) => format!("{a}[{}]{}", n - 1, &name[a.len()..]),
                    None => name.to_string(),
                });
            }
        }
        current
    }

    fn key_at(&self, offset: usize) -> String {
        let end = offset.min(self.text.len());
        let start = self.text[..end].rfind('\n').map_or(0, |i| i + 1);
        let line = self.text[start..].lines().next().unwrap_or("");
        line.split('=').next().unwrap_or("").trim().to_string()
    }
}

fn field_in_message(message: &str) -> Option<String> {
    for prefix in ["missing field `", "unknown field `", "duplicate key `"] {
        if let Some(rest) = message.split(prefix).nth(1) {
            return rest.split('`').next().map(str::to_string);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: u32,
        b: String,
    }

    #[test]
    fn type_error_names_line_and_key() {
        let src = Source::new("x.toml", "a = 1\nb = 2\n");
        let e = src.parse::<T>().unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.line, e.field.as_str()),
            ("x.toml", 2, "b")
        );
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let e = Source::new("x.toml", "a = 1\nb = \"x\"\nc = 3\n")
            .parse::<T>()
            .unwrap_err();
        assert_eq!(e.field, "c");
        let e = Source::new("x.toml", "a = 1\n").parse::<T>().unwrap_err();
        assert_eq!(e.field, "b");
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        parts: Vec<Part>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Part {
        name: String,
        fields: std::collections::BTreeMap<String, String>,
    }

    #[test]
    fn fields_in_tables_are_named_with_their_path() {
        let text = "[[parts]]\nname = \"a\"\n[parts.fields]\nX = \"s\"\n\n[[parts]]\nname = 2\n";
        let e = Source::new("x.toml", text).parse::<Nested>().unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (7, "parts[1].name"));
        let text = "[[parts]]\nname = \"a\"\n[parts.fields]\nX = 1\n";
        let e = Source::new("x.toml", text).parse::<Nested>().unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (4, "parts[0].fields.X"));
    }
}
