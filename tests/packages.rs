//! `etlm deps` and installed packages: local packages, git packages from a local bare
//! repository, the package hub's protocol against a local HTTP server, version ranges
//! resolved transitively (and their conflicts), the lock file, and an install that fails
//! leaving the previous one as it was.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use support::{copy_project, etlm};

fn ok(dir: &Path, args: &[&str]) -> String {
    let run = etlm(dir, args);
    assert_eq!(run.code, 0, "{args:?}\n{}\n{}", run.stdout, run.stderr);
    run.stdout
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A project `shop` with one model that calls `{{ widgets.widget_version() }}`.
fn widget_project(root: &Path, packages_yml: &str) -> std::path::PathBuf {
    let dir = root.join("shop");
    write(&dir.join("dbt_project.yml"), "name: shop\n");
    write(&dir.join("packages.yml"), packages_yml);
    write(&dir.join("models/uses_widgets.sql"), "select {{ widgets.widget_version() }} as v\n");
    dir
}

/// A package `widgets` whose macro returns its version.
fn widget_package(dir: &Path, version: &str, packages_yml: Option<&str>) {
    write(&dir.join("dbt_project.yml"), &format!("name: widgets\nversion: '{version}'\n"));
    write(&dir.join("macros/widgets.sql"), &format!("{{% macro widget_version() %}}'{version}'{{% endmacro %}}\n"));
    if let Some(p) = packages_yml {
        write(&dir.join("packages.yml"), p);
    }
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn compiled(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("target/compiled/models/uses_widgets.sql")).unwrap()
}

#[test]
fn a_git_package_installs_at_a_tag_and_the_lock_pins_its_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("widgets-src");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    widget_package(&work.join("pkg"), "1.0.0", None);
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "v1"]);
    git(&work, &["tag", "v1.0.0"]);
    widget_package(&work.join("pkg"), "2.0.0", None);
    git(&work, &["commit", "-qam", "v2"]);
    let bare = tmp.path().join("widgets.git");
    git(tmp.path(), &["clone", "-q", "--bare", work.to_str().unwrap(), bare.to_str().unwrap()]);
    let url = format!("file://{}", bare.display());

    let dir = widget_project(
        tmp.path(),
        &format!("packages:\n  - git: \"{url}\"\n    revision: v1.0.0\n    subdirectory: pkg\n"),
    );
    let out = ok(&dir, &["deps"]);
    assert!(out.contains("installed widgets from git"), "{out}");
    assert!(!dir.join("dbt_packages/widgets/.git").exists(), "the clone's history is not installed");
    ok(&dir, &["compile"]);
    assert!(compiled(&dir).contains("'1.0.0'"), "{}", compiled(&dir));
    let lock = std::fs::read_to_string(dir.join("package-lock.yml")).unwrap();
    let tagged = String::from_utf8(
        Command::new("git").args(["rev-parse", "v1.0.0^{commit}"]).current_dir(&work).output().unwrap().stdout,
    )
    .unwrap();
    assert!(lock.contains(&format!("revision: {}", tagged.trim())), "the lock pins the commit:\n{lock}");
    assert!(lock.contains("subdirectory: pkg"), "{lock}");

    // The branch moves on; the lock still installs the pinned commit.
    std::fs::remove_dir_all(dir.join("dbt_packages")).unwrap();
    let out = ok(&dir, &["deps"]);
    assert!(out.contains("as package-lock.yml pins them"), "{out}");
    ok(&dir, &["compile"]);
    assert!(compiled(&dir).contains("'1.0.0'"));

    // A revision that does not exist: exit 2, and the install stays as it was.
    write(
        &dir.join("packages.yml"),
        &format!("packages:\n  - git: \"{url}\"\n    revision: v9\n    subdirectory: pkg\n"),
    );
    let run = etlm(&dir, &["deps"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("has no branch, tag or commit `v9`"), "{}", run.stderr);
    assert!(run.stderr.contains("packages.yml:2:"), "the entry is pointed at: {}", run.stderr);
    assert!(dir.join("dbt_packages/widgets/macros/widgets.sql").is_file(), "the previous install is intact");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".etlm-"))
        .collect();
    assert!(leftovers.is_empty(), "no staging folder is left behind");
    assert!(
        std::fs::read_to_string(dir.join("package-lock.yml")).unwrap().contains(tagged.trim()),
        "the lock is unchanged"
    );
}

