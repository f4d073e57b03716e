//! Generic test nodes from YAML: their dbt-style names, what they depend on, and their
//! SQL: the test's macro (`{% test unique(model, column_name) %}`, built in or the
//! user's) called with the YAML arguments, giving a query that returns the failing rows.
//! Each test is rendered twice: against the published relation (`etlm test`) and against
//! the model's audit relation, where a run puts the staged data before publishing it.

use std::collections::BTreeMap;

use minijinja::value::{Kwargs, Value};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::diagnostics::{Diagnostic, SourceMap};
use crate::project::{NodeConfig, TestDef};
use crate::template::{RenderInput, Renderer};

/// dbt's test name: `{test}_{model}_{args...}`, args sorted by name and flattened,
/// hashed when longer than 63 characters.
pub fn test_name(def: &TestDef, attached_to: &str) -> String {
    if let Some(name) = &def.custom_name {
        return name.clone();
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
    let identifier = def.test_name.replace('.', "_");
    let full = if clean.is_empty() {
        format!("{identifier}_{attached_to}")
    } else {
        format!("{identifier}_{attached_to}_{}", clean.join("__"))
    };
    if full.len() <= 63 {
        return full;
    }
    let hash = Sha256::digest(full.as_bytes());
    let hex = crate::hex::hex(&hash[..16]);
    let short: String = identifier.chars().take(30).collect();
    format!("{short}_{hex}")
}

fn scalar(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => "None".into(),
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
pub fn referenced_in_args(def: &TestDef) -> (Vec<String>, Vec<(String, String)>) {
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
            if let Some(last) = args.last() {
                refs.push(last.clone());
            }
        } else if let Some(args) = inner("source(")
            && let [s, t] = args.as_slice()
        {
            sources.push((s.clone(), t.clone()));
        }
    }
    (refs, sources)
}

/// The macro a test name calls: `unique` and `dbt_utils.unique` both call `test_unique`.
pub fn test_macro(test_name: &str) -> String {
    format!("test_{}", test_name.rsplit('.').next().unwrap_or(test_name))
}

/// The failing-rows query of a generic test whose model is `model_sql` (a quoted relation,
/// or a parenthesized subquery for ephemeral models). `where` narrows the model first.
pub fn render_generic_test(
    def: &TestDef,
    config: &NodeConfig,
    model_sql: &str,
    renderer: &Renderer,
    input: &RenderInput,
    sources: &SourceMap,
) -> Result<String, Diagnostic> {
    let name = test_macro(&def.test_name);
    if !renderer.has_macro(&name) {
        let known: Vec<&str> = renderer.generic_tests().collect();
        let mut d = Diagnostic::error("unknown-test", format!("there is no generic test `{}`", def.test_name))
            .with_label(def.span, "used here");
        d = match crate::diagnostics::nearest(&def.test_name, known.iter().copied()) {
            Some(near) => d.with_help(format!("did you mean `{near}`?")),
            None => d.with_help(format!(
                "known tests: {}; or define `{{% test name(model, column_name) %}}` in macros/",
                known.join(", ")
            )),
        };
        return Err(d);
    }
    let model = match &config.where_clause {
        Some(w) => format!("(select * from {model_sql} where {w}) dbt_subquery"),
        None => model_sql.to_string(),
    };
    let mut kwargs: Vec<(String, Value)> = vec![("model".into(), Value::from_safe_string(model))];
    if let Some(column) = &def.column {
        kwargs.push(("column_name".into(), Value::from_safe_string(column.clone())));
    }
    for (key, value) in &def.args {
        let value = match value.as_str().map(str::trim) {
            // `to: ref('customers')` and `{{ var('x') }}` are Jinja, as in dbt.
            Some(text) if text.starts_with("ref(") || text.starts_with("source(") => {
                Value::from_safe_string(renderer.render_inline(&format!("{{{{ {text} }}}}"), input, def.span)?)
            }
            Some(text) if text.contains("{{") => {
                Value::from_safe_string(renderer.render_inline(text, input, def.span)?)
            }
            _ => crate::template::to_value(value),
        };
        kwargs.push((key.clone(), value));
    }
    let sql = renderer
        .call_macro(&name, &[Value::from(Kwargs::from_iter(kwargs))], input, sources)
        .map_err(|d| d.with_label(def.span, "the test is declared here"))?;
    Ok(format!("{sql}\n"))
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
        assert_eq!(test_name(&def("unique", Some("order_id"), &[]), "orders"), "unique_orders_order_id");
        let av = def("accepted_values", Some("status"), &[("values", serde_json::json!(["placed", "shipped"]))]);
        assert_eq!(test_name(&av, "orders"), "accepted_values_orders_status__placed__shipped");
        let rel =
            def("relationships", Some("customer_id"), &[("to", "ref('customers')".into()), ("field", "id".into())]);
        assert_eq!(test_name(&rel, "orders"), "relationships_orders_customer_id__id__ref_customers_");
        assert_eq!(referenced_in_args(&rel).0, vec!["customers".to_string()]);
    }
}
