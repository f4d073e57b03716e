//! Project loading: finds the project file, walks the model, seed, macro and test folders,
//! reads YAML properties and docs blocks, picks the target, and hands on a typed
//! [`Project`] in which every value keeps its span.
//!
//! Nothing is rendered here: Jinja (and so in-file `config()`) belongs to `template/`.
//! Loading collects every problem it finds before it stops.

pub mod config;
mod docs_blocks;
mod files;
pub mod jinja;
pub mod openlineage;
pub mod packages;
mod profiles;
pub mod properties;
mod settings;
pub mod snapshot;
pub mod starter;
mod threshold;
pub mod unit_tests;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value as Json;

pub use self::config::{
    AnomalyConfig, ConfigLayer, Freshness, IncrementalStrategy, Materialization, NodeConfig, OnSchemaChange,
    TestSeverity,
};
pub use self::docs_blocks::DocBlock;
use self::jinja::ConfigJinja;
pub use self::profiles::{EngineKind, Target};
pub use self::properties::{ColumnProps, Description, NodeProps, SourceTableProps, TestDef};
pub use self::settings::ProjectFile;
pub use self::threshold::Threshold;
pub use self::unit_tests::UnitTestDef;
use crate::diagnostics::{Code, Collector, Diagnostic, Diagnostics, FileId, SourceMap, Span};
use crate::graph::ResourceType;

/// Environment variables, passed in rather than read, so library code stays pure.
pub type Env = BTreeMap<String, String>;

/// `env_var(name, default)`: the variable, else the default, else an error message.
pub fn env_var(env: &Env, name: &str, default: Option<&str>) -> Result<String, String> {
    match (env.get(name), default) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(d)) => Ok(d.to_string()),
        (None, None) => Err(format!("environment variable `{name}` is not set and has no default")),
    }
}

/// True for the variables dbt treats as secrets (`DBT_ENV_SECRET_*`, and etlm's
/// `ETLM_SECRET_*`): `env_var()` of them is allowed only in profiles and hooks, and
/// their values are masked in what etlm prints and records.
pub fn is_secret_var(name: &str) -> bool {
    name.starts_with("DBT_ENV_SECRET_") || name.starts_with("ETLM_SECRET_")
}

/// `text` with the value of every secret variable of `env` replaced by `*****`.
pub fn mask_secrets(env: &Env, text: &str) -> String {
    mask_env(env, text, |name, _| is_secret_var(name))
}

/// `text` with the value of every variable of `env` that `secret(name, value)` picks
/// (and that is not empty) replaced by `*****`.
pub fn mask_env(env: &Env, text: &str, secret: impl Fn(&str, &str) -> bool) -> String {
    let mut out = text.to_string();
    for value in env.iter().filter(|(k, v)| !v.is_empty() && secret(k, v)).map(|(_, v)| v) {
        out = out.replace(value.as_str(), "*****");
    }
    out
}

/// What to load.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub project_dir: PathBuf,
    /// `--target`.
    pub target: Option<String>,
    /// `--profiles-dir`: the only place `profiles.yml` is looked for when given.
    pub profiles_dir: Option<PathBuf>,
    /// `--vars`, overriding the project file's vars.
    pub vars: BTreeMap<String, Json>,
    pub env: Env,
}

/// A model file, or a snapshot block (whose `file` is its body, see `snapshot.rs`).
#[derive(Clone, Debug)]
pub struct Model {
    /// `Model` or `Snapshot`.
    pub resource_type: ResourceType,
    pub name: String,
    /// The project or package it belongs to.
    pub package: String,
    /// Relative to the project directory.
    pub path: PathBuf,
    pub file: FileId,
    /// Project name, folders under the model path, model name.
    pub fqn: Vec<String>,
    /// Config from the project file's folder tree.
    pub folder_config: ConfigLayer,
    pub props: Option<NodeProps>,
    /// What a problem with the node as a whole points at: the file's start, or the
    /// `{% snapshot %}` tag.
    pub span: Span,
}

/// A CSV seed.
#[derive(Clone, Debug)]
pub struct Seed {
    pub name: String,
    pub package: String,
    pub path: PathBuf,
    pub fqn: Vec<String>,
    pub config: NodeConfig,
    pub props: Option<NodeProps>,
    /// Span used when a problem concerns the seed as a whole (its YAML entry or file start).
    pub span: Span,
}

/// A table of a source.
#[derive(Clone, Debug)]
pub struct SourceTable {
    pub source_name: String,
    pub package: String,
    pub table: SourceTableProps,
    pub schema: String,
    pub database: Option<String>,
    pub source_description: Option<Description>,
    pub config: NodeConfig,
    pub path: PathBuf,
}

