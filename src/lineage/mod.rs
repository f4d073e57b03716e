//! Column-level lineage and compile-time column checks, from compiled SQL plus the
//! schemas of upstream nodes; no database is touched.
//!
//! Schemas come from seed CSVs (header and inferred types, `schema.rs`), source YAML
//! (declared columns; none declared means *unknown*, and checks relax for it) and, in DAG
//! order, each model's own output (`walk.rs`). [`analyze`] hands on a [`Lineage`] (written
//! as `target/lineage.json`, see docs/lineage.md) and the `unknown-column` /
//! `ambiguous-column` diagnostics (`checks.rs`). `cache.rs` keeps each model's walk for the
//! next compile, which reuses it while the SQL and everything the walk read are unchanged.
//!
//! Why an AST walk over the compiled SQL rather than DataFusion's planner: the same code
//! must serve the Postgres target, whose SQL DataFusion cannot always plan; the walk keeps
//! the sqlparser span of every identifier, which the diagnostics point at; and it needs no
//! session or async runtime, so 10,000 models resolve in parallel within the compile
//! budget. Ephemeral models are inlined as `__dbt__cte__<name>` CTEs: the walk treats those
//! CTEs as references to the ephemeral node (whose own lineage reaches the real upstream),
//! so tracing goes through ephemeral models instead of around them.

pub mod cache;
mod checks;
mod expr;
mod schema;
mod scope;
pub mod trace;
mod walk;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::diagnostics::{Diagnostic, SourceMap};
use crate::graph::{Dag, ResourceType};
use crate::node::{Node, Nodes, ephemeral_cte};
use crate::project::Project;
use crate::sql::types::Type;
use crate::sql::{SqlDialect, SqlError, parse_query};

pub use self::cache::Cache;
pub use self::walk::Problem;

/// How an output column is derived from an upstream column; the strongest kind along a
/// path wins (`copy` < `transform` < `aggregate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// Passed through unchanged, possibly renamed.
    Copy,
    /// Used in an expression computed per row (including CASE conditions).
    Transform,
    /// Used inside an aggregate function (also over a window).
    Aggregate,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Copy => "copy",
            EdgeKind::Transform => "transform",
            EdgeKind::Aggregate => "aggregate",
        }
    }
}

/// A clause a model uses upstream columns in, besides computing its output columns
/// (declared in alphabetical order, so `lineage.json` keys stay sorted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `WHERE`, `HAVING`, `QUALIFY`, aggregate `FILTER (WHERE ...)`.
    Filter,
    /// `GROUP BY` and `DISTINCT ON`.
    Group,
    /// `JOIN ... ON` and `USING`.
    Join,
    /// `ORDER BY` of a query.
    Order,
    /// `PARTITION BY` and `ORDER BY` of a window.
    Window,
}

/// A column of a node: `(unique_id, column)`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ColumnRef {
    pub column: String,
    pub node: Arc<str>,
}

/// One lineage edge into an output column.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Edge {
    pub column: String,
    pub kind: EdgeKind,
    pub node: Arc<str>,
}

/// An output column of a node and the upstream columns it derives from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ColumnLineage {
    /// The type as the target's engine names it; left out when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    /// A hash of how the model derives the column (its expression and the CTE columns
    /// it reads): when it changes, the column's values may change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    pub name: String,
    /// Sorted by node, then column.
    pub upstream: Vec<Edge>,
}

/// The lineage of one node (model, ephemeral model, seed or source).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeLineage {
    /// Output columns in output order.
    pub columns: Vec<ColumnLineage>,
    /// `false` when the column list is unknown or partial (a source without declared
    /// columns, `select *` over one, SQL the walk does not understand).
    pub columns_complete: bool,
    pub name: String,
    pub resource_type: &'static str,
    /// A hash of what decides which rows the model returns (`FROM`, joins, filters,
    /// grouping, `DISTINCT`, `LIMIT`, set operations); models only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_fingerprint: Option<String>,
    /// Upstream columns per clause role, each list sorted; empty roles are left out.
    pub usage: BTreeMap<Role, Vec<ColumnRef>>,
}

/// Column-level lineage of a whole project: `target/lineage.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Lineage {
    /// Keyed by unique id.
    pub nodes: BTreeMap<String, NodeLineage>,
    /// Format version of `lineage.json`.
    pub version: u32,
}

/// Format version written to `lineage.json`.
pub const LINEAGE_VERSION: u32 = 1;

