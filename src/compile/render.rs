//! The compile pass: every model's and singular test's SQL and hooks rendered in compile
//! mode on every core, with `ref()` and `source()` resolved to relations (an ephemeral
//! model to its CTE, a `--defer`red node to the other build's relation) and a windowed
//! model's refs filtered to its batch's window.
//!
//! Takes the nodes with their relations; [`Resolution`] is what every render shares,
//! made once, and [`CompilePass`] renders with it (lineage's introspection rounds render
//! again the same way). [`apply_rendered`] sets each node's compiled SQL and hooks and
//! hands on a [`Rendering`]: what waits for columns lineage will know, and what is left
//! unrendered because a compile-time query failed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::Value as Json;

use super::Compiler;
use super::deps::SourceIndex;
use super::nodes::FileIds;
use super::parse::Parsed;
use super::refs::RefIndex;
use crate::diagnostics::{Collector, Diagnostic, Severity, Span};
use crate::node::{Hooks, Node, Nodes, ephemeral_cte};
use crate::project::Materialization;
use crate::relation::Relation;
use crate::template::{Mode, Querier, RefCall, RelationValue, RenderInput, Rendered, Resolver};
use crate::window;

/// One model or singular test to render: its node id, template name and file text.
pub(super) type Job<'a> = (&'a String, &'a str, &'a str);

/// The enabled models and singular tests, in the parse pass's order. Templates are
/// compiled again rather than kept from the parse pass: 10,000 compiled templates hold
/// over 100 MB, and compiling one costs a few microseconds.
pub(super) fn jobs<'a>(parsed: &'a Parsed, ids: &'a FileIds, nodes: &Nodes) -> Vec<Job<'a>> {
    let (models, tests) = (&parsed.models, &parsed.tests);
    ids.models
        .iter()
        .zip(models.names.iter().zip(&models.texts))
        .filter_map(|(id, (name, file))| Some((id.as_ref()?, name.as_str(), &*file.text)))
        .chain(
            ids.tests.iter().zip(tests.names.iter().zip(&tests.texts)).map(|(id, (n, f))| (id, n.as_str(), &*f.text)),
        )
        .filter(|(id, _, _)| nodes.contains_key(*id))
        .collect()
}

/// What every render in compile mode shares, fixed once the nodes have their relations.
pub(super) struct Resolution {
    /// Resolves refs and sources; knows no relation's columns.
    base: NodeResolver,
    /// `base`, as the compile pass, generic tests and run hooks render with it.
    pub resolver: Arc<dyn Resolver>,
    /// `event_time` of each model and seed that has one, by name.
    event_times: Arc<BTreeMap<String, String>>,
    /// The relations that exist on the target.
    existing: BTreeSet<Relation>,
}

impl Resolution {
    pub(super) fn new(c: &Compiler, nodes: &Nodes, refs: Arc<RefIndex>, by_source: &SourceIndex) -> Resolution {
        let Compiler { opts, project, .. } = *c;
        let base = NodeResolver {
            root: project.name().to_string(),
            targets: Arc::new(
                nodes
                    .values()
                    .filter(|n| n.resource_type.is_built())
                    .map(|n| match opts.deferred.get(&n.unique_id) {
                        Some(other) => (n.unique_id.clone(), RelationValue { relation: other.clone(), cte: None }),
                        None => (n.unique_id.clone(), ref_target(n)),
                    })
                    .collect(),
            ),
            refs,
            sources: Arc::new(
                by_source.iter().filter_map(|(key, id)| Some((key.clone(), nodes[id].relation.clone()?))).collect(),
            ),
            columns: BTreeMap::new(),
            querier: opts.querier.map(|make| make(project)),
        };
        let resolver: Arc<dyn Resolver> = Arc::new(base.clone());
        let event_times = Arc::new(
            nodes
                .values()
                .filter(|n| n.resource_type.is_built())
                .filter_map(|n| Some((n.name.clone(), n.config.event_time.clone()?)))
                .collect(),
        );
        let existing = opts.existing.map(|list| list(project)).unwrap_or_default();
        Resolution { base, resolver, event_times, existing }
    }

    /// A resolver that also answers `adapter.get_columns_in_relation` with `columns`.
    pub(super) fn with_columns(&self, columns: RelationColumns) -> Arc<dyn Resolver> {
        Arc::new(NodeResolver { columns, ..self.base.clone() })
    }

    /// A compile pass over `nodes` that resolves with `resolver`.
    pub(super) fn pass<'a>(
        &'a self,
        c: &'a Compiler<'a>,
        nodes: &'a Nodes,
        resolver: Arc<dyn Resolver>,
    ) -> CompilePass<'a> {
        CompilePass { c, resolution: self, nodes, resolver }
    }
}

/// Each relation's columns (names and, when known, SQL types).
pub(super) type RelationColumns = BTreeMap<Relation, Vec<(String, Option<String>)>>;

/// The compile pass over models and singular tests: what rendering one needs.
pub(super) struct CompilePass<'a> {
    c: &'a Compiler<'a>,
    resolution: &'a Resolution,
    nodes: &'a Nodes,
    resolver: Arc<dyn Resolver>,
}

