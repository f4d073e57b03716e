//! `etlm source freshness`: how old each selected source table's newest row is, against
//! its `freshness` rule; results in `target/sources.json`. Exit 1 when one is too old
//! (past `error_after`), empty, or cannot be read.

use super::{GlobalArgs, Outcome};
use crate::diagnostics::{Code, Diagnostic, SourceMap};
use crate::disk::write_atomic;
use crate::engine::{Access, Engine};
use crate::graph::ResourceType;
use crate::node::Node;
use crate::project::{Env, Freshness};
use crate::quality::freshness::{FreshnessStatus, judge, parse_loaded_at};
use crate::report::Format;
use crate::report::{Output, print_diagnostics};

#[derive(Debug, clap::Args)]
pub struct SourceArgs {
    #[command(subcommand)]
    pub command: SourceCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SourceCommand {
    /// Check that each selected source with a `freshness` rule has recent rows.
    Freshness,
}

/// One source table's check.
#[derive(Debug, serde::Serialize)]
struct Checked {
    unique_id: String,
    relation: String,
    status: &'static str,
    max_loaded_at: Option<String>,
    age_s: Option<i64>,
    warn_after_s: Option<i64>,
    error_after_s: Option<i64>,
    error: Option<String>,
}

pub fn run(
    global: &GlobalArgs,
    args: &SourceArgs,
    env: Env,
    sources: &SourceMap,
    out: &Output,
) -> Result<Outcome, Vec<Diagnostic>> {
    let SourceCommand::Freshness = args.command;
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
            results.push(check(engine.as_ref(), node, rule, snapshotted_at.naive_utc()).await);
        }
        Ok::<_, Vec<Diagnostic>>(results)
    })?;
    let lines: Vec<String> = match global.format {
        Format::Json => results.iter().map(|r| serde_json::to_string(r).expect("results serialize")).collect(),
        _ => results.iter().map(describe).collect(),
    };
    out.lines(&lines);
    let target = compiled.project.root.join(&compiled.project.settings.target_path);
    let json = serde_json::json!({
        "metadata": {"generated_at": snapshotted_at.to_rfc3339(), "etlm_version": env!("CARGO_PKG_VERSION")},
        "results": results,
    });
    let text = serde_json::to_string_pretty(&json).expect("sources.json serializes");
    write_atomic(&target.join("sources.json"), text.as_bytes()).map_err(|d| vec![d])?;
    Ok(if results.iter().any(|r| r.status == "error") { Outcome::Failure } else { Outcome::Success })
}

async fn check(engine: &dyn Engine, node: &Node, rule: &Freshness, now: chrono::NaiveDateTime) -> Checked {
    let relation = node.relation.as_ref().expect("sources have a relation");
    let filter = rule.filter.as_deref().map_or_else(String::new, |f| format!(" where {f}"));
    let sql = format!("select cast(max({}) as varchar) as latest from {relation}{filter}", rule.loaded_at_field);
    let seconds = |d: Option<chrono::Duration>| d.map(|d| d.num_seconds());
    let mut checked = Checked {
        unique_id: node.unique_id.clone(),
        relation: format!("{}.{}", relation.schema, relation.identifier),
        status: "error",
        max_loaded_at: None,
        age_s: None,
        warn_after_s: seconds(rule.warn_after),
        error_after_s: seconds(rule.error_after),
        error: None,
    };
    let latest = match engine.query(&sql, 1).await {
        Ok(batches) => first_value(&batches),
        Err(e) => {
            checked.error = Some(format!("could not read `{}`: {e}", rule.loaded_at_field));
            return checked;
        }
    };
    let parsed = latest.as_deref().and_then(parse_loaded_at);
    if latest.is_some() && parsed.is_none() {
        checked.error =
            Some(format!("`{}` is not a date or time: {}", rule.loaded_at_field, latest.unwrap_or_default()));
        return checked;
    }
    checked.max_loaded_at = latest;
    checked.age_s = parsed.map(|t| (now - t).num_seconds());
    checked.status = match judge(parsed, now, rule) {
        FreshnessStatus::Pass => "pass",
        FreshnessStatus::Warn => "warn",
        FreshnessStatus::Error => "error",
    };
    checked
}

/// The first column of the first row, as text.
fn first_value(batches: &[datafusion::arrow::array::RecordBatch]) -> Option<String> {
    let batch = batches.iter().find(|b| b.num_rows() > 0)?;
    let column = batch.column(0);
    (!column.is_null(0)).then(|| datafusion::arrow::util::display::array_value_to_string(column, 0).ok()).flatten()
}

/// `WARN   source raw.orders  newest 2024-01-01 10:00:00, 26.0 h old (warn after 12.0 h)`.
fn describe(r: &Checked) -> String {
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
