//! Walking the resource folders and reading files (in parallel, in a stable order).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use walkdir::WalkDir;

use super::settings::ProjectFile;
use crate::diagnostics::{Code, Collector, Diagnostic, FileId, SourceMap};

/// A file read into the source map.
#[derive(Debug)]
pub struct Found {
    /// Relative to the project directory.
    pub path: PathBuf,
    /// Relative to its resource folder (`staging/stg_orders.sql`).
    pub rel_to_resource_dir: PathBuf,
    pub file: FileId,
}

/// A seed: only its path; its rows are read when it is loaded.
#[derive(Debug)]
pub struct SeedFound {
    pub path: PathBuf,
    pub rel_to_resource_dir: PathBuf,
}

/// Every project file etlm reads, by kind.
#[derive(Debug, Default)]
pub struct Tree {
    pub models: Vec<Found>,
    pub seeds: Vec<SeedFound>,
    pub macros: Vec<Found>,
    pub tests: Vec<Found>,
    /// Unit-test fixture files (`<test path>/fixtures/**.csv|sql`).
    pub fixtures: Vec<Found>,
    /// Files of the snapshot folders holding `{% snapshot %}` blocks.
    pub snapshots: Vec<Found>,
    pub property_files: Vec<(FileId, PathBuf)>,
    pub docs_files: Vec<FileId>,
    /// Files dbt would build that etlm does not: Python models.
    pub unsupported: Vec<Unsupported>,
}

/// A dbt file etlm does not build.
#[derive(Debug)]
pub enum Unsupported {
    PythonModel(PathBuf),
}

impl Unsupported {
    /// The warning that says the file is not built.
    pub fn warning(&self) -> Diagnostic {
        let (code, path, what) = match self {
            Unsupported::PythonModel(p) => (Code::PythonModel, p, "is a Python model; etlm builds SQL models only"),
        };
        Diagnostic::warning(code, format!("`{}` {what}: it is not built", path.display()))
            .with_note("a model that refs it gets an `unknown-ref` error")
    }
}

/// Reads a file as UTF-8, or explains why it could not.
pub fn read(path: &Path) -> Result<String, Diagnostic> {
    std::fs::read_to_string(path)
        .map_err(|e| Diagnostic::error(Code::Io, format!("could not read `{}`: {e}", path.display())))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Model,
    Seed,
    Macro,
    Test,
    Fixture,
    Snapshot,
    Properties,
    Docs,
}

/// Lists and reads every file under the resource folders of the project in `root/base`
/// (`base` is empty for the root project, `dbt_packages/<name>` for a package); paths are
/// relative to `root`.
pub fn walk(root: &Path, base: &Path, settings: &ProjectFile, sources: &SourceMap, diags: &mut Collector) -> Tree {
    let mut listed: Vec<(Kind, PathBuf, PathBuf)> = Vec::new();
    let mut unsupported = Vec::new();
    let docs_in_resources = settings.docs_paths.is_none();
    let groups: [(&[String], Kind); 5] = [
        (&settings.model_paths, Kind::Model),
        (&settings.seed_paths, Kind::Seed),
        (&settings.macro_paths, Kind::Macro),
        (&settings.test_paths, Kind::Test),
        (&settings.snapshot_paths, Kind::Snapshot),
    ];
    for (dirs, kind) in groups {
        for dir in dirs {
            for (path, rel) in list(root, base, dir) {
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                let file_kind = match (ext, kind) {
                    ("yml" | "yaml", _) => Kind::Properties,
                    ("md", _) if docs_in_resources => Kind::Docs,
                    ("sql", Kind::Test) if rel.starts_with("generic") => Kind::Macro,
                    ("sql" | "csv", Kind::Test) if rel.starts_with("fixtures") => Kind::Fixture,
                    ("sql", Kind::Model | Kind::Macro | Kind::Test | Kind::Snapshot) => kind,
                    ("csv", Kind::Seed) => Kind::Seed,
                    ("py", Kind::Model) => {
                        unsupported.push(Unsupported::PythonModel(path));
                        continue;
                    }
                    _ => continue,
                };
                listed.push((file_kind, path, rel));
            }
        }
    }
    for dir in settings.docs_paths.iter().flatten() {
        for (path, rel) in list(root, base, dir) {
            if path.extension().is_some_and(|e| e == "md") {
                listed.push((Kind::Docs, path, rel));
            }
        }
    }

    // Read (and turned into the shared text the source map keeps) many at a time.
    let texts: Vec<Option<Result<Arc<str>, Diagnostic>>> = crate::disk::map(&listed, |(kind, path, _)| {
        (*kind != Kind::Seed).then(|| read(&root.join(path)).map(Arc::from))
    });
    let mut tree = Tree { unsupported, ..Tree::default() };
    for ((kind, path, rel), text) in listed.into_iter().zip(texts) {
        let text = match text {
            None => {
                tree.seeds.push(SeedFound { path, rel_to_resource_dir: rel });
                continue;
            }
            Some(Ok(t)) => t,
            Some(Err(d)) => {
                diags.push(d);
                continue;
            }
        };
        let file = sources.add(path.clone(), text);
        let found = Found { path, rel_to_resource_dir: rel, file };
        match kind {
            Kind::Model => tree.models.push(found),
            Kind::Macro => tree.macros.push(found),
            Kind::Test => tree.tests.push(found),
            Kind::Fixture => tree.fixtures.push(found),
            Kind::Snapshot => tree.snapshots.push(found),
            Kind::Properties => tree.property_files.push((file, found.path)),
            Kind::Docs => tree.docs_files.push(file),
            Kind::Seed => unreachable!("seeds are not read here"),
        }
    }
    tree
}

/// Files under `root/base/dir`, sorted, as (path relative to root, path relative to dir).
fn list(root: &Path, base: &Path, dir: &str) -> Vec<(PathBuf, PathBuf)> {
    let folder = base.join(dir);
    let full = root.join(&folder);
    WalkDir::new(&full)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| {
            let rel = e.path().strip_prefix(&full).ok()?.to_path_buf();
            Some((folder.join(&rel), rel))
        })
        .collect()
}
