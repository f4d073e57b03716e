//! The objects models see in Jinja: relations (`this`, `ref()` results), the per-render
//! recorder, `config`, `exceptions` and `adapter`.

use crate::project::jinja::map_value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use minijinja::value::{Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};
use serde_json::Value as Json;

use crate::relation::Relation;

/// A relation in Jinja: renders as `"schema"."identifier"`, with dbt's attributes.
#[derive(Clone, Debug)]
pub struct RelationValue {
    pub relation: Relation,
    /// Rendered instead of the relation: an ephemeral model's CTE name, or for a
    /// windowed model's refs the relation filtered to the batch's window.
    pub cte: Option<String>,
}

/// The attributes a relation shows as a mapping (dbt's relations are mappings, which
/// packages check: `obj is mapping and obj.metadata.type.endswith('Relation')`).
const RELATION_KEYS: &[&str] = &["database", "schema", "identifier", "metadata", "path", "type"];

impl Object for RelationValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Str(RELATION_KEYS)
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let r = &self.relation;
        let database = || r.database.clone().map_or(Value::from(()), Value::from);
        match key.as_str()? {
            "schema" => Some(Value::from(r.schema.clone())),
            "identifier" | "name" | "table" | "alias" => Some(Value::from(r.identifier.clone())),
            "database" => Some(database()),
            "is_table" | "is_view" | "is_cte" | "is_materialized_view" => Some(Value::from(false)),
            "type" => Some(Value::from(())),
            "metadata" => Some(map_value([("type", Value::from("EtlmRelation"))])),
            "path" => Some(map_value([
                ("database", database()),
                ("schema", Value::from(r.schema.clone())),
                ("identifier", Value::from(r.identifier.clone())),
            ])),
            _ => None,
        }
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "render" | "quote" => Ok(Value::from_safe_string(self.to_string())),
            // `include(schema=False)` leaves parts out of the rendered name.
            "include" => {
                let (kwargs,): (minijinja::value::Kwargs,) = minijinja::value::from_args(args)?;
                let keep = |k: &str| -> Result<bool, Error> { Ok(kwargs.get::<Option<bool>>(k)?.unwrap_or(true)) };
                let (_, schema, identifier) = (keep("database")?, keep("schema")?, keep("identifier")?);
                let r = &self.relation;
                let parts: Vec<String> = [schema.then(|| &r.schema), identifier.then(|| &r.identifier)]
                    .into_iter()
                    .flatten()
                    .map(|p| crate::relation::quote_ident(p))
                    .collect();
                Ok(Value::from_safe_string(parts.join(".")))
            }
            // `incorporate(path={...}, type=...)` / `replace_path(...)`: the relation with
            // parts replaced.
            "incorporate" | "replace_path" => {
                let (kwargs,): (minijinja::value::Kwargs,) = minijinja::value::from_args(args)?;
                let mut relation = self.relation.clone();
                let path: Option<Value> = if method == "incorporate" { kwargs.get("path")? } else { None };
                let _ = kwargs.get::<Option<Value>>("type")?;
                let part = |k: &str| -> Result<Option<String>, Error> {
                    let v = match &path {
                        Some(p) => p.get_attr(k).ok().filter(|v| !v.is_undefined()),
                        None => kwargs.get::<Option<Value>>(k)?,
                    };
                    Ok(v.filter(|v| !v.is_none()).map(|v| v.to_string()))
                };
                if let Some(schema) = part("schema")? {
                    relation.schema = schema;
                }
                if let Some(identifier) = part("identifier")? {
                    relation.identifier = identifier;
                }
                if let Some(database) = part("database")? {
                    relation.database = Some(database);
                }
                Ok(Value::from_object(RelationValue { relation, cte: self.cte.clone() }))
            }
            // dbt's `information_schema('columns')`: the catalog view in the relation's database.
            "information_schema" => {
                let (view,): (Option<String>,) = minijinja::value::from_args(args)?;
                let mut name = match &self.relation.database {
                    Some(db) => format!("{}.information_schema", crate::relation::quote_ident(db)),
                    None => "information_schema".to_string(),
                };
                if let Some(view) = view {
                    name = format!("{name}.{view}");
                }
                Ok(Value::from_safe_string(name))
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("relations have no method `{method}`"))),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result
    where
        Self: Sized + 'static,
    {
        match &self.cte {
            Some(cte) => f.write_str(cte),
            None => write!(f, "{}", self.relation),
        }
    }
}