/// A node's compiled SQL and hooks, or why it did not render.
pub(super) type RenderedNode = Result<(Rendered, Hooks), Diagnostic>;

impl CompilePass<'_> {
    /// Renders each job on every core, in the jobs' order.
    pub(super) fn render_all<'j>(
        &self,
        jobs: impl IndexedParallelIterator<Item = &'j Job<'j>>,
    ) -> Vec<(String, RenderedNode)> {
        jobs.map(|&(id, name, text)| (id.clone(), self.render(id, name, text))).collect()
    }

    /// Renders the node `id` from its file `name` holding `text`.
    fn render(&self, id: &str, name: &str, text: &str) -> RenderedNode {
        let node = &self.nodes[id];
        let full_refresh = self.c.opts.render.full_refresh;
        let incremental = node.config.materialized == Materialization::Incremental
            && !(full_refresh && node.config.full_refresh != Some(false))
            && node.relation.as_ref().is_some_and(|r| self.resolution.existing.contains(r));
        let input = if node.is_windowed() {
            // Batches substitute their window; refs to models with `event_time` are
            // filtered to it.
            let windowed: Arc<dyn Resolver> = Arc::new(WindowResolver {
                inner: self.resolver.clone(),
                event_times: self.resolution.event_times.clone(),
            });
            let mut input = compile_input(node, windowed, incremental);
            input.extra = window::variables();
            input
        } else {
            compile_input(node, self.resolver.clone(), incremental)
        };
        let hooks = |list: &[String]| -> Result<Vec<String>, Diagnostic> {
            let rendered = |hook: &String| {
                let span = Span::file_start(node.file.expect("a node with hooks has a file"));
                self.c.renderer.render_hook(hook, &input, span)
            };
            list.iter().map(rendered).collect()
        };
        let file = node.file.expect("models and singular tests have a file");
        let renderer = self.c.renderer;
        let result = renderer.render(&renderer.compile(file, name, text), &input, self.c.sources);
        result.and_then(|rendered| {
            Ok((rendered, Hooks { pre: hooks(&node.config.pre_hook)?, post: hooks(&node.config.post_hook)? }))
        })
    }
}

/// Where rendering stands once the compile pass is applied.
pub(super) struct Rendering<'a> {
    /// Nodes that asked for a relation's columns: rendered again once lineage knows them.
    pub introspecting: Vec<&'a Job<'a>>,
    /// Generic tests that asked for columns, or whose render failed: rendered again
    /// once lineage knows the columns (if their macro is the project's or a package's).
    /// A test that asked for none renders the same again, so it is not.
    pub introspecting_tests: BTreeSet<String>,
    /// Renders that failed before the columns they ask for were known: tried again too.
    pub pending: BTreeMap<String, Diagnostic>,
    /// Models left unrendered because a query they run while compiling failed.
    pub unrendered: BTreeMap<String, Diagnostic>,
}

impl Rendering<'_> {
    /// True once a model is left unrendered: what fails to check is then left to the
    /// next compile, once the run built what the query reads.
    pub(super) fn deferring(&self) -> bool {
        !self.unrendered.is_empty()
    }

    /// Whether a problem found checking the nodes stands (see [`Rendering::deferring`]).
    pub(super) fn keeps(&self, d: &Diagnostic) -> bool {
        !self.deferring() || d.severity != Severity::Error
    }
}

/// True for a render that failed on a compile-time query, with
/// `CompileOptions::defer_failed_queries`: the model is left unrendered.
pub(super) fn deferrable(c: &Compiler, d: &Diagnostic) -> bool {
    c.opts.defer_failed_queries && d.code == crate::template::QUERY_FAILED
}

/// Sets each rendered node's compiled SQL and hooks; a render that failed otherwise
/// than on unknown columns or a deferrable query is a problem.
pub(super) fn apply_rendered<'a>(
    c: &Compiler,
    rendered: Vec<(String, RenderedNode)>,
    jobs: &'a [Job<'a>],
    nodes: &mut Nodes,
    diags: &mut Collector,
) -> Rendering<'a> {
    let mut rendering = Rendering {
        introspecting: Vec::new(),
        introspecting_tests: BTreeSet::new(),
        pending: BTreeMap::new(),
        unrendered: BTreeMap::new(),
    };
    for (id, result) in rendered {
        match result {
            Ok((rendered, hooks)) => {
                if rendered.recorded.introspected {
                    rendering.introspecting.extend(jobs.iter().find(|j| *j.0 == id));
                }
                let node = nodes.get_mut(&id).expect("rendered ids are nodes");
                node.compiled_sql = Some(rendered.sql);
                node.hooks = hooks;
                // Vars and macros reached only in compile mode (under `is_incremental()`,
                // say) count for change detection too.
                node.vars_used.extend(rendered.recorded.vars);
                node.macros_used.extend(rendered.recorded.macros);
            }
            Err(d) if d.code == crate::template::UNKNOWN_COLUMNS => {
                rendering.introspecting.extend(jobs.iter().find(|j| *j.0 == id));
                rendering.pending.insert(id, d);
            }
            Err(d) if deferrable(c, &d) => {
                rendering.unrendered.insert(id, d);
            }
            Err(d) => diags.push(d),
        }
    }
    rendering
}

