//! Test harness: start the real gateway on 127.0.0.1:0 in front of a real fake upstream
//! (wiremock, also on loopback) and talk to it over HTTP. `tests/README.md` says how the parts
//! fit together.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code, unused_imports)]

pub mod binary;
pub mod fakes;
pub mod jwt;
pub mod replay;
pub mod secret_forms;

pub use fakes::{dead_url, mount, mount_method, received, received_paths, v4};

use legacy_gateway::config::{Config, Overrides};
use legacy_gateway::mapping::Mappings;
use legacy_gateway::Running;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

pub const TOKEN: &str = "Bearer tok-9f8e7d6c5b4a";
pub const PASSWORD: &str = "S3cretPassw0rd";
/// The action API's path (the user-registry clients' `$` included).
pub const REGISTRY: &str = "/$dwo3rd-userregistry-api/profileserviceregistration";
/// One action-API tenant, chosen by the `Host` header `paper-a.test`.
pub const REGISTRY_TENANT: &str = r#"
[[tenants]]
host = "paper-a.test"
source_system = "dwo3rd-userregistry"
client_code = "CA"
paper_code = "PA"
client_group_code = "GA"
return_url = "https://paper-a.test/reset-password"
"#;

/// The gateway with `extra` TOML configuration, pointed at `orchestrator` (None: sandbox).
pub async fn gateway_with(extra: &str, orchestrator: Option<&str>) -> Running {
    let mappings = Mappings::embedded().expect("mappings");
    try_gateway_with(extra, orchestrator, mappings)
        .await
        .expect("gateway starts")
}

/// [`gateway_with`] with its own `mappings`, or why it did not start. Both listeners are on
/// free loopback ports, so `extra` must not set them.
pub async fn try_gateway_with(
    extra: &str,
    orchestrator: Option<&str>,
    mappings: Mappings,
) -> Result<Running, String> {
    let text = format!("listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n{extra}");
    let overrides = Overrides {
        orchestrator: orchestrator.map(str::to_string),
        ..Overrides::default()
    };
    let config = Config::from_toml("test.toml", &text, &overrides).expect("test config");
    legacy_gateway::start(config, mappings, std::future::pending())
        .await
        .map_err(|e| e.to_string())
}

/// The gateway from a configuration file, as `serve --config FILE` reads it (so that a reload
/// reads it again). The admin listener is put on a free port, as `--admin-listen` would: its
/// default port can be taken only once, and suites run in parallel.
pub async fn gateway_from_file(file: &std::path::Path) -> Running {
    let overrides = Overrides {
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Overrides::default()
    };
    let config = Config::load(Some(file), &overrides).expect("config");
    legacy_gateway::start(
        config,
        Mappings::embedded().unwrap(),
        std::future::pending(),
    )
    .await
    .expect("gateway starts")
}

pub async fn gateway(orchestrator: &str) -> Running {
    gateway_with("", Some(orchestrator)).await
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// The five headers every User API call must carry.
pub fn user_api_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("Authorization", HeaderValue::from_static(TOKEN));
    h.insert(
        "X-SourceSystem",
        HeaderValue::from_static("legacy-user-api"),
    );
    h.insert("X-ClientCode", HeaderValue::from_static("CA"));
    h.insert("X-PaperCode", HeaderValue::from_static("PA"));
    h.insert("X-ClientGroupCode", HeaderValue::from_static("GA"));
    h
}

/// `http://ADMIN/_gateway/{path}`: the operator endpoints answer only on the admin listener.
pub fn admin(gw: &Running, path: &str) -> String {
    format!("{}/_gateway/{path}", gw.admin_url())
}

/// The Prometheus text of `GET /_gateway/metrics` (admin listener).
pub async fn metrics_text(gw: &Running) -> String {
    metrics_text_at(&gw.admin_url()).await
}

/// The Prometheus text of `GET /_gateway/metrics` of the admin listener at `url`.
pub async fn metrics_text_at(url: &str) -> String {
    get_text(format!("{url}/_gateway/metrics")).await
}

/// `GET url`, answered with any text.
pub async fn get_text(url: String) -> String {
    client()
        .get(url)
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("a body")
}

/// `PUT {base}/User/{id_path}` with the five mandatory headers, to be completed (body, more
/// headers, a timeout) and sent by the caller.
pub fn put_request(base: &str, id_path: &str) -> reqwest::RequestBuilder {
    client()
        .put(format!("{base}/User/{id_path}"))
        .headers(user_api_headers())
}

