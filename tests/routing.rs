//! Routing as legacy clients send it: tenant hosts with ports, a percent-encoded
//! `$` in the action API's path, duplicate tenant headers, and the strangler fallback.

mod common;

use common::fakes::success;
use common::put_request;
use common::{client, received, send, user_api_headers, PASSWORD, REGISTRY};
use common::{mount, mount_method};
use serde_json::{json, Value};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn tenant(host: &str, client_code: &str) -> String {
    format!(
        "[[tenants]]\nhost = \"{host}\"\nsource_system = \"s\"\nclient_code = \"{client_code}\"\npaper_code = \"P\"\nclient_group_code = \"G\"\nreturn_url = \"https://{host}/reset\"\n"
    )
}

fn jwt(claims: Value) -> String {
    common::jwt::hs256(&claims, b"unverified")
}

async fn accepting_v4() -> MockServer {
    let v4s = MockServer::start().await;
    mount_method(&v4s, "PATCH", success("S200_11", "ok")).await;
    v4s
}

/// `updatechangepassword` on `path` with `host`: status and answer.
async fn change_password(gw: &legacy_gateway::Running, path: &str, host: &str) -> (u16, Value) {
    let resp = client()
        .post(format!("{}{path}?action=updatechangepassword", gw.url()))
        .header("Host", host)
        .header("Authorization", jwt(json!({"sub": "1001"})))
        .body(json!({"oldpassword": "Old-Passw0rd", "password": PASSWORD}).to_string())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn client_codes(reqs: &[wiremock::Request]) -> Vec<String> {
    reqs.iter()
        .map(|r| r.headers["x-clientcode"].to_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_tenant_host_with_a_port_matches_that_port_and_one_without_matches_any() {
    let v4s = accepting_v4().await;
    let cfg = format!(
        "{}{}{}",
        tenant("paper.test:8443", "WITHPORT"),
        tenant("paper.test", "ANYPORT"),
        tenant("only-port.test:8443", "ONLYPORT")
    );
    let gw = common::gateway_with(&cfg, Some(&v4s.uri())).await;
    for host in [
        "paper.test:8443",
        "PAPER.test:8443",
        "paper.test:9000",
        "paper.test",
        "only-port.test:8443",
    ] {
        let (s, a) = change_password(&gw, REGISTRY, host).await;
        assert_eq!((s, &a["status"]), (200, &json!("OK")), "{host}: {a}");
    }
    assert_eq!(
        client_codes(&received(&v4s).await),
        ["WITHPORT", "WITHPORT", "ANYPORT", "ANYPORT", "ONLYPORT"]
    );
    // A tenant with a port does not match another port, nor no port.
    for host in ["only-port.test:9000", "only-port.test"] {
        let (s, a) = change_password(&gw, REGISTRY, host).await;
        assert_eq!((s, &a["error"]), (404, &json!("Unknown tenant")), "{host}");
    }
    assert_eq!(received(&v4s).await.len(), 5, "nothing more forwarded");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_percent_encoded_dollar_reaches_the_action_api() {
    let v4s = accepting_v4().await;
    let gw = common::gateway_with(&tenant("paper.test", "CA"), Some(&v4s.uri())).await;
    let encoded = REGISTRY.replace('$', "%24");
    let (s, a) = change_password(&gw, &encoded, "paper.test").await;
    assert_eq!(
        (s, a),
        (
            200,
            json!({"status": "OK", "action": "updatechangepassword"})
        )
    );
    let reqs = received(&v4s).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].url.path(), "/v4/Users/1001/Password");
    // Below the encoded path, errors are in the registry's shape too.
    let resp = client()
        .post(format!("{}{encoded}/nope", gw.url()))
        .header("Host", "paper.test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "error", "{v}");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_tenant_header_sent_twice_is_refused_by_name_in_every_mode() {
    let v4s = accepting_v4().await;
    let legacy = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&legacy)
        .await;
    for mode in ["translate", "legacy", "shadow"] {
        let gw = common::gateway_with(
            &format!(
                "mode = \"{mode}\"\nuser_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n",
                legacy.uri()
            ),
            Some(&v4s.uri()),
        )
        .await;
        for name in [
            "X-ClientCode",
            "X-PaperCode",
            "X-SourceSystem",
            "X-ClientGroupCode",
        ] {
            let mut headers = user_api_headers();
            headers.append(name, "OTHER".parse().unwrap());
            let a = send(
                client()
                    .put(format!("{}/User/1001", gw.url()))
                    .headers(headers)
                    .body(json!({"Password": PASSWORD}).to_string()),
            )
            .await;
            a.assert_refused(400, "Gateway_E400_13", name);
            assert!(a.message().contains(name), "{mode}: {}", a.text);
        }
        // The action API's tenant is its Host.
        let resp = client()
            .post(format!(
                "{}{REGISTRY}?action=updatechangepassword",
                gw.url()
            ))
            .header("Host", "a.test")
            .header("Authorization", jwt(json!({"sub": "1001"})))
            .body("{}")
            .build()
            .unwrap();
        let mut resp = resp;
        resp.headers_mut().append("Host", "b.test".parse().unwrap());
        let resp = client().execute(resp).await.unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{mode}: {body}");
        assert_eq!(body["status"], "validationfailed", "{mode}: {body}");
        assert!(body.to_string().contains("Host"), "{body}");
        gw.shutdown().await;
    }
    assert!(received(&v4s).await.is_empty());
    assert!(received(&legacy).await.is_empty());
}

#[tokio::test]
async fn untranslated_calls_go_to_the_legacy_backend_in_translate_mode() {
    let v4s = accepting_v4().await;
    let legacy = MockServer::start().await;
    mount(
        &legacy,
        "DELETE",
        "/User/1001",
        ResponseTemplate::new(204).insert_header("X-Legacy", "yes"),
    )
    .await;
    mount(
        &legacy,
        "POST",
        REGISTRY,
        ResponseTemplate::new(200).set_body_string(r#"{"status":"OK","action":"nosuch"}"#),
    )
    .await;
    let gw = common::gateway_with(
        &format!(
            "user_api_url = \"{1}\"\nregistry_api_url = \"{1}\"\n{0}",
            tenant("paper.test", "CA"),
            legacy.uri()
        ),
        Some(&v4s.uri()),
    )
    .await;
    let resp = client()
        .delete(format!("{}/User/1001", gw.url()))
        .headers(user_api_headers())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["x-legacy"], "yes");
    let resp = client()
        .post(format!("{}{REGISTRY}?action=nosuch", gw.url()))
        .header("Host", "paper.test")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"status":"OK","action":"nosuch"}"#
    );
    // The translated ones still go to v4.
    let (s, _) = change_password(&gw, REGISTRY, "paper.test").await;
    assert_eq!(s, 200);
    let r =
        send(put_request(&gw.url(), "1001").body(json!({"Password": PASSWORD}).to_string())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(received(&legacy).await.len(), 2);
    assert_eq!(received(&v4s).await.len(), 2);
    gw.shutdown().await;
}
