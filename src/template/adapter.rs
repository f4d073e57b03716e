//! `adapter` and `api` as packages use them: `dispatch` along the project's search order,
//! and introspection answered from what etlm knows at compile time (the columns of seeds,
//! sources and models, see `Resolver::columns`), with no database. Calls that need one
//! (`run_query`, `statement`) say so where they are made.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::{Kwargs, Object, ObjectRepr, Value, from_args};
use minijinja::{Error, ErrorKind, State};

use super::objects::{Mode, Recorder, RelationValue};
use crate::project::jinja::{map_value, to_value};
use crate::relation::Relation;

/// What `adapter.dispatch` searches, as dbt does: for a namespace, the packages of the
/// project's `dispatch:` entry, else the root project then the namespace itself (when it
/// is the root, `dbt` or an installed package), else every macro by its plain name; in
/// each, `<engine>__name` then `default__name`.
#[derive(Debug)]
pub struct Dispatch {
    pub root: String,
    pub search_order: BTreeMap<String, Vec<String>>,
    /// Each package's macros by name; the root project's under its name and etlm's
    /// built-in ones under `dbt`.
    pub packages: BTreeMap<String, BTreeMap<String, Value>>,
    /// `<engine>`, then `default`.
    pub prefixes: Vec<String>,
}

impl Dispatch {
    /// The macro `name` dispatches to, or an error listing every name tried.
    pub fn find(&self, state: &State<'_, '_>, name: &str, namespace: Option<&str>) -> Result<Value, Error> {
        if let Some((ns, macro_name)) = name.split_once('.') {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "adapter.dispatch got the macro name `{name}`, but `.` is not part of a macro name: did you \
                     mean `adapter.dispatch('{macro_name}', macro_namespace='{ns}')`?"
                ),
            ));
        }
        let search: Vec<Option<&str>> = match namespace {
            None => vec![None],
            Some(ns) => match self.search_order.get(ns) {
                Some(order) => order.iter().map(|p| Some(p.as_str())).collect(),
                None if self.packages.contains_key(ns) => vec![Some(self.root.as_str()), Some(ns)],
                None => vec![None],
            },
        };
        let mut attempts = Vec::new();
        for package in search {
            for prefix in &self.prefixes {
                let candidate = format!("{prefix}__{name}");
                let found = match package {
                    None => state.lookup(&candidate).filter(|v| !v.is_undefined()),
                    Some(p) => self.packages.get(p).and_then(|m| m.get(&candidate)).cloned(),
                };
                attempts.push(match package {
                    None => format!("`{candidate}`"),
                    Some(p) => format!("`{p}.{candidate}`"),
                });
                if let Some(found) = found {
                    return Ok(found);
                }
            }
        }
        // etlm's own dispatchers also reach a plain macro of the name.
        if let Some(plain) = state.lookup(name).filter(|v| !v.is_undefined() && namespace.is_none()) {
            return Ok(plain);
        }
        Err(Error::new(
            ErrorKind::UnknownFunction,
            format!(
                "no macro `{name}` to dispatch to in namespace `{}`; searched {}",
                namespace.unwrap_or("(none)"),
                attempts.join(", ")
            ),
        ))
    }
}

/// `adapter`: `quote(name)` and `dispatch(macro_name, macro_namespace)`.
#[derive(Debug)]
pub struct Adapter {
    pub engine: &'static str,
    pub dispatch: Arc<Dispatch>,
}

