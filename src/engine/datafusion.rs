//! The embedded engine: DataFusion over the Parquet warehouse in `engine/local/`.
//!
//! A run opens it with the writer lock held (a second run fails at once, or waits with
//! `--wait-for-lock`; beside a table log's advisory lock it goes on as a guest), sweeps
//! what a killed run left behind, and builds each model into a staging version that is
//! published by one atomic symlink swap. `show` and `runs` open it without the lock:
//! readers never block and always see complete versions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::prelude::SessionContext;

use super::failpoint::Failpoints;
use super::local::deferred::{self, Lent};
use super::local::{
    OnContention, ROWS_FILE_EXTENSION, RelationKind, RelationMeta, Staging, Warehouse, WarehouseLock, combine,
    deregister_audit, keep_view_rows, new_context, published_relations, register_audit, register_relation,
    register_relations, register_rows_file, register_table_dir, stage_snapshot, table_columns, write_dataframe,
    write_query,
};
use super::{Access, Build, Deferred, Engine, EngineError, HistoryStore, Staged, handle};
use crate::history::{self, ColumnType, Intervals, RowHistory, RunSummary, Value};
use crate::relation::Relation;
use crate::window::Period;

/// What `stage` leaves for `publish` or `discard`.
struct StagedVersion {
    staging: Staging,
    meta: RelationMeta,
    /// A view's rows, when `keep_view_rows` kept them.
    kept: Option<KeptRows>,
}

/// A staged view's rows in an Arrow IPC file, in a staging directory of their own that
/// lasts until the run finishes (a killed run's is swept like any staging leftover).
struct KeptRows {
    staging: Staging,
    columns: SchemaRef,
}

impl KeptRows {
    /// The file in `staging` that holds the rows.
    fn file(staging: &Staging) -> PathBuf {
        staging.dir().join(format!("rows{ROWS_FILE_EXTENSION}"))
    }
}

/// The rows kept for the run's published views, and the bytes their files take.
#[derive(Default)]
struct RunRows {
    kept: Vec<Staging>,
    bytes: u64,
}

/// The most memory one view's kept rows may take, batch by batch as they are written.
const MAX_KEPT_VIEW_BYTES: usize = 256 << 20;
/// The most disk the kept rows of one run may take; later views run as usual.
const MAX_KEPT_RUN_BYTES: u64 = 2 << 30;

/// Where an incremental model's new rows (a snapshot's changes) are registered while
/// they are combined.
const DELTA_SCHEMA: &str = "_etlm_delta";

/// The schema holding etlm's own tables (run history).
pub const HISTORY_SCHEMA: &str = "_etlm";

/// The embedded engine, open on one warehouse.
pub struct DataFusionEngine {
    warehouse: Warehouse,
    /// The history tables are registered at open; the warehouse's relations when the
    /// first query needs them ([`DataFusionEngine::session`]), so a run that reuses every
    /// node, or only reads its history, never plans the warehouse's views.
    ctx: SessionContext,
    registered: tokio::sync::OnceCell<()>,
    /// The relations published when it opened (read then, so corrupt metadata stops a
    /// run before it starts), until they are registered.
    unregistered: std::sync::Mutex<Vec<super::local::StoredRelation>>,
    lock: Option<WarehouseLock>,
    /// The published views' kept rows (`keep_view_rows`), removed when the run finishes.
    run_rows: std::sync::Mutex<RunRows>,
}

impl DataFusionEngine {
    /// Opens the warehouse at `root` (created if missing).
    pub async fn open(root: &Path, access: Access) -> Result<DataFusionEngine, EngineError> {
        DataFusionEngine::open_warehouse(Warehouse::open(root)?, access).await
    }