impl SourceTable {
    /// The name of the table in the warehouse.
    pub fn identifier(&self) -> &str {
        self.table.identifier.as_deref().unwrap_or(&self.table.name)
    }
}

/// A file of macros, registered as a template under its project-relative path.
#[derive(Clone, Debug)]
pub struct MacroFile {
    pub path: PathBuf,
    pub file: FileId,
    /// The project or package it belongs to.
    pub package: String,
}

/// A singular test: a query returning failing rows.
#[derive(Clone, Debug)]
pub struct SingularTest {
    pub name: String,
    pub package: String,
    pub path: PathBuf,
    pub file: FileId,
    pub fqn: Vec<String>,
    pub folder_config: ConfigLayer,
}

/// A loaded project, before any Jinja is rendered.
#[derive(Debug)]
pub struct Project {
    pub root: PathBuf,
    pub settings: ProjectFile,
    pub target: Target,
    /// Project vars with `--vars` on top.
    pub vars: BTreeMap<String, Json>,
    pub env: Env,
    /// Installed packages (`dbt_packages/`), whose models, seeds, macros and tests are
    /// loaded beside the project's own.
    pub packages: Vec<Package>,
    pub models: Vec<Model>,
    pub seeds: Vec<Seed>,
    pub sources: Vec<SourceTable>,
    pub macros: Vec<MacroFile>,
    pub singular_tests: Vec<SingularTest>,
    /// The root project's `unit_tests:`, fixture files attached.
    pub unit_tests: Vec<UnitTestDef>,
    pub docs: BTreeMap<String, DocBlock>,
    /// Warnings found while loading.
    pub warnings: Vec<Diagnostic>,
}

impl Project {
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The folder artifacts are written to (`target-path`, under the project).
    pub fn target_dir(&self) -> PathBuf {
        self.root.join(&self.settings.target_path)
    }

    /// The vars a node of `package` sees (the root project's for its own nodes).
    pub fn vars_of(&self, package: &str) -> &BTreeMap<String, Json> {
        self.packages.iter().find(|p| p.name == package).map_or(&self.vars, |p| &p.vars)
    }
}

/// An installed package: a dbt project under `packages-install-path` (`dbt_packages/`).
#[derive(Clone, Debug)]
pub struct Package {
    pub name: String,
    /// Relative to the root project.
    pub dir: PathBuf,
    pub settings: ProjectFile,
    /// The vars its nodes see: its own, then the root's globals and the root's
    /// `vars: {<package>: ...}`, then `--vars`.
    pub vars: BTreeMap<String, Json>,
}

/// Loads the project in `opts.project_dir`, with the packages installed in it.
pub fn load_project(opts: &LoadOptions, sources: &SourceMap) -> Result<Project, Diagnostics> {
    let root = opts.project_dir.clone();
    let fail = |d: Vec<Diagnostic>| Diagnostics::sorted(d, sources);
    let project_path =
        ["etlm.yml", "dbt_project.yml"].iter().map(|n| root.join(n)).find(|p| p.is_file()).ok_or_else(|| {
            fail(vec![
                Diagnostic::error(
                    Code::NoProject,
                    format!("no `etlm.yml` or `dbt_project.yml` in `{}`", root.display()),
                )
                .with_help("run etlm in a project directory or pass `--project-dir`"),
            ])
        })?;
    let text = files::read(&project_path).map_err(|d| fail(vec![d]))?;
    let project_file = sources.add(project_path.strip_prefix(&root).unwrap_or(&project_path), text);
    let (mut settings, mut warnings) = ProjectFile::parse(project_file, sources).map_err(fail)?;
    let profile = settings.profile.clone().unwrap_or_else(|| settings.name.clone());
    let target = profiles::load_target(
        &root,
        &profile,
        opts.target.as_deref(),
        opts.profiles_dir.as_deref(),
        &opts.env,
        sources,
    )
    .map_err(fail)?;
    let mut packages = packages::installed(&root, &settings, sources).map_err(fail)?;

    let mut diags = Collector::default();
    let mut vars = settings.vars.clone();
    vars.extend(opts.vars.clone());
    for package in &mut packages {
        package.vars = packages::vars_of(package, &settings, &opts.vars);
        let jinja = ConfigJinja::new(&target, settings.profile.as_deref(), &package.vars, &opts.env);
        let own = &mut package.settings;
        for tree in [&mut own.models, &mut own.seeds, &mut own.snapshots, &mut own.tests, &mut own.sources] {
            diags.extend(tree.render(&jinja));
        }
    }
    let jinja = ConfigJinja::new(&target, settings.profile.as_deref(), &vars, &opts.env);
    for tree in [
        &mut settings.models,
        &mut settings.seeds,
        &mut settings.snapshots,
        &mut settings.tests,
        &mut settings.sources,
        &mut settings.unit_tests,
    ] {
        diags.extend(tree.render(&jinja));
    }

    let mut loaded = Resources::default();
    let scope = Scope { dir: Path::new(""), own: &settings, root: None, jinja: &jinja };
    load_resources(&root, &scope, project_file, sources, &mut diags, &mut warnings, &mut loaded);
    for package in &packages {
        let pkg_jinja = ConfigJinja::new(&target, settings.profile.as_deref(), &package.vars, &opts.env);
        let scope = Scope { dir: &package.dir, own: &package.settings, root: Some(&settings), jinja: &pkg_jinja };
        load_resources(&root, &scope, project_file, sources, &mut diags, &mut warnings, &mut loaded);
    }

    warnings.extend(diags.finish(sources)?);
    let Resources { models, seeds, sources: source_tables, macros, singular_tests, unit_tests, docs } = loaded;
    Ok(Project {
        root,
        settings,
        target,
        vars,
        env: opts.env.clone(),
        packages,
        models,
        seeds,
        sources: source_tables,
        macros,
        singular_tests,
        unit_tests,
        docs,
        warnings,
    })
}

