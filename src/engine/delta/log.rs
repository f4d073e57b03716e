//! The Delta log as the warehouse's [`TableLog`]: a table's current version is the one
//! its latest commit names (`etlm.version` in the table's configuration), and publishing
//! a version is one commit that replaces the table's files by the version's, with its
//! schema and partition columns. A view is no Delta table: `_etlm_view.json` in its
//! folder names its version, replaced whole. When a relation has both (a view that
//! replaced a table, or the reverse), the newer version is current.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::schema::cast::normalize_for_delta;
use deltalake::kernel::{Action, Add, StructType};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::SaveMode;

use crate::engine::local::{META_FILE, RelationKind, RelationMeta, StorageError, TableLog, replace_synced};

/// The table configuration key naming the version directory a commit published.
const VERSION_KEY: &str = "etlm.version";
/// The file in a view's folder naming its current version.
const VIEW_FILE: &str = "_etlm_view.json";
/// The Delta log's folder in a table's.
const LOG_DIR: &str = "_delta_log";
/// How a hive partition directory names a NULL value.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Delta Lake tables on a local directory.
#[derive(Debug)]
pub struct DeltaLog;

impl TableLog for DeltaLog {
    fn current(&self, table: &Path) -> Result<Option<String>, StorageError> {
        let view = match std::fs::read(table.join(VIEW_FILE)) {
            Ok(bytes) => serde_json::from_slice::<ViewPointer>(&bytes).ok().map(|p| p.version),
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => None,
            Err(source) => return Err(StorageError::Io { action: "read", path: table.join(VIEW_FILE), source }),
        };
        let committed = if table.join(LOG_DIR).is_dir() { committed_version(table)? } else { None };
        Ok(view.max(committed))
    }

    fn commit(&self, table: &Path, version: &str, meta: &RelationMeta) -> Result<(), StorageError> {
        match meta.kind {
            RelationKind::View => {
                let pointer = serde_json::to_vec(&ViewPointer { version: version.to_string() })
                    .expect("a view pointer serializes");
                replace_synced(&table.join(VIEW_FILE), &pointer)
            }
            RelationKind::Table => commit_table(table, version, meta),
        }
    }

    fn microsecond_times(&self) -> bool {
        true
    }
}

/// What `_etlm_view.json` holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct ViewPointer {
    version: String,
}

/// The version directory the table's latest commit names, if etlm made it.
fn committed_version(table: &Path) -> Result<Option<String>, StorageError> {
    let url = deltalake::ensure_table_uri(utf8(table)?).map_err(|e| log_error(table, e))?;
    let loaded = block_on(table, async move { deltalake::open_table(url).await })?;
    let state = loaded.map_err(|e| log_error(table, e))?;
    let snapshot = state.snapshot().map_err(|e| log_error(table, e))?;
    Ok(snapshot.metadata().configuration().get(VERSION_KEY).cloned())
}

/// One commit that makes the files of `table/version/` the table's, replacing every file
/// of the current version (or creating the table), with `meta`'s columns as its schema.
fn commit_table(table: &Path, version: &str, meta: &RelationMeta) -> Result<(), StorageError> {
    let adds = version_files(table, version, &meta.partition_by)?;
    let schema = delta_schema(table, meta)?;
    let location = utf8(table)?.to_string();
    let builder = CreateBuilder::new()
        .with_location(location)
        .with_columns(schema.fields().cloned())
        .with_partition_columns(meta.partition_by.clone())
        .with_actions(adds)
        .with_save_mode(SaveMode::Overwrite)
        .with_configuration([(VERSION_KEY, Some(version))])
        .with_raise_if_key_not_exists(false);
    block_on(table, async move { builder.await })?.map_err(|e| log_error(table, e))?;
    Ok(())
}

/// An add action for every data file in `table/version/`, with the partition values its
/// directories name.
fn version_files(table: &Path, version: &str, partition_by: &[String]) -> Result<Vec<Action>, StorageError> {
    let mut adds = Vec::new();
    for entry in walkdir::WalkDir::new(table.join(version)).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|e| log_error(table, e))?;
        if !entry.file_type().is_file() || entry.file_name() == META_FILE {
            continue;
        }
        let io = |source| StorageError::Io { action: "inspect", path: entry.path().to_path_buf(), source };
        let file = entry.metadata().map_err(|e| io(e.into()))?;
        let relative = entry.path().strip_prefix(table).expect("walked inside the table");
        let path = relative.to_str().ok_or_else(|| log_error(table, "a file name is not UTF-8"))?.to_string();
        let mut partition_values: HashMap<String, Option<String>> = HashMap::new();
        for directory in relative.parent().into_iter().flat_map(Path::iter).skip(1) {
            if let Some((key, value)) = directory.to_str().and_then(|d| d.split_once('=')) {
                let value = (value != NULL_PARTITION).then(|| percent_decoded(value));
                partition_values.insert(key.to_string(), value);
            }
        }
        if let Some(missing) = partition_by.iter().find(|p| !partition_values.contains_key(*p)) {
            return Err(log_error(table, format!("`{path}` is in no partition of `{missing}`")));
        }
        let modified = file.modified().map_err(io)?;
        let modification_time = modified.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        adds.push(Action::Add(Add {
            path,
            partition_values,
            size: file.len() as i64,
            modification_time,
            data_change: true,
            ..Default::default()
        }));
    }
    Ok(adds)
}

/// The Delta schema of `meta`'s columns (Arrow types as `_etlm.json` records them).
fn delta_schema(table: &Path, meta: &RelationMeta) -> Result<StructType, StorageError> {
    let fields = meta
        .columns
        .iter()
        .map(|c| {
            let data_type = DataType::from_str(&c.data_type).map_err(|e| log_error(table, e))?;
            Ok(Field::new(&c.name, data_type, true))
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    let schema = normalize_for_delta(&Arc::new(Schema::new(fields)));
    schema.as_ref().try_into_kernel().map_err(|e| log_error(table, e))
}

/// `%3A` and the like in a partition directory's value, decoded.
fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The table's folder as the UTF-8 path delta-rs takes.
fn utf8(table: &Path) -> Result<&str, StorageError> {
    table.to_str().ok_or_else(|| log_error(table, "the path is not UTF-8"))
}

/// Runs a delta-rs future to its end from synchronous code, on a thread of its own with a
/// runtime of its own (the warehouse's calls are synchronous, and may be made on a
/// runtime's thread, where blocking on another future is not allowed).
fn block_on<T: Send>(table: &Path, future: impl Future<Output = T> + Send) -> Result<T, StorageError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                Ok(runtime.block_on(future))
            })
            .join()
    })
    .map_err(|_| log_error(table, "the Delta Lake call panicked"))?
    .map_err(|source: io::Error| StorageError::Io {
        action: "start a runtime for",
        path: table.to_path_buf(),
        source,
    })
}

fn log_error(table: &Path, reason: impl std::fmt::Display) -> StorageError {
    StorageError::Log { table: table.to_path_buf(), reason: reason.to_string() }
}
