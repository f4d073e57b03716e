//! Installed packages: the dbt projects under `packages-install-path` (`dbt_packages/`),
//! as `etlm deps` or `dbt deps` leaves them. Each is loaded like the root project, under
//! its own name; the root project's config and vars win over a package's own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::settings::{ProjectFile, scoped_vars};
use super::{Package, files};
use crate::diagnostics::{Code, Diagnostic, SourceMap};

/// The packages installed in the project at `root`, sorted by folder. A folder without a
/// `dbt_project.yml` is not a package and is passed over; a package's `require-dbt-version`
/// never blocks.
pub fn installed(root: &Path, settings: &ProjectFile, sources: &SourceMap) -> Result<Vec<Package>, Vec<Diagnostic>> {
    let base = PathBuf::from(&settings.packages_install_path);
    let Ok(entries) = std::fs::read_dir(root.join(&base)) else { return Ok(Vec::new()) };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| base.join(e.file_name()))
        .filter(|d| root.join(d).join("dbt_project.yml").is_file())
        .collect();
    dirs.sort();
    let mut packages: Vec<Package> = Vec::new();
    let mut errors = Vec::new();
    for dir in dirs {
        let path = dir.join("dbt_project.yml");
        let text = match files::read(&root.join(&path)) {
            Ok(t) => t,
            Err(d) => {
                errors.push(d);
                continue;
            }
        };
        let file = sources.add(path, text);
        match ProjectFile::parse(file, sources) {
            // A package's own file speaks of dbt settings etlm does not read: no warnings.
            Ok((own, _)) if own.name == settings.name => errors.push(
                Diagnostic::error(
                    Code::DuplicatePackage,
                    format!("the package in `{}` has the root project's name `{}`", dir.display(), own.name),
                )
                .with_help("remove it from the packages folder, or rename one of the projects"),
            ),
            Ok((own, _)) => match packages.iter().find(|p| p.name == own.name) {
                Some(prev) => errors.push(Diagnostic::error(
                    Code::DuplicatePackage,
                    format!(
                        "two installed packages are named `{}`: `{}` and `{}`",
                        own.name,
                        prev.dir.display(),
                        dir.display()
                    ),
                )),
                None => packages.push(Package { name: own.name.clone(), dir, settings: own, vars: BTreeMap::new() }),
            },
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() { Ok(packages) } else { Err(errors) }
}

/// The vars a package's nodes see, lowest first: the package's own (global, then scoped
/// to it), the root project's globals, the root's `vars: {<package>: ...}`, `--vars`.
pub fn vars_of(package: &Package, root: &ProjectFile, cli: &BTreeMap<String, Json>) -> BTreeMap<String, Json> {
    let mut vars = scoped_vars(&package.settings.raw_vars, &package.name);
    vars.extend(scoped_vars(&root.raw_vars, &package.name));
    vars.extend(cli.iter().map(|(k, v)| (k.clone(), v.clone())));
    vars
}
