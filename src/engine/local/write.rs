//! Writing a query's result as Parquet into a staging directory.

use std::collections::HashSet;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, UInt64Type};
use datafusion::common::{DataFusionError, Result as DfResult, exec_err};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::{DataFrame, SQLOptions, SessionContext};

use super::meta::table_columns;
use super::storage::Staging;
use crate::engine::ColumnMeta;

/// The name of the only file of an unpartitioned table.
const SINGLE_FILE: &str = "part-0.parquet";

/// A failure to plan, run or write a query.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// DataFusion failed to plan or execute the query, or to write its result.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// A `partition_by` column is not in the query's output.
    #[error("partition column `{column}` is not in the query's output (columns: {available})")]
    MissingPartitionColumn {
        /// The missing column.
        column: String,
        /// The output columns, comma-separated.
        available: String,
    },
    /// Two output columns share a name, which a Parquet table cannot hold.
    #[error("the query returns two columns named `{column}`; alias one of them")]
    DuplicateColumn {
        /// The repeated name.
        column: String,
    },
}

/// What `write_query` wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Rows written, over all files.
    pub rows: u64,
    /// The table's columns for `RelationMeta::table`: file columns, then partition columns.
    pub columns: Vec<ColumnMeta>,
}

/// Plans `sql` (a query; DDL and DML are refused) in `ctx` and writes its result as
/// Parquet into `staging`, hive-partitioned by `partition_by` when it is not empty.
///
/// Unpartitioned results go to one file, `part-0.parquet`, which exists even for zero
/// rows so other readers (DuckDB, pyarrow) see the columns. Partitioned results get one
/// file per partition (`dt=2024-01-01/<id>.parquet`) and no files when empty; a NULL
/// partition value is an error, since a directory name cannot hold it.
pub async fn write_query(
    ctx: &SessionContext,
    sql: &str,
    staging: &Staging,
    partition_by: &[String],
) -> Result<WriteOutcome, WriteError> {
    let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    let df = ctx.sql_with_options(sql, options).await?;
    write_dataframe(df, staging, partition_by).await
}

/// `write_query` for an already built `DataFrame`, e.g. `ctx.read_batch(seed)`.
pub async fn write_dataframe(
    df: DataFrame,
    staging: &Staging,
    partition_by: &[String],
) -> Result<WriteOutcome, WriteError> {
    let schema = df.schema().as_arrow().clone();
    let mut seen = HashSet::new();
    if let Some(dup) = schema.fields().iter().find(|f| !seen.insert(f.name())) {
        return Err(WriteError::DuplicateColumn { column: dup.name().clone() });
    }
    if let Some(missing) = partition_by.iter().find(|p| schema.field_with_name(p).is_err()) {
        let available = schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
        return Err(WriteError::MissingPartitionColumn { column: missing.clone(), available });
    }
    let df = if staging.microsecond_times() { in_microseconds(df)? } else { df };
    let schema = df.schema().as_arrow().clone();
    let columns = table_columns(&schema, partition_by);

    let dir = staging.dir().to_str().expect("warehouse paths are UTF-8, checked by Warehouse::open");
    let counts = if partition_by.is_empty() {
        let options = DataFrameWriteOptions::new().with_single_file_output(true);
        df.write_parquet(&format!("{dir}/{SINGLE_FILE}"), options, None).await?
    } else {
        let options = DataFrameWriteOptions::new().with_partition_by(partition_by.to_vec());
        check_partition_values(df, partition_by)?.write_parquet(&format!("{dir}/"), options, None).await?
    };
    let rows = counts
        .iter()
        .map(|batch| {
            let count = batch.column_by_name("count").and_then(|c| c.as_primitive_opt::<UInt64Type>());
            count.expect("write_parquet returns a UInt64 `count` column").iter().flatten().sum::<u64>()
        })
        .sum();
    Ok(WriteOutcome { rows, columns })
}

/// `df` with its nanosecond times cast to microseconds, for a table format that stores
/// no finer unit.
fn in_microseconds(df: DataFrame) -> Result<DataFrame, DataFusionError> {
    let nanos = |t: &DataType| matches!(t, DataType::Timestamp(TimeUnit::Nanosecond, _));
    if !df.schema().fields().iter().any(|f| nanos(f.data_type())) {
        return Ok(df);
    }
    let exprs = df
        .schema()
        .fields()
        .iter()
        .zip(df.schema().columns())
        .map(|(field, column)| match field.data_type() {
            DataType::Timestamp(TimeUnit::Nanosecond, zone) => {
                let micros = DataType::Timestamp(TimeUnit::Microsecond, zone.clone());
                datafusion::prelude::cast(Expr::Column(column), micros).alias(field.name())
            }
            _ => Expr::Column(column),
        })
        .collect::<Vec<_>>();
    df.select(exprs)
}

/// Wraps each partition column in `etlm_partition_value`, which fails the write on
/// values that cannot be a directory name. DataFusion's writer would otherwise turn
/// NULL into whatever the array's buffer holds (`1970-01-01`, `0`, an empty string).
fn check_partition_values(df: DataFrame, partition_by: &[String]) -> Result<DataFrame, DataFusionError> {
    let exprs = df
        .schema()
        .columns()
        .into_iter()
        .map(|column| {
            if partition_by.contains(&column.name) {
                let check =
                    PartitionValue { column: column.name.clone(), signature: Signature::any(1, Volatility::Immutable) };
                let name = column.name.clone();
                ScalarUDF::from(check).call(vec![Expr::Column(column)]).alias(name)
            } else {
                Expr::Column(column)
            }
        })
        .collect::<Vec<_>>();
    df.select(exprs)
}