/// A package hub on a loopback port: `GET <path>` answers the bytes kept for it.
struct Hub {
    url: String,
    files: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl Hub {
    fn start() -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let files: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Vec<u8>>>> = Default::default();
        let served = files.clone();
        std::thread::spawn(move || {
            // Bounded: a test asks for a few dozen files at most.
            for stream in listener.incoming().take(200) {
                let Ok(mut stream) = stream else { continue };
                let mut request = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                if reader.read_line(&mut request).is_err() {
                    continue;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let body = served.lock().unwrap().get(&path).cloned();
                let response = match body {
                    Some(b) => {
                        [format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", b.len()).into_bytes(), b].concat()
                    }
                    None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                };
                let _ = stream.write_all(&response);
            }
        });
        Hub { url, files }
    }

    fn put(&self, path: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(path.to_string(), bytes);
    }

    /// Publishes `owner/name` at each version: an index and one tarball per version, each
    /// version depending on `deps` (a JSON list of hub specs).
    fn publish(&self, package: &str, versions: &[(&str, &str)], build: impl Fn(&Path, &str)) {
        let mut index = serde_json::Map::new();
        for (version, deps) in versions {
            let src = tempfile::tempdir().unwrap();
            let top = src.path().join(format!("pkg-{version}"));
            build(&top, version);
            let mut tarball = Vec::new();
            {
                let gz = flate2::write::GzEncoder::new(&mut tarball, flate2::Compression::default());
                let mut builder = tar::Builder::new(gz);
                builder.append_dir_all(format!("pkg-{version}"), &top).unwrap();
                builder.into_inner().unwrap().finish().unwrap();
            }
            let path = format!("/tarballs/{package}/{version}.tar.gz");
            self.put(&path, tarball);
            index.insert(
                version.to_string(),
                serde_json::json!({
                    "downloads": {"tarball": format!("{}{path}", self.url)},
                    "packages": serde_json::from_str::<serde_json::Value>(deps).unwrap(),
                }),
            );
        }
        let index = serde_json::json!({"name": package, "versions": index});
        self.put(&format!("/api/v1/{package}.json"), index.to_string().into_bytes());
    }
}

fn deps_with_hub(dir: &Path, hub: &Hub, args: &[&str]) -> support::Run {
    support::etlm_with(dir, &[&["deps"], args].concat(), &[("ETLM_PACKAGE_HUB_URL", hub.url.as_str())])
}

#[test]
fn hub_packages_resolve_ranges_transitively_and_the_lock_is_reused_until_upgrade() {
    let hub = Hub::start();
    hub.publish("acme/widgets", &[("0.9.0", "[]"), ("1.0.0", "[]"), ("1.4.2", "[]"), ("2.0.0", "[]")], |d, v| {
        widget_package(d, v, None)
    });
    // `gears` 1.1.0 needs widgets below 1.4: with the root's range, 1.0.0 is the one left.
    hub.publish(
        "acme/gears",
        &[("1.1.0", r#"[{"package": "acme/widgets", "version": [">=0.9.0", "<1.4.0"]}]"#)],
        |d, v| {
            write(&d.join("dbt_project.yml"), &format!("name: gears\nversion: '{v}'\n"));
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = widget_project(
        tmp.path(),
        "packages:\n  - package: acme/widgets\n    version: [\">=1.0.0\", \"<2.0.0\"]\n  - package: acme/gears\n    version: 1.1.0\n",
    );
    let run = deps_with_hub(&dir, &hub, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("installed widgets from `acme/widgets` [=1.0.0]"), "{}", run.stdout);
    assert!(run.stdout.contains("installed gears from `acme/gears` [=1.1.0]"), "{}", run.stdout);
    ok(&dir, &["compile"]);
    assert!(compiled(&dir).contains("'1.0.0'"), "{}", compiled(&dir));
    let lock = std::fs::read_to_string(dir.join("package-lock.yml")).unwrap();
    assert!(lock.contains("  - package: acme/widgets\n    version: 1.0.0\n    name: widgets\n"), "{lock}");

    // Without gears the root's range alone picks 1.4.2, but the lock is only redone when
    // the package file changes or with --upgrade.
    hub.publish("acme/gears", &[("1.1.0", "[]")], |d, v| {
        write(&d.join("dbt_project.yml"), &format!("name: gears\nversion: '{v}'\n"));
    });
    let run = deps_with_hub(&dir, &hub, &[]);
    assert!(run.stdout.contains("as package-lock.yml pins them"), "{}", run.stdout);
    ok(&dir, &["compile"]);
    assert!(compiled(&dir).contains("'1.0.0'"));
    let run = deps_with_hub(&dir, &hub, &["--upgrade"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    ok(&dir, &["compile"]);
    assert!(compiled(&dir).contains("'1.4.2'"), "{}", compiled(&dir));
}

#[test]
fn ranges_no_version_meets_are_a_conflict_naming_who_asked() {
    let hub = Hub::start();
    hub.publish("acme/widgets", &[("1.0.0", "[]"), ("1.4.2", "[]")], |d, v| widget_package(d, v, None));
    let tmp = tempfile::tempdir().unwrap();
    let dir = widget_project(
        tmp.path(),
        "packages:\n  - package: acme/widgets\n    version: [\">=1.0.0\", \"<2.0.0\"]\n  - local: vendor/tools\n",
    );
    write(&dir.join("vendor/tools/dbt_project.yml"), "name: tools\n");
    write(&dir.join("vendor/tools/packages.yml"), "packages:\n  - package: acme/widgets\n    version: \">=2.0.0\"\n");
    let run = deps_with_hub(&dir, &hub, &[]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("error[package-conflict]: no version of `acme/widgets` meets every range"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("[>=1.0.0, <2.0.0] asked by shop"), "{}", run.stderr);
    assert!(run.stderr.contains("[>=2.0.0] asked by shop → tools"), "the chain is named: {}", run.stderr);
    assert!(!dir.join("dbt_packages").exists(), "nothing is installed");
    assert!(!dir.join("package-lock.yml").exists());
}

#[test]
fn a_package_that_cannot_be_fetched_is_an_error_with_its_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = widget_project(tmp.path(), "packages:\n  - local: vendor/missing\n");
    let run = etlm(&dir, &["deps"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("error[package-fetch]: could not install local `vendor/missing`"), "{}", run.stderr);
    assert!(run.stderr.contains("packages.yml:2:"), "{}", run.stderr);
    write(&dir.join("packages.yml"), "packages:\n  - package: acme/widgets\n");
    let run = etlm(&dir, &["deps"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("`acme/widgets` has no `version:`"), "{}", run.stderr);
}

#[test]
fn a_lock_file_is_what_a_second_install_uses() {
    let (_tmp, dir) = copy_project("packages");
    let out = ok(&dir, &["deps"]);
    assert!(out.contains("installed toolkit from local `vendor/toolkit`"), "{out}");
    let lock = std::fs::read_to_string(dir.join("package-lock.yml")).unwrap();
    assert!(lock.starts_with("packages:\n  - local: vendor/toolkit\n    name: toolkit\nsha1_hash: "), "{lock}");
    let out = ok(&dir, &["deps"]);
    assert!(out.contains("as package-lock.yml pins them"), "{out}");
    assert_eq!(std::fs::read_to_string(dir.join("package-lock.yml")).unwrap(), lock);
}

#[test]
fn a_query_while_compiling_with_the_server_down_is_a_clear_error() {
    let (_tmp, dir) = copy_project("packages");
    // The models' queries are the ones looked at here; a test's query is left out.
    let schema = std::fs::read_to_string(dir.join("models/schema.yml")).unwrap();
    write(&dir.join("models/schema.yml"), &schema.replace("          - toolkit.at_most_observed_max\n", ""));
    ok(&dir, &["deps"]);
    write(
        &dir.join("profiles.yml"),
        "shopfront:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n      host: 127.0.0.1\n      port: 1\n      user: nobody\n      dbname: nothing\n      schema: shop\n",
    );
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("`statement` failed while compiling: could not open"), "{}", run.stderr);
    assert!(run.stderr.contains("models/queried.sql:3:"), "the query is pointed at: {}", run.stderr);
    assert!(!run.stderr.contains("an earlier run"), "a connection failure is not a missing relation: {}", run.stderr);
    assert!(!dir.join("target/manifest.json").exists(), "nothing is written");

    // Without the queries, the same project compiles with no server: introspection is
    // answered from compile-time lineage.
    std::fs::remove_file(dir.join("models/queried.sql")).unwrap();
    std::fs::remove_file(dir.join("models/order_ids_wide.sql")).unwrap();
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let narrow = std::fs::read_to_string(dir.join("target/compiled/models/orders_narrow.sql")).unwrap();
    assert!(narrow.starts_with("select \"id\", \"price\"\nfrom \"shop\".\"orders_priced\""), "{narrow}");
}

#[test]
fn a_tarball_package_installs_under_its_name() {
    let hub = Hub::start();
    hub.publish("acme/widgets", &[("3.1.0", "[]")], |d, v| widget_package(d, v, None));
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("{}/tarballs/acme/widgets/3.1.0.tar.gz", hub.url);
    let dir = widget_project(tmp.path(), &format!("packages:\n  - tarball: \"{url}\"\n    name: widgets\n"));
    let out = ok(&dir, &["deps"]);
    assert!(out.contains(&format!("installed widgets from tarball `{url}`")), "{out}");
    assert!(dir.join("dbt_packages/widgets/dbt_project.yml").is_file(), "the archive's top folder is the package");
    ok(&dir, &["compile"]);
    assert!(compiled(&dir).contains("'3.1.0'"), "{}", compiled(&dir));
    write(&dir.join("packages.yml"), &format!("packages:\n  - tarball: \"{url}\"\n"));
    let run = etlm(&dir, &["deps"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("name:"), "a tarball needs its name: {}", run.stderr);
}
