//! The embedded engine's warehouse: DataFusion over Parquet files in a directory that
//! DuckDB, Polars, Spark or pyarrow can read as well.
//!
//! # Layout
//!
//! ```text
//! warehouse/
//!   .etlm.lock                         writer lock (pid and start time of the holder)
//!   .deferred.json                     relations read from another warehouse (`--defer`)
//!   main/
//!     orders -> .versions/orders/1795305600000000   relative symlink: the current version
//!     .versions/orders/
//!       1795305600000000/              immutable once published
//!         _etlm.json                   kind, columns (Arrow types), partition_by, sql, created_at
//!         dt=2024-01-01/<id>.parquet   hive partitions (partition columns are not in the files)
//!       1795309200000000.staging/      being written; no reader looks here
//! ```
//!
//! Version names are microseconds since the epoch, zero-padded and always above the
//! previous one, so they sort and are never reused. A relation is the symlink
//! `<schema>/<name>`; everything starting with a dot is etlm's bookkeeping. Other tools
//! read `warehouse/main/orders/**/*.parquet` with hive partitioning and ignore
//! `_etlm.json`. Views are a version holding only `_etlm.json` with their SQL,
//! registered when a session opens.
//!
//! # Publishing
//!
//! A new version is written into a fresh `<version>.staging` directory (new query
//! output, plus unchanged partitions hard-linked from the current version, never
//! copied), audited there, then published: `_etlm.json` is written, every file and
//! directory is fsynced, the directory is renamed to its final name, and a new symlink
//! made under a temporary name is `rename(2)`d over `<schema>/<name>`.
//!
//! Why a symlink swap: a directory cannot be atomically replaced by a non-empty
//! directory, but `rename(2)` of a symlink over another is atomic. A reader resolving
//! `<schema>/<name>/` sees the whole old version or the whole new one, never a mix and
//! never nothing, and a reader that already resolved the old version keeps reading
//! its files, which stay until `Warehouse::sweep`. A crash at any point leaves the
//! symlink on the old or the new version; sweep, run under the writer lock at the start
//! of the next run, removes staging leftovers, temporary symlinks and superseded versions.
//!
//! # Sessions
//!
//! `register_relations` registers every table as a `ListingTable` over its resolved version
//! directory (schema and partition types from `_etlm.json`, so an empty table still has
//! columns) and every view from its SQL; relations another warehouse lends through
//! `--defer` (`.deferred.json`, see `deferred.rs`) fill in the names this one lacks. Registering the resolved directory, not the
//! symlink, pins a session to the versions it saw.

pub mod deferred;
mod functions;
mod incremental;
mod kept_rows;
mod lock;
mod meta;
mod pg_format;
mod session;
mod snapshot;
mod sorted_window;
mod storage;
mod windows;
mod write;

pub use incremental::{CombineError, combine};
pub use kept_rows::ROWS_FILE_EXTENSION;
pub use lock::{OnContention, WarehouseLock};
pub use meta::{META_FILE, RelationKind, RelationMeta, table_columns};
pub use session::{
    BrokenView, CATALOG, DEFAULT_SCHEMA, SessionError, deregister_audit, keep_view_rows, new_context,
    published_relations, register_audit, register_relation, register_relations, register_rows_file, register_table_dir,
};
#[cfg(test)]
pub use session::{WarehouseSession, open_session};
pub use snapshot::stage_snapshot;
pub use storage::{Staging, StorageError, StoredRelation, SweepReport, TableLog, Warehouse, replace_synced};
pub use write::{WriteError, WriteOutcome, write_dataframe, write_query};

/// The embedded engine's warehouse folder: the target's `path`, or `warehouse/`.
pub fn warehouse_dir(target: &crate::project::Target) -> std::path::PathBuf {
    match target.settings.get("path").and_then(serde_json::Value::as_str) {
        Some(p) => target.project_dir.join(p),
        None => target.project_dir.join("warehouse"),
    }
}

/// The relations published in the warehouse at `dir` (none when there is none), whose
/// current versions `log` records (symlinks when `None`).
pub fn relations_in(
    dir: &std::path::Path,
    log: Option<std::sync::Arc<dyn TableLog>>,
) -> std::collections::BTreeSet<crate::relation::Relation> {
    if !dir.is_dir() {
        return Default::default();
    }
    let opened = match log {
        Some(log) => Warehouse::open_with_log(dir, log),
        None => Warehouse::open(dir),
    };
    let Ok(warehouse) = opened else { return Default::default() };
    warehouse
        .relations()
        .map(|list| list.into_iter().map(|r| crate::relation::Relation::new(r.schema, r.name)).collect())
        .unwrap_or_default()
}

/// A warehouse in a fresh temp dir, for unit tests.
#[cfg(test)]
pub(crate) fn test_warehouse() -> (tempfile::TempDir, Warehouse) {
    let temp = tempfile::tempdir().expect("temp dir");
    let wh = Warehouse::open(temp.path().join("warehouse")).expect("a warehouse in a temp dir opens");
    (temp, wh)
}

/// The embedded engine's errors as engine errors: a held warehouse lock is
/// [`ErrorKind::Locked`](crate::engine::ErrorKind::Locked), everything else a failure
/// with its cause.
mod errors {
    use datafusion::error::DataFusionError;
    use datafusion::parquet::errors::ParquetError;

    use super::{CombineError, SessionError, StorageError, WriteError};
    use crate::engine::{EngineError, ErrorKind};

    impl From<StorageError> for EngineError {
        fn from(e: StorageError) -> EngineError {
            match e {
                StorageError::Locked { .. } => EngineError::new(ErrorKind::Locked, e.to_string()),
                StorageError::Io { ref source, .. }
                    if matches!(
                        source.kind(),
                        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                    ) =>
                {
                    EngineError::new(ErrorKind::Permission, e.to_string())
                        .with_help("the warehouse folder must be writable by the user running etlm")
                }
                other => EngineError::failed(other),
            }
        }
    }

    macro_rules! failed_from {
        ($($t:ty),*) => {$(
            impl From<$t> for EngineError {
                fn from(e: $t) -> EngineError {
                    EngineError::failed(e)
                }
            }
        )*};
    }

    failed_from!(SessionError, WriteError, CombineError, DataFusionError, ParquetError);
}
