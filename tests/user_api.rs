//! `PUT /User/{customerRegistrationId}` end to end, over real HTTP on loopback: the legacy
//! client's request goes through the real gateway to a fake v4 (wiremock) or to the embedded
//! sandbox, and every assertion is on what crossed a socket: the v4 requests as received, the
//! legacy answer as sent.

mod common;

use std::net::SocketAddr;

use common::fakes::{self, password_changes};
use common::stopped_at_email;
use common::{gateway, gateway_with, mount, received, send, v4, Answer, PASSWORD, TOKEN};
use common::{legacy_answer, mount_method, put_request};
use legacy_gateway::Running;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn put(gw: &Running, id_path: &str, body: &Value) -> Answer {
    common::put_user(gw, id_path, body.to_string()).await
}

fn header<'a>(r: &'a wiremock::Request, name: &str) -> Vec<&'a str> {
    r.headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

/// The legacy success answer for a single-part body.
fn success(id: &str, request_id: &str) -> Value {
    let result = json!({"CustomerRegistrationId": id, "Updated": true});
    legacy_answer(0, json!([]), result, request_id)
}

/// The legacy answer for a single-part body that v4 refused.
fn v4_failure(status: u16, message: &str, code: &str, ty: Value, request_id: &str) -> Value {
    let errors = json!([{
        "Message": message,
        "Code": code,
        "Type": ty,
        "ErrorSource": "UsersOrchestrator",
    }]);
    let result = json!({"CustomerRegistrationId": "1001", "Updated": false});
    legacy_answer(status, errors, result, request_id)
}

const MANDATORY: [(&str, &str); 5] = [
    ("authorization", TOKEN),
    ("x-sourcesystem", "legacy-user-api"),
    ("x-clientcode", "CA"),
    ("x-papercode", "PA"),
    ("x-clientgroupcode", "GA"),
];

#[tokio::test]
async fn password_change_is_one_v4_call_with_headers_forwarded_untouched() {
    let v4s = MockServer::start().await;
    password_changes(&v4s, "1001").await;
    let gw = gateway(&v4s.uri()).await;

    let a = send(
        put_request(&gw.url(), "1001")
            .header("Content-Type", "application/json")
            .header("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0")
            .header("X-Custom", "do-not-forward")
            .header("Cookie", "session=abc")
            .body(json!({"Password": PASSWORD}).to_string()),
    )
    .await;

    assert_eq!(a.status, 200, "{}", a.text);
    let id = a.request_id();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "generated id {id:?}");
    assert_eq!(a.json, success("1001", &id));
    // The legacy field order, byte for byte.
    assert_eq!(
        a.text,
        format!(
            r#"{{"Code":0,"Errors":[],"Result":{{"CustomerRegistrationId":"1001","Updated":true}},"SessionId":null,"RequestId":"{id}"}}"#
        )
    );

    let got = received(&v4s).await;
    assert_eq!(got.len(), 1, "exactly one v4 call");
    let r = &got[0];
    assert_eq!(r.method.as_str(), "PATCH");
    assert_eq!(r.url.path(), "/v4/Users/1001/Password");
    assert_eq!(r.url.query(), None);
    assert_eq!(
        r.body_json::<Value>().unwrap(),
        json!({"password": PASSWORD})
    );
    for (name, value) in MANDATORY {
        assert_eq!(header(r, name), [value], "header {name}");
    }
    assert_eq!(header(r, "x-request-id"), [id.as_str()]);
    for name in ["proxy-authorization", "x-custom", "cookie"] {
        assert!(header(r, name).is_empty(), "{name} must not reach v4");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn a_client_request_id_is_kept_end_to_end() {
    let v4s = MockServer::start().await;
    Mock::given(any())
        .respond_with(fakes::success("S200_11", "Update password completed."))
        .mount(&v4s)
        .await;
    let gw = gateway(&v4s.uri()).await;

    let a = send(
        put_request(&gw.url(), "1001")
            .header("x-request-id", "client-req-42")
            .body(json!({"Password": PASSWORD}).to_string()),
    )
    .await;

    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.request_id(), "client-req-42");
    assert_eq!(a.json, success("1001", "client-req-42"));
    let got = received(&v4s).await;
    assert_eq!(got.len(), 1);
    assert_eq!(header(&got[0], "x-request-id"), ["client-req-42"]);
    gw.shutdown().await;
}

