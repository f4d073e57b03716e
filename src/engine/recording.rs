//! A test double of [`Engine`] and [`HistoryStore`]: no database, it records every call
//! the runner makes, in order, as an [`Event`], so `run/` has fast unit tests of what
//! the runner asks for (scheduling, skip-on-failure, write-audit-publish, retry) without
//! storing any data.
//!
//! Everything succeeds with plausible values unless told otherwise: staging writes one
//! row (none for a view), `count` finds no failing rows, queries return no rows. A test
//! can make staging fail for a model ([`RecordingEngine::fail_stage`]) and make `count`
//! return a number for SQL containing a pattern ([`RecordingEngine::count_where`]), to
//! set a quality test's failing rows. Failpoints are not passed: they abort the process.

use std::collections::BTreeMap;
use std::sync::Mutex;

use datafusion::arrow::array::RecordBatch;

use super::failpoint::Failpoints;
use super::{Build, Engine, EngineError, ErrorKind, HistoryStore, Staged};
use crate::history::{Intervals, RowHistory, RunSummary};
use crate::relation::Relation;
use crate::window::Period;

/// One call the runner made, with what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `stage` of a relation (also recorded when it was made to fail).
    Stage(Relation),
    Publish(Relation),
    Discard(Relation),
    ReplaceTable(Relation),
    /// A hook's statements.
    Execute(String),
    /// A failing-row count: a quality test's SQL.
    Count(String),
    Query(String),
    ColumnTypes(String),
    /// `record_run`, by run id.
    RecordRun(String),
    RecordInterval {
        unique_id: String,
        period: Period,
    },
    ForgetIntervals(String),
    Intervals,
    RowCountHistory,
}

/// How often a model's `stage` fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The next time only; later stages succeed (a transient failure, for retries).
    Once,
    Always,
}

/// An engine that records what it is asked and stores nothing.
#[derive(Debug, Default)]
pub struct RecordingEngine {
    events: Mutex<Vec<Event>>,
    /// Model name -> how its stage fails.
    stage_failures: Mutex<BTreeMap<String, Failure>>,
    /// (pattern, rows): `count` of SQL containing the pattern returns the rows; the first
    /// match wins.
    counts: Vec<(String, u64)>,
}

/// The handle of staged data: the relation it was staged for.
struct Handle(Relation);

impl RecordingEngine {
    /// An engine on which everything succeeds.
    pub fn new() -> RecordingEngine {
        RecordingEngine::default()
    }

    /// Makes staging the model named `model` fail, once or always.
    pub fn fail_stage(mut self, model: &str, failure: Failure) -> RecordingEngine {
        self.stage_failures.get_mut().expect("stage failures").insert(model.to_string(), failure);
        self
    }

    /// Makes `count` return `rows` for SQL that contains `pattern` (else 0).
    pub fn count_where(mut self, pattern: &str, rows: u64) -> RecordingEngine {
        self.counts.push((pattern.to_string(), rows));
        self
    }

    /// Every call so far, in the order they were made.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("events").clone()
    }

    /// Takes the calls so far, leaving none (to look at one run of several).
    pub fn take_events(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().expect("events"))
    }

    fn record(&self, event: Event) {
        self.events.lock().expect("events").push(event);
    }

    /// The rows `count` returns for `sql`.
    fn count_of(&self, sql: &str) -> Result<u64, EngineError> {
        Ok(self.counts.iter().find(|(pattern, _)| sql.contains(pattern.as_str())).map_or(0, |(_, rows)| *rows))
    }
}

#[async_trait::async_trait]
impl Engine for RecordingEngine {
    fn history(&self) -> &dyn HistoryStore {
        self
    }

    async fn stage(
        &self,
        relation: &Relation,
        build: Build,
        _failpoints: &Failpoints,
        model: &str,
    ) -> Result<Staged, EngineError> {
        self.record(Event::Stage(relation.clone()));
        // Let other running models go on meanwhile, as a real engine's I/O would.
        tokio::task::yield_now().await;
        let failure = {
            let mut failures = self.stage_failures.lock().expect("stage failures");
            let failure = failures.get(model).copied();
            if failure == Some(Failure::Once) {
                failures.remove(model);
            }
            failure
        };
        if failure.is_some() {
            return Err(EngineError::new(ErrorKind::Failed, format!("recorded failure staging `{model}`")));
        }
        let rows = match build {
            Build::View(_) => None,
            _ => Some(1),
        };
        Ok(Staged { relation: relation.clone(), rows, query_seconds: 0.0, handle: Box::new(Handle(relation.clone())) })
    }

    async fn publish(
        &self,
        staged: Staged,
        _failpoints: &Failpoints,
        _model: &str,
    ) -> Result<Option<u64>, EngineError> {
        let (_, rows, Handle(relation)) = super::handle::<Handle>(staged)?;
        self.record(Event::Publish(relation));
        Ok(rows)
    }

    async fn discard(&self, staged: Staged) -> Result<(), EngineError> {
        let (_, _, Handle(relation)) = super::handle::<Handle>(staged)?;
        self.record(Event::Discard(relation));
        Ok(())
    }

    async fn replace_table(&self, relation: &Relation, sql: &str) -> Result<u64, EngineError> {
        self.record(Event::ReplaceTable(relation.clone()));
        self.count_of(sql)
    }

    async fn execute(&self, sql: &str) -> Result<(), EngineError> {
        self.record(Event::Execute(sql.to_string()));
        Ok(())
    }

    async fn count(&self, sql: &str) -> Result<u64, EngineError> {
        self.record(Event::Count(sql.to_string()));
        self.count_of(sql)
    }

    async fn query(&self, sql: &str, _limit: usize) -> Result<Vec<RecordBatch>, EngineError> {
        self.record(Event::Query(sql.to_string()));
        Ok(Vec::new())
    }

    async fn column_types(&self, sql: &str) -> Result<Vec<(String, String)>, EngineError> {
        self.record(Event::ColumnTypes(sql.to_string()));
        Ok(Vec::new())
    }
}

#[async_trait::async_trait]
impl HistoryStore for RecordingEngine {
    fn schema(&self) -> String {
        "\"recording\"".to_string()
    }

    async fn record_run(
        &self,
        summary: &RunSummary,
        _vars: &BTreeMap<String, serde_json::Value>,
    ) -> Result<(), EngineError> {
        self.record(Event::RecordRun(summary.run_id.clone()));
        Ok(())
    }

    async fn record_interval(&self, unique_id: &str, period: &Period, _run_id: &str) -> Result<(), EngineError> {
        self.record(Event::RecordInterval { unique_id: unique_id.to_string(), period: *period });
        Ok(())
    }

    async fn forget_intervals(&self, unique_id: &str, _run_id: &str) -> Result<(), EngineError> {
        self.record(Event::ForgetIntervals(unique_id.to_string()));
        Ok(())
    }

    async fn intervals(&self) -> Result<Intervals, EngineError> {
        self.record(Event::Intervals);
        Ok(Intervals::new())
    }

    async fn row_count_history(&self) -> Result<RowHistory, EngineError> {
        self.record(Event::RowCountHistory);
        Ok(RowHistory::new())
    }

    async fn last_successes(&self) -> Result<BTreeMap<String, f64>, EngineError> {
        Ok(BTreeMap::new())
    }
}
