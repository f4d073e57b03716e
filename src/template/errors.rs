//! Jinja errors as diagnostics: the innermost location is the primary label; each macro
//! call on the way out adds a "called from here" label.

use crate::diagnostics::{Code, Diagnostic, FileId, SourceMap, Span};

/// Converts a render or syntax error of the template in `file` into a diagnostic.
pub fn to_diagnostic(err: &minijinja::Error, file: FileId, sources: &SourceMap) -> Diagnostic {
    // The chain runs from the outermost (the model) to the innermost (deepest macro).
    let mut chain: Vec<&minijinja::Error> = vec![err];
    let mut cur: &dyn std::error::Error = err;
    while let Some(next) = cur.source() {
        if let Some(e) = next.downcast_ref::<minijinja::Error>() {
            chain.push(e);
        }
        cur = next;
    }
    let innermost = *chain.last().expect("chain has the error itself");
    let code = match innermost.kind() {
        minijinja::ErrorKind::SyntaxError => Code::JinjaSyntax,
        minijinja::ErrorKind::UndefinedError => Code::UndefinedVariable,
        minijinja::ErrorKind::UnknownFunction => Code::UnknownFunction,
        minijinja::ErrorKind::UnknownFilter => Code::UnknownFilter,
        minijinja::ErrorKind::TemplateNotFound => Code::TemplateNotFound,
        _ => Code::JinjaRender,
    };
    let kind_text = innermost.kind().to_string();
    let detail = innermost.detail().unwrap_or(&kind_text);
    let message = match innermost.kind() {
        minijinja::ErrorKind::SyntaxError => format!("Jinja syntax error: {detail}"),
        minijinja::ErrorKind::OutOfFuel => format!(
            "the template did not finish within {} million steps, etlm's limit for one render: \
             a loop or a recursion that never ends?",
            crate::project::jinja::python::FUEL / 1_000_000
        ),
        _ => detail.to_string(),
    };
    let mut d = Diagnostic::error(code, message);
    if code == Code::UndefinedVariable && d.message == "undefined value" {
        // Inside macros minijinja cannot name the variable; the source text can.
        // The range is in the text minijinja parsed, which etlm may have rewritten, so it
        // need not fall on the file's character boundaries.
        let source = span_of(innermost, file, sources).map(|span| (span, sources.file(span.file)));
        if let Some(text) = source.as_ref().and_then(|(span, f)| f.text.get(span.start..span.end)) {
            let text = text.trim();
            if !text.is_empty() && text.len() < 80 {
                d.message = format!("`{text}` is undefined");
            }
        }
    }
    let mut first = true;
    for e in chain.iter().rev() {
        let Some(span) = span_of(e, file, sources) else { continue };
        let label = if first { label_for(innermost) } else { "called from here".to_string() };
        d = d.with_label(span, label);
        first = false;
    }
    if d.labels.is_empty() {
        d = d.with_label(Span::file_start(file), "in this file");
    }
    if code == Code::UndefinedVariable {
        d = d.with_help("define it with `{% set %}`, pass it with `--vars`, or check the spelling");
    }
    d
}

fn label_for(e: &minijinja::Error) -> String {
    match e.kind() {
        minijinja::ErrorKind::SyntaxError => "syntax error here".into(),
        minijinja::ErrorKind::UndefinedError => "undefined here".into(),
        _ => "error here".into(),
    }
}

/// Where a Jinja error points: its template name is a project path (or the model's own).
fn span_of(e: &minijinja::Error, default_file: FileId, sources: &SourceMap) -> Option<Span> {
    let line = e.line()?;
    let file = e.name().and_then(|n| sources.find(std::path::Path::new(n))).unwrap_or(default_file);
    let source = sources.file(file);
    match e.range() {
        Some(r) if r.end <= source.text.len() => Some(Span::new(file, r)),
        _ => {
            let start = source.offset(line, 1);
            let text = source.line_text(line);
            let indent = text.len() - text.trim_start().len();
            Some(Span::new(file, start + indent..start + text.len()))
        }
    }
}
