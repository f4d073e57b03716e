//! The Delta log as the warehouse's [`TableLog`]: a table's current version is the one
//! its latest commit names (`etlm.version` in the table's configuration), and publishing
//! a version is one commit that replaces the table's files by the version's, with its
//! schema and partition columns. A view is no Delta table: `_etlm_view.json` in its
//! folder names its version, replaced whole. When a relation has both (a view that
//! replaced a table, or the reverse), the newer version is current.
//!
//! A commit builds on the Delta version of the table this run first read, and fails if
//! another writer committed after it (max_retries 0: delta-rs's put-if-absent of the next
//! log entry, with no retry over the other commit). The table then keeps the other
//! writer's version, whole.
//!
//! On S3 ([`Remote`]) the location holds the same folders as objects, and the local
//! folders are a cache of it: a version is staged and audited there, uploaded, then
//! committed to the table's log in the bucket; a version committed elsewhere is
//! downloaded before it is read.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::schema::cast::normalize_for_delta;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, MetadataExt as _, Protocol, StructType, Version};
use deltalake::kernel::{contains_timestampntz, new_metadata};
use deltalake::logstore::{LogStoreRef, StorageConfig, logstore_for};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::state::DeltaTableState;
use futures_util::TryStreamExt as _;

use super::remote::Remote;
use crate::engine::AsOf;
use crate::engine::local::{META_FILE, RelationKind, RelationMeta, StorageError, TableLog, replace_synced};

/// The table configuration key naming the version directory a commit published.
const VERSION_KEY: &str = "etlm.version";
/// The file in a view's folder naming its current version.
const VIEW_FILE: &str = "_etlm_view.json";
/// How a hive partition directory names a NULL value.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Delta Lake tables in a local folder, or on S3 with a local folder as their cache.
#[derive(Debug)]
pub struct DeltaLog {
    /// What this run knows of each table it read: read once, then changed only by its
    /// own commits (another writer's are found when a commit fails).
    known: Mutex<HashMap<PathBuf, Known>>,
    /// Where the tables live when the local folders are only their cache.
    remote: Option<Remote>,
    /// How many versions of each table stay in the folder, the current one included.
    kept: usize,
    /// Read the tables as they were then, not their latest versions.
    as_of: Option<AsOf>,
}

impl TableLog for DeltaLog {
    fn current(&self, table: &Path) -> Result<Option<String>, StorageError> {
        Ok(self.known(table)?.current)
    }

    fn commit(&self, table: &Path, version: &str, meta: &RelationMeta) -> Result<(), StorageError> {
        if let Some(remote) = &self.remote {
            let relative = format!("{}/{version}", relative(table)?);
            let dir = table.join(version);
            block_on(table, remote.upload(&dir, &relative))?.map_err(|e| log_error(table, e))?;
        }
        match meta.kind {
            RelationKind::View => {
                let pointer = serde_json::to_vec(&ViewPointer { version: version.to_string() })
                    .expect("a view pointer serializes");
                match &self.remote {
                    Some(remote) => {
                        let key = format!("{}/{VIEW_FILE}", relative(table)?);
                        block_on(table, remote.put(&key, pointer))?.map_err(|e| log_error(table, e))?;
                    }
                    None => replace_synced(&table.join(VIEW_FILE), &pointer)?,
                }
                let state = self.known(table)?.state;
                self.remember(table, Known { state, current: Some(version.to_string()) });
                Ok(())
            }
            RelationKind::Table => match self.commit_table(table, version, meta) {
                Ok(()) => Ok(()),
                Err(Failed { error, committed: Some(false) }) => {
                    // No commit names the version: its files go now (best effort; else the
                    // next sweep takes the local ones).
                    let _ = std::fs::remove_dir_all(table.join(version));
                    if let Some(remote) = &self.remote {
                        let _ = block_on(table, remote.remove(&format!("{}/{version}", relative(table)?)));
                    }
                    Err(error)
                }
                Err(Failed { error, .. }) => Err(error),
            },
        }
    }

    fn microsecond_times(&self) -> bool {
        true
    }

    fn kept_versions(&self) -> usize {
        self.kept
    }
}

/// A commit that failed, and whether the log names the version after all (`None`: the
/// log could not be read, so its files must stay).
struct Failed {
    error: StorageError,
    committed: Option<bool>,
}

impl From<StorageError> for Failed {
    /// A failure before anything was committed.
    fn from(error: StorageError) -> Failed {
        Failed { error, committed: Some(false) }
    }
}

