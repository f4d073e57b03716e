//! What every engine agrees on about snapshots (dbt's SCD type 2 history), spelled as
//! SQL both DataFusion and Postgres run, computed as dbt's snapshot materialization
//! computes it:
//!
//! - the first run builds the table: the query's rows with `dbt_scd_id` (md5 of the
//!   key and the version's time), `dbt_updated_at` and `dbt_valid_from` (the version's
//!   time: `updated_at` under `timestamp`, the snapshot time under `check`) and
//!   `dbt_valid_to` (NULL, or `dbt_valid_to_current`);
//! - a later run computes the *changes* (dbt's staging table): `insert` rows for new and
//!   changed keys, `update` and `delete` rows closing current versions (their
//!   `dbt_valid_to`), and under `hard_deletes: new_record` an `insert` of a deleted
//!   marker (`dbt_is_deleted = 'True'`);
//! - the new version is the table with the closed versions' `dbt_valid_to` set and the
//!   inserts appended; new query columns are added at the end, NULL in older rows.
//!
//! Columns are always listed, never `*`: both engines then agree on order and names.
//! An engine supplies what it spells its own way ([`Spelling`]).

use crate::project::snapshot::{HardDeletes, SnapshotConfig, Strategy};
use crate::relation::{Relation, quote_ident};

/// Why a snapshot cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(
        "`unique_key` ({key}) is not unique in the snapshot's query, e.g. {sample}; \
         the snapshot would record duplicate versions"
    )]
    DuplicateKey { key: String, sample: String },
    #[error(
        "the table is not this snapshot's: it lacks the meta column{} {missing}; \
         rename or drop it to take the snapshot anew"
    , if missing.contains(',') { "s" } else { "" })]
    NotASnapshot { missing: String },
}

/// What an engine spells its own way.
pub struct Spelling {
    /// dbt's `snapshot_get_time()`: a timestamp without time zone, one value per run.
    pub now: String,
    /// Each `dbt_scd_id` argument (the key expressions, then the version's time, see
    /// [`Snapshot::scd_args`]) as text, over a row of the query; and the snapshot time
    /// as text.
    pub scd_texts: Vec<String>,
    pub now_text: String,
    /// A NULL of each query column's type, where the engine needs one to keep a new
    /// column's type in rows taken before it (by name; else a plain `null`).
    pub typed_nulls: std::collections::BTreeMap<String, String>,
}

impl Spelling {
    /// `cast(x as varchar)`: what dbt's `snapshot_hash_arguments` does, and all
    /// Postgres needs.
    pub fn cast(expr: &str) -> String {
        format!("cast({expr} as varchar)")
    }
}

/// One snapshot's run: its config, its query and the columns on both sides.
pub struct Snapshot<'a> {
    pub config: &'a SnapshotConfig,
    /// The snapshot's query.
    pub sql: &'a str,
    /// The query's columns.
    pub source_columns: &'a [String],
    pub spelling: &'a Spelling,
}

const CHANGE_TYPE: &str = "dbt_change_type";

