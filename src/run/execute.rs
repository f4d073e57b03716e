//! What each node does in `seed`, `run` and `build`: seeds load their CSV, views and
//! tables are built and published; results become report lines, run_results.json and
//! history rows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use crate::compile::{CompiledProject, Node};
use crate::engine::datafusion::{Build, DataFusionEngine};
use crate::engine::failpoint::Failpoints;
use crate::graph::ResourceType;
use crate::project::Materialization;
use crate::report::progress::{Progress, ResultLine, Status};

use super::schedule::{Job, JobStatus, run_jobs};

/// Which nodes a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Seed,
    Run,
    Build,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Seed => "seed",
            Command::Run => "run",
            Command::Build => "build",
        }
    }

    fn includes(self, node: &Node) -> bool {
        match node.resource_type {
            ResourceType::Seed => matches!(self, Command::Seed | Command::Build),
            ResourceType::Model => {
                matches!(self, Command::Run | Command::Build) && node.config.materialized != Materialization::Ephemeral
            }
            ResourceType::Source | ResourceType::Test => false,
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
}

/// One node's result.
#[derive(Debug, Clone)]
pub struct NodeResult {
    pub line: ResultLine,
    pub started_at: chrono::DateTime<chrono::Utc>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_id: String,
    pub command: Command,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: chrono::DateTime<chrono::Utc>,
    pub results: Vec<NodeResult>,
}

impl RunSummary {
    pub fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.line.status == status).count()
    }

    /// True if any node failed (exit code 1).
    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| matches!(r.line.status, Status::Error | Status::Fail))
    }
}

/// The nodes a command runs, in dependency order, each with the run's nodes it waits
/// for. Ephemeral models are looked through: a model waits for what they read.
pub fn plan_jobs(compiled: &CompiledProject, command: Command, selected: &BTreeSet<String>) -> Vec<Job> {
    let runs = |id: &str| selected.contains(id) && command.includes(&compiled.nodes[id]);
    compiled
        .dag
        .topological()
        .into_iter()
        .filter(|id| runs(id))
        .map(|id| {
            let mut deps = BTreeSet::new();
            let mut stack: Vec<&str> = compiled.dag.parents(id);
            let mut seen = BTreeSet::new();
            while let Some(p) = stack.pop() {
                if !seen.insert(p) {
                    continue;
                }
                let node = &compiled.nodes[p];
                if runs(p) {
                    deps.insert(p.to_string());
                } else if node.config.materialized == Materialization::Ephemeral
                    && node.resource_type == ResourceType::Model
                {
                    stack.extend(compiled.dag.parents(p));
                }
            }
            Job { id: id.to_string(), deps }
        })
        .collect()
}

/// Runs the command's nodes on the engine, reporting each as it finishes.
pub async fn execute(
    compiled: Arc<CompiledProject>,
    engine: Arc<DataFusionEngine>,
    opts: &RunOptions,
    progress: &Progress,
) -> RunSummary {
    let started_at = chrono::Utc::now();
    let jobs = plan_jobs(&compiled, opts.command, &opts.selected);
    let starts: Arc<std::sync::Mutex<BTreeMap<String, (chrono::DateTime<chrono::Utc>, Instant)>>> = Default::default();
    let failpoints = opts.failpoints.clone();
    let seeds = Arc::new(opts.seeds.clone());
    let mut results = Vec::new();
    let work_compiled = compiled.clone();
    let work_starts = starts.clone();
    run_jobs(
        jobs,
        opts.threads,
        opts.fail_fast,
        move |id| {
            let compiled = work_compiled.clone();
            let engine = engine.clone();
            let failpoints = failpoints.clone();
            let starts = work_starts.clone();
            let seeds = seeds.clone();
            async move {
                starts.lock().expect("start times").insert(id.clone(), (chrono::Utc::now(), Instant::now()));
                let node = &compiled.nodes[&id];
                build_node(node, &compiled, &engine, &failpoints, &seeds).await
            }
        },
        |id, status| {
            let node = &compiled.nodes[id];
            let (started, instant) =
                starts.lock().expect("start times").get(id).copied().unwrap_or((chrono::Utc::now(), Instant::now()));
            let (status, rows, message) = match status {
                JobStatus::Done(rows) => (Status::Success, *rows, None),
                JobStatus::Failed(e) => (Status::Error, None, Some(e.clone())),
                JobStatus::Skipped(why) => (Status::Skipped, None, Some(why.clone())),
            };
            let line = ResultLine {
                unique_id: id.to_string(),
                status,
                kind: kind_of(node).to_string(),
                name: node.relation.as_ref().map_or(node.name.clone(), |r| format!("{}.{}", r.schema, r.identifier)),
                rows,
                seconds: if status == Status::Skipped { 0.0 } else { instant.elapsed().as_secs_f64() },
                message,
            };
            progress.report(&line);
            results.push(NodeResult { line, started_at: started });
        },
    )
    .await;
    RunSummary {
        run_id: opts.run_id.clone(),
        command: opts.command,
        started_at,
        finished_at: chrono::Utc::now(),
        results,
    }
}

fn kind_of(node: &Node) -> &'static str {
    match node.resource_type {
        ResourceType::Seed => "seed",
        _ => node.config.materialized.as_str(),
    }
}

/// Builds one node; the error text names the model, its file and its compiled SQL.
async fn build_node(
    node: &Node,
    compiled: &CompiledProject,
    engine: &DataFusionEngine,
    failpoints: &Failpoints,
    seeds: &BTreeMap<String, datafusion::arrow::array::RecordBatch>,
) -> Result<Option<u64>, String> {
    let relation = node.relation.as_ref().expect("built nodes have a relation");
    let build = match node.resource_type {
        ResourceType::Seed => Build::Seed(seeds[&node.unique_id].clone()),
        _ => {
            let sql = node.compiled_sql.clone().expect("models have compiled SQL");
            match node.config.materialized {
                Materialization::View => Build::View(sql),
                _ => Build::Table { sql, partition_by: node.config.partition_by.iter().cloned().collect() },
            }
        }
    };
    engine.build(relation, build, failpoints, &node.name).await.map_err(|e| {
        let compiled_path = format!("{}/compiled/{}", compiled.project.settings.target_path, node.path.display());
        match node.resource_type {
            ResourceType::Seed => format!("{e}\n--> {}", node.path.display()),
            _ => format!("{e}\n--> {}\n= note: compiled SQL: {compiled_path}", node.path.display()),
        }
    })
}
