//! Engines: where compiled models run. `datafusion` is the embedded engine (DataFusion
//! over Parquet in a warehouse directory, `local/`), `postgres` a Postgres server (or
//! any warehouse speaking its protocol), `delta` the embedded engine over Delta Lake
//! tables (`--features delta`). All implement [`Engine`]: the runner, the
//! audits and the history never ask which one they talk to. `failpoint` lets
//! crash-safety tests stop a run at named points; `recording` (tests only) is an engine
//! that records what the runner asks for, for the runner's unit tests.
//!
//! The functions at the top of this file ([`open`], [`existing_relations`],
//! [`describe`]...) are the only places that look at which engine a target names; every
//! other difference is a method of [`Engine`] or of the SQL dialect. A new engine is a
//! folder here and one arm in each of them.

mod column;
pub mod datafusion;
pub mod delta;
mod error;
pub mod failpoint;
pub mod incremental;
pub mod local;
pub mod postgres;
#[cfg(test)]
pub mod recording;
pub mod snapshot;
mod sql_history;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::datafusion::arrow::array::RecordBatch;

pub use self::column::ColumnMeta;
use self::datafusion::DataFusionEngine;
pub use self::error::{EngineError, ErrorKind};
use self::failpoint::Failpoints;
use self::incremental::IncrementalSpec;
use self::postgres::PostgresEngine;
use crate::history::{Intervals, RowHistory, RunSummary};
use crate::project::{EngineKind, Target};
use crate::relation::Relation;
use crate::window::Period;

/// Opens the target's engine: a writer takes the target's run lock (failing at once when
/// another run holds it, unless `wait`).
pub async fn open(target: &Target, access: Access) -> Result<Arc<dyn Engine>, EngineError> {
    Ok(match target.engine {
        EngineKind::Local => Arc::new(DataFusionEngine::open(&local::warehouse_dir(target), access).await?),
        EngineKind::Postgres => Arc::new(PostgresEngine::open(target, access).await?),
        EngineKind::Delta => Arc::new(delta::open(target, access).await?),
    })
}

/// Opens the target to read its tables as they were at `as_of`: each at its version of
/// that number, or its latest commit made by that time (absent when it had none).
/// Only Delta Lake tables keep their history.
pub async fn open_as_of(target: &Target, as_of: AsOf) -> Result<Arc<dyn Engine>, EngineError> {
    match target.engine {
        EngineKind::Delta => Ok(Arc::new(delta::open_as_of(target, as_of).await?)),
        EngineKind::Local | EngineKind::Postgres => Err(EngineError::new(
            ErrorKind::Failed,
            format!(
                "`--as-of` reads tables as they were, which only a Delta Lake target keeps; target `{}` is {}",
                target.name,
                target.engine.as_str()
            ),
        )),
    }
}

/// The relations on the target, asking a server when it has one (none when they cannot
/// be listed: then every incremental model is built in full).
pub fn existing_relations(target: &Target) -> BTreeSet<Relation> {
    match target.engine {
        EngineKind::Local | EngineKind::Delta => offline_relations(target),
        EngineKind::Postgres => postgres::existing_relations(target),
    }
}

/// The relations known without a server: those in the embedded engine's warehouse
/// folder (none for a server).
pub fn offline_relations(target: &Target) -> BTreeSet<Relation> {
    match target.engine {
        EngineKind::Local => local::relations_in(&local::warehouse_dir(target), None),
        EngineKind::Postgres => BTreeSet::new(),
        EngineKind::Delta => delta::relations_in(target),
    }
}

/// The target for messages, never with its credentials: `` `dev`, the embedded
/// warehouse at warehouse `` or `` `prod`, postgres at host:5432/db ``.
pub fn describe(target: &Target) -> String {
    match target.engine {
        EngineKind::Local => format!(
            "`{}`, the embedded warehouse at {}",
            target.name,
            target.settings.get("path").and_then(serde_json::Value::as_str).unwrap_or("warehouse")
        ),
        EngineKind::Postgres => match postgres::PgSettings::from_target(target) {
            Ok(s) => format!("`{}`, postgres at {}", target.name, s.describe()),
            Err(_) => format!("`{}`, postgres", target.name),
        },
        EngineKind::Delta => format!("`{}`, Delta Lake tables at {}", target.name, delta::describe(target)),
    }
}

/// The folder the target's data lives in, when it is one on this machine (the embedded
/// engine's warehouse), recorded in the manifest so `--defer` can find it.
pub fn warehouse_path(target: &Target) -> Option<PathBuf> {
    match target.engine {
        EngineKind::Local => Some(local::warehouse_dir(target)),
        EngineKind::Postgres | EngineKind::Delta => None,
    }
}