impl Adapter {
    /// The columns of the relation `value` names, as Column objects (empty in parse mode,
    /// or when etlm cannot know them).
    fn columns(&self, state: &State<'_, '_>, value: &Value) -> Result<Value, Error> {
        let recorder = Recorder::of(state)?;
        let Mode::Compile { resolver, .. } = &recorder.mode else { return Ok(Value::from(Vec::<Value>::new())) };
        let Some(relation) = relation_of(value) else {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("get_columns_in_relation needs a relation (a `ref()`, `source()` or `this`), not `{value}`"),
            ));
        };
        let known = resolver.columns(&relation);
        recorder.record(|r| {
            r.introspected = true;
            r.unknown_columns |= known.is_none();
        });
        let columns = known.unwrap_or_default();
        let list = columns.into_iter().map(|(name, data_type)| Value::from_object(Column { name, data_type }));
        Ok(crate::project::jinja::mutable::MutList::new(list.collect()))
    }
}

/// A relation etlm knows of (`get_relation`, `load_relation`), else none.
fn known_relation(state: &State<'_, '_>, relation: Relation) -> Result<Value, Error> {
    let recorder = Recorder::of(state)?;
    let Mode::Compile { resolver, .. } = &recorder.mode else { return Ok(Value::from(())) };
    let known = resolver.columns(&relation);
    recorder.record(|r| {
        r.introspected = true;
        r.unknown_columns |= known.is_none();
    });
    Ok(match known {
        Some(_) => Value::from_object(RelationValue { relation, cte: None }),
        None => Value::from(()),
    })
}

/// `load_relation(relation)` (and `adapter.load_relation`): the relation if etlm knows it.
pub fn load_relation(state: &State<'_, '_>, relation: Value) -> Result<Value, Error> {
    match relation_of(&relation) {
        Some(r) => known_relation(state, r),
        None => Ok(Value::from(())),
    }
}

/// The relation a Jinja value names: a relation object, or `"schema"."name"` text.
pub fn relation_of(value: &Value) -> Option<Relation> {
    if let Some(r) = value.downcast_object_ref::<RelationValue>() {
        return Some(r.relation.clone());
    }
    let text = value.as_str()?.to_string();
    let parts: Vec<String> = text.split('.').map(|p| p.trim().trim_matches('"').to_string()).collect();
    match parts.as_slice() {
        [schema, name] => Some(Relation::new(schema.clone(), name.clone())),
        [database, schema, name] => {
            Some(Relation { database: Some(database.clone()), schema: schema.clone(), identifier: name.clone() })
        }
        _ => None,
    }
}

/// A column as `adapter.get_columns_in_relation` returns it: `name`/`column`, `quoted`,
/// `data_type`/`dtype`, and dbt's `is_string()`, `is_number()`... tests.
#[derive(Debug)]
pub struct Column {
    pub name: String,
    pub data_type: Option<String>,
}

impl Column {
    fn type_is(&self, words: &[&str]) -> bool {
        let t = self.data_type.as_deref().unwrap_or("").to_ascii_lowercase();
        words.iter().any(|w| t.starts_with(w))
    }
}

impl Object for Column {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "name" | "column" => Some(Value::from(self.name.clone())),
            "quoted" => Some(Value::from(crate::relation::quote_ident(&self.name))),
            "data_type" | "dtype" => Some(self.data_type.clone().map_or(Value::from(()), Value::from)),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        let yes = match method {
            "is_string" => self.type_is(&["text", "varchar", "character", "char", "string", "utf8"]),
            "is_number" | "is_numeric" => {
                self.type_is(&["int", "bigint", "smallint", "numeric", "decimal", "double", "float", "real"])
            }
            "is_integer" => self.type_is(&["int", "bigint", "smallint"]),
            "is_float" => self.type_is(&["double", "float", "real"]),
            // The declared length of a `varchar(n)`, else dbt's 256 for text of no length.
            "string_size" => {
                let t = self.data_type.as_deref().unwrap_or("");
                let size = t.split_once('(').and_then(|(_, r)| r.trim_end_matches(')').trim().parse::<i64>().ok());
                return Ok(Value::from(size.unwrap_or(256)));
            }
            _ => return Err(Error::new(ErrorKind::UnknownMethod, format!("columns have no method `{method}`"))),
        };
        Ok(Value::from(yes))
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<Column {} ({})>", self.name, self.data_type.as_deref().unwrap_or("unknown"))
    }
}

