//! `etlm seed`, `etlm run` and `etlm build`: compile, open the target, run the selected
//! nodes in DAG order, write target/run_results.json and the run history.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::{GlobalArgs, Outcome};
use crate::diagnostics::{Diagnostic, SourceMap};
use crate::engine::Access;
use crate::engine::failpoint::Failpoints;
use crate::engine::{DeferMode, Deferred};
use crate::graph::ResourceType;
use crate::history::Status;
use crate::project::Env;
use crate::report::progress::Progress;
use crate::report::{Output, print_diagnostics, write_atomic};
use crate::run::execute::{Command, Periods, RunOptions, execute, plan};
use crate::run::seeds::read_seeds;
use crate::state::run_results::run_results_json;
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
                vec![Diagnostic::error("invalid-argument", format!("`{flag} {text}` is not a date like 2024-01-31"))]
            })
        };
        let start = parse("--start", &self.start)?;
        let mut end = parse("--end", &self.end)?;
        if self.end.trim().len() == 10 {
            end += chrono::Duration::days(1) - chrono::Duration::seconds(1);
        }
        if end < start {
            return Err(vec![Diagnostic::error("invalid-argument", "`--end` is before `--start`")]);
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
    out: &Output,
) -> Result<Outcome, Vec<Diagnostic>> {
    let periods = args.periods()?;
    run_periods(Command::Backfill, global, &args.run, periods, env, sources, out)
}

pub fn run(
    command: Command,
    global: &GlobalArgs,
    args: &RunArgs,
    env: Env,
    sources: &SourceMap,
    out: &Output,
) -> Result<Outcome, Vec<Diagnostic>> {
    run_periods(command, global, args, Periods::Resume { now: chrono::Utc::now() }, env, sources, out)
}

fn run_periods(
    command: Command,
    global: &GlobalArgs,
    args: &RunArgs,
    periods: Periods,
    env: Env,
    sources: &SourceMap,
    out: &Output,
) -> Result<Outcome, Vec<Diagnostic>> {
    let for_run = |deferred| super::ForRun {
        full_refresh: args.full_refresh,
        deferred,
        which: command.as_str(),
        defer_failed_queries: true,
    };
    let mut compiled = super::compile_for_run(global, env.clone(), sources, for_run(Default::default()))?;
    // Models whose compile-time queries (`run_query`, `dbt_utils.get_column_values`) read
    // what has not been built yet: as dbt builds a model's parents before it renders it,
    // what they read is built first, and the project compiled again.
    if !compiled.unrendered.is_empty() && matches!(command, Command::Run | Command::Build) {
        let mut first = read_by_unrendered(&compiled);
        // `build` loads its seeds first too: a query may find tables by name
        // (`dbt_utils.get_relations_by_pattern`) rather than through `ref()`.
        if command == Command::Build {
            let seeds = super::selected(global, &compiled)?;
            first.extend(seeds.into_iter().filter(|id| compiled.nodes[id].resource_type == ResourceType::Seed));
        }
        if !first.is_empty() {
            out.lines(&[format!(
                "{} models query relations while compiling that are not built yet: building what they read first",
                compiled.unrendered.len()
            )]);
            let outcome =
                run_compiled(command, global, args, periods.clone(), env.clone(), sources, out, compiled, Some(first))?;
            if outcome != Outcome::Success {
                return Ok(outcome);
            }
            compiled = super::compile_for_run(global, env.clone(), sources, for_run(Default::default()))?;
        }
    }
    run_compiled(command, global, args, periods, env, sources, out, compiled, None)
}

/// What the unrendered models of `compiled` read (their ancestors), less what waits on
/// them.
fn read_by_unrendered(compiled: &crate::compile::CompiledProject) -> BTreeSet<String> {
    let waiting: BTreeSet<String> = compiled
        .unrendered
        .keys()
        .flat_map(|id| compiled.dag.descendants(id, None).into_iter().chain([id.clone()]))
        .collect();
    compiled
        .unrendered
        .keys()
        .flat_map(|id| compiled.dag.ancestors(id, None))
        .filter(|id| !waiting.contains(id))
        .collect()
}

