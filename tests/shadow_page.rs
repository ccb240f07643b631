//! The shadow report page (`/_gateway/shadow.html`, or `/_gateway/shadow` asked for HTML)
//! after real shadow traffic: served self-contained, escaped and masked, and rendered by
//! headless Chromium (Debian's `chromium`), whose DOM must hold the rows and whose console
//! must be free of errors. The screenshot lands in target/shadow-page.png (and, with
//! UPDATE_DOCS_SCREENSHOT=1, in docs/shadow-page.png for the README).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::fakes::legacy_accepts;
use common::fakes::password_changes;
use common::put_as;
use common::{client, mount, v4, PASSWORD, TOKEN};
use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

struct Fakes {
    _v4: MockServer,
    _staging: MockServer,
    _legacy: MockServer,
}

/// A gateway shadowing the User API: user 1001's password copies differ (v4 refuses the
/// password), user 1002's match; tenant CA's reads of user 1001 differ in one field. A third
/// tenant, `<i>x</i>`, is configured nowhere: its calls count under `other`.
async fn shadowing_gateway() -> (legacy_gateway::Running, Fakes) {
    let live = MockServer::start().await;
    let staging = MockServer::start().await;
    let legacy = MockServer::start().await;
    mount(
        &staging,
        "PATCH",
        "/v4/Users/1001/Password",
        ResponseTemplate::new(400).set_body_json(v4(
            "E400_00",
            &format!("Invalid InputModel - {PASSWORD} does not meet the complexity requirements."),
            "Error",
        )),
    )
    .await;
    password_changes(&staging, "1002").await;
    for id in ["1001", "1002"] {
        legacy_accepts(&legacy, id, "legacy").await;
    }
    mount(
        &legacy,
        "GET",
        "/User/1001",
        ResponseTemplate::new(200).set_body_json(json!({"Code": 0, "Errors": [],
            "Result": {"CustomerRegistrationId": "1001", "FirstName": "Alice", "LastName": "Anderson",
                       "Email": "alice@example.test", "Verified": true}})),
    )
    .await;
    let mut user = v4("S200_01", "Get user completed.", "Success");
    user["data"] = json!({"customerRegistrationId": "1001", "email": "alice@example.test",
        "firstName": "Alicia", "lastName": "Anderson", "verified": true});
    mount(
        &live,
        "GET",
        "/v4/Users/1001/",
        ResponseTemplate::new(200).set_body_json(user),
    )
    .await;
    let cfg = format!(
        // Tenants are reported by name only when configured: a `[[modes]]` rule per tenant.
        "mode = \"shadow\"\nuser_api_url = \"{l}\"\nregistry_api_url = \"{l}\"\n[[modes]]\nroute = \"user-api\"\ntenant = \"CA\"\nmode = \"shadow\"\n[[modes]]\nroute = \"user-api\"\ntenant = \"CB\"\nmode = \"shadow\"\n[shadow]\norchestrator_url = \"{s}\"\nready_min_compared = 4\n[shadow.routes.\"user-api\"]\nwrites = true\n",
        l = legacy.uri(),
        s = staging.uri()
    );
    let gw = common::gateway_with(&cfg, Some(&live.uri())).await;
    let calls = [
        ("CA", "1001", 3),
        ("CB", "1002", 4),
        ("<i>x</i>", "1002", 1),
    ];
    let mut expected = 0;
    for (tenant, id, n) in calls {
        for _ in 0..n {
            let status = put_as(&gw.url(), id, tenant)
                .body(json!({"Password": PASSWORD}).to_string())
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200);
            expected += 1;
        }
    }
    for _ in 0..2 {
        let status = client()
            .get(format!("{}/User/1001", gw.url()))
            .headers(common::user_api_headers())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        expected += 1;
    }
    // Copies run in the background: wait until all are compared.
    for _ in 0..300 {
        let r: serde_json::Value = common::shadow_report(&gw).await;
        let compared: u64 = r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["compared"].as_u64().unwrap())
            .sum();
        if compared == expected {
            return (
                gw,
                Fakes {
                    _v4: live,
                    _staging: staging,
                    _legacy: legacy,
                },
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the copies were never all compared");
}

#[tokio::test]
async fn the_page_is_self_contained_escaped_masked_and_negotiated() {
    let (gw, _fakes) = shadowing_gateway().await;
    let page = client()
        .get(common::admin(&gw, "shadow.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    // No external asset of any kind, no script.
    for banned in ["<script", "src=", "<link", "@import", "url("] {
        assert!(!html.contains(banned), "{banned} in the page");
    }
    // A tenant nobody configured is not shown, not even escaped: it counts under `other`.
    assert!(!html.contains("<i>x</i>") && !html.contains("&lt;i&gt;"));
    assert!(html.contains(r#"data-tenant="other""#));
    // Rows per part, tenants as configured, ratios, the differing paths as the legacy API
    // spells them with a masked example, never the secrets.
    assert!(html.contains(r#"data-tenant="CA""#), "tenant rows");
    assert!(html.contains(r#"data-part="read""#) && html.contains(r#"data-part="update""#));
    assert!(html.contains("0.0%") && html.contains("100.0%"));
    assert!(html.contains("$.Result.FirstName"));
    assert!(html.contains("Errors[0].Message") || html.contains("status"));
    assert!(html.contains("***"), "the masked example");
    assert!(!html.contains(PASSWORD), "password on the page");
    assert!(
        !html.contains(TOKEN.trim_start_matches("Bearer ")),
        "token on the page"
    );

    // `/_gateway/shadow`: HTML for a browser, JSON for everyone else.
    let as_browser = client()
        .get(common::admin(&gw, "shadow"))
        .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(
        as_browser.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let as_script = client()
        .get(common::admin(&gw, "shadow"))
        .send()
        .await
        .unwrap();
    assert!(as_script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let post = client()
        .post(common::admin(&gw, "shadow.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
}

/// Debian's `chromium` (or another name for the same browser), if installed.
fn chromium() -> Option<PathBuf> {
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    })
}

async fn headless(browser: &Path, profile: &Path, args: &[&str]) -> (String, String) {
    let run = tokio::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("chromium finished within 90 s")
        .expect("chromium runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

#[tokio::test]
async fn chromium_renders_the_page() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must render the shadow page: install Debian's chromium (.ci/run does)"
        );
        eprintln!(
            "SKIPPED chromium_renders_the_page: no chromium on PATH (apt-get install chromium)"
        );
        return;
    };
    let (gw, _fakes) = shadowing_gateway().await;
    let url = common::admin(&gw, "shadow.html");
    let profile = tempfile::tempdir().unwrap();

    let (dom, console) = headless(&browser, profile.path(), &["--dump-dom", &url]).await;
    let rows = dom.matches(r#"<tr class="row""#).count();
    assert_eq!(rows, 4, "one row per route part and tenant: {dom}");
    for tenant in ["CA", "CB", "other"] {
        assert!(
            dom.contains(&format!(r#"data-tenant="{tenant}""#)),
            "{tenant}"
        );
    }
    assert!(dom.contains(r#"data-verdict="few""#));
    assert!(
        dom.contains(r#"data-verdict="ready""#),
        "CB: 4 of 4 matched, 4 needed"
    );
    assert!(dom.contains("<svg"), "the charts render");
    assert!(dom.contains(r#"id="kill-switches""#));
    assert!(dom.contains("What the numbers mean for a cut-over"));
    assert!(!dom.contains(PASSWORD));
    // No script errors, and nothing the page's CSP had to refuse (an external asset).
    for bad in ["Uncaught", "Refused to", "Content Security Policy"] {
        assert!(!console.contains(bad), "{bad}: {console}");
    }

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shadow-page.png");
    let _ = std::fs::remove_file(&shot);
    headless(
        &browser,
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1360,1100",
            &url,
        ],
    )
    .await;
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(png.len() > 10_000, "a real picture, {} bytes", png.len());
    if std::env::var_os("UPDATE_DOCS_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&shot, docs.join("shadow-page.png")).unwrap();
    }
}
