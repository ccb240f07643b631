//! The fake upstreams: wiremock servers on loopback that answer the v4 routes of the contract
//! (SPEC 1.1) as the orchestrator does, and record what they received. Suites that must see
//! one particular answer mount it themselves with [`mount`]; the answers many suites share
//! live here so that they say the same thing everywhere.

use serde_json::Value;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A v4 envelope as the orchestrator writes it.
pub fn v4(code: &str, text: &str, ty: &str) -> Value {
    serde_json::json!({"message": {"code": format!("UsersOrchestrator_{code}"), "text": text, "type": ty}, "meta": null})
}

/// 200 with the success envelope `code`/`text`.
pub fn success(code: &str, text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(v4(code, text, "Success"))
}

/// A fake upstream answers `template` to `method path` (the mount every test repeats).
pub async fn mount(server: &MockServer, method: &str, path: &str, template: ResponseTemplate) {
    Mock::given(wiremock::matchers::method(method))
        .and(wiremock::matchers::path(path))
        .respond_with(template)
        .mount(server)
        .await;
}

/// A fake upstream answers `template` to every `method` request, whatever the path.
pub async fn mount_method(server: &MockServer, method: &str, template: ResponseTemplate) {
    Mock::given(wiremock::matchers::method(method))
        .respond_with(template)
        .mount(server)
        .await;
}

/// `method path` answers success `code` (text "ok"): for suites that only need v4 to say yes.
pub async fn ok_on(server: &MockServer, method: &str, path: &str, code: &str) {
    mount(server, method, path, success(code, "ok")).await;
}

/// `PATCH /v4/Users/{id}/Password` succeeds, in v4's own words (S200_11).
pub async fn password_changes(server: &MockServer, id: &str) {
    mount(
        server,
        "PATCH",
        &format!("/v4/Users/{id}/Password"),
        success("S200_11", "Update password completed."),
    )
    .await;
}

/// A fake v4 that accepts anything (S200_11), so a refusal that leaks through shows up as a
/// received request rather than as a failure of the mock.
pub async fn accepting_anything() -> MockServer {
    let v4s = MockServer::start().await;
    Mock::given(any())
        .respond_with(success("S200_11", "Update password completed."))
        .mount(&v4s)
        .await;
    v4s
}

/// The legacy User API's success answer for `id`, with the backend's own `request_id` (which
/// tells a test that the answer came from the legacy backend).
pub fn legacy_updated(id: &str, request_id: &str) -> Value {
    serde_json::json!({"Code": 0, "Errors": [], "Result": {"CustomerRegistrationId": id, "Updated": true}, "SessionId": null, "RequestId": request_id})
}

/// A fake legacy backend accepts `PUT /User/{id}`, answering [`legacy_updated`].
pub async fn legacy_accepts(server: &MockServer, id: &str, request_id: &str) {
    mount(
        server,
        "PUT",
        &format!("/User/{id}"),
        ResponseTemplate::new(200).set_body_json(legacy_updated(id, request_id)),
    )
    .await;
}

/// What a fake upstream received, in order.
pub async fn received(server: &MockServer) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .expect("request recording is on")
}

/// The paths `server` received, in order.
pub async fn received_paths(server: &MockServer) -> Vec<String> {
    received(server)
        .await
        .iter()
        .map(|r| r.url.path().to_string())
        .collect()
}

/// A loopback address with nothing listening on it.
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}
