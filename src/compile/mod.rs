//! The compile pipeline: load the project, render every model in parse mode, resolve
//! config and relation names, build the DAG, render in compile mode, inline ephemeral
//! models, parse the compiled SQL, and hand it to `lineage` for schemas, column checks
//! and column lineage. No engine is touched.
//!
//! Both render passes and the SQL parse run in parallel (rayon); results are gathered in
//! a fixed order so output is deterministic.

mod ephemeral;
mod problems;
mod refs;
mod spans;
mod tests;
mod unit_tests;

pub use self::ephemeral::prepend_ctes;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::Value as Json;

use crate::diagnostics::{Collector, Diagnostic, Diagnostics, FileId, SourceMap, Span};
use crate::graph::{Dag, NodeInfo, ResourceType};
use crate::lineage::Cache;
use crate::node::{ColumnDoc, GenericTest, Hooks, Node, Nodes, ephemeral_cte};
use crate::project::config::{self, ConfigEntry, ConfigFor, ConfigLayer};
use crate::project::snapshot::SnapshotConfig;
use crate::project::{LoadOptions, Materialization, NodeConfig, Project, TestDef, load_project};
use crate::relation::Relation;
use crate::sql::SqlDialect;
use crate::template::{Mode, RefCall, RelationValue, RenderInput, RenderSettings, Renderer, Resolver};
use crate::window;

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

