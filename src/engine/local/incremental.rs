//! Incremental tables on the warehouse: the model's new rows (the *delta*) are written to
//! a staging directory of their own first, checked, and then combined with the current
//! version (see `engine::incremental` for the rows each strategy keeps) into the new
//! version's staging directory:
//!
//! - `append`: every current file is hard-linked, the delta's files are moved in.
//! - `insert_overwrite`: current partitions that the delta does not touch are
//!   hard-linked, the delta's partitions are moved in.
//! - `merge`, `delete+insert`: the merged rows, written anew.
//! - a batch: partitions the window cannot touch are hard-linked, the others rewritten.
//!
//! Nothing touches the published version: the result is a staging directory like any
//! other, audited and published by the caller. Files that lack a column read it as NULL.

use std::collections::BTreeSet;

use datafusion::prelude::SessionContext;

use super::meta::RelationMeta;
use super::session::{SessionError, register_table_dir};
use super::storage::{Staging, StorageError, StoredRelation};
use super::write::{WriteError, WriteOutcome, write_query};
use crate::engine::incremental::{
    Combine, IncrementalError, IncrementalSpec, Window, duplicate_key_sql, null_key_sql, target_columns,
};
use crate::project::IncrementalStrategy;
use crate::relation::{Relation, quote_ident};

/// Why an incremental build could not be combined on the warehouse.
#[derive(Debug, thiserror::Error)]
pub enum CombineError {
    #[error(transparent)]
    Incremental(#[from] IncrementalError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

/// Combines `delta` (the model's new rows, already written, registered by nobody) with
/// `current` into `staging`. `delta_name` is a free name to register the delta under
/// while its keys are checked and it is merged. Returns the new version's metadata.
pub async fn combine(
    ctx: &SessionContext,
    current: &StoredRelation,
    delta: &Staging,
    delta_out: &WriteOutcome,
    staging: &Staging,
    spec: &IncrementalSpec,
    delta_name: &Relation,
) -> Result<RelationMeta, CombineError> {
    let old_partitions = &current.meta.partition_by;
    if *old_partitions != spec.partition_by {
        let (old, new) = (old_partitions.join(", "), spec.partition_by.join(", "));
        return Err(IncrementalError::PartitionsChanged { old, new }.into());
    }
    let columns = target_columns(&current.meta.columns, &delta_out.columns, spec.on_schema_change)?;
    let meta = RelationMeta::table(columns.clone(), spec.partition_by.clone());
    let delta_meta = RelationMeta::table(delta_out.columns.clone(), spec.partition_by.clone());
    register_table_dir(ctx, &delta_name.schema, &delta_name.identifier, delta.dir(), &delta_meta)?;
    let current_name = Relation::new(&current.schema, &current.name);
    let rows = Combine {
        current: &current_name,
        delta: delta_name,
        columns: &columns,
        current_columns: &current.meta.columns,
        delta_columns: &delta_out.columns,
        spec,
        cast_to_target: false,
    };
    let result = async {
        if let Some(window) = &spec.window {
            return replace_window(ctx, current, &rows, staging, window).await;
        }
        match spec.strategy {
            IncrementalStrategy::Append => {
                staging.link_all(current)?;
                staging.adopt(delta, &delta.version_name())?;
            }
            IncrementalStrategy::InsertOverwrite => {
                if !spec.partition_by.is_empty() {
                    let replaced: BTreeSet<String> = delta.partitions(&spec.partition_by)?.into_iter().collect();
                    for partition in current.partitions()? {
                        if !replaced.contains(&partition) {
                            staging.link_partition(current, &partition)?;
                        }
                    }
                }
                staging.adopt(delta, &delta.version_name())?;
            }
            IncrementalStrategy::Merge | IncrementalStrategy::DeleteInsert => {
                check_keys(ctx, delta_name, &spec.unique_key).await?;
                write_query(ctx, &rows.merged(), staging, &spec.partition_by).await?;
            }
        }
        Ok(())
    }
    .await;
    super::session::deregister_audit(ctx, delta_name)?;
    result.map(|()| meta)
}

/// A batch: current partitions the window cannot touch are hard-linked; in the others,
/// the rows outside the window are kept and the window's rows are the delta's, so a
/// batch with no rows empties its window.
async fn replace_window(
    ctx: &SessionContext,
    current: &StoredRelation,
    rows: &Combine<'_>,
    staging: &Staging,
    window: &Window,
) -> Result<(), CombineError> {
    let partition_by = &rows.spec.partition_by;
    let partition_filter = match partition_by.first() {
        Some(column) => {
            let mut touched = Vec::new();
            for partition in current.partitions()? {
                if partition_overlaps(&partition, window) {
                    touched.push(partition);
                } else {
                    staging.link_partition(current, &partition)?;
                }
            }
            let values: Vec<String> = touched
                .iter()
                .map(|p| {
                    let first = p.split('/').next().unwrap_or_default();
                    let value = first.split_once('=').map_or("", |(_, v)| v);
                    format!("'{}'", value.replace('\'', "''"))
                })
                .collect();
            if values.is_empty() {
                "false".to_string()
            } else {
                format!("cast({} as varchar) in ({})", quote_ident(column), values.join(", "))
            }
        }
        None => "true".to_string(),
    };
    write_query(ctx, &rows.windowed(window, &partition_filter), staging, partition_by).await?;
    Ok(())
}

/// True if a partition (`dt=2024-01-03`) may hold rows of the window: its value as a
/// date or time starts a span that meets the window. Values that are not times may.
fn partition_overlaps(partition: &str, window: &Window) -> bool {
    let first = partition.split('/').next().unwrap_or_default();
    let value = first.split_once('=').map_or("", |(_, v)| v).replace("%3A", ":").replace("%20", " ");
    match crate::window::parse_time(&value) {
        Some(t) if value.len() == 10 => t < window.end && t + chrono::Duration::days(1) > window.start,
        Some(t) => t >= window.start && t < window.end,
        None => true,
    }
}

/// Fails on a NULL or repeated key among the delta's rows, naming one.
async fn check_keys(ctx: &SessionContext, delta: &Relation, keys: &[String]) -> Result<(), CombineError> {
    for key in keys {
        if ctx.sql(&null_key_sql(delta, key)).await?.count().await? > 0 {
            return Err(IncrementalError::NullKey { column: key.clone() }.into());
        }
    }
    let batches = ctx.sql(&duplicate_key_sql(delta, keys)).await?.collect().await?;
    if let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) {
        let sample =
            datafusion::arrow::util::display::array_value_to_string(batch.column(0), 0).unwrap_or_else(|_| "?".into());
        return Err(IncrementalError::DuplicateKey { key: keys.join(", "), sample: format!("({sample})") }.into());
    }
    Ok(())
}
