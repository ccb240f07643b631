//! The shadow report as one HTML page (`GET /_gateway/shadow` with `Accept: text/html`, or
//! `/_gateway/shadow.html`): the page an operator keeps open during a migration, and the
//! one that says, per route and tenant, whether v4 answers as the legacy backend does.
//!
//! Self-contained on purpose: inline CSS and SVG, no script, no external asset (the answer's
//! Content-Security-Policy forbids them), so it works on an admin port with no way out and
//! cannot leak what it shows to a third party. Every value is escaped by maud: tenants come
//! from client headers. Examples are the masked differences the diff file gets (secrets
//! replaced before they are kept) and are cut short.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::verdict::{Verdict, REVIEW_RATIO};
use super::window::{Counts, Latency};
use super::{Report, RowReport};

/// Above this share of copies lost to a full queue the sample leans towards quiet moments.
pub const HIGH_DROP_RATIO: f64 = 0.2;

/// What identifies the page itself (the figures carry their configuration hash).
pub struct Meta<'a> {
    pub version: &'a str,
    pub now: SystemTime,
}

const STYLE: &str = r#"
:root{--fg:#1d2330;--muted:#5b6577;--line:#dde2ea;--bg:#f6f7fa;--ok:#177245;--warn:#9a6700;--bad:#b42318;--few:#5b6577}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#1d2330;color:#fff;padding:14px 24px;display:flex;flex-wrap:wrap;gap:8px 28px;align-items:baseline}
header h1{font-size:18px;margin:0 16px 0 0}
header span{color:#c9d1e0}
header b{color:#fff;font-weight:600}
main{padding:16px 24px;max-width:1400px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;margin:0 0 16px;padding:12px 16px}
h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}
th,td{text-align:right;padding:6px 6px;border-bottom:1px solid var(--line);white-space:nowrap}
th{color:var(--muted);font-weight:600;font-size:11px;text-transform:uppercase;letter-spacing:.03em;white-space:normal;vertical-align:bottom}
#rows table{font-size:13px}
td.l,th.l{text-align:left}
td.ratio{font-size:16px;font-weight:700}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.ready{background:var(--ok)}.review{background:var(--warn)}.notready{background:var(--bad)}.few,.none{background:var(--few)}
.idle{background:var(--few)}
td.l small{display:block;color:var(--muted);white-space:normal;max-width:300px;font-size:12px}
td.l small.hint{min-width:190px}
.engaged{background:var(--bad)}.running{background:var(--ok)}
.warn{color:var(--warn);font-weight:600}
tr.paths td{text-align:left;white-space:normal;background:#fafbfc;padding:4px 8px 10px 24px}
ol{margin:4px 0;padding-left:20px}
li{margin:2px 0}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef1f6;padding:1px 4px;border-radius:4px;word-break:break-all}
.muted{color:var(--muted)}
svg{vertical-align:middle}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dt{font-weight:600}dd{margin:0}
"#;

/// The whole page.
pub fn render(report: &Report, meta: &Meta<'_>) -> String {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // The page is kept open: it refreshes itself (no script needed).
                meta http-equiv="refresh" content="30";
                title { "Shadow comparison · legacy-gateway" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "Shadow comparison" }
                    span { "legacy-gateway " b { (meta.version) } }
                    span { "configuration " b #config-hash { (report.config_hash) } }
                    span { "figures since " b #window { (report.window.opened) } " (" (report.window.by) ")" }
                    @if report.instances > 1 {
                        span { "instances " b #instances { (report.instances) } }
                    }
                    span { "at " b { (httpdate::fmt_http_date(meta.now)) } }
                    span { "copies running or waiting " b #queue { (report.in_flight) " / " (report.queue_capacity) } }
                }
                main {
                    (kill_switches(report))
                    (rows(report))
                    (meaning(report))
                }
            }
        }
    };
    markup.into_string()
}

fn kill_switches(report: &Report) -> Markup {
    html! {
        section #kill-switches {
            h2 { "Kill switches" }
            table {
                thead { tr { th.l { "route" } th.l { "state" } th { "trips since start" } } }
                tbody {
                    @for (route, k) in &report.kill_switches {
                        @let copied = report.rows.iter().any(|r| &r.route == route && r.since_change.compared + r.since_change.refused > 0);
                        tr.kill data-route=(route) {
                            td.l { (route) }
                            td.l {
                                @if k.paused {
                                    span.badge.engaged { "engaged: copies paused" }
                                } @else if copied {
                                    span.badge.running { "copies running" }
                                } @else {
                                    span.badge.idle { "no copies since the window opened" }
                                }
                            }
                            td { (k.trips) }
                        }
                    }
                }
            }
        }
    }
}

fn rows(report: &Report) -> Markup {
    html! {
        section #rows {
            h2 { "Per route part and tenant, since the last configuration change" }
            @if report.rows.is_empty() {
                p.muted #no-rows { "No calls in shadow mode since the window opened: no route is in shadow mode, or no call came." }
            } @else {
                table {
                    thead {
                        tr {
                            th.l { "route part, mode now" } th.l { "tenant" } th { "match ratio" } th.l { "last hour" }
                            th.l { "verdict" } th { "compared" } th { "matched" } th { "differing" }
                            th { "v4 errors" } th { "refused" } th.l { "not shadowed" }
                            th.l { "latency p50 / p99" } th { "5 min, 1 h" }
                        }
                    }
                    tbody {
                        @for row in &report.rows {
                            (row_markup(row))
                        }
                    }
                }
            }
            @if let Some(f) = &report.diff_file {
                p.muted { "Every differing call, masked, is a JSON line in " code { (f) } "." }
            }
        }
    }
}