/// Compiles the project: every error of a phase is collected before it stops.
pub fn compile_project(opts: &CompileOptions, sources: &SourceMap) -> Result<CompiledProject, Diagnostics> {
    let project = load_project(&opts.load, sources)?;
    let renderer = Renderer::new(&project, &opts.render, sources).map_err(|d| Diagnostics::sorted(d, sources))?;
    let dialect = project.target.engine.dialect();
    let mut diags = Collector::default();
    let mut warnings = project.warnings.clone();

    // Parse pass: compile each model's Jinja and record its calls.
    let texts: Vec<Arc<crate::diagnostics::SourceFile>> = project.models.iter().map(|m| sources.file(m.file)).collect();
    // Named `.sql` whatever the file (a snapshot defined in YAML): the name decides
    // Jinja's auto-escaping, which SQL must not get.
    let names: Vec<String> =
        project.models.iter().map(|m| m.path.with_extension("sql").display().to_string()).collect();
    let test_texts: Vec<Arc<crate::diagnostics::SourceFile>> =
        project.singular_tests.iter().map(|t| sources.file(t.file)).collect();
    let test_names: Vec<String> = project.singular_tests.iter().map(|t| t.path.display().to_string()).collect();
    let parse_input = |name: &str, package: &str| RenderInput {
        mode: Mode::Parse,
        this: Some(Relation::new(project.target.schema.clone(), name)),
        // Where the node is built is known only after this pass: the target's schema
        // stands in, as `this` does.
        model: BTreeMap::from([
            ("name", Json::String(name.to_string())),
            ("package_name", Json::String(package.to_string())),
            ("database", project.target.database.clone().map_or(Json::Null, Json::String)),
            ("schema", Json::String(project.target.schema.clone())),
            ("alias", Json::String(name.to_string())),
        ]),
        config: BTreeMap::new(),
        // Which models are windowed is known only after this pass.
        extra: window::variables(),
        overrides: None,
    };
    let parsed: Vec<Result<_, Diagnostic>> = project
        .models
        .par_iter()
        .enumerate()
        .map(|(i, m)| {
            let compiled = renderer.compile(m.file, &names[i], &texts[i].text);
            Ok(renderer.render(&compiled, &parse_input(&m.name, &m.package), sources)?.recorded)
        })
        .collect();
    let parsed_tests: Vec<Result<_, Diagnostic>> = project
        .singular_tests
        .par_iter()
        .enumerate()
        .map(|(i, t)| {
            let compiled = renderer.compile(t.file, &test_names[i], &test_texts[i].text);
            Ok(renderer.render(&compiled, &parse_input(&t.name, &t.package), sources)?.recorded)
        })
        .collect();
    let mut recorded_of = |results: Vec<Result<crate::template::Recorded, Diagnostic>>| -> Vec<_> {
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|d| {
                    diags.push(d);
                    Default::default()
                })
            })
            .collect()
    };
    let recorded = recorded_of(parsed);
    let test_recorded = recorded_of(parsed_tests);
    if diags.has_errors() {
        return Err(finish(diags, sources));
    }

    // Effective config: project folders < YAML properties < in-file config().
    let mut nodes: Nodes = BTreeMap::new();
    let mut model_index: Vec<Option<String>> = Vec::new();
    // Each model's config, and so its node, is independent of the others': built on every
    // core. With a model's node come its problems: unknown config keys, an invalid config,
    // or (for an enabled model) rendering its description and columns.
    let built: Vec<(Vec<Diagnostic>, Option<Box<Node>>)> = project
        .models
        .par_iter()
        .enumerate()
        .map(|(i, m)| {
            let mut problems = Vec::new();
            let mut in_file = ConfigLayer::new();
            for (key, value) in &recorded[i].config {
                let name = config::normalize_key(key);
                let range = spans::find_config_key(&texts[i].text, key).unwrap_or(0..0);
                let span = Span::new(m.file, range);
                if !config::is_known_key(&name) {
                    problems.push(config::unknown_key(key, span));
                    continue;
                }
                in_file.insert(name, ConfigEntry { value: value.clone(), span });
            }
            let yaml_layer = m.props.as_ref().map(|p| p.config.clone()).unwrap_or_default();
            let layer = config::merge(&[&m.folder_config, &yaml_layer, &in_file]);
            let snapshot = m.resource_type == ResourceType::Snapshot;
            let config =
                match NodeConfig::from_layer(&layer, if snapshot { ConfigFor::Snapshot } else { ConfigFor::Model }) {
                    Ok(config) if config.enabled => config,
                    Ok(_) => return (problems, None),
                    Err(e) => {
                        problems.extend(e);
                        return (problems, None);
                    }
                };
            let config = match snapshot {
                false => config,
                true => match SnapshotConfig::from_layer(&layer, m.span) {
                    Ok(snapshot) => NodeConfig { snapshot: Some(snapshot), ..config },
                    Err(e) => {
                        problems.extend(e);
                        return (problems, None);
                    }
                },
            };
            let (description, columns, described) =
                describe(m.props.as_ref().map(|p| (&p.description, &p.columns)), &renderer);
            problems.extend(described);
            let unique_id = format!("{}.{}.{}", m.resource_type.as_str(), m.package, m.name);
            let node = Node {
                file: Some(m.file),
                raw_sql: Some(texts[i].text.clone()),
                description,
                columns,
                vars_used: recorded[i].vars.clone(),
                macros_used: recorded[i].macros.clone(),
                ..Node::new(unique_id, m.resource_type, m.name.clone(), m.fqn.clone(), m.path.clone(), config)
            };
            (problems, Some(Box::new(node)))
        })
        .collect();
    for (problems, node) in built {
        diags.extend(problems);
        model_index.push(node.as_ref().map(|n| n.unique_id.clone()));
        if let Some(node) = node {
            nodes.insert(node.unique_id.clone(), node);
        }
    }
    for seed in &project.seeds {
        let unique_id = format!("seed.{}.{}", seed.package, seed.name);
        let (description, columns, problems) =
            describe(seed.props.as_ref().map(|p| (&p.description, &p.columns)), &renderer);
        diags.extend(problems);
        nodes.insert(
            unique_id.clone(),
            Box::new(Node {
                description,
                columns,
                ..Node::new(
                    unique_id,
                    ResourceType::Seed,
                    seed.name.clone(),
                    seed.fqn.clone(),
                    seed.path.clone(),
                    seed.config.clone(),
                )
            }),
        );
    }
    for src in &project.sources {
        let unique_id = format!("source.{}.{}.{}", src.package, src.source_name, src.table.name);
        let (description, columns, problems) = describe(Some((&src.table.description, &src.table.columns)), &renderer);
        diags.extend(problems);
        nodes.insert(
            unique_id.clone(),
            Box::new(Node {
                relation: Some(Relation {
                    database: src.database.clone(),
                    schema: src.schema.clone(),
                    identifier: src.identifier().to_string(),
                }),
                description,
                columns,
                source_name: Some(src.source_name.clone()),
                ..Node::new(
                    unique_id,
                    ResourceType::Source,
                    src.table.name.clone(),
                    vec![src.package.clone(), src.source_name.clone(), src.table.name.clone()],
                    src.path.clone(),
                    src.config.clone(),
                )
            }),
        );
    }
    if diags.has_errors() {
        return Err(finish(diags, sources));
    }

    // Relation names: dbt's generate_schema_name / generate_alias_name, or the user's.
    let ids: Vec<String> = nodes.values().filter(|n| n.resource_type.is_built()).map(|n| n.unique_id.clone()).collect();
    let relations: Vec<(String, Result<Relation, Diagnostic>)> = ids
        .into_par_iter()
        .filter(|id| nodes[id].config.materialized != Materialization::Ephemeral)
        .map(|id| {
            let relation = relation_for(&nodes[&id], &project, &renderer, sources);
            (id, relation)
        })
        .collect();
    for (id, relation) in relations {
        match relation {
            Ok(rel) => nodes.get_mut(&id).expect("id from nodes").relation = Some(rel),
            Err(d) => diags.push(d),
        }
    }

    // Refs and sources -> dependencies.
    let refs = Arc::new(refs::RefIndex::new(project.name(), &nodes));
    let by_name = refs.by_name();
    let mut by_source: BTreeMap<(String, String), String> = BTreeMap::new();
    for n in nodes.values() {
        if let Some(source) = &n.source_name {
            // The root project's source of a name wins over a package's.
            let key = (source.clone(), n.name.clone());
            if n.package() == project.name() || !by_source.contains_key(&key) {
                by_source.insert(key, n.unique_id.clone());
            }
        }
    }
    let mut deps: BTreeMap<String, Vec<(String, Span)>> = BTreeMap::new();
    type FileCalls<'a> = (Option<&'a String>, &'a str, FileId, &'a str, &'a crate::template::Recorded);
    let model_files: Vec<FileCalls> = project
        .models
        .iter()
        .enumerate()
        .map(|(i, m)| (model_index[i].as_ref(), m.package.as_str(), m.file, &*texts[i].text, &recorded[i]))
        .collect();
    let test_ids: Vec<String> =
        project.singular_tests.iter().map(|t| format!("test.{}.{}", t.package, t.name)).collect();
    let test_files: Vec<FileCalls> = project
        .singular_tests
        .iter()
        .enumerate()
        .map(|(i, t)| (Some(&test_ids[i]), t.package.as_str(), t.file, &*test_texts[i].text, &test_recorded[i]))
        .collect();
    // Each file's dependencies (and the calls to what does not exist), on every core.
    type FileDeps = (String, Vec<(String, Span)>, Vec<Diagnostic>);
    let found: Vec<FileDeps> = model_files
        .par_iter()
        .chain(test_files.par_iter())
        .filter_map(|(id, package, file, text, rec)| {
            let id = (*id)?;
            let (mut list, mut problems) = (Vec::new(), Vec::new());
            for call in &rec.refs {
                let name = &call.name;
                let span = Span::new(*file, spans::find_call(text, "ref", None, name).unwrap_or(0..0));
                match refs.resolve(package, call) {
                    Some(dep) => list.push((dep.to_string(), span)),
                    None => problems.push(problems::unknown_ref(id, name, span, by_name, &nodes)),
                }
            }
            for (s, t) in &rec.sources {
                let span = Span::new(*file, spans::find_call(text, "source", Some(s), t).unwrap_or(0..0));
                match by_source.get(&(s.clone(), t.clone())) {
                    Some(dep) => list.push((dep.to_string(), span)),
                    None => problems.push(problems::unknown_source(id, s, t, span, &by_source)),
                }
            }
            Some((id.to_string(), list, problems))
        })
        .collect();
    for (id, list, problems) in found {
        diags.extend(problems);
        deps.insert(id, list);
    }

    // A source declared over a seed's table (a project that seeds its own raw data): what
    // reads the source waits for the seed.
    let seed_at: BTreeMap<(String, String), &String> = nodes
        .values()
        .filter(|n| n.resource_type == ResourceType::Seed)
        .filter_map(|n| {
            n.relation.as_ref().map(|r| ((r.schema.to_lowercase(), r.identifier.to_lowercase()), &n.unique_id))
        })
        .collect();
    for src in &project.sources {
        let key = (src.schema.to_lowercase(), src.identifier().to_lowercase());
        if let Some(seed) = seed_at.get(&key) {
            let id = format!("source.{}.{}.{}", src.package, src.source_name, src.table.name);
            deps.insert(id, vec![((*seed).clone(), src.table.span)]);
        }
    }

    // Singular tests.
    for (i, t) in project.singular_tests.iter().enumerate() {
        let layer = t.folder_config.clone();
        let in_file: ConfigLayer = test_recorded[i]
            .config
            .iter()
            .map(|(k, v)| (config::normalize_key(k), ConfigEntry { value: v.clone(), span: Span::file_start(t.file) }))
            .collect();
        match NodeConfig::from_layer(&config::merge(&[&layer, &in_file]), ConfigFor::Test) {
            // `{{ config(enabled=false) }}` in the file, or its folder's config.
            Ok(cfg) if !cfg.enabled => {}
            Ok(cfg) => {
                let id = test_ids[i].clone();
                nodes.insert(
                    id.clone(),
                    Box::new(Node {
                        file: Some(t.file),
                        raw_sql: Some(test_texts[i].text.clone()),
                        vars_used: test_recorded[i].vars.clone(),
                        macros_used: test_recorded[i].macros.clone(),
                        ..Node::new(id, ResourceType::Test, t.name.clone(), t.fqn.clone(), t.path.clone(), cfg)
                    }),
                );
            }
            Err(e) => diags.extend(e),
        }
    }

    // The models' SQL is rendered (the compile pass) while the generic tests from YAML
    // become nodes: both only read the nodes so far, so they share the cores.
    let base_resolver = NodeResolver {
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
        refs: refs.clone(),
        sources: Arc::new(
            by_source.iter().filter_map(|(key, id)| Some((key.clone(), nodes[id].relation.clone()?))).collect(),
        ),
        columns: BTreeMap::new(),
        querier: opts.querier.map(|make| make(&project)),
    };
    let resolver: Arc<dyn Resolver> = Arc::new(base_resolver.clone());
    // Templates are compiled again rather than kept from the parse pass: 10,000 compiled
    // templates hold over 100 MB, and compiling one costs a few microseconds.
    let jobs: Vec<(&String, &str, &str)> = model_index
        .iter()
        .zip(names.iter().zip(&texts))
        .filter_map(|(id, (name, file))| Some((id.as_ref()?, name.as_str(), &*file.text)))
        .chain(test_ids.iter().zip(test_names.iter().zip(&test_texts)).map(|(id, (n, f))| (id, n.as_str(), &*f.text)))
        .filter(|(id, _, _)| nodes.contains_key(*id))
        .collect();
    let event_times: Arc<BTreeMap<String, String>> = Arc::new(
        nodes
            .values()
            .filter(|n| n.resource_type.is_built())
            .filter_map(|n| Some((n.name.clone(), n.config.event_time.clone()?)))
            .collect(),
    );
    let existing = opts.existing.map(|list| list(&project)).unwrap_or_default();
    let pass = CompilePass {
        nodes: &nodes,
        renderer: &renderer,
        resolver: resolver.clone(),
        event_times: event_times.clone(),
        existing: existing.clone(),
        full_refresh: opts.render.full_refresh,
        sources,
    };
    let ((tests, test_problems), rendered): (_, Vec<(String, RenderedNode)>) = rayon::join(
        || generic_test_nodes(&project, &nodes, &refs, &by_source, sources),
        || jobs.par_iter().map(|&(id, name, text)| (id.clone(), pass.render(id, name, text))).collect(),
    );
    drop(pass);
    for (node, list, problems) in tests {
        diags.extend(problems);
        deps.insert(node.unique_id.clone(), list);
        nodes.insert(node.unique_id.clone(), node);
    }
    diags.extend(test_problems);
    if diags.has_errors() {
        return Err(finish(diags, sources));
    }

    // The DAG, of the enabled nodes (a disabled singular test's calls were recorded too).
    deps.retain(|id, _| nodes.contains_key(id));
    let mut dag = Dag::with_capacity(nodes.len());
    // What selectors read of each node (its config as JSON, say), gathered on every core.
    let infos: Vec<NodeInfo> = nodes.par_iter().map(|(_, node)| graph_info(node)).collect();
    for info in infos {
        dag.add_node(info);
    }
    // Each node's sorted dependencies and the DAG's edges are worked out on every core;
    // only adding them is serial.
    let depends: Vec<(&String, Vec<String>)> = deps
        .par_iter()
        .map(|(id, list)| {
            let mut depends: Vec<String> = list.iter().map(|(d, _)| d.clone()).collect();
            depends.sort();
            depends.dedup();
            (id, depends)
        })
        .collect();
    let edges: Vec<(&str, &str)> =
        depends.iter().flat_map(|(id, list)| list.iter().map(|d| (d.as_str(), id.as_str()))).collect();
    dag.add_edges(&edges);
    for (id, list) in depends {
        nodes.get_mut(id).expect("deps are keyed by node ids").depends_on = list;
    }
    for cycle in dag.cycles() {
        diags.push(problems::cycle_diagnostic(&cycle.0, &nodes, &deps));
    }
    if diags.has_errors() {
        return Err(finish(diags, sources));
    }

    // Nodes that asked for a relation's columns: rendered again once lineage knows them.
    let mut introspecting: Vec<&(&String, &str, &str)> = Vec::new();
    // Renders that failed before the columns they ask for were known: tried again too.
    let mut pending: BTreeMap<String, Diagnostic> = BTreeMap::new();
    let mut unrendered: BTreeMap<String, Diagnostic> = BTreeMap::new();
    let deferrable = |d: &Diagnostic| opts.defer_failed_queries && d.code == crate::template::QUERY_FAILED;
    for (id, result) in rendered {
        match result {
            Ok((rendered, hooks)) => {
                if rendered.recorded.introspected {
                    introspecting.extend(jobs.iter().find(|j| *j.0 == id));
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
                introspecting.extend(jobs.iter().find(|j| *j.0 == id));
                pending.insert(id, d);
            }
            Err(d) if deferrable(&d) => {
                unrendered.insert(id, d);
            }
            Err(d) => diags.push(d),
        }
    }
    if diags.has_errors() {
        return Err(finish(diags, sources));
    }
    // Once a model is left unrendered, what fails to check is left to the next compile.
    let deferring = !unrendered.is_empty();
    ephemeral::inline_ephemerals(&mut nodes, &dag);
    for (id, result) in render_generic_tests(&nodes, &renderer, &resolver, sources, |_| true) {
        match result {
            Ok((sql, audit_sql, config)) => {
                let node = nodes.get_mut(&id).expect("rendered ids are nodes");
                node.compiled_sql = Some(sql);
                node.audit_sql = audit_sql;
                apply_macro_config(node, config);
            }
            Err(d) if d.code == crate::template::UNKNOWN_COLUMNS => {
                pending.insert(id, d);
            }
            Err(_) if deferring => {}
            Err(d) => diags.push(d),
        }
    }
    if diags.has_errors() {
        return Err(finish(diags, sources));
    }

    // Parse the compiled SQL; schemas, column checks and lineage, in DAG order.
    let target_path = &project.settings.target_path;
    let syntax = |node: &Node, sql: &str, err: &crate::sql::SqlError| {
        problems::sql_diagnostic(node, sql, err, sources, target_path)
    };
    let previous = match &opts.build {
        Some(build) => Cache::read(&cache_path(&project), format!("{build} {dialect:?}")),
        None => Cache::default(),
    };
    let analyze = |nodes: &Nodes, cache: &Cache| {
        let input = crate::lineage::Input { nodes, dag: &dag, dialect, project: &project, syntax: &syntax, cache };
        crate::lineage::analyze(&input, sources)
    };
    let (mut lineage, mut column_problems, mut cache) = analyze(&nodes, &previous);
    // About 10 MB of entry text, freed before the artifacts are written.
    drop(previous);
    // Introspection (`adapter.get_columns_in_relation`, `dbt_utils.star`) is answered
    // from the columns lineage found; each round can tell the next more, as far as a
    // chain of such models goes.
    for _ in 0..MAX_INTROSPECTION_ROUNDS {
        if introspecting.is_empty() {
            break;
        }
        let resolver: Arc<dyn Resolver> =
            Arc::new(NodeResolver { columns: relation_columns(&nodes, &lineage), ..base_resolver.clone() });
        let pass = CompilePass {
            nodes: &nodes,
            renderer: &renderer,
            resolver,
            event_times: event_times.clone(),
            existing: existing.clone(),
            full_refresh: opts.render.full_refresh,
            sources,
        };
        let again: Vec<(String, RenderedNode)> =
            introspecting.par_iter().map(|(id, name, text)| ((*id).clone(), pass.render(id, name, text))).collect();
        drop(pass);
        let mut changed = false;
        for (id, result) in again {
            let (rendered, hooks) = match result {
                Ok(done) => done,
                Err(d) if d.code == crate::template::UNKNOWN_COLUMNS => {
                    pending.insert(id, d);
                    continue;
                }
                Err(d) if deferrable(&d) => {
                    pending.remove(&id);
                    unrendered.insert(id, d);
                    continue;
                }
                Err(d) => return Err(Diagnostics::sorted(vec![d], sources)),
            };
            pending.remove(&id);
            let node = nodes.get_mut(&id).expect("rendered ids are nodes");
            if node.compiled_sql.as_deref() != Some(rendered.sql.as_str()) {
                node.compiled_sql = Some(rendered.sql);
                node.hooks = hooks;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        (lineage, column_problems, cache) = analyze(&nodes, &cache);
    }
    // Generic tests of the project's or a package's own macros may read their model's
    // columns too: rendered again with them, and lineage redone if one changed.
    let custom = |n: &Node| {
        n.generic_test.as_ref().is_some_and(|t| {
            renderer.generic_test_macro(&t.def.test_name).is_some_and(|key| !renderer.is_builtin(&key))
        })
    };
    if nodes.values().any(|n| custom(n)) {
        let resolver: Arc<dyn Resolver> =
            Arc::new(NodeResolver { columns: relation_columns(&nodes, &lineage), ..base_resolver.clone() });
        let mut changed = false;
        for (id, result) in render_generic_tests(&nodes, &renderer, &resolver, sources, custom) {
            match result {
                Ok((sql, audit_sql, config)) => {
                    pending.remove(&id);
                    let node = nodes.get_mut(&id).expect("rendered ids are nodes");
                    apply_macro_config(node, config);
                    if node.compiled_sql.as_deref() != Some(sql.as_str()) {
                        node.compiled_sql = Some(sql);
                        node.audit_sql = audit_sql;
                        changed = true;
                    }
                }
                Err(d) if d.code == crate::template::UNKNOWN_COLUMNS => {
                    pending.insert(id, d);
                }
                Err(_) if deferring || !unrendered.is_empty() => {}
                Err(d) => diags.push(d),
            }
        }
        if changed {
            (lineage, column_problems, cache) = analyze(&nodes, &cache);
        }
    }
    let deferring = !unrendered.is_empty();
    let checked = |d: &Diagnostic| !deferring || d.severity != crate::diagnostics::Severity::Error;
    diags.extend(column_problems.into_iter().filter(checked));
    diags.extend(pending.into_values().filter(checked));
    // Unit tests see the columns lineage found (only worked out when there are any).
    let known = if project.unit_tests.is_empty() { BTreeMap::new() } else { relation_columns(&nodes, &lineage) };
    let columns: Arc<dyn Resolver> = Arc::new(NodeResolver { columns: known, ..base_resolver.clone() });
    let cx = unit_tests::Context {
        project: &project,
        nodes: &nodes,
        lineage: &lineage,
        renderer: &renderer,
        columns,
        sources,
    };
    let (unit_nodes, unit_problems) = unit_tests::unit_test_nodes(&cx);
    diags.extend(unit_problems.into_iter().filter(checked));
    for node in unit_nodes {
        dag.add_node(graph_info(&node));
        dag.add_edges(&[(node.depends_on[0].as_str(), node.unique_id.as_str())]);
        nodes.insert(node.unique_id.clone(), node);
    }
    warnings.extend(diags.finish(sources)?);
    let macro_texts = renderer.macro_texts(sources);
    let run_hooks =
        render_run_hooks(&project, &nodes, &renderer, &resolver).map_err(|d| Diagnostics::sorted(vec![d], sources))?;
    Ok(CompiledProject { project, nodes, dag, dialect, warnings, lineage, macro_texts, run_hooks, cache, unrendered })
}

/// Where a project's compile cache lives: `<target>/compile.cache`.
pub fn cache_path(project: &Project) -> PathBuf {
    project.root.join(&project.settings.target_path).join(crate::lineage::cache::FILE_NAME)
}

/// `on-run-start` and `on-run-end`, rendered as dbt does: with `schemas` (the schemas
/// models and seeds are built in) and `database` besides the usual context.
fn render_run_hooks(
    project: &Project,
    nodes: &Nodes,
    renderer: &Renderer,
    resolver: &Arc<dyn Resolver>,
) -> Result<Hooks, Diagnostic> {
    let schemas: BTreeSet<&str> = nodes
        .values()
        .filter(|n| n.resource_type.is_built())
        .filter_map(|n| Some(n.relation.as_ref()?.schema.as_str()))
        .collect();
    let input = RenderInput {
        mode: Mode::Compile { resolver: resolver.clone(), is_incremental: false },
        this: None,
        model: BTreeMap::new(),
        config: BTreeMap::new(),
        extra: BTreeMap::from([
            ("schemas", serde_json::json!(schemas)),
            ("database", serde_json::json!(project.target.database)),
        ]),
        overrides: None,
    };
    let render = |hooks: &[(String, Span)]| -> Result<Vec<String>, Diagnostic> {
        hooks.iter().map(|(text, span)| renderer.render_inline(text, &input, *span)).collect()
    };
    Ok(Hooks { pre: render(&project.settings.on_run_start)?, post: render(&project.settings.on_run_end)? })
}

/// Each generic test's failing-rows query against the published relation, and against
/// the audit relation where the attached node is built (seeds and non-ephemeral models).
#[allow(clippy::type_complexity)]
fn render_generic_tests(
    nodes: &Nodes,
    renderer: &Renderer,
    resolver: &Arc<dyn Resolver>,
    sources: &SourceMap,
    only: impl Fn(&Node) -> bool,
) -> Vec<(String, Result<RenderedTest, Diagnostic>)> {
    let tests: Vec<&Node> = nodes.values().map(Box::as_ref).filter(|n| n.generic_test.is_some() && only(n)).collect();
    let memo = tests::Memo::default();
    tests
        .par_iter()
        .map(|node| {
            let test = node.generic_test.as_ref().expect("filtered on generic tests");
            let attached = &nodes[&test.attached_to];
            let input = || compile_input(node, resolver.clone(), false);
            // Rendered once with a placeholder for the model, then spelled both ways.
            const MODEL: &str = "__etlm_test_model__";
            let rendered = tests::render_generic_test(
                &test.def,
                &node.config,
                MODEL,
                attached.relation.as_ref(),
                renderer,
                input,
                &memo,
                sources,
            );
            let result = rendered.map(|(sql, config)| match &attached.relation {
                Some(relation) => {
                    let audited = attached.resource_type.is_built();
                    // Against the staged data, a test reads the staged version wherever it
                    // names the model (a package test's `compare_model: ref('itself')`, say).
                    let audit = audited.then(|| {
                        let staged = relation.audit().to_string();
                        sql.replace(&relation.to_string(), &staged).replace(MODEL, &staged)
                    });
                    (sql.replace(MODEL, &relation.to_string()), audit, config)
                }
                None => {
                    let ephemeral = attached.compiled_sql.as_deref().unwrap_or_default().trim();
                    (sql.replace(MODEL, &format!("(\n{ephemeral}\n) dbt_subquery")), None, config)
                }
            });
            (node.unique_id.clone(), result)
        })
        .collect()
}

/// A generic test's query, against the published relation and the staged one, and the
/// config its macro set.
type RenderedTest = (String, Option<String>, BTreeMap<String, Json>);

/// Sets the config a test's macro set (`config(fail_calc=...)`) where YAML did not.
fn apply_macro_config(node: &mut Node, config: BTreeMap<String, Json>) {
    for (key, value) in config {
        node.config.raw.entry(key).or_insert(value);
    }
}

/// The compile pass over models and singular tests: what rendering one needs.
struct CompilePass<'a> {
    nodes: &'a Nodes,
    renderer: &'a Renderer,
    resolver: Arc<dyn Resolver>,
    /// `event_time` of each model and seed that has one, by name.
    event_times: Arc<BTreeMap<String, String>>,
    /// The relations that exist on the target.
    existing: BTreeSet<Relation>,
    full_refresh: bool,
    sources: &'a SourceMap,
}

/// A node's compiled SQL and hooks, or why it did not render.
type RenderedNode = Result<(crate::template::Rendered, Hooks), Diagnostic>;

impl CompilePass<'_> {
    /// Renders the node `id` from its file `name` holding `text`.
    fn render(&self, id: &str, name: &str, text: &str) -> RenderedNode {
        let node = &self.nodes[id];
        let incremental = node.config.materialized == Materialization::Incremental
            && !(self.full_refresh && node.config.full_refresh != Some(false))
            && node.relation.as_ref().is_some_and(|r| self.existing.contains(r));
        let input = if node.is_windowed() {
            // Batches substitute their window; refs to models with `event_time` are
            // filtered to it.
            let windowed: Arc<dyn Resolver> =
                Arc::new(WindowResolver { inner: self.resolver.clone(), event_times: self.event_times.clone() });
            let mut input = compile_input(node, windowed, incremental);
            input.extra = window::variables();
            input
        } else {
            compile_input(node, self.resolver.clone(), incremental)
        };
        let hooks = |list: &[String]| -> Result<Vec<String>, Diagnostic> {
            let rendered = |hook: &String| {
                let span = Span::file_start(node.file.expect("a node with hooks has a file"));
                self.renderer.render_inline(hook, &input, span)
            };
            list.iter().map(rendered).collect()
        };
        let file = node.file.expect("models and singular tests have a file");
        let result = self.renderer.render(&self.renderer.compile(file, name, text), &input, self.sources);
        result.and_then(|rendered| {
            Ok((rendered, Hooks { pre: hooks(&node.config.pre_hook)?, post: hooks(&node.config.post_hook)? }))
        })
    }
}

