//! The command line: clap types, one file per subcommand, and the human/JSON choice.

mod clean;
mod compile;
mod deps;
mod diff;
mod docs;
mod intervals;
mod lineage;
mod ls;
mod querier;
mod retry;
mod run;
mod runs;
mod show;
mod source;

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::Value as Json;

use crate::compile::{CompileOptions, CompiledProject, compile_project};
use crate::diagnostics::{Diagnostic, SourceMap};
use crate::graph::{self, PriorState};
use crate::project::yaml::Yaml;
use crate::project::{Env, LoadOptions};
use crate::report::{Format, Output, print_diagnostics};
use crate::run::execute::Command as RunCommand;
use crate::state::artifacts::{PreviousRun, State};
use crate::state::diff::{diff_project, state_sets};
use crate::template::RenderSettings;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything worked.
    Success,
    /// A model or an error-severity test failed.
    Failure,
    /// etlm could not do its job: bad project, bad arguments, no connection.
    Error,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Failure => 1,
            Outcome::Error => 2,
        }
    }
}

/// etlm: dbt-like transformations in one binary.
#[derive(Debug, Parser)]
#[command(name = "etlm", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, clap::Args, Clone)]
pub struct GlobalArgs {
    /// The project directory (holding etlm.yml or dbt_project.yml).
    #[arg(long, global = true, default_value = ".")]
    pub project_dir: PathBuf,
    /// The target (a profiles.yml output) to use.
    #[arg(long, short = 't', global = true)]
    pub target: Option<String>,
    /// Variables as a YAML or JSON mapping, e.g. `{start: 2024-01-01}`.
    #[arg(long, global = true)]
    pub vars: Option<String>,
    /// Nodes to select: `m`, `+m`, `m+`, `@m`, `tag:x`, `path:dir`, `state:modified+`, `result:error`, ...
    #[arg(long, short = 's', global = true, num_args = 1.., value_name = "SELECTOR")]
    pub select: Vec<String>,
    /// Nodes to leave out, with the same syntax as --select.
    #[arg(long, global = true, num_args = 1.., value_name = "SELECTOR")]
    pub exclude: Vec<String>,
    /// Output format (`markdown` is for `etlm diff`).
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// The target folder of another build (production's or main's `target/`), for
    /// `state:` selectors, `etlm diff` and `--defer`.
    #[arg(long, global = true, value_name = "DIR")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install the packages of packages.yml into dbt_packages/ and write package-lock.yml.
    Deps(deps::DepsArgs),
    /// Render, parse and check every model; write target/compiled and target/manifest.json.
    Compile,
    /// List the selected nodes.
    Ls(ls::LsArgs),
    /// Column-level lineage of `model.column` (or every column of `model`).
    Lineage(lineage::LineageArgs),
    /// The docs site: `etlm docs generate` writes target/docs/index.html.
    Docs(docs::DocsArgs),
    /// Load CSV seeds into the target.
    Seed(run::RunArgs),
    /// Build the selected models in DAG order.
    Run(run::RunArgs),
    /// Seed, snapshot, run and test in one DAG walk.
    Build(run::RunArgs),
    /// Take the selected snapshots: close changed rows' versions, open new ones.
    Snapshot(run::RunArgs),
    /// Run the selected quality tests on the published relations.
    Test(run::RunArgs),
    /// Run time-windowed models once per period from --start to --end.
    Backfill(run::BackfillArgs),
    /// The periods of time-windowed models that are done and missing.
    Intervals,
    /// Query the target and print a table.
    Show(show::ShowArgs),
    /// The run history, newest first.
    Runs(runs::RunsArgs),
    /// What changed against another build's manifest (`--state DIR`): compiled SQL,
    /// columns, downstream impact, breaking or not.
    Diff(diff::DiffArgs),
    /// Re-run the nodes that failed or were skipped in the last run.
    Retry(run::RunArgs),
    /// Source checks: `etlm source freshness` tells how old each source's newest row is.
    Source(source::SourceArgs),
    /// Remove the target folder (never the warehouse).
    Clean,
}

