//! Snapshots on both engines (one suite, expanded per engine as in `conformance.rs`): the
//! `snapshots` fixture's seed changes over five runs (an update and a delete, the deleted
//! row back, a new column, then no change) and every snapshot of it (timestamp and check
//! strategies, each `hard_deletes` mode, a composite key) must hold the same history on
//! the embedded engine and on Postgres. Times a snapshot takes from the clock read as
//! `now`; times from the data are compared as dates. Also: a repeated key is an error
//! that publishes nothing, models read snapshots in `build`, a bad config is a
//! diagnostic, and a crash at each failpoint of a snapshot's publish keeps the history.

mod support;

use std::path::Path;

use support::engines::{Backend, Row, table};
use support::{etlm, etlm_with};

fn ok(dir: &Path, args: &[&str]) -> String {
    let run = etlm(dir, args);
    assert_eq!(run.code, 0, "{args:?}\n{}\n{}", run.stdout, run.stderr);
    run.stdout
}

/// The seed as each run sees it.
const RUNS: [&str; 4] = [
    "id,name,region,updated_at\n1,Ada,eu,2024-01-01 00:00:00\n2,Bob,us,2024-01-01 00:00:00\n3,Cy,eu,2024-01-01 00:00:00\n",
    // Ada is renamed, Bob deleted.
    "id,name,region,updated_at\n1,Ada L,eu,2024-01-02 00:00:00\n3,Cy,eu,2024-01-01 00:00:00\n",
    // Bob is back.
    "id,name,region,updated_at\n1,Ada L,eu,2024-01-02 00:00:00\n2,Bob,us,2024-01-03 00:00:00\n3,Cy,eu,2024-01-01 00:00:00\n",
    // A new column.
    "id,name,region,updated_at,tier\n1,Ada L,eu,2024-01-02 00:00:00,gold\n2,Bob,us,2024-01-03 00:00:00,silver\n3,Cy,eu,2024-01-01 00:00:00,gold\n",
];

const SNAPSHOTS: [&str; 9] = [
    "ts_ignore",
    "ts_invalidate",
    "ts_new_record",
    "check_all",
    "check_name",
    "composite",
    "yaml_people",
    "expr_key",
    "check_with_time",
];

/// Seeds `csv` and takes every snapshot.
fn snapshot_with(dir: &Path, csv: &str) {
    std::fs::write(dir.join("seeds/people.csv"), csv).expect("write seed");
    ok(dir, &["seed"]);
    ok(dir, &["snapshot"]);
}

/// A time as the tests compare it: its date, `now` when the snapshot's clock gave it
/// (after 2025), `current` when NULL.
fn time(column: &str) -> String {
    format!(
        "case when {column} is null then 'current' when {column} > cast('2025-01-01' as timestamp) then 'now' \
         else cast(cast({column} as date) as varchar) end"
    )
}

/// A snapshot's history, oldest version of each key first.
fn history(b: &Backend, dir: &Path, snapshot: &str, extra: &[&str]) -> Vec<Row> {
    // `coalesce`: a NULL would leave the column out of `show`'s JSON row.
    let extra: String = extra.iter().map(|c| format!(", coalesce(cast({c} as varchar), 'NULL') as {c}")).collect();
    let sql = format!(
        "select id, name, {} as valid_from, {} as valid_to{extra} from {{schema}}.{snapshot} order by id, dbt_valid_from",
        time("dbt_valid_from"),
        time("dbt_valid_to")
    );
    b.rows(dir, &sql)
}

mod cases {
    use super::*;