/// A generic test node: the node, what it depends on (with where each is named) and the
/// problems found building it.
type BuiltTest = (Box<Node>, Vec<(String, Span)>, Vec<Diagnostic>);

/// The generic tests declared in YAML (on models, seeds and sources) as nodes, with the
/// problems of their configs.
fn generic_test_nodes(
    project: &Project,
    nodes: &Nodes,
    refs: &refs::RefIndex,
    by_source: &BTreeMap<(String, String), String>,
    sources: &SourceMap,
) -> (Vec<BuiltTest>, Vec<Diagnostic>) {
    let mut problems = Vec::new();
    let mut generic: Vec<(String, TestDef, String)> = project
        .models
        .par_iter()
        .flat_map_iter(|m| {
            let id = format!("{}.{}.{}", m.resource_type.as_str(), m.package, m.name);
            let props = m.props.as_ref().filter(|_| nodes.contains_key(&id));
            let tests = props.into_iter().flat_map(|p| all_tests(&p.tests, &p.columns));
            tests.map(move |t| (id.clone(), t, m.name.clone()))
        })
        .collect();
    for s in &project.seeds {
        if let Some(p) = &s.props {
            let id = format!("seed.{}.{}", s.package, s.name);
            generic.extend(all_tests(&p.tests, &p.columns).map(|t| (id.clone(), t, s.name.clone())));
        }
    }
    for src in &project.sources {
        let id = format!("source.{}.{}.{}", src.package, src.source_name, src.table.name);
        let label = format!("{}_{}", src.source_name, src.table.name);
        generic.extend(all_tests(&src.table.tests, &src.table.columns).map(|t| (id.clone(), t, label.clone())));
    }
    let test_folder = project.settings.tests.resolve(&[project.name().to_string()]);
    let test_configs: Vec<(String, Result<NodeConfig, Vec<Diagnostic>>)> = generic
        .par_iter()
        .map(|(attached, def, label)| {
            let (name, short) = tests::test_names(def, label, attached.starts_with("source."));
            let mut layer = config::merge(&[&test_folder, &def.config]);
            // As dbt: a long name's compiled file and stored failures take the short one.
            if short != name {
                layer.entry("alias".into()).or_insert(ConfigEntry { value: Json::String(short), span: def.span });
            }
            (name, NodeConfig::from_layer(&layer, ConfigFor::Test))
        })
        .collect();
    // Ids first, in order (a repeated name takes a suffix), then the nodes on every core.
    let existing: HashSet<&str> = nodes.keys().map(String::as_str).collect();
    let mut taken: HashSet<String> = HashSet::new();
    let mut enabled = Vec::new();
    for ((attached, def, _), (name, config)) in generic.into_iter().zip(test_configs) {
        let config = match config {
            Ok(c) if c.enabled => c,
            Ok(_) => continue,
            Err(e) => {
                problems.extend(e);
                continue;
            }
        };
        let package = nodes[&attached].package();
        let mut unique_id = format!("test.{package}.{name}");
        let mut n = 2;
        while existing.contains(unique_id.as_str()) || taken.contains(&unique_id) {
            unique_id = format!("test.{package}.{name}_{n}");
            n += 1;
        }
        taken.insert(unique_id.clone());
        enabled.push((unique_id, attached, def, name, config));
    }
    let built: Vec<BuiltTest> = enabled
        .into_par_iter()
        .map(|(unique_id, attached, def, name, config)| {
            let mut problems = Vec::new();
            let mut list = vec![(attached.clone(), def.span)];
            let (referenced, srcs) = tests::referenced_in_args(&def);
            let package = nodes[&attached].package();
            for call in referenced {
                match refs.resolve(package, &call) {
                    Some(dep) => list.push((dep.to_string(), def.span)),
                    None => {
                        problems.push(problems::unknown_ref(&unique_id, &call.name, def.span, refs.by_name(), nodes))
                    }
                }
            }
            for (s, t) in srcs {
                match by_source.get(&(s.clone(), t.clone())) {
                    Some(dep) => list.push((dep.to_string(), def.span)),
                    None => problems.push(problems::unknown_source(&unique_id, &s, &t, def.span, by_source)),
                }
            }
            let fqn = test_fqn(&nodes[&attached].fqn, &name);
            // A generic test lives in the YAML file that declares it.
            let path = sources.file(def.span.file).path.clone();
            let node = Node {
                generic_test: Some(GenericTest { def, attached_to: attached }),
                ..Node::new(unique_id, ResourceType::Test, name, fqn, path, config)
            };
            (Box::new(node), list, problems)
        })
        .collect();
    (built, problems)
}

