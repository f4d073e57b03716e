//! `on-run-start` and `on-run-end` rendered as dbt does: with `schemas` (the schemas
//! models and seeds are built in) and `database` besides the usual context.
//!
//! Takes the compiled nodes; hands on the project's run hooks as SQL.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::Compiler;
use crate::diagnostics::{Diagnostic, Span};
use crate::node::{Hooks, Nodes};
use crate::template::{Mode, RenderInput, Resolver};

/// The run hooks, `on-run-start` as `pre` and `on-run-end` as `post`.
pub(super) fn render_run_hooks(c: &Compiler, nodes: &Nodes, resolver: &Arc<dyn Resolver>) -> Result<Hooks, Diagnostic> {
    let Compiler { project, renderer, .. } = *c;
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
        hooks.iter().map(|(text, span)| renderer.render_hook(text, &input, *span)).collect()
    };
    Ok(Hooks { pre: render(&project.settings.on_run_start)?, post: render(&project.settings.on_run_end)? })
}