impl std::fmt::Display for RelationValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.cte {
            Some(cte) => f.write_str(cte),
            None => write!(f, "{}", self.relation),
        }
    }
}

/// A `ref()` as written: optional package and the node name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RefCall {
    pub package: Option<String>,
    pub name: String,
}

/// What one render recorded: calls to `ref`, `source`, `config`, `var`, macros, `log`.
#[derive(Debug, Default)]
pub struct Recorded {
    pub refs: Vec<RefCall>,
    pub sources: Vec<(String, String)>,
    pub config: Vec<(String, Json)>,
    pub vars: BTreeSet<String>,
    pub macros: BTreeSet<String>,
    pub logs: Vec<String>,
    /// Whether the render asked for a relation's columns (`adapter.get_columns_in_relation`):
    /// its output may change once upstream columns are known.
    pub introspected: bool,
    /// Whether a relation it asked for the columns of was unknown.
    pub unknown_columns: bool,
    /// `statement` results by name, for `load_result`.
    pub statements: BTreeMap<String, Value>,
    /// Whether a query it ran failed on the target.
    pub query_failed: bool,
}

/// Resolves `ref` and `source` to relations during the compile pass.
pub trait Resolver: Send + Sync + std::fmt::Debug {
    /// The relation (or ephemeral CTE) a ref points at; `None` if it does not exist.
    fn resolve_ref(&self, call: &RefCall) -> Option<RelationValue>;
    fn resolve_source(&self, source: &str, table: &str) -> Option<Relation>;

    /// What `source()` renders as: the relation, unless a resolver stands something else
    /// in for it (a unit test's given rows).
    fn resolve_source_value(&self, source: &str, table: &str) -> Option<RelationValue> {
        self.resolve_source(source, table).map(|relation| RelationValue { relation, cte: None })
    }

    /// What `this` renders as instead of its relation, if anything (a unit test's given
    /// rows of the model itself).
    fn this_cte(&self) -> Option<String> {
        None
    }

    /// The columns (name, type if known) of a relation etlm builds or reads, as far as the
    /// compile knows them; `None` when it does not know the relation.
    fn columns(&self, _relation: &Relation) -> Option<Vec<(String, Option<String>)>> {
        None
    }
    /// What runs `run_query` and `statement` while compiling, when the command has one.
    fn querier(&self) -> Option<&dyn super::adapter::Querier> {
        None
    }
}

/// Parse mode records calls and renders placeholders; compile mode resolves them.
#[derive(Debug, Clone)]
pub enum Mode {
    Parse,
    Compile { resolver: Arc<dyn Resolver>, is_incremental: bool },
}

/// The per-render state, reachable from functions as the context variable `__etlm`.
#[derive(Debug)]
pub struct Recorder {
    pub mode: Mode,
    /// The node's effective config, for `config.get()` in compile mode.
    pub config: BTreeMap<String, Json>,
    pub recorded: Mutex<Recorded>,
    pub returned: Mutex<Option<Value>>,
    /// The schema placeholders use in parse mode.
    pub default_schema: String,
    /// A unit test's overrides of vars, env vars and macros.
    pub overrides: Option<Arc<crate::project::unit_tests::Overrides>>,
    /// Rendering a hook, where secret environment variables may be read.
    pub hook: bool,
}

impl Object for Recorder {}

impl Recorder {
    /// The recorder of the render `state` belongs to.
    pub fn of(state: &State<'_, '_>) -> Result<Arc<Recorder>, Error> {
        state
            .lookup(RECORDER)
            .and_then(|v| v.downcast_object::<Recorder>())
            .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "called outside a model render"))
    }

    pub fn record(&self, f: impl FnOnce(&mut Recorded)) {
        f(&mut self.recorded.lock().expect("recorder lock poisoned"));
    }

    pub fn is_compile(&self) -> bool {
        matches!(self.mode, Mode::Compile { .. })
    }
}

/// The context variable holding the [`Recorder`].
pub const RECORDER: &str = "__etlm";

/// The error `return()` raises to unwind a macro; its value waits in the recorder.
pub const RETURN_SENTINEL: &str = "__etlm_return__";

/// `config`: callable to set config (`{{ config(materialized='table') }}`), with
/// `config.get(key, default)` and `config.require(key)` to read it.
#[derive(Debug)]
pub struct ConfigObject;

