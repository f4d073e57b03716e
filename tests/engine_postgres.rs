//! What only Postgres has: a connection killed in the middle of a publish, the run lock
//! between two processes, Ctrl-C during a running statement, and views built by users
//! on etlm's tables. Each test gets a database of its own on the throwaway cluster.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::engines::{Backend, Row};
use support::postgres::Database;
use support::{etlm, etlm_command, paused_at};

fn ok(dir: &Path, args: &[&str]) -> String {
    let run = etlm(dir, args);
    assert_eq!(run.code, 0, "{args:?}\n{}\n{}", run.stdout, run.stderr);
    run.stdout
}

/// A project from `fixture` on a fresh database, or `None` without Postgres.
fn project(test: &str, fixture: &str) -> Option<(Backend, tempfile::TempDir, std::path::PathBuf)> {
    let backend = Backend::postgres(test)?;
    let (tmp, dir) = backend.project(fixture);
    Some((backend, tmp, dir))
}

fn database(b: &Backend) -> &Database {
    match b {
        Backend::Postgres(db) => db,
        Backend::DataFusion | Backend::Delta => unreachable!("these tests run on Postgres"),
    }
}

/// Terminates etlm's connection that is inside a transaction (the publishing one).
fn kill_publishing_connection(db: &Database) {
    let killed = db.rows(&format!(
        "select pg_terminate_backend(pid) from pg_stat_activity \
         where datname = '{}' and application_name = 'etlm' and state = 'idle in transaction'",
        db.name
    ));
    assert_eq!(killed, vec![vec!["t".to_string()]], "exactly one publishing connection was terminated");
}

fn staging_left(db: &Database) -> Vec<Vec<String>> {
    db.rows(
        "select table_schema, table_name from information_schema.tables \
         where table_schema like '\\_etlm\\_staging%' or table_schema = '_etlm_audit' order by 1, 2",
    )
}

/// Builds `fixture`, writes `seed` (path, text), starts `args` paused inside the publish
/// of `model`, kills its connection there, and checks the run fails, `query` reads what
/// it read before, and nothing is left in the staging schemas. Returns the project.
fn killed_mid_publish(
    b: &Backend,
    fixture: &str,
    seed: (&str, &str),
    args: &[&str],
    model: &str,
    query: &str,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let db = database(b);
    let (tmp, dir) = b.project(fixture);
    ok(&dir, &["build"]);
    let before = b.rows(&dir, query);
    std::fs::write(dir.join(seed.0), seed.1).unwrap();
    let child = paused_at(&dir, args, &format!("before-publish:{model}"));
    kill_publishing_connection(db);
    let out = child.wait_with_output().expect("etlm exits");
    assert_eq!(out.status.code(), Some(1), "the model fails");
    let results = std::fs::read_to_string(dir.join("target/run_results.json")).unwrap();
    assert!(results.contains("terminating connection"), "the error says the connection was ended: {results}");
    assert_eq!(b.rows(&dir, query), before, "the table is unchanged");
    assert_eq!(staging_left(db), Vec::<Vec<String>>::new(), "no staging relation is left");
    ok(&dir, args);
    assert_eq!(staging_left(db), Vec::<Vec<String>>::new());
    (tmp, dir)
}

#[test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs --features failpoints")]
fn a_connection_killed_in_the_middle_of_a_table_publish_leaves_the_table_unchanged() {
    let Some(b) = Backend::postgres("kill_table") else { return };
    let query = "select * from {schema}.customer_totals order by customer_id";
    let seed = ("seeds/orders.csv", "order_id,customer_id,amount,status,order_date\n1,1,7,paid,2024-01-01\n");
    let (_tmp, dir) =
        killed_mid_publish(&b, "conformance", seed, &["build", "--threads", "1"], "customer_totals", query);
    let after: Vec<Row> = b.rows(&dir, query);
    assert_eq!(after[0]["paid_amount"], "7", "the re-run publishes the new data");
}

