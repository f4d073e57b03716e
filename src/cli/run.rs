//! `etlm seed`, `run`, `build`, `test`, `snapshot` and `backfill`: their flags, turned
//! into one `run::command::run_command` call (which compiles, runs the selected nodes in
//! DAG order and records the run), and its summary into an exit code.

use super::{GlobalArgs, Outcome};
use crate::diagnostics::{Code, Diagnostic, SourceMap};
use crate::engine::failpoint::Failpoints;
use crate::project::Env;
use crate::report::progress::RunReport;
use crate::run::command::{RunRequest, run_command};
use crate::run::execute::{Command, Periods};
use crate::window;

/// Flags of the commands that build.
#[derive(Debug, clap::Args, Clone)]
pub struct RunArgs {
    /// How many models to build at once (default: the number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Stop at the first failure; nodes not started are skipped.
    #[arg(long)]
    pub fail_fast: bool,
    /// Rebuild incremental models and reload seeds from scratch.
    #[arg(long)]
    pub full_refresh: bool,
    /// Wait for another run on the same target to finish instead of failing at once.
    #[arg(long)]
    pub wait_for_lock: bool,
    /// Read models and seeds that are not selected from the relations of the `--state`
    /// build (e.g. production's warehouse) instead of this target.
    #[arg(long)]
    pub defer: bool,
    /// Where to write the run's Prometheus figures (default: target/metrics.prom).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<std::path::PathBuf>,
    /// Reuse each node whose SQL, config and inputs are provably as at its last
    /// successful build, instead of building it (default: the project's
    /// `flags: {skip_unchanged: ...}`).
    #[arg(long, overrides_with = "no_skip_unchanged")]
    pub skip_unchanged: bool,
    /// Build every selected node, whatever the project's `flags` say.
    #[arg(long)]
    pub no_skip_unchanged: bool,
}

/// Flags of `etlm backfill`.
#[derive(Debug, clap::Args, Clone)]
pub struct BackfillArgs {
    /// The first day (or time) to process, e.g. 2024-01-01.
    #[arg(long)]
    pub start: String,
    /// The last day (or time) to process, inclusive.
    #[arg(long)]
    pub end: String,
    /// Only the periods not recorded as done.
    #[arg(long)]
    pub missing: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

impl BackfillArgs {
    /// The range as `Periods`; a date-only `--end` covers its whole day.
    fn periods(&self) -> Result<Periods, Vec<Diagnostic>> {
        let parse = |flag: &str, text: &str| {
            window::parse_time(text).ok_or_else(|| {
                vec![Diagnostic::error(Code::InvalidArgument, format!("`{flag} {text}` is not a date like 2024-01-31"))]
            })
        };
        let start = parse("--start", &self.start)?;
        let mut end = parse("--end", &self.end)?;
        if self.end.trim().len() == 10 {
            end += chrono::Duration::days(1) - chrono::Duration::seconds(1);
        }
        if end < start {
            return Err(vec![Diagnostic::error(Code::InvalidArgument, "`--end` is before `--start`")]);
        }
        Ok(Periods::Range { start, end, missing: self.missing })
    }
}

/// `etlm backfill`: the selected windowed models, one batch per period of the range.
pub fn backfill(
    global: &GlobalArgs,
    args: &BackfillArgs,
    env: Env,
    sources: &SourceMap,
) -> Result<Outcome, Vec<Diagnostic>> {
    let periods = args.periods()?;
    run_periods(Command::Backfill, global, &args.run, periods, env, sources)
}

pub fn run(
    command: Command,
    global: &GlobalArgs,
    args: &RunArgs,
    env: Env,
    sources: &SourceMap,
) -> Result<Outcome, Vec<Diagnostic>> {
    run_periods(command, global, args, Periods::Resume { now: chrono::Utc::now() }, env, sources)
}

fn run_periods(
    command: Command,
    global: &GlobalArgs,
    args: &RunArgs,
    periods: Periods,
    env: Env,
    sources: &SourceMap,
) -> Result<Outcome, Vec<Diagnostic>> {
    let failpoints = Failpoints::parse(env.get("ETLM_FAILPOINT").map(String::as_str))
        .map_err(|m| vec![Diagnostic::error(Code::InvalidFailpoint, m)])?;
    let request = RunRequest {
        command,
        threads: args.threads,
        fail_fast: args.fail_fast,
        full_refresh: args.full_refresh,
        wait_for_lock: args.wait_for_lock,
        defer: args.defer,
        periods,
        failpoints,
        metrics_file: args.metrics_file.clone(),
        skip_unchanged: match (args.skip_unchanged, args.no_skip_unchanged) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
    };
    let invocation = super::invocation(global, env, sources)?;
    let summary = run_command(&invocation, &request, sources, &RunReport::new(global.format, sources))?;
    Ok(match summary.interrupted {
        Some(signal) => Outcome::Interrupted(signal),
        None if summary.failed() => Outcome::Failure,
        None => Outcome::Success,
    })
}
