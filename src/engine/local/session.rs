//! DataFusion sessions over the warehouse: every table a `ListingTable` over its resolved
//! version directory, every view its stored SQL.

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, ResolvedTableReference, TableReference};
use datafusion::datasource::ViewTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::deferred;
use super::kept_rows;
use super::meta::{RelationKind, RelationMeta};
use super::storage::{StorageError, StoredRelation, Warehouse};
use crate::relation::Relation;

/// The catalog every session uses.
pub const CATALOG: &str = "datafusion";
/// The schema unqualified names resolve in.
pub const DEFAULT_SCHEMA: &str = "main";

/// A failure to open a session or register a relation in it.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Listing the warehouse failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The relation's metadata or path cannot describe a table.
    #[error("cannot read `{schema}.{name}`: {reason}")]
    Unreadable {
        /// Schema of the relation.
        schema: String,
        /// Name of the relation.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// DataFusion refused the registration.
    #[error("could not register `{schema}.{name}`: {source}")]
    Register {
        /// Schema of the relation.
        schema: String,
        /// Name of the relation.
        name: String,
        /// The cause.
        source: DataFusionError,
    },
}

/// A stored view whose SQL does not plan against the current warehouse, e.g. because
/// an upstream relation lost a column. It is left unregistered.
#[derive(Debug)]
pub struct BrokenView {
    /// Schema of the view.
    pub schema: String,
    /// Name of the view.
    pub name: String,
    /// Why planning its SQL failed.
    pub error: DataFusionError,
}

/// A session over the warehouse, and the views that could not be registered.
#[cfg(test)]
pub struct WarehouseSession {
    /// The DataFusion context with every relation registered.
    pub ctx: SessionContext,
    /// Views left out; a broken view does not stop the others from working.
    pub broken_views: Vec<BrokenView>,
}

/// Opens a DataFusion session with every published relation registered as
/// `datafusion.<schema>.<name>`, so `"main"."orders"`, `main.orders` and (default schema
/// `main`) `orders` all resolve. `information_schema` is enabled.
#[cfg(test)]
pub async fn open_session(warehouse: &Warehouse) -> Result<WarehouseSession, SessionError> {
    let ctx = new_context();
    let broken_views = register_relations(&ctx, published_relations(warehouse)?).await?;
    Ok(WarehouseSession { ctx, broken_views })
}

/// A DataFusion session with etlm's functions and no relation yet.
pub fn new_context() -> SessionContext {
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema(CATALOG, DEFAULT_SCHEMA)
        .with_extension(Arc::new(ViewReads::default()));
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(super::windows::WindowsOverSorts))
        .build();
    let ctx = SessionContext::new_with_state(state);
    super::functions::register(&ctx);
    ctx
}

/// Every published relation of `warehouse`, and those lent to it; an error when one's
/// metadata is corrupt.
pub fn published_relations(warehouse: &Warehouse) -> Result<Vec<StoredRelation>, SessionError> {
    let mut relations = warehouse.relations()?;
    // Relations lent by another warehouse (`--defer`) fill in the names this one lacks.
    let lent: Vec<_> = deferred::recorded(warehouse.root())
        .into_iter()
        .filter(|d| !relations.iter().any(|r| r.schema == d.schema && r.name == d.name))
        .collect();
    relations.extend(deferred::resolve(&lent)?);
    Ok(relations)
}

/// Registers `relations` (from [`published_relations`]) in `ctx`; returns the views that
/// no longer plan, which are left out.
pub async fn register_relations(
    ctx: &SessionContext,
    relations: Vec<StoredRelation>,
) -> Result<Vec<BrokenView>, SessionError> {
    let (views, tables): (Vec<_>, Vec<_>) = relations.into_iter().partition(|r| r.meta.kind == RelationKind::View);
    for table in &tables {
        register_table_dir(ctx, &table.schema, &table.name, &table.dir, &table.meta)?;
    }
    let views = views.iter().map(PendingView::from_relation).collect::<Result<_, _>>()?;
    create_views(ctx, views).await
}

