//! `unit_tests:` in property files: a model's logic checked on given rows of its inputs
//! against expected rows, as in dbt. Read here into [`UnitTestDef`]s with spans; fixture
//! files (`tests/fixtures/*.csv|*.sql`) are attached once the whole tree is known.
//! Which model and inputs the names point at is decided by `compile`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value as Json;

use super::config::{self, ConfigLayer};
use super::properties::Description;
use super::yaml::{Yaml, YamlValue};
use crate::diagnostics::{Code, Diagnostic, FileId, SourceMap, Span};

/// How fixture rows are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FixtureFormat {
    Dict,
    Csv,
    Sql,
}

impl FixtureFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            FixtureFormat::Dict => "dict",
            FixtureFormat::Csv => "csv",
            FixtureFormat::Sql => "sql",
        }
    }
}

/// One row: column (as written) and value. A CSV value is a string, an empty one null.
pub type Row = Vec<(String, Json)>;

/// The rows of an input or of the expected output.
#[derive(Clone, Debug)]
pub enum Rows {
    /// Rows of values (`dict` and `csv` formats).
    Values(Vec<Row>),
    /// A query returning the rows (`sql` format).
    Sql(String),
    /// No `rows:` and no `fixture:`: a seed input takes its seed file's rows, as in dbt.
    Absent,
    /// `fixture: name`, read from the fixture file once the tree is known.
    Fixture(String),
}

/// Given or expected rows, with where they are written.
#[derive(Clone, Debug)]
pub struct Fixture {
    pub format: FixtureFormat,
    pub rows: Rows,
    pub span: Span,
    /// Where each column is first named in `dict` rows.
    pub keys: Vec<(String, Span)>,
    /// The fixture file's name, when the rows come from one.
    pub name: Option<String>,
}

/// One `given:` entry: `input: ref('x')`, `source('s', 't')` or `this`.
#[derive(Clone, Debug)]
pub struct Given {
    pub input: String,
    pub input_span: Span,
    pub fixture: Fixture,
}

/// `overrides:` of a unit test.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub vars: BTreeMap<String, Json>,
    pub env_vars: BTreeMap<String, String>,
    /// Macro name -> the value a call returns (`is_incremental: true`).
    pub macros: BTreeMap<String, Json>,
}

/// A unit test as written in YAML.
#[derive(Clone, Debug)]
pub struct UnitTestDef {
    pub name: String,
    pub span: Span,
    pub model: String,
    pub model_span: Span,
    pub description: Option<Description>,
    pub given: Vec<Given>,
    pub expect: Fixture,
    pub overrides: Overrides,
    /// `tags`, `enabled`, `meta`.
    pub config: ConfigLayer,
    /// The property file, relative to the project.
    pub path: PathBuf,
}

/// Config keys a unit test takes.
const CONFIG_KEYS: &[&str] = &["enabled", "meta", "tags"];

fn one(d: Diagnostic) -> Vec<Diagnostic> {
    vec![d]
}

