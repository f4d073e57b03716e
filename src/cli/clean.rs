//! `etlm clean`: removes the target folder (compiled SQL, manifest, run results), never
//! the warehouse.

use super::{GlobalArgs, Outcome};
use crate::diagnostics::{Code, Diagnostic, SourceMap};
use crate::project::{Env, load_project};
use crate::report::Output;

pub fn run(global: &GlobalArgs, env: Env, sources: &SourceMap, out: &Output) -> Result<Outcome, Vec<Diagnostic>> {
    let opts = global.load_options(Default::default(), env);
    let project = load_project(&opts, sources).map_err(|d| d.0)?;
    let target = project.target_dir();
    if let Some(warehouse) = crate::engine::warehouse_path(&project.target).filter(|w| w.starts_with(&target)) {
        return Err(vec![Diagnostic::error(
            Code::InvalidConfig,
            format!("the warehouse `{}` is inside the target folder; refusing to delete it", warehouse.display()),
        )]);
    }
    if target.exists() {
        std::fs::remove_dir_all(&target)
            .map_err(|e| vec![Diagnostic::error(Code::Io, format!("could not remove `{}`: {e}", target.display()))])?;
    }
    out.summary(
        &format!("removed {}", project.settings.target_path),
        serde_json::json!({"removed": project.settings.target_path}),
    );
    Ok(Outcome::Success)
}
