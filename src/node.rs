//! `Node`, the noun every stage after loading shares: a model, seed, source, snapshot,
//! quality test or unit test as the compiler hands it on, with its config, relation,
//! SQL and documentation; and the unit test case a unit test node carries.
//!
//! It sits below `compile` and `lineage` so that both (and the use cases above them)
//! name it without importing each other: the compiler builds nodes, lineage reads them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use crate::diagnostics::FileId;
use crate::graph::ResourceType;
use crate::project::unit_tests::Row;
use crate::project::{Materialization, NodeConfig, TestDef};
use crate::relation::Relation;

/// A column as documented in YAML.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ColumnDoc {
    pub name: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
}

/// A generic test's definition, resolved.
#[derive(Clone, Debug)]
pub struct GenericTest {
    pub def: TestDef,
    /// The node the test is attached to.
    pub attached_to: String,
}

/// One node of the compiled project.
#[derive(Clone, Debug)]
pub struct Node {
    pub unique_id: String,
    pub resource_type: ResourceType,
    pub name: String,
    pub fqn: Vec<String>,
    /// Defining file, relative to the project.
    pub path: PathBuf,
    pub file: Option<FileId>,
    /// Where the node is built or read; `None` for ephemeral models and tests.
    pub relation: Option<Relation>,
    pub config: NodeConfig,
    pub raw_sql: Option<Arc<str>>,
    pub compiled_sql: Option<String>,
    /// For generic tests: the same query against the attached node's audit relation,
    /// where a run stages new data before publishing it.
    pub audit_sql: Option<String>,
    pub depends_on: Vec<String>,
    pub description: String,
    pub columns: Vec<ColumnDoc>,
    pub vars_used: BTreeSet<String>,
    pub macros_used: BTreeSet<String>,
    pub generic_test: Option<GenericTest>,
    /// For sources: the source's name.
    pub source_name: Option<String>,
    /// `pre_hook` / `post_hook` statements, rendered in the node's context.
    pub hooks: Hooks,
    /// For unit tests: the model's SQL over given rows, and the rows expected.
    pub unit_test: Option<Box<UnitTestCase>>,
}

/// A model's hooks: SQL run on the target before it is built and after it is published.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hooks {
    pub pre: Vec<String>,
    pub post: Vec<String>,
}

impl Node {
    /// A node with what every node has, and nothing else yet: no file, relation or SQL,
    /// no documentation, dependencies or hooks. Set the rest with struct update syntax
    /// (`Node { file: Some(file), ..Node::new(...) }`); later stages fill in the
    /// relation, compiled SQL and dependencies.
    pub fn new(
        unique_id: String,
        resource_type: ResourceType,
        name: String,
        fqn: Vec<String>,
        path: PathBuf,
        config: NodeConfig,
    ) -> Node {
        Node {
            unique_id,
            resource_type,
            name,
            fqn,
            path,
            file: None,
            relation: None,
            config,
            raw_sql: None,
            compiled_sql: None,
            audit_sql: None,
            depends_on: Vec::new(),
            description: String::new(),
            columns: Vec::new(),
            vars_used: BTreeSet::new(),
            macros_used: BTreeSet::new(),
            generic_test: None,
            source_name: None,
            hooks: Hooks::default(),
            unit_test: None,
        }
    }

    /// True for an ephemeral model: a CTE inlined into what reads it, never a relation.
    pub fn is_ephemeral(&self) -> bool {
        self.resource_type == ResourceType::Model && self.config.materialized == Materialization::Ephemeral
    }

    /// True for an incremental model built in time windows (`event_time` and
    /// `batch_size`): every run and backfill processes it one batch at a time.
    pub fn is_windowed(&self) -> bool {
        self.resource_type == ResourceType::Model
            && self.config.materialized == Materialization::Incremental
            && self.config.event_time.is_some()
            && self.config.batch_size.is_some()
    }

    /// Where its compiled SQL goes under `target/compiled/`: its file's path, or for a
    /// generic test `<yaml path>/<alias or name>.sql`, as dbt writes it; for a snapshot
    /// (a file may hold several) `<file>/<name>.sql`.
    pub fn compiled_path(&self) -> PathBuf {
        match (&self.generic_test, self.resource_type) {
            (Some(_), _) => self.path.join(format!("{}.sql", self.alias())),
            (None, ResourceType::Snapshot) => self.path.join(format!("{}.sql", self.name)),
            (None, _) => self.path.clone(),
        }
    }

    /// The project or package the node belongs to (the first part of its fqn).
    pub fn package(&self) -> &str {
        self.fqn.first().map_or("", String::as_str)
    }

    /// The name its relation or stored failures take: the `alias` config, else its name.
    pub fn alias(&self) -> &str {
        self.config.alias.as_deref().unwrap_or(&self.name)
    }
}

/// Nodes by unique id. Boxed: a node is over 1 KB, and a B-tree moves its values about
/// as it grows (inserting 33,000 unboxed nodes was a tenth of a compile's serial time).
pub type Nodes = BTreeMap<String, Box<Node>>;

/// The CTE name an ephemeral model is inlined under (dbt's spelling).
pub fn ephemeral_cte(name: &str) -> String {
    format!("__dbt__cte__{name}")
}

/// A unit test, compiled: what `run::unit` needs to run it on an engine.
#[derive(Clone, Debug)]
pub struct UnitTestCase {
    /// The tested model's unique id.
    pub model: String,
    /// The model's SQL with each input rendered as its CTE name.
    pub sql: String,
    pub inputs: Vec<UnitInput>,
    pub expect: ExpectedRows,
    /// The columns compared: the expected rows' columns, in order (all of the model's
    /// columns when the expected rows name none).
    pub expect_columns: Vec<String>,
}

/// Rows standing in for one input of the tested model.
#[derive(Clone, Debug)]
pub struct UnitInput {
    /// `ref('stg_orders')`, `source('raw', 'orders')` or `this`, as written.
    pub label: String,
    /// The CTE name the model's SQL reads the rows under.
    pub cte: String,
    /// Where the input lives in the warehouse (its columns' types are read from there
    /// when it exists); `None` for ephemeral models.
    pub relation: Option<Relation>,
    /// What the compile knows of its columns: names and, when known, SQL types.
    pub columns: Vec<(String, Option<String>)>,
    pub rows: GivenRows,
}

/// Given rows: values (the `dict` and `csv` formats) or a query (`sql`).
#[derive(Clone, Debug)]
pub enum GivenRows {
    Values(Vec<Row>),
    Sql(String),
}

/// Expected rows, in the same two shapes.
pub type ExpectedRows = GivenRows;
