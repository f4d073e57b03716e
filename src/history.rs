//! Run results and the run history: what a run did (`RunSummary`, one `NodeResult` per
//! node or test, `Status`), and the one declaration of the history tables' columns
//! (`runs`, `model_runs`, `test_results`, `intervals`).
//!
//! This is a base module: the runner produces these types, engines store them, the
//! terminal prints them and `etlm runs` reads them back, and none of those needs another.
//! Every store derives its layout from [`TABLES`] (Arrow schemas on the embedded engine,
//! `create table` on SQL engines) and its rows from the `*_rows` functions here, so the
//! copies cannot drift; the queries that read the history back are built here too.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use datafusion::arrow::array::Array;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::arrow::error::ArrowError;
use serde::Serialize;

use crate::window::Period;

/// How a node ended, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    Error,
    Skipped,
    /// A quality test found failing rows (error severity).
    Fail,
    /// A warn-severity test found failing rows.
    Warn,
    Pass,
    /// Not built or run: what it reads and is did not change since it last succeeded
    /// (`--skip-unchanged`, `run::reuse`).
    Reused,
}

impl Status {
    /// The lowercase name the history and run_results.json use.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Skipped => "skipped",
            Status::Fail => "fail",
            Status::Warn => "warn",
            Status::Pass => "pass",
            Status::Reused => "reused",
        }
    }
}

/// One finished node, as reported to the user and recorded.
#[derive(Debug, Clone, Serialize)]
pub struct ResultLine {
    pub unique_id: String,
    pub status: Status,
    /// `table`, `view`, `seed`, `test`...
    pub kind: String,
    /// `main.customers`, or the test's name.
    pub name: String,
    pub rows: Option<u64>,
    pub seconds: f64,
    pub message: Option<String>,
    /// For a reused node: the proof its reuse relied on (`run::reuse::Proof`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<serde_json::Value>,
}

/// What one test found.
#[derive(Clone, Debug)]
pub struct TestRun {
    pub unique_id: String,
    pub status: Status,
    /// The model or seed the test is attached to (generic tests), or tests (unit tests).
    pub attached: Option<String>,
    pub column: Option<String>,
    /// `unique`, `not_null`..., `singular`, `unit`, or `row_count_anomaly`.
    pub test: String,
    pub severity: &'static str,
    pub failures: Option<u64>,
    /// True if it ran on staged data before the publish (an audit).
    pub audit: bool,
    /// The condition that decided the status, e.g. `error_if != 0`.
    pub threshold: String,
    /// The measured value: the failing-row count, or the row count for anomalies.
    pub observed: Option<f64>,
    /// Where the failing rows were stored.
    pub failures_relation: Option<String>,
    /// True if its count was read off one aggregate query shared with the other audits
    /// of its relation (`sql::fold`), not from a query of its own.
    pub folded: bool,
    pub message: Option<String>,
    pub started_at: DateTime<Utc>,
    pub seconds: f64,
}

impl TestRun {
    /// True if this result stops the model it audits from being published.
    pub fn blocks(&self) -> bool {
        matches!(self.status, Status::Fail | Status::Error)
    }
}

/// One reported result: a node, or a test (then `test` holds what it found).
#[derive(Debug, Clone)]
pub struct NodeResult {
    pub line: ResultLine,
    /// For built nodes: time spent in the engine's query (staging and audits), the rest
    /// of `line.seconds` being etlm's own work.
    pub query_seconds: Option<f64>,
    pub started_at: DateTime<Utc>,
    pub test: Option<TestRun>,
}

/// A signal that stopped a run: nothing new started, running statements were cancelled,
/// and what finished is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (a scheduler stopping the task).
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The exit code a shell gives a process the signal stopped: 128 + its number.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_id: String,
    /// The command that ran: `run`, `build`, `seed`...
    pub command: &'static str,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub results: Vec<NodeResult>,
    /// The signal that stopped the run early, if one did.
    pub interrupted: Option<Signal>,
}

impl RunSummary {
    pub fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.line.status == status).count()
    }

    /// True if any node failed or an error-severity test failed (exit code 1).
    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| matches!(r.line.status, Status::Error | Status::Fail))
    }

    /// Wall time of the run, in seconds.
    pub fn seconds(&self) -> f64 {
        (self.finished_at - self.started_at).num_microseconds().unwrap_or(0) as f64 / 1e6
    }
}

/// Periods done per windowed model (from the `intervals` table).
pub type Intervals = BTreeMap<String, Vec<Period>>;