/// [`put_request`] from tenant `client_code` (its `X-ClientCode`; the other headers as usual).
pub fn put_as(base: &str, id_path: &str, client_code: &str) -> reqwest::RequestBuilder {
    let mut h = user_api_headers();
    h.insert(
        "X-ClientCode",
        HeaderValue::from_str(client_code).expect("a header value"),
    );
    client().put(format!("{base}/User/{id_path}")).headers(h)
}

/// `PUT /User/{id_path}` with the mandatory headers and a JSON `body`; the answer must be JSON.
pub async fn put_user(gw: &Running, id_path: &str, body: impl Into<reqwest::Body>) -> Answer {
    send(
        put_request(&gw.url(), id_path)
            .header("Content-Type", "application/json")
            .body(body),
    )
    .await
}

/// One answer of the gateway, as received.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Answer {
    pub fn request_id(&self) -> String {
        self.headers
            .get("x-request-id")
            .expect("every answer carries x-request-id")
            .to_str()
            .unwrap()
            .to_string()
    }

    pub fn message(&self) -> &str {
        self.json["Errors"][0]["Message"].as_str().unwrap_or("")
    }

    /// The whole answer: `status`, and exactly the legacy envelope with `errors` and `result`.
    pub fn assert_legacy(&self, status: u16, errors: Value, result: Value, what: &str) {
        assert_eq!(self.status, status, "{what}: {}", self.text);
        let code = if status < 300 { 0 } else { status };
        let want = legacy_answer(code, errors, result, &self.request_id());
        assert_eq!(self.json, want, "{what}");
    }

    /// A refusal by the gateway itself: status, one Errors entry with `code` from the
    /// gateway, nothing updated, the request id echoed.
    pub fn assert_refused(&self, status: u16, code: &str, what: &str) {
        assert_eq!(self.status, status, "{what}: {}", self.text);
        assert_eq!(self.json["Code"], status, "{what}: {}", self.text);
        let errors = self.json["Errors"].as_array().expect("Errors is an array");
        assert_eq!(errors.len(), 1, "{what}: {}", self.text);
        assert_eq!(errors[0]["Code"], code, "{what}: {}", self.text);
        assert_eq!(errors[0]["ErrorSource"], "Gateway", "{what}: {}", self.text);
        assert_eq!(
            self.json["Result"]["Updated"], false,
            "{what}: {}",
            self.text
        );
        assert_eq!(self.json["SessionId"], Value::Null, "{what}");
        assert_eq!(self.json["RequestId"], self.request_id(), "{what}");
    }
}

/// The legacy envelope: `Code` (0 for a success, the status otherwise), `Errors`, `Result`,
/// no session, and the request id the gateway gave the call.
pub fn legacy_answer(code: u16, errors: Value, result: Value, request_id: &str) -> Value {
    serde_json::json!({
        "Code": code,
        "Errors": errors,
        "Result": result,
        "SessionId": null,
        "RequestId": request_id,
    })
}

/// The `Result` of user 1001's body of a profile, an e-mail and a password whose e-mail part
/// failed: the parts run in that order, so the profile was applied and the password never sent.
pub fn stopped_at_email() -> Value {
    serde_json::json!({
        "CustomerRegistrationId": "1001",
        "Updated": false,
        "Applied": ["Profile"],
        "NotAttempted": ["Password"]
    })
}

/// `GET url`, answered with JSON.
pub async fn get_json(url: String) -> Value {
    client()
        .get(url)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("a JSON answer")
}

/// The shadow report (`GET /_gateway/shadow`, admin listener) as JSON.
pub async fn shadow_report(gw: &Running) -> Value {
    get_json(admin(gw, "shadow")).await
}

/// The shadow report's User API row once `done` holds for it. Copies are compared off the
/// request path, so the report is polled; the bound is a hang guard, not a timing assertion.
pub async fn user_api_row_when(gw: &Running, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..250 {
        let r = shadow_report(gw).await;
        if let Some(row) = r["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|x| x["route"] == "user-api"))
        {
            if done(row) {
                return row.clone();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!(
        "the shadow report never reached the expected state: {}",
        shadow_report(gw).await
    );
}

/// Sends a request and reads the answer, which must be JSON.
pub async fn send(req: reqwest::RequestBuilder) -> Answer {
    let resp = req.send().await.expect("the gateway answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("a body");
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text:?}"));
    Answer {
        status,
        headers,
        text,
        json,
    }
}
