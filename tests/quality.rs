//! Quality tests end to end, through the binary: every built-in test kind passing and
//! failing with its exact failing-row count, write-audit-publish (a failing audit keeps
//! the old version and skips descendants; a warning publishes), stored failures, test
//! history, and row-count anomalies.

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::{copy_project, etlm, rows};

/// Status and failing-row count of every test of the latest run, by test name.
fn latest_tests(dir: &Path) -> Vec<(String, String, Option<i64>)> {
    let sql = "select t.unique_id, t.status, t.failures from _etlm.test_results t \
               join (select run_id from _etlm.runs order by started_at desc limit 1) r on t.run_id = r.run_id \
               order by t.unique_id";
    rows(dir, sql)
        .into_iter()
        .map(|r| {
            let id = r["unique_id"].as_str().unwrap().rsplit('.').next().unwrap().to_string();
            (id, r["status"].as_str().unwrap().to_string(), r["failures"].as_i64())
        })
        .collect()
}

#[test]
fn every_test_kind_passes_and_fails_with_its_exact_failing_row_count() {
    let (_tmp, dir) = copy_project("quality_kinds");
    let seed = etlm(&dir, &["seed"]);
    assert_eq!(seed.code, 0, "{}\n{}", seed.stdout, seed.stderr);
    let test = etlm(&dir, &["test"]);
    assert_eq!(test.code, 1, "error-severity failures exit 1:\n{}\n{}", test.stdout, test.stderr);
    assert!(test.stdout.contains("FAIL   test unique_fail"), "{}", test.stdout);
    assert!(test.stdout.contains("1 failing row"), "{}", test.stdout);
    let expected: Vec<(&str, &str, i64)> = vec![
        ("accepted_range_fail", "fail", 2),
        ("accepted_range_pass", "pass", 0),
        ("accepted_range_warn", "warn", 1),
        ("accepted_values_fail", "fail", 2),
        ("accepted_values_fail_limited", "fail", 1),
        ("accepted_values_pass", "pass", 0),
        ("combination_fail", "fail", 1),
        ("combination_pass", "pass", 0),
        ("custom_generic_fail", "fail", 1),
        ("expression_fail", "fail", 1),
        ("expression_pass", "pass", 0),
        ("not_null_fail", "fail", 1),
        ("not_null_pass", "pass", 0),
        ("not_null_where_pass", "pass", 0),
        ("people_are_adults_or_unknown", "fail", 1),
        ("relationships_fail", "fail", 1),
        ("relationships_pass", "pass", 0),
        ("row_count_fail", "fail", 1),
        ("row_count_pass", "pass", 0),
        ("unique_fail", "fail", 1),
        ("unique_fail_below_error_if", "warn", 1),
        ("unique_pass", "pass", 0),
    ];
    let expected: Vec<(String, String, Option<i64>)> =
        expected.into_iter().map(|(n, s, f)| (n.to_string(), s.to_string(), Some(f))).collect();
    assert_eq!(latest_tests(&dir), expected);
    // run_results.json carries the same counts, as dbt's `failures`.
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("target/run_results.json")).unwrap()).unwrap();
    let failures: Vec<(String, Option<i64>)> = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["unique_id"].as_str().unwrap().rsplit('.').next().unwrap().to_string(), r["failures"].as_i64()))
        .collect();
    let mut from_history: Vec<(String, Option<i64>)> = expected.iter().map(|(n, _, f)| (n.clone(), *f)).collect();
    let mut failures_sorted = failures.clone();
    failures_sorted.sort();
    from_history.sort();
    assert_eq!(failures_sorted, from_history);
    // `etlm test` leaves failing rows where they are unless `store_failures` asks.
    let stored = etlm(&dir, &["show", "select * from main_dbt_test__audit.unique_fail"]);
    assert_eq!(stored.code, 2, "nothing stored without store_failures: {}", stored.stdout);
}

#[test]
fn store_failures_keeps_the_failing_rows_of_a_test() {
    let (_tmp, dir) = copy_project("quality_kinds");
    let yml = dir.join("etlm.yml");
    let text = std::fs::read_to_string(&yml).unwrap() + "data_tests:\n  +store_failures: true\n";
    std::fs::write(&yml, text).unwrap();
    assert_eq!(etlm(&dir, &["seed"]).code, 0);
    assert_eq!(etlm(&dir, &["test", "-s", "people"]).code, 1);
    let stored = rows(&dir, "select value_field, n_records from main_dbt_test__audit.accepted_values_fail order by 1");
    assert_eq!(
        stored,
        vec![json!({"value_field": "banned", "n_records": 1}), json!({"value_field": "inactive", "n_records": 1})]
    );
    // As in dbt: `not_null` stores whole rows, and a passing test leaves an empty table.
    let whole = rows(&dir, "select * from main_dbt_test__audit.not_null_fail");
    assert_eq!(whole.len(), 1);
    assert!(whole[0].as_object().unwrap().contains_key("status"), "{whole:?}");
    assert_eq!(rows(&dir, "select count(*) as n from main_dbt_test__audit.not_null_pass"), vec![json!({"n": 0})]);
}