/// Reads the entries of a `unit_tests:` list; every problem is returned.
pub fn parse_list(list: &Yaml, file: FileId, sources: &SourceMap) -> Result<Vec<UnitTestDef>, Vec<Diagnostic>> {
    let path = sources.file(file).path.clone();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for item in list.expect_seq("unit_tests").map_err(one)? {
        match parse_one(item, &path) {
            Ok(def) => out.push(def),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

fn required<'a>(item: &'a Yaml, key: &str, what: &str) -> Result<&'a Yaml, Vec<Diagnostic>> {
    item.get(key).filter(|v| !v.is_null()).ok_or_else(|| {
        one(Diagnostic::error(Code::YamlShape, format!("{what} has no `{key}`"))
            .with_label(item.span, format!("add `{key}:` to this entry")))
    })
}

fn parse_one(item: &Yaml, path: &std::path::Path) -> Result<UnitTestDef, Vec<Diagnostic>> {
    item.expect_map("unit_tests").map_err(one)?;
    let name_yaml = required(item, "name", "a unit test")?;
    let name = name_yaml.expect_string("name").map_err(one)?;
    let what = format!("unit test `{name}`");
    let model_yaml = required(item, "model", &what)?;
    let model = model_yaml.expect_string("model").map_err(one)?;
    let mut errors = Vec::new();
    for (key, _) in item.as_map().unwrap_or_default() {
        if !matches!(
            key.name.as_str(),
            "name" | "model" | "description" | "given" | "expect" | "overrides" | "config" | "versions"
        ) {
            errors.push(
                Diagnostic::error(Code::YamlShape, format!("`{}` is not a key of unit tests", key.name)).with_label(
                    key.span,
                    "expected `model`, `given`, `expect`, `overrides`, `config` or `description`",
                ),
            );
        }
    }
    let description = match item.get("description").filter(|d| !d.is_null()) {
        Some(d) => match d.expect_string("description") {
            Ok(text) => Some(Description { text, span: d.span }),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        None => None,
    };
    let mut given = Vec::new();
    if let Some(list) = item.get("given") {
        match list.expect_seq("given") {
            Ok(items) => {
                for g in items {
                    match given_entry(g) {
                        Ok(entry) => given.push(entry),
                        Err(e) => errors.extend(e),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    let expect = match required(item, "expect", &what).and_then(|e| fixture(e, "expect")) {
        Ok(f) => Some(f),
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    if let Some(Fixture { rows: Rows::Absent, span, .. }) = &expect {
        errors.push(
            Diagnostic::error(
                Code::InvalidUnitTest,
                format!("unit test `{name}` expects no rows: `expect` needs `rows`"),
            )
            .with_label(*span, "add `rows:` (`rows: []` for none)"),
        );
    }
    let overrides = item.get("overrides").map(overrides_of).transpose().unwrap_or_else(|e| {
        errors.extend(e);
        None
    });
    let config = match item.get("config") {
        Some(c) => match config::layer_from_yaml(c, "unit_tests.config") {
            Ok(layer) => {
                for (key, entry) in &layer {
                    if !CONFIG_KEYS.contains(&key.as_str()) {
                        errors.push(
                            Diagnostic::error(Code::InvalidConfig, format!("`{key}` is not a config of unit tests"))
                                .with_label(entry.span, "unit tests take `tags`, `enabled` and `meta`"),
                        );
                    }
                }
                layer
            }
            Err(e) => {
                errors.extend(e);
                ConfigLayer::new()
            }
        },
        None => ConfigLayer::new(),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(UnitTestDef {
        name,
        span: name_yaml.span,
        model: model.trim().to_string(),
        model_span: model_yaml.span,
        description,
        given,
        expect: expect.expect("no errors, so `expect` was read"),
        overrides: overrides.unwrap_or_default(),
        config,
        path: path.to_path_buf(),
    })
}

fn given_entry(item: &Yaml) -> Result<Given, Vec<Diagnostic>> {
    item.expect_map("given").map_err(one)?;
    let input = required(item, "input", "an entry of `given`")?;
    Ok(Given {
        input: input.expect_string("input").map_err(one)?,
        input_span: input.span,
        fixture: fixture(item, "given")?,
    })
}

/// `format`, `rows` and `fixture` of a `given` entry or of `expect`.
fn fixture(item: &Yaml, context: &str) -> Result<Fixture, Vec<Diagnostic>> {
    item.expect_map(context).map_err(one)?;
    let format = match item.get("format").filter(|f| !f.is_null()) {
        None => FixtureFormat::Dict,
        Some(f) => match f.expect_string("format").map_err(one)?.as_str() {
            "dict" => FixtureFormat::Dict,
            "csv" => FixtureFormat::Csv,
            "sql" => FixtureFormat::Sql,
            other => {
                return Err(one(Diagnostic::error(
                    Code::InvalidUnitTest,
                    format!("`{other}` is not a fixture format"),
                )
                .with_label(f.span, "use `dict`, `csv` or `sql`")));
            }
        },
    };
    let rows = item.get("rows").filter(|r| !r.is_null());
    let file = item.get("fixture").filter(|r| !r.is_null());
    let span = rows.or(file).map_or(item.span, |y| y.span);
    let mismatch = |y: &Yaml, expected: &str| {
        one(Diagnostic::error(
            Code::InvalidUnitTest,
            format!("rows do not match format `{}`: expected {expected}, found {}", format.as_str(), y.kind()),
        )
        .with_label(y.span, format!("expected {expected}")))
    };
    let mut keys: Vec<(String, Span)> = Vec::new();
    let mut fixture_name = None;
    let rows = match (rows, file, format) {
        (Some(r), Some(f), _) => {
            return Err(one(Diagnostic::error(Code::InvalidUnitTest, "`rows` and `fixture` are both given; keep one")
                .with_label(f.span, "`fixture` here")
                .with_label(r.span, "`rows` here")));
        }
        (None, Some(f), FixtureFormat::Dict) => {
            return Err(one(Diagnostic::error(
                Code::InvalidUnitTest,
                "a `fixture` file needs `format: csv` or `format: sql`",
            )
            .with_label(f.span, "fixture files hold CSV or SQL")));
        }
        (None, Some(f), _) => {
            let name = f.expect_string("fixture").map_err(one)?;
            fixture_name = Some(name.clone());
            Rows::Fixture(name)
        }
        (None, None, FixtureFormat::Dict) => Rows::Absent,
        (None, None, _) => {
            return Err(one(Diagnostic::error(
                Code::InvalidUnitTest,
                format!("format `{}` needs `rows` or `fixture`", format.as_str()),
            )
            .with_label(item.span, "add `rows:` or `fixture:`")));
        }
        (Some(r), None, FixtureFormat::Dict) => {
            let list = r.expect_seq("rows").map_err(|_| mismatch(r, "a list of mappings"))?;
            let mut out = Vec::new();
            for row in list {
                let entries = match &row.value {
                    YamlValue::Map(m) => m,
                    _ => return Err(mismatch(row, "a mapping")),
                };
                for (k, _) in entries {
                    if !keys.iter().any(|(name, _)| *name == k.name) {
                        keys.push((k.name.clone(), k.span));
                    }
                }
                out.push(entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect());
            }
            Rows::Values(out)
        }
        (Some(r), None, FixtureFormat::Csv) => {
            let text = r.as_str().ok_or_else(|| mismatch(r, "a string"))?;
            Rows::Values(
                parse_csv(text).map_err(|m| {
                    one(Diagnostic::error(Code::InvalidUnitTest, m).with_label(r.span, "in these rows"))
                })?,
            )
        }
        (Some(r), None, FixtureFormat::Sql) => {
            Rows::Sql(r.as_str().ok_or_else(|| mismatch(r, "a string"))?.to_string())
        }
    };
    Ok(Fixture { format, rows, span, keys, name: fixture_name })
}

fn overrides_of(item: &Yaml) -> Result<Overrides, Vec<Diagnostic>> {
    let mut out = Overrides::default();
    for (key, value) in item.expect_map("overrides").map_err(one)? {
        let entries = value.expect_map(&format!("overrides.{}", key.name)).map_err(one)?;
        match key.name.as_str() {
            "vars" => out.vars = entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect(),
            "macros" => out.macros = entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect(),
            "env_vars" => {
                for (k, v) in entries {
                    out.env_vars.insert(k.name.clone(), v.expect_string(&k.name).map_err(one)?);
                }
            }
            other => {
                return Err(one(Diagnostic::error(Code::YamlShape, format!("`{other}` is not a key of `overrides`"))
                    .with_label(key.span, "expected `vars`, `env_vars` or `macros`")));
            }
        }
    }
    Ok(out)
}

/// CSV rows with a header; an empty value is null, as in dbt.
pub fn parse_csv(text: &str) -> Result<Vec<Row>, String> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.trim().as_bytes());
    let header: Vec<String> =
        reader.headers().map_err(|e| format!("invalid CSV rows: {e}"))?.iter().map(str::to_string).collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("invalid CSV rows: {e}"))?;
        let row = header
            .iter()
            .zip(record.iter())
            .map(|(h, v)| (h.clone(), if v.is_empty() { Json::Null } else { Json::String(v.to_string()) }))
            .collect();
        rows.push(row);
    }
    Ok(rows)
}

/// Replaces `fixture:` names by the rows of their files (`fixtures` maps a file name,
/// `orders.csv`, to its text in the source map); a missing file or a malformed
/// CSV file is an error at the `fixture:` entry.
pub fn attach_fixtures(
    defs: &mut [UnitTestDef],
    fixtures: &BTreeMap<String, FileId>,
    sources: &SourceMap,
) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    for def in defs {
        for fixture in def.given.iter_mut().map(|g| &mut g.fixture).chain(std::iter::once(&mut def.expect)) {
            let Rows::Fixture(name) = &fixture.rows else { continue };
            let ext = match fixture.format {
                FixtureFormat::Csv => "csv",
                _ => "sql",
            };
            let Some(&file) = fixtures.get(&format!("{name}.{ext}")) else {
                errors.push(
                    Diagnostic::error(Code::MissingFixture, format!("no fixture file `{name}.{ext}`"))
                        .with_label(fixture.span, format!("unit test `{}` names it here", def.name))
                        .with_help("fixture files live in a `fixtures` folder under a test path (`tests/fixtures/`)"),
                );
                continue;
            };
            let text = sources.file(file).text.clone();
            fixture.rows = match fixture.format {
                FixtureFormat::Csv => match parse_csv(&text) {
                    Ok(rows) => Rows::Values(rows),
                    Err(message) => {
                        errors.push(
                            Diagnostic::error(Code::InvalidUnitTest, message)
                                .with_label(Span::file_start(file), "in this fixture file"),
                        );
                        continue;
                    }
                },
                _ => Rows::Sql(text.to_string()),
            };
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<UnitTestDef>, Vec<Diagnostic>> {
        let map = SourceMap::default();
        let id = map.add("models/unit.yml", text);
        let yaml = Yaml::parse(id, &map).unwrap();
        parse_list(yaml.get("unit_tests").unwrap(), id, &map)
    }

    #[test]
    fn reads_dict_csv_and_sql_rows_and_overrides() {
        let defs = parse(
            "unit_tests:\n  - name: t\n    model: orders\n    overrides:\n      vars: {min: 3}\n      macros: {is_incremental: true}\n    given:\n      - input: ref('stg')\n        rows:\n          - {id: 1, name: a}\n      - input: this\n        format: csv\n        rows: |\n          id,name\n          1,\n      - input: source('raw', 'x')\n        format: sql\n        rows: select 1 as id\n    expect:\n      rows: []\n",
        )
        .unwrap();
        let t = &defs[0];
        assert_eq!(t.model, "orders");
        assert_eq!(t.overrides.vars["min"], 3);
        assert_eq!(t.overrides.macros["is_incremental"], true);
        let Rows::Values(rows) = &t.given[0].fixture.rows else { panic!() };
        assert_eq!(rows[0], vec![("id".to_string(), Json::from(1)), ("name".to_string(), Json::from("a"))]);
        let Rows::Values(rows) = &t.given[1].fixture.rows else { panic!() };
        assert_eq!(rows[0], vec![("id".to_string(), Json::from("1")), ("name".to_string(), Json::Null)]);
        assert!(matches!(&t.given[2].fixture.rows, Rows::Sql(s) if s == "select 1 as id"));
        assert!(matches!(&t.expect.rows, Rows::Values(r) if r.is_empty()));
    }

    #[test]
    fn a_bad_format_and_mismatched_rows_are_errors() {
        let errs = parse("unit_tests:\n  - name: t\n    model: m\n    given:\n      - input: ref('a')\n        format: xml\n        rows: []\n    expect:\n      format: csv\n      rows: [1]\n").unwrap_err();
        let messages: Vec<&str> = errs.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            ["`xml` is not a fixture format", "rows do not match format `csv`: expected a string, found a list"]
        );
    }
}
