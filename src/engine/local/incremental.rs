//! Incremental tables on the warehouse: the model's new rows (the *delta*) are written to
//! a staging directory of their own first, checked, and then combined with the current
//! version into the new version's staging directory:
//!
//! - `append`: every current file is hard-linked, the delta's files are moved in.
//! - `insert_overwrite`: current partitions that the delta does not touch are
//!   hard-linked, the delta's partitions are moved in (without `partition_by`, the delta
//!   replaces the table).
//! - `merge`, `delete+insert`: current rows whose `unique_key` is not in the delta, plus
//!   the delta's rows (for `merge` with `merge_update_columns`/`merge_exclude_columns`,
//!   matched rows keep their current value in the columns not updated), written anew.
//!
//! Nothing touches the published version: the result is a staging directory like any
//! other, audited and published by the caller. `on_schema_change` decides the new
//! version's columns; files that lack a column read it as NULL.

use std::collections::BTreeSet;

use datafusion::prelude::SessionContext;

use super::meta::{ColumnMeta, RelationMeta};
use super::session::{SessionError, register_table_dir};
use super::storage::{Staging, StorageError, StoredRelation};
use super::write::{WriteError, WriteOutcome, write_query};
use crate::project::{IncrementalStrategy, OnSchemaChange};
use crate::relation::{Relation, quote_ident};

/// How an incremental model combines its new rows with the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncrementalSpec {
    pub strategy: IncrementalStrategy,
    pub unique_key: Vec<String>,
    pub partition_by: Vec<String>,
    pub on_schema_change: OnSchemaChange,
    /// For `merge`: the columns a matched row takes from the delta (`None`: all)...
    pub update_columns: Option<Vec<String>>,
    /// ...except these (`merge_exclude_columns`).
    pub exclude_columns: Vec<String>,
    /// For a batch of a windowed model: the rows of this window are replaced, whatever
    /// the strategy.
    pub window: Option<Window>,
}

/// A batch's window: rows whose `event_time` is in [start, end) belong to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub event_time: String,
    pub start: chrono::NaiveDateTime,
    pub end: chrono::NaiveDateTime,
}

