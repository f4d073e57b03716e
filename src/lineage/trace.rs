//! Following lineage edges from one column: upstream to seeds and sources, downstream to
//! every column derived from it. Used by `etlm lineage` and the docs site.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{EdgeKind, Lineage};

/// A column reached by following edges, and what it leads to next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub column: String,
    /// The edge from the previous column (upstream: how the previous one derives from
    /// this one; downstream: how this one derives from the previous one).
    pub kind: EdgeKind,
    pub name: String,
    pub node: String,
    pub next: Vec<Step>,
}

/// Which way to follow edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// (node, column) -> the columns computed from it, with the edge kind.
pub type Children = BTreeMap<(String, String), BTreeSet<(String, String, EdgeKind)>>;

/// The reverse edges of a lineage, for downstream traces.
pub fn children(lineage: &Lineage) -> Children {
    let mut map = Children::new();
    for (id, node) in &lineage.nodes {
        for col in &node.columns {
            for e in &col.upstream {
                map.entry((e.node.to_string(), e.column.clone())).or_default().insert((
                    id.clone(),
                    col.name.clone(),
                    e.kind,
                ));
            }
        }
    }
    map
}

/// Every path from `node.column` in one direction, as a tree.
pub fn trace(lineage: &Lineage, children: &Children, node: &str, column: &str, direction: Direction) -> Vec<Step> {
    let mut path = BTreeSet::new();
    path.insert((node.to_string(), column.to_string()));
    follow(lineage, children, node, column, direction, &mut path)
}

fn follow(
    lineage: &Lineage,
    children: &Children,
    node: &str,
    column: &str,
    direction: Direction,
    path: &mut BTreeSet<(String, String)>,
) -> Vec<Step> {
    let next: Vec<(String, String, EdgeKind)> = match direction {
        Direction::Up => lineage
            .nodes
            .get(node)
            .and_then(|n| n.columns.iter().find(|c| c.name == column))
            .map(|c| c.upstream.iter().map(|e| (e.node.to_string(), e.column.clone(), e.kind)).collect())
            .unwrap_or_default(),
        Direction::Down => children
            .get(&(node.to_string(), column.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default(),
    };
    next.into_iter()
        .filter_map(|(n, c, kind)| {
            let key = (n.clone(), c.clone());
            // Lineage follows a DAG; the guard only protects against self-reads.
            if !path.insert(key.clone()) {
                return None;
            }
            let next = follow(lineage, children, &n, &c, direction, path);
            path.remove(&key);
            let name = lineage.nodes.get(&n).map_or_else(|| n.clone(), |x| x.name.clone());
            Some(Step { column: c, kind, name, node: n, next })
        })
        .collect()
}

/// Renders steps as an indented tree: `├── copy stg_orders.amount`.
pub fn render_tree(steps: &[Step], prefix: &str, lines: &mut Vec<String>) {
    for (i, s) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        lines.push(format!("{prefix}{} {} {}.{}", if last { "└──" } else { "├──" }, s.kind.as_str(), s.name, s.column));
        render_tree(&s.next, &format!("{prefix}{}", if last { "    " } else { "│   " }), lines);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::lineage::{ColumnLineage, Edge, NodeLineage};

    /// An upstream edge: (node, column, kind).
    type Up<'a> = (&'a str, &'a str, EdgeKind);

    fn node(name: &str, cols: &[(&str, &[Up<'_>])]) -> NodeLineage {
        NodeLineage {
            columns: cols
                .iter()
                .map(|(c, ups)| ColumnLineage {
                    data_type: None,
                    fingerprint: None,
                    name: c.to_string(),
                    upstream: ups
                        .iter()
                        .map(|(n, col, k)| Edge { column: col.to_string(), kind: *k, node: Arc::from(*n) })
                        .collect(),
                })
                .collect(),
            columns_complete: true,
            name: name.into(),
            resource_type: "model",
            rows_fingerprint: None,
            usage: BTreeMap::new(),
        }
    }

    fn json(lineage: &Lineage) -> String {
        let mut text = Vec::new();
        lineage.write_json(&mut text).expect("writing to memory cannot fail");
        String::from_utf8(text).expect("JSON is UTF-8")
    }

    #[test]
    fn lineage_json_is_valid_json_with_one_node_per_line() {
        let mut lineage = Lineage { version: 1, ..Default::default() };
        lineage.nodes.insert("seed.p.raw".into(), node("raw", &[("cents", &[])]));
        lineage
            .nodes
            .insert("model.p.stg".into(), node("stg", &[("amount", &[("seed.p.raw", "cents", EdgeKind::Copy)])]));
        let text = json(&lineage);
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(value["nodes"]["model.p.stg"]["columns"][0]["upstream"][0]["kind"], "copy");
        assert_eq!(text.lines().count(), 7, "{text}");
        assert!(text.lines().nth(2).unwrap().starts_with("    \"model.p.stg\": {\"columns\":"), "{text}");
        assert_eq!(json(&Lineage::default()).lines().count(), 5);
        serde_json::from_str::<serde_json::Value>(&json(&Lineage::default())).expect("empty lineage is valid JSON");
    }

    #[test]
    fn traces_both_ways_through_every_hop() {
        let mut lineage = Lineage::default();
        lineage.nodes.insert("seed.p.raw".into(), node("raw", &[("cents", &[])]));
        lineage
            .nodes
            .insert("model.p.stg".into(), node("stg", &[("amount", &[("seed.p.raw", "cents", EdgeKind::Transform)])]));
        lineage
            .nodes
            .insert("model.p.agg".into(), node("agg", &[("total", &[("model.p.stg", "amount", EdgeKind::Aggregate)])]));
        let kids = children(&lineage);
        let up = trace(&lineage, &kids, "model.p.agg", "total", Direction::Up);
        let mut lines = Vec::new();
        render_tree(&up, "", &mut lines);
        assert_eq!(lines, ["└── aggregate stg.amount", "    └── transform raw.cents"]);
        let down = trace(&lineage, &kids, "seed.p.raw", "cents", Direction::Down);
        lines.clear();
        render_tree(&down, "", &mut lines);
        assert_eq!(lines, ["└── transform stg.amount", "    └── aggregate agg.total"]);
    }
}
