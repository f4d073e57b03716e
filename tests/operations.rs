//! Operations: OpenLineage events received by a local HTTP server and checked with the
//! official Python client's classes, a receiver that is down or never answers, and
//! `metrics.prom` checked by Prometheus' own tools (docs/operations.md).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use support::{copy_project, etlm_with};

const API_KEY: &str = "sentinel-api-key-7f3a";

/// How the local receiver answers.
#[derive(Clone, Copy)]
enum Answer {
    Ok,
    /// Accepts the connection and never answers.
    Never,
}

/// One request the receiver took: path, headers (lowercase names), body.
struct Received {
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// A local HTTP server on a free port, keeping what it receives.
fn receiver(answer: Answer) -> (u16, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let keep = keep.clone();
            std::thread::spawn(move || serve(stream, answer, &keep));
        }
    });
    (port, got)
}

fn serve(stream: TcpStream, answer: Answer, keep: &Mutex<Vec<Received>>) {
    if let Answer::Never = answer {
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    let path = first.split_whitespace().nth(1).unwrap_or_default().to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    keep.lock().unwrap().push(Received { path, headers, body });
    let mut stream = stream;
    let _ = stream.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

/// The example project, with a mart whose audit fails (so the model fails too).
fn project_with_a_failing_audit() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, dir) = copy_project(Path::new(env!("CARGO_MANIFEST_DIR")).join("example_project").to_str().unwrap());
    std::fs::write(
        dir.join("models/marts/checked.sql"),
        "select customer_id, country_code from {{ ref('stg_customers') }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("models/marts/checked.yml"),
        "version: 2\nmodels:\n  - name: checked\n    columns:\n      - name: country_code\n        data_tests:\n          - accepted_values:\n              values: ['XX']\n",
    )
    .unwrap();
    (tmp, dir)
}

/// Whether the Python module is installed; CI must have it (`.ci/run` installs it).
fn python_has(module: &str) -> bool {
    let ok =
        Command::new("python3").args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success());
    assert!(
        ok || std::env::var("CI").is_err(),
        "python3 module `{module}` must be installed in CI (.ci/run installs it)"
    );
    ok
}

