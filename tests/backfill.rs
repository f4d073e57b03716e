//! Time-windowed models and `etlm backfill`, through the binary: one batch per day with
//! upstream refs filtered to the window, idempotent re-runs that leave other days' files
//! alone, empty days emptied, interval state, and a crash in the middle of a backfill.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::{Value, json};
use support::{copy_project, etlm, rows};

fn ok(dir: &Path, args: &[&str]) -> String {
    let run = etlm(dir, args);
    assert_eq!(run.code, 0, "{args:?}\n{}\n{}", run.stdout, run.stderr);
    run.stdout
}

/// Seeds and the non-windowed view, ready for backfills.
fn prepared() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, dir) = copy_project("backfill");
    ok(&dir, &["seed"]);
    ok(&dir, &["run", "-s", "all_events"]);
    (tmp, dir)
}

fn daily(dir: &Path, model: &str) -> Vec<Value> {
    rows(dir, &format!("select cast(dt as varchar) as dt, events, amount from main.{model} order by dt"))
}

fn expected_days(days: std::ops::RangeInclusive<i64>) -> Vec<Value> {
    days.map(|d| json!({"dt": format!("2024-01-{d:02}"), "events": 2, "amount": 2 * d})).collect()
}

fn inode(dir: &Path, model: &str, day: &str) -> u64 {
    let partition = dir.join(format!("warehouse/main/{model}/dt={day}"));
    let file = std::fs::read_dir(partition).unwrap().next().unwrap().unwrap().path();
    std::fs::metadata(file).unwrap().ino()
}

#[test]
fn a_backfill_runs_one_batch_per_day_with_upstream_filtered_to_the_window() {
    let (_tmp, dir) = prepared();
    let out = ok(&dir, &["backfill", "--start", "2024-01-01", "--end", "2024-01-10"]);
    assert!(out.contains("OK     incremental main.daily  10 rows"), "{out}");
    assert_eq!(daily(&dir, "daily"), expected_days(1..=10));
    assert_eq!(daily(&dir, "daily_explicit"), expected_days(1..=10));
    let batches = rows(
        &dir,
        "select batch, cast(dt as varchar) as dt from main.daily_explicit where batch <> cast(dt as varchar)",
    );
    assert!(batches.is_empty(), "`ds` is each batch's date: {batches:?}");
    let intervals = ok(&dir, &["intervals", "-s", "daily"]);
    assert!(intervals.contains("done:    2024-01-01 00:00:00..2024-01-10 00:00:00 (10 periods)"), "{intervals}");
}

#[test]
fn backfilling_again_gives_the_same_table_and_a_one_day_backfill_touches_only_that_day() {
    let (_tmp, dir) = prepared();
    ok(&dir, &["backfill", "--start", "2024-01-01", "--end", "2024-01-10"]);
    let first = daily(&dir, "daily");
    ok(&dir, &["backfill", "--start", "2024-01-01", "--end", "2024-01-10"]);
    assert_eq!(daily(&dir, "daily"), first);
    let others: Vec<u64> = ["2024-01-04", "2024-01-06"].iter().map(|d| inode(&dir, "daily", d)).collect();
    let day = inode(&dir, "daily", "2024-01-05");
    ok(&dir, &["backfill", "--start", "2024-01-05", "--end", "2024-01-05"]);
    assert_eq!(daily(&dir, "daily"), first);
    let after: Vec<u64> = ["2024-01-04", "2024-01-06"].iter().map(|d| inode(&dir, "daily", d)).collect();
    assert_eq!(after, others, "other days keep their files");
    assert_ne!(inode(&dir, "daily", "2024-01-05"), day, "the day itself is rewritten");
}

#[test]
fn a_day_whose_result_is_empty_becomes_empty() {
    let (_tmp, dir) = prepared();
    ok(&dir, &["backfill", "--start", "2024-01-01", "--end", "2024-01-10"]);
    let csv = std::fs::read_to_string(dir.join("seeds/events.csv")).unwrap();
    let kept: Vec<&str> = csv.lines().filter(|l| !l.contains("2024-01-03")).collect();
    std::fs::write(dir.join("seeds/events.csv"), kept.join("\n") + "\n").unwrap();
    ok(&dir, &["seed"]);
    ok(&dir, &["backfill", "--start", "2024-01-03", "--end", "2024-01-03"]);
    let mut expected = expected_days(1..=10);
    expected.remove(2);
    assert_eq!(daily(&dir, "daily"), expected);
}

