//! Unit tests (`unit_tests:`) on every engine, through the binary: the `unit_tests`
//! fixture gives rows as dicts, CSV and SQL, inline and from fixture files, overrides vars,
//! env vars and macros (`is_incremental` with a `this` input, a namespaced
//! `dbt.current_timestamp`), and reads a seed's file and a source. The same tests must pass before anything is built (compile-time column
//! types) and after (the relations' own types); a failing one prints its diff and exits 1,
//! and `build` skips its model and what reads it.

mod support;

use std::path::Path;

use support::engines::{Backend, table};
use support::{copy_project, etlm};

/// The names of the unit tests the fixture defines (the disabled one is not among them).
const UNIT_TESTS: [&str; 14] = [
    "totals_sum_each_customers_orders",
    "totals_from_csv_rows",
    "totals_from_sql_rows",
    "totals_from_fixture_files",
    "customers_from_their_seed_file",
    "big_spenders_at_an_overridden_threshold",
    "stg_orders_drop_small_amounts",
    "cents_with_overridden_macros_and_env_vars",
    "region_macro_replaced",
    "new_events_only_when_incremental",
    "every_event_on_a_full_build",
    "events_per_day_from_a_source",
    "test_events_are_dropped",
    "load_time_is_fixed",
];

/// A unit test of `customer_totals` whose expected rows are wrong for Bo and miss Cy.
const FAILING: &str = "unit_tests:
  - name: totals_expected_wrongly
    model: customer_totals
    given:
      - input: ref('customers')
        rows:
          - {customer_id: 1, name: Ada}
          - {customer_id: 2, name: Bo}
          - {customer_id: 3, name: Cy}
      - input: ref('stg_orders')
        rows:
          - {order_id: 1, customer_id: 2, amount: 7}
    expect:
      rows:
        - {customer_id: 1, total: 0}
        - {customer_id: 2, total: 8}
";

fn run(dir: &Path, args: &[&str], code: i32) -> String {
    let out = etlm(dir, args);
    assert_eq!(out.code, code, "{args:?}\n{}\n{}", out.stdout, out.stderr);
    out.stdout
}

/// The lines of one result: its status line and the indented lines under it.
fn result_block(out: &str, name: &str) -> String {
    let mut lines = out.lines().skip_while(|l| !l.ends_with(name) && !l.contains(&format!("{name}  ")));
    let first = lines.next().unwrap_or_else(|| panic!("no result for {name}:\n{out}"));
    let status = first.split_whitespace().nth(3).expect("a status").to_string();
    let rest: Vec<&str> = lines.take_while(|l| l.starts_with("       ")).map(str::trim_end).collect();
    let indent = rest.iter().map(|l| l.len() - l.trim_start().len()).min().unwrap_or(0);
    format!("{status} {name}\n{}", rest.iter().map(|l| &l[indent..]).collect::<Vec<_>>().join("\n"))
}

mod cases {
    use super::*;

    pub fn every_format_and_override_passes_before_and_after_a_build(b: &Backend) {
        let (_tmp, dir) = b.project("unit_tests");
        for when in ["before a build", "after a build"] {
            if when == "after a build" {
                run(&dir, &["build"], 0);
            }
            let out = run(&dir, &["test", "-s", "test_type:unit"], 0);
            for name in UNIT_TESTS {
                assert!(out.contains(&format!("PASS   unit test {name}")), "{name} {when}:\n{out}");
            }
            assert!(out.contains("14 passed, 0 warned, 0 failed, 0 errors"), "{when}:\n{out}");
            assert!(!out.contains("a_disabled_unit_test"), "{out}");
            assert!(!out.contains("not_null_customer_totals"), "test_type:unit runs no data test: {out}");
        }
        let out = run(&dir, &["test", "-s", "test_type:data"], 0);
        assert!(out.contains("2 passed") && !out.contains("unit test"), "{out}");
    }

