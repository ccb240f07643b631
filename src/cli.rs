//! The command line: `serve`, `check`, `sandbox`, `events`, `healthcheck`, `shadow-report`,
//! `replay`. Every flag of `serve` can also be set in the environment (`LEGACY_GATEWAY_*`),
//! which wins over the configuration file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, LogFormat, Mode, Overrides};
use crate::mapping::Mappings;

#[derive(Debug, Parser)]
#[command(
    name = "legacy-gateway",
    version,
    about = "Legacy User API and user-registry clients in front of the Users Orchestrator API (v4)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (on the embedded v4 sandbox when no orchestrator is configured: on a
    /// loopback listener only, unless `--sandbox` asks for it).
    Serve(ServeArgs),
    /// Validate the configuration and every mapping file, then exit.
    Check(CheckArgs),
    /// Run only the embedded v4 sandbox, as a stand-in orchestrator for other tools.
    Sandbox(SandboxArgs),
    /// Translate event records (JSON lines) between legacy and v4 codes.
    Events(EventsArgs),
    /// Ask a running gateway for `/_gateway/healthz`; exit 0 when it answers 200 (for a
    /// container `HEALTHCHECK`: the image has no curl).
    Healthcheck(crate::healthcheck::HealthcheckArgs),
    /// Read the shadow report of each instance given (their admin listeners) and write the
    /// figures added up, as JSON or (`--html FILE`) as the shadow page.
    ShadowReport(crate::shadow::fleet::ShadowReportArgs),
    /// Send captured calls (capture files or HAR) again through the translation to a v4 and
    /// compare each answer with the captured one; exit 0 only when all match (1: differences,
    /// 2: unusable input).
    Replay(crate::replay::ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Log format.
    #[arg(long, value_enum, env = "LEGACY_GATEWAY_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Default migration mode for every route [default: translate].
    #[arg(long, value_enum, env = "LEGACY_GATEWAY_MODE")]
    pub mode: Option<Mode>,
    /// Base URL of the legacy User API backend (legacy and shadow modes).
    #[arg(long, env = "LEGACY_GATEWAY_USER_API")]
    pub user_api: Option<String>,
    /// Base URL of the legacy user-registry backend (legacy and shadow modes).
    #[arg(long, env = "LEGACY_GATEWAY_REGISTRY_API")]
    pub registry_api: Option<String>,
    /// Worker threads serving clients, one runtime and listener each [default: the CPUs the
    /// process may run on, or TOKIO_WORKER_THREADS].
    #[arg(long, env = "LEGACY_GATEWAY_WORKERS")]
    pub workers: Option<usize>,
    /// Address of the operator listener (`/_gateway/…`) [default: 127.0.0.1:9901]. Its bearer
    /// token comes from `LEGACY_GATEWAY_ADMIN_TOKEN` or `admin_token_file`.
    #[arg(long, env = "LEGACY_GATEWAY_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Reload when the configuration or mapping files change (a Kubernetes ConfigMap update).
    #[arg(
        long,
        env = "LEGACY_GATEWAY_WATCH_CONFIG",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub watch_config: bool,
}

/// What decides the gateway a configuration makes: the file, the mappings, the listener, the
/// upstream and the sandbox. `serve` and `check` share it, so `check` reads exactly what
/// `serve` would and the two never disagree.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Configuration file (TOML).
    #[arg(long, env = "LEGACY_GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory with the mapping files [default: the copies built into the binary].
    #[arg(long, env = "LEGACY_GATEWAY_MAPPINGS")]
    pub mappings: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "LEGACY_GATEWAY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Base URL of the Users Orchestrator API; without it the embedded sandbox is used.
    #[arg(long, env = "LEGACY_GATEWAY_ORCHESTRATOR")]
    pub orchestrator: Option<String>,
    /// Serve the embedded sandbox (fake users, any token accepted) even on a non-loopback
    /// listener; without it, no orchestrator and a public `--listen` refuse to start.
    #[arg(
        long = "sandbox",
        env = "LEGACY_GATEWAY_SANDBOX",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub sandbox: bool,
}

