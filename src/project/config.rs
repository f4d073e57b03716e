//! Node configuration: the layers a config comes from (project file folders, YAML
//! properties, in-file `config()`), how they merge, and the typed, validated result.
//!
//! Unknown keys are errors, never silently ignored: etlm knows every key it acts on and a
//! list of dbt adapter keys it accepts and ignores (so dbt projects run unchanged).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value as Json;

use super::threshold::Threshold;
use super::yaml::Yaml;
use crate::diagnostics::{Code, Diagnostic, Span, nearest};
use crate::project::jinja::ConfigJinja;
use crate::window::BatchSize;

/// Keys etlm acts on.
const ETLM_KEYS: &[&str] = &[
    "alias",
    "batch_size",
    "begin",
    "check_cols",
    "column_checks",
    "column_types",
    "database",
    "dbt_valid_to_current",
    "docs",
    "enabled",
    "error_if",
    "event_time",
    "freshness",
    "full_refresh",
    "hard_deletes",
    "incremental_strategy",
    "invalidate_hard_deletes",
    "limit",
    "loaded_at_field",
    "lookback",
    "materialized",
    "merge_exclude_columns",
    "merge_update_columns",
    "meta",
    "on_schema_change",
    "partition_by",
    "post_hook",
    "pre_hook",
    "quote_columns",
    "row_count_anomaly",
    "schema",
    "severity",
    "snapshot_meta_column_names",
    "store_failures",
    "strategy",
    "tags",
    "target_database",
    "target_schema",
    "unique_key",
    "updated_at",
    "warn_if",
    "where",
];

/// dbt and adapter keys accepted for compatibility; they have no effect in etlm.
const IGNORED_DBT_KEYS: &[&str] = &[
    "access",
    "as_columnstore",
    "automatic_clustering",
    "backup",
    "bind",
    "cluster_by",
    "concurrent_batches",
    "contract",
    "copy_grants",
    "delimiter",
    "dist",
    "fail_calc",
    "file_format",
    "grants",
    "group",
    "hours_to_expiration",
    "incremental_predicates",
    "indexes",
    "kms_key_name",
    "labels",
    "location_root",
    "on_configuration_change",
    "packages",
    "partition_expiration_days",
    "persist_docs",
    "predicates",
    "query_tag",
    "quoting",
    "require_partition_filter",
    "secure",
    "snowflake_warehouse",
    "sort",
    "sort_type",
    "sql_header",
    "store_failures_as",
    "table_type",
    "tblproperties",
    "tmp_relation_type",
    "transient",
    "unlogged",
];

/// True if `key` (already normalized) is a config key etlm accepts.
pub fn is_known_key(key: &str) -> bool {
    ETLM_KEYS.binary_search(&key).is_ok() || IGNORED_DBT_KEYS.binary_search(&key).is_ok()
}

/// `+materialized` -> `materialized`, `pre-hook` -> `pre_hook`.
pub fn normalize_key(key: &str) -> String {
    key.trim_start_matches('+').replace('-', "_")
}

/// One config value and where it was written.
#[derive(Clone, Debug)]
pub struct ConfigEntry {
    pub value: Json,
    pub span: Span,
}

/// One layer of config: normalized key -> value.
pub type ConfigLayer = BTreeMap<String, ConfigEntry>;

/// The `unknown-config` diagnostic for a key, with the nearest known key as help.
pub fn unknown_key(key: &str, span: Span) -> Diagnostic {
    let mut d = Diagnostic::error(Code::UnknownConfig, format!("unknown config key `{key}`"))
        .with_label(span, "etlm does not know this key");
    let known = ETLM_KEYS.iter().chain(IGNORED_DBT_KEYS).copied();
    if let Some(near) = nearest(&normalize_key(key), known) {
        d = d.with_help(format!("did you mean `{near}`?"));
    }
    d.with_note("custom keys belong under `meta:`")
}