/// `api`: `api.Relation.create(database=, schema=, identifier=)` and `api.Column`.
#[derive(Debug)]
pub struct Api;

impl Object for Api {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "Relation" => Some(Value::from_object(RelationFactory)),
            _ => None,
        }
    }
}

/// `api.Relation`.
#[derive(Debug)]
pub struct RelationFactory;

impl Object for RelationFactory {
    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "create" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                let text = |k: &str| -> Result<Option<String>, Error> {
                    Ok(kwargs.get::<Option<Value>>(k)?.filter(|v| !v.is_none()).map(|v| v.to_string()))
                };
                let relation = Relation {
                    database: text("database")?,
                    schema: text("schema")?.unwrap_or_default(),
                    identifier: text("identifier")?.unwrap_or_default(),
                };
                let _ = kwargs.get::<Option<Value>>("type")?;
                let _ = kwargs.get::<Option<Value>>("quote_policy")?;
                Ok(Value::from_object(RelationValue { relation, cte: None }))
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("api.Relation has no method `{method}`"))),
        }
    }
}

/// Runs queries for `run_query` and `{% call statement() %}` while a project compiles:
/// the command that compiles hands one in (it opens the target only when a query runs).
pub trait Querier: Send + Sync + std::fmt::Debug {
    fn query(&self, sql: &str) -> Result<QueryTable, String>;
}

/// A query's result: column names and rows of JSON values.
#[derive(Clone, Debug, Default)]
pub struct QueryTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// The error of a call that needs a database when no target can be queried.
fn needs_database(what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "`{what}` queries the database while the project compiles, and this command has no target to query; \
             etlm answers `adapter.get_columns_in_relation` and `dbt_utils.star` from the columns it knows, but \
             not a query's rows"
        ),
    )
}

/// Runs `sql` through the render's querier: its result as a Jinja table.
fn query(state: &State<'_, '_>, what: &str, sql: &str) -> Result<Value, Error> {
    let recorder = Recorder::of(state)?;
    let Mode::Compile { resolver, .. } = &recorder.mode else { return Ok(Value::from(())) };
    let querier = resolver.querier().ok_or_else(|| needs_database(what))?;
    recorder.record(|r| r.introspected = true);
    let table = querier.query(sql).map_err(|m| {
        recorder.record(|r| r.query_failed = true);
        Error::new(ErrorKind::InvalidOperation, format!("`{what}` failed while compiling: {m}"))
    })?;
    Ok(Value::from_object(Table(Arc::new(table))))
}

/// `run_query(sql)`: the rows of `sql` on the target (none while parsing: dbt's
/// `execute` is false then).
pub fn run_query(state: &State<'_, '_>, sql: Value) -> Result<Value, Error> {
    query(state, "run_query", &sql.to_string())
}

/// `{% call statement(name, fetch_result=True) %}sql{% endcall %}`: runs the body on the
/// target and keeps the result for `load_result(name)`; nothing while parsing.
#[derive(Debug)]
pub struct Statement;

impl Object for Statement {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (name, kwargs): (Option<Value>, Kwargs) = from_args(args)?;
        for key in ["fetch_result", "auto_begin", "language"] {
            let _ = kwargs.get::<Option<Value>>(key)?;
        }
        let caller: Option<Value> = kwargs.get("caller")?;
        let recorder = Recorder::of(state)?;
        if !recorder.is_compile() {
            return Ok(Value::from(""));
        }
        let sql = match caller {
            Some(c) => c.call(state, &[])?.to_string(),
            None => String::new(),
        };
        let table = query(state, "statement", &sql)?;
        let name = name.map_or_else(|| "main".to_string(), |n| n.to_string());
        recorder.record(|r| {
            r.statements.insert(name, table);
        });
        Ok(Value::from(""))
    }
}