    /// Opens `warehouse`, whatever records its current versions (symlinks, or a table
    /// format's log: `engine/delta`).
    pub async fn open_warehouse(warehouse: Warehouse, access: Access) -> Result<DataFusionEngine, EngineError> {
        let lock = match access {
            Access::Write { wait } => {
                let w = warehouse.clone();
                let mode = if wait { OnContention::Wait } else { OnContention::Fail };
                let lock = tokio::task::spawn_blocking(move || w.lock(mode))
                    .await
                    .map_err(|e| EngineError::internal(e.to_string()))??;
                if let Some(holder) = lock.guest_of() {
                    eprintln!(
                        "warning: another etlm run writes to `{}` ({holder}); going on beside it: where both \
                         write a table, the second commit fails as a conflict, and this run removes no leftovers",
                        warehouse.root().display()
                    );
                }
                warehouse.sweep(&lock)?;
                Some(lock)
            }
            Access::Read => None,
        };
        let unregistered = published_relations(&warehouse)?.into();
        let engine = DataFusionEngine {
            warehouse,
            ctx: new_context(),
            registered: Default::default(),
            unregistered,
            lock,
            run_rows: Default::default(),
        };
        engine.register_history()?;
        Ok(engine)
    }

    /// The session with every relation of the warehouse registered.
    async fn session(&self) -> Result<&SessionContext, EngineError> {
        self.registered
            .get_or_try_init(|| async {
                let relations = std::mem::take(&mut *self.unregistered.lock().expect("relations"));
                register_relations(&self.ctx, relations).await.map(drop)
            })
            .await?;
        Ok(&self.ctx)
    }

    /// Folds the interval files of this run (one per batch) into one, so a year of hourly
    /// batches does not leave 8,760 files for every later run to read.
    fn compact_intervals(&self, run_id: &str) -> Result<(), EngineError> {
        let prefix = format!("{run_id}-");
        let parts = self.interval_files(|name| name.starts_with(&prefix))?;
        if parts.len() >= 2 {
            self.rewrite_intervals(&parts, &format!("{run_id}.parquet"), None)?;
        }
        Ok(())
    }

    /// Replaces interval files by one file `name` holding their rows (less those of
    /// `drop`). The new file is in place before the old ones go: a crash in between
    /// leaves duplicates, which `intervals` reads as one.
    fn rewrite_intervals(&self, parts: &[PathBuf], name: &str, drop: Option<&str>) -> Result<(), EngineError> {
        use datafusion::arrow::array::{AsArray, BooleanArray};
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let schema = Arc::new(arrow_schema(&history::INTERVALS));
        let mut batches = Vec::new();
        for part in parts {
            // Read with the plain Parquet reader: thousands of tiny files through a
            // DataFusion session cost far more time and memory.
            let file = std::fs::File::open(part).map_err(|e| EngineError::io(part, e))?;
            for batch in ParquetRecordBatchReaderBuilder::try_new(file)?.build()? {
                let batch = batch?;
                // Parquet reads strings back as views; the table's schema says Utf8.
                let columns = batch
                    .columns()
                    .iter()
                    .zip(schema.fields())
                    .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
                    .collect::<Result<Vec<_>, _>>()?;
                let batch = RecordBatch::try_new(schema.clone(), columns)?;
                let batch = match drop {
                    Some(id) => {
                        let ids = batch.column(0).as_string::<i32>();
                        let keep: BooleanArray = ids.iter().map(|v| Some(v != Some(id))).collect();
                        datafusion::arrow::compute::filter_record_batch(&batch, &keep)?
                    }
                    None => batch,
                };
                batches.push(batch);
            }
        }
        let all = datafusion::arrow::compute::concat_batches(&schema, &batches)?;
        let dir = self.history_dir("intervals");
        append_parquet(&dir, name, &all)?;
        for part in parts.iter().filter(|p| p.file_name().is_some_and(|n| n != name)) {
            std::fs::remove_file(part).map_err(|e| EngineError::io(part, e))?;
        }
        Ok(())
    }

