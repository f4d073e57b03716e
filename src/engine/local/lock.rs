//! The warehouse's writer lock: `<root>/.etlm.lock`, an OS file lock a writing run holds
//! until it ends, with the holder's pid and start time in the file.
//!
//! On the symlink layout the lock is exclusive: a second writer fails at once
//! ([`StorageError::Locked`]) or queues behind it ([`OnContention::Wait`]).
//!
//! Where a table log commits each version ([`TableLog`](super::TableLog), Delta Lake),
//! the log's conditional commit keeps every table consistent, and the lock is
//! **advisory**. A writer that finds it held goes on as a *guest*, beside the holder: a
//! table both write gets one commit from each, the second of which fails as a conflict,
//! because the table changed after the run read it. A guest is recorded as a locked file
//! in `<root>/.etlm.guests/` for as long as it runs. Removing what no commit names (the
//! sweep of leftovers, old versions) is left to a holder while no guest runs
//! ([`WarehouseLock::may_clean`]), so no run deletes the files another is writing.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::meta::now;
use super::storage::{StorageError, io_err, now_micros};

const LOCK_FILE: &str = ".etlm.lock";
const GUESTS_DIR: &str = ".etlm.guests";

/// How a writer behaves when another process holds the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnContention {
    /// Block until the lock is free (call it from a blocking thread).
    Wait,
    /// Return `StorageError::Locked` at once, or, where the lock is advisory, go on as a
    /// guest.
    Fail,
}

/// Whether the lock binds every writer, or only advises them (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// One writer at a time.
    Exclusive,
    /// Writers beside the holder go on as guests.
    Advisory,
}

/// Held until dropped: the warehouse's writer lock, or, beside its holder, a guest's
/// record.
#[derive(Debug)]
pub struct WarehouseLock {
    _file: File,
    root: PathBuf,
    /// The holder this run writes beside (what it wrote in the lock file), and the
    /// guest file, if this run is a guest.
    guest: Option<(String, PathBuf)>,
}

impl WarehouseLock {
    /// Takes the lock of the warehouse at `root` and records this process in it.
    pub fn take(root: &Path, kind: LockKind, on_contention: OnContention) -> Result<WarehouseLock, StorageError> {
        let path = root.join(LOCK_FILE);
        let mut file = open_rw(&path)?;
        match (on_contention, file.try_lock()) {
            (_, Ok(())) => {}
            (OnContention::Wait, Err(TryLockError::WouldBlock)) => file.lock().map_err(io_err("lock", &path))?,
            (OnContention::Fail, Err(TryLockError::WouldBlock)) => {
                let holder = holder(&mut file);
                return match kind {
                    LockKind::Exclusive => Err(StorageError::Locked { root: root.to_path_buf(), holder }),
                    LockKind::Advisory => WarehouseLock::join(root, holder),
                };
            }
            (_, Err(TryLockError::Error(e))) => return Err(io_err("lock", &path)(e)),
        }
        file.set_len(0).and_then(|()| file.write_all(record().as_bytes())).map_err(io_err("write lock file", &path))?;
        Ok(WarehouseLock { _file: file, root: root.to_path_buf(), guest: None })
    }

    /// Records this run as a guest beside `holder`.
    fn join(root: &Path, holder: String) -> Result<WarehouseLock, StorageError> {
        let dir = root.join(GUESTS_DIR);
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let path = dir.join(format!("{}-{}", std::process::id(), now_micros()));
        let mut file = open_rw(&path)?;
        file.lock().map_err(io_err("lock", &path))?;
        file.write_all(record().as_bytes()).map_err(io_err("write", &path))?;
        Ok(WarehouseLock { _file: file, root: root.to_path_buf(), guest: Some((holder, path)) })
    }

    /// The warehouse root this lock belongs to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What the holder wrote in the lock file (`pid 1234, started 2026-...`), if this run
    /// is a guest beside it.
    pub fn guest_of(&self) -> Option<&str> {
        self.guest.as_ref().map(|(holder, _)| holder.as_str())
    }

    /// Whether this run may remove files no commit names: it holds the lock, and no guest
    /// is writing (the records of guests that ended are removed on the way).
    pub fn may_clean(&self) -> Result<bool, StorageError> {
        if self.guest.is_some() {
            return Ok(false);
        }
        let dir = self.root.join(GUESTS_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(io_err("list", &dir)(e)),
        };
        for entry in entries {
            let path = entry.map_err(io_err("list", &dir))?.path();
            let Ok(file) = File::open(&path) else { continue };
            match file.try_lock() {
                Ok(()) => {
                    let _ = fs::remove_file(&path);
                }
                Err(TryLockError::WouldBlock) => return Ok(false),
                Err(TryLockError::Error(e)) => return Err(io_err("lock", &path)(e)),
            }
        }
        Ok(true)
    }
}

impl Drop for WarehouseLock {
    fn drop(&mut self) {
        if let Some((_, path)) = &self.guest {
            // Best effort: a record left behind is unlocked, and the holder removes it.
            let _ = fs::remove_file(path);
        }
    }
}

/// What a holder or guest writes about itself.
fn record() -> String {
    format!("pid {}, started {}\n", std::process::id(), now())
}

/// What the holder wrote in the lock file (it may not have written it yet).
fn holder(file: &mut File) -> String {
    let mut holder = String::new();
    let _ = file.read_to_string(&mut holder);
    match holder.trim() {
        "" => "holder unknown".to_string(),
        line => line.to_string(),
    }
}

fn open_rw(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err("open lock file", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beside_an_advisory_holder_a_guest_writes_and_nobody_cleans_until_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let holder = WarehouseLock::take(dir.path(), LockKind::Advisory, OnContention::Fail).unwrap();
        assert_eq!(holder.guest_of(), None);
        assert!(holder.may_clean().unwrap());

        let guest = WarehouseLock::take(dir.path(), LockKind::Advisory, OnContention::Fail).unwrap();
        let of = guest.guest_of().expect("a guest");
        assert!(of.starts_with(&format!("pid {}, started 20", std::process::id())), "{of}");
        assert!(!guest.may_clean().unwrap(), "a guest never cleans");
        assert!(!holder.may_clean().unwrap(), "nor does the holder while a guest writes");

        drop(guest);
        assert!(holder.may_clean().unwrap());
        // A guest that died without removing its record is not taken for a live one.
        let stale = dir.path().join(GUESTS_DIR).join("1-1");
        fs::write(&stale, "pid 1, started 2026-01-01\n").unwrap();
        assert!(holder.may_clean().unwrap());
        assert!(!stale.exists(), "the holder removed the dead guest's record");
    }
}