impl Snapshot<'_> {
    /// The version's time: `updated_at`, or under `check` the snapshot time.
    pub fn updated_at(&self) -> String {
        match &self.config.strategy {
            Strategy::Timestamp { updated_at } | Strategy::Check { updated_at: Some(updated_at), .. } => {
                updated_at.clone()
            }
            Strategy::Check { updated_at: None, .. } => self.spelling.now.clone(),
        }
    }

    /// dbt's `scd_args`: the key expressions, then the version's time.
    pub fn scd_args(config: &SnapshotConfig, now: &str) -> Vec<String> {
        let updated_at = match &config.strategy {
            Strategy::Timestamp { updated_at } | Strategy::Check { updated_at: Some(updated_at), .. } => {
                updated_at.clone()
            }
            Strategy::Check { updated_at: None, .. } => now.to_string(),
        };
        config.unique_key.iter().cloned().chain([updated_at]).collect()
    }

    fn scd_id(&self) -> String {
        hash(&self.spelling.scd_texts)
    }

    fn current_to(&self) -> String {
        self.config.valid_to_current.clone().unwrap_or_else(|| "null".into())
    }

    /// `dbt_valid_to` of a row that is current, over `alias` (dbt's filter of
    /// `snapshotted_data`).
    fn is_current(&self, alias: &str) -> String {
        let to = format!("{alias}.{}", quote_ident(&self.config.meta.valid_to));
        match &self.config.valid_to_current {
            Some(current) => format!("({to} = {current} or {to} is null)"),
            None => format!("{to} is null"),
        }
    }

    fn meta(&self, name: &str) -> String {
        quote_ident(name)
    }

    fn keys(&self) -> Vec<String> {
        (1..=self.config.unique_key.len()).map(|i| format!("dbt_unique_key_{i}")).collect()
    }

    fn key_fields(&self) -> String {
        self.config
            .unique_key
            .iter()
            .zip(self.keys())
            .map(|(k, alias)| format!("{k} as {alias}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn key_join(&self, left: &str, right: &str) -> String {
        self.keys().iter().map(|k| format!("{left}.{k} = {right}.{k}")).collect::<Vec<_>>().join(" and ")
    }

    fn quoted(&self, alias: &str, columns: &[String]) -> Vec<String> {
        columns.iter().map(|c| format!("{alias}.{}", quote_ident(c))).collect()
    }

    /// The first run: the query's rows, each a current version.
    pub fn first_build(&self) -> String {
        let m = &self.config.meta;
        let u = self.updated_at();
        let mut columns = self.quoted("sbq", self.source_columns);
        columns.push(format!("{} as {}", self.scd_id(), self.meta(&m.scd_id)));
        columns.push(format!("{u} as {}", self.meta(&m.updated_at)));
        columns.push(format!("{u} as {}", self.meta(&m.valid_from)));
        columns.push(format!("coalesce(nullif({u}, {u}), {}) as {}", self.current_to(), self.meta(&m.valid_to)));
        if self.config.hard_deletes == HardDeletes::NewRecord {
            columns.push(format!("'False' as {}", self.meta(&m.is_deleted)));
        }
        format!("select {} from (\n{}\n) sbq", columns.join(",\n    "), self.sql)
    }

    /// The columns `check` compares, and whether one of them is new (then every row
    /// counts as changed, as in dbt).
    fn check_columns(&self, target_columns: &[String]) -> (Vec<String>, bool) {
        let checked: Vec<String> = match &self.config.strategy {
            Strategy::Check { columns: Some(list), .. } => list.clone(),
            _ => self.source_columns.to_vec(),
        };
        let has = |c: &String| target_columns.iter().any(|t| t.eq_ignore_ascii_case(c));
        let added = checked.iter().any(|c| !has(c));
        (checked.into_iter().filter(has).collect(), added)
    }

    fn row_changed(&self, target_columns: &[String]) -> String {
        let changed = match &self.config.strategy {
            Strategy::Timestamp { updated_at } => {
                format!("(snapshotted_data.{} < source_data.{updated_at})", self.meta(&self.config.meta.valid_from))
            }
            Strategy::Check { .. } => {
                let (columns, added) = self.check_columns(target_columns);
                if added || columns.is_empty() {
                    "(true)".to_string()
                } else {
                    let each: Vec<String> = columns
                        .iter()
                        .map(|c| {
                            let (s, d) = (format!("snapshotted_data.{}", quote_ident(c)), format!("source_data.{}", quote_ident(c)));
                            format!("{s} != {d} or (({s} is null) and not ({d} is null)) or ((not {s} is null) and ({d} is null))")
                        })
                        .collect();
                    format!("({})", each.join(" or "))
                }
            }
        };
        match self.config.hard_deletes {
            HardDeletes::NewRecord => {
                format!("{changed} or snapshotted_data.{} = 'True'", self.meta(&self.config.meta.is_deleted))
            }
            _ => changed,
        }
    }

    /// Fails, as dbt does, when the table lacks a meta column this snapshot needs (it was
    /// built by something else, or before `hard_deletes: new_record`).
    pub fn check_target(&self, target_columns: &[String]) -> Result<(), SnapshotError> {
        let m = &self.config.meta;
        let mut needed = vec![&m.scd_id, &m.valid_from, &m.valid_to];
        if self.config.hard_deletes == HardDeletes::NewRecord {
            needed.push(&m.is_deleted);
        }
        let missing: Vec<String> = needed
            .into_iter()
            .filter(|n| !target_columns.iter().any(|c| c.eq_ignore_ascii_case(n)))
            .map(|n| format!("`{n}`"))
            .collect();
        match missing.is_empty() {
            true => Ok(()),
            false => Err(SnapshotError::NotASnapshot { missing: missing.join(", ") }),
        }
    }

    /// The changes against the current table `target` (with `target_columns`), one row
    /// each, with `dbt_change_type`: dbt's snapshot staging table.
    pub fn changes(&self, target: &Relation, target_columns: &[String]) -> String {
        let m = &self.config.meta;
        let u = self.updated_at();
        let now = &self.spelling.now;
        let new_record = self.config.hard_deletes == HardDeletes::NewRecord;
        let deletes = self.config.hard_deletes != HardDeletes::Ignore;
        let keys = self.keys();
        let first_key = &keys[0];
        let (fields, on) = (self.key_fields(), self.key_join("snapshotted_data", "source_data"));
        let source = self.quoted("source_data", self.source_columns).join(", ");
        let source_keys = keys.iter().map(|k| format!("source_data.{k}")).collect::<Vec<_>>().join(", ");
        let plain = self.quoted("snapshot_query", self.source_columns).join(", ");
        let target_list = self.quoted("t", target_columns).join(", ");
        let is_deleted = |from: &str| match new_record {
            true => format!(", {from} as {}", self.meta(&m.is_deleted)),
            false => String::new(),
        };
        let changed = self.row_changed(target_columns);
        let (scd, vf, ua, vt) =
            (self.meta(&m.scd_id), self.meta(&m.valid_from), self.meta(&m.updated_at), self.meta(&m.valid_to));
        let not_deleted_marker = format!(
            "not (snapshotted_data.{} = 'True' and {})",
            self.meta(&m.is_deleted),
            self.is_current("snapshotted_data")
        );
        let mut ctes = vec![
            format!("snapshot_query as (\n{}\n)", self.sql),
            format!(
                "snapshotted_data as (\n  select {target_list}, {fields}\n  from {target} t\n  where {}\n)",
                self.is_current("t")
            ),
            format!(
                "insertions_source_data as (\n  select {plain}, {fields}, {u} as {ua}, {u} as {vf}, \
                 coalesce(nullif({u}, {u}), {}) as {vt}, {} as {scd}\n  from snapshot_query\n)",
                self.current_to(),
                self.scd_id()
            ),
            format!(
                "updates_source_data as (\n  select {plain}, {fields}, {u} as {ua}, {u} as {vf}, {u} as {vt}\n  from snapshot_query\n)"
            ),
        ];
        if deletes {
            ctes.push(format!("deletes_source_data as (\n  select {plain}, {fields}\n  from snapshot_query\n)"));
        }
        ctes.push(format!(
            "insertions as (\n  select 'insert' as {CHANGE_TYPE}, {source}, {source_keys}, source_data.{ua}, source_data.{vf}, \
             source_data.{vt}, source_data.{scd}{}\n  from insertions_source_data as source_data\n  \
             left outer join snapshotted_data on {on}\n  where snapshotted_data.{first_key} is null\n  \
             or (snapshotted_data.{first_key} is not null and ({changed}))\n)",
            is_deleted("'False'")
        ));
        ctes.push(format!(
            "updates as (\n  select 'update' as {CHANGE_TYPE}, {source}, {source_keys}, source_data.{ua}, source_data.{vf}, \
             source_data.{vt}, snapshotted_data.{scd}{}\n  from updates_source_data as source_data\n  \
             join snapshotted_data on {on}\n  where ({changed})\n)",
            is_deleted(&format!("snapshotted_data.{}", self.meta(&m.is_deleted)))
        ));
        let mut parts = vec!["select * from insertions", "select * from updates"];
        if deletes {
            ctes.push(format!(
                "deletes as (\n  select 'delete' as {CHANGE_TYPE}, {source}, {source_keys}, {now} as {ua}, {now} as {vf}, \
                 {now} as {vt}, snapshotted_data.{scd}{}\n  from snapshotted_data\n  \
                 left join deletes_source_data as source_data on {on}\n  where source_data.{first_key} is null{}\n)",
                is_deleted(&format!("snapshotted_data.{}", self.meta(&m.is_deleted))),
                if new_record { format!(" and {not_deleted_marker}") } else { String::new() }
            ));
            parts.push("select * from deletes");
        }
        if new_record {
            let kept: Vec<String> = self
                .source_columns
                .iter()
                .map(|c| match target_columns.iter().any(|t| t == c) {
                    true => format!("snapshotted_data.{}", quote_ident(c)),
                    false => format!("source_data.{}", quote_ident(c)),
                })
                .collect();
            let target_keys = keys.iter().map(|k| format!("snapshotted_data.{k}")).collect::<Vec<_>>().join(", ");
            let new_scd = hash(&[Spelling::cast(&format!("snapshotted_data.{scd}")), self.spelling.now_text.clone()]);
            ctes.push(format!(
                "deletion_records as (\n  select 'insert' as {CHANGE_TYPE}, {}, {target_keys}, {now} as {ua}, {now} as {vf}, \
                 snapshotted_data.{vt} as {vt}, {new_scd} as {scd}, 'True' as {}\n  from snapshotted_data\n  \
                 left join deletes_source_data as source_data on {on}\n  where source_data.{first_key} is null and {not_deleted_marker}\n)",
                kept.join(", "),
                self.meta(&m.is_deleted)
            ));
            parts.push("select * from deletion_records");
        }
        format!("with {}\n{}", ctes.join(",\n"), parts.join("\nunion all\n"))
    }

    /// The columns of the new version: the table's, then the query's new ones.
    pub fn new_columns(&self, target_columns: &[String]) -> Vec<String> {
        let added = self.source_columns.iter().filter(|c| !target_columns.contains(c));
        target_columns.iter().chain(added).cloned().collect()
    }

    /// The rows of the new version: `target` with the versions `changes` closes given
    /// their `dbt_valid_to`, then the inserted versions. `change_columns` are the
    /// columns of `changes`.
    pub fn new_version(
        &self,
        target: &Relation,
        target_columns: &[String],
        changes: &Relation,
        change_columns: &[String],
    ) -> String {
        let m = &self.config.meta;
        let (scd, vt) = (quote_ident(&m.scd_id), quote_ident(&m.valid_to));
        let columns = self.new_columns(target_columns);
        let kept: Vec<String> = columns
            .iter()
            .map(|c| {
                let q = quote_ident(c);
                match (c == &m.valid_to, target_columns.contains(c)) {
                    (true, _) => format!("case when c.{scd} is not null then c.{vt} else t.{vt} end as {vt}"),
                    (false, true) => format!("t.{q} as {q}"),
                    (false, false) => {
                        format!("{} as {q}", self.spelling.typed_nulls.get(c).map_or("null", String::as_str))
                    }
                }
            })
            .collect();
        let inserted: Vec<String> = columns
            .iter()
            .map(|c| match change_columns.contains(c) {
                true => format!("i.{0} as {0}", quote_ident(c)),
                false => format!("null as {}", quote_ident(c)),
            })
            .collect();
        format!(
            "select {}\nfrom {target} t\nleft join (select {scd}, {vt} from {changes} where {CHANGE_TYPE} in ('update', 'delete')) c\n  \
             on c.{scd} = t.{scd} and {}\nunion all\nselect {}\nfrom {changes} i where i.{CHANGE_TYPE} = 'insert'",
            kept.join(", "),
            self.is_current("t"),
            inserted.join(", ")
        )
    }

    /// The columns an `insert` row of the changes gives the table: all but the change
    /// type and the key fields.
    pub fn inserted_columns<'c>(&self, change_columns: &'c [String]) -> Vec<&'c String> {
        change_columns.iter().filter(|c| *c != CHANGE_TYPE && !c.starts_with("dbt_unique_key")).collect()
    }

    /// dbt-postgres's publish of the changes: close versions, then insert new ones.
    pub fn apply(&self, target: &Relation, changes: &Relation, change_columns: &[String]) -> Vec<String> {
        let m = &self.config.meta;
        let (scd, vt) = (quote_ident(&m.scd_id), quote_ident(&m.valid_to));
        let current = match &self.config.valid_to_current {
            Some(current) => format!("({target}.{vt} = {current} or {target}.{vt} is null)"),
            None => format!("{target}.{vt} is null"),
        };
        let insert: Vec<String> = self.inserted_columns(change_columns).into_iter().map(|c| quote_ident(c)).collect();
        let from_source: Vec<String> = insert.iter().map(|c| format!("DBT_INTERNAL_SOURCE.{c}")).collect();
        vec![
            format!(
                "update {target} set {vt} = DBT_INTERNAL_SOURCE.{vt} from {changes} as DBT_INTERNAL_SOURCE \
                 where DBT_INTERNAL_SOURCE.{scd}::text = {target}.{scd}::text \
                 and DBT_INTERNAL_SOURCE.{CHANGE_TYPE}::text in ('update'::text, 'delete'::text) and {current}"
            ),
            format!(
                "insert into {target} ({}) select {} from {changes} as DBT_INTERNAL_SOURCE \
                 where DBT_INTERNAL_SOURCE.{CHANGE_TYPE}::text = 'insert'::text",
                insert.join(", "),
                from_source.join(", ")
            ),
        ]
    }

    /// A query returning up to three keys repeated in the query, each as text
    /// (`sample`).
    pub fn duplicate_keys(&self) -> String {
        let keys: Vec<String> = self.config.unique_key.iter().map(|k| Spelling::cast(k)).collect();
        format!(
            "select concat_ws(', ', {}) as sample from (\n{}\n) dbt_snapshot_source group by {} having count(*) > 1 limit 3",
            keys.join(", "),
            self.sql,
            self.config.unique_key.join(", ")
        )
    }
}

