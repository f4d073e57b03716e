//! `etlm lineage MODEL[.COLUMN]`: the upstream and downstream paths of a column (or of
//! every column of a node) as a tree, or as JSON with `--format json`.

use clap::ValueEnum;
use serde_json::json;

use super::{GlobalArgs, Outcome};
use crate::diagnostics::{Code, Diagnostic, SourceMap, nearest};
use crate::lineage::trace::{self, Direction, Step};
use crate::lineage::{Lineage, NodeLineage};
use crate::project::Env;
use crate::report::Format;
use crate::report::{Output, print_diagnostics};

/// Which way to follow lineage edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DirectionArg {
    /// Towards seeds and sources.
    Up,
    /// Towards the models built from it.
    Down,
    /// Both ways.
    #[default]
    Both,
}

#[derive(Debug, clap::Args)]
pub struct LineageArgs {
    // Not named `target`: clap would take it for the global `--target`.
    /// `model.column`, or `model` for all its columns (seeds and `source.table` work too).
    #[arg(value_name = "NODE[.COLUMN]")]
    pub node: String,
    /// Which way to follow edges.
    #[arg(long, value_enum, default_value_t = DirectionArg::Both)]
    pub direction: DirectionArg,
}

/// Per column: the steps found in each direction.
type Traced<'a> = [(&'a str, Vec<(Direction, Vec<Step>)>)];

pub fn run(
    global: &GlobalArgs,
    args: &LineageArgs,
    env: Env,
    sources: &SourceMap,
    out: &Output,
) -> Result<Outcome, Vec<Diagnostic>> {
    let compiled = super::compile_with(global, env, sources, "lineage")?;
    print_diagnostics(out, &compiled.warnings, sources);
    let lineage = &compiled.lineage;
    let (id, columns) = resolve(lineage, &args.node).map_err(|d| vec![d])?;
    let node = &lineage.nodes[id];
    let children = trace::children(lineage);
    let directions: &[Direction] = match args.direction {
        DirectionArg::Up => &[Direction::Up],
        DirectionArg::Down => &[Direction::Down],
        DirectionArg::Both => &[Direction::Up, Direction::Down],
    };
    let traced: Vec<_> = columns
        .iter()
        .map(|c| (*c, directions.iter().map(|d| (*d, trace::trace(lineage, &children, id, c, *d))).collect()))
        .collect();
    match global.format {
        Format::Json => out.lines(&[json_output(id, node, &traced, columns.len() > 1).to_string()]),
        Format::Human | Format::Markdown => out.lines(&human_output(node, &traced, columns.len() > 1)),
    }
    Ok(Outcome::Success)
}

/// The node and the columns an argument names: `node` (all columns) or `node.column`.
fn resolve<'a>(lineage: &'a Lineage, target: &'a str) -> Result<(&'a str, Vec<&'a str>), Diagnostic> {
    if let Some(id) = lineage.find_node(target) {
        let cols = lineage.nodes[id].columns.iter().map(|c| c.name.as_str()).collect();
        return Ok((id, cols));
    }
    let unknown = |what: String, candidates: Vec<&str>| {
        let mut d = Diagnostic::error(Code::UnknownLineageTarget, what);
        if let Some(near) = nearest(target.rsplit('.').next().unwrap_or(target), candidates) {
            d = d.with_help(format!("did you mean `{near}`?"));
        }
        d
    };
    let Some((node, column)) = target.rsplit_once('.') else {
        let names = lineage.nodes.values().map(|n| n.name.as_str()).collect();
        return Err(unknown(format!("no model, seed or source is named `{target}`"), names));
    };
    let Some(id) = lineage.find_node(node) else {
        let names = lineage.nodes.values().map(|n| n.name.as_str()).collect();
        return Err(unknown(format!("no model, seed or source is named `{node}`"), names));
    };
    let cols: Vec<&str> = lineage.nodes[id].columns.iter().map(|c| c.name.as_str()).collect();
    match cols.iter().find(|c| c.eq_ignore_ascii_case(column)) {
        Some(c) => Ok((id, vec![c])),
        // A source without declared columns: downstream models may still read this one.
        None if !lineage.nodes[id].columns_complete => Ok((id, vec![column])),
        None => Err(unknown(format!("`{node}` has no column `{column}`"), cols)),
    }
}

fn human_output(node: &NodeLineage, traced: &Traced<'_>, whole_node: bool) -> Vec<String> {
    let mut lines = Vec::new();
    if traced.is_empty() {
        lines.push(format!("`{}` has no known columns", node.name));
    }
    for (i, (column, dirs)) in traced.iter().enumerate() {
        if i > 0 {
            lines.push(String::new());
        }
        lines.push(format!("{}.{column}", node.name));
        for (direction, steps) in dirs {
            let label = match direction {
                Direction::Up => "upstream",
                Direction::Down => "downstream",
            };
            if steps.is_empty() {
                lines.push(format!("  {label}: none"));
            } else {
                lines.push(format!("  {label}"));
                trace::render_tree(steps, "  ", &mut lines);
            }
        }
    }
    if whole_node && !node.usage.is_empty() {
        lines.push(String::new());
        for (role, refs) in &node.usage {
            let list: Vec<String> = refs.iter().map(|r| format!("{}.{}", short(&r.node), r.column)).collect();
            lines.push(format!("{} uses for {}: {}", node.name, role_name(*role), list.join(", ")));
        }
    }
    lines
}

fn json_output(id: &str, node: &NodeLineage, traced: &Traced<'_>, whole_node: bool) -> serde_json::Value {
    let columns: Vec<serde_json::Value> = traced
        .iter()
        .map(|(column, dirs)| {
            let mut obj = json!({ "column": column });
            for (direction, steps) in dirs {
                let key = if *direction == Direction::Up { "upstream" } else { "downstream" };
                obj[key] = serde_json::to_value(steps).expect("steps serialize");
            }
            obj
        })
        .collect();
    let mut value = json!({ "node": id, "name": node.name, "columns": columns });
    if whole_node {
        value["usage"] = serde_json::to_value(&node.usage).expect("usage serializes");
    }
    value
}

/// A node's name from its unique id (`source.p.raw.events` -> `raw.events`).
fn short(id: &str) -> String {
    id.splitn(3, '.').nth(2).unwrap_or(id).to_string()
}

fn role_name(role: crate::lineage::Role) -> &'static str {
    use crate::lineage::Role;
    match role {
        Role::Filter => "filter",
        Role::Group => "group",
        Role::Join => "join",
        Role::Order => "order",
        Role::Window => "window",
    }
}
