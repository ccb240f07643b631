//! Rate limits: per e-mail address, user, confirmation id and client IP;
//! 429 with `Retry-After` in the action API's shape, counted; a bounded key table; the client
//! IP from the socket unless the peer is a trusted proxy.

mod common;

use common::fakes::ok_on;
use common::mount;
use common::{client, metrics_text, received, PASSWORD, REGISTRY};
use serde_json::{json, Value};
use wiremock::{MockServer, ResponseTemplate};

const TENANT: &str = "[[tenants]]\nhost = \"127.0.0.1\"\nsource_system = \"s\"\nclient_code = \"C\"\npaper_code = \"P\"\nclient_group_code = \"G\"\nreturn_url = \"https://paper.test/reset\"\n";

async fn v4_accepting() -> MockServer {
    let v4s = MockServer::start().await;
    for (m, p, code) in [
        ("POST", "/v4/Users/ForgotPassword", "S200_08"),
        ("POST", "/v4/Users/ForgotPassword/Finish", "S200_09"),
        ("PATCH", "/v4/Users/1001/Password", "S200_11"),
        ("PATCH", "/v4/Users/1002/Password", "S200_11"),
    ] {
        ok_on(&v4s, m, p, code).await;
    }
    v4s
}

struct Reply {
    status: u16,
    retry_after: Option<u64>,
    json: Value,
}

async fn call(
    gw: &legacy_gateway::Running,
    query: &str,
    body: Value,
    auth: &str,
    forwarded_for: Option<&str>,
) -> Reply {
    let mut req = client()
        .post(format!("{}{REGISTRY}?{query}", gw.url()))
        .header("Authorization", auth)
        .body(body.to_string());
    if let Some(x) = forwarded_for {
        req = req.header("X-Forwarded-For", x);
    }
    let resp = req.send().await.unwrap();
    Reply {
        status: resp.status().as_u16(),
        retry_after: resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse().unwrap()),
        json: resp.json().await.unwrap(),
    }
}

async fn reset_mail(gw: &legacy_gateway::Running, email: &str, xff: Option<&str>) -> Reply {
    call(
        gw,
        "action=registernewpassword",
        json!({"email": email}),
        "Bearer service-token",
        xff,
    )
    .await
}

/// `updatechangepassword` as user `sub` (the token's subject).
async fn change_password(gw: &legacy_gateway::Running, sub: &str) -> Reply {
    let change = json!({"oldpassword": "Old-Passw0rd", "password": PASSWORD});
    call(gw, "action=updatechangepassword", change, &jwt(sub), None).await
}

/// A reset's last step (`activatenewpassword` or its old alias), named by `query`.
async fn finish_reset(gw: &legacy_gateway::Running, query: &str) -> Reply {
    call(gw, query, json!({"password": PASSWORD}), "Bearer s", None).await
}

fn jwt(sub: &str) -> String {
    common::jwt::hs256(&json!({"sub": sub}), b"x")
}

fn assert_limited(r: &Reply, action: &str) {
    assert_eq!(r.status, 429, "{}", r.json);
    let secs = r.retry_after.expect("Retry-After");
    assert!((1..=3600).contains(&secs), "{secs}");
    assert_eq!(r.json["status"], "error", "{}", r.json);
    assert_eq!(r.json["error"], "Too many requests", "{}", r.json);
    assert_eq!(r.json["action"], action, "{}", r.json);
}

