//! The embedded v4 sandbox over real HTTP on 127.0.0.1: the contract of SPEC 1.1 as the
//! gateway (or any other tool) sees it, exact status, code and text.

use std::sync::Arc;

use legacy_gateway::mapping::EventTable;
use legacy_gateway::sandbox::{self, Sandbox, SandboxHandle};
use legacy_gateway::source::Source;
use reqwest::Method;
use serde_json::{json, Value};

const TENANT: [(&str, &str); 5] = [
    ("Authorization", "Bearer test-token"),
    ("X-SourceSystem", "tests"),
    ("X-ClientCode", "client"),
    ("X-PaperCode", "paper"),
    ("X-ClientGroupCode", "group"),
];

struct Fixture {
    handle: SandboxHandle,
    sandbox: Arc<Sandbox>,
    client: reqwest::Client,
}

async fn start() -> Fixture {
    let events = EventTable::load(&Source::new(
        "events.toml",
        include_str!("../mappings/events.toml"),
    ))
    .expect("shipped event table");
    let sandbox = Sandbox::new(Arc::new(events));
    let handle = sandbox::spawn("127.0.0.1:0".parse().unwrap(), Arc::clone(&sandbox))
        .await
        .expect("bind loopback");
    Fixture {
        handle,
        sandbox,
        client: reqwest::Client::new(),
    }
}

/// A status and the parsed JSON body (Null when the body is not JSON).
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    #[track_caller]
    fn expect(&self, status: u16, code: &str, text: &str) {
        assert_eq!(self.status, status, "status; body: {}", self.body);
        assert_eq!(
            self.body["message"]["code"],
            format!("UsersOrchestrator_{code}"),
            "code; body: {}",
            self.body
        );
        assert_eq!(
            self.body["message"]["text"], text,
            "text; body: {}",
            self.body
        );
        let kind = if code.starts_with('S') {
            "Success"
        } else {
            "Error"
        };
        assert_eq!(self.body["message"]["type"], kind);
        assert!(self.body["meta"].is_null());
    }
}

impl Fixture {
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.handle.url()))
    }

    /// A v4 call with all tenant headers, minus the one named in `without` (if any).
    async fn v4_without(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        without: Option<&str>,
    ) -> Answer {
        let mut req = self.request(method, path);
        for (name, value) in TENANT {
            if Some(name) != without {
                req = req.header(name, value);
            }
        }
        if let Some(body) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        answer(req).await
    }

    async fn v4(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.v4_without(method, path, body, None).await
    }

    async fn set_password(&self, id: &str, password: &str) -> Answer {
        let path = format!("/v4/Users/{id}/Password");
        self.v4(Method::PATCH, &path, Some(json!({ "password": password })))
            .await
    }

    /// The event log as served on `/_sandbox/events` (JSON lines).
    async fn served_events(&self) -> Vec<Value> {
        let res = self
            .request(Method::GET, "/_sandbox/events")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/x-ndjson");
        let text = res.text().await.unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("one JSON record per line"))
            .collect()
    }
}

