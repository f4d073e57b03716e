//! What every engine agrees on about incremental models: how a model's new rows (the
//! *delta*) combine with the table, spelled as SQL both DataFusion and Postgres run.
//!
//! - `append`: every current row, then the delta.
//! - `insert_overwrite`: current rows of the partitions the delta does not touch, then
//!   the delta (without `partition_by`, the delta replaces the table).
//! - `merge`, `delete+insert`: current rows whose `unique_key` is not in the delta, then
//!   the delta's rows (for `merge` with `merge_update_columns`/`merge_exclude_columns`,
//!   matched rows keep their current value in the columns not updated).
//! - a batch of a windowed model: current rows outside the window, then the delta.
//!
//! `on_schema_change` decides the new version's columns; a side that lacks a column
//! gives NULL.

use super::ColumnMeta;
use crate::project::{IncrementalStrategy, OnSchemaChange};
use crate::relation::{Relation, quote_ident};

/// How an incremental model combines its new rows with the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncrementalSpec {
    pub strategy: IncrementalStrategy,
    pub unique_key: Vec<String>,
    pub partition_by: Vec<String>,
    pub on_schema_change: OnSchemaChange,
    /// For `merge`: the columns a matched row takes from the delta (`None`: all)...
    pub update_columns: Option<Vec<String>>,
    /// ...except these (`merge_exclude_columns`).
    pub exclude_columns: Vec<String>,
    /// For a batch of a windowed model: the rows of this window are replaced, whatever
    /// the strategy.
    pub window: Option<Window>,
}

/// A batch's window: rows whose `event_time` is in [start, end) belong to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub event_time: String,
    pub start: chrono::NaiveDateTime,
    pub end: chrono::NaiveDateTime,
}

impl Window {
    /// `"ev" >= cast('…' as timestamp) and "ev" < cast('…' as timestamp)`.
    pub fn condition(&self) -> String {
        let ev = quote_ident(&self.event_time);
        let (start, end) = (crate::window::timestamp(self.start), crate::window::timestamp(self.end));
        format!("{ev} >= cast('{start}' as timestamp) and {ev} < cast('{end}' as timestamp)")
    }

    /// The rows of a batch's query (`sql`) that are not in the window: outside
    /// [start, end), or with no `event_time`. Replacing the window with them would add
    /// rows to other windows on every run.
    pub fn outside(&self, sql: &str) -> String {
        let ev = quote_ident(&self.event_time);
        format!("select 1 from (\n{sql}\n) batch_rows where {ev} is null or not ({})", self.condition())
    }
}

/// Why new rows cannot be combined with the table.
#[derive(Debug, thiserror::Error)]
pub enum IncrementalError {
    #[error("`unique_key` column `{column}` is NULL in a new row; every new row needs a key")]
    NullKey { column: String },
    #[error("`unique_key` ({key}) is duplicated in the new rows, e.g. {sample}; merge would duplicate it")]
    DuplicateKey { key: String, sample: String },
    #[error(
        "the columns changed and `on_schema_change` is `fail`: added {added}, removed {removed}, retyped {retyped}; \
         run with --full-refresh or choose append_new_columns or sync_all_columns"
    )]
    SchemaChanged { added: String, removed: String, retyped: String },
    #[error(
        "no columns were read for the {which}; rather than drop every column, nothing was changed \
         (can the target's role read its catalog?)"
    )]
    NoColumns { which: &'static str },
    #[error("the partition columns changed from ({old}) to ({new}); run with --full-refresh")]
    PartitionsChanged { old: String, new: String },
}

impl IncrementalSpec {
    /// True if `merge` updates only some columns of matched rows.
    pub fn limited_update(&self) -> bool {
        self.strategy == IncrementalStrategy::Merge
            && (self.update_columns.is_some() || !self.exclude_columns.is_empty())
    }

    /// True if a matched row takes column `c` from the delta.
    pub fn takes_new(&self, c: &str) -> bool {
        self.unique_key.iter().any(|k| k == c)
            || (self.update_columns.as_ref().is_none_or(|u| u.iter().any(|x| x == c))
                && !self.exclude_columns.iter().any(|x| x == c))
    }

    /// `o."k" = d."k" and ...` over the unique key.
    pub fn key_match(&self) -> String {
        self.unique_key.iter().map(|k| format!("o.{0} = d.{0}", quote_ident(k))).collect::<Vec<_>>().join(" and ")
    }
}