/// How the OpenLineage naming spec names the target's datasets: one namespace for the
/// target, and a name per relation in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetNames {
    /// `postgres://host:port`, `file` for the embedded engine, or `s3://bucket` for
    /// Delta tables on S3.
    pub namespace: String,
    /// What precedes `schema<sep>table`: `db.` on Postgres, the warehouse folder and `/`
    /// on the embedded engine.
    prefix: String,
    separator: char,
}

impl DatasetNames {
    /// The target's naming: Postgres datasets are `db.schema.table` in
    /// `postgres://host:port`; the embedded and Delta engines' are their folders
    /// (`file`, `/abs/warehouse/main/orders`), or on S3 their keys (`s3://bucket`,
    /// `prefix/main/orders`).
    pub fn of(target: &Target) -> DatasetNames {
        let in_folder = |dir: std::path::PathBuf| {
            let dir = std::path::absolute(&dir).unwrap_or(dir);
            DatasetNames { namespace: "file".into(), prefix: format!("{}/", dir.display()), separator: '/' }
        };
        match target.engine {
            EngineKind::Local => in_folder(local::warehouse_dir(target)),
            EngineKind::Delta => match delta::s3_location(target) {
                Some(url) => {
                    let rest = url.trim_start_matches("s3://");
                    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                    let prefix = prefix.trim_matches('/');
                    let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
                    DatasetNames { namespace: format!("s3://{bucket}"), prefix, separator: '/' }
                }
                None => in_folder(delta::location(target)),
            },
            EngineKind::Postgres => {
                let (host, port, db) = match postgres::PgSettings::from_target(target) {
                    Ok(s) => (s.host, s.port, s.dbname),
                    Err(_) => ("localhost".into(), 5432, target.database.clone().unwrap_or_default()),
                };
                DatasetNames {
                    namespace: format!("postgres://{host}:{port}"),
                    prefix: format!("{db}."),
                    separator: '.',
                }
            }
        }
    }

    /// The dataset name of `relation` in [`DatasetNames::namespace`].
    pub fn name(&self, relation: &Relation) -> String {
        format!("{}{}{}{}", self.prefix, relation.schema, self.separator, relation.identifier)
    }
}

/// How `--defer` reads the relations a run does not build from another build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferMode {
    /// Both builds live in one database: `ref()` names the other build's relation.
    ByName,
    /// The engine lends the other build's stored relations under this build's names
    /// ([`Engine::defer`]), from the folder its manifest records.
    Lend,
}

/// How `--defer` works on the target.
pub fn defer_mode(target: &Target) -> DeferMode {
    match target.engine {
        EngineKind::Local => DeferMode::Lend,
        EngineKind::Postgres | EngineKind::Delta => DeferMode::ByName,
    }
}

/// A relation a run reads from another build instead of building it (`--defer`).
#[derive(Debug, Clone)]
pub struct Deferred {
    /// As this project names it.
    pub relation: Relation,
    /// As the other build recorded it.
    pub stored: Relation,
}

/// Whether a command writes (and so takes the target's run lock) or only reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Write { wait: bool },
    Read,
}

/// A point in a table's history (`etlm show --as-of`): a Delta version, or a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// The table's Delta version number.
    Version(u64),
    /// The latest commit made at or before this time.
    Time(chrono::DateTime<chrono::Utc>),
}

impl std::str::FromStr for AsOf {
    type Err = String;

    /// `3`, `2026-12-04T18:00:00Z` (or another offset), `2026-12-04 18:00:00` or
    /// `2026-12-04` (times without an offset are UTC; a day is its start).
    fn from_str(text: &str) -> Result<AsOf, String> {
        use chrono::{NaiveDate, NaiveDateTime, Utc};
        if let Ok(version) = text.parse::<u64>() {
            return Ok(AsOf::Version(version));
        }
        if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
            return Ok(AsOf::Time(time.with_timezone(&Utc)));
        }
        for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
            if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
                return Ok(AsOf::Time(time.and_utc()));
            }
        }
        if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Ok(AsOf::Time(day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()));
        }
        Err(format!(
            "`{text}` is neither a Delta version (0, 1, ...) nor a time \
             (2026-12-04T18:00:00Z, 2026-12-04 18:00:00, 2026-12-04)"
        ))
    }
}

