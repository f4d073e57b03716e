//! Where each built node lives: dbt's `generate_schema_name` and `generate_alias_name`,
//! or the project's overrides of them, called on every core.
//!
//! Takes the nodes; sets the `relation` of every model, snapshot and seed (an ephemeral
//! model keeps none). A naming macro that fails is a problem, reported with those of
//! the compile pass.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::Compiler;
use super::render::model_value;
use crate::diagnostics::{Code, Collector, Diagnostic, SourceMap, Span};
use crate::node::{Node, Nodes};
use crate::project::{Materialization, Project};
use crate::relation::Relation;
use crate::template::{Mode, RenderInput, Renderer};

/// Names the relation of every built node.
pub(super) fn name_relations(c: &Compiler, nodes: &mut Nodes, diags: &mut Collector) {
    let ids: Vec<String> = nodes.values().filter(|n| n.resource_type.is_built()).map(|n| n.unique_id.clone()).collect();
    let relations: Vec<(String, Result<Relation, Diagnostic>)> = ids
        .into_par_iter()
        .filter(|id| nodes[id].config.materialized != Materialization::Ephemeral)
        .map(|id| {
            let relation = relation_for(&nodes[&id], c.project, c.renderer, c.sources);
            (id, relation)
        })
        .collect();
    for (id, relation) in relations {
        match relation.and_then(|rel| checked(&nodes[&id], rel)) {
            Ok(rel) => nodes.get_mut(&id).expect("id from nodes").relation = Some(rel),
            Err(d) => diags.push(d),
        }
    }
}

/// A relation whose schema or name would be a path outside the warehouse is an error.
fn checked(node: &Node, relation: Relation) -> Result<Relation, Diagnostic> {
    for (what, name) in [("schema", &relation.schema), ("name", &relation.identifier)] {
        if let Some(why) = crate::relation::unsafe_name(name) {
            let mut d = Diagnostic::error(
                Code::InvalidConfig,
                format!("`{}` cannot be built with the {what} `{name}`: {why}", node.unique_id),
            )
            .with_help("a schema and an alias become folder and file names; use letters, digits and `_`");
            if let Some(file) = node.file {
                d = d.with_label(Span::new(file, 0..0), "the node's file");
            }
            return Err(d);
        }
    }
    Ok(relation)
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
