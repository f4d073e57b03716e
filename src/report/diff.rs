//! `etlm diff` output: text for a terminal (coloured when asked), Markdown for a pull
//! request comment, JSON for machines. All three render the same [`Diff`].

use std::fmt::Write;

use crate::state::diff::{Change, Class, Diff, Impact, Modified, NodeRef, Reason, Use};

/// The JSON document: the diff plus a summary.
pub fn json(diff: &Diff) -> String {
    let doc = serde_json::json!({
        "summary": summary_counts(diff),
        "added": diff.added,
        "removed": diff.removed,
        "renamed": diff.renamed,
        "modified": diff.modified,
    });
    serde_json::to_string_pretty(&doc).expect("diff serializes")
}

fn summary_counts(diff: &Diff) -> serde_json::Value {
    serde_json::json!({
        "added": diff.added.len(),
        "removed": diff.removed.len(),
        "renamed": diff.renamed.len(),
        "modified": diff.modified.len(),
        "breaking": diff.count(Class::Breaking),
        "values_may_change": diff.count(Class::ValuesMayChange),
    })
}

/// The counts line that opens a report, with Markdown emphasis when `markdown`.
fn summary_line(diff: &Diff, markdown: bool) -> String {
    let c = summary_counts(diff);
    let (strong, em) = if markdown { ("**", "*") } else { ("", "") };
    format!(
        "{strong}{} modified{strong}, {} added, {} removed, {} renamed; {strong}{} breaking{strong}, {em}{} values may change{em}\n\n",
        c["modified"], c["added"], c["removed"], c["renamed"], c["breaking"], c["values_may_change"]
    )
}

/// Terminal colours, or none.
#[derive(Clone, Copy)]
pub struct Palette {
    on: bool,
}

