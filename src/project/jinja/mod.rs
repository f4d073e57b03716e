//! The bare Jinja of loading: config values of the project file and YAML properties,
//! and `profiles.yml` values, render here with `target`, `var` and `env_var` only, in an
//! environment with Python's string and list methods (`python.rs`) and lists and dicts
//! that change in place (`mutable.rs`). The model renderer
//! (`crate::template`) builds on the same pieces.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind};
use serde_json::Value as Json;

pub mod mutable;
pub mod python;

use super::{Env, Target, env_var};

/// The `target` global: the active target's name, schema, type, database, threads, user
/// and profile name.
pub fn target_value(target: &Target, profile: Option<&str>) -> Value {
    let setting = |key: &str| target.settings.get(key).and_then(Json::as_str).map_or(Value::from(()), Value::from);
    map_value([
        ("name", Value::from(target.name.clone())),
        ("schema", Value::from(target.schema.clone())),
        ("type", Value::from(target.engine.as_str())),
        ("database", target.database.clone().map_or(Value::from(()), Value::from)),
        ("threads", Value::from(target.threads.unwrap_or(1))),
        ("user", setting("user")),
        ("host", setting("host")),
        ("profile_name", Value::from(profile.unwrap_or_default().to_string())),
    ])
}

/// `var(name, default)`: the var, else the default, else an error.
pub fn var_value(vars: &BTreeMap<String, Json>, name: &str, default: Option<Value>) -> Result<Value, Error> {
    match (vars.get(name), default) {
        (Some(v), _) => Ok(to_value(v)),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(Error::new(
            ErrorKind::UndefinedError,
            format!(
                "required var `{name}` is not set; pass it with --vars or set it under `vars:` in the project file"
            ),
        )),
    }
}

/// Any serializable value as a Jinja value.
pub fn to_value<T: serde::Serialize>(value: T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

/// A Jinja mapping of `pairs`.
pub fn map_value(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    Value::from(pairs.into_iter().collect::<BTreeMap<&str, Value>>())
}

/// `env_var(name, default)` over `vars`; secret variables only where `secrets` allows.
fn add_env_var(env: &mut Environment<'static>, vars: &Env, secrets: bool) {
    let vars = Arc::new(vars.clone());
    env.add_function("env_var", move |name: String, default: Option<String>| -> Result<String, Error> {
        if !secrets && super::is_secret_var(&name) {
            let message = format!("`{name}` is a secret: `env_var()` of it is allowed only in profiles.yml and hooks");
            return Err(Error::new(ErrorKind::InvalidOperation, message));
        }
        env_var(&vars, &name, default.as_deref()).map_err(|m| Error::new(ErrorKind::InvalidOperation, m))
    });
}

/// The environment `profiles.yml` values render in: only `env_var` is known there.
pub fn profile_jinja(vars: &Env) -> Environment<'static> {
    let mut env = python::environment();
    add_env_var(&mut env, vars, true);
    env
}

/// Renders the Jinja in config values of the project file and YAML properties
/// (`+enabled: "{{ target.name != 'prod' }}"`) when they are read, as dbt does: `target`,
/// `var` and `env_var` are known there, nothing about a node.
pub struct ConfigJinja {
    env: Environment<'static>,
}

impl ConfigJinja {
    pub fn new(target: &Target, profile: Option<&str>, vars: &BTreeMap<String, Json>, env_vars: &Env) -> ConfigJinja {
        let mut env = python::environment();
        env.add_global("target", target_value(target, profile));
        let vars = Arc::new(vars.clone());
        env.add_function("var", move |name: String, default: Option<Value>| var_value(&vars, &name, default));
        add_env_var(&mut env, env_vars, false);
        ConfigJinja { env }
    }

    /// Whether `text` has Jinja to render.
    pub fn holds_jinja(text: &str) -> bool {
        text.contains("{{") || text.contains("{%")
    }

    /// The value `text` renders to, read as dbt reads a rendered config value: `true` /
    /// `false` (any case) and numbers become themselves, `none` and nothing become null,
    /// anything else stays text. `text` without Jinja is returned as it is.
    pub fn render(&self, text: &str) -> Result<Json, String> {
        if !Self::holds_jinja(text) {
            return Ok(Json::String(text.to_string()));
        }
        let rendered = self.env.render_str(text, ()).map_err(|e| match e.detail() {
            Some(detail) => format!("{}: {detail}", e.kind()),
            None => e.kind().to_string(),
        })?;
        let trimmed = rendered.trim();
        Ok(match trimmed.to_ascii_lowercase().as_str() {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            "none" | "" => Json::Null,
            _ => match serde_json::from_str::<serde_json::Number>(trimmed) {
                Ok(n) => Json::Number(n),
                Err(_) => Json::String(rendered),
            },
        })
    }
}
