//! `target/metrics.prom`: the last run's figures in Prometheus' text format, for
//! node_exporter's textfile collector (docs/operations.md). A run writes the `etlm_run_`,
//! `etlm_model_` and `etlm_test_` families; `etlm source freshness` writes the
//! `etlm_source_` ones. Each keeps the other's families from the file it replaces, and
//! the file is replaced atomically, so the collector never reads half of one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::compile::CompiledProject;
use crate::diagnostics::Diagnostic;
use crate::disk::write_atomic;
use crate::history::{RunSummary, Status};
use crate::quality::freshness::SourceCheck;

/// One metric family: its samples are (labels, value).
struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str) -> Family {
        Family { name, help, samples: Vec::new() }
    }

    fn add(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push((labels, value));
    }
}

/// The families a run writes.
const RUN_PREFIXES: &[&str] = &["etlm_run_", "etlm_model_", "etlm_test_"];
/// The families `etlm source freshness` writes.
const SOURCE_PREFIXES: &[&str] = &["etlm_source_"];

/// Writes a run's families into `path`: every node's and test's result, the run's
/// totals, and when each node last built successfully (`last_success`, from the
/// history: seconds since the epoch, for nodes of this run or earlier ones).
pub fn write_run_metrics(
    path: &Path,
    compiled: &CompiledProject,
    summary: &RunSummary,
    last_success: &BTreeMap<String, f64>,
) -> Result<(), Diagnostic> {
    let node_labels = |id: &str, fallback: &str| {
        let node = compiled.nodes.get(id);
        let name = node.map_or_else(|| fallback.to_string(), |n| n.name.clone());
        let schema = node.and_then(|n| n.relation.as_ref()).map_or_else(String::new, |r| r.schema.clone());
        let kind = node.map_or("model", |n| n.resource_type.as_str());
        vec![("model", name), ("schema", schema), ("resource_type", kind.to_string()), ("unique_id", id.to_string())]
    };
    let mut status = Family::new("etlm_model_status", "1 for the status the node's last build in this run ended with");
    let mut duration = Family::new("etlm_model_duration_seconds", "how long the node's build took in the last run");
    let mut rows = Family::new("etlm_model_rows_written", "rows the node's build wrote in the last run");
    let mut success_at = Family::new(
        "etlm_model_last_success_timestamp_seconds",
        "when the node's last successful build started (from the run history)",
    );
    let mut test_status = Family::new("etlm_test_status", "1 for the status the test ended with in the last run");
    let mut failures = Family::new("etlm_test_failures", "failing rows the test found in the last run");
    for result in &summary.results {
        let line = &result.line;
        if let Some(test) = &result.test {
            let labels = vec![
                ("test", line.name.clone()),
                ("unique_id", line.unique_id.clone()),
                (
                    "model",
                    test.attached
                        .as_ref()
                        .and_then(|a| compiled.nodes.get(a))
                        .map_or_else(String::new, |n| n.name.clone()),
                ),
                ("column", test.column.clone().unwrap_or_default()),
                ("severity", test.severity.to_string()),
            ];
            if let Some(n) = test.failures {
                failures.add(labels.clone(), n as f64);
            }
            test_status.add([labels, vec![("status", line.status.as_str().to_string())]].concat(), 1.0);
            continue;
        }
        let labels = node_labels(&line.unique_id, &line.name);
        status.add([labels.clone(), vec![("status", line.status.as_str().to_string())]].concat(), 1.0);
        if line.status != Status::Skipped {
            duration.add(labels.clone(), line.seconds);
        }
        if let Some(n) = line.rows {
            rows.add(labels, n as f64);
        }
    }
    for (id, at) in last_success {
        if compiled.nodes.contains_key(id) {
            success_at.add(node_labels(id, id), *at);
        }
    }
    let command = || vec![("command", summary.command.to_string())];
    let mut run_duration = Family::new("etlm_run_duration_seconds", "wall time of the last run");
    run_duration.add(command(), summary.seconds());
    let mut run_finished = Family::new("etlm_run_finished_timestamp_seconds", "when the last run ended");
    run_finished.add(command(), summary.finished_at.timestamp_millis() as f64 / 1000.0);
    let mut run_success = Family::new("etlm_run_success", "1 if the last run had no error and no failed test");
    run_success.add(command(), if summary.failed() { 0.0 } else { 1.0 });
    let mut run_results = Family::new("etlm_run_results", "results of the last run, by status");
    for s in [Status::Success, Status::Error, Status::Skipped, Status::Pass, Status::Warn, Status::Fail, Status::Reused]
    {
        run_results.add([command(), vec![("status", s.as_str().to_string())]].concat(), summary.count(s) as f64);
    }
    let families = [
        run_duration,
        run_finished,
        run_success,
        run_results,
        status,
        duration,
        rows,
        success_at,
        test_status,
        failures,
    ];
    write(path, &families, RUN_PREFIXES)
}

