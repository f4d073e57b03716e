//! Connecting to Postgres: `sslmode` against a server without TLS and one with it
//! (certificates from a throwaway CA made with the `openssl` CLI), the URL form, client
//! certificates, and the password kept out of output, artifacts and `etlm_meta`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use support::postgres::{self, Database, Server};
use support::{Run, etlm_with};

/// A project of tables from `models` (name, SQL) and a `not_null` test on `ok_model.id` when it
/// has that model.
fn project(models: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("conn");
    std::fs::create_dir_all(dir.join("models")).expect("create models dir");
    std::fs::write(dir.join("etlm.yml"), "name: conn\nversion: \"1.0\"\nmodels:\n  conn:\n    +materialized: table\n")
        .expect("write etlm.yml");
    for (name, sql) in models {
        std::fs::write(dir.join("models").join(format!("{name}.sql")), sql).expect("write a model");
    }
    if models.iter().any(|(name, _)| *name == "ok_model") {
        let schema = "version: 2\nmodels:\n  - name: ok_model\n    columns:\n      - name: id\n        data_tests:\n          - not_null\n";
        std::fs::write(dir.join("models/schema.yml"), schema).expect("write schema.yml");
    }
    (tmp, dir)
}

/// Writes `db`'s profile (`Database::write_profile`, target `pg`) with `changes` to its
/// settings (a setting it lacks is added).
fn write_profile(db: &Database, dir: &Path, changes: &[(&str, &str)]) {
    db.write_profile(dir, "conn", "");
    let path = dir.join("profiles.yml");
    let mut lines: Vec<String> =
        std::fs::read_to_string(&path).expect("read profiles.yml").lines().map(String::from).collect();
    for (key, value) in changes {
        let line = format!("      {key}: {value}");
        match lines.iter_mut().find(|l| l.trim_start().starts_with(&format!("{key}:"))) {
            Some(existing) => *existing = line,
            None => lines.push(line),
        }
    }
    std::fs::write(&path, lines.join("\n") + "\n").expect("write profiles.yml");
}

/// `etlm build` with `password` in `$ETLM_TEST_PGPASSWORD`.
fn build(dir: &Path, password: &str) -> Run {
    etlm_with(dir, &["build"], &[("ETLM_TEST_PGPASSWORD", password)])
}

/// Fails when `secret` is in the run's output or in any file under the project's `target/`.
fn assert_nowhere(secret: &str, run: &Run, dir: &Path) {
    assert!(!run.stdout.contains(secret), "the password is in stdout:\n{}", run.stdout);
    assert!(!run.stderr.contains(secret), "the password is in stderr:\n{}", run.stderr);
    for entry in walk(&dir.join("target")) {
        let bytes = std::fs::read(&entry).expect("read an artifact");
        assert!(!String::from_utf8_lossy(&bytes).contains(secret), "the password is in {}", entry.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] }).collect()
}

