//! The capture file `[capture]` writes: one JSON object per line, version 1.
//!
//! ```text
//! {"v":1,"time":"…","route":"user-api","part":"update","tenant":"CA","method":"PUT",
//!  "path":"/User/u1","query":null,"headers":{"x-clientcode":"CA","authorization":"<redacted>"},
//!  "body":{…},"legacy":{"status":200,"body":{…}}}
//! ```
//!
//! `body` / `legacy.body` hold JSON; a body that is not JSON comes as `body_text` /
//! `legacy.body_text`; a read has neither. Fields this reader does not know are ignored (a
//! later capture may add some); a line it cannot use names its line number and why.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::call::{Body, Call, Location};
use super::ReplayError;

#[derive(Deserialize)]
struct Line {
    v: u32,
    tenant: Option<String>,
    method: String,
    path: String,
    query: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<Value>,
    body_text: Option<String>,
    legacy: Legacy,
}

#[derive(Deserialize)]
struct Legacy {
    status: u16,
    body: Option<Value>,
    body_text: Option<String>,
}

/// The calls of one capture file, read a line at a time: a day of capture is never held in
/// memory whole. Blank lines are skipped; a line that is not a capture line is an error
/// naming it.
pub struct Lines<R> {
    file: Arc<str>,
    reader: R,
    line: usize,
    buf: String,
}

impl<R: BufRead> Lines<R> {
    pub fn new(file: Arc<str>, reader: R) -> Self {
        Self {
            file,
            reader,
            line: 0,
            buf: String::new(),
        }
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = Result<Call, ReplayError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            self.line += 1;
            match self.reader.read_line(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) if self.buf.trim().is_empty() => continue,
                Ok(_) => return Some(parse(&self.file, self.line, &self.buf)),
                Err(e) => {
                    return Some(Err(ReplayError::Input {
                        file: self.file.to_string(),
                        line: self.line,
                        message: format!("cannot read the line: {e}"),
                    }))
                }
            }
        }
    }
}

/// One capture line as a call.
fn parse(file: &Arc<str>, n: usize, line: &str) -> Result<Call, ReplayError> {
    let bad = |message: String| ReplayError::Input {
        file: file.to_string(),
        line: n,
        message,
    };
    let l: Line = serde_json::from_str(line)
        .map_err(|e| bad(format!("not a capture line: {}", without_position(&e))))?;
    if l.v != 1 {
        return Err(bad(format!(
            "capture format version {} (this build reads version 1)",
            l.v
        )));
    }
    let method = http::Method::from_bytes(l.method.as_bytes())
        .map_err(|_| bad("`method` is not an HTTP method".into()))?;
    if !l.path.starts_with('/') {
        return Err(bad("`path` must start with /".into()));
    }
    let target = match l.query.as_deref() {
        Some(q) if !q.is_empty() => format!("{}?{}", l.path, q.trim_start_matches('?')),
        _ => l.path,
    };
    if target.parse::<http::Uri>().is_err() {
        return Err(bad("`path` and `query` do not make a request target".into()));
    }
    Ok(Call {
        at: Location {
            file: file.clone(),
            line: n,
        },
        method,
        target,
        headers: l
            .headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        body: body(l.body, l.body_text),
        tenant: l.tenant,
        legacy_status: l.legacy.status,
        legacy_body: body(l.legacy.body, l.legacy.body_text),
    })
}

fn body(json: Option<Value>, text: Option<String>) -> Body {
    match (json, text) {
        (Some(v), _) => Body::Json(v),
        (None, Some(t)) => Body::Text(t),
        (None, None) => Body::None,
    }
}

/// serde's message without its ` at line 1 column N` (the line is ours to name).
fn without_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_calls_with_their_line_numbers() {
        let text = concat!(
            r#"{"v":1,"time":"t","route":"user-api","part":"read","tenant":"CA","method":"GET","path":"/User/1001","query":"IgnoreProvider=true","headers":{"X-ClientCode":"CA"},"legacy":{"status":200,"body":{"Code":0}}}"#,
            "\n\n",
            r#"{"v":1,"method":"PUT","path":"/User/1001","query":null,"tenant":null,"body_text":"x","legacy":{"status":400,"body_text":"oops"},"extra":1}"#,
            "\n"
        );
        let calls: Vec<Call> = Lines::new("c.jsonl".into(), text.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].target, "/User/1001?IgnoreProvider=true");
        assert_eq!(calls[0].headers["x-clientcode"], "CA");
        assert_eq!(calls[1].at.line, 3);
        assert_eq!(calls[1].body, Body::Text("x".into()));
        assert_eq!(calls[1].legacy_body, Body::Text("oops".into()));
    }

    #[test]
    fn a_bad_line_is_named() {
        let first = |text: &str| {
            Lines::new("c.jsonl".into(), text.as_bytes())
                .next()
                .unwrap()
        };
        let e = first("\n{\"v\":1}\n").unwrap_err();
        assert!(
            e.to_string().starts_with("c.jsonl:2: not a capture line"),
            "{e}"
        );
        let e = first(r#"{"v":2,"method":"GET","path":"/","legacy":{"status":200}}"#).unwrap_err();
        assert!(e.to_string().contains("version 2"), "{e}");
    }
}