/// What a run knows of a table.
#[derive(Clone, Debug)]
struct Known {
    /// The Delta table state its next commit builds on: the latest when the run first
    /// read the table, then that of its own last commit (`None`: there was no Delta
    /// table).
    state: Option<DeltaTableState>,
    /// The current version directory.
    current: Option<String>,
}

/// What `_etlm_view.json` holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct ViewPointer {
    version: String,
}

impl DeltaLog {
    /// Tables in the local folders, or on S3 (`remote`) cached in them, keeping `kept`
    /// versions of each.
    pub fn new(remote: Option<Remote>, kept: usize) -> DeltaLog {
        DeltaLog { known: Mutex::default(), remote, kept, as_of: None }
    }

    /// The same tables, read as they were at `as_of` (when there is one).
    pub fn reading_at(self, as_of: Option<AsOf>) -> DeltaLog {
        DeltaLog { as_of, ..self }
    }

    /// Makes a folder in `root` for every table of the S3 location that has none yet, so
    /// that the warehouse lists it (nothing to do for a local location).
    pub fn mirror_folders(&self, root: &Path) -> Result<(), StorageError> {
        let Some(remote) = &self.remote else { return Ok(()) };
        let tables = block_on(root, remote.tables())?.map_err(|e| log_error(root, e))?;
        for table in tables {
            let dir = root.join(&table);
            std::fs::create_dir_all(&dir).map_err(|source| StorageError::Io { action: "create", path: dir, source })?;
        }
        Ok(())
    }

    /// What this run knows of the table, read now if it knows nothing yet (on S3 its
    /// current version is then downloaded unless the cache has it).
    fn known(&self, table: &Path) -> Result<Known, StorageError> {
        if let Some(known) = self.known.lock().expect("known tables").get(table) {
            return Ok(known.clone());
        }
        let view = self.view_version(table)?;
        let committed = match self.as_of {
            None => self.latest(table)?,
            Some(as_of) => self.state_at(table, as_of)?,
        };
        let named = committed.as_ref().and_then(|state| state.metadata().configuration().get(VERSION_KEY).cloned());
        let mut current = view.max(named);
        match (&self.remote, &current) {
            (Some(remote), Some(version)) => cache(remote, table, version)?,
            // A version older than the folder keeps is gone: the table reads as absent.
            (None, Some(version)) if self.as_of.is_some() && !table.join(version).is_dir() => current = None,
            _ => {}
        }
        let known = Known { state: committed, current };
        self.remember(table, known.clone());
        Ok(known)
    }

    fn remember(&self, table: &Path, known: Known) {
        self.known.lock().expect("known tables").insert(table.to_path_buf(), known);
    }

    /// The table's Delta log: in its folder, or under its key on S3.
    fn log_store(&self, table: &Path) -> Result<LogStoreRef, StorageError> {
        match &self.remote {
            Some(remote) => remote.log_store(&relative(table)?).map_err(|e| log_error(table, e)),
            None => {
                let url = deltalake::ensure_table_uri(utf8(table)?).map_err(|e| log_error(table, e))?;
                logstore_for(&url, StorageConfig::default()).map_err(|e| log_error(table, e))
            }
        }
    }

    /// The version `_etlm_view.json` names, if the relation has one.
    fn view_version(&self, table: &Path) -> Result<Option<String>, StorageError> {
        let bytes = match &self.remote {
            Some(remote) => {
                let key = format!("{}/{VIEW_FILE}", relative(table)?);
                block_on(table, remote.get(&key))?.map_err(|e| log_error(table, e))?.map(|b| b.to_vec())
            }
            None => match std::fs::read(table.join(VIEW_FILE)) {
                Ok(bytes) => Some(bytes),
                Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => None,
                Err(source) => return Err(StorageError::Io { action: "read", path: table.join(VIEW_FILE), source }),
            },
        };
        Ok(bytes.and_then(|b| serde_json::from_slice::<ViewPointer>(&b).ok()).map(|p| p.version))
    }

    /// The table's latest state; `None` when there is no Delta table.
    fn latest(&self, table: &Path) -> Result<Option<DeltaTableState>, StorageError> {
        let store = self.log_store(table)?;
        let loaded = block_on(table, async move {
            if !store.is_delta_table_location().await? {
                return Ok(None);
            }
            let mut loaded = deltalake::DeltaTable::new(store);
            loaded.load().await?;
            Ok::<_, deltalake::DeltaTableError>(Some(loaded.snapshot()?.clone()))
        })?;
        loaded.map_err(|e| log_error(table, e))
    }