/// `load_result(name)`: what `statement(name)` fetched, as dbt shapes it (`table`,
/// `data`, `response`); none when it did not run.
pub fn load_result(state: &State<'_, '_>, name: Value) -> Result<Value, Error> {
    let recorder = Recorder::of(state)?;
    let found = recorder.recorded.lock().expect("recorder lock poisoned").statements.get(&name.to_string()).cloned();
    let Some(table) = found else { return Ok(Value::from(())) };
    let rows = table.downcast_object_ref::<Table>().map(|t| t.0.rows.clone()).unwrap_or_default();
    let data: Vec<Value> = rows.iter().map(|r| Value::from(r.iter().map(to_value).collect::<Vec<_>>())).collect();
    let response = map_value([("rows_affected", Value::from(rows.len())), ("code", Value::from("SELECT"))]);
    Ok(map_value([("table", table), ("data", Value::from(data)), ("response", response)]))
}

/// A query result as dbt's (agate) table: iterates its rows; `rows`, `columns` (each
/// with `name` and `values()`), `column_names`.
#[derive(Debug)]
pub struct Table(Arc<QueryTable>);

impl Table {
    fn row(&self, index: usize) -> Value {
        Value::from_object(Row { table: self.0.clone(), index })
    }
}

impl Object for Table {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(name) = key.as_str() {
            return match name {
                "rows" => Some(Value::from((0..self.0.rows.len()).map(|i| self.row(i)).collect::<Vec<_>>())),
                "columns" => Some(Value::from_object(Columns(self.0.clone()))),
                "column_names" => Some(Value::from(self.0.columns.clone())),
                _ => None,
            };
        }
        let i = usize::try_from(key.clone()).ok()?;
        (i < self.0.rows.len()).then(|| self.row(i))
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values((0..self.0.rows.len()).map(|i| self.row(i)).collect())
    }
}

/// The column `key` names: by position (`[0]`) or by name (`['id']`). A result with no
/// rows may come without its columns: any position is then an empty column.
fn column_at(table: &QueryTable, key: &Value) -> Option<usize> {
    match key.as_str() {
        Some(name) => table.columns.iter().position(|c| c == name),
        None => usize::try_from(key.clone()).ok().filter(|i| *i < table.columns.len() || table.columns.is_empty()),
    }
}

/// A table's row: by position (`row[0]`) or by column name (`row['id']`).
#[derive(Debug)]
struct Row {
    table: Arc<QueryTable>,
    index: usize,
}

impl Object for Row {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.table.rows[self.index].get(column_at(&self.table, key)?).map(to_value)
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(self.table.rows[self.index].iter().map(to_value).collect())
    }
}

/// A table's columns, a list that is also a mapping by name (agate's MappedSequence):
/// `columns[0]`, `columns['id']`, `columns.items()`, `keys()`, `values()`.
#[derive(Debug)]
struct Columns(Arc<QueryTable>);

impl Columns {
    fn column(&self, index: usize) -> Value {
        Value::from_object(TableColumn { table: self.0.clone(), index })
    }
}

impl Object for Columns {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        column_at(&self.0, key).map(|at| self.column(at))
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values((0..self.0.columns.len()).map(|i| self.column(i)).collect())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        let names = || self.0.columns.iter().map(|c| Value::from(c.clone()));
        let columns = || (0..self.0.columns.len()).map(|i| self.column(i));
        Ok(match method {
            "keys" => Value::from(names().collect::<Vec<_>>()),
            "values" => Value::from(columns().collect::<Vec<_>>()),
            "items" => Value::from(names().zip(columns()).map(|(n, c)| Value::from(vec![n, c])).collect::<Vec<_>>()),
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        })
    }
}

/// A table's column: `name` and `values()`.
#[derive(Debug)]
struct TableColumn {
    table: Arc<QueryTable>,
    index: usize,
}

