//! Snapshots: `{% snapshot name %} ... {% endsnapshot %}` blocks in the snapshot
//! folders, and their config (`strategy`, `unique_key`, `updated_at` or `check_cols`,
//! `hard_deletes`, `dbt_valid_to_current`, `snapshot_meta_column_names`), validated.
//!
//! A block's body is rendered like a model: the file's text with everything outside
//! the body blanked to spaces (newlines kept), so every span in it is the file's own.

use serde_json::Value as Json;

use super::config::{Checker, ConfigLayer};
use super::docs_blocks::find_tag;
use crate::diagnostics::{Code, Diagnostic, FileId, SourceMap, Span};

/// One snapshot block of a file.
#[derive(Clone, Debug)]
pub struct SnapshotBlock {
    pub name: String,
    /// The `{% snapshot name %}` tag.
    pub span: Span,
    /// The file's text with only the body left: what is rendered.
    pub body: String,
}

/// Every snapshot block of a file.
pub fn blocks(file: FileId, sources: &SourceMap) -> Result<Vec<SnapshotBlock>, Diagnostic> {
    let text = sources.file(file).text.clone();
    let mut found = Vec::new();
    let mut rest = 0;
    while let Some((tag_start, tag_end, name)) = find_tag(&text, rest, "snapshot") {
        let tag = Span::new(file, tag_start..tag_end);
        let Some((close_start, close_end, _)) = find_tag(&text, tag_end, "endsnapshot") else {
            return Err(Diagnostic::error(
                Code::SnapshotBlock,
                format!("snapshot `{name}` has no `{{% endsnapshot %}}`"),
            )
            .with_label(tag, "opened here"));
        };
        if name.is_empty() {
            return Err(Diagnostic::error(Code::SnapshotBlock, "a snapshot block needs a name")
                .with_label(tag, "expected `{% snapshot name %}`"));
        }
        let body: String = text
            .char_indices()
            .map(|(i, c)| match c {
                '\n' => '\n',
                _ if (tag_end..close_start).contains(&i) => c,
                _ => ' ',
            })
            .collect();
        found.push(SnapshotBlock { name, span: tag, body });
        rest = close_end;
    }
    Ok(found)
}

/// The text rendered for a snapshot defined in YAML with `relation: ref('x')`: the
/// YAML file blanked, with `select *` on an earlier line and `from {{ ref('x') }}` over
/// the `relation:` key, so the call keeps its place in the file. `None` when the value
/// is not where that fits (a flow-style mapping on the first line).
pub fn relation_body(yaml: &str, relation: &str, span: Span) -> Option<String> {
    let mut bytes: Vec<u8> = yaml.bytes().map(|b| if b == b'\n' { b'\n' } else { b' ' }).collect();
    let quoted = matches!(yaml.as_bytes().get(span.start), Some(b'"' | b'\''));
    let start = span.start + usize::from(quoted);
    if yaml.get(start..start + relation.len()) != Some(relation) {
        return None;
    }
    let line_start = yaml[..start].rfind('\n').map_or(0, |i| i + 1);
    let from = b"from {{ ";
    let (select, close) = (b"select *", b" }}");
    if start - line_start < from.len() || line_start == 0 {
        return None;
    }
    // The longest earlier line holds `select *`.
    let earlier = yaml[..line_start - 1].split('\n').scan(0, |at, line| {
        let here = *at;
        *at += line.len() + 1;
        Some((here, line.len()))
    });
    let (select_at, room) = earlier.max_by_key(|(_, len)| *len)?;
    if room < select.len() {
        return None;
    }
    bytes[select_at..select_at + select.len()].copy_from_slice(select);
    bytes[start - from.len()..start].copy_from_slice(from);
    bytes[start..start + relation.len()].copy_from_slice(relation.as_bytes());
    let end = start + relation.len();
    let mut text = String::from_utf8(bytes[..end].to_vec()).ok()?;
    text.push_str(std::str::from_utf8(close).ok()?);
    text.push_str(&String::from_utf8(bytes[end..].to_vec()).ok()?);
    Some(text)
}

/// How a snapshot tells a changed row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// A row changed when its `updated_at` is later than the current version's.
    Timestamp { updated_at: String },
    /// A row changed when one of the columns differs; `None` checks all of them.
    /// `updated_at` (rarely given) replaces the snapshot time as the version's time.
    Check { columns: Option<Vec<String>>, updated_at: Option<String> },
}

/// What a snapshot does with rows gone from its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HardDeletes {
    Ignore,
    Invalidate,
    NewRecord,
}

/// The names of the meta columns (`snapshot_meta_column_names`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaColumns {
    pub scd_id: String,
    pub updated_at: String,
    pub valid_from: String,
    pub valid_to: String,
    pub is_deleted: String,
}

impl Default for MetaColumns {
    fn default() -> MetaColumns {
        MetaColumns {
            scd_id: "dbt_scd_id".into(),
            updated_at: "dbt_updated_at".into(),
            valid_from: "dbt_valid_from".into(),
            valid_to: "dbt_valid_to".into(),
            is_deleted: "dbt_is_deleted".into(),
        }
    }
}

