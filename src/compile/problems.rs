//! The diagnostics the compile pipeline reports: unknown refs and sources, cycles, SQL
//! syntax errors mapped back to the model file.

use std::collections::BTreeMap;

use crate::diagnostics::{Code, Diagnostic, SourceMap, Span, nearest};
use crate::node::{Node, Nodes};
use crate::sql::PositionMap;

pub(super) fn unknown_ref(
    from: &str,
    name: &str,
    span: Span,
    by_name: &BTreeMap<String, String>,
    nodes: &Nodes,
) -> Diagnostic {
    let kind = from.split('.').next().unwrap_or("node");
    let short = from.split('.').next_back().unwrap_or(from);
    let mut d =
        Diagnostic::error(Code::UnknownRef, format!("{kind} `{short}` refers to `{name}`, which does not exist"))
            .with_label(span, "no model, seed or source has this name");
    if let Some(near) = nearest(name, by_name.keys().map(String::as_str)) {
        let path = nodes.get(&by_name[near]).map(|n| n.path.display().to_string()).unwrap_or_default();
        d = d.with_help(format!("did you mean `{near}` ({path})?"));
    }
    d
}

pub(super) fn unknown_source(
    from: &str,
    s: &str,
    t: &str,
    span: Span,
    by_source: &BTreeMap<(String, String), String>,
) -> Diagnostic {
    let short = from.split('.').next_back().unwrap_or(from);
    let mut d =
        Diagnostic::error(Code::UnknownSource, format!("`{short}` reads source `{s}.{t}`, which is not declared"))
            .with_label(span, "no source table has this name");
    let all: Vec<String> = by_source.keys().map(|(a, b)| format!("{a}.{b}")).collect();
    if let Some(near) = nearest(&format!("{s}.{t}"), all.iter().map(String::as_str)) {
        d = d.with_help(format!("did you mean `{near}`?"));
    } else {
        d = d.with_help("declare it under `sources:` in a YAML file");
    }
    d
}

pub(super) fn cycle_diagnostic(
    cycle: &[String],
    nodes: &Nodes,
    deps: &BTreeMap<String, Vec<(String, Span)>>,
) -> Diagnostic {
    let name = |id: &str| nodes.get(id).map_or(id.to_string(), |n| n.name.clone());
    let mut path: Vec<String> = cycle.iter().map(|id| format!("`{}`", name(id))).collect();
    path.push(format!("`{}`", name(&cycle[0])));
    let mut d = Diagnostic::error(Code::DependencyCycle, format!("dependency cycle: {}", path.join(" -> ")));
    // Each member's label sits where it refers to the previous member of the cycle.
    for (i, id) in cycle.iter().enumerate() {
        let prev = &cycle[(i + cycle.len() - 1) % cycle.len()];
        let Some(span) = deps.get(id).and_then(|l| l.iter().find(|(d, _)| d == prev)).map(|(_, s)| *s) else {
            continue;
        };
        d = d.with_label(span, format!("`{}` depends on `{}` here", name(id), name(prev)));
    }
    for id in cycle {
        if let Some(n) = nodes.get(id) {
            d = d.with_note(format!("`{}` is defined in {}", n.name, n.path.display()));
        }
    }
    d.with_help("a model cannot depend on itself through its refs: remove one of these refs")
}

pub(super) fn sql_diagnostic(
    node: &Node,
    sql: &str,
    err: &crate::sql::SqlError,
    sources: &SourceMap,
    target_path: &str,
) -> Diagnostic {
    let compiled_path = format!("{target_path}/compiled/{}", node.compiled_path().display());
    let Some(file) = node.file else {
        // A generic test: its SQL comes from a macro; point at its YAML declaration.
        let test = node.generic_test.as_ref().expect("nodes with SQL and no file are generic tests");
        return Diagnostic::error(
            Code::SqlSyntax,
            format!("SQL syntax error in test `{}`: {}", node.name, err.message),
        )
        .with_label(test.def.span, "the test declared here renders SQL that does not parse")
        .with_note(format!("rendered SQL, line {}, column {}:\n{sql}", err.line, err.column));
    };
    let raw = sources.file(file);
    let compiled_map = crate::diagnostics::SourceMap::default();
    let cid = compiled_map.add(compiled_path.clone(), sql.to_string());
    let offset = compiled_map.file(cid).offset(err.line, err.column);
    let src_offset = PositionMap::new(&raw.text, sql).to_source(offset);
    let end = raw.text[src_offset..].find(|c: char| c.is_whitespace()).map_or(raw.text.len(), |e| src_offset + e);
    Diagnostic::error(Code::SqlSyntax, format!("SQL syntax error in `{}`: {}", node.name, err.message))
        .with_label(
            Span::new(file, src_offset..end.max(src_offset + 1).min(raw.text.len())),
            "the SQL parser stopped here",
        )
        .with_note(format!("compiled SQL: {compiled_path}:{}:{}", err.line, err.column))
}
