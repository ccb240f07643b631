//! The gateway binary as a child process (`serve` on a free port, output in files), for the
//! tests that must see everything the process writes or send it signals.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_legacy-gateway");

pub struct GatewayProcess {
    child: Child,
    pub addr: SocketAddr,
    /// The admin listener (`/_gateway/…`).
    pub admin_addr: SocketAddr,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl GatewayProcess {
    /// `serve --listen 127.0.0.1:0 --config CONFIG EXTRA…` with `RUST_LOG`, output in
    /// `log_dir`; returns once the "listening" line names the address. The caller's
    /// `LEGACY_GATEWAY_*` environment is not passed on.
    pub async fn start(config: &Path, log_dir: &Path, extra: &[&str], rust_log: &str) -> Self {
        Self::start_with_env(config, log_dir, extra, rust_log, &[]).await
    }

    /// [`Self::start`] with extra environment variables for the child.
    pub async fn start_with_env(
        config: &Path,
        log_dir: &Path,
        extra: &[&str],
        rust_log: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let stdout = log_dir.join("stdout.log");
        let stderr = log_dir.join("stderr.log");
        let mut cmd = Command::new(BIN);
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(config)
        .args(extra);
        for (k, _) in std::env::vars() {
            if k.starts_with("LEGACY_GATEWAY_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("the binary starts");
        let mut gw = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stdout,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = std::fs::read_to_string(&gw.stderr).unwrap_or_default();
            let admin = log.lines().find_map(admin_addr);
            if let (Some(addr), Some(admin)) = (log.lines().find_map(listening_addr), admin) {
                gw.addr = addr;
                gw.admin_addr = admin;
                return gw;
            }
            if let Some(status) = gw.child.try_wait().unwrap() {
                panic!("serve exited with {status} before listening: {log}");
            }
            if Instant::now() > deadline {
                let _ = gw.child.kill();
                let _ = gw.child.wait();
                panic!("serve did not log its address: {log}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://ADMIN/_gateway/{path}`.
    pub fn admin(&self, path: &str) -> String {
        format!("http://{}/_gateway/{path}", self.admin_addr)
    }

    /// SIGTERM (to this child only), then a clean exit within a guard; returns stdout and
    /// stderr.
    pub async fn stop(mut self) -> (String, String) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("serve did not stop after SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let out = std::fs::read_to_string(&self.stdout).unwrap();
        let err = std::fs::read_to_string(&self.stderr).unwrap();
        assert!(
            status.success(),
            "exit {status} after SIGTERM; stderr: {err}"
        );
        (out, err)
    }
}

/// `addr` of the "legacy-gateway listening" line, in the text or the JSON format.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    addr_of(line, "legacy-gateway listening")
}

/// `addr` of the line announcing the admin listener.
pub fn admin_addr(line: &str) -> Option<SocketAddr> {
    addr_of(line, "legacy-gateway admin endpoints")
}

fn addr_of(line: &str, marker: &str) -> Option<SocketAddr> {
    if !line.contains(marker) {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<Value>(line) {
        return v["addr"].as_str()?.parse().ok();
    }
    let rest = line.split("addr=").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}
