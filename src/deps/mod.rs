//! `etlm deps`: installs the packages of `packages.yml` (or `dependencies.yml`) into
//! `packages-install-path` (`dbt_packages/`), with their own dependencies, and writes
//! `package-lock.yml`; a lock written for the same entries is installed as it is.
//!
//! Everything is fetched into a staging folder beside the install folder, which replaces
//! the old one only once every package arrived: a failed fetch leaves the previous
//! install as it was, never half of a new one.

mod git;
mod hub;
pub mod lock;
mod spec;
mod version;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use self::lock::Pinned;
use self::spec::Spec;
use self::version::VersionReq;
use crate::diagnostics::{Code, Diagnostic, SourceMap, Span};
use crate::project::{Env, ProjectFile};

/// What to install.
#[derive(Clone, Debug)]
pub struct DepsOptions {
    pub project_dir: PathBuf,
    /// Resolve the package file again even when the lock file matches it.
    pub upgrade: bool,
    /// The environment: `ETLM_PACKAGE_HUB_URL` / `DBT_PACKAGE_HUB_URL` name another hub.
    pub env: Env,
}

/// What `etlm deps` did.
#[derive(Debug)]
pub struct DepsReport {
    /// Each installed package's name and what it was installed from.
    pub installed: Vec<(String, String)>,
    /// Installed from `package-lock.yml` as it was.
    pub from_lock: bool,
    /// The install folder, relative to the project.
    pub install_path: String,
}

/// Installs the project's packages.
pub fn install(opts: &DepsOptions, sources: &SourceMap) -> Result<DepsReport, Vec<Diagnostic>> {
    let root = &opts.project_dir;
    let settings = project_settings(root, sources)?;
    let install_path = settings.packages_install_path.clone();
    let install_dir = root.join(&install_path);
    let Some((_, entries)) = spec::read(root, sources)? else {
        return Ok(DepsReport { installed: Vec::new(), from_lock: false, install_path });
    };
    let hash = lock::hash(&entries.iter().map(|e| e.raw.clone()).collect::<Vec<_>>());
    sweep(&install_dir);
    let stage = sibling(&install_dir, "etlm-new");
    std::fs::create_dir_all(&stage).map_err(|e| vec![io_error(&stage, e)])?;
    let hub = opts
        .env
        .get("ETLM_PACKAGE_HUB_URL")
        .or_else(|| opts.env.get("DBT_PACKAGE_HUB_URL"))
        .cloned()
        .unwrap_or_else(|| hub::DEFAULT_HUB.to_string());
    let locked = if opts.upgrade { None } else { lock::read(root, &hash, sources)? };
    let from_lock = locked.is_some();
    let mut fetcher = Fetcher { root, stage: &stage, hub: &hub, sources, count: 0 };
    let result = match locked {
        Some(pinned) => fetcher.install_pinned(pinned),
        None => fetcher.resolve(&settings.name, &entries),
    };
    let pinned = match result {
        Ok(p) => p,
        Err(d) => {
            let _ = std::fs::remove_dir_all(&stage);
            return Err(d);
        }
    };
    swap(&stage, &install_dir).map_err(|e| vec![io_error(&install_dir, e)])?;
    let lock_path = root.join(lock::FILE_NAME);
    let temp = sibling(&lock_path, "etlm-new");
    std::fs::write(&temp, lock::render(&pinned, &hash))
        .and_then(|()| std::fs::rename(&temp, &lock_path))
        .map_err(|e| vec![io_error(&lock_path, e)])?;
    let installed = pinned.iter().map(|p| (p.name.clone(), p.spec.label())).collect();
    Ok(DepsReport { installed, from_lock, install_path })
}

fn project_settings(root: &Path, sources: &SourceMap) -> Result<ProjectFile, Vec<Diagnostic>> {
    let path = ["etlm.yml", "dbt_project.yml"].iter().map(|n| root.join(n)).find(|p| p.is_file()).ok_or_else(|| {
        vec![Diagnostic::error(Code::NoProject, format!("no `etlm.yml` or `dbt_project.yml` in `{}`", root.display()))]
    })?;
    let text = std::fs::read_to_string(&path).map_err(|e| vec![io_error(&path, e)])?;
    let file = sources.add(path.strip_prefix(root).unwrap_or(&path), text);
    Ok(ProjectFile::parse(file, sources)?.0)
}