impl SourceArgs {
    /// The overrides these flags make; secrets only from the environment (a flag would show
    /// them in `ps`).
    fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen,
            orchestrator: self.orchestrator.clone(),
            mappings: self.mappings.clone(),
            sandbox: self.sandbox,
            jwt_secret: jwt_secret(),
            admin_token: admin_token(),
            ..Overrides::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    #[arg(long, env = "LEGACY_GATEWAY_MAPPINGS")]
    pub mappings: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub direction: EventsDirection,
    /// Read from this file instead of stdin.
    #[arg(long, global = true)]
    pub input: Option<PathBuf>,
    /// Write the records of groups that never complete to this file.
    #[arg(long, global = true)]
    pub unmatched: Option<PathBuf>,
    /// Unknown event codes are an error instead of passing through.
    #[arg(long, global = true)]
    pub strict: bool,
    /// Report malformed lines and go on instead of stopping.
    #[arg(long, global = true)]
    pub skip_invalid: bool,
    /// to-legacy: open groups held at most; beyond it the oldest is written to --unmatched
    /// and reported.
    #[arg(long, global = true, default_value_t = crate::events::DEFAULT_MAX_OPEN_GROUPS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_open_groups: usize,
    /// to-legacy: records a group may stay open; beyond it the group is written to
    /// --unmatched and reported [default: no age limit].
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_group_age: Option<u64>,
    /// A progress line on stderr (records, records/s, open groups, unmatched): `auto` when
    /// stderr is a terminal.
    #[arg(long, global = true, value_enum, default_value_t = crate::events::progress::When::Auto)]
    pub progress: crate::events::progress::When,
    #[arg(long, global = true, env = "LEGACY_GATEWAY_MAPPINGS")]
    pub mappings: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum EventsDirection {
    /// Legacy records (PascalCase) → their v4 records (camelCase).
    ToV4,
    /// v4 records → one legacy record per complete group (joined on correlationId).
    ToLegacy,
}

impl ServeArgs {
    /// Every flag and variable `serve` reads, over the ones it shares with `check`.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            log_format: self.log_format,
            mode: self.mode,
            user_api: self.user_api.clone(),
            registry_api: self.registry_api.clone(),
            workers: self.workers,
            admin_listen: self.admin_listen,
            ..self.source.overrides()
        }
    }
}

fn admin_token() -> Option<String> {
    std::env::var("LEGACY_GATEWAY_ADMIN_TOKEN")
        .ok()
        .filter(|s| !s.is_empty())
}

