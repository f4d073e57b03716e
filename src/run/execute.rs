//! What each node does in `seed`, `run`, `build` and `test`: seeds load their CSV,
//! views and tables are staged, audited by their tests and only then published; tests
//! run on published relations. Results become report lines, run_results.json and
//! history rows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use crate::compile::CompiledProject;
use crate::engine::failpoint::Failpoints;
use crate::engine::incremental::{IncrementalSpec, Window};
use crate::engine::{Build, Engine};
use crate::graph::ResourceType;
use crate::history::{Intervals, NodeResult, ResultLine, RowHistory, RunSummary, Status, TestRun};
use crate::node::Node;
use crate::project::{IncrementalStrategy, Materialization};
use crate::window;

use super::audit::{Against, check_anomaly, run_audits, run_test, test_run};
use super::reporter::Reporter;
use super::reuse::{self, Proof, Reuse};
use super::unit::run_unit_test;

use super::schedule::{Interrupt, Job, JobStatus, run_jobs};

/// Which nodes a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Seed,
    Run,
    Build,
    Test,
    /// Windowed models only, one batch per period of a range.
    Backfill,
    /// Snapshots only.
    Snapshot,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Seed => "seed",
            Command::Run => "run",
            Command::Build => "build",
            Command::Test => "test",
            Command::Backfill => "backfill",
            Command::Snapshot => "snapshot",
        }
    }

    /// True if the command builds `node` (seeds, snapshots and non-ephemeral models).
    pub fn builds(self, node: &Node) -> bool {
        match node.resource_type {
            ResourceType::Seed => matches!(self, Command::Seed | Command::Build),
            ResourceType::Snapshot => matches!(self, Command::Snapshot | Command::Build),
            ResourceType::Model => match self {
                Command::Run | Command::Build => node.config.materialized != Materialization::Ephemeral,
                Command::Backfill => node.is_windowed(),
                Command::Seed | Command::Test | Command::Snapshot => false,
            },
            ResourceType::Source | ResourceType::Test | ResourceType::UnitTest => false,
        }
    }
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub command: Command,
    pub threads: usize,
    pub fail_fast: bool,
    pub full_refresh: bool,
    pub failpoints: Failpoints,
    pub selected: BTreeSet<String>,
    pub run_id: String,
    /// Seed rows, read and checked before the run (see `seeds.rs`).
    pub seeds: BTreeMap<String, datafusion::arrow::array::RecordBatch>,
    /// Which periods windowed models process.
    pub periods: Periods,
    /// Set by a signal: the run stops starting nodes (see `schedule.rs`).
    pub interrupt: Interrupt,
    /// What `--skip-unchanged` reuses nodes on.
    pub reuse: Reuse,
}

/// The periods windowed models process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Periods {
    /// `run`/`build`: from `lookback` periods before the latest done (or `begin`) to now.
    Resume { now: chrono::DateTime<chrono::Utc> },
    /// `backfill`: every period from `start` to `end` (inclusive), or only those not
    /// done yet.
    Range { start: chrono::NaiveDateTime, end: chrono::NaiveDateTime, missing: bool },
}

/// What a command runs: jobs in dependency order, each with the run's jobs it waits
/// for, and for each built node the tests that audit it before it is published.
#[derive(Debug, Default)]
pub struct Plan {
    pub jobs: Vec<Job>,
    pub audits: BTreeMap<String, Vec<String>>,
}

impl Plan {
    /// How many result lines the run reports.
    pub fn lines(&self) -> usize {
        self.jobs.len() + self.audits.values().map(Vec::len).sum::<usize>()
    }
}

