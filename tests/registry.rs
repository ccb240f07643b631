//! The user-registry action API over real HTTP: every action and alias, identity and tenant
//! refusals (nothing forwarded), every error row of SPEC 1.3 produced from a v4 answer.

mod common;

use common::{client, jwt, v4, PASSWORD, REGISTRY, REGISTRY_TENANT};
use serde_json::{json, Value};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Setup {
    gw: legacy_gateway::Running,
    v4: MockServer,
}

async fn setup(extra: &str) -> Setup {
    let v4 = MockServer::start().await;
    let gw = common::gateway_with(&format!("{REGISTRY_TENANT}{extra}"), Some(&v4.uri())).await;
    Setup { gw, v4 }
}

impl Setup {
    async fn call(
        &self,
        m: reqwest::Method,
        query: &str,
        auth: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut req = client()
            .request(m, format!("{}{REGISTRY}?{query}", self.gw.url()))
            .header("Host", "paper-a.test");
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    async fn post(&self, query: &str, auth: Option<&str>, body: &str) -> (u16, Value) {
        self.call(reqwest::Method::POST, query, auth, Some(body))
            .await
    }

    async fn forwarded(&self) -> Vec<wiremock::Request> {
        self.v4.received_requests().await.unwrap_or_default()
    }
}

async fn ok_on(s: &Setup, m: &str, p: &str, code: &str) {
    common::fakes::ok_on(&s.v4, m, p, code).await;
}

#[tokio::test]
async fn updatechangepassword_patches_the_current_users_password() {
    let s = setup("").await;
    ok_on(&s, "PATCH", "/v4/Users/1001/Password", "S200_11").await;
    let token = jwt::hs256(&json!({"sub": "1001"}), b"unverified");
    for field in ["oldpassword", "oldpasswort"] {
        let body = json!({field: "Old-Passw0rd", "password": PASSWORD}).to_string();
        let (status, answer) = s
            .post("action=updatechangepassword", Some(&token), &body)
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            answer,
            json!({"status": "OK", "action": "updatechangepassword"})
        );
    }
    let reqs = s.forwarded().await;
    assert_eq!(reqs.len(), 2);
    let r = &reqs[0];
    assert_eq!(r.method.as_str(), "PATCH");
    // Only the new password is sent: v4 has no old-password field.
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"password": PASSWORD})
    );
    let h = |n: &str| r.headers.get(n).unwrap().to_str().unwrap().to_string();
    assert_eq!(h("authorization"), token);
    assert_eq!(h("x-sourcesystem"), "dwo3rd-userregistry");
    assert_eq!(h("x-clientcode"), "CA");
    assert_eq!(h("x-papercode"), "PA");
    assert_eq!(h("x-clientgroupcode"), "GA");
    assert!(!h("x-request-id").is_empty());
}

#[tokio::test]
async fn registernewpassword_starts_forgot_password_with_the_tenants_return_url() {
    let s = setup("").await;
    ok_on(&s, "POST", "/v4/Users/ForgotPassword", "S200_08").await;
    let (status, answer) = s
        .post(
            "action=registernewpassword",
            None,
            r#"{"email":"alice@example.test"}"#,
        )
        .await;
    assert_eq!(
        (status, answer),
        (
            200,
            json!({"status": "OK", "action": "registernewpassword"})
        )
    );
    let reqs = s.forwarded().await;
    assert_eq!(
        serde_json::from_slice::<Value>(&reqs[0].body).unwrap(),
        json!({"loginName": "alice@example.test", "returnUrl": "https://paper-a.test/reset-password"})
    );
}

