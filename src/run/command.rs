//! The use case of `seed`, `run`, `build`, `test`, `snapshot` and `backfill`: compile,
//! select, write the artifacts, open the target, run the plan, record the history and
//! write `run_results.json`. [`run_command`] is the whole of it; the CLI turns flags
//! into a [`RunRequest`] and the returned summary into an exit code.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::execute::{Command, Periods, RunOptions, execute, plan};
use super::invocation::{Compile, Invocation, engine_diagnostic, open_engine, runtime};
use super::reporter::Reporter;
use super::reuse::{self, Proofs, Reuse};
use super::schedule::Interrupt;
use super::seeds::read_seeds;
use crate::compile::CompiledProject;
use crate::diagnostics::{Code, Diagnostic, SourceMap};
use crate::engine::failpoint::Failpoints;
use crate::engine::{Access, DeferMode, Deferred, Engine};
use crate::graph::ResourceType;
use crate::history::{NodeResult, RunSummary, Signal, Status};
use crate::openlineage::Emitter;
use crate::project::{Env, mask_secrets, openlineage};
use crate::state::artifacts::State;
use crate::state::metrics::write_run_metrics;

/// What to run, beyond the project and selection.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub command: Command,
    /// How many nodes build at once (default: the target's `threads`, else the cores).
    pub threads: Option<usize>,
    /// Stop at the first failure; nodes not started are skipped.
    pub fail_fast: bool,
    /// Rebuild incremental models and reload seeds from scratch.
    pub full_refresh: bool,
    /// Wait for another run on the target instead of failing at once.
    pub wait_for_lock: bool,
    /// Read unselected models and seeds from the `--state` build.
    pub defer: bool,
    /// The periods windowed models process.
    pub periods: Periods,
    /// Points where crash-safety tests stop the run (`ETLM_FAILPOINT`).
    pub failpoints: Failpoints,
    /// Where the run's Prometheus figures go (default `target/metrics.prom`).
    pub metrics_file: Option<PathBuf>,
    /// `--skip-unchanged` (or `--no-skip-unchanged`); `None` follows the project's flags.
    pub skip_unchanged: Option<bool>,
}

/// Runs a command. Returns what ran (a failed node or test is in the summary, not an
/// error); an `Err` is a command that could not do its job (exit code 2).
pub fn run_command(
    invocation: &Invocation,
    request: &RunRequest,
    sources: &SourceMap,
    reporter: &dyn Reporter,
) -> Result<RunSummary, Vec<Diagnostic>> {
    let command = request.command;
    let compile = |deferred| Compile {
        which: command.as_str(),
        full_refresh: request.full_refresh,
        ask_target: true,
        deferred,
        defer_failed_queries: true,
    };
    let mut compiled = invocation.compile(sources, compile(Default::default()))?;
    // Models whose compile-time queries (`run_query`, `dbt_utils.get_column_values`) read
    // what has not been built yet: as dbt builds a model's parents before it renders it,
    // what they read is built first, and the project compiled again.
    if !compiled.unrendered.is_empty() && matches!(command, Command::Run | Command::Build) {
        let mut first = read_by_unrendered(&compiled);
        // `build` loads its seeds first too: a query may find tables by name
        // (`dbt_utils.get_relations_by_pattern`) rather than through `ref()`.
        if command == Command::Build {
            let seeds = invocation.selected(&compiled)?;
            first.extend(seeds.into_iter().filter(|id| compiled.nodes[id].resource_type == ResourceType::Seed));
        }
        if !first.is_empty() {
            let n = compiled.unrendered.len();
            reporter.note(&format!(
                "{n} {} relations while compiling that are not built yet: building what {} first",
                if n == 1 { "node queries" } else { "nodes query" },
                if n == 1 { "it reads" } else { "they read" },
            ));
            let summary = run_compiled(invocation, request, sources, reporter, compiled, Some(first))?;
            if summary.failed() {
                return Ok(summary);
            }
            compiled = invocation.compile(sources, compile(Default::default()))?;
        }
    }
    run_compiled(invocation, request, sources, reporter, compiled, None)
}

