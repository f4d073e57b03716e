//! Ctrl-C and SIGTERM (#18, defect 6): an interrupted run stops starting nodes, cancels
//! what runs, records what finished and what was interrupted (run_results.json and the
//! history, so `etlm retry` acts on it), and exits 130 (143 for SIGTERM). A second
//! Ctrl-C exits at once; the next run then works. Both engines.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use support::{etlm, etlm_command};

/// A project: `fast` builds at once; `slow` runs `slow_sql` (long); `after` reads it.
fn project(slow_sql: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("interrupted");
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::write(dir.join("etlm.yml"), "name: interrupted\nmodels:\n  interrupted:\n    +materialized: table\n")
        .unwrap();
    std::fs::write(dir.join("models/fast.sql"), "select 1 as id\n").unwrap();
    std::fs::write(dir.join("models/slow.sql"), slow_sql).unwrap();
    std::fs::write(dir.join("models/after.sql"), "select * from {{ ref('slow') }}\n").unwrap();
    (tmp, dir)
}

/// Starts `etlm build` and returns once `fast` is reported built (and `slow` running).
fn start_build(dir: &Path) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child =
        etlm_command(dir, &["build", "--threads", "2"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("`fast` is built");
        if line.contains(".fast") && line.contains("OK") {
            break;
        }
    }
    // `slow` started with `fast`; give its statement a moment to be on its way.
    std::thread::sleep(Duration::from_millis(500));
    (child, rx)
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill").args([format!("-{name}"), child.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

/// Waits for the child, at most `limit`; its exit code and stderr.
fn wait(mut child: Child, limit: Duration) -> (i32, String, Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            return (status.code().unwrap_or(-1), stderr, start.elapsed());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("etlm did not exit within {limit:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The statuses run_results.json records, by model name.
fn recorded(dir: &Path) -> Vec<(String, String, String)> {
    let json: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("target/run_results.json")).unwrap()).unwrap();
    let mut out: Vec<(String, String, String)> = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let id = r["unique_id"].as_str().unwrap();
            let name = id.rsplit('.').next().unwrap().to_string();
            (name, r["status"].as_str().unwrap().to_string(), r["message"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    out.sort();
    out
}

fn check_interrupted(dir: &Path, name: &str, code: i32, stderr: &str) {
    assert_eq!(code, if name == "INT" { 130 } else { 143 }, "{stderr}");
    let signal = format!("SIG{name}");
    assert!(stderr.contains(&format!("warning[interrupted]: interrupted by {signal}")), "{stderr}");
    let results = recorded(dir);
    let status = |model: &str| results.iter().find(|r| r.0 == model).map(|r| (r.1.as_str(), r.2.as_str())).unwrap();
    assert_eq!(status("fast").0, "success", "{results:?}");
    assert_eq!(status("slow").0, "error", "{results:?}");
    assert_eq!(status("after"), ("skipped", format!("the run was interrupted ({signal})").as_str()), "{results:?}");
    // The history has the run, as interrupted.
    let runs = etlm(dir, &["runs", "--limit", "1"]);
    assert!(runs.stdout.contains("| interrupted |"), "{}", runs.stdout);
    // `etlm retry` acts on this run: `fast` is not rebuilt.
    let retry = etlm(dir, &["ls", "-s", "result:error+", "result:skipped"]);
    assert!(
        retry.stdout.contains("slow") && retry.stdout.contains("after") && !retry.stdout.contains("fast"),
        "{}",
        retry.stdout
    );
}

#[test]
fn ctrl_c_and_sigterm_record_what_finished_and_exit_130_or_143_on_the_embedded_engine() {
    // Seconds of work for DataFusion, on which no statement can be cancelled: the run
    // stops it after its grace period.
    let (_tmp, dir) = project("select sum(value % 7) as n from generate_series(1, 20000000000)\n");
    for name in ["INT", "TERM"] {
        let (child, _lines) = start_build(&dir);
        signal(&child, name);
        let (code, stderr, took) = wait(child, Duration::from_secs(30));
        check_interrupted(&dir, name, code, &stderr);
        assert!(took < Duration::from_secs(10), "stopped within the grace period: {took:?}");
        let tables = support::rows(&dir, "select count(*) as n from main.fast");
        assert_eq!(tables, vec![serde_json::json!({"n": 1})]);
        let slow = etlm(&dir, &["show", "select * from main.slow"]);
        assert_ne!(slow.code, 0, "`slow` was never published");
    }
    // A second Ctrl-C exits at once, and the next run takes the lock and works.
    let (child, _lines) = start_build(&dir);
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(100));
    signal(&child, "INT");
    let (code, _, took) = wait(child, Duration::from_secs(30));
    assert_eq!(code, 130);
    assert!(took < Duration::from_secs(2), "the second Ctrl-C does not wait for the grace period: {took:?}");
    std::fs::write(dir.join("models/slow.sql"), "select 2 as n\n").unwrap();
    let next = etlm(&dir, &["build"]);
    assert_eq!(next.code, 0, "{}\n{}", next.stdout, next.stderr);
}

#[test]
fn ctrl_c_cancels_running_statements_on_postgres() {
    let Some(db) = support::postgres::database("interrupt") else { return };
    let (_tmp, dir) = project("select 1 as n from (select pg_sleep(60)) s\n");
    db.write_profile(&dir, "interrupted", "");
    for name in ["INT", "TERM"] {
        let (child, _lines) = start_build(&dir);
        signal(&child, name);
        let (code, stderr, took) = wait(child, Duration::from_secs(30));
        check_interrupted(&dir, name, code, &stderr);
        assert!(took < Duration::from_secs(10), "the statement was cancelled, not waited for: {took:?}");
        assert_eq!(db.rows("select count(*) from public.fast"), vec![vec!["1".to_string()]]);
        let active = db.rows("select count(*) from pg_stat_activity where state = 'active' and query like '%pg_sleep%' and pid <> pg_backend_pid()");
        assert_eq!(active, vec![vec!["0".to_string()]], "no statement is left running");
        assert!(db.rows("select to_regclass('public.slow') is null").first().is_some_and(|r| r[0] == "t"));
    }
}
