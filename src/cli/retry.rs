//! `etlm retry`: runs the last run's command again on the nodes that ended in an error,
//! failed a test or were skipped (`result:error result:fail result:skipped`), read from
//! `run_results.json` (of `--state` when given, else this project's target folder).

use super::run::RunArgs;
use super::{GlobalArgs, Outcome};
use crate::diagnostics::{Code, Diagnostic, SourceMap};
use crate::project::{Env, load_project};
use crate::report::Output;
use crate::run::execute::Command;
use crate::state::artifacts::PreviousRun;

/// The statuses a retry runs again.
const RETRIED: [&str; 3] = ["error", "fail", "skipped"];

pub fn run(
    global: &GlobalArgs,
    args: &RunArgs,
    env: Env,
    sources: &SourceMap,
    out: &Output,
) -> Result<Outcome, Vec<Diagnostic>> {
    if !global.select.is_empty() || !global.exclude.is_empty() {
        return Err(vec![
            Diagnostic::error(
                Code::InvalidArgument,
                "`etlm retry` chooses its own nodes; it takes no `--select` or `--exclude`",
            )
            .with_help("to pick nodes by their last result, use e.g. `etlm run -s result:error+`"),
        ]);
    }
    let opts = global.load_options(Default::default(), env.clone());
    let project = load_project(&opts, sources).map_err(|d| d.0)?;
    let last = PreviousRun::load(&super::selection(global).results_dir(&project)).map_err(|d| vec![d])?;
    let command = match last.metadata.command.as_str() {
        "seed" => Command::Seed,
        "run" => Command::Run,
        "build" => Command::Build,
        "test" => Command::Test,
        "snapshot" => Command::Snapshot,
        "backfill" => {
            return Err(vec![
                Diagnostic::error(
                    Code::RetryUnsupported,
                    "the last run was a backfill, which `etlm retry` cannot repeat",
                )
                .with_help("run the same `etlm backfill --start .. --end ..` with `--missing` to do the periods left"),
            ]);
        }
        other => {
            return Err(vec![Diagnostic::error(
                Code::InvalidState,
                format!("the last run's command `{other}` is not one etlm runs"),
            )]);
        }
    };
    if !last.results.iter().any(|r| RETRIED.contains(&r.status.as_str())) {
        out.summary(
            &format!("nothing to retry: every node of the last `etlm {}` succeeded", command.as_str()),
            serde_json::json!({"retried": 0, "command": command.as_str()}),
        );
        return Ok(Outcome::Success);
    }
    let mut retry = global.clone();
    retry.select = RETRIED.iter().map(|s| format!("result:{s}")).collect();
    super::run::run(command, &retry, args, env, sources)
}
