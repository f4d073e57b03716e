//! Snapshots on the warehouse: the first run writes the table like any other; a later
//! run writes the changes (see `engine::snapshot`) to a staging directory of their own,
//! then the whole new version (closed versions, kept ones, inserts) to the version's
//! staging directory, audited and published by the caller like a table.

use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;

use super::meta::RelationMeta;
use super::session::{deregister_audit, register_table_dir};
use super::storage::{Staging, StoredRelation};
use super::write::write_query;
use crate::engine::EngineError;
use crate::engine::snapshot::{Snapshot, SnapshotError, Spelling};
use crate::project::snapshot::SnapshotConfig;
use crate::relation::Relation;

/// DataFusion's snapshot time: `now()` without its time zone (UTC).
const NOW: &str = "cast(now() as timestamp)";

/// Writes the snapshot's new version into `staging` (the changes go through `changes`,
/// registered as `changes_name` meanwhile). Returns the version's metadata and the
/// number of versions opened or closed (all rows on a first run).
pub async fn stage_snapshot(
    ctx: &SessionContext,
    current: Option<&StoredRelation>,
    sql: &str,
    config: &SnapshotConfig,
    changes: &Staging,
    staging: &Staging,
    changes_name: &Relation,
) -> Result<(RelationMeta, u64), EngineError> {
    let source = ctx.sql(sql).await?;
    let fields = source.schema().fields();
    let source_columns: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
    let mut spelling = spelling(ctx, sql, config).await?;
    // Parquet keeps a column of NULLs as type Null: name the type.
    spelling.typed_nulls =
        fields.iter().map(|f| (f.name().clone(), format!("arrow_cast(null, '{}')", f.data_type()))).collect();
    let snapshot = Snapshot { config, sql, source_columns: &source_columns, spelling: &spelling };
    check_keys(ctx, &snapshot).await?;
    let Some(current) = current else {
        let out = write_query(ctx, &snapshot.first_build(), staging, &[]).await?;
        return Ok((RelationMeta::table(out.columns, Vec::new()), out.rows));
    };
    let target = Relation::new(&current.schema, &current.name);
    let target_columns: Vec<String> = current.meta.columns.iter().map(|c| c.name.clone()).collect();
    snapshot.check_target(&target_columns)?;
    let changed = write_query(ctx, &snapshot.changes(&target, &target_columns), changes, &[]).await?;
    let change_columns: Vec<String> = changed.columns.iter().map(|c| c.name.clone()).collect();
    let change_meta = RelationMeta::table(changed.columns.clone(), Vec::new());
    register_table_dir(ctx, &changes_name.schema, &changes_name.identifier, changes.dir(), &change_meta)?;
    let written =
        write_query(ctx, &snapshot.new_version(&target, &target_columns, changes_name, &change_columns), staging, &[])
            .await;
    deregister_audit(ctx, changes_name)?;
    let out = written?;
    Ok((RelationMeta::table(out.columns, Vec::new()), changed.rows))
}

/// How DataFusion spells the snapshot time, and the `dbt_scd_id` arguments as text: a
/// timestamp as Postgres prints it (`2024-01-01 10:00:00`), so the ids are dbt's.
async fn spelling(ctx: &SessionContext, sql: &str, config: &SnapshotConfig) -> Result<Spelling, EngineError> {
    let args = Snapshot::scd_args(config, NOW);
    let probe = format!("select {} from (\n{sql}\n) dbt_snapshot_source", args.join(", "));
    let df = ctx.sql(&probe).await?;
    let scd_texts = args.iter().zip(df.schema().fields()).map(|(a, f)| as_text(a, f.data_type())).collect();
    let now_text = as_text(NOW, &DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Nanosecond, None));
    Ok(Spelling { now: NOW.into(), scd_texts, now_text, typed_nulls: Default::default() })
}

fn as_text(expr: &str, data_type: &DataType) -> String {
    match data_type {
        DataType::Timestamp(_, _) => format!("to_char({expr}, '%Y-%m-%d %H:%M:%S%.f')"),
        _ => Spelling::cast(expr),
    }
}

/// Fails when the key repeats in the query, naming up to three keys.
async fn check_keys(ctx: &SessionContext, snapshot: &Snapshot<'_>) -> Result<(), EngineError> {
    let batches = ctx.sql(&snapshot.duplicate_keys()).await?.collect().await?;
    let mut samples = Vec::new();
    for batch in &batches {
        for i in 0..batch.num_rows() {
            let text = datafusion::arrow::util::display::array_value_to_string(batch.column(0), i)?;
            samples.push(format!("({text})"));
        }
    }
    if samples.is_empty() {
        return Ok(());
    }
    Err(SnapshotError::DuplicateKey { key: snapshot.config.unique_key.join(", "), sample: samples.join(", ") }.into())
}