fn finish(diags: Collector, sources: &SourceMap) -> Diagnostics {
    match diags.finish(sources) {
        Err(d) => d,
        Ok(_) => unreachable!("finish is called only when there are errors"),
    }
}

/// A node's rendered description and column docs, and the problems rendering them.
fn describe(
    props: Option<(&Option<crate::project::Description>, &Vec<crate::project::ColumnProps>)>,
    renderer: &Renderer,
) -> (String, Vec<ColumnDoc>, Vec<Diagnostic>) {
    let mut problems = Vec::new();
    let Some((desc, cols)) = props else { return (String::new(), Vec::new(), problems) };
    let mut text = |d: &Option<crate::project::Description>| match d {
        None => String::new(),
        Some(d) => renderer.render_description(&d.text, d.span).unwrap_or_else(|e| {
            problems.push(e);
            String::new()
        }),
    };
    let description = text(desc);
    let columns = cols
        .iter()
        .map(|c| ColumnDoc { name: c.name.clone(), description: text(&c.description), data_type: c.data_type.clone() })
        .collect();
    (description, columns, problems)
}

fn all_tests<'a>(
    tests: &'a [TestDef],
    columns: &'a [crate::project::ColumnProps],
) -> impl Iterator<Item = TestDef> + 'a {
    tests.iter().cloned().chain(columns.iter().flat_map(|c| c.tests.iter().cloned()))
}