/// What to build into a relation.
#[derive(Debug)]
pub enum Build {
    View(String),
    Table {
        sql: String,
        partition_by: Vec<String>,
    },
    /// An incremental model's new rows, combined with the current version when there is
    /// one (else built like a table).
    Incremental {
        sql: String,
        spec: IncrementalSpec,
    },
    /// A snapshot's query, recorded as history in the relation (`snapshot.rs`): built
    /// like a table the first time, then changed rows close their version and open a
    /// new one.
    Snapshot {
        sql: String,
        config: crate::project::snapshot::SnapshotConfig,
    },
    /// A seed's rows, typed; `column_types` are the project's own spellings of some
    /// columns' types, which an engine with SQL types uses as written.
    Seed {
        batch: RecordBatch,
        column_types: std::collections::BTreeMap<String, String>,
    },
}

/// New data written where no reader sees it, readable under the relation's audit name
/// until `publish` or `discard` takes it.
pub struct Staged {
    pub relation: Relation,
    /// Rows written (none for views; for incremental models, the new rows; for
    /// snapshots, the versions opened or closed).
    pub rows: Option<u64>,
    /// Time spent in the engine planning and running the query.
    pub query_seconds: f64,
    /// The engine's own handle on the staged data.
    pub handle: Box<dyn Any + Send + Sync>,
}

/// An engine a run builds on. Every write goes stage, audit (tests read the audit
/// relation), then publish or discard; history and interval records live in the
/// engine's metadata store.
#[async_trait::async_trait]
pub trait Engine: Send + Sync {
    /// The engine's metadata store: run history and intervals.
    fn history(&self) -> &dyn HistoryStore;

    /// The run builds up to `queries_at_once` nodes at once. An engine that runs queries
    /// in this process splits the machine's cores among them, where each query would
    /// otherwise spread over every core and the queries would contend for them. A server
    /// engine has nothing to split.
    fn share_cores(&self, _queries_at_once: usize) {}

    /// Runs a staged view once and keeps its rows for the rest of the run: its audits
    /// read them, and once it is published so does every later query of the run, where
    /// a view of views would otherwise run every view beneath it again for each reader.
    /// The published relation stays a view. True if it did; an engine may decline (rows
    /// too big, nowhere to keep them), and then the view runs as usual.
    async fn keep_view_rows(&self, _staged: &mut Staged) -> bool {
        false
    }

    /// A fingerprint of `relation`'s data that changes whenever its data may have
    /// (`run::reuse`). `None` when the relation does not exist, or when the engine cannot
    /// tell: then nothing that reads it is reused.
    fn fingerprint(&self, _relation: &Relation) -> Option<String> {
        None
    }

    /// Writes `build` where no reader sees it and makes it readable under
    /// `relation.audit()`, passing the `after-stage` failpoint.
    async fn stage(
        &self,
        relation: &Relation,
        build: Build,
        failpoints: &Failpoints,
        model: &str,
    ) -> Result<Staged, EngineError>;

    /// Makes staged data the relation's current version atomically. Returns the rows
    /// written (none for views).
    async fn publish(&self, staged: Staged, failpoints: &Failpoints, model: &str) -> Result<Option<u64>, EngineError>;

    /// Drops staged data that must not be published (an audit failed).
    async fn discard(&self, staged: Staged) -> Result<(), EngineError>;

    /// Builds `relation` from a query and publishes it at once, with no audit (stored
    /// test failures). Returns the number of rows.
    async fn replace_table(&self, relation: &Relation, sql: &str) -> Result<u64, EngineError>;

    /// Runs a hook (`pre_hook` / `post_hook`): one or more statements, results dropped.
    async fn execute(&self, sql: &str) -> Result<(), EngineError>;

    /// The number of rows a query returns.
    async fn count(&self, sql: &str) -> Result<u64, EngineError>;

    /// Runs a query and returns at most `limit` rows.
    async fn query(&self, sql: &str, limit: usize) -> Result<Vec<RecordBatch>, EngineError>;

    /// The columns a query returns and their types, spelled as this engine's SQL casts to
    /// them (`bigint`, `numeric`, `date`); the query is planned, not run.
    async fn column_types(&self, sql: &str) -> Result<Vec<(String, String)>, EngineError>;

    /// `--defer` on an engine whose [`defer_mode`] is [`DeferMode::Lend`]: reads
    /// `relations` (models and seeds this run does not build) from the other build's
    /// data at `other` (its manifest's warehouse path). Returns how many were found.
    async fn defer(&self, _other: &Path, _relations: &[Deferred]) -> Result<usize, EngineError> {
        Err(EngineError::internal("this engine reads deferred relations by name"))
    }