/// Renders the Jinja in a layer's values, in place (hooks excepted: they render with
/// each node's context when it builds). Returns a diagnostic per value that fails; those
/// values leave the layer, so they are reported once.
pub fn render_layer(layer: &mut ConfigLayer, jinja: &ConfigJinja) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    layer.retain(|key, entry| {
        if key == "pre_hook" || key == "post_hook" {
            return true;
        }
        let rendered = render_json(&mut entry.value, jinja);
        if let Err(message) = &rendered {
            errors.push(
                Diagnostic::error(Code::ConfigRender, format!("could not render config `{key}`: {message}"))
                    .with_label(entry.span, "in this value"),
            );
        }
        rendered.is_ok()
    });
    errors
}

fn render_json(value: &mut Json, jinja: &ConfigJinja) -> Result<(), String> {
    match value {
        Json::String(text) if ConfigJinja::holds_jinja(text) => *value = jinja.render(text)?,
        Json::Array(items) => items.iter_mut().try_for_each(|v| render_json(v, jinja))?,
        Json::Object(map) => map.values_mut().try_for_each(|v| render_json(v, jinja))?,
        _ => {}
    }
    Ok(())
}

/// Reads a YAML `config:` mapping into a layer; unknown keys are diagnostics.
pub fn layer_from_yaml(yaml: &Yaml, context: &str) -> Result<ConfigLayer, Vec<Diagnostic>> {
    let entries = yaml.expect_map(context).map_err(|d| vec![d])?;
    let mut layer = ConfigLayer::new();
    let mut errors = Vec::new();
    for (key, value) in entries {
        let name = normalize_key(&key.name);
        if !is_known_key(&name) {
            errors.push(unknown_key(&key.name, key.span));
            continue;
        }
        layer.insert(name, ConfigEntry { value: value.to_json(), span: value.span });
    }
    if errors.is_empty() { Ok(layer) } else { Err(errors) }
}

/// Merges layers, later ones winning; `tags` accumulate, `meta` merges, hooks append.
pub fn merge(layers: &[&ConfigLayer]) -> ConfigLayer {
    let mut out = ConfigLayer::new();
    for layer in layers {
        for (key, entry) in layer.iter() {
            let merged = match (key.as_str(), out.get(key)) {
                ("tags" | "pre_hook" | "post_hook", Some(prev)) => {
                    let mut all = as_list(&prev.value);
                    for v in as_list(&entry.value) {
                        if !(key == "tags" && all.contains(&v)) {
                            all.push(v);
                        }
                    }
                    Json::Array(all)
                }
                ("meta", Some(prev)) => match (&prev.value, &entry.value) {
                    (Json::Object(a), Json::Object(b)) => {
                        let mut m = a.clone();
                        m.extend(b.clone());
                        Json::Object(m)
                    }
                    _ => entry.value.clone(),
                },
                _ => entry.value.clone(),
            };
            out.insert(key.clone(), ConfigEntry { value: merged, span: entry.span });
        }
    }
    out
}

fn as_list(v: &Json) -> Vec<Json> {
    match v {
        Json::Array(items) => items.clone(),
        Json::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// How a model is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Materialization {
    View,
    Table,
    Incremental,
    Ephemeral,
    Seed,
    Test,
    Snapshot,
}

impl Materialization {
    pub fn as_str(self) -> &'static str {
        match self {
            Materialization::View => "view",
            Materialization::Table => "table",
            Materialization::Incremental => "incremental",
            Materialization::Ephemeral => "ephemeral",
            Materialization::Seed => "seed",
            Materialization::Test => "test",
            Materialization::Snapshot => "snapshot",
        }
    }
}

/// How an incremental model merges new rows into the existing table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum IncrementalStrategy {
    #[serde(rename = "append")]
    Append,
    #[serde(rename = "merge")]
    Merge,
    #[serde(rename = "delete+insert")]
    DeleteInsert,
    #[serde(rename = "insert_overwrite")]
    InsertOverwrite,
}

/// What an incremental model does when its columns change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnSchemaChange {
    #[default]
    Ignore,
    Fail,
    AppendNewColumns,
    SyncAllColumns,
}

/// Severity of a quality test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TestSeverity {
    #[default]
    Error,
    Warn,
}

impl TestSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            TestSeverity::Error => "error",
            TestSeverity::Warn => "warn",
        }
    }
}

