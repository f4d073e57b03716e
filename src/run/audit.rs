//! Running quality tests: on a model's staged data before it is published (the audit of
//! write-audit-publish), and on published relations (`etlm test`, and the tests `build`
//! runs once every node they read is published). Also the row-count anomaly check.

use crate::compile::CompiledProject;
use crate::engine::Engine;
use crate::history::{Status, TestRun};
use crate::node::Node;
use crate::project::TestSeverity;
use crate::quality::{Verdict, check_row_count, judge};
use crate::relation::Relation;
use crate::sql::fold::{Count, Folded, fold};

/// Failing rows printed under a failed test.
const SAMPLE_ROWS: usize = 5;

/// Which query of a test runs: against the audit relation (staged data) or the
/// published relations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Against {
    Staged,
    Published,
}

/// A passing result of `test`, to be filled in.
pub fn test_run(test: &Node, started_at: chrono::DateTime<chrono::Utc>) -> TestRun {
    let generic = test.generic_test.as_ref();
    let unit = test.unit_test.as_ref();
    TestRun {
        unique_id: test.unique_id.clone(),
        status: Status::Pass,
        attached: generic.map(|g| g.attached_to.clone()).or_else(|| Some(unit?.model.clone())),
        column: generic.and_then(|g| g.def.column.clone()),
        test: match (generic, unit) {
            (Some(g), _) => g.def.test_name.clone(),
            (None, Some(_)) => "unit".to_string(),
            (None, None) => "singular".to_string(),
        },
        severity: test.config.severity.as_str(),
        failures: None,
        audit: false,
        threshold: String::new(),
        observed: None,
        failures_relation: None,
        folded: false,
        message: None,
        started_at,
        seconds: 0.0,
    }
}

/// The relation failing rows of `test` are stored in: `<schema>_dbt_test__audit.<alias>`
/// (a long generic test name's alias is its short name).
pub fn failures_relation(compiled: &CompiledProject, test: &Node) -> Relation {
    Relation::new(format!("{}_dbt_test__audit", compiled.project.target.schema), test.alias())
}

/// Runs one test and judges its failing-row count. Failing rows are stored when its
/// `store_failures` config asks for it (an empty table when it passes, as in dbt), and
/// when it fails while auditing staged data (the rows are about to vanish).
pub async fn run_test(compiled: &CompiledProject, engine: &dyn Engine, test: &Node, against: Against) -> TestRun {
    let clock = std::time::Instant::now();
    let mut run = test_run(test, chrono::Utc::now());
    let sql = limited_sql(test, against);
    // dbt's `fail_calc` (a test macro's `config(fail_calc='sum(diff)')`): how failures
    // are counted from the test's rows, `count(*)` unless it says otherwise.
    let counted = match fail_calc(test) {
        Some(calc) => calculated(engine, &sql, calc).await,
        None => engine.count(&sql).await,
    };
    match counted {
        Ok(failures) => judged(compiled, engine, test, against, &sql, failures, run, clock).await,
        Err(e) => {
            run.audit = against == Against::Staged;
            run.status = Status::Error;
            run.message = Some(format!("the test query failed: {e}"));
            run.seconds = clock.elapsed().as_secs_f64();
            run
        }
    }
}

