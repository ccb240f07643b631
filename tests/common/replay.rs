//! `legacy-gateway replay` as a CI job runs it: the binary on captured files, with the JSON
//! report and the JUnit file it writes read back, so a suite asserts on what a CI server sees.

use std::path::Path;

use serde_json::Value;

use super::binary::{Binary, Ran};

/// What one `replay` run left: how it exited, its report (`Null` when none was written) and
/// its JUnit text (empty when none).
pub struct Replayed {
    pub ran: Ran,
    pub report: Value,
    pub junit: String,
}

/// `replay ARGS… --report R --junit J`, with `R` and `J` in `dir` (any earlier ones removed
/// first, so what is read back is this run's).
pub async fn replay(dir: &Path, args: Vec<String>, env: Vec<(&'static str, String)>) -> Replayed {
    let report = dir.join("report.json");
    let junit = dir.join("junit.xml");
    let _ = std::fs::remove_file(&report);
    let _ = std::fs::remove_file(&junit);
    let mut full = vec!["replay".to_string()];
    full.extend(args);
    full.extend([
        "--report".into(),
        report.display().to_string(),
        "--junit".into(),
        junit.display().to_string(),
    ]);
    let ran = tokio::task::spawn_blocking(move || {
        let mut b = Binary::new(full);
        for (k, v) in env {
            b = b.env(k, v);
        }
        b.run()
    })
    .await
    .unwrap();
    let report = std::fs::read_to_string(&report)
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(Value::Null);
    let junit = std::fs::read_to_string(&junit).unwrap_or_default();
    Replayed { ran, report, junit }
}

/// `mappings/user-api.toml:N`, N the line of `[read]`: where every field of a read answer comes
/// from, so the line a difference is blamed on.
pub fn read_mapping_line() -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/user-api.toml"),
    )
    .unwrap();
    let n = text.lines().position(|l| l.trim() == "[read]").unwrap() + 1;
    format!("mappings/user-api.toml:{n}")
}

/// The JUnit `<testcase …>` element whose attributes contain `name`.
pub fn testcase<'a>(junit: &'a str, name: &str) -> &'a str {
    junit
        .split("<testcase")
        .find(|c| c.contains(name))
        .unwrap_or_else(|| panic!("no test case {name} in {junit}"))
}