/// Plans a command. Ephemeral models are looked through: a model waits for what they
/// read. A test attached to a built node audits it when everything else it reads is
/// either not built in this run or an ancestor of that node (so already published);
/// `build` runs the other tests after their nodes, `test` runs every selected test.
/// Selection already holds the tests of selected nodes, unless `--exclude` took them out.
pub fn plan(compiled: &CompiledProject, command: Command, selected: &BTreeSet<String>) -> Plan {
    let builds = |id: &str| selected.contains(id) && command.builds(&compiled.nodes[id]);
    let order: Vec<&str> = compiled.dag.topological();
    let mut plan = Plan::default();
    let mut audited = BTreeSet::new();
    if matches!(command, Command::Run | Command::Build | Command::Backfill | Command::Snapshot) {
        for test in compiled.nodes.values().filter(|n| n.audit_sql.is_some() && selected.contains(&n.unique_id)) {
            let attached = &test.generic_test.as_ref().expect("audited tests are generic").attached_to;
            if !builds(attached) {
                continue;
            }
            let ancestors = compiled.dag.ancestors(attached, None);
            let ready = test.depends_on.iter().all(|d| d == attached || !builds(d) || ancestors.contains(d));
            if ready {
                plan.audits.entry(attached.clone()).or_default().push(test.unique_id.clone());
                audited.insert(test.unique_id.as_str());
            }
        }
    }
    let tests_run = matches!(command, Command::Build | Command::Test);
    let is_test = |node: &Node| matches!(node.resource_type, ResourceType::Test | ResourceType::UnitTest);
    let runs = |id: &str| {
        let node = &compiled.nodes[id];
        builds(id) || (tests_run && is_test(node) && !audited.contains(id) && selected.contains(id))
    };
    // `build` runs a model's unit tests before the model, which waits for them: they
    // wait for what the model reads instead of for the model.
    let unit_tests_of: BTreeMap<&str, Vec<&str>> = match command {
        Command::Build => order
            .iter()
            .filter(|id| runs(id) && compiled.nodes[**id].unit_test.is_some())
            .filter_map(|id| Some((compiled.nodes[*id].depends_on.first()?.as_str(), *id)))
            .filter(|(model, _)| builds(model))
            .fold(BTreeMap::new(), |mut map, (model, test)| {
                map.entry(model).or_insert_with(Vec::new).push(test);
                map
            }),
        _ => BTreeMap::new(),
    };
    for id in order.into_iter().filter(|id| runs(id)) {
        let mut deps: BTreeSet<String> = unit_tests_of.get(id).into_iter().flatten().map(|t| t.to_string()).collect();
        let before_model = unit_tests_of.values().flatten().any(|t| *t == id);
        let mut stack: Vec<&str> = match before_model {
            true => compiled.dag.parents(compiled.nodes[id].depends_on[0].as_str()),
            false => compiled.dag.parents(id),
        };
        let mut seen = BTreeSet::new();
        while let Some(p) = stack.pop() {
            if !seen.insert(p) {
                continue;
            }
            let node = &compiled.nodes[p];
            if builds(p) {
                deps.insert(p.to_string());
            } else if (node.config.materialized == Materialization::Ephemeral
                && node.resource_type == ResourceType::Model)
                || node.resource_type == ResourceType::Source
            {
                // Through what is not built: an ephemeral model's upstream, or the seed a
                // source is declared over.
                stack.extend(compiled.dag.parents(p));
            }
        }
        plan.jobs.push(Job { id: id.to_string(), deps });
    }
    plan
}

/// How a job ended well: rows written (built nodes) and the tests it ran.
#[derive(Debug)]
struct Done {
    rows: Option<u64>,
    query_seconds: f64,
    tests: Vec<TestRun>,
    /// Set when the node was reused, not built: the proof that allowed it.
    reused: Option<Proof>,
}

/// How a job failed: why, and the tests it ran on the way.
#[derive(Debug)]
struct Failed {
    message: String,
    tests: Vec<TestRun>,
}

impl From<String> for Failed {
    fn from(message: String) -> Failed {
        Failed { message, tests: Vec::new() }
    }
}

