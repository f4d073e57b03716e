//! The warehouse directory: versions, the symlink swap that publishes them (or the table
//! log that does, [`TableLog`]), the writer lock and the sweep of leftovers.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::lock::{LockKind, OnContention, WarehouseLock};
use super::meta::{META_FILE, RelationMeta};

const VERSIONS_DIR: &str = ".versions";
const STAGING_SUFFIX: &str = ".staging";
const LINK_SUFFIX: &str = ".link";

/// A failure reading or changing the warehouse directory.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A filesystem call failed.
    #[error("could not {action} `{path}`: {source}")]
    Io {
        /// What etlm was doing, e.g. `create directory`.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Another process holds the writer lock.
    #[error("another etlm run holds the lock on warehouse `{root}` ({holder})")]
    Locked {
        /// The warehouse root.
        root: PathBuf,
        /// What the holder wrote into the lock file: `pid 1234, started 2026-...`.
        holder: String,
    },
    /// A published version's `_etlm.json` does not parse: the relation is neither taken
    /// as absent (an incremental model would be rebuilt over its history) nor read.
    #[error(
        "the metadata of `{relation}` is corrupt: `{path}` does not parse ({reason}); etlm changed nothing. \
         Restore the file from a backup, or remove the link `{link}` so the next run rebuilds `{relation}` \
         from scratch (an incremental model then loses its history)"
    )]
    CorruptMeta {
        /// `schema.name`.
        relation: String,
        /// The metadata file.
        path: PathBuf,
        /// What the JSON parser said.
        reason: String,
        /// The relation's link in its schema folder.
        link: PathBuf,
    },
    /// A warehouse folder whose parent does not exist either: a mistyped path or an
    /// unmounted disk, never created silently.
    #[error(
        "the warehouse folder `{path}` does not exist, and neither does its parent folder `{parent}`: \
         create it, or fix the `path:` of the target"
    )]
    MissingParent {
        /// The warehouse root as given.
        path: PathBuf,
        /// Its parent.
        parent: PathBuf,
    },
    /// A schema or relation name that cannot be a directory name.
    #[error("`{name}` cannot name a schema or relation in the warehouse: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A warehouse root that DataFusion cannot address as a path.
    #[error("the warehouse path `{path}` is not supported: {reason}")]
    UnsupportedPath {
        /// The root as given.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// A partition to reuse that is not a relative `col=value[/col=value]` path.
    #[error("`{partition}` is not a partition path like `dt=2024-01-01`")]
    InvalidPartition {
        /// The rejected partition.
        partition: String,
    },
    /// `drop_relation` found something at the relation's path that etlm did not publish.
    #[error("`{path}` is not a relation published by etlm (expected a symlink)")]
    NotARelation {
        /// The path.
        path: PathBuf,
    },
    /// A table log could not be read or committed to.
    #[error("the table log of `{table}`: {reason}")]
    Log {
        /// The relation's folder.
        table: PathBuf,
        /// What the table format said.
        reason: String,
    },
}

/// A table format's log, which records which version of each relation is current in place
/// of the warehouse's symlinks (Delta Lake, `engine/delta`). Each relation is then a folder
/// `<root>/<schema>/<name>/` holding its version directories (`<version>/`, and
/// `<version>.staging/` while one is written) beside the log, whose entries start with `_`.
pub trait TableLog: Send + Sync + std::fmt::Debug {
    /// The version the log names current in the relation's folder `table`, if any.
    fn current(&self, table: &Path) -> Result<Option<String>, StorageError>;

    /// Makes `version` (a complete, synced directory in `table`, described by `meta`) the
    /// current one, in one atomic step. When that fails, the log removes the directory if
    /// it is sure no commit names it.
    fn commit(&self, table: &Path, version: &str, meta: &RelationMeta) -> Result<(), StorageError>;

    /// Whether the format stores times to the microsecond at most (Delta Lake does): then
    /// nanosecond times are written as microseconds.
    fn microsecond_times(&self) -> bool;

    /// How many published versions of each relation stay on disk, the current one
    /// included (at least 2, as on the symlink layout): older commits of the log can be
    /// read while their files stay.
    fn kept_versions(&self) -> usize;
}

pub(super) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { action, path, source }
}

/// The on-disk warehouse of the embedded engine (see the module docs for the layout).
#[derive(Clone, Debug)]
pub struct Warehouse {
    root: PathBuf,
    /// What records the current versions: `None` for symlinks.
    log: Option<Arc<dyn TableLog>>,
}

