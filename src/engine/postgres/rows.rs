//! Query results as Arrow batches of text columns, for `etlm show`, `etlm runs` and the
//! failing rows printed under a test: Postgres formats each value, etlm prints it.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::pg_error;
use crate::engine::EngineError;

/// Runs `sql` and returns its rows, every column as text (NULL as null).
pub async fn query_text(client: &Client, sql: &str) -> Result<Vec<RecordBatch>, EngineError> {
    let messages = client.simple_query(sql).await.map_err(|e| pg_error(&e))?;
    let mut names: Vec<String> = Vec::new();
    let mut columns: Vec<Vec<Option<String>>> = Vec::new();
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(description) => {
                names = description.iter().map(|c| c.name().to_string()).collect();
                columns = vec![Vec::new(); names.len()];
            }
            SimpleQueryMessage::Row(row) => {
                for (i, column) in columns.iter_mut().enumerate() {
                    column.push(row.get(i).map(str::to_string));
                }
            }
            _ => {}
        }
    }
    let schema = Arc::new(Schema::new(names.iter().map(|n| Field::new(n, DataType::Utf8, true)).collect::<Vec<_>>()));
    let arrays: Vec<ArrayRef> = columns.into_iter().map(|c| Arc::new(StringArray::from(c)) as ArrayRef).collect();
    Ok(vec![RecordBatch::try_new(schema, arrays)?])
}