/// Runs the planned jobs on the engine, reporting each result as it finishes.
pub async fn execute(
    compiled: Arc<CompiledProject>,
    engine: Arc<dyn Engine>,
    opts: &RunOptions,
    plan: Plan,
    history: RowHistory,
    intervals: Intervals,
    reporter: &dyn Reporter,
) -> RunSummary {
    let started_at = chrono::Utc::now();
    // When each running node started: wall clock for the history, monotonic for durations.
    type Starts = BTreeMap<String, (chrono::DateTime<chrono::Utc>, Instant)>;
    let starts: Arc<std::sync::Mutex<Starts>> = Default::default();
    let ctx = Arc::new(JobContext {
        compiled: compiled.clone(),
        engine,
        failpoints: opts.failpoints.clone(),
        seeds: opts.seeds.clone(),
        audits: plan.audits.clone(),
        read_later: plan.jobs.iter().flat_map(|job| job.deps.iter().cloned()).collect(),
        history,
        full_refresh: opts.full_refresh,
        periods: opts.periods.clone(),
        intervals,
        run_id: opts.run_id.clone(),
        reuse: opts.reuse.clone(),
    });
    let mut results = Vec::new();
    let work_starts = starts.clone();
    run_jobs(
        plan.jobs,
        opts.threads,
        opts.fail_fast,
        &opts.interrupt,
        move |id| {
            reporter.began(&id);
            let ctx = ctx.clone();
            let starts = work_starts.clone();
            async move {
                starts.lock().expect("start times").insert(id.clone(), (chrono::Utc::now(), Instant::now()));
                ctx.run_node(&id).await
            }
        },
        |id, status| {
            let node = &compiled.nodes[id];
            let (started, instant) =
                starts.lock().expect("start times").get(id).copied().unwrap_or((chrono::Utc::now(), Instant::now()));
            let seconds = instant.elapsed().as_secs_f64();
            let query_seconds = match status {
                JobStatus::Done(done) => Some(done.query_seconds),
                _ => None,
            };
            let (tests, own) = match status {
                JobStatus::Done(Done { tests, rows, reused: Some(proof), .. }) => {
                    (tests.clone(), (Status::Reused, *rows, Some(reuse::reason(proof))))
                }
                JobStatus::Done(done) => (done.tests.clone(), (Status::Success, done.rows, None)),
                JobStatus::Failed(f) => (f.tests.clone(), (Status::Error, None, Some(f.message.clone()))),
                JobStatus::Skipped(why) => {
                    let skipped =
                        plan.audits.get(id).into_iter().flatten().map(|t| skipped_test(&compiled.nodes[t], why));
                    (skipped.collect(), (Status::Skipped, None, Some(why.clone())))
                }
            };
            let proof = match status {
                JobStatus::Done(Done { reused: Some(proof), .. }) => {
                    Some(serde_json::to_value(proof).expect("proofs serialize"))
                }
                _ => None,
            };
            for test in tests {
                if !compiled.nodes.contains_key(&test.unique_id) {
                    // An anomaly verdict: a line the plan could not count ahead.
                    reporter.add_total(1);
                }
                let subject =
                    compiled.nodes.get(&test.unique_id).or_else(|| Some(&compiled.nodes[test.attached.as_ref()?]));
                let line = test_line(subject.expect("a test result is about a test or a model"), &test);
                let result = NodeResult { line, started_at: test.started_at, query_seconds: None, test: Some(test) };
                reporter.result(&result);
                results.push(result);
            }
            // A test job's own result is its test line, reported above.
            if !matches!(node.resource_type, ResourceType::Test | ResourceType::UnitTest) {
                let (status, rows, message) = own;
                let line = ResultLine {
                    unique_id: id.to_string(),
                    status,
                    kind: kind_of(node).to_string(),
                    name: relation_name(node),
                    rows,
                    seconds: if status == Status::Skipped { 0.0 } else { seconds },
                    message,
                    proof,
                };
                let result = NodeResult { line, started_at: started, query_seconds, test: None };
                reporter.result(&result);
                results.push(result);
            } else if let JobStatus::Skipped(why) = status {
                let test = skipped_test(node, why);
                let line = test_line(node, &test);
                let result = NodeResult { line, started_at: started, query_seconds: None, test: Some(test) };
                reporter.result(&result);
                results.push(result);
            }
        },
    )
    .await;
    RunSummary {
        run_id: opts.run_id.clone(),
        command: opts.command.as_str(),
        started_at,
        finished_at: chrono::Utc::now(),
        results,
        interrupted: opts.interrupt.signal(),
    }
}

