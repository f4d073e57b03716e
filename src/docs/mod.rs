//! The docs site: one self-contained HTML file (`target/docs/index.html`) from the
//! compiled project, its lineage and, when present, the last run's results.
//!
//! The page is `templates/docs/index.html` (embedded at build time) with the project's
//! data embedded as JSON; its inline script draws the DAG from the positions computed
//! here (`layout.rs`) and follows column lineage in the browser. Nothing is loaded from
//! the network, so the file works offline and can be attached to a ticket or CI run.

pub mod layout;

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use crate::compile::CompiledProject;
use crate::graph::ResourceType;
use crate::node::Node;

/// The page template, embedded in the binary.
const TEMPLATE: &str = include_str!("../../templates/docs/index.html");
/// Where the data goes in the template.
const DATA_SLOT: &str = "__ETLM_DOCS_DATA__";

/// The data the page shows: nodes (with layout, columns, tests, last run), DAG edges
/// and the project's column lineage.
///
/// `run_results` is the parsed `target/run_results.json`, if a run has written one.
pub fn docs_data(compiled: &CompiledProject, run_results: Option<&Json>) -> Json {
    let runs: BTreeMap<&str, &Json> = run_results
        .and_then(|r| r["results"].as_array())
        .map(|list| list.iter().filter_map(|r| Some((r["unique_id"].as_str()?, r))).collect())
        .unwrap_or_default();
    let shown = |n: &Node| n.resource_type.is_built() || n.resource_type == ResourceType::Source;
    let ids: Vec<&str> =
        compiled.dag.topological().into_iter().filter(|id| compiled.nodes.get(*id).is_some_and(|n| shown(n))).collect();
    let index: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let edges: Vec<(usize, usize)> = ids
        .iter()
        .enumerate()
        .flat_map(|(i, id)| {
            compiled.nodes[*id].depends_on.iter().filter_map(|d| Some((*index.get(d.as_str())?, i))).collect::<Vec<_>>()
        })
        .collect();
    let slots = layout::layered(ids.len(), &edges);
    let mut tests: BTreeMap<&str, Vec<Json>> = BTreeMap::new();
    for node in compiled.nodes.values().filter(|n| n.resource_type == ResourceType::Test) {
        let run = runs.get(node.unique_id.as_str()).map(|r| run_summary(r));
        match &node.generic_test {
            Some(g) => tests.entry(g.attached_to.as_str()).or_default().push(json!({
                "name": node.name, "test": g.def.test_name, "column": g.def.column, "run": run,
            })),
            // A singular test belongs to every node it reads.
            None => {
                for dep in &node.depends_on {
                    tests.entry(dep.as_str()).or_default().push(json!({
                        "name": node.name, "test": "singular", "column": null, "run": run,
                    }));
                }
            }
        }
    }
    let nodes: Vec<Json> = ids
        .iter()
        .zip(&slots)
        .map(|(id, slot)| {
            let node = &compiled.nodes[*id];
            node_data(node, compiled, slot, tests.remove(*id).unwrap_or_default(), runs.get(*id).copied())
        })
        .collect();
    let edge_list: Vec<Json> = edges.iter().map(|(p, c)| json!([ids[*p], ids[*c]])).collect();
    json!({
        "project": compiled.project.name(),
        "nodes": nodes,
        "edges": edge_list,
        "lineage": compiled.lineage,
        "run": run_results.map(|r| r["metadata"].clone()),
    })
}

fn node_data(
    node: &Node,
    compiled: &CompiledProject,
    slot: &layout::Slot,
    tests: Vec<Json>,
    run: Option<&Json>,
) -> Json {
    let lineage = compiled.lineage.nodes.get(&node.unique_id);
    let documented: BTreeMap<&str, &crate::node::ColumnDoc> =
        node.columns.iter().map(|c| (c.name.as_str(), c)).collect();
    // Lineage's columns first (the real output, in order), then documented-only ones.
    let mut columns: Vec<Json> = Vec::new();
    let mut seen = Vec::new();
    for c in lineage.map(|l| l.columns.as_slice()).unwrap_or_default() {
        let doc = documented.get(c.name.as_str());
        seen.push(c.name.as_str());
        columns.push(json!({
            "name": c.name,
            "data_type": c.data_type.clone().or_else(|| doc.and_then(|d| d.data_type.clone())),
            "description": doc.map_or("", |d| d.description.as_str()),
        }));
    }
    for c in node.columns.iter().filter(|c| !seen.contains(&c.name.as_str())) {
        columns.push(json!({ "name": c.name, "data_type": c.data_type, "description": c.description }));
    }
    let materialized = (node.resource_type == ResourceType::Model).then(|| node.config.materialized.as_str());
    json!({
        "id": node.unique_id,
        "name": node.name,
        "type": node.resource_type.as_str(),
        "path": node.path.display().to_string(),
        "relation": node.relation.as_ref().map(|r| r.to_string()),
        "materialized": materialized,
        "description": node.description,
        "tags": node.config.tags,
        "columns": columns,
        "columns_complete": lineage.is_none_or(|l| l.columns_complete),
        "depends_on": node.depends_on,
        "tests": tests,
        "sql": node.compiled_sql,
        "run": run.map(run_summary),
        "layer": slot.layer,
        "row": slot.row,
    })
}

fn run_summary(r: &Json) -> Json {
    json!({
        "status": r["status"],
        "rows": r["rows"],
        "execution_time": r["execution_time"],
        "message": r["message"],
    })
}

/// The whole page: the template with `data` embedded as JSON that no `</script>` in a
/// description can end early.
pub fn render_site(data: &Json) -> String {
    let text = serde_json::to_string(data).expect("docs data serializes");
    // `<`, `>` and `&` only occur inside JSON strings, where these escapes mean the same.
    let safe = text.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026");
    TEMPLATE.replacen(DATA_SLOT, &safe, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_data_cannot_close_the_script_tag() {
        let page = render_site(&json!({ "description": "</script><script>alert(1)</script> & more" }));
        assert!(!page.contains("</script><script>alert(1)"));
        assert!(page.contains("\\u003c/script\\u003e"));
        assert!(!page.contains(DATA_SLOT));
    }

    #[test]
    fn the_template_loads_nothing_from_the_network() {
        let loads = [
            "src=\"http",
            "href=\"http",
            "src=\"//",
            "href=\"//",
            "url(http",
            "url(//",
            "@import",
            "fetch(",
            "XMLHttpRequest",
        ];
        for needle in loads {
            assert!(!TEMPLATE.contains(needle), "template contains {needle}");
        }
    }
}
