//! OpenTelemetry traces: the gateway binary exporting to a fake OTLP collector on loopback
//! (HTTP/protobuf, decoded with the opentelemetry-proto types). Spans and their parent links,
//! the propagated `traceparent`/`tracestate`, and no password or token in the exported
//! bytes. And off by default: the client's trace headers still reach v4 untouched.

mod common;

use std::collections::HashMap;

use common::binary::Binary;
use common::fakes::legacy_accepts;
use common::fakes::password_changes;
use common::{mount, received, v4, PASSWORD, TOKEN};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            AnyValue::IntValue(i) => Some(i.to_string()),
            other => Some(format!("{other:?}")),
        })
}

async fn put(url: &str, tenant: &str) -> u16 {
    common::put_as(url, "1001", tenant)
        .header("traceparent", format!("00-{TRACE_ID}-{CLIENT_SPAN}-01"))
        .header("tracestate", "vendor=abc")
        .body(json!({ "Password": PASSWORD }).to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn spans_parent_links_and_propagation_over_otlp() {
    let collector = MockServer::start().await;
    mount(&collector, "POST", "/v1/traces", ResponseTemplate::new(200)).await;
    let live = MockServer::start().await;
    let staging = MockServer::start().await;
    let legacy = MockServer::start().await;
    let ok = v4("S200_11", "Update password completed.", "Success");
    mount(
        &live,
        "PATCH",
        "/v4/Users/1001/Password",
        ResponseTemplate::new(200).set_body_json(ok.clone()),
    )
    .await;
    mount(
        &staging,
        "PATCH",
        "/v4/Users/1001/Password",
        ResponseTemplate::new(200).set_body_json(ok),
    )
    .await;
    legacy_accepts(&legacy, "1001", "x").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "orchestrator_url = \"{}\"\nuser_api_url = \"{l}\"\nregistry_api_url = \"{l}\"\n[[modes]]\nroute = \"user-api\"\ntenant = \"CB\"\nmode = \"shadow\"\n[shadow]\norchestrator_url = \"{}\"\n[shadow.routes.\"user-api\"]\nwrites = true\n",
            live.uri(),
            staging.uri(),
            l = legacy.uri()
        ),
    )
    .unwrap();
    let endpoint = collector.uri();
    let gw = Binary::serve()
        .config(&config)
        .envs(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "gateway-under-test"),
            ("OTEL_TRACES_SAMPLER_ARG", "1"),
        ])
        .start(dir.path())
        .await;
    assert_eq!(put(&gw.url(), "CA").await, 200, "translated");
    assert_eq!(put(&gw.url(), "CB").await, 200, "shadowed");
    // Until the copy has been compared, not only sent: the shadowed request's span stays
    // open while its copy's span (a child) is open, and a span still open at exit is never
    // exported. On a loaded machine the copy can finish well after staging received it.
    for _ in 0..500 {
        let text = reqwest::get(gw.admin("metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if !received(&staging).await.is_empty() && text.contains("result=\"compared\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // SIGTERM: the exporter flushes what is queued before the process exits.
    let (_, stderr) = gw.stop().await;
    assert!(
        !stderr.contains("flushing the last spans failed"),
        "{stderr}"
    );

    let mut spans: Vec<Span> = Vec::new();
    let mut raw = Vec::new();
    let mut services = Vec::new();
    for req in received(&collector).await {
        assert_eq!(req.headers["content-type"], "application/x-protobuf");
        raw.extend_from_slice(&req.body);
        let export = ExportTraceServiceRequest::decode(&req.body[..]).expect("OTLP protobuf");
        for rs in export.resource_spans {
            if let Some(r) = &rs.resource {
                for kv in &r.attributes {
                    if kv.key == "service.name" {
                        services.push(format!("{:?}", kv.value));
                    }
                }
            }
            for ss in rs.scope_spans {
                spans.extend(ss.spans);
            }
        }
    }
    assert!(
        services.iter().all(|s| s.contains("gateway-under-test")),
        "{services:?}"
    );
    let by_id: HashMap<String, &Span> = spans.iter().map(|s| (hex(&s.span_id), s)).collect();
    let named = |n: &str| spans.iter().filter(|s| s.name == n).collect::<Vec<_>>();
    let requests = named("request");
    assert_eq!(requests.len(), 2, "one span per request: {spans:#?}");
    for r in &requests {
        assert_eq!(hex(&r.trace_id), TRACE_ID, "the client's trace continues");
        assert_eq!(
            hex(&r.parent_span_id),
            CLIENT_SPAN,
            "child of the client's span"
        );
    }
    let tenant_of = |s: &Span| attr(s, "gateway.tenant").unwrap_or_default();
    let translated = requests
        .iter()
        .find(|r| tenant_of(r) == "ca")
        .expect("CA request");
    assert_eq!(
        attr(translated, "gateway.route").as_deref(),
        Some("user-api")
    );
    assert_eq!(
        attr(translated, "gateway.mode").as_deref(),
        Some("user-api")
    );
    // A password change's events: every {id} call of v4 starts with its GetById step
    // (mappings/user-api.toml), then the change itself.
    assert_eq!(
        attr(translated, "gateway.legacy_event").as_deref(),
        Some("GETUSERBYID, CHGPWD")
    );
    assert!(attr(translated, "gateway.v4_events")
        .unwrap()
        .contains("4609"));
    assert_eq!(
        attr(translated, "gateway.outcome").as_deref(),
        Some("applied")
    );
    assert_eq!(
        attr(translated, "http.response.status_code").as_deref(),
        Some("200")
    );
    let shadowed = requests
        .iter()
        .find(|r| tenant_of(r) == "cb")
        .expect("CB request");
    assert_eq!(
        attr(shadowed, "gateway.mode").as_deref(),
        Some("user-api.shadow")
    );

    // Child spans: the v4 call under the translated request, the legacy backend and the
    // shadow copy under the shadowed one, and the copy's own v4 call under the copy.
    let upstream_under = |parent: &Span| {
        spans
            .iter()
            .filter(|s| s.name == "upstream" && s.parent_span_id == parent.span_id)
            .collect::<Vec<_>>()
    };
    let v4_call = upstream_under(translated);
    assert_eq!(v4_call.len(), 1, "{spans:#?}");
    assert_eq!(
        attr(v4_call[0], "gateway.upstream.outcome").as_deref(),
        Some("200")
    );
    assert_eq!(upstream_under(shadowed).len(), 1, "the legacy backend call");
    let copy = named("shadow copy");
    assert_eq!(copy.len(), 1);
    assert_eq!(copy[0].parent_span_id, shadowed.span_id);
    assert_eq!(upstream_under(copy[0]).len(), 1, "the copy's v4 call");
    assert!(by_id.len() >= 6);

    // v4 received the gateway's span as parent, in the client's trace, with its tracestate.
    let sent = received(&live).await;
    assert_eq!(sent.len(), 1);
    let tp = sent[0].headers["traceparent"].to_str().unwrap().to_string();
    assert_eq!(tp, format!("00-{TRACE_ID}-{}-01", hex(&v4_call[0].span_id)));
    assert!(sent[0].headers["tracestate"]
        .to_str()
        .unwrap()
        .contains("vendor=abc"));
    let legacy_tp = received(&legacy).await[0].headers["traceparent"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(legacy_tp.contains(TRACE_ID) && !legacy_tp.contains(CLIENT_SPAN));

    // Nothing secret left the process.
    let bytes = String::from_utf8_lossy(&raw);
    assert!(!bytes.contains(PASSWORD), "password exported");
    assert!(
        !bytes.contains(TOKEN.trim_start_matches("Bearer ")),
        "token exported"
    );
}

#[tokio::test]
async fn off_by_default_the_client_trace_headers_reach_v4_untouched() {
    assert!(!legacy_gateway::telemetry::enabled());
    let live = MockServer::start().await;
    password_changes(&live, "1001").await;
    let gw = common::gateway(&live.uri()).await;
    assert_eq!(put(&gw.url(), "CA").await, 200);
    let sent = received(&live).await;
    assert_eq!(
        sent[0].headers["traceparent"],
        format!("00-{TRACE_ID}-{CLIENT_SPAN}-01").as_str()
    );
    assert_eq!(sent[0].headers["tracestate"], "vendor=abc");
}
