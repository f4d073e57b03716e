//! Query results as Arrow batches, for `etlm show`, `etlm runs` and the failing rows
//! printed under a test. Postgres formats each value as text (as psql shows it); columns
//! of integer, float and boolean types become typed Arrow columns, so `--format json`
//! gives numbers and booleans as the embedded engine does.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{Field, Schema};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::pg_error;
use crate::engine::{EngineError, ErrorKind};

/// Runs `sql` (one statement) and returns its rows.
pub async fn query_rows(client: &Client, sql: &str) -> Result<Vec<RecordBatch>, EngineError> {
    let statement = client.prepare(sql).await.map_err(|e| pg_error(&e))?;
    let types: Vec<Type> = statement.columns().iter().map(|c| c.type_().clone()).collect();
    let messages = client.simple_query(sql).await.map_err(|e| pg_error(&e))?;
    let mut names: Vec<String> = statement.columns().iter().map(|c| c.name().to_string()).collect();
    let mut columns: Vec<Vec<Option<String>>> = vec![Vec::new(); names.len()];
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(description) => {
                names = description.iter().map(|c| c.name().to_string()).collect();
            }
            SimpleQueryMessage::Row(row) => {
                // The relation may have changed between the prepare and the query.
                if row.len() != columns.len() {
                    return Err(EngineError::new(
                        ErrorKind::Failed,
                        format!(
                            "the query returned {} columns, not the {} it was prepared with",
                            row.len(),
                            columns.len()
                        ),
                    ));
                }
                for (i, column) in columns.iter_mut().enumerate() {
                    column.push(row.get(i).map(str::to_string));
                }
            }
            _ => {}
        }
    }
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) =
        names.iter().zip(columns).zip(&types).map(|((name, values), ty)| typed(name, values, ty)).unzip();
    Ok(vec![RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?])
}

/// The columns `sql` returns and their type names (`int4`, `numeric`, `_text` as
/// `text[]`), from preparing it.
pub async fn column_types(client: &Client, sql: &str) -> Result<Vec<(String, String)>, EngineError> {
    let statement = client.prepare(sql).await.map_err(|e| pg_error(&e))?;
    Ok(statement
        .columns()
        .iter()
        .map(|c| {
            let name = c.type_().name();
            let spelled = match name.strip_prefix('_') {
                Some(element) => format!("{element}[]"),
                None => name.to_string(),
            };
            (c.name().to_string(), spelled)
        })
        .collect())
}

/// A column of text values as the Arrow type its Postgres type maps to (text otherwise).
fn typed(name: &str, values: Vec<Option<String>>, ty: &Type) -> (Field, ArrayRef) {
    let array: Option<ArrayRef> = match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => {
            values.iter().map(parsed::<i64>).collect::<Option<Int64Array>>().map(|a| Arc::new(a) as _)
        }
        Type::FLOAT4 | Type::FLOAT8 => {
            values.iter().map(parsed::<f64>).collect::<Option<Float64Array>>().map(|a| Arc::new(a) as _)
        }
        Type::BOOL => Some(Arc::new(values.iter().map(|v| v.as_deref().map(|b| b == "t")).collect::<BooleanArray>())),
        _ => None,
    };
    let array = array.unwrap_or_else(|| Arc::new(StringArray::from(values)));
    (Field::new(name, array.data_type().clone(), true), array)
}

/// A value parsed (`Some(None)` for NULL), or `None` when it does not parse.
fn parsed<T: std::str::FromStr>(value: &Option<String>) -> Option<Option<T>> {
    value.as_deref().map(str::parse).transpose().ok()
}
