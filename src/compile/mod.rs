//! The compile pipeline: load the project, render every model in parse mode, resolve
//! config and relation names, build the DAG, render in compile mode, inline ephemeral
//! models, parse the compiled SQL, and hand it to `lineage` for schemas, column checks
//! and column lineage. No engine is touched.
//!
//! [`compile_project`] is the list of stages, one file each, in order: `parse` (the parse
//! pass), `nodes` (config and docs), `relations` (relation names), `deps` (refs and
//! sources), `render` (the compile pass, beside `tests` making the generic test nodes),
//! `dag`, `ephemeral` (inlining), `tests` again (the tests' SQL), `analyze` (lineage, and
//! rendering again what introspects), `unit_tests` and `run_hooks`. Every problem of a
//! stage is collected before the compile stops.
//!
//! The render passes, the node building and the SQL parse run in parallel (rayon);
//! results are gathered in a fixed order so output is deterministic.

mod analyze;
mod dag;
mod deps;
mod ephemeral;
mod nodes;
mod parse;
mod problems;
mod refs;
mod relations;
mod render;
mod run_hooks;
mod spans;
mod tests;
mod unit_tests;

pub use self::ephemeral::prepend_ctes;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use crate::diagnostics::{Collector, Diagnostic, Diagnostics, SourceMap};
use crate::graph::Dag;
use crate::lineage::Cache;
use crate::node::{Hooks, Nodes};
use crate::project::{LoadOptions, Project, load_project};
use crate::relation::Relation;
use crate::sql::SqlDialect;
use crate::template::{RenderSettings, Renderer};

/// What to compile.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    pub load: LoadOptions,
    pub render: RenderSettings,
    /// The relations that exist on the target, asked once the project is loaded (the
    /// embedded engine lists its warehouse; no engine is opened). `is_incremental()` is
    /// true in an incremental model whose relation exists, unless `render.full_refresh`
    /// rebuilds it (`full_refresh: false` in its config protects it).
    pub existing: Option<fn(&Project) -> BTreeSet<Relation>>,
    /// `--defer` on a server engine: models and seeds (by unique id) that `ref()` reads
    /// from another build's relation instead of this target's.
    pub deferred: BTreeMap<String, Relation>,
    /// Makes what runs `run_query` / `statement` while rendering (the command's target,
    /// opened only when a query runs); `None`: such a call is an error.
    pub querier: Option<fn(&Project) -> Arc<dyn crate::template::Querier>>,
    /// A model whose compile-time query failed (it reads a relation this run has yet to
    /// build) is left unrendered (`CompiledProject::unrendered`) rather than failing the
    /// compile; what else fails to check then is left to the next compile, once the run
    /// built what the query reads.
    pub defer_failed_queries: bool,
    /// The etlm build compiling (an id that changes whenever the binary does): what that
    /// build cached in the target folder (`lineage::cache`) is reused. `None` computes
    /// everything afresh.
    pub build: Option<String>,
}

/// The result of compiling: the project, its nodes and the DAG.
pub struct CompiledProject {
    pub project: Project,
    pub nodes: Nodes,
    pub dag: Dag,
    pub dialect: SqlDialect,
    pub warnings: Vec<Diagnostic>,
    /// Column-level lineage (`target/lineage.json`).
    pub lineage: crate::lineage::Lineage,
    /// Each macro's definition text by name, for change detection (`etlm diff`).
    pub macro_texts: BTreeMap<String, String>,
    /// `on-run-start` (as `pre`) and `on-run-end` (as `post`), rendered.
    pub run_hooks: Hooks,
    /// What the next compile may reuse (`target/compile.cache`).
    pub cache: Cache,
    /// Models left unrendered because a query they run while compiling failed (with
    /// `CompileOptions::defer_failed_queries`), with why.
    pub unrendered: BTreeMap<String, Diagnostic>,
}

