//! Running a unit test, as dbt does: each input becomes a CTE of its given rows cast to
//! the input's column types, the model's SQL runs over them, and its rows are compared
//! with the expected rows (cast to the model's output types) on the expected columns
//! only, as multisets. A difference is a failure whose message is a row diff.
//!
//! Column types come from the engine: an input's from its relation when that exists (as
//! dbt reads them from the warehouse), else from the compile-time schema; the output's
//! from planning the model's query over the fixtures.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::Value as Json;

use crate::compile::prepend_ctes;
use crate::engine::Engine;
use crate::history::{Status, TestRun};
use crate::node::{GivenRows, Node, UnitInput, UnitTestCase};
use crate::project::unit_tests::Row;
use crate::relation::quote_ident;

/// The column telling actual rows from expected ones in the comparison query.
const SIDE: &str = "__etlm_actual_or_expected";

/// A row as text, column by column (`None` is NULL).
type Cells = Vec<Option<String>>;

/// Runs one unit test on the engine.
pub async fn run_unit_test(engine: &dyn Engine, test: &Node) -> TestRun {
    let case = test.unit_test.as_ref().expect("unit test nodes carry their case");
    let mut run = super::audit::test_run(test, chrono::Utc::now());
    let clock = std::time::Instant::now();
    run.threshold = "actual = expected".into();
    match compare(engine, case).await {
        Ok(None) => {}
        Ok(Some((differing, diff))) => {
            run.status = Status::Fail;
            run.failures = Some(differing);
            run.observed = Some(differing as f64);
            run.message = Some(diff);
        }
        Err(message) => {
            run.status = Status::Error;
            run.message = Some(message);
        }
    }
    run.seconds = clock.elapsed().as_secs_f64();
    run
}

/// `None` when the rows match, else how many rows differ and the diff.
async fn compare(engine: &dyn Engine, case: &UnitTestCase) -> Result<Option<(u64, String)>, String> {
    let mut ctes = Vec::new();
    for input in &case.inputs {
        let sql = fixture_sql(engine, input).await?;
        ctes.push(format!("{} as (\n{}\n)", input.cte, sql));
    }
    let model_sql = case.sql.trim().trim_end_matches(';');
    let actual = prepend_ctes(model_sql, &ctes);
    let output =
        engine.column_types(&format!("select * from (\n{actual}\n) as _etlm_unit_test_actual")).await.map_err(|e| {
            format!("the model's query failed on the given rows: {e}\n= help: check the given rows' values and types")
        })?;
    let wanted: Vec<String> = match case.expect_columns.is_empty() {
        true => output.iter().map(|(c, _)| c.clone()).collect(),
        false => case.expect_columns.clone(),
    };
    let mut columns = Vec::new();
    for name in &wanted {
        match output.iter().find(|(c, _)| c.eq_ignore_ascii_case(name)) {
            Some(found) => columns.push(found.clone()),
            None => {
                let have: Vec<String> = output.iter().map(|(c, _)| format!("`{c}`")).collect();
                return Err(format!(
                    "the expected rows name `{name}`, which the model does not return; it returns {}",
                    have.join(", ")
                ));
            }
        }
    }
    let typed: Vec<(String, Option<String>)> = columns.iter().map(|(c, t)| (c.clone(), Some(t.clone()))).collect();
    let expected = match &case.expect {
        GivenRows::Sql(sql) => Some(sql.trim().trim_end_matches(';').to_string()),
        GivenRows::Values(rows) if rows.is_empty() => None,
        GivenRows::Values(rows) => Some(values_sql(rows, &typed)),
    };
    let list: Vec<String> = columns.iter().map(|(c, _)| quote_ident(c)).collect();
    let list = list.join(", ");
    let mut sql = format!("select {list}, 'actual' as {SIDE} from (\n{actual}\n) as _etlm_unit_test_actual");
    if let Some(expected) = &expected {
        sql.push_str(&format!(
            "\nunion all\nselect {list}, 'expected' as {SIDE} from (\n{expected}\n) as _etlm_unit_test_expected"
        ));
    }
    let batches = engine.query(&sql, usize::MAX).await.map_err(|e| {
        format!("the unit test query failed: {e}\n= help: check the given and expected rows' values and types")
    })?;
    let numeric: Vec<bool> = columns.iter().map(|(_, t)| is_numeric(t)).collect();
    let (mut actual_rows, mut expected_rows) = split(&batches, &numeric)?;
    actual_rows.sort();
    expected_rows.sort();
    if actual_rows == expected_rows {
        return Ok(None);
    }
    let names: Vec<String> = columns.into_iter().map(|(c, _)| c).collect();
    Ok(Some(diff(&names, &expected_rows, &actual_rows)))
}

