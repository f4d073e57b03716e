//! The metadata store on Postgres: schema `etlm_meta` with the run history (`runs`,
//! `model_runs`, `test_results`) and the intervals of windowed models, created and
//! migrated by etlm. `schema_version` records the migrations applied; each runs once,
//! in a transaction, under the run lock.

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient};

use super::pg_error;
use crate::compile::window::Period;
use crate::engine::EngineError;
use crate::run::audit::RowHistory;
use crate::run::execute::{Intervals, RunSummary};

/// The schema of the metadata store.
pub const META_SCHEMA: &str = "etlm_meta";

/// Migrations, in order; the store's version is how many have run.
const MIGRATIONS: &[&str] = &["
    create table etlm_meta.runs (
        run_id text primary key, command text not null, status text not null,
        started_at timestamptz not null, finished_at timestamptz not null, duration_s double precision not null,
        ok bigint not null, error bigint not null, skipped bigint not null, vars text not null,
        etlm_version text not null);
    create table etlm_meta.model_runs (
        run_id text not null, unique_id text not null, kind text not null, relation text not null,
        status text not null, rows bigint, started_at timestamptz not null, duration_s double precision not null,
        query_s double precision, error text);
    create table etlm_meta.test_results (
        run_id text not null, unique_id text not null, test text not null, model text, column_name text,
        severity text not null, status text not null, failures bigint, audit boolean not null,
        threshold text not null, observed double precision, failures_relation text,
        started_at timestamptz not null, duration_s double precision not null, message text);
    create table etlm_meta.intervals (
        unique_id text not null, period_start timestamp not null, period_end timestamp not null,
        run_id text not null, recorded_at timestamptz not null);
    create index on etlm_meta.intervals (unique_id, period_start);
"];

/// Creates the store or brings it to the current version.
pub async fn migrate(client: &Client) -> Result<(), EngineError> {
    client
        .batch_execute(
            "create schema if not exists etlm_meta; \
             create table if not exists etlm_meta.schema_version (version integer not null, migrated_at timestamptz not null default now())",
        )
        .await
        .map_err(|e| pg_error(&e))?;
    let row = client
        .query_one("select coalesce(max(version), 0) from etlm_meta.schema_version", &[])
        .await
        .map_err(|e| pg_error(&e))?;
    let version = row.get::<_, i32>(0) as usize;
    if version > MIGRATIONS.len() {
        return Err(EngineError::Postgres(format!(
            "the metadata store `etlm_meta` is at version {version}, newer than this etlm knows ({}); upgrade etlm",
            MIGRATIONS.len()
        )));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        let sql =
            format!("begin; {migration}; insert into etlm_meta.schema_version (version) values ({}); commit", i + 1);
        client.batch_execute(&sql).await.map_err(|e| pg_error(&e))?;
    }
    Ok(())
}

/// Appends a run to the history in one transaction.
pub async fn record_run(
    client: &mut Client,
    summary: &RunSummary,
    vars: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<(), EngineError> {
    let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
    let run_id = &summary.run_id;
    for n in summary.results.iter().filter(|n| n.test.is_none()) {
        let l = &n.line;
        let rows = l.rows.map(|r| r as i64);
        let error = if l.status == crate::report::progress::Status::Error { l.message.clone() } else { None };
        let params: [&(dyn ToSql + Sync); 10] = [
            run_id,
            &l.unique_id,
            &l.kind,
            &l.name,
            &l.status.as_str(),
            &rows,
            &n.started_at,
            &l.seconds,
            &n.query_seconds,
            &error,
        ];
        tx.execute("insert into etlm_meta.model_runs values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", &params)
            .await
            .map_err(|e| pg_error(&e))?;
    }
    for t in summary.results.iter().filter_map(|n| n.test.as_ref()) {
        let failures = t.failures.map(|f| f as i64);
        let params: [&(dyn ToSql + Sync); 15] = [
            run_id,
            &t.unique_id,
            &t.test,
            &t.attached,
            &t.column,
            &t.severity,
            &t.status.as_str(),
            &failures,
            &t.audit,
            &t.threshold,
            &t.observed,
            &t.failures_relation,
            &t.started_at,
            &t.seconds,
            &t.message,
        ];
        tx.execute(
            "insert into etlm_meta.test_results values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            &params,
        )
        .await
        .map_err(|e| pg_error(&e))?;
    }
    let status = if summary.failed() { "error" } else { "success" };
    let duration = (summary.finished_at - summary.started_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
    let count = |s| summary.count(s) as i64;
    use crate::report::progress::Status;
    let vars = serde_json::to_string(vars).expect("vars serialize");
    let params: [&(dyn ToSql + Sync); 11] = [
        run_id,
        &summary.command.as_str(),
        &status,
        &summary.started_at,
        &summary.finished_at,
        &duration,
        &count(Status::Success),
        &count(Status::Error),
        &count(Status::Skipped),
        &vars,
        &env!("CARGO_PKG_VERSION"),
    ];
    tx.execute("insert into etlm_meta.runs values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)", &params)
        .await
        .map_err(|e| pg_error(&e))?;
    tx.commit().await.map_err(|e| pg_error(&e))
}

pub async fn record_interval(
    client: &impl GenericClient,
    unique_id: &str,
    period: &Period,
    run_id: &str,
) -> Result<(), EngineError> {
    client
        .execute(
            "insert into etlm_meta.intervals values ($1, $2, $3, $4, now())",
            &[&unique_id, &period.start, &period.end, &run_id],
        )
        .await
        .map_err(|e| pg_error(&e))
        .map(drop)
}

pub async fn forget_intervals(client: &impl GenericClient, unique_id: &str) -> Result<(), EngineError> {
    client
        .execute("delete from etlm_meta.intervals where unique_id = $1", &[&unique_id])
        .await
        .map_err(|e| pg_error(&e))
        .map(drop)
}

pub async fn intervals(client: &impl GenericClient) -> Result<Intervals, EngineError> {
    let rows = client
        .query("select distinct unique_id, period_start, period_end from etlm_meta.intervals order by 1, 2", &[])
        .await
        .map_err(|e| pg_error(&e))?;
    let mut out = Intervals::new();
    for r in rows {
        out.entry(r.get::<_, String>(0)).or_default().push(Period { start: r.get(1), end: r.get(2) });
    }
    Ok(out)
}

pub async fn row_count_history(client: &impl GenericClient) -> Result<RowHistory, EngineError> {
    let rows = client
        .query(
            "select unique_id, rows from etlm_meta.model_runs where status = 'success' and rows is not null \
             order by started_at desc",
            &[],
        )
        .await
        .map_err(|e| pg_error(&e))?;
    let mut history = RowHistory::new();
    for r in rows {
        history.entry(r.get::<_, String>(0)).or_default().push(r.get::<_, i64>(1).max(0) as u64);
    }
    Ok(history)
}
