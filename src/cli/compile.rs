//! `etlm compile`: writes target/compiled/<path>.sql for the selected nodes and
//! target/manifest.json and target/lineage.json for the whole project (commands that
//! build write the same artifacts).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{GlobalArgs, Outcome};
use crate::compile::CompiledProject;
use crate::diagnostics::{Diagnostic, SourceMap};
use crate::project::Env;
use crate::report::{Output, print_diagnostics, write_all_atomic, write_atomic};
use crate::state::manifest::manifest_json;

pub fn run(global: &GlobalArgs, env: Env, sources: &SourceMap, out: &Output) -> Result<Outcome, Vec<Diagnostic>> {
    let started = Instant::now();
    let compiled = super::compile_with(global, env, sources)?;
    print_diagnostics(out, &compiled.warnings, sources);
    let selected = super::selected(global, &compiled)?;
    let Written { sql_files: written, manifest, lineage } = write_artifacts(&compiled, &selected)?;
    let elapsed = started.elapsed();
    let count = |rt| compiled.nodes.values().filter(|n| n.resource_type == rt).count();
    use crate::graph::ResourceType as R;
    out.summary(
        &format!(
            "compiled {} models, {} tests, {} seeds, {} sources in {:.2} s; wrote {} SQL files, {} and {}",
            count(R::Model),
            count(R::Test),
            count(R::Seed),
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
            "sources": count(R::Source),
            "compiled_files": written,
            "manifest": display(&manifest, &compiled.project.root),
            "lineage": display(&lineage, &compiled.project.root),
            "elapsed_s": elapsed.as_secs_f64(),
        }),
    );
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
        .iter()
        .filter_map(|id| {
            let node = &compiled.nodes[id];
            Some((target.join("compiled").join(node.compiled_path()), node.compiled_sql.as_deref()?.as_bytes()))
        })
        .collect();
    let errors = write_all_atomic(&files);
    if !errors.is_empty() {
        return Err(errors);
    }
    let manifest = target.join("manifest.json");
    let lineage = target.join("lineage.json");
    let (m, l) = rayon::join(
        || write_atomic(&manifest, manifest_json(compiled).as_bytes()),
        || write_atomic(&lineage, compiled.lineage.to_json().as_bytes()),
    );
    m.and(l).map_err(|d| vec![d])?;
    Ok(Written { sql_files: files.len(), manifest, lineage })
}
