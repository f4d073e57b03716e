//! Git packages through the system `git`, so every URL git understands works (`https://`,
//! `ssh://`, `file://` in tests).

use std::path::Path;
use std::process::Command;

/// Clones `url` into `dir` and checks out `revision` (a branch, tag or commit; the default
/// branch when `None`). Returns the commit checked out. The clone's `.git` is removed.
pub fn fetch(url: &str, revision: Option<&str>, dir: &Path) -> Result<String, String> {
    run(Command::new("git").args(["clone", "--quiet", "--no-checkout", url]).arg(dir), url)?;
    let rev = revision.unwrap_or("HEAD");
    // A branch name resolves on the remote's copy; a tag or commit as it is.
    let target = match run(
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["rev-parse", "--verify", "--quiet"])
            .arg(format!("origin/{rev}^{{commit}}")),
        url,
    ) {
        Ok(sha) => sha,
        Err(_) => run(
            Command::new("git").arg("-C").arg(dir).args(["rev-parse", "--verify"]).arg(format!("{rev}^{{commit}}")),
            url,
        )
        .map_err(|_| format!("`{url}` has no branch, tag or commit `{rev}`"))?,
    };
    run(Command::new("git").arg("-C").arg(dir).args(["checkout", "--quiet", "--detach", &target]), url)?;
    std::fs::remove_dir_all(dir.join(".git")).map_err(|e| format!("could not tidy the clone of `{url}`: {e}"))?;
    Ok(target)
}

fn run(cmd: &mut Command, url: &str) -> Result<String, String> {
    let out = cmd
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| format!("could not run `git` for `{url}` (is git installed?): {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!("git failed for `{url}`: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}
