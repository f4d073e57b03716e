//! The `etlm` binary: parses arguments, runs the command, maps the outcome to an exit code
//! (and a panic, reported as an internal error, to 2).

use std::process::ExitCode;

use clap::Parser;

// mimalloc: compile allocates many small strings on every core; the system allocator's
// per-thread arenas spent a fifth of the time there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc's own option setter, from the library libmimalloc-sys links in.
unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (include/mimalloc.h of the
/// mimalloc that libmimalloc-sys 0.1.49 vendors; Cargo.lock pins it).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Freed memory goes back to the system after 100 ms instead of mimalloc's 1 s: a build
/// runs query after query, each freeing what it held, and with the default the pages of
/// finished queries piled up (peak RSS 971 MB against 476 MB, for 6% more time, on the
/// N=1000 benchmark with table layers). `MIMALLOC_PURGE_DELAY` still overrides it.
fn return_freed_memory_sooner() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a process-wide integer option; mimalloc reads it atomically.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 100) };
    }
}

fn main() -> ExitCode {
    return_freed_memory_sooner();
    let args = etlm::cli::Cli::parse();
    let env: etlm::project::Env = std::env::vars().collect();
    etlm::cli::panic::install_hook(&env);
    // A panic is a bug: its report is printed by the hook, and the exit code is 2.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| etlm::cli::run(args, env))) {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(_) => ExitCode::from(2),
    }
}