/// What every job of a run shares.
struct JobContext {
    compiled: Arc<CompiledProject>,
    engine: Arc<dyn Engine>,
    failpoints: Failpoints,
    seeds: BTreeMap<String, datafusion::arrow::array::RecordBatch>,
    audits: BTreeMap<String, Vec<String>>,
    /// The nodes a later job of the run reads.
    read_later: BTreeSet<String>,
    history: RowHistory,
    full_refresh: bool,
    periods: Periods,
    intervals: Intervals,
    run_id: String,
    reuse: Reuse,
}

impl JobContext {
    async fn run_node(&self, id: &str) -> Result<Done, Failed> {
        let node = &self.compiled.nodes[id];
        if node.resource_type == ResourceType::UnitTest {
            let test = run_unit_test(self.engine.as_ref(), node).await;
            return match test.blocks() {
                true => Err(Failed { message: test.message.clone().unwrap_or_default(), tests: vec![test] }),
                false => Ok(Done { rows: None, query_seconds: test.seconds, tests: vec![test], reused: None }),
            };
        }
        if node.resource_type == ResourceType::Test {
            if let Some(test) = self.reused_test(node) {
                return Ok(Done { rows: None, query_seconds: 0.0, tests: vec![test], reused: None });
            }
            let test = run_test(&self.compiled, self.engine.as_ref(), node, Against::Published).await;
            return if test.blocks() {
                Err(Failed { message: test.message.clone().unwrap_or_default(), tests: vec![test] })
            } else {
                Ok(Done { rows: None, query_seconds: test.seconds, tests: vec![test], reused: None })
            };
        }
        if let Some(reused) = self.reused(node).await {
            return reused;
        }
        let built = self.build_node(node).await;
        if let Some(relation) = &node.relation {
            self.reuse.fingerprints.forget(relation);
        }
        built
    }

    /// The proof `node` may be reused on: skipping is on, the node is of a kind that
    /// may be, and its proof holds of what it is and reads now.
    fn proven(&self, node: &Node) -> Option<Proof> {
        let proofs = self.reuse.proofs.as_ref()?;
        if reuse::never_reused(node, self.full_refresh).is_some() {
            return None;
        }
        let old = proofs.get(&node.unique_id)?;
        let fingerprints = &self.reuse.fingerprints;
        let now = reuse::current(&self.compiled, self.engine.as_ref(), fingerprints, node, &self.run_id, None)?;
        reuse::holds(old, &now).then(|| old.clone())
    }

    /// The result of a test that passed on the same data before, if it did.
    fn reused_test(&self, test: &Node) -> Option<TestRun> {
        let proof = self.proven(test)?;
        let mut run = test_run(test, chrono::Utc::now());
        run.status = Status::Reused;
        run.failures = Some(0);
        run.message = Some(format!("reused: passed in run {} on the same data", proof.run_id));
        Some(run)
    }

    /// Reuses `node` instead of building it when its proof holds. Its audits pass
    /// again where their proofs hold too; the others (a test added since, say) run on
    /// the published data, and one that fails fails the node, as it would a build.
    async fn reused(&self, node: &Node) -> Option<Result<Done, Failed>> {
        let proof = self.proven(node)?;
        let mut tests = Vec::new();
        for id in self.audits.get(&node.unique_id).into_iter().flatten() {
            let test = &self.compiled.nodes[id];
            tests.push(match self.reused_test(test) {
                Some(run) => run,
                None => run_test(&self.compiled, self.engine.as_ref(), test, Against::Published).await,
            });
        }
        if let Some(names) = self.blocking(tests.iter()) {
            return Some(Err(Failed { message: format!("reused, but {names} failed on its data"), tests }));
        }
        let query_seconds = tests.iter().map(|t| t.seconds).sum();
        Some(Ok(Done { rows: proof.rows, query_seconds, tests, reused: Some(proof) }))
    }

