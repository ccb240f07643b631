//! Bad input refused before any v4 call, over real HTTP: missing headers, bad bodies, bodies
//! over the limit (with `Content-Length` and chunked), wrong methods and paths, a client too
//! slow to send its body; each answer checked for status, code and source, and the fake v4
//! checked to have seen nothing. And odd but valid input (deep nesting, query strings, odd
//! request ids, the path's case) that must still be served.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::fakes::accepting_anything;
use common::put_request;
use common::{client, gateway, gateway_with, put_user, received, send, user_api_headers, PASSWORD};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn validation_failed() -> Value {
    json!({"Id": 1, "Code": "ValidationFailed"})
}

#[tokio::test]
async fn missing_mandatory_headers_are_named() {
    let v4s = accepting_anything().await;
    let gw = gateway(&v4s.uri()).await;
    let body = json!({"Password": PASSWORD}).to_string();

    // None at all: the token comes first (a 401 makes a legacy client renew it).
    let a = send(
        client()
            .put(format!("{}/User/1001", gw.url()))
            .header("Content-Type", "application/json")
            .body(body.clone()),
    )
    .await;
    a.assert_refused(401, "Gateway_E401_01", "no headers");
    assert_eq!(
        a.headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer")
    );
    assert_eq!(
        a.json["Errors"][0]["Type"],
        json!({"Id": 6, "Code": "NotAuthorized"})
    );

    // A token, nothing else: the rest are named.
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("Authorization", common::TOKEN.parse().unwrap());
    let a = send(
        client()
            .put(format!("{}/User/1001", gw.url()))
            .headers(h)
            .header("Content-Type", "application/json")
            .body(body.clone()),
    )
    .await;
    a.assert_refused(400, "Gateway_E400_01", "only a token");
    a.assert_legacy(
        400,
        json!([{
            "Message": "Missing mandatory headers: X-SourceSystem, X-ClientCode, X-PaperCode, X-ClientGroupCode.",
            "Code": "Gateway_E400_01",
            "Type": validation_failed(),
            "ErrorSource": "Gateway"
        }]),
        json!({"CustomerRegistrationId": "1001", "Updated": false}),
        "only a token",
    );

    // One absent, one present but empty: both missing.
    let mut h = user_api_headers();
    h.remove("X-PaperCode");
    h.insert("X-ClientGroupCode", "".parse().unwrap());
    let a = send(
        client()
            .put(format!("{}/User/1001", gw.url()))
            .headers(h)
            .body(body.clone()),
    )
    .await;
    a.assert_refused(400, "Gateway_E400_01", "two missing");
    assert_eq!(
        a.message(),
        "Missing mandatory headers: X-PaperCode, X-ClientGroupCode."
    );

    // Authorization alone missing, or empty, or blank: 401 in the legacy envelope.
    for token in [None, Some(""), Some("   ")] {
        let mut h = user_api_headers();
        h.remove("Authorization");
        if let Some(t) = token {
            h.insert("Authorization", t.parse().unwrap());
        }
        let a = send(
            client()
                .put(format!("{}/User/1001", gw.url()))
                .headers(h)
                .body(body.clone()),
        )
        .await;
        a.assert_refused(401, "Gateway_E401_01", &format!("token {token:?}"));
        assert_eq!(a.json["Code"], 401);
        assert_eq!(a.json["Errors"][0]["Type"]["Code"], "NotAuthorized");
        assert_eq!(a.json["Result"]["CustomerRegistrationId"], "1001");
        assert_eq!(
            a.headers
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer"),
            "{token:?}"
        );
    }

    assert!(received(&v4s).await.is_empty(), "nothing may reach v4");
    gw.shutdown().await;
}