/// The query of an input's given rows.
async fn fixture_sql(engine: &dyn Engine, input: &UnitInput) -> Result<String, String> {
    let rows = match &input.rows {
        GivenRows::Sql(sql) => return Ok(sql.trim().trim_end_matches(';').to_string()),
        GivenRows::Values(rows) => rows,
    };
    // The relation's own columns when it exists; what the compile knows otherwise.
    let from_engine = match &input.relation {
        Some(relation) => engine.column_types(&format!("select * from {relation}")).await.ok(),
        None => None,
    };
    let mut columns: Vec<(String, Option<String>)> = match &from_engine {
        Some(list) => list.iter().map(|(c, t)| (c.clone(), Some(t.clone()))).collect(),
        None => input.columns.clone(),
    };
    for (name, _) in rows.iter().flatten() {
        if columns.iter().any(|(c, _)| c.eq_ignore_ascii_case(name)) {
            continue;
        }
        if from_engine.is_some() {
            let have: Vec<String> = columns.iter().map(|(c, _)| format!("`{c}`")).collect();
            return Err(format!("`{name}` is not a column of `{}`; it has {}", input.label, have.join(", ")));
        }
        // A source whose columns are not all declared: the rows name the others, folded
        // to lowercase as both engines fold the model's unquoted names (and as dbt does).
        columns.push((name.to_lowercase(), None));
    }
    Ok(values_sql(rows, &columns))
}

/// `select <value> as "col", ... union all ...`: one select per row, every column in
/// `columns` (a column a row does not give is NULL), each value cast to its column's
/// type when that is known. No rows: the same columns and `limit 0`.
fn values_sql(rows: &[Row], columns: &[(String, Option<String>)]) -> String {
    // An input of unknown columns given empty rows still needs a column to be a query.
    let placeholder = [("_etlm_no_columns".to_string(), None)];
    let columns = if columns.is_empty() { &placeholder[..] } else { columns };
    let select = |row: Option<&Row>| {
        let items: Vec<String> = columns
            .iter()
            .map(|(name, data_type)| {
                let value = row.and_then(|r| r.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))).map(|(_, v)| v);
                format!("{} as {}", literal(value.unwrap_or(&Json::Null), data_type.as_deref()), quote_ident(name))
            })
            .collect();
        format!("select {}", items.join(", "))
    };
    if rows.is_empty() {
        return format!("{} limit 0", select(None));
    }
    rows.iter().map(|r| select(Some(r))).collect::<Vec<_>>().join("\nunion all\n")
}

/// A value as SQL: strings quoted, everything cast to `data_type` when given.
fn literal(value: &Json, data_type: Option<&str>) -> String {
    let text = match value {
        Json::Null => "null".to_string(),
        Json::String(s) => format!("'{}'", s.replace('\'', "''")),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        other => format!("'{}'", other.to_string().replace('\'', "''")),
    };
    match data_type {
        // As dbt: a string's declared length is dropped so the value is not cut short.
        Some(t) if value.is_string() && is_varchar(t) => format!("cast({text} as varchar)"),
        Some(t) => format!("cast({text} as {t})"),
        None => text,
    }
}

/// `varchar(20)`, `character varying(20)` and their like.
fn is_varchar(data_type: &str) -> bool {
    let t = data_type.to_ascii_lowercase();
    t.starts_with("varchar") || t.starts_with("character varying")
}

/// True for a column type whose values are numbers (`numeric`, `DOUBLE`, `int4`...).
fn is_numeric(data_type: &str) -> bool {
    let t = data_type.to_ascii_lowercase();
    ["int", "numeric", "decimal", "float", "double", "real"].iter().any(|n| t.contains(n))
}

/// A number as text without trailing fractional zeros (`15.0` and `15` are one value,
/// as numbers of different scales are to dbt).
fn plain_number(text: String) -> String {
    let digits = text.strip_prefix('-').unwrap_or(&text);
    let is_decimal = digits.split_once('.').is_some_and(|(whole, fraction)| {
        !whole.is_empty() && whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit())
    });
    if !is_decimal {
        return text;
    }
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    match trimmed {
        "-0" => "0".to_string(),
        t => t.to_string(),
    }
}