fn row_markup(row: &RowReport) -> Markup {
    let s = &row.since_change;
    let ns = &s.not_shadowed;
    let offered = s.compared + ns.queue_full;
    let drop_ratio = if offered == 0 {
        0.0
    } else {
        ns.queue_full as f64 / offered as f64
    };
    let reasons = [
        ("writes off", ns.writes_off),
        ("sampled out", ns.sampled_out),
        ("body too large", ns.body_too_large),
        ("queue full", ns.queue_full),
        ("kill switch", ns.kill_switch),
    ];
    html! {
        tr.row data-route=(row.route) data-part=(row.part) data-tenant=(row.tenant) data-verdict=(row.verdict.class()) data-mode=(row.mode) {
            td.l { (row.row) small.mode { "now: " (row.mode) } }
            td.l { (row.tenant) }
            td.ratio { (ratio_text(s.matched + s.noise_only, s.compared)) }
            td.l { (sparkline(&row.per_minute)) }
            td.l {
                span class={ "badge " (row.verdict.class()) } { (row.verdict.text()) }
                @if drop_ratio > HIGH_DROP_RATIO {
                    " " span.warn title="Copies run on spare CPU only; lower sample_percent or add instances" {
                        (format!("{:.0}% dropped", drop_ratio * 100.0))
                    }
                }
                @if let Some(hint) = hint(row) {
                    small.hint { (hint) }
                }
            }
            td { (s.compared) } td { (s.matched) } td { (s.differing) } td { (s.v4_errors) }
            td { (s.refused) }
            td.l.not-shadowed {
                @if ns.total() == 0 { "0" }
                @for (name, n) in reasons {
                    @if n > 0 { (n) " " (name) br; }
                }
            }
            td.l.latency {
                "legacy " (latency_text(&s.latency_ms.legacy)) br;
                "v4 " (latency_text(&s.latency_ms.v4))
            }
            td.windows { (window_text(&row.last_5m)) br; (window_text(&row.last_1h)) }
        }
        @if !row.top_differing_paths.is_empty() || !row.noise_paths.is_empty() {
            tr.paths data-row=(row.row) data-tenant=(row.tenant) {
                td colspan="13" {
                    @if !row.top_differing_paths.is_empty() {
                        "Most frequent differing paths:"
                        ol {
                            @for p in &row.top_differing_paths {
                                li.path {
                                    code { (p.path) } " × " (p.count)
                                    @if let Some(ptr) = &p.v4_pointer {
                                        " from v4 " code.pointer { (ptr) }
                                    }
                                    @if let Some(m) = &p.mapping {
                                        " mapped at " code.mapping { (m) }
                                    }
                                    @if let Some(e) = &p.example {
                                        br; span.muted { "e.g. " } code.example { (e) }
                                    }
                                }
                            }
                        }
                    }
                    @if !row.noise_paths.is_empty() {
                        span.muted { "Learned noise (differs between two legacy answers; not counted): " }
                        @for p in &row.noise_paths {
                            code.noise { (p.path) } " × " (p.count) " "
                        }
                    }
                }
            }
        }
    }
}