    /// Ends a run that wrote: removes what only this run used (its staging). Best
    /// effort; what is left is swept by the next run.
    async fn finish(&self) {}

    /// Checks, before anything is written, that the run may create relations in each of
    /// `schemas` (an `ErrorKind::Permission` error naming what is missing otherwise).
    async fn check_writable(&self, _schemas: &BTreeSet<String>) -> Result<(), EngineError> {
        Ok(())
    }

    /// Cancels the statements running on the engine (Ctrl-C); their transactions roll
    /// back. Engines that run in-process have nothing to cancel.
    async fn cancel(&self) {}
}

/// Where an engine keeps the run history and the intervals of windowed models, in the
/// tables `crate::history` declares.
#[async_trait::async_trait]
pub trait HistoryStore: Send + Sync {
    /// The schema holding the tables, quoted as the engine's SQL names it: `etlm runs`
    /// reads them through [`Engine::query`].
    fn schema(&self) -> String;

    /// Appends a run, its node results and its test results to the history.
    async fn record_run(
        &self,
        summary: &RunSummary,
        vars: &BTreeMap<String, serde_json::Value>,
    ) -> Result<(), EngineError>;

    /// Records that `unique_id`'s batch for `period` is published: called only after
    /// the publish, so the record never claims unpublished data.
    async fn record_interval(&self, unique_id: &str, period: &Period, run_id: &str) -> Result<(), EngineError>;

    /// Drops every interval recorded for `unique_id` (a full refresh starts it anew),
    /// before the refresh publishes anything.
    async fn forget_intervals(&self, unique_id: &str, run_id: &str) -> Result<(), EngineError>;

    /// The periods recorded as done, per node, in order.
    async fn intervals(&self) -> Result<Intervals, EngineError>;

    /// Row counts of every node's successful builds, newest first (anomaly checks).
    async fn row_count_history(&self) -> Result<RowHistory, EngineError>;

    /// When each node's last successful build started, in seconds since the epoch
    /// (`metrics.prom`).
    async fn last_successes(&self) -> Result<BTreeMap<String, f64>, EngineError>;
}

/// Takes the engine's handle out of staged data it made.
pub(crate) fn handle<T: Any>(staged: Staged) -> Result<(Relation, Option<u64>, T), EngineError> {
    let Staged { relation, rows, handle, .. } = staged;
    match handle.downcast::<T>() {
        Ok(h) => Ok((relation, rows, *h)),
        Err(_) => Err(EngineError::internal("staged data of another engine")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta_target(location: &str) -> Target {
        Target {
            name: "lake".into(),
            engine: EngineKind::Delta,
            schema: "main".into(),
            database: None,
            threads: None,
            settings: [("location".to_string(), serde_json::json!(location))].into(),
            origin: None,
            project_dir: PathBuf::from("/projects/shop"),
        }
    }

    #[test]
    fn delta_datasets_are_named_by_their_folder_or_their_s3_key() {
        let orders = Relation::new("main", "orders");
        let local = DatasetNames::of(&delta_target("lake"));
        assert_eq!((local.namespace.as_str(), local.name(&orders)), ("file", "/projects/shop/lake/main/orders".into()));
        let s3 = DatasetNames::of(&delta_target("s3://bucket/analytics/"));
        assert_eq!((s3.namespace.as_str(), s3.name(&orders)), ("s3://bucket", "analytics/main/orders".into()));
        let bare = DatasetNames::of(&delta_target("s3://bucket"));
        assert_eq!((bare.namespace.as_str(), bare.name(&orders)), ("s3://bucket", "main/orders".into()));
        assert!(describe(&delta_target("s3://bucket/analytics")).contains("s3://bucket/analytics (cached in"));
    }

    #[test]
    fn as_of_reads_a_version_or_a_time() {
        assert_eq!("3".parse::<AsOf>(), Ok(AsOf::Version(3)));
        let noon = chrono::DateTime::parse_from_rfc3339("2026-12-04T12:00:00Z").unwrap().to_utc();
        assert_eq!("2026-12-04T13:00:00+01:00".parse::<AsOf>(), Ok(AsOf::Time(noon)));
        assert_eq!("2026-12-04 12:00:00".parse::<AsOf>(), Ok(AsOf::Time(noon)));
        let midnight = chrono::DateTime::parse_from_rfc3339("2026-12-04T00:00:00Z").unwrap().to_utc();
        assert_eq!("2026-12-04".parse::<AsOf>(), Ok(AsOf::Time(midnight)));
        assert!("last week".parse::<AsOf>().unwrap_err().contains("neither a Delta version"));
    }
}