    pub fn a_failing_unit_test_prints_its_diff(b: &Backend) {
        let (_tmp, dir) = b.project("unit_tests");
        std::fs::write(dir.join("models/failing.yml"), FAILING).unwrap();
        let out = run(&dir, &["test", "-s", "test_type:unit"], 1);
        assert!(out.contains("14 passed, 0 warned, 1 failed"), "{out}");
        insta::assert_snapshot!("failing_unit_test", result_block(&out, "totals_expected_wrongly"));
        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("target/run_results.json")).unwrap()).unwrap();
        let result = results["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["unique_id"] == "unit_test.unit_shop.customer_totals.totals_expected_wrongly")
            .expect("the unit test is in run_results.json");
        assert_eq!(result["status"], "fail");
        assert_eq!(result["failures"], 3, "Bo's row differs on each side, Cy's is only actual");
        let history = if b.schema() == "main" { "_etlm" } else { "etlm_meta" };
        let recorded = b.rows(
            &dir,
            &format!(
                "select status, test, failures from {history}.test_results \
                 where unique_id = 'unit_test.unit_shop.customer_totals.totals_expected_wrongly'"
            ),
        );
        assert_eq!(
            recorded,
            table(&["failures", "status", "test"], &[&["3", "fail", "unit"]]),
            "the run history has it"
        );
    }

    pub fn build_skips_a_model_whose_unit_test_fails(b: &Backend) {
        let (_tmp, dir) = b.project("unit_tests");
        std::fs::write(dir.join("models/failing.yml"), FAILING).unwrap();
        let out = run(&dir, &["build"], 1);
        let schema = b.schema();
        assert!(out.contains("FAIL   unit test totals_expected_wrongly"), "{out}");
        for skipped in ["customer_totals", "big_spenders"] {
            assert!(out.contains(&format!("SKIP   table {schema}.{skipped}")), "{skipped}:\n{out}");
        }
        for built in ["OK     view {schema}.stg_orders", "OK     table {schema}.order_cents"] {
            assert!(out.contains(&built.replace("{schema}", schema)), "{built}:\n{out}");
        }
        let missing = etlm(&dir, &["show", &format!("select * from {schema}.customer_totals")]);
        assert_eq!(missing.code, 2, "customer_totals was never built: {}", missing.stdout);
        // The passing unit tests of other models still ran before their models.
        assert!(out.contains("PASS   unit test stg_orders_drop_small_amounts"), "{out}");
    }

    pub fn a_value_that_does_not_cast_is_an_error(b: &Backend) {
        let (_tmp, dir) = b.project("unit_tests");
        run(&dir, &["seed"], 0);
        let bad = FAILING.replace("{customer_id: 3, name: Cy}", "{customer_id: three, name: Cy}");
        std::fs::write(dir.join("models/failing.yml"), bad).unwrap();
        let out = run(&dir, &["test", "-s", "totals_expected_wrongly"], 1);
        let block = result_block(&out, "totals_expected_wrongly");
        assert!(block.starts_with("ERROR totals_expected_wrongly\n"), "{block}");
        assert!(block.contains("values and types") && block.contains("three"), "{block}");
    }

    pub fn tags_of_unit_tests_select_and_exclude(b: &Backend) {
        let (_tmp, dir) = b.project("unit_tests");
        let out = run(&dir, &["test", "-s", "tag:events"], 0);
        assert!(out.contains("2 passed"), "{out}");
        let out = run(&dir, &["test", "-s", "test_type:unit", "--exclude", "tag:events+", "tag:staging"], 0);
        assert!(out.contains("11 passed"), "{out}");
        assert!(!out.contains("events_per_day") && !out.contains("stg_orders_drop"), "{out}");
        // `unit_tests: +tags` in the project file tags every unit test, on top of their own.
        let out = run(&dir, &["test", "-s", "tag:unit"], 0);
        assert!(out.contains("14 passed"), "{out}");
        let out = run(&dir, &["test", "-s", "tag:unit,tag:events"], 0);
        assert!(out.contains("2 passed"), "{out}");
        // A model's unit tests follow it: excluding `stg_orders+` drops every unit test
        // of what reads it.
        let out = run(&dir, &["test", "-s", "test_type:unit", "--exclude", "stg_orders+"], 0);
        assert!(out.contains("2 passed"), "only the events tests are left: {out}");
    }
}

#[test]
fn the_manifest_lists_unit_tests_as_dbt_does() {
    let (_tmp, dir) = copy_project("unit_tests");
    run(&dir, &["compile"], 0);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("target/manifest.json")).unwrap()).unwrap();
    let unit_tests = manifest["unit_tests"].as_object().expect("a `unit_tests` map");
    assert_eq!(unit_tests.len(), UNIT_TESTS.len(), "every enabled unit test, the disabled one left out");
    let test = &unit_tests["unit_test.unit_shop.order_events.new_events_only_when_incremental"];
    assert_eq!(test["resource_type"], "unit_test");
    assert_eq!(test["model"], "order_events");
    assert_eq!(test["depends_on"]["nodes"], serde_json::json!(["model.unit_shop.order_events"]));
    assert_eq!(test["given"][0]["input"], "this");
    assert_eq!(test["given"][1]["rows"][2], serde_json::json!({"order_id": 3, "customer_id": 2, "amount": 30}));
    assert_eq!(test["overrides"]["macros"]["is_incremental"], true);
    let from_file = &unit_tests["unit_test.unit_shop.customer_totals.totals_from_fixture_files"];
    assert_eq!(from_file["given"][0]["fixture"], "two_customers");
    assert_eq!(from_file["given"][0]["rows"][1], serde_json::json!({"customer_id": "2", "name": "Bo"}));
    assert_eq!(from_file["given"][1]["format"], "sql");
    assert!(manifest["nodes"].as_object().unwrap().keys().all(|k| !k.starts_with("unit_test.")));
    let children = &manifest["child_map"]["model.unit_shop.order_events"];
    assert!(
        children.as_array().unwrap().contains(&"unit_test.unit_shop.order_events.every_event_on_a_full_build".into())
    );
}

