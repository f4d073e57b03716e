//! `target/run_results.json`: every node of the last run with its status, timing, rows
//! and error.

use serde::Serialize;

use crate::history::{RunSummary, Status};

#[derive(Serialize)]
struct RunResults<'a> {
    metadata: Metadata<'a>,
    elapsed_time: f64,
    results: Vec<NodeEntry<'a>>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    etlm_version: &'static str,
    run_id: &'a str,
    command: &'static str,
    started_at: String,
    finished_at: String,
}

#[derive(Serialize)]
struct NodeEntry<'a> {
    unique_id: &'a str,
    status: Status,
    kind: &'a str,
    relation: &'a str,
    started_at: String,
    execution_time: f64,
    rows: Option<u64>,
    /// For tests: the failing rows counted (dbt's `failures`).
    failures: Option<u64>,
    /// For audits: true if the count came from the query shared by the audits of the
    /// relation (`sql::fold`), left out otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    folded: bool,
    message: Option<&'a str>,
}

/// The JSON text of run_results.json for a finished run.
pub fn run_results_json(summary: &RunSummary) -> String {
    let doc = RunResults {
        metadata: Metadata {
            etlm_version: env!("CARGO_PKG_VERSION"),
            run_id: &summary.run_id,
            command: summary.command,
            started_at: summary.started_at.to_rfc3339(),
            finished_at: summary.finished_at.to_rfc3339(),
        },
        elapsed_time: (summary.finished_at - summary.started_at).num_milliseconds() as f64 / 1000.0,
        results: summary
            .results
            .iter()
            .map(|r| NodeEntry {
                unique_id: &r.line.unique_id,
                status: r.line.status,
                kind: &r.line.kind,
                relation: &r.line.name,
                started_at: r.started_at.to_rfc3339(),
                execution_time: r.line.seconds,
                rows: r.line.rows,
                failures: r.test.as_ref().and_then(|t| t.failures),
                folded: r.test.as_ref().is_some_and(|t| t.folded),
                message: r.line.message.as_deref(),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&doc).expect("run results serialize");
    text.push('\n');
    text
}
