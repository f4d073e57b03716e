//! One conformance suite, expanded per engine (STYLE §4): the same projects, built on the
//! embedded engine and on a real Postgres, must give the same tables row for row (values
//! compared as text). Seeds, a view, tables, an ephemeral model, each incremental
//! strategy run twice, `on_schema_change`, a failing audit (write-audit-publish), folded
//! audits against one query per test, a
//! backfill window, and dbt's cross-database macros.

mod support;

use std::path::Path;

use support::engines::{Backend, Row, table};
use support::etlm;

fn ok(dir: &Path, args: &[&str]) -> String {
    let run = etlm(dir, args);
    assert_eq!(run.code, 0, "{args:?}\n{}\n{}", run.stdout, run.stderr);
    run.stdout
}

/// The seed of the `incremental` fixture after its source changed: order 2 is updated,
/// order 4 is new.
const CHANGED: &str =
    "id,dt,amount,status\n1,2024-01-01,10,new\n2,2024-01-01,25,paid\n3,2024-01-02,30,new\n4,2024-01-03,40,new\n";

mod cases {
    use super::*;

    pub fn seeds_views_tables_and_ephemeral(b: &Backend) {
        let (_tmp, dir) = b.project("conformance");
        for _ in 0..2 {
            let out = ok(&dir, &["build"]);
            assert!(out.contains("PASS   test freshness_stg_orders_order_date__100_years"), "{out}");
            assert!(
                out.contains("WARN   test freshness_daily_revenue_order_date__1_day"),
                "data from 2024 is stale: {out}"
            );
            assert_eq!(
                b.rows(&dir, "select customer_id, name, tier from {schema}.customers order by customer_id"),
                table(
                    &["customer_id", "name", "tier"],
                    &[&["1", "Ada", "gold"], &["2", "Grace", "silver"], &["3", "Linus", "gold"]]
                ),
            );
            assert_eq!(
                b.rows(&dir, "select order_id, cast(order_date as varchar) as d from {schema}.stg_orders order by 1"),
                table(
                    &["order_id", "d"],
                    &[
                        &["1", "2024-01-01"],
                        &["2", "2024-01-01"],
                        &["3", "2024-01-02"],
                        &["4", "2024-01-02"],
                        &["5", "2024-01-03"]
                    ]
                ),
                "the view casts the seed's dates"
            );
            assert_eq!(
                b.rows(&dir, "select * from {schema}.customer_totals order by customer_id"),
                table(
                    &["customer_id", "name", "paid_orders", "paid_amount", "size"],
                    &[
                        &["1", "Ada", "1", "1050", "small"],
                        &["2", "Grace", "1", "525", "small"],
                        &["3", "Linus", "1", "10000", "big"],
                    ]
                ),
                "the table reads the ephemeral model inlined"
            );
            assert_eq!(
                b.rows(
                    &dir,
                    "select cast(order_date as varchar) as d, revenue, running_revenue from {schema}.daily_revenue order by 1"
                ),
                table(&["d", "revenue", "running_revenue"], &[
                    &["2024-01-01", "3050", "3050"],
                    &["2024-01-02", "10525", "13575"],
                    &["2024-01-03", "4200", "17775"],
                ]),
            );
        }
        let missing = etlm(&dir, &["show", "select * from paid_orders"]);
        assert_ne!(missing.code, 0, "an ephemeral model is no relation");
        assert_eq!(b.leftovers(), Vec::<Vec<String>>::new(), "no staging or audit relation is left");
    }

    fn incremental_tables(b: &Backend, dir: &Path) -> Vec<Vec<Row>> {
        let models = ["inc_append", "inc_merge", "inc_delete_insert", "inc_merge_update"];
        let mut tables: Vec<Vec<Row>> = models
            .iter()
            .map(|m| b.rows(dir, &format!("select * from {{schema}}.{m} order by id")))
            .map(|rows| {
                rows.into_iter()
                    .map(|mut r| {
                        if let Some(dt) = r.get_mut("dt") {
                            dt.truncate(10);
                        }
                        r
                    })
                    .collect()
            })
            .collect();
        tables.push(b.rows(dir, "select cast(dt as varchar) as dt, n, total from {schema}.inc_overwrite order by dt"));
        tables
    }

