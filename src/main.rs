//! The `etlm` binary: parses arguments, runs the command, maps the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = etlm::cli::Cli::parse();
    let env: etlm::project::Env = std::env::vars().collect();
    ExitCode::from(etlm::cli::run(args, env).code())
}
