//! Renders diagnostics for people (rustc's layout) and for machines (JSON).

use std::fmt::Write;

use serde::Serialize;

use super::{Diagnostic, Label, SourceMap};

/// Renders one diagnostic as text, with a caret snippet for every label.
pub fn render_human(d: &Diagnostic, sources: &SourceMap) -> String {
    let mut out = format!("{}[{}]: {}\n", d.severity, d.code, d.message);
    let gutter = d
        .labels
        .iter()
        .map(|l| sources.file(l.span.file).line_col(l.span.start).0.to_string().len())
        .max()
        .unwrap_or(1);
    let pad = " ".repeat(gutter);
    for (i, label) in d.labels.iter().enumerate() {
        let file = sources.file(label.span.file);
        let (line, col) = file.line_col(label.span.start);
        let arrow = if i == 0 { "-->" } else { ":::" };
        let _ = writeln!(out, "{pad}{arrow} {}:{line}:{col}", file.path.display());
        let _ = writeln!(out, "{pad} |");
        let text = file.line_text(line);
        let _ = writeln!(out, "{line:>gutter$} | {text}");
        let _ = writeln!(out, "{pad} | {}", underline(label, text, col, &file, i == 0));
        if i + 1 == d.labels.len() {
            let _ = writeln!(out, "{pad} |");
        }
    }
    for note in &d.notes {
        let _ = writeln!(out, "{pad} = note: {note}");
    }
    for help in &d.help {
        let _ = writeln!(out, "{pad} = help: {help}");
    }
    out
}

fn underline(label: &Label, line_text: &str, col: usize, file: &super::SourceFile, primary: bool) -> String {
    let (end_line, end_col) = file.line_col(label.span.end);
    let (start_line, _) = file.line_col(label.span.start);
    let line_chars = line_text.chars().count();
    let width =
        if end_line == start_line { end_col.saturating_sub(col) } else { (line_chars + 1).saturating_sub(col) }.max(1);
    let indent: String = line_text.chars().take(col - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    let mark = if primary { "^" } else { "-" };
    let mut s = format!("{indent}{}", mark.repeat(width));
    if !label.message.is_empty() {
        s.push(' ');
        s.push_str(&label.message);
    }
    s
}

#[derive(Serialize)]
struct JsonLabel {
    file: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    message: String,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    severity: super::Severity,
    code: &'a str,
    message: &'a str,
    file: Option<String>,
    line: Option<usize>,
    column: Option<usize>,
    labels: Vec<JsonLabel>,
    notes: &'a [String],
    help: &'a [String],
}

/// Renders one diagnostic as a single JSON object with the same fields as the text form.
pub fn render_json(d: &Diagnostic, sources: &SourceMap) -> serde_json::Value {
    let labels: Vec<JsonLabel> = d
        .labels
        .iter()
        .map(|l| {
            let file = sources.file(l.span.file);
            let (line, column) = file.line_col(l.span.start);
            let (end_line, end_column) = file.line_col(l.span.end);
            JsonLabel {
                file: file.path.display().to_string(),
                line,
                column,
                end_line,
                end_column,
                message: l.message.clone(),
            }
        })
        .collect();
    let first = labels.first();
    let json = JsonDiagnostic {
        severity: d.severity,
        code: d.code.as_str(),
        message: &d.message,
        file: first.map(|l| l.file.clone()),
        line: first.map(|l| l.line),
        column: first.map(|l| l.column),
        labels,
        notes: &d.notes,
        help: &d.help,
    };
    serde_json::to_value(json).expect("diagnostics serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{Code, Span};

    #[test]
    fn renders_like_rustc() {
        let map = SourceMap::default();
        let text = "select *\n    from {{ ref('stg_ordrs') }}\n";
        let id = map.add("models/orders.sql", text);
        let start = text.find("{{").unwrap();
        let end = text.find("}}").unwrap() + 2;
        let d = Diagnostic::error(Code::UnknownRef, "model `orders` refers to `stg_ordrs`")
            .with_label(Span::new(id, start..end), "no model, seed or source has this name")
            .with_help("did you mean `stg_orders`?");
        let expected = "error[unknown-ref]: model `orders` refers to `stg_ordrs`
 --> models/orders.sql:2:10
  |
2 |     from {{ ref('stg_ordrs') }}
  |          ^^^^^^^^^^^^^^^^^^^^^^ no model, seed or source has this name
  |
  = help: did you mean `stg_orders`?
";
        assert_eq!(render_human(&d, &map), expected);
    }
}