/// `state:modified` selects a unit test whose rows changed, and no other.
#[test]
fn a_unit_test_whose_rows_changed_is_state_modified() {
    let (tmp, dir) = copy_project("unit_tests");
    run(&dir, &["compile"], 0);
    let state = tmp.path().join("state");
    std::fs::rename(dir.join("target"), &state).unwrap();
    let yml = dir.join("models/unit_tests.yml");
    let text = std::fs::read_to_string(&yml).unwrap();
    std::fs::write(
        &yml,
        text.replace("{customer_id: 2, orders: 0, total: 0}", "{customer_id: 2, orders: 0, total: 1}"),
    )
    .unwrap();
    let out =
        run(&dir, &["ls", "-s", "state:modified", "--state", state.to_str().unwrap(), "--output", "unique-id"], 0);
    assert_eq!(out.trim(), "unit_test.unit_shop.customer_totals.totals_sum_each_customers_orders");
}

/// A package's macro is overridden under its namespace (`toolkit.label`), and the
/// package's other macros (`toolkit.to_money`) still render.
#[test]
fn a_package_macro_is_overridden_under_its_namespace() {
    let (_tmp, dir) = copy_project("packages");
    run(&dir, &["deps"], 0);
    let test = |tag: &str| {
        format!(
            "unit_tests:
  - name: priced_with_a_fixed_label
    model: orders_priced
    overrides:
      macros:
        toolkit.label: \"'fixed'\"
    given:
      - input: ref('raw_orders')
        rows:
          - {{id: 1, amount: 2}}
    expect:
      rows:
        - {{id: 1, tag: {tag}}}
"
        )
    };
    std::fs::write(dir.join("models/unit.yml"), test("fixed")).unwrap();
    let out = run(&dir, &["test", "-s", "test_type:unit"], 0);
    assert!(out.contains("PASS   unit test priced_with_a_fixed_label"), "{out}");
    std::fs::write(dir.join("models/unit.yml"), test("tk-fixed")).unwrap();
    let out = run(&dir, &["test", "-s", "test_type:unit"], 1);
    assert!(out.contains("+ | 1  | fixed    |"), "the override replaced the package's label: {out}");
}

/// A time-windowed model is tested on one batch, its window given as vars.
#[test]
fn a_windowed_model_is_tested_on_the_window_its_vars_give() {
    let (_tmp, dir) = copy_project("backfill");
    let test = |day: &str, amount: u32| {
        format!(
            "unit_tests:
  - name: one_day_batch
    model: daily_explicit
    overrides:
      macros: {{is_incremental: false}}
      vars: {{etlm_start: '2024-01-02 00:00:00', etlm_end: '2024-01-03 00:00:00', ds: '2024-01-02'}}
    given:
      - input: ref('all_events')
        rows:
          - {{id: 1, dt: '2024-01-01', amount: 5}}
          - {{id: 2, dt: '2024-01-02', amount: 6}}
          - {{id: 3, dt: '2024-01-02', amount: 7}}
    expect:
      rows:
        - {{dt: '{day}', events: 2, amount: {amount}, batch: '2024-01-02'}}
"
        )
    };
    std::fs::write(dir.join("models/unit.yml"), test("2024-01-02", 13)).unwrap();
    let out = run(&dir, &["test", "-s", "test_type:unit"], 0);
    assert!(out.contains("PASS   unit test one_day_batch"), "{out}");
    std::fs::write(dir.join("models/unit.yml"), test("2024-01-01", 5)).unwrap();
    let out = run(&dir, &["test", "-s", "test_type:unit"], 1);
    assert!(out.contains("FAIL   unit test one_day_batch"), "the first day is outside the window: {out}");
}

macro_rules! engine_suite {
    ($engine:ident) => {
        mod $engine {
            use super::{Backend, cases};

            #[test]
            fn every_format_and_override_passes_before_and_after_a_build() {
                if let Some(b) = Backend::$engine("unit_pass") {
                    cases::every_format_and_override_passes_before_and_after_a_build(&b);
                }
            }

            #[test]
            fn a_failing_unit_test_prints_its_diff() {
                if let Some(b) = Backend::$engine("unit_fail") {
                    cases::a_failing_unit_test_prints_its_diff(&b);
                }
            }

            #[test]
            fn build_skips_a_model_whose_unit_test_fails() {
                if let Some(b) = Backend::$engine("unit_build") {
                    cases::build_skips_a_model_whose_unit_test_fails(&b);
                }
            }

            #[test]
            fn a_value_that_does_not_cast_is_an_error() {
                if let Some(b) = Backend::$engine("unit_cast") {
                    cases::a_value_that_does_not_cast_is_an_error(&b);
                }
            }

            #[test]
            fn tags_of_unit_tests_select_and_exclude() {
                if let Some(b) = Backend::$engine("unit_tags") {
                    cases::tags_of_unit_tests_select_and_exclude(&b);
                }
            }
        }
    };
}

engine_suite!(datafusion);
engine_suite!(postgres);
