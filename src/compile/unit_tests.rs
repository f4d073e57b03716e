//! Unit tests (`unit_tests:`) as nodes: the tested model's SQL rendered with every input
//! (`ref`, `source`, `this`) replaced by a CTE of the given rows, the overrides applied,
//! and each fixture checked against what etlm knows of its input's columns.
//!
//! The fixtures' SQL is written at run time (`run::unit`), not here: the column types
//! it casts to are the engine's own when the input's relation exists, as dbt reads them
//! from the warehouse; the compile-time schema (seed CSVs, source YAML, upstream models'
//! planned output) fills in when it does not, so no warehouse table has to exist.
//!
//! The compile's last stage: takes the nodes, the DAG and the lineage; adds the unit
//! test nodes to both, each after the model it tests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value as Json;

use super::Compiler;
use super::analyze::relation_columns;
use super::dag::graph_info;
use super::render::{Rendering, Resolution, compile_input};
use crate::diagnostics::{Code, Collector, Diagnostic, SourceMap, Span, nearest};
use crate::graph::{Dag, ResourceType};
use crate::lineage::Lineage;
use crate::node::{GivenRows, Node, Nodes, UnitInput, UnitTestCase, ephemeral_cte};
use crate::project::config::{ConfigFor, merge};
use crate::project::unit_tests::{Fixture, FixtureFormat, Row, Rows, UnitTestDef};
use crate::project::{Materialization, NodeConfig, Project};
use crate::relation::Relation;
use crate::template::{RefCall, RelationValue, Renderer, Resolver};

/// An input as written: `this`, `ref([package,] name)` or `source(source, table)`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum InputRef {
    This,
    Ref(String),
    Source(String, String),
}

/// Reads `ref('x')`, `ref('pkg', 'x')`, `source('s', 't')` or `this`.
fn parse_input(text: &str) -> Option<InputRef> {
    let text = text.trim();
    if text == "this" {
        return Some(InputRef::This);
    }
    let (function, rest) = text.split_once('(')?;
    let args: Vec<&str> = rest.strip_suffix(')')?.split(',').map(str::trim).collect();
    let unquoted: Option<Vec<&str>> = args
        .iter()
        .map(|a| {
            a.strip_prefix('\'').and_then(|a| a.strip_suffix('\'')).or_else(|| a.strip_prefix('"')?.strip_suffix('"'))
        })
        .collect();
    match (function.trim(), unquoted?.as_slice()) {
        ("ref", [name]) | ("ref", [_, name]) => Some(InputRef::Ref(name.to_string())),
        ("source", [source, table]) => Some(InputRef::Source(source.to_string(), table.to_string())),
        _ => None,
    }
}

/// The CTE name of an input, as dbt names the ephemeral models it stands in with.
fn cte_name(input: &InputRef, model: &str) -> String {
    match input {
        InputRef::This => ephemeral_cte(model),
        InputRef::Ref(name) => ephemeral_cte(name),
        InputRef::Source(s, t) => format!("__dbt__cte__{s}__{t}"),
    }
}

/// Renders the tested model's refs, sources and `this` as the CTEs of its inputs.
#[derive(Debug)]
struct GivenResolver {
    refs: BTreeMap<String, RelationValue>,
    sources: BTreeMap<(String, String), RelationValue>,
    this: Option<String>,
    /// Columns of relations, as the model's own render sees them.
    columns: Arc<dyn Resolver>,
}

impl Resolver for GivenResolver {
    fn resolve_ref(&self, call: &RefCall) -> Option<RelationValue> {
        let r = self.refs.get(&call.name)?;
        Some(RelationValue { relation: r.relation.clone(), cte: r.cte.clone() })
    }

    fn resolve_source(&self, source: &str, table: &str) -> Option<Relation> {
        Some(self.sources.get(&(source.to_string(), table.to_string()))?.relation.clone())
    }

    fn resolve_source_value(&self, source: &str, table: &str) -> Option<RelationValue> {
        let r = self.sources.get(&(source.to_string(), table.to_string()))?;
        Some(RelationValue { relation: r.relation.clone(), cte: r.cte.clone() })
    }

    fn this_cte(&self) -> Option<String> {
        self.this.clone()
    }

    fn columns(&self, relation: &Relation) -> Option<Vec<(String, Option<String>)>> {
        self.columns.columns(relation)
    }
}