/// What the unrendered models of `compiled` read (their ancestors), less what waits on
/// them.
fn read_by_unrendered(compiled: &CompiledProject) -> BTreeSet<String> {
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

/// Runs the compiled project: the nodes `only` names, else the selection. A selected
/// node left unrendered is an error (exit 2).
fn run_compiled(
    invocation: &Invocation,
    request: &RunRequest,
    sources: &SourceMap,
    reporter: &dyn Reporter,
    compiled: CompiledProject,
    only: Option<BTreeSet<String>>,
) -> Result<RunSummary, Vec<Diagnostic>> {
    let command = request.command;
    reporter.warnings(&compiled.warnings);
    let selected = match only {
        Some(ids) => ids,
        None => {
            reporter.warnings(&invocation.empty_selectors(&compiled)?);
            invocation.selected(&compiled)?
        }
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
    let (compiled, lent) = match (request.defer, crate::engine::defer_mode(&compiled.project.target)) {
        (false, _) => (compiled, None),
        // One database holds both builds: `ref()` names the other build's relation.
        (true, DeferMode::ByName) => {
            let other = deferred_relations(invocation, &compiled, &selected)?;
            let reads = other.into_iter().map(|(id, d)| (id, d.stored)).collect();
            let how = Compile {
                which: command.as_str(),
                full_refresh: request.full_refresh,
                ask_target: true,
                deferred: reads,
                defer_failed_queries: false,
            };
            (invocation.compile(sources, how)?, None)
        }
        (true, DeferMode::Lend) => {
            let lent = lent(invocation, &compiled, &selected)?;
            (compiled, Some(lent))
        }
    };
    // After `--state` is read: it may be this very target folder.
    crate::state::write::write_artifacts(&compiled, &selected)?;
    let threads = request
        .threads
        .or(compiled.project.target.threads)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let run_id = new_run_id();
    let plan = plan(&compiled, command, &selected);
    let job_ids: Vec<String> = plan.jobs.iter().map(|j| j.id.clone()).collect();
    let proofs = Proofs::load(&compiled);
    let skip = request.skip_unchanged.unwrap_or(compiled.project.settings.skip_unchanged);
    // A seed that may be reused is read only if it turns out it must be loaded.
    let eager: Vec<String> = match skip {
        true => job_ids
            .iter()
            .filter(|id| !reuse::same_definition(&compiled, &proofs, &compiled.nodes[*id]))
            .cloned()
            .collect(),
        false => job_ids.clone(),
    };
    let seeds = read_seeds(&compiled, &eager, sources)?;
    let opts = RunOptions {
        command,
        threads,
        fail_fast: request.fail_fast,
        full_refresh: request.full_refresh,
        failpoints: request.failpoints.clone(),
        selected,
        run_id,
        seeds,
        periods: request.periods.clone(),
        interrupt: Interrupt::default(),
        reuse: Reuse { proofs: skip.then(|| Arc::new(proofs.clone())), fingerprints: Default::default() },
    };
    let total = plan.lines();
    let events = openlineage::resolve(
        compiled.project.settings.openlineage.as_ref(),
        &compiled.project.env,
        &compiled.project.root,
    )
    .map_err(|d| vec![d])?;
    let compiled = Arc::new(compiled);
    let emitter = events.map(|config| Emitter::start(&config, compiled.clone(), command.as_str()));
    let caller = reporter;
    let env = &compiled.project.env;
    let observed = Observed { inner: caller, events: emitter.as_ref(), env };
    let reporter: &dyn Reporter = &observed;
    let target = &compiled.project.target;
    let fail = |e| vec![engine_diagnostic(e, target)];
    let outcome = runtime()?.block_on(async {
        let engine = open_engine(target, Access::Write { wait: request.wait_for_lock }).await?;
        engine.share_cores(opts.threads);
        engine.check_writable(&written_schemas(&compiled, &job_ids)).await.map_err(fail)?;
        if let Some((other, deferred)) = &lent {
            engine.defer(other, deferred).await.map_err(fail)?;
        }
        let history = engine.history().row_count_history().await.map_err(fail)?;
        let intervals = engine.history().intervals().await.map_err(fail)?;
        reporter.start(total, command.as_str());
        run_hooks(engine.as_ref(), "on-run-start", &compiled.run_hooks.pre, env).await?;
        let signals = tokio::spawn(listen_for_signals(opts.interrupt.clone(), engine.clone()));
        let mut summary = execute(compiled.clone(), engine.clone(), &opts, plan, history, intervals, reporter).await;
        summary.results.iter_mut().for_each(|r| mask_result(r, env));
        for r in &summary.results {
            opts.failpoints.hit("before-state-write", r.line.unique_id.rsplit('.').next().unwrap_or_default());
        }
        engine.history().record_run(&summary, &compiled.project.vars).await.map_err(fail)?;
        let proofs = reuse::record(&compiled, engine.as_ref(), &opts.reuse.fingerprints, &summary, proofs);
        let last_success = engine.history().last_successes().await.map_err(fail)?;
        // An interrupted run ends as soon as its record is kept.
        if summary.interrupted.is_none() {
            run_hooks(engine.as_ref(), "on-run-end", &compiled.run_hooks.post, env).await?;
        }
        engine.finish().await;
        signals.abort();
        reporter.finish(&summary);
        if let Some(signal) = summary.interrupted {
            reporter.warnings(&[interrupted(&summary, signal)]);
        }
        Ok::<_, Vec<Diagnostic>>((summary, last_success, proofs))
    });
    if let Some(emitter) = emitter {
        let error = outcome.as_ref().err().and_then(|d| d.first()).map(|d| d.message.clone());
        if let Some(warning) = emitter.end(outcome.as_ref().ok().map(|(s, _, _)| s), error.as_deref()) {
            caller.warnings(&[warning]);
        }
    }
    let (summary, last_success, proofs) = outcome?;
    reuse::save(&compiled, &proofs).map_err(|d| vec![d])?;
    crate::state::write::write_run_results(&compiled.project, &summary).map_err(|d| vec![d])?;
    let metrics = request.metrics_file.clone().unwrap_or_else(|| compiled.project.target_dir().join("metrics.prom"));
    write_run_metrics(&metrics, &compiled, &summary, &last_success).map_err(|d| vec![d])?;
    Ok(summary)
}

/// The caller's reporter, with each node's start and result also sent as OpenLineage
/// events when they are on.
struct Observed<'a> {
    inner: &'a dyn Reporter,
    events: Option<&'a Emitter>,
    /// Whose secret values are masked in every message.
    env: &'a Env,
}

impl Reporter for Observed<'_> {
    fn warnings(&self, diagnostics: &[Diagnostic]) {
        self.inner.warnings(diagnostics);
    }

    fn note(&self, text: &str) {
        self.inner.note(text);
    }

    fn start(&self, total: usize, verb: &str) {
        self.inner.start(total, verb);
    }

    fn add_total(&self, n: usize) {
        self.inner.add_total(n);
    }

    fn began(&self, unique_id: &str) {
        if let Some(events) = self.events {
            events.began(unique_id);
        }
        self.inner.began(unique_id);
    }

    fn result(&self, result: &NodeResult) {
        let mut result = result.clone();
        mask_result(&mut result, self.env);
        self.inner.result(&result);
        if let Some(events) = self.events {
            events.finished(&result);
        }
    }

    fn finish(&self, summary: &RunSummary) {
        self.inner.finish(summary);
    }
}

