//! `etlm deps`: installs the packages of `packages.yml` and writes `package-lock.yml`.

use super::{GlobalArgs, Outcome};
use crate::deps::{DepsOptions, install};
use crate::diagnostics::{Diagnostic, SourceMap};
use crate::project::Env;
use crate::report::Output;

#[derive(Debug, clap::Args)]
pub struct DepsArgs {
    /// Resolve packages.yml again, ignoring package-lock.yml, and write a new lock.
    #[arg(long)]
    pub upgrade: bool,
}

pub fn run(
    global: &GlobalArgs,
    args: &DepsArgs,
    env: Env,
    sources: &SourceMap,
    out: &Output,
) -> Result<Outcome, Vec<Diagnostic>> {
    let opts = DepsOptions { project_dir: global.project_dir.clone(), upgrade: args.upgrade, env };
    let report = install(&opts, sources)?;
    let lines: Vec<String> =
        report.installed.iter().map(|(name, from)| format!("  installed {name} from {from}")).collect();
    if global.format == super::Format::Human {
        out.lines(&lines);
    }
    let how = if report.from_lock { " as package-lock.yml pins them" } else { "" };
    out.summary(
        &format!("{} packages in {}{how}", report.installed.len(), report.install_path),
        serde_json::json!({
            "installed": report.installed.iter().map(|(n, f)| serde_json::json!({"name": n, "from": f})).collect::<Vec<_>>(),
            "from_lock": report.from_lock,
            "install_path": report.install_path,
        }),
    );
    Ok(Outcome::Success)
}
