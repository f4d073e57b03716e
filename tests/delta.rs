//! The Delta Lake engine as other readers see it: DuckDB's delta extension and the
//! `deltalake` Python package read the tables etlm published with the rows `etlm show`
//! gives, at the versions etlm committed (one per published model and run, none for a
//! failed audit). The conformance and crash suites run on this engine too
//! (`engine_suite!(delta)` in conformance.rs and faults.rs).
#![cfg(feature = "delta")]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{copy_project, empty_project, etlm, write_file};

/// The Python that has `deltalake`, `pyarrow`, `duckdb` and `duckdb-ext-delta`
/// (`ETLM_DELTA_PYTHON`, which .ci/run sets), or `None` when there is none outside CI.
fn delta_python() -> Option<String> {
    let python = std::env::var("ETLM_DELTA_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import deltalake, pyarrow, duckdb, duckdb_ext"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok || std::env::var("CI").is_err(), "CI must provide ETLM_DELTA_PYTHON (.ci/run makes it)");
    if !ok {
        eprintln!("skipped: no Python with deltalake, pyarrow and duckdb-ext-delta (set ETLM_DELTA_PYTHON)");
    }
    ok.then_some(python)
}

/// What the other readers saw of one table.
struct Seen {
    deltalake_version: u64,
    duckdb_version: Option<u64>,
    rows: usize,
}

/// Reads `lake/main/<table>` with both readers and compares with `etlm show -s table`.
fn read_elsewhere(python: &str, dir: &Path, table: &str) -> Seen {
    let shown = etlm(dir, &["show", "--target", "lake", "-s", table, "--format", "json", "--limit", "1000000"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let rows_file = dir.join(format!("{table}.etlm.jsonl"));
    std::fs::write(&rows_file, &shown.stdout).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/delta_check.py");
    let out = Command::new(python).arg(script).arg(lake(dir).join(table)).arg(&rows_file).output().unwrap();
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
            let seen = read_elsewhere(&python, &dir, table);
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
    let big = read_elsewhere(&python, &dir, "big");
    assert_eq!((big.deltalake_version, big.duckdb_version, big.rows), (0, Some(0), 2), "the old version stays");
    assert_eq!(read_elsewhere(&python, &dir, "items").deltalake_version, 1, "the seed itself published");
    let after: Vec<String> = std::fs::read_dir(lake(&dir).join("big"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(after.len(), before, "no staging folder or file is left: {after:?}");
}
