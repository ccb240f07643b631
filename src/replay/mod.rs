//! `legacy-gateway replay FILE…`: what legacy clients sent, and what the legacy backend
//! answered them (a capture file, or a HAR export), sent again through the gateway's own
//! translation to a v4 build, each answer compared with the captured one by the shadow
//! comparator. A team tests a v4 release in CI against real traffic before shadowing starts.
//!
//! Nothing is translated here: the gateway itself is started in-process, in translate mode,
//! on a loopback port ([`target`]), and each call is sent to it over HTTP, so what is proven
//! is exactly what `serve` would answer. The parts, in the order a call meets them: [`call`]
//! (one captured call), [`jsonl`] and [`har`] (the two inputs, walked as one by [`inputs`]), [`markers`] (redacted
//! values filled in), [`runner`] (paced, concurrent, results in file order), [`verdict`]
//! (the comparison), then [`report`], [`junit`] and [`html`] write what happened, and
//! [`progress`] shows where a run is.

pub mod call;
pub mod har;
pub mod html;
pub mod inputs;
pub mod jsonl;
pub mod junit;
pub mod markers;
pub mod progress;
pub mod report;
pub mod runner;
pub mod target;
pub mod verdict;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

/// Every call matched, or differed only in noise.
pub const EXIT_MATCHED: u8 = 0;
/// At least one call differed, or could not be replayed.
pub const EXIT_DIFFERENCES: u8 = 1;
/// The command line, an input file, the configuration or the target is unusable: nothing
/// was judged (clap's own usage errors exit 2 too).
pub const EXIT_INPUT: u8 = 2;

/// The environment variable holding the bearer token that replaces a redacted
/// `Authorization` (a flag would show it in `ps`).
pub const TOKEN_ENV: &str = "LEGACY_GATEWAY_REPLAY_TOKEN";

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Capture files (JSON lines, as `[capture]` writes them) or HAR 1.2 files, replayed in
    /// the order given.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The gateway configuration to translate with (mappings, tenants, limits, identity);
    /// its modes, legacy backends and rate limits are not used: every call is translated.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory with the mapping files [default: the configuration's, else the built-in].
    #[arg(long, value_name = "DIR")]
    pub mappings: Option<PathBuf>,
    /// The v4 to replay against [default: the embedded sandbox]. A redacted `Authorization`
    /// is replaced by the token in `LEGACY_GATEWAY_REPLAY_TOKEN` (the sandbox needs none).
    #[arg(long, value_name = "URL")]
    pub orchestrator: Option<String>,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// At most this many calls started per second [default: no limit].
    #[arg(long, value_name = "CALLS_PER_SECOND")]
    pub rate: Option<f64>,
    /// Write every call's outcome as JSON to this file.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Write a self-contained HTML page of the outcome to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write a JUnit XML file, one test case per call, for any CI.
    #[arg(long, value_name = "FILE.xml")]
    pub junit: Option<PathBuf>,
    /// Replay writes too (password and e-mail changes, updates); never towards the
    /// configuration's own `orchestrator_url`.
    #[arg(long)]
    pub writes: bool,
    /// The input format [default: `har` for a `.har` file, else told by its content].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// A progress bar on stderr: `auto` when stderr is a terminal.
    #[arg(long, value_enum, default_value_t = crate::events::progress::When::Auto)]
    pub progress: crate::events::progress::When,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Jsonl,
    Har,
}

/// Why a replay could not judge anything: each turns into exit code 2 and one clear line.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{file}: cannot read the file: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Input {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: cannot tell the format (neither capture lines nor a HAR file): pass --format jsonl or --format har")]
    UnknownFormat { file: String },
    #[error("--rate must be a positive number of calls per second")]
    Rate,
    #[error("{0}")]
    Config(String),
    #[error("--writes refused: the target {target} is the live v4 (the {origin}); replay writes against a staging v4 (--orchestrator) or the embedded sandbox")]
    WritesToLive { target: String, origin: String },
    #[error("the captured calls carry a redacted Authorization and the target is a real orchestrator: set {TOKEN_ENV} to a token it accepts")]
    NoToken,
    #[error("nothing to replay in {files}: {skipped}")]
    Nothing { files: String, skipped: String },
    #[error("an input file changed while it was replayed: run again")]
    Changed,
    #[error("cannot start the gateway to replay through: {0}")]
    Start(String),
    #[error("{file}: cannot write: {source}")]
    Write {
        file: String,
        source: std::io::Error,
    },
}

/// The command: load every file (bad input stops the run before any call is sent), start
/// the gateway, replay, write the outputs, exit 0, 1 or 2.
pub fn run(args: ReplayArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("replay: cannot start a runtime: {e}");
            return ExitCode::from(EXIT_INPUT);
        }
    };
    match rt.block_on(replay(&args)) {
        Ok(summary) => {
            println!("{}", summary.line());
            ExitCode::from(if summary.green() {
                EXIT_MATCHED
            } else {
                EXIT_DIFFERENCES
            })
        }
        Err(e) => {
            eprintln!("replay: {e}");
            ExitCode::from(EXIT_INPUT)
        }
    }
}

