//! Targets: where models are built. `profiles.yml` is looked up as dbt does (see
//! `profile_candidates`); without one, the target is the embedded engine (DataFusion over
//! Parquet in `warehouse/`, schema `main`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::Env;
use super::yaml::Yaml;
use crate::diagnostics::{Code, Diagnostic, SourceMap, Span};
use crate::sql::SqlDialect;

/// Which engine a target runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// DataFusion over Parquet files (`type: local`).
    Local,
    Postgres,
    /// DataFusion over Delta Lake tables (`type: delta`, `location:`).
    Delta,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Local => "local",
            EngineKind::Postgres => "postgres",
            EngineKind::Delta => "delta",
        }
    }

    /// The prefixes `adapter.dispatch` tries, in order (dbt's adapter and its parents, then
    /// `default`). The embedded engine's SQL is DataFusion's, which reads Postgres'
    /// spellings, so a package's `postgres__` variant serves it when it has no `local__`.
    /// Delta Lake tables are read and written by the same DataFusion SQL.
    pub fn dispatch_prefixes(self) -> &'static [&'static str] {
        match self {
            EngineKind::Local => &["local", "postgres", "default"],
            EngineKind::Delta => &["delta", "local", "postgres", "default"],
            EngineKind::Postgres => &["postgres", "default"],
        }
    }

    /// The SQL dialect the target's compiled SQL is parsed and typed in.
    pub fn dialect(self) -> SqlDialect {
        match self {
            EngineKind::Local | EngineKind::Delta => SqlDialect::DataFusion,
            EngineKind::Postgres => SqlDialect::Postgres,
        }
    }
}

/// The active target.
#[derive(Clone)]
pub struct Target {
    pub name: String,
    pub engine: EngineKind,
    pub schema: String,
    pub database: Option<String>,
    pub threads: Option<usize>,
    /// Every other setting (host, port, path...), rendered; may hold secrets, never printed.
    pub settings: BTreeMap<String, Json>,
    /// Where the target came from, for messages.
    pub origin: Option<PathBuf>,
    /// The project directory: relative settings (the embedded warehouse's `path`)
    /// resolve against it.
    pub project_dir: PathBuf,
}

/// Shows the names of the settings, never their values (a password is one of them).
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("engine", &self.engine)
            .field("schema", &self.schema)
            .field("database", &self.database)
            .field("threads", &self.threads)
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .field("origin", &self.origin)
            .field("project_dir", &self.project_dir)
            .finish()
    }
}

impl Target {
    /// The embedded engine's default target, used when no profile exists.
    pub fn embedded(project_dir: &Path) -> Target {
        Target {
            name: "dev".to_string(),
            engine: EngineKind::Local,
            schema: "main".into(),
            database: None,
            threads: None,
            settings: BTreeMap::new(),
            origin: None,
            project_dir: project_dir.to_path_buf(),
        }
    }
}

/// Where `profiles.yml` is looked for, in order: `--profiles-dir` alone when given;
/// else the project directory, `$ETLM_PROFILES_DIR`, `$DBT_PROFILES_DIR`, then the home
/// folders `~/.etlm/` and `~/.dbt/`. A home file is used only when it defines the profile
/// (it may hold other projects' profiles).
fn profile_candidates(project_dir: &Path, profiles_dir: Option<&Path>, env: &Env) -> Vec<(PathBuf, bool)> {
    if let Some(dir) = profiles_dir {
        return vec![(dir.join("profiles.yml"), false)];
    }
    let mut candidates = vec![(project_dir.join("profiles.yml"), false)];
    for var in ["ETLM_PROFILES_DIR", "DBT_PROFILES_DIR"] {
        if let Some(dir) = env.get(var) {
            candidates.push((Path::new(dir).join("profiles.yml"), false));
        }
    }
    if let Some(home) = env.get("HOME") {
        for dir in [".etlm", ".dbt"] {
            candidates.push((Path::new(home).join(dir).join("profiles.yml"), true));
        }
    }
    candidates
}

/// Whether the YAML text of a profiles file has `profile_name` as a top-level key.
fn defines_profile(text: &str, profile_name: &str) -> bool {
    text.lines().any(|line| {
        let key = line.split(':').next().unwrap_or("");
        !line.starts_with([' ', '\t', '#', '-']) && key.trim().trim_matches(['"', '\'']) == profile_name
    })
}