#[tokio::test]
async fn bad_bodies_are_refused_with_their_code_and_reason() {
    let v4s = accepting_anything().await;
    let gw = gateway(&v4s.uri()).await;

    fn json_error(body: &str) -> String {
        let e = serde_json::from_str::<Value>(body).unwrap_err();
        format!(
            "The request body is not valid JSON (line {}, column {}).",
            e.line(),
            e.column()
        )
    }
    enum Msg {
        Exact(String),
        Contains(&'static [&'static str]),
    }
    use Msg::*;
    let not_object = || Exact("The request body must be a JSON object.".into());
    let empty = || Exact("The request body is empty.".into());
    let not_boolean = || Exact("Field Verified must be a boolean.".into());
    let cases: Vec<(&str, &str, Msg)> = vec![
        (
            r#"{"Password" "x"}"#,
            "Gateway_E400_02",
            Exact(json_error(r#"{"Password" "x"}"#)),
        ),
        (
            r#"{"Password": "x""#,
            "Gateway_E400_02",
            Exact(json_error(r#"{"Password": "x""#)),
        ),
        (
            "{\n\"Password\": x}",
            "Gateway_E400_02",
            Exact(json_error("{\n\"Password\": x}")),
        ),
        (
            r#"{"Password": "x"} trailing"#,
            "Gateway_E400_02",
            Contains(&["not valid JSON"]),
        ),
        (r#"["Password"]"#, "Gateway_E400_03", not_object()),
        (r#""Password""#, "Gateway_E400_03", not_object()),
        ("42", "Gateway_E400_03", not_object()),
        ("null", "Gateway_E400_03", not_object()),
        ("", "Gateway_E400_04", empty()),
        (" \r\n\t ", "Gateway_E400_04", empty()),
        ("{}", "Gateway_E400_04", empty()),
        (
            r#"{"Password": "x", "Nickname": "y"}"#,
            "Gateway_E400_05",
            Exact("Unknown fields: Nickname.".into()),
        ),
        (
            r#"{"Password": "x", "Nickname": "y", "Age": 3}"#,
            "Gateway_E400_05",
            Contains(&["Unknown fields: ", "Nickname", "Age"]),
        ),
        (r#"{"Verified": "yes"}"#, "Gateway_E400_06", not_boolean()),
        (
            // Not nullable: no trailing `?` in the mapping.
            r#"{"Verified": null}"#,
            "Gateway_E400_06",
            not_boolean(),
        ),
        (
            r#"{"FirstName": 5}"#,
            "Gateway_E400_06",
            Exact("Field FirstName must be a string or null.".into()),
        ),
        (
            r#"{"Metadata": [1]}"#,
            "Gateway_E400_06",
            Exact("Field Metadata must be an object or null.".into()),
        ),
        (
            r#"{"Password": null}"#,
            "Gateway_E400_06",
            Exact("Field Password must be a string.".into()),
        ),
        (
            // A valid part does not go out when another part of the body is wrong.
            r#"{"Password": "x", "Email": "a@b.c", "Verified": "yes"}"#,
            "Gateway_E400_06",
            not_boolean(),
        ),
        (
            r#"{"Password": "x", "password": "y"}"#,
            "Gateway_E400_08",
            Contains(&["Duplicate fields: ", "Password", "password"]),
        ),
        (
            r#"{"Metadata": {"NewsLetter": true, "newsLetter": false}}"#,
            "Gateway_E400_08",
            Contains(&["Duplicate fields: ", "Metadata", "NewsLetter", "newsLetter"]),
        ),
        (
            // One spelling twice: refused, not the last value silently kept.
            r#"{"Password": "x", "Password": "y"}"#,
            "Gateway_E400_08",
            Exact("Duplicate fields: Password appears twice.".into()),
        ),
        (
            r#"{"Metadata": {"Teams": [{"Name": "a", "Name": "b"}]}}"#,
            "Gateway_E400_08",
            Exact("Duplicate fields: Name appears twice in Metadata.Teams[0].".into()),
        ),
    ];
    for (body, code, msg) in cases {
        let a = put_user(&gw, "1001", body.to_string()).await;
        a.assert_refused(400, code, body);
        assert_eq!(a.json["Errors"][0]["Type"], validation_failed(), "{body}");
        assert_eq!(
            a.json["Result"],
            json!({"CustomerRegistrationId": "1001", "Updated": false}),
            "{body}"
        );
        match msg {
            Exact(m) => assert_eq!(a.message(), m, "{body}"),
            Contains(parts) => {
                for p in parts {
                    assert!(
                        a.message().contains(p),
                        "{body}: {:?} lacks {p:?}",
                        a.message()
                    );
                }
            }
        }
    }
    assert!(received(&v4s).await.is_empty(), "nothing may reach v4");
    gw.shutdown().await;
}

#[tokio::test]
async fn body_over_the_limit_with_content_length_is_413() {
    let v4s = accepting_anything().await;
    let gw = gateway_with("[limits]\nbody_bytes = 1024\n", Some(&v4s.uri())).await;

    let big = json!({"Password": "a".repeat(2000)}).to_string();
    let a = put_user(&gw, "1001", big).await;
    a.assert_refused(413, "Gateway_E413_01", "content-length over");
    assert_eq!(a.message(), "The request body is larger than 1024 bytes.");
    assert_eq!(a.json["Errors"][0]["Type"], validation_failed());
    assert!(received(&v4s).await.is_empty(), "nothing may reach v4");

    // Just under the limit goes through.
    let fits = json!({"Password": "a".repeat(1000)}).to_string();
    assert!(fits.len() <= 1024);
    let a = put_user(&gw, "1001", fits).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(received(&v4s).await.len(), 1);
    gw.shutdown().await;
}

/// Sends a PUT with a hand-written chunked body and reads the answer to EOF.
async fn put_chunked(addr: SocketAddr, chunks: &[String]) -> (u16, Value) {
    let mut req = String::from(
        "PUT /User/1001 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
    );
    for (name, value) in user_api_headers().iter() {
        req.push_str(&format!("{}: {}\r\n", name, value.to_str().unwrap()));
    }
    req.push_str("\r\n");
    for c in chunks {
        req.push_str(&format!("{:x}\r\n{c}\r\n", c.len()));
    }
    req.push_str("0\r\n\r\n");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The gateway may answer and close before reading everything; the answer is what counts.
    let _ = s.write_all(req.as_bytes()).await;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("a full answer: {text:?}"));
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).expect("a JSON answer"))
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    let v4s = accepting_anything().await;
    let gw = gateway_with("[limits]\nbody_bytes = 1024\n", Some(&v4s.uri())).await;

    let mut chunks = vec![r#"{"Password": ""#.to_string()];
    chunks.extend(vec!["a".repeat(200); 10]);
    chunks.push(r#""}"#.to_string());
    let (status, json) = put_chunked(gw.addr, &chunks).await;
    assert_eq!(status, 413, "{json}");
    assert_eq!(json["Code"], 413);
    assert_eq!(json["Errors"][0]["Code"], "Gateway_E413_01");
    assert_eq!(json["Errors"][0]["ErrorSource"], "Gateway");
    assert_eq!(
        json["Errors"][0]["Message"],
        "The request body is larger than 1024 bytes."
    );
    assert_eq!(json["Result"]["Updated"], false);
    assert!(received(&v4s).await.is_empty(), "nothing may reach v4");

    // The same way of sending, under the limit, is forwarded: the 413 above is the limit's.
    let chunks = [r#"{"Pass"#.to_string(), format!(r#"word": "{PASSWORD}"}}"#)];
    let (status, json) = put_chunked(gw.addr, &chunks).await;
    assert_eq!(status, 200, "{json}");
    let got = received(&v4s).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].body_json::<Value>().unwrap(),
        json!({"password": PASSWORD})
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn wrong_method_is_405_and_unknown_path_is_404() {
    let v4s = accepting_anything().await;
    let gw = gateway(&v4s.uri()).await;
    let body = json!({"Password": PASSWORD}).to_string();

    for m in ["POST", "PATCH", "DELETE"] {
        let a = send(
            client()
                .request(m.parse().unwrap(), format!("{}/User/1001", gw.url()))
                .headers(user_api_headers())
                .body(body.clone()),
        )
        .await;
        a.assert_refused(405, "Gateway_E405_01", m);
        assert_eq!(a.message(), "Method not allowed.");
        assert_eq!(a.json["Errors"][0]["Type"], validation_failed());
    }
    for p in [
        "/",
        "/Users/1001",
        "/User",
        "/User/",
        "/User/1001/Password",
        "/v4/Users/1001/Password",
    ] {
        let a = send(
            client()
                .put(format!("{}{p}", gw.url()))
                .headers(user_api_headers())
                .body(body.clone()),
        )
        .await;
        a.assert_refused(404, "Gateway_E404_01", p);
        assert_eq!(a.message(), "No route for this path.");
        assert_eq!(a.json["Errors"][0]["Type"], validation_failed());
    }
    assert!(received(&v4s).await.is_empty(), "nothing may reach v4");
    gw.shutdown().await;
}

#[tokio::test]
async fn the_legacy_path_matches_case_insensitively_and_keeps_the_id_as_sent() {
    let v4s = accepting_anything().await;
    let gw = gateway(&v4s.uri()).await;

    for (p, id) in [("/user/1001", "1001"), ("/USER/AbC", "AbC")] {
        let a = send(
            client()
                .put(format!("{}{p}", gw.url()))
                .headers(user_api_headers())
                .body(json!({"Password": PASSWORD}).to_string()),
        )
        .await;
        assert_eq!(a.status, 200, "{p}: {}", a.text);
        assert_eq!(a.json["Result"]["CustomerRegistrationId"], id);
    }
    assert_eq!(
        common::received_paths(&v4s).await,
        ["/v4/Users/1001/Password", "/v4/Users/AbC/Password"]
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn odd_but_valid_inputs_do_not_break_the_gateway() {
    let v4s = accepting_anything().await;
    let gw = gateway(&v4s.uri()).await;

    // Not UTF-8.
    let a = put_user(&gw, "1001", vec![b'{', 0xff, 0xfe, b'}']).await;
    a.assert_refused(400, "Gateway_E400_02", "not UTF-8");
    // Ids too long or not UTF-8 once decoded.
    let a = put_user(
        &gw,
        &"a".repeat(257),
        json!({"Password": PASSWORD}).to_string(),
    )
    .await;
    a.assert_refused(400, "Gateway_E400_07", "long id");
    let a = put_user(&gw, "%FF", json!({"Password": PASSWORD}).to_string()).await;
    a.assert_refused(400, "Gateway_E400_07", "%FF");
    // Nesting beyond what the JSON parser takes is a JSON error, not a crash.
    let deep = format!(
        "{{\"Metadata\": {}1{}}}",
        "{\"A\":".repeat(200),
        "}".repeat(200)
    );
    let a = put_user(&gw, "1001", deep).await;
    a.assert_refused(400, "Gateway_E400_02", "too deep");
    assert!(received(&v4s).await.is_empty(), "nothing may reach v4");

    // Deep but acceptable nesting is converted at every level.
    let deep = format!(
        "{{\"Metadata\": {}1{}}}",
        "{\"LevelKey\":".repeat(100),
        "}".repeat(100)
    );
    let a = put_user(&gw, "1001", deep).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let got = received(&v4s).await;
    assert_eq!(got.len(), 1);
    let sent = String::from_utf8(got[0].body.clone()).unwrap();
    assert_eq!(sent.matches("\"levelKey\"").count(), 100, "{sent}");
    assert!(!sent.contains("LevelKey"));

    // A query string on the legacy URL is not carried to v4.
    let a = put_user(
        &gw,
        "1001?debug=1&Password=x",
        json!({"Password": PASSWORD}).to_string(),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["Result"]["CustomerRegistrationId"], "1001");
    let got = received(&v4s).await;
    assert_eq!(got[1].url.path(), "/v4/Users/1001/Password");
    assert_eq!(got[1].url.query(), None);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_client_too_slow_to_send_its_body_gets_408() {
    let v4s = accepting_anything().await;
    let gw = gateway_with(
        "[limits]\nrequest_timeout_ms = 400\nupstream_timeout_ms = 200\n",
        Some(&v4s.uri()),
    )
    .await;
    let mut req = String::from(
        "PUT /User/1001 HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 40\r\n",
    );
    for (name, value) in user_api_headers().iter() {
        req.push_str(&format!("{}: {}\r\n", name, value.to_str().unwrap()));
    }
    req.push_str("\r\n{\"Password\": ");
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    // The rest of the body never comes; the gateway answers and closes.
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("an answer: {text:?}"));
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    let json: Value = serde_json::from_str(body).expect("a JSON answer");
    assert_eq!(json["Errors"][0]["Code"], "Gateway_E408_01", "{json}");
    assert_eq!(json["Errors"][0]["ErrorSource"], "Gateway");
    assert_eq!(json["Result"]["Updated"], false);
    assert!(received(&v4s).await.is_empty());
    gw.shutdown().await;
}

#[tokio::test]
async fn an_empty_or_unprintable_client_request_id_still_gives_a_usable_id() {
    let v4s = accepting_anything().await;
    let gw = gateway(&v4s.uri()).await;
    let values: [&[u8]; 2] = [b"", b"caf\xe9-1"];
    for (i, raw) in values.into_iter().enumerate() {
        let a = send(
            put_request(&gw.url(), "1001")
                .header(
                    "x-request-id",
                    reqwest::header::HeaderValue::from_bytes(raw).unwrap(),
                )
                .body(json!({"Password": PASSWORD}).to_string()),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let in_body = a.json["RequestId"].as_str().unwrap().to_string();
        let sent_back = a.headers.get("x-request-id").map(|v| v.as_bytes().to_vec());
        let got = received(&v4s).await;
        let to_v4 = got[i]
            .headers
            .get("x-request-id")
            .map(|v| v.as_bytes().to_vec());
        // The client, the body and v4 must see the same non-empty id.
        assert!(!in_body.is_empty(), "case {i}: RequestId is empty");
        assert_eq!(sent_back.as_deref(), Some(in_body.as_bytes()), "case {i}");
        assert_eq!(to_v4.as_deref(), Some(in_body.as_bytes()), "case {i}");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn method_not_allowed_lists_the_allowed_method() {
    let v4s = accepting_anything().await;
    let gw = gateway(&v4s.uri()).await;
    let a = send(
        client()
            .delete(format!("{}/User/1001", gw.url()))
            .headers(user_api_headers()),
    )
    .await;
    a.assert_refused(405, "Gateway_E405_01", "DELETE");
    assert_eq!(
        a.headers.get("allow").map(|v| v.to_str().unwrap()),
        Some("GET, HEAD, PUT")
    );
    assert_eq!(a.json["Result"]["CustomerRegistrationId"], "1001");
    gw.shutdown().await;
}