/// The actual and expected rows of the comparison query, as text (numbers in plain form
/// in `numeric` columns).
fn split(batches: &[RecordBatch], numeric: &[bool]) -> Result<(Vec<Cells>, Vec<Cells>), String> {
    let width = numeric.len();
    let options = FormatOptions::default();
    let (mut actual, mut expected) = (Vec::new(), Vec::new());
    for batch in batches {
        let formatters: Vec<ArrayFormatter<'_>> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("could not read the unit test's rows: {e}"))?;
        for row in 0..batch.num_rows() {
            let cell = |i: usize| (!batch.column(i).is_null(row)).then(|| formatters[i].value(row).to_string());
            let cells: Cells =
                (0..width).map(|i| cell(i).map(|v| if numeric[i] { plain_number(v) } else { v })).collect();
            match cell(width).as_deref() {
                Some("expected") => expected.push(cells),
                _ => actual.push(cells),
            }
        }
    }
    Ok((actual, expected))
}

/// How many rows differ, and a diff of the sorted rows: `-` expected only, `+` actual only.
fn diff(columns: &[String], expected: &[Cells], actual: &[Cells]) -> (u64, String) {
    let shown =
        |cells: &Cells| -> Vec<String> { cells.iter().map(|c| c.clone().unwrap_or_else(|| "null".into())).collect() };
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in expected.iter().chain(actual) {
        for (w, cell) in widths.iter_mut().zip(shown(row)) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("| {} |", padded.join(" | "))
    };
    let expected_lines: Vec<String> = expected.iter().map(|r| line(&shown(r))).collect();
    let actual_lines: Vec<String> = actual.iter().map(|r| line(&shown(r))).collect();
    let mut out = String::from("actual differs from expected (- expected, + actual):\n");
    out.push_str(&format!("  {}\n", line(columns)));
    let old: Vec<&str> = expected_lines.iter().map(String::as_str).collect();
    let new: Vec<&str> = actual_lines.iter().map(String::as_str).collect();
    let ops = similar::TextDiff::from_slices(&old, &new);
    let mut differing = 0;
    for change in ops.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Equal => ' ',
            similar::ChangeTag::Delete => '-',
            similar::ChangeTag::Insert => '+',
        };
        if sign != ' ' {
            differing += 1;
        }
        out.push_str(&format!("{sign} {}\n", change.value()));
    }
    (differing, out.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[(&str, Json)]) -> Row {
        cells.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn values_are_cast_and_missing_columns_are_null() {
        let columns = vec![("id".to_string(), Some("integer".to_string())), ("name".to_string(), None)];
        let sql = values_sql(&[row(&[("ID", Json::from(1))]), row(&[("name", Json::from("o'k"))])], &columns);
        assert_eq!(
            sql,
            "select cast(1 as integer) as \"id\", null as \"name\"\nunion all\nselect cast(null as integer) as \"id\", 'o''k' as \"name\""
        );
        assert_eq!(values_sql(&[], &columns), "select cast(null as integer) as \"id\", null as \"name\" limit 0");
        assert_eq!(values_sql(&[], &[]), "select null as \"_etlm_no_columns\" limit 0");
        let short = [("code".to_string(), Some("varchar(2)".to_string()))];
        assert_eq!(
            values_sql(&[row(&[("code", Json::from("long"))])], &short),
            "select cast('long' as varchar) as \"code\""
        );
    }

    #[test]
    fn numbers_of_any_scale_read_the_same() {
        for (text, plain) in
            [("15.0", "15"), ("2.50", "2.5"), ("-0.0", "0"), ("100", "100"), ("1e10", "1e10"), ("x.0", "x.0")]
        {
            assert_eq!(plain_number(text.to_string()), plain);
        }
    }

    #[test]
    fn the_diff_marks_expected_and_actual_rows() {
        let cells = |a: &str, b: Option<&str>| vec![Some(a.to_string()), b.map(str::to_string)];
        let (n, text) = diff(
            &["id".into(), "total".into()],
            &[cells("1", Some("10")), cells("2", Some("5"))],
            &[cells("1", Some("12")), cells("2", Some("5")), cells("3", None)],
        );
        assert_eq!(n, 3);
        assert_eq!(
            text,
            "actual differs from expected (- expected, + actual):\n  | id | total |\n- | 1  | 10    |\n+ | 1  | 12    |\n  | 2  | 5     |\n+ | 3  | null  |"
        );
    }
}