#[test]
fn a_build_sends_openlineage_events_the_official_client_reads() {
    let (port, got) = receiver(Answer::Ok);
    let (_tmp, dir) = project_with_a_failing_audit();
    let url = format!("http://127.0.0.1:{port}");
    let envs =
        [("OPENLINEAGE_URL", url.as_str()), ("OPENLINEAGE_API_KEY", API_KEY), ("OPENLINEAGE_NAMESPACE", "nightly")];
    let run = etlm_with(&dir, &["build"], &envs);
    assert_eq!(run.code, 1, "the failing audit fails the build: {}\n{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains(API_KEY) && !run.stderr.contains(API_KEY), "the key is never printed");
    assert!(!run.stderr.contains("openlineage-undelivered"), "{}", run.stderr);

    let received = std::mem::take(&mut *got.lock().unwrap());
    for r in &received {
        assert_eq!(r.path, "/api/v1/lineage");
        assert_eq!(r.headers.get("authorization").map(String::as_str), Some(format!("Bearer {API_KEY}").as_str()));
        assert_eq!(r.headers.get("content-type").map(String::as_str), Some("application/json"));
    }
    let events: Vec<Json> = received.iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();

    // The invocation: one START, then FAIL (a node failed), last.
    let parent: Vec<&Json> = events.iter().filter(|e| e["job"]["name"] == "shop.build").collect();
    assert_eq!(parent.iter().map(|e| e["eventType"].as_str().unwrap()).collect::<Vec<_>>(), ["START", "FAIL"]);
    assert_eq!(events.last().unwrap()["job"]["name"], "shop.build", "the invocation ends last");
    let parent_run = parent[0]["run"]["runId"].as_str().unwrap();

    // Every node and test: exactly one START and one terminal event, in that order,
    // under one run id, naming the invocation's run as parent.
    let mut by_job: BTreeMap<&str, Vec<&Json>> = BTreeMap::new();
    for e in events.iter().filter(|e| e["job"]["name"] != "shop.build") {
        assert_eq!(e["job"]["namespace"], "nightly");
        assert_eq!(e["run"]["facets"]["parent"]["run"]["runId"], parent_run, "{e}");
        assert_eq!(e["run"]["facets"]["parent"]["job"]["name"], "shop.build");
        by_job.entry(e["job"]["name"].as_str().unwrap()).or_default().push(e);
    }
    let compiled: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("target/manifest.json")).unwrap()).unwrap();
    let jobs: BTreeSet<&str> = by_job.keys().copied().collect();
    let built: BTreeSet<&str> = compiled["nodes"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, n)| n["config"]["materialized"] != "ephemeral")
        .map(|(id, _)| id.as_str())
        .collect();
    assert!(built.is_subset(&jobs), "every node has events; missing {:?}", built.difference(&jobs).collect::<Vec<_>>());
    for (job, list) in &by_job {
        let kinds: Vec<&str> = list.iter().map(|e| e["eventType"].as_str().unwrap()).collect();
        assert_eq!(kinds.len(), 2, "{job}: {kinds:?}");
        assert_eq!(kinds[0], "START", "{job}");
        assert!(matches!(kinds[1], "COMPLETE" | "FAIL" | "ABORT"), "{job}: {kinds:?}");
        assert_eq!(list[0]["run"]["runId"], list[1]["run"]["runId"], "{job}");
    }
    let terminal = |job: &str| *by_job[job].last().unwrap();

    // The schema facet of a seed: the CSV's columns, in order, with types.
    let seed = terminal("seed.shop.customers");
    let output = &seed["outputs"][0];
    assert!(output["name"].as_str().unwrap().ends_with("/warehouse/main/customers"), "{output}");
    assert_eq!(output["namespace"], "file");
    let header = std::fs::read_to_string(dir.join("seeds/customers.csv")).unwrap();
    let columns: Vec<&str> = header.lines().next().unwrap().split(',').collect();
    let fields = output["facets"]["schema"]["fields"].as_array().unwrap();
    assert_eq!(fields.iter().map(|f| f["name"].as_str().unwrap()).collect::<Vec<_>>(), columns);
    assert!(fields.iter().all(|f| f["type"].is_string()), "{fields:?}");
    assert_eq!(terminal("seed.shop.customers")["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"], 20);
    assert_eq!(terminal("model.shop.dim_customers")["job"]["facets"]["jobType"]["jobType"], "MODEL");

    // Column lineage: a mart column reaches its seed column through the staging view.
    let lineage: BTreeMap<(String, String), Vec<(String, String)>> = events
        .iter()
        .flat_map(|e| e["outputs"].as_array().unwrap().iter())
        .filter_map(|o| Some((o["name"].as_str()?.to_string(), o["facets"]["columnLineage"]["fields"].as_object()?)))
        .flat_map(|(name, fields)| {
            fields.iter().map(move |(column, f)| {
                let inputs = f["inputFields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| (i["name"].as_str().unwrap().to_string(), i["field"].as_str().unwrap().to_string()))
                    .collect();
                ((name.clone(), column.clone()), inputs)
            })
        })
        .collect();
    let mart = terminal("model.shop.dim_customers")["outputs"][0]["name"].as_str().unwrap().to_string();
    let mut frontier = vec![(mart, "country_code".to_string())];
    let mut reached = BTreeSet::new();
    while let Some(at) = frontier.pop() {
        for next in lineage.get(&at).into_iter().flatten() {
            if reached.insert(next.clone()) {
                frontier.push(next.clone());
            }
        }
    }
    let seed_name = output["name"].as_str().unwrap().to_string();
    assert!(reached.contains(&(seed_name, "country".to_string())), "dim_customers.country_code reaches {reached:?}");

    // The failing audit: its assertion, and the model it blocked fails with a message.
    let test = by_job.keys().find(|j| j.starts_with("test.shop.accepted_values_checked_country_code")).unwrap();
    let failed = terminal(test);
    assert_eq!(failed["eventType"], "FAIL");
    let assertion = &failed["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"][0];
    assert_eq!(assertion["assertion"], "accepted_values");
    assert_eq!(assertion["column"], "country_code");
    assert_eq!(assertion["success"], false);
    assert!(failed["inputs"][0]["name"].as_str().unwrap().ends_with("/main/checked"));
    let passed = terminal(by_job.keys().find(|j| j.starts_with("test.shop.unique_dim_customers")).unwrap());
    assert_eq!(passed["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"][0]["success"], true);
    let model = terminal("model.shop.checked");
    assert_eq!(model["eventType"], "FAIL");
    let message = model["run"]["facets"]["errorMessage"]["message"].as_str().unwrap();
    assert!(message.contains("accepted_values"), "{message}");
    assert!(terminal("model.shop.checked")["job"]["facets"]["sql"]["query"].as_str().unwrap().contains("country_code"));

    // Every event parses with the official client's classes.
    if python_has("openlineage.client") {
        let file = dir.join("events.jsonl");
        let lines: Vec<String> = events.iter().map(|e| e.to_string()).collect();
        std::fs::write(&file, lines.join("\n")).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/openlineage_check.py");
        let out = Command::new("python3").arg(script).arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), events.len().to_string());
    }
}