/// Runs a parsed command line. `env` is the process environment.
pub fn run(cli: Cli, env: Env) -> Outcome {
    let out = Output::new(cli.global.format);
    let sources = SourceMap::default();
    if cli.global.format == Format::Markdown && !matches!(cli.command, Command::Diff(_)) {
        let d = Diagnostic::error("invalid-argument", "`--format markdown` is only for `etlm diff`")
            .with_help("use `--format human` or `--format json`");
        print_diagnostics(&out, &[d], &sources);
        return Outcome::Error;
    }
    let result = match cli.command {
        Command::Deps(args) => deps::run(&cli.global, &args, env, &sources, &out),
        Command::Compile => compile::run(&cli.global, env, &sources, &out),
        Command::Ls(args) => ls::run(&cli.global, &args, env, &sources, &out),
        Command::Lineage(args) => lineage::run(&cli.global, &args, env, &sources, &out),
        Command::Docs(args) => docs::run(&cli.global, &args, env, &sources, &out),
        Command::Seed(args) => run::run(RunCommand::Seed, &cli.global, &args, env, &sources, &out),
        Command::Run(args) => run::run(RunCommand::Run, &cli.global, &args, env, &sources, &out),
        Command::Build(args) => run::run(RunCommand::Build, &cli.global, &args, env, &sources, &out),
        Command::Test(args) => run::run(RunCommand::Test, &cli.global, &args, env, &sources, &out),
        Command::Snapshot(args) => run::run(RunCommand::Snapshot, &cli.global, &args, env, &sources, &out),
        Command::Backfill(args) => run::backfill(&cli.global, &args, env, &sources, &out),
        Command::Intervals => intervals::run(&cli.global, env, &sources, &out),
        Command::Show(args) => show::run(&cli.global, &args, env, &sources, &out),
        Command::Runs(args) => runs::run(&cli.global, &args, env, &sources, &out),
        Command::Diff(args) => diff::run(&cli.global, &args, env, &sources, &out),
        Command::Retry(args) => retry::run(&cli.global, &args, env, &sources, &out),
        Command::Source(args) => source::run(&cli.global, &args, env, &sources, &out),
        Command::Clean => clean::run(&cli.global, env, &sources, &out),
    };
    match result {
        Ok(outcome) => outcome,
        Err(diags) => {
            print_diagnostics(&out, &diags, &sources);
            Outcome::Error
        }
    }
}

/// Parses `--vars` (YAML or JSON); a non-mapping is an `invalid-vars` diagnostic.
fn parse_vars(text: Option<&str>, sources: &SourceMap) -> Result<BTreeMap<String, Json>, Vec<Diagnostic>> {
    let Some(text) = text else { return Ok(BTreeMap::new()) };
    let file = sources.add("--vars", text.to_string());
    let yaml = Yaml::parse(file, sources).map_err(|d| vec![d])?;
    match yaml.to_json() {
        Json::Object(map) => Ok(map.into_iter().collect()),
        Json::Null => Ok(BTreeMap::new()),
        _ => Err(vec![
            Diagnostic::error("invalid-vars", "`--vars` must be a mapping, like `{key: value}`")
                .with_label(yaml.span, "not a mapping"),
        ]),
    }
}

/// Loads and compiles the project named by the global flags, with no server: on Postgres
/// `is_incremental()` renders false (the embedded engine's warehouse is a folder, read).
/// `which` is the command as dbt's `flags.WHICH` names it (`compile`, `list`, `show`...).
fn compile_with(
    global: &GlobalArgs,
    env: Env,
    sources: &SourceMap,
    which: &'static str,
) -> Result<CompiledProject, Vec<Diagnostic>> {
    compile(global, env, sources, &ForRun { which, ..ForRun::default() }, offline_relations)
}

/// How a command that builds compiles.
#[derive(Debug, Default)]
struct ForRun {
    /// `--full-refresh`: incremental models render as rebuilt.
    full_refresh: bool,
    /// `--defer` on a server engine: `ref()`s to these nodes read these relations.
    deferred: BTreeMap<String, crate::relation::Relation>,
    /// The command, as dbt's `flags.WHICH` (`compile` when empty).
    which: &'static str,
    /// Leave models whose compile-time query failed unrendered (see
    /// `CompileOptions::defer_failed_queries`).
    defer_failed_queries: bool,
}

/// Compiles for a command that builds: the target is asked which relations exist.
fn compile_for_run(
    global: &GlobalArgs,
    env: Env,
    sources: &SourceMap,
    run: ForRun,
) -> Result<CompiledProject, Vec<Diagnostic>> {
    compile(global, env, sources, &run, target_relations)
}

fn compile(
    global: &GlobalArgs,
    env: Env,
    sources: &SourceMap,
    run: &ForRun,
    existing: fn(&crate::project::Project) -> std::collections::BTreeSet<crate::relation::Relation>,
) -> Result<CompiledProject, Vec<Diagnostic>> {
    let vars = parse_vars(global.vars.as_deref(), sources)?;
    let opts = CompileOptions {
        load: LoadOptions { project_dir: global.project_dir.clone(), target: global.target.clone(), vars, env },
        render: RenderSettings {
            run_started_at: chrono::Utc::now(),
            invocation_id: format!("{:x}", chrono::Utc::now().timestamp_micros()),
            full_refresh: run.full_refresh,
            which: if run.which.is_empty() { "compile" } else { run.which },
        },
        existing: Some(existing),
        deferred: run.deferred.clone(),
        querier: Some(querier::for_project),
        defer_failed_queries: run.defer_failed_queries,
        build: build_id(),
    };
    compile_project(&opts, sources).map_err(|d| d.0)
}

