//! YAML read into a tree where every key and value keeps its span, so that shape errors,
//! unknown config keys and bad values point at the exact file, line and column.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::diagnostics::{Code, Diagnostic, FileId, SourceMap, Span};

mod block;

/// A YAML value with the span of its text.
#[derive(Clone, Debug)]
pub struct Yaml {
    pub value: YamlValue,
    pub span: Span,
}

/// The shapes a YAML value can take. Maps keep their order and their keys' spans.
#[derive(Clone, Debug)]
pub enum YamlValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Yaml>),
    Map(Vec<(YamlKey, Yaml)>),
}

/// A map key and where it is written.
#[derive(Clone, Debug)]
pub struct YamlKey {
    pub name: String,
    pub span: Span,
}

impl Yaml {
    /// Parses one YAML document. A syntax error is a `yaml-syntax` diagnostic at its position.
    pub fn parse(file: FileId, sources: &SourceMap) -> Result<Yaml, Diagnostic> {
        let text = sources.file(file).text.clone();
        if text.trim().is_empty() {
            return Ok(Yaml { value: YamlValue::Null, span: Span::file_start(file) });
        }
        if let Some(yaml) = block::read(&text, file) {
            return Ok(yaml);
        }
        if let Some(yaml) = plain::read(&text, file, sources) {
            return Ok(yaml);
        }
        match serde_saphyr::from_str::<Spanned<RawNode>>(&text) {
            Ok(node) => Ok(convert(node, file, sources)),
            Err(err) => {
                let plain = err.without_snippet().to_string();
                let message = plain.rfind(" at line ").map_or(plain.as_str(), |i| &plain[..i]).to_string();
                let span = err.location().map_or(Span::file_start(file), |loc| {
                    let offset = sources.file(file).offset(loc.line() as usize, loc.column() as usize);
                    Span::new(file, offset..offset + 1)
                });
                Err(Diagnostic::error(Code::YamlSyntax, format!("invalid YAML: {message}")).with_label(span, "here"))
            }
        }
    }

    /// A short name of the value's shape, for messages like "expected a list, found a string".
    pub fn kind(&self) -> &'static str {
        match &self.value {
            YamlValue::Null => "null",
            YamlValue::Bool(_) => "a boolean",
            YamlValue::Int(_) | YamlValue::Float(_) => "a number",
            YamlValue::Str(_) => "a string",
            YamlValue::Seq(_) => "a list",
            YamlValue::Map(_) => "a mapping",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, YamlValue::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            YamlValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(YamlKey, Yaml)]> {
        match &self.value {
            YamlValue::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Yaml> {
        self.as_map()?.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }

    /// A shape error at this value: `expected {what}, found {kind}`.
    pub fn shape_error(&self, what: &str, context: &str) -> Diagnostic {
        Diagnostic::error(Code::YamlShape, format!("{context}: expected {what}, found {}", self.kind()))
            .with_label(self.span, format!("expected {what}"))
    }

    /// The mapping entries, or a shape error. Null is an empty mapping.
    pub fn expect_map(&self, context: &str) -> Result<&[(YamlKey, Yaml)], Diagnostic> {
        match &self.value {
            YamlValue::Map(m) => Ok(m),
            YamlValue::Null => Ok(&[]),
            _ => Err(self.shape_error("a mapping", context)),
        }
    }

    /// The list items, or a shape error. Null is an empty list.
    pub fn expect_seq(&self, context: &str) -> Result<&[Yaml], Diagnostic> {
        match &self.value {
            YamlValue::Seq(s) => Ok(s),
            YamlValue::Null => Ok(&[]),
            _ => Err(self.shape_error("a list", context)),
        }
    }

    /// A scalar as a string (numbers and booleans as written), or a shape error.
    pub fn expect_string(&self, context: &str) -> Result<String, Diagnostic> {
        match &self.value {
            YamlValue::Str(s) => Ok(s.clone()),
            YamlValue::Int(i) => Ok(i.to_string()),
            YamlValue::Float(f) => Ok(f.to_string()),
            YamlValue::Bool(b) => Ok(b.to_string()),
            _ => Err(self.shape_error("a string", context)),
        }
    }

    /// A string or a list of strings, as a list.
    pub fn expect_strings(&self, context: &str) -> Result<Vec<String>, Diagnostic> {
        match &self.value {
            YamlValue::Seq(items) => items.iter().map(|i| i.expect_string(context)).collect(),
            YamlValue::Null => Ok(Vec::new()),
            _ => Ok(vec![self.expect_string(context)?]),
        }
    }

    /// The value as JSON (for config maps, vars and the manifest).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            YamlValue::Null => J::Null,
            YamlValue::Bool(b) => J::Bool(*b),
            YamlValue::Int(i) => J::from(*i),
            YamlValue::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            YamlValue::Str(s) => J::String(s.clone()),
            YamlValue::Seq(items) => J::Array(items.iter().map(Yaml::to_json).collect()),
            YamlValue::Map(entries) => J::Object(entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect()),
        }
    }
}