/// dbt's `snapshot_hash_arguments`: md5 of the arguments as text joined by `|`, NULL
/// as ''.
fn hash(texts: &[String]) -> String {
    let parts: Vec<String> = texts.iter().map(|t| format!("coalesce({t}, '')")).collect();
    format!("md5({})", parts.join(" || '|' || "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::snapshot::MetaColumns;

    fn config(strategy: Strategy, hard_deletes: HardDeletes) -> SnapshotConfig {
        SnapshotConfig {
            strategy,
            unique_key: vec!["id".into()],
            hard_deletes,
            valid_to_current: None,
            meta: MetaColumns::default(),
            target_schema: None,
            target_database: None,
        }
    }

    #[test]
    fn scd_id_hashes_the_key_and_the_version_time_as_dbt_does() {
        let c = config(Strategy::Timestamp { updated_at: "updated_at".into() }, HardDeletes::Ignore);
        let args = Snapshot::scd_args(&c, "now()");
        assert_eq!(args, ["id", "updated_at"]);
        let spelling = Spelling {
            now: "now()".into(),
            scd_texts: args.iter().map(|a| Spelling::cast(a)).collect(),
            now_text: Spelling::cast("now()"),
            typed_nulls: Default::default(),
        };
        let columns = vec!["id".to_string(), "updated_at".to_string()];
        let s = Snapshot { config: &c, sql: "select 1", source_columns: &columns, spelling: &spelling };
        let sql = s.first_build();
        assert!(
            sql.contains(
                "md5(coalesce(cast(id as varchar), '') || '|' || coalesce(cast(updated_at as varchar), '')) as \"dbt_scd_id\""
            ),
            "{sql}"
        );
        assert!(sql.contains("coalesce(nullif(updated_at, updated_at), null) as \"dbt_valid_to\""), "{sql}");
        let changes =
            s.changes(&Relation::new("s", "snap"), &["id".into(), "updated_at".into(), "dbt_valid_from".into()]);
        assert!(changes.contains("(snapshotted_data.\"dbt_valid_from\" < source_data.updated_at)"), "{changes}");
        assert!(!changes.contains("deletes as"), "{changes}");
    }

    #[test]
    fn changes_apply_as_dbt_postgres_does() {
        let c = config(Strategy::Timestamp { updated_at: "updated_at".into() }, HardDeletes::Invalidate);
        let spelling = Spelling {
            now: "now()".into(),
            scd_texts: vec![],
            now_text: "'t'".into(),
            typed_nulls: Default::default(),
        };
        let s = Snapshot { config: &c, sql: "select 1", source_columns: &[], spelling: &spelling };
        let (t, d) = (Relation::new("s", "snap"), Relation::new("_etlm_staging", "snap_c"));
        let columns: Vec<String> = ["dbt_change_type", "id", "dbt_unique_key_1", "dbt_valid_to", "dbt_scd_id"]
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            s.apply(&t, &d, &columns),
            [
                "update \"s\".\"snap\" set \"dbt_valid_to\" = DBT_INTERNAL_SOURCE.\"dbt_valid_to\" \
                 from \"_etlm_staging\".\"snap_c\" as DBT_INTERNAL_SOURCE \
                 where DBT_INTERNAL_SOURCE.\"dbt_scd_id\"::text = \"s\".\"snap\".\"dbt_scd_id\"::text \
                 and DBT_INTERNAL_SOURCE.dbt_change_type::text in ('update'::text, 'delete'::text) \
                 and \"s\".\"snap\".\"dbt_valid_to\" is null",
                "insert into \"s\".\"snap\" (\"id\", \"dbt_valid_to\", \"dbt_scd_id\") \
                 select DBT_INTERNAL_SOURCE.\"id\", DBT_INTERNAL_SOURCE.\"dbt_valid_to\", DBT_INTERNAL_SOURCE.\"dbt_scd_id\" \
                 from \"_etlm_staging\".\"snap_c\" as DBT_INTERNAL_SOURCE \
                 where DBT_INTERNAL_SOURCE.dbt_change_type::text = 'insert'::text",
            ]
        );
    }

    #[test]
    fn check_all_with_a_new_column_changes_every_row() {
        let c = config(Strategy::Check { columns: None, updated_at: None }, HardDeletes::NewRecord);
        let spelling = Spelling {
            now: "now()".into(),
            scd_texts: vec![],
            now_text: "'t'".into(),
            typed_nulls: Default::default(),
        };
        let columns = vec!["id".to_string(), "a".to_string(), "b".to_string()];
        let s = Snapshot { config: &c, sql: "select 1", source_columns: &columns, spelling: &spelling };
        let target = ["id".to_string(), "a".to_string()];
        assert!(
            s.changes(&Relation::new("s", "t"), &target)
                .contains("((true) or snapshotted_data.\"dbt_is_deleted\" = 'True')")
        );
        assert_eq!(s.new_columns(&target), ["id", "a", "b"]);
        let err = s.check_target(&target).unwrap_err().to_string();
        assert!(
            err.contains("lacks the meta columns `dbt_scd_id`, `dbt_valid_from`, `dbt_valid_to`, `dbt_is_deleted`"),
            "{err}"
        );
        let same = ["id".to_string(), "a".to_string(), "b".to_string()];
        let sql = s.changes(&Relation::new("s", "t"), &same);
        assert!(sql.contains("snapshotted_data.\"a\" != source_data.\"a\""), "{sql}");
        assert!(sql.contains("deletion_records as"), "{sql}");
    }
}
