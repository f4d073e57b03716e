//! The history store of every SQL engine: the tables `crate::history` declares, created
//! and migrated in a schema of the warehouse, written with plain SQL in one transaction
//! per run. An engine lends it a [`SqlSession`] (run statements, return rows, name a
//! column type); nothing here knows which server it talks to.
//!
//! Values are written as SQL literals rather than bind parameters, so the store needs no
//! more of an engine than text in and rows out, and a run's rows travel in one round trip.

use std::collections::BTreeMap;

use datafusion::arrow::array::RecordBatch;

use super::{EngineError, ErrorKind, HistoryStore};
use crate::history::{self, ColumnType, Intervals, RowHistory, RunSummary, Table, Value};
use crate::relation::quote_ident;
use crate::window::Period;

/// What the SQL history store needs of an engine.
#[async_trait::async_trait]
pub trait SqlSession: Send + Sync {
    /// Runs `statements` in one transaction: all of them take effect or none.
    async fn transaction(&self, statements: &[String]) -> Result<(), EngineError>;

    /// Runs a query and returns its rows.
    async fn rows(&self, sql: &str) -> Result<Vec<RecordBatch>, EngineError>;

    /// How the engine's SQL spells a column type in `create table`.
    fn type_name(&self, ty: ColumnType) -> &'static str;
}

/// The history tables in schema `schema` of the engine behind `session`.
pub struct SqlHistory<S> {
    session: S,
    schema: &'static str,
}

/// The layouts the store has had, in order; its version is how many have been applied.
/// Version 1 is the tables as `crate::history` first declared them. A change to a
/// declaration adds a migration here (e.g. `alter table ... add column`), never edits
/// an applied one.
fn migrations(schema: &str, session: &dyn SqlSession) -> Vec<Vec<String>> {
    let create = history::TABLES.iter().flat_map(|t| create_table(schema, t, session)).collect();
    vec![create]
}

fn create_table(schema: &str, table: &Table, session: &dyn SqlSession) -> Vec<String> {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let null = if c.nullable { "" } else { " not null" };
            format!("{} {}{null}", c.name, session.type_name(c.ty))
        })
        .collect();
    let name = format!("{}.{}", quote_ident(schema), table.name);
    let mut statements = vec![format!("create table {name} ({})", columns.join(", "))];
    if !table.index.is_empty() {
        statements.push(format!("create index on {name} ({})", table.index.join(", ")));
    }
    statements
}

impl<S: SqlSession> SqlHistory<S> {
    /// The store in `schema`; call [`SqlHistory::migrate`] before writing (writers do, at
    /// open, under the run lock).
    pub fn new(session: S, schema: &'static str) -> SqlHistory<S> {
        SqlHistory { session, schema }
    }

    fn table(&self, table: &Table) -> String {
        format!("{}.{}", quote_ident(self.schema), table.name)
    }

    /// Creates the store or brings it to the current version, each migration in one
    /// transaction with the version it reaches.
    pub async fn migrate(&self) -> Result<(), EngineError> {
        let schema = quote_ident(self.schema);
        let version_table = format!("{schema}.schema_version");
        self.session
            .transaction(&[
                format!("create schema if not exists {schema}"),
                format!(
                    "create table if not exists {version_table} (version integer not null, \
                     migrated_at {} not null default current_timestamp)",
                    self.session.type_name(ColumnType::Time)
                ),
            ])
            .await?;
        let batches = self.session.rows(&format!("select coalesce(max(version), 0) from {version_table}")).await?;
        let version = first_int(&batches).unwrap_or(0).max(0) as usize;
        let migrations = migrations(self.schema, &self.session);
        if version > migrations.len() {
            return Err(EngineError::new(
                ErrorKind::Failed,
                format!(
                    "the metadata store `{}` is at version {version}, newer than this etlm knows ({}); upgrade etlm",
                    self.schema,
                    migrations.len()
                ),
            ));
        }
        for (i, mut statements) in migrations.into_iter().enumerate().skip(version) {
            statements.push(format!("insert into {version_table} (version) values ({})", i + 1));
            self.session.transaction(&statements).await?;
        }
        Ok(())
    }