#[test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs --features failpoints")]
fn a_backfill_killed_midway_then_rerun_with_missing_equals_a_clean_backfill() {
    let (_tmp, clean) = prepared();
    ok(&clean, &["backfill", "--start", "2024-01-01", "--end", "2024-01-10", "-s", "daily"]);
    let expected = daily(&clean, "daily");
    for point in ["after-stage", "before-publish", "after-publish", "before-state-write"] {
        let (_tmp, dir) = prepared();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_etlm"))
            .args(["backfill", "--start", "2024-01-01", "--end", "2024-01-10", "-s", "daily", "--project-dir"])
            .arg(&dir)
            .env("ETLM_FAILPOINT", format!("{point}:daily:4"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{point}: the run must die at the failpoint");
        // Every day recorded as done is published with its final rows.
        let done = rows(
            &dir,
            "select distinct cast(cast(period_start as date) as varchar) as dt from _etlm.intervals order by dt",
        );
        let published = daily(&dir, "daily");
        for day in &done {
            let row = published.iter().find(|r| r["dt"] == day["dt"]);
            assert!(row.is_some() && expected.contains(row.unwrap()), "{point}: {day} is claimed but not published");
        }
        assert!(done.len() <= 4, "{point}: {done:?}");
        ok(&dir, &["backfill", "--start", "2024-01-01", "--end", "2024-01-10", "-s", "daily", "--missing"]);
        assert_eq!(daily(&dir, "daily"), expected, "{point}");
        let intervals = ok(&dir, &["intervals", "-s", "daily"]);
        assert!(intervals.contains("(10 periods)"), "{point}: {intervals}");
    }
}

#[test]
fn bad_backfill_arguments_exit_2() {
    let (_tmp, dir) = copy_project("backfill");
    let run = etlm(&dir, &["backfill", "--start", "2024-13-01", "--end", "2024-01-10"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("`--start 2024-13-01` is not a date"), "{}", run.stderr);
    let run = etlm(&dir, &["backfill", "--start", "2024-01-10", "--end", "2024-01-01"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("`--end` is before `--start`"), "{}", run.stderr);
}

#[test]
fn full_refresh_starts_a_windowed_model_anew() {
    let (_tmp, dir) = prepared();
    ok(&dir, &["backfill", "--start", "2024-01-01", "--end", "2024-01-10", "-s", "daily"]);
    ok(&dir, &["backfill", "--start", "2024-01-01", "--end", "2024-01-05", "-s", "daily"]);
    assert_eq!(daily(&dir, "daily"), expected_days(1..=10), "a backfill replaces only its windows");
    ok(&dir, &["backfill", "--start", "2024-01-01", "--end", "2024-01-05", "-s", "daily", "--full-refresh"]);
    assert_eq!(daily(&dir, "daily"), expected_days(1..=5), "a full refresh starts the table anew");
    let intervals = ok(&dir, &["intervals", "-s", "daily"]);
    assert!(intervals.contains("done:    2024-01-01 00:00:00..2024-01-05 00:00:00 (5 periods)"), "{intervals}");
    assert!(intervals.contains("missing: 2024-01-06 00:00:00.."), "the refresh forgot the old periods: {intervals}");
}

#[test]
fn a_batch_that_returns_rows_outside_its_window_is_an_error_and_writes_nothing() {
    let (_tmp, dir) = prepared();
    ok(&dir, &["backfill", "--start", "2024-01-01", "--end", "2024-01-03", "-s", "daily"]);
    let before = daily(&dir, "daily");
    // Reads the unfiltered view: every batch would return every day.
    std::fs::write(
        dir.join("models/daily.sql"),
        "{{ config(materialized='incremental', event_time='dt', batch_size='day', begin='2024-01-01', \
         partition_by='dt') }}\nselect dt, count(*) as events, sum(amount) as amount from {{ ref('all_events') }} group by dt\n",
    )
    .unwrap();
    let run = etlm(&dir, &["backfill", "--start", "2024-01-02", "--end", "2024-01-02", "-s", "daily"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("batch 2024-01-02: the model returned 9 rows outside the batch's window [2024-01-02 00:00:00, 2024-01-03 00:00:00) of `dt`"),
        "{}",
        run.stdout
    );
    assert_eq!(daily(&dir, "daily"), before, "nothing of the batch is written");
}

#[test]
fn extreme_ranges_are_diagnostics_not_panics_or_endless_batch_lists() {
    let (_tmp, dir) = prepared();
    // A year no date type here holds: a bad argument (exit 2), never an overflow.
    let far = etlm(&dir, &["backfill", "--start", "+12345-01-01", "--end", "+12345-01-02", "-s", "daily"]);
    assert_eq!(far.code, 2, "{}\n{}", far.stdout, far.stderr);
    assert!(far.stderr.contains("error[invalid-argument]") && !far.stderr.contains("panicked"), "{}", far.stderr);
    // Day batches over eight millennia: the model fails with the count, nothing runs.
    let huge = etlm(&dir, &["backfill", "--start", "0001-01-01", "--end", "9999-12-31", "-s", "daily"]);
    assert_eq!(huge.code, 1, "{}\n{}", huge.stdout, huge.stderr);
    assert!(huge.stdout.contains("batches of a day, more than the 100000 one run processes"), "{}", huge.stdout);
    assert!(!huge.stderr.contains("error[internal]"), "{}", huge.stderr);
}