    /// Builds a node between its hooks: `pre_hook`s, then stage, audit and publish (only
    /// if no blocking test failed; in batches for windowed models), then `post_hook`s.
    /// Engine errors name the model, its file and its compiled SQL.
    async fn build_node(&self, node: &Node) -> Result<Done, Failed> {
        self.run_hooks(node, "pre_hook", &node.hooks.pre).await?;
        let mut done = match node.is_windowed() {
            true => self.build_batches(node).await?,
            false => self.build_once(node).await?,
        };
        if let Err(failed) = self.run_hooks(node, "post_hook", &node.hooks.post).await {
            done.tests.extend(failed.tests);
            return Err(Failed { message: format!("published, then {}", failed.message), tests: done.tests });
        }
        Ok(done)
    }

    /// Runs a model's hooks in order; the first that fails fails the model.
    async fn run_hooks(&self, node: &Node, kind: &str, hooks: &[String]) -> Result<(), Failed> {
        for hook in hooks {
            if let Err(e) = self.engine.execute(hook).await {
                return Err(Failed::from(self.located(node, &format!("{kind} failed: {e}\n= note: {}", hook.trim()))));
            }
        }
        Ok(())
    }

    /// Builds a node that is not windowed: one stage, audit, publish.
    async fn build_once(&self, node: &Node) -> Result<Done, Failed> {
        let relation = node.relation.as_ref().expect("built nodes have a relation");
        let build = match node.resource_type {
            ResourceType::Seed => Build::Seed {
                batch: match self.seeds.get(&node.unique_id) {
                    Some(batch) => batch.clone(),
                    None => self.read_seed(node)?,
                },
                column_types: node.config.column_types.clone(),
            },
            _ => {
                let sql = node.compiled_sql.clone().expect("models have compiled SQL");
                let partition_by: Vec<String> = node.config.partition_by.iter().cloned().collect();
                match node.config.materialized {
                    Materialization::Snapshot => Build::Snapshot {
                        sql,
                        config: node.config.snapshot.clone().expect("snapshots have a snapshot config"),
                    },
                    Materialization::View => Build::View(sql),
                    Materialization::Incremental if !self.refreshes(node) => {
                        Build::Incremental { sql, spec: incremental_spec(node, partition_by) }
                    }
                    _ => Build::Table { sql, partition_by },
                }
            }
        };
        let engine_error = |e: crate::engine::EngineError| Failed::from(self.located(node, &e.to_string()));
        let view = matches!(build, Build::View(_));
        let mut staged =
            self.engine.stage(relation, build, &self.failpoints, &node.name).await.map_err(engine_error)?;
        // A view read again (by its audits or a later job) runs once.
        if view && (self.audits.contains_key(&node.unique_id) || self.read_later.contains(&node.unique_id)) {
            self.engine.keep_view_rows(&mut staged).await;
        }
        let mut tests = self.audit(node).await;
        let history = self.history.get(&node.unique_id).map_or(&[][..], Vec::as_slice);
        let anomaly = staged.rows.and_then(|rows| check_anomaly(node, rows, history));
        if let Some(names) = self.blocking(tests.iter().chain(&anomaly)) {
            let message = format!("not published: {names} failed on the new data; the previous version stays");
            if let Err(e) = self.engine.discard(staged).await {
                return Err(Failed { message: format!("{message}\n{e}"), tests });
            }
            tests.extend(anomaly);
            return Err(Failed { message, tests });
        }
        let query_seconds = staged.query_seconds + tests.iter().map(|t| t.seconds).sum::<f64>();
        let rows = self.engine.publish(staged, &self.failpoints, &node.name).await.map_err(engine_error)?;
        tests.extend(anomaly);
        Ok(Done { rows, query_seconds, tests, reused: None })
    }