#[test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs --features failpoints")]
fn a_connection_killed_in_the_middle_of_an_insert_overwrite_leaves_the_table_unchanged() {
    let Some(b) = Backend::postgres("kill_overwrite") else { return };
    let query = "select cast(dt as varchar) as dt, n, total from {schema}.inc_overwrite order by dt";
    let seed = (
        "seeds/events.csv",
        "id,dt,amount,status\n1,2024-01-01,10,new\n2,2024-01-01,25,paid\n3,2024-01-02,30,new\n4,2024-01-03,40,new\n",
    );
    let args = ["build", "--threads", "1", "--vars", "{since: 2024-01-02}"];
    let (_tmp, dir) = killed_mid_publish(&b, "incremental", seed, &args, "inc_overwrite", query);
    let after: Vec<Vec<String>> = b.rows(&dir, query).into_iter().map(|r| r.into_values().collect()).collect();
    let expected: Vec<Vec<String>> = [["2024-01-01", "2", "30"], ["2024-01-02", "1", "30"], ["2024-01-03", "1", "40"]]
        .iter()
        .map(|r| r.iter().map(|v| v.to_string()).collect())
        .collect();
    // Columns come back sorted by name: dt, n, total.
    assert_eq!(after, expected, "the re-run replaces the partitions in the new rows");
}

#[test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs --features failpoints")]
fn a_second_concurrent_run_fails_at_once_with_the_lock_message() {
    let Some((_b, _tmp, dir)) = project("lock", "conformance") else { return };
    ok(&dir, &["seed"]);
    let first = paused_at(&dir, &["run", "--threads", "1"], "after-stage:stg_orders");
    let clock = Instant::now();
    let second = etlm(&dir, &["run"]);
    let waited = clock.elapsed();
    assert_eq!(second.code, 2, "{}\n{}", second.stdout, second.stderr);
    assert!(second.stderr.contains("another etlm run holds the run lock"), "{}", second.stderr);
    assert!(waited < Duration::from_secs(3), "it fails at once, not after {waited:?}");
    let out = first.wait_with_output().expect("the first run ends");
    assert_eq!(out.status.code(), Some(0), "the first run finishes normally");

    // With --wait-for-lock the second run queues behind the first and then runs.
    let first = paused_at(&dir, &["run", "--threads", "1"], "after-stage:stg_orders");
    let queued = etlm(&dir, &["run", "--wait-for-lock"]);
    assert_eq!(queued.code, 0, "{}\n{}", queued.stdout, queued.stderr);
    assert_eq!(first.wait_with_output().expect("the first run ends").status.code(), Some(0));
}