/// One project's place in the load: the root project, or a package under it.
struct Scope<'a> {
    /// The project's folder, relative to the root project ("" for the root itself).
    dir: &'a Path,
    own: &'a ProjectFile,
    /// For a package: the root project, whose `models: <package>:` blocks override the
    /// package's own config.
    root: Option<&'a ProjectFile>,
    jinja: &'a ConfigJinja,
}

impl Scope<'_> {
    /// Folder config along `fqn`: the package's own, then the root project's on top.
    fn resolve(&self, tree: impl Fn(&ProjectFile) -> &settings::ConfigTree, fqn: &[String]) -> ConfigLayer {
        match self.root {
            Some(root) => config::merge(&[&tree(self.own).resolve(fqn), &tree(root).resolve(fqn)]),
            None => tree(self.own).resolve(fqn),
        }
    }
}

/// Everything loaded from the root project and its packages.
#[derive(Default)]
struct Resources {
    models: Vec<Model>,
    seeds: Vec<Seed>,
    sources: Vec<SourceTable>,
    macros: Vec<MacroFile>,
    singular_tests: Vec<SingularTest>,
    unit_tests: Vec<UnitTestDef>,
    docs: BTreeMap<String, DocBlock>,
}

/// Walks one project's folders and reads its files and YAML into `out`.
fn load_resources(
    root: &Path,
    scope: &Scope<'_>,
    project_file: FileId,
    sources: &SourceMap,
    diags: &mut Collector,
    warnings: &mut Vec<Diagnostic>,
    out: &mut Resources,
) {
    let settings = scope.own;
    let tree = files::walk(root, scope.dir, settings, sources, diags);
    warnings.extend(tree.unsupported.iter().map(files::Unsupported::warning));

    let mut model_props: BTreeMap<String, NodeProps> = BTreeMap::new();
    let mut seed_props: BTreeMap<String, NodeProps> = BTreeMap::new();
    let mut snapshot_props: BTreeMap<String, NodeProps> = BTreeMap::new();
    let mut source_props = Vec::new();
    let mut unit_tests: Vec<UnitTestDef> = Vec::new();
    // Parsed in parallel, gathered in file order so diagnostics and merges are stable.
    let parsed: Vec<_> = tree
        .property_files
        .par_iter()
        .map(|(yml, _)| {
            let mut file = properties::PropertyFile::parse(*yml, sources)?;
            match file.render(scope.jinja) {
                errors if errors.is_empty() => Ok(file),
                errors => Err(errors),
            }
        })
        .collect();
    for ((_, path), parsed) in tree.property_files.iter().zip(parsed) {
        match parsed {
            Ok(mut pf) => {
                warnings.append(&mut pf.warnings);
                for (list, target_map, kind) in [
                    (pf.models, &mut model_props, "model"),
                    (pf.seeds, &mut seed_props, "seed"),
                    (pf.snapshots, &mut snapshot_props, "snapshot"),
                ] {
                    for props in list {
                        if let Some(prev) = target_map.get(&props.name) {
                            diags.push(
                                Diagnostic::error(
                                    Code::DuplicateProperties,
                                    format!("{kind} `{}` is described twice", props.name),
                                )
                                .with_label(props.span, "described again here")
                                .with_label(prev.span, "first described here"),
                            );
                        } else {
                            target_map.insert(props.name.clone(), props);
                        }
                    }
                }
                source_props.extend(pf.sources.into_iter().map(|s| (s, path.clone())));
                unit_tests.append(&mut pf.unit_tests);
            }
            Err(errors) => diags.extend(errors),
        }
    }

    let project_name = settings.name.clone();
    let mut models: Vec<Model> = tree
        .models
        .into_iter()
        .map(|f| {
            let fqn = fqn_of(&project_name, &f.rel_to_resource_dir);
            let name = fqn.last().expect("fqn ends with the name").clone();
            Model {
                resource_type: ResourceType::Model,
                folder_config: scope.resolve(|p| &p.models, &fqn),
                props: model_props.remove(&name),
                package: project_name.clone(),
                name,
                path: f.path,
                file: f.file,
                span: Span::file_start(f.file),
                fqn,
            }
        })
        .collect();
    for f in tree.snapshots {
        let blocks = match snapshot::blocks(f.file, sources) {
            Ok(blocks) => blocks,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        for block in blocks {
            // As dbt: the file's folders and name, then the snapshot's.
            let mut fqn = fqn_of(&project_name, &f.rel_to_resource_dir);
            fqn.push(block.name.clone());
            models.push(Model {
                resource_type: ResourceType::Snapshot,
                folder_config: scope.resolve(|p| &p.snapshots, &fqn),
                props: snapshot_props.remove(&block.name),
                package: project_name.clone(),
                file: sources.add(f.path.clone(), block.body),
                name: block.name,
                path: f.path.clone(),
                span: block.span,
                fqn,
            });
        }
    }
    // Snapshots defined in YAML (dbt 1.9): `relation:` instead of a block.
    for (name, props) in std::mem::take(&mut snapshot_props) {
        let Some((relation, span)) = props.relation.clone() else {
            snapshot_props.insert(name, props);
            continue;
        };
        let yaml = sources.file(span.file);
        let Some(body) = snapshot::relation_body(&yaml.text, &relation, span) else {
            diags.push(
                Diagnostic::error(
                    Code::YamlShape,
                    format!("snapshot `{name}`: `relation` must be a block-style value"),
                )
                .with_label(span, "write `relation: ref('name')` on a line of its own"),
            );
            continue;
        };
        let mut fqn = fqn_of(&project_name, &yaml.path);
        fqn.pop();
        fqn.push(name.clone());
        models.push(Model {
            resource_type: ResourceType::Snapshot,
            folder_config: scope.resolve(|p| &p.snapshots, &fqn),
            package: project_name.clone(),
            file: sources.add(yaml.path.clone(), body),
            path: yaml.path.clone(),
            name,
            span: props.span,
            props: Some(props),
            fqn,
        });
    }
    for (name, props) in &snapshot_props {
        warnings.push(
            Diagnostic::warning(
                Code::UnmatchedProperties,
                format!("properties for snapshot `{name}`, but none has that name"),
            )
            .with_label(props.span, "no `{% snapshot %}` block defines it"),
        );
    }
    for (name, props) in &model_props {
        if seed_props.contains_key(name) {
            continue;
        }
        warnings.push(
            Diagnostic::warning(
                Code::UnmatchedProperties,
                format!("properties for `{name}`, but no model has that name"),
            )
            .with_label(props.span, "no `.sql` file defines this model"),
        );
    }
    check_duplicates(&models, &tree.seeds, diags);
    out.models.extend(models);

    for f in tree.seeds {
        let fqn = fqn_of(&project_name, &f.rel_to_resource_dir);
        let name = fqn.last().expect("fqn ends with the name").clone();
        let props = seed_props.remove(&name);
        let folder = scope.resolve(|p| &p.seeds, &fqn);
        let layer = match &props {
            Some(p) => config::merge(&[&folder, &p.config]),
            None => folder,
        };
        let span = props.as_ref().map_or(Span::file_start(project_file), |p| p.span);
        match NodeConfig::from_layer(&layer, config::ConfigFor::Seed) {
            Ok(config) if config.enabled => {
                out.seeds.push(Seed { name, package: project_name.clone(), path: f.path, fqn, config, props, span })
            }
            Ok(_) => {}
            Err(e) => diags.extend(e),
        }
    }

    for (src, path) in source_props {
        for table in &src.tables {
            let fqn = vec![project_name.clone(), src.name.clone(), table.name.clone()];
            let layer = config::merge(&[&scope.resolve(|p| &p.sources, &fqn), &src.config, &table.config]);
            match NodeConfig::from_layer(&layer, config::ConfigFor::Source) {
                Ok(config) if config.enabled => out.sources.push(SourceTable {
                    source_name: src.name.clone(),
                    package: project_name.clone(),
                    table: table.clone(),
                    schema: src.schema.clone().unwrap_or_else(|| src.name.clone()),
                    database: src.database.clone(),
                    source_description: src.description.clone(),
                    config,
                    path: path.clone(),
                }),
                Ok(_) => {}
                Err(e) => diags.extend(e),
            }
        }
    }

    out.singular_tests.extend(tree.tests.into_iter().map(|f| {
        let fqn = fqn_of(&project_name, &f.rel_to_resource_dir);
        SingularTest {
            name: fqn.last().expect("fqn ends with the name").clone(),
            package: project_name.clone(),
            folder_config: scope.resolve(|p| &p.tests, &fqn),
            path: f.path,
            file: f.file,
            fqn,
        }
    }));
    // Unit tests are the root project's; a package's test its models where it is developed.
    if scope.root.is_none() {
        // By file name: `orders.csv` for a csv fixture named `orders`.
        let fixtures: BTreeMap<String, FileId> = tree
            .fixtures
            .iter()
            .map(|f| (f.path.file_name().unwrap_or_default().to_string_lossy().into_owned(), f.file))
            .collect();
        diags.extend(unit_tests::attach_fixtures(&mut unit_tests, &fixtures, sources));
        out.unit_tests.append(&mut unit_tests);
    }
    out.macros.extend(tree.macros.into_iter().map(|f| MacroFile {
        path: f.path,
        file: f.file,
        package: project_name.clone(),
    }));

    for file in tree.docs_files {
        match docs_blocks::parse(file, sources) {
            Ok(blocks) => {
                for block in blocks {
                    if let Some(prev) = out.docs.get(&block.name) {
                        // The root project's block of a name wins over a package's.
                        if scope.root.is_some() {
                            continue;
                        }
                        let prev: &DocBlock = prev;
                        diags.push(
                            Diagnostic::error(
                                Code::DuplicateDocs,
                                format!("docs block `{}` is defined twice", block.name),
                            )
                            .with_label(block.span, "defined again here")
                            .with_label(prev.span, "first defined here"),
                        );
                    } else {
                        out.docs.insert(block.name.clone(), block);
                    }
                }
            }
            Err(d) => diags.push(d),
        }
    }
}

/// `[project, folders..., name]` from a path relative to its resource folder.
fn fqn_of(project: &str, rel: &Path) -> Vec<String> {
    let mut fqn = vec![project.to_string()];
    fqn.extend(rel.parent().into_iter().flat_map(|p| p.iter()).map(|s| s.to_string_lossy().into_owned()));
    fqn.push(rel.file_stem().unwrap_or_default().to_string_lossy().into_owned());
    fqn
}

fn check_duplicates(models: &[Model], seeds: &[files::SeedFound], diags: &mut Collector) {
    let mut seen: BTreeMap<&str, (&Path, Span)> = BTreeMap::new();
    let seed_names: Vec<(String, &files::SeedFound)> =
        seeds.iter().map(|s| (s.path.file_stem().unwrap_or_default().to_string_lossy().into_owned(), s)).collect();
    for m in models {
        if let Some((prev_path, prev_span)) = seen.get(m.name.as_str()) {
            diags.push(
                Diagnostic::error(Code::DuplicateModel, format!("two models are named `{}`", m.name))
                    .with_label(Span::file_start(m.file), "defined here")
                    .with_label(*prev_span, "and here")
                    .with_note(format!("`{}` and `{}` both define it", prev_path.display(), m.path.display()))
                    .with_help("model names are unique across the project: rename one file"),
            );
        } else {
            seen.insert(&m.name, (&m.path, Span::file_start(m.file)));
        }
    }
    for (name, seed) in &seed_names {
        if let Some((prev_path, prev_span)) = seen.get(name.as_str()) {
            diags.push(
                Diagnostic::error(Code::DuplicateModel, format!("a model and a seed are both named `{name}`"))
                    .with_label(*prev_span, "this model")
                    .with_note(format!("`{}` and `{}` both define it", prev_path.display(), seed.path.display()))
                    .with_help("`ref()` could not tell them apart: rename one"),
            );
        }
    }
}