/// The table and delta being combined, with their columns.
pub struct Combine<'a> {
    pub current: &'a Relation,
    pub delta: &'a Relation,
    /// The new version's columns (see `target_columns`).
    pub columns: &'a [ColumnMeta],
    pub current_columns: &'a [ColumnMeta],
    pub delta_columns: &'a [ColumnMeta],
    pub spec: &'a IncrementalSpec,
    /// Cast a side's column to the new version's type where the two differ (`column
    /// types` are the engine's SQL spellings): Postgres does not unify `integer` and
    /// `text` in a union; DataFusion does, and its types are not SQL spellings.
    pub cast_to_target: bool,
}

impl Combine<'_> {
    /// The current rows kept, in the new version's columns, under `filter` (over `o`).
    pub fn kept(&self, filter: &str) -> String {
        let kept = self.side_list("o", self.current_columns);
        format!("select {kept} from {} o where {filter}", self.current)
    }

    /// The delta's rows in the new version's columns.
    pub fn new_rows(&self) -> String {
        format!("select {} from {} d", self.side_list("d", self.delta_columns), self.delta)
    }

    /// The new version's columns read from one side (`alias` with `side` columns).
    fn side_list(&self, alias: &str, side: &[ColumnMeta]) -> String {
        self.columns.iter().map(|c| self.side_expr(alias, side, c)).collect::<Vec<_>>().join(", ")
    }

    /// Column `c` of the new version from one side: `null` where the side lacks it, cast
    /// to its type where the side's differs and `cast_to_target` says so.
    fn side_expr(&self, alias: &str, side: &[ColumnMeta], c: &ColumnMeta) -> String {
        match side.iter().find(|s| s.name == c.name) {
            Some(s) if self.cast_to_target && !s.data_type.eq_ignore_ascii_case(&c.data_type) => {
                let q = quote_ident(&c.name);
                format!("cast({alias}.{q} as {}) as {q}", c.data_type)
            }
            found => column_expr(alias, &c.name, found.is_some()),
        }
    }

    /// The rows of the merged table (`merge`, `delete+insert`).
    pub fn merged(&self) -> String {
        let on = self.spec.key_match();
        let unmatched = format!("not exists (select 1 from {} d where {on})", self.delta);
        let kept = self.kept(&unmatched);
        if !self.spec.limited_update() {
            return format!("{kept}\nunion all\n{}", self.new_rows());
        }
        let matched: Vec<String> = self
            .columns
            .iter()
            .map(|c| match self.spec.takes_new(&c.name) && has(self.delta_columns, &c.name) {
                true => self.side_expr("d", self.delta_columns, c),
                false => self.side_expr("o", self.current_columns, c),
            })
            .collect();
        let new = self.side_list("d", self.delta_columns);
        format!(
            "{kept}\nunion all\nselect {} from {} o join {} d on {on}\nunion all\n\
             select {new} from {} d where not exists (select 1 from {} o where {on})",
            matched.join(", "),
            self.current,
            self.delta,
            self.delta,
            self.current
        )
    }

    /// The rows of a batch's new version: current rows outside the window (and within
    /// `filter`), then the delta.
    pub fn windowed(&self, window: &Window, filter: &str) -> String {
        format!("{}\nunion all\n{}", self.kept(&format!("{filter} and not ({})", window.condition())), self.new_rows())
    }
}

fn has(list: &[ColumnMeta], name: &str) -> bool {
    list.iter().any(|c| c.name == name)
}

/// `alias."c" as "c"`, or `null as "c"` where the relation lacks the column.
fn column_expr(alias: &str, name: &str, present: bool) -> String {
    let q = quote_ident(name);
    if present { format!("{alias}.{q} as {q}") } else { format!("null as {q}") }
}

/// The new version's columns under `on_schema_change`.
pub fn target_columns(
    old: &[ColumnMeta],
    new: &[ColumnMeta],
    policy: OnSchemaChange,
) -> Result<Vec<ColumnMeta>, IncrementalError> {
    // An empty column list is a catalog that could not be read, never a table without
    // columns: taken at its word, `sync_all_columns` would drop them all.
    if old.is_empty() || new.is_empty() {
        return Err(IncrementalError::NoColumns { which: if old.is_empty() { "current table" } else { "new rows" } });
    }
    let added: Vec<&str> = new.iter().filter(|c| !has(old, &c.name)).map(|c| c.name.as_str()).collect();
    let removed: Vec<&str> = old.iter().filter(|c| !has(new, &c.name)).map(|c| c.name.as_str()).collect();
    // As dbt's `check_for_schema_changes`: a column whose type changed is a change too.
    let retyped: Vec<String> = old
        .iter()
        .filter_map(|o| {
            let n = new.iter().find(|n| n.name == o.name)?;
            (!n.data_type.eq_ignore_ascii_case(&o.data_type))
                .then(|| format!("{} ({} to {})", o.name, o.data_type, n.data_type))
        })
        .collect();
    Ok(match policy {
        OnSchemaChange::Ignore => old.to_vec(),
        OnSchemaChange::Fail if added.is_empty() && removed.is_empty() && retyped.is_empty() => old.to_vec(),
        OnSchemaChange::Fail => {
            let list = |l: Vec<&str>| if l.is_empty() { "none".to_string() } else { format!("`{}`", l.join("`, `")) };
            return Err(IncrementalError::SchemaChanged {
                added: list(added),
                removed: list(removed),
                retyped: list(retyped.iter().map(String::as_str).collect()),
            });
        }
        OnSchemaChange::AppendNewColumns => {
            old.iter().cloned().chain(new.iter().filter(|c| !has(old, &c.name)).cloned()).collect()
        }
        OnSchemaChange::SyncAllColumns => new.to_vec(),
    })
}