#[test]
fn a_failing_audit_keeps_the_published_table_and_skips_descendants() {
    let (_tmp, dir) = copy_project("quality_wap");
    let first = etlm(&dir, &["build"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let before = rows(&dir, "select id, name from main.dim_customers order by id");
    assert_eq!(before.len(), 3);

    let run = etlm(&dir, &["run", "--vars", "{duplicate: true}"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("FAIL   test unique_dim_customers_id"), "{}", run.stdout);
    assert!(run.stdout.contains("not published: `unique_dim_customers_id` failed"), "{}", run.stdout);
    assert_eq!(rows(&dir, "select id, name from main.dim_customers order by id"), before, "old version stays");
    let results: Value = serde_json::from_slice(&std::fs::read(dir.join("target/run_results.json")).unwrap()).unwrap();
    let status = |id: &str| {
        results["results"].as_array().unwrap().iter().find(|r| r["unique_id"] == id).map(|r| r["status"].clone())
    };
    assert_eq!(status("model.quality_wap.dim_customers"), Some(json!("error")));
    assert_eq!(status("model.quality_wap.customer_count"), Some(json!("skipped")));
    assert_eq!(status("test.quality_wap.unique_dim_customers_id"), Some(json!("fail")));
    assert_eq!(rows(&dir, "select customers from main.customer_count"), vec![json!({"customers": 3})]);
    let failures = rows(&dir, "select unique_field, n_records from main_dbt_test__audit.unique_dim_customers_id");
    assert_eq!(failures, vec![json!({"unique_field": 2, "n_records": 2})]);
    let history = rows(
        &dir,
        "select status, failures, threshold from _etlm.test_results where unique_id = 'test.quality_wap.unique_dim_customers_id' order by started_at desc limit 1",
    );
    assert_eq!(history, vec![json!({"status": "fail", "failures": 1, "threshold": "error_if != 0"})]);

    // Tests taken out of the selection do not audit.
    let unaudited =
        etlm(&dir, &["run", "-s", "dim_customers", "--exclude", "resource_type:test", "--vars", "{duplicate: true}"]);
    assert_eq!(unaudited.code, 0, "{}\n{}", unaudited.stdout, unaudited.stderr);
    assert!(!unaudited.stdout.contains("test unique_dim_customers_id"), "{}", unaudited.stdout);
    assert_eq!(rows(&dir, "select count(*) as n from main.dim_customers"), vec![json!({"n": 4})]);
}

#[test]
fn a_warn_severity_audit_publishes_and_reports() {
    let (_tmp, dir) = copy_project("quality_wap");
    let schema = dir.join("models/schema.yml");
    let text = std::fs::read_to_string(&schema).unwrap().replace(
        "          - unique\n",
        "          - unique:\n              config:\n                severity: warn\n",
    );
    std::fs::write(&schema, text).unwrap();
    assert_eq!(etlm(&dir, &["build"]).code, 0);
    let run = etlm(&dir, &["run", "--vars", "{duplicate: true}"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("WARN   test unique_dim_customers_id"), "{}", run.stdout);
    assert!(run.stdout.contains("1 failing row"), "{}", run.stdout);
    assert_eq!(rows(&dir, "select count(*) as n from main.dim_customers"), vec![json!({"n": 4})], "published");
    assert_eq!(rows(&dir, "select customers from main.customer_count"), vec![json!({"customers": 4})]);
    let history = rows(
        &dir,
        "select status, failures from _etlm.test_results where unique_id = 'test.quality_wap.unique_dim_customers_id' order by started_at desc limit 1",
    );
    assert_eq!(history, vec![json!({"status": "warn", "failures": 1})]);
}

#[test]
fn a_tenfold_drop_after_steady_row_counts_warns() {
    let (_tmp, dir) = copy_project("quality_wap");
    for _ in 0..5 {
        let run = etlm(&dir, &["run", "-s", "events"]);
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        assert!(!run.stdout.contains("row_count_anomaly"), "no verdict on a short or steady history: {}", run.stdout);
    }
    let drop = etlm(&dir, &["run", "-s", "events", "--vars", "{events: 100}"]);
    assert_eq!(drop.code, 0, "an anomaly warns by default: {}\n{}", drop.stdout, drop.stderr);
    assert!(drop.stdout.contains("WARN   anomaly row_count_anomaly main.events"), "{}", drop.stdout);
    assert!(drop.stdout.contains("row count 100 is outside the usual"), "{}", drop.stdout);
    assert_eq!(rows(&dir, "select count(*) as n from main.events"), vec![json!({"n": 100})], "a warning publishes");
    let history = rows(
        &dir,
        "select status, observed from _etlm.test_results where test = 'row_count_anomaly' and status <> 'pass'",
    );
    assert_eq!(history, vec![json!({"status": "warn", "observed": 100.0})]);

    // Made an error, the anomaly blocks the publish.
    let model = dir.join("models/events.sql");
    let text = std::fs::read_to_string(&model).unwrap();
    std::fs::write(&model, format!("{{{{ config(row_count_anomaly='error') }}}}\n{text}")).unwrap();
    let blocked = etlm(&dir, &["run", "-s", "events", "--vars", "{events: 100000}"]);
    assert_eq!(blocked.code, 1, "{}\n{}", blocked.stdout, blocked.stderr);
    assert!(blocked.stdout.contains("FAIL   anomaly row_count_anomaly main.events"), "{}", blocked.stdout);
    assert_eq!(
        rows(&dir, "select count(*) as n from main.events"),
        vec![json!({"n": 100})],
        "the previous version stays"
    );
}
