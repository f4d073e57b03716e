//! `unknown-column` and `ambiguous-column` diagnostics: a [`Problem`] found in compiled
//! SQL, pointed at the model file the user edits, with the compiled location as a note.

use super::Problem;
use super::walk::ProblemKind;
use crate::diagnostics::{Code, Diagnostic, SourceMap, Span, nearest};
use crate::node::Node;
use crate::sql::PositionMap;

pub(super) fn diagnostic(node: &Node, problem: &Problem, sources: &SourceMap, target_path: &str) -> Diagnostic {
    let sql = node.compiled_sql.as_deref().unwrap_or_default();
    let compiled_path = format!("{target_path}/compiled/{}", node.path.display());
    let note = format!("compiled SQL: {compiled_path}:{}:{}", problem.line, problem.column);
    let mut d = match &problem.kind {
        ProblemKind::Unknown { qualifier, available } => unknown(&problem.name, qualifier.as_deref(), available),
        ProblemKind::Ambiguous { relations } => ambiguous(&problem.name, relations),
    };
    if let Some(file) = node.file {
        let compiled = SourceMap::default();
        let cid = compiled.add(compiled_path, sql.to_string());
        let offset = compiled.file(cid).offset(problem.line, problem.column);
        let raw = sources.file(file);
        let start = PositionMap::new(&raw.text, sql).to_source(offset);
        // Underline the name when the source has it there, else one character.
        let len = if raw.text[start..].to_lowercase().starts_with(&problem.name.to_lowercase()) {
            problem.name.len()
        } else {
            1
        };
        let end = (start + len).min(raw.text.len());
        let label = match problem.kind {
            ProblemKind::Unknown { .. } => "no such column",
            ProblemKind::Ambiguous { .. } => "more than one relation has this column",
        };
        d = d.with_label(Span::new(file, start..end), label);
    }
    d.with_note(note)
}

fn unknown(name: &str, qualifier: Option<&str>, available: &[(String, Vec<String>)]) -> Diagnostic {
    let rels: Vec<String> = available.iter().map(|(r, _)| format!("`{r}`")).collect();
    let message = match (qualifier, rels.as_slice()) {
        (Some(q), [rel]) if rel.trim_matches('`') != q => format!("`{name}` is not a column of `{q}` ({rel})"),
        (_, []) => format!("`{name}` is not a column: the query reads no relation"),
        (_, [one]) => format!("`{name}` is not a column of {one}"),
        (_, many) => format!("`{name}` is not a column of {}", or_list(many, "or")),
    };
    let mut d = Diagnostic::error(Code::UnknownColumn, message);
    let all = available.iter().flat_map(|(_, cols)| cols.iter().map(String::as_str));
    if let Some(near) = nearest(name, all) {
        d = d.with_help(format!("did you mean `{near}`?"));
    }
    for (rel, cols) in available {
        let list: Vec<String> = cols.iter().map(|c| format!("`{c}`")).collect();
        d = d.with_help(if list.is_empty() {
            format!("`{rel}` has no columns")
        } else {
            format!("`{rel}` has {}", list.join(", "))
        });
    }
    d
}

fn ambiguous(name: &str, relations: &[(String, String)]) -> Diagnostic {
    let rels: Vec<String> = relations.iter().map(|(r, _)| format!("`{r}`")).collect();
    let quals: Vec<String> = relations.iter().map(|(_, q)| format!("`{q}.{name}`")).collect();
    let verb = if rels.len() == 2 { "both have it" } else { "all have it" };
    Diagnostic::error(Code::AmbiguousColumn, format!("`{name}` is ambiguous: {} {verb}", or_list(&rels, "and")))
        .with_help(format!("qualify it with the relation it should come from: {}", or_list(&quals, "or")))
}

/// `a`, `a and b`, `a, b and c`.
fn or_list(items: &[String], word: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {word} {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_column_lists_each_relation_and_suggests_the_nearest_name() {
        let available = vec![("stg_payments".to_string(), vec!["amount".to_string(), "order_id".to_string()])];
        let d = unknown("amont", None, &available);
        assert_eq!(d.message, "`amont` is not a column of `stg_payments`");
        assert_eq!(d.help, ["did you mean `amount`?", "`stg_payments` has `amount`, `order_id`"]);
        let q = unknown("x", Some("p"), &available);
        assert_eq!(q.message, "`x` is not a column of `p` (`stg_payments`)");
    }

    #[test]
    fn unknown_column_over_several_relations_names_them_all() {
        let available = vec![
            ("orders".to_string(), vec!["id".to_string()]),
            ("customers".to_string(), vec!["name".to_string()]),
            ("payments".to_string(), vec![]),
        ];
        let d = unknown("total", None, &available);
        assert_eq!(d.message, "`total` is not a column of `orders`, `customers` or `payments`");
        assert_eq!(d.help, ["`orders` has `id`", "`customers` has `name`", "`payments` has no columns"]);
        assert_eq!(unknown("x", None, &[]).message, "`x` is not a column: the query reads no relation");
    }

    #[test]
    fn ambiguous_column_names_both_relations() {
        let d = ambiguous("id", &[("orders".into(), "o".into()), ("customers".into(), "c".into())]);
        assert_eq!(d.message, "`id` is ambiguous: `orders` and `customers` both have it");
        assert_eq!(d.help, ["qualify it with the relation it should come from: `o.id` or `c.id`"]);
    }
}