/// The node as templates and the relation-name macros see it (`model`, `node`): names,
/// path, config, and where it is built (`relation`; none for an ephemeral model or a
/// test, whose `model.schema` is then undefined rather than wrong).
fn model_value(node: &Node, relation: Option<&Relation>) -> BTreeMap<&'static str, Json> {
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

/// A generic test's fqn: its attached node's package and folders, then the test's name.
fn test_fqn(attached: &[String], name: &str) -> Vec<String> {
    let mut fqn: Vec<String> = attached[..attached.len().saturating_sub(1)].to_vec();
    fqn.push(name.to_string());
    fqn
}

/// The render input of a node in compile mode.
pub fn compile_input(node: &Node, resolver: Arc<dyn Resolver>, is_incremental: bool) -> RenderInput {
    RenderInput {
        mode: Mode::Compile { resolver, is_incremental },
        this: node.relation.clone(),
        model: model_value(node, node.relation.as_ref()),
        config: node.config.raw.clone(),
        extra: BTreeMap::new(),
        overrides: None,
    }
}

fn relation_for(
    node: &Node,
    project: &Project,
    renderer: &Renderer,
    sources: &SourceMap,
) -> Result<Relation, Diagnostic> {
    // The node as the macros see it, built only when the project overrides one. As in
    // dbt, `generate_alias_name` sees the schema `generate_schema_name` gave.
    let macro_input = |schema: &str| {
        let database = node.config.database.clone().or_else(|| project.target.database.clone());
        let identifier = node.config.alias.clone().unwrap_or_else(|| node.name.clone());
        let relation = Relation { database, schema: schema.to_string(), identifier };
        let input = RenderInput {
            mode: Mode::Parse,
            this: None,
            model: model_value(node, Some(&relation)),
            config: node.config.raw.clone(),
            extra: BTreeMap::new(),
            overrides: None,
        };
        let node_value = minijinja::Value::from(minijinja::value::Serde(&input.model));
        (input, node_value)
    };
    let naming = |d: Diagnostic| d.with_note(format!("while naming the relation of `{}`", node.unique_id));
    // As dbt: a snapshot's legacy `target_schema` is its schema as written.
    let legacy = node.config.snapshot.as_ref();
    if let Some(schema) = legacy.and_then(|s| s.target_schema.clone()) {
        let database = legacy.and_then(|s| s.target_database.clone()).or_else(|| node.config.database.clone());
        let identifier = node.config.alias.clone().unwrap_or_else(|| node.name.clone());
        return Ok(Relation { database, schema, identifier });
    }
    let custom = node.config.schema.clone();
    let schema = if let Some(naming_macro) = renderer.override_of("generate_schema_name") {
        let (input, node_value) = macro_input(&project.target.schema);
        let arg = custom.clone().map_or(minijinja::Value::from(()), minijinja::Value::from);
        renderer.call_macro(&naming_macro, &[arg, node_value], &input, sources).map_err(naming)?
    } else {
        match custom {
            Some(c) => format!("{}_{}", project.target.schema, c.trim()),
            None => project.target.schema.clone(),
        }
    };
    let identifier = if let Some(naming_macro) = renderer.override_of("generate_alias_name") {
        let arg = node.config.alias.clone().map_or(minijinja::Value::from(()), minijinja::Value::from);
        let (input, node_value) = macro_input(&schema);
        renderer.call_macro(&naming_macro, &[arg, node_value], &input, sources).map_err(naming)?
    } else {
        node.config.alias.clone().unwrap_or_else(|| node.name.clone())
    };
    Ok(Relation { database: node.config.database.clone(), schema, identifier })
}