/// A published relation: its name, the version directory it resolves to and its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRelation {
    /// Schema (directory under the root).
    pub schema: String,
    /// Relation name (the symlink in the schema directory).
    pub name: String,
    /// The version the symlink points at.
    pub version: String,
    /// Absolute path of the version directory; its files never change.
    pub dir: PathBuf,
    /// The version's `_etlm.json`.
    pub meta: RelationMeta,
}

impl StoredRelation {
    /// The hive partitions of this version, as relative paths (`dt=2024-01-01`), sorted.
    pub fn partitions(&self) -> Result<Vec<String>, StorageError> {
        list_partitions(&self.dir, &self.meta.partition_by)
    }
}

/// A fresh, unpublished version directory (`<version>.staging`) that no reader sees.
///
/// Dropping it without `Warehouse::publish` deletes the directory; after a crash the
/// next `Warehouse::sweep` does.
#[derive(Debug)]
pub struct Staging {
    schema: String,
    name: String,
    version: String,
    dir: PathBuf,
    published: bool,
    microsecond_times: bool,
}

impl Staging {
    /// The directory to write Parquet files into (absolute, valid UTF-8).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The hive partitions written so far, as relative paths (`dt=2024-01-01`), sorted.
    pub fn partitions(&self, partition_by: &[String]) -> Result<Vec<String>, StorageError> {
        list_partitions(&self.dir, partition_by)
    }

    /// Whether times are to be written to the microsecond at most ([`TableLog::microsecond_times`]).
    pub fn microsecond_times(&self) -> bool {
        self.microsecond_times
    }

    /// This staging version's name (unique within its relation).
    pub fn version_name(&self) -> String {
        self.version.clone()
    }

    /// Hard-links every data file of `from`'s version into this staging directory.
    pub fn link_all(&self, from: &StoredRelation) -> Result<(), StorageError> {
        for entry in dir_entries(&from.dir)? {
            if entry == META_FILE {
                continue;
            }
            let source = from.dir.join(&entry);
            if source.is_dir() {
                link_tree(&source, &self.dir.join(&entry))?;
            } else {
                fs::hard_link(&source, self.dir.join(&entry)).map_err(io_err("hard-link", &source))?;
            }
        }
        Ok(())
    }

    /// Moves every data file of `other` (another staging directory) into this one, at the
    /// same relative path, its name prefixed with `prefix` so it cannot clash with a
    /// file already here.
    pub fn adopt(&self, other: &Staging, prefix: &str) -> Result<(), StorageError> {
        move_tree(&other.dir, &self.dir, prefix)
    }

    /// Hard-links every file of `partition` (`dt=2024-01-01`, or `a=1/b=2` for nested
    /// partitioning) from the version of `from` into this staging directory, so an
    /// unchanged partition is reused without copying.
    pub fn link_partition(&self, from: &StoredRelation, partition: &str) -> Result<(), StorageError> {
        let relative = Path::new(partition);
        let valid = !partition.is_empty()
            && relative.components().all(|c| matches!(c, Component::Normal(s) if s.to_string_lossy().contains('=')));
        if !valid {
            return Err(StorageError::InvalidPartition { partition: partition.to_string() });
        }
        link_tree(&from.dir.join(relative), &self.dir.join(relative))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            // Best effort: a leftover is harmless and the next sweep removes it.
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// What `Warehouse::sweep` removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// `*.staging` directories left by crashed or failed runs.
    pub staging_dirs: usize,
    /// Temporary symlinks left between creation and rename.
    pub temp_links: usize,
    /// Version directories no relation points at any more.
    pub old_versions: usize,
}

impl Warehouse {
    /// Opens the warehouse at `root`, creating the directory if it is missing and its
    /// parent exists (a missing parent is a mistyped path, or a disk not mounted).
    ///
    /// The root must be valid UTF-8 without glob characters (`*`, `?`, `[`), because
    /// DataFusion addresses tables by path strings.
    pub fn open(root: impl AsRef<Path>) -> Result<Warehouse, StorageError> {
        let root = root.as_ref();
        let unsupported = |reason| StorageError::UnsupportedPath { path: root.to_path_buf(), reason };
        let text = root.to_str().ok_or_else(|| unsupported("it is not valid UTF-8"))?;
        if text.contains(['*', '?', '[']) {
            return Err(unsupported("it contains a glob character (`*`, `?` or `[`)"));
        }
        let parent = root.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !root.exists() && !parent.is_dir() {
            return Err(StorageError::MissingParent { path: root.to_path_buf(), parent: parent.to_path_buf() });
        }
        match fs::create_dir(root) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(io_err("create directory", root)(e)),
            _ => {}
        }
        let root = root.canonicalize().map_err(io_err("resolve", root))?;
        if root.to_str().is_none_or(|t| t.contains(['*', '?', '['])) {
            return Err(StorageError::UnsupportedPath { path: root, reason: "its resolved path is not plain UTF-8" });
        }
        Ok(Warehouse { root, log: None })
    }

