//! The Postgres engine: models built on a Postgres server (or any warehouse speaking its
//! protocol) through tokio-postgres.
//!
//! A run holds a session-level advisory lock on its target schema on one connection for
//! its whole length (a second run there fails at once), stages in a schema of its own,
//! `_etlm_staging_<pid>` (the backend pid of that connection), and sweeps the staging
//! schemas of runs whose connection is gone: runs on other schemas of the database are
//! alive, and their staging is left alone. It builds each model in three steps:
//!
//! 1. stage: new rows go to a run-unique table in its staging schema (a view's SQL to its
//!    audit view; a snapshot's changes, `snapshot.rs`), committed but read by nobody else;
//! 2. audit: the view `"_etlm_audit"."<schema>__<name>"` shows the new version (for an
//!    incremental model, the current rows combined with the new ones, see
//!    `engine::incremental`), and the model's tests read it;
//! 3. publish: one transaction makes the new version current (`publish.rs`) and drops
//!    the staging; a failure, a killed connection or a crash rolls it back whole.
//!
//! Connections come from a small pool, one per running model. Run history and
//! intervals live in the schema `etlm_meta` (`engine::sql_history`).

mod connect;
mod pool;
mod privileges;
mod publish;
mod rows;
mod seed;
mod snapshot;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use ::datafusion::arrow::array::RecordBatch;
use tokio_postgres::{Client, GenericClient};

pub use self::connect::{PgSettings, SslMode, redact};
use self::pool::{Pool, Pooled};
use super::ColumnMeta;
use super::failpoint::Failpoints;
use super::incremental::{Combine, IncrementalError, IncrementalSpec, duplicate_key_sql, null_key_sql, target_columns};
use super::sql_history::SqlHistory;
use super::{Access, Build, Engine, EngineError, ErrorKind, HistoryStore, Staged, handle};
use crate::project::{IncrementalStrategy, Target};
use crate::relation::{AUDIT_SCHEMA, Relation, quote_ident};

/// The schema of the metadata store: run history and intervals.
pub const META_SCHEMA: &str = "etlm_meta";

/// Where staged tables live until they are published or dropped: this prefix and the
/// backend pid of the run's lock connection, one schema per run.
pub const STAGING_PREFIX: &str = "_etlm_staging_";

/// The Postgres engine, connected to one target.
pub struct PostgresEngine {
    pool: Arc<Pool>,
    /// The run history and intervals, in schema `etlm_meta`.
    history: SqlHistory<Arc<Pool>>,
    /// The connection holding the run lock (writers only).
    lock: Option<Client>,
    /// Makes staging names unique to this run.
    tag: String,
    /// This run's staging schema.
    staging: String,
    /// Schemas known to exist.
    schemas: Mutex<BTreeSet<String>>,
    /// `server_version_num`, e.g. 150018: MERGE needs 150000.
    server_version: u32,
}

/// What `stage` leaves for `publish` or `discard`.
struct StagedPg {
    kind: StagedKind,
    audit: Relation,
}

enum StagedKind {
    View { sql: String },
    Table { staging: Relation },
    Incremental(Box<IncrementalPlan>),
    Snapshot(Box<snapshot::SnapshotPlan>),
}

/// An incremental model's staged delta and how it joins the table.
struct IncrementalPlan {
    delta: Relation,
    spec: IncrementalSpec,
    /// The new version's columns, the table's, and the delta's.
    columns: Vec<ColumnMeta>,
    current_columns: Vec<ColumnMeta>,
    delta_columns: Vec<ColumnMeta>,
}

