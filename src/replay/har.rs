//! HAR 1.2 files, what browsers' developer tools, mitmproxy and Charles export: each entry's
//! request becomes a call, and its response is the answer the legacy backend gave. So a team
//! can start from traffic it already has, before any capture runs.
//!
//! Entries are numbered from 1 in file order; that number stands where a capture line's
//! number would. Which entries are legacy API calls is for the configuration to say (the
//! runner skips and counts the others); entries without an answer (status 0) are skipped and
//! counted here. HTTP/2 pseudo-headers are dropped, and a request without `Host` gets its
//! URL's, since the action API chooses the tenant by it.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;

use super::call::{Body, Call, Location};
use super::inputs::Inputs;
use super::ReplayError;

#[derive(Deserialize)]
struct Har {
    log: Log,
}

#[derive(Deserialize)]
struct Log {
    #[serde(default)]
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    request: Request,
    response: Response,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<NameValue>,
    post_data: Option<PostData>,
}

#[derive(Deserialize)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostData {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Response {
    status: i64,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
struct Content {
    text: Option<String>,
    encoding: Option<String>,
}

/// Appends the entries of one HAR file to `into`.
pub fn load(file: &str, text: &str, into: &mut Inputs) -> Result<(), ReplayError> {
    let har: Har = serde_json::from_str(text).map_err(|e| ReplayError::Input {
        file: file.to_string(),
        line: e.line(),
        message: format!("not a HAR file: {e}"),
    })?;
    let shared: std::sync::Arc<str> = file.into();
    let mut calls = Vec::new();
    for (i, e) in har.log.entries.into_iter().enumerate() {
        let at = Location {
            file: shared.clone(),
            line: i + 1,
        };
        let bad = |message: String| ReplayError::Input {
            file: file.to_string(),
            line: i + 1,
            message: format!("entry {}: {message}", i + 1),
        };
        if e.response.status <= 0 {
            into.skipped.unanswered += 1;
            continue;
        }
        let status = u16::try_from(e.response.status)
            .ok()
            .filter(|s| (100..=999).contains(s))
            .ok_or_else(|| bad(format!("response status {}", e.response.status)))?;
        let url =
            url::Url::parse(&e.request.url).map_err(|err| bad(format!("request url: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            into.skipped.not_legacy += 1;
            continue;
        }
        let method = http::Method::from_bytes(e.request.method.as_bytes())
            .map_err(|_| bad("request method is not an HTTP method".into()))?;
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let mut headers: BTreeMap<String, String> = e
            .request
            .headers
            .into_iter()
            .filter(|h| !h.name.starts_with(':'))
            .map(|h| (h.name.to_ascii_lowercase(), h.value))
            .collect();
        if !headers.contains_key("host") {
            if let Some(host) = url.host_str() {
                let host = match url.port() {
                    Some(p) => format!("{host}:{p}"),
                    None => host.to_string(),
                };
                headers.insert("host".into(), host);
            }
        }
        let body = e
            .request
            .post_data
            .and_then(|p| p.text)
            .map_or(Body::None, |t| as_body(t.into_bytes()));
        let content = e.response.content.and_then(|c| {
            let text = c.text?;
            match c.encoding.as_deref() {
                Some(enc) if enc.eq_ignore_ascii_case("base64") => {
                    base64::engine::general_purpose::STANDARD
                        .decode(text.trim())
                        .ok()
                }
                _ => Some(text.into_bytes()),
            }
        });
        calls.push(Call {
            at,
            method,
            target,
            headers,
            body,
            tenant: None,
            legacy_status: status,
            legacy_body: content.map_or(Body::None, as_body),
        });
    }
    into.push_har(calls);
    Ok(())
}

/// JSON when it parses as JSON, whatever the declared media type; else the text.
fn as_body(bytes: Vec<u8>) -> Body {
    if bytes.is_empty() {
        return Body::None;
    }
    match serde_json::from_slice(&bytes) {
        Ok(v) => Body::Json(v),
        Err(_) => Body::Text(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_become_calls() {
        let har = r#"{"log":{"version":"1.2","entries":[
          {"request":{"method":"GET","url":"https://users.example.test/User/1001?IgnoreProvider=true",
            "headers":[{"name":":authority","value":"x"},{"name":"X-ClientCode","value":"CA"}]},
           "response":{"status":200,"content":{"mimeType":"application/json","text":"eyJDb2RlIjowfQ==","encoding":"base64"}}},
          {"request":{"method":"GET","url":"https://users.example.test/app.js","headers":[]},
           "response":{"status":0,"content":{}}}
        ]}}"#;
        let mut l = Inputs::default();
        load("t.har", har, &mut l).unwrap();
        let calls: Vec<Call> = l.calls().collect::<Result<_, _>>().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(l.skipped.unanswered, 1);
        let c = &calls[0];
        assert_eq!(c.target, "/User/1001?IgnoreProvider=true");
        assert_eq!(c.headers["host"], "users.example.test");
        assert!(!c.headers.contains_key(":authority"));
        assert_eq!(c.legacy_body, Body::Json(serde_json::json!({"Code": 0})));
    }
}