/// Runs the compiled project: the nodes `only` names, else the command line's selection.
/// A selected node left unrendered is an error (exit 2).
#[allow(clippy::too_many_arguments)]
fn run_compiled(
    command: Command,
    global: &GlobalArgs,
    args: &RunArgs,
    periods: Periods,
    env: Env,
    sources: &SourceMap,
    out: &Output,
    compiled: crate::compile::CompiledProject,
    only: Option<BTreeSet<String>>,
) -> Result<Outcome, Vec<Diagnostic>> {
    let failpoints = Failpoints::parse(env.get("ETLM_FAILPOINT").map(String::as_str))
        .map_err(|m| vec![Diagnostic::error("invalid-failpoint", m)])?;
    let for_run = |deferred| super::ForRun {
        full_refresh: args.full_refresh,
        deferred,
        which: command.as_str(),
        defer_failed_queries: false,
    };
    print_diagnostics(out, &compiled.warnings, sources);
    let selected = match only {
        Some(ids) => ids,
        None => super::selected(global, &compiled)?,
    };
    let blocked: Vec<Diagnostic> = compiled
        .unrendered
        .iter()
        .filter(|(id, _)| selected.contains(*id) && command.builds(&compiled.nodes[*id]))
        .map(|(_, d)| d.clone())
        .collect();
    if !blocked.is_empty() {
        return Err(blocked);
    }
    let (compiled, deferred) = match (args.defer, crate::engine::defer_mode(&compiled.project.target)) {
        (false, _) => (compiled, None),
        // One database holds both builds: `ref()` names the other build's relation.
        (true, DeferMode::ByName) => {
            let other = deferred_relations(global, &compiled, &selected)?;
            let reads = other.into_iter().map(|(id, d)| (id, d.stored)).collect();
            (super::compile_for_run(global, env, sources, for_run(reads))?, None)
        }
        (true, DeferMode::Lend) => {
            let deferred = lent(global, &compiled, &selected)?;
            (compiled, Some(deferred))
        }
    };
    // After `--state` is read: it may be this very target folder.
    super::compile::write_artifacts(&compiled, &selected)?;
    let threads = args
        .threads
        .or(compiled.project.target.threads)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let run_id = super::new_run_id();
    let plan = plan(&compiled, command, &selected);
    let job_ids: Vec<String> = plan.jobs.iter().map(|j| j.id.clone()).collect();
    let seeds = read_seeds(&compiled, &job_ids, sources)?;
    let opts = RunOptions {
        command,
        threads,
        fail_fast: args.fail_fast,
        full_refresh: args.full_refresh,
        failpoints,
        selected,
        run_id: run_id.clone(),
        seeds,
        periods,
    };
    let total = plan.lines();
    let compiled = Arc::new(compiled);
    let runtime = super::runtime()?;
    let summary = runtime.block_on(async {
        let engine = super::open_engine(&compiled.project, Access::Write { wait: args.wait_for_lock }).await?;
        if let Some((other, deferred)) = &deferred {
            engine
                .defer(other, deferred)
                .await
                .map_err(|e| vec![super::engine_diagnostic(e, &compiled.project.target)])?;
        }
        let progress = Progress::new(global.format, total, command.as_str());
        let history = engine
            .history()
            .row_count_history()
            .await
            .map_err(|e| vec![super::engine_diagnostic(e, &compiled.project.target)])?;
        let intervals = engine
            .history()
            .intervals()
            .await
            .map_err(|e| vec![super::engine_diagnostic(e, &compiled.project.target)])?;
        run_hooks(engine.as_ref(), "on-run-start", &compiled.run_hooks.pre).await?;
        let run = execute(compiled.clone(), engine.clone(), &opts, plan, history, intervals, &progress);
        let summary = tokio::select! {
            summary = run => summary,
            _ = tokio::signal::ctrl_c() => {
                engine.cancel().await;
                return Err(vec![Diagnostic::error("interrupted", "interrupted: running statements were cancelled")
                    .with_note("nothing half-built was published; the next run picks up from here")]);
            }
        };
        for r in &summary.results {
            opts.failpoints.hit("before-state-write", r.line.unique_id.rsplit('.').next().unwrap_or_default());
        }
        engine
            .history()
            .record_run(&summary, &compiled.project.vars)
            .await
            .map_err(|e| vec![super::engine_diagnostic(e, &compiled.project.target)])?;
        run_hooks(engine.as_ref(), "on-run-end", &compiled.run_hooks.post).await?;
        let count = |s| summary.count(s);
        let (ok, errors, skipped) = (count(Status::Success), count(Status::Error), count(Status::Skipped));
        let (pass, warn, fail) = (count(Status::Pass), count(Status::Warn), count(Status::Fail));
        let elapsed = (summary.finished_at - summary.started_at).num_milliseconds() as f64 / 1000.0;
        let mut parts = vec![format!("{ok} OK")];
        if pass + warn + fail > 0 {
            parts.push(format!("{pass} passed, {warn} warned, {fail} failed"));
        }
        parts.push(format!("{errors} error{}, {skipped} skipped", if errors == 1 { "" } else { "s" }));
        progress.finish(
            &format!(
                "\n{}: {} in {elapsed:.2} s",
                if summary.failed() { "Finished with errors" } else { "Done" },
                parts.join(", ")
            ),
            serde_json::json!({"summary": {
                "run_id": run_id, "ok": ok, "error": errors, "skipped": skipped,
                "pass": pass, "warn": warn, "fail": fail, "elapsed_s": elapsed,
            }}),
        );
        Ok::<_, Vec<Diagnostic>>(summary)
    })?;
    let target = compiled.project.root.join(&compiled.project.settings.target_path);
    write_atomic(&target.join("run_results.json"), run_results_json(&summary).as_bytes()).map_err(|d| vec![d])?;
    Ok(if summary.failed() { Outcome::Failure } else { Outcome::Success })
}

