//! `etlm ls`: the selected nodes, one per line, or as JSON lines.

use clap::ValueEnum;

use super::{GlobalArgs, Outcome};
use crate::diagnostics::{Diagnostic, SourceMap};
use crate::graph::ResourceType;
use crate::project::Env;
use crate::report::Format;
use crate::report::{Output, print_diagnostics};

/// What each line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LsOutput {
    /// dbt's selector form: `shop.staging.stg_orders`, `source:shop.raw.orders`.
    #[default]
    Selector,
    Name,
    Path,
    UniqueId,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// What to print for each node (`--format json` implies `json`).
    #[arg(long, value_enum, default_value_t = LsOutput::Selector)]
    pub output: LsOutput,
    /// Only these resource types.
    #[arg(long = "resource-type", value_name = "TYPE")]
    pub resource_type: Vec<String>,
}

pub fn run(
    global: &GlobalArgs,
    args: &LsArgs,
    env: Env,
    sources: &SourceMap,
    out: &Output,
) -> Result<Outcome, Vec<Diagnostic>> {
    let compiled = super::compile_with(global, env, sources, "list")?;
    print_diagnostics(out, &compiled.warnings, sources);
    let selected = super::selected(global, &compiled)?;
    let mode = if global.format == Format::Json { LsOutput::Json } else { args.output };
    let mut lines = Vec::new();
    for id in compiled.dag.topological() {
        if !selected.contains(id) {
            continue;
        }
        let node = &compiled.nodes[id];
        if !args.resource_type.is_empty() && !args.resource_type.iter().any(|t| t == node.resource_type.as_str()) {
            continue;
        }
        lines.push(match mode {
            LsOutput::Selector => match node.resource_type {
                ResourceType::Source => format!("source:{}", node.fqn.join(".")),
                _ => node.fqn.join("."),
            },
            LsOutput::Name => node.name.clone(),
            LsOutput::Path => node.path.display().to_string(),
            LsOutput::UniqueId => node.unique_id.clone(),
            LsOutput::Json => serde_json::json!({
                "unique_id": node.unique_id,
                "name": node.name,
                "resource_type": node.resource_type,
                "path": node.path.display().to_string(),
                "fqn": node.fqn,
                "depends_on": node.depends_on,
                "relation": node.relation.as_ref().map(ToString::to_string),
                "config": node.config.raw,
            })
            .to_string(),
        });
    }
    out.lines(&lines);
    Ok(Outcome::Success)
}