    /// The table's state at `as_of`: its version of that number, or its latest commit made
    /// by that time; `None` when it had none.
    fn state_at(&self, table: &Path, as_of: AsOf) -> Result<Option<DeltaTableState>, StorageError> {
        let store = self.log_store(table)?;
        let loaded = block_on(table, async move {
            if !store.is_delta_table_location().await? {
                return Ok(None);
            }
            let mut loaded = deltalake::DeltaTable::new(store);
            let found = match as_of {
                AsOf::Version(version) => loaded.load_version(version as Version).await,
                AsOf::Time(at) => loaded.load_with_datetime(at).await,
            };
            match found {
                Err(deltalake::DeltaTableError::InvalidVersion(_) | deltalake::DeltaTableError::NotATable(_)) => {
                    return Ok(None);
                }
                other => other?,
            }
            let state = loaded.snapshot()?.clone();
            // Before its first commit, a time finds that commit: the table did not exist yet.
            let made = state.version_timestamp(state.version() as Version);
            let too_late = matches!((as_of, made), (AsOf::Time(at), Some(made)) if made > at.timestamp_millis());
            Ok::<_, deltalake::DeltaTableError>((!too_late).then_some(state))
        })?;
        loaded.map_err(|e| log_error(table, e))
    }

    /// One commit that makes the files of `table/version/` the table's, replacing every
    /// file of the version this run read (or creating the table), with `meta`'s columns as
    /// its schema. Fails as a conflict if another writer committed after that version.
    /// When the commit call fails, the log is read again to tell whether the version was
    /// committed after all (an error after the log entry was written).
    fn commit_table(&self, table: &Path, version: &str, meta: &RelationMeta) -> Result<(), Failed> {
        let base = self.known(table)?.state;
        let base_version = base.as_ref().map(|state| state.version() as Version);
        let adds = version_files(table, version, &meta.partition_by)?;
        let schema = delta_schema(table, meta)?;
        let store = self.log_store(table)?;
        let partition_by = meta.partition_by.clone();
        let committed = block_on(table, async move {
            match &base {
                None => create(store, schema, partition_by, version, adds).await,
                Some(base) => replace(store, base, schema, partition_by, version, adds).await,
            }
        })
        .map_err(|error| Failed { error, committed: None })?;
        match committed {
            Ok(state) => {
                self.remember(table, Known { state: Some(state), current: Some(version.to_string()) });
                Ok(())
            }
            Err(e) => {
                let latest = match self.latest(table) {
                    Ok(latest) => latest,
                    Err(_) => return Err(Failed { error: log_error(table, e), committed: None }),
                };
                let named = latest.as_ref().and_then(|s| s.metadata().configuration().get(VERSION_KEY).cloned());
                if named.as_deref() == Some(version) {
                    self.remember(table, Known { state: latest, current: Some(version.to_string()) });
                    return Ok(());
                }
                let latest = latest.map(|s| s.version() as Version);
                let error = match latest.filter(|l| base_version.is_none_or(|b| *l > b)) {
                    Some(latest) => log_error(
                        table,
                        format!(
                            "another writer committed version {latest} after this run read {}; \
                             this run's version was not committed (run again to build on theirs)",
                            base_version.map_or("no table".to_string(), |b| format!("version {b}"))
                        ),
                    ),
                    None => log_error(table, e),
                };
                Err(Failed { error, committed: Some(false) })
            }
        }
    }
}

/// Creates the table at version 0, failing if another writer created it first.
async fn create(
    store: LogStoreRef,
    schema: StructType,
    partition_by: Vec<String>,
    version: &str,
    adds: Vec<Action>,
) -> deltalake::DeltaResult<DeltaTableState> {
    let table = CreateBuilder::new()
        .with_log_store(store)
        .with_columns(schema.fields().cloned())
        .with_partition_columns(partition_by)
        .with_actions(adds)
        .with_save_mode(SaveMode::ErrorIfExists)
        .with_configuration([(VERSION_KEY, Some(version))])
        .with_raise_if_key_not_exists(false)
        .with_commit_properties(CommitProperties::default().with_max_retries(0))
        .await?;
    Ok(table.snapshot()?.clone())
}