#[tokio::test]
async fn activatenewpassword_and_its_old_alias_finish_the_reset() {
    let s = setup("").await;
    ok_on(&s, "POST", "/v4/Users/ForgotPassword/Finish", "S200_09").await;
    let body = json!({"password": PASSWORD}).to_string();
    let (status, answer) = s
        .post("action=activatenewpassword&id=evt-1", None, &body)
        .await;
    assert_eq!(
        (status, answer),
        (
            200,
            json!({"status": "OK", "action": "activatenewpassword"})
        )
    );
    let (status, answer) = s.post("action=activate&cid=evt-2", None, &body).await;
    assert_eq!(
        (status, answer),
        (200, json!({"status": "OK", "action": "activate"}))
    );
    // The old name also answers GET (its old method); the password still comes in the body.
    let (status, answer) = s
        .call(
            reqwest::Method::GET,
            "action=activate&cid=evt-3",
            None,
            Some(&body),
        )
        .await;
    assert_eq!(
        (status, answer),
        (200, json!({"status": "OK", "action": "activate"}))
    );
    let sent: Vec<Value> = s
        .forwarded()
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(
        sent,
        [
            json!({"encryptedEventId": "evt-1", "password": PASSWORD}),
            json!({"encryptedEventId": "evt-2", "password": PASSWORD}),
            json!({"encryptedEventId": "evt-3", "password": PASSWORD}),
        ]
    );
}

#[tokio::test]
async fn gateway_validation_answers_validationfailed_and_forwards_nothing() {
    let s = setup("").await;
    let token = jwt::hs256(&json!({"sub": "1001"}), b"k");
    let cases: Vec<(&str, Option<&str>, &str, &str, &str)> = vec![
        (
            "",
            None,
            "{}",
            "Validation Failed",
            "The action parameter is missing.",
        ),
        (
            "action=nope",
            None,
            "{}",
            "Validation Failed",
            "Unknown action \"nope\".",
        ),
        (
            "action=registernewpassword",
            None,
            "{bad",
            "Validation Failed",
            "The request body is not valid JSON (line 1, column 2).",
        ),
        (
            "action=registernewpassword",
            None,
            "[1]",
            "Validation Failed",
            "The request body must be a JSON object.",
        ),
        (
            "action=registernewpassword",
            None,
            "{}",
            "Missing attributes",
            "Missing attribute: email",
        ),
        (
            "action=registernewpassword",
            None,
            r#"{"email":""}"#,
            "Validation Failed",
            "Email is empty!",
        ),
        (
            "action=registernewpassword",
            None,
            r#"{"email":"not-an-address"}"#,
            "Validation Failed",
            "Email format exception!",
        ),
        (
            "action=updatechangepassword",
            Some(&token),
            r#"{"oldpassword":"x"}"#,
            "Missing attributes",
            "Missing attribute: password",
        ),
        (
            "action=updatechangepassword",
            Some(&token),
            r#"{"oldpassword":"x","password":" "}"#,
            "Validation Failed",
            "Password is empty!",
        ),
        (
            "action=activatenewpassword",
            None,
            r#"{"password":"Abcdefg1"}"#,
            "Missing attributes",
            "Missing attribute: id",
        ),
    ];
    for (query, auth, body, error, message) in cases {
        let (status, answer) = s.post(query, auth, body).await;
        assert_eq!(status, 200, "{query} {body}");
        assert_eq!(
            answer["status"], "validationfailed",
            "{query} {body}: {answer}"
        );
        assert_eq!(answer["error"], error, "{query} {body}: {answer}");
        assert_eq!(
            answer["messages"],
            json!([message]),
            "{query} {body}: {answer}"
        );
    }
    // Wrong method for an action.
    let (status, answer) = s
        .call(
            reqwest::Method::GET,
            "action=registernewpassword",
            None,
            None,
        )
        .await;
    assert_eq!(status, 405);
    assert_eq!(answer["status"], "validationfailed");
    assert!(s.forwarded().await.is_empty());
}

