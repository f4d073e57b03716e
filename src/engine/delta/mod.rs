//! The Delta Lake engine (`type: delta`): the embedded engine's DataFusion sessions, SQL
//! and write-audit-publish, over a warehouse whose tables are Delta tables that DuckDB,
//! polars, Spark or Databricks read.
//!
//! # Layout
//!
//! ```text
//! location/
//!   .etlm.lock                       writer lock, as on the embedded engine
//!   _etlm/                           run history (Parquet, as on the embedded engine)
//!   main/orders/                     a Delta table
//!     _delta_log/00000000000000000000.json
//!     1795305600000000/              the files one publish added; `_etlm.json` beside them
//!       dt=2024-01-01/<id>.parquet   Delta partition columns, in the hive layout
//!     1795309200000000.staging/      being written and audited; no commit names it
//!   main/stg_orders/                 a view: `_etlm_view.json` names its version
//!     1795305600000000/_etlm.json
//! ```
//!
//! A model is staged and audited exactly as on the embedded engine (`engine/local`), in
//! a version directory inside its table's folder. Publishing is then one Delta commit
//! (`log.rs`) that removes the files of the version it replaces and adds the new one's,
//! with the table's schema and partition columns; the version directory's name is in the
//! table's configuration (`etlm.version`), so etlm reads back the version it committed.
//! A failed audit commits nothing. A crash before the commit leaves a directory no
//! commit names, which the next run's sweep removes.

#[cfg(feature = "delta")]
mod log;

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::datafusion::DataFusionEngine;
use super::{Access, EngineError};
use crate::project::Target;
use crate::relation::Relation;

/// The folder the target's tables live in: its `location`, relative to the project
/// (the profile parser makes sure there is one).
pub fn location(target: &Target) -> PathBuf {
    let location = target.settings.get("location").and_then(serde_json::Value::as_str).unwrap_or_default();
    target.project_dir.join(location)
}

/// Opens the target's tables (the folder is created if missing).
#[cfg(feature = "delta")]
pub async fn open(target: &Target, access: Access) -> Result<DataFusionEngine, EngineError> {
    let warehouse = super::local::Warehouse::open_with_log(location(target), std::sync::Arc::new(log::DeltaLog))?;
    DataFusionEngine::open_warehouse(warehouse, access).await
}

/// Without the `delta` feature a Delta target is refused where the profile is read; this
/// is never reached.
#[cfg(not(feature = "delta"))]
pub async fn open(_target: &Target, _access: Access) -> Result<DataFusionEngine, EngineError> {
    Err(EngineError::internal("this etlm was built without Delta Lake support"))
}

/// The relations published at the target's location (none when there is none).
pub fn relations_in(target: &Target) -> BTreeSet<Relation> {
    #[cfg(feature = "delta")]
    return super::local::relations_in(&location(target), Some(std::sync::Arc::new(log::DeltaLog)));
    #[cfg(not(feature = "delta"))]
    return {
        let _ = target;
        BTreeSet::new()
    };
}