async fn answer(req: reqwest::RequestBuilder) -> Answer {
    let res = req.send().await.expect("sandbox answers");
    let status = res.status().as_u16();
    let bytes = res.bytes().await.expect("body");
    Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

const POLICY: &str = "Invalid InputModel - Password does not meet the complexity requirements.";

#[tokio::test]
async fn password_policy() {
    let f = start().await;
    for weak in [
        "Short1A",
        "Abcdefgh",
        "Abcd 1234",
        "abcdefg1",
        "Abcdefghijklmnop1",
    ] {
        f.set_password("1001", weak)
            .await
            .expect(400, "E400_00", POLICY);
    }
    for missing in [
        json!({}),
        json!({ "password": "" }),
        json!({ "password": null }),
    ] {
        f.v4(Method::PATCH, "/v4/Users/1001/Password", Some(missing))
            .await
            .expect(
                400,
                "E400_00",
                "Invalid InputModel - The Password field is required.",
            );
    }
    assert!(f.sandbox.events().is_empty(), "refused calls log nothing");
    let ok = f.set_password("1001", "Newpass123").await;
    ok.expect(200, "S200_11", "Update password completed.");
    assert!(ok.body["data"].is_null());
}

#[tokio::test]
async fn unknown_user_is_e500_01() {
    let f = start().await;
    const GET_BY_ID: &str = "There was a problem during the GetById workflow.";
    f.set_password("9999", "Newpass123")
        .await
        .expect(500, "E500_01", GET_BY_ID);
    f.v4(Method::GET, "/v4/Users/9999/", None)
        .await
        .expect(500, "E500_01", GET_BY_ID);
    f.v4(
        Method::PATCH,
        "/v4/Users/auth0%7Cnobody/Email",
        Some(json!({ "email": "new@example.test" })),
    )
    .await
    .expect(500, "E500_01", GET_BY_ID);
    f.v4(Method::PUT, "/v4/Users/9999/", Some(json!({})))
        .await
        .expect(500, "E500_01", GET_BY_ID);
}

#[tokio::test]
async fn percent_encoded_auth0_id() {
    let f = start().await;
    let got = f.v4(Method::GET, "/v4/Users/auth0%7Cabc123/", None).await;
    got.expect(200, "S200_01", "Get user completed.");
    assert_eq!(got.body["data"]["customerRegistrationId"], "auth0|abc123");
    assert_eq!(got.body["data"]["email"], "carol@example.test");
    f.set_password("auth0%7Cabc123", "Newpass123").await.expect(
        200,
        "S200_11",
        "Update password completed.",
    );
    assert_eq!(
        f.sandbox.events()[2]["customerRegistrationId"],
        "auth0|abc123"
    );
}

#[tokio::test]
async fn every_tenant_header_is_required() {
    let f = start().await;
    for (name, _) in TENANT {
        f.v4_without(
            Method::PATCH,
            "/v4/Users/1001/Password",
            Some(json!({ "password": "Newpass123" })),
            Some(name),
        )
        .await
        .expect(400, "E400", "Bad Request");
    }
    let blank = f
        .request(Method::GET, "/v4/Users/1001/")
        .header("Authorization", "")
        .header("X-SourceSystem", "s")
        .header("X-ClientCode", "c")
        .header("X-PaperCode", "p")
        .header("X-ClientGroupCode", "g");
    answer(blank).await.expect(400, "E400", "Bad Request");
    assert!(f.sandbox.events().is_empty());
}

#[tokio::test]
async fn email_change() {
    let f = start().await;
    let path = "/v4/Users/1001/Email";
    f.v4(
        Method::PATCH,
        path,
        Some(json!({ "email": "Bob@Example.TEST" })),
    )
    .await
    .expect(
        400,
        "E400_08",
        "The email is already in use by another user.",
    );
    f.v4(
        Method::PATCH,
        path,
        Some(json!({ "email": "not-an-address" })),
    )
    .await
    .expect(
        400,
        "E400_00",
        "Invalid InputModel - The Email field is not a valid e-mail address.",
    );
    f.v4(
        Method::PATCH,
        path,
        Some(json!({ "email": "alice.new@example.test" })),
    )
    .await
    .expect(200, "S200_12", "Update Email completed.");
    let got = f.v4(Method::GET, "/v4/Users/1001", None).await;
    assert_eq!(got.body["data"]["email"], "alice.new@example.test");
    // The old address is free again.
    f.v4(
        Method::PATCH,
        "/v4/Users/1002/Email",
        Some(json!({ "email": "alice@example.test" })),
    )
    .await
    .expect(200, "S200_12", "Update Email completed.");
    let ids: Vec<Value> = f
        .sandbox
        .events()
        .iter()
        .map(|e| e["eventId"].clone())
        .collect();
    assert_eq!(ids[..4], [4601, 4001, 4610, 4011].map(|i| json!(i)));
}

#[tokio::test]
async fn put_user() {
    let f = start().await;
    let ok = f
        .v4(
            Method::PUT,
            "/v4/Users/1002/",
            Some(json!({
                "firstName": "Robert",
                "lastName": null,
                "metadata": { "newsletter": true, "favouriteSection": "sports" },
                "ignoreProvider": false,
                "verified": false,
                "lastLogoutDate": "2024-05-01T10:00:00Z",
                "removeLastLogoutDate": false,
            })),
        )
        .await;
    ok.expect(200, "S200_10", "Update user completed.");
    assert_eq!(
        ok.body["data"],
        json!({
            "customerRegistrationId": "1002",
            "email": "bob@example.test",
            "firstName": "Robert",
            "lastName": "Brown",
            "verified": false,
            "metadata": { "newsletter": true, "favouriteSection": "sports" },
            "lastLogoutDate": "2024-05-01T10:00:00Z",
        })
    );

    // Without the trailing slash too; metadata merges, removeLastLogoutDate clears.
    let ok = f
        .v4(
            Method::PUT,
            "/v4/Users/1002",
            Some(json!({ "metadata": { "newsletter": false }, "removeLastLogoutDate": true })),
        )
        .await;
    ok.expect(200, "S200_10", "Update user completed.");
    assert_eq!(
        ok.body["data"]["metadata"],
        json!({ "newsletter": false, "favouriteSection": "sports" })
    );
    assert!(ok.body["data"]["lastLogoutDate"].is_null());

    f.v4(
        Method::PUT,
        "/v4/Users/1002/",
        Some(json!({ "Email": "x@y.z" })),
    )
    .await
    .expect(400, "E400_00", "Invalid InputModel - Unknown field Email.");
    f.v4(
        Method::PUT,
        "/v4/Users/1002/",
        Some(json!({ "verified": "yes" })),
    )
    .await
    .expect(
        400,
        "E400_00",
        "Invalid InputModel - The Verified field must be a boolean.",
    );
    f.v4(
        Method::PUT,
        "/v4/Users/1002/",
        Some(json!({ "firstName": "Bobby", "lastName": "x".repeat(101) })),
    )
    .await
    .expect(
        400,
        "E400_22",
        "There was an error trying to update the user.",
    );
    let got = f.v4(Method::GET, "/v4/Users/1002/", None).await;
    assert_eq!(
        got.body["data"]["firstName"], "Robert",
        "a refused update changes nothing"
    );
    f.v4(
        Method::PUT,
        "/v4/Users/1002/",
        Some(json!({ "lastName": "x".repeat(100) })),
    )
    .await
    .expect(200, "S200_10", "Update user completed.");
}

#[tokio::test]
async fn get_user_never_returns_the_password() {
    let f = start().await;
    let res = f
        .request(Method::GET, "/v4/Users/1001/?ignoreProvider=true")
        .headers(
            TENANT
                .iter()
                .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
                .collect(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(!text.contains("Sandbox123"), "{text}");
    assert!(!text.to_lowercase().contains("password"), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let mut keys: Vec<&str> = body["data"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "customerRegistrationId",
            "email",
            "firstName",
            "lastLogoutDate",
            "lastName",
            "metadata",
            "verified"
        ]
    );
    assert_eq!(body["data"]["firstName"], "Alice");
}

#[tokio::test]
async fn forgot_password_round_trip() {
    let f = start().await;
    let start_path = "/v4/Users/ForgotPassword";
    let finish_path = "/v4/Users/ForgotPassword/Finish";
    f.v4(
        Method::POST,
        start_path,
        Some(json!({ "loginName": "nobody@example.test", "returnUrl": "https://x.test/reset" })),
    )
    .await
    .expect(404, "E404_01", "User not found.");

    let started = f
        .v4(
            Method::POST,
            start_path,
            Some(json!({ "loginName": "BOB@example.test", "returnUrl": "https://x.test/reset" })),
        )
        .await;
    started.expect(200, "S200_08", "Start ForgotPassword completed.");
    let token = started.body["data"]["encryptedEventId"]
        .as_str()
        .expect("encryptedEventId")
        .to_string();
    assert!(!token.is_empty());

    // A policy failure does not use the request up.
    f.v4(
        Method::POST,
        finish_path,
        Some(json!({ "encryptedEventId": token, "password": "weak" })),
    )
    .await
    .expect(400, "E400_00", POLICY);
    let finish = json!({ "encryptedEventId": token, "password": "Newpass123" });
    f.v4(Method::POST, finish_path, Some(finish.clone()))
        .await
        .expect(200, "S200_09", "Finish ForgotPassword completed.");
    const USED: &str = "Forgot password request not found or already used.";
    f.v4(Method::POST, finish_path, Some(finish))
        .await
        .expect(404, "E404_02", USED);
    f.v4(
        Method::POST,
        finish_path,
        Some(json!({ "encryptedEventId": "never-issued", "password": "Newpass123" })),
    )
    .await
    .expect(404, "E404_02", USED);

    // Start logs PWDREQ's one event; Finish logs a password change for the right user.
    let ids: Vec<u64> = f
        .sandbox
        .events()
        .iter()
        .map(|e| e["eventId"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [4009, 4609, 4010]);
    assert!(f
        .sandbox
        .events()
        .iter()
        .all(|e| e["customerRegistrationId"] == "1002"));
}

#[tokio::test]
async fn event_log_records() {
    let f = start().await;
    f.set_password("1001", "Newpass123")
        .await
        .expect(200, "S200_11", "Update password completed.");
    f.v4(
        Method::POST,
        "/v4/Users/ForgotPassword",
        Some(json!({ "loginName": "alice@example.test", "returnUrl": "https://x.test/r" })),
    )
    .await
    .expect(200, "S200_08", "Start ForgotPassword completed.");

    let served = f.served_events().await;
    assert_eq!(served, f.sandbox.events(), "served log = in-process log");
    // The password change: its GetById step, then the change itself (SPEC 2).
    assert_eq!(served.len(), 5);
    assert_eq!(served[0]["eventId"], 4601);
    assert_eq!(served[1]["eventId"], 4001);
    assert_eq!(served[0]["correlationId"], served[1]["correlationId"]);
    assert_ne!(served[0]["correlationId"], served[2]["correlationId"]);
    let (a, b, c) = (&served[2], &served[3], &served[4]);
    assert_eq!(a["eventTypeCode"], "AUTHSYSTEM_USER_CHANGEPASSWORD");
    assert_eq!(a["eventId"], 4609);
    assert_eq!(a["side"], "authsystem");
    assert_eq!(b["eventTypeCode"], "SUBSCRIBE_USER_CHANGEPASSWORD");
    assert_eq!(b["eventId"], 4010);
    assert_eq!(b["side"], "subscribe");
    assert_eq!(a["correlationId"], b["correlationId"]);
    assert!(a["correlationId"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(c["eventTypeCode"], "SUBSCRIBE_USER_STARTFORGOTPASSWORD");
    assert_eq!(c["eventId"], 4009);
    assert_ne!(c["correlationId"], a["correlationId"]);
    let rfc3339 = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$").unwrap();
    for record in &served {
        assert_eq!(record["customerRegistrationId"], "1001");
        assert!(
            rfc3339.is_match(record["timestamp"].as_str().unwrap()),
            "{record}"
        );
        assert_eq!(record.as_object().unwrap().len(), 6, "{record}");
    }
}

#[tokio::test]
async fn reset_restores_the_seeded_state() {
    let f = start().await;
    f.v4(
        Method::PATCH,
        "/v4/Users/1001/Email",
        Some(json!({ "email": "changed@example.test" })),
    )
    .await
    .expect(200, "S200_12", "Update Email completed.");
    let started = f
        .v4(
            Method::POST,
            "/v4/Users/ForgotPassword",
            Some(json!({ "loginName": "bob@example.test", "returnUrl": "https://x.test/r" })),
        )
        .await;
    let token = started.body["data"]["encryptedEventId"].clone();
    assert!(!f.sandbox.events().is_empty());

    let res = f
        .request(Method::POST, "/_sandbox/reset")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(f.served_events().await.is_empty());
    let got = f.v4(Method::GET, "/v4/Users/1001/", None).await;
    assert_eq!(got.body["data"]["email"], "alice@example.test");
    f.v4(
        Method::POST,
        "/v4/Users/ForgotPassword/Finish",
        Some(json!({ "encryptedEventId": token, "password": "Newpass123" })),
    )
    .await
    .expect(
        404,
        "E404_02",
        "Forgot password request not found or already used.",
    );
}

#[tokio::test]
async fn unknown_paths_methods_and_bad_bodies() {
    let f = start().await;
    f.v4(Method::GET, "/v4/Nothing", None)
        .await
        .expect(404, "E404", "Not Found");
    f.v4(Method::GET, "/v4/Users/1001/Password/extra", None)
        .await
        .expect(404, "E404", "Not Found");
    let wrong = f.v4(Method::POST, "/v4/Users/1001/Password", None).await;
    wrong.expect(405, "E405", "Method Not Allowed");

    let raw = |body: &'static [u8]| {
        let mut req = f.request(Method::PATCH, "/v4/Users/1001/Password");
        for (k, v) in TENANT {
            req = req.header(k, v);
        }
        req.header("Content-Type", "application/json").body(body)
    };
    answer(raw(b"{\"password\": ")).await.expect(
        400,
        "E400_00",
        "Invalid InputModel - The request body is not valid JSON (line 1, column 13).",
    );
    answer(raw(b"\xff\xfe\x00")).await.expect(
        400,
        "E400_00",
        "Invalid InputModel - The request body is not valid JSON (line 1, column 1).",
    );
    f.v4(
        Method::PATCH,
        "/v4/Users/1001/Password",
        Some(json!({ "password": 12345678 })),
    )
    .await
    .expect(
        400,
        "E400_00",
        "Invalid InputModel - The Password field must be a string.",
    );

    let huge = json!({ "password": "x".repeat(2 << 20) });
    f.v4(Method::PATCH, "/v4/Users/1001/Password", Some(huge))
        .await
        .expect(413, "E413", "Payload Too Large");

    let no_media_type = {
        let mut req = f.request(Method::PATCH, "/v4/Users/1001/Password");
        for (k, v) in TENANT {
            req = req.header(k, v);
        }
        req.body(r#"{"password":"Newpass123"}"#)
    };
    answer(no_media_type)
        .await
        .expect(415, "E415", "Unsupported Media Type");

    let health = f
        .request(Method::GET, "/_sandbox/health")
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn handle_shutdown_stops_the_server() {
    let f = start().await;
    let url = f.handle.url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(
        f.handle.addr().port(),
        url.rsplit(':').next().unwrap().parse::<u16>().unwrap()
    );
    f.handle.shutdown().await;
    let refused = reqwest::Client::new()
        .get(format!("{url}/_sandbox/health"))
        .send()
        .await;
    assert!(refused.is_err(), "no longer listening");
}