/// What compiling the unit tests needs of the rest of the compile.
struct Context<'a> {
    pub project: &'a Project,
    pub nodes: &'a Nodes,
    pub lineage: &'a Lineage,
    pub renderer: &'a Renderer,
    /// Answers `adapter.get_columns_in_relation` and the like from the compile's lineage.
    pub columns: Arc<dyn Resolver>,
    pub sources: &'a SourceMap,
}

/// Adds the enabled unit tests to `nodes` and `dag`, with the problems that stand.
pub(super) fn add_unit_tests(
    c: &Compiler,
    nodes: &mut Nodes,
    dag: &mut Dag,
    lineage: &Lineage,
    resolution: &Resolution,
    rendering: &Rendering,
    diags: &mut Collector,
) {
    // Unit tests see the columns lineage found (only worked out when there are any).
    let known = if c.project.unit_tests.is_empty() { BTreeMap::new() } else { relation_columns(nodes, lineage) };
    let cx = Context {
        project: c.project,
        nodes,
        lineage,
        renderer: c.renderer,
        columns: resolution.with_columns(known),
        sources: c.sources,
    };
    let (unit_nodes, unit_problems) = unit_test_nodes(&cx);
    diags.extend(unit_problems.into_iter().filter(|d| rendering.keeps(d)));
    for node in unit_nodes {
        dag.add_node(graph_info(&node));
        dag.add_edges(&[(node.depends_on[0].as_str(), node.unique_id.as_str())]);
        nodes.insert(node.unique_id.clone(), node);
    }
}

/// The enabled unit tests as nodes, or every problem found in them.
fn unit_test_nodes(cx: &Context<'_>) -> (Vec<Box<Node>>, Vec<Diagnostic>) {
    if cx.project.unit_tests.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let names = Names {
        refs: cx
            .nodes
            .values()
            .filter(|n| matches!(n.resource_type, ResourceType::Model | ResourceType::Seed))
            .map(|n| (n.name.as_str(), &**n))
            .collect(),
        sources: cx.nodes.values().filter_map(|n| Some(((n.source_name.as_deref()?, n.name.as_str()), &**n))).collect(),
    };
    let mut problems = Vec::new();
    let mut out: Vec<Box<Node>> = Vec::new();
    let mut seen: BTreeMap<String, Span> = BTreeMap::new();
    for def in &cx.project.unit_tests {
        let unique_id = format!("unit_test.{}.{}.{}", cx.project.name(), def.model, def.name);
        if let Some(prev) = seen.insert(unique_id.clone(), def.span) {
            problems.push(
                Diagnostic::error(
                    Code::DuplicateUnitTest,
                    format!("model `{}` has two unit tests named `{}`", def.model, def.name),
                )
                .with_label(def.span, "defined again here")
                .with_label(prev, "first defined here"),
            );
            continue;
        }
        match unit_test_node(cx, &names, def, unique_id) {
            Ok(Some(node)) => out.push(node),
            Ok(None) => {}
            Err(e) => problems.extend(e),
        }
    }
    (out, problems)
}

/// What inputs' names point at: models and seeds by name, source tables.
struct Names<'a> {
    refs: BTreeMap<&'a str, &'a Node>,
    sources: BTreeMap<(&'a str, &'a str), &'a Node>,
}