    pub fn each_incremental_strategy_twice(b: &Backend) {
        let (_tmp, dir) = b.project("incremental");
        ok(&dir, &["build"]);
        std::fs::write(dir.join("seeds/events.csv"), CHANGED).unwrap();
        ok(&dir, &["build", "--vars", "{since: 2024-01-02}"]);
        let columns = ["id", "dt", "amount", "status"];
        let merged: &[&[&str]] = &[
            &["1", "2024-01-01", "10", "new"],
            &["2", "2024-01-01", "25", "paid"],
            &["3", "2024-01-02", "30", "new"],
            &["4", "2024-01-03", "40", "new"],
        ];
        let expected = vec![
            table(
                &["id", "dt", "amount"],
                &[
                    &["1", "2024-01-01", "10"],
                    &["2", "2024-01-01", "20"],
                    &["3", "2024-01-02", "30"],
                    &["4", "2024-01-03", "40"],
                ],
            ),
            table(&columns, merged),
            table(&columns, merged),
            table(
                &columns,
                &[
                    &["1", "2024-01-01", "10", "new"],
                    &["2", "2024-01-01", "25", "new"],
                    &["3", "2024-01-02", "30", "new"],
                    &["4", "2024-01-03", "40", "new"],
                ],
            ),
            table(
                &["dt", "n", "total"],
                &[&["2024-01-01", "2", "30"], &["2024-01-02", "1", "30"], &["2024-01-03", "1", "40"]],
            ),
        ];
        let got = incremental_tables(b, &dir);
        let names = ["append", "merge", "delete+insert", "merge_update_columns", "insert_overwrite"];
        for ((name, got), expected) in names.iter().zip(&got).zip(&expected) {
            assert_eq!(got, expected, "{name}");
        }
        ok(&dir, &["build", "--vars", "{since: 2024-01-02}"]);
        assert_eq!(incremental_tables(b, &dir), got, "a second run on the same input changes nothing");
        assert_eq!(b.leftovers(), Vec::<Vec<String>>::new());
    }

    pub fn on_schema_change(b: &Backend) {
        for (policy, code, expected) in [
            ("ignore", 0, vec!["amount", "id"]),
            ("fail", 1, vec!["amount", "id"]),
            ("append_new_columns", 0, vec!["amount", "id", "status"]),
            ("sync_all_columns", 0, vec!["id", "status"]),
        ] {
            let (_tmp, dir) = b.project("incremental");
            ok(&dir, &["build", "-s", "events", "inc_schema", "--full-refresh"]);
            let vars = format!(
                "{{on_schema_change: {policy}, with_status: true, drop_amount: {}}}",
                policy == "sync_all_columns"
            );
            let run = etlm(&dir, &["build", "-s", "events", "inc_schema", "--vars", &vars]);
            assert_eq!(run.code, code, "{policy}: {}\n{}", run.stdout, run.stderr);
            let rows = b.rows(&dir, "select * from {schema}.inc_schema order by id");
            let columns: Vec<&str> = rows[0].keys().map(String::as_str).collect();
            assert_eq!(columns, expected, "{policy}");
            if policy == "fail" {
                assert!(run.stdout.contains("added `status`"), "{}", run.stdout);
            }
            if policy == "append_new_columns" {
                assert_eq!(rows[0]["status"], "new", "matched rows take the new column's value");
            }
        }
    }

    /// A column that keeps its name but changes its type (integer to text) under each
    /// policy: as dbt, `fail` stops, `sync_all_columns` retypes the column, and `ignore`
    /// and `append_new_columns` keep the table's type.
    pub fn on_schema_change_of_a_type_only(b: &Backend) {
        let type_sql = match b {
            Backend::DataFusion | Backend::Delta => {
                "select distinct arrow_typeof(amount) as t from {schema}.inc_schema"
            }
            Backend::Postgres(_) => "select distinct pg_typeof(amount)::text as t from {schema}.inc_schema",
        };
        for (policy, code, text) in
            [("fail", 1, false), ("sync_all_columns", 0, true), ("ignore", 0, false), ("append_new_columns", 0, false)]
        {
            let (_tmp, dir) = b.project("incremental");
            ok(&dir, &["build", "-s", "events", "inc_schema", "--full-refresh"]);
            let before_type = b.rows(&dir, type_sql);
            let query = "select id, amount from {schema}.inc_schema order by id";
            let before = b.rows(&dir, query);
            std::fs::write(dir.join("seeds/events.csv"), CHANGED).unwrap();
            let vars = format!("{{on_schema_change: {policy}, amount_as_text: true}}");
            let run = etlm(&dir, &["build", "-s", "events", "inc_schema", "--vars", &vars]);
            assert_eq!(run.code, code, "{policy}: {}\n{}", run.stdout, run.stderr);
            let after_type = b.rows(&dir, type_sql);
            assert_eq!(after_type != before_type, text, "{policy}: {before_type:?} then {after_type:?}");
            if policy == "fail" {
                assert!(run.stdout.contains("retyped `amount ("), "{}", run.stdout);
                assert_eq!(b.rows(&dir, query), before, "fail: nothing changed");
            } else {
                let amounts: Vec<String> = b.rows(&dir, query).iter().map(|r| r["amount"].clone()).collect();
                assert_eq!(amounts, ["10", "25", "30", "40"], "{policy}: the new rows are merged");
            }
        }
    }

