//! Work on files: written whole or not at all (a temporary sibling renamed into place),
//! and many small ones at once. A read that misses the page cache waits on the disk,
//! and with one thread per core (rayon) the cores then sit idle while the disk has one
//! request per core to serve. A project's 10,000s of model and compiled files are read
//! on more threads than cores, so the disk has many requests at a time.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::diagnostics::{Code, Diagnostic};

/// Threads that work on files at once.
const THREADS: usize = 8;

/// Fewer items than this are worked on in the calling thread.
const AT_LEAST: usize = 256;

/// `f` of each item, in order, worked out on up to [`THREADS`] threads.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() < AT_LEAST {
        return items.iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|scope| {
        let chunks: Vec<_> = items
            .chunks(items.len().div_ceil(THREADS))
            .map(|chunk| scope.spawn(move || chunk.iter().map(f).collect::<Vec<R>>()))
            .collect();
        chunks.into_iter().flat_map(|chunk| chunk.join().expect("a file thread panicked")).collect()
    })
}

/// Writes a file through a temporary sibling and a rename, creating parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Diagnostic> {
    stage_with(path, |out| out.write_all(bytes))?.publish()
}

/// A file written beside its destination under a temporary name: [`Staged::publish`]
/// renames it into place; dropped unpublished, it is removed.
#[must_use = "a staged file is removed unless it is published"]
pub struct Staged {
    tmp: Option<PathBuf>,
    path: PathBuf,
}

impl Staged {
    /// Puts the file in place, atomically.
    pub fn publish(mut self) -> Result<(), Diagnostic> {
        let tmp = self.tmp.take().expect("a staged file is published once");
        std::fs::rename(&tmp, &self.path).map_err(|e| io_error(&self.path, e))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(tmp) = &self.tmp {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Writes a file's content beside `path` (creating parent folders), to be published later.
/// `write` streams it through a buffer: a large artifact (the manifest of 10,000 models is
/// tens of MB) is never held whole in memory.
pub fn stage_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<Staged, Diagnostic> {
    // A path given by the user (`--metrics-file ""`, `/`) may name no file in a folder.
    let Some(dir) = path.parent().filter(|_| path.file_name().is_some()) else {
        return Err(io_error(path, std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path")));
    };
    std::fs::create_dir_all(dir).map_err(|e| io_error(path, e))?;
    let staged = Staged { tmp: Some(tmp_path(path)), path: path.to_path_buf() };
    let tmp = staged.tmp.as_deref().expect("just set");
    let mut out =
        std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(tmp).map_err(|e| io_error(path, e))?);
    write(&mut out).and_then(|()| out.flush()).map_err(|e| io_error(path, e))?;
    Ok(staged)
}

fn io_error(path: &Path, e: std::io::Error) -> Diagnostic {
    Diagnostic::error(Code::Io, format!("could not write `{}`: {e}", path.display()))
}

/// Writes many files, many at a time, creating each directory once and leaving files
/// whose content is already `bytes` untouched (a recompile rewrites only what changed,
/// and their modification times keep their meaning). A changed file is replaced at once
/// (written beside it and renamed over it), so a reader sees its old or its new text. A
/// file that was not there is written in place: there is nothing to keep, and it saves
/// creating and renaming 10,000s of names on a first compile (a third of its time). A
/// crash can leave such a file short; the next compile finds it differs and replaces it.
pub fn write_all(files: &[(PathBuf, &[u8])]) -> Vec<Diagnostic> {
    let fail = io_error;
    let dirs: std::collections::BTreeSet<&Path> = files.iter().filter_map(|(p, _)| p.parent()).collect();
    // Nothing is looked for in a folder made now (on a first compile, every folder).
    let new: std::collections::BTreeSet<&Path> = dirs.iter().copied().filter(|d| !d.exists()).collect();
    let errors: Vec<Diagnostic> =
        dirs.into_iter().filter_map(|d| std::fs::create_dir_all(d).err().map(|e| fail(d, e))).collect();
    if !errors.is_empty() {
        return errors;
    }
    let written = map(files, |(path, bytes)| {
        let found = match path.parent() {
            Some(dir) if new.contains(dir) => Holds::Nothing,
            _ => holds(path, bytes),
        };
        let written = match found {
            Holds::Same => Ok(()),
            Holds::Other => write_in_existing_dir(path, bytes),
            // No reader expects a file in a folder made now: no rename is needed, but a
            // failed write (a full disk) must not leave part of one.
            Holds::Nothing => std::fs::write(path, bytes).inspect_err(|_| {
                let _ = std::fs::remove_file(path);
            }),
        };
        written.err().map(|e| fail(path, e))
    });
    written.into_iter().flatten().collect()
}

/// What a file holds, next to what it is to hold.
enum Holds {
    Same,
    /// Other text, or a file that cannot be read.
    Other,
    /// There is no file.
    Nothing,
}

/// Whether the file at `path` holds exactly `bytes`. One read asks for a byte more than
/// `bytes`: a regular file gives all it has up to that, so getting exactly `bytes` means
/// the file ends there. That is one system call for each of 10,000s of compiled files,
/// where asking the size or reading to the end takes two. A short read (a file being
/// written, say) only means it is written again.
fn holds(path: &Path, bytes: &[u8]) -> Holds {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Holds::Nothing,
        Err(_) => return Holds::Other,
    };
    let mut old = vec![0; bytes.len() + 1];
    match file.read(&mut old) {
        Ok(n) if n == bytes.len() && old[..n] == *bytes => Holds::Same,
        _ => Holds::Other,
    }
}

fn write_in_existing_dir(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// The temporary sibling a file is written to before it is renamed into place.
fn tmp_path(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new(""));
    dir.join(format!(".{}.tmp-{}", path.file_name().unwrap_or_default().to_string_lossy(), std::process::id()))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn keeps_the_order_of_the_items() {
        for n in [0, 1, 255, 256, 1000, 4099] {
            let items: Vec<usize> = (0..n).collect();
            assert_eq!(super::map(&items, |i| i * 2), items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
    }

    /// New files are written, unchanged ones are not touched, changed ones are replaced,
    /// and no temporary file is left beside them.
    #[test]
    fn writes_what_is_new_or_changed_and_leaves_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let (kept, changed, new) =
            (dir.path().join("a/kept.sql"), dir.path().join("a/changed.sql"), dir.path().join("b/c/new.sql"));
        assert!(write_all(&[(kept.clone(), b"select 1\n"), (changed.clone(), b"select 2\n")]).is_empty());
        let long_ago = SystemTime::now() - Duration::from_secs(3600);
        for path in [&kept, &changed] {
            std::fs::File::options().write(true).open(path).unwrap().set_modified(long_ago).unwrap();
        }
        let files = [(kept.clone(), &b"select 1\n"[..]), (changed.clone(), b"select 22\n"), (new.clone(), b"new\n")];
        assert!(write_all(&files).is_empty());
        let modified = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
        assert_eq!(modified(&kept), long_ago, "an unchanged file keeps its time");
        assert!(modified(&changed) > long_ago);
        for (path, bytes) in files {
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
        }
        let names: Vec<String> = walkdir::WalkDir::new(dir.path())
            .into_iter()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    // Regression: #18, `--metrics-file ""` (or `/`) panicked on a path without a parent.
    #[test]
    fn a_path_that_names_no_file_is_an_error() {
        for path in ["", "/", "a/.."] {
            let error = write_atomic(Path::new(path), b"x").unwrap_err();
            assert!(error.message.contains("not a file path"), "{path}: {}", error.message);
        }
    }
}