impl Palette {
    pub fn new(on: bool) -> Palette {
        Palette { on }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.on { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }

    fn class(self, class: Class) -> String {
        match class {
            Class::Breaking => self.paint("1;31", class.as_str()),
            Class::ValuesMayChange => self.paint("33", class.as_str()),
            Class::NonBreaking => self.paint("32", class.as_str()),
        }
    }
}

/// Plain text, one block per changed node.
pub fn human(diff: &Diff, palette: Palette) -> String {
    let mut out = String::new();
    if is_empty(diff) {
        return "no changes against the other manifest\n".to_string();
    }
    out.push_str(&summary_line(diff, false));
    for n in &diff.added {
        let _ =
            writeln!(out, "{} {} {} ({})", palette.paint("32", "+"), n.resource_type, n.name, palette.class(n.class));
    }
    for n in &diff.removed {
        let _ =
            writeln!(out, "{} {} {} ({})", palette.paint("31", "-"), n.resource_type, n.name, palette.class(n.class));
    }
    for r in &diff.renamed {
        let _ = writeln!(
            out,
            "{} {} {} -> {} ({})",
            palette.paint("33", "~"),
            r.to.resource_type,
            r.from.name,
            r.to.name,
            palette.class(r.class)
        );
    }
    if !(diff.added.is_empty() && diff.removed.is_empty() && diff.renamed.is_empty()) {
        out.push('\n');
    }
    for m in &diff.modified {
        let _ =
            writeln!(out, "{} {} {} ({})", palette.paint("33", "~"), m.resource_type, m.name, palette.class(m.class));
        for change in &m.changes {
            let _ = writeln!(out, "    why: {}", describe(change, &m.resource_type));
        }
        for impact in &m.impacts {
            let _ = writeln!(out, "    {}", impact_line(impact));
        }
        let _ = writeln!(out, "    {}", reaches(m));
        if let Some(sql) = &m.sql_diff {
            for line in sql.lines() {
                let painted = match line.chars().next() {
                    Some('+') if !line.starts_with("+++") => palette.paint("32", line),
                    Some('-') if !line.starts_with("---") => palette.paint("31", line),
                    Some('@') => palette.paint("36", line),
                    _ => line.to_string(),
                };
                let _ = writeln!(out, "    {painted}");
            }
        }
        out.push('\n');
    }
    out
}

/// Markdown for a pull request comment: a summary table, then one section per model.
pub fn markdown(diff: &Diff) -> String {
    let mut out = String::from("## etlm diff\n\n");
    if is_empty(diff) {
        out.push_str("No changes against the other manifest.\n");
        return out;
    }
    out.push_str(&summary_line(diff, true));
    out.push_str("| node | type | change | class | why |\n| --- | --- | --- | --- | --- |\n");
    let row = |out: &mut String, n: &NodeRef, change: &str| {
        let _ = writeln!(out, "| `{}` | {} | {change} | {} | |", n.name, n.resource_type, bold_class(n.class));
    };
    for n in &diff.added {
        row(&mut out, n, "added");
    }
    for n in &diff.removed {
        row(&mut out, n, "removed");
    }
    for r in &diff.renamed {
        let _ = writeln!(
            out,
            "| `{}` | {} | renamed from `{}` | {} | |",
            r.to.name,
            r.to.resource_type,
            r.from.name,
            bold_class(r.class)
        );
    }
    for m in &diff.modified {
        let why: Vec<String> = m.changes.iter().map(|c| describe(c, &m.resource_type)).collect();
        let _ = writeln!(
            out,
            "| `{}` | {} | modified | {} | {} |",
            m.name,
            m.resource_type,
            bold_class(m.class),
            why.join("; ")
        );
    }
    for m in &diff.modified {
        out.push('\n');
        out.push_str(&model_section(m));
    }
    out
}

/// A model's section: its column changes and impacts, then its SQL diff, folded.
fn model_section(m: &Modified) -> String {
    let mut blocks = vec![format!("### `{}` ({})", m.name, m.class.as_str()), reaches(m)];
    if !m.impacts.is_empty() {
        blocks.push(m.impacts.iter().map(|i| format!("- {}", impact_line(i))).collect::<Vec<_>>().join("\n"));
    }
    if let Some(sql) = &m.sql_diff {
        blocks.push(format!(
            "<details><summary>compiled SQL</summary>\n\n```diff\n{}\n```\n\n</details>",
            sql.trim_end()
        ));
    }
    blocks.join("\n\n") + "\n"
}

fn is_empty(diff: &Diff) -> bool {
    diff.added.is_empty() && diff.removed.is_empty() && diff.renamed.is_empty() && diff.modified.is_empty()
}

fn bold_class(class: Class) -> String {
    match class {
        Class::Breaking => format!("**{}**", class.as_str()),
        Class::ValuesMayChange => format!("*{}*", class.as_str()),
        Class::NonBreaking => class.as_str().to_string(),
    }
}

fn code(name: &str) -> String {
    format!("`{name}`")
}

/// One reason in words (a seed has data, not SQL).
fn describe(change: &Change, resource_type: &str) -> String {
    let names: Vec<String> = change.names.iter().map(|n| code(n)).collect();
    let names = names.join(", ");
    match change.reason {
        Reason::Body if resource_type == "seed" => "its data changed".to_string(),
        Reason::Body => "compiled SQL changed".to_string(),
        Reason::Config => format!("config changed: {names}"),
        Reason::Relation => format!("relation is now {names}"),
        Reason::Vars => format!("var {names} changed"),
        Reason::Macros => format!("macro {names} changed"),
        Reason::UpstreamSchema => format!("columns of upstream {names} changed"),
        Reason::UpstreamRetyped => format!("upstream column retyped in {names}"),
    }
}

/// The downstream models a modified node reaches, or that it reaches none.
fn reaches(m: &Modified) -> String {
    if m.reaches.is_empty() {
        "reaches no model".to_string()
    } else {
        let models: Vec<String> = m.reaches.iter().map(|r| code(r)).collect();
        format!("reaches {}", models.join(", "))
    }
}

fn impact_line(impact: &Impact) -> String {
    let what = match impact.change {
        "rows" => "its rows may change".to_string(),
        "expression" => format!("column {} is computed differently", code(&impact.column)),
        change => format!("column {} {change}", code(&impact.column)),
    };
    let mut line = match &impact.detail {
        Some(detail) => format!("{what} {detail} ({})", impact.class.as_str()),
        None => format!("{what} ({})", impact.class.as_str()),
    };
    if impact.downstream.is_empty() {
        line.push_str(": reaches no model");
    } else if impact.change == "rows" {
        let models: std::collections::BTreeSet<&str> = impact.downstream.iter().map(|u| u.model.as_str()).collect();
        let models: Vec<String> = models.into_iter().map(code).collect();
        let _ = write!(line, ": read by {}", models.join(", "));
    } else {
        let uses: Vec<String> = impact.downstream.iter().map(use_text).collect();
        let _ = write!(line, ": read by {}", uses.join(", "));
    }
    if impact.type_unknown {
        line.push_str("; its type is unknown here, so a retype cannot be ruled out");
    }
    line
}

fn use_text(u: &Use) -> String {
    let target = match &u.column {
        Some(column) => code(&format!("{}.{column}", u.model)),
        None => code(&u.model),
    };
    let mut notes = vec![u.how.clone()];
    if !u.via.is_empty() {
        let via: Vec<String> = u.via.iter().map(|v| code(v)).collect();
        notes.push(format!("via {}", via.join(" -> ")));
    }
    if u.updated {
        notes.push("updated in this change".to_string());
    }
    format!("{target} ({})", notes.join(", "))
}