#[tokio::test]
async fn field_names_are_matched_case_insensitively() {
    let v4s = MockServer::start().await;
    Mock::given(any())
        .respond_with(fakes::success("S200_11", "Update password completed."))
        .mount(&v4s)
        .await;
    let gw = gateway(&v4s.uri()).await;

    for key in ["password", "PASSWORD"] {
        let a = put(&gw, "1001", &json!({ key: PASSWORD })).await;
        assert_eq!(a.status, 200, "{key}: {}", a.text);
        assert_eq!(a.json, success("1001", &a.request_id()));
    }
    let got = received(&v4s).await;
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!(r.method.as_str(), "PATCH");
        assert_eq!(r.url.path(), "/v4/Users/1001/Password");
        assert_eq!(
            r.body_json::<Value>().unwrap(),
            json!({"password": PASSWORD})
        );
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn email_is_one_patch_to_the_email_endpoint() {
    let v4s = MockServer::start().await;
    mount(
        &v4s,
        "PATCH",
        "/v4/Users/1001/Email",
        fakes::success("S200_12", "Update Email completed."),
    )
    .await;
    let gw = gateway(&v4s.uri()).await;

    let a = put(&gw, "1001", &json!({"Email": "new@example.test"})).await;

    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json, success("1001", &a.request_id()));
    let got = received(&v4s).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method.as_str(), "PATCH");
    assert_eq!(got[0].url.path(), "/v4/Users/1001/Email");
    assert_eq!(
        got[0].body_json::<Value>().unwrap(),
        json!({"email": "new@example.test"})
    );
    for (name, value) in MANDATORY {
        assert_eq!(header(&got[0], name), [value], "header {name}");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn profile_fields_are_one_put_in_camel_case_at_every_depth() {
    let v4s = MockServer::start().await;
    mount(
        &v4s,
        "PUT",
        "/v4/Users/1001/",
        fakes::success("S200_10", "Update user completed."),
    )
    .await;
    let gw = gateway(&v4s.uri()).await;

    let a = put(
        &gw,
        "1001",
        &json!({
            "FirstName": "Ann",
            "LastName": "Smith",
            "Metadata": {
                "NewsLetter": true,
                "FavoriteTeams": [
                    {"TeamName": "Reds", "TeamId": 7},
                    {"TeamName": "BlueSox", "Tags": ["KeepThisValue"]}
                ],
                "HomeAddress": {"StreetName": "Main Street", "ZipCode": "12345"}
            },
            "IgnoreProvider": true,
            "Verified": false,
            "LastLogoutDate": "2024-05-01T12:00:00Z",
            "RemoveLastLogoutDate": false
        }),
    )
    .await;

    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json, success("1001", &a.request_id()));
    let got = received(&v4s).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method.as_str(), "PUT");
    assert_eq!(got[0].url.path(), "/v4/Users/1001/");
    assert_eq!(
        got[0].body_json::<Value>().unwrap(),
        json!({
            "firstName": "Ann",
            "lastName": "Smith",
            "metadata": {
                "newsLetter": true,
                "favoriteTeams": [
                    {"teamName": "Reds", "teamId": 7},
                    {"teamName": "BlueSox", "tags": ["KeepThisValue"]}
                ],
                "homeAddress": {"streetName": "Main Street", "zipCode": "12345"}
            },
            "ignoreProvider": true,
            "verified": false,
            "lastLogoutDate": "2024-05-01T12:00:00Z",
            "removeLastLogoutDate": false
        })
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn nullable_profile_fields_forward_null() {
    let v4s = MockServer::start().await;
    Mock::given(any())
        .respond_with(fakes::success("S200_10", "Update user completed."))
        .mount(&v4s)
        .await;
    let gw = gateway(&v4s.uri()).await;

    let a = put(
        &gw,
        "1001",
        &json!({"FirstName": null, "LastName": null, "Metadata": null, "LastLogoutDate": null}),
    )
    .await;

    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json, success("1001", &a.request_id()));
    let got = received(&v4s).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].url.path(), "/v4/Users/1001/");
    assert_eq!(
        got[0].body_json::<Value>().unwrap(),
        json!({"firstName": null, "lastName": null, "metadata": null, "lastLogoutDate": null})
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn mixed_body_runs_profile_then_email_then_password() {
    let v4s = MockServer::start().await;
    mount(
        &v4s,
        "PUT",
        "/v4/Users/1001/",
        fakes::success("S200_10", "Update user completed."),
    )
    .await;
    mount(
        &v4s,
        "PATCH",
        "/v4/Users/1001/Email",
        fakes::success("S200_12", "Update Email completed."),
    )
    .await;
    password_changes(&v4s, "1001").await;
    let gw = gateway(&v4s.uri()).await;

    let a = put(
        &gw,
        "1001",
        &json!({"Password": PASSWORD, "FirstName": "Ann", "Email": "ann@example.test"}),
    )
    .await;

    a.assert_legacy(
        200,
        json!([]),
        json!({
            "CustomerRegistrationId": "1001",
            "Updated": true,
            "Applied": ["Profile", "Email", "Password"],
            "NotAttempted": []
        }),
        "all three parts",
    );
    let got = received(&v4s).await;
    let calls: Vec<(String, String, Value)> = got
        .iter()
        .map(|r| {
            (
                r.method.to_string(),
                r.url.path().to_string(),
                r.body_json().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            (
                "PUT".to_string(),
                "/v4/Users/1001/".to_string(),
                json!({"firstName": "Ann"})
            ),
            (
                "PATCH".to_string(),
                "/v4/Users/1001/Email".to_string(),
                json!({"email": "ann@example.test"})
            ),
            (
                "PATCH".to_string(),
                "/v4/Users/1001/Password".to_string(),
                json!({"password": PASSWORD})
            ),
        ]
    );
    // Every call carries the same request id and the mandatory headers.
    for r in &got {
        assert_eq!(header(r, "x-request-id"), [a.request_id().as_str()]);
        for (name, value) in MANDATORY {
            assert_eq!(header(r, name), [value], "header {name}");
        }
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn mixed_body_stops_at_the_first_failure_and_says_what_was_applied() {
    let v4s = MockServer::start().await;
    mount(
        &v4s,
        "PUT",
        "/v4/Users/1001/",
        fakes::success("S200_10", "Update user completed."),
    )
    .await;
    mount(
        &v4s,
        "PATCH",
        "/v4/Users/1001/Email",
        ResponseTemplate::new(400).set_body_json(v4(
            "E400_08",
            "The email is already in use by another user.",
            "Error",
        )),
    )
    .await;
    password_changes(&v4s, "1001").await;
    let gw = gateway(&v4s.uri()).await;

    let a = put(
        &gw,
        "1001",
        &json!({"Password": PASSWORD, "FirstName": "Ann", "Email": "bob@example.test"}),
    )
    .await;

    a.assert_legacy(
        400,
        json!([{
            "Message": "The email is already in use by another user.",
            "Code": "UsersOrchestrator_E400_08",
            "Type": {"Id": 4, "Code": "EmailAlreadyInUse"},
            "ErrorSource": "UsersOrchestrator",
            "Part": "Email"
        }]),
        stopped_at_email(),
        "the e-mail part refused",
    );
    assert_eq!(
        common::received_paths(&v4s).await,
        ["/v4/Users/1001/", "/v4/Users/1001/Email"]
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn mixed_body_failing_first_part_attempts_nothing_else() {
    let v4s = MockServer::start().await;
    mount_method(
        &v4s,
        "PUT",
        ResponseTemplate::new(400).set_body_json(v4(
            "E400_22",
            "There was an error trying to update the user.",
            "Error",
        )),
    )
    .await;
    mount_method(
        &v4s,
        "PATCH",
        fakes::success("S200_11", "Update password completed."),
    )
    .await;
    let gw = gateway(&v4s.uri()).await;

    let a = put(
        &gw,
        "1001",
        &json!({"Password": PASSWORD, "LastName": "X", "Email": "x@example.test"}),
    )
    .await;

    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(a.json["Errors"][0]["Part"], "Profile");
    assert_eq!(
        a.json["Errors"][0]["Type"],
        json!({"Id": 5, "Code": "UserUpdateFailed"})
    );
    assert_eq!(
        a.json["Result"],
        json!({
            "CustomerRegistrationId": "1001",
            "Updated": false,
            "Applied": [],
            "NotAttempted": ["Email", "Password"]
        })
    );
    assert_eq!(received(&v4s).await.len(), 1);
    gw.shutdown().await;
}

/// Each v4 failure, answered by a fresh fake v4, and the legacy answer it must become.
#[tokio::test]
async fn v4_failures_map_to_legacy_types() {
    struct Case {
        body: Value,
        status: u16,
        v4: Value,
        message: &'static str,
        code: &'static str,
        ty: Value,
    }
    let policy = "Invalid InputModel - Password does not meet the complexity requirements.";
    let get_by_id = "There was a problem during the GetById workflow.";
    let update = "There was an error trying to update the user.";
    let taken = "The email is already in use by another user.";
    let cases = [
        Case {
            body: json!({"Password": PASSWORD}),
            status: 400,
            v4: v4("E400_00", policy, "Error"),
            message: policy,
            code: "UsersOrchestrator_E400_00",
            ty: json!({"Id": 3, "Code": "PasswordComplexity"}),
        },
        Case {
            // E400_00 about something else than the password is a plain validation failure.
            body: json!({"Email": "not-an-address"}),
            status: 400,
            v4: v4(
                "E400_00",
                "Invalid InputModel - The Email field is not a valid e-mail address.",
                "Error",
            ),
            message: "Invalid InputModel - The Email field is not a valid e-mail address.",
            code: "UsersOrchestrator_E400_00",
            ty: json!({"Id": 1, "Code": "ValidationFailed"}),
        },
        Case {
            body: json!({"Password": PASSWORD}),
            status: 500,
            v4: v4("E500_01", get_by_id, "Error"),
            message: get_by_id,
            code: "UsersOrchestrator_E500_01",
            ty: json!({"Id": 2, "Code": "UserNotFound"}),
        },
        Case {
            body: json!({"FirstName": "Ann"}),
            status: 400,
            v4: v4("E400_22", update, "Error"),
            message: update,
            code: "UsersOrchestrator_E400_22",
            ty: json!({"Id": 5, "Code": "UserUpdateFailed"}),
        },
        Case {
            // `type` as the docs' schema gives it: an integer.
            body: json!({"Email": "bob@example.test"}),
            status: 400,
            v4: json!({"message": {"code": "UsersOrchestrator_E400_08", "text": taken, "type": 2}, "meta": null}),
            message: taken,
            code: "UsersOrchestrator_E400_08",
            ty: json!({"Id": 4, "Code": "EmailAlreadyInUse"}),
        },
        Case {
            body: json!({"Password": PASSWORD}),
            status: 500,
            v4: json!({"message": {"code": "UsersOrchestrator_E500_01", "text": get_by_id, "type": 2}, "meta": null, "data": null}),
            message: get_by_id,
            code: "UsersOrchestrator_E500_01",
            ty: json!({"Id": 2, "Code": "UserNotFound"}),
        },
        Case {
            body: json!({"Password": PASSWORD}),
            status: 500,
            v4: v4("E500", "Internal Server Error", "Error"),
            message: "Internal Server Error",
            code: "UsersOrchestrator_E500",
            ty: json!({"Id": 9, "Code": "InternalError"}),
        },
    ];
    for c in cases {
        let v4s = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(c.status).set_body_json(&c.v4))
            .mount(&v4s)
            .await;
        let gw = gateway(&v4s.uri()).await;
        let a = put(&gw, "1001", &c.body).await;
        assert_eq!(a.status, c.status, "{}: {}", c.code, a.text);
        assert_eq!(
            a.json,
            v4_failure(c.status, c.message, c.code, c.ty, &a.request_id()),
            "{}",
            c.code
        );
        assert_eq!(received(&v4s).await.len(), 1);
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn v4_success_with_an_integer_type_is_a_success() {
    let v4s = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "message": {"code": "UsersOrchestrator_S200_11", "text": "Update password completed.", "type": 1},
            "meta": null
        })))
        .mount(&v4s)
        .await;
    let gw = gateway(&v4s.uri()).await;
    let a = put(&gw, "1001", &json!({"Password": PASSWORD})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json, success("1001", &a.request_id()));
    gw.shutdown().await;
}

#[tokio::test]
async fn an_encoded_id_stays_one_encoded_segment() {
    let v4s = MockServer::start().await;
    Mock::given(any())
        .respond_with(fakes::success("S200_11", "Update password completed."))
        .mount(&v4s)
        .await;
    let gw = gateway(&v4s.uri()).await;

    let a = put(&gw, "auth0%7Cabc", &json!({"Password": PASSWORD})).await;

    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json, success("auth0|abc", &a.request_id()));
    let got = received(&v4s).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].url.path(), "/v4/Users/auth0%7Cabc/Password");

    // Characters that mean something in a URL are encoded too.
    let a = put(&gw, "a%20b%3Fc%23d", &json!({"Password": PASSWORD})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["Result"]["CustomerRegistrationId"], "a b?c#d");
    let got = received(&v4s).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].url.path(), "/v4/Users/a%20b%3Fc%23d/Password");
    assert_eq!(got[1].url.query(), None);
    gw.shutdown().await;
}

