//! Readers during a publish (#18, matrix row 7). While `etlm build` rebuilds a seed, a
//! table, a partition-overwrite incremental model and a snapshot again and again, a
//! reader outside etlm queries each of them every 10 ms. It must never find a relation
//! missing, empty, or in a state that no build produced (a mix of two versions), also
//! while etlm removes old versions. On the embedded engine the reader is DataFusion
//! reading the Parquet folders directly, as any outside reader would; on Postgres it is
//! a plain connection.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::engines::Backend;
use support::etlm;

const RELATIONS: &[&str] = &["numbers", "by_group", "overwritten", "history"];

/// What a reader sees of a relation: its row count and a checksum of its ids.
type State = (i64, i64);

fn project(b: &Backend) -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = support::empty_project("readers");
    let write = |path: &str, text: &str| support::write_file(&dir, path, text);
    write("etlm.yml", "name: readers\nmodels:\n  readers:\n    +materialized: table\n");
    write("models/by_group.sql", "select grp, count(*) as n, sum(id) as id from {{ ref('numbers') }} group by grp\n");
    write(
        "models/overwritten.sql",
        "{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by='grp') }}\n\
         select id, grp from {{ ref('numbers') }}\n",
    );
    write(
        "snapshots/history.sql",
        "{% snapshot history %}\n{{ config(unique_key='id', strategy='check', check_cols=['grp'], \
         hard_deletes='invalidate') }}\nselect id, grp from {{ ref('numbers') }}\n{% endsnapshot %}\n",
    );
    seed(&dir, 0);
    if let Backend::Postgres(db) = b {
        db.write_profile(&dir, "readers", "");
    }
    (tmp, dir)
}

/// Round `k`'s seed: ids 1..=100 in even rounds, 1..=150+k in odd ones; `grp` = id % 4.
fn seed(dir: &Path, round: usize) {
    let n = if round % 2 == 0 { 100 } else { 150 + round };
    let mut csv = String::from("id,grp\n");
    for id in 1..=n {
        csv.push_str(&format!("{id},{}\n", id % 4));
    }
    support::write_file(dir, "seeds/numbers.csv", &csv);
}

fn checksum_sql(schema: &str, relation: &str) -> String {
    format!("select count(*) as n, coalesce(sum(id), 0) as s from {schema}.{relation}")
}

/// Reads every relation in a loop until `stop`, returning what it saw or the errors.
fn read_loop(
    read: impl Fn(&str) -> Result<State, String>,
    stop: Arc<AtomicBool>,
) -> Vec<(String, Result<State, String>)> {
    let mut seen = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        for relation in RELATIONS {
            seen.push((relation.to_string(), read(relation)));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    seen
}

/// An outside reader of the embedded warehouse: DataFusion over the relation's current
/// version folder, a new session per read (nothing cached). It resolves the relation's
/// link once per query, as docs/storage.md tells outside readers to: a listing through
/// the link itself could meet two versions, if a publish swapped it midway.
fn datafusion_reader(warehouse: PathBuf) -> impl Fn(&str) -> Result<State, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    move |relation| {
        runtime.block_on(async {
            use ::datafusion::prelude::*;
            let ctx = SessionContext::new();
            let link = warehouse.join("main").join(relation);
            let version = std::fs::canonicalize(&link).map_err(|e| format!("resolve {}: {e}", link.display()))?;
            let path = format!("{}/", version.display());
            ctx.register_parquet(relation, &path, ParquetReadOptions::default()).await.map_err(|e| e.to_string())?;
            let sql = format!("select count(*) as n, coalesce(sum(id), 0) as s from {relation}");
            let batches = ctx.sql(&sql).await.map_err(|e| e.to_string())?.collect().await.map_err(|e| e.to_string())?;
            state_of(&batches)
        })
    }
}

