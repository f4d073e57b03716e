//! Generic test nodes from YAML: their dbt-style names, what they depend on, and their
//! SQL: the test's macro (`{% test unique(model, column_name) %}`, built in or the
//! user's) called with the YAML arguments, giving a query that returns the failing rows.
//! Each test is rendered once, with a placeholder for its model, which is then spelled as
//! the published relation (`etlm test`) and as the model's audit relation, where a run
//! puts the staged data before publishing it.
//!
//! Two stages: [`generic_test_nodes`] takes the nodes of the project's files and hands
//! on the tests as nodes with their dependencies (during the compile pass, on other
//! cores); [`render_tests`] takes the nodes once ephemeral models are inlined and sets
//! every test's SQL. Lineage's stage renders the tests of the project's own macros again
//! with the columns it found.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use minijinja::value::{Kwargs, Value};
use rayon::prelude::*;
use serde_json::Value as Json;

use super::deps::{Dependencies, SourceIndex};
use super::refs::RefIndex;
use super::render::{Rendering, compile_input};
use super::{Compiler, problems};
use crate::diagnostics::{Code, Collector, Diagnostic, SourceMap, Span};
use crate::graph::ResourceType;
use crate::node::{GenericTest, Node, Nodes};
use crate::project::config::{self, ConfigEntry, ConfigFor};
use crate::project::{ColumnProps, NodeConfig, TestDef};
use crate::relation::Relation;
use crate::template::{RefCall, RelationValue, RenderInput, Renderer, Resolver};

/// dbt's names for a generic test: the full name `{test}_{model}_{args...}` (args sorted
/// by argument name, flattened, every run of other characters than letters, digits and
/// `_` made one `_`; `source_` before the test's name on a source, `{package}_` before a
/// package's test), and the short name its compiled file and stored failures take: the
/// full name under 64 characters, else its first 30 identifying characters and the
/// full name's md5. A `name:` given in YAML is both.
pub fn test_names(def: &TestDef, attached_to: &str, on_source: bool) -> (String, String) {
    if let Some(name) = &def.custom_name {
        return (name.clone(), name.clone());
    }
    let mut args: BTreeMap<&str, &Json> = def.args.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let column = def.column.as_ref().map(|c| Json::String(c.clone()));
    if let Some(c) = &column {
        args.entry("column_name").or_insert(c);
    }
    let mut flat = Vec::new();
    for (key, value) in args {
        if key == "model" {
            continue;
        }
        match value {
            Json::Object(m) => flat.extend(m.values().map(scalar)),
            Json::Array(items) => flat.extend(items.iter().map(scalar)),
            other => flat.push(scalar(other)),
        }
    }
    let clean: Vec<String> = flat.iter().map(|a| sanitize(a)).collect();
    let (package, test) = def.test_name.rsplit_once('.').map_or((None, def.test_name.as_str()), |(p, t)| (Some(p), t));
    let test = if on_source { format!("source_{test}") } else { test.to_string() };
    let test = package.map_or(test.clone(), |p| format!("{p}_{test}"));
    let identifier = format!("{test}_{attached_to}");
    let full = format!("{identifier}_{}", clean.join("__"));
    if full.len() < 64 {
        return (full.clone(), full);
    }
    let hash = crate::hex::md5_hex(&full);
    let short: String = identifier.chars().take(30).collect();
    (full, format!("{short}_{hash}"))
}

/// An argument as Python's `str()` writes it, which dbt's names are made of.
fn scalar(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => "None".into(),
        Json::Bool(true) => "True".into(),
        Json::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_underscore = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
            last_underscore = false;
        } else if !last_underscore {
            out.push('_');
            last_underscore = true;
        }
    }
    out
}

/// Refs and sources written as strings in test arguments (`to: ref('customers')`).
pub fn referenced_in_args(def: &TestDef) -> (Vec<RefCall>, Vec<(String, String)>) {
    let mut refs = Vec::new();
    let mut sources = Vec::new();
    for value in def.args.values() {
        let Some(text) = value.as_str() else { continue };
        let text = text.trim();
        let inner = |prefix: &str| {
            text.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(')'))
                .map(|args| args.split(',').map(|a| a.trim().trim_matches(['\'', '"']).to_string()).collect::<Vec<_>>())
        };
        if let Some(args) = inner("ref(") {
            match args.as_slice() {
                [package, name] => refs.push(RefCall { package: Some(package.clone()), name: name.clone() }),
                [.., name] => refs.push(RefCall { package: None, name: name.clone() }),
                [] => {}
            }
        } else if let Some(args) = inner("source(")
            && let [s, t] = args.as_slice()
        {
            sources.push((s.clone(), t.clone()));
        }
    }
    (refs, sources)
}

