//! The runner against the recording engine: a small project compiled from a temp dir,
//! planned and executed as `run_command` does, with what the engine was asked checked
//! call by call. No database, so these are fast.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use super::execute::{Command, Periods, RunOptions, execute, plan};
use super::reporter::Reporter;
use crate::compile::{CompileOptions, CompiledProject, compile_project};
use crate::diagnostics::{Diagnostic, SourceMap};
use crate::engine::failpoint::Failpoints;
use crate::engine::recording::{Event, Failure, RecordingEngine};
use crate::graph::{self, PriorState};
use crate::history::{NodeResult, ResultLine, RunSummary, Status};
use crate::relation::Relation;

/// A diamond, `a` -> `b`, `c` -> `d`, and `u`, which reads nothing of it. `b` has a
/// blocking (error-severity) test and `c` a warn-severity one; `d` has a test too.
const DIAMOND: &[(&str, &str)] = &[
    ("etlm.yml", "name: shop\n"),
    ("models/a.sql", "select 1 as id"),
    ("models/b.sql", "select id from {{ ref('a') }}"),
    ("models/c.sql", "select id from {{ ref('a') }}"),
    ("models/d.sql", "select b.id from {{ ref('b') }} as b join {{ ref('c') }} as c on b.id = c.id"),
    ("models/u.sql", "select 2 as id"),
    (
        "models/schema.yml",
        "version: 2
models:
  - name: b
    columns:
      - name: id
        data_tests: [not_null]
  - name: c
    columns:
      - name: id
        data_tests:
          - unique:
              config:
                severity: warn
  - name: d
    columns:
      - name: id
        data_tests: [not_null]
",
    ),
];

/// Writes `files` to a temp dir and compiles them as a command does, with no target to
/// ask (no relation exists yet) and no compile-time queries.
fn compile(files: &[(&str, &str)]) -> (tempfile::TempDir, Arc<CompiledProject>) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("files are in the project")).expect("project folder");
        std::fs::write(path, text).expect("project file");
    }
    let opts = CompileOptions {
        load: crate::project::LoadOptions { project_dir: dir.path().to_path_buf(), ..Default::default() },
        render: crate::template::RenderSettings {
            run_started_at: chrono::Utc::now(),
            invocation_id: "test".into(),
            full_refresh: false,
            which: "build",
        },
        existing: None,
        deferred: Default::default(),
        querier: None,
        defer_failed_queries: false,
        build: None,
    };
    match compile_project(&opts, &SourceMap::default()) {
        Ok(compiled) => (dir, Arc::new(compiled)),
        Err(d) => panic!("the test project compiles: {:?}", d.0),
    }
}

/// Every node of the project.
fn everything(compiled: &CompiledProject) -> BTreeSet<String> {
    compiled.nodes.keys().cloned().collect()
}

/// A reporter that keeps the result lines.
#[derive(Default)]
struct Lines(Mutex<Vec<ResultLine>>);

impl Reporter for Lines {
    fn warnings(&self, _: &[Diagnostic]) {}
    fn note(&self, _: &str) {}
    fn start(&self, _: usize, _: &str) {}
    fn add_total(&self, _: usize) {}
    fn result(&self, result: &NodeResult) {
        self.0.lock().expect("lines").push(result.line.clone());
    }
    fn finish(&self, _: &RunSummary) {}
}

/// Plans and executes `command` over `selected` as `run_command` does, and checks that
/// every result was reported.
async fn run(
    compiled: &Arc<CompiledProject>,
    engine: &Arc<RecordingEngine>,
    command: Command,
    threads: usize,
    fail_fast: bool,
    selected: BTreeSet<String>,
) -> RunSummary {
    let plan = plan(compiled, command, &selected);
    let opts = RunOptions {
        command,
        threads,
        fail_fast,
        full_refresh: false,
        failpoints: Failpoints::default(),
        selected,
        run_id: "run".into(),
        seeds: BTreeMap::new(),
        periods: Periods::Resume { now: chrono::Utc::now() },
        interrupt: Default::default(),
        reuse: Default::default(),
    };
    let reporter = Lines::default();
    let summary =
        execute(compiled.clone(), engine.clone(), &opts, plan, Default::default(), Default::default(), &reporter).await;
    let reported: Vec<String> = reporter.0.into_inner().expect("lines").into_iter().map(|l| l.unique_id).collect();
    let results: Vec<String> = summary.results.iter().map(|r| r.line.unique_id.clone()).collect();
    assert_eq!(reported, results, "every result is reported, in order");
    summary
}