/// Masks secret values in a result's messages (a failed hook's SQL, a database error).
fn mask_result(result: &mut NodeResult, env: &Env) {
    let mask = |m: &mut Option<String>| {
        if let Some(text) = m.as_mut() {
            *text = mask_secrets(env, text);
        }
    };
    mask(&mut result.line.message);
    if let Some(test) = result.test.as_mut() {
        mask(&mut test.message);
    }
}

/// Turns the first SIGINT or SIGTERM into an interrupt of the run and cancels the
/// engine's running statements. A second signal ends the process at once, as its user
/// asks: that is safe, since every publish is atomic (what was not published is at its
/// old version, and the next run sweeps the leftovers), but nothing more is recorded.
async fn listen_for_signals(interrupt: Interrupt, engine: Arc<dyn Engine>) {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        let signal = tokio::select! {
            got = tokio::signal::ctrl_c() => match got {
                Ok(()) => Signal::Interrupt,
                Err(_) => return,
            },
            Some(()) = async {
                match terminate.as_mut() {
                    Some(t) => t.recv().await,
                    None => std::future::pending().await,
                }
            } => Signal::Terminate,
        };
        if interrupt.signal().is_some() {
            std::process::exit(signal.exit_code().into());
        }
        interrupt.trigger(signal);
        engine.cancel().await;
    }
}