/// Registers `relation` in `ctx` (a context from `open_session`), replacing any earlier
/// registration, e.g. right after `Warehouse::publish`. Views already registered over
/// it are re-planned so they read the new version; those that no longer plan are
/// unregistered and returned.
pub async fn register_relation(
    ctx: &SessionContext,
    relation: &StoredRelation,
) -> Result<Vec<BrokenView>, SessionError> {
    let (schema, name) = (relation.schema.as_str(), relation.name.as_str());
    match relation.meta.kind {
        RelationKind::Table => register_table_dir(ctx, schema, name, &relation.dir, &relation.meta)?,
        RelationKind::View => {
            let view = PendingView::from_relation(relation)?;
            ensure_schema(ctx, schema).map_err(|source| register_error(schema, name, source))?;
            deregister(ctx, schema, name)?;
            ctx.sql(&view.statement).await.map_err(|source| register_error(schema, name, source))?;
        }
    }
    rebind_dependents(ctx, schema, name).await
}

/// Registers staged data under its audit relation (`crate::relation::Relation::audit`)
/// so quality tests can read it before it is published: a table over the staging
/// directory, or a view of the new SQL.
pub async fn register_audit(
    ctx: &SessionContext,
    audit: &Relation,
    dir: &Path,
    meta: &RelationMeta,
) -> Result<(), SessionError> {
    let (schema, name) = (audit.schema.as_str(), audit.identifier.as_str());
    match (&meta.kind, &meta.sql) {
        (RelationKind::View, Some(sql)) => {
            ensure_schema(ctx, schema).map_err(|source| register_error(schema, name, source))?;
            deregister(ctx, schema, name)?;
            ctx.sql(&format!("CREATE VIEW {audit} AS {sql}\n"))
                .await
                .map_err(|source| register_error(schema, name, source))?;
            Ok(())
        }
        _ => register_table_dir(ctx, schema, name, dir, meta),
    }
}

/// Runs the view registered as `audit` once, writes its rows to the Arrow IPC file
/// `file`, and registers `audit` as a table over that file, so the queries that audit it
/// read the rows instead of running the view again. Returns the rows' schema, or `None`
/// (the view stays, the file is removed) when `audit` is not a view or its rows take
/// more than `max_bytes` in memory, counted batch by batch as they are written.
pub async fn keep_view_rows(
    ctx: &SessionContext,
    audit: &Relation,
    file: &Path,
    max_bytes: usize,
) -> Result<Option<SchemaRef>, SessionError> {
    use futures_util::StreamExt;
    let (schema, name) = (audit.schema.as_str(), audit.identifier.as_str());
    let fail = |source| register_error(schema, name, source);
    let io = |e: std::io::Error| fail(DataFusionError::IoError(e));
    let view = ctx.table_provider(TableReference::partial(schema, name)).await.map_err(fail)?;
    if view.table_type() != datafusion::logical_expr::TableType::View {
        return Ok(None);
    }
    let df = ctx.read_table(view).map_err(fail)?;
    let columns = Arc::new(df.schema().as_arrow().clone());
    let mut stream = df.execute_stream().await.map_err(fail)?;
    let mut writer = kept_rows::Writer::create(file, &columns).map_err(fail)?;
    let mut bytes = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(fail)?;
        bytes += batch.get_array_memory_size();
        if bytes > max_bytes {
            drop(writer);
            std::fs::remove_file(file).map_err(io)?;
            return Ok(None);
        }
        writer.write(&batch).map_err(fail)?;
    }
    writer.finish().map_err(fail)?;
    register_rows_file(ctx, schema, name, file, columns.clone()).await?;
    Ok(Some(columns))
}

