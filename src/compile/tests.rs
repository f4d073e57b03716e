//! Generic test nodes from YAML: their dbt-style names, what they depend on, and their
//! SQL: the test's macro (`{% test unique(model, column_name) %}`, built in or the
//! user's) called with the YAML arguments, giving a query that returns the failing rows.
//! Each test is rendered once, with a placeholder for its model, which is then spelled as
//! the published relation (`etlm test`) and as the model's audit relation, where a run
//! puts the staged data before publishing it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use minijinja::value::{Kwargs, Value};
use serde_json::Value as Json;

use crate::diagnostics::{Diagnostic, SourceMap};
use crate::project::{NodeConfig, TestDef};
use crate::relation::Relation;
use crate::template::{RefCall, RelationValue, RenderInput, Renderer};

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
) -> Result<(String, BTreeMap<String, Json>), Diagnostic> {
    let Some(name) = renderer.generic_test_macro(&def.test_name) else {
        let known: Vec<String> = renderer.generic_tests().collect();
        let mut d = Diagnostic::error("unknown-test", format!("there is no generic test `{}`", def.test_name))
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
        return Ok((sql, BTreeMap::new()));
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
    if let Some(column) = &def.column {
        kwargs.push(("column_name".into(), Value::from_safe_string(column.clone())));
    }
    for (key, value) in &def.args {
        let value = match value.as_str().map(str::trim) {
            Some(text) if is_relation_call(text) => renderer.eval_inline(text, input, def.span)?,
            Some(text) if is_jinja(text) => Value::from_safe_string(renderer.render_inline(text, input, def.span)?),
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
    Ok((sql, rendered.recorded.config.into_iter().collect()))
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