/// Whether a test argument is Jinja, as in dbt: `to: ref('customers')` or text holding
/// `{{ var('x') }}`.
fn is_jinja(text: &str) -> bool {
    is_relation_call(text.trim()) || text.contains("{{")
}

/// `ref(...)` or `source(...)` written bare, which stands for `{{ ref(...) }}`.
fn is_relation_call(text: &str) -> bool {
    text.starts_with("ref(") || text.starts_with("source(")
}

/// The queries of built-in tests already rendered, by everything they are made from: the
/// test, its model, column and arguments, and its config (`where`, `store_failures`). A
/// built-in test reads nothing else, and thousands of tests share a few of these
/// (`not_null` of `id`), so each is rendered once.
#[derive(Default)]
pub struct Memo(Mutex<HashMap<String, String>>);

impl Memo {
    /// The key a test's query is kept under; `None` when the query may depend on more:
    /// a project's own test macro, or an argument that is Jinja (`to: ref('x')`).
    fn key(name: &str, def: &TestDef, config: &NodeConfig, model_sql: &str, renderer: &Renderer) -> Option<String> {
        if !renderer.is_builtin(name) || def.args.values().any(|v| v.as_str().is_some_and(is_jinja)) {
            return None;
        }
        serde_json::to_string(&(name, model_sql, &def.column, &def.args, &config.raw)).ok()
    }

    fn get(&self, key: &str) -> Option<String> {
        self.0.lock().expect("memo lock poisoned").get(key).cloned()
    }

    fn keep(&self, key: String, sql: &str) {
        self.0.lock().expect("memo lock poisoned").insert(key, sql.to_string());
    }
}

/// The failing-rows query of a generic test whose model is `model_sql` (a quoted relation,
/// or a parenthesized subquery for ephemeral models), rendered in the context `input`
/// makes, with the config its macro set (`config(fail_calc=...)`). `where` narrows the
/// model first.
pub fn render_generic_test(
    def: &TestDef,
    config: &NodeConfig,
    model_sql: &str,
    model_relation: Option<&Relation>,
    renderer: &Renderer,
    input: impl FnOnce() -> RenderInput,
    memo: &Memo,
    sources: &SourceMap,
) -> Result<RenderedTest, Diagnostic> {
    let Some(name) = renderer.generic_test_macro(&def.test_name) else {
        let known: Vec<String> = renderer.generic_tests().collect();
        let mut d = Diagnostic::error(Code::UnknownTest, format!("there is no generic test `{}`", def.test_name))
            .with_label(def.span, "used here");
        d = match crate::diagnostics::nearest(&def.test_name, known.iter().map(String::as_str)) {
            Some(near) => d.with_help(format!("did you mean `{near}`?")),
            None => d.with_help(format!(
                "known tests: {}; or define `{{% test name(model, column_name) %}}` in macros/",
                known.join(", ")
            )),
        };
        return Err(d);
    };
    let key = Memo::key(&name, def, config, model_sql, renderer);
    // Only etlm's own tests are kept in the memo, and they set no config.
    if let Some(sql) = key.as_deref().and_then(|k| memo.get(k)) {
        return Ok(RenderedTest { sql, audit_sql: None, config: BTreeMap::new(), introspected: false });
    }
    // The context is made only for what is rendered: most tests are found in the memo.
    let input = &input();
    let model = match &config.where_clause {
        Some(w) => format!("(select * from {model_sql} where {w}) dbt_subquery"),
        None => model_sql.to_string(),
    };
    // `model` is a relation, as dbt passes it (package tests check it is one, and read its
    // columns), that renders as the placeholder or subquery the caller spelled.
    let relation = model_relation.cloned().unwrap_or_else(|| Relation::new("", model_sql));
    let model = Value::from_object(RelationValue { relation, cte: Some(model) });
    let mut kwargs: Vec<(String, Value)> = vec![("model".into(), model)];
    // An argument rendered on its own may ask for columns too (its render records apart).
    let mut introspected = false;
    if let Some(column) = &def.column {
        kwargs.push(("column_name".into(), Value::from_safe_string(column.clone())));
    }
    for (key, value) in &def.args {
        let value = match value.as_str().map(str::trim) {
            Some(text) if is_relation_call(text) => {
                introspected = true;
                renderer.eval_inline(text, input, def.span)?
            }
            Some(text) if is_jinja(text) => {
                introspected = true;
                Value::from_safe_string(renderer.render_inline(text, input, def.span)?)
            }
            _ => crate::project::jinja::to_value(value),
        };
        kwargs.push((key.clone(), value));
    }
    let rendered = renderer
        .call_macro_recorded(&name, &[Value::from(Kwargs::from_iter(kwargs))], input, sources)
        .map_err(|d| d.with_label(def.span, "the test is declared here"))?;
    let sql = format!("{}\n", rendered.sql);
    if let Some(key) = key {
        memo.keep(key, &sql);
    }
    let introspected = introspected || rendered.recorded.introspected;
    Ok(RenderedTest { sql, audit_sql: None, config: rendered.recorded.config.into_iter().collect(), introspected })
}