/// This etlm binary: its version, size and modification time, so results cached by
/// another build (even of the same version) are never reused. `None` if it cannot be read.
fn build_id() -> Option<String> {
    let meta = std::env::current_exe().and_then(std::fs::metadata).ok()?;
    let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(format!("etlm {} {} {}", env!("CARGO_PKG_VERSION"), meta.len(), modified.as_nanos()))
}

/// The relations on the target, asking a server (none when they cannot be listed: then
/// every incremental model is built in full, and the run reports why it cannot reach
/// the target).
fn target_relations(project: &crate::project::Project) -> std::collections::BTreeSet<crate::relation::Relation> {
    crate::engine::existing_relations(&project.target)
}

/// The relations known without a server: the embedded engine's warehouse folder.
fn offline_relations(project: &crate::project::Project) -> std::collections::BTreeSet<crate::relation::Relation> {
    crate::engine::offline_relations(&project.target)
}

/// The node ids chosen by `--select` and `--exclude`.
fn selected(
    global: &GlobalArgs,
    compiled: &CompiledProject,
) -> Result<std::collections::BTreeSet<String>, Vec<Diagnostic>> {
    let to_diag = |e: graph::SelectError| {
        vec![Diagnostic::error("invalid-selector", e.to_string()).with_help("see docs/selectors.md for the syntax")]
    };
    let select = graph::parse_selectors(&global.select).map_err(to_diag)?;
    let exclude = graph::parse_selectors(&global.exclude).map_err(to_diag)?;
    let prior = prior_state(global, compiled)?;
    graph::select(&compiled.dag, &select, &exclude, &prior).map_err(to_diag)
}

/// The other build named by `--state`, if any; a missing or unreadable one stops the
/// command (exit code 2).
fn load_state(global: &GlobalArgs) -> Result<Option<State>, Vec<Diagnostic>> {
    global.state.as_deref().map(State::load).transpose().map_err(|d| vec![d])
}

/// What `state:` and `result:` selectors match: the comparison with `--state`, and the
/// last run's results (from `--state` when given, else this project's target folder).
fn prior_state(global: &GlobalArgs, compiled: &CompiledProject) -> Result<PriorState, Vec<Diagnostic>> {
    let state = load_state(global)?;
    // run_results.json is read only when a selector asks for it.
    let uses_results = global.select.iter().chain(&global.exclude).any(|w| w.contains("result:"));
    let results = if uses_results {
        PreviousRun::load(&results_dir(global, &compiled.project)).map(|run| run.statuses())
    } else {
        Ok(Default::default())
    };
    Ok(PriorState {
        state: state.map(|s| state_sets(&diff_project(compiled, &s))),
        results: results.map_err(|d| d.message),
    })
}

/// Where the last run's `run_results.json` is read from: the `--state` folder when
/// given, else this project's target folder.
fn results_dir(global: &GlobalArgs, project: &crate::project::Project) -> PathBuf {
    match &global.state {
        Some(dir) => dir.clone(),
        None => project.root.join(&project.settings.target_path),
    }
}

/// A new run id: sortable by time, unique enough across processes.
fn new_run_id() -> String {
    let now = chrono::Utc::now();
    format!("{}-{:05}", now.format("%Y%m%dT%H%M%S%.6f"), std::process::id() % 100_000)
}

/// The async runtime engines run on.
fn runtime() -> Result<tokio::runtime::Runtime, Vec<Diagnostic>> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| vec![Diagnostic::error("runtime", format!("could not start the async runtime: {e}"))])
}

/// Opens the active target's engine: the embedded warehouse, or a Postgres server.
async fn open_engine(
    project: &crate::project::Project,
    access: crate::engine::Access,
) -> Result<std::sync::Arc<dyn crate::engine::Engine>, Vec<Diagnostic>> {
    crate::engine::open(&project.target, access).await.map_err(|e| vec![engine_diagnostic(e, &project.target)])
}

/// An engine error that stops the command (exit code 2), naming the target (never its
/// credentials).
fn engine_diagnostic(e: crate::engine::EngineError, target: &crate::project::Target) -> Diagnostic {
    let d = Diagnostic::error(e.code(), e.to_string());
    if e.kind == crate::engine::ErrorKind::Locked {
        return d.with_help("wait for it to finish, or pass `--wait-for-lock` to queue behind it");
    }
    let d = d.with_note(format!("target: {}", crate::engine::describe(target)));
    match e.help {
        Some(help) => d.with_help(help),
        None => d,
    }
}
