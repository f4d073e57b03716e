//! YAML property files (`models:`, `sources:`, `seeds:`, `snapshots:`): descriptions,
//! columns, tests and config for nodes defined elsewhere (and snapshots defined by their
//! `relation:`).

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::config::{self, ConfigEntry, ConfigLayer, is_known_key, normalize_key};
use super::unit_tests::{self, UnitTestDef};
use super::yaml::{Yaml, YamlValue};
use crate::diagnostics::{Code, Diagnostic, FileId, SourceMap, Span};
use crate::project::jinja::ConfigJinja;

/// A description as written; it may hold Jinja (`{{ doc('orders') }}`), rendered later.
#[derive(Clone, Debug)]
pub struct Description {
    pub text: String,
    pub span: Span,
}

/// A generic test attached to a model, seed, source table or column.
#[derive(Clone, Debug)]
pub struct TestDef {
    /// `unique`, `accepted_values`, `dbt_utils.accepted_range`...
    pub test_name: String,
    /// A `name:` given by the user, replacing the generated test name.
    pub custom_name: Option<String>,
    pub column: Option<String>,
    /// Arguments as written (`values`, `to`, `field`...), without config keys.
    pub args: BTreeMap<String, Json>,
    pub config: ConfigLayer,
    pub span: Span,
}

/// A column's properties.
#[derive(Clone, Debug)]
pub struct ColumnProps {
    pub name: String,
    pub description: Option<Description>,
    pub data_type: Option<String>,
    pub tests: Vec<TestDef>,
    pub span: Span,
}

/// Properties of a model or seed.
#[derive(Clone, Debug)]
pub struct NodeProps {
    pub name: String,
    pub span: Span,
    pub description: Option<Description>,
    pub config: ConfigLayer,
    pub columns: Vec<ColumnProps>,
    pub tests: Vec<TestDef>,
    /// For a snapshot defined in YAML (dbt 1.9): what it snapshots, `ref('x')` or
    /// `source('s', 't')`, and where that is written.
    pub relation: Option<(String, Span)>,
}

/// A table of a source.
#[derive(Clone, Debug)]
pub struct SourceTableProps {
    pub name: String,
    pub identifier: Option<String>,
    pub description: Option<Description>,
    pub columns: Vec<ColumnProps>,
    pub tests: Vec<TestDef>,
    pub config: ConfigLayer,
    pub event_time: Option<String>,
    pub span: Span,
}

/// A source: tables that exist in the warehouse and are not built by etlm.
#[derive(Clone, Debug)]
pub struct SourceProps {
    pub name: String,
    pub schema: Option<String>,
    pub database: Option<String>,
    pub description: Option<Description>,
    pub config: ConfigLayer,
    pub tables: Vec<SourceTableProps>,
    pub span: Span,
}

/// Everything read from one property file.
#[derive(Clone, Debug, Default)]
pub struct PropertyFile {
    pub models: Vec<NodeProps>,
    pub seeds: Vec<NodeProps>,
    pub snapshots: Vec<NodeProps>,
    pub sources: Vec<SourceProps>,
    pub unit_tests: Vec<UnitTestDef>,
    /// Entries etlm does not act on (unknown keys).
    pub warnings: Vec<Diagnostic>,
}

/// Top-level keys of dbt property files that describe things etlm does not build or run
/// and that change no result (documentation and semantic-layer metadata).
const METADATA_KEYS: &[&str] =
    &["analyses", "exposures", "groups", "macros", "metrics", "saved_queries", "semantic_models", "version"];

/// Renders a source's schema, database or identifier in place; it stays text.
fn render_name(name: &mut Option<String>, jinja: &ConfigJinja, span: Span, errors: &mut Vec<Diagnostic>) {
    let Some(text) = name.as_deref() else { return };
    match jinja.render(text) {
        Ok(Json::String(rendered)) => *name = Some(rendered),
        Ok(Json::Null) => *name = None,
        Ok(other) => *name = Some(other.to_string()),
        Err(message) => errors.push(
            Diagnostic::error(Code::ConfigRender, format!("could not render `{text}`: {message}"))
                .with_label(span, "in this source"),
        ),
    }
}

/// Keys that configure a test rather than pass it an argument.
const TEST_CONFIG_KEYS: &[&str] = &[
    "alias",
    "database",
    "enabled",
    "error_if",
    "fail_calc",
    "limit",
    "meta",
    "schema",
    "severity",
    "store_failures",
    "store_failures_as",
    "tags",
    "warn_if",
    "where",
];