    pub fn four_changes_then_none(b: &Backend) {
        let (_tmp, dir) = b.project("snapshots");
        for csv in RUNS {
            snapshot_with(&dir, csv);
        }
        let before: Vec<Vec<Row>> = SNAPSHOTS
            .iter()
            .map(|s| b.rows(&dir, &format!("select * from {{schema}}.{s} order by 1, 2, 3, 4, 5, 6")))
            .collect();
        snapshot_with(&dir, RUNS[3]);
        for (s, rows) in SNAPSHOTS.iter().zip(&before) {
            let after = b.rows(&dir, &format!("select * from {{schema}}.{s} order by 1, 2, 3, 4, 5, 6"));
            assert_eq!(&after, rows, "a run with no change changes nothing in `{s}`");
        }
        // A sixth run has history enough for a row-count check; a snapshot's count is the
        // versions it changed, not its volume, so none is made.
        let sixth = ok(&dir, &["snapshot"]);
        assert!(!sixth.contains("anomaly"), "{sixth}");

        let cols = ["id", "name", "valid_from", "valid_to", "tier"];
        assert_eq!(
            history(b, &dir, "ts_ignore", &["tier", "dbt_scd_id"]),
            table(
                &["id", "name", "valid_from", "valid_to", "tier", "dbt_scd_id"],
                &[
                    &["1", "Ada", "2024-01-01", "2024-01-02", "NULL", "8bd6037542377309505ab720e545f24e"],
                    &["1", "Ada L", "2024-01-02", "current", "NULL", "37079bbc2903f67ad53b23fcc5e5622c"],
                    &["2", "Bob", "2024-01-01", "2024-01-03", "NULL", "f8e4dcba7004839b9c5b44a77923cd0a"],
                    &["2", "Bob", "2024-01-03", "current", "NULL", "a8a7cb50efe6a794a561ef404391fbff"],
                    &["3", "Cy", "2024-01-01", "current", "NULL", "36d97e6f161bf778b28647771ac013ae"],
                ]
            ),
            "timestamp, ignore: a deleted row stays current; back with a later time, it is a new version; \
             the new column is added, NULL in versions taken before it (no row changed)"
        );
        let invalidated = table(
            &cols,
            &[
                &["1", "Ada", "2024-01-01", "2024-01-02", "NULL"],
                &["1", "Ada L", "2024-01-02", "current", "NULL"],
                &["2", "Bob", "2024-01-01", "now", "NULL"],
                &["2", "Bob", "2024-01-03", "current", "NULL"],
                &["3", "Cy", "2024-01-01", "current", "NULL"],
            ],
        );
        assert_eq!(history(b, &dir, "ts_invalidate", &["tier"]), invalidated, "timestamp, invalidate");
        assert_eq!(history(b, &dir, "composite", &["tier"]), invalidated, "a composite key");
        assert_eq!(
            history(b, &dir, "check_with_time", &["tier"]),
            invalidated,
            "check name and region, versions timed by `updated_at`"
        );
        assert_eq!(
            b.rows(
                &dir,
                "select id, name, cast(cast(valid_from as date) as varchar) as valid_from,                  case when valid_to = cast('2099-12-31' as timestamp) then 'current'                  when valid_to > cast('2025-01-01' as timestamp) then 'now'                  else cast(cast(valid_to as date) as varchar) end as valid_to,                  coalesce(cast(tier as varchar), 'NULL') as tier                  from {schema}.yaml_people order by id, valid_from"
            ),
            invalidated,
            "defined in YAML, with `dbt_valid_to_current` and its own meta column names"
        );
        assert_eq!(
            history(b, &dir, "ts_new_record", &["dbt_is_deleted"]),
            table(
                &["id", "name", "valid_from", "valid_to", "dbt_is_deleted"],
                &[
                    &["1", "Ada", "2024-01-01", "2024-01-02", "False"],
                    &["1", "Ada L", "2024-01-02", "current", "False"],
                    &["2", "Bob", "2024-01-01", "now", "False"],
                    &["2", "Bob", "2024-01-03", "current", "False"],
                    &["2", "Bob", "now", "2024-01-03", "True"],
                    &["3", "Cy", "2024-01-01", "current", "False"],
                ]
            ),
            "timestamp, new_record: a deleted row gets a deleted version, closed when it is back"
        );
        assert_eq!(
            history(b, &dir, "expr_key", &["dbt_is_deleted"]),
            history(b, &dir, "ts_new_record", &["dbt_is_deleted"]),
            "a key that is an expression"
        );
        assert_eq!(
            history(b, &dir, "check_all", &["tier"]),
            table(
                &cols,
                &[
                    &["1", "Ada", "now", "now", "NULL"],
                    &["1", "Ada L", "now", "now", "NULL"],
                    &["1", "Ada L", "now", "current", "gold"],
                    &["2", "Bob", "now", "now", "NULL"],
                    &["2", "Bob", "now", "now", "NULL"],
                    &["2", "Bob", "now", "current", "silver"],
                    &["3", "Cy", "now", "now", "NULL"],
                    &["3", "Cy", "now", "current", "gold"],
                ]
            ),
            "check all, invalidate: a new column changes every current row, as in dbt"
        );
        assert_eq!(
            history(b, &dir, "check_name", &["dbt_is_deleted", "tier"]),
            table(
                &["id", "name", "valid_from", "valid_to", "dbt_is_deleted", "tier"],
                &[
                    &["1", "Ada", "now", "now", "False", "NULL"],
                    &["1", "Ada L", "now", "current", "False", "NULL"],
                    &["2", "Bob", "now", "now", "False", "NULL"],
                    &["2", "Bob", "now", "now", "True", "NULL"],
                    &["2", "Bob", "now", "current", "False", "NULL"],
                    &["3", "Cy", "now", "current", "False", "NULL"],
                ]
            ),
            "check name, new_record: only `name` counts"
        );
        // A closed version ends when the next one starts (the snapshot time of that run).
        let gaps = b.rows(
            &dir,
            "select count(*) as n from {schema}.check_all a join {schema}.check_all b \
             on a.id = b.id and a.dbt_valid_to = b.dbt_valid_from",
        );
        assert_eq!(gaps, table(&["n"], &[&["4"]]), "every closed version but the deleted one meets its successor");
        assert_eq!(b.leftovers(), Vec::<Vec<String>>::new());
    }

