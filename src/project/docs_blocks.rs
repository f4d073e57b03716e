//! `{% docs name %} ... {% enddocs %}` blocks in Markdown files, used by `doc('name')`.

use crate::diagnostics::{Code, Diagnostic, FileId, SourceMap, Span};

/// One docs block.
#[derive(Clone, Debug)]
pub struct DocBlock {
    pub name: String,
    pub text: String,
    pub span: Span,
}

/// Every docs block of a Markdown file.
pub fn parse(file: FileId, sources: &SourceMap) -> Result<Vec<DocBlock>, Diagnostic> {
    let text = sources.file(file).text.clone();
    let mut blocks = Vec::new();
    let mut rest = 0;
    while let Some(open) = find_tag(&text, rest, "docs") {
        let (tag_start, tag_end, name) = open;
        let Some((close_start, close_end, _)) = find_tag(&text, tag_end, "enddocs") else {
            return Err(Diagnostic::error(Code::DocsBlock, format!("docs block `{name}` has no `{{% enddocs %}}`"))
                .with_label(Span::new(file, tag_start..tag_end), "opened here"));
        };
        if name.is_empty() {
            return Err(Diagnostic::error(Code::DocsBlock, "a docs block needs a name")
                .with_label(Span::new(file, tag_start..tag_end), "expected `{% docs name %}`"));
        }
        blocks.push(DocBlock {
            name,
            text: text[tag_end..close_start].trim().to_string(),
            span: Span::new(file, tag_start..tag_end),
        });
        rest = close_end;
    }
    Ok(blocks)
}

/// Finds the next `{% keyword arg %}` (with optional `-` trims) from `from`.
pub(super) fn find_tag(text: &str, from: usize, keyword: &str) -> Option<(usize, usize, String)> {
    let mut pos = from;
    while let Some(i) = text[pos..].find("{%") {
        let start = pos + i;
        // The tag closes after its opening `{%` (`{%}` does not close itself).
        let end = start + 2 + text[start + 2..].find("%}")? + 2;
        let inner = text[start + 2..end - 2].trim_matches('-').trim();
        let mut words = inner.split_whitespace();
        if words.next() == Some(keyword) {
            return Some((start, end, words.next().unwrap_or("").to_string()));
        }
        pos = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_blocks_with_trim_markers() {
        let map = SourceMap::default();
        let id = map.add(
            "docs.md",
            "# t\n{% docs orders %}\nOne row per order.\n{% enddocs %}\n{%- docs x -%}y{%- enddocs -%}",
        );
        let blocks = parse(id, &map).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].name, "orders");
        assert_eq!(blocks[0].text, "One row per order.");
        assert_eq!(blocks[1].text, "y");
    }

    // Regression: #18, `{%}` sliced the tag backwards.
    #[test]
    fn a_lone_percent_brace_is_no_tag() {
        let map = SourceMap::default();
        let id = map.add(
            "docs.md",
            "50{%} off
{% docs d %}x{% enddocs %}",
        );
        assert!(parse(id, &map).is_ok());
        assert_eq!(find_tag("a {%} b", 0, "docs"), None);
    }
}
