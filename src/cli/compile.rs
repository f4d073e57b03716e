//! `etlm compile`: writes target/compiled/<path>.sql for the selected nodes and
//! target/manifest.json and target/lineage.json for the whole project (commands that
//! build write the same artifacts).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use super::{GlobalArgs, Outcome};
use crate::compile::CompiledProject;
use crate::diagnostics::{Diagnostic, SourceMap};
use crate::project::Env;
use crate::report::{Output, Staged, print_diagnostics, stage_with, write_all};
use crate::state::manifest::write_manifest;

pub fn run(global: &GlobalArgs, env: Env, sources: &SourceMap, out: &Output) -> Result<Outcome, Vec<Diagnostic>> {
    let started = Instant::now();
    let compiled = super::compile_with(global, env, sources, "compile")?;
    print_diagnostics(out, &compiled.warnings, sources);
    let selected = super::selected(global, &compiled)?;
    let Written { sql_files: written, manifest, lineage } = write_artifacts(&compiled, &selected)?;
    let elapsed = started.elapsed();
    let count = |rt| compiled.nodes.values().filter(|n| n.resource_type == rt).count();
    use crate::graph::ResourceType as R;
    out.summary(
        &format!(
            "compiled {} models, {} tests, {} seeds, {} snapshots, {} sources in {:.2} s; wrote {} SQL files, {} and {}",
            count(R::Model),
            count(R::Test),
            count(R::Seed),
            count(R::Snapshot),
            count(R::Source),
            elapsed.as_secs_f64(),
            written,
            display(&manifest, &compiled.project.root),
            display(&lineage, &compiled.project.root),
        ),
        serde_json::json!({
            "models": count(R::Model),
            "tests": count(R::Test),
            "seeds": count(R::Seed),
            "snapshots": count(R::Snapshot),
            "sources": count(R::Source),
            "compiled_files": written,
            "manifest": display(&manifest, &compiled.project.root),
            "lineage": display(&lineage, &compiled.project.root),
            "elapsed_s": elapsed.as_secs_f64(),
        }),
    );
    // The process ends right after: freeing 10,000s of nodes one by one would only cost time.
    std::mem::forget(compiled);
    Ok(Outcome::Success)
}

fn display(path: &Path, root: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

/// What `write_artifacts` wrote.
pub(super) struct Written {
    pub sql_files: usize,
    pub manifest: PathBuf,
    pub lineage: PathBuf,
}

/// Writes target/compiled/<path>.sql for the selected nodes, and target/manifest.json and
/// target/lineage.json for the whole project (so any build's target folder can serve as
/// `--state` for another).
pub(super) fn write_artifacts(
    compiled: &CompiledProject,
    selected: &BTreeSet<String>,
) -> Result<Written, Vec<Diagnostic>> {
    let target = compiled.project.root.join(&compiled.project.settings.target_path);
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
