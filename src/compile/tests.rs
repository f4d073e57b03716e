//! Generic test nodes from YAML: their dbt-style names and what they depend on.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::project::TestDef;

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
    let hex: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
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
        } else if let Some(args) = inner("source(") {
            if let [s, t] = args.as_slice() {
                sources.push((s.clone(), t.clone()));
            }
        }
    }
    (refs, sources)
}

#[cfg(test)]
mod tests {
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