    pub fn a_failing_audit_publishes_nothing(b: &Backend) {
        let (_tmp, dir) = b.project("quality_wap");
        ok(&dir, &["build", "--exclude", "events"]);
        let query = "select id, name from {schema}.dim_customers order by id";
        let before = b.rows(&dir, query);
        assert_eq!(before.len(), 3);
        let run = etlm(&dir, &["run", "--exclude", "events", "--vars", "{duplicate: true}"]);
        assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("not published: `unique_dim_customers_id` failed"), "{}", run.stdout);
        assert!(run.stdout.contains("SKIP"), "the model downstream is skipped: {}", run.stdout);
        assert_eq!(b.rows(&dir, query), before, "the previous version stays");
        assert_eq!(
            b.rows(&dir, "select unique_field, n_records from {schema}_dbt_test__audit.unique_dim_customers_id"),
            table(&["unique_field", "n_records"], &[&["2", "2"]]),
            "the failing rows are stored"
        );
        assert_eq!(b.leftovers(), Vec::<Vec<String>>::new(), "the rejected staging is dropped");
        assert_eq!(b.leftover_folders(&dir), Vec::<String>::new(), "the rejected files are removed");
    }

    /// Audits answered by one folded query per relation give each test the result its
    /// own query gives: `etlm test` runs one query per test on the published seeds, then
    /// `build` audits the same rows staged again.
    pub fn folded_audits_match_one_query_per_test(b: &Backend) {
        let (_tmp, dir) = b.project("quality_kinds");
        ok(&dir, &["seed"]);
        let history = if b.schema() == "main" { "_etlm" } else { "etlm_meta" };
        let latest = format!(
            "select t.unique_id, t.status, t.failures, t.message from {history}.test_results t \
             join (select run_id from {history}.runs order by started_at desc limit 1) r on t.run_id = r.run_id \
             order by t.unique_id"
        );
        // A staged failure's rows are stored, which `etlm test` leaves alone: the
        // message's last line says where. Failing rows come in no set order, so the
        // sample's lines are compared sorted, and not at all where `limit` picks some.
        let results = |dir: &Path| -> Vec<Row> {
            let mut rows = b.rows(dir, &latest);
            for row in &mut rows {
                let message = row.get("message").cloned().unwrap_or_default();
                let mut lines: Vec<&str> = message.lines().filter(|l| !l.starts_with("stored in ")).collect();
                lines.sort_unstable();
                let limited = row["unique_id"].ends_with("_limited");
                row.insert("message".into(), if limited { String::new() } else { lines.join("\n") });
            }
            rows
        };
        assert_eq!(etlm(&dir, &["test"]).code, 1, "error-severity tests fail");
        let mut one_by_one = results(&dir);
        assert_eq!(one_by_one.len(), 22, "{one_by_one:?}");
        let build = etlm(&dir, &["build"]);
        assert_eq!(build.code, 1, "{}\n{}", build.stdout, build.stderr);
        // The failing audits keep `people` unpublished, so the tests that read it with
        // another relation are skipped; every audit has the result of its own query.
        let (skipped, audited): (Vec<Row>, Vec<Row>) =
            results(&dir).into_iter().partition(|r| r["status"] == "skipped");
        let skipped: Vec<&str> = skipped.iter().map(|r| r["unique_id"].as_str()).collect();
        let not_audits = ["test.quality_kinds.people_are_adults_or_unknown", "test.quality_kinds.relationships_fail"];
        assert_eq!(skipped, not_audits);
        one_by_one.retain(|r| !not_audits.contains(&r["unique_id"].as_str()));
        assert_eq!(audited, one_by_one);
        let run_results: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("target/run_results.json")).unwrap()).unwrap();
        let mut folded: Vec<&str> = run_results["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["folded"] == true)
            .map(|r| r["unique_id"].as_str().unwrap().rsplit('.').next().unwrap())
            .collect();
        folded.sort_unstable();
        assert_eq!(
            folded,
            [
                "accepted_range_fail",
                "accepted_range_pass",
                "accepted_range_warn",
                "accepted_values_pass",
                "custom_generic_fail",
                "expression_fail",
                "expression_pass",
                "not_null_fail",
                "not_null_pass",
                "row_count_fail",
                "row_count_pass",
                "unique_pass",
            ],
            "row filters (a project's own test too) and row counts are read off the fold; a value list or \
             uniqueness that fails is counted by its own query; relationships, combinations and `where` run alone"
        );
    }

    pub fn cross_database_macros(b: &Backend) {
        let (_tmp, dir) = b.project("cross_database");
        ok(&dir, &["build"]);
        let sql = "select cast(ordered_on as varchar) as ordered_on, days, weeks, months, hours, \
                   cast(plus_three as varchar) as plus_three, cast(month_end as varchar) as month_end, cast(quarter_end as varchar) as quarter_end, \
                   cast(next_quarter as varchar) as next_quarter, key, old_key, \
                   old_key_args, shout, second_part, b_at, twelve from {schema}.dates_and_keys";
        let columns = [
            "ordered_on",
            "days",
            "weeks",
            "months",
            "hours",
            "plus_three",
            "month_end",
            "quarter_end",
            "next_quarter",
            "key",
            "old_key",
            "old_key_args",
            "shout",
            "second_part",
            "b_at",
            "twelve",
        ];
        let key = "f48d5a037862ebdbefea3982529aa45c";
        // dbt_utils before 1.0: md5('a-b' || '-' || '').
        let old = "a06d1c92fa0f7d94b9865125de819d0c";
        let expected: &[&str] = &[
            "2024-01-05",
            "64",
            "9",
            "2",
            "106",
            "2024-01-04",
            "2024-01-31",
            "2024-03-31",
            "2024-04-01",
            key,
            old,
            old,
            "a-b!",
            "b",
            "3",
            "12",
        ];
        assert_eq!(b.rows(&dir, sql), table(&columns, &[expected]));
        let spines = "select part, cast(period_start as varchar) as period_start from {schema}.spines order by 1, 2";
        let expected: &[&[&str]] = &[
            &["day", "2024-01-30"],
            &["day", "2024-01-31"],
            &["day", "2024-02-01"],
            &["month", "2024-01-15"],
            &["month", "2024-02-15"],
        ];
        assert_eq!(b.rows(&dir, spines), table(&["part", "period_start"], expected), "end excluded, as dbt's");
        let idioms = "select open_end, ordered, rounds_equal from {schema}.postgres_idioms";
        assert_eq!(
            b.rows(&dir, idioms),
            table(&["open_end", "ordered", "rounds_equal"], &[&["2099-01-01", "true", "true"]]),
            "a text literal in coalesce is a date; a rounded decimal equals an integer"
        );
        assert_eq!(
            b.rows(&dir, "select n, nulls_equal, one_is_two, depth, blank_int from {schema}.arrays"),
            table(&["n", "nulls_equal", "one_is_two", "depth", "blank_int"], &[&["4", "yes", "no", "-1", "0"]]),
            "array_construct, array_append, array_concat, cast and equals; a var rendered when read; Jinja2's int"
        );
    }

    pub fn source_freshness(b: &Backend) {
        let (_tmp, dir) = b.project("conformance");
        ok(&dir, &["seed"]);
        let sources = format!(
            "version: 2\nsources:\n  - name: loaded\n    schema: {}\n    loaded_at_field: cast(order_date as timestamp)\n\
             \x20   freshness:\n      warn_after: {{count: 1, period: day}}\n    tables:\n      - name: orders\n\
             \x20     - name: customers\n        loaded_at_field: \"cast('2099-01-01' as timestamp)\"\n\
             \x20       freshness:\n          error_after: {{count: 1, period: day}}\n",
            b.schema()
        );
        std::fs::write(dir.join("models/sources.yml"), sources).unwrap();
        let human = ok(&dir, &["source", "freshness"]);
        assert!(human.contains("WARN   source "), "orders are from 2024: {human}");
        let run = etlm(&dir, &["source", "freshness", "--format", "json"]);
        let statuses: Vec<(String, String)> = run
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| (v["unique_id"].as_str().unwrap().to_string(), v["status"].as_str().unwrap().to_string()))
            .collect();
        let expected = [("customers", "pass"), ("orders", "warn")]
            .map(|(t, s)| (format!("source.conformance.loaded.{t}"), s.to_string()));
        assert_eq!(statuses, expected);
        assert!(dir.join("target/sources.json").is_file());
        std::fs::write(
            dir.join("models/sources.yml"),
            std::fs::read_to_string(dir.join("models/sources.yml")).unwrap().replace("warn_after", "error_after"),
        )
        .unwrap();
        let stale = etlm(&dir, &["source", "freshness", "-s", "source:loaded.orders"]);
        assert_eq!(stale.code, 1, "past error_after fails: {}\n{}", stale.stdout, stale.stderr);
    }

    pub fn a_backfill_replaces_its_window(b: &Backend) {
        let (_tmp, dir) = b.project("backfill");
        ok(&dir, &["seed"]);
        ok(&dir, &["run", "-s", "all_events"]);
        let days = |range: std::ops::RangeInclusive<i64>| -> Vec<Row> {
            let rows: Vec<[String; 3]> =
                range.map(|d| [format!("2024-01-{d:02}"), "2".to_string(), (2 * d).to_string()]).collect();
            let refs: Vec<Vec<&str>> = rows.iter().map(|r| r.iter().map(String::as_str).collect()).collect();
            let refs: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
            table(&["dt", "events", "amount"], &refs)
        };
        let daily = |model: &str| {
            b.rows(
                &dir,
                &format!("select cast(dt as varchar) as dt, events, amount from {{schema}}.{model} order by dt"),
            )
        };
        ok(&dir, &["backfill", "--start", "2024-01-01", "--end", "2024-01-10"]);
        assert_eq!(daily("daily"), days(1..=10), "the ref to `events` is filtered to each batch");
        assert_eq!(daily("daily_explicit"), days(1..=10), "the window variables filter the view");
        let intervals = ok(&dir, &["intervals", "-s", "daily"]);
        assert!(intervals.contains("done:    2024-01-01 00:00:00..2024-01-10 00:00:00 (10 periods)"), "{intervals}");
        ok(&dir, &["backfill", "--start", "2024-01-03", "--end", "2024-01-03"]);
        assert_eq!(daily("daily"), days(1..=10), "a one-day backfill replaces that day only");
        assert_eq!(b.leftovers(), Vec::<Vec<String>>::new());
    }

    /// A project that seeds its own raw data and reads it as a source: one `build` on an
    /// empty warehouse loads the seed before the source's tests and readers run.
    pub fn a_source_over_a_seed_waits_for_it(b: &Backend) {
        let (_tmp, dir) = b.project("conformance");
        let sources = format!(
            "version: 2\nsources:\n  - name: raw\n    schema: {}\n    tables:\n      - name: orders\n\
             \x20       columns:\n          - name: order_id\n            data_tests: [unique, not_null]\n",
            b.schema()
        );
        std::fs::write(dir.join("models/raw.yml"), sources).unwrap();
        std::fs::write(dir.join("models/from_raw.sql"), "select count(*) as n from {{ source('raw', 'orders') }}\n")
            .unwrap();
        let out = ok(&dir, &["build", "--threads", "4"]);
        assert!(out.contains("PASS   test source_unique_raw_orders_order_id"), "{out}");
        assert_eq!(b.rows(&dir, "select n from {schema}.from_raw"), table(&["n"], &[&["5"]]));
    }

    /// A project with an installed package: namespaced macros, dispatch along the
    /// project's search order, a root macro replacing a package's, the package's model
    /// configured and its vars set from the root, a package generic test, and dbt's alias
    /// naming replaced by the package through the `dbt` namespace.
    pub fn packages(b: &Backend) {
        let (_tmp, dir) = b.project("packages");
        ok(&dir, &["deps"]);
        let out = ok(&dir, &["build"]);
        assert!(
            out.contains(
                "2 nodes query relations while compiling that are not built yet: building what they read first"
            ),
            "the seed `order_ids_wide` queries and the model a test queries are built first: {out}"
        );
        assert!(out.contains("PASS   test toolkit_at_most_observed_max_orders_priced_price"), "{out}");
        assert!(out.contains("PASS   test toolkit_is_positive_orders_priced_price"), "{out}");
        assert!(
            out.contains("PASS   test toolkit_rows_at_most_orders_priced_5"),
            "the macro's fail_calc counts: {out}"
        );
        assert!(!out.contains("disabled_check"), "a disabled singular test does not run: {out}");
        assert!(out.contains("PASS   test is_positive_orders_priced_id"), "{out}");
        assert!(out.contains(&format!("table {}.toolkit_rates", b.schema())), "the root's config wins: {out}");
        assert_eq!(
            b.rows(&dir, "select id, price, tag from {schema}.orders_priced order by id"),
            table(&["id", "price", "tag"], &[&["1", "100", "tk-1"], &["2", "250", "tk-2"], &["3", "70", "tk-3"]]),
            "the root's `default__to_money` and `helper` win over the package's"
        );
        let rates = table(&["rate", "currency"], &[&["3", "EUR"]]);
        assert_eq!(
            b.rows(&dir, "select rate, currency from {schema}.toolkit_rates"),
            rates,
            "package vars, root's on top"
        );
        assert_eq!(b.rows(&dir, "select rate, currency from {schema}.tk_rates"), rates, "the package names aliases");
        let compiled = std::fs::read_to_string(dir.join("target/compiled/models/orders_narrow.sql")).unwrap();
        assert!(
            compiled.starts_with("select \"id\", \"price\"\nfrom"),
            "columns come from compile-time lineage: {compiled}"
        );
        assert_eq!(
            b.rows(&dir, "select * from {schema}.orders_narrow order by id"),
            table(&["id", "price"], &[&["1", "100"], &["2", "250"], &["3", "70"]]),
        );
        assert_eq!(
            b.rows(&dir, "select lo, hi, n from {schema}.queried"),
            table(&["lo", "hi", "n"], &[&["2", "5", "7"]]),
            "`statement`, `load_result` and `run_query` ran on the target while compiling"
        );
        assert_eq!(b.rows(&dir, "select g from {schema}.greeting"), table(&["g"], &[&["hi !"]]), "a missing argument");
        let wide = table(&["id_1", "id_2", "id_3"], &[&["1", "2", "3"]]);
        assert_eq!(b.rows(&dir, "select * from {schema}.order_ids_wide"), wide);
        let again = ok(&dir, &["build"]);
        assert!(!again.contains("building what they read first"), "the seed exists now: {again}");
        assert_eq!(b.rows(&dir, "select * from {schema}.order_ids_wide"), wide);
    }
}

