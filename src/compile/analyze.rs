//! The compiled SQL handed to `lineage`: parsed, checked and traced in DAG order
//! (schemas, column checks, column lineage), reusing what the last compile of this etlm
//! build cached. Introspection (`adapter.get_columns_in_relation`, `dbt_utils.star`) is
//! answered from the columns lineage found: models that introspect, and generic tests of
//! the project's or a package's own macros that did, are rendered again with them and lineage
//! redone, as long as a render changes.
//!
//! Takes the rendered nodes, the DAG and the [`Rendering`]; hands on the lineage and the
//! cache for the next compile, and adds the problems that stand (column checks, and
//! renders still waiting for columns).

use std::mem;
use std::sync::Arc;

use rayon::prelude::*;

use super::Compiler;
use super::problems;
use super::render::{RelationColumns, RenderedNode, Rendering, Resolution, deferrable};
use super::tests::{RenderedTest, apply_macro_config, render_generic_tests};
use crate::diagnostics::{Collector, Diagnostic, Diagnostics};
use crate::graph::Dag;
use crate::lineage::{Cache, Lineage};
use crate::node::{Node, Nodes};
use crate::template::Resolver;

/// How many times models that introspect render again (see [`relation_columns`]).
const MAX_INTROSPECTION_ROUNDS: usize = 4;

/// What the stage hands on.
pub(super) struct Analysis {
    /// Column-level lineage (`target/lineage.json`).
    pub lineage: Lineage,
    /// What the next compile may reuse (`target/compile.cache`).
    pub cache: Cache,
}

/// Runs lineage over the nodes, rendering again what introspects until nothing changes.
/// A render that fails on a second try (other than on unknown columns or a deferrable
/// query) stops the compile with that problem alone.
pub(super) fn analyze(
    c: &Compiler,
    nodes: &mut Nodes,
    dag: &Dag,
    resolution: &Resolution,
    rendering: &mut Rendering,
    diags: &mut Collector,
) -> Result<Analysis, Diagnostics> {
    let Compiler { opts, project, renderer, sources, dialect } = *c;
    let target_path = &project.settings.target_path;
    let syntax = |node: &Node, sql: &str, err: &crate::sql::SqlError| {
        problems::sql_diagnostic(node, sql, err, sources, target_path)
    };
    let previous = match &opts.build {
        Some(build) => Cache::read(&super::cache_path(project), format!("{build} {dialect:?}")),
        None => Cache::default(),
    };
    let analyze = |nodes: &Nodes, cache: &Cache| {
        let input = crate::lineage::Input { nodes, dag, dialect, project, syntax: &syntax, cache };
        crate::lineage::analyze(&input, sources)
    };
    let (mut lineage, mut column_problems, mut cache) = analyze(nodes, &previous);
    // About 10 MB of entry text, freed before the artifacts are written.
    drop(previous);
    // Each round can tell the next more, as far as a chain of introspecting models goes.
    for _ in 0..MAX_INTROSPECTION_ROUNDS {
        if rendering.introspecting.is_empty() {
            break;
        }
        let pass = resolution.pass(c, nodes, resolution.with_columns(relation_columns(nodes, &lineage)));
        let again: Vec<(String, RenderedNode)> = pass.render_all(rendering.introspecting.par_iter().copied());
        drop(pass);
        let mut changed = false;
        for (id, result) in again {
            let (rendered, hooks) = match result {
                Ok(done) => done,
                Err(d) if d.code == crate::template::UNKNOWN_COLUMNS => {
                    rendering.pending.insert(id, d);
                    continue;
                }
                Err(d) if deferrable(c, &d) => {
                    rendering.pending.remove(&id);
                    rendering.unrendered.insert(id, d);
                    continue;
                }
                Err(d) => return Err(Diagnostics::sorted(vec![d], sources)),
            };
            rendering.pending.remove(&id);
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
        (lineage, column_problems, cache) = analyze(nodes, &cache);
    }
    // Generic tests of the project's or a package's own macros may read their model's
    // columns too: those whose render asked for columns (or failed) are rendered again
    // with them, and lineage redone if one changed.
    let custom = |n: &Node| {
        rendering.introspecting_tests.contains(&n.unique_id)
            && n.generic_test.as_ref().is_some_and(|t| {
                renderer.generic_test_macro(&t.def.test_name).is_some_and(|key| !renderer.is_builtin(&key))
            })
    };
    if nodes.values().any(|n| custom(n)) {
        let resolver: Arc<dyn Resolver> = resolution.with_columns(relation_columns(nodes, &lineage));
        let mut changed = false;
        for (id, result) in render_generic_tests(c, nodes, &resolver, custom) {
            match result {
                Ok(RenderedTest { sql, audit_sql, config, .. }) => {
                    rendering.pending.remove(&id);
                    let node = nodes.get_mut(&id).expect("rendered ids are nodes");
                    apply_macro_config(node, config);
                    if node.compiled_sql.as_deref() != Some(sql.as_str()) {
                        node.compiled_sql = Some(sql);
                        node.audit_sql = audit_sql;
                        changed = true;
                    }
                }
                Err(d) if d.code == crate::template::UNKNOWN_COLUMNS => {
                    rendering.pending.insert(id, d);
                }
                Err(d) if deferrable(c, &d) => {
                    rendering.pending.remove(&id);
                    rendering.unrendered.insert(id, d);
                }
                Err(_) if rendering.deferring() => {}
                Err(d) => diags.push(d),
            }
        }
        if changed {
            (lineage, column_problems, cache) = analyze(nodes, &cache);
        }
    }
    diags.extend(column_problems.into_iter().filter(|d| rendering.keeps(d)));
    let pending: Vec<Diagnostic> = mem::take(&mut rendering.pending).into_values().collect();
    diags.extend(pending.into_iter().filter(|d| rendering.keeps(d)));
    Ok(Analysis { lineage, cache })
}

/// Each built or read relation's columns as lineage found them (names and types), for
/// `adapter.get_columns_in_relation`.
pub(super) fn relation_columns(nodes: &Nodes, lineage: &Lineage) -> RelationColumns {
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
