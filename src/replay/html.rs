//! The `--html` page: the summary, then every call that did not match (differing first in
//! file order, then failed, noise and skipped), each differing path with both values and its
//! mapping line. Self-contained like the shadow page (inline CSS, no script, nothing
//! fetched), so a CI can keep it as an artifact; every value is escaped by maud (captured
//! paths and answers come from clients).

use maud::{html, Markup, DOCTYPE};

use super::report::{Outcome, Ran};
use super::verdict::Kind;

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,sans-serif;color:#1d2330;margin:2rem;max-width:80rem}
h1{font-size:1.3rem}table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}
th,td{border-bottom:1px solid #dde2ea;padding:.3rem .5rem;text-align:left;vertical-align:top}
code{font:12px ui-monospace,monospace;word-break:break-all}
.pass{color:#177245;font-weight:600}.fail{color:#b42318;font-weight:600}.muted{color:#5b6577}
"#;

pub fn render(ran: &Ran) -> String {
    let s = &ran.summary;
    let of = |k: Kind| ran.outcomes.iter().filter(move |o| o.judged.kind == k);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "legacy-gateway replay" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                h1 { "Replay against " (ran.target) }
                p {
                    @if s.green() { span.pass { "PASS" } } @else { span.fail { "FAIL" } }
                    " — " (s.calls) " calls: " (s.matched) " matched, " (s.noise) " noise only, "
                    (s.differing) " differing, " (s.failed) " failed; skipped: "
                    (s.skipped.describe())
                }
                @for (title, kind) in [("Differing", Kind::Differing), ("Failed", Kind::Failed)] {
                    @let calls: Vec<&Outcome> = of(kind).collect();
                    @if !calls.is_empty() {
                        h2 { (title) " (" (calls.len()) ")" }
                        table {
                            tr { th { "call" } th { "path (mapping line)" } th { "captured" } th { "replayed" } }
                            @for o in calls { (differences(o)) }
                        }
                    }
                }
                @let noise: Vec<&Outcome> = of(Kind::Noise).collect();
                @if !noise.is_empty() {
                    h2 { "Noise only (" (noise.len()) ")" }
                    table {
                        tr { th { "call" } th { "noise paths" } }
                        @for o in noise {
                            tr { td { code { (o.name()) } } td { code { (o.judged.noise.join(", ")) } } }
                        }
                    }
                }
                @let skipped: Vec<&Outcome> = of(Kind::Skipped).collect();
                @if !skipped.is_empty() {
                    h2 { "Skipped writes (" (skipped.len()) ")" }
                    p.muted { "Replayed only with --writes, towards a staging v4 or the sandbox." }
                    ul { @for o in skipped { li { code { (o.name()) } } } }
                }
            }
        }
    };
    page.into_string()
}

fn differences(o: &Outcome) -> Markup {
    html! {
        @for (i, d) in o.judged.differences.iter().enumerate() {
            tr {
                td { @if i == 0 { code { (o.name()) } } }
                td { code { (d.path) } @if let Some(m) = &d.mapping { br; span.muted { (m) } } }
                td { code { (d.captured.to_string()) } }
                td { code { (d.replayed.to_string()) } }
            }
        }
    }
}