/// The suite's tests for one engine, in a module named after it.
macro_rules! engine_suite {
    ($engine:ident) => {
        mod $engine {
            use super::{Backend, cases};

            #[test]
            fn seeds_views_tables_and_ephemeral_models() {
                if let Some(b) = Backend::$engine("basic") {
                    cases::seeds_views_tables_and_ephemeral(&b);
                }
            }

            #[test]
            fn each_incremental_strategy_run_twice() {
                if let Some(b) = Backend::$engine("incremental") {
                    cases::each_incremental_strategy_twice(&b);
                }
            }

            #[test]
            fn on_schema_change_policies() {
                if let Some(b) = Backend::$engine("schema") {
                    cases::on_schema_change(&b);
                }
            }

            #[test]
            fn on_schema_change_of_a_type_only() {
                if let Some(b) = Backend::$engine("retype") {
                    cases::on_schema_change_of_a_type_only(&b);
                }
            }

            #[test]
            fn a_failing_audit_publishes_nothing() {
                if let Some(b) = Backend::$engine("wap") {
                    cases::a_failing_audit_publishes_nothing(&b);
                }
            }

            #[test]
            fn a_source_over_a_seed_waits_for_it() {
                if let Some(b) = Backend::$engine("source_seed") {
                    cases::a_source_over_a_seed_waits_for_it(&b);
                }
            }

            #[test]
            fn folded_audits_match_one_query_per_test() {
                if let Some(b) = Backend::$engine("folded_audits") {
                    cases::folded_audits_match_one_query_per_test(&b);
                }
            }

            #[test]
            fn cross_database_macros() {
                if let Some(b) = Backend::$engine("cross_db") {
                    cases::cross_database_macros(&b);
                }
            }

            #[test]
            fn source_freshness() {
                if let Some(b) = Backend::$engine("freshness") {
                    cases::source_freshness(&b);
                }
            }

            #[test]
            fn packages() {
                if let Some(b) = Backend::$engine("packages") {
                    cases::packages(&b);
                }
            }

            #[test]
            fn a_backfill_replaces_its_window() {
                if let Some(b) = Backend::$engine("backfill") {
                    cases::a_backfill_replaces_its_window(&b);
                }
            }
        }
    };
}

engine_suite!(datafusion);
engine_suite!(postgres);
#[cfg(feature = "delta")]
engine_suite!(delta);