    /// Opens the warehouse at `root` like [`Warehouse::open`], its current versions
    /// recorded by `log` rather than by symlinks.
    pub fn open_with_log(root: impl AsRef<Path>, log: Arc<dyn TableLog>) -> Result<Warehouse, StorageError> {
        Ok(Warehouse { log: Some(log), ..Warehouse::open(root)? })
    }

    /// The warehouse root (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the writer lock: exclusive on the symlink layout, advisory where a table log
    /// commits the versions (`lock.rs`).
    pub fn lock(&self, on_contention: OnContention) -> Result<WarehouseLock, StorageError> {
        let kind = if self.log.is_some() { LockKind::Advisory } else { LockKind::Exclusive };
        WarehouseLock::take(&self.root, kind, on_contention)
    }

    /// Every published relation, sorted by schema and name. Dot-directories, plain
    /// directories and symlinks that do not lead to a version with an `_etlm.json` are
    /// skipped; one whose `_etlm.json` does not parse is an error.
    pub fn relations(&self) -> Result<Vec<StoredRelation>, StorageError> {
        let mut found = Vec::new();
        for schema in visible_entries(&self.root)? {
            let schema_dir = self.root.join(&schema);
            if !schema_dir.is_dir() {
                continue;
            }
            for name in visible_entries(&schema_dir)? {
                if let Some(relation) = self.resolve(&schema, &name)? {
                    found.push(relation);
                }
            }
        }
        found.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
        Ok(found)
    }

    /// The published relation `schema.name`, if there is one.
    pub fn relation(&self, schema: &str, name: &str) -> Result<Option<StoredRelation>, StorageError> {
        validate_name(schema)?;
        validate_name(name)?;
        self.resolve(schema, name)
    }

    /// Creates a fresh staging directory for a new version of `schema.name`.
    pub fn stage(&self, schema: &str, name: &str) -> Result<Staging, StorageError> {
        validate_name(schema)?;
        validate_name(name)?;
        let versions = self.versions_dir(schema, name);
        fs::create_dir_all(&versions).map_err(io_err("create directory", &versions))?;
        loop {
            let version = next_version(&versions)?;
            let dir = versions.join(format!("{version}{STAGING_SUFFIX}"));
            match fs::create_dir(&dir) {
                Ok(()) => {
                    let microsecond_times = self.log.as_ref().is_some_and(|log| log.microsecond_times());
                    let (schema, name) = (schema.into(), name.into());
                    return Ok(Staging { schema, name, version, dir, published: false, microsecond_times });
                }
                // Another stager took this number between our listing and mkdir.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err("create directory", &dir)(e)),
            }
        }
    }

    /// Makes `staging` the current version of its relation: writes `meta` as
    /// `_etlm.json`, syncs everything, renames the directory to its final version name
    /// and atomically swaps the relation's symlink to it. The previous version stays on
    /// disk (open readers keep working) until `sweep`. `passing` is called at the
    /// `before-rename` and `before-swap` failpoints.
    pub fn publish(
        &self,
        mut staging: Staging,
        meta: RelationMeta,
        passing: &dyn Fn(&str),
    ) -> Result<StoredRelation, StorageError> {
        let meta_path = staging.dir.join(META_FILE);
        let json = serde_json::to_vec_pretty(&meta).expect("metadata always serializes");
        write_synced(&meta_path, &json)?;
        sync_tree(&staging.dir)?;
        passing("before-rename");

        let versions = self.versions_dir(&staging.schema, &staging.name);
        let final_dir = versions.join(&staging.version);
        fs::rename(&staging.dir, &final_dir).map_err(io_err("rename", &staging.dir))?;
        staging.published = true;
        sync_dir(&versions)?;
        passing("before-swap");

        let schema_dir = self.root.join(&staging.schema);
        match &self.log {
            Some(log) => log.commit(&versions, &staging.version, &meta)?,
            None => {
                let target = Path::new(VERSIONS_DIR).join(&staging.name).join(&staging.version);
                let temp = schema_dir.join(format!(".{}.{}{LINK_SUFFIX}", staging.name, staging.version));
                symlink(&target, &temp).map_err(io_err("create symlink", &temp))?;
                let link = schema_dir.join(&staging.name);
                // rename(2) replaces the old symlink atomically: readers see old or new, never nothing.
                fs::rename(&temp, &link).map_err(io_err("replace symlink", &link))?;
                sync_dir(&schema_dir)?;
            }
        }
        sync_dir(&self.root)?;

        Ok(StoredRelation {
            schema: staging.schema.clone(),
            name: staging.name.clone(),
            version: staging.version.clone(),
            dir: final_dir,
            meta,
        })
    }