/// A folder beside `dir` named for this process: `<dir>.<what>-<pid>`.
fn sibling(dir: &Path, what: &str) -> PathBuf {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dir.with_file_name(format!("{name}.{what}-{}", std::process::id()))
}

/// Removes what an earlier `etlm deps` that died left beside the install folder.
fn sweep(install_dir: &Path) {
    let (Some(parent), Some(name)) = (install_dir.parent(), install_dir.file_name()) else { return };
    let prefix = format!("{}.etlm-", name.to_string_lossy());
    for entry in std::fs::read_dir(parent).into_iter().flatten().filter_map(Result::ok) {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Puts the staged install in place of the old one.
fn swap(stage: &Path, install_dir: &Path) -> std::io::Result<()> {
    let old = sibling(install_dir, "etlm-old");
    let had_old = install_dir.exists();
    if had_old {
        std::fs::rename(install_dir, &old)?;
    }
    if let Err(e) = std::fs::rename(stage, install_dir) {
        if had_old {
            std::fs::rename(&old, install_dir)?;
        }
        return Err(e);
    }
    if had_old {
        // Not following links: a local package is a link to the user's own folder.
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}

fn io_error(path: &Path, e: std::io::Error) -> Diagnostic {
    Diagnostic::error(Code::Io, format!("`{}`: {e}", path.display()))
}

/// A package asked for, by whom (the chain of projects that led to it), from where.
struct Want {
    spec: Spec,
    chain: Vec<String>,
    /// The folder of the project asking, which a `local:` path is relative to.
    from: PathBuf,
    span: Option<Span>,
}

/// One package fetched into the staging folder.
struct Fetched {
    name: String,
    pinned: Spec,
    deps: Vec<spec::Entry>,
    /// Where its files are: the staged folder, or a local package's own folder.
    dir: PathBuf,
}

struct Fetcher<'a> {
    root: &'a Path,
    stage: &'a Path,
    hub: &'a str,
    sources: &'a SourceMap,
    count: usize,
}

impl Fetcher<'_> {
    /// Installs exactly what a lock file lists.
    fn install_pinned(&mut self, pinned: Vec<Pinned>) -> Result<Vec<Pinned>, Vec<Diagnostic>> {
        let mut out = Vec::new();
        for p in pinned {
            let release = match &p.spec {
                Spec::Hub { package, version } => Some(self.release(package, version, &[], None)?),
                _ => None,
            };
            let fetched = self.fetch(&p.spec, self.root, release.as_ref(), None)?;
            out.push(Pinned { name: fetched.name, spec: fetched.pinned });
        }
        Ok(out)
    }

    /// Resolves the entries and everything they depend on, fetching as it goes.
    fn resolve(&mut self, project: &str, entries: &[spec::Entry]) -> Result<Vec<Pinned>, Vec<Diagnostic>> {
        let mut queue: VecDeque<Want> = entries
            .iter()
            .map(|e| Want {
                spec: e.spec.clone(),
                chain: vec![project.to_string()],
                from: self.root.to_path_buf(),
                span: Some(e.span),
            })
            .collect();
        let mut installed: BTreeMap<String, (Spec, Vec<String>)> = BTreeMap::new();
        let mut asked: Vec<Spec> = Vec::new();
        let mut hub_wants: Vec<(String, VersionReq, Vec<String>, Option<Span>)> = Vec::new();
        while let Some(want) = queue.pop_front() {
            if let Spec::Hub { package, version } = &want.spec {
                hub_wants.push((package.clone(), version.clone(), want.chain, want.span));
                continue;
            }
            if asked.contains(&want.spec) {
                continue;
            }
            asked.push(want.spec.clone());
            let fetched = self.fetch(&want.spec, &want.from, None, want.span)?;
            self.record(&mut installed, &fetched, &want.chain, want.span)?;
            let mut chain = want.chain.clone();
            chain.push(fetched.name.clone());
            queue.extend(fetched.deps.into_iter().map(|e| Want {
                spec: e.spec,
                chain: chain.clone(),
                from: fetched.dir.clone(),
                span: None,
            }));
        }
        // Hub packages: the newest version meeting every range asked for, with the
        // ranges the chosen versions ask for in turn, until the choice settles.
        let mut chosen: BTreeMap<String, hub::Release> = BTreeMap::new();
        for _ in 0..50 {
            let mut wants = hub_wants.clone();
            for (package, release) in &chosen {
                for dep in &release.packages {
                    if let Spec::Hub { package: p, version } = dep {
                        let chain = vec![format!("{package} {}", release.version)];
                        wants.push((p.clone(), version.clone(), chain, None));
                    }
                }
            }
            let mut next = BTreeMap::new();
            let mut by_package: BTreeMap<&str, Vec<&(String, VersionReq, Vec<String>, Option<Span>)>> = BTreeMap::new();
            for w in &wants {
                by_package.entry(w.0.as_str()).or_default().push(w);
            }
            for (package, asks) in by_package {
                let combined = asks.iter().fold(VersionReq::default(), |acc, w| acc.and(&w.1));
                let release = self.release(package, &combined, &asks, asks.iter().find_map(|w| w.3))?;
                next.insert(package.to_string(), release);
            }
            let settled = next.len() == chosen.len()
                && next.iter().all(|(p, r)| chosen.get(p).is_some_and(|c| c.version == r.version));
            chosen = next;
            if settled {
                break;
            }
        }
        for (package, release) in &chosen {
            let spec = Spec::Hub { package: package.clone(), version: VersionReq::default() };
            let fetched = self.fetch(&spec, self.root, Some(release), None)?;
            self.record(&mut installed, &fetched, &[format!("{package} {}", release.version)], None)?;
        }
        Ok(installed.into_iter().map(|(name, (spec, _))| Pinned { name, spec }).collect())
    }

    /// Notes a fetched package; the same name from two different places is a conflict.
    fn record(
        &self,
        installed: &mut BTreeMap<String, (Spec, Vec<String>)>,
        fetched: &Fetched,
        chain: &[String],
        span: Option<Span>,
    ) -> Result<(), Vec<Diagnostic>> {
        match installed.get(&fetched.name) {
            Some((prev, prev_chain)) if *prev != fetched.pinned => {
                let mut d = Diagnostic::error(
                    Code::PackageConflict,
                    format!(
                        "package `{}` is asked for twice, from different places: {} (by {}) and {} (by {})",
                        fetched.name,
                        prev.label(),
                        prev_chain.join(" → "),
                        fetched.pinned.label(),
                        chain.join(" → ")
                    ),
                )
                .with_help("ask for one version of the package in every packages.yml, or pin it in the root project's");
                if let Some(span) = span {
                    d = d.with_label(span, "asked for here");
                }
                Err(vec![d])
            }
            Some(_) => Ok(()),
            None => {
                installed.insert(fetched.name.clone(), (fetched.pinned.clone(), chain.to_vec()));
                Ok(())
            }
        }
    }

    /// The newest release of a hub package meeting `version`, or the conflict naming who
    /// asked for what.
    fn release(
        &self,
        package: &str,
        version: &VersionReq,
        asks: &[&(String, VersionReq, Vec<String>, Option<Span>)],
        span: Option<Span>,
    ) -> Result<hub::Release, Vec<Diagnostic>> {
        let releases = hub::releases(self.hub, package).map_err(|m| {
            let mut d =
                Diagnostic::error(Code::PackageFetch, format!("could not read the hub's index of `{package}`: {m}"))
                    .with_help("check the package name and the network; `ETLM_PACKAGE_HUB_URL` names another hub");
            if let Some(span) = span {
                d = d.with_label(span, "asked for here");
            }
            vec![d]
        })?;
        match version.best(releases.iter().map(|r| &r.version)) {
            Some(best) => Ok(releases.iter().find(|r| &r.version == best).expect("best is one of them").clone()),
            None => {
                let mut d = if asks.len() > 1 {
                    let who: Vec<String> =
                        asks.iter().map(|(_, v, chain, _)| format!("{v} asked by {}", chain.join(" → "))).collect();
                    Diagnostic::error(
                        Code::PackageConflict,
                        format!("no version of `{package}` meets every range: {}", who.join("; ")),
                    )
                } else {
                    Diagnostic::error(Code::PackageFetch, format!("the hub has no version of `{package}` in {version}"))
                };
                let mut listed: Vec<String> = releases.iter().map(|r| r.version.to_string()).collect();
                listed.sort();
                d = d.with_note(format!("the hub lists: {}", listed.join(", ")));
                if let Some(span) = span {
                    d = d.with_label(span, "asked for here");
                }
                Err(vec![d])
            }
        }
    }

    /// Fetches one package into the staging folder.
    fn fetch(
        &mut self,
        spec: &Spec,
        from: &Path,
        release: Option<&hub::Release>,
        span: Option<Span>,
    ) -> Result<Fetched, Vec<Diagnostic>> {
        self.count += 1;
        let tmp = self.stage.join(format!(".fetch-{}", self.count));
        let fail = |m: String| {
            let mut d = Diagnostic::error(Code::PackageFetch, format!("could not install {}: {m}", spec.label()));
            if let Some(span) = span {
                d = d.with_label(span, "asked for here");
            }
            vec![d]
        };
        let (pinned, dir) = match spec {
            Spec::Local { path } => {
                let target = from.join(path);
                let target = target.canonicalize().map_err(|e| fail(format!("`{}`: {e}", target.display())))?;
                std::os::unix::fs::symlink(&target, &tmp).map_err(|e| fail(e.to_string()))?;
                (spec.clone(), target)
            }
            Spec::Git { url, revision, subdirectory } => {
                let clone = self.stage.join(format!(".clone-{}", self.count));
                let sha = git::fetch(url, revision.as_deref(), &clone).map_err(fail)?;
                let inner = match subdirectory {
                    Some(sub) => clone.join(sub),
                    None => clone.clone(),
                };
                if !inner.is_dir() {
                    return Err(fail(format!(
                        "the repository has no folder `{}`",
                        subdirectory.as_deref().unwrap_or("")
                    )));
                }
                std::fs::rename(&inner, &tmp).map_err(|e| fail(e.to_string()))?;
                if clone.exists() {
                    std::fs::remove_dir_all(&clone).map_err(|e| fail(e.to_string()))?;
                }
                let pinned = Spec::Git { url: url.clone(), revision: Some(sha), subdirectory: subdirectory.clone() };
                (pinned, tmp.clone())
            }
            Spec::Tarball { url, .. } => {
                hub::fetch_tarball(url, &tmp).map_err(fail)?;
                (spec.clone(), tmp.clone())
            }
            Spec::Hub { package, .. } => {
                let release = release.expect("hub packages are fetched with their release");
                hub::fetch_tarball(&release.tarball, &tmp).map_err(fail)?;
                let exact = VersionReq::parse(&[release.version.to_string()]).expect("a version reads back");
                (Spec::Hub { package: package.clone(), version: exact }, tmp.clone())
            }
        };
        let project = project_settings(&dir, self.sources)
            .map_err(|d| fail(format!("it is not a dbt project: {}", d.first().map_or("", |d| d.message.as_str()))))?;
        let name = match spec {
            Spec::Tarball { name, .. } => name.clone(),
            _ => project.name.clone(),
        };
        let deps = spec::read(&dir, self.sources)?.map(|(_, e)| e).unwrap_or_default();
        let placed = self.stage.join(&name);
        if !placed.exists() {
            std::fs::rename(&tmp, &placed).map_err(|e| fail(e.to_string()))?;
        } else {
            let _ = std::fs::remove_file(&tmp).or_else(|_| std::fs::remove_dir_all(&tmp));
        }
        let dir = if matches!(spec, Spec::Local { .. }) { dir } else { placed };
        Ok(Fetched { name, pinned, deps, dir })
    }
}