/// A generic test node: the node, what it depends on (with where each is named) and the
/// problems found building it.
type BuiltTest = (Box<Node>, Vec<(String, Span)>, Vec<Diagnostic>);

/// The generic tests declared in YAML (on models, seeds and sources) as nodes, with the
/// problems of their configs.
pub(super) fn generic_test_nodes(
    c: &Compiler,
    nodes: &Nodes,
    refs: &RefIndex,
    by_source: &SourceIndex,
) -> (Vec<BuiltTest>, Vec<Diagnostic>) {
    let Compiler { project, sources, .. } = *c;
    let mut problems = Vec::new();
    let mut generic: Vec<(String, TestDef, String)> = project
        .models
        .par_iter()
        .flat_map_iter(|m| {
            let id = format!("{}.{}.{}", m.resource_type.as_str(), m.package, m.name);
            let props = m.props.as_ref().filter(|_| nodes.contains_key(&id));
            let tests = props.into_iter().flat_map(|p| all_tests(&p.tests, &p.columns));
            tests.map(move |t| (id.clone(), t, m.name.clone()))
        })
        .collect();
    for s in &project.seeds {
        if let Some(p) = &s.props {
            let id = format!("seed.{}.{}", s.package, s.name);
            generic.extend(all_tests(&p.tests, &p.columns).map(|t| (id.clone(), t, s.name.clone())));
        }
    }
    for src in &project.sources {
        let id = format!("source.{}.{}.{}", src.package, src.source_name, src.table.name);
        let label = format!("{}_{}", src.source_name, src.table.name);
        generic.extend(all_tests(&src.table.tests, &src.table.columns).map(|t| (id.clone(), t, label.clone())));
    }
    let test_folder = project.settings.tests.resolve(&[project.name().to_string()]);
    let test_configs: Vec<(String, Result<NodeConfig, Vec<Diagnostic>>)> = generic
        .par_iter()
        .map(|(attached, def, label)| {
            let (name, short) = test_names(def, label, attached.starts_with("source."));
            let mut layer = config::merge(&[&test_folder, &def.config]);
            // As dbt: a long name's compiled file and stored failures take the short one.
            if short != name {
                layer.entry("alias".into()).or_insert(ConfigEntry { value: Json::String(short), span: def.span });
            }
            (name, NodeConfig::from_layer(&layer, ConfigFor::Test))
        })
        .collect();
    // Ids first, in order (a repeated name takes a suffix), then the nodes on every core.
    let existing: HashSet<&str> = nodes.keys().map(String::as_str).collect();
    let mut taken: HashSet<String> = HashSet::new();
    let mut enabled = Vec::new();
    for ((attached, def, _), (name, config)) in generic.into_iter().zip(test_configs) {
        let config = match config {
            Ok(c) if c.enabled => c,
            Ok(_) => continue,
            Err(e) => {
                problems.extend(e);
                continue;
            }
        };
        let package = nodes[&attached].package();
        let mut unique_id = format!("test.{package}.{name}");
        let mut n = 2;
        while existing.contains(unique_id.as_str()) || taken.contains(&unique_id) {
            unique_id = format!("test.{package}.{name}_{n}");
            n += 1;
        }
        taken.insert(unique_id.clone());
        enabled.push((unique_id, attached, def, name, config));
    }
    let built: Vec<BuiltTest> = enabled
        .into_par_iter()
        .map(|(unique_id, attached, def, name, config)| {
            let mut problems = Vec::new();
            let mut list = vec![(attached.clone(), def.span)];
            let (referenced, srcs) = referenced_in_args(&def);
            let package = nodes[&attached].package();
            for call in referenced {
                match refs.resolve(package, &call) {
                    Some(dep) => list.push((dep.to_string(), def.span)),
                    None => {
                        problems.push(problems::unknown_ref(&unique_id, &call.name, def.span, refs.by_name(), nodes))
                    }
                }
            }
            for (s, t) in srcs {
                match by_source.get(&(s.clone(), t.clone())) {
                    Some(dep) => list.push((dep.to_string(), def.span)),
                    None => problems.push(problems::unknown_source(&unique_id, &s, &t, def.span, by_source)),
                }
            }
            let fqn = test_fqn(&nodes[&attached].fqn, &name);
            // A generic test lives in the YAML file that declares it.
            let path = sources.file(def.span.file).path.clone();
            let node = Node {
                generic_test: Some(GenericTest { def, attached_to: attached }),
                ..Node::new(unique_id, ResourceType::Test, name, fqn, path, config)
            };
            (Box::new(node), list, problems)
        })
        .collect();
    (built, problems)
}

