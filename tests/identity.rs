//! Tokens as identity providers issue them: `aud`, `iss`, `iat`,
//! `nbf` and `exp` in every identity mode, HS256 and RS256, and a JWKS URL that rotates.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::fakes::ok_on;
use common::jwt::rs256;
use common::{client, PASSWORD, REGISTRY};
use serde_json::{json, Value};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &[u8] = b"hs256-test-secret-0123456789abcdef";
const JWKS: &str = include_str!("fixtures/jwks.json");
/// The test client's Host is 127.0.0.1:PORT; a tenant without a port matches it.
const TENANT: &str = "[[tenants]]\nhost = \"127.0.0.1\"\nsource_system = \"s\"\nclient_code = \"C\"\npaper_code = \"P\"\nclient_group_code = \"G\"\nreturn_url = \"https://paper.test/reset\"\n";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Every standard claim, valid now for `aud`/`iss`; `change` overrides some.
fn claims(change: Value) -> Value {
    let mut c = json!({
        "sub": "1001",
        "aud": "subscribe-web",
        "iss": "https://idp.example",
        "iat": now() - 10,
        "nbf": now() - 10,
        "exp": now() + 600,
        "jti": "abc",
    });
    for (k, v) in change.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn hs256(c: &Value) -> String {
    common::jwt::hs256(c, SECRET)
}

async fn v4_accepting() -> MockServer {
    let v4s = MockServer::start().await;
    ok_on(&v4s, "PATCH", "/v4/Users/1001/Password", "S200_11").await;
    v4s
}

async fn status_of(gw: &legacy_gateway::Running, token: &str) -> (u16, Value) {
    let resp = client()
        .post(format!(
            "{}{REGISTRY}?action=updatechangepassword",
            gw.url()
        ))
        .header("Authorization", token)
        .body(json!({"oldpassword": "Old-Passw0rd", "password": PASSWORD}).to_string())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn unverified_mode_reads_the_claim_and_ignores_aud_iss_and_times() {
    let v4s = v4_accepting().await;
    let gw = common::gateway_with(TENANT, Some(&v4s.uri())).await;
    // The repro, and tokens whose times a verifier would refuse: v4 judges them.
    for c in [
        json!({"sub": "1001", "aud": "subscribe-web", "iss": "https://idp.example"}),
        claims(json!({"aud": ["a", "b"]})),
        claims(json!({"exp": now() - 3600, "nbf": now() + 3600})),
    ] {
        let (s, a) = status_of(&gw, &hs256(&c)).await;
        assert_eq!((s, &a["status"]), (200, &json!("OK")), "{c}: {a}");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn hs256_enforces_audience_issuer_and_times_with_leeway() {
    let v4s = v4_accepting().await;
    let gw = common::gateway_with(
        &format!("{TENANT}[identity]\nhmac_secret = \"hs256-test-secret-0123456789abcdef\"\naudience = [\"subscribe-web\", \"other-app\"]\nissuer = \"https://idp.example\"\nleeway_seconds = 60\n"),
        Some(&v4s.uri()),
    )
    .await;
    let ok = [
        claims(json!({})),
        claims(json!({"aud": "other-app"})),
        claims(json!({"aud": ["x", "subscribe-web"]})),
        claims(json!({"exp": now() - 30})), // within the leeway
        claims(json!({"nbf": now() + 30})),
    ];
    for c in &ok {
        let (s, a) = status_of(&gw, &hs256(c)).await;
        assert_eq!(s, 200, "{c}: {a}");
    }
    let refused = [
        claims(json!({"aud": "someone-else"})),
        claims(json!({"iss": "https://evil.example"})),
        claims(json!({"exp": now() - 120})),
        claims(json!({"nbf": now() + 120})),
    ];
    for c in &refused {
        let (s, a) = status_of(&gw, &hs256(c)).await;
        assert_eq!(
            (s, &a["error"]),
            (401, &json!("Not authorized")),
            "{c}: {a}"
        );
    }
    assert_eq!(v4s.received_requests().await.unwrap().len(), ok.len());
    gw.shutdown().await;

    // Not configured: not checked.
    let gw = common::gateway_with(
        &format!("{TENANT}[identity]\nhmac_secret = \"hs256-test-secret-0123456789abcdef\"\n"),
        Some(&v4s.uri()),
    )
    .await;
    let (s, a) = status_of(
        &gw,
        &hs256(&claims(json!({"aud": "anything", "iss": "anyone"}))),
    )
    .await;
    assert_eq!(s, 200, "{a}");
    gw.shutdown().await;
}

/// A JWKS whose only key carries `kid`.
fn jwks_with_kid(kid: &str) -> String {
    let mut set: Value = serde_json::from_str(JWKS).unwrap();
    set["keys"][0]["kid"] = json!(kid);
    set.to_string()
}

#[tokio::test]
async fn rs256_from_a_jwks_url_refetched_on_an_unknown_kid_at_most_once_per_interval() {
    let v4s = v4_accepting().await;
    let idp = MockServer::start().await;
    // First the old key set, then the rotated one.
    Mock::given(path("/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(jwks_with_kid("old")))
        .up_to_n_times(1)
        .mount(&idp)
        .await;
    Mock::given(path("/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(jwks_with_kid("new")))
        .mount(&idp)
        .await;
    let gw = common::gateway_with(
        &format!(
            "{TENANT}[identity]\njwks_url = \"{}/jwks.json\"\naudience = \"subscribe-web\"\nissuer = \"https://idp.example\"\njwks_refetch_min_seconds = 3600\n",
            idp.uri()
        ),
        Some(&v4s.uri()),
    )
    .await;
    let fetches = || async { idp.received_requests().await.unwrap().len() };
    assert_eq!(fetches().await, 1);
    // A key the gateway has not seen: fetched again, then accepted.
    let (s, a) = status_of(&gw, &rs256(&claims(json!({})), "new")).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(fetches().await, 2);
    // Made-up kids do not make the gateway fetch again within the interval.
    for kid in ["made-up-1", "made-up-2", "made-up-3"] {
        let (s, _) = status_of(&gw, &rs256(&claims(json!({})), kid)).await;
        assert_eq!(s, 401);
    }
    assert_eq!(fetches().await, 2);
    // RS256 claims are checked as HS256's are.
    let (s, _) = status_of(&gw, &rs256(&claims(json!({"aud": "x"})), "new")).await;
    assert_eq!(s, 401);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_jwks_url_is_refreshed_on_a_schedule() {
    let idp = MockServer::start().await;
    Mock::given(path("/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(JWKS))
        .mount(&idp)
        .await;
    let gw = common::gateway_with(
        &format!(
            "[identity]\njwks_url = \"{}/jwks.json\"\njwks_refresh_seconds = 1\n",
            idp.uri()
        ),
        None,
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while idp.received_requests().await.unwrap().len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no scheduled refresh"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gw.shutdown().await;
}

async fn start_err(extra: &str) -> String {
    let mappings = legacy_gateway::mapping::Mappings::embedded().unwrap();
    match common::try_gateway_with(extra, None, mappings).await {
        Ok(_) => panic!("started"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_jwks_fetch_is_bounded_in_size_and_time() {
    let idp = MockServer::start().await;
    let big = format!("{{\"keys\":[],\"padding\":\"{}\"}}", "x".repeat(4096));
    Mock::given(path("/big.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(big))
        .mount(&idp)
        .await;
    Mock::given(path("/slow.json"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(JWKS)
                .set_delay(Duration::from_secs(30)),
        )
        .mount(&idp)
        .await;
    let e = start_err(&format!(
        "[limits]\nupstream_body_bytes = 1024\n[identity]\njwks_url = \"{}/big.json\"\n",
        idp.uri()
    ))
    .await;
    assert!(e.contains("larger than 1024 bytes"), "{e}");
    let started = std::time::Instant::now();
    let e = start_err(&format!(
        "[limits]\nupstream_timeout_ms = 300\n[identity]\njwks_url = \"{}/slow.json\"\n",
        idp.uri()
    ))
    .await;
    assert!(e.contains("cannot fetch the JWKS"), "{e}");
    // The call timeout applies (far below the answer's 30 s delay).
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

/// `claims` without `key`.
fn without(key: &str) -> Value {
    let mut c = claims(json!({}));
    c.as_object_mut().unwrap().remove(key);
    c
}

/// With `audience` and `issuer` configured, a token lacking them is refused, and a registered
/// claim of the wrong type is refused rather than read as absent (the JWT library skipped
/// the time check for `nbf: "…"`): 401 in the action API's shape, nothing forwarded. The same
/// for HS256 and for RS256 from a JWKS.
#[tokio::test]
async fn configured_claims_are_required_and_claims_of_the_wrong_type_refused() {
    let jwks = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwks.json");
    let claims_config = "audience = \"subscribe-web\"\nissuer = \"https://idp.example\"\n";
    type Sign = fn(&Value) -> String;
    let modes: [(&str, String, Sign); 2] = [
        (
            "HS256",
            format!("hmac_secret = \"hs256-test-secret-0123456789abcdef\"\n{claims_config}"),
            |c| hs256(c),
        ),
        (
            "RS256",
            format!("jwks_file = {jwks:?}\n{claims_config}"),
            |c| rs256(c, "test-1"),
        ),
    ];
    let future = now() + 3600;
    for (name, identity, sign) in modes {
        let v4s = v4_accepting().await;
        let gw = common::gateway_with(&format!("{TENANT}[identity]\n{identity}"), Some(&v4s.uri()))
            .await;
        let (s, a) = status_of(&gw, &sign(&claims(json!({})))).await;
        assert_eq!(s, 200, "{name}: a valid token: {a}");
        let refused = [
            without("aud"),
            without("iss"),
            claims(json!({"aud": 5})),
            claims(json!({"aud": {"subscribe-web": true}})),
            claims(json!({"aud": ["subscribe-web", 5]})),
            claims(json!({"iss": 5})),
            claims(json!({"iss": {"url": "https://idp.example"}})),
            claims(json!({"nbf": future.to_string()})),
            claims(json!({"nbf": "soon"})),
            claims(json!({"exp": (now() + 600).to_string()})),
        ];
        for c in &refused {
            let (s, a) = status_of(&gw, &sign(c)).await;
            assert_eq!(
                (s, &a["status"], &a["error"]),
                (401, &json!("error"), &json!("Not authorized")),
                "{name}: {c}: {a}"
            );
        }
        assert_eq!(
            v4s.received_requests().await.unwrap().len(),
            1,
            "{name}: only the valid token was forwarded"
        );
        gw.shutdown().await;
    }
}