#[test]
fn a_receiver_that_is_down_or_silent_changes_neither_result_nor_exit_code() {
    let (_tmp, dir) = copy_project(Path::new(env!("CARGO_MANIFEST_DIR")).join("example_project").to_str().unwrap());
    let timed = |envs: &[(&str, &str)]| {
        let start = Instant::now();
        let run = etlm_with(&dir, &["build"], envs);
        (run, start.elapsed())
    };
    let (plain, _) = timed(&[]);
    assert_eq!(plain.code, 0, "{}\n{}", plain.stdout, plain.stderr);
    // Warm: the second build is the baseline.
    let (plain, baseline) = timed(&[]);
    assert_eq!(plain.code, 0);

    // A port nobody listens on: refused at once.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{closed}");
    let (down, _) = timed(&[("OPENLINEAGE_URL", &url)]);
    assert_eq!(down.code, 0, "{}\n{}", down.stdout, down.stderr);
    assert!(down.stderr.contains("warning[openlineage-undelivered]"), "{}", down.stderr);
    assert!(down.stderr.contains(&format!("127.0.0.1:{closed}")), "names the receiver: {}", down.stderr);

    // A receiver that accepts and never answers: the run waits at most the timeout (1 s
    // here) at its end for what is queued, whatever the number of events.
    let (port, _) = receiver(Answer::Never);
    let url = format!("http://127.0.0.1:{port}");
    let (silent, took) = timed(&[("OPENLINEAGE_URL", &url), ("OPENLINEAGE__TRANSPORT__TIMEOUT", "1")]);
    assert_eq!(silent.code, 0, "{}\n{}", silent.stdout, silent.stderr);
    assert!(silent.stderr.contains("warning[openlineage-undelivered]"), "{}", silent.stderr);
    let done = |s: &str| s.lines().find_map(|l| Some(l.strip_prefix("Done: ")?.split(" in ").next()?.to_string()));
    assert_eq!(done(&silent.stdout), done(&plain.stdout), "the same results are reported");
    assert!(
        took < baseline + Duration::from_secs(3),
        "a silent receiver adds at most its 1 s timeout (plus slack): {took:?} against {baseline:?}"
    );
}

/// The samples of one metric family: (labels, value).
type Samples = Vec<(BTreeMap<String, String>, f64)>;