/// Adds the generic test nodes and their dependencies, with the problems found building
/// them.
pub(super) fn add_generic_tests(
    (tests, problems): (Vec<BuiltTest>, Vec<Diagnostic>),
    nodes: &mut Nodes,
    deps: &mut Dependencies,
    diags: &mut Collector,
) {
    for (node, list, problems) in tests {
        diags.extend(problems);
        deps.insert(node.unique_id.clone(), list);
        nodes.insert(node.unique_id.clone(), node);
    }
    diags.extend(problems);
}

/// Sets every generic test's SQL; a test that asks for columns not known yet waits for
/// lineage (`rendering.pending`).
pub(super) fn render_tests(
    c: &Compiler,
    nodes: &mut Nodes,
    resolver: &Arc<dyn Resolver>,
    rendering: &mut Rendering,
    diags: &mut Collector,
) {
    let deferring = rendering.deferring();
    for (id, result) in render_generic_tests(c, nodes, resolver, |_| true) {
        if result.as_ref().map_or(true, |t| t.introspected) {
            rendering.introspecting_tests.insert(id.clone());
        }
        match result {
            Ok(RenderedTest { sql, audit_sql, config, .. }) => {
                let node = nodes.get_mut(&id).expect("rendered ids are nodes");
                node.compiled_sql = Some(sql);
                node.audit_sql = audit_sql;
                apply_macro_config(node, config);
            }
            Err(d) if d.code == crate::template::UNKNOWN_COLUMNS => {
                rendering.pending.insert(id, d);
            }
            Err(d) if super::render::deferrable(c, &d) => {
                rendering.unrendered.insert(id, d);
            }
            Err(_) if deferring => {}
            Err(d) => diags.push(d),
        }
    }
}

/// Each generic test's failing-rows query against the published relation, and against
/// the audit relation where the attached node is built (seeds and non-ephemeral models).
pub(super) fn render_generic_tests(
    c: &Compiler,
    nodes: &Nodes,
    resolver: &Arc<dyn Resolver>,
    only: impl Fn(&Node) -> bool,
) -> Vec<(String, Result<RenderedTest, Diagnostic>)> {
    let tests: Vec<&Node> = nodes.values().map(Box::as_ref).filter(|n| n.generic_test.is_some() && only(n)).collect();
    let memo = Memo::default();
    tests
        .par_iter()
        .map(|node| {
            let test = node.generic_test.as_ref().expect("filtered on generic tests");
            let attached = &nodes[&test.attached_to];
            let input = || compile_input(node, resolver.clone(), false);
            // etlm's own tests render once with a placeholder for the model (tests alike
            // share the query), then it is spelled both ways. Other tests may query the
            // model while they render (`run_query`), so they see its published name, which the
            // audit version replaces with the staged one.
            const MODEL: &str = "__etlm_test_model__";
            let own = c.renderer.generic_test_macro(&test.def.test_name).is_some_and(|m| c.renderer.is_builtin(&m));
            let published = attached.relation.as_ref().map(Relation::to_string);
            let model_sql = match published.as_deref() {
                Some(name) if !own => name,
                _ => MODEL,
            };
            let rendered = render_generic_test(
                &test.def,
                &node.config,
                model_sql,
                attached.relation.as_ref(),
                c.renderer,
                input,
                &memo,
                c.sources,
            );
            let result = rendered.map(|RenderedTest { sql, config, introspected, .. }| match &attached.relation {
                Some(relation) => {
                    let audited = attached.resource_type.is_built();
                    // Against the staged data, a test reads the staged version wherever it
                    // names the model (a package test's `compare_model: ref('itself')`, say).
                    let audit_sql = audited.then(|| {
                        let staged = relation.audit().to_string();
                        sql.replace(&relation.to_string(), &staged).replace(MODEL, &staged)
                    });
                    RenderedTest { sql: sql.replace(MODEL, &relation.to_string()), audit_sql, config, introspected }
                }
                None => {
                    let ephemeral = attached.compiled_sql.as_deref().unwrap_or_default().trim();
                    let sql = sql.replace(MODEL, &format!("(\n{ephemeral}\n) dbt_subquery"));
                    RenderedTest { sql, audit_sql: None, config, introspected }
                }
            });
            (node.unique_id.clone(), result)
        })
        .collect()
}