impl PropertyFile {
    /// Reads a property file; every problem in it is returned.
    pub fn parse(file: FileId, sources: &SourceMap) -> Result<PropertyFile, Vec<Diagnostic>> {
        let yaml = Yaml::parse(file, sources).map_err(|d| vec![d])?;
        let mut errors = Vec::new();
        let mut out = PropertyFile::default();
        if yaml.is_null() {
            return Ok(out);
        }
        let entries = yaml.expect_map("property file").map_err(|d| vec![d])?;
        for (key, _) in entries {
            let warning = match key.name.as_str() {
                "models" | "seeds" | "snapshots" | "sources" | "unit_tests" => continue,
                name if METADATA_KEYS.contains(&name) => continue,
                other => Diagnostic::warning(
                    Code::UnknownPropertyKey,
                    format!("`{other}` is not a key of property files; it is ignored"),
                )
                .with_label(key.span, "ignored"),
            };
            out.warnings.push(warning);
        }
        if let Some(models) = yaml.get("models") {
            out.models = node_list(models, "models", &mut errors);
        }
        if let Some(seeds) = yaml.get("seeds") {
            out.seeds = node_list(seeds, "seeds", &mut errors);
        }
        if let Some(list) = yaml.get("unit_tests") {
            out.unit_tests = collect(unit_tests::parse_list(list, file, sources), &mut errors).unwrap_or_default();
        }
        if let Some(snapshots) = yaml.get("snapshots") {
            out.snapshots = node_list(snapshots, "snapshots", &mut errors);
        }
        if let Some(list) = yaml.get("sources") {
            for item in each(list, "sources", &mut errors) {
                if let Some(s) = collect(source(item), &mut errors) {
                    out.sources.push(s);
                }
            }
        }
        if errors.is_empty() { Ok(out) } else { Err(errors) }
    }

    /// Renders the Jinja in config values, test configs and source schemas, databases and
    /// identifiers (see [`config::render_layer`]).
    pub fn render(&mut self, jinja: &ConfigJinja) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        let tests = |list: &mut Vec<TestDef>, errors: &mut Vec<Diagnostic>| {
            for test in list {
                errors.extend(config::render_layer(&mut test.config, jinja));
            }
        };
        for node in self.models.iter_mut().chain(&mut self.seeds).chain(&mut self.snapshots) {
            errors.extend(config::render_layer(&mut node.config, jinja));
            tests(&mut node.tests, &mut errors);
            for column in &mut node.columns {
                tests(&mut column.tests, &mut errors);
            }
        }
        for test in &mut self.unit_tests {
            errors.extend(config::render_layer(&mut test.config, jinja));
        }
        for source in &mut self.sources {
            errors.extend(config::render_layer(&mut source.config, jinja));
            for name in [&mut source.schema, &mut source.database] {
                render_name(name, jinja, source.span, &mut errors);
            }
            for table in &mut source.tables {
                errors.extend(config::render_layer(&mut table.config, jinja));
                render_name(&mut table.identifier, jinja, table.span, &mut errors);
                tests(&mut table.tests, &mut errors);
                for column in &mut table.columns {
                    tests(&mut column.tests, &mut errors);
                }
            }
        }
        errors
    }
}

fn each<'a>(yaml: &'a Yaml, context: &str, errors: &mut Vec<Diagnostic>) -> &'a [Yaml] {
    yaml.expect_seq(context).unwrap_or_else(|d| {
        errors.push(d);
        &[]
    })
}

fn collect<T>(r: Result<T, Vec<Diagnostic>>, errors: &mut Vec<Diagnostic>) -> Option<T> {
    r.map_err(|e| errors.extend(e)).ok()
}

fn node_list(yaml: &Yaml, context: &str, errors: &mut Vec<Diagnostic>) -> Vec<NodeProps> {
    each(yaml, context, errors).iter().filter_map(|item| collect(node(item, context), errors)).collect()
}

fn name_of(item: &Yaml, context: &str) -> Result<(String, Span), Vec<Diagnostic>> {
    item.expect_map(context).map_err(|d| vec![d])?;
    match item.get("name") {
        Some(n) => Ok((n.expect_string("name").map_err(|d| vec![d])?, n.span)),
        None => Err(vec![
            Diagnostic::error(Code::YamlShape, format!("an entry of `{context}` has no `name`"))
                .with_label(item.span, "add `name:` to this entry"),
        ]),
    }
}

fn description(item: &Yaml) -> Result<Option<Description>, Vec<Diagnostic>> {
    match item.get("description") {
        None => Ok(None),
        Some(d) if d.is_null() => Ok(None),
        Some(d) => Ok(Some(Description { text: d.expect_string("description").map_err(|e| vec![e])?, span: d.span })),
    }
}

