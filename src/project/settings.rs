//! The project file: `etlm.yml`, or `dbt_project.yml` when there is no etlm.yml.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::config::{self, ConfigLayer, entry_from_yaml, is_old_style_config, normalize_key};
use super::openlineage::OpenLineageFile;
use super::yaml::{Yaml, YamlValue};
use crate::diagnostics::{Code, Diagnostic, FileId, SourceMap, Span};
use crate::project::jinja::ConfigJinja;

/// Folder-scoped config from the project file (`models: shop: staging: +materialized: view`).
#[derive(Clone, Debug, Default)]
pub struct ConfigTree {
    pub config: ConfigLayer,
    pub children: BTreeMap<String, ConfigTree>,
}

impl ConfigTree {
    fn from_yaml(yaml: &Yaml, context: &str, errors: &mut Vec<Diagnostic>) -> ConfigTree {
        let mut tree = ConfigTree::default();
        let entries = match yaml.expect_map(context) {
            Ok(e) => e,
            Err(d) => {
                errors.push(d);
                return tree;
            }
        };
        for (key, value) in entries {
            if key.name.starts_with('+') || is_old_style_config(&key.name) {
                let name = normalize_key(&key.name);
                if config::is_known_key(&name) {
                    tree.config.insert(name, entry_from_yaml(value));
                } else {
                    errors.push(config::unknown_key(&key.name, key.span));
                }
            } else {
                let child = ConfigTree::from_yaml(value, &format!("{context}.{}", key.name), errors);
                tree.children.insert(key.name.clone(), child);
            }
        }
        tree
    }

    /// Renders the Jinja in every folder's config values (see [`config::render_layer`]).
    pub fn render(&mut self, jinja: &ConfigJinja) -> Vec<Diagnostic> {
        let mut errors = config::render_layer(&mut self.config, jinja);
        for child in self.children.values_mut() {
            errors.extend(child.render(jinja));
        }
        errors
    }

    /// The layers along `fqn` (package, folders..., name), outermost first, merged.
    pub fn resolve(&self, fqn: &[String]) -> ConfigLayer {
        let mut layers = vec![&self.config];
        let mut node = self;
        for segment in fqn {
            match node.children.get(segment) {
                Some(child) => {
                    layers.push(&child.config);
                    node = child;
                }
                None => break,
            }
        }
        config::merge(&layers)
    }
}

/// The parsed project file.
#[derive(Clone, Debug)]
pub struct ProjectFile {
    pub file: FileId,
    pub name: String,
    pub profile: Option<String>,
    pub model_paths: Vec<String>,
    pub seed_paths: Vec<String>,
    pub macro_paths: Vec<String>,
    pub test_paths: Vec<String>,
    /// Folders of `{% snapshot %}` files.
    pub snapshot_paths: Vec<String>,
    pub docs_paths: Option<Vec<String>>,
    pub target_path: String,
    /// Global vars with this project's scoped vars applied on top.
    pub vars: BTreeMap<String, Json>,
    /// `vars:` as written: globals and, under a project's or package's name, its scoped vars.
    pub raw_vars: BTreeMap<String, Json>,
    /// `packages-install-path` (dbt's default `dbt_packages`).
    pub packages_install_path: String,
    /// `dispatch:`: for a macro namespace, the packages `adapter.dispatch` searches, in order.
    pub dispatch: BTreeMap<String, Vec<String>>,
    pub models: ConfigTree,
    pub seeds: ConfigTree,
    pub snapshots: ConfigTree,
    pub tests: ConfigTree,
    /// `unit_tests:` config (`+tags`, `+enabled`) by folder, model and test name.
    pub unit_tests: ConfigTree,
    pub sources: ConfigTree,
    /// `on-run-start` / `on-run-end`: SQL (Jinja) run before and after `run`, `build`,
    /// `seed`, `test` and `backfill`, each with the span it was written at.
    pub on_run_start: Vec<(String, Span)>,
    pub on_run_end: Vec<(String, Span)>,
    /// `openlineage:`: where runs send their events (the environment can override it).
    pub openlineage: Option<OpenLineageFile>,
    /// `flags: {skip_unchanged: true}`: builds reuse what provably did not change unless
    /// `--no-skip-unchanged` says otherwise (`run::reuse`).
    pub skip_unchanged: bool,
}

