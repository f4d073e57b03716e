//! The embedded engine's folders when the disk says no (#18, matrix rows 18 and 19): a
//! full disk, a read-only folder and a missing one are clear errors; the previous
//! version stays readable and no temporary file is left. The warehouse and `target/` are
//! put on small tmpfs mounts, which needs root (CI runs as root and requires them; a
//! developer's run without it skips, saying so).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{copy_project, etlm, rows};

/// A tmpfs of `size` mounted at `at`, unmounted on drop.
struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(std::env::var("CI").is_err(), "CI must be able to mount a tmpfs (run as root)");
            eprintln!("skipped: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(Tmpfs { at: at.to_path_buf() })
    }

    fn read_only(&self) {
        let status = Command::new("mount").args(["-o", "remount,ro"]).arg(&self.at).status().unwrap();
        assert!(status.success(), "remount read-only");
    }

    /// Fills the mount up to its last few kilobytes.
    fn fill(&self) {
        let filler = self.at.join("filler");
        let _ = Command::new("dd").arg("if=/dev/zero").arg(format!("of={}", filler.display())).arg("bs=4k").output();
        assert!(filler.metadata().unwrap().len() > 0);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// `shop_basic` with its warehouse at `warehouse`.
fn project_with_warehouse(warehouse: &Path) -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = copy_project("shop_basic");
    let profile = format!(
        "shop_basic:\n  target: local\n  outputs:\n    local:\n      type: datafusion\n      path: {}\n",
        warehouse.display()
    );
    std::fs::write(dir.join("profiles.yml"), profile).unwrap();
    (tmp, dir)
}

/// Every path under `dir` (not following links), sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut paths: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    paths.sort();
    paths
}

fn temporaries(dir: &Path) -> Vec<String> {
    tree(dir).into_iter().filter(|p| p.contains(".staging") || p.contains(".tmp") || p.ends_with(".link")).collect()
}

const BIG: &str = "select value as id, repeat(md5(cast(value as varchar)), 4) as filler from range(0, {n})\n";

#[test]
fn a_full_warehouse_disk_fails_the_model_keeps_its_old_version_and_leaves_no_temporary_files() {
    let mnt = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(mnt.path(), "3m") else { return };
    let (_tmp, dir) = project_with_warehouse(&disk.at.join("warehouse"));
    std::fs::write(dir.join("models/big.sql"), BIG.replace("{n}", "1000")).unwrap();
    let first = etlm(&dir, &["build"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let before = rows(&dir, "select count(*) as n, max(id) as top from main.big");

    std::fs::write(dir.join("models/big.sql"), BIG.replace("{n}", "300000")).unwrap();
    let full = etlm(&dir, &["build"]);
    assert_eq!(full.code, 1, "{}\n{}", full.stdout, full.stderr);
    assert!(full.stdout.contains("ERROR  table main.big"), "{}", full.stdout);
    assert!(full.stdout.contains("No space left on device"), "says why: {}", full.stdout);
    assert_eq!(rows(&dir, "select count(*) as n, max(id) as top from main.big"), before, "the old version answers");
    assert_eq!(temporaries(&disk.at), Vec::<String>::new(), "no staging or temporary file is left");

    std::fs::write(dir.join("models/big.sql"), BIG.replace("{n}", "2000")).unwrap();
    let again = etlm(&dir, &["build"]);
    assert_eq!(again.code, 0, "with room again the build succeeds: {}\n{}", again.stdout, again.stderr);
    assert_eq!(rows(&dir, "select count(*) as n from main.big")[0]["n"], 2000);
}

#[test]
fn a_full_target_folder_is_an_error_before_any_write_to_the_warehouse() {
    let (_tmp, dir) = copy_project("shop_basic");
    assert_eq!(etlm(&dir, &["build"]).code, 0);
    let warehouse = tree(&dir.join("warehouse"));
    std::fs::remove_dir_all(dir.join("target")).unwrap();
    let Some(disk) = Tmpfs::mount(&dir.join("target"), "64k") else { return };
    disk.fill();
    let files = tree(&disk.at);
    std::fs::write(dir.join("models/stg_orders.sql"), "select * from {{ ref('orders') }} where amount > 1\n").unwrap();
    let run = etlm(&dir, &["build"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("No space left on device"), "{}", run.stderr);
    assert!(run.stderr.contains("target/"), "names the path: {}", run.stderr);
    // What was written is whole (files are written to a temporary name and renamed).
    assert_eq!(temporaries(&disk.at), Vec::<String>::new(), "no temporary file in target/");
    for file in tree(&disk.at).iter().filter(|f| f.ends_with(".sql")) {
        let text = std::fs::read_to_string(disk.at.join(file)).unwrap();
        let model = std::fs::read_to_string(dir.join(file.trim_start_matches("compiled/"))).unwrap();
        let model =
            model.replace("{{ ref('orders') }}", "main.orders").replace("{{ ref('stg_orders') }}", "main.stg_orders");
        assert!(!text.is_empty() && (text.trim() == model.trim() || !model.contains("ref(")), "{file}: {text}");
    }
    assert!(files.len() <= tree(&disk.at).len());
    assert_eq!(tree(&dir.join("warehouse")), warehouse, "the warehouse is untouched");
}

#[test]
fn a_read_only_warehouse_is_an_error_before_any_write() {
    let mnt = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(mnt.path(), "8m") else { return };
    let (_tmp, dir) = project_with_warehouse(&disk.at.join("warehouse"));
    assert_eq!(etlm(&dir, &["build"]).code, 0);
    let before = rows(&dir, "select * from main.customer_totals order by customer_id");
    disk.read_only();
    let run = etlm(&dir, &["build"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("error[permission-denied]"), "{}", run.stderr);
    assert!(run.stderr.contains("Read-only file system"), "{}", run.stderr);
    assert!(run.stderr.contains(&disk.at.join("warehouse").display().to_string()), "names it: {}", run.stderr);
    assert_eq!(rows(&dir, "select * from main.customer_totals order by customer_id"), before, "still readable");
}

#[test]
fn a_read_only_target_folder_is_an_error_before_any_write() {
    let (_tmp, dir) = copy_project("shop_basic");
    assert_eq!(etlm(&dir, &["build"]).code, 0);
    let warehouse = tree(&dir.join("warehouse"));
    std::fs::remove_dir_all(dir.join("target")).unwrap();
    let Some(disk) = Tmpfs::mount(&dir.join("target"), "1m") else { return };
    disk.read_only();
    let run = etlm(&dir, &["build"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("Read-only file system"), "{}", run.stderr);
    assert_eq!(tree(&dir.join("warehouse")), warehouse, "the warehouse is untouched");
}

#[test]
fn a_warehouse_whose_parent_folder_is_missing_is_an_error_and_nothing_is_created() {
    let elsewhere = tempfile::tempdir().unwrap();
    let missing = elsewhere.path().join("not_mounted/warehouse");
    let (_tmp, dir) = project_with_warehouse(&missing);
    let run = etlm(&dir, &["build"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("does not exist, and neither does its parent folder"), "{}", run.stderr);
    assert!(run.stderr.contains(&missing.display().to_string()), "{}", run.stderr);
    assert!(!elsewhere.path().join("not_mounted").exists(), "nothing is created");

    // A missing folder whose parent exists is created, as on a first run.
    std::fs::create_dir(elsewhere.path().join("not_mounted")).unwrap();
    let run = etlm(&dir, &["build"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(missing.join("main/customer_totals").exists());
}
