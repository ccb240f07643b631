//! Key casing, one fast path for every user: request bodies, v4 answers and event records.
//!
//! Legacy keys are PascalCase and v4 keys lowerCamelCase, exactly as heck writes them. heck
//! cases through `core::fmt`, one char at a time, with a `String` per key; nearly every key
//! is `fooBar` or `FooBar`, whose new case is its first byte changed, so those are cased
//! here without heck, and without a copy where the key is already in the target case. Any
//! other key (separators, acronyms, non-ASCII) goes to heck, so the results are heck's for
//! every key (`tests/props.rs` pins it, for each path that recases keys).

use std::borrow::Cow;

use heck::{ToLowerCamelCase, ToUpperCamelCase};

/// The target key case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// lowerCamelCase, the v4 side.
    Camel,
    /// PascalCase, the legacy side.
    Pascal,
}

impl Case {
    /// The key in this case, exactly as heck writes it.
    pub fn convert(self, key: &str) -> String {
        self.cased(key).into_owned()
    }

    /// The key in this case, borrowed when it already is in it.
    pub fn cased(self, key: &str) -> Cow<'_, str> {
        let b = key.as_bytes();
        if !is_simple(b) {
            return Cow::Owned(self.heck(key));
        }
        let first = self.first_byte(b[0]);
        if first == b[0] {
            return Cow::Borrowed(key);
        }
        let mut out = String::with_capacity(key.len());
        out.push(first as char);
        out.push_str(&key[1..]);
        Cow::Owned(out)
    }

    /// Appends the key in this case as a JSON string (quotes included).
    pub fn write(self, out: &mut Vec<u8>, key: &str) {
        let b = key.as_bytes();
        if is_simple(b) {
            // Letters and digits only: nothing to escape.
            out.reserve(b.len() + 2);
            out.push(b'"');
            out.push(self.first_byte(b[0]));
            out.extend_from_slice(&b[1..]);
            out.push(b'"');
        } else {
            push_json_str(out, &self.heck(key));
        }
    }

    fn first_byte(self, b: u8) -> u8 {
        match self {
            Case::Camel => b.to_ascii_lowercase(),
            Case::Pascal => b.to_ascii_uppercase(),
        }
    }

    fn heck(self, key: &str) -> String {
        match self {
            Case::Camel => key.to_lower_camel_case(),
            Case::Pascal => key.to_upper_camel_case(),
        }
    }
}

/// Keys of one kind: `fooBar` / `FooBar`, ASCII letters and digits, a letter first, every
/// capital right after a lower-case letter. heck splits them before each capital and keeps
/// each word's letters, so only the first letter's case changes.
pub fn is_simple(key: &[u8]) -> bool {
    let Some(&first) = key.first() else {
        return false;
    };
    let mut prev = CLASS[first as usize];
    if prev < UPPER {
        return false;
    }
    for &c in &key[1..] {
        let class = CLASS[c as usize];
        if class == OTHER || (class == UPPER && prev != LOWER) {
            return false;
        }
        prev = class;
    }
    true
}

const OTHER: u8 = 0;
const DIGIT: u8 = 1;
const UPPER: u8 = 2;
const LOWER: u8 = 3;

/// Each byte's class, one lookup per byte of a key.
static CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c.is_ascii_digit() {
            DIGIT
        } else if c.is_ascii_uppercase() {
            UPPER
        } else if c.is_ascii_lowercase() {
            LOWER
        } else {
            OTHER
        };
        i += 1;
    }
    t
};

/// Appends `s` as a JSON string.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_already_in_case_is_borrowed() {
        assert!(matches!(Case::Camel.cased("firstName"), Cow::Borrowed(_)));
        assert!(matches!(Case::Pascal.cased("FirstName"), Cow::Borrowed(_)));
        assert_eq!(Case::Camel.cased("FirstName"), "firstName");
        assert_eq!(Case::Camel.cased("IPAddress"), "ipAddress");
    }
}
