//! `GET /User/{id}` and the details of the User API route (trailing slash, 401, the id), over
//! real HTTP against fakes on loopback: the exact v4 request and legacy answer, HEAD, the
//! trailing slash, 401 without a token, the id as sent, shadowed reads, the canary for reads,
//! and the events and audit of a read and of a password change (embedded sandbox).

mod common;

use common::binary::GatewayProcess;
use common::fakes::password_changes;
use common::mount_method;
use common::put_request;
use common::{client, gateway, gateway_with, mount, received, send, user_api_headers, v4, TOKEN};
use serde_json::{json, Value};
use wiremock::{MockServer, ResponseTemplate};

/// v4's user 1001, as `GET /v4/Users/1001/` answers it.
fn v4_user(first_name: &str) -> Value {
    let mut env = v4("S200_01", "Get user completed.", "Success");
    env["data"] = json!({
        "customerRegistrationId": "1001",
        "email": "alice@example.test",
        "firstName": first_name,
        "lastName": "Anderson",
        "verified": true,
        "lastLogoutDate": "2026-11-01T08:30:00Z",
        "metadata": {"newsLetter": true, "preferences": {"favouriteSection": "sports", "topics": ["a", "b"]}}
    });
    env
}

async fn v4_with_user() -> MockServer {
    let v4s = MockServer::start().await;
    mount(
        &v4s,
        "GET",
        "/v4/Users/1001/",
        ResponseTemplate::new(200).set_body_json(v4_user("Alice")),
    )
    .await;
    v4s
}

fn get(gw: &legacy_gateway::Running, path_and_query: &str) -> reqwest::RequestBuilder {
    client()
        .get(format!("{}{path_and_query}", gw.url()))
        .headers(user_api_headers())
}