/// Runs the tests that audit one node on its staged data, in their order. Tests whose
/// queries fold (`sql::fold`) are answered together by one aggregate query over the
/// staged relation; a folded test that finds failing rows, and every test that does not
/// fold, runs its own query as [`run_test`] does, so each result is the same as when
/// every test runs alone. Should the folded query fail, each test runs alone.
pub async fn run_audits(compiled: &CompiledProject, engine: &dyn Engine, tests: &[&Node]) -> Vec<TestRun> {
    let dialect = compiled.project.target.engine.dialect();
    let folds: Vec<Option<Folded>> = tests.iter().map(|t| foldable(t, dialect)).collect();
    let mut counts: Vec<Option<u64>> = vec![None; tests.len()];
    let members_of = |relation: &str| -> Vec<usize> {
        (0..tests.len()).filter(|&i| folds[i].as_ref().is_some_and(|f| f.relation == relation)).collect()
    };
    // One test alone gains nothing from folding.
    let mut groups: Vec<&str> = folds.iter().flatten().map(|f| f.relation.as_str()).collect();
    groups.sort_unstable();
    groups.dedup();
    groups.retain(|r| members_of(r).len() >= 2);
    let clock = std::time::Instant::now();
    for relation in groups {
        let members = members_of(relation);
        let columns: Vec<String> = members
            .iter()
            .enumerate()
            .map(|(k, &i)| format!("cast({} as bigint) as f{k}", folds[i].as_ref().expect("members fold").expression))
            .collect();
        let query = format!("select {} from {relation}", columns.join(", "));
        if let Ok(values) = engine.query(&query, 1).await.map(|b| first_row_counts(&b, members.len())) {
            for (k, &i) in members.iter().enumerate() {
                counts[i] = values.as_ref().map(|v| v[k]);
            }
        }
    }
    let shared = clock.elapsed().as_secs_f64() / counts.iter().flatten().count().max(1) as f64;
    let mut runs = Vec::with_capacity(tests.len());
    for (i, test) in tests.iter().enumerate() {
        let known = match (&folds[i], counts[i]) {
            (Some(f), Some(n)) if n == 0 || f.count == Count::Exact => Some(n),
            _ => None,
        };
        let run = match known {
            Some(failures) => {
                let clock = std::time::Instant::now();
                let mut run = test_run(test, chrono::Utc::now());
                run.folded = true;
                let sql = limited_sql(test, Against::Staged);
                let failures = test.config.limit.map_or(failures, |l| failures.min(l));
                let mut run = judged(compiled, engine, test, Against::Staged, &sql, failures, run, clock).await;
                run.seconds += shared;
                run
            }
            None => run_test(compiled, engine, test, Against::Staged).await,
        };
        runs.push(run);
    }
    runs
}

/// The fold of a test's audit query, when its result can be read off a fold: a generic
/// test counting its rows, storing failures only if it fails.
fn foldable(test: &Node, dialect: crate::sql::SqlDialect) -> Option<Folded> {
    if test.config.store_failures || fail_calc(test).is_some() {
        return None;
    }
    fold(test.audit_sql.as_deref()?, dialect)
}

/// The counts in the first row of a folded query's result (`None` if one is missing).
fn first_row_counts(batches: &[datafusion::arrow::array::RecordBatch], n: usize) -> Option<Vec<u64>> {
    use datafusion::arrow::array::{Array, Int64Array};
    let batch = batches.iter().find(|b| b.num_rows() > 0)?;
    (0..n)
        .map(|k| {
            let column =
                datafusion::arrow::compute::cast(batch.column(k), &datafusion::arrow::datatypes::DataType::Int64)
                    .ok()?;
            let values = column.as_any().downcast_ref::<Int64Array>()?;
            (!values.is_null(0)).then(|| values.value(0).max(0) as u64)
        })
        .collect()
}

/// The query of `test` that runs `against` that relation, with its `limit`.
fn limited_sql(test: &Node, against: Against) -> String {
    let sql = match against {
        Against::Staged => test.audit_sql.as_deref(),
        Against::Published => test.compiled_sql.as_deref(),
    }
    .expect("tests that run have SQL for where they run");
    match test.config.limit {
        Some(n) => format!("select * from (\n{sql}\n) limited limit {n}"),
        None => sql.to_string(),
    }
}

/// A test's `fail_calc`, when it is not `count(*)`.
fn fail_calc(test: &Node) -> Option<&str> {
    test.config.raw.get("fail_calc").and_then(serde_json::Value::as_str).filter(|c| c.trim() != "count(*)")
}