fn jwt_secret() -> Option<String> {
    std::env::var("LEGACY_GATEWAY_JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
}

pub fn serve(args: ServeArgs) -> ExitCode {
    let o = args.overrides();
    let config = match Config::load(args.source.config.as_deref(), &o) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    // Before any runtime: the OTLP exporter's client runs on a thread of its own. Dropped
    // (flushing the last spans) after the runtime has stopped.
    let (_telemetry, otel) = match crate::telemetry::init(
        config.telemetry.otlp_endpoint.as_deref(),
        config.telemetry.service_name.as_deref(),
        config.telemetry.sample_ratio,
    ) {
        Ok(Some((t, layer))) => (Some(t), Some(layer)),
        Ok(None) => (None, None),
        Err(e) => return fail(&e),
    };
    let _log = crate::logging::init_with(config.log_format, otel);
    if let Some(t) = &_telemetry {
        t.log_started();
    }
    let mappings = match Mappings::load(config.mappings_dir.as_deref()) {
        Ok(m) => m,
        Err(e) => return fail(&e),
    };
    runtime().block_on(async move {
        match crate::start_with(config, mappings, o, crate::server::shutdown_signal()).await {
            Ok(running) => {
                if args.watch_config {
                    if let Err(e) = crate::watch::spawn(&running.gateway) {
                        running.shutdown().await;
                        return fail(&e);
                    }
                }
                running.wait().await;
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        }
    })
}

pub fn check(args: CheckArgs) -> ExitCode {
    let o = args.source.overrides();
    let config = match Config::load(args.source.config.as_deref(), &o) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let m = match Mappings::load(config.mappings_dir.as_deref()) {
        Ok(m) => m,
        Err(e) => return fail(&e),
    };
    let upstream = match &config.orchestrator {
        Some(u) => format!("serves {}", crate::redact::url(u)),
        None => "serves the embedded sandbox (fake users, any token accepted)".into(),
    };
    let summary = format!(
        "ok: configuration {} and mappings {} are valid ({} v4 calls for {} {}, one for {} it, {} actions, {} legacy events); {upstream}",
        config.file.as_ref().map_or("<defaults>".into(), |p| p.display().to_string()),
        config.mappings_dir.as_ref().map_or("<embedded>".into(), |p| p.display().to_string()),
        m.user_api.parts.len(),
        m.user_api.method,
        m.user_api.path,
        m.user_api.read.method,
        m.registry.actions.len(),
        m.events.iter().count(),
    );
    // What only building the runtime finds: the CA file, the JWKS file or URL.
    let orchestrator = config
        .orchestrator
        .clone()
        .unwrap_or_else(|| reqwest::Url::parse("http://127.0.0.1:9").expect("a valid literal URL"));
    let built = runtime().block_on(crate::runtime::Runtime::new(
        config,
        m,
        &orchestrator,
        false,
        crate::metrics::Metrics::new(),
    ));
    match built {
        Ok(_) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

pub fn sandbox(args: SandboxArgs) -> ExitCode {
    let _log = crate::logging::init(LogFormat::Text);
    let mappings = match Mappings::load(args.mappings.as_deref()) {
        Ok(m) => m,
        Err(e) => return fail(&e),
    };
    runtime().block_on(async move {
        match crate::sandbox::run(args.listen, mappings.events.clone()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        }
    })
}

pub fn events(args: EventsArgs) -> ExitCode {
    use std::io::{BufReader, BufWriter, Write};
    /// Reads and writes in pieces this large: a few syscalls per thousand records.
    const IO_BUF: usize = 256 * 1024;
    let mappings = match Mappings::load(args.mappings.as_deref()) {
        Ok(m) => m,
        Err(e) => return fail(&e),
    };
    let direction = match args.direction {
        EventsDirection::ToV4 => crate::events::Direction::ToV4,
        EventsDirection::ToLegacy => crate::events::Direction::ToLegacy,
    };
    let opts = crate::events::Options {
        strict: args.strict,
        skip_invalid: args.skip_invalid,
    };
    let limits = crate::events::Limits {
        max_open_groups: args.max_open_groups,
        max_group_age: args.max_group_age,
    };
    let stdin = std::io::stdin();
    let input: Box<dyn std::io::BufRead> = match &args.input {
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => Box::new(BufReader::with_capacity(IO_BUF, f)),
            Err(e) => return fail(&format!("{}: {e}", p.display())),
        },
        None => Box::new(BufReader::with_capacity(IO_BUF, stdin.lock())),
    };
    let mut unmatched = match &args.unmatched {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Some(BufWriter::with_capacity(IO_BUF, f)),
            Err(e) => return fail(&format!("{}: {e}", p.display())),
        },
        None => None,
    };
    let out = BufWriter::with_capacity(IO_BUF, std::io::stdout().lock());
    let display = crate::events::progress::Display::new(args.progress);
    let io = crate::events::Io {
        out,
        report: display.report(),
        unmatched: unmatched.as_mut().map(|w| w as &mut dyn Write),
    };
    let result = crate::events::translate_with(
        direction,
        &mappings.events,
        &opts,
        limits,
        input,
        io,
        &mut |p| display.update(p),
    );
    display.finish();
    if let Some(mut w) = unmatched {
        if let Err(e) = w.flush() {
            return fail(&format!("unmatched output: {e}"));
        }
    }
    match result {
        Ok(summary) => {
            eprintln!(
                "events: {} lines, {} written, {} unknown, {} invalid, {} unmatched groups \
                 ({} flushed early by the limits), at most {} groups open",
                summary.lines,
                summary.written,
                summary.unknown,
                summary.invalid,
                summary.unmatched_groups,
                summary.flushed_groups,
                summary.peak_open_groups
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// The process's own runtime: start-up, signals, reloads, the embedded sandbox and the
/// operations endpoints. Client traffic runs on the workers' runtimes (`server::Workers`), so
/// two threads are plenty, whatever `TOKIO_WORKER_THREADS` says (it sets the worker count).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the tokio runtime cannot be created (out of threads or memory)")
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}