#[test]
fn ctrl_c_cancels_the_running_statement_and_exits_quickly() {
    let Some((b, _tmp, dir)) = project("ctrl_c", "conformance") else { return };
    let db = database(&b);
    std::fs::write(dir.join("models/slow.sql"), "select 1 as x from (select pg_sleep(30)) as s\n").unwrap();
    let child =
        etlm_command(&dir, &["run", "-s", "slow"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let running = || {
        db.rows(&format!(
            "select count(*) from pg_stat_activity where datname = '{}' and query like '%pg_sleep(30)%' \
             and state = 'active' and pid <> pg_backend_pid()",
            db.name
        ))[0][0]
            .clone()
    };
    let clock = Instant::now();
    while running() != "1" {
        assert!(clock.elapsed() < Duration::from_secs(20), "the slow model never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let interrupted = Instant::now();
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(interrupted.elapsed() < Duration::from_secs(3), "exited {:?} after Ctrl-C", interrupted.elapsed());
    assert_eq!(out.status.code(), Some(130), "128 + SIGINT, as a shell reports it");
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"), "{}", String::from_utf8_lossy(&out.stderr));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(running(), "0", "the statement was cancelled on the server");
    let exists = db.rows("select count(*) from information_schema.tables where table_name = 'slow'");
    assert_eq!(exists, vec![vec!["0".to_string()]], "nothing was published");
}

#[test]
fn views_users_built_on_etlm_relations_survive_rebuilds() {
    let Some((b, _tmp, dir)) = project("dependents", "conformance") else { return };
    let db = database(&b);
    ok(&dir, &["build"]);
    db.execute(
        "create schema reporting; \
         create view reporting.big_customers as select name from public.customer_totals where size = 'big'; \
         create view reporting.orders_by_status as select status, count(*) as n from public.stg_orders group by status",
    );
    std::fs::write(
        dir.join("seeds/orders.csv"),
        "order_id,customer_id,amount,status,order_date\n1,1,9000,paid,2024-01-01\n2,3,10,paid,2024-01-02\n",
    )
    .unwrap();
    ok(&dir, &["build"]);
    assert_eq!(db.rows("select name from reporting.big_customers"), vec![vec!["Ada".to_string()]], "reads new data");
    assert_eq!(
        db.rows("select status, n from reporting.orders_by_status"),
        vec![vec!["paid".to_string(), "2".to_string()]]
    );

    // A change that would break the user's view stops with its name; nothing changes.
    std::fs::write(
        dir.join("models/customer_totals.sql"),
        "select c.customer_id, c.name from {{ ref('customers') }} c\n",
    )
    .unwrap();
    std::fs::remove_file(dir.join("models/schema.yml")).unwrap();
    let run = etlm(&dir, &["run", "-s", "customer_totals"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("dependent: view reporting.big_customers depends on column size"), "{}", run.stdout);
    assert!(run.stdout.contains("never drops dependent views"), "{}", run.stdout);
    assert_eq!(db.rows("select name from reporting.big_customers"), vec![vec!["Ada".to_string()]], "still works");
    assert_eq!(staging_left(db), Vec::<Vec<String>>::new());
}

#[test]
fn the_metadata_store_is_created_versioned_and_records_runs() {
    let Some((b, _tmp, dir)) = project("meta", "conformance") else { return };
    let db = database(&b);
    ok(&dir, &["build"]);
    ok(&dir, &["build"]);
    assert_eq!(db.rows("select version from etlm_meta.schema_version"), vec![vec!["1".to_string()]], "migrated once");
    assert_eq!(
        db.rows("select count(*), min(status) from etlm_meta.runs"),
        vec![vec!["2".to_string(), "success".to_string()]]
    );
    let models = db.rows(
        "select status, rows from etlm_meta.model_runs where unique_id = 'model.conformance.customer_totals' order by started_at",
    );
    assert_eq!(models, vec![vec!["success".to_string(), "3".to_string()]; 2]);
    let runs = ok(&dir, &["runs"]);
    assert!(runs.contains("| build"), "{runs}");
}

#[test]
fn the_example_project_builds_on_postgres_with_one_target_switch() {
    let Some(db) = support::postgres::database("example") else { return };
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("example_project");
    let (_tmp, dir) = support::copy_project(example.to_str().unwrap());
    let port = db.server.port.to_string();
    let env = [
        ("ETLM_PG_HOST", db.server.host.as_str()),
        ("ETLM_PG_PORT", port.as_str()),
        ("ETLM_PG_USER", db.server.user.as_str()),
        ("PGPASSWORD", db.server.password.as_str()),
        ("ETLM_PG_DATABASE", db.name.as_str()),
    ];
    let embedded = support::etlm(&dir, &["build"]);
    assert_eq!(embedded.code, 0, "{}\n{}", embedded.stdout, embedded.stderr);
    let run = support::etlm_with(&dir, &["build", "--target", "pg"], &env);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("0 errors, 0 skipped"), "{}", run.stdout);
    for (table, key) in [("dim_customers", "customer_id"), ("fct_orders", "order_id"), ("fct_orders_daily", "dt")] {
        let on_postgres = db.rows(&format!("select count(*), count(distinct {key}) from shop.{table}"));
        let on_embedded =
            support::rows(&dir, &format!("select count(*) as n, count(distinct {key}) as k from main.{table}"));
        let embedded_counts = vec![vec![on_embedded[0]["n"].to_string(), on_embedded[0]["k"].to_string()]];
        assert_eq!(on_postgres, embedded_counts, "{table} has the same rows on both engines");
    }
}

#[test]
fn a_deferred_build_reads_unselected_models_from_the_other_builds_schema() {
    let Some((b, _tmp, dir)) = project("defer", "conformance") else { return };
    let db = database(&b);
    let profile = std::fs::read_to_string(dir.join("profiles.yml")).unwrap();
    let schema_from_env = profile.replace("schema: public", "schema: \"{{ env_var('ETLM_TEST_SCHEMA') }}\"");
    std::fs::write(dir.join("profiles.yml"), schema_from_env).unwrap();
    let in_schema = |schema: &str, args: &[&str]| {
        let run = support::etlm_with(&dir, args, &[("ETLM_TEST_SCHEMA", schema)]);
        assert_eq!(run.code, 0, "{args:?} in {schema}\n{}\n{}", run.stdout, run.stderr);
    };
    in_schema("prod", &["build"]);
    let prod_state = dir.join("prod_target");
    std::fs::rename(dir.join("target"), &prod_state).unwrap();
    let changed = std::fs::read_to_string(dir.join("models/customer_totals.sql")).unwrap().replace(">= 5000", ">= 500");
    std::fs::write(dir.join("models/customer_totals.sql"), changed).unwrap();

    let state = prod_state.to_str().unwrap();
    in_schema("ci", &["build", "-s", "state:modified+", "--defer", "--state", state]);
    let built = db.rows("select table_name from information_schema.tables where table_schema = 'ci' order by 1");
    assert_eq!(built, vec![vec!["customer_totals".to_string()]], "only the changed model is built");
    let compiled = std::fs::read_to_string(dir.join("target/compiled/models/customer_totals.sql")).unwrap();
    assert!(compiled.contains("\"prod\".\"customers\""), "unselected parents are read from prod: {compiled}");

    in_schema("complete", &["build"]);
    let totals = |schema: &str| db.rows(&format!("select * from {schema}.customer_totals order by customer_id"));
    assert_eq!(totals("ci"), totals("complete"), "the deferred build equals a full build");
    assert_ne!(totals("ci"), totals("prod"), "and differs from production, which it did not touch");
}

#[test]
fn hooks_run_before_the_build_and_after_the_publish() {
    let Some((b, _tmp, dir)) = project("hooks", "conformance") else { return };
    let db = database(&b);
    db.execute("create table public.hook_log (at text, relation text, n bigint)");
    let model = std::fs::read_to_string(dir.join("models/customer_totals.sql")).unwrap();
    let hooked = format!(
        "{{{{ config(pre_hook=\"insert into public.hook_log select 'pre', '{{{{ this }}}}', null\", \
         post_hook=[\"insert into public.hook_log select 'post', '{{{{ this }}}}', count(*) from {{{{ this }}}}\", \
         \"grant select on {{{{ this }}}} to public\"]) }}}}\n{model}"
    );
    std::fs::write(dir.join("models/customer_totals.sql"), hooked).unwrap();
    let project_file = std::fs::read_to_string(dir.join("etlm.yml")).unwrap();
    let run_hooks = "on-run-start: \"insert into public.hook_log select 'start', null, null\"\n\
                     on-run-end:\n  - \"{% for s in schemas %}insert into public.hook_log select 'end', '{{ s }}', null;{% endfor %}\"\n";
    std::fs::write(dir.join("etlm.yml"), format!("{project_file}{run_hooks}")).unwrap();
    ok(&dir, &["build"]);
    let run_log =
        db.rows("select at, coalesce(relation, '-') from public.hook_log where at in ('start', 'end') order by 1");
    let line = |at: &str, what: &str| vec![at.to_string(), what.to_string()];
    assert_eq!(run_log, vec![line("end", "public"), line("start", "-")], "on-run-start and on-run-end ran");
    db.execute("delete from public.hook_log where at in ('start', 'end')");
    let log = db.rows("select at, relation, coalesce(n::text, '-') from public.hook_log order by at desc");
    let row = |at: &str, n: &str| vec![at.to_string(), "\"public\".\"customer_totals\"".to_string(), n.to_string()];
    assert_eq!(log, vec![row("pre", "-"), row("post", "3")], "post_hook sees the published rows");
    let granted = db.rows(
        "select count(*) from information_schema.role_table_grants \
         where table_name = 'customer_totals' and grantee = 'PUBLIC' and privilege_type = 'SELECT'",
    );
    assert_eq!(granted, vec![vec!["1".to_string()]]);

    let failing = format!("{{{{ config(post_hook='select * from no_such_table') }}}}\n{model}");
    std::fs::write(dir.join("models/customer_totals.sql"), failing).unwrap();
    let run = etlm(&dir, &["run", "-s", "customer_totals"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("published, then post_hook failed"), "{}", run.stdout);
}

#[test]
fn seed_column_types_are_used_as_written() {
    let Some((b, _tmp, dir)) = project("seed_types", "conformance") else { return };
    let db = database(&b);
    let props = "version: 2\nseeds:\n  - name: customers\n    config:\n      column_types:\n        \
                 customer_id: integer\n        tier: varchar(10)\n";
    std::fs::write(dir.join("seeds/customers.yml"), props).unwrap();
    ok(&dir, &["seed", "-s", "customers"]);
    let types = db.rows(
        "select column_name::text, data_type::text, coalesce(character_maximum_length::text, '-') \
         from information_schema.columns where table_schema = 'public' and table_name = 'customers' order by ordinal_position",
    );
    let row = |c: &str, t: &str, n: &str| vec![c.to_string(), t.to_string(), n.to_string()];
    assert_eq!(
        types,
        vec![row("customer_id", "integer", "-"), row("name", "text", "-"), row("tier", "character varying", "10")]
    );
}

/// Seeds load with the types and values dbt gives them on Postgres: whole numbers
/// `integer`, other numbers `double precision`, a declared `numeric(12,2)` rounded by
/// Postgres rules, `null` as NULL, the header's spelling kept.
#[test]
fn seeds_load_with_dbt_types_and_values() {
    let Some((b, _tmp, dir)) = project("seed_types", "conformance") else { return };
    let db = database(&b);
    std::fs::write(
        dir.join("seeds/typed.csv"),
        "id,CustomerID,ratio,price,note\n1,7,0.5,10.005,null\n2,8,1.25,0.125,x\n3,9,2,2.675,\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("seeds/typed.yml"),
        "version: 2\nseeds:\n  - name: typed\n    config:\n      column_types:\n        price: numeric(12,2)\n",
    )
    .unwrap();
    ok(&dir, &["seed", "-s", "typed"]);
    let types = db.rows(
        "select column_name, data_type from information_schema.columns where table_name = 'typed' order by ordinal_position",
    );
    let expected = [
        ["id", "integer"],
        ["CustomerID", "integer"],
        ["ratio", "double precision"],
        ["price", "numeric"],
        ["note", "text"],
    ];
    assert_eq!(types, expected.map(|r| r.map(String::from).to_vec()).to_vec());
    let rows =
        db.rows(r#"select id, "CustomerID", ratio, price, coalesce(note, 'NULL') from public.typed order by id"#);
    let expected =
        [["1", "7", "0.5", "10.01", "NULL"], ["2", "8", "1.25", "0.13", "x"], ["3", "9", "2", "2.68", "NULL"]];
    assert_eq!(rows, expected.map(|r| r.map(String::from).to_vec()).to_vec());
}

/// A project building one table in `schema` of `db`, whose audit takes `audit_seconds`.
fn schema_project(db: &Database, schema: &str, audit_seconds: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(schema);
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::create_dir_all(dir.join("macros")).unwrap();
    std::fs::write(
        dir.join("etlm.yml"),
        format!("name: {schema}\nprofile: p\nmodels:\n  {schema}:\n    +materialized: table\n"),
    )
    .unwrap();
    std::fs::write(dir.join("models/m.sql"), "select 1 as id\n").unwrap();
    // A generic test on the model: an audit of its staged data, before the publish.
    std::fs::write(
        dir.join("macros/slow.sql"),
        format!("{{% test slow(model) %}}select * from {{{{ model }}}} where pg_sleep({audit_seconds}) is null{{% endtest %}}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("models/m.yml"), "version: 2\nmodels:\n  - name: m\n    data_tests: [slow]\n").unwrap();
    db.write_profile(&dir, "p", "");
    let profile = std::fs::read_to_string(dir.join("profiles.yml"))
        .unwrap()
        .replace("schema: public", &format!("schema: {schema}"));
    std::fs::write(dir.join("profiles.yml"), profile).unwrap();
    (tmp, dir)
}

#[test]
fn runs_on_two_schemas_of_one_database_leave_each_others_staging_alone() {
    let Some(b) = Backend::postgres("two_schemas") else { return };
    let Backend::Postgres(db) = &b else { unreachable!() };
    // `prod`'s model is staged and audited for 4 s; `ci` starts (and sweeps) meanwhile.
    let (_p, prod) = schema_project(db, "prod", 4);
    let (_c, ci) = schema_project(db, "ci_42", 0);
    let first = etlm_command(&prod, &["build"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let clock = Instant::now();
    let auditing = "select count(*) from pg_stat_activity where query like '%pg_sleep(4)%' and state = 'active' and pid <> pg_backend_pid()";
    while db.rows(auditing)[0][0] == "0" {
        assert!(clock.elapsed() < Duration::from_secs(30), "prod's audit never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = etlm(&ci, &["build"]);
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    // `ci` neither dropped nor waited on `prod`'s staging: prod is still auditing it.
    assert_eq!(db.rows(auditing), vec![vec!["1".to_string()]], "ci's start waited for or broke prod's audit");
    let staged =
        "select count(*) from information_schema.views where table_schema = '_etlm_audit' and table_name = 'prod__m'";
    assert_eq!(db.rows(staged), vec![vec!["1".to_string()]], "prod's audit view is still there");
    let out = first.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "prod's staging survived ci's start: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(db.rows("select id from prod.m"), vec![vec!["1".to_string()]]);
    assert_eq!(db.rows("select id from ci_42.m"), vec![vec!["1".to_string()]]);
    // A killed run's staging is swept by the next run once its connection is gone.
    db.execute("create schema _etlm_staging_999999; create table _etlm_staging_999999.left_over (x int)");
    assert_eq!(etlm(&ci, &["build"]).code, 0);
    assert_eq!(
        db.rows("select count(*) from pg_namespace where nspname = '_etlm_staging_999999'"),
        vec![vec!["0".to_string()]]
    );
}

#[test]
fn a_role_without_create_is_told_which_grants_it_needs_before_anything_changes() {
    let Some(b) = Backend::postgres("privileges") else { return };
    let db = database(&b);
    let (_tmp, dir) = b.project("shop_basic");
    let role = format!("limited_{}", std::process::id());
    let password = support::postgres::password();
    db.execute(&format!("create role {role} login password '{password}'"));
    let profile = std::fs::read_to_string(dir.join("profiles.yml")).unwrap();
    let profile = profile.replace(&format!("user: {}", db.server.user), &format!("user: {role}"));
    std::fs::write(dir.join("profiles.yml"), profile).unwrap();
    let nothing_changed = || {
        let made = db.rows(
            "select nspname from pg_namespace where nspname like '%etlm%' \
             union all select table_name from information_schema.tables where table_schema = 'public'",
        );
        assert_eq!(made, Vec::<Vec<String>>::new(), "nothing was created");
    };

    let run = etlm(&dir, &["build"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("error[permission-denied]"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("role `{role}` needs USAGE and CREATE on schema `public`")), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("CREATE on database `{}`", db.name)), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("grant create on database \"{}\" to \"{role}\"", db.name)), "{}", run.stderr);
    nothing_changed();

    db.execute(&format!("grant create on database \"{}\" to \"{role}\"", db.name));
    let run = etlm(&dir, &["build"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("needs USAGE and CREATE on schema `public`; nothing was changed"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("grant usage, create on schema \"public\" to \"{role}\"")), "{}", run.stderr);
    nothing_changed();

    // A model in a schema the role may not write stops the run before its first model.
    db.execute(&format!("grant usage, create on schema public to {role}; create schema locked"));
    std::fs::write(dir.join("models/elsewhere.sql"), "{{ config(schema='x') }}\nselect 1 as one\n").unwrap();
    std::fs::create_dir_all(dir.join("macros")).unwrap();
    std::fs::write(
        dir.join("macros/generate_schema_name.sql"),
        "{% macro generate_schema_name(custom, node) %}{{ 'locked' if custom else target.schema }}{% endmacro %}\n",
    )
    .unwrap();
    let run = etlm(&dir, &["build"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("needs USAGE and CREATE on schema `locked`"), "{}", run.stderr);
    let tables = db.rows("select table_name from information_schema.tables where table_schema = 'public'");
    assert_eq!(tables, Vec::<Vec<String>>::new(), "no model was published");

    std::fs::remove_file(dir.join("models/elsewhere.sql")).unwrap();
    let run = etlm(&dir, &["build"]);
    assert_eq!(run.code, 0, "with the grants the build runs: {}\n{}", run.stdout, run.stderr);
}

#[test]
fn two_models_alike_in_their_first_60_bytes_build_in_parallel_each_audited_on_its_own_rows() {
    let Some((b, _tmp, dir)) = project("long_names", "shop_basic") else { return };
    let prefix = "m".repeat(60);
    let mut tests = String::from("models:\n");
    for which in ["one", "two"] {
        let name = format!("{prefix}{which}");
        assert_eq!(name.len(), 63, "as long as Postgres allows");
        std::fs::write(
            dir.join(format!("models/{name}.sql")),
            format!("select '{which}' as which, pg_sleep(0.3)::text as s\n"),
        )
        .unwrap();
        tests.push_str(&format!(
            "  - name: {name}\n    columns:\n      - name: which\n        data_tests:\n          - accepted_values: {{values: ['{which}']}}\n"
        ));
    }
    std::fs::write(dir.join("models/long.yml"), tests).unwrap();
    let run = etlm(&dir, &["build", "--threads", "2", "-s", &format!("{prefix}one"), &format!("{prefix}two")]);
    assert_eq!(run.code, 0, "each model's tests read its own staged rows: {}\n{}", run.stdout, run.stderr);
    for which in ["one", "two"] {
        let rows = b.rows(&dir, &format!("select which from {{schema}}.{prefix}{which}"));
        assert_eq!(rows, support::engines::table(&["which"], &[&[which]]));
    }
    assert_eq!(b.leftovers(), Vec::<Vec<String>>::new());
}
