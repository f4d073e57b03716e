//! `etlm source freshness`: how old each selected source table's newest row is, against
//! its `freshness` rule; results in `target/sources.json`. Exit 1 when one is too old
//! (past `error_after`), empty, or cannot be read. The figures also go to
//! `target/metrics.prom`.

use super::{GlobalArgs, Outcome};
use crate::diagnostics::{Code, Diagnostic, SourceMap};
use crate::disk::write_atomic;
use crate::engine::Access;
use crate::graph::ResourceType;
use crate::node::Node;
use crate::project::{Env, Freshness};
use crate::quality::freshness::SourceCheck;
use crate::report::Format;
use crate::report::{Output, print_diagnostics};
use crate::run::freshness::check_source;
use crate::state::metrics::write_source_metrics;

#[derive(Debug, clap::Args)]
pub struct SourceArgs {
    #[command(subcommand)]
    pub command: SourceCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SourceCommand {
    /// Check that each selected source with a `freshness` rule has recent rows.
    Freshness {
        /// Where to write the Prometheus figures (default: target/metrics.prom).
        #[arg(long, value_name = "PATH")]
        metrics_file: Option<std::path::PathBuf>,
    },
}

pub fn run(
    global: &GlobalArgs,
    args: &SourceArgs,
    env: Env,
    sources: &SourceMap,
    out: &Output,
) -> Result<Outcome, Vec<Diagnostic>> {
    let SourceCommand::Freshness { metrics_file } = &args.command;
    let compiled = super::compile_with(global, env, sources, "freshness")?;
    print_diagnostics(out, &compiled.warnings, sources);
    let selected = super::selected(global, &compiled)?;
    let checks: Vec<(&Node, &Freshness)> = selected
        .iter()
        .map(|id| compiled.nodes[id].as_ref())
        .filter(|n| n.resource_type == ResourceType::Source)
        .filter_map(|n| Some((n, n.config.freshness.as_ref()?)))
        .collect();
    if checks.is_empty() {
        return Err(vec![
            Diagnostic::error(Code::NothingToCheck, "no selected source has a `freshness` rule")
                .with_help("give a source `loaded_at_field` and `freshness: {warn_after: {count: 12, period: hour}}`"),
        ]);
    }
    let snapshotted_at = chrono::Utc::now();
    let results = crate::run::invocation::runtime()?.block_on(async {
        let engine = crate::run::invocation::open_engine(&compiled.project.target, Access::Read).await?;
        let mut results = Vec::new();
        for (node, rule) in &checks {
            results.push(check_source(engine.as_ref(), node, rule, snapshotted_at.naive_utc()).await);
        }
        Ok::<_, Vec<Diagnostic>>(results)
    })?;
    let lines: Vec<String> = match global.format {
        Format::Json => results.iter().map(|r| serde_json::to_string(r).expect("results serialize")).collect(),
        _ => results.iter().map(describe).collect(),
    };
    out.lines(&lines);
    let target = compiled.project.target_dir();
    let json = serde_json::json!({
        "metadata": {"generated_at": snapshotted_at.to_rfc3339(), "etlm_version": env!("CARGO_PKG_VERSION")},
        "results": results,
    });
    let text = serde_json::to_string_pretty(&json).expect("sources.json serializes");
    write_atomic(&target.join("sources.json"), text.as_bytes()).map_err(|d| vec![d])?;
    let metrics = metrics_file.clone().unwrap_or_else(|| target.join("metrics.prom"));
    let checked_at = snapshotted_at.timestamp_millis() as f64 / 1000.0;
    write_source_metrics(&metrics, &results, checked_at).map_err(|d| vec![d])?;
    Ok(if results.iter().any(|r| r.status == "error") { Outcome::Failure } else { Outcome::Success })
}

/// `WARN   source raw.orders  newest 2024-01-01 10:00:00, 26.0 h old (warn after 12.0 h)`.
fn describe(r: &SourceCheck) -> String {
    let hours = |s: i64| format!("{:.1} h", s as f64 / 3600.0);
    let label = match r.status {
        "pass" => "PASS ",
        "warn" => "WARN ",
        _ => "ERROR",
    };
    let detail = match (&r.error, &r.max_loaded_at, r.age_s) {
        (Some(e), _, _) => e.clone(),
        (None, None, _) => "no rows".to_string(),
        (None, Some(at), Some(age)) => {
            let limits: Vec<String> = [("warn", r.warn_after_s), ("error", r.error_after_s)]
                .iter()
                .filter_map(|(k, s)| Some(format!("{k} after {}", hours((*s)?))))
                .collect();
            format!("newest {at}, {} old ({})", hours(age), limits.join(", "))
        }
        (None, Some(at), None) => format!("newest {at}"),
    };
    format!("{label}  source {}  {detail}", r.relation)
}