/// What the line reader (`block`) declines but is still common, read straight from the
/// YAML parser's events (about twice as fast as going through serde): documents whose scalars mean the same under every reading
/// (quoted or block text, words, decimal integers, null and boolean spellings) and which
/// use no tags, anchors or repeated keys. Anything else returns `None` and takes the
/// serde-saphyr path, which decides those cases (and words syntax errors); the unit tests
/// check both paths build the same tree.
mod plain {
    use granit_parser::{Event, Parser, ScalarStyle, Span as Marked};

    use super::{Yaml, YamlKey, YamlValue};
    use crate::diagnostics::{FileId, SourceMap, Span};

    type Events<'a> = std::iter::Peekable<Parser<'a, granit_parser::StrInput<'a>>>;

    pub(super) fn read(text: &str, file: FileId, sources: &SourceMap) -> Option<Yaml> {
        let mut events: Events<'_> = Parser::new_from_str(text).peekable();
        let (Event::StreamStart, _) = events.next()?.ok()? else { return None };
        let (Event::DocumentStart(..), _) = events.next()?.ok()? else { return None };
        let root = node(&mut events, file, sources)?;
        let (Event::DocumentEnd, _) = events.next()?.ok()? else { return None };
        let (Event::StreamEnd, _) = events.next()?.ok()? else { return None };
        events.next().is_none().then_some(root)
    }

    fn node(events: &mut Events<'_>, file: FileId, sources: &SourceMap) -> Option<Yaml> {
        let (event, marked) = events.next()?.ok()?;
        let span = span_of(&marked, file, sources);
        let value = match event {
            Event::Scalar(text, style, 0, None) => scalar(&text, style)?,
            Event::SequenceStart(_, 0, None) => {
                let mut items = Vec::new();
                while !matches!(events.peek()?.as_ref().ok()?.0, Event::SequenceEnd) {
                    items.push(node(events, file, sources)?);
                }
                events.next();
                YamlValue::Seq(items)
            }
            Event::MappingStart(_, 0, None) => {
                let mut entries: Vec<(YamlKey, Yaml)> = Vec::new();
                loop {
                    let (event, marked) = events.next()?.ok()?;
                    let name = match event {
                        Event::MappingEnd => break,
                        Event::Scalar(text, style, 0, None) => match scalar(&text, style)? {
                            YamlValue::Str(name) => name,
                            _ => return None,
                        },
                        _ => return None,
                    };
                    if entries.iter().any(|(k, _)| k.name == name) {
                        return None;
                    }
                    let key = YamlKey { name, span: span_of(&marked, file, sources) };
                    entries.push((key, node(events, file, sources)?));
                }
                YamlValue::Map(entries)
            }
            _ => return None,
        };
        Some(Yaml { value, span })
    }