fn unit_test_node(
    cx: &Context<'_>,
    names: &Names<'_>,
    def: &UnitTestDef,
    unique_id: String,
) -> Result<Option<Box<Node>>, Vec<Diagnostic>> {
    let name = cx.project.name();
    let mut fqn = vec![name.to_string()];
    // As dbt: the folders of the YAML file under its model path, then model and test.
    let folders: Vec<String> = def.path.iter().skip(1).map(|p| p.to_string_lossy().into_owned()).collect();
    fqn.extend(folders.iter().take(folders.len().saturating_sub(1)).cloned());
    fqn.extend([def.model.clone(), def.name.clone()]);
    let folder_config = cx.project.settings.unit_tests.resolve(&fqn);
    let config = NodeConfig::from_layer(&merge(&[&folder_config, &def.config]), ConfigFor::Test)?;
    if !config.enabled {
        return Ok(None);
    }
    let Some(model) = tested_model(cx, def)? else { return Ok(None) };
    let mut errors = Vec::new();
    let is_incremental = incremental_branch(def, model, &mut errors);
    let (resolver, inputs) = given_inputs(cx, names, def, model, &mut errors);
    if is_incremental && resolver.this.is_none() {
        errors.push(
            Diagnostic::error(
                Code::InvalidUnitTest,
                format!("unit test `{}` of incremental model `{}` must give rows for `this`", def.name, def.model),
            )
            .with_label(def.span, "with `is_incremental: true`")
            .with_help("add `- input: this` with the rows the table holds before the run (`rows: []` for none)"),
        );
    }
    let expected = expected_rows(cx, def, model, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let (expect, expect_columns) = expected.expect("no errors, so the expected rows were read");

    let resolver: Arc<dyn Resolver> = Arc::new(resolver);
    let mut input = compile_input(model, resolver, is_incremental);
    if model.is_windowed() {
        // A batch's window is what the test's vars say (`etlm_start`, `etlm_end`, `ds`).
        input.extra = crate::window::variables();
        for (key, value) in input.extra.iter_mut() {
            if let Some(given) = def.overrides.vars.get(*key) {
                *value = given.clone();
            }
        }
    }
    input.overrides = Some(Arc::new(def.overrides.clone()));
    let file = model.file.expect("models have a file");
    let text = model.raw_sql.as_deref().expect("models have SQL");
    let path = model.path.display().to_string();
    let rendered = cx
        .renderer
        .render(&cx.renderer.compile(file, &path, text), &input, cx.sources)
        .map_err(|d| vec![d.with_note(format!("while rendering `{}` for unit test `{}`", def.model, def.name))])?;

    let case = UnitTestCase { model: model.unique_id.clone(), sql: rendered.sql, inputs, expect, expect_columns };
    Ok(Some(Box::new(Node {
        depends_on: vec![model.unique_id.clone()],
        description: def.description.as_ref().map(|d| d.text.clone()).unwrap_or_default(),
        vars_used: rendered.recorded.vars,
        macros_used: rendered.recorded.macros,
        unit_test: Some(Box::new(case)),
        ..Node::new(unique_id, ResourceType::UnitTest, def.name.clone(), fqn, def.path.clone(), config)
    })))
}

/// The model a unit test tests; `None` when that model is disabled (so is the test, as
/// in dbt).
fn tested_model<'a>(cx: &Context<'a>, def: &UnitTestDef) -> Result<Option<&'a Node>, Vec<Diagnostic>> {
    if let Some(model) = cx.nodes.get(&format!("model.{}.{}", cx.project.name(), def.model)) {
        return Ok(Some(model));
    }
    if cx.project.models.iter().any(|m| m.name == def.model) {
        return Ok(None);
    }
    let models = cx.nodes.values().filter(|n| n.resource_type == ResourceType::Model).map(|n| n.name.as_str());
    let mut d = Diagnostic::error(
        Code::InvalidUnitTest,
        format!("unit test `{}` tests `{}`, which is no model", def.name, def.model),
    )
    .with_label(def.model_span, "no model has this name");
    if let Some(near) = nearest(&def.model, models) {
        d = d.with_help(format!("did you mean `{near}`?"));
    }
    Err(vec![d])
}

/// Which branch of a model that calls `is_incremental()` is tested: a unit test of an
/// incremental one must say (dbt's rule), with `overrides: macros: is_incremental`.
fn incremental_branch(def: &UnitTestDef, model: &Node, errors: &mut Vec<Diagnostic>) -> bool {
    let calls = model.raw_sql.as_deref().is_some_and(|sql| sql.contains("is_incremental"));
    match def.overrides.macros.get("is_incremental") {
        Some(Json::Bool(b)) => *b,
        _ if calls && model.config.materialized == Materialization::Incremental => {
            errors.push(
                Diagnostic::error(
                    Code::InvalidUnitTest,
                    format!("unit test `{}` of incremental model `{}` must set `is_incremental`", def.name, def.model),
                )
                .with_label(def.span, "in this unit test")
                .with_help("add `overrides: {macros: {is_incremental: true}}` (or `false`)"),
            );
            false
        }
        _ => false,
    }
}