#[test]
fn sslmode_require_against_a_server_without_tls_fails_without_falling_back_to_plaintext() {
    let Some(db) = postgres::database("require_no_tls") else { return };
    let (_tmp, dir) = project(&[("one", "select 1 as id")]);
    write_profile(&db, &dir, &[("sslmode", "require")]);
    let run = build(&dir, &postgres::password());
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let target = format!("{}@{}:{}/{}", db.server.user, db.server.host, db.server.port, db.name);
    assert!(
        run.stderr.contains(&format!(
            "error[connection-failed]: could not connect to postgres at {target}: the server does not support TLS and \
             sslmode is require"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help: enable `ssl` on the server, or set `sslmode: disable`"), "{}", run.stderr);
    assert_nowhere(&postgres::password(), &run, &dir);
    assert!(db.rows("select 1 from pg_namespace where nspname = 'etlm_meta'").is_empty(), "nothing was written");
}

#[test]
fn sslmode_prefer_against_a_server_without_tls_connects_in_plaintext() {
    let Some(db) = postgres::database("prefer_no_tls") else { return };
    let (_tmp, dir) = project(&[("one", "select 1 as id")]);
    write_profile(&db, &dir, &[("sslmode", "prefer")]);
    let run = build(&dir, &postgres::password());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(db.rows("select id from public.one"), vec![vec!["1".to_string()]]);
}

#[test]
fn a_wrong_password_fails_with_a_connection_diagnostic_that_never_shows_it() {
    let Some(db) = postgres::database("wrong_password") else { return };
    let (_tmp, dir) = project(&[("one", "select 1 as id")]);
    write_profile(&db, &dir, &[]);
    let wrong = "not-the-Pa55word-4711";
    let run = build(&dir, wrong);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let target = format!("{}@{}:{}/{}", db.server.user, db.server.host, db.server.port, db.name);
    assert!(
        run.stderr.contains(&format!("error[connection-failed]: could not connect to postgres at {target}: ")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("password authentication failed"), "{}", run.stderr);
    assert!(run.stderr.contains("help: check the target's `user` and `password`"), "{}", run.stderr);
    assert_nowhere(wrong, &run, &dir);

    let json = etlm_with(&dir, &["build", "--format", "json"], &[("ETLM_TEST_PGPASSWORD", wrong)]);
    assert_eq!(json.code, 2, "{}\n{}", json.stdout, json.stderr);
    assert!(json.stdout.contains("connection-failed") || json.stderr.contains("connection-failed"));
    assert_nowhere(wrong, &json, &dir);
}

#[test]
fn a_failing_model_keeps_the_password_out_of_output_artifacts_and_history() {
    let Some(db) = postgres::database("failing_model") else { return };
    let (_tmp, dir) = project(&[
        ("ok_model", "select 1 as id"),
        ("bad_model", "select 1 / (id - 1) as boom from {{ ref('ok_model') }}"),
    ]);
    write_profile(&db, &dir, &[]);
    let password = postgres::password();
    let run = build(&dir, &password);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(format!("{}{}", run.stdout, run.stderr).contains("division by zero"), "{}\n{}", run.stdout, run.stderr);
    assert_nowhere(&password, &run, &dir);
    // The other commands that write artifacts or show history.
    for args in [&["compile"][..], &["docs", "generate"], &["runs"]] {
        let other = etlm_with(&dir, args, &[("ETLM_TEST_PGPASSWORD", &password)]);
        assert_eq!(other.code, 0, "{args:?}\n{}\n{}", other.stdout, other.stderr);
        assert_nowhere(&password, &other, &dir);
    }
    for artifact in ["manifest.json", "run_results.json", "docs/index.html"] {
        assert!(dir.join("target").join(artifact).is_file(), "target/{artifact} was checked");
    }
    for table in ["runs", "model_runs", "test_results"] {
        let rows = db.rows(&format!("select * from etlm_meta.{table}"));
        assert!(!rows.is_empty(), "etlm_meta.{table} has the run");
        for cell in rows.iter().flatten() {
            assert!(!cell.contains(&password), "the password is in etlm_meta.{table}: {cell}");
        }
    }
}

#[test]
fn a_url_target_connects_and_keeps_its_password_out_of_messages() {
    let Some(db) = postgres::database("url_form") else { return };
    let (_tmp, dir) = project(&[("one", "select 1 as id")]);
    let server = db.server;
    let url = |password: &str| {
        format!(
            "postgres://{}:{password}@{}:{}/{}?sslmode=disable&application_name=etlm_url",
            server.user, server.host, server.port, db.name
        )
    };
    let profile = |url: String| {
        let text = format!("conn:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n      url: \"{url}\"\n");
        std::fs::write(dir.join("profiles.yml"), text).expect("write profiles.yml");
    };
    profile(url(&server.password));
    let run = build(&dir, "");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(db.rows("select id from public.one"), vec![vec!["1".to_string()]]);
    assert_nowhere(&server.password, &run, &dir);

    let wrong = "url-Wr0ng-secret";
    profile(url(wrong));
    let run = build(&dir, "");
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("error[connection-failed]"), "{}", run.stderr);
    assert_nowhere(wrong, &run, &dir);
}

/// A cluster with TLS on: a server certificate for `localhost` (not `127.0.0.1`) signed
/// by a throwaway CA, which also signs a client certificate for the role `certuser`
/// (whose `hostssl` rule asks for one).
struct TlsServer {
    server: &'static Server,
    /// PEM files: the CA, and the client certificate and key.
    ca: Vec<u8>,
    client_cert: Vec<u8>,
    client_key: Vec<u8>,
}

static TLS: OnceLock<Option<TlsServer>> = OnceLock::new();

/// The TLS cluster, or `None` (after printing why) without `openssl` or Postgres
/// binaries outside CI.
fn tls_server() -> Option<&'static TlsServer> {
    TLS.get_or_init(|| {
        if Command::new("openssl").arg("version").output().is_err() {
            let message = "no `openssl` CLI to make test certificates";
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "{message}: the TLS tests cannot be skipped in CI"
            );
            eprintln!("SKIPPED: {message}");
            return None;
        }
        let certs = tempfile::tempdir().expect("temp dir");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(certs.path()).output().expect("run openssl");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            &[
                &["req", "-x509"],
                &ec[..],
                &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=etlm-test-ca"],
            ]
            .concat(),
        );
        for (name, cn, ext) in [
            ("server", "localhost", "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n"),
            ("client", "certuser", "extendedKeyUsage=clientAuth\n"),
        ] {
            let ext_file = format!("{name}.ext");
            std::fs::write(
                certs.path().join(&ext_file),
                format!("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n{ext}"),
            )
            .expect("write an extension file");
            let (key, csr, crt, subject) =
                (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("/CN={cn}"));
            openssl(&[&["req"], &ec[..], &["-keyout", &key, "-out", &csr, "-subj", &subject]].concat());
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &ext_file,
            ]);
        }
        let read = |name: &str| std::fs::read(certs.path().join(name)).expect("read a certificate");
        let hba = "local all all trust\n\
                   hostssl all certuser 127.0.0.1/32 cert\n\
                   host all all 127.0.0.1/32 scram-sha-256\n\
                   host all all ::1/128 scram-sha-256\n";
        let files = [
            ("server.crt", read("server.crt")),
            ("server.key", read("server.key")),
            ("ca.crt", read("ca.crt")),
            ("pg_hba.conf", hba.as_bytes().to_vec()),
        ];
        let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        let server: &'static Server =
            Box::leak(Box::new(postgres::start_cluster(&files, "-c ssl=on -c ssl_ca_file=ca.crt")?));
        server.execute("postgres", "create role certuser login superuser");
        Some(TlsServer { server, ca: read("ca.crt"), client_cert: read("client.crt"), client_key: read("client.key") })
    })
    .as_ref()
}