/// Registers the rows [`keep_view_rows`] wrote to `file` as table `schema.name`,
/// replacing any registration; the views registered over it are re-planned to read them
/// (those that no longer plan are unregistered and returned).
pub async fn register_rows_file(
    ctx: &SessionContext,
    schema: &str,
    name: &str,
    file: &Path,
    columns: SchemaRef,
) -> Result<Vec<BrokenView>, SessionError> {
    register_provider(ctx, schema, name, Arc::new(kept_rows::KeptRowsTable::new(file.to_path_buf(), columns)))?;
    rebind_dependents(ctx, schema, name).await
}

/// Removes a registration made by `register_audit`.
pub fn deregister_audit(ctx: &SessionContext, audit: &Relation) -> Result<(), SessionError> {
    deregister(ctx, &audit.schema, &audit.identifier)
}

/// Registers the Parquet files under `dir`, laid out as `meta` describes, as table
/// `schema.name`, replacing any registration. The schema comes from `meta`, not from
/// the files, so a directory without Parquet files is an empty table. Also serves to
/// query a staging directory before it is published.
pub fn register_table_dir(
    ctx: &SessionContext,
    schema: &str,
    name: &str,
    dir: &Path,
    meta: &RelationMeta,
) -> Result<(), SessionError> {
    let unreadable = |reason: String| SessionError::Unreadable { schema: schema.into(), name: name.into(), reason };
    let mut file_fields = Vec::new();
    let mut partition_cols = Vec::new();
    for column in &meta.columns {
        let data_type = DataType::from_str(&column.data_type)
            .map_err(|e| unreadable(format!("column `{}` has type `{}`: {e}", column.name, column.data_type)))?;
        if meta.partition_by.contains(&column.name) {
            partition_cols.push((column.name.clone(), data_type));
        } else {
            file_fields.push(Field::new(&column.name, data_type, true));
        }
    }
    // Partition columns are read from directory names in `partition_by` order.
    partition_cols.sort_by_key(|(c, _)| meta.partition_by.iter().position(|p| p == c));
    if let Some(missing) = meta.partition_by.iter().find(|p| !partition_cols.iter().any(|(c, _)| c == *p)) {
        return Err(unreadable(format!("partition column `{missing}` is not among its columns")));
    }
    let dir = dir.to_str().ok_or_else(|| unreadable(format!("path `{}` is not valid UTF-8", dir.display())))?;

    let format = ParquetFormat::default().with_options(ctx.state().table_options().parquet.clone());
    let options =
        ListingOptions::new(Arc::new(format)).with_file_extension(".parquet").with_table_partition_cols(partition_cols);
    register_listing(ctx, schema, name, &format!("{}/", dir.trim_end_matches('/')), options, Schema::new(file_fields))
}

/// Registers the files in the folder `url` (ending in `/`), read with `options` and
/// holding `columns`, as table `schema.name`, replacing any registration.
fn register_listing(
    ctx: &SessionContext,
    schema: &str,
    name: &str,
    url: &str,
    options: ListingOptions,
    columns: impl Into<SchemaRef>,
) -> Result<(), SessionError> {
    let to_register = |source| register_error(schema, name, source);
    let url = ListingTableUrl::parse(url).map_err(to_register)?;
    let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(columns.into());
    let table = ListingTable::try_new(config).map_err(to_register)?;
    register_provider(ctx, schema, name, Arc::new(table))
}

/// Registers `table` as `schema.name`, replacing any registration.
fn register_provider(
    ctx: &SessionContext,
    schema: &str,
    name: &str,
    table: Arc<dyn datafusion::datasource::TableProvider>,
) -> Result<(), SessionError> {
    let to_register = |source| register_error(schema, name, source);
    ensure_schema(ctx, schema).map_err(to_register)?;
    deregister(ctx, schema, name)?;
    ctx.register_table(TableReference::partial(schema, name), table).map_err(to_register)?;
    Ok(())
}

/// A view to create: its name and the full `CREATE VIEW` statement.
struct PendingView {
    schema: String,
    name: String,
    statement: String,
}