    fn interval_files(&self, keep: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>, EngineError> {
        let dir = self.history_dir("intervals");
        let mut parts: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| EngineError::io(&dir, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .filter(|p| p.file_name().is_some_and(|n| keep(&n.to_string_lossy())))
            .collect();
        parts.sort();
        Ok(parts)
    }

    fn history_dir(&self, table: &str) -> PathBuf {
        self.warehouse.root().join(HISTORY_SCHEMA).join(table)
    }

    /// Registers the history tables (empty until the first run).
    fn register_history(&self) -> Result<(), EngineError> {
        for table in history::TABLES {
            let dir = self.history_dir(table.name);
            std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
            let meta = RelationMeta::table(table_columns(&arrow_schema(table), &[]), Vec::new());
            register_table_dir(&self.ctx, HISTORY_SCHEMA, table.name, &dir, &meta)?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl HistoryStore for DataFusionEngine {
    fn schema(&self) -> String {
        crate::relation::quote_ident(HISTORY_SCHEMA)
    }

    /// Appends the run, its node results and its test results to the history
    /// (`_etlm.runs`, `_etlm.model_runs`, `_etlm.test_results`): each a new Parquet
    /// file, renamed into place whole.
    async fn record_run(
        &self,
        summary: &RunSummary,
        vars: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<(), EngineError> {
        let models = history_batch(&history::MODEL_RUNS, &history::model_run_rows(summary))?;
        let tests = history_batch(&history::TEST_RESULTS, &history::test_result_rows(summary))?;
        let runs = history_batch(&history::RUNS, &[history::run_row(summary, vars)])?;
        // `runs` last: a run listed there has all its rows in the other two.
        for (table, batch) in [(&history::MODEL_RUNS, models), (&history::TEST_RESULTS, tests), (&history::RUNS, runs)]
        {
            let dir = self.history_dir(table.name);
            append_parquet(&dir, &format!("{}.parquet", summary.run_id), &batch)?;
        }
        self.compact_intervals(&summary.run_id)?;
        self.register_history()
    }

    /// Records that `unique_id`'s batch for `period` is published (`_etlm.intervals`):
    /// called only after the publish, so the record never claims unpublished data.
    async fn record_interval(&self, unique_id: &str, period: &Period, run_id: &str) -> Result<(), EngineError> {
        let row = history::interval_row(unique_id, period, run_id, chrono::Utc::now());
        let batch = history_batch(&history::INTERVALS, &[row])?;
        let name = format!("{run_id}-{unique_id}-{}.parquet", chrono::Utc::now().timestamp_micros());
        append_parquet(&self.history_dir("intervals"), &name, &batch)
    }

    /// Drops every interval recorded for `unique_id` (a full refresh starts it anew).
    /// Call it before the refresh publishes anything: a crash in between leaves the
    /// model claiming less than it has, never more.
    async fn forget_intervals(&self, unique_id: &str, run_id: &str) -> Result<(), EngineError> {
        let parts = self.interval_files(|_| true)?;
        if !parts.is_empty() {
            self.rewrite_intervals(&parts, &format!("{run_id}-reset.parquet"), Some(unique_id))?;
        }
        Ok(())
    }

    /// The periods recorded as done, per node, in order.
    async fn intervals(&self) -> Result<Intervals, EngineError> {
        let batches = self.ctx.sql(&history::intervals_query(&self.schema())).await?.collect().await?;
        Ok(history::intervals_from(&batches)?)
    }

    /// Row counts of every node's successful builds, newest first (for anomaly checks).
    async fn row_count_history(&self) -> Result<RowHistory, EngineError> {
        let batches = self.ctx.sql(&history::row_counts_query(&self.schema())).await?.collect().await?;
        Ok(history::row_history_from(&batches)?)
    }

    /// When each node's last successful build started (for `metrics.prom`).
    async fn last_successes(&self) -> Result<BTreeMap<String, f64>, EngineError> {
        let batches = self.ctx.sql(&history::last_successes_query(&self.schema())).await?.collect().await?;
        Ok(history::last_successes_from(&batches)?)
    }
}

#[async_trait::async_trait]
impl Engine for DataFusionEngine {
    fn history(&self) -> &dyn HistoryStore {
        self
    }

    /// Each query gets `cores / queries_at_once` partitions (at least one). On the
    /// generated 1,000-model project with 2 threads on 2 cores, one partition per query
    /// instead of two cut a build from 31.5 s to 26 s and its peak memory from 640 MB to
    /// 520 MB: repartitioning small inputs costs more than a second core gains when the
    /// other core runs another query anyway.
    fn share_cores(&self, queries_at_once: usize) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let partitions = (cores / queries_at_once.max(1)).max(1);
        self.ctx.state_ref().write().config_mut().options_mut().execution.target_partitions = partitions;
    }

    /// Writes the view's rows to a file of its own (uncompressed Arrow IPC), at most
    /// [`MAX_KEPT_VIEW_BYTES`] of them and [`MAX_KEPT_RUN_BYTES`] for the run, and reads
    /// them in its place until the run finishes.
    async fn keep_view_rows(&self, staged: &mut Staged) -> bool {
        let relation = staged.relation.clone();
        let Some(version) = staged.handle.downcast_mut::<StagedVersion>() else { return false };
        let used = self.run_rows.lock().expect("run rows lock").bytes;
        if version.meta.kind != RelationKind::View || used >= MAX_KEPT_RUN_BYTES {
            return false;
        }
        let Ok(ctx) = self.session().await else { return false };
        let Ok(staging) = self.warehouse.stage(&relation.schema, &relation.identifier) else { return false };
        let file = KeptRows::file(&staging);
        let Ok(Some(columns)) = keep_view_rows(ctx, &relation.audit(), &file, MAX_KEPT_VIEW_BYTES).await else {
            return false;
        };
        self.run_rows.lock().expect("run rows lock").bytes += std::fs::metadata(&file).map_or(0, |m| m.len());
        version.kept = Some(KeptRows { staging, columns });
        true
    }

    /// The version directory the relation points at, with its files' sizes and times.
    fn fingerprint(&self, relation: &Relation) -> Option<String> {
        self.warehouse.fingerprint(&relation.schema, &relation.identifier)
    }

    /// Registers each deferred relation, read-only from its own warehouse, under the
    /// name this project's SQL uses, in place of this warehouse's (`relations` in
    /// dependency order, so a deferred view finds what it reads), and records them so
    /// later sessions read them where this warehouse has none of its own. A relation the
    /// other build never published is left to this warehouse. Returns how many were
    /// registered.
    async fn defer(&self, other: &Path, relations: &[Deferred]) -> Result<usize, EngineError> {
        let lent: Vec<Lent> = relations
            .iter()
            .map(|d| Lent {
                schema: d.relation.schema.clone(),
                name: d.relation.identifier.clone(),
                warehouse: other.to_path_buf(),
                stored_schema: d.stored.schema.clone(),
                stored_name: d.stored.identifier.clone(),
            })
            .collect();
        deferred::record(self.warehouse.root(), &lent)?;
        let mut found = deferred::resolve(&lent)?;
        // Tables first (a stable sort keeps the views in dependency order).
        found.sort_by_key(|r| r.meta.kind == RelationKind::View);
        for stored in &found {
            register_relation(self.session().await?, stored).await?;
        }
        Ok(found.len())
    }

    /// Writes `build` where no reader sees it (a staging version) and registers it under
    /// the relation's audit name, so tests can read it before `publish`. Returns what a
    /// later `publish` or `discard` takes.
    async fn stage(
        &self,
        relation: &Relation,
        build: Build,
        failpoints: &Failpoints,
        model: &str,
    ) -> Result<Staged, EngineError> {
        let staging = self.warehouse.stage(&relation.schema, &relation.identifier)?;
        let clock = std::time::Instant::now();
        let (meta, rows) = match build {
            Build::View(sql) => {
                let df = self.session().await?.sql(&sql).await?;
                let columns = table_columns(df.schema().as_arrow(), &[]);
                (RelationMeta::view(columns, sql), None)
            }
            Build::Table { sql, partition_by } => {
                let out = write_query(self.session().await?, &sql, &staging, &partition_by).await?;
                (RelationMeta::table(out.columns, partition_by), Some(out.rows))
            }
            Build::Incremental { sql, spec } => {
                match self.warehouse.relation(&relation.schema, &relation.identifier)? {
                    Some(current) if current.meta.kind == RelationKind::Table => {
                        let delta = self.warehouse.stage(&relation.schema, &relation.identifier)?;
                        let out = write_query(self.session().await?, &sql, &delta, &spec.partition_by).await?;
                        let delta_name = Relation::new(DELTA_SCHEMA, relation.audit().identifier);
                        let meta = combine(self.session().await?, &current, &delta, &out, &staging, &spec, &delta_name)
                            .await?;
                        (meta, Some(out.rows))
                    }
                    _ => {
                        let out = write_query(self.session().await?, &sql, &staging, &spec.partition_by).await?;
                        (RelationMeta::table(out.columns, spec.partition_by), Some(out.rows))
                    }
                }
            }
            Build::Snapshot { sql, config } => {
                let current = self.warehouse.relation(&relation.schema, &relation.identifier)?;
                let current = current.filter(|c| c.meta.kind == RelationKind::Table);
                let changes = self.warehouse.stage(&relation.schema, &relation.identifier)?;
                let changes_name = Relation::new(DELTA_SCHEMA, relation.audit().identifier);
                let (meta, rows) = stage_snapshot(
                    self.session().await?,
                    current.as_ref(),
                    &sql,
                    &config,
                    &changes,
                    &staging,
                    &changes_name,
                )
                .await?;
                (meta, Some(rows))
            }
            Build::Seed { batch, .. } => {
                let df = self.session().await?.read_batch(batch)?;
                let out = write_dataframe(df, &staging, &[]).await?;
                (RelationMeta::table(out.columns, Vec::new()), Some(out.rows))
            }
        };
        failpoints.hit("after-stage", model);
        register_audit(self.session().await?, &relation.audit(), staging.dir(), &meta).await?;
        let query_seconds = clock.elapsed().as_secs_f64();
        let handle = Box::new(StagedVersion { staging, meta, kept: None });
        Ok(Staged { relation: relation.clone(), rows, query_seconds, handle })
    }

    /// Publishes staged data atomically, passing the failpoints on the way. Returns the
    /// number of rows written (none for views).
    async fn publish(&self, staged: Staged, failpoints: &Failpoints, model: &str) -> Result<Option<u64>, EngineError> {
        let (relation, rows, version) = handle::<StagedVersion>(staged)?;
        deregister_audit(self.session().await?, &relation.audit())?;
        failpoints.hit("before-publish", model);
        let stored = self.warehouse.publish(version.staging, version.meta, &|point| failpoints.hit(point, model))?;
        failpoints.hit("after-publish", model);
        match version.kept {
            Some(kept) => {
                let file = KeptRows::file(&kept.staging);
                register_rows_file(self.session().await?, &stored.schema, &stored.name, &file, kept.columns).await?;
                self.run_rows.lock().expect("run rows lock").kept.push(kept.staging);
            }
            None => {
                register_relation(self.session().await?, &stored).await?;
            }
        }
        if let Some(lock) = &self.lock {
            self.warehouse.prune(lock, &stored.schema, &stored.name)?;
        }
        Ok(rows)
    }

    /// Drops staged data that must not be published (an audit failed).
    async fn discard(&self, staged: Staged) -> Result<(), EngineError> {
        let (relation, _, version) = handle::<StagedVersion>(staged)?;
        deregister_audit(self.session().await?, &relation.audit())?;
        drop(version);
        Ok(())
    }

    /// Builds `relation` from a query and publishes it at once, with no audit (stored
    /// test failures). Returns the number of rows.
    async fn replace_table(&self, relation: &Relation, sql: &str) -> Result<u64, EngineError> {
        let build = Build::Table { sql: sql.to_string(), partition_by: Vec::new() };
        let staged = self.stage(relation, build, &Failpoints::default(), "").await?;
        Ok(self.publish(staged, &Failpoints::default(), "").await?.unwrap_or(0))
    }

    /// Runs a hook as a read-only query: the warehouse is versioned files that only
    /// etlm's publish writes, so DDL and DML are refused here.
    async fn execute(&self, sql: &str) -> Result<(), EngineError> {
        let read_only = datafusion::execution::context::SQLOptions::new().with_allow_ddl(false).with_allow_dml(false);
        self.session().await?.sql_with_options(sql, read_only).await?.collect().await?;
        Ok(())
    }

    /// The number of rows a query returns.
    async fn count(&self, sql: &str) -> Result<u64, EngineError> {
        Ok(self.session().await?.sql(sql).await?.count().await? as u64)
    }

    /// Runs a query and returns at most `limit` rows.
    async fn query(&self, sql: &str, limit: usize) -> Result<Vec<RecordBatch>, EngineError> {
        let df = self.session().await?.sql(sql).await?;
        let df = if limit == usize::MAX { df } else { df.limit(0, Some(limit))? };
        Ok(df.collect().await?)
    }

    async fn column_types(&self, sql: &str) -> Result<Vec<(String, String)>, EngineError> {
        let df = self.session().await?.sql(sql).await?;
        Ok(df.schema().fields().iter().map(|f| (f.name().clone(), cast_type(f.data_type()))).collect())
    }

    /// Removes the rows kept for the run's views.
    async fn finish(&self) {
        self.run_rows.lock().expect("run rows lock").kept.clear();
    }
}

/// A history table's Arrow schema, from its declaration.
fn arrow_schema(table: &history::Table) -> Schema {
    let fields = table.columns.iter().map(|c| {
        let ty = match c.ty {
            ColumnType::Text => DataType::Utf8,
            ColumnType::Int => DataType::Int64,
            ColumnType::Float => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ColumnType::LocalTime => DataType::Timestamp(TimeUnit::Microsecond, None),
        };
        Field::new(c.name, ty, c.nullable)
    });
    Schema::new(fields.collect::<Vec<_>>())
}

/// History rows as one batch of `table`'s schema.
fn history_batch(table: &history::Table, rows: &[Vec<Value>]) -> Result<RecordBatch, EngineError> {
    let columns = table.columns.iter().enumerate().map(|(i, c)| -> ArrayRef {
        let values = rows.iter().map(move |r| &r[i]);
        match c.ty {
            ColumnType::Text => Arc::new(StringArray::from_iter(values.map(|v| match v {
                Value::Text(t) => t.clone(),
                _ => None,
            }))),
            ColumnType::Int => Arc::new(Int64Array::from_iter(values.map(|v| match v {
                Value::Int(n) => *n,
                _ => None,
            }))),
            ColumnType::Float => Arc::new(Float64Array::from_iter(values.map(|v| match v {
                Value::Float(x) => *x,
                _ => None,
            }))),
            ColumnType::Bool => Arc::new(BooleanArray::from_iter(values.map(|v| match v {
                Value::Bool(b) => Some(*b),
                _ => None,
            }))),
            ColumnType::Time => Arc::new(
                TimestampMicrosecondArray::from_iter(values.map(|v| match v {
                    Value::Time(t) => Some(t.timestamp_micros()),
                    _ => None,
                }))
                .with_timezone("UTC"),
            ),
            ColumnType::LocalTime => Arc::new(TimestampMicrosecondArray::from_iter(values.map(|v| match v {
                Value::LocalTime(t) => Some(t.and_utc().timestamp_micros()),
                _ => None,
            }))),
        }
    });
    Ok(RecordBatch::try_new(Arc::new(arrow_schema(table)), columns.collect())?)
}

/// Writes `batch` to `dir/name` through a temporary file and a rename, so readers see the
/// whole file or none of it.
fn append_parquet(dir: &Path, name: &str, batch: &RecordBatch) -> Result<(), EngineError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| EngineError::io(&p, e)
    };
    let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)?;
    writer.write(batch)?;
    let file = writer.into_inner()?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, dir.join(name)).map_err(io(dir))
}

/// How DataFusion's SQL names a column type in a cast (text for types it has no name for).
fn cast_type(t: &DataType) -> String {
    match t {
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 | DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => "BIGINT".into(),
        DataType::UInt64 => "BIGINT UNSIGNED".into(),
        DataType::Float16 | DataType::Float32 => "REAL".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMPTZ".into(),
        DataType::Dictionary(_, value) => cast_type(value),
        _ => "VARCHAR".into(),
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;

    use super::*;

    /// The partitions the engine's next query is planned with, as DataFusion reports them.
    async fn partitions(engine: &DataFusionEngine) -> String {
        let sql = "select value from information_schema.df_settings \
                   where name = 'datafusion.execution.target_partitions'";
        let batches = engine.query(sql, 1).await.expect("settings query");
        batches[0].column(0).as_string::<i32>().value(0).to_string()
    }

    #[tokio::test]
    async fn queries_at_once_share_the_cores_with_one_partition_each_at_least() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = DataFusionEngine::open(dir.path(), Access::Read).await.expect("open");
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(partitions(&engine).await, cores.to_string(), "before any sharing, a query gets every core");
        for (at_once, expected) in [(1, cores), (2, (cores / 2).max(1)), (cores * 4, 1), (0, cores)] {
            engine.share_cores(at_once);
            assert_eq!(partitions(&engine).await, expected.to_string(), "{at_once} queries at once");
        }
    }
}
