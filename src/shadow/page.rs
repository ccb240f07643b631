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

use super::{Bucket, RowView, View};

/// Below this many compared copies a ratio says little: the page says "too few".
pub const MIN_COMPARED: u64 = 100;
/// Match ratio at which a tenant reads as ready to cut over.
pub const READY_RATIO: f64 = 0.999;
/// Below this, not ready (the alert rule `LegacyGatewayShadowMatchRatioLow` uses it too).
pub const REVIEW_RATIO: f64 = 0.99;
/// Above this share of dropped copies the sample leans towards quiet moments.
pub const HIGH_DROP_RATIO: f64 = 0.2;

/// What identifies the instance the page comes from.
pub struct Meta<'a> {
    pub version: &'a str,
    pub config_hash: &'a str,
    pub now: SystemTime,
}

/// The verdict a row's figures support, with the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    TooFew,
    Ready,
    Review,
    NotReady,
}

impl Verdict {
    pub fn of(row: &RowView) -> Self {
        let s = &row.stats;
        if s.compared < MIN_COMPARED {
            return Verdict::TooFew;
        }
        let ratio = s.matched as f64 / s.compared as f64;
        if ratio >= READY_RATIO {
            Verdict::Ready
        } else if ratio >= REVIEW_RATIO {
            Verdict::Review
        } else {
            Verdict::NotReady
        }
    }

    fn class(self) -> &'static str {
        match self {
            Verdict::TooFew => "few",
            Verdict::Ready => "ready",
            Verdict::Review => "review",
            Verdict::NotReady => "notready",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Verdict::TooFew => "too few copies yet",
            Verdict::Ready => "ready to cut over",
            Verdict::Review => "review the differences",
            Verdict::NotReady => "not ready",
        }
    }
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
th,td{text-align:right;padding:6px 8px;border-bottom:1px solid var(--line);white-space:nowrap}
th{color:var(--muted);font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
td.l,th.l{text-align:left}
td.ratio{font-size:16px;font-weight:700}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.ready{background:var(--ok)}.review{background:var(--warn)}.notready{background:var(--bad)}.few{background:var(--few)}
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
pub fn render(view: &View, meta: &Meta<'_>) -> String {
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
                    span { "configuration " b #config-hash { (meta.config_hash) } }
                    span { "at " b { (httpdate::fmt_http_date(meta.now)) } }
                    span { "copies running or waiting " b #queue { (view.queue_depth) " / " (view.queue_capacity) } }
                }
                main {
                    (kill_switches(view))
                    (rows(view))
                    (meaning())
                }
            }
        }
    };
    markup.into_string()
}

fn kill_switches(view: &View) -> Markup {
    html! {
        section #kill-switches {
            h2 { "Kill switches" }
            table {
                thead { tr { th.l { "route" } th.l { "state" } th { "trips since start" } } }
                tbody {
                    @for (route, engaged, trips) in &view.kill_switches {
                        tr.kill data-route=(route) {
                            td.l { (route) }
                            td.l {
                                @if *engaged {
                                    span.badge.engaged { "engaged: copies paused" }
                                } @else {
                                    span.badge.running { "copies running" }
                                }
                            }
                            td { (trips) }
                        }
                    }
                }
            }
        }
    }
}

fn rows(view: &View) -> Markup {
    html! {
        section #rows {
            h2 { "Per route and tenant" }
            @if view.rows.is_empty() {
                p.muted #no-rows { "No shadow copies yet: no route is in shadow mode, or no call was sampled." }
            } @else {
                table {
                    thead {
                        tr {
                            th.l { "route" } th.l { "tenant" } th { "match ratio" } th.l { "last 3 h" }
                            th.l { "verdict" } th { "compared" } th { "matched" } th { "differing" }
                            th { "v4 errors" } th { "dropped" } th { "skipped" } th { "refused" } th { "paused" }
                        }
                    }
                    tbody {
                        @for row in &view.rows {
                            (row_markup(row))
                        }
                    }
                }
            }
            @if let Some(f) = &view.diff_file {
                p.muted { "Every differing call, masked, is a JSON line in " code { (f.display()) } "." }
            }
        }
    }
}