/// Runs the project's `on-run-start` or `on-run-end` statements; the first that fails
/// stops the command.
async fn run_hooks(engine: &dyn crate::engine::Engine, kind: &str, hooks: &[String]) -> Result<(), Vec<Diagnostic>> {
    for hook in hooks {
        engine.execute(hook).await.map_err(|e| {
            vec![
                Diagnostic::error("hook-failed", format!("{kind} failed: {e}"))
                    .with_note(format!("statement: {}", hook.trim()))
                    .with_help(format!("`{kind}` in the project file")),
            ]
        })?;
    }
    Ok(())
}

/// With `--defer`: every model and seed that is built but not selected, with the
/// relation this project names it by and the one the `--state` build recorded for it,
/// in dependency order.
fn deferred_relations(
    global: &GlobalArgs,
    compiled: &crate::compile::CompiledProject,
    selected: &std::collections::BTreeSet<String>,
) -> Result<Vec<(String, Deferred)>, Vec<Diagnostic>> {
    let state = other_build(global)?;
    Ok(compiled
        .dag
        .topological()
        .into_iter()
        .filter(|id| !selected.contains(*id))
        .filter_map(|id| {
            let node = compiled.nodes.get(id)?;
            if !matches!(node.resource_type, ResourceType::Model | ResourceType::Seed) {
                return None;
            }
            let stored = state.manifest.node(id)?.relation()?;
            Some((id.to_string(), Deferred { relation: node.relation.clone()?, stored }))
        })
        .collect())
}

/// The `--state` build `--defer` reads from.
fn other_build(global: &GlobalArgs) -> Result<crate::state::artifacts::State, Vec<Diagnostic>> {
    super::load_state(global)?.ok_or_else(|| {
        vec![
            Diagnostic::error("missing-state", "`--defer` needs `--state DIR`, the target folder of another build")
                .with_help("e.g. `etlm build -s state:modified+ --defer --state ../main/target`"),
        ]
    })
}

/// `--defer` on an engine that lends relations: the folder of the `--state` build's
/// data, and the deferred relations to read from it.
fn lent(
    global: &GlobalArgs,
    compiled: &crate::compile::CompiledProject,
    selected: &std::collections::BTreeSet<String>,
) -> Result<(PathBuf, Vec<Deferred>), Vec<Diagnostic>> {
    let state = other_build(global)?;
    let warehouse = state.manifest.metadata.warehouse_path.clone().filter(|w| w.is_dir()).ok_or_else(|| {
        vec![
            Diagnostic::error(
                "defer-unavailable",
                format!("the build in `{}` has no embedded-engine warehouse to defer to", state.dir.display()),
            )
            .with_note(format!("its adapter is `{}`", state.manifest.metadata.adapter_type))
            .with_help("run that build (`etlm build`) so its warehouse exists, then try again"),
        ]
    })?;
    let relations = deferred_relations(global, compiled, selected)?.into_iter().map(|(_, d)| d).collect();
    Ok((warehouse, relations))
}