impl PendingView {
    fn from_relation(relation: &StoredRelation) -> Result<PendingView, SessionError> {
        let sql = relation.meta.sql.as_deref().ok_or_else(|| SessionError::Unreadable {
            schema: relation.schema.clone(),
            name: relation.name.clone(),
            reason: "it is a view without `sql` in its metadata".into(),
        })?;
        let target = Relation::new(&relation.schema, &relation.name);
        Ok(PendingView {
            schema: relation.schema.clone(),
            name: relation.name.clone(),
            // The newline ends a trailing `--` comment in the stored SQL.
            statement: format!("CREATE VIEW {target} AS {sql}\n"),
        })
    }
}

/// Creates `views` in rounds, since a view can only be planned once the views it reads
/// exist; stops when a round makes no progress and returns what is left as broken.
async fn create_views(ctx: &SessionContext, mut pending: Vec<PendingView>) -> Result<Vec<BrokenView>, SessionError> {
    for view in &pending {
        ensure_schema(ctx, &view.schema).map_err(|source| register_error(&view.schema, &view.name, source))?;
    }
    loop {
        let before = pending.len();
        let mut failed = Vec::new();
        for view in pending {
            if let Err(error) = ctx.sql(&view.statement).await {
                failed.push((view, error));
            }
        }
        if failed.is_empty() || failed.len() == before {
            return Ok(failed
                .into_iter()
                .map(|(view, error)| BrokenView { schema: view.schema, name: view.name, error })
                .collect());
        }
        pending = failed.into_iter().map(|(view, _)| view).collect();
    }
}

/// Re-plans every registered view that reads `schema.name`, directly or through other
/// views: a DataFusion view binds the providers it read when it was created, so without
/// this it would keep reading the replaced version.
async fn rebind_dependents(ctx: &SessionContext, schema: &str, name: &str) -> Result<Vec<BrokenView>, SessionError> {
    let resolve = |reference: TableReference| reference.resolve(CATALOG, DEFAULT_SCHEMA);
    let changed = resolve(TableReference::partial(schema, name));
    let views = registered_views(ctx).await.map_err(|source| register_error(schema, name, source))?;

    let mut stale: HashSet<ResolvedTableReference> = HashSet::from([changed.clone()]);
    loop {
        let reached: Vec<_> = views
            .iter()
            .filter(|v| !stale.contains(&v.name) && v.reads.iter().any(|r| stale.contains(r)))
            .map(|v| v.name.clone())
            .collect();
        if reached.is_empty() {
            break;
        }
        stale.extend(reached);
    }

    let mut pending = Vec::new();
    for view in views.into_iter().filter(|v| v.name != changed && stale.contains(&v.name)) {
        let (view_schema, view_name) = (view.name.schema.to_string(), view.name.table.to_string());
        deregister(ctx, &view_schema, &view_name)?;
        pending.push(PendingView { schema: view_schema, name: view_name, statement: view.definition });
    }
    create_views(ctx, pending).await
}

/// The relations each view reads, by view name and definition, kept in the session's
/// config (`open_session` puts it there). Every publish looks for the views over the
/// relation it replaced; walking every view's plan each time made a run of many views
/// quadratic, so each plan is walked once.
#[derive(Default)]
struct ViewReads(
    std::sync::Mutex<std::collections::HashMap<ResolvedTableReference, (String, Vec<ResolvedTableReference>)>>,
);

impl ViewReads {
    fn get(&self, view: &ResolvedTableReference, definition: &str) -> Option<Vec<ResolvedTableReference>> {
        let map = self.0.lock().expect("view reads lock poisoned");
        map.get(view).filter(|(d, _)| d == definition).map(|(_, reads)| reads.clone())
    }

    fn put(&self, view: &ResolvedTableReference, definition: &str, reads: &[ResolvedTableReference]) {
        let mut map = self.0.lock().expect("view reads lock poisoned");
        map.insert(view.clone(), (definition.to_string(), reads.to_vec()));
    }
}

/// A view registered in the session, with the relations its plan scans.
struct RegisteredView {
    name: ResolvedTableReference,
    reads: Vec<ResolvedTableReference>,
    definition: String,
}

