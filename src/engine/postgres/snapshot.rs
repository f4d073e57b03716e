//! Snapshots on Postgres, as dbt-postgres takes them: the first run stages the table
//! like any other; a later run stages the changes (see `engine::snapshot`) as a table in
//! `_etlm_staging`, the audit view shows the new version, and the publish transaction
//! adds the query's new columns, closes versions (UPDATE) and inserts new ones.

use tokio_postgres::Client;

use super::{RelKind, StagedKind, columns_of, create_table_as, pg_error};
use crate::engine::ColumnMeta;
use crate::engine::EngineError;
use crate::engine::snapshot::{Snapshot, SnapshotError, Spelling};
use crate::project::snapshot::SnapshotConfig;
use crate::relation::Relation;

/// dbt-postgres's `snapshot_get_time()`.
const NOW: &str = "now()::timestamp without time zone";

/// A snapshot's staged changes and what publishing them does.
pub(super) struct SnapshotPlan {
    pub changes: Relation,
    /// The table's columns now, and the new version's (new ones typed as staged).
    pub current_columns: Vec<ColumnMeta>,
    pub columns: Vec<ColumnMeta>,
    pub added: Vec<ColumnMeta>,
    /// The UPDATE and INSERT, in order.
    pub statements: Vec<String>,
}

/// Stages a snapshot of `sql` into `relation`; `staging` names the staged table.
/// Returns what the publish takes, the audit view's query and the rows staged.
pub(super) async fn stage(
    client: &Client,
    relation: &Relation,
    existing: Option<RelKind>,
    sql: &str,
    config: &SnapshotConfig,
    staging: Relation,
) -> Result<(StagedKind, String, u64), EngineError> {
    let probe =
        client.prepare(&format!("select * from (\n{sql}\n) as dbt_snapshot_source")).await.map_err(|e| pg_error(&e))?;
    let source_columns: Vec<String> = probe.columns().iter().map(|c| c.name().to_string()).collect();
    let args = Snapshot::scd_args(config, NOW);
    let spelling = Spelling {
        now: NOW.into(),
        scd_texts: args.iter().map(|a| Spelling::cast(a)).collect(),
        now_text: Spelling::cast(NOW),
        // The new column's type comes with its ALTER TABLE; the audit view may say NULL.
        typed_nulls: Default::default(),
    };
    let snapshot = Snapshot { config, sql, source_columns: &source_columns, spelling: &spelling };
    let duplicates = client.query(&snapshot.duplicate_keys(), &[]).await.map_err(|e| pg_error(&e))?;
    if !duplicates.is_empty() {
        let sample = duplicates.iter().map(|r| format!("({})", r.get::<_, String>(0))).collect::<Vec<_>>().join(", ");
        return Err(SnapshotError::DuplicateKey { key: config.unique_key.join(", "), sample }.into());
    }
    if existing != Some(RelKind::Table) {
        let rows = create_table_as(client, &staging, &snapshot.first_build()).await?;
        let audit_sql = format!("select * from {staging}");
        return Ok((StagedKind::Table { staging }, audit_sql, rows));
    }
    let current_columns = columns_of(client, relation).await?;
    let target_columns: Vec<String> = current_columns.iter().map(|c| c.name.clone()).collect();
    snapshot.check_target(&target_columns)?;
    let rows = create_table_as(client, &staging, &snapshot.changes(relation, &target_columns)).await?;
    let staged_columns = columns_of(client, &staging).await?;
    let change_columns: Vec<String> = staged_columns.iter().map(|c| c.name.clone()).collect();
    let audit_sql = snapshot.new_version(relation, &target_columns, &staging, &change_columns);
    let names = snapshot.new_columns(&target_columns);
    let typed = |name: &String| {
        let found = current_columns.iter().chain(&staged_columns).find(|c| &c.name == name);
        found.cloned().expect("new columns are the table's or the query's")
    };
    let columns: Vec<ColumnMeta> = names.iter().map(typed).collect();
    let added = columns.iter().filter(|c| !target_columns.contains(&c.name)).cloned().collect();
    let statements = snapshot.apply(relation, &staging, &change_columns);
    let plan = SnapshotPlan { changes: staging, current_columns, columns, added, statements };
    Ok((StagedKind::Snapshot(Box::new(plan)), audit_sql, rows))
}
