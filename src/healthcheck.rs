//! `legacy-gateway healthcheck`: the probe a container runtime runs (Docker `HEALTHCHECK`).
//! The runtime image carries no curl or shell tools, so the binary probes itself: one
//! `GET /_gateway/healthz` on the client port, exit 0 on a 200 and 1 on anything else.
//!
//! The port comes from where `serve` takes it (`--listen`, `LEGACY_GATEWAY_LISTEN`, the
//! configuration file's `listen`, the default), so the same image settings serve both. An
//! unspecified bind address (`0.0.0.0`, `::`) is probed on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::config::{Config, Overrides};

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Configuration file (TOML); only its `listen` is used.
    #[arg(long, env = "LEGACY_GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// The address the gateway listens on [default: the configuration's, else 127.0.0.1:8080].
    #[arg(long, env = "LEGACY_GATEWAY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// How long to wait for the answer, connection included.
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
}

/// The address to probe: loopback when the gateway binds every interface.
pub fn probe_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

pub fn run(args: HealthcheckArgs) -> ExitCode {
    let overrides = Overrides {
        listen: args.listen,
        ..Overrides::default()
    };
    let listen = match Config::load(args.config.as_deref(), &overrides) {
        Ok(c) => c.listen,
        Err(e) => {
            eprintln!("unhealthy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = format!("http://{}/_gateway/healthz", probe_addr(listen));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("unhealthy: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    match runtime.block_on(probe(&url, timeout)) {
        Ok(()) => {
            println!("healthy: {url}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("unhealthy: {url}: {why}");
            ExitCode::FAILURE
        }
    }
}

async fn probe(url: &str, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client.get(url).send().await.map_err(|e| {
        if e.is_timeout() {
            "no answer in time".to_string()
        } else if e.is_connect() {
            "connection refused or unreachable".to_string()
        } else {
            e.to_string()
        }
    })?;
    if resp.status() == reqwest::StatusCode::OK {
        Ok(())
    } else {
        Err(format!("answered {}", resp.status()))
    }
}