impl PostgresEngine {
    /// Connects to the target; a writer takes the run lock (failing at once when another
    /// run holds it, unless `wait`), sweeps leftovers of killed runs and migrates the
    /// metadata store.
    pub async fn open(target: &Target, access: Access) -> Result<PostgresEngine, EngineError> {
        let settings = PgSettings::from_target(target)?;
        let control = connect::connect(&settings).await?;
        // As text: servers that speak the protocol type `int` differently (64-bit).
        let version =
            control.query_one("select current_setting('server_version_num')", &[]).await.map_err(|e| pg_error(&e))?;
        let server_version =
            version.try_get::<_, String>(0).ok().and_then(|v| v.trim().parse::<u32>().ok()).unwrap_or(0);
        let (lock, staging) = match access {
            Access::Write { wait } => {
                let key = lock_key(&target.schema);
                if wait {
                    // `--wait-for-lock` waits as long as the other run takes, not `lock_timeout`.
                    control.batch_execute("set lock_timeout = 0").await.map_err(|e| pg_error(&e))?;
                    control.execute("select pg_advisory_lock($1)", &[&key]).await.map_err(|e| pg_error(&e))?;
                    control.batch_execute("reset lock_timeout").await.map_err(|e| pg_error(&e))?;
                } else {
                    let row = control
                        .query_one("select pg_try_advisory_lock($1)", &[&key])
                        .await
                        .map_err(|e| pg_error(&e))?;
                    if !row.get::<_, bool>(0) {
                        return Err(EngineError::new(
                            ErrorKind::Locked,
                            format!(
                                "another etlm run holds the run lock on postgres {} (schema `{}`)",
                                settings.describe(),
                                target.schema
                            ),
                        ));
                    }
                }
                let pid: i32 =
                    control.query_one("select pg_backend_pid()", &[]).await.map_err(|e| pg_error(&e))?.get(0);
                let staging = format!("{STAGING_PREFIX}{pid}");
                let schemas = [&target.schema, &staging, META_SCHEMA, AUDIT_SCHEMA];
                privileges::check(&control, &schemas.iter().map(|s| s.to_string()).collect()).await?;
                sweep(&control, &staging).await?;
                (Some(control), staging)
            }
            // A reader stages nothing.
            Access::Read => (None, format!("{STAGING_PREFIX}0")),
        };
        let pool = Arc::new(Pool::new(settings));
        let history = SqlHistory::new(pool.clone(), META_SCHEMA);
        if lock.is_some() {
            history.migrate().await?;
        }
        let tag = format!("{:x}", chrono::Utc::now().timestamp_micros() % 0xffff_ffff);
        Ok(PostgresEngine { pool, history, lock, tag, staging, schemas: Mutex::default(), server_version })
    }

    /// A connection from the pool.
    async fn client(&self) -> Result<Pooled<'_>, EngineError> {
        self.pool.client().await
    }

    /// Creates `schema` unless it exists. Outside any transaction: two models creating
    /// one schema at once inside theirs would collide.
    async fn ensure_schema(&self, client: &Client, schema: &str) -> Result<(), EngineError> {
        if self.schemas.lock().expect("schemas").contains(schema) {
            return Ok(());
        }
        match client.batch_execute(&format!("create schema if not exists {}", quote_ident(schema))).await {
            Ok(()) => {}
            // Another connection created it between our check and our create.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {}
            Err(e) => return Err(pg_error(&e)),
        }
        self.schemas.lock().expect("schemas").insert(schema.to_string());
        Ok(())
    }

    /// A run-unique table name in the staging schema for `relation` (`suffix` tells a
    /// model's tables apart), within Postgres's 63-byte names.
    fn staging_name(&self, relation: &Relation, suffix: &str) -> Relation {
        let full = format!("{}.{}", relation.schema, relation.identifier);
        let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        let short: String = relation.identifier.chars().take(30).collect();
        Relation::new(&self.staging, format!("{short}_{:08x}_{}{suffix}", hash as u32, self.tag))
    }

    /// Drops staged relations, on a fresh connection: the one that staged them may be
    /// gone. Best effort: the next run's sweep removes what remains.
    async fn drop_staged(&self, staged: &StagedPg) {
        let mut statements = vec![format!("drop view if exists {}", staged.audit)];
        match &staged.kind {
            StagedKind::Table { staging } => statements.push(format!("drop table if exists {staging}")),
            StagedKind::Incremental(plan) => statements.push(format!("drop table if exists {}", plan.delta)),
            StagedKind::Snapshot(plan) => statements.push(format!("drop table if exists {}", plan.changes)),
            StagedKind::View { .. } => {}
        }
        if let Ok(client) = self.client().await {
            for statement in statements {
                let _ = client.batch_execute(&statement).await;
            }
        }
    }

    async fn stage_incremental(
        &self,
        client: &Client,
        relation: &Relation,
        sql: &str,
        spec: IncrementalSpec,
    ) -> Result<(StagedKind, String, u64), EngineError> {
        let delta = self.staging_name(relation, "_d");
        let rows = create_table_as(client, &delta, sql).await?;
        let current_columns = columns_of(client, relation).await?;
        let mut delta_columns = columns_of(client, &delta).await?;
        let checked = async {
            if matches!(spec.strategy, IncrementalStrategy::Merge | IncrementalStrategy::DeleteInsert)
                && spec.window.is_none()
            {
                check_keys(client, &delta, &spec.unique_key).await?;
            }
            let columns = target_columns(&current_columns, &delta_columns, spec.on_schema_change)?;
            // A column the table keeps at its type (`ignore`, `append_new_columns`) is cast
            // in the delta, so every statement after reads one type.
            let retype: Vec<String> = columns
                .iter()
                .filter(|c| {
                    delta_columns.iter().any(|d| d.name == c.name && !d.data_type.eq_ignore_ascii_case(&c.data_type))
                })
                .map(|c| format!("alter column {0} type {1} using {0}::{1}", quote_ident(&c.name), c.data_type))
                .collect();
            if !retype.is_empty() {
                client
                    .batch_execute(&format!("alter table {delta} {}", retype.join(", ")))
                    .await
                    .map_err(|e| pg_error(&e))?;
                delta_columns = columns_of(client, &delta).await?;
            }
            Ok::<_, EngineError>(columns)
        };
        let columns = match checked.await {
            Ok(columns) => columns,
            Err(e) => {
                let _ = client.batch_execute(&format!("drop table if exists {delta}")).await;
                return Err(e);
            }
        };
        let plan = IncrementalPlan { delta, spec, columns, current_columns, delta_columns };
        let audit_sql = plan.new_version(relation);
        Ok((StagedKind::Incremental(Box::new(plan)), audit_sql, rows))
    }
}

