//! Publishing on Postgres: one transaction makes the staged version current and drops
//! the staging, so readers see the old version or the new one, never a mix.
//!
//! Nothing built on top is dropped. A table with no dependent views is swapped (the
//! old one dropped, the staged one moved in); a table with dependents keeps its
//! identity: its columns are brought in line and its rows replaced, so the views keep
//! working. Where Postgres cannot keep a dependent (a column it reads is gone or
//! retyped, a view would lose columns), the publish stops with an error naming it.

use tokio_postgres::{Client, Transaction};

use super::snapshot::SnapshotPlan;
use super::{IncrementalPlan, RelKind, StagedKind, StagedPg, pg_error};
use crate::engine::ColumnMeta;
use crate::engine::failpoint::Failpoints;
use crate::engine::{EngineError, ErrorKind};
use crate::project::IncrementalStrategy;
use crate::relation::{Relation, quote_ident};

/// MERGE exists from Postgres 15 on.
const MERGE_VERSION: u32 = 150_000;

/// Publishes `staged` as `relation` in one transaction; `before-publish` is passed
/// inside it, just before the commit.
pub(super) async fn publish(
    client: &mut Client,
    relation: &Relation,
    staged: &StagedPg,
    server_version: u32,
    failpoints: &Failpoints,
    model: &str,
) -> Result<(), EngineError> {
    let mut tx = client.transaction().await.map_err(|e| pg_error(&e))?;
    let existing = kind_of(&tx, relation).await?;
    exec(&tx, &format!("drop view if exists {}", staged.audit)).await?;
    match &staged.kind {
        StagedKind::View { sql } => publish_view(&mut tx, relation, sql, existing).await?,
        StagedKind::Table { staging } => publish_table(&tx, relation, staging, existing).await?,
        StagedKind::Incremental(plan) => apply_incremental(&tx, relation, plan, server_version).await?,
        StagedKind::Snapshot(plan) => apply_snapshot(&tx, relation, plan).await?,
    }
    failpoints.hit("before-publish", model);
    tx.commit().await.map_err(|e| pg_error(&e))
}

async fn publish_view(
    tx: &mut Transaction<'_>,
    relation: &Relation,
    sql: &str,
    existing: Option<RelKind>,
) -> Result<(), EngineError> {
    let create = format!("create view {relation} as {sql}");
    match existing {
        None => exec(tx, &create).await,
        Some(RelKind::View) => {
            // `create or replace` keeps dependents when the new columns extend the old.
            let savepoint = tx.transaction().await.map_err(|e| pg_error(&e))?;
            match savepoint.batch_execute(&format!("create or replace view {relation} as {sql}")).await {
                Ok(()) => savepoint.commit().await.map_err(|e| pg_error(&e)),
                Err(e) => {
                    savepoint.rollback().await.map_err(|e| pg_error(&e))?;
                    let dependents = dependents(tx, relation).await?;
                    if !dependents.is_empty() {
                        return Err(blocked(relation, &dependents, &super::error_text(&e)));
                    }
                    exec(tx, &format!("drop view {relation}")).await?;
                    exec(tx, &create).await
                }
            }
            .map(drop)
        }
        Some(RelKind::Table) => {
            let dependents = dependents(tx, relation).await?;
            if !dependents.is_empty() {
                return Err(blocked(relation, &dependents, "a table becomes a view"));
            }
            exec(tx, &format!("drop table {relation}")).await?;
            exec(tx, &create).await
        }
    }
}

async fn publish_table(
    tx: &Transaction<'_>,
    relation: &Relation,
    staging: &Relation,
    existing: Option<RelKind>,
) -> Result<(), EngineError> {
    let dependents = match existing {
        Some(_) => dependents(tx, relation).await?,
        None => Vec::new(),
    };
    match existing {
        Some(kind) if dependents.is_empty() => {
            let what = if kind == RelKind::View { "view" } else { "table" };
            exec(tx, &format!("drop {what} {relation}")).await?;
        }
        Some(RelKind::View) => return Err(blocked(relation, &dependents, "a view becomes a table")),
        Some(RelKind::Table) => {
            // Keep the table (and what reads it): align its columns, replace its rows.
            let old = super::columns_of(tx, relation).await?;
            let new = super::columns_of(tx, staging).await?;
            align_columns(tx, relation, &old, &new, &new).await?;
            let cols = column_list(&new);
            exec(tx, &format!("delete from {relation}")).await?;
            exec(tx, &format!("insert into {relation} ({cols}) select {cols} from {staging}")).await?;
            return exec(tx, &format!("drop table {staging}")).await;
        }
        None => {}
    }
    exec(tx, &format!("alter table {staging} set schema {}", quote_ident(&relation.schema))).await?;
    let moved = Relation::new(&relation.schema, &staging.identifier);
    exec(tx, &format!("alter table {moved} rename to {}", quote_ident(&relation.identifier))).await
}