/// The engine's calls in short: `stage b`, `audit not_null_b_id` (a test's count on
/// staged data), `test not_null_d_id` (on published data), `sample ...` (its failing
/// rows), `store <relation>`, `publish b`, `discard b`.
fn story(compiled: &CompiledProject, events: &[Event]) -> Vec<String> {
    let test_of = |sql: &str| {
        let node = compiled.nodes.values();
        let staged = node.clone().find(|n| n.audit_sql.as_deref() == Some(sql)).map(|n| ("audit", &n.name));
        let published = node.clone().find(|n| n.compiled_sql.as_deref() == Some(sql)).map(|n| ("test", &n.name));
        let (on, name) = staged.or(published).unwrap_or_else(|| panic!("a test's SQL: {sql}"));
        (on, name.clone())
    };
    events
        .iter()
        .map(|event| match event {
            Event::Stage(r) => format!("stage {}", r.identifier),
            Event::Publish(r) => format!("publish {}", r.identifier),
            Event::Discard(r) => format!("discard {}", r.identifier),
            Event::ReplaceTable(r) => format!("store {}", r.identifier),
            Event::Count(sql) => {
                let (on, name) = test_of(sql);
                format!("{on} {name}")
            }
            Event::Query(sql) => format!("sample {}", test_of(sql).1),
            other => format!("{other:?}"),
        })
        .collect()
}

/// The status of each node and test, by name.
fn statuses(summary: &RunSummary) -> BTreeMap<String, Status> {
    let name = |id: &str| id.rsplit('.').next().expect("ids end in a name").to_string();
    summary.results.iter().map(|r| (name(&r.line.unique_id), r.line.status)).collect()
}

fn status_list(list: &[(&str, Status)]) -> BTreeMap<String, Status> {
    list.iter().map(|(n, s)| (n.to_string(), *s)).collect()
}

/// The SQL every test of `model` runs on its staged data reads this.
fn audit_of(model: &str) -> String {
    Relation::new("main", model).audit().to_string()
}

fn staged(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Stage(r) => Some(r.identifier.clone()),
            _ => None,
        })
        .collect()
}

fn position(events: &[Event], wanted: &Event) -> usize {
    events.iter().position(|e| e == wanted).unwrap_or_else(|| panic!("{wanted:?} in {events:?}"))
}

fn relation(model: &str) -> Relation {
    Relation::new("main", model)
}

/// Checks that each model staged has every model it refs published, before it. (Every
/// model here refs only models.)
fn assert_parents_published_first(compiled: &CompiledProject, events: &[Event]) {
    for node in compiled.nodes.values().filter(|n| n.resource_type == graph::ResourceType::Model) {
        let Some(stage) = events.iter().position(|e| *e == Event::Stage(relation(&node.name))) else { continue };
        for parent in &node.depends_on {
            let parent = &compiled.nodes[parent].name;
            let published = events.iter().position(|e| *e == Event::Publish(relation(parent)));
            assert!(
                published.is_some_and(|p| p < stage),
                "`{parent}` is published before `{}` is staged: {events:?}",
                node.name
            );
        }
    }
}

#[tokio::test]
async fn one_thread_builds_each_model_after_publishing_what_it_refs() {
    let (_dir, compiled) = compile(DIAMOND);
    let engine = Arc::new(RecordingEngine::new());
    let summary = run(&compiled, &engine, Command::Run, 1, false, everything(&compiled)).await;
    assert_eq!(
        story(&compiled, &engine.events()),
        [
            "stage a",
            "publish a",
            "stage b",
            "audit not_null_b_id",
            "publish b",
            "stage c",
            "audit unique_c_id",
            "publish c",
            "stage d",
            "audit not_null_d_id",
            "publish d",
            "stage u",
            "publish u",
        ]
    );
    assert_parents_published_first(&compiled, &engine.events());
    assert!(!summary.failed());
    assert_eq!(summary.count(Status::Success), 5);
    assert_eq!(summary.count(Status::Pass), 3);
}