async fn replay(args: &ReplayArgs) -> Result<report::Summary, ReplayError> {
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err(ReplayError::Rate);
    }
    let mut inputs = inputs::Inputs::default();
    for file in &args.files {
        let name = file.display().to_string();
        let read = |source| ReplayError::Read {
            file: name.clone(),
            source,
        };
        let format = match args.format {
            Some(f) => f,
            None => detect(file)
                .map_err(read)?
                .ok_or_else(|| ReplayError::UnknownFormat { file: name.clone() })?,
        };
        match format {
            Format::Jsonl => inputs.push_lines(name, file.clone()),
            Format::Har => {
                let text = std::fs::read_to_string(file).map_err(read)?;
                har::load(&name, &text, &mut inputs)?;
            }
        }
    }
    let target = target::Target::start(args).await?;
    let ran = runner::run(&target, args, &inputs).await;
    target.stop().await;
    let ran = ran?;
    write_all(args, &ran)?;
    Ok(ran.summary)
}

/// Writes every output asked for, and one line per call that failed the run on stdout.
fn write_all(args: &ReplayArgs, ran: &report::Ran) -> Result<(), ReplayError> {
    for o in &ran.outcomes {
        if matches!(
            o.judged.kind,
            verdict::Kind::Differing | verdict::Kind::Failed
        ) {
            let paths: Vec<String> = o.judged.differences.iter().map(|d| d.named()).collect();
            println!("DIFF {}: {}", o.name(), paths.join(", "));
        }
    }
    let write = |path: &std::path::Path, text: String| {
        std::fs::write(path, text).map_err(|source| ReplayError::Write {
            file: path.display().to_string(),
            source,
        })
    };
    if let Some(p) = &args.report {
        write(p, report::json(ran))?;
    }
    if let Some(p) = &args.junit {
        write(p, junit::render(ran))?;
    }
    if let Some(p) = &args.html {
        write(p, html::render(ran))?;
    }
    Ok(())
}

/// `har` for a `.har` file, capture lines for `.jsonl`/`.ndjson`; else by the content:
/// capture lines start with an object carrying `"v"` (an empty file is an empty capture),
/// a HAR file is one object with `"log"`; else unknown.
fn detect(file: &std::path::Path) -> std::io::Result<Option<Format>> {
    if let Some(f) = by_extension(file) {
        return Ok(Some(f));
    }
    let mut first = String::new();
    let mut reader = std::io::BufReader::new(std::fs::File::open(file)?);
    while first.trim().is_empty() {
        first.clear();
        if std::io::BufRead::read_line(&mut reader, &mut first)? == 0 {
            return Ok(Some(Format::Jsonl));
        }
    }
    if is_capture_line(&first) {
        return Ok(Some(Format::Jsonl));
    }
    let text = std::fs::read_to_string(file)?;
    Ok(is_har(&text).then_some(Format::Har))
}

fn by_extension(file: &std::path::Path) -> Option<Format> {
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext.eq_ignore_ascii_case("har") {
        Some(Format::Har)
    } else if ext.eq_ignore_ascii_case("jsonl") || ext.eq_ignore_ascii_case("ndjson") {
        Some(Format::Jsonl)
    } else {
        None
    }
}

fn is_capture_line(line: &str) -> bool {
    matches!(serde_json::from_str(line), Ok(serde_json::Value::Object(m)) if m.contains_key("v"))
}

fn is_har(text: &str) -> bool {
    matches!(serde_json::from_str(text), Ok(serde_json::Value::Object(m)) if m.contains_key("log"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_format_is_told_by_extension_then_content() {
        let har = r#"{"log":{"entries":[]}}"#;
        let line = r#"{"v":1,"method":"GET"}"#;
        assert_eq!(by_extension(Path::new("a.HAR")), Some(Format::Har));
        assert_eq!(by_extension(Path::new("a.jsonl")), Some(Format::Jsonl));
        assert_eq!(by_extension(Path::new("export.json")), None);
        assert!(is_capture_line(line) && !is_capture_line(har));
        assert!(is_har(har) && !is_har(line) && !is_har("hello"));
        let dir = tempfile::tempdir().unwrap();
        for (name, text, expected) in [
            ("export.json", har, Some(Format::Har)),
            ("capture.log", line, Some(Format::Jsonl)),
            ("empty.log", "\n\n", Some(Format::Jsonl)),
            ("x.txt", "hello", None),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            assert_eq!(detect(&p).unwrap(), expected, "{name}");
        }
    }
}