/// Brings `relation`'s columns from `old` to `target` (types from `typed`): adds the
/// new ones, drops the gone ones, retypes the changed ones. Postgres refuses the last
/// two when a view reads the column; that stops the publish with the view named.
async fn align_columns(
    tx: &Transaction<'_>,
    relation: &Relation,
    old: &[ColumnMeta],
    target: &[ColumnMeta],
    typed: &[ColumnMeta],
) -> Result<(), EngineError> {
    let find = |list: &'_ [ColumnMeta], name: &str| list.iter().find(|c| c.name == name).cloned();
    for column in target {
        let new_type = find(typed, &column.name).map_or(column.data_type.clone(), |c| c.data_type);
        let q = quote_ident(&column.name);
        match find(old, &column.name) {
            None => exec(tx, &format!("alter table {relation} add column {q} {new_type}")).await?,
            Some(current) if current.data_type != new_type && find(typed, &column.name).is_some() => {
                let sql = format!("alter table {relation} alter column {q} type {new_type} using {q}::{new_type}");
                tx.batch_execute(&sql).await.map_err(|e| dependent_error(relation, &e))?;
            }
            Some(_) => {}
        }
    }
    for column in old.iter().filter(|c| find(target, &c.name).is_none()) {
        let sql = format!("alter table {relation} drop column {}", quote_ident(&column.name));
        tx.batch_execute(&sql).await.map_err(|e| dependent_error(relation, &e))?;
    }
    Ok(())
}

/// Applies an incremental model's staged delta to the table.
async fn apply_incremental(
    tx: &Transaction<'_>,
    relation: &Relation,
    plan: &IncrementalPlan,
    server_version: u32,
) -> Result<(), EngineError> {
    align_columns(tx, relation, &plan.current_columns, &plan.columns, &plan.columns).await?;
    let delta = &plan.delta;
    let spec = &plan.spec;
    let inserted: Vec<ColumnMeta> =
        plan.columns.iter().filter(|c| plan.delta_columns.iter().any(|d| d.name == c.name)).cloned().collect();
    let cols = column_list(&inserted);
    let insert = format!("insert into {relation} ({cols}) select {cols} from {delta}");
    let on = spec.key_match();
    let statements = if let Some(window) = &spec.window {
        vec![format!("delete from {relation} where {}", window.condition()), insert]
    } else {
        match spec.strategy {
            IncrementalStrategy::Append => vec![insert],
            IncrementalStrategy::InsertOverwrite if spec.partition_by.is_empty() => {
                vec![format!("delete from {relation}"), insert]
            }
            IncrementalStrategy::InsertOverwrite => {
                vec![format!("delete from {relation} as o where {}", plan.touched_partitions()), insert]
            }
            IncrementalStrategy::DeleteInsert => {
                vec![format!("delete from {relation} as o where exists (select 1 from {delta} d where {on})"), insert]
            }
            IncrementalStrategy::Merge => merge(relation, delta, spec, &inserted, server_version),
        }
    };
    for statement in statements {
        exec(tx, &statement).await?;
    }
    exec(tx, &format!("drop table {delta}")).await
}

/// Applies a snapshot's staged changes: the query's new columns are added, then
/// versions closed and opened (dbt-postgres's UPDATE and INSERT).
async fn apply_snapshot(tx: &Transaction<'_>, relation: &Relation, plan: &SnapshotPlan) -> Result<(), EngineError> {
    align_columns(tx, relation, &plan.current_columns, &plan.columns, &plan.added).await?;
    for statement in &plan.statements {
        exec(tx, statement).await?;
    }
    exec(tx, &format!("drop table {}", plan.changes)).await
}

/// The statements of a `merge`: MERGE from Postgres 15 on, else `INSERT ... ON
/// CONFLICT`. Matched rows take the columns `merge_update_columns` /
/// `merge_exclude_columns` allow (all but the key by default).
fn merge(
    relation: &Relation,
    delta: &Relation,
    spec: &crate::engine::incremental::IncrementalSpec,
    inserted: &[ColumnMeta],
    server_version: u32,
) -> Vec<String> {
    let cols = column_list(inserted);
    let updated: Vec<String> = inserted
        .iter()
        .filter(|c| spec.takes_new(&c.name) && !spec.unique_key.contains(&c.name))
        .map(|c| quote_ident(&c.name))
        .collect();
    if server_version < MERGE_VERSION {
        let insert = format!("insert into {relation} ({cols}) select {cols} from {delta}");
        return on_conflict(relation, spec, &updated, &insert);
    }
    let matched = match updated.is_empty() {
        true => "do nothing".to_string(),
        false => {
            format!("update set {}", updated.iter().map(|c| format!("{c} = d.{c}")).collect::<Vec<_>>().join(", "))
        }
    };
    let values = inserted.iter().map(|c| format!("d.{}", quote_ident(&c.name))).collect::<Vec<_>>();
    vec![format!(
        "merge into {relation} as o using {delta} as d on {} when matched then {matched} \
         when not matched then insert ({cols}) values ({})",
        spec.key_match(),
        values.join(", ")
    )]
}

