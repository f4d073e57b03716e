//! The DAG of the enabled nodes: what selectors read of each node and the edges, both
//! worked out on every core (only adding them is serial); a cycle is a
//! `dependency-cycle` problem.
//!
//! Takes the nodes and their dependencies; sets each node's sorted, deduplicated
//! `depends_on` and hands on the DAG.

use rayon::prelude::*;

use super::deps::Dependencies;
use super::problems;
use crate::diagnostics::Collector;
use crate::graph::{Dag, NodeInfo, ResourceType};
use crate::node::{Node, Nodes};

/// The DAG of `nodes` over `deps` (a disabled singular test's calls were recorded too,
/// and are dropped).
pub(super) fn build_dag(nodes: &mut Nodes, mut deps: Dependencies, diags: &mut Collector) -> Dag {
    deps.retain(|id, _| nodes.contains_key(id));
    let mut dag = Dag::with_capacity(nodes.len());
    let infos: Vec<NodeInfo> = nodes.par_iter().map(|(_, node)| graph_info(node)).collect();
    for info in infos {
        dag.add_node(info);
    }
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
        diags.push(problems::cycle_diagnostic(&cycle.0, nodes, &deps));
    }
    dag
}

/// What selectors read of a node (its config as JSON, say).
pub(super) fn graph_info(node: &Node) -> NodeInfo {
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