impl Lineage {
    /// Writes the byte-stable JSON of `target/lineage.json`: sorted keys, one node per line
    /// (so a change to a model is a one-line diff, and 10,000 models stay a few MB).
    pub fn write_json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(b"{\n  \"nodes\": {")?;
        for (i, (id, node)) in self.nodes.iter().enumerate() {
            out.write_all(if i == 0 { b"\n    " } else { b",\n    " })?;
            serde_json::to_writer(&mut *out, id)?;
            out.write_all(b": ")?;
            serde_json::to_writer(&mut *out, node)?;
        }
        write!(out, "\n  }},\n  \"version\": {}\n}}\n", self.version)
    }

    /// Finds a node by unique id, name, or `source_name.table`.
    pub fn find_node(&self, spec: &str) -> Option<&str> {
        if self.nodes.contains_key(spec) {
            return self.nodes.get_key_value(spec).map(|(k, _)| k.as_str());
        }
        let mut by_name = self.nodes.iter().filter(|(id, n)| {
            n.name == spec
                || (n.resource_type == "source" && id.split('.').skip(2).collect::<Vec<_>>().join(".") == spec)
        });
        match (by_name.next(), by_name.next()) {
            (Some((id, _)), None) => Some(id.as_str()),
            _ => None,
        }
    }
}

/// A stable 64-bit hash (FNV-1a, the same in every build), for fingerprints that are
/// compared across builds.
#[derive(Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The stable hash of a value.
pub(crate) fn fingerprint(value: &impl std::hash::Hash) -> u64 {
    let mut h = Fnv::default();
    value.hash(&mut h);
    std::hash::Hasher::finish(&h)
}

/// A fingerprint as written in `lineage.json`.
fn fingerprint_text(fp: u64) -> String {
    format!("{fp:016x}")
}

/// The schema of a node as seen by downstream models.
#[derive(Clone, Debug, Default)]
pub(crate) struct Schema {
    /// Column names and types.
    pub columns: Vec<(String, Type)>,
    /// Whether `columns` is the whole list.
    pub complete: bool,
}

/// What the walk needs to know about the project while resolving one model.
pub(crate) struct Catalog {
    /// `schema.identifier` (lowercase) -> node id.
    pub relations: HashMap<String, Arc<str>>,
    /// Ephemeral CTE name (lowercase) -> node id.
    pub ephemerals: HashMap<String, Arc<str>>,
    /// Schemas known so far.
    pub schemas: HashMap<Arc<str>, Schema>,
    pub dialect: SqlDialect,
}

/// Turns a syntax error in a node's compiled SQL into the compile step's diagnostic.
pub type SyntaxDiagnostic<'a> = &'a (dyn Fn(&Node, &str, &SqlError) -> Diagnostic + Sync);

/// What [`analyze`] reads: the compiled nodes and the DAG.
pub struct Input<'a> {
    pub nodes: &'a Nodes,
    pub dag: &'a Dag,
    pub dialect: SqlDialect,
    pub project: &'a Project,
    pub syntax: SyntaxDiagnostic<'a>,
    /// What an earlier compile found (see `cache.rs`).
    pub cache: &'a Cache,
}