/// Each given input resolved to the node it stands in for, with its rows and what the
/// compile knows of its columns; and the resolver that renders the model over them.
/// Every input the model reads needs rows.
fn given_inputs(
    cx: &Context<'_>,
    names: &Names<'_>,
    def: &UnitTestDef,
    model: &Node,
    errors: &mut Vec<Diagnostic>,
) -> (GivenResolver, Vec<UnitInput>) {
    let mut resolver =
        GivenResolver { refs: BTreeMap::new(), sources: BTreeMap::new(), this: None, columns: cx.columns.clone() };
    let mut inputs = Vec::new();
    let mut given_ids = BTreeSet::new();
    let mut unresolved = false;
    for given in &def.given {
        let parsed = parse_input(&given.input);
        let found: Option<&Node> = match &parsed {
            Some(InputRef::This) => Some(model),
            Some(InputRef::Ref(n)) => names.refs.get(n.as_str()).copied(),
            Some(InputRef::Source(s, t)) => names.sources.get(&(s.as_str(), t.as_str())).copied(),
            None => {
                errors.push(
                    Diagnostic::error(Code::InvalidUnitTest, format!("`{}` is not an input", given.input))
                        .with_label(given.input_span, "expected `ref('name')`, `source('source', 'table')` or `this`"),
                );
                continue;
            }
        };
        let (Some(parsed), Some(node)) = (parsed, found) else {
            unresolved = true;
            let mut d = Diagnostic::error(
                Code::InvalidUnitTest,
                format!("unit test `{}` gives rows for `{}`, which does not exist", def.name, given.input.trim()),
            )
            .with_label(given.input_span, "no model, seed or source by this name");
            let inputs: Vec<String> = model.depends_on.iter().map(|d| input_spelling(&cx.nodes[d])).collect();
            if let Some(near) = nearest(given.input.trim(), inputs.iter().map(String::as_str)) {
                d = d.with_help(format!("did you mean `{near}`?"));
            }
            errors.push(d);
            continue;
        };
        let cte = cte_name(&parsed, &model.name);
        let value = RelationValue {
            relation: node.relation.clone().unwrap_or_else(|| Relation::new("", node.name.clone())),
            cte: Some(cte.clone()),
        };
        match &parsed {
            InputRef::This => resolver.this = Some(cte.clone()),
            InputRef::Ref(n) => {
                resolver.refs.insert(n.clone(), value);
                given_ids.insert(node.unique_id.clone());
            }
            InputRef::Source(s, t) => {
                resolver.sources.insert((s.clone(), t.clone()), value);
                given_ids.insert(node.unique_id.clone());
            }
        }
        let schema = cx.lineage.nodes.get(&node.unique_id);
        let columns: Vec<(String, Option<String>)> = schema
            .map(|s| s.columns.iter().map(|c| (c.name.clone(), c.data_type.as_deref().map(sql_type))).collect())
            .unwrap_or_default();
        let label = given.input.trim().to_string();
        let rows = match given_rows(cx, def, &given.fixture, node, &label) {
            Ok(rows) => rows,
            Err(d) => {
                errors.push(d);
                continue;
            }
        };
        if let GivenRows::Values(rows) = &rows
            && schema.is_some_and(|s| s.columns_complete)
        {
            errors.extend(unknown_columns(rows, &columns, &label, &given.fixture));
        }
        inputs.push(UnitInput { label, cte, relation: node.relation.clone(), columns, rows });
    }
    // Once the given ones all resolved: every input the model reads needs rows.
    for dep in model.depends_on.iter().filter(|d| !unresolved && !given_ids.contains(*d)) {
        let spelled = input_spelling(&cx.nodes[dep]);
        errors.push(
            Diagnostic::error(
                Code::InvalidUnitTest,
                format!("unit test `{}` gives no rows for `{spelled}`, which `{}` reads", def.name, def.model),
            )
            .with_label(def.span, "in this unit test")
            .with_help(format!("add `- input: {spelled}` under `given:` (`rows: []` for none)")),
        );
    }
    (resolver, inputs)
}

/// The expected rows and the columns they compare (in order of first mention; none for
/// SQL rows or no rows, which compare every column), checked against the model's output.
fn expected_rows(
    cx: &Context<'_>,
    def: &UnitTestDef,
    model: &Node,
    errors: &mut Vec<Diagnostic>,
) -> Option<(GivenRows, Vec<String>)> {
    let expect = match given_rows(cx, def, &def.expect, model, "expect") {
        Ok(rows) => rows,
        Err(d) => {
            errors.push(d);
            return None;
        }
    };
    let mut columns: Vec<String> = Vec::new();
    if let GivenRows::Values(rows) = &expect {
        if let Some(schema) = cx.lineage.nodes.get(&model.unique_id).filter(|s| s.columns_complete) {
            let output: Vec<(String, Option<String>)> = schema.columns.iter().map(|c| (c.name.clone(), None)).collect();
            errors.extend(unknown_columns(rows, &output, &format!("the output of `{}`", def.model), &def.expect));
        }
        for (column, _) in rows.iter().flatten() {
            if !columns.iter().any(|c| c.eq_ignore_ascii_case(column)) {
                columns.push(column.clone());
            }
        }
    }
    Some((expect, columns))
}

/// How a given entry names a node: `ref('name')` or `source('source', 'table')`.
fn input_spelling(node: &Node) -> String {
    match &node.source_name {
        Some(s) => format!("source('{s}', '{}')", node.name),
        None => format!("ref('{}')", node.name),
    }
}