/// What `ref('name')` renders as in compile mode.
fn ref_target(node: &Node) -> RelationValue {
    match &node.relation {
        Some(relation) => RelationValue { relation: relation.clone(), cte: None },
        None => RelationValue { relation: Relation::new("", node.name.clone()), cte: Some(ephemeral_cte(&node.name)) },
    }
}

/// How many times models that introspect render again (see `relation_columns`).
const MAX_INTROSPECTION_ROUNDS: usize = 4;

/// Each built or read relation's columns as lineage found them (names and types), for
/// `adapter.get_columns_in_relation`.
fn relation_columns(
    nodes: &Nodes,
    lineage: &crate::lineage::Lineage,
) -> BTreeMap<Relation, Vec<(String, Option<String>)>> {
    nodes
        .values()
        .filter_map(|n| {
            let relation = n.relation.clone()?;
            let found = lineage.nodes.get(&n.unique_id)?;
            let columns =
                found.columns.iter().map(|c| (c.name.clone(), c.data_type.as_deref().map(sql_type))).collect();
            Some((relation, columns))
        })
        .collect()
}

/// A lineage type (Arrow's names: `int32`, `utf8`, `timestamp(µs)`) as SQL spells it on
/// both engines, for the `data_type` of introspected columns (packages cast to it).
fn sql_type(lineage_type: &str) -> String {
    let t = lineage_type.to_ascii_lowercase();
    let spelled = match t.as_str() {
        "int8" | "int16" | "uint8" => "smallint",
        "int32" | "uint16" => "integer",
        "int64" | "uint32" | "uint64" => "bigint",
        "float16" | "float32" => "real",
        "float64" => "double precision",
        "utf8" | "largeutf8" | "utf8view" => "text",
        "date32" | "date64" => "date",
        "boolean" => "boolean",
        _ if t.starts_with("timestamp") => "timestamp",
        _ if t.starts_with("decimal") => {
            let args = t.split_once('(').map_or("", |(_, a)| a.trim_end_matches(')'));
            return format!("numeric({args})");
        }
        _ => return lineage_type.to_string(),
    };
    spelled.to_string()
}