impl IncrementalPlan {
    fn combine<'a>(&'a self, current: &'a Relation) -> Combine<'a> {
        Combine {
            current,
            delta: &self.delta,
            columns: &self.columns,
            current_columns: &self.current_columns,
            delta_columns: &self.delta_columns,
            spec: &self.spec,
            cast_to_target: true,
        }
    }

    /// The rows of the new version: what the audit view shows.
    fn new_version(&self, current: &Relation) -> String {
        let rows = self.combine(current);
        if let Some(window) = &self.spec.window {
            return rows.windowed(window, "true");
        }
        match self.spec.strategy {
            IncrementalStrategy::Append => format!("{}\nunion all\n{}", rows.kept("true"), rows.new_rows()),
            IncrementalStrategy::InsertOverwrite if self.spec.partition_by.is_empty() => rows.new_rows(),
            IncrementalStrategy::InsertOverwrite => {
                format!("{}\nunion all\n{}", rows.kept(&format!("not {}", self.touched_partitions())), rows.new_rows())
            }
            IncrementalStrategy::Merge | IncrementalStrategy::DeleteInsert => rows.merged(),
        }
    }

    /// A condition over `o` (the table): its partition has rows in the delta.
    fn touched_partitions(&self) -> String {
        let same = self
            .spec
            .partition_by
            .iter()
            .map(|p| format!("o.{0} is not distinct from d.{0}", quote_ident(p)))
            .collect::<Vec<_>>()
            .join(" and ");
        format!("exists (select 1 from {} d where {same})", self.delta)
    }
}

#[async_trait::async_trait]
impl Engine for PostgresEngine {
    fn history(&self) -> &dyn HistoryStore {
        &self.history
    }

    /// Drops this run's staging schema (empty by now), on the lock connection: a finished
    /// run leaves nothing behind. A run that dies before leaves it to the next one's sweep.
    async fn finish(&self) {
        if let Some(lock) = &self.lock {
            let _ = lock.batch_execute(&format!("drop schema if exists {} cascade", quote_ident(&self.staging))).await;
        }
    }

    async fn check_writable(&self, schemas: &BTreeSet<String>) -> Result<(), EngineError> {
        let client = self.client().await?;
        privileges::check(&client, schemas).await
    }