/// A model's `row_count_anomaly` config.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnomalyConfig {
    pub severity: TestSeverity,
    /// How many of the latest successful runs to compare with.
    pub window: usize,
    /// Fewer earlier runs than this: no verdict.
    pub min_history: usize,
    pub sigma: f64,
}

impl Default for AnomalyConfig {
    fn default() -> AnomalyConfig {
        AnomalyConfig { severity: TestSeverity::Warn, window: 14, min_history: 5, sigma: 3.0 }
    }
}

/// A node's effective config, validated. `raw` is what the manifest shows.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub materialized: Materialization,
    pub enabled: bool,
    pub schema: Option<String>,
    pub alias: Option<String>,
    pub database: Option<String>,
    pub tags: Vec<String>,
    pub incremental_strategy: Option<IncrementalStrategy>,
    pub unique_key: Vec<String>,
    pub partition_by: Option<String>,
    pub on_schema_change: OnSchemaChange,
    pub full_refresh: Option<bool>,
    pub pre_hook: Vec<String>,
    pub post_hook: Vec<String>,
    pub event_time: Option<String>,
    pub batch_size: Option<BatchSize>,
    pub begin: Option<String>,
    pub lookback: u32,
    pub merge_update_columns: Vec<String>,
    pub merge_exclude_columns: Vec<String>,
    pub column_types: BTreeMap<String, String>,
    /// For seeds: keep column names as the CSV header writes them (dbt's default), else
    /// lowercase them.
    pub quote_columns: bool,
    /// For sources: how fresh the table must be (`etlm source freshness`).
    pub freshness: Option<Freshness>,
    pub column_checks: bool,
    pub severity: TestSeverity,
    pub store_failures: bool,
    pub warn_if: Threshold,
    pub error_if: Threshold,
    /// For models: the row-count anomaly check; `None` when turned off.
    pub row_count_anomaly: Option<AnomalyConfig>,
    pub where_clause: Option<String>,
    /// For tests: at most this many failing rows are counted (and stored).
    pub limit: Option<u64>,
    /// For snapshots: how history is kept (set by the compile, which knows the
    /// snapshot's span for what is missing).
    pub snapshot: Option<super::snapshot::SnapshotConfig>,
    pub raw: BTreeMap<String, Json>,
}

/// A source table's freshness rule: its newest `loaded_at_field` value may be at most
/// `warn_after` old (else a warning) and `error_after` old (else an error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Freshness {
    pub loaded_at_field: String,
    pub warn_after: Option<chrono::Duration>,
    pub error_after: Option<chrono::Duration>,
    /// A condition limiting the rows looked at.
    pub filter: Option<String>,
}

/// Which defaults and values apply: models, seeds and tests differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigFor {
    Model,
    Seed,
    Test,
    Source,
    Snapshot,
}

pub(super) struct Checker<'a> {
    pub(super) layer: &'a ConfigLayer,
    pub(super) errors: Vec<Diagnostic>,
}