/// The rows of a fixture: as written, or for a seed given without rows, its file's rows.
fn given_rows(
    cx: &Context<'_>,
    def: &UnitTestDef,
    fixture: &Fixture,
    node: &Node,
    label: &str,
) -> Result<GivenRows, Diagnostic> {
    match &fixture.rows {
        Rows::Values(rows) => Ok(GivenRows::Values(rows.clone())),
        Rows::Sql(sql) => Ok(GivenRows::Sql(sql.clone())),
        Rows::Absent if node.resource_type == ResourceType::Seed && fixture.format == FixtureFormat::Dict => {
            let path = cx.project.root.join(&node.path);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Diagnostic::error(Code::Io, format!("could not read `{}`: {e}", node.path.display())))?;
            let rows = crate::project::unit_tests::parse_csv(&text).map_err(|m| {
                Diagnostic::error(Code::InvalidUnitTest, m).with_label(fixture.span, "rows from this seed")
            })?;
            Ok(GivenRows::Values(rows))
        }
        Rows::Absent => {
            Err(Diagnostic::error(Code::InvalidUnitTest, format!("unit test `{}` gives `{label}` no rows", def.name))
                .with_label(fixture.span, "add `rows:` (`rows: []` for none)"))
        }
        Rows::Fixture(_) => unreachable!("fixture files are attached when the project loads"),
    }
}

/// A column a row names that the input does not have (compared case-insensitively).
fn unknown_columns(rows: &[Row], columns: &[(String, Option<String>)], of: &str, fixture: &Fixture) -> Vec<Diagnostic> {
    let mut reported = BTreeSet::new();
    let mut out = Vec::new();
    for (column, _) in rows.iter().flatten() {
        let known = columns.iter().any(|(c, _)| c.eq_ignore_ascii_case(column));
        if known || !reported.insert(column.to_lowercase()) {
            continue;
        }
        let names: Vec<String> = columns.iter().map(|(c, _)| format!("`{c}`")).collect();
        let span = fixture.keys.iter().find(|(k, _)| k == column).map_or(fixture.span, |(_, s)| *s);
        out.push(
            Diagnostic::error(Code::UnknownColumn, format!("`{column}` is not a column of {}", backticked(of)))
                .with_label(span, "no such column")
                .with_help(format!("{} has {}", backticked(of), names.join(", "))),
        );
    }
    out
}

fn backticked(label: &str) -> String {
    match label.starts_with("the output") {
        true => label.to_string(),
        false => format!("`{label}`"),
    }
}

/// A compile-time column type as SQL both engines cast to: a seed's inferred Arrow type
/// gets its SQL name; a type declared in YAML stays as written.
fn sql_type(data_type: &str) -> String {
    let t = data_type.to_ascii_lowercase();
    let named = match t.as_str() {
        "int8" | "int16" | "int32" => "integer",
        "int64" | "uint8" | "uint16" | "uint32" | "uint64" => "bigint",
        "float16" | "float32" | "float64" => "double precision",
        "utf8" | "largeutf8" | "utf8view" => "text",
        "boolean" => "boolean",
        "date32" | "date64" => "date",
        _ if t.starts_with("timestamp(") => "timestamp",
        _ if t.starts_with("decimal128(") || t.starts_with("decimal256(") => {
            return format!("decimal{}", &t[t.find('(').expect("checked")..]);
        }
        _ => return data_type.to_string(),
    };
    named.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_spelling_of_an_input() {
        assert_eq!(parse_input(" this "), Some(InputRef::This));
        assert_eq!(parse_input("ref('orders')"), Some(InputRef::Ref("orders".into())));
        assert_eq!(parse_input("ref(\"pkg\", 'orders')"), Some(InputRef::Ref("orders".into())));
        assert_eq!(parse_input("source('raw', 'orders')"), Some(InputRef::Source("raw".into(), "orders".into())));
        assert_eq!(parse_input("ref(orders)"), None);
        assert_eq!(parse_input("orders"), None);
    }

    #[test]
    fn seed_types_get_their_sql_names() {
        assert_eq!(sql_type("int64"), "bigint");
        assert_eq!(sql_type("utf8"), "text");
        assert_eq!(sql_type("decimal128(10, 2)"), "decimal(10, 2)");
        assert_eq!(sql_type("timestamp(nanosecond, none)"), "timestamp");
        assert_eq!(sql_type("varchar(20)"), "varchar(20)");
    }
}
