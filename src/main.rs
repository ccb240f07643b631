//! The `legacy-gateway` binary: parse the command line, run one command.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use legacy_gateway::cli::{self, Cli, Command};

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(a) => cli::serve(a),
        Command::Check(a) => cli::check(a),
        Command::Sandbox(a) => cli::sandbox(a),
        Command::Events(a) => cli::events(a),
        Command::Healthcheck(a) => legacy_gateway::healthcheck::run(a),
    }
}