/// Before MERGE (Postgres 14 and older): `INSERT ... ON CONFLICT` on a unique index
/// over the key, created when missing.
fn on_conflict(
    relation: &Relation,
    spec: &crate::engine::incremental::IncrementalSpec,
    updated: &[String],
    insert: &str,
) -> Vec<String> {
    let keys = spec.unique_key.iter().map(|k| quote_ident(k)).collect::<Vec<_>>().join(", ");
    let index = quote_ident(&format!("{}_etlm_key", relation.identifier.chars().take(50).collect::<String>()));
    let action = match updated.is_empty() {
        true => "do nothing".to_string(),
        false => format!(
            "do update set {}",
            updated.iter().map(|c| format!("{c} = excluded.{c}")).collect::<Vec<_>>().join(", ")
        ),
    };
    vec![
        format!("create unique index if not exists {index} on {relation} ({keys})"),
        format!("{insert} on conflict ({keys}) {action}"),
    ]
}

fn column_list(columns: &[ColumnMeta]) -> String {
    columns.iter().map(|c| quote_ident(&c.name)).collect::<Vec<_>>().join(", ")
}

async fn exec(tx: &Transaction<'_>, sql: &str) -> Result<(), EngineError> {
    tx.batch_execute(sql).await.map_err(|e| pg_error(&e))
}

async fn kind_of(tx: &Transaction<'_>, relation: &Relation) -> Result<Option<RelKind>, EngineError> {
    super::relation_kind(tx, relation).await
}

/// The views built on `relation` (schema-qualified), other than etlm's own.
async fn dependents(tx: &Transaction<'_>, relation: &Relation) -> Result<Vec<String>, EngineError> {
    let rows = tx
        .query(
            "select distinct dn.nspname::text || '.' || dc.relname::text from pg_depend d \
             join pg_rewrite r on r.oid = d.objid join pg_class dc on dc.oid = r.ev_class \
             join pg_namespace dn on dn.oid = dc.relnamespace \
             where d.classid = 'pg_rewrite'::regclass and d.refobjid = to_regclass($1) \
             and dc.oid <> d.refobjid and dn.nspname <> '_etlm_audit' and dn.nspname not like '\\_etlm\\_staging%' order by 1",
            &[&relation.to_string()],
        )
        .await
        .map_err(|e| pg_error(&e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

fn blocked(relation: &Relation, dependents: &[String], why: &str) -> EngineError {
    EngineError::new(
        ErrorKind::Dependents,
        format!(
            "cannot publish {}.{} without breaking what is built on it ({why}); dependent: {}\n\
         = help: etlm never drops dependent views: change or drop them first",
            relation.schema,
            relation.identifier,
            dependents.join(", ")
        ),
    )
}

/// A column change Postgres refused because a view reads the column.
fn dependent_error(relation: &Relation, e: &tokio_postgres::Error) -> EngineError {
    match e.as_db_error() {
        Some(db)
            if db.detail().is_some_and(|d| d.contains("depends on")) || db.message().contains("used by a view") =>
        {
            let dependent = db.detail().unwrap_or(db.message());
            blocked(relation, &[dependent.to_string()], db.message())
        }
        _ => pg_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::incremental::IncrementalSpec;
    use crate::project::OnSchemaChange;

    fn spec(update: Option<&[&str]>) -> IncrementalSpec {
        IncrementalSpec {
            strategy: IncrementalStrategy::Merge,
            unique_key: vec!["id".into()],
            partition_by: vec![],
            on_schema_change: OnSchemaChange::Ignore,
            update_columns: update.map(|u| u.iter().map(|c| c.to_string()).collect()),
            exclude_columns: vec![],
            window: None,
        }
    }

    fn columns(names: &[&str]) -> Vec<ColumnMeta> {
        names.iter().map(|n| ColumnMeta { name: n.to_string(), data_type: "bigint".into() }).collect()
    }

    #[test]
    fn merge_is_spelled_by_server_version() {
        let (t, d) = (Relation::new("s", "t"), Relation::new("_etlm_staging", "t_d"));
        let cols = columns(&["id", "a", "b"]);
        let pg15 = merge(&t, &d, &spec(Some(&["a"])), &cols, 150_018);
        assert_eq!(
            pg15,
            vec![
                "merge into \"s\".\"t\" as o using \"_etlm_staging\".\"t_d\" as d on o.\"id\" = d.\"id\" \
             when matched then update set \"a\" = d.\"a\" when not matched then insert (\"id\", \"a\", \"b\") \
             values (d.\"id\", d.\"a\", d.\"b\")"
            ]
        );
        let pg14 = merge(&t, &d, &spec(None), &cols, 140_011);
        assert_eq!(
            pg14,
            vec![
                "create unique index if not exists \"t_etlm_key\" on \"s\".\"t\" (\"id\")",
                "insert into \"s\".\"t\" (\"id\", \"a\", \"b\") select \"id\", \"a\", \"b\" from \"_etlm_staging\".\"t_d\" \
             on conflict (\"id\") do update set \"a\" = excluded.\"a\", \"b\" = excluded.\"b\"",
            ]
        );
        let keys_only = merge(&t, &d, &spec(None), &columns(&["id"]), 140_011);
        assert!(keys_only[1].ends_with("on conflict (\"id\") do nothing"), "{keys_only:?}");
    }
}