impl Checker<'_> {
    pub(super) fn invalid(&mut self, key: &str, expected: &str, choices: &[&str]) {
        let entry = &self.layer[key];
        let shown = match &entry.value {
            Json::String(s) => format!("`{s}`"),
            other => format!("`{other}`"),
        };
        let mut d = Diagnostic::error(Code::InvalidConfig, format!("invalid value {shown} for config `{key}`"))
            .with_label(entry.span, format!("expected {expected}"));
        if let Json::String(s) = &entry.value
            && let Some(near) = nearest(s, choices.iter().copied())
        {
            d = d.with_help(format!("did you mean `{near}`?"));
        }
        self.errors.push(d);
    }

    pub(super) fn string(&mut self, key: &str) -> Option<String> {
        match &self.layer.get(key)?.value {
            Json::String(s) => Some(s.clone()),
            Json::Number(n) => Some(n.to_string()),
            Json::Null => None,
            _ => {
                self.invalid(key, "a string", &[]);
                None
            }
        }
    }

    pub(super) fn strings(&mut self, key: &str) -> Vec<String> {
        let Some(entry) = self.layer.get(key) else { return Vec::new() };
        let items = match &entry.value {
            Json::Array(items) => items.clone(),
            Json::Null => Vec::new(),
            other => vec![other.clone()],
        };
        let mut out = Vec::new();
        for item in items {
            match item {
                Json::String(s) => out.push(s),
                Json::Number(n) => out.push(n.to_string()),
                _ => {
                    self.invalid(key, "a string or a list of strings", &[]);
                    return Vec::new();
                }
            }
        }
        out
    }

    pub(super) fn bool(&mut self, key: &str) -> Option<bool> {
        match &self.layer.get(key)?.value {
            Json::Bool(b) => Some(*b),
            Json::Null => None,
            Json::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Json::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => {
                self.invalid(key, "true or false", &["true", "false"]);
                None
            }
        }
    }

    /// `freshness` (`warn_after` / `error_after` as `{count, period}`, `filter`) with
    /// `loaded_at_field`; `None` when either is missing or `freshness` is null.
    fn freshness(&mut self) -> Option<Freshness> {
        let value = self.layer.get("freshness").map(|e| e.value.clone())?;
        let Json::Object(rule) = value else {
            if !value.is_null() {
                self.invalid("freshness", "a mapping with `warn_after` and/or `error_after`", &[]);
            }
            return None;
        };
        let after = |key: &str| -> Result<Option<chrono::Duration>, ()> {
            let Some(v) = rule.get(key).filter(|v| !v.is_null()) else { return Ok(None) };
            let count = v.get("count").and_then(Json::as_i64).filter(|c| *c > 0).ok_or(())?;
            // A count too large for a duration is as invalid as a bad period.
            let duration = match v.get("period").and_then(Json::as_str) {
                Some("minute") => chrono::Duration::try_minutes(count),
                Some("hour") => chrono::Duration::try_hours(count),
                Some("day") => chrono::Duration::try_days(count),
                _ => None,
            };
            duration.map(Some).ok_or(())
        };
        let (Ok(warn_after), Ok(error_after)) = (after("warn_after"), after("error_after")) else {
            self.invalid(
                "freshness",
                "`warn_after` / `error_after` as `{count: 12, period: hour}` (minute, hour or day)",
                &[],
            );
            return None;
        };
        let filter = rule.get("filter").and_then(Json::as_str).map(str::to_string);
        let loaded_at_field = self.string("loaded_at_field")?;
        (warn_after.is_some() || error_after.is_some()).then_some(Freshness {
            loaded_at_field,
            warn_after,
            error_after,
            filter,
        })
    }

    /// `warn_if` / `error_if`; default `!= 0`.
    fn threshold(&mut self, key: &str) -> Threshold {
        let default = Threshold::parse("!= 0").expect("the default parses");
        let Some(text) = self.string(key) else { return default };
        Threshold::parse(&text).unwrap_or_else(|_| {
            self.invalid(key, "a condition on the failing-row count, like `!= 0` or `> 10`", &[]);
            default
        })
    }

    /// `row_count_anomaly`: `false` turns it off; `warn` / `error` sets the severity; a
    /// mapping sets `severity`, `window`, `min_history`, `sigma`.
    fn anomaly(&mut self) -> Option<AnomalyConfig> {
        let mut config = AnomalyConfig::default();
        let Some(entry) = self.layer.get("row_count_anomaly") else { return Some(config) };
        let expected = "`false`, `warn`, `error` or a mapping of severity, window, min_history, sigma";
        let severity = |s: &str| match s.to_ascii_lowercase().as_str() {
            "warn" => Some(TestSeverity::Warn),
            "error" => Some(TestSeverity::Error),
            _ => None,
        };
        match &entry.value {
            Json::Bool(false) => return None,
            Json::Bool(true) | Json::Null => {}
            Json::String(s) if severity(s).is_some() => config.severity = severity(s).expect("checked"),
            Json::Object(m) => {
                for (k, v) in m {
                    let ok = match (k.as_str(), v) {
                        ("severity", Json::String(s)) => severity(s).map(|s| config.severity = s).is_some(),
                        ("window", Json::Number(n)) => n.as_u64().map(|n| config.window = n as usize).is_some(),
                        ("min_history", Json::Number(n)) => {
                            n.as_u64().map(|n| config.min_history = n as usize).is_some()
                        }
                        ("sigma", Json::Number(n)) => {
                            n.as_f64().filter(|s| *s > 0.0).map(|s| config.sigma = s).is_some()
                        }
                        _ => false,
                    };
                    if !ok {
                        self.invalid("row_count_anomaly", expected, &[]);
                        break;
                    }
                }
            }
            _ => self.invalid("row_count_anomaly", expected, &["warn", "error"]),
        }
        Some(config)
    }

    pub(super) fn choice<T: Copy>(&mut self, key: &str, choices: &[(&str, T)]) -> Option<T> {
        let value = self.string(key)?;
        let found = choices.iter().find(|(name, _)| name.eq_ignore_ascii_case(&value));
        if found.is_none() {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            self.invalid(key, &format!("one of {}", quoted_list(&names)), &names);
        }
        found.map(|(_, t)| *t)
    }
}

