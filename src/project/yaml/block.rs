//! The commonest YAML, read line by line without a YAML parser (property files of a large
//! project are megabytes of it): block mappings and sequences of single-line scalars
//! (plain, `'...'` and `"..."` without escapes) with comments. It builds exactly the tree,
//! spans included, that the event path (`plain`) or serde-saphyr builds, and returns
//! `None` for anything else (flow collections, block or multi-line scalars, anchors, tags,
//! escapes, tabs, documents markers, repeated keys...), which then takes those paths. The
//! unit tests compare it with them.

use granit_parser::ScalarStyle;

use super::{Yaml, YamlKey, YamlValue};
use crate::diagnostics::{FileId, Span};

pub(super) fn read(text: &str, file: FileId) -> Option<Yaml> {
    if text.contains(['\t', '\r', '\u{feff}']) {
        return None;
    }
    let mut lines = Vec::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let indent = body.len() - body.trim_start_matches(' ').len();
        let content = &body[indent..];
        if !content.is_empty() && !content.starts_with('#') {
            if indent == 0 && (content.starts_with("---") || content.starts_with("...") || content.starts_with('%')) {
                return None;
            }
            lines.push(Line { start, indent, end: start + body.len() });
        }
        start += line.len();
    }
    let first = lines.first()?;
    if first.indent != 0 {
        return None;
    }
    let mut reader = Reader { text, file, lines, next: 0 };
    let root = reader.block(0)?;
    (reader.next == reader.lines.len()).then_some(root)
}

/// A line with content: where it starts, how far it is indented, where it ends.
struct Line {
    start: usize,
    indent: usize,
    end: usize,
}

struct Reader<'a> {
    text: &'a str,
    file: FileId,
    lines: Vec<Line>,
    /// The next line to read.
    next: usize,
}

