//! Hostile input (#18, matrix rows 21–26): values passed with `--vars` cannot smuggle a
//! second statement into what etlm runs, and a template that loops or recurses without
//! end stops with an error in bounded time, on both engines.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::engines::Backend;
use support::etlm;

/// A project with a `canary` table (a seed) and models that put `--vars` values into
/// SQL: inside a string literal, as a bare expression, as a test's `where`, and as a
/// schema name.
fn project(b: &Backend) -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = support::empty_project("hostile");
    let write = |path: &str, text: &str| support::write_file(&dir, path, text);
    write("etlm.yml", "name: hostile\nvars:\n  label: ok\n  n: 1\n  w: '1 = 1'\n  s: extra\n");
    write("seeds/canary.csv", "id,word\n1,alive\n2,alive\n");
    write("models/literal.sql", "select '{{ var(\"label\") }}' as label, id from {{ ref('canary') }}\n");
    write("models/expression.sql", "select {{ var('n') }} as n from {{ ref('canary') }}\n");
    write("models/elsewhere.sql", "{{ config(schema=var('s')) }}\nselect id from {{ ref('canary') }}\n");
    write(
        "models/schema.yml",
        "models:\n  - name: literal\n    columns:\n      - name: id\n        data_tests:\n          - not_null:\n              \
         config:\n                where: \"{{ var('w') }}\"\n",
    );
    if let Backend::Postgres(db) = b {
        db.write_profile(&dir, "hostile", "");
    }
    (tmp, dir)
}

fn canary(b: &Backend, dir: &Path) -> Vec<String> {
    let rows = b.rows(dir, "select id, word from {schema}.canary order by id");
    rows.iter().map(|r| format!("{}:{}", r["id"], r["word"])).collect()
}

/// Classic payloads: closing the literal, ending the statement, commenting out the rest.
/// Each makes the model two statements, which is an error before anything runs.
const PAYLOADS: &[(&str, &str)] = &[
    ("label", "'; drop table {schema}.canary; --"),
    ("label", "x' as label, 1 as id; drop table {schema}.canary; select '"),
    ("n", "1 as n; drop table {schema}.canary; select 1"),
    ("n", "(select 1); delete from {schema}.canary"),
    ("w", "1 = 1; drop table {schema}.canary; --"),
    ("w", "true) as t; drop table {schema}.canary; select (1"),
];

fn vars_cannot_inject_a_statement(b: &Backend) {
    let (_tmp, dir) = project(b);
    let first = etlm(&dir, &["build"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let alive = vec!["1:alive".to_string(), "2:alive".to_string()];
    assert_eq!(canary(b, &dir), alive);
    for (var, payload) in PAYLOADS {
        let payload = payload.replace("{schema}", b.schema());
        let vars = serde_json::json!({ *var: payload }).to_string();
        let run = etlm(&dir, &["build", "--exclude", "canary", "--vars", &vars]);
        assert_ne!(run.code, 0, "`{payload}` must not build: {}\n{}", run.stdout, run.stderr);
        assert_eq!(run.code, 2, "{payload}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains("error[sql-syntax]"), "{payload}: {}", run.stderr);
        assert_eq!(canary(b, &dir), alive, "`{payload}` reached the canary: {}\n{}", run.stdout, run.stderr);
    }
    // In a name, a quote is quoted: the odd schema is made, and nothing else runs.
    let schema = format!("x\"; drop table {}.canary; --", b.schema());
    let vars = serde_json::json!({ "s": schema }).to_string();
    let run = etlm(&dir, &["build", "--exclude", "canary", "--vars", &vars]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(canary(b, &dir), alive, "{}", run.stdout);
    let again = etlm(&dir, &["build"]);
    assert_eq!(again.code, 0, "the project still builds: {}", again.stderr);
}

/// A template that never ends on its own is stopped, with a diagnostic naming the file.
fn runaway_templates_stop_with_an_error(b: &Backend) {
    let (_tmp, dir) = project(b);
    let cases = [
        ("models/huge_range.sql", "{% for i in range(100000000) %}x{% endfor %}"),
        (
            "models/loop.sql",
            "{% set ns = namespace(n=0) %}{% for i in range(99999) %}{% for j in range(99999) %}\
             {% set ns.n = ns.n + 1 %}{% endfor %}{% endfor %}select {{ ns.n }} as n",
        ),
        ("models/recursion.sql", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}select {{ f(1) }} as x"),
        (
            "models/nested.sql",
            "{% macro g(n) %}{% for i in range(1000) %}{{ g(n) }}{% endfor %}{% endmacro %}{{ g(1) }}",
        ),
    ];
    for (path, text) in cases {
        std::fs::write(dir.join(path), text).unwrap();
        let clock = Instant::now();
        let run = etlm(&dir, &["compile"]);
        let took = clock.elapsed();
        assert_eq!(run.code, 2, "{path}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(path), "{path}: names the file: {}", run.stderr);
        let said = ["too many elements", "recursion limit", "did not finish within"];
        assert!(said.iter().any(|s| run.stderr.contains(s)), "{path}: says why: {}", run.stderr);
        assert!(took < Duration::from_secs(20), "{path}: stopped after {took:?}");
        std::fs::remove_file(dir.join(path)).unwrap();
    }
}

macro_rules! engine_suite {
    ($engine:ident) => {
        mod $engine {
            use super::*;

            #[test]
            fn vars_cannot_inject_a_statement() {
                if let Some(b) = Backend::$engine("inject") {
                    super::vars_cannot_inject_a_statement(&b);
                }
            }

            #[test]
            fn runaway_templates_stop_with_an_error() {
                if let Some(b) = Backend::$engine("runaway") {
                    super::runaway_templates_stop_with_an_error(&b);
                }
            }
        }
    };
}

engine_suite!(datafusion);
engine_suite!(postgres);
