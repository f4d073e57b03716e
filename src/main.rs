//! The `etlm` binary: parses arguments, runs the command, maps the outcome to an exit code
//! (and a panic, reported as an internal error, to 2).

use std::process::ExitCode;

use clap::Parser;

// mimalloc: compile allocates many small strings on every core; the system allocator's
// per-thread arenas spent a fifth of the time there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = etlm::cli::Cli::parse();
    let env: etlm::project::Env = std::env::vars().collect();
    etlm::cli::panic::install_hook(&env);
    // A panic is a bug: its report is printed by the hook, and the exit code is 2.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| etlm::cli::run(args, env))) {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(_) => ExitCode::from(2),
    }
}