/// Identity function on a partition column that errors on NULL, and on strings that are
/// empty or contain `/`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PartitionValue {
    column: String,
    signature: Signature,
}

impl ScalarUDFImpl for PartitionValue {
    fn name(&self) -> &str {
        "etlm_partition_value"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(arg_types.first().cloned().unwrap_or(DataType::Null))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let Some(value) = args.args.into_iter().next() else {
            return exec_err!("etlm_partition_value takes one argument");
        };
        let array = value.to_array(args.number_rows)?;
        if array.null_count() > 0 {
            return exec_err!("partition column `{}` is NULL in some rows; every row needs a value", self.column);
        }
        if matches!(
            array.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..)
        ) {
            let text = cast(&array, &DataType::Utf8)?;
            if let Some(bad) = text.as_string::<i32>().iter().flatten().find(|v| v.is_empty() || v.contains('/')) {
                return exec_err!(
                    "partition column `{}` has the value `{bad}`, which cannot be a directory name (empty or containing `/`)",
                    self.column
                );
            }
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::engine::local::test_warehouse as warehouse;
    use crate::engine::local::{RelationMeta, Warehouse, open_session, register_relation};
    use crate::seed_csv::read_seed_csv;

    async fn write(wh: &Warehouse, sql: &str, partition_by: &[&str]) -> Result<WriteOutcome, WriteError> {
        let ctx = SessionContext::new();
        let staging = wh.stage("main", "t").unwrap();
        let partition_by: Vec<String> = partition_by.iter().map(|p| p.to_string()).collect();
        write_query(&ctx, sql, &staging, &partition_by).await
    }

    #[tokio::test]
    async fn counts_rows_and_orders_partition_columns_last() {
        let (_temp, wh) = warehouse();
        let sql = "SELECT * FROM (VALUES ('eu', 1, 2.5), ('us', 2, 3.5), ('eu', 3, 4.5)) AS t(region, id, amount)";
        let outcome = write(&wh, sql, &["region"]).await.unwrap();
        assert_eq!(outcome.rows, 3);
        let columns: Vec<_> = outcome.columns.iter().map(|c| format!("{} {}", c.name, c.data_type)).collect();
        assert_eq!(columns, ["id Int64", "amount Float64", "region Utf8"]);
        assert_eq!(write(&wh, sql, &[]).await.unwrap().rows, 3);
    }

    #[tokio::test]
    async fn bad_partition_values_and_columns_are_errors() {
        let (_temp, wh) = warehouse();
        let nulls = "SELECT * FROM (VALUES (1, DATE '2024-01-01'), (2, NULL)) AS t(id, dt)";
        let err = write(&wh, nulls, &["dt"]).await.unwrap_err();
        assert!(err.to_string().contains("partition column `dt` is NULL in some rows"), "{err}");
        let slash = "SELECT 1 AS id, 'a/b' AS region";
        let err = write(&wh, slash, &["region"]).await.unwrap_err();
        assert!(err.to_string().contains("`a/b`, which cannot be a directory name"), "{err}");
        let err = write(&wh, "SELECT 1 AS id", &["dt"]).await.unwrap_err();
        assert_eq!(err.to_string(), "partition column `dt` is not in the query's output (columns: id)");
        let join = "SELECT a.id, b.id FROM (SELECT 1 AS id) a CROSS JOIN (SELECT 2 AS id) b";
        let err = write(&wh, join, &[]).await.unwrap_err();
        assert!(matches!(err, WriteError::DuplicateColumn { column } if column == "id"));
    }

    #[tokio::test]
    async fn statements_other_than_queries_are_refused() {
        let (_temp, wh) = warehouse();
        for sql in ["CREATE TABLE x AS SELECT 1", "SET datafusion.execution.batch_size = 1"] {
            assert!(matches!(write(&wh, sql, &[]).await, Err(WriteError::DataFusion(_))), "{sql}");
        }
    }

    #[tokio::test]
    async fn a_seed_batch_round_trips_through_the_warehouse() {
        let (temp, wh) = warehouse();
        let csv = temp.path().join("customers.csv");
        std::fs::write(&csv, "id,signup,vip\n1,2024-01-01,true\n2,2024-01-02,false\n").unwrap();
        let batch = read_seed_csv(&csv, &BTreeMap::new(), false).unwrap();

        let ctx = open_session(&wh).await.unwrap().ctx;
        let staging = wh.stage("main", "customers").unwrap();
        let outcome = write_dataframe(ctx.read_batch(batch).unwrap(), &staging, &[]).await.unwrap();
        assert_eq!(outcome.rows, 2);
        let relation = wh.publish(staging, RelationMeta::table(outcome.columns, vec![]), &|_| ()).unwrap();
        register_relation(&ctx, &relation).await.unwrap();
        let df = ctx.sql("SELECT id FROM customers WHERE vip AND signup = DATE '2024-01-01'").await.unwrap();
        assert_eq!(df.count().await.unwrap(), 1);
    }
}