/// The warning an interrupted run ends with: what finished, what was stopped, what
/// never started.
fn interrupted(summary: &RunSummary, signal: Signal) -> Diagnostic {
    let message = |r: &&NodeResult| r.line.message.as_deref().unwrap_or_default().to_string();
    let stopped = summary
        .results
        .iter()
        .filter(|r| r.line.status == Status::Error)
        .filter(|r| ["interrupted", "cancel"].iter().any(|w| message(r).contains(w)))
        .count();
    let not_started = summary
        .results
        .iter()
        .filter(|r| r.line.status == Status::Skipped && message(r).starts_with("the run was interrupted"))
        .count();
    let finished = summary.results.len() - stopped - not_started;
    Diagnostic::warning(
        Code::Interrupted,
        format!(
            "interrupted by {}: {finished} results finished, {stopped} stopped while running, {not_started} not started",
            signal.name()
        ),
    )
    .with_note("what was not published is at its old version; the run is recorded in run_results.json and the history")
    .with_help("`etlm retry` runs what did not finish")
}

/// A new run id: sortable by time, unique enough across processes.
fn new_run_id() -> String {
    let now = chrono::Utc::now();
    format!("{}-{:05}", now.format("%Y%m%dT%H%M%S%.6f"), std::process::id() % 100_000)
}

/// Runs the project's `on-run-start` or `on-run-end` statements; the first that fails
/// stops the command.
async fn run_hooks(engine: &dyn Engine, kind: &str, hooks: &[String], env: &Env) -> Result<(), Vec<Diagnostic>> {
    for hook in hooks {
        engine.execute(hook).await.map_err(|e| {
            vec![
                Diagnostic::error(Code::HookFailed, mask_secrets(env, &format!("{kind} failed: {e}")))
                    .with_note(mask_secrets(env, &format!("statement: {}", hook.trim())))
                    .with_help(format!("`{kind}` in the project file")),
            ]
        })?;
    }
    Ok(())
}

/// With `--defer`: every model and seed that is built but not selected, with the
/// relation this project names it by and the one the `--state` build recorded for it,
/// in dependency order.
/// The schemas a run of `jobs` creates relations in: those of the nodes it builds, and
/// where its tests store failing rows.
fn written_schemas(compiled: &CompiledProject, jobs: &[String]) -> BTreeSet<String> {
    let schema = |id: &String| {
        let n = compiled.nodes.get(id)?;
        match n.resource_type {
            ResourceType::Test => Some(super::audit::failures_relation(compiled, n).schema),
            _ => n.relation.as_ref().map(|r| r.schema.clone()),
        }
    };
    jobs.iter().filter_map(schema).collect()
}

fn deferred_relations(
    invocation: &Invocation,
    compiled: &CompiledProject,
    selected: &BTreeSet<String>,
) -> Result<Vec<(String, Deferred)>, Vec<Diagnostic>> {
    let state = other_build(invocation)?;
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
fn other_build(invocation: &Invocation) -> Result<State, Vec<Diagnostic>> {
    invocation.other_build()?.ok_or_else(|| {
        vec![
            Diagnostic::error(Code::MissingState, "`--defer` needs `--state DIR`, the target folder of another build")
                .with_help("e.g. `etlm build -s state:modified+ --defer --state ../main/target`"),
        ]
    })
}

/// `--defer` on an engine that lends relations: the folder of the `--state` build's
/// data, and the deferred relations to read from it.
fn lent(
    invocation: &Invocation,
    compiled: &CompiledProject,
    selected: &BTreeSet<String>,
) -> Result<(PathBuf, Vec<Deferred>), Vec<Diagnostic>> {
    let state = other_build(invocation)?;
    let warehouse = state.manifest.metadata.warehouse_path.clone().filter(|w| w.is_dir()).ok_or_else(|| {
        vec![
            Diagnostic::error(
                Code::DeferUnavailable,
                format!("the build in `{}` has no embedded-engine warehouse to defer to", state.dir.display()),
            )
            .with_note(format!("its adapter is `{}`", state.manifest.metadata.adapter_type))
            .with_help("run that build (`etlm build`) so its warehouse exists, then try again"),
        ]
    })?;
    let relations = deferred_relations(invocation, compiled, selected)?.into_iter().map(|(_, d)| d).collect();
    Ok((warehouse, relations))
}