/// Every view in the default catalog that was created from SQL.
async fn registered_views(ctx: &SessionContext) -> Result<Vec<RegisteredView>, DataFusionError> {
    let cache = ctx.state_ref().read().config().get_extension::<ViewReads>();
    let mut views = Vec::new();
    let Some(catalog) = ctx.catalog(CATALOG) else { return Ok(views) };
    for schema_name in catalog.schema_names() {
        let Some(schema) = catalog.schema(&schema_name) else { continue };
        for table_name in schema.table_names() {
            let Some(provider) = schema.table(&table_name).await? else { continue };
            let Some(view) = provider.downcast_ref::<ViewTable>() else { continue };
            let Some(definition) = view.definition() else { continue };
            let name = TableReference::full(CATALOG, schema_name.as_str(), table_name.as_str())
                .resolve(CATALOG, DEFAULT_SCHEMA);
            let known = cache.as_ref().and_then(|c| c.get(&name, definition));
            let reads = match known {
                Some(reads) => reads,
                None => {
                    let mut reads = Vec::new();
                    view.logical_plan().apply_with_subqueries(|plan| {
                        if let LogicalPlan::TableScan(scan) = plan {
                            reads.push(scan.table_name.clone().resolve(CATALOG, DEFAULT_SCHEMA));
                        }
                        Ok(TreeNodeRecursion::Continue)
                    })?;
                    if let Some(c) = &cache {
                        c.put(&name, definition, &reads);
                    }
                    reads
                }
            };
            views.push(RegisteredView { name, reads, definition: definition.clone() });
        }
    }
    Ok(views)
}

/// Creates `schema` in the default catalog if it is missing. Models build concurrently,
/// so the look-up and the creation happen under one lock: two builds that each created
/// the schema would otherwise leave only the second's, and the first's tables vanish.
fn ensure_schema(ctx: &SessionContext, schema: &str) -> Result<(), DataFusionError> {
    static CREATING: Mutex<()> = Mutex::new(());
    let catalog = ctx.catalog(CATALOG).ok_or_else(|| {
        DataFusionError::Plan(format!("the session has no catalog `{CATALOG}`; open it with `new_context`"))
    })?;
    let _creating = CREATING.lock().unwrap_or_else(PoisonError::into_inner);
    if catalog.schema(schema).is_none() {
        catalog.register_schema(schema, Arc::new(MemorySchemaProvider::new()))?;
    }
    Ok(())
}

fn deregister(ctx: &SessionContext, schema: &str, name: &str) -> Result<(), SessionError> {
    ctx.deregister_table(TableReference::partial(schema, name))
        .map(drop)
        .map_err(|source| register_error(schema, name, source))
}