    pub fn a_repeated_key_is_an_error_and_publishes_nothing(b: &Backend) {
        let (_tmp, dir) = b.project("snapshots");
        std::fs::write(
            dir.join("snapshots/by_region.sql"),
            "{% snapshot by_region %}\n{{ config(strategy='check', check_cols='all', unique_key='region') }}\n\
             select region, name from {{ ref('people') }}\n{% endsnapshot %}\n",
        )
        .expect("write snapshot");
        ok(&dir, &["seed"]);
        let run = etlm(&dir, &["snapshot"]);
        assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("`unique_key` (region) is not unique in the snapshot's query, e.g. (eu)"),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains("OK     snapshot"), "the other snapshots are taken: {}", run.stdout);
        let missing = etlm(&dir, &["show", &format!("select * from {}.by_region", b.schema())]);
        assert_ne!(missing.code, 0, "no table was published: {}", missing.stdout);
        assert_eq!(b.leftovers(), Vec::<Vec<String>>::new());
    }

    pub fn build_takes_snapshots_before_the_models_that_read_them(b: &Backend) {
        let (_tmp, dir) = b.project("snapshots");
        let out = ok(&dir, &["build"]);
        let at = |what: &str| out.find(what).unwrap_or_else(|| panic!("`{what}` in {out}"));
        assert!(at("seed ") < at("snapshot ") && at("snapshot ") < at("view "), "{out}");
        assert_eq!(
            b.rows(&dir, "select id, name from {schema}.current_people order by id"),
            table(&["id", "name"], &[&["1", "Ada"], &["2", "Bob"], &["3", "Cy"]])
        );
        let listed = ok(&dir, &["ls", "-s", "resource_type:snapshot", "--resource-type", "snapshot"]);
        assert_eq!(listed.lines().count(), SNAPSHOTS.len(), "{listed}");
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("target/manifest.json")).expect("manifest"))
                .expect("manifest JSON");
        let node = &manifest["nodes"]["snapshot.snapshots.ts_invalidate"];
        assert_eq!(node["resource_type"], "snapshot", "{node}");
    }

    /// Kills the second snapshot run at each failpoint of `ts_invalidate`'s publish: the
    /// table holds the first run's history or the second's, and a re-run gives the second.
    /// Write, audit, publish: a test of the snapshot fails on the staged new history, so
    /// the old history stays; once the test passes again, the snapshot catches up.
    pub fn a_failing_test_keeps_the_old_history(b: &Backend) {
        let (_tmp, dir) = b.project("snapshots");
        std::fs::write(
            dir.join("snapshots/audit.yml"),
            "snapshots:
  - name: ts_invalidate
    columns:
      - name: name
        tests:
          - accepted_values:
              values: ['Ada', 'Bob', 'Cy']
",
        )
        .expect("write properties");
        snapshot_with(&dir, RUNS[0]);
        let old = history(b, &dir, "ts_invalidate", &[]);
        std::fs::write(dir.join("seeds/people.csv"), RUNS[1]).expect("write seed");
        ok(&dir, &["seed"]);
        let run = etlm(&dir, &["snapshot", "-s", "ts_invalidate"]);
        assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("FAIL   test accepted_values_ts_invalidate_name"), "{}", run.stdout);
        assert!(run.stdout.contains("not published"), "{}", run.stdout);
        assert_eq!(history(b, &dir, "ts_invalidate", &[]), old, "the previous history stays");
        std::fs::remove_file(dir.join("snapshots/audit.yml")).expect("remove properties");
        ok(&dir, &["snapshot", "-s", "ts_invalidate"]);
        assert_eq!(history(b, &dir, "ts_invalidate", &[]).len(), 4, "Ada renamed, Bob closed");
        assert_eq!(b.leftovers(), Vec::<Vec<String>>::new());
    }

    /// `backend` gives each run its own database (on Postgres; the embedded engine's
    /// warehouse is the project's own).
    pub fn a_crash_at_any_failpoint_keeps_the_history(backend: fn(&str) -> Option<Backend>) {
        let Some(b) = backend("snap_crash") else { return };
        let (_tmp, clean) = b.project("snapshots");
        snapshot_with(&clean, RUNS[0]);
        let old = history(&b, &clean, "ts_invalidate", &[]);
        snapshot_with(&clean, RUNS[1]);
        let new = history(&b, &clean, "ts_invalidate", &[]);
        assert_ne!(old, new);
        for point in ["after-stage", "before-publish", "after-publish"] {
            let b = backend("snap_crash").expect("the engine is there");
            let b = &b;
            let (_tmp, dir) = b.project("snapshots");
            snapshot_with(&dir, RUNS[0]);
            std::fs::write(dir.join("seeds/people.csv"), RUNS[1]).expect("write seed");
            ok(&dir, &["seed"]);
            let failpoint = format!("{point}:ts_invalidate");
            let run = etlm_with(&dir, &["snapshot", "--threads", "1"], &[("ETLM_FAILPOINT", &failpoint)]);
            assert_ne!(run.code, 0, "{point}: the run died\n{}", run.stdout);
            let seen = history(b, &dir, "ts_invalidate", &[]);
            assert!(seen == old || seen == new, "{point}: old or new history, got {seen:?}");
            if point != "after-publish" {
                assert_eq!(seen, old, "{point}: nothing published yet");
            }
            ok(&dir, &["snapshot", "--threads", "1"]);
            assert_eq!(history(b, &dir, "ts_invalidate", &[]), new, "{point}: the re-run gives the new history");
            assert_eq!(b.leftovers(), Vec::<Vec<String>>::new(), "{point}");
        }
    }
}