fn config_of(item: &Yaml, context: &str) -> Result<ConfigLayer, Vec<Diagnostic>> {
    let mut layer = match item.get("config") {
        Some(c) => config::layer_from_yaml(c, &format!("{context}.config"))?,
        None => ConfigLayer::new(),
    };
    // A source or its table may also give these next to `config:`, as dbt allows.
    if matches!(context, "sources" | "tables") {
        for key in ["freshness", "loaded_at_field"] {
            if let Some(value) = item.get(key) {
                layer.entry(key.to_string()).or_insert_with(|| config::entry_from_yaml(value));
            }
        }
    }
    Ok(layer)
}

fn tests_of(item: &Yaml, column: Option<&str>) -> Result<Vec<TestDef>, Vec<Diagnostic>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let listed = |key| item.get(key).filter(|t: &&Yaml| t.expect_seq(key).map_or(true, |l| !l.is_empty()));
    if let (Some(old), Some(new)) = (listed("tests"), item.get("data_tests")) {
        // dbt refuses both: the same tests are usually listed under each.
        return Err(vec![
            Diagnostic::error(
                Code::YamlShape,
                "`tests` and `data_tests` are both given; keep one (`data_tests` is the newer name)",
            )
            .with_label(new.span, "`data_tests` here")
            .with_label(old.span, "`tests` here"),
        ]);
    }
    for key in ["tests", "data_tests"] {
        if let Some(list) = item.get(key) {
            for t in each(list, key, &mut errors) {
                match test_def(t, column) {
                    Ok(def) => out.push(def),
                    Err(e) => errors.extend(e),
                }
            }
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

fn columns_of(item: &Yaml) -> Result<Vec<ColumnProps>, Vec<Diagnostic>> {
    let Some(list) = item.get("columns") else { return Ok(Vec::new()) };
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for c in each(list, "columns", &mut errors) {
        let parsed = name_of(c, "columns").and_then(|(name, span)| {
            let data_type = c
                .get("data_type")
                .filter(|d| !d.is_null())
                .map(|d| d.expect_string("data_type"))
                .transpose()
                .map_err(|e| vec![e])?;
            Ok(ColumnProps { description: description(c)?, data_type, tests: tests_of(c, Some(&name))?, name, span })
        });
        if let Some(col) = collect(parsed, &mut errors) {
            out.push(col);
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

fn node(item: &Yaml, context: &str) -> Result<NodeProps, Vec<Diagnostic>> {
    let (name, span) = name_of(item, context)?;
    let mut errors = Vec::new();
    let desc = collect(description(item), &mut errors).flatten();
    let config = collect(config_of(item, context), &mut errors).unwrap_or_default();
    let columns = collect(columns_of(item), &mut errors).unwrap_or_default();
    let tests = collect(tests_of(item, None), &mut errors).unwrap_or_default();
    let relation = match item.get("relation").filter(|_| context == "snapshots") {
        Some(r) => collect(r.expect_string("relation").map_err(|d| vec![d]), &mut errors).map(|text| (text, r.span)),
        None => None,
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NodeProps { name, span, description: desc, config, columns, tests, relation })
}

fn source(item: &Yaml) -> Result<SourceProps, Vec<Diagnostic>> {
    let (name, span) = name_of(item, "sources")?;
    let mut errors = Vec::new();
    let opt_string = |key: &str| -> Result<Option<String>, Vec<Diagnostic>> {
        item.get(key).filter(|v| !v.is_null()).map(|v| v.expect_string(key)).transpose().map_err(|e| vec![e])
    };
    let schema = collect(opt_string("schema"), &mut errors).flatten();
    let database = collect(opt_string("database"), &mut errors).flatten();
    let desc = collect(description(item), &mut errors).flatten();
    let config = collect(config_of(item, "sources"), &mut errors).unwrap_or_default();
    let mut tables = Vec::new();
    if let Some(list) = item.get("tables") {
        for t in each(list, "tables", &mut errors) {
            let parsed = name_of(t, "tables").and_then(|(tname, tspan)| {
                let identifier = t
                    .get("identifier")
                    .filter(|v| !v.is_null())
                    .map(|v| v.expect_string("identifier"))
                    .transpose()
                    .map_err(|e| vec![e])?;
                let config = config_of(t, "tables")?;
                let event_time = config.get("event_time").and_then(|e| e.value.as_str().map(str::to_string));
                Ok(SourceTableProps {
                    description: description(t)?,
                    columns: columns_of(t)?,
                    tests: tests_of(t, None)?,
                    config,
                    event_time,
                    identifier,
                    name: tname,
                    span: tspan,
                })
            });
            if let Some(table) = collect(parsed, &mut errors) {
                tables.push(table);
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(SourceProps { name, schema, database, description: desc, config, tables, span })
}

/// One entry of a `tests:` list: `unique`, `{accepted_values: {values: [...]}}`,
/// `{accepted_values: {arguments: {...}, config: {...}}}` or `{name: x, test_name: y, ...}`.
fn test_def(item: &Yaml, column: Option<&str>) -> Result<TestDef, Vec<Diagnostic>> {
    let column = column.map(str::to_string);
    if let YamlValue::Str(name) = &item.value {
        return Ok(TestDef {
            test_name: name.clone(),
            custom_name: None,
            column,
            args: BTreeMap::new(),
            config: ConfigLayer::new(),
            span: item.span,
        });
    }
    let entries = item.expect_map("tests").map_err(|_| vec![item.shape_error("a test name or a mapping", "tests")])?;
    let (test_name, body, span) = match (item.get("test_name"), entries) {
        (Some(tn), _) => (tn.expect_string("test_name").map_err(|e| vec![e])?, item, tn.span),
        (None, [(key, body)]) => (key.name.clone(), body, key.span),
        _ => {
            return Err(vec![
                Diagnostic::error(Code::YamlShape, "a test must be a name or a mapping with exactly one test name")
                    .with_label(item.span, "expected `- unique` or `- accepted_values: {...}`"),
            ]);
        }
    };
    let mut args = BTreeMap::new();
    let mut config = ConfigLayer::new();
    let mut custom_name = None;
    let mut errors = Vec::new();
    for (key, value) in body.expect_map(&test_name).map_err(|e| vec![e])? {
        match key.name.as_str() {
            "test_name" => {}
            "name" => {
                let name = value.expect_string("name").map_err(|e| vec![e])?;
                if let Some(why) = crate::relation::unsafe_name(&name) {
                    errors.push(
                        Diagnostic::error(Code::InvalidConfig, format!("`{name}` cannot name a test: {why}"))
                            .with_label(value.span, "this name")
                            .with_help("a test's name becomes a file name; use letters, digits and `_`"),
                    );
                }
                custom_name = Some(name);
            }
            "arguments" => {
                for (k, v) in value.expect_map("arguments").map_err(|e| vec![e])? {
                    args.insert(k.name.clone(), v.to_json());
                }
            }
            "config" => match config::layer_from_yaml(value, "config") {
                Ok(layer) => config.extend(layer),
                Err(e) => errors.extend(e),
            },
            "column_name" => {
                args.insert("column_name".into(), value.to_json());
            }
            other if TEST_CONFIG_KEYS.binary_search(&other).is_ok() => {
                let name = normalize_key(other);
                debug_assert!(is_known_key(&name));
                config.insert(name, ConfigEntry { value: value.to_json(), span: value.span });
            }
            other => {
                args.insert(other.to_string(), value.to_json());
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(TestDef { test_name, custom_name, column, args, config, span })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tests_in_every_spelling() {
        let map = SourceMap::default();
        let text = "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: status\n        data_tests:\n          - not_null\n          - accepted_values:\n              arguments:\n                values: [a, b]\n              config:\n                severity: warn\n          - relationships:\n              to: ref('customers')\n              field: id\n              where: \"id > 0\"\n";
        let id = map.add("schema.yml", text);
        let pf = PropertyFile::parse(id, &map).unwrap();
        let tests = &pf.models[0].columns[0].tests;
        assert_eq!(tests.len(), 3);
        assert_eq!(tests[1].args["values"], serde_json::json!(["a", "b"]));
        assert_eq!(tests[1].config["severity"].value, "warn");
        assert_eq!(tests[2].args["to"], "ref('customers')");
        assert_eq!(tests[2].config["where"].value, "id > 0");
        assert_eq!(tests[2].column.as_deref(), Some("status"));
    }

    #[test]
    fn test_config_keys_are_sorted() {
        assert!(TEST_CONFIG_KEYS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_string_where_a_list_belongs_is_a_shape_error() {
        let map = SourceMap::default();
        let id = map.add("schema.yml", "models:\n  - name: orders\n    columns: id\n");
        let errs = PropertyFile::parse(id, &map).unwrap_err();
        assert_eq!(errs[0].code, "yaml-shape");
        assert_eq!(errs[0].message, "columns: expected a list, found a string");
    }

    #[test]
    fn tests_and_data_tests_together_are_refused() {
        let map = SourceMap::default();
        let text = "models:\n  - name: orders\n    columns:\n      - name: id\n        tests: [unique]\n        data_tests: [unique]\n";
        let id = map.add("schema.yml", text);
        let errs = PropertyFile::parse(id, &map).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.starts_with("`tests` and `data_tests` are both given"), "{}", errs[0].message);
    }
}
