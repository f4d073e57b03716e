//! Schemas of the nodes that have no SQL: seeds (CSV header and inferred types, read the
//! same way `etlm seed` loads them) and sources (columns declared in YAML); and the meta
//! columns a snapshot's table has beside its query's.

use std::path::Path;

use super::cache::Cache;
use super::{ColumnLineage, NodeLineage, Schema};
use crate::node::Node;
use crate::sql::SqlDialect;
use crate::sql::types::Type;

/// A seed's columns and inferred types; unknown when the CSV cannot be read (`etlm seed`
/// reports why). Types need every value read: what an earlier compile found for the same
/// bytes is taken from `cache`, and what is found now kept in `next`.
pub(super) fn seed(root: &Path, node: &Node, dialect: SqlDialect, cache: &Cache, next: &mut Cache) -> Schema {
    let path = root.join(&node.path);
    let Ok(bytes) = std::fs::read(&path) else { return Schema::default() };
    let how = format!("{:?} {}", node.config.column_types, node.config.quote_columns);
    let key = super::cache::seed_key(&bytes, &how);
    let columns = match cache.seed(&key) {
        Some(columns) => columns,
        None => match crate::seed_csv::read_seed_csv(&path, &node.config.column_types, node.config.quote_columns) {
            Ok(batch) => batch
                .schema()
                .fields()
                .iter()
                .map(|f| (f.name().clone(), seed_type(node, f.name(), f.data_type(), dialect)))
                .collect(),
            Err(_) => return Schema::default(),
        },
    };
    next.keep_seed(key, &columns);
    Schema { columns, complete: true }
}

/// A source's declared columns, never taken as the whole list: in dbt they document the
/// table, and projects often list a few of its columns. A column a model reads that is
/// not declared is not an error, and lineage still names it.
pub(super) fn source(node: &Node, dialect: SqlDialect) -> Schema {
    let declared = |t: &Option<String>| t.as_deref().map_or(Type::Unknown, |t| Type::parse(t, dialect));
    Schema { columns: node.columns.iter().map(|c| (c.name.clone(), declared(&c.data_type))).collect(), complete: false }
}

/// A seed column's type on the target: its `column_types` entry, else what the CSV
/// values read as.
fn seed_type(node: &Node, column: &str, read: &datafusion::arrow::datatypes::DataType, dialect: SqlDialect) -> Type {
    let declared = crate::seed_csv::declared_type(&node.config.column_types, column);
    Type::of_seed(read, declared.map(String::as_str), dialect)
}

/// The lineage entry of a node without SQL: its columns, with no upstream.
pub(super) fn base_lineage(node: &Node, schema: &Schema, dialect: SqlDialect) -> NodeLineage {
    NodeLineage {
        columns: schema
            .columns
            .iter()
            .map(|(name, ty)| ColumnLineage {
                data_type: ty.render(dialect),
                fingerprint: None,
                name: name.clone(),
                upstream: Vec::new(),
            })
            .collect(),
        columns_complete: schema.complete,
        name: node.name.clone(),
        resource_type: node.resource_type.as_str(),
        rows_fingerprint: None,
        usage: Default::default(),
    }
}

/// A snapshot's table has its query's columns, then dbt's meta columns (derived from no
/// column of the query: they are the snapshot's own).
pub(super) fn add_snapshot_columns(node: &Node, schema: &mut Schema, entry: &mut NodeLineage) {
    let Some(snapshot) = &node.config.snapshot else { return };
    for name in snapshot.meta.names(snapshot.hard_deletes) {
        schema.columns.push((name.to_string(), Type::Unknown));
        entry.columns.push(ColumnLineage {
            data_type: None,
            fingerprint: None,
            name: name.to_string(),
            upstream: Vec::new(),
        });
    }
}
