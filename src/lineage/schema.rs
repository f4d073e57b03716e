//! Schemas of the nodes that have no SQL: seeds (CSV header and inferred types, read the
//! same way `etlm seed` loads them) and sources (columns declared in YAML); and the meta
//! columns a snapshot's table has beside its query's.

use std::path::Path;

use super::{ColumnLineage, NodeLineage, Schema};
use crate::node::Node;

/// A seed's columns and inferred types; unknown when the CSV cannot be read (`etlm seed`
/// reports why).
pub(super) fn seed(root: &Path, node: &Node) -> Schema {
    match crate::seed_csv::read_seed_csv(&root.join(&node.path), &node.config.column_types, node.config.quote_columns) {
        Ok(batch) => Schema {
            columns: batch
                .schema()
                .fields()
                .iter()
                .map(|f| (f.name().clone(), Some(f.data_type().to_string().to_lowercase())))
                .collect(),
            complete: true,
        },
        Err(_) => Schema::default(),
    }
}

/// A source's declared columns, never taken as the whole list: in dbt they document the
/// table, and projects often list a few of its columns. A column a model reads that is
/// not declared is not an error, and lineage still names it.
pub(super) fn source(node: &Node) -> Schema {
    Schema { columns: node.columns.iter().map(|c| (c.name.clone(), c.data_type.clone())).collect(), complete: false }
}

/// The lineage entry of a node without SQL: its columns, with no upstream.
pub(super) fn base_lineage(node: &Node, schema: &Schema) -> NodeLineage {
    NodeLineage {
        columns: schema
            .columns
            .iter()
            .map(|(name, data_type)| ColumnLineage {
                data_type: data_type.clone(),
                name: name.clone(),
                upstream: Vec::new(),
            })
            .collect(),
        columns_complete: schema.complete,
        name: node.name.clone(),
        resource_type: node.resource_type.as_str(),
        usage: Default::default(),
    }
}

/// A snapshot's table has its query's columns, then dbt's meta columns (derived from no
/// column of the query: they are the snapshot's own).
pub(super) fn add_snapshot_columns(node: &Node, schema: &mut Schema, entry: &mut NodeLineage) {
    let Some(snapshot) = &node.config.snapshot else { return };
    for name in snapshot.meta.names(snapshot.hard_deletes) {
        schema.columns.push((name.to_string(), None));
        entry.columns.push(ColumnLineage { data_type: None, name: name.to_string(), upstream: Vec::new() });
    }
}
