//! Incremental models on the embedded engine, through the binary: idempotence down to
//! the files, `--full-refresh` and `full_refresh: false`, bad keys, crashes. Each
//! strategy's rows and `on_schema_change` are in the conformance suite (every engine).

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::{Value, json};
use support::{copy_project, etlm, rows};

const CHANGED: &str =
    "id,dt,amount,status\n1,2024-01-01,10,new\n2,2024-01-01,25,paid\n3,2024-01-02,30,new\n4,2024-01-03,40,new\n";

fn table(dir: &Path, model: &str) -> Vec<Value> {
    rows(dir, &format!("select * from main.{model} order by 1, 2"))
}

fn build(dir: &Path, args: &[&str]) {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let run = etlm(dir, &all);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

/// Builds, changes the seed, builds again with `since` = 2024-01-02.
fn built_twice() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, dir) = copy_project("incremental");
    build(&dir, &[]);
    std::fs::write(dir.join("seeds/events.csv"), CHANGED).unwrap();
    build(&dir, &["--vars", "{since: 2024-01-02}"]);
    (tmp, dir)
}

#[test]
fn running_again_on_the_same_input_gives_the_same_tables() {
    let (_tmp, dir) = built_twice();
    let models = ["inc_append", "inc_merge", "inc_merge_update", "inc_delete_insert", "inc_overwrite"];
    let before: Vec<Vec<Value>> = models.iter().map(|m| table(&dir, m)).collect();
    let partition = dir.join("warehouse/main/inc_overwrite/dt=2024-01-01");
    let inode = |p: &Path| {
        let file = std::fs::read_dir(p).unwrap().next().unwrap().unwrap().path();
        std::fs::metadata(file).unwrap().ino()
    };
    let untouched = inode(&partition);
    build(&dir, &["--vars", "{since: 2024-01-02}"]);
    let after: Vec<Vec<Value>> = models.iter().map(|m| table(&dir, m)).collect();
    assert_eq!(after, before);
    assert_eq!(inode(&partition), untouched, "a partition not in the new rows is reused, not rewritten");
}

#[test]
fn full_refresh_rebuilds_unless_the_model_is_protected() {
    let (_tmp, dir) = built_twice();
    assert_eq!(rows(&dir, "select count(*) as n from main.inc_protected"), vec![json!({"n": 7})]);
    build(&dir, &["--full-refresh"]);
    let overwrite = rows(&dir, "select cast(dt as varchar) as dt, total from main.inc_overwrite order by dt");
    assert_eq!(overwrite[0], json!({"dt": "2024-01-01", "total": 35}), "rebuilt from all rows");
    assert_eq!(rows(&dir, "select count(*) as n from main.inc_append"), vec![json!({"n": 4})]);
    assert_eq!(
        rows(&dir, "select count(*) as n from main.inc_protected"),
        vec![json!({"n": 11})],
        "full_refresh: false keeps appending"
    );
}

#[test]
fn a_duplicated_or_null_unique_key_in_new_rows_is_an_error_and_the_table_stays() {
    let (_tmp, dir) = copy_project("incremental");
    build(&dir, &[]);
    let before = table(&dir, "inc_merge");
    std::fs::write(dir.join("seeds/events.csv"), "id,dt,amount,status\n1,2024-01-01,10,new\n1,2024-01-02,11,new\n")
        .unwrap();
    let run = etlm(&dir, &["build", "-s", "events", "inc_merge"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("`unique_key` (id) is duplicated in the new rows, e.g. (1)"), "{}", run.stdout);
    assert_eq!(table(&dir, "inc_merge"), before);
    std::fs::write(dir.join("seeds/events.csv"), "id,dt,amount,status\n,2024-01-01,10,new\n").unwrap();
    let run = etlm(&dir, &["build", "-s", "events", "inc_merge"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("`unique_key` column `id` is NULL in a new row"), "{}", run.stdout);
    assert_eq!(table(&dir, "inc_merge"), before);
}

#[test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs --features failpoints")]
fn a_crash_while_combining_leaves_the_old_version_and_a_rerun_equals_a_clean_run() {
    let (_tmp, clean) = built_twice();
    for point in ["after-stage", "before-publish", "before-rename", "before-swap", "after-publish"] {
        let (_tmp, dir) = copy_project("incremental");
        build(&dir, &[]);
        let old = table(&dir, "inc_merge");
        std::fs::write(dir.join("seeds/events.csv"), CHANGED).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_etlm"))
            .args(["build", "--threads", "1", "--vars", "{since: 2024-01-02}", "--project-dir"])
            .arg(&dir)
            .env("ETLM_FAILPOINT", format!("{point}:inc_merge"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{point}: the run must die at the failpoint");
        let now = table(&dir, "inc_merge");
        assert!(now == old || now == table(&clean, "inc_merge"), "{point}: neither old nor new: {now:?}");
        build(&dir, &["--vars", "{since: 2024-01-02}"]);
        for model in ["inc_append", "inc_merge", "inc_merge_update", "inc_delete_insert", "inc_overwrite"] {
            assert_eq!(table(&dir, model), table(&clean, model), "{point}: {model} after the re-run");
        }
        let staging: Vec<_> = walkdir::WalkDir::new(dir.join("warehouse"))
            .into_iter()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".staging"))
            .collect();
        assert!(staging.is_empty(), "{point}: staging leftovers {staging:?}");
    }
}

/// As dbt: `merge` and `delete+insert` without a `unique_key` append the new rows.
#[test]
fn key_strategies_without_a_unique_key_append() {
    let (_tmp, dir) = copy_project("incremental");
    for strategy in ["merge", "delete+insert"] {
        let name = format!("inc_nokey_{}", strategy.replace('+', "_"));
        let sql = format!(
            "{{{{ config(incremental_strategy='{strategy}') }}}}\nselect id, dt from {{{{ ref('events') }}}}\n"
        );
        std::fs::write(dir.join(format!("models/{name}.sql")), sql).unwrap();
    }
    build(&dir, &[]);
    let once = table(&dir, "inc_nokey_merge");
    build(&dir, &[]);
    for model in ["inc_nokey_merge", "inc_nokey_delete_insert"] {
        let twice = table(&dir, model);
        assert_eq!(twice.len(), 2 * once.len(), "{model}: {twice:?}");
        let mut doubled: Vec<Value> = once.iter().flat_map(|r| [r.clone(), r.clone()]).collect();
        doubled.sort_by_key(|r| r.to_string());
        let mut sorted = twice.clone();
        sorted.sort_by_key(|r| r.to_string());
        assert_eq!(sorted, doubled, "{model}");
    }
}
