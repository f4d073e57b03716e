//! The command line: clap types, one file per subcommand, and the human/JSON choice.

mod clean;
mod compile;
mod docs;
mod intervals;
mod lineage;
mod ls;
mod run;
mod runs;
mod show;

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value as Json;

use crate::compile::{CompileOptions, CompiledProject, compile_project};
use crate::diagnostics::{Diagnostic, SourceMap};
use crate::graph::{self, NoExternal};
use crate::project::yaml::Yaml;
use crate::project::{Env, LoadOptions};
use crate::report::{Output, print_diagnostics};
use crate::run::execute::Command as RunCommand;
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

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Human,
    Json,
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
    /// Nodes to select: `m`, `+m`, `m+`, `@m`, `tag:x`, `path:dir`, ...
    #[arg(long, short = 's', global = true, num_args = 1.., value_name = "SELECTOR")]
    pub select: Vec<String>,
    /// Nodes to leave out, with the same syntax as --select.
    #[arg(long, global = true, num_args = 1.., value_name = "SELECTOR")]
    pub exclude: Vec<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Seed, run and test in one DAG walk.
    Build(run::RunArgs),
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
    /// Remove the target folder (never the warehouse).
    Clean,
}

/// Runs a parsed command line. `env` is the process environment.
pub fn run(cli: Cli, env: Env) -> Outcome {
    let out = Output::new(cli.global.format);
    let sources = SourceMap::default();
    let result = match cli.command {
        Command::Compile => compile::run(&cli.global, env, &sources, &out),
        Command::Ls(args) => ls::run(&cli.global, &args, env, &sources, &out),
        Command::Lineage(args) => lineage::run(&cli.global, &args, env, &sources, &out),
        Command::Docs(args) => docs::run(&cli.global, &args, env, &sources, &out),
        Command::Seed(args) => run::run(RunCommand::Seed, &cli.global, &args, env, &sources, &out),
        Command::Run(args) => run::run(RunCommand::Run, &cli.global, &args, env, &sources, &out),
        Command::Build(args) => run::run(RunCommand::Build, &cli.global, &args, env, &sources, &out),
        Command::Test(args) => run::run(RunCommand::Test, &cli.global, &args, env, &sources, &out),
        Command::Backfill(args) => run::backfill(&cli.global, &args, env, &sources, &out),
        Command::Intervals => intervals::run(&cli.global, env, &sources, &out),
        Command::Show(args) => show::run(&cli.global, &args, env, &sources, &out),
        Command::Runs(args) => runs::run(&cli.global, &args, env, &sources, &out),
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

/// Loads and compiles the project named by the global flags.
fn compile_with(global: &GlobalArgs, env: Env, sources: &SourceMap) -> Result<CompiledProject, Vec<Diagnostic>> {
    compile_refreshing(global, env, sources, false)
}

/// `compile_with`, rendering incremental models for a `--full-refresh` run when asked.
fn compile_refreshing(
    global: &GlobalArgs,
    env: Env,
    sources: &SourceMap,
    full_refresh: bool,
) -> Result<CompiledProject, Vec<Diagnostic>> {
    let vars = parse_vars(global.vars.as_deref(), sources)?;
    let opts = CompileOptions {
        load: LoadOptions { project_dir: global.project_dir.clone(), target: global.target.clone(), vars, env },
        render: RenderSettings {
            run_started_at: chrono::Utc::now(),
            invocation_id: format!("{:x}", chrono::Utc::now().timestamp_micros()),
            full_refresh,
        },
        existing: Some(existing_relations),
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

/// The relations in the embedded engine's warehouse (none when it does not exist yet or
/// cannot be read: then every incremental model is built in full).
fn existing_relations(project: &crate::project::Project) -> std::collections::BTreeSet<crate::relation::Relation> {
    let dir = warehouse_dir(project);
    if !dir.is_dir() {
        return Default::default();
    }
    let Ok(warehouse) = crate::engine::local::Warehouse::open(&dir) else { return Default::default() };
    warehouse
        .relations()
        .map(|list| list.into_iter().map(|r| crate::relation::Relation::new(r.schema, r.name)).collect())
        .unwrap_or_default()
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
    graph::select(&compiled.dag, &select, &exclude, &NoExternal).map_err(to_diag)
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

/// The embedded engine's warehouse folder: the target's `path`, or `warehouse/`.
fn warehouse_dir(project: &crate::project::Project) -> PathBuf {
    match project.target.settings.get("path").and_then(Json::as_str) {
        Some(p) => project.root.join(p),
        None => project.root.join("warehouse"),
    }
}

/// An engine error that stops the command (exit code 2).
fn engine_diagnostic(e: crate::engine::EngineError, warehouse: &std::path::Path) -> Diagnostic {
    let d = Diagnostic::error(e.code(), e.to_string());
    match e {
        crate::engine::EngineError::Locked(_) => {
            d.with_help("wait for it to finish, or pass `--wait-for-lock` to queue behind it")
        }
        _ => d.with_note(format!("warehouse: {}", warehouse.display())),
    }
}