    /// The value of an untagged scalar, when every YAML reading agrees on it.
    pub(super) fn scalar(text: &str, style: ScalarStyle) -> Option<YamlValue> {
        if style != ScalarStyle::Plain {
            return Some(YamlValue::Str(text.to_string()));
        }
        const TRUE: [&str; 4] = ["true", "yes", "y", "on"];
        const FALSE: [&str; 4] = ["false", "no", "n", "off"];
        let word = |list: &[&str]| list.iter().any(|w| text.eq_ignore_ascii_case(w));
        let digits =
            |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && (t == "0" || !t.starts_with('0'));
        match text {
            "" | "~" | "null" | "Null" | "NULL" => Some(YamlValue::Null),
            _ if word(&TRUE) => Some(YamlValue::Bool(true)),
            _ if word(&FALSE) => Some(YamlValue::Bool(false)),
            _ if text.starts_with(|c: char| c.is_ascii_alphabetic()) => Some(YamlValue::Str(text.to_string())),
            _ if digits(text.strip_prefix('-').unwrap_or(text)) => text.parse().ok().map(YamlValue::Int),
            _ => None,
        }
    }

    fn span_of(marked: &Marked, file: FileId, sources: &SourceMap) -> Span {
        match (marked.start.byte_offset(), marked.end.byte_offset()) {
            (Some(start), Some(end)) => Span::new(file, start..end.max(start)),
            _ => {
                let offset = sources.file(file).offset(marked.start.line(), marked.start.col() + 1);
                Span::new(file, offset..offset)
            }
        }
    }
}

/// What serde-saphyr hands us before spans are turned into [`Span`]s.
enum RawNode {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<String>, Spanned<RawNode>)>),
}

fn span_of(loc: &serde_saphyr::Location, file: FileId, sources: &SourceMap) -> Span {
    let span = loc.span();
    match (span.byte_offset(), span.byte_len()) {
        (Some(start), Some(len)) => Span::new(file, start as usize..(start + len) as usize),
        _ => {
            let offset = sources.file(file).offset(loc.line() as usize, loc.column() as usize);
            Span::new(file, offset..offset)
        }
    }
}

