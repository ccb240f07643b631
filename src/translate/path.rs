//! v4 path templates (`/v4/Users/{id}/Password`) and the one safe way to put an id into them.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986 unreserved characters is encoded, so an id is always exactly one
/// path segment: `auth0|abc` → `auth0%7Cabc`, `a/b` → `a%2Fb`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A v4 path with at most one `{id}` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    before: String,
    after: Option<String>,
}

impl PathTemplate {
    /// `None` when the template is not an absolute path or has more than one placeholder.
    pub fn parse(raw: &str) -> Option<Self> {
        if !raw.starts_with('/') {
            return None;
        }
        let mut pieces = raw.split("{id}");
        let before = pieces.next()?.to_string();
        let after = pieces.next().map(str::to_string);
        if pieces.next().is_some()
            || before.contains('{')
            || after.as_ref().is_some_and(|a| a.contains('{'))
        {
            return None;
        }
        Some(Self { before, after })
    }

    pub fn needs_id(&self) -> bool {
        self.after.is_some()
    }

    /// The path with `id` encoded as one segment. The id must have passed [`check_id`].
    pub fn render(&self, id: Option<&str>) -> String {
        match (&self.after, id) {
            (Some(after), Some(id)) => {
                let mut s = String::with_capacity(self.before.len() + id.len() * 3 + after.len());
                s.push_str(&self.before);
                s.extend(utf8_percent_encode(id, SEGMENT));
                s.push_str(after);
                s
            }
            _ => self.before.clone(),
        }
    }
}

/// Why an id cannot be placed into a v4 path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadId {
    #[error("the id is empty")]
    Empty,
    #[error("the id is longer than 256 characters")]
    TooLong,
    #[error("the id is not valid UTF-8 once decoded")]
    NotUtf8,
    /// `.`/`..` are path navigation even when percent-encoded (WHATWG URL treats `%2e%2e` as
    /// `..`), and `/` or `\` would let a caller aim at another v4 path on some servers.
    #[error("the id contains a path separator, a dot segment or a control character")]
    Unsafe,
}

/// Decodes a raw path segment from the legacy URL into an id that is safe for [`PathTemplate::render`].
pub fn decode_id(raw: &str) -> Result<String, BadId> {
    let id = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| BadId::NotUtf8)?
        .into_owned();
    check_id(&id)?;
    Ok(id)
}

/// The id as the client sent it, for echoing in `Result.CustomerRegistrationId`: decoded,
/// even when [`decode_id`] refuses it (invalid UTF-8 shows as U+FFFD).
pub fn as_sent(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

pub fn check_id(id: &str) -> Result<(), BadId> {
    if id.is_empty() {
        return Err(BadId::Empty);
    }
    if id.chars().count() > 256 {
        return Err(BadId::TooLong);
    }
    if id == "." || id == ".." || id.contains(['/', '\\']) || id.chars().any(char::is_control) {
        return Err(BadId::Unsafe);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_one_encoded_segment() {
        let t = PathTemplate::parse("/v4/Users/{id}/Password").unwrap();
        assert_eq!(
            t.render(Some("auth0|abc")),
            "/v4/Users/auth0%7Cabc/Password"
        );
        assert_eq!(
            t.render(Some("a b?c#d%")),
            "/v4/Users/a%20b%3Fc%23d%25/Password"
        );
    }

    #[test]
    fn traversal_is_refused() {
        assert_eq!(decode_id("..%2F..%2Fadmin"), Err(BadId::Unsafe));
        assert_eq!(decode_id("%2E%2E"), Err(BadId::Unsafe));
        assert_eq!(decode_id("a%5Cb"), Err(BadId::Unsafe));
        assert_eq!(decode_id("%00"), Err(BadId::Unsafe));
        assert_eq!(decode_id(""), Err(BadId::Empty));
        assert_eq!(decode_id("%FF"), Err(BadId::NotUtf8));
        assert_eq!(decode_id("auth0%7Cabc").unwrap(), "auth0|abc");
        assert_eq!(decode_id("a..b").unwrap(), "a..b");
    }

    #[test]
    fn templates_without_id() {
        let t = PathTemplate::parse("/v4/Users/ForgotPassword").unwrap();
        assert!(!t.needs_id());
        assert_eq!(t.render(None), "/v4/Users/ForgotPassword");
        assert!(PathTemplate::parse("v4/x").is_none());
        assert!(PathTemplate::parse("/v4/{id}/{id}").is_none());
    }
}
