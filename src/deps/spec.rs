//! `packages.yml` / `dependencies.yml`: what the project asks for, each entry with the
//! span it was written at.

use std::path::Path;

use super::version::VersionReq;
use crate::diagnostics::{Code, Diagnostic, FileId, SourceMap, Span};
use crate::project::yaml::Yaml;

/// One entry of `packages:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec {
    /// `local: PATH`, relative to the project asking for it.
    Local { path: String },
    /// `git: URL` at `revision` (a branch, tag or commit; the default branch when absent),
    /// the package in `subdirectory` of the repository when given.
    Git { url: String, revision: Option<String>, subdirectory: Option<String> },
    /// `tarball: URL` with the package's `name`.
    Tarball { url: String, name: String },
    /// `package: owner/name` from the package hub, at a version in `version`.
    Hub { package: String, version: VersionReq },
}

impl Spec {
    /// How the entry reads in messages and the lock file's key.
    pub fn label(&self) -> String {
        match self {
            Spec::Local { path } => format!("local `{path}`"),
            Spec::Git { url, revision, .. } => match revision {
                Some(r) => format!("git `{url}` at `{r}`"),
                None => format!("git `{url}`"),
            },
            Spec::Tarball { url, .. } => format!("tarball `{url}`"),
            Spec::Hub { package, version } => format!("`{package}` {version}"),
        }
    }
}

/// An entry and where it was written.
#[derive(Clone, Debug)]
pub struct Entry {
    pub spec: Spec,
    /// The entry as written, for the lock file's hash.
    pub raw: serde_json::Value,
    pub span: Span,
}

/// The project's package file: `packages.yml`, else `dependencies.yml`; `None` when it has
/// neither (or `dependencies.yml` lists no `packages:`).
pub fn read(dir: &Path, sources: &SourceMap) -> Result<Option<(FileId, Vec<Entry>)>, Vec<Diagnostic>> {
    for name in ["packages.yml", "dependencies.yml"] {
        let path = dir.join(name);
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| vec![Diagnostic::error(Code::Io, format!("could not read `{}`: {e}", path.display()))])?;
        let file = sources.add(path, text);
        return Ok(Some((file, parse(file, sources)?)));
    }
    Ok(None)
}

/// The entries of a package file.
pub fn parse(file: FileId, sources: &SourceMap) -> Result<Vec<Entry>, Vec<Diagnostic>> {
    let yaml = Yaml::parse(file, sources).map_err(|d| vec![d])?;
    let Some(list) = yaml.get("packages") else { return Ok(Vec::new()) };
    let items = list.expect_seq("packages").map_err(|d| vec![d])?;
    let mut errors = Vec::new();
    let mut entries = Vec::new();
    for item in items {
        match entry(item) {
            Ok(spec) => entries.push(Entry { spec, raw: item.to_json(), span: item.span }),
            Err(d) => errors.push(d),
        }
    }
    if errors.is_empty() { Ok(entries) } else { Err(errors) }
}

fn entry(item: &Yaml) -> Result<Spec, Diagnostic> {
    let text = |key: &str| item.get(key).map(|v| v.expect_string(key)).transpose();
    if let Some(path) = text("local")? {
        return Ok(Spec::Local { path });
    }
    if let Some(url) = text("git")? {
        return Ok(Spec::Git { url, revision: text("revision")?, subdirectory: text("subdirectory")? });
    }
    if let Some(url) = text("tarball")? {
        let name = text("name")?.ok_or_else(|| {
            item.shape_error("a `tarball:` entry with the package's `name:`", "packages")
                .with_help("add `name: <package name>`: etlm installs the tarball under it, as dbt does")
        })?;
        return Ok(Spec::Tarball { url, name });
    }
    if let Some(package) = text("package")? {
        let version = match item.get("version") {
            Some(v) => {
                let parts = v.expect_strings("version")?;
                VersionReq::parse(&parts).map_err(|m| {
                    Diagnostic::error(Code::InvalidPackage, format!("`{package}`: {m}"))
                        .with_label(v.span, "this version")
                        .with_help("write an exact version (`1.1.1`) or ranges (`[\">=1.0.0\", \"<2.0.0\"]`)")
                })?
            }
            None => {
                return Err(Diagnostic::error(Code::InvalidPackage, format!("`{package}` has no `version:`"))
                    .with_label(item.span, "add `version:` here")
                    .with_help("the hub needs a version or range, e.g. `version: [\">=1.0.0\", \"<2.0.0\"]`"));
            }
        };
        return Ok(Spec::Hub { package, version });
    }
    Err(Diagnostic::error(Code::InvalidPackage, "a package entry needs `local:`, `git:`, `tarball:` or `package:`")
        .with_label(item.span, "this entry"))
}