    /// Builds a windowed model one batch at a time, in order: each batch is staged,
    /// audited and published like a model, then its period is recorded as done.
    async fn build_batches(&self, node: &Node) -> Result<Done, Failed> {
        let relation = node.relation.as_ref().expect("built nodes have a relation");
        let cfg = &node.config;
        let size = cfg.batch_size.expect("windowed models have a batch size");
        // A full refresh forgets what is done and starts the table anew at `begin`.
        let refresh = self.refreshes(node);
        let done = match refresh {
            true => &[][..],
            false => self.intervals.get(&node.unique_id).map_or(&[][..], Vec::as_slice),
        };
        let too_many = |from, to| match window::too_many_periods(from, to, size) {
            Some(why) => Err(Failed::from(self.located(node, &why))),
            None => Ok(()),
        };
        let periods = match &self.periods {
            Periods::Resume { now } => {
                let begin = cfg.begin.as_deref().and_then(window::parse_time).ok_or_else(|| {
                    Failed::from(self.located(node, "a model with `event_time` and `batch_size` needs `begin` (a date), where its first batch starts"))
                })?;
                let from = done.iter().map(|p| p.start).max().unwrap_or(begin);
                too_many(from, now.naive_utc())?;
                window::run_periods(begin, done, cfg.lookback, size, *now)
            }
            Periods::Range { start, end, missing } => {
                too_many(*start, *end)?;
                window::periods(*start, *end, size).into_iter().filter(|p| !missing || !done.contains(p)).collect()
            }
        };
        let sql = node.compiled_sql.as_deref().expect("models have compiled SQL");
        let partition_by: Vec<String> = cfg.partition_by.iter().cloned().collect();
        if refresh {
            self.engine
                .history()
                .forget_intervals(&node.unique_id, &self.run_id)
                .await
                .map_err(|e| Failed::from(self.located(node, &e.to_string())))?;
        }
        let (mut rows, mut query_seconds, mut tests) = (0, 0.0, Vec::new());
        for (i, period) in periods.iter().enumerate() {
            let mut spec = incremental_spec(node, partition_by.clone());
            let window = Window {
                event_time: cfg.event_time.clone().expect("windowed models have an event time"),
                start: period.start,
                end: period.end,
            };
            let in_batch = |e: crate::engine::EngineError| {
                Failed::from(self.located(node, &format!("batch {}: {e}", period.ds())))
            };
            let batch_sql = period.spell(sql);
            // A batch replaces its window: rows it returns outside it would pile up in
            // other windows, so they are an error before anything is written.
            let outside = self.engine.count(&window.outside(&batch_sql)).await.map_err(in_batch)?;
            if outside > 0 {
                let message = format!(
                    "batch {}: the model returned {outside} rows outside the batch's window [{}, {}) of `{}` \
                     (or with no `{}`); nothing of this batch is written. Filter on the window: read models \
                     and seeds that declare `event_time` through `ref()`, or compare with `etlm_start` and `etlm_end`",
                    period.ds(),
                    window::timestamp(window.start),
                    window::timestamp(window.end),
                    window.event_time,
                    window.event_time,
                );
                return Err(Failed { message: self.located(node, &message), tests });
            }
            spec.window = Some(window);
            let build = match refresh && i == 0 {
                // The first batch of a full refresh replaces the table.
                true => Build::Table { sql: batch_sql, partition_by: partition_by.clone() },
                false => Build::Incremental { sql: batch_sql, spec },
            };
            let staged = self.engine.stage(relation, build, &self.failpoints, &node.name).await.map_err(in_batch)?;
            tests.extend(self.audit(node).await);
            if let Some(names) = self.blocking(tests.iter()) {
                let message = format!(
                    "batch {} not published: {names} failed on its data; earlier batches stay published",
                    period.ds()
                );
                self.engine.discard(staged).await.map_err(in_batch)?;
                return Err(Failed { message, tests });
            }
            query_seconds += staged.query_seconds;
            let written = self.engine.publish(staged, &self.failpoints, &node.name).await.map_err(in_batch)?;
            rows += written.unwrap_or(0);
            self.failpoints.hit("before-state-write", &node.name);
            self.engine.history().record_interval(&node.unique_id, period, &self.run_id).await.map_err(in_batch)?;
            tests.retain(|t| t.status != Status::Pass);
        }
        Ok(Done { rows: Some(rows), query_seconds, tests, reused: None })
    }

    /// A seed not read before the run (it looked reusable, but must be loaded after
    /// all). Its bytes are those a run loaded before, so they read as they did then.
    fn read_seed(&self, node: &Node) -> Result<datafusion::arrow::array::RecordBatch, Failed> {
        let path = self.compiled.project.root.join(&node.path);
        crate::seed_csv::read_seed_csv(&path, &node.config.column_types, node.config.quote_columns)
            .map_err(|e| Failed::from(self.located(node, &format!("the seed cannot be loaded: {e}"))))
    }

