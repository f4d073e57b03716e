//! The command line: clap types, one file per subcommand, and the human/JSON choice.

mod clean;
mod compile;
mod deps;
mod diff;
mod docs;
mod init;
mod intervals;
mod lineage;
mod ls;
pub mod panic;
mod retry;
mod run;
mod runs;
mod show;
mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::Value as Json;

use crate::compile::CompiledProject;
use crate::diagnostics::{Code, Diagnostic, SourceMap};
use crate::project::yaml::Yaml;
use crate::project::{Env, LoadOptions};
use crate::report::{Format, Output, print_diagnostics};
use crate::run::execute::Command as RunCommand;
use crate::run::invocation::{Compile, Invocation};
use crate::state::artifacts::State;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything worked.
    Success,
    /// A model or an error-severity test failed.
    Failure,
    /// etlm could not do its job: bad project, bad arguments, no connection.
    Error,
    /// A signal stopped the run (130 for SIGINT, 143 for SIGTERM); what finished is recorded.
    Interrupted(crate::history::Signal),
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Failure => 1,
            Outcome::Error => 2,
            Outcome::Interrupted(signal) => signal.exit_code(),
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
    /// The directory holding profiles.yml, looked in alone (default: the project
    /// directory, `$ETLM_PROFILES_DIR`, `$DBT_PROFILES_DIR`, `~/.etlm/`, `~/.dbt/`).
    #[arg(long, global = true, value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,
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
    /// A `--select` selector that matches no node is an error (exit 2), not a warning.
    #[arg(long, global = true)]
    pub fail_on_empty_selection: bool,
}

impl GlobalArgs {
    /// What to load: the project, target and profiles of the flags, with `vars`.
    pub fn load_options(&self, vars: BTreeMap<String, Json>, env: Env) -> LoadOptions {
        LoadOptions {
            project_dir: self.project_dir.clone(),
            target: self.target.clone(),
            profiles_dir: self.profiles_dir.clone(),
            vars,
            env,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a starter project (a seed, models, tests, a profile) that builds at once.
    Init(init::InitArgs),
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
        let d = Diagnostic::error(Code::InvalidArgument, "`--format markdown` is only for `etlm diff`")
            .with_help("use `--format human` or `--format json`");
        print_diagnostics(&out, &[d], &sources);
        return Outcome::Error;
    }
    let result = match cli.command {
        Command::Init(args) => init::run(&cli.global, &args, &out),
        Command::Deps(args) => deps::run(&cli.global, &args, env, &sources, &out),
        Command::Compile => compile::run(&cli.global, env, &sources, &out),
        Command::Ls(args) => ls::run(&cli.global, &args, env, &sources, &out),
        Command::Lineage(args) => lineage::run(&cli.global, &args, env, &sources, &out),
        Command::Docs(args) => docs::run(&cli.global, &args, env, &sources, &out),
        Command::Seed(args) => run::run(RunCommand::Seed, &cli.global, &args, env, &sources),
        Command::Run(args) => run::run(RunCommand::Run, &cli.global, &args, env, &sources),
        Command::Build(args) => run::run(RunCommand::Build, &cli.global, &args, env, &sources),
        Command::Test(args) => run::run(RunCommand::Test, &cli.global, &args, env, &sources),
        Command::Snapshot(args) => run::run(RunCommand::Snapshot, &cli.global, &args, env, &sources),
        Command::Backfill(args) => run::backfill(&cli.global, &args, env, &sources),
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
            Diagnostic::error(Code::InvalidVars, "`--vars` must be a mapping, like `{key: value}`")
                .with_label(yaml.span, "not a mapping"),
        ]),
    }
}

/// The invocation the global flags describe.
fn invocation(global: &GlobalArgs, env: Env, sources: &SourceMap) -> Result<Invocation, Vec<Diagnostic>> {
    let vars = parse_vars(global.vars.as_deref(), sources)?;
    Ok(Invocation { load: global.load_options(vars, env), ..selection(global) })
}

/// The selection of the global flags, for commands that compile through another way.
fn selection(global: &GlobalArgs) -> Invocation {
    Invocation {
        load: LoadOptions::default(),
        select: global.select.clone(),
        exclude: global.exclude.clone(),
        state: global.state.clone(),
        fail_on_empty_selection: global.fail_on_empty_selection,
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
    invocation(global, env, sources)?.compile(sources, Compile { which, ..Compile::default() })
}

/// The node ids chosen by `--select` and `--exclude`.
fn selected(global: &GlobalArgs, compiled: &CompiledProject) -> Result<BTreeSet<String>, Vec<Diagnostic>> {
    selection(global).selected(compiled)
}

/// The other build named by `--state`, if any.
fn load_state(global: &GlobalArgs) -> Result<Option<State>, Vec<Diagnostic>> {
    selection(global).other_build()
}
