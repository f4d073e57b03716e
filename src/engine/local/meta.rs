//! `_etlm.json`: what a version directory holds, written once at publish.

use chrono::{SecondsFormat, Utc};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};

use crate::engine::ColumnMeta;

/// The metadata file inside every version directory.
pub const META_FILE: &str = "_etlm.json";

/// Whether a relation holds data (Parquet files) or is stored SQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelationKind {
    /// Parquet files in the version directory.
    Table,
    /// Stored SQL, registered as a view when a session opens.
    View,
}

/// The content of `_etlm.json`.
///
/// `columns` is the full schema in the order a `SELECT *` returns it: the columns stored
/// in the files first, then the `partition_by` columns, which live only in directory
/// names (`dt=2024-01-01/`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationMeta {
    /// Table or view.
    pub kind: RelationKind,
    /// Every column, file columns first, then partition columns.
    pub columns: Vec<ColumnMeta>,
    /// Hive partition columns, outermost directory level first.
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// The view's `SELECT`, for views only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// RFC 3339 UTC time the metadata was made.
    pub created_at: String,
}

impl RelationMeta {
    /// Metadata for a table with these columns (as returned by `write_query`).
    pub fn table(columns: Vec<ColumnMeta>, partition_by: Vec<String>) -> RelationMeta {
        RelationMeta { kind: RelationKind::Table, columns, partition_by, sql: None, created_at: now() }
    }

    /// Metadata for a view defined by `sql` (a `SELECT`), returning `columns`.
    pub fn view(columns: Vec<ColumnMeta>, sql: impl Into<String>) -> RelationMeta {
        RelationMeta {
            kind: RelationKind::View,
            columns,
            partition_by: Vec::new(),
            sql: Some(sql.into()),
            created_at: now(),
        }
    }
}

/// The columns of `schema` in table order: file columns, then `partition_by` in its order.
///
/// Partition columns come back from directory names, so string flavours are recorded
/// as plain `Utf8`.
pub fn table_columns(schema: &Schema, partition_by: &[String]) -> Vec<ColumnMeta> {
    let is_partition = |f: &Field| partition_by.iter().any(|p| p == f.name());
    let files = schema.fields().iter().filter(|f| !is_partition(f)).map(|f| ColumnMeta::from_field(f));
    let partitions = partition_by.iter().filter_map(|p| schema.field_with_name(p).ok()).map(|f| {
        let data_type = match f.data_type() {
            DataType::Utf8View | DataType::LargeUtf8 | DataType::Dictionary(..) => DataType::Utf8,
            other => other.clone(),
        };
        ColumnMeta { name: f.name().clone(), data_type: data_type.to_string() }
    });
    files.chain(partitions).collect()
}

/// Now, as RFC 3339 UTC with seconds.
pub(crate) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}