impl Object for TableColumn {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "name" => Some(Value::from(self.table.columns.get(self.index).cloned().unwrap_or_default())),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "values" => Ok(Value::from(
                self.table.rows.iter().map(|r| r.get(self.index).map(to_value).unwrap_or_default()).collect::<Vec<_>>(),
            )),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// dbt's `{% do adapter.drop_relation(...) %}` and friends in hooks: known, not done
/// while compiling.
fn ignored(_args: &[Value]) -> Value {
    Value::from(())
}

impl Object for Adapter {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "type" => Some(Value::from(self.engine)),
            _ => None,
        }
    }

    fn call_method(self: &Arc<Self>, state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "quote" => {
                let (name,): (String,) = from_args(args)?;
                Ok(Value::from(crate::relation::quote_ident(&name)))
            }
            "type" => Ok(Value::from(self.engine)),
            "dispatch" => {
                let (name, rest, kwargs): (String, Option<Value>, Kwargs) = from_args(args)?;
                let namespace = match rest {
                    Some(v) => Some(v),
                    None => kwargs.get::<Option<Value>>("macro_namespace")?,
                };
                let _ = kwargs.get::<Option<Value>>("packages")?;
                let namespace = namespace.filter(|v| !v.is_none() && !v.is_undefined());
                let namespace = namespace.as_ref().map(|v| v.as_str().map(str::to_string).unwrap_or_default());
                self.dispatch.find(state, &name, namespace.as_deref())
            }
            "get_columns_in_relation" => {
                let (relation,): (Value,) = from_args(args)?;
                self.columns(state, &relation)
            }
            "get_missing_columns" => {
                let (from, to): (Value, Value) = from_args(args)?;
                let theirs = self.columns(state, &to)?;
                let names: Vec<String> = theirs
                    .try_iter()?
                    .filter_map(|c| c.get_attr("name").ok().map(|n| n.to_string().to_lowercase()))
                    .collect();
                let missing: Vec<Value> = self
                    .columns(state, &from)?
                    .try_iter()?
                    .filter(|c| c.get_attr("name").is_ok_and(|n| !names.contains(&n.to_string().to_lowercase())))
                    .collect();
                Ok(crate::project::jinja::mutable::MutList::new(missing))
            }
            "get_relation" => {
                let (database, schema, identifier): (Option<Value>, Value, Value) = from_args(args)?;
                let database = database.filter(|d| !d.is_none()).map(|d| d.to_string());
                let relation = Relation { database, schema: schema.to_string(), identifier: identifier.to_string() };
                known_relation(state, relation)
            }
            "load_relation" | "load_cached_relation" => {
                let (relation,): (Value,) = from_args(args)?;
                load_relation(state, relation)
            }
            "drop_relation" | "truncate_relation" | "rename_relation" | "create_schema" | "drop_schema" | "commit" => {
                if Recorder::of(state)?.is_compile() && !matches!(method, "commit") {
                    return Err(needs_database(&format!("adapter.{method}")));
                }
                Ok(ignored(args))
            }
            "already_exists" => {
                let (schema, identifier): (Value, Value) = from_args(args)?;
                let relation = Relation::new(schema.to_string(), identifier.to_string());
                Ok(Value::from(!known_relation(state, relation)?.is_none()))
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("adapter has no method `{method}` in etlm"))),
        }
    }
}

/// The `api` global.
pub fn api() -> Value {
    Value::from_object(Api)
}

/// The `flags` global: dbt's run flags packages read.
pub fn flags(full_refresh: bool, which: &str) -> Value {
    map_value([
        ("FULL_REFRESH", Value::from(full_refresh)),
        ("WHICH", Value::from(which.to_string())),
        ("STORE_FAILURES", Value::from(false)),
        ("WARN_ERROR", Value::from(false)),
        ("DEBUG", Value::from(false)),
        ("EMPTY", Value::from(false)),
    ])
}