/// Parses every node's compiled SQL and, for models in DAG order, computes schemas and
/// lineage; returns the syntax errors, the column-check diagnostics of models whose
/// `column_checks` config is on, and the cache for the next compile (whose `build` is
/// the one of `input.cache`).
///
/// Each model is parsed and walked in one go and its syntax tree dropped right after, so
/// memory stays flat however many models there are. SQL whose result is in the cache is
/// not parsed at all.
pub fn analyze(input: &Input<'_>, sources: &SourceMap) -> (Lineage, Vec<Diagnostic>, Cache) {
    let Input { nodes, dag, dialect, project, syntax, cache } = *input;
    let mut next = Cache::new(cache.build().to_string());
    let (root, target_path) = (&project.root, &project.settings.target_path);
    // Tests have no schema and nothing reads them: only the other nodes get an id.
    let ids: HashMap<&str, Arc<str>> = nodes
        .values()
        .filter(|n| n.resource_type != ResourceType::Test)
        .map(|n| (n.unique_id.as_str(), Arc::from(n.unique_id.as_str())))
        .collect();
    let mut catalog =
        Catalog { relations: HashMap::new(), ephemerals: HashMap::new(), schemas: HashMap::new(), dialect };
    let mut lineage = Lineage { nodes: BTreeMap::new(), version: LINEAGE_VERSION };
    for node in nodes.values().filter(|n| n.resource_type != ResourceType::Test) {
        let id = ids[node.unique_id.as_str()].clone();
        if let Some(rel) = &node.relation {
            // A source declared over a seed's or model's table names the same relation:
            // the node etlm builds there is the one read (sources sort after both).
            let name = format!("{}.{}", rel.schema, rel.identifier).to_lowercase();
            catalog.relations.entry(name).or_insert_with(|| id.clone());
        }
        if node.is_ephemeral() {
            catalog.ephemerals.insert(ephemeral_cte(&node.name).to_lowercase(), id.clone());
        }
        let schema = match node.resource_type {
            ResourceType::Seed => schema::seed(root, node, dialect, cache, &mut next),
            ResourceType::Source => schema::source(node, dialect),
            _ => continue,
        };
        lineage.nodes.insert(node.unique_id.clone(), schema::base_lineage(node, &schema, dialect));
        catalog.schemas.insert(id, schema);
    }

    // Tests have SQL too, but no lineage: only their syntax is checked, on whichever core
    // the model levels leave idle (a level waits for its slowest model).
    // A query of a shape already accepted is accepted too (`sql::syntax_shape`).
    let accepted: Mutex<HashSet<u64>> = Mutex::default();
    let check_tests = || -> Vec<(String, Option<Diagnostic>)> {
        nodes
            .par_iter()
            .filter(|(_, n)| !walked(n.resource_type))
            .filter_map(|(_, node)| {
                let sql = node.compiled_sql.as_deref()?;
                let key = cache::sql_key(sql);
                if cache.parsed(&key) {
                    return Some((key, None));
                }
                let shape = crate::sql::syntax_shape(sql);
                let seen = |s: &u64| accepted.lock().expect("not poisoned").contains(s);
                if shape.as_ref().is_some_and(seen) {
                    return Some((key, None));
                }
                let error = parse_query(sql, dialect).err();
                if let (None, Some(shape)) = (&error, shape) {
                    accepted.lock().expect("not poisoned").insert(shape);
                }
                Some((key, error.map(|e| syntax(node, sql, &e))))
            })
            .collect()
    };
    let walk_models = || {
        let mut found = Vec::new();
        for level in model_levels(dag) {
            // Everything but the bookkeeping happens on every core: a level's models read only
            // the schemas of earlier levels.
            let results: Vec<Walked<'_>> = level
                .par_iter()
                .filter_map(|id| {
                    let node: &Node = &nodes[*id];
                    let sql = node.compiled_sql.as_deref()?;
                    let key = cache::sql_key(sql);
                    let (mut result, cached) = match cache.model(&key, &catalog) {
                        Some((result, entry)) => (result, Some(entry)),
                        None => {
                            let result = match parse_query(sql, dialect) {
                                Ok(stmt) => walk::walk_model(&stmt, &catalog),
                                Err(e) => {
                                    walk::ModelResult { syntax: Some(syntax(node, sql, &e)), ..Default::default() }
                                }
                            };
                            let entry = Cache::entry_json(&result);
                            (result, entry)
                        }
                    };
                    let mut found: Vec<Diagnostic> = result.syntax.take().into_iter().collect();
                    if node.config.column_checks {
                        found.extend(result.problems.iter().map(|p| checks::diagnostic(node, p, sources, target_path)));
                    }
                    // A model with unresolved names may not build as written: downstream
                    // models see its known columns but relax, so one mistake is reported once.
                    let mut schema = Schema {
                        columns: result.columns.iter().map(|c| (c.name.clone(), c.ty.clone())).collect(),
                        complete: result.complete && result.problems.is_empty(),
                    };
                    let mut entry = walk::node_lineage(node, result, dialect);
                    schema::add_snapshot_columns(node, &mut schema, &mut entry);
                    Some(Walked { node, key, cached, found, entry, schema })
                })
                .collect();
            for Walked { node, key, cached, found: diagnostics, entry, schema } in results {
                if let Some(cached) = cached {
                    next.keep_model(key, cached);
                }
                found.extend(diagnostics);
                lineage.nodes.insert(node.unique_id.clone(), entry);
                catalog.schemas.insert(ids[node.unique_id.as_str()].clone(), schema);
            }
        }
        found
    };
    let (checked, model_diagnostics) = rayon::join(check_tests, walk_models);
    let mut diagnostics = Vec::new();
    for (key, error) in checked {
        match error {
            Some(d) => diagnostics.push(d),
            None => next.keep_parsed(key),
        }
    }
    diagnostics.extend(model_diagnostics);
    (lineage, diagnostics, next)
}

/// One model walked: what the next compile may reuse, its diagnostics, its lineage and
/// the schema downstream models read.
struct Walked<'a> {
    node: &'a Node,
    key: String,
    cached: Option<String>,
    found: Vec<Diagnostic>,
    entry: NodeLineage,
    schema: Schema,
}

/// True for the nodes whose SQL is walked for columns and lineage: models, and
/// snapshots (whose query is their source).
fn walked(resource_type: ResourceType) -> bool {
    matches!(resource_type, ResourceType::Model | ResourceType::Snapshot)
}

/// Models grouped by depth in the DAG: every model's upstream models sit in earlier groups.
fn model_levels(dag: &Dag) -> Vec<Vec<&str>> {
    let mut levels: Vec<Vec<&str>> = Vec::new();
    for (info, d) in dag.depths() {
        if walked(info.resource_type) {
            if levels.len() <= d {
                levels.resize_with(d + 1, Vec::new);
            }
            levels[d].push(info.unique_id.as_str());
        }
    }
    levels
}

/// Sorted, deduplicated column references.
fn sorted_refs(set: BTreeSet<ColumnRef>) -> Vec<ColumnRef> {
    set.into_iter().collect()
}