/// Sends `request` as written (no client normalises the path) and reads the answer to EOF.
async fn raw_http(addr: SocketAddr, request: &str) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a full answer");
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, serde_json::from_str(body).expect("a JSON answer"))
}

#[tokio::test]
async fn ids_that_would_leave_their_path_segment_are_refused() {
    let v4s = MockServer::start().await;
    Mock::given(any())
        .respond_with(fakes::success("S200_11", "Update password completed."))
        .mount(&v4s)
        .await;
    let gw = gateway(&v4s.uri()).await;
    let body = json!({"Password": PASSWORD}).to_string();

    for raw in ["..%2F..%2Fadmin", "%2E%2E", "%2e", "a%2Fb", "a%5Cb", "%00"] {
        let mut req = format!("PUT /User/{raw} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n");
        for (name, value) in MANDATORY {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        let (status, json) = raw_http(gw.addr, &req).await;
        assert_eq!(status, 400, "{raw}: {json}");
        assert_eq!(json["Code"], 400, "{raw}");
        assert_eq!(
            json["Errors"][0]["Code"], "Gateway_E400_07",
            "{raw}: {json}"
        );
        assert_eq!(json["Errors"][0]["ErrorSource"], "Gateway", "{raw}");
        assert_eq!(json["Result"]["Updated"], false, "{raw}");
        // The id as the client sent it, even refused: the legacy API echoed it in `Result`.
        let sent = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        assert_eq!(json["Result"]["CustomerRegistrationId"], *sent, "{raw}");
    }
    assert!(received(&v4s).await.is_empty(), "nothing may be forwarded");
    gw.shutdown().await;
}

// --- the embedded sandbox as v4 ---

async fn sandbox_events(gw: &Running) -> Vec<Value> {
    let url = format!("{}/_sandbox/events", gw.sandbox.as_ref().unwrap().url());
    let text = common::get_text(url).await;
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[tokio::test]
async fn sandbox_password_change_policy_success_and_event_log() {
    let gw = gateway_with("", None).await;
    assert!(gw.sandbox.is_some());

    let a = put(&gw, "1001", &json!({"Password": "short"})).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(
        a.json,
        v4_failure(
            400,
            "Invalid InputModel - Password does not meet the complexity requirements.",
            "UsersOrchestrator_E400_00",
            json!({"Id": 3, "Code": "PasswordComplexity"}),
            &a.request_id()
        )
    );
    assert!(
        sandbox_events(&gw).await.is_empty(),
        "a refusal logs nothing"
    );

    let a = put(&gw, "1001", &json!({"Password": "NewPassw0rd"})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json, success("1001", &a.request_id()));

    let events = sandbox_events(&gw).await;
    let ids: Vec<(&Value, &Value)> = events
        .iter()
        .map(|e| (&e["eventId"], &e["customerRegistrationId"]))
        .collect();
    assert_eq!(
        ids,
        [
            (&json!(4601), &json!("1001")),
            (&json!(4001), &json!("1001")),
            (&json!(4609), &json!("1001")),
            (&json!(4010), &json!("1001"))
        ]
    );
    // Two groups (GetById, then the password change), each under its own correlation id.
    assert_eq!(events[0]["correlationId"], events[1]["correlationId"]);
    assert_eq!(events[2]["correlationId"], events[3]["correlationId"]);
    assert_ne!(events[0]["correlationId"], events[2]["correlationId"]);
    gw.shutdown().await;
}

#[tokio::test]
async fn sandbox_unknown_user_and_email_taken() {
    let gw = gateway_with("", None).await;

    let a = put(&gw, "9999", &json!({"Password": "NewPassw0rd"})).await;
    assert_eq!(a.status, 500, "{}", a.text);
    assert_eq!(a.json["Code"], 500);
    assert_eq!(
        a.json["Errors"],
        json!([{
            "Message": "There was a problem during the GetById workflow.",
            "Code": "UsersOrchestrator_E500_01",
            "Type": {"Id": 2, "Code": "UserNotFound"},
            "ErrorSource": "UsersOrchestrator"
        }])
    );
    assert_eq!(
        a.json["Result"],
        json!({"CustomerRegistrationId": "9999", "Updated": false})
    );

    let a = put(&gw, "1001", &json!({"Email": "bob@example.test"})).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(
        a.json,
        v4_failure(
            400,
            "The email is already in use by another user.",
            "UsersOrchestrator_E400_08",
            json!({"Id": 4, "Code": "EmailAlreadyInUse"}),
            &a.request_id()
        )
    );
    assert!(sandbox_events(&gw).await.is_empty());
    gw.shutdown().await;
}

#[tokio::test]
async fn sandbox_mixed_body_and_encoded_id() {
    let gw = gateway_with("", None).await;

    let a = put(
        &gw,
        "auth0%7Cabc123",
        &json!({"FirstName": "Caroline", "Metadata": {"NewsLetter": true}, "Email": "caroline@example.test", "Password": "NewPassw0rd"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        a.json["Result"],
        json!({
            "CustomerRegistrationId": "auth0|abc123",
            "Updated": true,
            "Applied": ["Profile", "Email", "Password"],
            "NotAttempted": []
        })
    );
    let ids: Vec<Value> = sandbox_events(&gw)
        .await
        .iter()
        .map(|e| e["eventId"].clone())
        .collect();
    // Each v4 call starts with its GetById step.
    assert_eq!(
        ids,
        [4601, 4001, 4601, 4001, 4610, 4011, 4601, 4001, 4609, 4010].map(|i| json!(i))
    );
    gw.shutdown().await;
}
