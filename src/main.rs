//! The `legacy-gateway` binary: parse the command line, run one command.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use legacy_gateway::cli::{self, Cli, Command};

/// mimalloc instead of glibc's malloc (the default `mimalloc` feature): a request makes some
/// fifty allocations, and glibc's `malloc` and `free` were a fifth of its instructions. Version
/// 2 with transparent huge pages off: version 3, or huge pages, doubled the resident memory.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(a) => cli::serve(a),
        Command::Check(a) => cli::check(a),
        Command::Sandbox(a) => cli::sandbox(a),
        Command::Events(a) => cli::events(a),
        Command::Healthcheck(a) => legacy_gateway::healthcheck::run(a),
        Command::ShadowReport(a) => legacy_gateway::shadow::fleet::run(a),
        Command::Replay(a) => legacy_gateway::replay::run(a),
    }
}