/// Row counts of every node's successful builds, newest first (anomaly checks).
pub type RowHistory = BTreeMap<String, Vec<u64>>;

/// The type of a history column, as every store spells it in its own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Int,
    Float,
    Bool,
    /// A moment, with time zone (UTC).
    Time,
    /// A wall-clock time without zone (a period's bounds).
    LocalTime,
}

/// One column of a history table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    pub nullable: bool,
}

/// One history table: its name in the store's schema and its columns, in order.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// Columns a SQL store indexes, in order (none: no index).
    pub index: &'static [&'static str],
}

impl Table {
    /// The column called `name`. Panics on a name the table lacks: queries are built
    /// from the declaration, and the tests run every one of them.
    pub fn col(&self, name: &str) -> &'static str {
        self.columns.iter().find(|c| c.name == name).map(|c| c.name).expect("a declared history column")
    }
}

const fn col(name: &'static str, ty: ColumnType, nullable: bool) -> Column {
    Column { name, ty, nullable }
}

use ColumnType::{Bool, Float, Int, LocalTime, Text, Time};

/// One row per run; written last, so a run listed here has all its rows in the others.
pub const RUNS: Table = Table {
    name: "runs",
    columns: &[
        col("run_id", Text, false),
        col("command", Text, false),
        col("status", Text, false),
        col("started_at", Time, false),
        col("finished_at", Time, false),
        col("duration_s", Float, false),
        col("ok", Int, false),
        col("error", Int, false),
        col("skipped", Int, false),
        col("vars", Text, false),
        col("etlm_version", Text, false),
    ],
    index: &[],
};

/// One row per built (or failed, or skipped) node of a run.
pub const MODEL_RUNS: Table = Table {
    name: "model_runs",
    columns: &[
        col("run_id", Text, false),
        col("unique_id", Text, false),
        col("kind", Text, false),
        col("relation", Text, false),
        col("status", Text, false),
        col("rows", Int, true),
        col("started_at", Time, false),
        col("duration_s", Float, false),
        col("query_s", Float, true),
        col("error", Text, true),
    ],
    index: &[],
};

/// One row per test of a run.
pub const TEST_RESULTS: Table = Table {
    name: "test_results",
    columns: &[
        col("run_id", Text, false),
        col("unique_id", Text, false),
        col("test", Text, false),
        col("model", Text, true),
        col("column_name", Text, true),
        col("severity", Text, false),
        col("status", Text, false),
        col("failures", Int, true),
        col("audit", Bool, false),
        col("threshold", Text, false),
        col("observed", Float, true),
        col("failures_relation", Text, true),
        col("started_at", Time, false),
        col("duration_s", Float, false),
        col("message", Text, true),
    ],
    index: &[],
};

/// One row per published batch of a windowed model.
pub const INTERVALS: Table = Table {
    name: "intervals",
    columns: &[
        col("unique_id", Text, false),
        col("period_start", LocalTime, false),
        col("period_end", LocalTime, false),
        col("run_id", Text, false),
        col("recorded_at", Time, false),
    ],
    index: &["unique_id", "period_start"],
};

/// Every history table.
pub const TABLES: [&Table; 4] = [&RUNS, &MODEL_RUNS, &TEST_RESULTS, &INTERVALS];

/// One value of a history row, typed as its column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Float(Option<f64>),
    Bool(bool),
    Time(DateTime<Utc>),
    LocalTime(NaiveDateTime),
}

impl Value {
    /// The column type this value fills.
    pub fn column_type(&self) -> ColumnType {
        match self {
            Value::Text(_) => Text,
            Value::Int(_) => Int,
            Value::Float(_) => Float,
            Value::Bool(_) => Bool,
            Value::Time(_) => Time,
            Value::LocalTime(_) => LocalTime,
        }
    }
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(Some(s.into()))
}

/// The `runs` row of a run.
pub fn run_row(summary: &RunSummary, vars: &BTreeMap<String, serde_json::Value>) -> Vec<Value> {
    let count = |s| Value::Int(Some(summary.count(s) as i64));
    vec![
        text(&summary.run_id),
        text(summary.command),
        text(match (summary.interrupted, summary.failed()) {
            (Some(_), _) => "interrupted",
            (None, true) => "error",
            (None, false) => "success",
        }),
        Value::Time(summary.started_at),
        Value::Time(summary.finished_at),
        Value::Float(Some(summary.seconds())),
        count(Status::Success),
        count(Status::Error),
        count(Status::Skipped),
        text(serde_json::to_string(vars).expect("vars serialize")),
        text(env!("CARGO_PKG_VERSION")),
    ]
}

