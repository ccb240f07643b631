//! A panic anywhere under the stack is caught and answered as a legacy-shaped 500 without
//! details, and the gateway keeps serving: the real tower stack, around a handler that
//! panics, served over real HTTP.

mod common;

use std::convert::Infallible;

use legacy_gateway::body::{full, Body};
use legacy_gateway::config::{Config, Overrides};
use legacy_gateway::gateway::Gateway;
use legacy_gateway::mapping::Mappings;
use legacy_gateway::metrics::Metrics;
use legacy_gateway::runtime::Runtime;
use serde_json::Value;

#[tokio::test]
async fn a_panicking_handler_gets_a_legacy_500_and_the_next_request_is_served() {
    let config =
        Config::from_toml("t.toml", "listen = \"127.0.0.1:0\"", &Overrides::default()).unwrap();
    let metrics = Metrics::new();
    let url = reqwest::Url::parse("http://127.0.0.1:9").unwrap();
    let rt = Runtime::new(
        config,
        Mappings::embedded().unwrap(),
        &url,
        false,
        metrics.clone(),
    )
    .await
    .unwrap();
    let gw = Gateway::new(rt, metrics, Overrides::default(), None);
    let inner = tower::service_fn(|req: http::Request<_>| async move {
        if req.uri().to_string().contains("panic") {
            panic!("handler exploded while holding password Hunter2x");
        }
        Ok::<_, Infallible>(http::Response::new(full("fine")) as http::Response<Body>)
    });
    let service = legacy_gateway::stack::build_with(gw.clone(), inner);
    let (listener, addr) = legacy_gateway::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    tokio::spawn(legacy_gateway::server::serve(
        listener,
        service,
        |_: &_| http::Response::new(full("busy")),
        Default::default(),
        std::future::pending(),
    ));

    let resp = common::client()
        .put(format!("http://{addr}/User/panic"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let text = resp.text().await.unwrap();
    assert!(
        !text.contains("Hunter2x") && !text.contains("exploded"),
        "{text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["Code"], 500);
    assert_eq!(v["Errors"][0]["Code"], "Gateway_E500_01");
    assert_eq!(v["Errors"][0]["Message"], "Internal error.");
    assert_eq!(v["Errors"][0]["ErrorSource"], "Gateway");

    // The action API's shape for the same failure: an ExceptionResponse.
    let resp = common::client()
        .post(format!(
            "http://{addr}/$dwo3rd-userregistry-api/profileserviceregistration?action=panic"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "error");
    assert_eq!(v["error"], "Exception was thrown");
    assert!(
        v["trace"].as_str().unwrap().starts_with("request id "),
        "{v}"
    );

    // The process and the connection pool survive.
    let resp = common::client()
        .get(format!("http://{addr}/User/fine"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "fine");
}