/// The node as templates and the relation-name macros see it (`model`, `node`): names,
/// path, config, and where it is built (`relation`; none for an ephemeral model or a
/// test, whose `model.schema` is then undefined rather than wrong).
pub(super) fn model_value(node: &Node, relation: Option<&Relation>) -> BTreeMap<&'static str, Json> {
    let mut value = BTreeMap::from([
        ("name", Json::String(node.name.clone())),
        ("package_name", Json::String(node.fqn.first().cloned().unwrap_or_default())),
        ("tags", Json::from(node.config.tags.clone())),
        ("unique_id", Json::String(node.unique_id.clone())),
        ("resource_type", Json::String(node.resource_type.as_str().into())),
        ("path", Json::String(node.path.display().to_string())),
        ("original_file_path", Json::String(node.path.display().to_string())),
        ("fqn", Json::from(node.fqn.clone())),
        ("config", serde_json::to_value(&node.config.raw).expect("config serializes")),
    ]);
    if let Some(relation) = relation {
        value.insert("database", relation.database.clone().map_or(Json::Null, Json::String));
        value.insert("schema", Json::String(relation.schema.clone()));
        value.insert("alias", Json::String(relation.identifier.clone()));
    }
    value
}

/// The render input of a node in compile mode.
pub(super) fn compile_input(node: &Node, resolver: Arc<dyn Resolver>, is_incremental: bool) -> RenderInput {
    RenderInput {
        mode: Mode::Compile { resolver, is_incremental },
        this: node.relation.clone(),
        model: model_value(node, node.relation.as_ref()),
        config: node.config.raw.clone(),
        extra: BTreeMap::new(),
        overrides: None,
    }
}

/// What `ref('name')` renders as in compile mode.
fn ref_target(node: &Node) -> RelationValue {
    match &node.relation {
        Some(relation) => RelationValue { relation: relation.clone(), cte: None },
        None => RelationValue { relation: Relation::new("", node.name.clone()), cte: Some(ephemeral_cte(&node.name)) },
    }
}

#[derive(Clone, Debug)]
struct NodeResolver {
    root: String,
    /// What `ref()` renders as, by node id.
    targets: Arc<BTreeMap<String, RelationValue>>,
    refs: Arc<RefIndex>,
    sources: Arc<BTreeMap<(String, String), Relation>>,
    /// What `adapter.get_columns_in_relation` answers.
    columns: RelationColumns,
    querier: Option<Arc<dyn Querier>>,
}

/// The resolver of a windowed model: a ref to a node with `event_time` becomes that
/// relation filtered to the batch's window (placeholders, see `window`).
#[derive(Debug)]
struct WindowResolver {
    inner: Arc<dyn Resolver>,
    event_times: Arc<BTreeMap<String, String>>,
}

impl Resolver for WindowResolver {
    fn resolve_ref(&self, call: &RefCall) -> Option<RelationValue> {
        let found = self.inner.resolve_ref(call)?;
        match (self.event_times.get(&call.name), &found.cte) {
            (Some(column), None) => {
                let col = crate::relation::quote_ident(column);
                let (start, end) = (window::START, window::END);
                // Aliased as dbt does, since Postgres before 16 needs an alias on a subquery.
                let alias = crate::relation::quote_ident(&format!("_etlm_window_{}", found.relation.identifier));
                let filtered = format!(
                    "(select * from {} where {col} >= cast('{start}' as timestamp) and {col} < cast('{end}' as timestamp)) {alias}",
                    found.relation
                );
                Some(RelationValue { relation: found.relation, cte: Some(filtered) })
            }
            _ => Some(found),
        }
    }

    fn resolve_source(&self, source: &str, table: &str) -> Option<Relation> {
        self.inner.resolve_source(source, table)
    }

    fn columns(&self, relation: &Relation) -> Option<Vec<(String, Option<String>)>> {
        self.inner.columns(relation)
    }

    fn querier(&self) -> Option<&dyn Querier> {
        self.inner.querier()
    }
}

impl Resolver for NodeResolver {
    fn resolve_ref(&self, call: &RefCall) -> Option<RelationValue> {
        let id = self.refs.resolve(&self.root, call)?;
        self.targets.get(id).map(|r| RelationValue { relation: r.relation.clone(), cte: r.cte.clone() })
    }

    fn resolve_source(&self, source: &str, table: &str) -> Option<Relation> {
        self.sources.get(&(source.to_string(), table.to_string())).cloned()
    }

    fn columns(&self, relation: &Relation) -> Option<Vec<(String, Option<String>)>> {
        let key = Relation { database: None, ..relation.clone() };
        self.columns.get(relation).or_else(|| self.columns.get(&key)).cloned()
    }

    fn querier(&self) -> Option<&dyn Querier> {
        self.querier.as_deref()
    }
}