macro_rules! engine_suite {
    ($engine:ident) => {
        mod $engine {
            use super::*;

            #[test]
            fn four_changes_then_none() {
                if let Some(b) = Backend::$engine("snap_history") {
                    cases::four_changes_then_none(&b);
                }
            }

            #[test]
            fn a_repeated_key_is_an_error_and_publishes_nothing() {
                if let Some(b) = Backend::$engine("snap_dup") {
                    cases::a_repeated_key_is_an_error_and_publishes_nothing(&b);
                }
            }

            #[test]
            fn build_takes_snapshots_before_the_models_that_read_them() {
                if let Some(b) = Backend::$engine("snap_build") {
                    cases::build_takes_snapshots_before_the_models_that_read_them(&b);
                }
            }

            #[test]
            fn a_failing_test_keeps_the_old_history() {
                if let Some(b) = Backend::$engine("snap_wap") {
                    cases::a_failing_test_keeps_the_old_history(&b);
                }
            }

            #[test]
            #[cfg_attr(not(feature = "failpoints"), ignore = "needs --features failpoints")]
            fn a_crash_at_any_failpoint_keeps_the_history() {
                cases::a_crash_at_any_failpoint_keeps_the_history(Backend::$engine);
            }
        }
    };
}

engine_suite!(datafusion);
engine_suite!(postgres);

#[test]
fn an_invalid_snapshot_config_is_a_diagnostic_with_its_place() {
    let (_tmp, dir) = support::copy_project("snapshots");
    std::fs::write(
        dir.join("snapshots/bad.sql"),
        "{% snapshot bad %}\n{{ config(strategy='timestamp', updated_at='updated_at', hard_deletes='invalidated') }}\n\
         select * from {{ ref('people') }}\n{% endsnapshot %}\n",
    )
    .expect("write snapshot");
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("invalid value `invalidated` for config `hard_deletes`"), "{}", run.stderr);
    assert!(run.stderr.contains("snapshots/bad.sql:2:"), "{}", run.stderr);
    assert!(run.stderr.contains("did you mean `invalidate`?"), "{}", run.stderr);
    std::fs::write(dir.join("snapshots/bad.sql"), "{% snapshot bad %}\nselect 1 as id\n{% endsnapshot %}\n")
        .expect("write snapshot");
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("snapshot config `strategy` is missing"), "{}", run.stderr);
    assert!(run.stderr.contains("snapshots/bad.sql:1:1"), "{}", run.stderr);
}
