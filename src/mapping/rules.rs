//! Error rules: which v4 (or gateway) failure a mapping rule applies to. Shared by the User
//! API's Type table and the action API's answer table, so both match the same way: by status
//! (exact or class), by code without the v4 prefix, by a regex on the text, by action.

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::source::{Source, SourceError};

/// A status in a rule: `404` or a class such as `"4xx"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawStatus {
    Exact(u16),
    Class(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusMatch {
    Exact(u16),
    Class(u16),
}

/// What a failure looks like to the rules: its HTTP status, its code (v4 prefix stripped),
/// its text, and the action it happened in (action API only).
#[derive(Debug, Clone, Copy)]
pub struct V4Failure<'a> {
    pub status: u16,
    pub code: &'a str,
    pub text: &'a str,
    pub action: Option<&'a str>,
}

/// The matching half of a rule; every condition given must hold.
#[derive(Debug, Clone)]
pub struct Matcher {
    status: Option<StatusMatch>,
    code: Option<String>,
    text: Option<Regex>,
    actions: Option<Vec<String>>,
}

/// The raw matching fields of a rule, as written in a mapping file.
pub struct RawMatcher<'a> {
    pub status: &'a Option<Spanned<RawStatus>>,
    pub code: &'a Option<String>,
    pub text: &'a Option<Spanned<String>>,
    pub actions: &'a Option<Vec<String>>,
}

impl Matcher {
    pub fn compile(src: &Source, at: &str, raw: RawMatcher<'_>) -> Result<Self, SourceError> {
        let status = match raw.status {
            None => None,
            Some(s) => Some(match s.get_ref() {
                RawStatus::Exact(n) if (100..=599).contains(n) => StatusMatch::Exact(*n),
                RawStatus::Class(c) if is_class(c) => {
                    StatusMatch::Class(u16::from(c.as_bytes()[0] - b'0'))
                }
                _ => {
                    return Err(src.error(
                        s.span(),
                        format!("{at}.status"),
                        "expected an HTTP status (100-599) or a class such as \"4xx\"",
                    ))
                }
            }),
        };
        let text = match raw.text {
            None => None,
            Some(t) => Some(Regex::new(t.get_ref()).map_err(|e| {
                src.error(
                    t.span(),
                    format!("{at}.text"),
                    format!("invalid regex: {e}"),
                )
            })?),
        };
        Ok(Self {
            status,
            code: raw.code.clone(),
            text,
            actions: raw.actions.clone(),
        })
    }

    pub fn matches(&self, f: &V4Failure<'_>) -> bool {
        let status_ok = match self.status {
            None => true,
            Some(StatusMatch::Exact(n)) => n == f.status,
            Some(StatusMatch::Class(c)) => f.status / 100 == c,
        };
        status_ok
            && self.code.as_deref().is_none_or(|c| c == f.code)
            && self.text.as_ref().is_none_or(|r| r.is_match(f.text))
            && self
                .actions
                .as_ref()
                .is_none_or(|acts| f.action.is_some_and(|a| acts.iter().any(|x| x == a)))
    }

    /// Action names the rule mentions, for `check` to verify they exist.
    pub fn actions(&self) -> &[String] {
        self.actions.as_deref().unwrap_or(&[])
    }
}

fn is_class(c: &str) -> bool {
    let b = c.as_bytes();
    b.len() == 3 && (b'1'..=b'5').contains(&b[0]) && &c[1..] == "xx"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(status: Option<RawStatus>, code: Option<&str>, text: Option<&str>) -> Matcher {
        let src = Source::new("t.toml", "");
        let status = status.map(|s| Spanned::new(0..0, s));
        let text = text.map(|t| Spanned::new(0..0, t.to_string()));
        let code = code.map(str::to_string);
        Matcher::compile(
            &src,
            "errors[0]",
            RawMatcher {
                status: &status,
                code: &code,
                text: &text,
                actions: &None,
            },
        )
        .unwrap()
    }

    #[test]
    fn class_code_and_text_all_must_hold() {
        let rule = m(
            Some(RawStatus::Class("4xx".into())),
            Some("E400_00"),
            Some("(?i)password"),
        );
        let hit = V4Failure {
            status: 400,
            code: "E400_00",
            text: "Invalid InputModel - Password does not meet",
            action: None,
        };
        assert!(rule.matches(&hit));
        assert!(!rule.matches(&V4Failure {
            text: "Email",
            ..hit
        }));
        assert!(!rule.matches(&V4Failure { status: 500, ..hit }));
        assert!(!rule.matches(&V4Failure {
            code: "E400_08",
            ..hit
        }));
    }
}
