//! The `etlm` binary: parses arguments, runs the command, maps the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

// mimalloc: compile allocates many small strings on every core; the system allocator's
// per-thread arenas spent a fifth of the time there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = etlm::cli::Cli::parse();
    let env: etlm::project::Env = std::env::vars().collect();
    ExitCode::from(etlm::cli::run(args, env).code())
}
