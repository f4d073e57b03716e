//! The lineage DAG over seeds, sources, models, snapshots and tests; cycle reports with
//! the full path; topological order; and node selection (`select.rs`).
//!
//! Edges point from a dependency to its dependent. The graph knows nothing about files
//! or Jinja: the compile pipeline hands it [`NodeInfo`]s and edges.

mod select;

use std::collections::{BTreeMap, BTreeSet};

use petgraph::Direction;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::Serialize;

pub use self::select::{ExternalMethods, PriorState, SelectError, Selector, StateSets, parse_selectors, select};

/// What kind of node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceType {
    Model,
    Seed,
    Source,
    Test,
    /// A model's logic on given rows (`unit_tests:`), run before the model builds.
    #[serde(rename = "unit_test")]
    UnitTest,
    Snapshot,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Model => "model",
            ResourceType::Seed => "seed",
            ResourceType::Source => "source",
            ResourceType::Test => "test",
            ResourceType::UnitTest => "unit_test",
            ResourceType::Snapshot => "snapshot",
        }
    }

    /// True for what a run builds into a relation of its own (and `ref()` names).
    pub fn is_built(self) -> bool {
        matches!(self, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot)
    }
}

/// What selection needs to know about a node.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// `model.shop.orders`, `source.shop.raw.orders`, `test.shop.unique_orders_id`.
    pub unique_id: String,
    pub resource_type: ResourceType,
    pub name: String,
    pub package: String,
    pub fqn: Vec<String>,
    /// Path of the defining file, relative to the project (`models/marts/orders.sql`).
    pub path: String,
    pub tags: Vec<String>,
    /// The effective config, for `config.<key>:<value>`.
    pub config: BTreeMap<String, serde_json::Value>,
    /// For sources: the source name.
    pub source_name: Option<String>,
    /// For tests: `generic`, `singular` or `unit`, and the generic test's name.
    pub test_type: Option<&'static str>,
    pub test_name: Option<String>,
}

/// The DAG. Node indices follow the order nodes were added (stable and deterministic).
#[derive(Debug, Default)]
pub struct Dag {
    graph: DiGraph<NodeInfo, ()>,
    by_id: BTreeMap<String, NodeIndex>,
}

/// A dependency cycle: node ids in order; the last depends on the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<String>);

impl Dag {
    /// An empty DAG with room for `nodes` nodes and twice as many edges.
    pub fn with_capacity(nodes: usize) -> Dag {
        Dag { graph: DiGraph::with_capacity(nodes, 2 * nodes), by_id: BTreeMap::new() }
    }

    pub fn add_node(&mut self, info: NodeInfo) -> NodeIndex {
        let id = info.unique_id.clone();
        let ix = self.graph.add_node(info);
        self.by_id.insert(id, ix);
        ix
    }

    /// Adds `parent -> child` edges (the child depends on the parent), each once however
    /// often it is given; their ends are looked up on every core.
    pub fn add_edges(&mut self, edges: &[(&str, &str)]) {
        use rayon::prelude::*;
        let ends: Vec<(NodeIndex, NodeIndex)> =
            edges.par_iter().map(|(parent, child)| (self.by_id[*parent], self.by_id[*child])).collect();
        for (p, c) in ends {
            self.add_edge_between(p, c);
        }
    }

    fn add_edge_between(&mut self, p: NodeIndex, c: NodeIndex) {
        // Looked up among the child's few parents, not the parent's children (a seed or
        // staging model can have thousands).
        if !self.graph.edges_directed(c, Direction::Incoming).any(|e| e.source() == p) {
            self.graph.add_edge(p, c, ());
        }
    }

    pub fn node(&self, id: &str) -> Option<&NodeInfo> {
        self.by_id.get(id).map(|ix| &self.graph[*ix])
    }

    pub fn nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.graph.node_weights()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Direct dependencies, sorted.
    pub fn parents(&self, id: &str) -> Vec<&str> {
        self.neighbors(id, Direction::Incoming)
    }

    /// Direct dependents, sorted.
    pub fn children(&self, id: &str) -> Vec<&str> {
        self.neighbors(id, Direction::Outgoing)
    }

    fn neighbors(&self, id: &str, dir: Direction) -> Vec<&str> {
        let Some(ix) = self.by_id.get(id) else { return Vec::new() };
        let mut out: Vec<&str> =
            self.graph.neighbors_directed(*ix, dir).map(|n| self.graph[n].unique_id.as_str()).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Every cycle (one per strongly connected component), each as a path.
    pub fn cycles(&self) -> Vec<Cycle> {
        let mut cycles = Vec::new();
        for scc in tarjan_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.find_edge(scc[0], scc[0]).is_some();
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
            let start = *scc.iter().min_by_key(|ix| &self.graph[**ix].unique_id).expect("scc is not empty");
            cycles.push(Cycle(self.cycle_path(start, &members)));
        }
        cycles.sort_by(|a, b| a.0.cmp(&b.0));
        cycles
    }