impl Object for ConfigObject {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let recorder = Recorder::of(state)?;
        let (kwargs,): (minijinja::value::Kwargs,) = minijinja::value::from_args(args)?;
        let mut entries = Vec::new();
        for key in kwargs.args() {
            let value: Value = kwargs.get(key)?;
            let json =
                serde_json::to_value(&value).map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))?;
            entries.push((key.to_string(), json));
        }
        recorder.record(|r| r.config.extend(entries));
        Ok(Value::from(""))
    }

    fn call_method(self: &Arc<Self>, state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let recorder = Recorder::of(state)?;
        let (key, default): (String, Option<Value>) = minijinja::value::from_args(args)?;
        let found = recorder.config.get(&key).cloned().or_else(|| {
            let rec = recorder.recorded.lock().expect("recorder lock poisoned");
            rec.config.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
        });
        match (method, found) {
            ("get", Some(v)) | ("require", Some(v)) => Ok(crate::project::jinja::to_value(&v)),
            ("get", None) => Ok(default.unwrap_or(Value::from(()))),
            ("require", None) => {
                Err(Error::new(ErrorKind::InvalidOperation, format!("required config `{key}` is not set")))
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("config has no method `{method}`"))),
        }
    }
}

/// `exceptions.raise_compiler_error(msg)` and `exceptions.warn(msg)`.
#[derive(Debug)]
pub struct Exceptions;

impl Object for Exceptions {
    fn call_method(self: &Arc<Self>, state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let (message,): (String,) = minijinja::value::from_args(args)?;
        match method {
            "raise_compiler_error" => Err(Error::new(ErrorKind::InvalidOperation, message)),
            "warn" => {
                Recorder::of(state)?.record(|r| r.logs.push(message));
                Ok(Value::from(""))
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("exceptions has no method `{method}`"))),
        }
    }
}

/// `dbt` and `dbt_utils`: the project's and the built-in macros by name, so
/// `dbt.date_trunc(...)` and `dbt_utils.generate_surrogate_key(...)` call them.
#[derive(Debug)]
pub struct MacroNamespace(pub BTreeMap<String, Value>);

impl Object for MacroNamespace {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0.get(key.as_str()?).cloned()
    }

    fn call_method(self: &Arc<Self>, state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match self.0.get(method) {
            Some(callable) => callable.call(state, args),
            // Not `UnknownMethod`: that would hand the call to the Python-methods fallback,
            // whose message knows nothing of packages.
            None => Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "no macro `{method}` in this namespace: etlm has dbt's cross-database macros, dbt_utils' \
                     `generate_surrogate_key` and `surrogate_key` (when no dbt_utils package is installed), the \
                     project's own, and the macros of the packages in `dbt_packages/` (`etlm deps` installs them)"
                ),
            )),
        }
    }
}

/// A macro namespace (`dbt`, `dbt_utils`) with some of its macros replaced by a unit
/// test's overrides (`dbt_utils.current_timestamp: "'2024-01-01'"`).
#[derive(Debug)]
pub struct OverriddenNamespace {
    pub inner: Option<Value>,
    pub overrides: BTreeMap<String, Value>,
}

impl Object for OverriddenNamespace {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        self.overrides
            .get(name)
            .cloned()
            .or_else(|| self.inner.as_ref()?.get_attr(name).ok().filter(|v| !v.is_undefined()))
    }

    fn call_method(self: &Arc<Self>, state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match (self.overrides.get(method), &self.inner) {
            (Some(callable), _) => callable.call(state, args),
            (None, Some(inner)) => inner.call_method(state, method, args),
            (None, None) => Err(Error::new(ErrorKind::InvalidOperation, format!("no macro `{method}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use minijinja::value::Value;

    use super::RelationValue;
    use crate::relation::Relation;

    #[test]
    fn a_relation_names_its_information_schema() {
        let mut env = minijinja::Environment::new();
        let mut relation = Relation::new("shop", "orders");
        env.add_global("plain", Value::from_object(RelationValue { relation: relation.clone(), cte: None }));
        relation.database = Some("warehouse".into());
        env.add_global("in_db", Value::from_object(RelationValue { relation, cte: None }));
        let text = "{{ plain.information_schema('columns') }} {{ in_db.information_schema('tables') }}";
        assert_eq!(
            env.render_str(text, ()).unwrap(),
            "information_schema.columns \"warehouse\".information_schema.tables"
        );
    }
}