/// Finds `profiles.yml` and picks the target. `target_name` is `--target`; without a
/// profiles file it must be absent (the embedded default), since a target nobody defines
/// must not build somewhere else.
pub fn load_target(
    project_dir: &Path,
    profile_name: &str,
    target_name: Option<&str>,
    profiles_dir: Option<&Path>,
    env: &Env,
    sources: &SourceMap,
) -> Result<Target, Vec<Diagnostic>> {
    let candidates = profile_candidates(project_dir, profiles_dir, env);
    let found = candidates.iter().find_map(|(path, needs_profile)| {
        let text = std::fs::read_to_string(path).ok()?;
        (!needs_profile || defines_profile(&text, profile_name)).then(|| (path.clone(), text))
    });
    let Some((path, text)) = found else {
        if let Some(name) = target_name {
            let looked: Vec<String> = candidates.iter().map(|(p, _)| format!("`{}`", p.display())).collect();
            return Err(vec![
                Diagnostic::error(
                    Code::UnknownTarget,
                    format!("`--target {name}` is defined by no profiles.yml: no profile `{profile_name}` was found"),
                )
                .with_help(format!(
                    "looked in {}; without `--target` (and without a profiles.yml) etlm builds on the embedded engine",
                    looked.join(", ")
                )),
            ]);
        }
        return Ok(Target::embedded(project_dir));
    };
    let shown = path.strip_prefix(project_dir).map_or(path.clone(), Path::to_path_buf);
    let file = sources.add(shown.clone(), text);
    let yaml = Yaml::parse(file, sources).map_err(|d| vec![d])?;
    let Some(profile) = yaml.get(profile_name) else {
        let names: Vec<String> = yaml.as_map().unwrap_or(&[]).iter().map(|(k, _)| k.name.clone()).collect();
        return Err(vec![
            Diagnostic::error(Code::UnknownProfile, format!("`{}` has no profile `{profile_name}`", shown.display()))
                .with_label(yaml.span, "profiles are the top-level keys of this file")
                .with_help(format!("profiles here: {}; the project file's `profile:` picks one", names.join(", "))),
        ]);
    };
    let outputs =
        profile.get("outputs").ok_or_else(|| vec![profile.shape_error("a mapping with `outputs:`", profile_name)])?;
    let default_target = profile.get("target").map(|t| t.expect_string("target")).transpose().map_err(|d| vec![d])?;
    let name = target_name.map(str::to_string).or(default_target).unwrap_or_else(|| "dev".into());
    let Some(output) = outputs.get(&name) else {
        let names: Vec<String> = outputs.as_map().unwrap_or(&[]).iter().map(|(k, _)| format!("`{}`", k.name)).collect();
        return Err(vec![
            Diagnostic::error(Code::UnknownTarget, format!("profile `{profile_name}` has no target `{name}`"))
                .with_label(outputs.span, "targets are listed here")
                .with_help(format!("targets: {}", names.join(", "))),
        ]);
    };
    let mut settings = BTreeMap::new();
    for (key, value) in output.expect_map(&name).map_err(|d| vec![d])? {
        let json = render_env_vars(value.to_json(), env, value.span)?;
        settings.insert(key.name.clone(), json);
    }
    let engine = match settings.remove("type").as_ref().and_then(Json::as_str) {
        None | Some("local") | Some("datafusion") => EngineKind::Local,
        Some("postgres") => EngineKind::Postgres,
        Some("delta") => EngineKind::Delta,
        Some(other) => {
            let span = output.get("type").map_or(output.span, |t| t.span);
            return Err(vec![
                Diagnostic::error(Code::InvalidTarget, format!("unknown target type `{other}`"))
                    .with_label(span, "expected `local`, `postgres` or `delta`"),
            ]);
        }
    };
    if engine == EngineKind::Delta {
        check_delta_target(&settings, output.get("location").map_or(output.span, |l| l.span))?;
    }
    let schema = settings
        .remove("schema")
        .and_then(|s| s.as_str().map(str::to_string))
        .unwrap_or_else(|| if engine == EngineKind::Postgres { "public".into() } else { "main".into() });
    let database = settings.get("dbname").or(settings.get("database")).and_then(Json::as_str).map(str::to_string);
    let threads = settings.remove("threads").and_then(|t| t.as_u64()).map(|t| t as usize);
    let project_dir = project_dir.to_path_buf();
    Ok(Target { name, engine, schema, database, threads, settings, origin: Some(shown), project_dir })
}

/// A Delta Lake target needs this etlm built with them, and a `location:` folder.
fn check_delta_target(settings: &BTreeMap<String, Json>, span: Span) -> Result<(), Vec<Diagnostic>> {
    let refuse = |message: String, label: &str, help: &str| {
        Err(vec![Diagnostic::error(Code::InvalidTarget, message).with_label(span, label).with_help(help)])
    };
    if !cfg!(feature = "delta") {
        return refuse(
            "this etlm was built without Delta Lake support".into(),
            "a `type: delta` target",
            "build etlm with `cargo build --release --features delta`",
        );
    }
    if let Some(kept) = settings.get("keep_versions")
        && kept.as_u64().is_none_or(|k| k < 2)
    {
        return refuse(
            format!("`keep_versions: {kept}` must be a whole number of versions, 2 or more"),
            "in this target",
            "`keep_versions: 10` keeps each table's current version and the nine before it",
        );
    }
    match settings.get("location").and_then(Json::as_str) {
        None | Some("") => refuse(
            "a `type: delta` target needs `location:`".into(),
            "in this target",
            "`location: delta` keeps the tables in the folder `delta/` beside the project",
        ),
        Some(url) if url.contains("://") && !url.starts_with("s3://") => refuse(
            format!("`{url}`: of object stores, Delta tables can be on S3 only (`s3://bucket/prefix`)"),
            "this location",
            "use `s3://bucket/prefix`, or a folder on this machine (`location: delta`)",
        ),
        Some(_) => Ok(()),
    }
}

/// Renders `{{ env_var('NAME') }}` and `{{ env_var('NAME', 'default') }}` in profile strings.
fn render_env_vars(value: Json, env: &Env, span: Span) -> Result<Json, Vec<Diagnostic>> {
    match value {
        Json::String(s) if s.contains("{{") => {
            let rendered = super::jinja::profile_jinja(env).render_str(&s, ()).map_err(|e| {
                vec![
                    Diagnostic::error(
                        Code::ProfileRender,
                        format!("could not render a profile value: {}", e.detail().unwrap_or("error")),
                    )
                    .with_label(span, "in this value"),
                ]
            })?;
            Ok(Json::String(rendered))
        }
        other => Ok(other),
    }
}