    /// Unpublishes `schema.name` atomically; its versions go at the next `sweep`.
    /// Returns whether there was a relation to drop.
    pub fn drop_relation(&self, schema: &str, name: &str) -> Result<bool, StorageError> {
        validate_name(schema)?;
        validate_name(name)?;
        let schema_dir = self.root.join(schema);
        let link = schema_dir.join(name);
        match fs::symlink_metadata(&link) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err("inspect", &link)(e)),
            Ok(m) if !m.file_type().is_symlink() => return Err(StorageError::NotARelation { path: link }),
            Ok(_) => {}
        }
        let temp = schema_dir.join(format!(".{name}.{}.drop{LINK_SUFFIX}", now_micros()));
        fs::rename(&link, &temp).map_err(io_err("rename", &link))?;
        fs::remove_file(&temp).map_err(io_err("remove", &temp))?;
        sync_dir(&schema_dir)?;
        Ok(true)
    }

    /// Deletes staging directories, temporary symlinks and versions no relation points
    /// at, but for the one before each relation's current version (readers that resolved
    /// the link just before the last publish may still be reading it), or the
    /// [`TableLog::kept_versions`] before it. Taking the lock
    /// guard proves no other run is staging or publishing; a guest's lock, or a holder's
    /// while a guest writes, sweeps nothing ([`WarehouseLock::may_clean`]).
    pub fn sweep(&self, lock: &WarehouseLock) -> Result<SweepReport, StorageError> {
        debug_assert_eq!(lock.root(), self.root, "the lock must belong to this warehouse");
        let mut report = SweepReport::default();
        if !lock.may_clean()? {
            return Ok(report);
        }
        for schema in visible_entries(&self.root)? {
            let schema_dir = self.root.join(&schema);
            if !schema_dir.is_dir() {
                continue;
            }
            for entry in dir_entries(&schema_dir)? {
                let path = schema_dir.join(&entry);
                let is_link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
                if entry.starts_with('.') && entry.ends_with(LINK_SUFFIX) && is_link {
                    fs::remove_file(&path).map_err(io_err("remove", &path))?;
                    report.temp_links += 1;
                }
            }
            let versions_root = match self.log {
                Some(_) => schema_dir.clone(),
                None => schema_dir.join(VERSIONS_DIR),
            };
            if !versions_root.is_dir() {
                continue;
            }
            for name in dir_entries(&versions_root)? {
                let versions = versions_root.join(&name);
                if self.log.is_some() && (name.starts_with('.') || !versions.is_dir()) {
                    continue;
                }
                let current = self.current(&schema, &name)?;
                let entries: Vec<String> =
                    dir_entries(&versions)?.into_iter().filter(|e| self.log.is_none() || is_version(e)).collect();
                // The versions before the current one that `prune` keeps stay: a reader that
                // resolved the link a moment before the last publish still reads the last.
                let mut older: Vec<String> = entries
                    .iter()
                    .filter(|v| !v.ends_with(STAGING_SUFFIX) && current.as_ref().is_some_and(|c| *v < c))
                    .cloned()
                    .collect();
                older.sort();
                let kept = older.split_off(older.len().saturating_sub(self.kept_before_current()));
                for version in entries {
                    if current.as_deref() == Some(version.as_str()) || kept.contains(&version) {
                        continue;
                    }
                    remove_any(&versions.join(&version))?;
                    if version.ends_with(STAGING_SUFFIX) {
                        report.staging_dirs += 1;
                    } else {
                        report.old_versions += 1;
                    }
                }
                if current.is_none() && self.log.is_none() {
                    fs::remove_dir(&versions).map_err(io_err("remove", &versions))?;
                }
            }
            sync_dir(&versions_root)?;
        }
        Ok(report)
    }

    /// Removes the published versions of `schema.name` older than the one before the
    /// current (or than the [`TableLog::kept_versions`]): a run that publishes a
    /// relation many times (a backfill's batches) keeps two versions on disk, not one per
    /// batch. The previous one stays for readers that resolved it a moment ago; staging
    /// directories are left alone.
    /// Takes the lock guard, like `sweep`.
    pub fn prune(&self, lock: &WarehouseLock, schema: &str, name: &str) -> Result<usize, StorageError> {
        debug_assert_eq!(lock.root(), self.root, "the lock must belong to this warehouse");
        if !lock.may_clean()? {
            return Ok(0);
        }
        let Some(current) = self.current(schema, name)? else { return Ok(0) };
        let versions = self.versions_dir(schema, name);
        let mut published: Vec<String> = dir_entries(&versions)?
            .into_iter()
            .filter(|v| (self.log.is_none() || is_version(v)) && !v.ends_with(STAGING_SUFFIX) && *v < current)
            .collect();
        published.sort();
        published.truncate(published.len().saturating_sub(self.kept_before_current()));
        for version in &published {
            remove_any(&versions.join(version))?;
        }
        Ok(published.len())
    }

    /// How many published versions before a relation's current one stay on disk: one, or
    /// what the table log keeps.
    fn kept_before_current(&self) -> usize {
        self.log.as_ref().map_or(2, |log| log.kept_versions().max(2)) - 1
    }

    /// The directory holding `schema.name`'s versions: `<schema>/.versions/<name>` beside
    /// the symlinks, or the relation's own folder `<schema>/<name>` beside its table log.
    fn versions_dir(&self, schema: &str, name: &str) -> PathBuf {
        match self.log {
            Some(_) => self.root.join(schema).join(name),
            None => self.root.join(schema).join(VERSIONS_DIR).join(name),
        }
    }

    /// The version `schema.name` is published at, if any.
    fn current(&self, schema: &str, name: &str) -> Result<Option<String>, StorageError> {
        match &self.log {
            Some(log) => log.current(&self.versions_dir(schema, name)),
            None => Ok(current_version(&self.root.join(schema), name)),
        }
    }

    /// Follows `<root>/<schema>/<name>` if it is a symlink to a valid version.
    /// A fingerprint of `schema.name`'s data: the version it points at, with the path,
    /// size and modification time of every file in it, so a version whose files another
    /// tool rewrote in place changes it too. `None` if there is no such relation.
    pub fn fingerprint(&self, schema: &str, name: &str) -> Option<String> {
        use sha2::{Digest, Sha256};
        validate_name(schema).ok()?;
        validate_name(name).ok()?;
        let version = self.current(schema, name).ok()??;
        let dir = self.versions_dir(schema, name).join(&version);
        let mut hash = Sha256::new();
        hash.update(self.root.to_string_lossy().as_bytes());
        let mut files: Vec<(String, u64, u128)> = Vec::new();
        for entry in walkdir::WalkDir::new(&dir).min_depth(1) {
            let entry = entry.ok()?;
            let meta = entry.metadata().ok()?;
            if meta.is_file() {
                let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
                files.push((
                    entry.path().strip_prefix(&dir).ok()?.to_string_lossy().into_owned(),
                    meta.len(),
                    modified,
                ));
            }
        }
        files.sort();
        for (path, len, modified) in &files {
            hash.update(format!("\0{path}\0{len}\0{modified}").as_bytes());
        }
        Some(format!("{version}:{}", crate::hex::hex(&hash.finalize()[..12])))
    }

    fn resolve(&self, schema: &str, name: &str) -> Result<Option<StoredRelation>, StorageError> {
        let schema_dir = self.root.join(schema);
        let Some(version) = self.current(schema, name)? else { return Ok(None) };
        let dir = self.versions_dir(schema, name).join(&version);
        let meta_path = dir.join(META_FILE);
        let bytes = match fs::read(&meta_path) {
            Ok(bytes) => bytes,
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => return Ok(None),
            Err(e) => return Err(io_err("read", &meta_path)(e)),
        };
        let meta = serde_json::from_slice::<RelationMeta>(&bytes).map_err(|e| StorageError::CorruptMeta {
            relation: format!("{schema}.{name}"),
            path: meta_path.clone(),
            reason: e.to_string(),
            link: schema_dir.join(name),
        })?;
        Ok(Some(StoredRelation { schema: schema.into(), name: name.into(), version, dir, meta }))
    }
}