/// A snapshot's validated config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotConfig {
    pub strategy: Strategy,
    /// Columns or expressions; several make a composite key.
    pub unique_key: Vec<String>,
    pub hard_deletes: HardDeletes,
    /// SQL for the `dbt_valid_to` of current rows (else NULL).
    pub valid_to_current: Option<String>,
    pub meta: MetaColumns,
    /// The legacy `target_schema` / `target_database`: used as written.
    pub target_schema: Option<String>,
    pub target_database: Option<String>,
}

impl MetaColumns {
    /// The meta columns a snapshot's table has, in order.
    pub fn names(&self, hard_deletes: HardDeletes) -> Vec<&str> {
        let mut names = vec![&*self.scd_id, &*self.updated_at, &*self.valid_from, &*self.valid_to];
        if hard_deletes == HardDeletes::NewRecord {
            names.push(&self.is_deleted);
        }
        names
    }
}

impl SnapshotConfig {
    /// Validates a snapshot's merged config; what is missing is labelled at `span`.
    pub fn from_layer(layer: &ConfigLayer, span: Span) -> Result<SnapshotConfig, Vec<Diagnostic>> {
        let mut c = Checker { layer, errors: Vec::new() };
        let missing = |key: &str, why: &str| {
            Diagnostic::error(Code::InvalidConfig, format!("snapshot config `{key}` is missing"))
                .with_label(span, why.to_string())
                .with_help(format!("add `{key}` to the snapshot's `config(...)` or its YAML `config:`"))
        };
        let mut errors = Vec::new();
        let strategy = c.choice("strategy", &[("timestamp", true), ("check", false)]);
        let updated_at = c.string("updated_at");
        let strategy = match strategy {
            Some(true) => match updated_at {
                Some(updated_at) => Some(Strategy::Timestamp { updated_at }),
                None => {
                    errors.push(missing("updated_at", "the timestamp strategy needs `updated_at`"));
                    None
                }
            },
            Some(false) => match layer.get("check_cols").map(|e| &e.value) {
                Some(Json::String(s)) if s == "all" => Some(Strategy::Check { columns: None, updated_at }),
                Some(Json::Array(items)) if !items.is_empty() && items.iter().all(Json::is_string) => {
                    Some(Strategy::Check { columns: Some(c.strings("check_cols")), updated_at })
                }
                Some(_) => {
                    c.invalid("check_cols", "`all` or a list of column names", &["all"]);
                    None
                }
                None => {
                    errors.push(missing("check_cols", "the check strategy needs `check_cols`"));
                    None
                }
            },
            None if !layer.contains_key("strategy") => {
                errors.push(missing("strategy", "a snapshot needs `strategy: timestamp` or `strategy: check`"));
                None
            }
            None => None,
        };
        let unique_key = c.strings("unique_key");
        match layer.get("unique_key").map(|e| &e.value) {
            None => errors.push(missing("unique_key", "a snapshot needs `unique_key`")),
            // A snapshot matches rows by its key: it needs at least one column.
            Some(Json::Null) => c.invalid("unique_key", "a column name or a list of them", &[]),
            Some(Json::Array(items)) if items.is_empty() => {
                c.invalid("unique_key", "a column name or a list of them", &[])
            }
            Some(_) => {}
        }
        let legacy = c.bool("invalidate_hard_deletes");
        let hard_deletes = c.choice(
            "hard_deletes",
            &[
                ("ignore", HardDeletes::Ignore),
                ("invalidate", HardDeletes::Invalidate),
                ("new_record", HardDeletes::NewRecord),
            ],
        );
        let hard_deletes = match (legacy, hard_deletes) {
            (Some(_), Some(_)) if layer.contains_key("hard_deletes") => {
                errors.push(
                    Diagnostic::error(
                        Code::InvalidConfig,
                        "`invalidate_hard_deletes` and `hard_deletes` are both given",
                    )
                    .with_label(layer["hard_deletes"].span, "keep this one")
                    .with_label(layer["invalidate_hard_deletes"].span, "the older spelling"),
                );
                HardDeletes::Ignore
            }
            (Some(true), _) => HardDeletes::Invalidate,
            (_, Some(h)) => h,
            _ => HardDeletes::Ignore,
        };
        let meta = meta_columns(&mut c);
        let config = SnapshotConfig {
            strategy: strategy.unwrap_or(Strategy::Timestamp { updated_at: String::new() }),
            unique_key,
            hard_deletes,
            valid_to_current: c.string("dbt_valid_to_current"),
            meta,
            target_schema: c.string("target_schema"),
            target_database: c.string("target_database"),
        };
        errors.extend(c.errors);
        if errors.is_empty() { Ok(config) } else { Err(errors) }
    }
}