/// The `model_runs` rows of a run: one per node that is not a test.
pub fn model_run_rows(summary: &RunSummary) -> Vec<Vec<Value>> {
    let nodes = summary.results.iter().filter(|n| n.test.is_none());
    nodes
        .map(|n| {
            let l = &n.line;
            vec![
                text(&summary.run_id),
                text(&l.unique_id),
                text(&l.kind),
                text(&l.name),
                text(l.status.as_str()),
                Value::Int(l.rows.map(|r| r as i64)),
                Value::Time(n.started_at),
                Value::Float(Some(l.seconds)),
                Value::Float(n.query_seconds),
                Value::Text(if l.status == Status::Error { l.message.clone() } else { None }),
            ]
        })
        .collect()
}

/// The `test_results` rows of a run.
pub fn test_result_rows(summary: &RunSummary) -> Vec<Vec<Value>> {
    let tests = summary.results.iter().filter_map(|n| n.test.as_ref());
    tests
        .map(|t| {
            vec![
                text(&summary.run_id),
                text(&t.unique_id),
                text(&t.test),
                Value::Text(t.attached.clone()),
                Value::Text(t.column.clone()),
                text(t.severity),
                text(t.status.as_str()),
                Value::Int(t.failures.map(|f| f as i64)),
                Value::Bool(t.audit),
                text(&t.threshold),
                Value::Float(t.observed),
                Value::Text(t.failures_relation.clone()),
                Value::Time(t.started_at),
                Value::Float(Some(t.seconds)),
                Value::Text(t.message.clone()),
            ]
        })
        .collect()
}

/// The `intervals` row recording that `unique_id`'s batch for `period` is published.
pub fn interval_row(unique_id: &str, period: &Period, run_id: &str, now: DateTime<Utc>) -> Vec<Value> {
    vec![text(unique_id), Value::LocalTime(period.start), Value::LocalTime(period.end), text(run_id), Value::Time(now)]
}

/// The query reading the done periods back (`unique_id`, `period_start`, `period_end`),
/// for [`intervals_from`]. `schema` is the store's schema, quoted as its SQL needs.
pub fn intervals_query(schema: &str) -> String {
    let c = |n| INTERVALS.col(n);
    format!(
        "select distinct {}, {}, {} from {schema}.\"{}\" order by 1, 2",
        c("unique_id"),
        c("period_start"),
        c("period_end"),
        INTERVALS.name
    )
}

/// The query reading row counts of successful builds back, newest first, for
/// [`row_history_from`].
pub fn row_counts_query(schema: &str) -> String {
    let c = |n| MODEL_RUNS.col(n);
    format!(
        "select {}, {} from {schema}.\"{}\" where {} = '{}' and {} is not null order by {} desc",
        c("unique_id"),
        c("rows"),
        MODEL_RUNS.name,
        c("status"),
        Status::Success.as_str(),
        c("rows"),
        c("started_at"),
    )
}

/// The query reading when each node's last successful build started, as seconds since
/// the epoch (`unique_id`, `at`), for [`last_successes_from`].
pub fn last_successes_query(schema: &str) -> String {
    let c = |n| MODEL_RUNS.col(n);
    format!(
        "select {}, cast(extract(epoch from max({})) as double precision) as at from {schema}.\"{}\" \
         where {} = '{}' group by {} order by 1",
        c("unique_id"),
        c("started_at"),
        MODEL_RUNS.name,
        c("status"),
        Status::Success.as_str(),
        c("unique_id"),
    )
}

/// When each node's last successful build started, from the rows of
/// [`last_successes_query`].
pub fn last_successes_from(batches: &[RecordBatch]) -> Result<BTreeMap<String, f64>, ArrowError> {
    let mut out = BTreeMap::new();
    for batch in batches {
        let ids = cast(batch.column(0), &DataType::Utf8)?;
        let at = cast(batch.column(1), &DataType::Float64)?;
        let (ids, at) = (ids.as_string::<i32>(), at.as_primitive::<Float64Type>());
        for i in 0..batch.num_rows() {
            if !at.is_null(i) {
                out.insert(ids.value(i).to_string(), at.value(i));
            }
        }
    }
    Ok(out)
}

/// What `etlm runs` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// One line per run.
    Runs,
    /// The model results of the runs.
    Models,
    /// The test results of the runs.
    Tests,
}

