//! Timeouts on Postgres (#18, defect 7; matrix rows 5 and 6): a server that accepts and
//! never answers fails within `connect_timeout`, naming host:port and never the
//! password; a publish blocked by a reader's lock fails after `lock_timeout` with the
//! target unchanged, and the next run succeeds.

mod support;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::etlm;

fn project(sql: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("timeouts");
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::write(
        dir.join("etlm.yml"),
        "name: timeouts\nprofile: timeouts\nmodels:\n  timeouts:\n    +materialized: table\n",
    )
    .unwrap();
    std::fs::write(dir.join("models/t.sql"), sql).unwrap();
    (tmp, dir)
}

#[test]
fn a_server_that_never_answers_fails_within_connect_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(8).flatten().collect();
        std::thread::sleep(Duration::from_secs(60));
        drop(held);
    });
    let (_tmp, dir) = project("select 1 as id\n");
    std::fs::write(
        dir.join("profiles.yml"),
        format!(
            "timeouts:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n      host: 127.0.0.1\n      port: {port}\n      \
             user: etlm\n      password: sentinel-pw-41\n      dbname: x\n      schema: public\n      sslmode: disable\n      connect_timeout: 1\n"
        ),
    )
    .unwrap();
    let start = Instant::now();
    let run = etlm(&dir, &["build"]);
    assert!(start.elapsed() < Duration::from_secs(8), "took {:?}", start.elapsed());
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!("127.0.0.1:{port}")) && run.stderr.contains("connect_timeout"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("sentinel-pw-41") && !run.stdout.contains("sentinel-pw-41"));
}

#[test]
fn a_publish_blocked_by_a_reader_fails_after_lock_timeout_and_changes_nothing() {
    let Some(db) = support::postgres::database("locks") else { return };
    let (_tmp, dir) = project("select 1 as id\n");
    db.write_profile(&dir, "timeouts", "      lock_timeout: 1\n");
    let first = etlm(&dir, &["build"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    // A reader holds ACCESS SHARE on the table in an open transaction.
    let mut reader = Command::new("psql")
        .arg(db.server.url(&db.name))
        .args(["-c", "begin; select count(*) from public.t; select pg_sleep(60); commit;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("psql");
    let clock = Instant::now();
    while db.rows(
        "select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 't' and l.granted",
    )[0][0]
        == "0"
    {
        assert!(clock.elapsed() < Duration::from_secs(20), "the reader never took its lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(dir.join("models/t.sql"), "select 2 as id\n").unwrap();
    let start = Instant::now();
    let blocked = etlm(&dir, &["build"]);
    let took = start.elapsed();
    // The server keeps the reader's backend (and lock) until its sleep ends: end it.
    db.execute("select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()");
    let _ = reader.kill();
    let _ = reader.wait();
    assert_eq!(blocked.code, 1, "{}\n{}", blocked.stdout, blocked.stderr);
    assert!(blocked.stdout.contains("lock timeout"), "names why: {}", blocked.stdout);
    assert!(took < Duration::from_secs(15), "waited {took:?}, not the 60 s the reader holds it");
    assert_eq!(db.rows("select id from public.t"), vec![vec!["1".to_string()]], "the target is unchanged");
    let next = etlm(&dir, &["build"]);
    assert_eq!(next.code, 0, "{}\n{}", next.stdout, next.stderr);
    assert_eq!(db.rows("select id from public.t"), vec![vec!["2".to_string()]]);
}