    /// True if `--full-refresh` rebuilds this incremental model (`full_refresh: false`
    /// protects it).
    fn refreshes(&self, node: &Node) -> bool {
        self.full_refresh && node.config.full_refresh != Some(false)
    }

    /// Runs the tests that audit `node` on its staged data.
    async fn audit(&self, node: &Node) -> Vec<TestRun> {
        let tests: Vec<&Node> =
            self.audits.get(&node.unique_id).into_iter().flatten().map(|t| self.compiled.nodes[t].as_ref()).collect();
        run_audits(&self.compiled, self.engine.as_ref(), &tests).await
    }

    /// The names of the results that stop a publish (`` `a`, `b` ``), if any.
    fn blocking<'t>(&self, results: impl Iterator<Item = &'t TestRun>) -> Option<String> {
        let names: Vec<String> = results
            .filter(|t| t.blocks())
            .map(|t| {
                let name = self.compiled.nodes.get(&t.unique_id).map_or_else(|| t.test.clone(), |n| n.name.clone());
                format!("`{name}`")
            })
            .collect();
        (!names.is_empty()).then(|| names.join(", "))
    }

    /// An error message with the node's file and, for models, its compiled SQL.
    fn located(&self, node: &Node, error: &str) -> String {
        match node.resource_type {
            ResourceType::Seed => format!("{error}\n--> {}", node.path.display()),
            _ => {
                let compiled = format!(
                    "{}/compiled/{}",
                    self.compiled.project.settings.target_path,
                    node.compiled_path().display()
                );
                format!("{error}\n--> {}\n= note: compiled SQL: {compiled}", node.path.display())
            }
        }
    }
}

/// How an incremental model combines its new rows: dbt's default strategy is `merge`
/// with a `unique_key`, else `append`.
fn incremental_spec(node: &Node, partition_by: Vec<String>) -> IncrementalSpec {
    let c = &node.config;
    // As dbt: without a `unique_key`, `merge` matches no row and `delete+insert` deletes
    // none, so both append.
    let strategy = match c.incremental_strategy {
        Some(IncrementalStrategy::Merge | IncrementalStrategy::DeleteInsert) | None if c.unique_key.is_empty() => {
            IncrementalStrategy::Append
        }
        Some(strategy) => strategy,
        None => IncrementalStrategy::Merge,
    };
    IncrementalSpec {
        strategy,
        unique_key: c.unique_key.clone(),
        partition_by,
        on_schema_change: c.on_schema_change,
        update_columns: (!c.merge_update_columns.is_empty()).then(|| c.merge_update_columns.clone()),
        exclude_columns: c.merge_exclude_columns.clone(),
        window: None,
    }
}

fn kind_of(node: &Node) -> &'static str {
    match node.resource_type {
        ResourceType::Seed => "seed",
        _ => node.config.materialized.as_str(),
    }
}

fn relation_name(node: &Node) -> String {
    node.relation.as_ref().map_or(node.name.clone(), |r| format!("{}.{}", r.schema, r.identifier))
}

/// The report line of a test result; `node` is the test, or for an anomaly the model.
fn test_line(node: &Node, test: &TestRun) -> ResultLine {
    let (kind, name) = match node.resource_type {
        ResourceType::Test => ("test", node.name.clone()),
        ResourceType::UnitTest => ("unit test", node.name.clone()),
        _ => ("anomaly", format!("row_count_anomaly {}", relation_name(node))),
    };
    ResultLine {
        unique_id: test.unique_id.clone(),
        status: test.status,
        kind: kind.to_string(),
        name,
        rows: None,
        seconds: test.seconds,
        message: test.message.clone(),
        proof: None,
    }
}

/// A test that did not run because the node it tests (or reads) did not build.
fn skipped_test(node: &Node, why: &str) -> TestRun {
    let mut test = test_run(node, chrono::Utc::now());
    test.status = Status::Skipped;
    test.message = Some(why.to_string());
    test
}
