//! A real Postgres for the tests: `ETLM_TEST_POSTGRES_URL` when set, else a throwaway
//! cluster this test process starts (initdb + pg_ctl as the `postgres` user when run as
//! root, in a temp dir, on a free loopback port, password auth over TCP) and a watchdog
//! stops once the process is gone. Each test gets a database of its own.
//! Without Postgres binaries the tests print a skip, and fail when `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The superuser's password on the throwaway cluster.
pub const PASSWORD: &str = "etlm-test-Secr3t";

/// A server tests can create databases on.
pub struct Server {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

/// One test's database on the server.
pub struct Database {
    pub server: &'static Server,
    pub name: String,
}

static SERVER: OnceLock<Option<Server>> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The password of the test server, once one is up (else empty).
pub fn password() -> String {
    SERVER.get().and_then(Option::as_ref).map(|s| s.password.clone()).unwrap_or_default()
}

/// A fresh database, or `None` (after printing why) when no Postgres is available
/// outside CI. In CI (`CI=true`) a missing Postgres fails the test.
pub fn database(test: &str) -> Option<Database> {
    Some(SERVER.get_or_init(start).as_ref()?.database(test))
}

impl Server {
    /// A fresh database on this server.
    pub fn database(&'static self, test: &str) -> Database {
        let name = format!("{test}_{}_{}", std::process::id(), DATABASES.fetch_add(1, Ordering::SeqCst));
        self.execute("postgres", &format!("create database \"{name}\""));
        Database { server: self, name }
    }

    /// Runs statements on database `db`.
    pub fn execute(&self, db: &str, sql: &str) {
        let url = self.url(db);
        block_on(async move {
            let (client, conn) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect to test postgres");
            tokio::spawn(conn);
            client.batch_execute(sql).await.unwrap_or_else(|e| panic!("`{sql}` failed: {e:?}"));
        });
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://{}:{}@{}:{}/{db}", self.user, self.password, self.host, self.port)
    }
}

impl Database {
    /// Rows of a query, every value as text (`NULL` for null).
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let url = self.server.url(&self.name);
        let sql = sql.to_string();
        block_on(async move {
            let (client, conn) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect to test postgres");
            tokio::spawn(conn);
            let messages = client.simple_query(&sql).await.unwrap_or_else(|e| panic!("`{sql}` failed: {e:?}"));
            messages
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(row) => {
                        Some((0..row.len()).map(|i| row.get(i).unwrap_or("NULL").to_string()).collect())
                    }
                    _ => None,
                })
                .collect()
        })
    }

    pub fn execute(&self, sql: &str) {
        self.server.execute(&self.name, sql);
    }

    /// Writes `profiles.yml` into `project` with target `pg` (the default) on this
    /// database; the password comes from `$ETLM_TEST_PGPASSWORD` through `env_var`.
    pub fn write_profile(&self, project: &Path, profile: &str, extra: &str) {
        let text = format!(
            "{profile}:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n      host: {}\n      port: {}\n      \
             user: {}\n      password: \"{{{{ env_var('ETLM_TEST_PGPASSWORD') }}}}\"\n      dbname: {}\n      schema: public\n      \
             sslmode: disable\n      threads: 2\n{extra}",
            self.server.host, self.server.port, self.server.user, self.name
        );
        std::fs::write(project.join("profiles.yml"), text).expect("write profiles.yml");
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

fn start() -> Option<Server> {
    if let Ok(url) = std::env::var("ETLM_TEST_POSTGRES_URL") {
        let config: tokio_postgres::Config = url.parse().expect("ETLM_TEST_POSTGRES_URL is a postgres URL");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        return Some(Server {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            user: config.get_user().unwrap_or("postgres").to_string(),
            password: config.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default(),
        });
    }
    start_cluster(&[], "")
}

/// Starts a throwaway cluster, or returns `None` (after printing why) without Postgres
/// binaries outside CI. `files` are written into its data directory (mode 0600, owned by
/// the server: `server.crt`, `server.key`, `pg_hba.conf`...) and `options` are added to
/// the server's command line (`-c ssl=on`).
pub fn start_cluster(files: &[(&str, &[u8])], options: &str) -> Option<Server> {
    let Some(bin) = find_binaries() else {
        let message = "no Postgres binaries (initdb, pg_ctl) found and ETLM_TEST_POSTGRES_URL is not set";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message}: the Postgres suite cannot be skipped in CI");
        }
        eprintln!("SKIPPED: {message}");
        return None;
    };
    let root = is_root();
    let dir = tempfile::Builder::new().prefix("etlm-pg-").tempdir().expect("temp dir").keep();
    let data = dir.join("data");
    let pwfile = dir.join("pw");
    std::fs::write(&pwfile, PASSWORD).expect("write password file");
    let chown = || {
        if root {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().expect("chown");
            assert!(status.success(), "chown of the cluster dir failed");
        }
    };
    chown();
    let as_owner = |program: &Path| {
        let mut c = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        c.env("LC_ALL", "C");
        c
    };
    let out = as_owner(&bin.join("initdb"))
        .args(["-D"])
        .arg(&data)
        .args(["-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile"])
        .arg(&pwfile)
        .output()
        .expect("run initdb");
    assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
    for (name, contents) in files {
        use std::os::unix::fs::PermissionsExt;
        let path = data.join(name);
        std::fs::write(&path, contents).expect("write a cluster file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod a cluster file");
    }
    chown();
    let port = free_port();
    let options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=200 -c fsync=off \
         {options}",
        dir.display()
    );
    let out = as_owner(&bin.join("pg_ctl"))
        .args(["-D"])
        .arg(&data)
        .args(["-o", &options, "-l"])
        .arg(dir.join("log"))
        .args(["-w", "start"])
        .output()
        .expect("run pg_ctl");
    assert!(
        out.status.success(),
        "pg_ctl start failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.join("log")).unwrap_or_default()
    );
    watchdog(&bin, &data, &dir, root);
    Some(Server { host: "127.0.0.1".into(), port, user: "postgres".into(), password: PASSWORD.into() })
}

/// Stops the cluster and removes its directory once this test process has exited.
/// The watchdog outlives this process on purpose, so it is never waited for.
#[allow(clippy::zombie_processes)]
fn watchdog(bin: &Path, data: &Path, dir: &Path, root: bool) {
    let stop = format!("{} -D {} stop -m immediate", bin.join("pg_ctl").display(), data.display());
    let stop = if root { format!("runuser -u postgres -- {stop}") } else { stop };
    let script = format!(
        "while [ -d /proc/{pid} ]; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the cluster watchdog");
}

/// The folder with initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<v>/bin.
fn find_binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    debian.sort();
    debian.reverse();
    on_path.into_iter().chain(debian).find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("local addr").port()
}
