//! Compile-time expression types against what the engines really return (#20): for each
//! expression below, the type `etlm compile` writes to `lineage.json` must equal the type
//! the engine reports for it (`arrow_typeof` on DataFusion, `pg_typeof` on Postgres, run
//! on the real server), or be unknown where the case says so by design.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::engines::Backend;

/// The columns every expression reads, one of each type.
const INPUT: &str = "select cast(1 as smallint) as i2, cast(7 as integer) as i4, cast(3 as bigint) as i8, \
    cast(1.5 as numeric(10,2)) as n, cast(2.5 as double precision) as f8, cast(1.5 as real) as f4, \
    cast('abc' as text) as s, cast('x' as varchar(10)) as v, cast('2024-01-02' as date) as d, \
    cast('2024-01-02 03:04:05' as timestamp) as ts, true as b";

/// Unknown by design on DataFusion (`d`), on Postgres (`p`), on both (`dp`), or known (``).
const CASES: &[(&str, &str)] = &[
    ("i4", ""),
    ("i8", ""),
    ("s", ""),
    ("v", ""),
    ("1", ""),
    ("100.0", ""),
    ("'text'", ""),
    ("true", ""),
    ("3000000000", ""),
    ("i4 / 100", ""),
    ("i4 / 100.0", ""),
    ("i4 * 2", ""),
    ("i4 + i8", ""),
    ("i2 + i2", ""),
    ("i2 + i4", ""),
    ("i4 - 1", ""),
    ("i8 % 2", ""),
    ("i4 + f8", ""),
    ("n * 2", "d"),
    ("n + f8", ""),
    ("n / 3", "d"),
    ("f8 * 2", ""),
    ("f4 + f4", ""),
    ("f4 + f8", ""),
    ("-i4", ""),
    ("-f8", ""),
    ("(i4 + 1) * 2", ""),
    ("cast(i4 as bigint)", ""),
    ("cast(i8 as integer)", ""),
    ("cast(f8 as integer)", ""),
    ("cast(i4 as numeric(12,2))", ""),
    ("cast(i4 as double precision)", ""),
    ("cast(i4 as varchar)", ""),
    ("cast(i4 as text)", ""),
    ("cast(ts as date)", ""),
    ("cast(d as timestamp)", ""),
    ("cast(i4 as real)", ""),
    ("cast(i4 as boolean)", ""),
    ("i4 = 1", ""),
    ("i4 > i8", ""),
    ("s <> 'a'", ""),
    ("b and i4 > 0", ""),
    ("not b", ""),
    ("i4 is null", ""),
    ("s like 'a%'", ""),
    ("i4 in (1, 2)", ""),
    ("i4 between 1 and 9", ""),
    ("count(*)", ""),
    ("count(s)", ""),
    ("sum(i4)", ""),
    ("sum(i8)", ""),
    ("sum(i2)", ""),
    ("sum(f8)", ""),
    ("sum(n)", ""),
    ("avg(i4)", ""),
    ("avg(f8)", ""),
    ("avg(n)", ""),
    ("min(s)", ""),
    ("max(d)", ""),
    ("max(i4)", ""),
    ("bool_and(b)", ""),
    ("case when b then i4 else i8 end", ""),
    ("case when b then i4 else n end", "d"),
    ("case when b then s else 'other' end", ""),
    ("case when b then i4 end", ""),
    ("case when b then f8 else i4 end", ""),
    ("coalesce(i4, 0)", ""),
    ("coalesce(i4, i8)", ""),
    ("coalesce(s, v)", ""),
    ("nullif(i4, 0)", ""),
    ("s || 'x'", ""),
    ("v || v", ""),
    ("lower(s)", ""),
    ("upper(v)", ""),
    ("length(s)", ""),
    ("substring(s from 1 for 2)", ""),
    ("trim(s)", ""),
    ("abs(i4)", ""),
    ("abs(f8)", ""),
    ("round(f8)", ""),
    ("round(n, 1)", "d"),
    ("row_number() over (order by i4)", ""),
    ("rank() over (partition by s order by i4)", ""),
    ("sum(i4) over (partition by s)", ""),
    ("avg(f8) over ()", ""),
    ("lag(s) over (order by i4)", ""),
    ("first_value(d) over (order by i4)", ""),
    ("date_trunc('day', ts)", ""),
    ("current_date", ""),
    ("d + 1", "d"),
    ("d - d", "d"),
    ("ts - ts", "d"),
    ("d + interval '1 day'", "d"),
    ("ts + interval '1 hour'", "d"),
    ("(select max(i4) from t2)", ""),
    ("(select max(s) from t2)", ""),
    ("power(i4, 2)", "dp"),
    ("i4 & 3", "dp"),
];