/// Replaces every file of the table's state `state` by `adds`, with `schema`, as the
/// commit after it; fails if that commit exists already.
async fn replace(
    store: LogStoreRef,
    state: &DeltaTableState,
    schema: StructType,
    partition_by: Vec<String>,
    version: &str,
    adds: Vec<Action>,
) -> deltalake::DeltaResult<DeltaTableState> {
    let url = store.root_url().clone();
    let removes: Vec<Action> = state
        .snapshot()
        .file_views(store.as_ref(), None)
        .map_ok(|file| file.remove_action(true).into())
        .try_collect()
        .await?;
    let metadata = new_metadata(&schema, partition_by, [(VERSION_KEY, version)])?
        .with_table_id(state.metadata().id().to_string())?;
    let upgrade = upgraded_protocol(state.protocol(), &schema)?;
    let mut actions: Vec<Action> = upgrade.iter().cloned().map(Action::Protocol).collect();
    actions.push(Action::Metadata(metadata.clone()));
    actions.extend(removes);
    actions.extend(adds);
    let protocol = upgrade.unwrap_or_else(|| state.protocol().clone());
    let operation = DeltaOperation::Create { mode: SaveMode::Overwrite, location: url, protocol, metadata };
    let commit = CommitBuilder::from(CommitProperties::default().with_max_retries(0))
        .with_actions(actions)
        .build(Some(state), store, operation)
        .await?;
    Ok(commit.snapshot())
}

/// The protocol a table needs once `schema` is its schema, if `current` falls short: a
/// time without time zone needs the `timestampNtz` feature (reader 3, writer 7, where the
/// features the older versions imply are named one by one).
fn upgraded_protocol(current: &Protocol, schema: &StructType) -> deltalake::DeltaResult<Option<Protocol>> {
    let value = serde_json::to_value(current)?;
    let named = |key: &str| -> Vec<String> {
        value[key].as_array().into_iter().flatten().filter_map(|f| f.as_str().map(str::to_string)).collect()
    };
    let (mut reader, mut writer) = (named("readerFeatures"), named("writerFeatures"));
    if !contains_timestampntz(schema.fields()) || reader.iter().any(|f| f == "timestampNtz") {
        return Ok(None);
    }
    if value["minReaderVersion"].as_i64().unwrap_or(1) == 2 {
        reader.push("columnMapping".to_string());
    }
    let writer_version = value["minWriterVersion"].as_i64().unwrap_or(2);
    if writer_version < 7 {
        const IMPLIED: &[(i64, &str)] = &[
            (2, "appendOnly"),
            (2, "invariants"),
            (3, "checkConstraints"),
            (4, "changeDataFeed"),
            (4, "generatedColumns"),
            (5, "columnMapping"),
            (6, "identityColumns"),
        ];
        writer = IMPLIED.iter().filter(|(v, _)| *v <= writer_version).map(|(_, f)| f.to_string()).collect();
    }
    reader.push("timestampNtz".to_string());
    writer.push("timestampNtz".to_string());
    let upgraded = serde_json::json!({
        "minReaderVersion": 3,
        "minWriterVersion": 7,
        "readerFeatures": reader,
        "writerFeatures": writer,
    });
    Ok(Some(serde_json::from_value(upgraded)?))
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

/// Downloads `version` of the S3 table cached in `table` unless the cache has it.
fn cache(remote: &Remote, table: &Path, version: &str) -> Result<(), StorageError> {
    let dir = table.join(version);
    if dir.is_dir() {
        return Ok(());
    }
    // Downloaded beside it, then renamed: a cached version is always whole.
    let partial = table.join(format!(".{version}.download"));
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| StorageError::Io { action, path, source }
    };
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(io("remove", &partial))?;
    }
    let key = format!("{}/{version}", relative(table)?);
    block_on(table, remote.download(&key, &partial))?.map_err(|e| log_error(table, e))?;
    std::fs::create_dir_all(&partial).map_err(io("create", &partial))?;
    std::fs::rename(&partial, &dir).map_err(io("rename", &partial))
}

/// `schema/name` of the table in `table` (its folder's last two parts).
fn relative(table: &Path) -> Result<String, StorageError> {
    let name = table.file_name().and_then(|n| n.to_str());
    let schema = table.parent().and_then(Path::file_name).and_then(|n| n.to_str());
    match (schema, name) {
        (Some(schema), Some(name)) => Ok(format!("{schema}/{name}")),
        _ => Err(log_error(table, "the table's folder is not `<schema>/<name>` in UTF-8")),
    }
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
