//! Writing a build's artifacts into the target folder: the compiled SQL of the
//! selected nodes, `manifest.json`, `lineage.json` and the compile cache for the whole
//! project, and `run_results.json` after a run. Each file is whole or absent.

use std::collections::BTreeSet;
use std::path::PathBuf;

use rayon::prelude::*;

use super::manifest::write_manifest;
use super::run_results::run_results_json;
use crate::compile::CompiledProject;
use crate::diagnostics::Diagnostic;
use crate::disk::{Staged, stage_with, write_all, write_atomic};
use crate::history::RunSummary;
use crate::project::Project;

/// What `write_artifacts` wrote.
pub struct Written {
    pub sql_files: usize,
    pub manifest: PathBuf,
    pub lineage: PathBuf,
}

/// Writes target/compiled/<path>.sql for the selected nodes, and target/manifest.json and
/// target/lineage.json for the whole project (so any build's target folder can serve as
/// `--state` for another).
pub fn write_artifacts(compiled: &CompiledProject, selected: &BTreeSet<String>) -> Result<Written, Vec<Diagnostic>> {
    let target = compiled.project.target_dir();
    let files: Vec<(PathBuf, &[u8])> = selected
        .par_iter()
        .filter_map(|id| {
            let node = &compiled.nodes[id];
            Some((target.join("compiled").join(node.compiled_path()), node.compiled_sql.as_deref()?.as_bytes()))
        })
        .collect();
    let manifest = target.join("manifest.json");
    let lineage = target.join("lineage.json");
    let cache = crate::compile::cache_path(&compiled.project);
    // The manifest is serialized on one core while the other writes the compiled files;
    // the manifest, lineage.json and the cache are put in place only once every compiled
    // file is written.
    let (errors, (m, (l, c))) = rayon::join(
        || write_all(&files),
        || {
            rayon::join(
                || stage_with(&manifest, |out| write_manifest(compiled, out)),
                || {
                    rayon::join(
                        || stage_with(&lineage, |out| compiled.lineage.write_json(out)),
                        || stage_with(&cache, |out| compiled.cache.write(out)),
                    )
                },
            )
        },
    );
    if !errors.is_empty() {
        return Err(errors);
    }
    // Each rename over a previous file frees that file's pages: on every core.
    let published: Vec<Result<(), Diagnostic>> =
        vec![m, l, c].into_par_iter().map(|s| s.and_then(Staged::publish)).collect();
    published.into_iter().collect::<Result<(), _>>().map_err(|d| vec![d])?;
    Ok(Written { sql_files: files.len(), manifest, lineage })
}

/// Writes target/run_results.json for a finished run.
pub fn write_run_results(project: &Project, summary: &RunSummary) -> Result<(), Diagnostic> {
    let target = project.target_dir();
    write_atomic(&target.join("run_results.json"), run_results_json(summary).as_bytes())
}