/// The metric families of a Prometheus text file, by the official Python client's parser.
fn parse_metrics(path: &Path) -> BTreeMap<String, Samples> {
    let script = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = {}\n\
        for family in text_string_to_metric_families(open(sys.argv[1]).read()):\n\
        \x20   out[family.name] = [[s.labels, s.value] for s in family.samples]\n\
        print(json.dumps(out))\n";
    let out = Command::new("python3").args(["-c", script]).arg(path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn metrics_prom_holds_results_a_failing_test_and_a_stale_source() {
    let (_tmp, dir) = project_with_a_failing_audit();
    std::fs::write(
        dir.join("models/sources.yml"),
        "version: 2\nsources:\n  - name: loaded\n    schema: main\n    tables:\n      - name: orders\n        \
         loaded_at_field: cast(order_date as timestamp)\n        freshness:\n          error_after: {count: 1, period: day}\n",
    )
    .unwrap();
    let run = etlm_with(&dir, &["build"], &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let stale = etlm_with(&dir, &["source", "freshness"], &[]);
    assert_eq!(stale.code, 1, "orders are years old: {}\n{}", stale.stdout, stale.stderr);
    let path = dir.join("target/metrics.prom");
    let text = std::fs::read_to_string(&path).unwrap();

    if std::process::Command::new("promtool").arg("--version").output().is_ok() {
        let out =
            Command::new("promtool").args(["check", "metrics"]).stdin(std::fs::File::open(&path).unwrap()).output();
        let out = out.unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        assert!(std::env::var("CI").is_err(), "promtool must be installed in CI (.ci/run installs it)");
    }
    if !python_has("prometheus_client") {
        return;
    }
    let metrics = parse_metrics(&path);
    let find = |family: &str, pairs: &[(&str, &str)]| -> Option<f64> {
        metrics
            .get(family)?
            .iter()
            .find(|(l, _)| pairs.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(v)))
            .map(|(_, v)| *v)
    };
    assert_eq!(find("etlm_run_success", &[("command", "build")]), Some(0.0), "{text}");
    assert_eq!(find("etlm_model_status", &[("model", "dim_customers"), ("status", "success")]), Some(1.0));
    assert_eq!(find("etlm_model_status", &[("model", "checked"), ("status", "error")]), Some(1.0), "{text}");
    assert_eq!(find("etlm_model_rows_written", &[("model", "dim_customers"), ("schema", "main")]), Some(20.0));
    assert!(find("etlm_model_duration_seconds", &[("model", "dim_customers")]).is_some_and(|s| s > 0.0));
    let now = chrono::Utc::now().timestamp() as f64;
    let success = find("etlm_model_last_success_timestamp_seconds", &[("model", "dim_customers")]).unwrap();
    assert!((now - success).abs() < 600.0, "last success is this run: {success} vs {now}");
    assert_eq!(find("etlm_model_last_success_timestamp_seconds", &[("model", "checked")]), None, "never succeeded");
    assert_eq!(find("etlm_test_status", &[("column", "country_code"), ("status", "fail")]), Some(1.0), "{text}");
    assert!(find("etlm_test_failures", &[("column", "country_code"), ("model", "checked")]).is_some_and(|n| n > 0.0));
    assert_eq!(find("etlm_run_results", &[("status", "fail")]), Some(1.0));
    // The freshness check added the source's families and kept the run's.
    let source = [("source", "source.shop.loaded.orders")];
    assert_eq!(find("etlm_source_freshness_status", &[source[0], ("status", "error")]), Some(1.0), "{text}");
    let lag = find("etlm_source_freshness_lag_seconds", &source).unwrap();
    assert!(lag > find("etlm_source_freshness_error_after_seconds", &source).unwrap(), "{text}");
    assert_eq!(find("etlm_source_freshness_error_after_seconds", &source), Some(86_400.0));
}

#[test]
fn init_writes_a_project_that_builds_at_once_and_never_overwrites_silently() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("my-shop");
    let init = etlm_with(tmp.path(), &["init", dir.to_str().unwrap()], &[]);
    assert_eq!(init.code, 0, "{}\n{}", init.stdout, init.stderr);
    assert!(init.stdout.contains("created the project `my_shop`"), "{}", init.stdout);
    let build = etlm_with(&dir, &["build"], &[]);
    assert_eq!(build.code, 0, "{}\n{}", build.stdout, build.stderr);
    assert!(build.stdout.contains("Done: 4 OK, 9 passed, 0 warned, 0 failed, 0 errors"), "{}", build.stdout);
    let rows = support::rows(&dir, "select count(*) as n, sum(orders) as orders from main.daily_revenue");
    assert_eq!(rows, vec![serde_json::json!({"n": 4, "orders": 7})], "8 orders, one cancelled, on 4 days");
    // The incremental model merges only what is new: a second build adds nothing.
    let again = etlm_with(&dir, &["build"], &[]);
    assert_eq!(again.code, 0);
    assert!(again.stdout.contains("incremental main.orders  0 rows"), "{}", again.stdout);

    // Again into the same folder: refused without a terminal, nothing changed.
    let edited = "-- mine\n";
    std::fs::write(dir.join("models/marts/orders.sql"), edited).unwrap();
    let refused = etlm_with(tmp.path(), &["init", dir.to_str().unwrap()], &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("error[project-exists]") && refused.stderr.contains("nothing was written"));
    let refused = etlm_with(tmp.path(), &["init", "--non-interactive", dir.to_str().unwrap()], &[]);
    assert_eq!(refused.code, 2);
    assert_eq!(std::fs::read_to_string(dir.join("models/marts/orders.sql")).unwrap(), edited);
    let forced = etlm_with(tmp.path(), &["init", "--force", dir.to_str().unwrap()], &[]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_ne!(std::fs::read_to_string(dir.join("models/marts/orders.sql")).unwrap(), edited);

    // A folder holding a dbt project is not taken over either.
    let dbt = tmp.path().join("dbt");
    std::fs::create_dir(&dbt).unwrap();
    std::fs::write(dbt.join("dbt_project.yml"), "name: x\n").unwrap();
    let refused = etlm_with(tmp.path(), &["init", dbt.to_str().unwrap()], &[]);
    assert_eq!(refused.code, 2);
    assert!(!dbt.join("etlm.yml").exists());
}

#[test]
fn the_starter_project_builds_on_postgres_and_names_datasets_as_openlineage_does() {
    let Some(db) = support::postgres::database("init") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("starter");
    assert_eq!(etlm_with(tmp.path(), &["init", dir.to_str().unwrap()], &[]).code, 0);
    let port = db.server.port.to_string();
    let events = dir.join("events.jsonl");
    let envs = [
        ("PGHOST", db.server.host.as_str()),
        ("PGPORT", port.as_str()),
        ("PGUSER", db.server.user.as_str()),
        ("PGPASSWORD", db.server.password.as_str()),
        ("PGDATABASE", db.name.as_str()),
        ("ETLM_SCHEMA", "starter"),
        ("OPENLINEAGE__TRANSPORT__TYPE", "file"),
        ("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", events.to_str().unwrap()),
    ];
    let build = etlm_with(&dir, &["build", "--target", "pg"], &envs);
    assert_eq!(build.code, 0, "{}\n{}", build.stdout, build.stderr);
    assert!(build.stdout.contains("Done: 4 OK, 9 passed"), "{}", build.stdout);
    let rows = db.rows("select count(*), sum(orders) from starter.daily_revenue");
    assert_eq!(rows, vec![vec!["4".to_string(), "7".to_string()]]);
    let metrics = std::fs::read_to_string(dir.join("target/metrics.prom")).unwrap();
    assert!(
        metrics.contains("etlm_model_last_success_timestamp_seconds{model=\"daily_revenue\",schema=\"starter\""),
        "the history on Postgres gives each node's last success: {metrics}"
    );
    let text = std::fs::read_to_string(&events).unwrap();
    assert!(!text.contains(&db.server.password), "no password in events");
    let outputs: BTreeSet<(String, String)> = text
        .lines()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .flat_map(|e| e["outputs"].as_array().unwrap().clone())
        .map(|o| (o["namespace"].as_str().unwrap().to_string(), o["name"].as_str().unwrap().to_string()))
        .collect();
    let namespace = format!("postgres://{}:{}", db.server.host, db.server.port);
    assert!(outputs.contains(&(namespace, format!("{}.starter.daily_revenue", db.name))), "{outputs:?}");
}

#[test]
fn the_project_file_sets_the_transport_and_a_bad_one_is_a_diagnostic() {
    let (_tmp, dir) = copy_project(Path::new(env!("CARGO_MANIFEST_DIR")).join("example_project").to_str().unwrap());
    let project = std::fs::read_to_string(dir.join("etlm.yml")).unwrap();
    let with = |block: &str| std::fs::write(dir.join("etlm.yml"), format!("{project}\n{block}")).unwrap();
    with("openlineage:\n  namespace: nightly\n  transport:\n    type: file\n    path: target/events.jsonl\n");
    let run = etlm_with(&dir, &["seed"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events = std::fs::read_to_string(dir.join("target/events.jsonl")).unwrap();
    let first: Json = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["job"]["namespace"].as_str(), first["job"]["name"].as_str()),
        (Some("nightly"), Some("shop.seed"))
    );
    assert_eq!(events.lines().count(), 2 + 2 * 4, "the invocation and four seeds, START and COMPLETE each");

    with("openlineage:\n  transport:\n    type: kafka\n");
    let bad = etlm_with(&dir, &["seed"], &[]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("error[invalid-openlineage]: `kafka` is not an OpenLineage transport"),
        "{}",
        bad.stderr
    );
    let line = project.lines().count() + 4;
    assert!(bad.stderr.contains(&format!("etlm.yml:{line}:")), "points at the value: {}", bad.stderr);
    with("openlineage:\n  transport:\n    type: http\n    timeout: soon\n");
    let bad = etlm_with(&dir, &["seed"], &[]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("openlineage.transport.timeout"), "{}", bad.stderr);
}
