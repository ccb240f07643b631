//! The gateway binary as a child process: the one way the tests run it, whether to completion
//! (`check`, `events`, `healthcheck`, a `serve` that must refuse to start) or as a running
//! server (`serve` on free ports, output in files) for the tests that must see everything the
//! process writes or send it signals.
//!
//! Every run starts from a clean environment as far as the gateway is concerned: the caller's
//! `LEGACY_GATEWAY_*` variables are never passed on, so a developer's shell cannot change what
//! a test sees. Every wait is bounded, and a child still running when its handle is dropped
//! (a failed assertion) is killed, so a failing test leaves no stray process behind.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_legacy-gateway");

/// How long a run to completion may take before it is killed and reported: a hang guard for
/// a `serve` started by mistake, not a timing assertion.
const RUN_GUARD: Duration = Duration::from_secs(60);
/// How long `serve` may take to log its addresses, and to exit after SIGTERM.
const START_GUARD: Duration = Duration::from_secs(30);
const STOP_GUARD: Duration = Duration::from_secs(20);

/// A command line for the binary, built up and then run to completion ([`Binary::run`]) or
/// started as a server ([`Binary::start`]).
pub struct Binary {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl Binary {
    /// `legacy-gateway ARGS…`, without the caller's `LEGACY_GATEWAY_*` environment.
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("LEGACY_GATEWAY_") {
                cmd.env_remove(k);
            }
        }
        Self { cmd, stdin: None }
    }

    /// `serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0` with `RUST_LOG=info`: the
    /// addresses it got are read back from its log by [`Binary::start`].
    pub fn serve() -> Self {
        Self::new([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .rust_log("info")
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// `--config FILE`.
    pub fn config(self, file: &Path) -> Self {
        self.arg("--config").arg(file)
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    pub fn envs(mut self, vars: &[(&str, &str)]) -> Self {
        for (k, v) in vars {
            self.cmd.env(k, v);
        }
        self
    }

    /// The working directory the child starts in (a relative `--config` is read from it).
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    pub fn rust_log(self, filter: &str) -> Self {
        self.env("RUST_LOG", filter)
    }

    /// What the child reads on stdin (otherwise nothing: stdin is closed).
    pub fn stdin(mut self, text: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(text.into());
        self
    }

    /// Runs to completion and returns what it wrote. Blocking; a run that does not end within
    /// the guard is killed and fails the test.
    pub fn run(mut self) -> Ran {
        let mut child = Reaped(
            self.cmd
                .stdin(if self.stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the binary runs"),
        );
        // Stdin is written and the pipes drained on their own threads, so a large input or
        // output can never block the child and the test against each other.
        let writer = self.stdin.take().map(|bytes| {
            let mut pipe = child.0.stdin.take().unwrap();
            std::thread::spawn(move || {
                // The child may exit without reading it all (a refusal): not an error here.
                let _ = pipe.write_all(&bytes);
            })
        });
        let stdout = drain(child.0.stdout.take().unwrap());
        let stderr = drain(child.0.stderr.take().unwrap());
        let deadline = Instant::now() + RUN_GUARD;
        let status = loop {
            if let Some(s) = child.0.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = child.0.kill();
                let _ = child.0.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(w) = writer {
            w.join().unwrap();
        }
        let ran = Ran {
            status: status.unwrap_or_else(ExitStatus::default),
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        };
        assert!(
            status.is_some(),
            "{:?} did not exit; stderr: {}",
            self.cmd.get_args().collect::<Vec<_>>(),
            ran.stderr
        );
        ran
    }

    /// Starts it with stdout and stderr in `log_dir`, and returns once it has logged both
    /// its addresses (the "listening" and the admin line).
    pub async fn start(mut self, log_dir: &Path) -> GatewayProcess {
        let stdout = log_dir.join("stdout.log");
        let stderr = log_dir.join("stderr.log");
        let child = self
            .cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("the binary starts");
        let mut gw = GatewayProcess {
            child: Reaped(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stdout,
            stderr,
        };
        let deadline = Instant::now() + START_GUARD;
        loop {
            let log = gw.stderr_so_far();
            let admin = log.lines().find_map(admin_addr);
            if let (Some(addr), Some(admin)) = (log.lines().find_map(listening_addr), admin) {
                gw.addr = addr;
                gw.admin_addr = admin;
                return gw;
            }
            if let Some(status) = gw.child.0.try_wait().unwrap() {
                panic!("serve exited with {status} before listening: {log}");
            }
            assert!(
                Instant::now() < deadline,
                "serve did not log its addresses: {log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What a run to completion wrote, and how it ended.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// The exit code, -1 when a signal ended it.
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes).unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A child killed (SIGKILL) when dropped still running: no stray processes after a failure.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A running `serve`, started by [`Binary::start`].
pub struct GatewayProcess {
    child: Reaped,
    pub addr: SocketAddr,
    /// The admin listener (`/_gateway/…`).
    pub admin_addr: SocketAddr,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl GatewayProcess {
    /// `serve` on free ports with `--config CONFIG EXTRA…` and `RUST_LOG`, output in
    /// `log_dir`: the common case of [`Binary::start`].
    pub async fn start(config: &Path, log_dir: &Path, extra: &[&str], rust_log: &str) -> Self {
        Binary::serve()
            .config(config)
            .args(extra)
            .rust_log(rust_log)
            .start(log_dir)
            .await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://ADMIN/_gateway/{path}`.
    pub fn admin(&self, path: &str) -> String {
        format!("http://{}/_gateway/{path}", self.admin_addr)
    }

    /// The child's process id (its `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// What it has logged on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends `SIG{name}` (`HUP`, `TERM`) to this child only.
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([format!("-{name}"), self.child.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{name}");
    }

    /// SIGTERM, then a clean exit (status 0) within a guard; returns stdout and stderr.
    pub async fn stop(mut self) -> (String, String) {
        self.signal("TERM");
        let deadline = Instant::now() + STOP_GUARD;
        let status = loop {
            if let Some(s) = self.child.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop after SIGTERM: {}",
                self.stderr_so_far()
            );
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