/// Writes `etlm source freshness`'s families into `path`: each checked source's lag
/// behind now and the limits of its rule. `checked_at` is seconds since the epoch.
pub fn write_source_metrics(path: &Path, checks: &[SourceCheck], checked_at: f64) -> Result<(), Diagnostic> {
    let mut lag = Family::new("etlm_source_freshness_lag_seconds", "age of the source's newest row when checked");
    let mut warn = Family::new("etlm_source_freshness_warn_after_seconds", "the source's warn_after limit");
    let mut error = Family::new("etlm_source_freshness_error_after_seconds", "the source's error_after limit");
    let mut status = Family::new("etlm_source_freshness_status", "1 for the status the source's check ended with");
    let mut checked = Family::new("etlm_source_freshness_checked_timestamp_seconds", "when the source was checked");
    for check in checks {
        let labels = vec![("source", check.unique_id.clone()), ("relation", check.relation.clone())];
        if let Some(age) = check.age_s {
            lag.add(labels.clone(), age as f64);
        }
        if let Some(s) = check.warn_after_s {
            warn.add(labels.clone(), s as f64);
        }
        if let Some(s) = check.error_after_s {
            error.add(labels.clone(), s as f64);
        }
        status.add([labels.clone(), vec![("status", check.status.to_string())]].concat(), 1.0);
        checked.add(labels, checked_at);
    }
    write(path, &[lag, warn, error, status, checked], SOURCE_PREFIXES)
}

/// Writes `families` with the families of the current file that `owned` does not cover.
fn write(path: &Path, families: &[Family], owned: &[&str]) -> Result<(), Diagnostic> {
    let mut text = String::new();
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        let _ = writeln!(text, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(text, "# TYPE {} gauge", family.name);
        for (labels, value) in &family.samples {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            let _ = writeln!(text, "{}{{{}}} {}", family.name, labels.join(","), number(*value));
        }
    }
    if let Ok(old) = std::fs::read_to_string(path) {
        for line in old.lines() {
            let name = metric_of(line);
            if !name.is_empty() && !owned.iter().any(|p| name.starts_with(p)) {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    write_atomic(path, text.as_bytes())
}

/// The metric a line of the text format is about: `# HELP name ...`, `# TYPE name ...`
/// or `name{labels} value` (empty for anything else).
fn metric_of(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix("# HELP ").or_else(|| line.strip_prefix("# TYPE ")) {
        return rest.split(' ').next().unwrap_or("");
    }
    if line.starts_with('#') {
        return "";
    }
    line.split(['{', ' ']).next().unwrap_or("")
}

/// A label value in the text format: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A sample value: integers without a fraction.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{}", value as i64) } else { format!("{value}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_writer_keeps_the_other_writers_families() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.prom");
        let check = SourceCheck {
            unique_id: "source.p.raw.orders".into(),
            relation: "raw.orders".into(),
            status: "error",
            max_loaded_at: Some("2024-01-01".into()),
            age_s: Some(90_000),
            warn_after_s: None,
            error_after_s: Some(86_400),
            error: None,
        };
        write_source_metrics(&path, &[check], 1_700_000_000.5).unwrap();
        let mut run = Family::new("etlm_run_success", "h");
        run.add(vec![("command", "build \"x\"\n".into())], 1.0);
        write(&path, &[run], RUN_PREFIXES).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("etlm_run_success{command=\"build \\\"x\\\"\\n\"} 1\n"), "{text}");
        assert!(
            text.contains(
                "etlm_source_freshness_lag_seconds{source=\"source.p.raw.orders\",relation=\"raw.orders\"} 90000"
            ),
            "{text}"
        );
        assert!(text.contains("etlm_source_freshness_checked_timestamp_seconds{") && text.contains("1700000000.5"));
        // A second freshness check replaces its own families, keeping the run's.
        write_source_metrics(&path, &[], 0.0).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("etlm_source_"), "{text}");
        assert!(text.contains("etlm_run_success"), "{text}");
    }
}