fn quoted_list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

impl NodeConfig {
    /// Validates a merged layer into a typed config.
    pub fn from_layer(layer: &ConfigLayer, kind: ConfigFor) -> Result<NodeConfig, Vec<Diagnostic>> {
        use Materialization as M;
        let mut c = Checker { layer, errors: Vec::new() };
        let materialized = match kind {
            ConfigFor::Seed => M::Seed,
            ConfigFor::Snapshot => M::Snapshot,
            ConfigFor::Test | ConfigFor::Source => M::Test,
            ConfigFor::Model => c
                .choice(
                    "materialized",
                    &[
                        ("view", M::View),
                        ("table", M::Table),
                        ("incremental", M::Incremental),
                        ("ephemeral", M::Ephemeral),
                    ],
                )
                .unwrap_or(M::View),
        };
        let incremental_strategy = c.choice(
            "incremental_strategy",
            &[
                ("append", IncrementalStrategy::Append),
                ("merge", IncrementalStrategy::Merge),
                ("delete+insert", IncrementalStrategy::DeleteInsert),
                ("insert_overwrite", IncrementalStrategy::InsertOverwrite),
                ("microbatch", IncrementalStrategy::InsertOverwrite),
            ],
        );
        let on_schema_change = c
            .choice(
                "on_schema_change",
                &[
                    ("ignore", OnSchemaChange::Ignore),
                    ("fail", OnSchemaChange::Fail),
                    ("append_new_columns", OnSchemaChange::AppendNewColumns),
                    ("sync_all_columns", OnSchemaChange::SyncAllColumns),
                ],
            )
            .unwrap_or_default();
        let batch_size = c.choice(
            "batch_size",
            &[
                ("hour", BatchSize::Hour),
                ("day", BatchSize::Day),
                ("month", BatchSize::Month),
                ("year", BatchSize::Year),
            ],
        );
        let severity =
            c.choice("severity", &[("error", TestSeverity::Error), ("warn", TestSeverity::Warn)]).unwrap_or_default();
        let partition_by = match layer.get("partition_by").map(|e| &e.value) {
            // BigQuery's spelling: {field: dt, data_type: date}.
            Some(Json::Object(m)) => match m.get("field") {
                Some(Json::String(f)) => Some(f.clone()),
                _ => {
                    c.invalid("partition_by", "a column name", &[]);
                    None
                }
            },
            _ => c.string("partition_by"),
        };
        let lookback = match layer.get("lookback").map(|e| &e.value) {
            None | Some(Json::Null) => 1,
            Some(Json::Number(n)) if n.as_u64().is_some_and(|n| n <= 10_000) => n.as_u64().expect("checked") as u32,
            Some(_) => {
                c.invalid("lookback", "a whole number of batches", &[]);
                1
            }
        };
        let freshness = c.freshness();
        let limit = match layer.get("limit").map(|e| &e.value) {
            None | Some(Json::Null) => None,
            Some(Json::Number(n)) if n.as_u64().is_some() => n.as_u64(),
            Some(_) => {
                c.invalid("limit", "a whole number of failing rows", &[]);
                None
            }
        };
        let column_types = match layer.get("column_types").map(|e| &e.value) {
            None | Some(Json::Null) => BTreeMap::new(),
            Some(Json::Object(m)) => {
                m.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect()
            }
            Some(_) => {
                c.invalid("column_types", "a mapping of column name to type", &[]);
                BTreeMap::new()
            }
        };
        let row_count_anomaly = c.anomaly();
        let config = NodeConfig {
            materialized,
            enabled: c.bool("enabled").unwrap_or(true),
            schema: c.string("schema"),
            alias: c.string("alias"),
            database: c.string("database"),
            tags: c.strings("tags"),
            incremental_strategy,
            unique_key: c.strings("unique_key"),
            partition_by,
            on_schema_change,
            full_refresh: c.bool("full_refresh"),
            pre_hook: c.strings("pre_hook"),
            post_hook: c.strings("post_hook"),
            event_time: c.string("event_time"),
            batch_size,
            begin: c.string("begin"),
            lookback,
            merge_update_columns: c.strings("merge_update_columns"),
            merge_exclude_columns: c.strings("merge_exclude_columns"),
            column_types,
            quote_columns: c.bool("quote_columns").unwrap_or(true),
            freshness,
            column_checks: c.bool("column_checks").unwrap_or(true),
            severity,
            store_failures: c.bool("store_failures").unwrap_or(false),
            warn_if: c.threshold("warn_if"),
            error_if: c.threshold("error_if"),
            row_count_anomaly,
            where_clause: c.string("where"),
            limit,
            snapshot: None,
            raw: layer.iter().map(|(k, e)| (k.clone(), e.value.clone())).collect(),
        };
        if c.errors.is_empty() { Ok(config) } else { Err(c.errors) }
    }
}