/// The project: `t` and `t2` as views over `INPUT`, and one model `c<i>` per case.
fn project(b: &Backend) -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, dir) = support::empty_project("types");
    let write = |path: &str, text: &str| support::write_file(&dir, path, text);
    write("etlm.yml", "name: types\nmodels:\n  types:\n    +materialized: view\n");
    write("models/t.sql", INPUT);
    write("models/t2.sql", INPUT);
    for (i, (expr, _)) in CASES.iter().enumerate() {
        let sql = expr.replace("from t2", "from {{ ref('t2') }}");
        write(&format!("models/c{i}.sql"), &format!("select {sql} as x from {{{{ ref('t') }}}}\n"));
    }
    if let Backend::Postgres(db) = b {
        db.write_profile(&dir, "types", "");
    }
    (tmp, dir)
}

/// Each case's type in `target/lineage.json`, `None` when unknown.
fn inferred(dir: &Path) -> Vec<Option<String>> {
    let text = std::fs::read_to_string(dir.join("target/lineage.json")).expect("lineage.json");
    let lineage: serde_json::Value = serde_json::from_str(&text).expect("lineage JSON");
    (0..CASES.len())
        .map(|i| {
            let column = &lineage["nodes"][format!("model.types.c{i}")]["columns"][0];
            assert_eq!(column["name"], "x", "case {i}");
            column["data_type"].as_str().map(str::to_string)
        })
        .collect()
}

/// Each case's type as the engine reports it, through one query.
fn reported(b: &Backend, dir: &Path) -> Vec<String> {
    let (typeof_, schema) = match b {
        Backend::DataFusion | Backend::Delta => ("arrow_typeof(x)", "main"),
        Backend::Postgres(_) => ("cast(pg_typeof(x) as text)", "public"),
    };
    let parts: Vec<String> = CASES
        .iter()
        .enumerate()
        .map(|(i, (expr, _))| {
            let expr = expr.replace("from t2", &format!("from {schema}.t2"));
            format!("select {i} as i, {typeof_} as t from (select {expr} as x from {schema}.t) q{i}")
        })
        .collect();
    let rows = b.rows(dir, &parts.join("\nunion all\n"));
    let by_case: BTreeMap<usize, String> =
        rows.into_iter().map(|r| (r["i"].parse().expect("case number"), r["t"].clone())).collect();
    (0..CASES.len()).map(|i| normalise(b, &by_case[&i])).collect()
}

/// The engine's name as etlm writes it: Arrow names lowercase, with one name for the
/// three string encodings.
fn normalise(b: &Backend, name: &str) -> String {
    match b {
        Backend::DataFusion | Backend::Delta => match name.to_lowercase().as_str() {
            "utf8view" | "largeutf8" => "utf8".to_string(),
            other => other.to_string(),
        },
        Backend::Postgres(_) => name.to_string(),
    }
}

fn check(b: &Backend, unknown_flag: char) {
    let (_tmp, dir) = project(b);
    let compile = support::etlm(&dir, &["compile"]);
    assert_eq!(compile.code, 0, "compile: {}{}", compile.stdout, compile.stderr);
    let build = support::etlm(&dir, &["build", "-s", "t", "t2"]);
    assert_eq!(build.code, 0, "build: {}{}", build.stdout, build.stderr);
    let (inferred, reported) = (inferred(&dir), reported(b, &dir));
    let mut wrong = Vec::new();
    let mut known = 0;
    for (i, (expr, unknown)) in CASES.iter().enumerate() {
        let expected = if unknown.contains(unknown_flag) { None } else { Some(reported[i].clone()) };
        known += usize::from(expected.is_some());
        if inferred[i] != expected {
            wrong.push(format!("  c{i} `{expr}`: inferred {:?}, engine {:?}", inferred[i], reported[i]));
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases differ:\n{}", wrong.len(), CASES.len(), wrong.join("\n"));
    assert!(known >= 60, "only {known} cases are typed");
}

#[test]
fn inferred_types_equal_what_datafusion_reports() {
    check(&Backend::DataFusion, 'd');
}

#[test]
fn inferred_types_equal_what_postgres_reports() {
    if let Some(b) = Backend::postgres("types") {
        check(&b, 'p');
    }
}