    async fn stage(
        &self,
        relation: &Relation,
        build: Build,
        failpoints: &Failpoints,
        model: &str,
    ) -> Result<Staged, EngineError> {
        let clock = std::time::Instant::now();
        let client = self.client().await?;
        self.ensure_schema(&client, &relation.schema).await?;
        let audit = relation.audit();
        client.batch_execute(&format!("drop view if exists {audit}")).await.map_err(|e| pg_error(&e))?;
        let existing = relation_kind(&*client, relation).await?;
        let (kind, audit_sql, rows) = match build {
            Build::View(sql) => (StagedKind::View { sql: sql.clone() }, sql, None),
            Build::Table { sql, .. } => {
                let staging = self.staging_name(relation, "");
                let rows = create_table_as(&client, &staging, &sql).await?;
                let audit_sql = format!("select * from {staging}");
                (StagedKind::Table { staging }, audit_sql, Some(rows))
            }
            Build::Incremental { sql, spec } if existing == Some(RelKind::Table) => {
                let (kind, audit_sql, rows) = self.stage_incremental(&client, relation, &sql, spec).await?;
                (kind, audit_sql, Some(rows))
            }
            Build::Incremental { sql, .. } => {
                let staging = self.staging_name(relation, "");
                let rows = create_table_as(&client, &staging, &sql).await?;
                (StagedKind::Table { staging: staging.clone() }, format!("select * from {staging}"), Some(rows))
            }
            Build::Snapshot { sql, config } => {
                let staging = self.staging_name(relation, "");
                let (kind, audit_sql, rows) =
                    snapshot::stage(&client, relation, existing, &sql, &config, staging.clone()).await?;
                (kind, audit_sql, Some(rows))
            }
            Build::Seed { batch, column_types } => {
                let staging = self.staging_name(relation, "");
                let rows = seed::copy_into(&client, &staging, &batch, &column_types).await?;
                (StagedKind::Table { staging: staging.clone() }, format!("select * from {staging}"), Some(rows))
            }
        };
        let staged = StagedPg { kind, audit };
        if let Err(e) = client.batch_execute(&format!("create view {} as {audit_sql}", staged.audit)).await {
            self.drop_staged(&staged).await;
            return Err(pg_error(&e));
        }
        failpoints.hit("after-stage", model);
        let query_seconds = clock.elapsed().as_secs_f64();
        Ok(Staged { relation: relation.clone(), rows, query_seconds, handle: Box::new(staged) })
    }

    async fn publish(&self, staged: Staged, failpoints: &Failpoints, model: &str) -> Result<Option<u64>, EngineError> {
        let (relation, rows, staged) = handle::<StagedPg>(staged)?;
        let mut client = self.client().await?;
        let result = publish::publish(&mut client, &relation, &staged, self.server_version, failpoints, model).await;
        if result.is_err() {
            drop(client);
            self.drop_staged(&staged).await;
        }
        result?;
        failpoints.hit("after-publish", model);
        Ok(rows)
    }

    async fn discard(&self, staged: Staged) -> Result<(), EngineError> {
        let (_, _, staged) = handle::<StagedPg>(staged)?;
        self.drop_staged(&staged).await;
        Ok(())
    }

    async fn replace_table(&self, relation: &Relation, sql: &str) -> Result<u64, EngineError> {
        let mut client = self.client().await?;
        self.ensure_schema(&client, &relation.schema).await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        tx.batch_execute(&format!("drop table if exists {relation}")).await.map_err(|e| pg_error(&e))?;
        let rows = tx.execute(&format!("create table {relation} as {sql}"), &[]).await.map_err(|e| pg_error(&e))?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(rows)
    }

    async fn execute(&self, sql: &str) -> Result<(), EngineError> {
        let client = self.client().await?;
        client.batch_execute(sql).await.map_err(|e| pg_error(&e))
    }

    async fn count(&self, sql: &str) -> Result<u64, EngineError> {
        let client = self.client().await?;
        let row = client
            .query_one(&format!("select count(*) from (\n{sql}\n) as counted"), &[])
            .await
            .map_err(|e| pg_error(&e))?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    async fn query(&self, sql: &str, limit: usize) -> Result<Vec<RecordBatch>, EngineError> {
        let client = self.client().await?;
        let sql = match limit {
            usize::MAX => sql.to_string(),
            n => format!("select * from (\n{sql}\n) as shown limit {n}"),
        };
        rows::query_rows(&client, &sql).await
    }

    async fn column_types(&self, sql: &str) -> Result<Vec<(String, String)>, EngineError> {
        let client = self.client().await?;
        rows::column_types(&client, sql).await
    }

    async fn cancel(&self) {
        self.pool.cancel_all().await;
    }
}

/// What a relation is on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RelKind {
    Table,
    View,
}

async fn relation_kind(client: &impl GenericClient, relation: &Relation) -> Result<Option<RelKind>, EngineError> {
    let row = client
        .query_opt(
            "select c.relkind::text from pg_class c join pg_namespace n on n.oid = c.relnamespace \
             where n.nspname = $1 and c.relname = $2",
            &[&relation.schema, &relation.identifier],
        )
        .await
        .map_err(|e| pg_error(&e))?;
    Ok(row.map(|r| match r.get::<_, String>(0).as_str() {
        "v" | "m" => RelKind::View,
        _ => RelKind::Table,
    }))
}

