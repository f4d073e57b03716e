//! What runs `run_query` and `{% call statement() %}` while a command compiles: the
//! command's target, opened (for reading) the first time a query runs, so a project whose
//! templates never query never connects.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::array_value_to_string;
use serde_json::Value as Json;

use crate::engine::{Access, Engine};
use crate::project::{Project, Target};
use crate::template::{Querier, QueryTable};

/// The target to query and, once a query ran, the open engine.
pub struct TargetQuerier {
    target: Target,
    open: Mutex<Option<(tokio::runtime::Runtime, Arc<dyn Engine>)>>,
}

impl std::fmt::Debug for TargetQuerier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TargetQuerier({})", crate::engine::describe(&self.target))
    }
}

/// The querier of `project`'s target (for `CompileOptions::querier`).
pub fn for_project(project: &Project) -> Arc<dyn Querier> {
    Arc::new(TargetQuerier { target: project.target.clone(), open: Mutex::new(None) })
}

impl Querier for TargetQuerier {
    fn query(&self, sql: &str) -> Result<QueryTable, String> {
        let mut open = self.open.lock().map_err(|_| "the query connection broke".to_string())?;
        if open.is_none() {
            let runtime =
                super::invocation::runtime().map_err(|d| d.first().map(|d| d.message.clone()).unwrap_or_default())?;
            let engine = runtime
                .block_on(crate::engine::open(&self.target, Access::Read))
                .map_err(|e| format!("could not open {} to run it: {e}", crate::engine::describe(&self.target)))?;
            *open = Some((runtime, engine));
        }
        let (runtime, engine) = open.as_ref().expect("opened above");
        let batches = runtime.block_on(engine.query(sql, usize::MAX)).map_err(|e| {
            format!(
                "{e}; etlm renders every model before it builds any, so a query reads only relations an earlier run \
                 built (build what it reads first: `etlm build -s +<model>`)"
            )
        })?;
        Ok(table(&batches))
    }
}

/// Query results as column names and rows of JSON values: numbers and booleans as
/// themselves, everything else as its text.
fn table(batches: &[RecordBatch]) -> QueryTable {
    let Some(first) = batches.first() else { return QueryTable::default() };
    let columns = first.schema().fields().iter().map(|f| f.name().clone()).collect();
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            rows.push(batch.columns().iter().map(|col| cell(col.as_ref(), row)).collect());
        }
    }
    QueryTable { columns, rows }
}

fn cell(array: &dyn Array, row: usize) -> Json {
    if array.is_null(row) {
        return Json::Null;
    }
    let text = array_value_to_string(array, row).unwrap_or_default();
    let number = |t: &str| serde_json::from_str::<serde_json::Number>(t).map(Json::Number).ok();
    match array.data_type() {
        DataType::Boolean => Json::Bool(text == "true"),
        t if t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) => {
            number(&text).unwrap_or(Json::String(text))
        }
        _ => Json::String(text),
    }
}
