//! v4 failing on the gateway's side of the call, over real HTTP: unreachable, too slow,
//! successes that are not envelopes, errors without an envelope, answers over the upstream
//! limit, and a fault in one part of a mixed body; each becomes a legacy-shaped answer
//! with the gateway as its source.

mod common;

use std::time::Duration;

use common::fakes::{password_changes, success};
use common::stopped_at_email;
use common::{dead_url, gateway, gateway_with, mount, put_user, received, PASSWORD};
use serde_json::{json, Value};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn service_unavailable() -> Value {
    json!({"Id": 8, "Code": "ServiceUnavailable"})
}

/// The legacy answer for a single-part call that failed on the gateway's side of v4.
fn gateway_fault(status: u16, code: &str, message: &str, request_id: &str) -> Value {
    let errors = json!([{
        "Message": message,
        "Code": code,
        "Type": service_unavailable(),
        "ErrorSource": "Gateway"
    }]);
    let result = json!({"CustomerRegistrationId": "1001", "Updated": false});
    common::legacy_answer(status, errors, result, request_id)
}

#[tokio::test]
async fn unreachable_v4_is_502() {
    let gw = gateway(&dead_url()).await;
    let a = put_user(&gw, "1001", json!({"Password": PASSWORD}).to_string()).await;
    a.assert_refused(502, "Gateway_E502_01", "dead upstream");
    assert_eq!(
        a.json,
        gateway_fault(
            502,
            "Gateway_E502_01",
            "The Users Orchestrator could not be reached.",
            &a.request_id()
        )
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn slow_v4_is_504() {
    let v4s = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            success("S200_11", "Update password completed.").set_delay(Duration::from_secs(2)),
        )
        .mount(&v4s)
        .await;
    let gw = gateway_with("[limits]\nupstream_timeout_ms = 300\n", Some(&v4s.uri())).await;
    let a = put_user(&gw, "1001", json!({"Password": PASSWORD}).to_string()).await;
    a.assert_refused(504, "Gateway_E504_01", "slow upstream");
    assert_eq!(
        a.json,
        gateway_fault(
            504,
            "Gateway_E504_01",
            "The Users Orchestrator did not answer in time.",
            &a.request_id()
        )
    );
    assert_eq!(received(&v4s).await.len(), 1, "no retry");
    gw.shutdown().await;
}

#[tokio::test]
async fn unusable_v4_successes_are_502() {
    let not_envelopes = [
        ResponseTemplate::new(200).set_body_string("<html>ok</html>"),
        ResponseTemplate::new(200),
        ResponseTemplate::new(200).set_body_json(json!({"ok": true})),
        ResponseTemplate::new(200).set_body_json(json!({"message": "done"})),
        ResponseTemplate::new(200).set_body_json(json!({"message": {"text": "no code"}})),
        ResponseTemplate::new(200).set_body_json(json!({"message": {"code": 200}})),
        ResponseTemplate::new(200).set_body_json(json!([1, 2])),
    ];
    for (i, answer) in not_envelopes.into_iter().enumerate() {
        let v4s = MockServer::start().await;
        Mock::given(any()).respond_with(answer).mount(&v4s).await;
        let gw = gateway(&v4s.uri()).await;
        let a = put_user(&gw, "1001", json!({"Password": PASSWORD}).to_string()).await;
        a.assert_refused(502, "Gateway_E502_02", &format!("case {i}"));
        assert_eq!(
            a.json,
            gateway_fault(
                502,
                "Gateway_E502_02",
                "The Users Orchestrator answered with an invalid response.",
                &a.request_id()
            ),
            "case {i}"
        );
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn v4_errors_without_an_envelope_keep_their_status() {
    let cases = [
        (
            503,
            ResponseTemplate::new(503),
            "E503",
            "Service Unavailable",
            service_unavailable(),
        ),
        (
            503,
            ResponseTemplate::new(503).set_body_raw("<html><body>down</body></html>", "text/html"),
            "E503",
            "Service Unavailable",
            service_unavailable(),
        ),
        (
            502,
            ResponseTemplate::new(502).set_body_raw("<html>bad gateway</html>", "text/html"),
            "E502",
            "Bad Gateway",
            service_unavailable(),
        ),
        (
            401,
            ResponseTemplate::new(401),
            "E401",
            "Unauthorized",
            json!({"Id": 6, "Code": "NotAuthorized"}),
        ),
    ];
    for (status, answer, code, message, ty) in cases {
        let v4s = MockServer::start().await;
        Mock::given(any()).respond_with(answer).mount(&v4s).await;
        let gw = gateway(&v4s.uri()).await;
        let a = put_user(&gw, "1001", json!({"Password": PASSWORD}).to_string()).await;
        a.assert_legacy(
            status,
            json!([{
                "Message": message,
                "Code": code,
                "Type": ty,
                "ErrorSource": "UsersOrchestrator"
            }]),
            json!({"CustomerRegistrationId": "1001", "Updated": false}),
            code,
        );
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn v4_answer_over_the_upstream_limit_is_502() {
    let padding = "x".repeat(2000);
    for status in [200, 400] {
        let v4s = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({
                "message": {"code": "UsersOrchestrator_S200_11", "text": "Update password completed.", "type": "Success"},
                "meta": null,
                "data": {"padding": padding}
            })))
            .mount(&v4s)
            .await;
        let gw = gateway_with("[limits]\nupstream_body_bytes = 512\n", Some(&v4s.uri())).await;
        let a = put_user(&gw, "1001", json!({"Password": PASSWORD}).to_string()).await;
        a.assert_refused(502, "Gateway_E502_02", &format!("v4 {status}"));
        assert_eq!(
            a.message(),
            "The Users Orchestrator answered with a response that is too large."
        );
        assert_eq!(a.json["Errors"][0]["Type"], service_unavailable());
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn an_upstream_fault_in_a_mixed_body_names_its_part() {
    let v4s = MockServer::start().await;
    mount(
        &v4s,
        "PUT",
        "/v4/Users/1001/",
        success("S200_10", "Update user completed."),
    )
    .await;
    mount(
        &v4s,
        "PATCH",
        "/v4/Users/1001/Email",
        ResponseTemplate::new(200).set_body_string("not json"),
    )
    .await;
    password_changes(&v4s, "1001").await;
    let gw = gateway(&v4s.uri()).await;
    let a = put_user(
        &gw,
        "1001",
        json!({"FirstName": "Ann", "Email": "ann@example.test", "Password": PASSWORD}).to_string(),
    )
    .await;
    a.assert_legacy(
        502,
        json!([{
            "Message": "The Users Orchestrator answered with an invalid response.",
            "Code": "Gateway_E502_02",
            "Type": service_unavailable(),
            "ErrorSource": "Gateway",
            "Part": "Email"
        }]),
        stopped_at_email(),
        "the e-mail part answered with no JSON",
    );
    assert_eq!(received(&v4s).await.len(), 2);
    gw.shutdown().await;
}
