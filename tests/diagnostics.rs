//! Each `err_` fixture fails to compile with exit code 2, writes nothing, and renders
//! one diagnostic, snapshot-tested (file, line, column, caret, help).

mod support;

use support::{copy_project, etlm, fixtures};

fn check(name: &str) {
    let (_tmp, dir) = copy_project(name);
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 2, "{name} must fail with exit code 2:\n{}", run.stderr);
    assert!(!dir.join("target/manifest.json").exists(), "{name}: nothing is written on error");
    insta::assert_snapshot!(name, run.stderr);
}

macro_rules! err_fixtures {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*

        #[test]
        fn every_err_fixture_has_a_test() {
            let known = [$(stringify!($name)),*];
            for entry in std::fs::read_dir(fixtures()).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                if name.starts_with("err_") {
                    assert!(known.contains(&name.as_str()), "fixture {name} has no test");
                }
            }
        }
    };
}

err_fixtures!(
    err_yaml_syntax,
    err_yaml_shape,
    err_jinja_syntax,
    err_undefined_variable,
    err_unknown_ref,
    err_dependency_cycle,
    err_duplicate_model,
    err_unknown_config_key,
    err_invalid_materialization,
    err_sql_syntax,
    err_macro_bad_call,
    err_unknown_test,
    err_invalid_threshold,
    err_unknown_column,
    err_ambiguous_column,
    err_unit_test_unknown_input,
    err_unit_test_unknown_column,
    err_unit_test_missing_fixture,
    err_unit_test_unknown_model,
    err_unit_test_bad_format,
);

#[test]
fn json_format_carries_the_same_fields() {
    let (_tmp, dir) = copy_project("err_unknown_ref");
    let run = etlm(&dir, &["compile", "--format", "json"]);
    assert_eq!(run.code, 2);
    let line = run.stderr.lines().next().expect("one JSON line");
    let json: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
    assert_eq!(json["code"], "unknown-ref");
    assert_eq!(json["file"], "models/orders.sql");
    assert_eq!(json["line"], 3);
    assert_eq!(json["column"], 10);
    assert_eq!(json["help"][0], "did you mean `stg_orders` (models/stg_orders.sql)?");
}

#[test]
fn unknown_column_json_points_at_the_model_file() {
    let (_tmp, dir) = copy_project("err_unknown_column");
    let run = etlm(&dir, &["compile", "--format", "json"]);
    assert_eq!(run.code, 2);
    let json: serde_json::Value = serde_json::from_str(run.stderr.lines().next().unwrap()).expect("valid JSON");
    assert_eq!(json["code"], "unknown-column");
    assert_eq!(json["file"], "models/revenue.sql");
    assert_eq!((json["line"].as_u64(), json["column"].as_u64()), (Some(7), Some(9)));
    assert_eq!(json["notes"][0], "compiled SQL: target/compiled/models/revenue.sql:5:9");
}

#[test]
fn column_checks_false_turns_the_checks_off_for_one_model() {
    let (_tmp, dir) = copy_project("err_unknown_column");
    let path = dir.join("models/revenue.sql");
    let sql = std::fs::read_to_string(&path)
        .unwrap()
        .replace("materialized='table'", "materialized='table', column_checks=false");
    std::fs::write(&path, sql).unwrap();
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
