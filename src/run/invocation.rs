//! One invocation of etlm on a project, typed: which project and target, the vars, the
//! environment, the selection and the other build (`--state`). Every command compiles
//! and selects through it, so they all read the project the same way; the CLI only
//! turns flags into one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::compile::{CompileOptions, CompiledProject, compile_project};
use crate::diagnostics::{Code, Diagnostic, SourceMap};
use crate::engine::EngineError;
use crate::graph::{self, PriorState};
use crate::project::{LoadOptions, Project, Target};
use crate::relation::Relation;
use crate::state::artifacts::{PreviousRun, State};
use crate::state::diff::{diff_project, state_sets};
use crate::template::RenderSettings;

/// A project, a target and a selection, as the global flags give them.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// The project directory, `--target`, `--vars` (parsed) and the environment.
    pub load: LoadOptions,
    /// `--select`.
    pub select: Vec<String>,
    /// `--exclude`.
    pub exclude: Vec<String>,
    /// `--state`: the target folder of another build.
    pub state: Option<PathBuf>,
    /// `--fail-on-empty-selection`: a selector that matches nothing is an error.
    pub fail_on_empty_selection: bool,
}

/// How a command compiles.
#[derive(Debug, Default)]
pub struct Compile {
    /// The command, as dbt's `flags.WHICH` (`compile`, `list`, `run`...).
    pub which: &'static str,
    /// `--full-refresh`: incremental models render as rebuilt.
    pub full_refresh: bool,
    /// Ask the target which relations exist (a command that builds); else only what is
    /// known without a server (the embedded engine's warehouse folder).
    pub ask_target: bool,
    /// `--defer` by name: `ref()`s to these nodes read these relations.
    pub deferred: BTreeMap<String, Relation>,
    /// Leave models whose compile-time query failed unrendered (see
    /// `CompileOptions::defer_failed_queries`).
    pub defer_failed_queries: bool,
}

impl Invocation {
    /// Loads and compiles the project. On Postgres without `ask_target`,
    /// `is_incremental()` renders false.
    pub fn compile(&self, sources: &SourceMap, how: Compile) -> Result<CompiledProject, Vec<Diagnostic>> {
        let opts = CompileOptions {
            load: self.load.clone(),
            render: RenderSettings {
                run_started_at: chrono::Utc::now(),
                invocation_id: format!("{:x}", chrono::Utc::now().timestamp_micros()),
                full_refresh: how.full_refresh,
                which: if how.which.is_empty() { "compile" } else { how.which },
            },
            existing: Some(if how.ask_target { target_relations } else { offline_relations }),
            deferred: how.deferred,
            querier: Some(super::querier::for_project),
            defer_failed_queries: how.defer_failed_queries,
            build: build_id(),
        };
        compile_project(&opts, sources).map_err(|d| d.0)
    }

    /// The node ids `--select` and `--exclude` choose.
    pub fn selected(&self, compiled: &CompiledProject) -> Result<BTreeSet<String>, Vec<Diagnostic>> {
        let to_diag = |e: graph::SelectError| {
            vec![
                Diagnostic::error(Code::InvalidSelector, e.to_string())
                    .with_help("see docs/selectors.md for the syntax"),
            ]
        };
        let select = graph::parse_selectors(&self.select).map_err(to_diag)?;
        let exclude = graph::parse_selectors(&self.exclude).map_err(to_diag)?;
        let prior = self.prior_state(compiled)?;
        graph::select(&compiled.dag, &select, &exclude, &prior).map_err(to_diag)
    }

    /// A warning for each `--select` selector that matches no node (a misspelt name runs
    /// nothing and would pass silently), naming the nearest node; with
    /// `--fail-on-empty-selection` they are errors.
    pub fn empty_selectors(&self, compiled: &CompiledProject) -> Result<Vec<Diagnostic>, Vec<Diagnostic>> {
        let to_diag = |e: graph::SelectError| vec![Diagnostic::error(Code::InvalidSelector, e.to_string())];
        let select = graph::parse_selectors(&self.select).map_err(to_diag)?;
        let prior = self.prior_state(compiled)?;
        let found: Vec<Diagnostic> = select
            .unmatched(&compiled.dag, &prior)
            .map_err(to_diag)?
            .into_iter()
            .map(|(selector, near)| {
                let message = format!("`--select {selector}` matches no node");
                let d = if self.fail_on_empty_selection {
                    Diagnostic::error(Code::EmptySelection, message)
                } else {
                    Diagnostic::warning(Code::EmptySelection, message)
                };
                match near {
                    Some(near) => d.with_help(format!("did you mean `{near}`?")),
                    None => d.with_help("`etlm ls` lists the nodes; see docs/selectors.md"),
                }
            })
            .collect();
        if self.fail_on_empty_selection && !found.is_empty() {
            return Err(found);
        }
        Ok(found)
    }

    /// The other build named by `--state`, if any; a missing or unreadable one stops the
    /// command (exit code 2).
    pub fn other_build(&self) -> Result<Option<State>, Vec<Diagnostic>> {
        self.state.as_deref().map(State::load).transpose().map_err(|d| vec![d])
    }

    /// Where the last run's `run_results.json` is read from: the `--state` folder when
    /// given, else this project's target folder.
    pub fn results_dir(&self, project: &Project) -> PathBuf {
        match &self.state {
            Some(dir) => dir.clone(),
            None => project.root.join(&project.settings.target_path),
        }
    }

    /// What `state:` and `result:` selectors match: the comparison with `--state`, and
    /// the last run's results.
    fn prior_state(&self, compiled: &CompiledProject) -> Result<PriorState, Vec<Diagnostic>> {
        let state = self.other_build()?;
        // run_results.json is read only when a selector asks for it.
        let uses_results = self.select.iter().chain(&self.exclude).any(|w| w.contains("result:"));
        let results = if uses_results {
            PreviousRun::load(&self.results_dir(&compiled.project)).map(|run| run.statuses())
        } else {
            Ok(Default::default())
        };
        Ok(PriorState {
            state: state.map(|s| state_sets(&diff_project(compiled, &s))),
            results: results.map_err(|d| d.message),
        })
    }
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
fn target_relations(project: &Project) -> BTreeSet<Relation> {
    crate::engine::existing_relations(&project.target)
}

/// The relations known without a server: the embedded engine's warehouse folder.
fn offline_relations(project: &Project) -> BTreeSet<Relation> {
    crate::engine::offline_relations(&project.target)
}

/// The async runtime engines run on.
pub fn runtime() -> Result<tokio::runtime::Runtime, Vec<Diagnostic>> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| vec![Diagnostic::error(Code::Runtime, format!("could not start the async runtime: {e}"))])
}

/// Opens the target's engine; failing, the diagnostic that stops the command.
pub async fn open_engine(
    target: &Target,
    access: crate::engine::Access,
) -> Result<std::sync::Arc<dyn crate::engine::Engine>, Vec<Diagnostic>> {
    crate::engine::open(target, access).await.map_err(|e| vec![engine_diagnostic(e, target)])
}

/// An engine error that stops the command (exit code 2), naming the target (never its
/// credentials).
pub fn engine_diagnostic(e: EngineError, target: &Target) -> Diagnostic {
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