/// Rejects names that would escape the warehouse, hide themselves or confuse DataFusion's
/// path parsing.
fn validate_name(name: &str) -> Result<(), StorageError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.starts_with('.') {
        "it starts with `.`"
    } else if name.contains(['/', '\0']) {
        "it contains `/` or a NUL byte"
    } else if name.contains(['*', '?', '[']) {
        "it contains a glob character (`*`, `?` or `[`)"
    } else {
        return Ok(());
    };
    Err(StorageError::InvalidName { name: name.to_string(), reason })
}

/// The version `<schema_dir>/<name>` links to, if it is a symlink of the form etlm writes.
/// True for a version directory's name (`1795305600000000`, or with `.staging`).
fn is_version(entry: &str) -> bool {
    entry.trim_end_matches(STAGING_SUFFIX).parse::<u128>().is_ok()
}

fn current_version(schema_dir: &Path, name: &str) -> Option<String> {
    let target = fs::read_link(schema_dir.join(name)).ok()?;
    let parts: Vec<&OsStr> = target.components().map(|c| c.as_os_str()).collect();
    match parts.as_slice() {
        [versions, link_name, version] if *versions == VERSIONS_DIR && *link_name == name => {
            let version = version.to_str()?;
            (!version.starts_with('.') && !version.ends_with(STAGING_SUFFIX)).then(|| version.to_string())
        }
        _ => None,
    }
}