/// A generic test's query, against the published relation and the staged one (where
/// the model is audited), the config its macro set, and whether its render asked for
/// columns (or rendered an argument on its own, which may).
pub struct RenderedTest {
    pub sql: String,
    pub audit_sql: Option<String>,
    pub config: BTreeMap<String, Json>,
    pub introspected: bool,
}

/// Sets the config a test's macro set (`config(fail_calc=...)`) where YAML did not.
pub(super) fn apply_macro_config(node: &mut Node, config: BTreeMap<String, Json>) {
    for (key, value) in config {
        node.config.raw.entry(key).or_insert(value);
    }
}

fn all_tests<'a>(tests: &'a [TestDef], columns: &'a [ColumnProps]) -> impl Iterator<Item = TestDef> + 'a {
    tests.iter().cloned().chain(columns.iter().flat_map(|c| c.tests.iter().cloned()))
}

/// A generic test's fqn: its attached node's package and folders, then the test's name.
fn test_fqn(attached: &[String], name: &str) -> Vec<String> {
    let mut fqn: Vec<String> = attached[..attached.len().saturating_sub(1)].to_vec();
    fqn.push(name.to_string());
    fqn
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::diagnostics::{FileId, Span};

    fn def(name: &str, column: Option<&str>, args: &[(&str, Json)]) -> TestDef {
        TestDef {
            test_name: name.into(),
            custom_name: None,
            column: column.map(String::from),
            args: args.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            config: Default::default(),
            span: Span::file_start(FileId::default()),
        }
    }

    #[test]
    fn names_follow_dbt() {
        let names = |def: &TestDef, on: &str| test_names(def, on, false).0;
        assert_eq!(names(&def("unique", Some("order_id"), &[]), "orders"), "unique_orders_order_id");
        let av = def("accepted_values", Some("status"), &[("values", serde_json::json!(["placed", "shipped"]))]);
        assert_eq!(names(&av, "orders"), "accepted_values_orders_status__placed__shipped");
        let rel =
            def("relationships", Some("customer_id"), &[("to", "ref('customers')".into()), ("field", "id".into())]);
        assert_eq!(names(&rel, "orders"), "relationships_orders_customer_id__id__ref_customers_");
        assert_eq!(referenced_in_args(&rel).0, vec![RefCall { package: None, name: "customers".into() }]);
        let source = test_names(&def("not_null", Some("id"), &[]), "raw_orders", true);
        assert_eq!(source, ("source_not_null_raw_orders_id".into(), "source_not_null_raw_orders_id".into()));
        let packaged = def("dbt_utils.expression_is_true", None, &[("expression", "a > 0".into())]);
        assert_eq!(names(&packaged, "orders"), "dbt_utils_expression_is_true_orders_a_0");
        assert_eq!(
            names(&def("my_check", None, &[]), "orders"),
            "my_check_orders_",
            "no arguments: dbt's trailing `_`"
        );
    }

    /// Figures from dbt's manifest of its jaffle_shop project.
    #[test]
    fn a_long_name_is_kept_whole_with_a_short_one_for_files() {
        let values = serde_json::json!(["placed", "shipped", "completed", "return_pending", "returned"]);
        let av = def("accepted_values", Some("status"), &[("values", values), ("quote", false.into())]);
        let (full, short) = test_names(&av, "orders", false);
        assert_eq!(full, "accepted_values_orders_status__False__placed__shipped__completed__return_pending__returned");
        assert_eq!(&short[..23], "accepted_values_orders_");
        assert_eq!(short.len(), 23 + 32);
        let av = def(
            "accepted_values",
            Some("status"),
            &[("values", serde_json::json!(["placed", "shipped", "completed", "return_pending", "returned"]))],
        );
        assert_eq!(test_names(&av, "orders", false).1, "accepted_values_orders_1ce6ab157c285f7cd2ac656013faf758");
    }
}