#[tokio::test]
async fn a_read_is_one_v4_get_and_answers_the_user_in_the_legacy_envelope() {
    let v4s = v4_with_user().await;
    let gw = gateway(&v4s.uri()).await;

    let a = send(
        get(&gw, "/User/1001?ignoreprovider=true&Other=x")
            .header("X-Unrelated", "never forwarded")
            .header("Cookie", "session=abc"),
    )
    .await;
    let user = json!({
        "CustomerRegistrationId": "1001",
        "Email": "alice@example.test",
        "FirstName": "Alice",
        "LastName": "Anderson",
        "Verified": true,
        "LastLogoutDate": "2026-11-01T08:30:00Z",
        "Metadata": {
            "NewsLetter": true,
            "Preferences": {"FavouriteSection": "sports", "Topics": ["a", "b"]}
        }
    });
    a.assert_legacy(200, json!([]), user, "the read");

    let got = received(&v4s).await;
    assert_eq!(got.len(), 1, "exactly one v4 call");
    let r = &got[0];
    assert_eq!(r.method.as_str(), "GET");
    assert_eq!(r.url.path(), "/v4/Users/1001/");
    assert_eq!(
        r.url.query(),
        Some("ignoreProvider=true"),
        "only the declared parameter"
    );
    assert!(r.body.is_empty(), "no body to v4");
    for (name, value) in user_api_headers().iter() {
        assert_eq!(
            r.headers.get(name.as_str()).map(|v| v.as_bytes()),
            Some(value.as_bytes()),
            "{name}"
        );
    }
    assert_eq!(
        r.headers
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string()),
        Some(a.request_id())
    );
    for never in ["x-unrelated", "cookie", "content-type"] {
        assert!(r.headers.get(never).is_none(), "{never} was forwarded");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn an_unknown_user_is_user_not_found_with_the_id_as_sent() {
    let v4s = MockServer::start().await;
    mount(
        &v4s,
        "GET",
        "/v4/Users/auth0%7C9999/",
        ResponseTemplate::new(500).set_body_json(v4(
            "E500_01",
            "There was a problem during the GetById workflow",
            "Error",
        )),
    )
    .await;
    let gw = gateway(&v4s.uri()).await;
    let a = send(get(&gw, "/User/auth0%7C9999")).await;
    a.assert_legacy(
        500,
        json!([{
            "Message": "There was a problem during the GetById workflow",
            "Code": "UsersOrchestrator_E500_01",
            "Type": {"Id": 2, "Code": "UserNotFound"},
            "ErrorSource": "UsersOrchestrator"
        }]),
        json!({"CustomerRegistrationId": "auth0|9999"}),
        "an unknown user",
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn head_has_the_status_and_headers_of_get_and_no_body() {
    let v4s = v4_with_user().await;
    let gw = gateway(&v4s.uri()).await;
    let g = get(&gw, "/User/1001").send().await.unwrap();
    let h = client()
        .head(format!("{}/User/1001", gw.url()))
        .headers(user_api_headers())
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), g.status());
    let names = |r: &reqwest::Response| {
        let mut v: Vec<(String, String)> = r
            .headers()
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "date" | "x-request-id"))
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&h), names(&g));
    assert!(
        names(&h).iter().any(|(n, _)| n == "content-length"),
        "{:?}",
        names(&h)
    );
    assert!(h.bytes().await.unwrap().is_empty(), "HEAD has no body");
    assert!(!g.bytes().await.unwrap().is_empty());

    // A failed HEAD too: the unknown user's status, no body.
    let h = client()
        .head(format!("{}/User/2002", gw.url()))
        .headers(user_api_headers())
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), 404, "wiremock's 404 for an unmounted v4 path");
    assert!(h.bytes().await.unwrap().is_empty());
    let methods: Vec<String> = received(&v4s)
        .await
        .iter()
        .map(|r| r.method.to_string())
        .collect();
    assert_eq!(methods, ["GET", "GET", "GET"], "HEAD reads with a v4 GET");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_trailing_slash_is_the_same_route_for_put_and_get() {
    let v4s = v4_with_user().await;
    password_changes(&v4s, "1001").await;
    let gw = gateway(&v4s.uri()).await;
    let a = send(put_request(&gw.url(), "1001/").body(r#"{"Password":"Abcdefg1"}"#)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        a.json["Result"],
        json!({"CustomerRegistrationId": "1001", "Updated": true})
    );
    let a = send(get(&gw, "/USER/1001/")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["Result"]["FirstName"], "Alice");
    // Two slashes are not one.
    let a = send(get(&gw, "/User/1001//")).await;
    assert_eq!(a.status, 404, "{}", a.text);
    assert_eq!(
        common::received_paths(&v4s).await,
        ["/v4/Users/1001/Password", "/v4/Users/1001/"]
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_read_without_a_token_is_401_and_other_missing_headers_are_named() {
    let v4s = v4_with_user().await;
    let gw = gateway(&v4s.uri()).await;
    for token in [None, Some("")] {
        let mut h = user_api_headers();
        h.remove("Authorization");
        if let Some(t) = token {
            h.insert("Authorization", t.parse().unwrap());
        }
        let a = send(client().get(format!("{}/User/1001", gw.url())).headers(h)).await;
        a.assert_legacy(
            401,
            json!([{
                "Message": "Not authorized: no bearer token in Authorization.",
                "Code": "Gateway_E401_01",
                "Type": {"Id": 6, "Code": "NotAuthorized"},
                "ErrorSource": "Gateway"
            }]),
            json!({"CustomerRegistrationId": "1001"}),
            &format!("token {token:?}"),
        );
        assert_eq!(
            a.headers
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer")
        );
    }
    let mut h = user_api_headers();
    h.remove("X-PaperCode");
    let a = send(client().get(format!("{}/User/1001", gw.url())).headers(h)).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(a.json["Errors"][0]["Code"], "Gateway_E400_01");
    assert_eq!(
        a.json["Errors"][0]["Message"],
        "Missing mandatory headers: X-PaperCode."
    );

    // No token and a bad id: the 401 first, for PUT as for GET.
    let mut h = user_api_headers();
    h.remove("Authorization");
    for m in ["GET", "PUT"] {
        let a = send(
            client()
                .request(m.parse().unwrap(), format!("{}/User/a%2Fb", gw.url()))
                .headers(h.clone())
                .body(r#"{"Password":"Abcdefg1"}"#),
        )
        .await;
        assert_eq!(
            (a.status, a.json["Errors"][0]["Code"].clone()),
            (401, json!("Gateway_E401_01")),
            "{m}"
        );
        assert_eq!(a.json["Result"]["CustomerRegistrationId"], "a/b", "{m}");
    }

    // A declared query parameter of the wrong type is refused, named.
    let a = send(get(&gw, "/User/1001?ignoreProvider=yes")).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(a.json["Errors"][0]["Code"], "Gateway_E400_06");
    assert_eq!(
        a.json["Errors"][0]["Message"],
        "Field IgnoreProvider must be a boolean."
    );

    // A refused id is still echoed as sent.
    let a = send(get(&gw, "/User/a%2Fb")).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(a.json["Errors"][0]["Code"], "Gateway_E400_07");
    assert_eq!(a.json["Result"], json!({"CustomerRegistrationId": "a/b"}));
    assert!(received(&v4s).await.is_empty(), "nothing may be forwarded");
    gw.shutdown().await;
}

// --- the embedded sandbox: a newcomer's first read, events and audit ---

async fn sandbox_events(gw: &legacy_gateway::Running) -> Vec<Value> {
    common::get_text(common::admin(gw, "sandbox/events"))
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn event_ids(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e["eventId"].as_i64().unwrap())
        .collect()
}

/// `events to-legacy` over HTTP: the legacy event codes of a v4 event log.
async fn to_legacy(gw: &legacy_gateway::Running, events: &[Value]) -> Vec<String> {
    let body: String = events.iter().map(|e| format!("{e}\n")).collect();
    let text = client()
        .post(common::admin(gw, "events/to-legacy"))
        .body(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["EventTypeCode"].as_str().unwrap().to_string()
        })
        .collect()
}

fn audit_count(metrics: &str, route: &str, legacy_event: &str) -> u64 {
    metrics
        .lines()
        .find(|l| {
            l.starts_with("gateway_audit_events_total{")
                && l.contains(&format!(r#"route="{route}""#))
                && l.contains(&format!(r#"legacy_event="{legacy_event}""#))
                && l.contains(r#"outcome="applied""#)
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn sandbox_read_and_password_change_log_and_audit_the_get_by_id_step() {
    let gw = gateway_with("", None).await;

    // The README's first read.
    let a = send(get(&gw, "/User/1001")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        a.json["Result"],
        json!({
            "CustomerRegistrationId": "1001",
            "Email": "alice@example.test",
            "FirstName": "Alice",
            "LastName": "Anderson",
            "Verified": true,
            "LastLogoutDate": "2026-11-01T08:30:00Z",
            "Metadata": {"NewsLetter": true, "Preferences": {"FavouriteSection": "sports"}}
        })
    );
    let read = sandbox_events(&gw).await;
    assert_eq!(event_ids(&read), [4601, 4001]);
    assert_eq!(to_legacy(&gw, &read).await, ["GETUSERBYID"]);

    let a = send(put_request(&gw.url(), "1001").body(r#"{"Password":"NewPassw0rd"}"#)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let all = sandbox_events(&gw).await;
    let change = &all[read.len()..];
    assert_eq!(event_ids(change), [4601, 4001, 4609, 4010], "GetById first");
    assert_eq!(to_legacy(&gw, change).await, ["GETUSERBYID", "CHGPWD"]);

    let m = common::metrics_text(&gw).await;
    assert_eq!(
        audit_count(&m, "user-api.get-user", "GETUSERBYID"),
        1,
        "{m}"
    );
    assert_eq!(
        audit_count(&m, "user-api.update-user", "GETUSERBYID"),
        1,
        "{m}"
    );
    assert_eq!(audit_count(&m, "user-api.update-user", "CHGPWD"), 1, "{m}");
    assert!(
        m.contains("AUTHSYSTEM_USER_GETBYID (4601) + SUBSCRIBE_USER_GETBYID (4001)"),
        "{m}"
    );
    gw.shutdown().await;
}

/// The audit log of the process, in order: a read is GETUSERBYID; a password change is
/// GETUSERBYID, then CHGPWD.
#[tokio::test]
async fn the_audit_log_names_get_by_id_first() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, "").unwrap();
    let gw = GatewayProcess::start(&config, dir.path(), &["--log-format", "json"], "info").await;
    let c = client();
    let r = c
        .get(format!("{}/User/1001", gw.url()))
        .headers(user_api_headers())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .put(format!("{}/User/1001", gw.url()))
        .headers(user_api_headers())
        .body(r#"{"Password":"NewPassw0rd"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (out, err) = gw.stop().await;
    let audit: Vec<(String, String)> = out
        .lines()
        .chain(err.lines())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "audit")
        .map(|v| {
            let f = if v["fields"].is_object() {
                &v["fields"]
            } else {
                &v
            };
            (
                f["route"].as_str().unwrap_or("").to_string(),
                f["legacy_event"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expected = [
        ("user-api.get-user", "GETUSERBYID"),
        ("user-api.update-user", "GETUSERBYID"),
        ("user-api.update-user", "CHGPWD"),
    ]
    .map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(audit, expected, "{err}");
    assert!(!err.contains("NewPassw0rd") && !out.contains("NewPassw0rd"));
}

// --- shadow mode and canary for reads ---

/// The legacy backend's own answer, spelled its way (spacing, key order, an offset timestamp
/// for the same instant): the client must get exactly these bytes.
const LEGACY_BYTES: &str = r#"{"Code":0,"Errors":[],"Result":{"CustomerRegistrationId":"1001","FirstName":"Alice","LastName":"Anderson","Email":"alice@example.test","Verified":true,"LastLogoutDate":"2026-11-01T10:30:00+02:00","Metadata":{"NewsLetter":true,"Preferences":{"FavouriteSection":"sports","Topics":["a","b"]}}},"SessionId":"legacy-session","RequestId":"legacy-req-7"}"#;

#[tokio::test]
async fn reads_are_shadowed_by_default_and_compared() {
    let v4s = v4_with_user().await;
    mount(
        &v4s,
        "GET",
        "/v4/Users/1002/",
        ResponseTemplate::new(200).set_body_json({
            let mut u = v4_user("Alicia");
            u["data"]["customerRegistrationId"] = json!("1002");
            u
        }),
    )
    .await;
    let legacy = MockServer::start().await;
    for id in ["1001", "1002"] {
        mount(
            &legacy,
            "GET",
            &format!("/User/{id}"),
            ResponseTemplate::new(200)
                .insert_header("Content-Type", "application/json")
                .set_body_string(LEGACY_BYTES.replace("\"1001\"", &format!("\"{id}\""))),
        )
        .await;
    }
    mount(
        &legacy,
        "PUT",
        "/User/1001",
        ResponseTemplate::new(200).set_body_string(r#"{"Code":0}"#),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let diff_file = dir.path().join("diffs.jsonl");
    // No staging orchestrator and no `writes`: reads only are copied, to the live v4.
    let cfg = format!(
        "mode = \"shadow\"\nuser_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n[shadow]\ndiff_file = {1:?}\n",
        legacy.uri(),
        diff_file.display().to_string()
    );
    let gw = gateway_with(&cfg, Some(&v4s.uri())).await;

    let r = get(&gw, "/User/1001").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        LEGACY_BYTES,
        "the legacy bytes, untouched"
    );
    let row = common::user_api_row_when(&gw, |r| r["compared"] == 1).await;
    assert_eq!(
        (row["matched"].clone(), row["differing"].clone()),
        (json!(1), json!(0)),
        "{row}"
    );
    let got = received(&v4s).await;
    assert_eq!(got.len(), 1, "one GET to v4");
    assert_eq!(
        (got[0].method.as_str(), got[0].url.path()),
        ("GET", "/v4/Users/1001/")
    );

    // A write is not copied (writes stay opt-in).
    let r = put_request(&gw.url(), "1001")
        .body(r#"{"Password":"Abcdefg1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // v4 says "Alicia" where the legacy backend says "Alice": one difference, with its path.
    get(&gw, "/User/1002").send().await.unwrap();
    let row = common::user_api_row_when(&gw, |r| r["compared"] == 2).await;
    assert_eq!(
        (row["matched"].clone(), row["differing"].clone()),
        (json!(1), json!(1)),
        "{row}"
    );
    let top = &row["top_differing_paths"];
    assert_eq!(
        (
            &top[0]["path"],
            &top[0]["count"],
            top.as_array().map(Vec::len)
        ),
        (&json!("$.Result.FirstName"), &json!(1), Some(1))
    );
    let text = std::fs::read_to_string(&diff_file).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(
        lines[0]["differences"],
        json!([{"path": "$.Result.FirstName", "legacy": "Alice", "v4": "Alicia"}])
    );
    assert!(
        !text.contains(TOKEN.trim_start_matches("Bearer ")),
        "no token in the diff file"
    );
    let methods: Vec<String> = received(&v4s)
        .await
        .iter()
        .map(|r| r.method.to_string())
        .collect();
    assert_eq!(methods, ["GET", "GET"], "the PUT was not copied");

    let m = common::metrics_text(&gw).await;
    assert!(
        m.lines().any(|l| l.starts_with("gateway_shadow_total{")
            && l.contains(r#"route="user-api""#)
            && l.contains(r#"result="matched""#)
            && l.ends_with(" 1")),
        "{m}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn reads_follow_the_per_user_canary() {
    let v4s = MockServer::start().await;
    mount_method(
        &v4s,
        "GET",
        ResponseTemplate::new(200).set_body_json(v4_user("Alice")),
    )
    .await;
    let legacy = MockServer::start().await;
    mount_method(
        &legacy,
        "GET",
        ResponseTemplate::new(200).set_body_string(LEGACY_BYTES),
    )
    .await;
    let cfg = format!(
        "mode = \"legacy\"\nuser_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n[[modes]]\nroute = \"user-api\"\nmode = \"translate\"\ntranslate_percent = 50\n",
        legacy.uri()
    );
    let gw = gateway_with(&cfg, Some(&v4s.uri())).await;
    let mut translated = 0;
    for i in 0..30 {
        let id = format!("reader-{i}");
        let expected = legacy_gateway::config::modes::bucket(&id) < 50;
        for _ in 0..2 {
            let before = received(&v4s).await.len();
            let r = get(&gw, &format!("/User/{id}")).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let to_v4 = received(&v4s).await.len() > before;
            assert_eq!(to_v4, expected, "{id} on the wrong side");
        }
        translated += usize::from(expected);
    }
    assert!(
        (5..=25).contains(&translated),
        "{translated} of 30 translated"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn reads_can_be_cut_over_alone() {
    let v4s = v4_with_user().await;
    let legacy = MockServer::start().await;
    mount_method(
        &legacy,
        "PUT",
        ResponseTemplate::new(200).set_body_string(r#"{"Code":0}"#),
    )
    .await;
    let cfg = format!(
        "mode = \"legacy\"\nuser_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n[[modes]]\nroute = \"user-api.read\"\nmode = \"translate\"\n",
        legacy.uri()
    );
    let gw = gateway_with(&cfg, Some(&v4s.uri())).await;
    let a = send(get(&gw, "/User/1001")).await;
    assert_eq!(
        (a.status, a.json["Result"]["FirstName"].clone()),
        (200, json!("Alice"))
    );
    let r = put_request(&gw.url(), "1001")
        .body(r#"{"Password":"Abcdefg1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"Code":0}"#,
        "the write stays on the legacy backend"
    );
    assert_eq!(received(&v4s).await.len(), 1);
    assert_eq!(received(&legacy).await.len(), 1);
    gw.shutdown().await;

    let bad = legacy_gateway::config::Config::from_toml(
        "t.toml",
        "[[modes]]\nroute = \"user-api.delete\"\nmode = \"translate\"\n",
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(bad.field, "modes[0].route", "{bad:?}");
}

/// Shadow mode with `mappings/user-api.toml` as shipped, or with `shadow_sets` naming the
/// `Topics` array: the same two answers (`Topics` in another order) differ, or match.
async fn shadow_with_sets(sets: &str) -> Value {
    let v4s = v4_with_user().await;
    let legacy = MockServer::start().await;
    mount(
        &legacy,
        "GET",
        "/User/1001",
        ResponseTemplate::new(200)
            .set_body_string(LEGACY_BYTES.replace(r#"["a","b"]"#, r#"["b","a"]"#)),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/mappings");
    for f in ["events.toml", "registry.toml", "v4.toml", "user-api.toml"] {
        let text = std::fs::read_to_string(format!("{shipped}/{f}")).unwrap();
        let text = text.replace("shadow_sets = []", &format!("shadow_sets = [{sets}]"));
        std::fs::write(dir.path().join(f), text).unwrap();
    }
    let text = format!(
        "mode = \"shadow\"\nuser_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n",
        legacy.uri()
    );
    let mappings = legacy_gateway::mapping::Mappings::load(Some(dir.path())).unwrap();
    let gw = common::try_gateway_with(&text, Some(&v4s.uri()), mappings)
        .await
        .unwrap();
    get(&gw, "/User/1001").send().await.unwrap();
    let row = common::user_api_row_when(&gw, |r| r["compared"] == 1).await;
    gw.shutdown().await;
    row
}

#[tokio::test]
async fn arrays_compare_as_sets_only_where_the_mapping_says_so() {
    let row = shadow_with_sets("").await;
    assert_eq!(row["differing"], 1, "{row}");
    assert_eq!(
        row["top_differing_paths"][0]["path"],
        "$.Result.Metadata.Preferences.Topics[0]"
    );
    let row = shadow_with_sets("\"Result.Metadata.Preferences.Topics\"").await;
    assert_eq!(
        (row["matched"].clone(), row["differing"].clone()),
        (json!(1), json!(0)),
        "{row}"
    );
}

/// The action API's password change is the same v4 `{id}` call: GetById first there too.
#[tokio::test]
async fn the_action_api_password_change_audits_get_by_id_first() {
    let gw = gateway_with("", None).await;
    // An unsigned JWT with {"sub":"1001"} (no key configured: read for routing only).
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMDAxIn0.c2lnbmF0dXJl";
    let r = client()
        .post(format!(
            "{}/$dwo3rd-userregistry-api/profileserviceregistration?action=updatechangepassword",
            gw.url()
        ))
        .header("Authorization", format!("Bearer {jwt}"))
        .body(r#"{"oldpassword":"Sandbox123","password":"NewPassw0rd"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "OK", "{body}");
    let events = sandbox_events(&gw).await;
    assert_eq!(event_ids(&events), [4601, 4001, 4609, 4010]);
    assert_eq!(to_legacy(&gw, &events).await, ["GETUSERBYID", "CHGPWD"]);
    let m = common::metrics_text(&gw).await;
    assert_eq!(
        audit_count(&m, "updatechangepassword", "GETUSERBYID"),
        1,
        "{m}"
    );
    assert_eq!(audit_count(&m, "updatechangepassword", "CHGPWD"), 1, "{m}");
    gw.shutdown().await;
}