fn row_markup(row: &RowView) -> Markup {
    let s = &row.stats;
    let verdict = Verdict::of(row);
    let offered = s.compared + s.dropped;
    let drop_ratio = if offered == 0 {
        0.0
    } else {
        s.dropped as f64 / offered as f64
    };
    html! {
        tr.row data-route=(row.route) data-tenant=(row.tenant) data-verdict=(verdict.class()) {
            td.l { (row.route) }
            td.l { (row.tenant) }
            td.ratio { (ratio_text(s.matched, s.compared)) }
            td.l { (sparkline(&row.history)) }
            td.l {
                span class={ "badge " (verdict.class()) } { (verdict.text()) }
                @if drop_ratio > HIGH_DROP_RATIO {
                    " " span.warn title="Copies run on spare CPU only; lower sample_percent or add instances" {
                        (format!("{:.0}% dropped", drop_ratio * 100.0))
                    }
                }
            }
            td { (s.compared) } td { (s.matched) } td { (s.differing) } td { (s.v4_errors) }
            td { (s.dropped) } td { (s.skipped) } td { (s.refused) } td { (s.paused) }
        }
        @if !row.top_paths.is_empty() {
            tr.paths data-route=(row.route) data-tenant=(row.tenant) {
                td colspan="13" {
                    "Most frequent differing paths:"
                    ol {
                        @for (path, count, example) in &row.top_paths {
                            li.path {
                                code { (path) } " × " (count)
                                @if let Some(e) = example {
                                    br; span.muted { "e.g. " } code.example { (e) }
                                }
                            }
                        }
                    }
                }
            }
        }
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
fn sparkline(history: &[Bucket]) -> Markup {
    const W: f64 = 180.0;
    const H: f64 = 36.0;
    let points: Vec<(u64, f64)> = history
        .iter()
        .filter(|b| b.compared > 0)
        .map(|b| (b.start, b.matched as f64 / b.compared as f64))
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

fn meaning() -> Markup {
    html! {
        section #meaning {
            h2 { "What the numbers mean for a cut-over" }
            dl {
                dt { "compared" } dd { "Copies sent to v4 whose answer was translated back and compared with the legacy answer the client got. These numbers are this instance's; the Grafana dashboard sums the fleet." }
                dt { "match ratio" } dd { "matched ÷ compared. A tenant reads as ready at " (format!("{:.1}%", READY_RATIO * 100.0)) " or more over at least " (MIN_COMPARED) " copies; below " (format!("{:.0}%", REVIEW_RATIO * 100.0)) " it is not ready (the alert rule uses the same line). Between the two, read the paths: a difference you accept (a message text, a field v4 adds) is a mapping or noise-field change, not a blocker." }
                dt { "differing paths" } dd { "Where the two answers differ, most frequent first, with one example each (secrets masked). " code { "status" } " means the HTTP status differs: the most serious kind." }
                dt { "v4 errors" } dd { "Copies v4 answered with a 5xx, timed out or could not be reached. They count as compared and as differing; many of them trip the kill switch." }
                dt { "dropped" } dd { "Copies not made because the shadow queue was full: copies only use spare CPU. Over " (format!("{:.0}%", HIGH_DROP_RATIO * 100.0)) " dropped, the compared sample leans towards quiet moments: lower sample_percent or add instances before trusting the ratio." }
                dt { "skipped, refused, paused" } dd { "Bodies over shadow.max_body_bytes; calls the gateway itself would refuse (never sent); calls during a kill-switch pause." }
                dt { "cut over" } dd { "Set the tenant's mode to translate (or a translate_percent canary) and reload. Rolling back is the same edit in reverse." }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::Stats;

    fn row(compared: u64, matched: u64) -> RowView {
        RowView {
            route: "user-api".into(),
            tenant: "<b>ca</b>".into(),
            stats: Stats {
                compared,
                matched,
                differing: compared - matched,
                ..Stats::default()
            },
            top_paths: vec![(
                "Errors[0].Message".into(),
                3,
                Some("{\"v4\":\"***\"}".into()),
            )],
            history: vec![
                Bucket {
                    start: 600,
                    compared: 10,
                    matched: 9,
                },
                Bucket {
                    start: 660,
                    compared: 10,
                    matched: 10,
                },
            ],
        }
    }

    #[test]
    fn verdicts_follow_the_documented_lines() {
        assert_eq!(Verdict::of(&row(99, 99)), Verdict::TooFew);
        assert_eq!(Verdict::of(&row(1000, 999)), Verdict::Ready);
        assert_eq!(Verdict::of(&row(1000, 995)), Verdict::Review);
        assert_eq!(Verdict::of(&row(1000, 900)), Verdict::NotReady);
    }

    #[test]
    fn values_are_escaped_and_nothing_is_fetched() {
        let view = View {
            rows: vec![row(200, 190)],
            kill_switches: vec![("user-api", true, 2), ("registry", false, 0)],
            queue_depth: 1,
            queue_capacity: 288,
            diff_file: None,
        };
        let html = render(
            &view,
            &Meta {
                version: "0.1.0",
                config_hash: "abcd",
                now: UNIX_EPOCH,
            },
        );
        assert!(html.contains("&lt;b&gt;ca&lt;/b&gt;"));
        assert!(!html.contains("<b>ca"));
        assert!(!html.contains("<script") && !html.contains("src="));
        assert!(html.contains("<polyline"));
        assert!(html.contains("95.0%"));
        assert!(html.contains("engaged: copies paused"));
    }
}
