//! `etlm compile`: writes target/compiled/<path>.sql for the selected nodes and
//! target/manifest.json and target/lineage.json for the whole project (commands that
//! build write the same artifacts).

use std::path::Path;
use std::time::Instant;

use super::{GlobalArgs, Outcome};
use crate::diagnostics::{Diagnostic, SourceMap};
use crate::project::Env;
use crate::report::{Output, print_diagnostics};
use crate::state::write::{Written, write_artifacts};

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