#[tokio::test]
async fn reset_mails_are_limited_per_address_and_counted() {
    let v4s = v4_accepting().await;
    let gw = common::gateway_with(
        &format!("{TENANT}[rate_limits]\nreset_mail_per_email_per_hour = 2\n"),
        Some(&v4s.uri()),
    )
    .await;
    for email in ["bob@example.test", "BOB@example.test"] {
        let r = reset_mail(&gw, email, None).await;
        assert_eq!(
            (r.status, &r.json["status"]),
            (200, &json!("OK")),
            "{}",
            r.json
        );
    }
    let r = reset_mail(&gw, "bob@example.test", None).await;
    assert_limited(&r, "registernewpassword");
    // Another address has its own budget.
    let r = reset_mail(&gw, "alice@example.test", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        received(&v4s).await.len(),
        3,
        "the refused call was not forwarded"
    );
    let m = metrics_text(&gw).await;
    assert!(
        m.lines()
            .any(|l| l
                == r#"gateway_rate_limited_total{action="registernewpassword",key="email"} 1"#),
        "{m}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn per_ip_limits_use_the_socket_unless_the_peer_is_a_trusted_proxy() {
    let v4s = v4_accepting().await;
    let limits = "[rate_limits]\nreset_mail_per_ip_per_hour = 1\n";
    // Untrusted peer: X-Forwarded-For is the client's own claim and is ignored.
    let gw = common::gateway_with(&format!("{TENANT}{limits}"), Some(&v4s.uri())).await;
    let r = reset_mail(&gw, "a@example.test", Some("1.1.1.1")).await;
    assert_eq!(r.status, 200);
    let r = reset_mail(&gw, "b@example.test", Some("2.2.2.2")).await;
    assert_limited(&r, "registernewpassword");
    gw.shutdown().await;

    // Loopback is a trusted proxy: the right-most untrusted address is the client.
    let gw = common::gateway_with(
        &format!("trusted_proxies = [\"127.0.0.0/8\"]\n{TENANT}{limits}"),
        Some(&v4s.uri()),
    )
    .await;
    for (email, xff) in [
        ("a@example.test", "9.9.9.9, 1.1.1.1"),
        ("b@example.test", "1.1.1.1, 2.2.2.2"),
    ] {
        let r = reset_mail(&gw, email, Some(xff)).await;
        assert_eq!(r.status, 200, "{xff}: {}", r.json);
    }
    // 1.1.1.1 as the client again (a forged left part does not help).
    let r = reset_mail(&gw, "c@example.test", Some("6.6.6.6, 1.1.1.1")).await;
    assert_limited(&r, "registernewpassword");
    let m = metrics_text(&gw).await;
    assert!(
        m.contains(r#"gateway_rate_limited_total{action="registernewpassword",key="ip"} 1"#),
        "{m}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn password_changes_are_limited_per_user_and_per_confirmation_id() {
    let v4s = v4_accepting().await;
    let gw = common::gateway_with(
        &format!("{TENANT}[rate_limits]\npassword_per_user_per_hour = 1\n"),
        Some(&v4s.uri()),
    )
    .await;
    let r = change_password(&gw, "1001").await;
    assert_eq!(r.status, 200, "{}", r.json);
    let r = change_password(&gw, "1001").await;
    assert_limited(&r, "updatechangepassword");
    let r = change_password(&gw, "1002").await;
    assert_eq!(r.status, 200, "another user");

    let r = finish_reset(&gw, "action=activatenewpassword&id=abc").await;
    assert_eq!(r.status, 200, "{}", r.json);
    // The old alias and its `cid` name the same id.
    let r = finish_reset(&gw, "action=activate&cid=abc").await;
    assert_limited(&r, "activate");
    let r = finish_reset(&gw, "action=activatenewpassword&id=other").await;
    assert_eq!(r.status, 200);
    assert_eq!(received(&v4s).await.len(), 4);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_key_table_is_bounded() {
    let v4s = v4_accepting().await;
    let gw = common::gateway_with(
        &format!(
            "{TENANT}[rate_limits]\nreset_mail_per_email_per_hour = 1\nreset_mail_per_ip_per_hour = 0\nmax_keys = 2\n"
        ),
        Some(&v4s.uri()),
    )
    .await;
    for email in ["a@example.test", "b@example.test"] {
        assert_eq!(reset_mail(&gw, email, None).await.status, 200);
    }
    // Both keys still hold state (their budget is spent): a third does not fit.
    let r = reset_mail(&gw, "c@example.test", None).await;
    assert_limited(&r, "registernewpassword");
    assert_eq!(received(&v4s).await.len(), 2);
    gw.shutdown().await;
}

/// A flood of new keys must not lock out the keys already counted: a full table refuses only
/// new keys. (Dropping keys whose budget is whole again is a unit test of the table: it takes
/// the budget's hour.)
#[tokio::test]
async fn a_full_key_table_refuses_only_new_keys() {
    let v4s = v4_accepting().await;
    let gw = common::gateway_with(
        &format!(
            "{TENANT}[rate_limits]\nreset_mail_per_email_per_hour = 2\nreset_mail_per_ip_per_hour = 0\nmax_keys = 2\n"
        ),
        Some(&v4s.uri()),
    )
    .await;
    for email in ["a@example.test", "b@example.test"] {
        assert_eq!(reset_mail(&gw, email, None).await.status, 200);
    }
    for email in ["c@example.test", "d@example.test"] {
        assert_limited(&reset_mail(&gw, email, None).await, "registernewpassword");
    }
    // The keys already there keep their budget (one call each left), then are limited.
    for email in ["a@example.test", "b@example.test"] {
        let r = reset_mail(&gw, email, None).await;
        assert_eq!(r.status, 200, "{email}: {}", r.json);
        assert_limited(&reset_mail(&gw, email, None).await, "registernewpassword");
    }
    assert_eq!(received(&v4s).await.len(), 4);
    gw.shutdown().await;
}

/// One IPv6 subscriber holds a whole /64 and may use any address in it: the per-address limit
/// counts the /64 (`rate_limits.ipv6_prefix_len`, default 64), so 40 addresses of one /64 get
/// one budget. The addresses come from a trusted proxy's `X-Forwarded-For`: on loopback every
/// socket peer is `127.0.0.1` or `::1`.
#[tokio::test]
async fn ipv6_clients_are_limited_per_prefix() {
    let v4s = v4_accepting().await;
    let limits = "[rate_limits]\nreset_mail_per_ip_per_hour = 2\n";
    let config = |extra: &str| {
        format!("trusted_proxies = [\"127.0.0.0/8\", \"::1\"]\n{TENANT}{limits}{extra}")
    };
    let gw = common::gateway_with(&config(""), Some(&v4s.uri())).await;
    let mail = |i: usize| format!("user{i}@example.test");
    for (i, xff) in ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"]
        .iter()
        .enumerate()
    {
        let r = reset_mail(&gw, &mail(i), Some(xff)).await;
        assert_eq!(r.status, 200, "{xff}: {}", r.json);
    }
    for i in 2..40 {
        let xff = format!("2001:db8:1:2:{i:x}::{i:x}");
        assert_limited(
            &reset_mail(&gw, &mail(i), Some(&xff)).await,
            "registernewpassword",
        );
    }
    // Another /64 has its own budget; an IPv4 client is still keyed by its address.
    let r = reset_mail(&gw, &mail(40), Some("2001:db8:1:3::1")).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let r = reset_mail(&gw, &mail(41), Some("192.0.2.7")).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(received(&v4s).await.len(), 4);
    gw.shutdown().await;

    // A prefix of 128 keys each address on its own.
    let gw = common::gateway_with(&config("ipv6_prefix_len = 128\n"), Some(&v4s.uri())).await;
    for i in 0..3 {
        let xff = format!("2001:db8:1:2::{i}");
        let r = reset_mail(&gw, &mail(100 + i), Some(&xff)).await;
        assert_eq!(r.status, 200, "{xff}: {}", r.json);
    }
    gw.shutdown().await;
}

/// The legacy backend sends the same mails: legacy (and shadow) mode is limited alike.
#[tokio::test]
async fn calls_the_legacy_backend_answers_are_limited_too() {
    let legacy = MockServer::start().await;
    mount(
        &legacy,
        "POST",
        REGISTRY,
        ResponseTemplate::new(200).set_body_string(r#"{"status":"OK"}"#),
    )
    .await;
    let gw = common::gateway_with(
        &format!(
            "mode = \"legacy\"\nuser_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n{TENANT}[rate_limits]\nreset_mail_per_email_per_hour = 1\npassword_per_user_per_hour = 1\n",
            legacy.uri()
        ),
        None,
    )
    .await;
    assert_eq!(reset_mail(&gw, "bob@example.test", None).await.status, 200);
    let r = reset_mail(&gw, "Bob@Example.test", None).await;
    assert_limited(&r, "registernewpassword");
    let r = change_password(&gw, "1001").await;
    assert_eq!(r.status, 200);
    let r = change_password(&gw, "1001").await;
    assert_limited(&r, "updatechangepassword");
    assert_eq!(received(&legacy).await.len(), 2);
    gw.shutdown().await;
}