/// A sortable version name: microseconds since the epoch, zero-padded, and always above
/// every existing version so names are never reused.
fn next_version(versions: &Path) -> Result<String, StorageError> {
    let highest = dir_entries(versions)?
        .iter()
        .filter_map(|entry| entry.trim_end_matches(STAGING_SUFFIX).parse::<u128>().ok())
        .max();
    let next = highest.map_or(0, |h| h.saturating_add(1)).max(now_micros());
    Ok(format!("{next:016}"))
}

pub(super) fn now_micros() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros())
}

/// Names in `dir` (UTF-8 only; etlm never creates other names).
fn dir_entries(dir: &Path) -> Result<Vec<String>, StorageError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Names in `dir` that do not start with a dot.
fn visible_entries(dir: &Path) -> Result<Vec<String>, StorageError> {
    Ok(dir_entries(dir)?.into_iter().filter(|n| !n.starts_with('.')).collect())
}

/// Partition paths under `dir`: one `col=value` level per partition column.
fn list_partitions(dir: &Path, partition_by: &[String]) -> Result<Vec<String>, StorageError> {
    if partition_by.is_empty() {
        return Ok(Vec::new());
    }
    let mut found = vec![String::new()];
    for column in partition_by {
        let prefix = format!("{column}=");
        let mut next = Vec::new();
        for parent in &found {
            for entry in dir_entries(&dir.join(parent))? {
                if entry.starts_with(&prefix) && dir.join(parent).join(&entry).is_dir() {
                    next.push(if parent.is_empty() { entry } else { format!("{parent}/{entry}") });
                }
            }
        }
        found = next;
    }
    Ok(found)
}

/// Moves the files of the tree `from` into the same places under `to`, renamed
/// `<prefix>-<name>`; `_etlm.json` stays.
fn move_tree(from: &Path, to: &Path, prefix: &str) -> Result<(), StorageError> {
    fs::create_dir_all(to).map_err(io_err("create directory", to))?;
    for entry in fs::read_dir(from).map_err(io_err("list", from))? {
        let entry = entry.map_err(io_err("list", from))?;
        let source = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().map_err(io_err("inspect", &source))?.is_dir() {
            move_tree(&source, &to.join(&name), prefix)?;
        } else if name != META_FILE {
            let dest = to.join(format!("{prefix}-{name}"));
            fs::rename(&source, &dest).map_err(io_err("move", &source))?;
        }
    }
    Ok(())
}

/// Recreates the directory tree `from` under `to` with hard links to its files.
fn link_tree(from: &Path, to: &Path) -> Result<(), StorageError> {
    fs::create_dir_all(to).map_err(io_err("create directory", to))?;
    for entry in fs::read_dir(from).map_err(io_err("list", from))? {
        let entry = entry.map_err(io_err("list", from))?;
        let source = entry.path();
        let dest = to.join(entry.file_name());
        let file_type = entry.file_type().map_err(io_err("inspect", &source))?;
        if file_type.is_dir() {
            link_tree(&source, &dest)?;
        } else {
            fs::hard_link(&source, &dest).map_err(io_err("hard-link", &dest))?;
        }
    }
    Ok(())
}