#[tokio::test]
async fn two_threads_build_independent_models_at_once_but_never_before_their_parents() {
    let (_dir, compiled) = compile(DIAMOND);
    let engine = Arc::new(RecordingEngine::new());
    let summary = run(&compiled, &engine, Command::Run, 2, false, everything(&compiled)).await;
    let events = engine.events();
    assert_parents_published_first(&compiled, &events);
    assert_eq!(summary.count(Status::Success), 5);
    // `a` and `u` have no parents: both start at once; so do `b` and `c` once `a` is out.
    assert_eq!(staged(&events[..2]), ["a", "u"], "{events:?}");
    let (b, c) = (position(&events, &Event::Stage(relation("b"))), position(&events, &Event::Stage(relation("c"))));
    let first_published =
        position(&events, &Event::Publish(relation("b"))).min(position(&events, &Event::Publish(relation("c"))));
    assert!(b.max(c) < first_published, "`b` and `c` are staged together: {events:?}");
}

#[tokio::test]
async fn a_model_that_fails_skips_its_descendants_and_not_unrelated_models() {
    let (_dir, compiled) = compile(DIAMOND);
    let engine = Arc::new(RecordingEngine::new().fail_stage("a", Failure::Always));
    let summary = run(&compiled, &engine, Command::Build, 2, false, everything(&compiled)).await;
    assert_eq!(staged(&engine.events()), ["a", "u"]);
    assert_eq!(story(&compiled, &engine.events()), ["stage a", "stage u", "publish u"]);
    assert_eq!(
        statuses(&summary),
        status_list(&[
            ("a", Status::Error),
            ("b", Status::Skipped),
            ("c", Status::Skipped),
            ("d", Status::Skipped),
            ("u", Status::Success),
            ("not_null_b_id", Status::Skipped),
            ("unique_c_id", Status::Skipped),
            ("not_null_d_id", Status::Skipped),
        ])
    );
    let b = summary.results.iter().find(|r| r.line.unique_id == "model.shop.b").expect("b's result");
    assert_eq!(b.line.message.as_deref(), Some("upstream `model.shop.a` did not succeed"));
    let a = summary.results.iter().find(|r| r.line.unique_id == "model.shop.a").expect("a's result");
    assert!(a.line.message.as_deref().is_some_and(|m| m.contains("recorded failure staging `a`")), "{a:?}");
}

#[tokio::test]
async fn fail_fast_skips_every_node_not_started() {
    let (_dir, compiled) = compile(DIAMOND);
    let engine = Arc::new(RecordingEngine::new().fail_stage("a", Failure::Always));
    let summary = run(&compiled, &engine, Command::Run, 1, true, everything(&compiled)).await;
    assert_eq!(staged(&engine.events()), ["a"], "`u` is not started after `a` failed");
    let u = summary.results.iter().find(|r| r.line.unique_id == "model.shop.u").expect("u's result");
    assert_eq!(u.line.status, Status::Skipped);
    assert_eq!(u.line.message.as_deref(), Some("the run stopped after a failure (--fail-fast)"));
    // The tests that would have audited the skipped models are skipped with them.
    assert_eq!(
        statuses(&summary),
        status_list(&[
            ("a", Status::Error),
            ("b", Status::Skipped),
            ("c", Status::Skipped),
            ("d", Status::Skipped),
            ("u", Status::Skipped),
            ("not_null_b_id", Status::Skipped),
            ("unique_c_id", Status::Skipped),
            ("not_null_d_id", Status::Skipped),
        ])
    );
}

#[tokio::test]
async fn a_failing_blocking_test_discards_the_model_and_skips_its_descendants() {
    let (_dir, compiled) = compile(DIAMOND);
    let engine = Arc::new(RecordingEngine::new().count_where(&audit_of("b"), 3));
    let summary = run(&compiled, &engine, Command::Build, 1, false, everything(&compiled)).await;
    assert_eq!(
        story(&compiled, &engine.events()),
        [
            "stage a",
            "publish a",
            "stage b",
            "audit not_null_b_id",
            "sample not_null_b_id",
            // Failing rows of an audit are kept: the staged data is about to go.
            "store not_null_b_id",
            "discard b",
            "stage c",
            "audit unique_c_id",
            "publish c",
            "stage u",
            "publish u",
        ]
    );
    let results = statuses(&summary);
    assert_eq!(results["not_null_b_id"], Status::Fail);
    assert_eq!(results["b"], Status::Error);
    assert_eq!(results["d"], Status::Skipped);
    assert_eq!(results["not_null_d_id"], Status::Skipped);
    let b = summary.results.iter().find(|r| r.line.unique_id == "model.shop.b").expect("b's result");
    assert!(b.line.message.as_deref().is_some_and(|m| m.starts_with("not published: `not_null_b_id` failed")));
    assert!(summary.failed());
}