const KNOWN_TOP_LEVEL: &[&str] = &[
    "analysis-paths",
    "asset-paths",
    "clean-targets",
    "config-version",
    "data-paths",
    "data_tests",
    "dispatch",
    "docs-paths",
    "exposures",
    "flags",
    "log-path",
    "macro-paths",
    "metrics",
    "model-paths",
    "models",
    "modules-path",
    "name",
    "on-run-end",
    "on-run-start",
    "openlineage",
    "packages-install-path",
    "profile",
    "query-comment",
    "quoting",
    "require-dbt-version",
    "restrict-access",
    "saved-queries",
    "seed-paths",
    "seeds",
    "semantic-models",
    "snapshot-paths",
    "snapshots",
    "source-paths",
    "sources",
    "target-path",
    "test-paths",
    "tests",
    "unit_tests",
    "vars",
    "version",
];

impl ProjectFile {
    /// Reads the project file. Every problem in it is returned at once.
    pub fn parse(file: FileId, sources: &SourceMap) -> Result<(ProjectFile, Vec<Diagnostic>), Vec<Diagnostic>> {
        let yaml = Yaml::parse(file, sources).map_err(|d| vec![d])?;
        let path = sources.file(file).path.display().to_string();
        let entries = yaml.expect_map(&path).map_err(|d| vec![d])?;
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        for (key, _) in entries {
            if KNOWN_TOP_LEVEL.binary_search(&key.name.as_str()).is_err() {
                warnings.push(
                    Diagnostic::warning(
                        Code::UnknownProjectKey,
                        format!("`{}` is not a project setting etlm knows; it is ignored", key.name),
                    )
                    .with_label(key.span, "ignored"),
                );
            }
        }
        let name = match yaml.get("name") {
            Some(v) => v.expect_string("name").map_err(|d| vec![d])?,
            None => {
                return Err(vec![
                    Diagnostic::error(Code::InvalidProject, "the project file has no `name`")
                        .with_label(yaml.span, "add `name: my_project` here"),
                ]);
            }
        };
        let paths = |key: &str, default: &[&str], errors: &mut Vec<Diagnostic>| -> Vec<String> {
            match yaml.get(key) {
                Some(v) => v.expect_strings(key).unwrap_or_else(|d| {
                    errors.push(d);
                    Vec::new()
                }),
                None => default.iter().map(|s| s.to_string()).collect(),
            }
        };
        // dbt before 1.0 called model paths `source-paths`.
        let model_paths = match yaml.get("model-paths") {
            Some(_) => paths("model-paths", &["models"], &mut errors),
            None => paths("source-paths", &["models"], &mut errors),
        };
        let seed_paths = match yaml.get("seed-paths") {
            Some(_) => paths("seed-paths", &["seeds"], &mut errors),
            None => paths("data-paths", &["seeds"], &mut errors),
        };
        let macro_paths = paths("macro-paths", &["macros"], &mut errors);
        let test_paths = paths("test-paths", &["tests"], &mut errors);
        let snapshot_paths = paths("snapshot-paths", &["snapshots"], &mut errors);
        let docs_paths = yaml.get("docs-paths").map(|_| paths("docs-paths", &[], &mut errors));
        let target_path = yaml
            .get("target-path")
            .map(|v| v.expect_string("target-path"))
            .transpose()
            .map_err(|d| vec![d])?
            .unwrap_or_else(|| "target".into());
        let profile = yaml.get("profile").map(|v| v.expect_string("profile")).transpose().map_err(|d| vec![d])?;
        let raw_vars = match yaml.get("vars").map(|v| (v, v.to_json())) {
            Some((_, Json::Object(all))) => all.into_iter().collect(),
            Some((v, _)) => {
                errors.push(v.shape_error("a mapping", "vars"));
                BTreeMap::new()
            }
            None => BTreeMap::new(),
        };
        let vars = scoped_vars(&raw_vars, &name);
        let packages_install_path = yaml
            .get("packages-install-path")
            .map(|v| v.expect_string("packages-install-path"))
            .transpose()
            .map_err(|d| vec![d])?
            .unwrap_or_else(|| "dbt_packages".into());
        let dispatch = match yaml.get("dispatch") {
            Some(v) => parse_dispatch(v, &mut errors),
            None => BTreeMap::new(),
        };
        let tree = |key: &str, errors: &mut Vec<Diagnostic>| {
            yaml.get(key).map(|v| ConfigTree::from_yaml(v, key, errors)).unwrap_or_default()
        };
        let models = tree("models", &mut errors);
        let seeds = tree("seeds", &mut errors);
        let snapshots = tree("snapshots", &mut errors);
        let tests = match yaml.get("data_tests") {
            Some(_) => tree("data_tests", &mut errors),
            None => tree("tests", &mut errors),
        };
        let source_tree = tree("sources", &mut errors);
        let unit_tests = tree("unit_tests", &mut errors);
        let run_hooks = |key: &str, errors: &mut Vec<Diagnostic>| -> Vec<(String, Span)> {
            let Some(v) = yaml.get(key) else { return Vec::new() };
            let items: Vec<&Yaml> = match &v.value {
                YamlValue::Seq(items) => items.iter().collect(),
                _ => vec![v],
            };
            items
                .into_iter()
                .filter_map(|i| i.expect_string(key).map_err(|d| errors.push(d)).ok().map(|s| (s, i.span)))
                .collect()
        };
        let on_run_start = run_hooks("on-run-start", &mut errors);
        let on_run_end = run_hooks("on-run-end", &mut errors);
        let openlineage = yaml.get("openlineage").map(|v| OpenLineageFile::parse(v, &mut errors));
        let skip_unchanged = match yaml.get("flags").and_then(|f| f.get("skip_unchanged")) {
            Some(v) => v.to_json().as_bool().unwrap_or_else(|| {
                errors.push(v.shape_error("true or false", "flags.skip_unchanged"));
                false
            }),
            None => false,
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok((
            ProjectFile {
                file,
                name,
                profile,
                model_paths,
                seed_paths,
                macro_paths,
                test_paths,
                snapshot_paths,
                docs_paths,
                target_path,
                vars,
                raw_vars,
                packages_install_path,
                dispatch,
                models,
                seeds,
                snapshots,
                tests,
                unit_tests,
                sources: source_tree,
                on_run_start,
                on_run_end,
                openlineage,
                skip_unchanged,
            },
            warnings,
        ))
    }
}

/// `vars:` may hold globals and, under a project's name, project-scoped values (dbt's
/// layout); scoped values win. The vars `project` sees.
pub fn scoped_vars(raw: &BTreeMap<String, Json>, project: &str) -> BTreeMap<String, Json> {
    let mut vars: BTreeMap<String, Json> = BTreeMap::new();
    let mut scoped = None;
    for (k, v) in raw {
        if k == project && v.is_object() {
            scoped = Some(v);
        } else {
            vars.insert(k.clone(), v.clone());
        }
    }
    if let Some(Json::Object(s)) = scoped {
        vars.extend(s.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    vars
}

/// `dispatch: [{macro_namespace: x, search_order: [a, b]}]`.
fn parse_dispatch(yaml: &Yaml, errors: &mut Vec<Diagnostic>) -> BTreeMap<String, Vec<String>> {
    let YamlValue::Seq(items) = &yaml.value else {
        errors.push(yaml.shape_error("a list of `macro_namespace` / `search_order` entries", "dispatch"));
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for item in items {
        let namespace = item.get("macro_namespace").map(|v| v.expect_string("macro_namespace"));
        let order = item.get("search_order").map(|v| v.expect_strings("search_order"));
        match (namespace, order) {
            (Some(Ok(ns)), Some(Ok(order))) => {
                out.insert(ns, order);
            }
            (Some(Err(d)), _) | (_, Some(Err(d))) => errors.push(d),
            _ => errors.push(item.shape_error("a mapping with `macro_namespace` and `search_order`", "dispatch")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_keys_are_sorted() {
        assert!(KNOWN_TOP_LEVEL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn both_config_spellings_resolve_along_the_folder_path() {
        let map = SourceMap::default();
        let text = "name: shop\nmodels:\n  shop:\n    +materialized: view\n    marts:\n      materialized: table\n      +tags: [daily]\n";
        let id = map.add("etlm.yml", text);
        let (pf, _) = ProjectFile::parse(id, &map).unwrap();
        let fqn = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let marts = pf.models.resolve(&fqn(&["shop", "marts", "orders"]));
        assert_eq!(marts["materialized"].value, "table");
        assert_eq!(marts["tags"].value, serde_json::json!(["daily"]));
        let staging = pf.models.resolve(&fqn(&["shop", "staging", "stg"]));
        assert_eq!(staging["materialized"].value, "view");
    }

    #[test]
    fn unknown_plus_key_is_an_error_with_a_suggestion() {
        let map = SourceMap::default();
        let id = map.add("etlm.yml", "name: shop\nmodels:\n  shop:\n    +materialised: table\n");
        let errs = ProjectFile::parse(id, &map).unwrap_err();
        assert_eq!(errs[0].code, "unknown-config");
        assert_eq!(errs[0].help, vec!["did you mean `materialized`?"]);
    }
}