/// `snapshot_meta_column_names`: a mapping from dbt's names to the project's.
fn meta_columns(c: &mut Checker<'_>) -> MetaColumns {
    let mut meta = MetaColumns::default();
    let Some(entry) = c.layer.get("snapshot_meta_column_names") else { return meta };
    let expected = "a mapping of dbt_scd_id, dbt_updated_at, dbt_valid_from, dbt_valid_to, dbt_is_deleted to names";
    let Json::Object(map) = &entry.value else {
        c.invalid("snapshot_meta_column_names", expected, &[]);
        return meta;
    };
    for (key, value) in map {
        let slot = match key.as_str() {
            "dbt_scd_id" => &mut meta.scd_id,
            "dbt_updated_at" => &mut meta.updated_at,
            "dbt_valid_from" => &mut meta.valid_from,
            "dbt_valid_to" => &mut meta.valid_to,
            "dbt_is_deleted" => &mut meta.is_deleted,
            _ => {
                c.invalid("snapshot_meta_column_names", expected, &[]);
                return MetaColumns::default();
            }
        };
        match value {
            Json::String(name) if !name.is_empty() => *slot = name.clone(),
            Json::Null => {}
            _ => {
                c.invalid("snapshot_meta_column_names", expected, &[]);
                return MetaColumns::default();
            }
        }
    }
    meta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::config::tests::layer;

    #[test]
    fn blocks_keep_the_body_at_its_place_in_the_file() {
        let map = SourceMap::default();
        let text = "{% snapshot a %}\nselect 1\n{% endsnapshot %}\n{%- snapshot b -%} select 2 {%- endsnapshot -%}";
        let id = map.add("snapshots/s.sql", text);
        let found = blocks(id, &map).unwrap();
        assert_eq!(found.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(found[0].body.len(), text.len());
        assert_eq!(found[0].body.find("select 1"), text.find("select 1"));
        assert!(!found[0].body.contains("select 2") && !found[0].body.contains('{'));
        assert_eq!(found[1].body.trim(), "select 2");
        let open = map.add("snapshots/t.sql", "{% snapshot c %} select 1");
        assert_eq!(blocks(open, &map).unwrap_err().code, "snapshot-block");
    }

    #[test]
    fn a_yaml_relation_renders_in_place() {
        let yaml = "snapshots:\n  - name: s\n    relation: \"ref('people')\"\n    config: {}\n";
        let at = yaml.find("\"ref").unwrap();
        let span = Span::new(FileId::default(), at..at + 15);
        let body = relation_body(yaml, "ref('people')", span).unwrap();
        assert_eq!(body.find("ref('people')"), yaml.find("ref('people')"));
        assert_eq!(body.lines().count(), yaml.lines().count());
        assert_eq!(body.split_whitespace().collect::<Vec<_>>(), ["select", "*", "from", "{{", "ref('people')", "}}"]);
        assert_eq!(relation_body("{relation: ref('x')}", "ref('x')", span), None);
    }

    #[test]
    fn config_needs_a_strategy_and_a_key_and_reads_hard_deletes() {
        let span = Span::file_start(FileId::default());
        let errs = SnapshotConfig::from_layer(&layer(&[]), span).unwrap_err();
        let messages: Vec<&str> = errs.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages, ["snapshot config `strategy` is missing", "snapshot config `unique_key` is missing"]);
        let ok = SnapshotConfig::from_layer(
            &layer(&[
                ("strategy", "check".into()),
                ("check_cols", serde_json::json!(["a", "b"])),
                ("unique_key", serde_json::json!(["id", "region"])),
                ("invalidate_hard_deletes", true.into()),
                ("snapshot_meta_column_names", serde_json::json!({"dbt_valid_to": "valid_to"})),
            ]),
            span,
        )
        .unwrap();
        assert_eq!(ok.strategy, Strategy::Check { columns: Some(vec!["a".into(), "b".into()]), updated_at: None });
        assert_eq!(ok.hard_deletes, HardDeletes::Invalidate);
        assert_eq!(ok.meta.valid_to, "valid_to");
        assert_eq!(ok.unique_key, ["id", "region"]);
        let bad = SnapshotConfig::from_layer(
            &layer(&[
                ("strategy", "timestamp".into()),
                ("updated_at", "u".into()),
                ("unique_key", "id".into()),
                ("hard_deletes", "invalid".into()),
            ]),
            span,
        )
        .unwrap_err();
        assert_eq!(bad[0].code, "invalid-config");
        assert_eq!(bad[0].help, vec!["did you mean `invalidate`?"]);
    }

    // Regression: #18, `unique_key: []` passed and the snapshot's SQL indexed its first key.
    #[test]
    fn an_empty_unique_key_is_invalid() {
        let span = Span::file_start(FileId::default());
        for key in [serde_json::json!([]), serde_json::Value::Null] {
            let errs = SnapshotConfig::from_layer(
                &layer(&[("strategy", "timestamp".into()), ("updated_at", "u".into()), ("unique_key", key)]),
                span,
            )
            .unwrap_err();
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert_eq!(errs[0].code, "invalid-config");
            assert!(errs[0].message.ends_with("for config `unique_key`"), "{}", errs[0].message);
        }
    }
}