/// The query behind `etlm runs`: the last `limit` runs, newest first.
pub fn listing_query(schema: &str, listing: Listing, limit: usize) -> String {
    let list = |table: &Table, prefix: &str, names: &[&str]| {
        names.iter().map(|n| format!("{prefix}{}", table.col(n))).collect::<Vec<_>>().join(", ")
    };
    let seconds =
        |table: &Table, prefix: &str| format!("cast({prefix}{0} as decimal(12, 3)) as {0}", table.col("duration_s"));
    let run_id = RUNS.col("run_id");
    let last_runs = format!(
        "select {run_id} from {schema}.\"{}\" order by {} desc limit {limit}",
        RUNS.name,
        RUNS.col("started_at")
    );
    match listing {
        Listing::Runs => format!(
            "select {}, {}, {} from {schema}.\"{}\" order by {} desc limit {limit}",
            list(&RUNS, "", &["run_id", "command", "status", "started_at"]),
            seconds(&RUNS, ""),
            list(&RUNS, "", &["ok", "error", "skipped"]),
            RUNS.name,
            RUNS.col("started_at"),
        ),
        Listing::Models => format!(
            "select {}, {}, {} from {schema}.\"{}\" m join ({last_runs}) r on m.{run_id} = r.{run_id} \
             order by {} desc, {}",
            list(&MODEL_RUNS, "m.", &["run_id", "unique_id", "status", "rows"]),
            seconds(&MODEL_RUNS, "m."),
            list(&MODEL_RUNS, "m.", &["error"]),
            MODEL_RUNS.name,
            list(&MODEL_RUNS, "m.", &["started_at"]),
            list(&MODEL_RUNS, "m.", &["unique_id"]),
        ),
        Listing::Tests => format!(
            "select {} from {schema}.\"{}\" t join ({last_runs}) r on t.{run_id} = r.{run_id} order by {} desc, {}",
            list(
                &TEST_RESULTS,
                "t.",
                &[
                    "run_id",
                    "unique_id",
                    "model",
                    "column_name",
                    "severity",
                    "status",
                    "failures",
                    "threshold",
                    "observed"
                ]
            ),
            TEST_RESULTS.name,
            list(&TEST_RESULTS, "t.", &["started_at"]),
            list(&TEST_RESULTS, "t.", &["unique_id"]),
        ),
    }
}

/// The done periods, from the rows of [`intervals_query`] as any engine returns them
/// (timestamps typed, or as text).
pub fn intervals_from(batches: &[RecordBatch]) -> Result<Intervals, ArrowError> {
    let mut out = Intervals::new();
    for batch in batches {
        let ids = cast(batch.column(0), &DataType::Utf8)?;
        let (starts, ends) = (cast(batch.column(1), &DataType::Utf8)?, cast(batch.column(2), &DataType::Utf8)?);
        let (ids, starts, ends) = (ids.as_string::<i32>(), starts.as_string::<i32>(), ends.as_string::<i32>());
        for i in 0..batch.num_rows() {
            if let (Some(start), Some(end)) = (local_time(starts.value(i)), local_time(ends.value(i))) {
                out.entry(ids.value(i).to_string()).or_default().push(Period { start, end });
            }
        }
    }
    Ok(out)
}

/// Row counts per node, from the rows of [`row_counts_query`].
pub fn row_history_from(batches: &[RecordBatch]) -> Result<RowHistory, ArrowError> {
    let mut history = RowHistory::new();
    for batch in batches {
        let ids = cast(batch.column(0), &DataType::Utf8)?;
        let rows = cast(batch.column(1), &DataType::Int64)?;
        let (ids, rows) = (ids.as_string::<i32>(), rows.as_primitive::<Int64Type>());
        for i in 0..batch.num_rows() {
            history.entry(ids.value(i).to_string()).or_default().push(rows.value(i).max(0) as u64);
        }
    }
    Ok(history)
}