/// A query returning one row if key column `key` is NULL in a row of `delta`.
pub fn null_key_sql(delta: &Relation, key: &str) -> String {
    format!("select 1 from {delta} where {} is null limit 1", quote_ident(key))
}

/// A query returning one repeated key of `delta` as text (`sample`), if any.
pub fn duplicate_key_sql(delta: &Relation, keys: &[String]) -> String {
    let cols: Vec<String> = keys.iter().map(|k| quote_ident(k)).collect();
    let nulls = cols.iter().map(|c| format!("{c} is null")).collect::<Vec<_>>().join(" or ");
    format!(
        "select concat_ws(', ', {}) as sample from {delta} where not ({nulls}) group by {} having count(*) > 1 limit 1",
        cols.iter().map(|c| format!("cast({c} as varchar)")).collect::<Vec<_>>().join(", "),
        cols.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<ColumnMeta> {
        names.iter().map(|n| ColumnMeta { name: n.to_string(), data_type: "Int64".into() }).collect()
    }

    fn names(columns: &[ColumnMeta]) -> Vec<&str> {
        columns.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn on_schema_change_decides_the_columns() {
        let (old, new) = (cols(&["id", "a", "b"]), cols(&["id", "b", "c"]));
        assert_eq!(names(&target_columns(&old, &new, OnSchemaChange::Ignore).unwrap()), ["id", "a", "b"]);
        assert_eq!(
            names(&target_columns(&old, &new, OnSchemaChange::AppendNewColumns).unwrap()),
            ["id", "a", "b", "c"]
        );
        assert_eq!(names(&target_columns(&old, &new, OnSchemaChange::SyncAllColumns).unwrap()), ["id", "b", "c"]);
        let err = target_columns(&old, &new, OnSchemaChange::Fail).unwrap_err().to_string();
        assert!(err.contains("added `c`, removed `a`, retyped none"), "{err}");
        assert!(target_columns(&old, &old, OnSchemaChange::Fail).is_ok());
        let mut retyped = old.clone();
        retyped[1].data_type = "Utf8".into();
        let err = target_columns(&old, &retyped, OnSchemaChange::Fail).unwrap_err().to_string();
        assert!(err.contains("added none, removed none, retyped `a (Int64 to Utf8)`"), "{err}");
        for policy in [OnSchemaChange::Ignore, OnSchemaChange::SyncAllColumns, OnSchemaChange::AppendNewColumns] {
            let err = target_columns(&[], &new, policy).unwrap_err().to_string();
            assert!(err.contains("no columns were read for the current table"), "{err}");
            assert!(target_columns(&old, &[], policy).is_err());
        }
    }

    #[test]
    fn merge_keeps_unmatched_rows_and_limits_updates() {
        let spec = IncrementalSpec {
            strategy: IncrementalStrategy::Merge,
            unique_key: vec!["id".into()],
            partition_by: vec![],
            on_schema_change: OnSchemaChange::Ignore,
            update_columns: Some(vec!["a".into()]),
            exclude_columns: vec![],
            window: None,
        };
        let (t, d) = (Relation::new("main", "t"), Relation::new("x", "d"));
        let columns = cols(&["id", "a", "b"]);
        let c = Combine {
            current: &t,
            delta: &d,
            columns: &columns,
            current_columns: &columns,
            delta_columns: &columns,
            spec: &spec,
            cast_to_target: false,
        };
        let sql = c.merged();
        assert!(sql.contains("where not exists (select 1 from \"x\".\"d\" d where o.\"id\" = d.\"id\")"), "{sql}");
        assert!(sql.contains("select d.\"id\" as \"id\", d.\"a\" as \"a\", o.\"b\" as \"b\" from"), "{sql}");
    }
}
