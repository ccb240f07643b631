//! One view of a fleet: `legacy-gateway shadow-report URL…` reads the shadow report of each
//! instance given (their admin listeners, with the admin token) and adds them up into one
//! report, written as JSON or as the same HTML page. Each instance sees only its share of
//! the traffic, so a verdict read off one pod judges a fraction of the evidence; the merged
//! figures are judged again with the same criteria. Latency merges exactly: reports carry
//! their histogram buckets, not only the quantiles.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::report::{KillReport, NoiseReport, PathReport, Report, RowReport};
use super::verdict::Verdict;

#[derive(Debug, Args)]
pub struct ShadowReportArgs {
    /// Admin base URLs of the instances (`http://10.0.0.7:9901`), or their
    /// `/_gateway/shadow` URLs.
    #[arg(required = true)]
    pub urls: Vec<String>,
    /// The admin token (`Authorization: Bearer`), when the instances have one.
    #[arg(long, env = "LEGACY_GATEWAY_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Write the merged report as the shadow page to this file instead of JSON to stdout.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// How long to wait for each instance.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
}

pub fn run(args: ShadowReportArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("shadow-report: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let reports = match runtime.block_on(fetch_all(&args)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("shadow-report: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(merged) = merge(reports) else {
        eprintln!("shadow-report: no instance given");
        return ExitCode::FAILURE;
    };
    let written = match &args.html {
        Some(path) => {
            let page = super::page::render(
                &merged,
                &super::page::Meta {
                    version: env!("CARGO_PKG_VERSION"),
                    now: std::time::SystemTime::now(),
                },
            );
            std::fs::write(path, page).map_err(|e| format!("{}: {e}", path.display()))
        }
        None => serde_json::to_string_pretty(&merged)
            .map(|text| println!("{text}"))
            .map_err(|e| e.to_string()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shadow-report: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `/_gateway/shadow` URL of an instance given by its admin base URL or that URL itself.
fn report_url(given: &str) -> String {
    let trimmed = given.trim_end_matches('/');
    if trimmed.ends_with("/_gateway/shadow") {
        trimmed.to_string()
    } else {
        format!("{trimmed}/_gateway/shadow")
    }
}

async fn fetch_all(args: &ShadowReportArgs) -> Result<Vec<Report>, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(args.timeout_ms.max(1)))
        .build()
        .map_err(|e| e.to_string())?;
    let mut reports = Vec::new();
    for given in &args.urls {
        let url = report_url(given);
        let mut req = client
            .get(&url)
            .header(http::header::ACCEPT, "application/json");
        if let Some(t) = &args.token {
            req = req.bearer_auth(t);
        }
        // The error names the URL, never the token.
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{url}: {}", e.without_url()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!(
                "{url}: answered {status}{}",
                if status == http::StatusCode::UNAUTHORIZED {
                    " (give the admin token with --token or LEGACY_GATEWAY_ADMIN_TOKEN)"
                } else {
                    ""
                }
            ));
        }
        let report = resp
            .json::<Report>()
            .await
            .map_err(|e| format!("{url}: not a shadow report: {}", e.without_url()))?;
        reports.push(report);
    }
    Ok(reports)
}

/// Adds up the reports of several instances, row by row (route part and tenant); `None`
/// for no report at all.
pub fn merge(reports: Vec<Report>) -> Option<Report> {
    let mut it = reports.into_iter();
    let mut out = it.next()?;
    for r in it {
        if r.config_hash != out.config_hash {
            out.config_hash = "mixed".into();
        }
        if r.window.opened != out.window.opened {
            out.window.by = "per instance".into();
        }
        for (route, k) in r.kill_switches {
            let e = out.kill_switches.entry(route).or_insert(KillReport {
                paused: false,
                trips: 0,
            });
            e.paused |= k.paused;
            e.trips += k.trips;
        }
        out.in_flight += r.in_flight;
        out.queue_capacity += r.queue_capacity;
        out.instances += r.instances;
        for row in r.rows {
            match out
                .rows
                .iter_mut()
                .find(|x| x.row == row.row && x.tenant == row.tenant)
            {
                Some(x) => add_row(x, row),
                None => out.rows.push(row),
            }
        }
    }
    out.rows
        .sort_by(|a, b| (&a.route, &a.part, &a.tenant).cmp(&(&b.route, &b.part, &b.tenant)));
    for row in &mut out.rows {
        row.verdict = Verdict::of(&row.since_change, &out.criteria);
        row.ready = row.verdict == Verdict::Ready;
    }
    Some(out)
}

fn add_row(x: &mut RowReport, row: RowReport) {
    if x.mode != row.mode {
        x.mode = "mixed".into();
    }
    x.since_change.add(&row.since_change);
    x.last_5m.add(&row.last_5m);
    x.last_1h.add(&row.last_1h);
    let mut minutes: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for (m, c, ok) in x.per_minute.drain(..).chain(row.per_minute) {
        let e = minutes.entry(m).or_default();
        e.0 += c;
        e.1 += ok;
    }
    x.per_minute = minutes.into_iter().map(|(m, (c, ok))| (m, c, ok)).collect();
    for p in row.top_differing_paths {
        match x.top_differing_paths.iter_mut().find(|q| q.path == p.path) {
            Some(q) => {
                q.count += p.count;
                merge_path(q, p);
            }
            None => x.top_differing_paths.push(p),
        }
    }
    x.top_differing_paths
        .sort_by(|a, b| b.count.cmp(&a.count).then(a.path.cmp(&b.path)));
    for n in row.noise_paths {
        match x.noise_paths.iter_mut().find(|q| q.path == n.path) {
            Some(q) => q.count += n.count,
            None => x.noise_paths.push(NoiseReport { ..n }),
        }
    }
}

fn merge_path(q: &mut PathReport, p: PathReport) {
    q.example = q.example.take().or(p.example);
    q.v4_pointer = q.v4_pointer.take().or(p.v4_pointer);
    q.mapping = q.mapping.take().or(p.mapping);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_report() {
        assert_eq!(
            report_url("http://10.0.0.7:9901/"),
            "http://10.0.0.7:9901/_gateway/shadow"
        );
        assert_eq!(
            report_url("http://a:1/_gateway/shadow"),
            "http://a:1/_gateway/shadow"
        );
    }
}