/// A relation's columns, in order, with their Postgres types.
async fn columns_of(client: &impl GenericClient, relation: &Relation) -> Result<Vec<ColumnMeta>, EngineError> {
    let rows = client
        .query(
            "select a.attname::text, format_type(a.atttypid, a.atttypmod) from pg_attribute a \
             join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace \
             where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped order by a.attnum",
            &[&relation.schema, &relation.identifier],
        )
        .await
        .map_err(|e| pg_error(&e))?;
    Ok(rows.iter().map(|r| ColumnMeta { name: r.get(0), data_type: r.get(1) }).collect())
}

/// `create table <relation> as <sql>` in the staging schema; returns the rows written.
async fn create_table_as(client: &Client, relation: &Relation, sql: &str) -> Result<u64, EngineError> {
    client.batch_execute(&format!("drop table if exists {relation}")).await.map_err(|e| pg_error(&e))?;
    client.execute(&format!("create table {relation} as {sql}"), &[]).await.map_err(|e| pg_error(&e))
}

/// Fails on a NULL or repeated key among the delta's rows, naming one.
async fn check_keys(client: &Client, delta: &Relation, keys: &[String]) -> Result<(), EngineError> {
    for key in keys {
        if client.query_opt(&null_key_sql(delta, key), &[]).await.map_err(|e| pg_error(&e))?.is_some() {
            return Err(IncrementalError::NullKey { column: key.clone() }.into());
        }
    }
    if let Some(row) = client.query_opt(&duplicate_key_sql(delta, keys), &[]).await.map_err(|e| pg_error(&e))? {
        let sample: String = row.get(0);
        return Err(IncrementalError::DuplicateKey { key: keys.join(", "), sample: format!("({sample})") }.into());
    }
    Ok(())
}

/// Drops what killed runs left: the staging schemas of runs whose lock connection is
/// gone (their audit views, which read the staged tables, go with them), and the one
/// shared staging schema of etlm before 0.2; then makes `own` and the audit schema. A
/// run alive on another schema of the database keeps its staging.
async fn sweep(client: &Client, own: &str) -> Result<(), EngineError> {
    let pattern = format!("^{STAGING_PREFIX}[0-9]+$");
    let start = STAGING_PREFIX.len() + 1;
    client
        .batch_execute(&format!(
            "do $$ declare s text; begin \
               for s in select nspname from pg_namespace where nspname = '_etlm_staging' \
                 or (nspname ~ '{pattern}' and substr(nspname, {start})::int not in (select pid from pg_stat_activity)) \
               loop execute format('drop schema %I cascade', s); end loop; \
             end $$; \
             drop schema if exists {own_q} cascade; create schema {own_q}; create schema if not exists {audit}",
            own_q = quote_ident(own),
            audit = quote_ident(AUDIT_SCHEMA),
        ))
        .await
        .map_err(|e| pg_error(&e))
}

/// The advisory lock key of a target schema: one run per schema at a time.
fn lock_key(schema: &str) -> i64 {
    let text = format!("etlm run lock: {schema}");
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3)) as i64
}

/// The relations on the server (for `is_incremental()` at compile time); none when it
/// cannot be reached (the run reports the connection error).
pub fn existing_relations(target: &Target) -> BTreeSet<Relation> {
    let Ok(settings) = PgSettings::from_target(target) else { return BTreeSet::new() };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return BTreeSet::new();
    };
    runtime.block_on(async {
        let Ok(client) = connect::connect(&settings).await else { return BTreeSet::new() };
        let sql = "select table_schema::text, table_name::text from information_schema.tables \
                   where table_schema not in ('pg_catalog', 'information_schema')";
        match client.query(sql, &[]).await {
            Ok(rows) => rows.iter().map(|r| Relation::new(r.get::<_, String>(0), r.get::<_, String>(1))).collect(),
            Err(_) => BTreeSet::new(),
        }
    })
}

/// The server's message for a failed statement, with its detail and hint; a lost
/// connection says so.
pub(crate) fn error_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = db.message().to_string();
        if let Some(detail) = db.detail() {
            text.push_str(&format!("\n= detail: {detail}"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("\n= hint: {hint}"));
        }
        return text;
    }
    if e.is_closed() {
        return "the connection to postgres was closed (the server ended it or it was lost); \
                the transaction was rolled back and the target is unchanged"
            .to_string();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn pg_error(e: &tokio_postgres::Error) -> EngineError {
    let error = EngineError::new(ErrorKind::Failed, error_text(e));
    match e.code() {
        Some(c) if *c == tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE => error.with_help(
            "another session held a lock on the relation longer than the target's `lock_timeout` \
             (default 60 s); nothing was changed",
        ),
        _ => error,
    }
}