/// Compiles the project: every error of a stage is collected before it stops.
pub fn compile_project(opts: &CompileOptions, sources: &SourceMap) -> Result<CompiledProject, Diagnostics> {
    let project = load_project(&opts.load, sources)?;
    let renderer = Renderer::new(&project, &opts.render, sources).map_err(|d| Diagnostics::sorted(d, sources))?;
    let dialect = project.target.engine.dialect();
    let c = Compiler { opts, project: &project, renderer: &renderer, sources, dialect };
    let mut diags = Collector::default();

    let parsed = parse::parse_files(&c, &mut diags);
    stop_on_errors(&mut diags, sources)?;

    let (mut nodes, ids) = nodes::project_nodes(&c, &parsed, &mut diags);
    stop_on_errors(&mut diags, sources)?;
    relations::name_relations(&c, &mut nodes, &mut diags);
    let refs = Arc::new(refs::RefIndex::new(project.name(), &nodes));
    let by_source = deps::source_index(&project, &nodes);
    let mut deps = deps::dependencies(&c, &parsed, &ids, &nodes, &refs, &by_source, &mut diags);
    nodes::add_singular_tests(&c, &parsed.tests, &ids.tests, &mut nodes, &mut diags);

    // The models' SQL is rendered (the compile pass) while the generic tests from YAML
    // become nodes: both only read the nodes so far, so they share the cores.
    let resolution = render::Resolution::new(&c, &nodes, refs.clone(), &by_source);
    let jobs = render::jobs(&parsed, &ids, &nodes);
    let (generic_tests, rendered) = rayon::join(
        || tests::generic_test_nodes(&c, &nodes, &refs, &by_source),
        || resolution.pass(&c, &nodes, resolution.resolver.clone()).render_all(jobs.par_iter()),
    );
    tests::add_generic_tests(generic_tests, &mut nodes, &mut deps, &mut diags);
    stop_on_errors(&mut diags, sources)?;

    let mut dag = dag::build_dag(&mut nodes, deps, &mut diags);
    stop_on_errors(&mut diags, sources)?;

    let mut rendering = render::apply_rendered(&c, rendered, &jobs, &mut nodes, &mut diags);
    stop_on_errors(&mut diags, sources)?;
    ephemeral::inline_ephemerals(&mut nodes, &dag);
    tests::render_tests(&c, &mut nodes, &resolution.resolver, &mut rendering, &mut diags);
    stop_on_errors(&mut diags, sources)?;

    let analyze::Analysis { lineage, cache } =
        analyze::analyze(&c, &mut nodes, &dag, &resolution, &mut rendering, &mut diags)?;
    unit_tests::add_unit_tests(&c, &mut nodes, &mut dag, &lineage, &resolution, &rendering, &mut diags);
    let mut warnings = project.warnings.clone();
    warnings.extend(diags.finish(sources)?);
    let macro_texts = renderer.macro_texts(sources);
    let run_hooks = run_hooks::render_run_hooks(&c, &nodes, &resolution.resolver)
        .map_err(|d| Diagnostics::sorted(vec![d], sources))?;
    let unrendered = rendering.unrendered;
    Ok(CompiledProject { project, nodes, dag, dialect, warnings, lineage, macro_texts, run_hooks, cache, unrendered })
}

/// What every stage reads: the options, the loaded project, its Jinja environment, the
/// source files and the target's SQL dialect.
struct Compiler<'a> {
    opts: &'a CompileOptions,
    project: &'a Project,
    renderer: &'a Renderer,
    sources: &'a SourceMap,
    dialect: SqlDialect,
}

/// Ends a stage that found errors: `Err` with every diagnostic so far, sorted.
fn stop_on_errors(diags: &mut Collector, sources: &SourceMap) -> Result<(), Diagnostics> {
    if !diags.has_errors() {
        return Ok(());
    }
    match std::mem::take(diags).finish(sources) {
        Err(d) => Err(d),
        Ok(_) => unreachable!("a collector with errors finishes with them"),
    }
}

/// Where a project's compile cache lives: `<target>/compile.cache`.
pub fn cache_path(project: &Project) -> PathBuf {
    project.root.join(&project.settings.target_path).join(crate::lineage::cache::FILE_NAME)
}