fn register_error(schema: &str, name: &str, source: DataFusionError) -> SessionError {
    SessionError::Register { schema: schema.into(), name: name.into(), source }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::display::array_value_to_string;

    use super::*;
    use crate::engine::ColumnMeta;
    use crate::engine::local::test_warehouse as warehouse;
    use crate::engine::local::write::write_query;
    use datafusion::logical_expr::TableType;

    /// Rows of `sql`, each as its values joined by `|`.
    async fn rows(ctx: &SessionContext, sql: &str) -> Vec<String> {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let mut out = Vec::new();
        for batch in &batches {
            for row in 0..batch.num_rows() {
                let cells: Vec<String> =
                    batch.columns().iter().map(|c| array_value_to_string(c, row).unwrap()).collect();
                out.push(cells.join("|"));
            }
        }
        out
    }

    /// Writes `sql` as a new version of `schema.name`, publishes and registers it.
    async fn publish_table(
        wh: &Warehouse,
        ctx: &SessionContext,
        schema: &str,
        name: &str,
        sql: &str,
        partition_by: &[&str],
    ) -> StoredRelation {
        let partition_by: Vec<String> = partition_by.iter().map(|p| p.to_string()).collect();
        let staging = wh.stage(schema, name).unwrap();
        let outcome = write_query(ctx, sql, &staging, &partition_by).await.unwrap();
        let relation = wh.publish(staging, RelationMeta::table(outcome.columns, partition_by), &|_| ()).unwrap();
        assert!(register_relation(ctx, &relation).await.unwrap().is_empty());
        relation
    }

    async fn publish_view(
        wh: &Warehouse,
        ctx: &SessionContext,
        schema: &str,
        name: &str,
        sql: &str,
    ) -> Vec<BrokenView> {
        let columns = ctx.sql(sql).await.unwrap().schema().fields().iter().map(|f| ColumnMeta::from_field(f)).collect();
        let relation = wh.publish(wh.stage(schema, name).unwrap(), RelationMeta::view(columns, sql), &|_| ()).unwrap();
        register_relation(ctx, &relation).await.unwrap()
    }

    #[tokio::test]
    async fn a_reader_opened_before_a_publish_keeps_reading_the_old_version() {
        let (_temp, wh) = warehouse();
        let writer = open_session(&wh).await.unwrap().ctx;
        publish_table(&wh, &writer, "main", "orders", "SELECT 1 AS id", &[]).await;
        let reader = open_session(&wh).await.unwrap().ctx;
        assert_eq!(rows(&reader, "SELECT id FROM main.orders").await, ["1"]);

        let second = publish_table(&wh, &writer, "main", "orders", "SELECT 2 AS id UNION ALL SELECT 3", &[]).await;
        let link = std::fs::read_link(wh.root().join("main/orders")).unwrap();
        assert!(link.ends_with(&second.version));
        assert_eq!(rows(&reader, "SELECT id FROM main.orders").await, ["1"]);
        let fresh = open_session(&wh).await.unwrap().ctx;
        assert_eq!(rows(&fresh, r#"SELECT id FROM "main"."orders" ORDER BY id"#).await, ["2", "3"]);
        assert_eq!(rows(&writer, "SELECT id FROM orders ORDER BY id").await, ["2", "3"]);
    }

    #[tokio::test]
    async fn a_date_partitioned_table_is_read_back_by_partition() {
        let (_temp, wh) = warehouse();
        let ctx = open_session(&wh).await.unwrap().ctx;
        let sql = "SELECT * FROM (VALUES (1, DATE '2024-01-01', 'a'), (2, DATE '2024-01-02', 'b'), \
                   (3, DATE '2024-01-02', 'c')) AS t(id, dt, note)";
        let events = publish_table(&wh, &ctx, "main", "events", sql, &["dt"]).await;
        let types: Vec<_> = events.meta.columns.iter().map(|c| format!("{} {}", c.name, c.data_type)).collect();
        assert_eq!(types, ["id Int64", "note Utf8", "dt Date32"]);
        assert_eq!(events.partitions().unwrap(), ["dt=2024-01-01", "dt=2024-01-02"]);
        for partition in events.partitions().unwrap() {
            let files = std::fs::read_dir(events.dir.join(partition)).unwrap().count();
            assert_eq!(files, 1);
        }

        let reader = open_session(&wh).await.unwrap().ctx;
        let query = "SELECT id, note, dt FROM main.events WHERE dt = DATE '2024-01-02' ORDER BY id";
        assert_eq!(rows(&reader, query).await, ["2|b|2024-01-02", "3|c|2024-01-02"]);
        let plan = rows(&reader, &format!("EXPLAIN {query}")).await.join("\n");
        assert!(plan.contains("dt=2024-01-02") && !plan.contains("dt=2024-01-01"), "{plan}");
    }

    #[tokio::test]
    async fn empty_results_are_queryable_tables() {
        let (_temp, wh) = warehouse();
        let ctx = open_session(&wh).await.unwrap().ctx;
        let flat = publish_table(&wh, &ctx, "main", "nothing", "SELECT 1 AS id, 'x' AS name WHERE false", &[]).await;
        assert!(flat.dir.join("part-0.parquet").is_file());
        let sql = "SELECT 1 AS id, DATE '2024-01-01' AS dt WHERE false";
        let parted = publish_table(&wh, &ctx, "main", "no_days", sql, &["dt"]).await;
        assert!(parted.partitions().unwrap().is_empty());

        let reader = open_session(&wh).await.unwrap().ctx;
        assert_eq!(rows(&reader, "SELECT count(*) FROM main.nothing").await, ["0"]);
        assert_eq!(rows(&reader, "SELECT count(*) FROM main.no_days WHERE dt = DATE '2024-01-01'").await, ["0"]);
        let columns = "SELECT table_name, column_name, data_type FROM information_schema.columns \
                       WHERE table_schema = 'main' ORDER BY table_name, ordinal_position";
        assert_eq!(
            rows(&reader, columns).await,
            ["no_days|id|Int64", "no_days|dt|Date32", "nothing|id|Int64", "nothing|name|Utf8"]
        );
    }

    #[tokio::test]
    async fn a_staged_views_rows_are_kept_for_its_audits_and_readers_up_to_a_size() {
        let (temp, wh) = warehouse();
        let ctx = open_session(&wh).await.unwrap().ctx;
        publish_table(&wh, &ctx, "main", "orders", "SELECT * FROM (VALUES (1), (2), (2)) AS t(id)", &[]).await;
        let sql = "SELECT id * 10 AS id FROM main.orders";
        let columns = ctx.sql(sql).await.unwrap().schema().fields().iter().map(|f| ColumnMeta::from_field(f)).collect();
        let audit = Relation::new("main", "v").audit();
        register_audit(&ctx, &audit, temp.path(), &RelationMeta::view(columns, sql)).await.unwrap();
        let query = format!("SELECT id FROM {audit} ORDER BY id");
        let table_type = |ctx: &SessionContext, schema: &str, name: &str| {
            let (ctx, reference) = (ctx.clone(), TableReference::partial(schema.to_string(), name.to_string()));
            async move { ctx.table_provider(reference).await.unwrap().table_type() }
        };
        let file = temp.path().join("v.arrow");
        assert!(keep_view_rows(&ctx, &audit, &file, 8).await.unwrap().is_none(), "more than 8 bytes: the view stays");
        assert!(!file.exists(), "and the partial file is gone");
        assert_eq!(table_type(&ctx, &audit.schema, &audit.identifier).await, TableType::View);
        let kept = keep_view_rows(&ctx, &audit, &file, 1 << 20).await.unwrap().expect("kept");
        assert_eq!(table_type(&ctx, &audit.schema, &audit.identifier).await, TableType::Base, "rows in a file");
        assert_eq!(rows(&ctx, &query).await, ["10", "20", "20"]);
        assert!(keep_view_rows(&ctx, &audit, &file, 1 << 20).await.unwrap().is_none(), "a table is not kept again");

        // Registered under the published name, later views read the kept rows.
        ctx.sql("CREATE VIEW main.w AS SELECT id + 1 AS id FROM main.v_rows").await.unwrap_err();
        assert!(register_rows_file(&ctx, "main", "v_rows", &file, kept).await.unwrap().is_empty());
        ctx.sql("CREATE VIEW main.w AS SELECT id + 1 AS id FROM main.v_rows").await.unwrap();
        assert_eq!(rows(&ctx, "SELECT id FROM main.w ORDER BY id").await, ["11", "21", "21"]);
        deregister_audit(&ctx, &audit).unwrap();
        assert!(ctx.sql(&query).await.is_err(), "publish and discard take the audit name away");
    }

    #[tokio::test]
    async fn views_over_views_register_after_reopen() {
        let (_temp, wh) = warehouse();
        let ctx = open_session(&wh).await.unwrap().ctx;
        let orders = "SELECT * FROM (VALUES (1, 10), (2, 20), (3, 30)) AS t(id, amount)";
        publish_table(&wh, &ctx, "main", "orders", orders, &[]).await;
        // `a_top` sorts before the view it reads, so registration needs a second round.
        publish_view(&wh, &ctx, "reporting", "z_big", "SELECT id, amount FROM orders WHERE amount > 15").await;
        let top = "SELECT max(amount) AS biggest FROM reporting.z_big -- trailing comment";
        publish_view(&wh, &ctx, "main", "a_top", top).await;

        let reopened = open_session(&wh).await.unwrap();
        assert!(reopened.broken_views.is_empty(), "{:?}", reopened.broken_views);
        assert_eq!(rows(&reopened.ctx, "SELECT biggest FROM a_top").await, ["30"]);
        assert_eq!(rows(&reopened.ctx, "SELECT count(*) FROM reporting.z_big").await, ["2"]);
    }

    #[tokio::test]
    async fn republishing_a_table_rebinds_the_views_over_it() {
        let (_temp, wh) = warehouse();
        let ctx = open_session(&wh).await.unwrap().ctx;
        publish_table(&wh, &ctx, "main", "orders", "SELECT 1 AS id", &[]).await;
        publish_view(&wh, &ctx, "main", "ids", "SELECT id FROM main.orders").await;
        publish_view(&wh, &ctx, "main", "id_count", "SELECT count(*) AS n FROM main.ids").await;
        assert_eq!(rows(&ctx, "SELECT n FROM main.id_count").await, ["1"]);

        publish_table(&wh, &ctx, "main", "orders", "SELECT 1 AS id UNION ALL SELECT 2", &[]).await;
        assert_eq!(rows(&ctx, "SELECT n FROM main.id_count").await, ["2"]);
        assert_eq!(rows(&ctx, "SELECT count(*) FROM main.ids").await, ["2"]);
    }

    #[tokio::test]
    async fn a_view_that_no_longer_plans_is_reported_not_fatal() {
        let (_temp, wh) = warehouse();
        let ctx = open_session(&wh).await.unwrap().ctx;
        publish_table(&wh, &ctx, "main", "orders", "SELECT 1 AS id, 5 AS amount", &[]).await;
        publish_view(&wh, &ctx, "main", "amounts", "SELECT amount FROM main.orders").await;

        let staging = wh.stage("main", "orders").unwrap();
        let outcome = write_query(&ctx, "SELECT 1 AS id", &staging, &[]).await.unwrap();
        let orders = wh.publish(staging, RelationMeta::table(outcome.columns, vec![]), &|_| ()).unwrap();
        let broken = register_relation(&ctx, &orders).await.unwrap();
        assert_eq!(broken.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["amounts"]);

        let reopened = open_session(&wh).await.unwrap();
        assert_eq!(reopened.broken_views.len(), 1);
        assert!(reopened.broken_views[0].error.to_string().contains("amount"), "{}", reopened.broken_views[0].error);
        assert_eq!(rows(&reopened.ctx, "SELECT id FROM orders").await, ["1"]);
    }

    /// Builds running on several threads each register a table in a schema none of them
    /// has created yet (the incremental delta schema); every table must survive.
    #[tokio::test]
    async fn tables_registered_at_once_in_a_new_schema_are_all_kept() {
        let (_temp, wh) = warehouse();
        let ctx = open_session(&wh).await.unwrap().ctx;
        for round in 0..200 {
            let schema = format!("fresh_{round}");
            let start = std::sync::Barrier::new(8);
            std::thread::scope(|threads| {
                for t in 0..8 {
                    let (ctx, schema, start) = (&ctx, &schema, &start);
                    threads.spawn(move || {
                        start.wait();
                        ensure_schema(ctx, schema).unwrap();
                        let table = Arc::new(datafusion::datasource::empty::EmptyTable::new(Arc::new(Schema::empty())));
                        ctx.register_table(TableReference::partial(schema.as_str(), format!("t{t}")), table).unwrap();
                    });
                }
            });
            for t in 0..8 {
                assert!(
                    ctx.table_exist(TableReference::partial(schema.as_str(), format!("t{t}"))).unwrap(),
                    "{schema}.t{t}"
                );
            }
        }
    }
}