    fn insert(&self, table: &Table, rows: &[Vec<Value>]) -> Option<String> {
        if rows.is_empty() {
            return None;
        }
        let columns: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        let values: Vec<String> = rows
            .iter()
            .map(|row| format!("({})", row.iter().map(|v| self.literal(v)).collect::<Vec<_>>().join(", ")))
            .collect();
        Some(format!("insert into {} ({}) values {}", self.table(table), columns.join(", "), values.join(",\n")))
    }

    /// `value` as a SQL literal of its column's type.
    fn literal(&self, value: &Value) -> String {
        let typed = |text: String, ty| format!("cast('{text}' as {})", self.session.type_name(ty));
        match value {
            Value::Text(None) | Value::Int(None) | Value::Float(None) => "null".into(),
            Value::Text(Some(t)) => format!("'{}'", t.replace('\'', "''")),
            Value::Int(Some(n)) => n.to_string(),
            Value::Float(Some(x)) if x.is_finite() => format!("{x:?}"),
            Value::Float(Some(x)) => typed(x.to_string(), ColumnType::Float),
            Value::Bool(b) => b.to_string(),
            Value::Time(t) => typed(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true), ColumnType::Time),
            Value::LocalTime(t) => typed(t.format("%Y-%m-%d %H:%M:%S%.6f").to_string(), ColumnType::LocalTime),
        }
    }
}

fn first_int(batches: &[RecordBatch]) -> Option<i64> {
    use datafusion::arrow::array::AsArray;
    let batch = batches.iter().find(|b| b.num_rows() > 0)?;
    let column =
        datafusion::arrow::compute::cast(batch.column(0), &datafusion::arrow::datatypes::DataType::Int64).ok()?;
    Some(column.as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(0))
}

#[async_trait::async_trait]
impl<S: SqlSession> HistoryStore for SqlHistory<S> {
    fn schema(&self) -> String {
        quote_ident(self.schema)
    }

    async fn record_run(
        &self,
        summary: &RunSummary,
        vars: &BTreeMap<String, serde_json::Value>,
    ) -> Result<(), EngineError> {
        let statements = [
            self.insert(&history::MODEL_RUNS, &history::model_run_rows(summary)),
            self.insert(&history::TEST_RESULTS, &history::test_result_rows(summary)),
            self.insert(&history::RUNS, &[history::run_row(summary, vars)]),
        ];
        self.session.transaction(&statements.into_iter().flatten().collect::<Vec<_>>()).await
    }

    async fn record_interval(&self, unique_id: &str, period: &Period, run_id: &str) -> Result<(), EngineError> {
        let row = history::interval_row(unique_id, period, run_id, chrono::Utc::now());
        let insert = self.insert(&history::INTERVALS, &[row]).expect("one row");
        self.session.transaction(&[insert]).await
    }

    async fn forget_intervals(&self, unique_id: &str, _run_id: &str) -> Result<(), EngineError> {
        let delete = format!(
            "delete from {} where {} = {}",
            self.table(&history::INTERVALS),
            history::INTERVALS.col("unique_id"),
            self.literal(&Value::Text(Some(unique_id.into())))
        );
        self.session.transaction(&[delete]).await
    }

    async fn intervals(&self) -> Result<Intervals, EngineError> {
        let batches = self.session.rows(&history::intervals_query(&self.schema())).await?;
        Ok(history::intervals_from(&batches)?)
    }

    async fn row_count_history(&self) -> Result<RowHistory, EngineError> {
        let batches = self.session.rows(&history::row_counts_query(&self.schema())).await?;
        Ok(history::row_history_from(&batches)?)
    }

    async fn last_successes(&self) -> Result<BTreeMap<String, f64>, EngineError> {
        let batches = self.session.rows(&history::last_successes_query(&self.schema())).await?;
        Ok(history::last_successes_from(&batches)?)
    }
}