/// Replaces the file at `path` whole: a synced temporary sibling renamed over it, then
/// its directory synced, so a crash leaves the old content or the new one.
pub fn replace_synced(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let name = path.file_name().map_or_else(Default::default, |n| n.to_string_lossy().into_owned());
    let temp = path.with_file_name(format!(".{name}.tmp"));
    write_synced(&temp, bytes)?;
    fs::rename(&temp, path).map_err(io_err("rename", &temp))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let mut file = File::create(path).map_err(io_err("create", path))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io_err("write", path))
}

/// fsyncs every new file and every directory under `dir`, children before parents.
/// A file with more than one link was hard-linked from a published version, whose
/// data was synced when that version was published; only its new directory entry needs
/// the directory's sync.
fn sync_tree(dir: &Path) -> Result<(), StorageError> {
    use std::os::unix::fs::MetadataExt;
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let path = entry.path();
        let meta = entry.metadata().map_err(io_err("inspect", &path))?;
        if meta.is_dir() {
            sync_tree(&path)?;
        } else if meta.nlink() == 1 {
            File::open(&path).and_then(|f| f.sync_all()).map_err(io_err("sync", &path))?;
        }
    }
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(io_err("sync", dir))
}

fn remove_any(path: &Path) -> Result<(), StorageError> {
    let is_dir = fs::symlink_metadata(path).map_err(io_err("inspect", path))?.is_dir();
    let removed = if is_dir { fs::remove_dir_all(path) } else { fs::remove_file(path) };
    removed.map_err(io_err("remove", path))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::engine::ColumnMeta;
    use crate::engine::local::test_warehouse as warehouse;

    fn meta(partition_by: &[&str]) -> RelationMeta {
        let mut columns = vec![ColumnMeta { name: "id".into(), data_type: "Int64".into() }];
        columns.extend(partition_by.iter().map(|p| ColumnMeta { name: p.to_string(), data_type: "Utf8".into() }));
        RelationMeta::table(columns, partition_by.iter().map(|p| p.to_string()).collect())
    }

    /// Publishes `main.<name>` holding the given files (relative path, content).
    fn publish_files(wh: &Warehouse, name: &str, files: &[(&str, &str)], partition_by: &[&str]) -> StoredRelation {
        let staging = wh.stage("main", name).unwrap();
        for (path, content) in files {
            let path = staging.dir().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        wh.publish(staging, meta(partition_by), &|_| ()).unwrap()
    }

    #[test]
    fn publish_swaps_the_symlink_and_keeps_the_old_version_until_sweep() {
        let (_temp, wh) = warehouse();
        let first = publish_files(&wh, "orders", &[("a.parquet", "v1")], &[]);
        let second = publish_files(&wh, "orders", &[("b.parquet", "v2")], &[]);

        assert!(second.version > first.version);
        let link = wh.root().join("main/orders");
        assert_eq!(fs::read_link(&link).unwrap(), Path::new(".versions/orders").join(&second.version));
        assert_eq!(fs::read_to_string(link.join("b.parquet")).unwrap(), "v2");
        assert!(!link.join("a.parquet").exists());
        // A reader that resolved the first version still finds its files.
        assert_eq!(fs::read_to_string(first.dir.join("a.parquet")).unwrap(), "v1");
        assert!(second.dir.join(META_FILE).is_file());
        assert_eq!(wh.relations().unwrap(), vec![second.clone()]);
        assert_eq!(wh.relation("main", "orders").unwrap(), Some(second));
    }

    #[test]
    fn staging_is_invisible_and_removed_when_dropped_unpublished() {
        let (_temp, wh) = warehouse();
        let staging = wh.stage("main", "orders").unwrap();
        fs::write(staging.dir().join("x.parquet"), "x").unwrap();
        assert!(staging.dir().ends_with(format!("{}.staging", staging.version)));
        assert_eq!(wh.relations().unwrap(), vec![]);
        let dir = staging.dir().to_path_buf();
        drop(staging);
        assert!(!dir.exists());
    }

    #[test]
    fn link_partition_reuses_the_same_inode() {
        let (_temp, wh) = warehouse();
        let files = [("dt=2024-01-01/part.parquet", "day1"), ("dt=2024-01-02/part.parquet", "day2")];
        let current = publish_files(&wh, "events", &files, &["dt"]);
        assert_eq!(current.partitions().unwrap(), vec!["dt=2024-01-01", "dt=2024-01-02"]);

        let staging = wh.stage("main", "events").unwrap();
        staging.link_partition(&current, "dt=2024-01-01").unwrap();
        let old = fs::metadata(current.dir.join("dt=2024-01-01/part.parquet")).unwrap();
        let new = fs::metadata(staging.dir().join("dt=2024-01-01/part.parquet")).unwrap();
        assert_eq!(old.ino(), new.ino());
        assert_eq!(staging.partitions(&["dt".into()]).unwrap(), vec!["dt=2024-01-01"]);

        for bad in ["", "../x", "/etc", "plain"] {
            let err = staging.link_partition(&current, bad).unwrap_err();
            assert!(matches!(err, StorageError::InvalidPartition { .. }), "{bad}: {err}");
        }
        let missing = staging.link_partition(&current, "dt=2030-01-01").unwrap_err();
        assert!(missing.to_string().contains("dt=2030-01-01"), "{missing}");
    }

    #[test]
    fn sweep_removes_leftovers_and_superseded_versions_but_never_the_current_or_previous_one() {
        let (_temp, wh) = warehouse();
        let old = publish_files(&wh, "orders", &[("a.parquet", "v1")], &[]);
        let previous = publish_files(&wh, "orders", &[("p.parquet", "v1.5")], &[]);
        let current = publish_files(&wh, "orders", &[("b.parquet", "v2")], &[]);
        let gone = publish_files(&wh, "gone", &[("g.parquet", "g")], &[]);
        assert!(wh.drop_relation("main", "gone").unwrap());
        assert!(!wh.drop_relation("main", "gone").unwrap());
        // A crash after staging and one between creating and renaming a symlink.
        let crashed = wh.stage("main", "orders").unwrap();
        let crashed_dir = crashed.dir().to_path_buf();
        std::mem::forget(crashed);
        symlink(".versions/orders/1", wh.root().join("main/.orders.1.link")).unwrap();

        let lock = wh.lock(OnContention::Fail).unwrap();
        let report = wh.sweep(&lock).unwrap();
        assert_eq!(report, SweepReport { staging_dirs: 1, temp_links: 1, old_versions: 2 });
        assert!(!old.dir.exists() && !gone.dir.exists() && !crashed_dir.exists());
        assert!(previous.dir.exists(), "the version before the current one stays for readers");
        assert!(!wh.root().join("main/.versions/gone").exists());
        assert_eq!(wh.relations().unwrap(), vec![current.clone()]);
        assert_eq!(fs::read_to_string(current.dir.join("b.parquet")).unwrap(), "v2");
        assert_eq!(wh.sweep(&lock).unwrap(), SweepReport::default());
    }

    #[test]
    fn a_second_lock_fails_with_the_holder_until_the_first_is_dropped() {
        let (_temp, wh) = warehouse();
        let held = wh.lock(OnContention::Fail).unwrap();
        let err = wh.lock(OnContention::Fail).unwrap_err();
        let StorageError::Locked { holder, .. } = &err else { panic!("expected Locked, got {err}") };
        assert!(holder.starts_with(&format!("pid {}, started 20", std::process::id())), "{holder}");
        let message = err.to_string();
        assert!(message.starts_with("another etlm run holds the lock on warehouse `"), "{message}");
        drop(held);
        wh.lock(OnContention::Fail).unwrap();
    }

    #[test]
    fn relations_skip_what_etlm_did_not_publish() {
        let (_temp, wh) = warehouse();
        let orders = publish_files(&wh, "orders", &[("a.parquet", "v1")], &[]);
        let main = wh.root().join("main");
        fs::create_dir(main.join("plain_dir")).unwrap();
        symlink("nowhere", main.join("dangling")).unwrap();
        fs::create_dir_all(main.join(".versions/nometa/1")).unwrap();
        symlink(".versions/nometa/1", main.join("nometa")).unwrap();
        symlink(format!(".versions/orders/{}", orders.version), main.join("alias")).unwrap();
        fs::create_dir_all(wh.root().join(".hidden/x")).unwrap();
        fs::write(wh.root().join("stray.txt"), "").unwrap();
        assert_eq!(wh.relations().unwrap(), vec![orders]);
    }

    #[test]
    fn names_that_would_escape_or_hide_are_rejected() {
        let (_temp, wh) = warehouse();
        for bad in ["", ".versions", "a/b", "x*"] {
            assert!(matches!(wh.stage("main", bad), Err(StorageError::InvalidName { .. })), "{bad:?}");
        }
        assert!(matches!(wh.drop_relation("..", "x"), Err(StorageError::InvalidName { .. })));
        let temp = tempfile::tempdir().unwrap();
        let err = Warehouse::open(temp.path().join("wh[1]")).unwrap_err();
        assert!(matches!(err, StorageError::UnsupportedPath { .. }), "{err}");
    }
}