#[derive(Clone, Debug)]
struct NodeResolver {
    root: String,
    /// What `ref()` renders as, by node id.
    targets: Arc<BTreeMap<String, RelationValue>>,
    refs: Arc<refs::RefIndex>,
    sources: Arc<BTreeMap<(String, String), Relation>>,
    /// What `adapter.get_columns_in_relation` answers.
    columns: BTreeMap<Relation, Vec<(String, Option<String>)>>,
    querier: Option<Arc<dyn crate::template::Querier>>,
}

/// The resolver of a windowed model: a ref to a node with `event_time` becomes that
/// relation filtered to the batch's window (placeholders, see `run::window`).
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

    fn querier(&self) -> Option<&dyn crate::template::Querier> {
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

    fn querier(&self) -> Option<&dyn crate::template::Querier> {
        self.querier.as_deref()
    }
}

fn graph_info(node: &Node) -> NodeInfo {
    let test = node.generic_test.as_ref();
    NodeInfo {
        unique_id: node.unique_id.clone(),
        resource_type: node.resource_type,
        name: node.name.clone(),
        package: node.package().to_string(),
        fqn: node.fqn.clone(),
        path: node.path.display().to_string(),
        tags: node.config.tags.clone(),
        config: node.config.raw.clone(),
        source_name: node.source_name.clone(),
        test_type: match node.resource_type {
            ResourceType::Test if test.is_some() => Some("generic"),
            ResourceType::Test => Some("singular"),
            ResourceType::UnitTest => Some("unit"),
            _ => None,
        },
        test_name: test.map(|t| t.def.test_name.clone()),
    }
}
