//! What users see: diagnostics, result lines and summaries, as text or JSON; and atomic
//! artifact writes (a file is whole or absent, never half-written).
#![allow(clippy::print_stdout)]

pub mod progress;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::Format;
use crate::diagnostics::{Diagnostic, SourceMap, render_human, render_json};

/// Where command output goes, in the chosen format.
pub struct Output {
    format: Format,
}

impl Output {
    pub fn new(format: Format) -> Output {
        Output { format }
    }

    /// Result lines (already formatted for the chosen format) on stdout.
    pub fn lines(&self, lines: &[String]) {
        let mut stdout = std::io::stdout().lock();
        for line in lines {
            let _ = writeln!(stdout, "{line}");
        }
    }

    /// A closing summary: text for people, one JSON object for machines.
    pub fn summary(&self, text: &str, json: serde_json::Value) {
        match self.format {
            Format::Human => println!("{text}"),
            Format::Json => println!("{json}"),
        }
    }
}

/// Prints diagnostics on stderr (rustc's layout, or JSON lines).
pub fn print_diagnostics(out: &Output, diags: &[Diagnostic], sources: &SourceMap) {
    let mut stderr = std::io::stderr().lock();
    for d in diags {
        let _ = match out.format {
            Format::Human => writeln!(stderr, "{}", render_human(d, sources)),
            Format::Json => writeln!(stderr, "{}", render_json(d, sources)),
        };
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    if errors > 0 && out.format == Format::Human {
        let _ = writeln!(stderr, "error: stopped after {errors} error{}", if errors == 1 { "" } else { "s" });
    }
}

/// Writes a file through a temporary sibling and a rename, creating parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Diagnostic> {
    write_atomic_with(path, |out| out.write_all(bytes))
}

/// [`write_atomic`], with the content streamed by `write` through a buffer: a large
/// artifact (the manifest of 10,000 models is tens of MB) is never held whole in memory.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Diagnostic> {
    let fail = |e: std::io::Error| Diagnostic::error("io", format!("could not write `{}`: {e}", path.display()));
    let dir = path.parent().expect("artifact paths have a parent");
    std::fs::create_dir_all(dir).map_err(fail)?;
    write_in_existing_dir(path, |file| {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        write(&mut out)?;
        out.flush()
    })
    .map_err(fail)
}

/// Writes many files atomically, in parallel, creating each directory once and leaving
/// files whose content is already `bytes` untouched (a recompile rewrites only what
/// changed, and their modification times keep their meaning).
pub fn write_all_atomic(files: &[(PathBuf, &[u8])]) -> Vec<Diagnostic> {
    use rayon::prelude::*;
    let fail =
        |path: &Path, e: std::io::Error| Diagnostic::error("io", format!("could not write `{}`: {e}", path.display()));
    let dirs: std::collections::BTreeSet<&Path> = files.iter().filter_map(|(p, _)| p.parent()).collect();
    let errors: Vec<Diagnostic> =
        dirs.into_iter().filter_map(|d| std::fs::create_dir_all(d).err().map(|e| fail(d, e))).collect();
    if !errors.is_empty() {
        return errors;
    }
    files
        .par_iter()
        .filter_map(|(path, bytes)| {
            let same = std::fs::read(path).is_ok_and(|old| old == *bytes);
            let write = |mut file: std::fs::File| file.write_all(bytes);
            if same { None } else { write_in_existing_dir(path, write).err().map(|e| fail(path, e)) }
        })
        .collect()
}

fn write_in_existing_dir(path: &Path, write: impl FnOnce(std::fs::File) -> std::io::Result<()>) -> std::io::Result<()> {
    let dir = path.parent().expect("artifact paths have a parent");
    let tmp =
        dir.join(format!(".{}.tmp-{}", path.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
    write(std::fs::File::create(&tmp)?)?;
    std::fs::rename(&tmp, path)
}