/// What to do next with a row, in configuration terms.
fn hint(row: &RowReport) -> Option<String> {
    let rule = format!(
        "[[modes]] route = \"{}\", tenant = \"{}\"",
        row.row, row.tenant
    );
    match row.verdict {
        Verdict::Ready if row.mode == "shadow" => {
            Some(format!("{rule}: mode = \"translate\", translate_percent = 10"))
        }
        Verdict::NotCompared if row.since_change.not_shadowed.writes_off > 0 => Some(format!(
            "writes are not shadowed: set writes = true under [shadow.routes.\"{}\"] (staging v4 only) to measure {}",
            row.route, row.row
        )),
        _ => None,
    }
}

fn latency_text(l: &Latency) -> String {
    match (l.quantile(0.5), l.quantile(0.99)) {
        (Some(p50), Some(p99)) => format!("{p50} / {p99} ms"),
        _ => "–".into(),
    }
}

fn window_text(c: &Counts) -> String {
    if c.compared == 0 {
        format!("{} calls", c.calls())
    } else {
        format!(
            "{} of {}",
            ratio_text(c.matched + c.noise_only, c.compared),
            c.compared
        )
    }
}

fn ratio_text(matched: u64, compared: u64) -> String {
    if compared == 0 {
        "–".into()
    } else {
        format!("{:.1}%", matched as f64 * 100.0 / compared as f64)
    }
}