    /// A path from `start` back to itself inside one strongly connected component.
    fn cycle_path(&self, start: NodeIndex, members: &BTreeSet<NodeIndex>) -> Vec<String> {
        // Breadth-first search for the shortest way back to `start`.
        let mut prev: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            let mut next: Vec<NodeIndex> =
                self.graph.edges(n).map(|e| e.target()).filter(|t| members.contains(t)).collect();
            next.sort_by_key(|ix| &self.graph[*ix].unique_id);
            for t in next {
                if t == start {
                    let mut path = vec![n];
                    let mut cur = n;
                    while cur != start {
                        cur = prev[&cur];
                        path.push(cur);
                    }
                    path.reverse();
                    return path.into_iter().map(|ix| self.graph[ix].unique_id.clone()).collect();
                }
                if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(t) {
                    e.insert(n);
                    queue.push_back(t);
                }
            }
        }
        vec![self.graph[start].unique_id.clone()]
    }

    /// Node ids in dependency order, ties broken by insertion order (Kahn's algorithm
    /// with a min-heap, so the order is deterministic). Assumes no cycles.
    pub fn topological(&self) -> Vec<&str> {
        self.topological_indices().into_iter().map(|ix| self.graph[ix].unique_id.as_str()).collect()
    }

    /// Every node with its depth (the most edges on a path to it from a node without
    /// parents), in [`Dag::topological`] order.
    pub fn depths(&self) -> Vec<(&NodeInfo, usize)> {
        let mut depth = vec![0; self.graph.node_count()];
        let order = self.topological_indices();
        order
            .into_iter()
            .map(|ix| {
                let parents = self.graph.neighbors_directed(ix, Direction::Incoming);
                let d = parents.map(|p| depth[p.index()] + 1).max().unwrap_or(0);
                depth[ix.index()] = d;
                (&self.graph[ix], d)
            })
            .collect()
    }

    fn topological_indices(&self) -> Vec<NodeIndex> {
        let mut indegree: Vec<usize> =
            self.graph.node_indices().map(|n| self.graph.neighbors_directed(n, Direction::Incoming).count()).collect();
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> =
            indegree.iter().enumerate().filter(|(_, d)| **d == 0).map(|(i, _)| std::cmp::Reverse(i)).collect();
        let mut out = Vec::with_capacity(indegree.len());
        while let Some(std::cmp::Reverse(i)) = ready.pop() {
            let ix = NodeIndex::new(i);
            out.push(ix);
            for child in self.graph.neighbors_directed(ix, Direction::Outgoing) {
                indegree[child.index()] -= 1;
                if indegree[child.index()] == 0 {
                    ready.push(std::cmp::Reverse(child.index()));
                }
            }
        }
        assert_eq!(out.len(), indegree.len(), "cycles were reported before ordering");
        out
    }

    /// Ancestors of `id` up to `depth` edges away (`None`: all), without `id` itself.
    pub fn ancestors(&self, id: &str, depth: Option<usize>) -> BTreeSet<String> {
        self.walk(id, depth, Direction::Incoming)
    }

    /// Descendants of `id` up to `depth` edges away (`None`: all), without `id` itself.
    pub fn descendants(&self, id: &str, depth: Option<usize>) -> BTreeSet<String> {
        self.walk(id, depth, Direction::Outgoing)
    }

    fn walk(&self, id: &str, depth: Option<usize>, dir: Direction) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let Some(&start) = self.by_id.get(id) else { return seen };
        let mut frontier = vec![start];
        let mut level = 0;
        while !frontier.is_empty() && depth.is_none_or(|d| level < d) {
            let mut next = Vec::new();
            for n in frontier {
                for m in self.graph.neighbors_directed(n, dir) {
                    if seen.insert(self.graph[m].unique_id.clone()) {
                        next.push(m);
                    }
                }
            }
            frontier = next;
            level += 1;
        }
        seen.remove(id);
        seen
    }

    /// `parent_map`: every node id -> its sorted parents.
    pub fn parent_map(&self) -> BTreeMap<String, Vec<String>> {
        self.nodes()
            .map(|n| (n.unique_id.clone(), self.parents(&n.unique_id).into_iter().map(String::from).collect()))
            .collect()
    }

    /// `child_map`: every node id -> its sorted children.
    pub fn child_map(&self) -> BTreeMap<String, Vec<String>> {
        self.nodes()
            .map(|n| (n.unique_id.clone(), self.children(&n.unique_id).into_iter().map(String::from).collect()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn node(id: &str, rt: ResourceType) -> NodeInfo {
        let name = id.rsplit('.').next().unwrap().to_string();
        NodeInfo {
            unique_id: id.to_string(),
            resource_type: rt,
            name: name.clone(),
            package: "shop".into(),
            fqn: vec!["shop".into(), name],
            path: String::new(),
            tags: Vec::new(),
            config: BTreeMap::new(),
            source_name: None,
            test_type: None,
            test_name: None,
        }
    }

    #[test]
    fn reports_the_whole_cycle_in_order() {
        let mut dag = Dag::default();
        for id in ["model.shop.a", "model.shop.b", "model.shop.c", "model.shop.d"] {
            dag.add_node(node(id, ResourceType::Model));
        }
        dag.add_edges(&[
            ("model.shop.a", "model.shop.b"),
            ("model.shop.b", "model.shop.c"),
            ("model.shop.c", "model.shop.a"),
            ("model.shop.c", "model.shop.d"),
        ]);
        assert_eq!(
            dag.cycles(),
            vec![Cycle(vec!["model.shop.a".into(), "model.shop.b".into(), "model.shop.c".into()])]
        );
    }

    #[test]
    fn orders_dependencies_first() {
        let mut dag = Dag::default();
        for id in ["model.shop.c", "model.shop.b", "model.shop.a"] {
            dag.add_node(node(id, ResourceType::Model));
        }
        dag.add_edges(&[("model.shop.a", "model.shop.b"), ("model.shop.b", "model.shop.c")]);
        assert_eq!(dag.topological(), vec!["model.shop.a", "model.shop.b", "model.shop.c"]);
    }
}