/// A one-model project on a fresh database of the TLS cluster, with the CA and client
/// certificate written into it.
fn tls_project(test: &str) -> Option<(Database, tempfile::TempDir, PathBuf)> {
    let tls = tls_server()?;
    let db = tls.server.database(test);
    let (tmp, dir) = project(&[("one", "select 1 as id")]);
    for (name, pem) in [("ca.crt", &tls.ca), ("client.crt", &tls.client_cert), ("client.key", &tls.client_key)] {
        std::fs::write(dir.join(name), pem).expect("write a certificate");
    }
    Some((db, tmp, dir))
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn verify_full_with_the_ca_connects_over_tls_and_builds() {
    let Some((db, _tmp, dir)) = tls_project("verify_full") else { return };
    write_profile(
        &db,
        &dir,
        &[("host", "localhost"), ("sslmode", "verify-full"), ("sslrootcert", &path(&dir, "ca.crt"))],
    );
    let run = build(&dir, &db.server.password);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(db.rows("select id from public.one"), vec![vec!["1".to_string()]]);
}

#[test]
fn verify_full_without_the_ca_fails_with_a_certificate_error() {
    let Some((db, _tmp, dir)) = tls_project("verify_full_no_ca") else { return };
    write_profile(&db, &dir, &[("host", "localhost"), ("sslmode", "verify-full")]);
    let run = build(&dir, &db.server.password);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("the server's certificate is not signed by a trusted certificate authority"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help: set `sslrootcert` to the PEM file"), "{}", run.stderr);
    assert_nowhere(&db.server.password, &run, &dir);
}

#[test]
fn sslmode_require_verifies_the_certificate_too() {
    let Some((db, _tmp, dir)) = tls_project("require_tls") else { return };
    write_profile(&db, &dir, &[("host", "localhost"), ("sslmode", "require")]);
    let run = build(&dir, &db.server.password);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("not signed by a trusted certificate authority"), "{}", run.stderr);
    write_profile(&db, &dir, &[("host", "localhost"), ("sslmode", "require"), ("sslrootcert", &path(&dir, "ca.crt"))]);
    let run = build(&dir, &db.server.password);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

#[test]
fn verify_ca_accepts_a_host_name_the_certificate_lacks_and_verify_full_does_not() {
    let Some((db, _tmp, dir)) = tls_project("verify_ca") else { return };
    let ca = path(&dir, "ca.crt");
    write_profile(&db, &dir, &[("host", "127.0.0.1"), ("sslmode", "verify-full"), ("sslrootcert", &ca)]);
    let run = build(&dir, &db.server.password);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("the server's certificate is not valid for host `127.0.0.1`"), "{}", run.stderr);
    write_profile(&db, &dir, &[("host", "127.0.0.1"), ("sslmode", "verify-ca"), ("sslrootcert", &ca)]);
    let run = build(&dir, &db.server.password);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

#[test]
fn sslmode_prefer_uses_tls_without_checking_the_certificate() {
    let Some((db, _tmp, dir)) = tls_project("prefer_tls") else { return };
    // `certuser` may only connect over TLS: success shows the session was encrypted.
    write_profile(
        &db,
        &dir,
        &[
            ("user", "certuser"),
            ("sslmode", "prefer"),
            ("sslcert", &path(&dir, "client.crt")),
            ("sslkey", &path(&dir, "client.key")),
        ],
    );
    let run = build(&dir, "");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

#[test]
fn a_url_with_verify_full_and_a_client_certificate_connects() {
    let Some((db, _tmp, dir)) = tls_project("url_client_cert") else { return };
    let url = format!(
        "postgres://certuser@localhost:{}/{}?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        db.server.port,
        db.name,
        path(&dir, "ca.crt"),
        path(&dir, "client.crt"),
        path(&dir, "client.key")
    );
    let text = format!("conn:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n      url: \"{url}\"\n");
    std::fs::write(dir.join("profiles.yml"), text).expect("write profiles.yml");
    let run = build(&dir, "");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(db.rows("select id from public.one"), vec![vec!["1".to_string()]]);
}
