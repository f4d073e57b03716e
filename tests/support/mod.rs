//! Shared test helpers: copy a fixture project to a temp dir and run the etlm binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub mod engines;
pub mod postgres;
pub mod s3;

/// The fixture projects folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/projects")
}

/// Copies a project folder (a fixture name, or a path) into a fresh temp dir.
pub fn copy_project(name_or_path: &str) -> (tempfile::TempDir, PathBuf) {
    let src =
        if Path::new(name_or_path).is_absolute() { PathBuf::from(name_or_path) } else { fixtures().join(name_or_path) };
    let tmp = tempfile::tempdir().expect("temp dir");
    let dest = tmp.path().join(src.file_name().expect("project folder name"));
    copy_dir(&src, &dest);
    (tmp, dest)
}

/// An empty project folder `name/` in a fresh temp dir, for a test that writes its files
/// with [`write_file`].
pub fn empty_project(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join(name);
    std::fs::create_dir_all(&dir).expect("project folder");
    (tmp, dir)
}

/// Writes `text` to `dir/path`, creating its folders.
pub fn write_file(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().expect("a file path")).expect("folders");
    std::fs::write(path, text).expect("write file");
}

/// Applies a change from `tests/fixtures/diff/<change>/` to a project copy: its files
/// replace or add to the project's, and the paths listed in its `REMOVE` file are deleted.
pub fn apply_change(dir: &Path, change: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diff").join(change);
    assert!(src.is_dir(), "no change fixture {}", src.display());
    copy_dir(&src, dir);
    let remove = dir.join("REMOVE");
    if let Ok(list) = std::fs::read_to_string(&remove) {
        for path in list.lines().filter(|l| !l.trim().is_empty()) {
            std::fs::remove_file(dir.join(path.trim())).expect("a listed file exists");
        }
        std::fs::remove_file(remove).expect("remove the list");
    }
}

fn copy_dir(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).expect("create dir");
    for entry in std::fs::read_dir(src).expect("read fixture dir") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name();
        if name == "target" || name == "warehouse" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &dest.join(&name));
        } else {
            std::fs::copy(&path, dest.join(&name)).expect("copy file");
        }
    }
}

/// What a run of the binary produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `etlm <args> --project-dir <dir>` with a clean environment for profiles.
pub fn etlm(dir: &Path, args: &[&str]) -> Run {
    etlm_with(dir, args, &[])
}

/// `etlm` with extra environment variables.
pub fn etlm_with(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Run {
    let out = etlm_command(dir, args).envs(envs.iter().copied()).output().expect("run etlm");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The command `etlm` runs: the binary with `--project-dir`, no profile from the
/// environment, and the test Postgres password in `$ETLM_TEST_PGPASSWORD`.
pub fn etlm_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_etlm"));
    command
        .args(args)
        .arg("--project-dir")
        .arg(dir)
        .env_remove("ETLM_PROFILES_DIR")
        .env_remove("DBT_PROFILES_DIR")
        .env_remove("OPENLINEAGE_URL")
        .env_remove("OPENLINEAGE__TRANSPORT__TYPE")
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env("ETLM_TEST_PGPASSWORD", postgres::password());
    command
}

/// Starts `etlm <args>` with `ETLM_FAILPOINT` paused at `failpoint` and returns once it
/// is paused there.
pub fn paused_at(dir: &Path, args: &[&str], failpoint: &str) -> Child {
    paused_at_with(dir, args, &[], failpoint)
}

/// [`paused_at`] with extra environment variables.
pub fn paused_at_with(dir: &Path, args: &[&str], envs: &[(&str, &str)], failpoint: &str) -> Child {
    let mut child = etlm_command(dir, args)
        .envs(envs.iter().copied())
        .env("ETLM_FAILPOINT", format!("{failpoint}:pause"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start etlm");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines.next().expect("etlm reached the failpoint").expect("stderr line");
        if line.contains("pausing") {
            break;
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    child
}

/// Rows of a query as JSON objects, via `etlm show --format json`.
pub fn rows(dir: &Path, sql: &str) -> Vec<serde_json::Value> {
    let run = etlm(dir, &["show", "--format", "json", "--limit", "100000", sql]);
    assert_eq!(run.code, 0, "show failed: {}", run.stderr);
    run.stdout.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("JSON row")).collect()
}
