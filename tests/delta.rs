//! The Delta Lake engine as other readers see it: DuckDB's delta extension and the
//! `deltalake` Python package read the tables etlm published with the rows `etlm show`
//! gives, at the versions etlm committed (one per published model and run, none for a
//! failed audit). The conformance and crash suites run on this engine too
//! (`engine_suite!(delta)` in conformance.rs and faults.rs).
#![cfg(feature = "delta")]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::s3::S3Server;
use support::{copy_project, empty_project, etlm, etlm_with, write_file};

/// The Python that has `deltalake`, `pyarrow`, `duckdb` and `duckdb-ext-delta`
/// (`ETLM_DELTA_PYTHON`, which .ci/run sets), or `None` when there is none outside CI.
fn delta_python() -> Option<String> {
    let python = std::env::var("ETLM_DELTA_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import deltalake, pyarrow, duckdb, duckdb_ext, moto"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok || std::env::var("CI").is_err(), "CI must provide ETLM_DELTA_PYTHON (.ci/run makes it)");
    if !ok {
        eprintln!("skipped: no Python with deltalake, pyarrow, duckdb-ext-delta and moto (set ETLM_DELTA_PYTHON)");
    }
    ok.then_some(python)
}

/// Where a test's Delta tables are: `lake/` in the project (target `lake`), or the
/// bucket of an S3 server (target `s3`, `s3://<bucket>/shop`).
enum Lake<'a> {
    Folder,
    S3(&'a S3Server),
}

impl Lake<'_> {
    fn target(&self) -> &'static str {
        match self {
            Lake::Folder => "lake",
            Lake::S3(_) => "s3",
        }
    }

    /// The table's folder or URL.
    fn table(&self, dir: &Path, table: &str) -> String {
        match self {
            Lake::Folder => lake(dir).join(table).display().to_string(),
            Lake::S3(server) => format!("s3://{}/shop/main/{table}", server.bucket),
        }
    }

    fn envs(&self) -> Vec<(&'static str, String)> {
        match self {
            Lake::Folder => Vec::new(),
            Lake::S3(server) => server.envs(),
        }
    }

    /// etlm with the target and the server's environment.
    fn etlm(&self, dir: &Path, args: &[&str]) -> support::Run {
        let args: Vec<&str> = args.iter().copied().chain(["--target", self.target()]).collect();
        etlm_with(dir, &args, &borrowed(&self.envs()))
    }
}

/// Environment variables as `etlm_with` and `paused_at_with` take them.
fn borrowed<'a>(envs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    envs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The `amount`s of `etlm show --format json` output, sorted.
fn sorted_amounts(json_lines: &str) -> Vec<i64> {
    let mut found: Vec<i64> = json_lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["amount"].as_i64().unwrap())
        .collect();
    found.sort();
    found
}

/// What the other readers saw of one table.
struct Seen {
    deltalake_version: u64,
    duckdb_version: Option<u64>,
    rows: usize,
}