impl Reader<'_> {
    fn span(&self, range: std::ops::Range<usize>) -> Span {
        Span::new(self.file, range)
    }

    /// The block on the next line, indented by `indent`: a sequence when it starts with
    /// `- `, else a mapping.
    fn block(&mut self, indent: usize) -> Option<Yaml> {
        let line = self.lines.get(self.next)?;
        if self.is_entry(line.start + indent, line.end) {
            self.sequence(indent, false)
        } else {
            self.mapping(indent, indent)
        }
    }

    /// Whether `-` followed by a space starts the text at `at`.
    fn is_entry(&self, at: usize, end: usize) -> bool {
        let rest = &self.text[at..end];
        rest == "-" || rest.starts_with("- ")
    }

    /// The entries of a block sequence at `indent`. `indentless` is set for a sequence
    /// under a mapping key at the key's own indentation, whose span is its first item's.
    fn sequence(&mut self, indent: usize, indentless: bool) -> Option<Yaml> {
        let mut items = Vec::new();
        let mut span = None;
        while let Some(line) = self.lines.get(self.next) {
            let dash = line.start + line.indent;
            if line.indent != indent || !self.is_entry(dash, line.end) {
                break;
            }
            let after =
                dash + 1 + self.text[dash + 1..line.end].len() - self.text[dash + 1..line.end].trim_start().len();
            if after >= line.end || self.text[after..line.end].starts_with('#') || self.is_entry(after, line.end) {
                return None;
            }
            let column = after - line.start;
            span.get_or_insert(if indentless { after } else { dash });
            items.push(if self.key(after, line.end).is_some() {
                self.mapping(column, column)?
            } else {
                let value = self.scalar(after, line.end)?;
                self.next += 1;
                value
            });
        }
        let at = span?;
        Some(Yaml { value: YamlValue::Seq(items), span: self.span(at..at) })
    }

    /// The entries of a block mapping whose keys sit at column `indent`; the first may
    /// start mid-line at `column` (after `- `).
    fn mapping(&mut self, column: usize, indent: usize) -> Option<Yaml> {
        let mut entries: Vec<(YamlKey, Yaml)> = Vec::new();
        let mut first_column = Some(column);
        let mut span = None;
        while let Some(line) = self.lines.get(self.next) {
            let column = match first_column.take() {
                Some(c) => c,
                None if line.indent == indent => indent,
                None => break,
            };
            let (start, end) = (line.start + column, line.end);
            if self.is_entry(start, end) {
                break;
            }
            let (key, colon) = self.key(start, end)?;
            if entries.iter().any(|(k, _)| k.name == key.name) {
                return None;
            }
            span.get_or_insert(start);
            let rest = colon + 1;
            let value_at = rest + self.text[rest..end].len() - self.text[rest..end].trim_start().len();
            let value = if value_at < end && !self.text[value_at..end].starts_with('#') {
                let value = self.scalar(value_at, end)?;
                self.next += 1;
                value
            } else {
                self.next += 1;
                match self.lines.get(self.next) {
                    Some(next) if next.indent > indent => self.block(next.indent)?,
                    Some(next) if next.indent == indent && self.is_entry(next.start + indent, next.end) => {
                        self.sequence(indent, true)?
                    }
                    _ => Yaml { value: YamlValue::Null, span: self.span(colon..colon) },
                }
            };
            // A deeper line after a scalar would continue it, or be an error.
            if self.lines.get(self.next).is_some_and(|next| next.indent > indent) {
                return None;
            }
            entries.push((key, value));
        }
        let at = span?;
        Some(Yaml { value: YamlValue::Map(entries), span: self.span(at..at) })
    }

    /// A key at `at` and the position of its colon, which a space or the end of the line
    /// follows.
    fn key(&self, at: usize, end: usize) -> Option<(YamlKey, usize)> {
        let rest = &self.text[at..end];
        let (name, len) = match rest.as_bytes().first()? {
            b'"' | b'\'' => quoted(rest)?,
            _ => {
                let colon = rest.find(": ").or_else(|| rest.ends_with(':').then(|| rest.len() - 1))?;
                let text = rest[..colon].trim_end();
                if !plain_start(text) || text.contains(" #") {
                    return None;
                }
                match super::plain::scalar(text, ScalarStyle::Plain)? {
                    YamlValue::Str(name) => (name, text.len()),
                    _ => return None,
                }
            }
        };
        let after = &rest[len..];
        let colon = at + len + (after.len() - after.trim_start_matches(' ').len());
        let tail = &self.text[colon..end];
        if !(tail == ":" || tail.starts_with(": ")) {
            return None;
        }
        Some((YamlKey { name, span: self.span(at..at + len) }, colon))
    }

    /// A single-line scalar value at `at`, with nothing but a comment after it.
    fn scalar(&self, at: usize, end: usize) -> Option<Yaml> {
        let rest = &self.text[at..end];
        let ends_line = |len: usize| {
            let tail = rest[len..].trim_start_matches(' ');
            tail.is_empty() || (tail.starts_with('#') && rest[len..].starts_with(' '))
        };
        let (value, len) = match rest.as_bytes()[0] {
            b'"' | b'\'' => {
                let (value, len) = quoted(rest)?;
                (YamlValue::Str(value), len)
            }
            b'[' => {
                let (items, len) = self.flow_sequence(at, end)?;
                (YamlValue::Seq(items), len)
            }
            _ => {
                let text = rest.find(" #").map_or(rest, |i| &rest[..i]).trim_end();
                if !plain_start(text) || text.contains(": ") || text.ends_with(':') {
                    return None;
                }
                (super::plain::scalar(text, ScalarStyle::Plain)?, text.len())
            }
        };
        if !ends_line(len) {
            return None;
        }
        let span = match value {
            // A flow sequence's span is its opening bracket, as the parser's.
            YamlValue::Seq(_) => at..at + 1,
            _ => at..at + len,
        };
        Some(Yaml { value, span: self.span(span) })
    }

    /// `[a, 'b', "c"]` of scalars on one line at `at`: the items and the length up to and
    /// including `]`.
    fn flow_sequence(&self, at: usize, end: usize) -> Option<(Vec<Yaml>, usize)> {
        let mut items = Vec::new();
        let mut i = at + 1;
        let skip = |i: usize| i + self.text[i..end].len() - self.text[i..end].trim_start_matches(' ').len();
        i = skip(i);
        if self.text[i..end].starts_with(']') {
            return Some((items, i + 1 - at));
        }
        loop {
            let rest = &self.text[i..end];
            let (value, len) = match rest.as_bytes().first()? {
                b'"' | b'\'' => {
                    let (value, len) = quoted(rest)?;
                    (YamlValue::Str(value), len)
                }
                _ => {
                    let len = rest.find([',', ']'])?;
                    let text = rest[..len].trim_end();
                    if !plain_start(text) || text.contains([':', '#', '[', '{', '}']) {
                        return None;
                    }
                    (super::plain::scalar(text, ScalarStyle::Plain)?, text.len())
                }
            };
            items.push(Yaml { value, span: self.span(i..i + len) });
            i = skip(i + len);
            match self.text.as_bytes()[i..end].first()? {
                b',' => i = skip(i + 1),
                b']' => return Some((items, i + 1 - at)),
                _ => return None,
            }
        }
    }
}

/// Whether a plain scalar may start with the text's first character here (and it is not
/// empty): no indicator that would make it something else.
fn plain_start(text: &str) -> bool {
    let mut bytes = text.bytes();
    match bytes.next() {
        None => false,
        Some(b'[' | b']' | b'{' | b'}' | b',' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"' | b'%') => false,
        Some(b'@' | b'`') => false,
        Some(b'-' | b'?' | b':') => bytes.next().is_some_and(|b| b != b' '),
        Some(_) => true,
    }
}

/// A quoted scalar at the start of `text`: its value and its length with the quotes.
/// Double-quoted text with a backslash (an escape) is left to the YAML parser.
fn quoted(text: &str) -> Option<(String, usize)> {
    let quote = text.as_bytes()[0];
    let body = &text[1..];
    if quote == b'"' {
        let close = body.find('"')?;
        let value = &body[..close];
        return (!value.contains('\\')).then(|| (value.to_string(), close + 2));
    }
    let mut value = String::new();
    let mut i = 0;
    loop {
        let close = i + body[i..].find('\'')?;
        value.push_str(&body[i..close]);
        if body[close + 1..].starts_with('\'') {
            value.push('\'');
            i = close + 2;
        } else {
            return Some((value, close + 2));
        }
    }
}