#[tokio::test]
async fn identity_and_tenant_refusals_forward_nothing() {
    let s = setup("[identity]\nhmac_secret = \"right-secret\"\n").await;
    let body = r#"{"oldpassword":"x","password":"Abcdefg1"}"#;
    let far_future = 4_102_444_800u64;
    let cases = [
        (None, "Not authorized: no bearer token in Authorization."),
        (
            Some("Basic dXNlcjpwdw==".to_string()),
            "Not authorized: no bearer token in Authorization.",
        ),
        (
            Some("Bearer not.a.jwt".to_string()),
            "Not authorized: the token cannot be read.",
        ),
        (
            Some(jwt::hs256(
                &json!({"sub": "1001", "exp": far_future}),
                b"wrong-secret",
            )),
            "Not authorized: the token's signature or expiry is not valid.",
        ),
        (
            Some(jwt::hs256(
                &json!({"sub": "1001", "exp": 1_000_000}),
                b"right-secret",
            )),
            "Not authorized: the token's signature or expiry is not valid.",
        ),
        (
            Some(jwt::hs256(
                &json!({"name": "x", "exp": far_future}),
                b"right-secret",
            )),
            "Not authorized: the token has no usable user claim.",
        ),
    ];
    for (auth, message) in cases {
        let (status, answer) = s
            .post("action=updatechangepassword", auth.as_deref(), body)
            .await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(
            answer,
            json!({"status": "error", "error": "Not authorized", "messages": [message], "action": "updatechangepassword"})
        );
    }
    // A valid token passes.
    ok_on(&s, "PATCH", "/v4/Users/1001/Password", "S200_11").await;
    let good = jwt::hs256(&json!({"sub": "1001", "exp": far_future}), b"right-secret");
    let (status, _) = s
        .post("action=updatechangepassword", Some(&good), body)
        .await;
    assert_eq!(status, 200);
    assert_eq!(s.forwarded().await.len(), 1);

    // Unknown host.
    let resp = client()
        .post(format!(
            "{}{REGISTRY}?action=registernewpassword",
            s.gw.url()
        ))
        .header("Host", "paper-x.test")
        .body(r#"{"email":"a@b.cd"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["error"], "Unknown tenant");
    assert_eq!(s.forwarded().await.len(), 1);
}

/// Each v4 failure and the legacy answer it must become (SPEC 1.3 error table).
#[tokio::test]
async fn v4_failures_become_the_legacy_errors() {
    let s = setup("[limits]\nupstream_timeout_ms = 300\n").await;
    let token = jwt::hs256(&json!({"sub": "1001"}), b"k");
    let pw_body = json!({"oldpassword": "Old-Passw0rd", "password": "Abcdefg1"}).to_string();
    let complexity = "Invalid InputModel - Password does not meet the complexity requirements.";
    type Case<'a> = (
        &'a str,
        &'a str,
        u16,
        Value,
        u16,
        &'a str,
        &'a str,
        Vec<String>,
    );
    let cases: Vec<Case> = vec![
        (
            "/v4/Users/1001/Password",
            "action=updatechangepassword",
            400,
            v4("E400_00", complexity, "Error"),
            200,
            "validationfailed",
            "Password complexity",
            vec![complexity.into()],
        ),
        (
            "/v4/Users/1001/Password",
            "action=updatechangepassword",
            400,
            v4(
                "E400_00",
                "Invalid InputModel - The Password field is required.",
                "Error",
            ),
            200,
            "validationfailed",
            "Missing attributes",
            vec!["Invalid InputModel - The Password field is required.".into()],
        ),
        (
            "/v4/Users/1001/Password",
            "action=updatechangepassword",
            400,
            v4(
                "E400_00",
                "Invalid InputModel - Field x is missing.",
                "Error",
            ),
            200,
            "validationfailed",
            "Missing attributes",
            vec!["Invalid InputModel - Field x is missing.".into()],
        ),
        (
            "/v4/Users/1001/Password",
            "action=updatechangepassword",
            400,
            v4("E400", "Bad Request", "Error"),
            200,
            "validationfailed",
            "Validation Failed",
            vec!["Bad Request".into()],
        ),
        (
            "/v4/Users/1001/Password",
            "action=updatechangepassword",
            500,
            v4(
                "E500_01",
                "There was a problem during the GetById workflow.",
                "Error",
            ),
            200,
            "error",
            "Failed to save updated Profile",
            vec!["Failed to save updated Profile".into()],
        ),
        (
            "/v4/Users/1001/Password",
            "action=updatechangepassword",
            403,
            v4("E403", "Forbidden", "Error"),
            200,
            "error",
            "Failed to save updated Profile",
            vec!["Failed to save updated Profile".into()],
        ),
        (
            "/v4/Users/1001/Password",
            "action=updatechangepassword",
            500,
            v4("E500", "Internal Server Error", "Error"),
            500,
            "error",
            "Exception was thrown",
            vec!["Exception was thrown".into()],
        ),
    ];
    for (v4_path, query, v4_status, v4_body, status, legacy_status, error, messages) in cases {
        s.v4.reset().await;
        Mock::given(path(v4_path))
            .respond_with(ResponseTemplate::new(v4_status).set_body_json(v4_body.clone()))
            .mount(&s.v4)
            .await;
        let (got, answer) = s.post(query, Some(&token), &pw_body).await;
        assert_eq!(got, status, "{v4_body}: {answer}");
        assert_eq!(answer["status"], legacy_status, "{v4_body}: {answer}");
        assert_eq!(answer["error"], error, "{v4_body}: {answer}");
        assert_eq!(answer["messages"], json!(messages), "{v4_body}: {answer}");
        assert_eq!(answer["action"], "updatechangepassword");
    }

    // 404s of the two flows name their own legacy errors.
    s.v4.reset().await;
    Mock::given(path("/v4/Users/ForgotPassword"))
        .respond_with(ResponseTemplate::new(404).set_body_json(v4(
            "E404_01",
            "User not found.",
            "Error",
        )))
        .mount(&s.v4)
        .await;
    Mock::given(path("/v4/Users/ForgotPassword/Finish"))
        .respond_with(ResponseTemplate::new(404).set_body_json(v4("E404_02", "not found", "Error")))
        .mount(&s.v4)
        .await;
    let (_, a) = s
        .post("action=registernewpassword", None, r#"{"email":"x@y.zz"}"#)
        .await;
    assert_eq!(
        (a["status"].as_str(), a["error"].as_str()),
        (
            Some("validationfailed"),
            Some("No User found with current mailadress")
        )
    );
    let (_, a) = s
        .post(
            "action=activatenewpassword&id=e",
            None,
            r#"{"password":"Abcdefg1"}"#,
        )
        .await;
    assert_eq!(
        (a["status"].as_str(), a["error"].as_str()),
        (Some("validationfailed"), Some("No request with this id"))
    );

    // v4 slow, then v4 answering garbage: ExceptionResponse without upstream detail.
    s.v4.reset().await;
    Mock::given(path("/v4/Users/1001/Password"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(2)))
        .mount(&s.v4)
        .await;
    let (got, a) = s
        .post("action=updatechangepassword", Some(&token), &pw_body)
        .await;
    assert_eq!(got, 500);
    assert_eq!(a["status"], "error");
    assert_eq!(a["error"], "Exception was thrown");
    assert!(
        a["trace"].as_str().unwrap().starts_with("request id "),
        "{a}"
    );
    s.v4.reset().await;
    Mock::given(path("/v4/Users/1001/Password"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string("<html>stack trace at Foo.Bar()</html>"),
        )
        .mount(&s.v4)
        .await;
    let (got, a) = s
        .post("action=updatechangepassword", Some(&token), &pw_body)
        .await;
    assert_eq!(
        (got, a["error"].as_str()),
        (500, Some("Exception was thrown"))
    );
    assert!(!a.to_string().contains("Foo.Bar"));
}

#[tokio::test]
async fn v4_down_is_an_exception_response() {
    let gw = common::gateway_with(REGISTRY_TENANT, Some(&common::dead_url())).await;
    let resp = client()
        .post(format!("{}{REGISTRY}?action=registernewpassword", gw.url()))
        .header("Host", "paper-a.test")
        .body(r#"{"email":"a@b.cd"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 500);
    let a: Value = resp.json().await.unwrap();
    assert_eq!(a["error"], "Exception was thrown");
    assert_eq!(a["messages"], json!(["Exception was thrown"]));
}

/// The whole flow against the embedded sandbox: start, read the id from the sandbox, finish.
#[tokio::test]
async fn forgotten_password_round_trip_on_the_sandbox() {
    let gw = common::gateway_with("", None).await;
    let url = format!("{}{REGISTRY}", gw.url());
    let post = |q: String, body: Value| client().post(format!("{url}?{q}")).json(&body).send();
    let call = |q: &str, body: Value| {
        let f = post(q.to_string(), body);
        async move { f.await.unwrap().json::<Value>().await.unwrap() }
    };
    let a = call(
        "action=registernewpassword",
        json!({"email": "bob@example.test"}),
    )
    .await;
    assert_eq!(a, json!({"status": "OK", "action": "registernewpassword"}));

    // The sandbox's outbox holds the mail v4 would have sent, with the tenant's reset page.
    let sandbox = gw.sandbox.as_ref().unwrap().url();
    let get = |what: &str| {
        let f = client().get(format!("{sandbox}/_sandbox/{what}")).send();
        async move { f.await.unwrap().text().await.unwrap() }
    };
    let outbox = get("outbox").await;
    let mail: Value = serde_json::from_str(outbox.lines().last().unwrap()).unwrap();
    assert_eq!(mail["to"], "bob@example.test");
    let id = mail["encryptedEventId"].as_str().unwrap().to_string();
    assert_eq!(
        mail["link"],
        format!("http://localhost:8080/reset-password?id={id}")
    );

    // A weak password is refused without using the id up; then the id works once.
    let a = call(
        &format!("action=activatenewpassword&id={id}"),
        json!({"password": "weak"}),
    )
    .await;
    assert_eq!(a["error"], "Password complexity");
    let a = call(
        &format!("action=activatenewpassword&id={id}"),
        json!({"password": "Brand-New1"}),
    )
    .await;
    assert_eq!(a, json!({"status": "OK", "action": "activatenewpassword"}));
    let a = call(
        &format!("action=activate&cid={id}"),
        json!({"password": "Brand-New1"}),
    )
    .await;
    assert_eq!(a["error"], "No request with this id");

    // The sandbox recorded PWDREQ's v4 event, and CHGPWD's pair for bob's new password.
    let events: Vec<Value> = get("events")
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.iter().any(|e| e["eventId"] == 4009), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["eventId"] == 4609 && e["customerRegistrationId"] == "1002"),
        "{events:?}"
    );
}

/// A JWKS file verifies RS256 tokens by `kid`; a token signed by another key is refused.
#[tokio::test]
async fn tokens_are_verified_against_a_jwks_file() {
    let jwks = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwks.json");
    let s = setup(&format!("[identity]\njwks_file = {jwks:?}\n")).await;
    ok_on(&s, "PATCH", "/v4/Users/1001/Password", "S200_11").await;
    let sign = |kid: &str| jwt::rs256(&json!({"sub": "1001", "exp": 4_102_444_800u64}), kid);
    let body = r#"{"oldpassword":"Old-Passw0rd","password":"Abcdefg1"}"#;
    let (status, answer) = s
        .post("action=updatechangepassword", Some(&sign("test-1")), body)
        .await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("OK")),
        "{answer}"
    );
    // Unknown kid, and an HMAC token pretending to be from the issuer: refused.
    let (status, _) = s
        .post("action=updatechangepassword", Some(&sign("other")), body)
        .await;
    assert_eq!(status, 401);
    let (status, _) = s
        .post(
            "action=updatechangepassword",
            Some(&jwt::hs256(
                &json!({"sub": "1001", "exp": 4_102_444_800u64}),
                b"k",
            )),
            body,
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(s.forwarded().await.len(), 1);
}
