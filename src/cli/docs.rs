//! `etlm docs generate`: compiles the project and writes the docs site to
//! `target/docs/index.html`, with the last run's results when `target/run_results.json`
//! exists.

use std::time::Instant;

use super::{GlobalArgs, Outcome};
use crate::diagnostics::{Diagnostic, SourceMap};
use crate::disk::write_atomic;
use crate::docs::{docs_data, render_site};
use crate::project::Env;
use crate::report::{Output, print_diagnostics};

#[derive(Debug, clap::Args)]
pub struct DocsArgs {
    #[command(subcommand)]
    pub command: DocsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum DocsCommand {
    /// Write target/docs/index.html: one self-contained page that works offline.
    Generate,
}

pub fn run(
    global: &GlobalArgs,
    args: &DocsArgs,
    env: Env,
    sources: &SourceMap,
    out: &Output,
) -> Result<Outcome, Vec<Diagnostic>> {
    let DocsCommand::Generate = args.command;
    let started = Instant::now();
    let compiled = super::compile_with(global, env, sources, "generate")?;
    print_diagnostics(out, &compiled.warnings, sources);
    let target = compiled.project.target_dir();
    let results_path = target.join("run_results.json");
    // A missing or unreadable run_results.json only means the page shows no run.
    let results: Option<serde_json::Value> =
        std::fs::read(&results_path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let page = render_site(&docs_data(&compiled, results.as_ref()));
    let path = target.join("docs").join("index.html");
    write_atomic(&path, page.as_bytes()).map_err(|d| vec![d])?;
    let shown = path.strip_prefix(&compiled.project.root).unwrap_or(&path).display().to_string();
    out.summary(
        &format!(
            "wrote {shown} ({} KB{}) in {:.2} s",
            page.len() / 1024,
            if results.is_some() { ", with the last run's results" } else { "" },
            started.elapsed().as_secs_f64()
        ),
        serde_json::json!({ "docs": shown, "bytes": page.len(), "run_results": results.is_some() }),
    );
    Ok(Outcome::Success)
}