/// Reads `table` with both readers (`deltalake` alone on S3) and compares with
/// `etlm show -s table`.
fn read_elsewhere(python: &str, dir: &Path, at: &Lake, table: &str) -> Seen {
    let shown = at.etlm(dir, &["show", "-s", table, "--format", "json", "--limit", "1000000"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let rows_file = dir.join(format!("{table}.etlm.jsonl"));
    std::fs::write(&rows_file, &shown.stdout).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/delta_check.py");
    let out =
        Command::new(python).arg(script).arg(at.table(dir, table)).arg(&rows_file).envs(at.envs()).output().unwrap();
    assert!(out.status.success(), "{table}: {}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["mismatch"], serde_json::Value::Null, "{table}: another reader's rows differ: {seen}");
    Seen {
        deltalake_version: seen["deltalake_version"].as_u64().unwrap(),
        duckdb_version: seen["duckdb_version"].as_u64(),
        rows: seen["rows"].as_u64().unwrap() as usize,
    }
}

fn lake(dir: &Path) -> PathBuf {
    dir.join("lake/main")
}

/// The Delta tables in `lake/main`, sorted.
fn delta_tables(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(lake(dir))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("_delta_log").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    found
}

fn build(dir: &Path) -> support::Run {
    etlm(dir, &["build", "--target", "lake"])
}

#[test]
fn duckdb_and_deltalake_read_every_table_with_etlms_rows_one_version_per_run() {
    let Some(python) = delta_python() else { return };
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("example_project");
    let (_tmp, dir) = copy_project(example.to_str().unwrap());
    for run in 0..2u64 {
        let built = build(&dir);
        assert_eq!(built.code, 0, "{}\n{}", built.stdout, built.stderr);
        let tables = delta_tables(&dir);
        for expected in ["customers", "customers_snapshot", "dim_customers", "fct_orders", "fct_orders_daily"] {
            assert!(tables.iter().any(|t| t == expected), "{expected} is a Delta table: {tables:?}");
        }
        for table in &tables {
            let seen = read_elsewhere(&python, &dir, &Lake::Folder, table);
            assert!(seen.rows > 0, "{table} has rows");
            assert_eq!(seen.deltalake_version, run, "{table}: one Delta version per published model and run");
            assert_eq!(seen.duckdb_version, Some(run), "{table}: DuckDB sees the version etlm committed");
        }
    }
    // Views are stored SQL, not Delta tables.
    assert!(lake(&dir).join("stg_orders/_etlm_view.json").is_file());
    assert!(!lake(&dir).join("stg_orders/_delta_log").exists());
}

#[test]
fn a_failing_audit_commits_no_version_and_leaves_no_files() {
    let Some(python) = delta_python() else { return };
    let (_tmp, dir) = empty_project("lake_audit");
    write_file(&dir, "etlm.yml", "name: lake_audit\n");
    write_file(
        &dir,
        "profiles.yml",
        "lake_audit:\n  target: lake\n  outputs:\n    lake:\n      type: delta\n      location: lake\n",
    );
    write_file(&dir, "seeds/items.csv", "id,amount\n1,10\n2,20\n");
    write_file(
        &dir,
        "models/big.sql",
        "{{ config(materialized='table') }}\nselect id, amount from {{ ref('items') }}\n",
    );
    write_file(
        &dir,
        "models/schema.yml",
        "models:\n  - name: big\n    columns:\n      - name: amount\n        data_tests: [not_null]\n",
    );
    assert_eq!(build(&dir).code, 0);
    let before = std::fs::read_dir(lake(&dir).join("big")).unwrap().count();

    write_file(&dir, "seeds/items.csv", "id,amount\n1,10\n2,20\n3,\n");
    let failed = build(&dir);
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    let big = read_elsewhere(&python, &dir, &Lake::Folder, "big");
    assert_eq!((big.deltalake_version, big.duckdb_version, big.rows), (0, Some(0), 2), "the old version stays");
    assert_eq!(read_elsewhere(&python, &dir, &Lake::Folder, "items").deltalake_version, 1, "the seed itself published");
    let after: Vec<String> = std::fs::read_dir(lake(&dir).join("big"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(after.len(), before, "no staging folder or file is left: {after:?}");
}

/// A project whose one table `big` multiplies a seed's amounts by `var('k')`, on `at`.
fn one_table_project(name: &str, at: &Lake) -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = empty_project(name);
    write_file(&dir, "etlm.yml", &format!("name: {name}\n"));
    let s3 = match at {
        Lake::Folder => String::new(),
        Lake::S3(server) => format!(
            "    s3:\n      type: delta\n      location: s3://{}/shop\n      endpoint: {}\n      allow_http: true\n",
            server.bucket,
            server.endpoint()
        ),
    };
    write_file(
        &dir,
        "profiles.yml",
        &format!("{name}:\n  target: lake\n  outputs:\n    lake:\n      type: delta\n      location: lake\n{s3}"),
    );
    write_file(&dir, "seeds/items.csv", "id,amount\n1,10\n2,20\n");
    write_file(
        &dir,
        "models/big.sql",
        "{{ config(materialized='table') }}\nselect id, amount * {{ var('k', 1) }} as amount from {{ ref('items') }}\n",
    );
    (tmp, dir)
}

fn amounts(dir: &Path, at: &Lake) -> Vec<i64> {
    let shown = at.etlm(dir, &["show", "--format", "json", "select amount from big"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    sorted_amounts(&shown.stdout)
}

/// Two runs build `big` at once: the first holds just before its commit while the
/// second, beside it (the lock is advisory), commits first.
fn commit_race(python: &str, dir: &Path, at: &Lake) {
    assert_eq!(at.etlm(dir, &["build"]).code, 0);
    let args = ["run", "--target", at.target(), "--vars", "k: 2"];
    let first = support::paused_at_with(dir, &args, &borrowed(&at.envs()), "before-swap:big");
    let second = at.etlm(dir, &["run", "--vars", "k: 3"]);
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    assert!(second.stderr.contains("warning: another etlm run writes to"), "{}", second.stderr);
    let out = first.wait_with_output().expect("the first run ends");
    assert_eq!(out.status.code(), Some(1), "the loser of the commit race fails");
    let results = std::fs::read_to_string(dir.join("target/run_results.json")).unwrap();
    assert!(
        results.contains("another writer committed version 1 after this run read version 0"),
        "the error names the conflict: {results}"
    );

    // The table is the winner's, whole, at one new version, for every reader.
    assert_eq!(amounts(dir, at), vec![30, 60]);
    let seen = read_elsewhere(python, dir, at, "big");
    assert_eq!((seen.deltalake_version, seen.rows), (1, 2));

    // A rerun builds on the winner's version.
    let rerun = at.etlm(dir, &["run", "--vars", "k: 2"]);
    assert_eq!(rerun.code, 0, "{}\n{}", rerun.stdout, rerun.stderr);
    assert_eq!(amounts(dir, at), vec![20, 40]);
    assert_eq!(read_elsewhere(python, dir, at, "big").deltalake_version, 2);
}

#[test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs --features failpoints")]
fn two_runs_committing_one_table_at_once_one_wins_the_other_fails_with_the_conflict() {
    let Some(python) = delta_python() else { return };
    let (_tmp, dir) = one_table_project("lake_race", &Lake::Folder);
    commit_race(&python, &dir, &Lake::Folder);
    // Besides the current version and the one before, no folder: the loser's went at once.
    let left = support::engines::Backend::Delta.leftover_folders(&dir);
    assert_eq!(left, Vec::<String>::new(), "the loser's folder is gone");
}

#[test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs --features failpoints")]
fn on_an_s3_server_two_runs_committing_one_table_at_once_one_wins_the_other_fails_with_the_conflict() {
    let Some(python) = delta_python() else { return };
    let server = S3Server::start(&python, "etlm-race");
    let at = Lake::S3(&server);
    let (_tmp, dir) = one_table_project("s3_race", &at);
    commit_race(&python, &dir, &at);
    // Three commits, and the files of three versions: the loser's upload is removed.
    let keys = server.keys(&python, "shop/main/big/");
    let versions: std::collections::BTreeSet<&str> =
        keys.iter().filter_map(|k| k.split('/').nth(3)).filter(|v| !v.starts_with('_')).collect();
    assert_eq!(versions.len(), 3, "{keys:?}");
    assert_eq!(keys.iter().filter(|k| k.contains("/_delta_log/") && k.ends_with(".json")).count(), 3, "{keys:?}");
}

#[test]
fn a_table_that_gains_a_time_without_time_zone_upgrades_its_protocol_for_every_reader() {
    let Some(python) = delta_python() else { return };
    let (_tmp, dir) = one_table_project("lake_ntz", &Lake::Folder);
    assert_eq!(build(&dir).code, 0);
    write_file(
        &dir,
        "models/big.sql",
        "{{ config(materialized='table') }}\n\
         select id, amount, cast('2024-01-0' || cast(id as varchar) || ' 10:00:00' as timestamp) as at\n\
         from {{ ref('items') }}\n",
    );
    let rebuilt = build(&dir);
    assert_eq!(rebuilt.code, 0, "{}\n{}", rebuilt.stdout, rebuilt.stderr);
    let seen = read_elsewhere(&python, &dir, &Lake::Folder, "big");
    assert_eq!((seen.deltalake_version, seen.duckdb_version, seen.rows), (1, Some(1), 2));
}

#[test]
fn on_an_s3_server_the_example_builds_rebuilds_updates_incrementally_and_a_failed_audit_keeps_the_version() {
    let Some(python) = delta_python() else { return };
    let server = S3Server::start(&python, "etlm-lake");
    let s3 = Lake::S3(&server);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("example_project");
    let (_tmp, dir) = copy_project(example.to_str().unwrap());
    let profiles = std::fs::read_to_string(dir.join("profiles.yml")).unwrap();
    let target = format!(
        "    s3:\n      type: delta\n      location: s3://{}/shop\n      endpoint: {}\n      region: us-east-1\n      \
         allow_http: true\n",
        server.bucket,
        server.endpoint()
    );
    std::fs::write(dir.join("profiles.yml"), profiles + &target).unwrap();
    // A table whose audit fails when `max_quantity` is low.
    write_file(
        &dir,
        "models/checked.sql",
        "{{ config(materialized='table') }}\nselect order_id, case when quantity > {{ var('max_quantity', 100) }} \
         then null else quantity end as quantity from {{ ref('stg_orders') }}\n",
    );
    write_file(
        &dir,
        "models/checked.yml",
        "models:\n  - name: checked\n    columns:\n      - name: quantity\n        data_tests: [not_null]\n",
    );
    let cache = dir.join(".etlm-cache");

    let built = s3.etlm(&dir, &["build"]);
    assert_eq!(built.code, 0, "{}\n{}", built.stdout, built.stderr);
    let daily = read_elsewhere(&python, &dir, &s3, "fct_orders_daily");
    assert_eq!((daily.deltalake_version, daily.rows), (0, 10));
    let snapshot_rows = read_elsewhere(&python, &dir, &s3, "customers_snapshot").rows;

    // The bucket holds the tables: a machine with no cache rebuilds on them. A new day of
    // orders reaches the incremental model, and the snapshot keeps its history.
    std::fs::remove_dir_all(&cache).unwrap();
    let mut orders = std::fs::read_to_string(dir.join("seeds/orders.csv")).unwrap();
    orders.push_str("61,1,1,1,placed,2024-01-11\n");
    std::fs::write(dir.join("seeds/orders.csv"), orders).unwrap();
    let rebuilt = s3.etlm(&dir, &["build"]);
    assert_eq!(rebuilt.code, 0, "{}\n{}", rebuilt.stdout, rebuilt.stderr);
    let daily = read_elsewhere(&python, &dir, &s3, "fct_orders_daily");
    assert_eq!((daily.deltalake_version, daily.rows), (1, 11), "the new day is added to the table on S3");
    let snapshot = read_elsewhere(&python, &dir, &s3, "customers_snapshot");
    assert_eq!((snapshot.deltalake_version, snapshot.rows), (1, snapshot_rows), "the snapshot kept its rows");

    // A failing audit commits nothing: the table on S3 stays at its version.
    std::fs::remove_dir_all(&cache).unwrap();
    let failed = s3.etlm(&dir, &["run", "-s", "checked", "--vars", "max_quantity: 1"]);
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    let checked = read_elsewhere(&python, &dir, &s3, "checked");
    assert_eq!((checked.deltalake_version, checked.rows), (1, 61), "the previous version stays current, for etlm too");
}

#[test]
fn a_delta_target_without_a_location_on_another_object_store_or_keeping_one_version_is_refused_with_its_line() {
    let (_tmp, dir) = one_table_project("lake_refused", &Lake::Folder);
    for (settings, message) in [
        ("      type: delta\n", "a `type: delta` target needs `location:`"),
        (
            "      type: delta\n      location: gs://bucket/lake\n",
            "`gs://bucket/lake`: of object stores, Delta tables can be on S3 only",
        ),
        (
            "      type: delta\n      location: lake\n      keep_versions: 1\n",
            "`keep_versions: 1` must be a whole number of versions, 2 or more",
        ),
    ] {
        write_file(&dir, "profiles.yml", &format!("lake_refused:\n  target: lake\n  outputs:\n    lake:\n{settings}"));
        let refused = etlm(&dir, &["build"]);
        assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
        assert!(refused.stderr.contains(message), "{}", refused.stderr);
        assert!(refused.stderr.contains("profiles.yml:"), "the diagnostic names the file and line: {}", refused.stderr);
        assert!(!dir.join("lake").exists(), "nothing is written");
    }
}

#[test]
fn show_as_of_reads_the_tables_as_they_were_at_a_version_or_a_time_while_their_files_are_kept() {
    let (_tmp, dir) = one_table_project("lake_travel", &Lake::Folder);
    let profiles = std::fs::read_to_string(dir.join("profiles.yml")).unwrap();
    std::fs::write(dir.join("profiles.yml"), profiles + "      keep_versions: 3\n    dev:\n      type: local\n")
        .unwrap();
    let mut between = String::new();
    for k in 1..=4 {
        let built = etlm(&dir, &["build", "--vars", &format!("k: {k}")]);
        assert_eq!(built.code, 0, "{}\n{}", built.stdout, built.stderr);
        if k == 2 {
            std::thread::sleep(std::time::Duration::from_millis(30));
            between = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
    }
    let shown = |as_of: &str| {
        let run = etlm(&dir, &["show", "-s", "big", "--as-of", as_of, "--format", "json"]);
        (run.code, sorted_amounts(&run.stdout), run.stderr)
    };
    assert_eq!(shown("3").1, vec![40, 80], "the latest version");
    assert_eq!(shown("2").1, vec![30, 60]);
    assert_eq!(shown("1").1, vec![20, 40]);
    assert_eq!(shown(&between).1, vec![20, 40], "the latest commit by then: the second build's");

    // Version 0's files went with the fourth build (three versions are kept); before the
    // first commit there was no table.
    for gone in ["0", "2000-01-01"] {
        let (code, amounts, stderr) = shown(gone);
        assert_eq!((code, amounts), (2, vec![]), "{stderr}");
        assert!(stderr.contains("is absent"), "{stderr}");
    }
    let (code, _, stderr) = shown("yesterday");
    assert_eq!(code, 2);
    assert!(stderr.contains("neither a Delta version"), "{stderr}");
    let embedded = etlm(&dir, &["show", "-s", "big", "--as-of", "1", "--target", "dev"]);
    assert_eq!(embedded.code, 2, "{}", embedded.stderr);
    assert!(embedded.stderr.contains("only a Delta Lake target keeps"), "{}", embedded.stderr);
    // Without `--as-of`, the current version, and the folder holds the three kept.
    assert_eq!(amounts(&dir, &Lake::Folder), vec![40, 80]);
    let kept = std::fs::read_dir(lake(&dir).join("big")).unwrap().flatten();
    assert_eq!(kept.filter(|e| !e.file_name().to_string_lossy().starts_with('_')).count(), 3);
}