/// `run` judged by its failing-row count: the threshold it met, and, when it did not
/// pass, a sample of its failing rows; its failing rows stored where they are kept.
#[allow(clippy::too_many_arguments)]
async fn judged(
    compiled: &CompiledProject,
    engine: &dyn Engine,
    test: &Node,
    against: Against,
    sql: &str,
    failures: u64,
    mut run: TestRun,
    clock: std::time::Instant,
) -> TestRun {
    let cfg = &test.config;
    run.audit = against == Against::Staged;
    let verdict = judge(failures, cfg.severity, &cfg.warn_if, &cfg.error_if);
    run.failures = Some(failures);
    run.observed = Some(failures as f64);
    run.threshold = match (verdict, cfg.severity) {
        (Verdict::Warn, _) | (Verdict::Pass, TestSeverity::Warn) => format!("warn_if {}", cfg.warn_if),
        _ => format!("error_if {}", cfg.error_if),
    };
    run.status = match verdict {
        Verdict::Pass => Status::Pass,
        Verdict::Warn => Status::Warn,
        Verdict::Fail => Status::Fail,
    };
    let mut message = String::new();
    if verdict != Verdict::Pass {
        message = format!("{} failing row{}", failures, if failures == 1 { "" } else { "s" });
        if let Ok(batches) = engine.query(sql, SAMPLE_ROWS).await
            && let Ok(table) = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        {
            message.push_str(&format!(", first {}:\n{table}", SAMPLE_ROWS.min(failures as usize)));
        }
    }
    if cfg.store_failures || (verdict == Verdict::Fail && against == Against::Staged) {
        let relation = failures_relation(compiled, test);
        // A passing test's empty table goes unmentioned; a failure to store never does.
        let (stored, say) = match engine.replace_table(&relation, sql).await {
            Ok(_) => {
                run.failures_relation = Some(format!("{}.{}", relation.schema, relation.identifier));
                (format!("stored in {}.{}", relation.schema, relation.identifier), verdict != Verdict::Pass)
            }
            Err(e) => (format!("could not store the failing rows: {e}"), true),
        };
        if say {
            if !message.is_empty() {
                message.push('\n');
            }
            message.push_str(&stored);
        }
    }
    run.message = (!message.is_empty()).then_some(message);
    run.seconds = clock.elapsed().as_secs_f64();
    run
}

/// The row-count anomaly check of a table or seed that just wrote `rows`, against its
/// history (newest first). `None` when it is off, the history is too short, or the
/// model is incremental (or a snapshot).
pub fn check_anomaly(node: &Node, rows: u64, history: &[u64]) -> Option<TestRun> {
    use crate::project::Materialization;
    // An incremental run writes its new rows, and a snapshot the versions it opens or
    // closes, not the table: their count is no volume.
    if matches!(node.config.materialized, Materialization::Incremental | Materialization::Snapshot) {
        return None;
    }
    let config = node.config.row_count_anomaly.as_ref()?;
    let anomaly = check_row_count(rows, history, config)?;
    let severity = config.severity.as_str();
    let status = match (anomaly.outside, config.severity) {
        (false, _) => Status::Pass,
        (true, TestSeverity::Error) => Status::Fail,
        (true, TestSeverity::Warn) => Status::Warn,
    };
    let band = format!("{:.0} to {:.0} rows", anomaly.low.max(0.0), anomaly.high);
    let runs = history.len().min(config.window);
    Some(TestRun {
        unique_id: format!("anomaly.{}", node.unique_id),
        status,
        attached: Some(node.unique_id.clone()),
        column: None,
        test: "row_count_anomaly".into(),
        severity,
        failures: None,
        audit: true,
        threshold: band.clone(),
        observed: Some(rows as f64),
        failures_relation: None,
        folded: false,
        message: anomaly.outside.then(|| {
            format!("row count {rows} is outside the usual {band} (mean ± {} σ of the last {runs} runs)", config.sigma)
        }),
        started_at: chrono::Utc::now(),
        seconds: 0.0,
    })
}

/// A test's failures as its `fail_calc` expression counts them over its rows (none: 0).
async fn calculated(engine: &dyn Engine, sql: &str, calc: &str) -> Result<u64, crate::engine::EngineError> {
    use datafusion::arrow::array::Array;
    let query = format!("select {calc} as failures from (\n{sql}\n) dbt_internal_test");
    let batches = engine.query(&query, 1).await?;
    let Some(column) = batches.iter().find(|b| b.num_rows() > 0).map(|b| b.column(0).clone()) else { return Ok(0) };
    let as_f64 =
        datafusion::arrow::compute::cast(&column, &datafusion::arrow::datatypes::DataType::Float64).map_err(|e| {
            crate::engine::EngineError::new(
                crate::engine::ErrorKind::Failed,
                format!("fail_calc `{calc}` is not a number: {e}"),
            )
        })?;
    let values = as_f64.as_any().downcast_ref::<datafusion::arrow::array::Float64Array>().expect("cast to Float64");
    Ok(if values.is_null(0) { 0 } else { values.value(0).max(0.0).round() as u64 })
}
