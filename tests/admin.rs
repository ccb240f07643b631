//! The admin listener: the operator endpoints answer only on their own
//! address, behind an optional bearer token; the client listener keeps the two probes and
//! answers the rest of `/_gateway/` as any unknown path, never forwarding it. Liveness and
//! readiness with v4 up, down and the sandbox, and what the metrics count after traffic.

mod common;

use common::fakes::accepting_anything;
use common::{
    admin, client, dead_url, gateway, gateway_with, put_user, received, send, PASSWORD, TOKEN,
};
use serde_json::{json, Value};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

const MOVED: [(&str, &str); 7] = [
    ("GET", "metrics"),
    ("GET", "shadow"),
    ("POST", "reload"),
    ("POST", "events/to-v4"),
    ("POST", "events/to-legacy"),
    ("GET", "openapi/user-api.json"),
    ("GET", "sandbox/outbox"),
];

async fn legacy_backend() -> MockServer {
    let s = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("legacy"))
        .mount(&s)
        .await;
    s
}

#[tokio::test]
async fn operator_endpoints_answer_only_on_the_admin_listener() {
    // A legacy backend is configured: unknown paths go there, the moved ones must not.
    let legacy = legacy_backend().await;
    let gw = gateway_with(
        &format!(
            "user_api_url = \"{0}\"\nregistry_api_url = \"{0}\"\n",
            legacy.uri()
        ),
        None,
    )
    .await;
    assert_ne!(gw.addr, gw.admin_addr);
    for (method, path) in MOVED {
        let a = send(client().request(
            method.parse().unwrap(),
            format!("{}/_gateway/{path}", gw.url()),
        ))
        .await;
        a.assert_refused(404, "Gateway_E404_01", path);
        let on_admin = client()
            .request(method.parse().unwrap(), admin(&gw, path))
            .send()
            .await
            .unwrap();
        assert_ne!(
            on_admin.status(),
            404,
            "{method} {path} on the admin listener"
        );
    }
    assert!(
        received(&legacy).await.is_empty(),
        "a /_gateway/ path reached the legacy backend"
    );
    for probe in ["healthz", "readyz"] {
        for base in [gw.url(), gw.admin_url()] {
            let resp = client()
                .get(format!("{base}/_gateway/{probe}"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{probe} on {base}");
        }
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn the_admin_token_is_required_except_for_probes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin-token");
    std::fs::write(&file, "s3cr3t-admin-token\n").unwrap();
    let gw = gateway_with(&format!("admin_token_file = {:?}\n", file), None).await;
    let metrics = admin(&gw, "metrics");
    let none = client().get(&metrics).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    for wrong in [
        "Bearer s3cr3t-admin-toke",
        "Bearer s3cr3t-admin-token-",
        "Basic s3cr3t-admin-token",
    ] {
        let r = client()
            .get(&metrics)
            .header("Authorization", wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{wrong}");
        assert!(!r.text().await.unwrap().contains("s3cr3t"));
    }
    let ok = client()
        .get(&metrics)
        .header("Authorization", "Bearer s3cr3t-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // A reload is an admin call too.
    let reload = client().post(admin(&gw, "reload")).send().await.unwrap();
    assert_eq!(reload.status(), 401);
    for probe in ["healthz", "readyz"] {
        let r = client().get(admin(&gw, probe)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{probe} needs no token");
    }
    gw.shutdown().await;
}

/// `readyz` on the client port, as a load balancer probes it.
async fn readyz(gw: &legacy_gateway::Running) -> (u16, Value) {
    let r = client()
        .get(format!("{}/_gateway/readyz", gw.url()))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Readiness says whether this instance can serve. Upstream outages are reported (body and
/// `gateway_upstream_up`) but fail readiness only with `readyz_requires_upstreams`: every pod
/// shares the upstreams, so one outage would otherwise empty the whole load balancer.
#[tokio::test]
async fn readiness_reports_upstreams_and_fails_on_them_only_when_asked() {
    let legacy = legacy_backend().await;
    let cfg = |backend: &str, extra: &str| {
        format!(
            "mode = \"legacy\"\nuser_api_url = \"{backend}\"\nregistry_api_url = \"{backend}\"\n{extra}"
        )
    };
    // Every upstream down: still ready, and the body says what is down.
    let dead = dead_url();
    let gw = gateway_with(&cfg(&dead, ""), Some(&dead)).await;
    let (status, v) = readyz(&gw).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "ready");
    assert_eq!(v["readyz_requires_upstreams"], false);
    for name in ["orchestrator", "user_api", "registry_api"] {
        // Named by role: the probes answer clients too, who need no backend addresses.
        assert_eq!(
            v["upstreams"][name],
            json!({"reachable": false}),
            "{name}: {v}"
        );
    }
    assert!(!v.to_string().contains(&dead), "{v}");
    let m = common::metrics_text(&gw).await;
    for name in ["orchestrator", "user_api", "registry_api"] {
        assert!(
            m.contains(&format!("gateway_upstream_up{{upstream=\"{name}\"}} 0")),
            "{name}: {m}"
        );
    }
    gw.shutdown().await;

    // Asked for: legacy mode everywhere needs the legacy backend, not v4.
    let strict = "readyz_requires_upstreams = true\n";
    let gw = gateway_with(&cfg(&legacy.uri(), strict), Some(&dead_url())).await;
    let (status, v) = readyz(&gw).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["upstreams"]["user_api"]["reachable"], true, "{v}");
    assert_eq!(v["upstreams"]["orchestrator"]["reachable"], false, "{v}");
    let m = common::metrics_text(&gw).await;
    assert!(
        m.contains("gateway_upstream_up{upstream=\"user_api\"} 1"),
        "{m}"
    );
    gw.shutdown().await;

    // The legacy backend down: not ready, saying why.
    let up = legacy_backend().await;
    let gw = gateway_with(&cfg(&dead_url(), strict), Some(&up.uri())).await;
    let (status, v) = readyz(&gw).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["status"], "not ready");
    assert_eq!(
        v["reasons"],
        json!(["user_api unreachable", "registry_api unreachable"])
    );
    gw.shutdown().await;

    // One route translating: v4 is needed again.
    let gw = gateway_with(
        &cfg(
            &legacy.uri(),
            &format!("{strict}[[modes]]\nroute = \"user-api\"\nmode = \"translate\"\n"),
        ),
        Some(&dead_url()),
    )
    .await;
    let (status, v) = readyz(&gw).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["reasons"], json!(["orchestrator unreachable"]));
    gw.shutdown().await;
}

/// The sandbox is named wherever an operator looks: `readyz`, `gateway_sandbox_active`.
/// Off loopback it starts only when asked for (`sandbox = true`); this test binds 0.0.0.0
/// on a free port for that and talks to it on 127.0.0.1 only.
#[tokio::test]
async fn the_sandbox_is_named_and_served_off_loopback_only_on_purpose() {
    use legacy_gateway::config::{Config, Overrides};
    let public = "listen = \"0.0.0.0:0\"\nadmin_listen = \"127.0.0.1:0\"\n";
    let e = Config::from_toml("t.toml", public, &Overrides::default()).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (1, "listen"), "{e}");
    assert!(
        e.message.contains("--orchestrator") && e.message.contains("--sandbox"),
        "{e}"
    );

    let config = Config::from_toml(
        "t.toml",
        &format!("{public}sandbox = true\n"),
        &Overrides::default(),
    )
    .unwrap();
    let mappings = legacy_gateway::mapping::Mappings::embedded().unwrap();
    let gw = legacy_gateway::start(config, mappings, std::future::pending())
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}", gw.addr.port());
    let v: Value = client()
        .get(format!("{url}/_gateway/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "ready", "{v}");
    assert_eq!(v["sandbox"], true, "{v}");
    assert_eq!(
        v["upstreams"]["orchestrator"]["embedded_sandbox"], true,
        "{v}"
    );
    let m = common::metrics_text(&gw).await;
    assert!(m.contains("gateway_sandbox_active 1\n"), "{m}");
    gw.shutdown().await;

    let v4s = accepting_anything().await;
    let gw = gateway(&v4s.uri()).await;
    let m = common::metrics_text(&gw).await;
    assert!(m.contains("gateway_sandbox_active 0\n"), "{m}");
    let (_, v) = readyz(&gw).await;
    assert_eq!(v["sandbox"], false, "{v}");
    assert!(
        v["upstreams"]["orchestrator"]
            .get("embedded_sandbox")
            .is_none(),
        "{v}"
    );
    gw.shutdown().await;
}

/// Item 14: the metrics say what format they are in, and a real OpenMetrics parser reads
/// the counters as counters (under `text/plain; version=0.0.4` a Prometheus server reads
/// `gateway_requests_total` as untyped, since its `# TYPE` line names `gateway_requests`).
#[tokio::test]
async fn metrics_are_openmetrics_and_counters_parse_as_counters() {
    let gw = gateway_with("", None).await;
    // One translated call on the sandbox: requests, upstream calls and audit events counted.
    let a = common::put_user(&gw, "1001", r#"{"FirstName":"Al"}"#).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let resp = client().get(admin(&gw, "metrics")).send().await.unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&without_empty_families(&text))
        .unwrap_or_else(|e| panic!("not OpenMetrics ({e:?}): {text}"));
    let family = parsed
        .families
        .get("gateway_requests")
        .unwrap_or_else(|| panic!("no gateway_requests family: {text}"));
    assert_eq!(
        family.family_type,
        openmetrics_parser::OpenMetricsType::Counter
    );
    assert!(family.iter_samples().count() >= 1, "{text}");
    assert_eq!(
        parsed.families["gateway_audit_events"].family_type,
        openmetrics_parser::OpenMetricsType::Counter
    );
    gw.shutdown().await;
}

/// The exposition without the metadata of families that have no sample yet. OpenMetrics
/// allows such families, but openmetrics-parser 0.5 mistakes the next family's lines for
/// theirs; every family with samples is kept exactly as served.
fn without_empty_families(text: &str) -> String {
    let mut out = String::new();
    let mut block: Vec<&str> = Vec::new();
    let flush = |block: &mut Vec<&str>, out: &mut String| {
        if block.iter().any(|l| !l.starts_with('#')) {
            for l in block.iter() {
                out.push_str(l);
                out.push('\n');
            }
        }
        block.clear();
    };
    for line in text.lines() {
        if line.starts_with("# HELP ") || line == "# EOF" {
            flush(&mut block, &mut out);
        }
        if line == "# EOF" {
            out.push_str("# EOF\n");
        } else {
            block.push(line);
        }
    }
    out
}

async fn get(url: String) -> (u16, String) {
    let resp = client().get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

#[tokio::test]
async fn health_and_readiness() {
    let v4s = accepting_anything().await;
    let gw = gateway(&v4s.uri()).await;
    let (s, body) = get(common::admin(&gw, "healthz")).await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"status": "ok"})
    );
    let (s, body) = get(format!("{}/_gateway/readyz", gw.url())).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({
            "status": "ready",
            "sandbox": false,
            "draining": false,
            "readyz_requires_upstreams": false,
            "upstreams": {"orchestrator": {"reachable": true}},
        })
    );
    gw.shutdown().await;

    // v4 down: alive, and still ready (it can answer the legacy 502), the outage reported.
    let gw = gateway(&dead_url()).await;
    let (s, body) = get(common::admin(&gw, "healthz")).await;
    assert_eq!(s, 200, "liveness does not depend on v4");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"status": "ok"})
    );
    let (s, body) = get(format!("{}/_gateway/readyz", gw.url())).await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["upstreams"]["orchestrator"]["reachable"], false, "{v}");
    gw.shutdown().await;

    let gw = gateway_with("", None).await;
    let (s, body) = get(format!("{}/_gateway/readyz", gw.url())).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["sandbox"],
        true
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn metrics_count_requests_upstream_calls_and_audit_events() {
    let v4s = accepting_anything().await;
    let gw = gateway(&v4s.uri()).await;
    let a = put_user(&gw, "1001", json!({"Password": PASSWORD}).to_string()).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = put_user(&gw, "1001", "{}").await;
    assert_eq!(a.status, 400, "{}", a.text);

    let resp = client()
        .get(common::admin(&gw, "metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // prometheus-client writes OpenMetrics text (ending in `# EOF`): said so, not text/plain.
    assert_eq!(
        resp.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let has = |pred: &dyn Fn(&str) -> bool| lines.iter().any(|l| pred(l));

    assert!(
        lines.contains(&r#"gateway_requests_total{route="user-api",status="200",tenant="other",mode="translate"} 1"#),
        "{text}"
    );
    assert!(
        lines.contains(&r#"gateway_requests_total{route="user-api",status="400",tenant="other",mode="translate"} 1"#),
        "{text}"
    );
    assert!(
        has(
            &|l| l.starts_with("gateway_upstream_duration_seconds_count{")
                && l.contains(r#"outcome="200""#)
                && l.ends_with(" 1")
        ),
        "{text}"
    );
    // Nothing in flight: the gauge went back down after each call, and the metrics request
    // itself is on the admin listener, which client metrics do not count.
    assert!(lines.contains(&"gateway_in_flight_requests 0"), "{text}");
    assert!(
        has(&|l| l.starts_with("gateway_audit_events_total{")
            && l.contains(r#"legacy_event="CHGPWD""#)
            && l.contains("4609")
            && l.contains("4010")
            && l.contains(r#"outcome="applied""#)
            && l.ends_with(" 1")),
        "{text}"
    );
    assert!(!text.contains(PASSWORD) && !text.contains(TOKEN));
    gw.shutdown().await;
}