/// A period bound as Arrow (`2024-01-01T00:00:00`) or Postgres (`2024-01-01 00:00:00`)
/// prints it, in years 1 to 9999 as `window::parse_time` reads them (a row from elsewhere
/// near the calendar's ends would make period arithmetic overflow).
fn local_time(text: &str) -> Option<NaiveDateTime> {
    let text = text.replacen(' ', "T", 1);
    NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f").ok().filter(|t| (1..=9999).contains(&t.year()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> RunSummary {
        let at = DateTime::from_timestamp(1_700_000_000, 0).expect("valid time");
        let line = |id: &str, status| ResultLine {
            unique_id: id.into(),
            status,
            kind: "table".into(),
            name: "main.m".into(),
            rows: Some(3),
            seconds: 0.5,
            message: Some("boom".into()),
            proof: None,
        };
        let test = TestRun {
            unique_id: "test.p.t".into(),
            status: Status::Fail,
            attached: Some("model.p.m".into()),
            column: None,
            test: "unique".into(),
            severity: "error",
            failures: Some(2),
            audit: true,
            threshold: "error_if != 0".into(),
            observed: Some(2.0),
            failures_relation: None,
            folded: false,
            message: None,
            started_at: at,
            seconds: 0.1,
        };
        RunSummary {
            run_id: "r1".into(),
            command: "build",
            started_at: at,
            finished_at: at + chrono::Duration::seconds(2),
            results: vec![
                NodeResult {
                    line: line("model.p.m", Status::Error),
                    query_seconds: Some(0.2),
                    started_at: at,
                    test: None,
                },
                NodeResult {
                    line: line("test.p.t", Status::Fail),
                    query_seconds: None,
                    started_at: at,
                    test: Some(test),
                },
            ],
            interrupted: None,
        }
    }

    fn assert_fits(table: &Table, rows: &[Vec<Value>]) {
        assert!(!rows.is_empty(), "{}: no rows to check", table.name);
        for row in rows {
            assert_eq!(row.len(), table.columns.len(), "{}: one value per column", table.name);
            for (value, column) in row.iter().zip(table.columns) {
                assert_eq!(value.column_type(), column.ty, "{}.{}", table.name, column.name);
                let null = matches!(value, Value::Text(None) | Value::Int(None) | Value::Float(None));
                assert!(column.nullable || !null, "{}.{} is not nullable", table.name, column.name);
            }
        }
    }

    #[test]
    fn every_row_builder_fills_its_table_as_declared() {
        let s = summary();
        assert_fits(&RUNS, &[run_row(&s, &BTreeMap::new())]);
        assert_fits(&MODEL_RUNS, &model_run_rows(&s));
        assert_fits(&TEST_RESULTS, &test_result_rows(&s));
        let day = NaiveDateTime::parse_from_str("2024-01-01T00:00:00", "%Y-%m-%dT%H:%M:%S").expect("valid");
        let period = Period { start: day, end: day + chrono::Duration::days(1) };
        assert_fits(&INTERVALS, &[interval_row("model.p.m", &period, "r1", s.started_at)]);
    }

    #[test]
    fn a_run_row_counts_its_results() {
        let row = run_row(&summary(), &BTreeMap::new());
        assert_eq!(row[2], text("error"));
        assert_eq!(row[5], Value::Float(Some(2.0)));
        assert_eq!(row[7], Value::Int(Some(1)));
    }

    #[test]
    fn queries_name_only_declared_columns() {
        // `col` panics on an undeclared name, so building each query checks it.
        for listing in [Listing::Runs, Listing::Models, Listing::Tests] {
            assert!(listing_query("\"_etlm\"", listing, 5).contains("limit 5"));
        }
        assert!(intervals_query("h").contains("\"intervals\""));
        assert!(row_counts_query("h").contains("status = 'success'"));
    }

    #[test]
    fn period_bounds_read_in_either_spelling() {
        assert_eq!(local_time("2024-01-01 06:00:00"), local_time("2024-01-01T06:00:00"));
        assert!(local_time("2024-01-01 06:00:00.25").is_some());
        assert_eq!(local_time("yesterday"), None);
    }

    // Regression: #18, a done period at the calendar's start made `run_periods` step
    // before it and panic.
    #[test]
    fn periods_outside_years_1_to_9999_are_not_read() {
        use crate::window::{BatchSize, parse_time, run_periods};
        use datafusion::arrow::array::{ArrayRef, StringArray};
        let text = |v: &str| std::sync::Arc::new(StringArray::from(vec![v])) as ArrayRef;
        let batch = RecordBatch::try_from_iter([
            ("unique_id", text("model.p.m")),
            ("period_start", text("-262143-01-01 00:00:00")),
            ("period_end", text("-262142-01-01 00:00:00")),
        ])
        .unwrap();
        let done = intervals_from(&[batch]).unwrap();
        let begin = parse_time("2024-01-01").unwrap();
        let now = DateTime::from_timestamp(1_735_689_600, 0).unwrap();
        let done = done.get("model.p.m").map_or(&[][..], Vec::as_slice);
        assert_eq!(run_periods(begin, done, 3, BatchSize::Year, now).len(), 2);
        assert_eq!(local_time("+10000-01-01 00:00:00"), None);
    }
}
