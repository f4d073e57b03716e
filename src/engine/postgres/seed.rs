//! Seeds on Postgres: a typed table created in the staging schema and filled with one
//! `COPY ... FROM STDIN`, so a seed is published whole or not at all.

use std::collections::BTreeMap;

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use futures_util::SinkExt;
use tokio_postgres::Client;

use super::pg_error;
use crate::engine::EngineError;
use crate::relation::{Relation, quote_ident};
use crate::seed_csv::declared_type;

/// Creates `relation` (in an existing schema) with the batch's columns and copies its
/// rows in. A column named in `column_types` gets that type as written (as dbt does);
/// the others get the type of their values. Returns the rows.
pub async fn copy_into(
    client: &Client,
    relation: &Relation,
    batch: &RecordBatch,
    column_types: &BTreeMap<String, String>,
) -> Result<u64, EngineError> {
    let columns: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                quote_ident(f.name()),
                declared_type(column_types, f.name())
                    .cloned()
                    .unwrap_or_else(|| crate::sql::types::postgres_seed_type(f.data_type()))
            )
        })
        .collect();
    client
        .batch_execute(&format!("drop table if exists {relation}; create table {relation} ({})", columns.join(", ")))
        .await
        .map_err(|e| pg_error(&e))?;
    let mut csv = Vec::new();
    {
        let mut writer = datafusion::arrow::csv::WriterBuilder::new()
            .with_header(false)
            .with_timestamp_format("%Y-%m-%d %H:%M:%S%.f".to_string())
            .build(&mut csv);
        writer.write(batch)?;
    }
    let sink = client
        .copy_in::<_, Bytes>(&format!("copy {relation} from stdin with (format csv)"))
        .await
        .map_err(|e| pg_error(&e))?;
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from(csv)).await.map_err(|e| pg_error(&e))?;
    sink.finish().await.map_err(|e| pg_error(&e))
}
