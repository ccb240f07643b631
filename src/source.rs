//! TOML files (configuration and mappings) read with errors that name the file, the line and
//! the field, so an operator can fix a bad deploy without reading Rust.

use std::ops::Range;

use serde::de::DeserializeOwned;

/// An invalid configuration or mapping file: where, which field, and what is wrong. `line` 0
/// means the value did not come from a line of a file: `file` then names where it came from
/// (a flag, an environment variable) or the whole file (it cannot be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct SourceError {
    pub file: String,
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl SourceError {
    /// An error in a value set outside any file: `origin` names the flag and environment
    /// variable, so the operator is not sent to a line of a file that does not hold it.
    pub fn outside_file(
        origin: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: origin.into(),
            line: 0,
            field: field.into(),
            message: message.into(),
        }
    }

    fn describe(&self) -> String {
        let place = match self.line {
            0 => self.file.clone(),
            n => format!("{}:{n}", self.file),
        };
        match self.field.as_str() {
            "" => format!("{place}: {}", self.message),
            f => format!("{place}: field `{f}`: {}", self.message),
        }
    }
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
        let text = std::fs::read_to_string(path).map_err(|e| {
            SourceError::outside_file(
                path.display().to_string(),
                "",
                format!("cannot read the file: {e}"),
            )
        })?;
        Ok(Self::new(path.display().to_string(), text))
    }

    /// Deserializes the whole file. serde's message says what is wrong, toml's span says on
    /// which line, and serde_path_to_error says which field: the path the deserializer had
    /// followed when it failed, so `[[parts]]` entries and nested tables are named as they
    /// nest (`parts[1].fields.X`) without reading the text again.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, SourceError> {
        serde_path_to_error::deserialize(toml::Deserializer::new(&self.text)).map_err(|e| {
            let path = field_path(e.path());
            let e = e.into_inner();
            let message = e.message().trim().to_string();
            let offset = e.span().map_or(0, |s| s.start);
            let field = match (path.is_empty(), key_in_message(&message)) {
                (true, Some(key)) => key.to_string(),
                // A missing field: the path stops at the table that lacks it.
                (false, Some(key)) => format!("{path}.{key}"),
                // A TOML syntax error: no field was reached yet.
                (true, None) => self.key_at(offset),
                (false, None) => path,
            };
            let message = if is_secret_key(&field) {
                without_values(&message)
            } else {
                message
            };
            SourceError {
                file: self.name.clone(),
                line: self.line_of(offset),
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

    fn key_at(&self, offset: usize) -> String {
        let end = offset.min(self.text.len());
        let start = self.text[..end].rfind('\n').map_or(0, |i| i + 1);
        let line = self.text[start..].lines().next().unwrap_or("");
        line.split('=').next().unwrap_or("").trim().to_string()
    }
}

/// The path as a field name: `[i]` for array entries, dots between keys, and without the
/// private keys toml's `Spanned` wrapper deserializes through.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut field = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => field.push_str(&format!("[{index}]")),
            Segment::Map { key } if key.starts_with("$__") => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !field.is_empty() {
                    field.push('.');
                }
                field.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    field
}

/// Whether a key holds a secret (`hmac_secret`, `admin_token`, a `password`): its value must
/// not be echoed into an error that lands in a terminal, a CI log or a crash report. Keys
/// naming where a secret is (`service_token_env`, `admin_token_file`) are not secrets.
fn is_secret_key(field: &str) -> bool {
    let key = field
        .rsplit('.')
        .next()
        .unwrap_or(field)
        .to_ascii_lowercase();
    key.ends_with("secret") || key.ends_with("token") || key.contains("password")
}

/// serde's and toml's message with every quoted value (`` `…` ``, `"…"`, `'…'`) cut out:
/// ``invalid type: integer `987654321987`, expected a string`` keeps its type and
/// expectation, and loses the value.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    for c in message.chars() {
        match open {
            Some(q) if c == q => {
                out.push_str("(value not shown)");
                open = None;
            }
            Some(_) => {}
            None if matches!(c, '`' | '"' | '\'') => open = Some(c),
            None => out.push(c),
        }
    }
    out
}

/// The key a message names where the path cannot: a missing field is not on the path, and a
/// duplicate key is found by the TOML parser before there is one.
fn key_in_message(message: &str) -> Option<&str> {
    ["missing field `", "duplicate key `"]
        .iter()
        .find_map(|prefix| message.split(prefix).nth(1)?.split('`').next())
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
    #[allow(dead_code)]
    struct WithSecret {
        hmac_secret: Option<String>,
        admin_token: Option<String>,
        name: Option<u32>,
    }

    #[test]
    fn a_mistyped_secret_is_not_echoed() {
        for text in [
            "hmac_secret = 987654321987\n",
            "admin_token = 987654321987.5\n",
        ] {
            let e = Source::new("x.toml", text)
                .parse::<WithSecret>()
                .unwrap_err();
            let shown = e.to_string();
            assert!(!shown.contains("987654321987"), "{shown}");
            assert!(shown.contains("invalid type"), "{shown}");
            assert!(shown.contains("(value not shown)"), "{shown}");
        }
        // Other keys keep their value in the message: it helps and hides nothing.
        let e = Source::new("x.toml", "name = \"abc\"\n")
            .parse::<WithSecret>()
            .unwrap_err();
        assert!(e.to_string().contains("abc"), "{e}");
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

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Wrapped {
        items: Vec<toml::Spanned<Item>>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        n: u32,
    }

    #[test]
    fn spanned_values_are_named_without_toml_s_wrapper() {
        let text = "[[items]]\nn = 1\n\n[[items]]\nn = \"x\"\n";
        let e = Source::new("x.toml", text).parse::<Wrapped>().unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (5, "items[1].n"));
        let text = "[[items]]\nn = 1\nm = 2\n";
        let e = Source::new("x.toml", text).parse::<Wrapped>().unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "items[0].m"));
    }

    #[test]
    fn a_missing_field_is_named_under_its_table() {
        let text = "[[parts]]\nname = \"a\"\n[parts.fields]\n\n[[parts]]\n[parts.fields]\n";
        let e = Source::new("x.toml", text).parse::<Nested>().unwrap_err();
        assert_eq!(e.field, "parts[1].name");
        assert!(e.message.contains("missing field `name`"), "{}", e.message);
    }

    #[test]
    fn a_syntax_error_names_its_line_and_the_key_there() {
        let e = Source::new("x.toml", "a = 1\nb = \n")
            .parse::<T>()
            .unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.line, e.field.as_str()),
            ("x.toml", 2, "b")
        );
        let e = Source::new("x.toml", "a = 1\nb = \"x\"\na = 2\n")
            .parse::<T>()
            .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "a"));
        assert!(e.message.contains("duplicate key"), "{}", e.message);
    }
}