/// The match ratio per minute as a small inline SVG line (a dot when there is one minute).
fn sparkline(per_minute: &[(u64, u64, u64)]) -> Markup {
    const W: f64 = 120.0;
    const H: f64 = 36.0;
    let points: Vec<(u64, f64)> = per_minute
        .iter()
        .filter(|(_, compared, _)| *compared > 0)
        .map(|(minute, compared, matched)| (minute * 60, *matched as f64 / *compared as f64))
        .collect();
    let Some(&(first, _)) = points.first() else {
        return html! { span.muted { "no copies compared" } };
    };
    let last = points.last().map_or(first, |p| p.0);
    // Zoom on what matters: a ratio between 90% and 100% should not be a flat line.
    let lo = points.iter().map(|p| p.1).fold(0.9_f64, f64::min).max(0.0);
    let span_t = (last - first).max(1) as f64;
    let xy = |(t, r): (u64, f64)| {
        let x = if last == first {
            W / 2.0
        } else {
            2.0 + (t - first) as f64 / span_t * (W - 4.0)
        };
        let y = 2.0 + (1.0 - (r - lo) / (1.0 - lo).max(1e-9)) * (H - 4.0);
        (x, y)
    };
    let line: Vec<String> = points
        .iter()
        .map(|&p| {
            let (x, y) = xy(p);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let (lx, ly) = xy(points[points.len() - 1]);
    let label = format!(
        "match ratio per minute, {} to {} UTC, scale {:.0}%–100%",
        clock(first),
        clock(last + 60),
        lo * 100.0
    );
    html! {
        svg.chart width=(W) height=(H) viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(label) {
            title { (label) }
            rect x="0" y="0" width=(W) height=(H) fill="#f3f5f9" rx="3" {}
            line x1="0" x2=(W) y1="2" y2="2" stroke="#c8d6c8" stroke-dasharray="3 3" {}
            @if points.len() > 1 {
                polyline points=(line.join(" ")) fill="none" stroke="#1f5fbf" stroke-width="1.5" {}
            }
            circle cx=(format!("{lx:.1}")) cy=(format!("{ly:.1}")) r="2.5" fill="#1f5fbf" {}
        }
    }
}

fn clock(unix: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(unix);
    // "Sun, 06 Nov 1994 08:49:37 GMT": the time of day is at 17..22.
    httpdate::fmt_http_date(t)
        .get(17..22)
        .unwrap_or_default()
        .to_string()
}

fn meaning(report: &Report) -> Markup {
    let c = &report.criteria;
    html! {
        section #meaning {
            h2 { "What the numbers mean for a cut-over" }
            dl {
                dt { "rows" } dd { "One per route part (" code { "user-api.read" } ", " code { "user-api.update" } ", each action) and tenant, as " code { "[[modes]] route" } " names them: a verdict speaks only for its part. " b { "mode now" } " is where the part's calls go under the running configuration." }
                dt { "window" } dd { "The figures count from the last configuration change (a reload with another configuration hash) or " code { "POST /_gateway/shadow/reset" } ", whichever came last: nothing gathered under another configuration is judged. The 5 min and 1 h columns show the recent trend within it." }
                dt { "compared" } dd { "Copies sent to v4 whose answer was translated back and compared with the legacy answer the client got." }
                dt { "verdict" } dd { b { "ready to cut over" } " with at least " (c.ready_min_compared) " copies compared and at most " (format!("{}", c.ready_max_diff_ratio * 100.0)) "% of them differing (" code { "shadow.ready_min_compared" } ", " code { "shadow.ready_max_diff_ratio" } "; learned noise counts as matched); " b { "review the differences" } " from " (format!("{:.0}%", REVIEW_RATIO * 100.0)) " matched; " b { "not ready" } " below; " b { "never compared" } " when calls came but none was copied (see not shadowed). The gauge " code { "gateway_cutover_ready{route,part,tenant}" } " is 1 exactly when the verdict is ready." }
                dt { "differing paths" } dd { "Where the two answers differ, as the legacy API spells them, most frequent first, with the v4 field and the mapping line that produce them when the mapping says, and one example each (secrets masked). " code { "status" } " means the HTTP status differs: the most serious kind." }
                dt { "learned noise" } dd { "Paths that differed between two answers of the legacy backend to the same read (" code { "shadow.noise_sample_percent" } " of reads are asked twice): they differ by nature, are shown apart and do not count." }
                dt { "v4 errors" } dd { "Copies v4 answered with a 5xx, timed out or could not be reached. They count as compared and as differing; many of them trip the kill switch." }
                dt { "refused" } dd { "Calls the gateway itself would refuse: no copy sent." }
                dt { "not shadowed" } dd { "Calls that got no copy, by reason: writes off (the route's " code { "writes" } " is false), sampled out (" code { "sample_percent" } "), body too large (" code { "shadow.max_body_bytes" } "), queue full (copies use spare CPU only; over " (format!("{:.0}%", HIGH_DROP_RATIO * 100.0)) " the sample leans towards quiet moments), kill switch." }
                dt { "latency" } dd { "p50 and p99 of the legacy answer and of the v4 copy (translation included) for the same compared calls, to within 25%." }
                dt { "cut over" } dd { "Set the row's " code { "[[modes]]" } " rule (route part and tenant) to translate, as a " code { "translate_percent" } " canary first, and reload. Rolling back is the same edit in reverse." }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::report::{KillReport, PathReport, WindowReport};
    use crate::shadow::verdict::Criteria;

    fn report() -> Report {
        let since = Counts {
            compared: 200,
            matched: 190,
            differing: 10,
            ..Counts::default()
        };
        Report {
            config_hash: "abcd".into(),
            window: WindowReport {
                opened: "Sun, 06 Dec 2026 21:00:00 GMT".into(),
                by: "reload".into(),
            },
            criteria: Criteria {
                ready_min_compared: 1000,
                ready_max_diff_ratio: 0.001,
            },
            rows: vec![RowReport {
                route: "user-api".into(),
                part: "read".into(),
                row: "user-api.read".into(),
                tenant: "<b>ca</b>".into(),
                mode: "shadow".into(),
                verdict: Verdict::TooFew,
                ready: false,
                since_change: since.clone(),
                last_5m: since.clone(),
                last_1h: since,
                per_minute: vec![(10, 10, 9), (11, 10, 10)],
                top_differing_paths: vec![PathReport {
                    path: "$.Errors[0].Message".into(),
                    count: 3,
                    example: Some("{\"v4\":\"***\"}".into()),
                    v4_pointer: None,
                    mapping: None,
                }],
                noise_paths: vec![],
            }],
            kill_switches: [
                (
                    "registry".to_string(),
                    KillReport {
                        paused: false,
                        trips: 0,
                    },
                ),
                (
                    "user-api".to_string(),
                    KillReport {
                        paused: true,
                        trips: 2,
                    },
                ),
            ]
            .into_iter()
            .collect(),
            in_flight: 1,
            queue_capacity: 288,
            diff_file: None,
            instances: 1,
        }
    }

    #[test]
    fn values_are_escaped_and_nothing_is_fetched() {
        let html = render(
            &report(),
            &Meta {
                version: "0.1.0",
                now: UNIX_EPOCH,
            },
        );
        assert!(html.contains("&lt;b&gt;ca&lt;/b&gt;"));
        assert!(!html.contains("<b>ca"));
        assert!(!html.contains("<script") && !html.contains("src="));
        assert!(html.contains("<polyline"));
        assert!(html.contains("95.0%"));
        assert!(html.contains("engaged: copies paused"));
        // A route nothing shadows does not read as running.
        assert!(html.contains("no copies since the window opened"));
        assert!(html.contains(r#"data-mode="shadow""#));
    }
}