fn convert(node: Spanned<RawNode>, file: FileId, sources: &SourceMap) -> Yaml {
    let span = span_of(&node.referenced, file, sources);
    let value = match node.value {
        RawNode::Null => YamlValue::Null,
        RawNode::Bool(b) => YamlValue::Bool(b),
        RawNode::Int(i) => YamlValue::Int(i),
        RawNode::Float(f) => YamlValue::Float(f),
        RawNode::Str(s) => YamlValue::Str(s),
        RawNode::Seq(items) => YamlValue::Seq(items.into_iter().map(|i| convert(i, file, sources)).collect()),
        RawNode::Map(entries) => YamlValue::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key = YamlKey { span: span_of(&k.referenced, file, sources), name: k.value };
                    (key, convert(v, file, sources))
                })
                .collect(),
        ),
    };
    Yaml { value, span }
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawNode, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = RawNode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<RawNode, E> {
                Ok(RawNode::Null)
            }
            fn visit_none<E>(self) -> Result<RawNode, E> {
                Ok(RawNode::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
                Ok(RawNode::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
                Ok(RawNode::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawNode, E> {
                i64::try_from(v).map(RawNode::Int).map_err(|_| E::custom("integer too large"))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawNode, E> {
                Ok(RawNode::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
                Ok(RawNode::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
                Ok(RawNode::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(RawNode::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(RawNode::Map(entries))
            }
        }
        d.deserialize_any(NodeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_spans_of_nested_keys_and_values() {
        let map = SourceMap::default();
        let text = "models:\n  - name: orders\n    config:\n      materialized: table\n";
        let id = map.add("schema.yml", text);
        let y = Yaml::parse(id, &map).unwrap();
        let model = &y.get("models").unwrap().expect_seq("").unwrap()[0];
        let config = model.get("config").unwrap();
        let (key, value) = &config.as_map().unwrap()[0];
        assert_eq!(&text[key.span.start..key.span.end], "materialized");
        assert_eq!(&text[value.span.start..value.span.end], "table");
    }

    /// Both readings of `text`: the event fast path (if it takes the text) and serde-saphyr.
    fn both(text: &str) -> (Option<String>, String) {
        let map = SourceMap::default();
        let id = map.add("x.yml", text);
        let fast = plain::read(text, id, &map).map(|y| format!("{y:?}"));
        let full = serde_saphyr::from_str::<Spanned<RawNode>>(text).map(|n| format!("{:?}", convert(n, id, &map)));
        (fast, full.unwrap())
    }

    /// The tree the event path or, failing it, serde-saphyr builds, and whether the line
    /// reader (`block`) takes the text; when it does, it must build the same tree.
    fn block_agrees(text: &str) -> bool {
        let map = SourceMap::default();
        let id = map.add("x.yml", text);
        let Some(fast) = block::read(text, id) else { return false };
        let reference = plain::read(text, id, &map)
            .or_else(|| serde_saphyr::from_str::<Spanned<RawNode>>(text).ok().map(|n| convert(n, id, &map)));
        let reference = reference.unwrap_or_else(|| panic!("the line reader took invalid YAML: {text:?}"));
        assert_eq!(format!("{fast:?}"), format!("{reference:?}"), "in {text:?}");
        true
    }

    #[test]
    fn the_line_reader_builds_the_tree_the_yaml_parser_builds() {
        let cases = [
            "a: 1\nb:\n  - x\n  - 'q'\n  - k: \"v\"\n    m:\nc: d # note\n",
            "models:\n- name: orders\n  description: 'Orders, one per row.'\n  columns:\n  - name: id\n    data_tests:\n    - unique\n    - not_null\n",
            "# top\nversion: 2\n\nsources:\n  - name: raw   # the raw schema\n    tables:\n      - name: orders\n        identifier: \"Orders\"\n",
            "k:\n- 1\n- -2\nz: y\n'quoted key': it''s\nempty:\nlast: off\n",
            "- a\n- b: 1\n  c:\n    d: e\n- f\n",
            "values: ['high', \"mid\",low , 7]\nnone: []\none: [x] # c\n",
        ];
        for text in cases {
            assert!(block_agrees(text), "declined {text:?}");
        }
        let texts = crate::testing::repository_texts(&["example_project", "tests"], &["yml", "yaml"]);
        let taken = texts.iter().filter(|text| block_agrees(text)).count();
        assert!(taken > 20, "the line reader took only {taken} repository files");
    }

    #[test]
    fn the_line_reader_declines_what_it_does_not_read() {
        let cases = [
            "a: [x, [y]]\n",
            "a: [x: 1]\n",
            "a: [x, y\n",
            "a: {x: 1}\n",
            "a: |\n  text\n",
            "a: b\n  continued\n",
            "a: &x 1\nb: *x\n",
            "a: !tag 1\n",
            "a: \"esc\\n\"\n",
            "a: 1.5\n",
            "a:\tb\n",
            "---\na: 1\n",
            "a: 1\na: 2\n",
            "- - a\n",
            "-\n  a: 1\n",
            "a: b: c\n",
            "  a: 1\n",
        ];
        for text in cases {
            let map = SourceMap::default();
            let id = map.add("x.yml", text);
            assert!(block::read(text, id).is_none(), "took {text:?}");
        }
    }

    /// Random documents from a few line shapes: whatever the line reader takes, it reads
    /// as the YAML parser does.
    #[test]
    fn the_line_reader_agrees_on_random_documents() {
        const KEYS: &[&str] = &["a", "name", "'q k'", "\"d\"", "x y", "on", "-k", "1"];
        const VALUES: &[&str] = &[
            "",
            " v",
            " 'it''s'",
            " \"s t\"",
            " 12",
            " -3",
            " yes",
            " ~",
            " a #c",
            " #c",
            " a:b",
            " 1.5",
            " [x]",
            " [ 'a', b,c ]",
            " []",
            " [1, 'x'",
            " *r",
        ];
        let mut next = crate::testing::pseudo_random(0x853c_49e6_748f_ea9b_u64);
        let mut taken = 0;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(1 + next() % 7) {
                let indent = 2 * (next() % 3);
                let dash = if next().is_multiple_of(3) { "- " } else { "" };
                let line = match next() % 6 {
                    0 => format!("{}{dash}{}", " ".repeat(indent), &VALUES[next() % VALUES.len()].trim_start()),
                    1 => "# comment".to_string(),
                    _ => format!(
                        "{}{dash}{}:{}",
                        " ".repeat(indent),
                        KEYS[next() % KEYS.len()],
                        VALUES[next() % VALUES.len()]
                    ),
                };
                text.push_str(&line);
                text.push('\n');
            }
            if serde_saphyr::from_str::<Spanned<RawNode>>(&text).is_err() {
                let map = SourceMap::default();
                let id = map.add("x.yml", text.as_str());
                assert!(block::read(&text, id).is_none(), "the line reader took invalid YAML: {text:?}");
                continue;
            }
            taken += usize::from(block_agrees(&text));
        }
        assert!(taken > 400, "the line reader took only {taken} random documents");
    }

    #[test]
    fn the_fast_path_builds_the_tree_serde_saphyr_builds() {
        let mut texts: Vec<String> = [
            "models:\n  - name: orders\n    description: \"Orders, one per row.\"\n    config:\n      materialized: table\n      enabled: yes\n      tags: [a, 'b']\n",
            "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: orders\n        loaded_at_field: _loaded\n        freshness: {warn_after: {count: 12, period: hour}}\n",
            "a: |\n  literal\n  text\nb: >\n  folded\nc: ~\nd:\ne: -42\nf: 0\ng: Off\nh: null\ni: ünïcödé wörds\n",
            "- 1\n- -7\n- [x, {y: z}]\n- {}\n- []\n",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        texts.extend(crate::testing::repository_texts(&["example_project", "tests"], &["yml", "yaml"]));
        let mut fast_taken = 0;
        for text in &texts {
            let Ok(_) = serde_saphyr::from_str::<Spanned<RawNode>>(text) else { continue };
            if text.trim().is_empty() {
                continue;
            }
            let (fast, full) = both(text);
            if let Some(fast) = fast {
                assert_eq!(fast, full, "the two readings differ on:\n{text}");
                fast_taken += 1;
            }
        }
        assert!(fast_taken >= 10, "the fast path took only {fast_taken} of {} files", texts.len());
    }

    #[test]
    fn the_fast_path_leaves_what_it_cannot_decide_to_serde_saphyr() {
        for text in [
            "a: 1.5\n",
            "a: 0x1F\n",
            "a: 007\n",
            "a: !!str 12\n",
            "base: &b {x: 1}\nc: *b\n",
            "a: 1\na: 2\n",
            "<<: {x: 1}\n",
            "a: ./path\n",
            "--- a\n--- b\n",
        ] {
            let map = SourceMap::default();
            let id = map.add("x.yml", text);
            assert!(plain::read(text, id, &map).is_none(), "fast path took {text:?}");
        }
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let map = SourceMap::default();
        let id = map.add("bad.yml", "models:\n  - name: x\n   bad: [\n");
        let d = Yaml::parse(id, &map).unwrap_err();
        assert_eq!(d.code, "yaml-syntax");
        let span = d.primary().unwrap();
        assert_eq!(map.file(id).line_col(span.start).0, 3);
    }
}