fn state_of(batches: &[::datafusion::arrow::array::RecordBatch]) -> Result<State, String> {
    use ::datafusion::arrow::array::{Array, Int64Array};
    use ::datafusion::arrow::compute::cast;
    use ::datafusion::arrow::datatypes::DataType;
    let batch = batches.iter().find(|b| b.num_rows() > 0).ok_or("no row")?;
    let value = |i: usize| -> Result<i64, String> {
        let column = cast(batch.column(i), &DataType::Int64).map_err(|e| e.to_string())?;
        let column = column.as_any().downcast_ref::<Int64Array>().ok_or("not an integer")?;
        Ok(if column.is_null(0) { 0 } else { column.value(0) })
    };
    Ok((value(0)?, value(1)?))
}

/// A reader on its own Postgres connection.
fn postgres_reader(url: String) -> impl Fn(&str) -> Result<State, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = runtime.block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("reader connects");
        tokio::spawn(conn);
        client
    });
    move |relation| {
        runtime.block_on(async {
            let sql = checksum_sql("public", relation)
                .replace("count(*)", "count(*)::bigint")
                .replace("coalesce(sum(id), 0)", "coalesce(sum(id), 0)::bigint");
            let row = client.query_one(&sql, &[]).await.map_err(|e| e.to_string())?;
            Ok((row.get::<_, i64>(0), row.get::<_, i64>(1)))
        })
    }
}

fn readers_never_see_a_missing_empty_or_mixed_relation(b: &Backend) {
    let (_tmp, dir) = project(b);
    let first = etlm(&dir, &["build"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    // Every state a build left each relation in; a reader must see one of them.
    let mut states: Vec<Vec<State>> = vec![Vec::new(); RELATIONS.len()];
    let record = |states: &mut Vec<Vec<State>>| {
        for (i, relation) in RELATIONS.iter().enumerate() {
            let row = &b.rows(&dir, &checksum_sql("{schema}", relation))[0];
            states[i].push((row["n"].parse().unwrap(), row["s"].parse().unwrap()));
        }
    };
    record(&mut states);

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        match b {
            Backend::DataFusion => {
                let read = datafusion_reader(dir.join("warehouse"));
                std::thread::spawn(move || read_loop(read, stop))
            }
            Backend::Postgres(db) => {
                let read = postgres_reader(db.server.url(&db.name));
                std::thread::spawn(move || read_loop(read, stop))
            }
            Backend::Delta => unreachable!("the readers suite runs on the embedded engine and Postgres"),
        }
    };
    let rounds = 8;
    for round in 1..=rounds {
        seed(&dir, round);
        let run = etlm(&dir, &["build"]);
        assert_eq!(run.code, 0, "round {round}: {}\n{}", run.stdout, run.stderr);
        record(&mut states);
    }
    stop.store(true, Ordering::SeqCst);
    let seen = reader.join().expect("the reader thread ends");

    let reads = seen.len();
    assert!(reads > RELATIONS.len() * rounds, "the reader read during the builds ({reads} reads)");
    for (relation, result) in seen {
        let i = RELATIONS.iter().position(|r| *r == relation).unwrap();
        match result {
            Ok(state) => {
                assert!(state.0 > 0, "`{relation}` was read empty");
                assert!(
                    states[i].contains(&state),
                    "`{relation}` was read as {state:?}, which no build left: {:?}",
                    states[i]
                );
            }
            Err(e) => panic!("reading `{relation}` failed during a build: {e}"),
        }
    }
    // The states differ from round to round, so the reads above tell versions apart.
    assert!(states.iter().all(|s| s.windows(2).any(|w| w[0] != w[1])), "{states:?}");
}

macro_rules! engine_suite {
    ($engine:ident) => {
        mod $engine {
            use super::*;

            #[test]
            fn readers_never_see_a_missing_empty_or_mixed_relation() {
                if let Some(b) = Backend::$engine("readers") {
                    super::readers_never_see_a_missing_empty_or_mixed_relation(&b);
                }
            }
        }
    };
}

engine_suite!(datafusion);
engine_suite!(postgres);