/// Why an incremental build could not be combined.
#[derive(Debug, thiserror::Error)]
pub enum IncrementalError {
    #[error("`unique_key` column `{column}` is NULL in a new row; every new row needs a key")]
    NullKey { column: String },
    #[error("`unique_key` ({key}) is duplicated in the new rows, e.g. {sample}; merge would duplicate it")]
    DuplicateKey { key: String, sample: String },
    #[error("`{strategy}` needs a `unique_key`")]
    MissingKey { strategy: &'static str },
    #[error(
        "the columns changed and `on_schema_change` is `fail`: added {added}, removed {removed}; \
         run with --full-refresh or choose append_new_columns or sync_all_columns"
    )]
    SchemaChanged { added: String, removed: String },
    #[error("the partition columns changed from ({old}) to ({new}); run with --full-refresh")]
    PartitionsChanged { old: String, new: String },
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
) -> Result<RelationMeta, IncrementalError> {
    let old_partitions = &current.meta.partition_by;
    if *old_partitions != spec.partition_by {
        return Err(IncrementalError::PartitionsChanged {
            old: old_partitions.join(", "),
            new: spec.partition_by.join(", "),
        });
    }
    let columns = target_columns(&current.meta.columns, &delta_out.columns, spec.on_schema_change)?;
    let meta = RelationMeta::table(columns.clone(), spec.partition_by.clone());
    let delta_meta = RelationMeta::table(delta_out.columns.clone(), spec.partition_by.clone());
    register_table_dir(ctx, &delta_name.schema, &delta_name.identifier, delta.dir(), &delta_meta)?;
    let result = async {
        if let Some(window) = &spec.window {
            let current_name = Relation::new(&current.schema, &current.name);
            return replace_window(
                ctx,
                current,
                &current_name,
                delta_name,
                &columns,
                &delta_out.columns,
                staging,
                spec,
                window,
            )
            .await;
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
                if spec.unique_key.is_empty() {
                    let strategy = if spec.strategy == IncrementalStrategy::Merge { "merge" } else { "delete+insert" };
                    return Err(IncrementalError::MissingKey { strategy });
                }
                check_keys(ctx, delta_name, &spec.unique_key).await?;
                let current_name = Relation::new(&current.schema, &current.name);
                let sql =
                    merge_sql(&current_name, delta_name, &columns, &current.meta.columns, &delta_out.columns, spec);
                write_query(ctx, &sql, staging, &spec.partition_by).await?;
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
#[allow(clippy::too_many_arguments)]
async fn replace_window(
    ctx: &SessionContext,
    current: &StoredRelation,
    current_name: &Relation,
    delta_name: &Relation,
    columns: &[ColumnMeta],
    delta_columns: &[ColumnMeta],
    staging: &Staging,
    spec: &IncrementalSpec,
    window: &Window,
) -> Result<(), IncrementalError> {
    let mut touched = Vec::new();
    let partition_filter = match spec.partition_by.first() {
        Some(column) => {
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
    let ev = quote_ident(&window.event_time);
    let (start, end) = (crate::compile::window::timestamp(window.start), crate::compile::window::timestamp(window.end));
    let in_current = |c: &str| current.meta.columns.iter().any(|d| d.name == c);
    let in_delta = |c: &str| delta_columns.iter().any(|d| d.name == c);
    let kept = select_list("o", columns, in_current);
    let new = select_list("d", columns, in_delta);
    let sql = format!(
        "select {kept} from {current_name} o where {partition_filter} \
         and not ({ev} >= cast('{start}' as timestamp) and {ev} < cast('{end}' as timestamp))\n\
         union all\nselect {new} from {delta_name} d"
    );
    write_query(ctx, &sql, staging, &spec.partition_by).await?;
    Ok(())
}

/// True if a partition (`dt=2024-01-03`) may hold rows of the window: its value as a
/// date or time starts a span that meets the window. Values that are not times may.
fn partition_overlaps(partition: &str, window: &Window) -> bool {
    let first = partition.split('/').next().unwrap_or_default();
    let value = first.split_once('=').map_or("", |(_, v)| v).replace("%3A", ":").replace("%20", " ");
    match crate::compile::window::parse_time(&value) {
        Some(t) if value.len() == 10 => t < window.end && t + chrono::Duration::days(1) > window.start,
        Some(t) => t >= window.start && t < window.end,
        None => true,
    }
}

/// `alias."c" as "c"` for each column, or `null as "c"` where `present` says the
/// relation lacks it.
fn select_list(alias: &str, columns: &[ColumnMeta], present: impl Fn(&str) -> bool) -> String {
    columns.iter().map(|c| column_expr(alias, &c.name, present(&c.name))).collect::<Vec<_>>().join(", ")
}

fn column_expr(alias: &str, name: &str, present: bool) -> String {
    let q = quote_ident(name);
    if present { format!("{alias}.{q} as {q}") } else { format!("null as {q}") }
}

/// The new version's columns under `on_schema_change`.
fn target_columns(
    old: &[ColumnMeta],
    new: &[ColumnMeta],
    policy: OnSchemaChange,
) -> Result<Vec<ColumnMeta>, IncrementalError> {
    let has = |list: &[ColumnMeta], name: &str| list.iter().any(|c| c.name == name);
    let added: Vec<&str> = new.iter().filter(|c| !has(old, &c.name)).map(|c| c.name.as_str()).collect();
    let removed: Vec<&str> = old.iter().filter(|c| !has(new, &c.name)).map(|c| c.name.as_str()).collect();
    Ok(match policy {
        OnSchemaChange::Ignore => old.to_vec(),
        OnSchemaChange::Fail if added.is_empty() && removed.is_empty() => old.to_vec(),
        OnSchemaChange::Fail => {
            let list = |l: &[&str]| if l.is_empty() { "none".to_string() } else { format!("`{}`", l.join("`, `")) };
            return Err(IncrementalError::SchemaChanged { added: list(&added), removed: list(&removed) });
        }
        OnSchemaChange::AppendNewColumns => {
            old.iter().cloned().chain(new.iter().filter(|c| !has(old, &c.name)).cloned()).collect()
        }
        OnSchemaChange::SyncAllColumns => new.to_vec(),
    })
}

/// Fails on a NULL or repeated key among the delta's rows, naming one.
async fn check_keys(ctx: &SessionContext, delta: &Relation, keys: &[String]) -> Result<(), IncrementalError> {
    let cols: Vec<String> = keys.iter().map(|k| quote_ident(k)).collect();
    let nulls = cols.iter().map(|c| format!("{c} is null")).collect::<Vec<_>>().join(" or ");
    for (key, col) in keys.iter().zip(&cols) {
        let sql = format!("select 1 from {delta} where {col} is null limit 1");
        if ctx.sql(&sql).await?.count().await? > 0 {
            return Err(IncrementalError::NullKey { column: key.clone() });
        }
    }
    let list = cols.join(", ");
    let sql = format!(
        "select concat_ws(', ', {}) as sample from {delta} where not ({nulls}) group by {list} having count(*) > 1 limit 1",
        cols.iter().map(|c| format!("cast({c} as varchar)")).collect::<Vec<_>>().join(", ")
    );
    let batches = ctx.sql(&sql).await?.collect().await?;
    if let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) {
        let sample =
            datafusion::arrow::util::display::array_value_to_string(batch.column(0), 0).unwrap_or_else(|_| "?".into());
        return Err(IncrementalError::DuplicateKey { key: keys.join(", "), sample: format!("({sample})") });
    }
    Ok(())
}

/// The rows of the merged table: current rows whose key the delta lacks, then the
/// delta's rows; `merge` with limited update columns keeps the current value of the
/// other columns in matched rows.
fn merge_sql(
    current: &Relation,
    delta: &Relation,
    columns: &[ColumnMeta],
    current_columns: &[ColumnMeta],
    delta_columns: &[ColumnMeta],
    spec: &IncrementalSpec,
) -> String {
    let on = spec.unique_key.iter().map(|k| format!("o.{0} = d.{0}", quote_ident(k))).collect::<Vec<_>>().join(" and ");
    let in_delta = |c: &str| delta_columns.iter().any(|d| d.name == c);
    let in_current = |c: &str| current_columns.iter().any(|d| d.name == c);
    let kept = select_list("o", columns, in_current);
    let new = select_list("d", columns, in_delta);
    let kept_sql = format!("select {kept} from {current} o left anti join {delta} d on {on}");
    let limited = spec.strategy == IncrementalStrategy::Merge
        && (spec.update_columns.is_some() || !spec.exclude_columns.is_empty());
    if !limited {
        return format!("{kept_sql}\nunion all\nselect {new} from {delta} d");
    }
    let takes_new = |c: &str| {
        spec.unique_key.iter().any(|k| k == c)
            || (spec.update_columns.as_ref().is_none_or(|u| u.iter().any(|x| x == c))
                && !spec.exclude_columns.iter().any(|x| x == c))
    };
    let matched: Vec<String> = columns
        .iter()
        .map(|c| match takes_new(&c.name) && in_delta(&c.name) {
            true => column_expr("d", &c.name, true),
            false => column_expr("o", &c.name, in_current(&c.name)),
        })
        .collect();
    format!(
        "{kept_sql}\nunion all\nselect {} from {current} o join {delta} d on {on}\nunion all\n\
         select {new} from {delta} d left anti join {current} o on {on}",
        matched.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<ColumnMeta> {
        names.iter().map(|n| ColumnMeta { name: n.to_string(), data_type: "Int64".into() }).collect()
    }

    fn names(columns: &[ColumnMeta]) -> Vec<&str> {
        columns.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn on_schema_change_decides_the_columns() {
        let (old, new) = (cols(&["id", "a", "b"]), cols(&["id", "b", "c"]));
        assert_eq!(names(&target_columns(&old, &new, OnSchemaChange::Ignore).unwrap()), ["id", "a", "b"]);
        assert_eq!(
            names(&target_columns(&old, &new, OnSchemaChange::AppendNewColumns).unwrap()),
            ["id", "a", "b", "c"]
        );
        assert_eq!(names(&target_columns(&old, &new, OnSchemaChange::SyncAllColumns).unwrap()), ["id", "b", "c"]);
        let err = target_columns(&old, &new, OnSchemaChange::Fail).unwrap_err().to_string();
        assert!(err.contains("added `c`, removed `a`"), "{err}");
        assert!(target_columns(&old, &old, OnSchemaChange::Fail).is_ok());
    }
}