/// Turns a YAML scalar written under a folder in the project file into a config layer entry.
pub fn entry_from_yaml(value: &Yaml) -> ConfigEntry {
    ConfigEntry { value: value.to_json(), span: value.span }
}

/// True if a non-`+` key under `models:` is a config key (the older spelling), not a folder:
/// as in dbt, a known config name is config, anything else is a folder or node name.
pub fn is_old_style_config(key: &str) -> bool {
    is_known_key(&normalize_key(key))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::diagnostics::FileId;

    /// A layer of `pairs`, all at the start of a file.
    pub(in crate::project) fn layer(pairs: &[(&str, Json)]) -> ConfigLayer {
        let span = Span::file_start(FileId::default());
        pairs.iter().map(|(k, v)| (k.to_string(), ConfigEntry { value: v.clone(), span })).collect()
    }

    #[test]
    fn key_lists_are_sorted_for_binary_search() {
        assert!(ETLM_KEYS.windows(2).all(|w| w[0] < w[1]));
        assert!(IGNORED_DBT_KEYS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn later_layers_win_and_tags_accumulate() {
        let project = layer(&[("materialized", "view".into()), ("tags", "a".into())]);
        let file = layer(&[("materialized", "table".into()), ("tags", serde_json::json!(["b", "a"]))]);
        let merged = merge(&[&project, &file]);
        assert_eq!(merged["materialized"].value, "table");
        assert_eq!(merged["tags"].value, serde_json::json!(["a", "b"]));
    }

    #[test]
    fn invalid_materialization_suggests_the_nearest() {
        let errs = NodeConfig::from_layer(&layer(&[("materialized", "tabel".into())]), ConfigFor::Model).unwrap_err();
        assert_eq!(errs[0].code, "invalid-config");
        assert_eq!(errs[0].help, vec!["did you mean `table`?"]);
    }

    // Regression: #18, a freshness count too large for a duration panicked.
    #[test]
    fn a_freshness_count_beyond_any_duration_is_invalid() {
        let freshness = serde_json::json!({"warn_after": {"count": i64::MAX, "period": "day"}});
        let layer = layer(&[("freshness", freshness), ("loaded_at_field", "at".into())]);
        let errs = NodeConfig::from_layer(&layer, ConfigFor::Source).unwrap_err();
        assert_eq!(errs[0].code, "invalid-config");
        assert!(errs[0].message.contains("`freshness`"), "{}", errs[0].message);
    }
}
