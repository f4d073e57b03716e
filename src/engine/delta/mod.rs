//! The Delta Lake engine (`type: delta`): the embedded engine's DataFusion sessions, SQL
//! and write-audit-publish, over a warehouse whose tables are Delta tables that DuckDB,
//! polars, Spark or Databricks read.
//!
//! # Layout
//!
//! ```text
//! location/
//!   .etlm.lock                       advisory writer lock (`local/lock.rs`)
//!   .etlm.guests/                    runs writing beside the lock's holder
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
//!
//! Each commit builds on the Delta version the run read, so of two writers committing
//! to one table at once the second fails as a conflict; the writer lock is therefore
//! only advisory here, and a second run goes on beside the first.

#[cfg(feature = "delta")]
mod log;
#[cfg(feature = "delta")]
mod remote;

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::datafusion::DataFusionEngine;
use super::{Access, AsOf, EngineError};
use crate::project::Target;
use crate::relation::Relation;

/// The local folder of the target's tables: its `location`, relative to the project
/// (the profile parser makes sure there is one), or for an S3 location the folder that
/// caches it (`cache`, by default `.etlm-cache/<bucket>/<prefix>` in the project).
pub fn location(target: &Target) -> PathBuf {
    let setting = |key| target.settings.get(key).and_then(serde_json::Value::as_str);
    let location = setting("location").unwrap_or_default();
    match (s3_location(target), setting("cache")) {
        (None, _) => target.project_dir.join(location),
        (Some(_), Some(cache)) => target.project_dir.join(cache),
        (Some(url), None) => target.project_dir.join(".etlm-cache").join(url.trim_start_matches("s3://")),
    }
}

/// Where the tables are, for messages: the folder, or the S3 location and its cache.
pub fn describe(target: &Target) -> String {
    match s3_location(target) {
        Some(url) => format!("{url} (cached in {})", location(target).display()),
        None => location(target).display().to_string(),
    }
}

/// The target's `s3://bucket/prefix` location, if its tables are on S3.
pub fn s3_location(target: &Target) -> Option<&str> {
    target.settings.get("location").and_then(serde_json::Value::as_str).filter(|l| l.starts_with("s3://"))
}

/// Opens the target's tables (the local folder is created if missing).
#[cfg(feature = "delta")]
pub async fn open(target: &Target, access: Access) -> Result<DataFusionEngine, EngineError> {
    open_with(target, access, None).await
}

/// Opens the target's tables as they were at `as_of`, to read.
#[cfg(feature = "delta")]
pub async fn open_as_of(target: &Target, as_of: AsOf) -> Result<DataFusionEngine, EngineError> {
    open_with(target, Access::Read, Some(as_of)).await
}

#[cfg(feature = "delta")]
async fn open_with(target: &Target, access: Access, as_of: Option<AsOf>) -> Result<DataFusionEngine, EngineError> {
    let folder = location(target);
    let log = table_log(target)?.reading_at(as_of);
    if s3_location(target).is_some() {
        std::fs::create_dir_all(&folder).map_err(|e| {
            EngineError::new(
                super::ErrorKind::Failed,
                format!("could not create the cache folder `{}`: {e}", folder.display()),
            )
        })?;
    }
    log.mirror_folders(&folder)?;
    let warehouse = super::local::Warehouse::open_with_log(folder, std::sync::Arc::new(log))?;
    DataFusionEngine::open_warehouse(warehouse, access).await
}

/// The log of the target's tables: in their folders, or on S3; each keeps the target's
/// `keep_versions` (2 unless set).
#[cfg(feature = "delta")]
fn table_log(target: &Target) -> Result<log::DeltaLog, EngineError> {
    let kept = target.settings.get("keep_versions").and_then(serde_json::Value::as_u64).unwrap_or(2);
    let remote = match s3_location(target) {
        None => None,
        Some(url) => Some(
            remote::Remote::of(target, url)
                .map_err(|e| EngineError::new(super::ErrorKind::Connect, format!("the S3 location `{url}`: {e}")))?,
        ),
    };
    Ok(log::DeltaLog::new(remote, kept as usize))
}

/// Without the `delta` feature a Delta target is refused where the profile is read; this
/// is never reached.
#[cfg(not(feature = "delta"))]
pub async fn open(_target: &Target, _access: Access) -> Result<DataFusionEngine, EngineError> {
    Err(EngineError::internal("this etlm was built without Delta Lake support"))
}

/// As [`open`] without the `delta` feature.
#[cfg(not(feature = "delta"))]
pub async fn open_as_of(_target: &Target, _as_of: AsOf) -> Result<DataFusionEngine, EngineError> {
    Err(EngineError::internal("this etlm was built without Delta Lake support"))
}

/// The relations published at the target's location (none when there is none; on S3
/// those of the bucket, once etlm has made the local folder).
pub fn relations_in(target: &Target) -> BTreeSet<Relation> {
    #[cfg(feature = "delta")]
    return match table_log(target) {
        Ok(log) => {
            let folder = location(target);
            let _ = folder.is_dir().then(|| log.mirror_folders(&folder));
            super::local::relations_in(&folder, Some(std::sync::Arc::new(log)))
        }
        Err(_) => BTreeSet::new(),
    };
    #[cfg(not(feature = "delta"))]
    return {
        let _ = target;
        BTreeSet::new()
    };
}