#[tokio::test]
async fn a_failing_warn_test_still_publishes() {
    let (_dir, compiled) = compile(DIAMOND);
    let engine = Arc::new(RecordingEngine::new().count_where(&audit_of("c"), 2));
    let summary = run(&compiled, &engine, Command::Build, 1, false, everything(&compiled)).await;
    let story = story(&compiled, &engine.events());
    let c = story.iter().position(|s| s == "stage c").expect("c is staged");
    assert_eq!(story[c..c + 4], ["stage c", "audit unique_c_id", "sample unique_c_id", "publish c"]);
    assert!(story.contains(&"publish d".to_string()), "{story:?}");
    let results = statuses(&summary);
    assert_eq!(results["unique_c_id"], Status::Warn);
    assert_eq!(results["c"], Status::Success);
    assert_eq!(results["d"], Status::Success);
    assert!(!summary.failed());
}

#[tokio::test]
async fn a_test_of_a_model_not_built_runs_on_published_data() {
    let (_dir, compiled) = compile(DIAMOND);
    let engine = Arc::new(RecordingEngine::new().count_where("\"main\".\"d\"", 1));
    let selected: BTreeSet<String> = ["test.shop.not_null_d_id".to_string()].into();
    let summary = run(&compiled, &engine, Command::Test, 1, false, selected).await;
    assert_eq!(story(&compiled, &engine.events()), ["test not_null_d_id", "sample not_null_d_id"]);
    assert_eq!(statuses(&summary), status_list(&[("not_null_d_id", Status::Fail)]));
}

#[tokio::test]
async fn retry_builds_what_failed_or_was_skipped_and_nothing_that_succeeded() {
    let (dir, compiled) = compile(DIAMOND);
    // Staging `a` fails the first time only, as a lost connection would.
    let engine = Arc::new(RecordingEngine::new().fail_stage("a", Failure::Once));
    let first = run(&compiled, &engine, Command::Build, 2, false, everything(&compiled)).await;
    assert_eq!(staged(&engine.take_events()), ["a", "u"]);
    assert!(first.failed());

    // As `etlm retry`: the last run's results, read back from run_results.json.
    crate::state::write::write_run_results(&compiled.project, &first).expect("run results written");
    let last = crate::state::artifacts::PreviousRun::load(&dir.path().join(&compiled.project.settings.target_path))
        .expect("run results read");
    let prior = PriorState { state: None, results: Ok(last.statuses()) };
    let words = ["result:error".to_string(), "result:fail".to_string(), "result:skipped".to_string()];
    let select = graph::parse_selectors(&words).expect("selectors");
    let none = graph::parse_selectors(&[]).expect("no exclusion");
    let retried = graph::select(&compiled.dag, &select, &none, &prior).expect("selection");
    let names: Vec<&str> = retried.iter().map(|id| id.rsplit('.').next().expect("a name")).collect();
    assert_eq!(names, ["a", "b", "c", "d", "not_null_b_id", "not_null_d_id", "unique_c_id"]);

    let second = run(&compiled, &engine, Command::Build, 2, false, retried).await;
    let events = engine.events();
    assert_eq!(staged(&events), ["a", "b", "c", "d"], "`u` succeeded the first time: {events:?}");
    assert_parents_published_first(&compiled, &events);
    assert!(!events.contains(&Event::Publish(relation("u"))));
    assert_eq!(
        statuses(&second),
        status_list(&[
            ("a", Status::Success),
            ("b", Status::Success),
            ("c", Status::Success),
            ("d", Status::Success),
            ("not_null_b_id", Status::Pass),
            ("unique_c_id", Status::Pass),
            ("not_null_d_id", Status::Pass),
        ])
    );
}
