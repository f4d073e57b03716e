//! `etlm init [DIR]`: writes a starter project (`project::starter`) that `etlm build`
//! builds at once. Existing files are never overwritten without asking: on a terminal
//! etlm asks, elsewhere (or with `--non-interactive`) it stops, unless `--force`. Every
//! file is staged before the first is put in place.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use super::{GlobalArgs, Outcome};
use crate::diagnostics::{Code, Diagnostic};
use crate::disk::stage_with;
use crate::project::starter::{project_name, starter_files};
use crate::report::Output;

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The folder to create the project in (default: `--project-dir`, else the current one).
    pub dir: Option<PathBuf>,
    /// Never ask: stop when a file would be overwritten (unless `--force`).
    #[arg(long)]
    pub non_interactive: bool,
    /// Overwrite existing files without asking.
    #[arg(long)]
    pub force: bool,
}

pub fn run(global: &GlobalArgs, args: &InitArgs, out: &Output) -> Result<Outcome, Vec<Diagnostic>> {
    let dir = args.dir.clone().unwrap_or_else(|| global.project_dir.clone());
    let name = project_name(&dir);
    let files = starter_files(&dir, &name);
    // A dbt project in the folder would be shadowed by the new etlm.yml.
    let mut existing: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).filter(|p| p.exists()).collect();
    existing.extend([dir.join("dbt_project.yml")].into_iter().filter(|p| p.exists()));
    if !existing.is_empty() && !args.force {
        let list: Vec<String> = existing.iter().map(|p| format!("`{}`", p.display())).collect();
        let interactive = !args.non_interactive && std::io::stdin().is_terminal();
        if !interactive
            || !ask(&format!(
                "{} already exist{}; overwrite? [y/N] ",
                list.join(", "),
                if list.len() == 1 { "s" } else { "" }
            ))
        {
            return Err(vec![
                Diagnostic::error(
                    Code::ProjectExists,
                    format!("`{}` already holds {}", dir.display(), list.join(", ")),
                )
                .with_note("nothing was written")
                .with_help("choose another folder, or pass `--force` to overwrite them"),
            ]);
        }
    }
    let mut staged = Vec::with_capacity(files.len());
    for (path, text) in &files {
        staged.push(stage_with(path, |f| f.write_all(text.as_bytes())).map_err(|d| vec![d])?);
    }
    for file in staged {
        file.publish().map_err(|d| vec![d])?;
    }
    out.summary(
        &format!(
            "created the project `{name}` in {} ({} files)\nnext: etlm build --project-dir {}",
            dir.display(),
            files.len(),
            dir.display()
        ),
        serde_json::json!({"project": name, "dir": dir, "files": files.iter().map(|(p, _)| p).collect::<Vec<_>>()}),
    );
    Ok(Outcome::Success)
}

/// Asks a yes/no question on the terminal.
fn ask(question: &str) -> bool {
    let mut err = std::io::stderr();
    let _ = write!(err, "{question}");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok()
        && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
