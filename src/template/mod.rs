//! The Jinja environment models are rendered in.
//!
//! Rendering happens twice per model, like dbt: *parse mode* records `ref`, `source` and
//! `config` calls (refs render as placeholders) so the DAG and every node's config can be
//! known; *compile mode* resolves refs to relations of the active target. Each pass
//! compiles the templates it renders and drops them: a compiled template holds over ten
//! times its text, more than compiling it again costs. Undefined variables are errors
//! (strict).

mod adapter;
mod builtin;
mod errors;
mod macros;
mod modules;
mod objects;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind, State};
use serde_json::Value as Json;

use self::adapter::Adapter;
pub use self::adapter::{Querier, QueryTable};
pub use self::errors::to_diagnostic;
pub use self::macros::MacroDef;
use self::objects::{ConfigObject, Exceptions, RECORDER, RETURN_SENTINEL, Recorder};
pub use self::objects::{Mode, Recorded, RefCall, RelationValue, Resolver};
use crate::diagnostics::{Code, Diagnostic, FileId, SourceMap, Span};
use crate::project::jinja::{target_value, to_value, var_value};
use crate::project::unit_tests::Overrides;
use crate::project::{Env, Project, env_var};
use crate::relation::Relation;

/// The code of a render that failed while the columns it asked for were unknown: the
/// compile renders it again once lineage knows more, and reports it if it never does.
pub const UNKNOWN_COLUMNS: Code = Code::UnknownColumns;

/// The code of a render whose `run_query` / `statement` failed on the target.
pub const QUERY_FAILED: Code = Code::QueryFailedCompiling;

/// Options that are the same for every render of a run.
#[derive(Clone, Debug)]
pub struct RenderSettings {
    pub run_started_at: chrono::DateTime<chrono::Utc>,
    pub invocation_id: String,
    pub full_refresh: bool,
    /// The command (`compile`, `run`, `build`...), as dbt's `flags.WHICH`.
    pub which: &'static str,
}

/// A model's or test's template, ready to render (its list and dict literals made
/// changeable, see `mutable`). Its Jinja is compiled, and its syntax checked, when it
/// renders.
pub struct Compiled<'env> {
    name: &'env str,
    source: std::borrow::Cow<'env, str>,
    pub file: FileId,
}

/// The inputs of one render besides the template.
#[derive(Clone, Debug)]
pub struct RenderInput {
    pub mode: Mode,
    /// `this`: the node's own relation.
    pub this: Option<Relation>,
    /// `model`: name, unique_id, path...
    pub model: BTreeMap<&'static str, Json>,
    /// The node's effective config, read by `config.get()`.
    pub config: BTreeMap<String, Json>,
    /// Extra variables (the batch window: `etlm_start`, `etlm_end`, `ds`).
    pub extra: BTreeMap<&'static str, Json>,
    /// A unit test's `overrides:` of vars, env vars and macros.
    pub overrides: Option<Arc<Overrides>>,
}

/// The output of one render.
#[derive(Debug)]
pub struct Rendered {
    pub sql: String,
    pub recorded: Recorded,
}

/// The project's Jinja environment: macros registered, globals set.
pub struct Renderer {
    env: Environment<'static>,
    /// Global macro name -> (file, definition, callable), for overrides such as
    /// `generate_schema_name` and for generic tests.
    macros: BTreeMap<String, (FileId, MacroDef, Value)>,
    /// The global names of the macros and tests etlm ships that the project did not replace.
    builtin: HashSet<String>,
    /// `adapter.dispatch`'s search: the project's `dispatch:` order and each package's macros.
    dispatch: Arc<adapter::Dispatch>,
    /// Each package's macros by name, seen without a prefix by the package's own nodes.
    package_locals: BTreeMap<String, BTreeMap<String, Value>>,
    /// A package's generic test by its global name (`test_equality`), for YAML that names
    /// it without the package.
    package_tests: BTreeMap<String, String>,
    default_schema: String,
}

/// The macros of each namespace, by the name callers use (tests left out).
struct Namespaces {
    /// The root project's and the built-in macros: the global names.
    flat: BTreeMap<String, Value>,
    /// By package (and the root project by its name, `dbt` for the built-in ones).
    packages: BTreeMap<String, BTreeMap<String, Value>>,
}

impl Namespaces {
    fn new<'a>(
        macros: &BTreeMap<String, (FileId, MacroDef, Value)>,
        builtin: &HashSet<String>,
        root: &str,
        packages: impl Iterator<Item = &'a str>,
    ) -> Namespaces {
        let mut flat = BTreeMap::new();
        let mut by_package: BTreeMap<String, BTreeMap<String, Value>> = packages
            .map(str::to_string)
            .chain([root.to_string(), "dbt".to_string()])
            .map(|p| (p, BTreeMap::new()))
            .collect();
        // A `{% test x %}` block is the macro `test_x`, as in dbt (`dbt_expectations.test_x(...)`).
        for (key, (_, _, value)) in macros {
            match key.split_once('.') {
                Some((package, global)) => {
                    by_package.entry(package.to_string()).or_default().insert(global.to_string(), value.clone());
                }
                None => {
                    flat.insert(key.clone(), value.clone());
                    let owner = if builtin.contains(key) { "dbt" } else { root };
                    by_package.entry(owner.to_string()).or_default().insert(key.clone(), value.clone());
                }
            }
        }
        Namespaces { flat, packages: by_package }
    }

    fn of(&self, package: &str) -> Option<&BTreeMap<String, Value>> {
        self.packages.get(package)
    }
}

/// A failed render's diagnostic, coded by what the render recorded: a compile-time query
/// that failed (`QUERY_FAILED`), or columns asked for that are not known (`UNKNOWN_COLUMNS`).
fn classified(mut d: Diagnostic, recorded: &Recorded) -> Diagnostic {
    if recorded.query_failed {
        d.code = QUERY_FAILED;
    } else if recorded.unknown_columns {
        d = d.with_note(
            "it asked for the columns of a relation etlm does not know while compiling: a source without \
             `columns:` in its YAML, or a relation etlm does not build",
        );
        d.code = UNKNOWN_COLUMNS;
    }
    d
}

impl Renderer {
    /// Builds the environment. Duplicate macros and macro-file syntax errors are reported.
    ///
    /// Macros resolve as in dbt: the root project's macros and etlm's built-in ones are
    /// global (the project's replace the built-in ones of the same name); a package's
    /// macros are reached through its namespace (`dbt_utils.star`), and without a prefix
    /// from its own nodes and macros; `adapter.dispatch` searches the `dispatch:` order.
    pub fn new(project: &Project, settings: &RenderSettings, sources: &SourceMap) -> Result<Renderer, Vec<Diagnostic>> {
        let mut env = crate::project::jinja::python::environment();
        env.set_recursion_limit(200);
        let mut errors = Vec::new();
        let root = project.name();
        let mut macros: BTreeMap<String, (FileId, MacroDef, Value)> = BTreeMap::new();
        let mut builtin = HashSet::new();
        // (template name, file, package: `None` for the root project and etlm's own).
        let mut files: Vec<(String, FileId, Option<&str>)> = project
            .macros
            .iter()
            .map(|mf| (mf.path.display().to_string(), mf.file, (mf.package != root).then_some(mf.package.as_str())))
            .collect();
        let project_files = files.len();
        // Built-in generic tests go last, and only where the project has no test of that name.
        let user_tests: Vec<String> = files
            .iter()
            .filter(|(_, _, package)| package.is_none())
            .flat_map(|(_, f, _)| macros::scan(&sources.file(*f).text))
            .filter(|d| d.is_test)
            .map(|d| d.name)
            .collect();
        for name in builtin::BUILTIN_TESTS.iter().filter(|n| !user_tests.iter().any(|u| u == *n)) {
            let (path, text) = builtin::lookup(project.target.engine.as_str(), &format!("tests/{name}.sql"))
                .expect("every built-in test has a default template");
            files.push((path.clone(), sources.add(path, text.to_string()), None));
        }
        // Built-in macros go last: a project macro of the same name replaces one.
        let first_builtin = files.len();
        for name in builtin::BUILTIN_MACROS {
            let (path, text) = builtin::lookup(project.target.engine.as_str(), &format!("macros/{name}"))
                .expect("every built-in macro file has a default template");
            files.push((path.clone(), sources.add(path, text.to_string()), None));
        }
        let locals: BTreeMap<&str, macros::PackageLocals> =
            project.packages.iter().map(|p| (p.name.as_str(), macros::PackageLocals::default())).collect();
        for (index, (name, file_id, package)) in files.into_iter().enumerate() {
            let file = sources.file(file_id);
            let mut text =
                crate::project::jinja::mutable::mutable_literals(&macros::rewrite_blocks(&file.text)).into_owned();
            if package.is_some() {
                text = macros::lenient_prints(&text);
            }
            if let Err(e) = env.add_template_owned(name.clone(), text) {
                errors.push(to_diagnostic(&e, file_id, sources));
                continue;
            }
            for def in macros::scan(&file.text) {
                let global = if def.is_test { format!("test_{}", def.name) } else { def.name.clone() };
                let key = match package {
                    Some(p) => format!("{p}.{global}"),
                    None => global.clone(),
                };
                if index >= first_builtin && macros.contains_key(&key) {
                    continue;
                }
                if let Some((prev_file, prev, _)) = macros.get(&key) {
                    errors.push(
                        Diagnostic::error(Code::DuplicateMacro, format!("macro `{key}` is defined twice"))
                            .with_label(Span::new(file_id, def.range.clone()), "defined again here")
                            .with_label(Span::new(*prev_file, prev.range.clone()), "first defined here"),
                    );
                    continue;
                }
                let callable = Value::from_object(macros::MacroFn {
                    template: name.clone(),
                    name: def.name.clone(),
                    local: def.local.clone(),
                    params: def.params.clone().into(),
                    required: def.required.clone().into(),
                    takes_kwargs: def.takes_kwargs,
                    locals: package.map(|p| locals[p].clone()),
                });
                if package.is_none() {
                    env.add_global(global.clone(), callable.clone());
                }
                if index >= project_files {
                    builtin.insert(key.clone());
                }
                macros.insert(key, (file_id, def, callable));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let namespaces = Namespaces::new(&macros, &builtin, root, project.packages.iter().map(|p| p.name.as_str()));
        for (package, cell) in &locals {
            let mut own = namespaces.of(package).cloned().unwrap_or_default();
            // A root project macro of the same name wins, as in dbt.
            own.retain(|name, _| !macros.contains_key(name) || builtin.contains(name));
            cell.set(own).expect("each package's locals are set once");
        }
        // `dbt` and `dbt_utils` reach the project's and the built-in macros, unless a
        // package of that name is installed; each package and the project by its name.
        let flat = Value::from_object(objects::MacroNamespace(namespaces.flat.clone()));
        for name in builtin::MACRO_NAMESPACES.iter().filter(|n| !macros.contains_key(**n)) {
            if !locals.contains_key(*name) {
                env.add_global(*name, flat.clone());
            }
        }
        for (package, own) in &namespaces.packages {
            if package != "dbt" && !macros.contains_key(package) {
                env.add_global(package.clone(), Value::from_object(objects::MacroNamespace(own.clone())));
            }
        }
        let dispatch = Arc::new(adapter::Dispatch {
            root: root.to_string(),
            search_order: project.settings.dispatch.clone(),
            packages: namespaces.packages,
            prefixes: project.target.engine.dispatch_prefixes().iter().map(|p| p.to_string()).collect(),
        });
        register_globals(&mut env, project, settings, dispatch.clone());
        let package_locals =
            locals.into_iter().map(|(p, cell)| (p.to_string(), cell.get().cloned().unwrap_or_default())).collect();
        let mut package_tests = BTreeMap::new();
        for key in macros.keys() {
            if let Some((_, global)) = key.split_once('.').filter(|(_, g)| g.starts_with("test_")) {
                package_tests.entry(global.to_string()).or_insert_with(|| key.clone());
            }
        }
        Ok(Renderer {
            env,
            macros,
            builtin,
            dispatch,
            package_locals,
            package_tests,
            default_schema: project.target.schema.clone(),
        })
    }

    /// Prepares the Jinja of a file for rendering (its syntax is checked when it renders).
    pub fn compile<'env>(&'env self, file: FileId, name: &'env str, source: &'env str) -> Compiled<'env> {
        Compiled { name, source: crate::project::jinja::mutable::mutable_literals(source), file }
    }

    /// Renders a prepared template; a syntax error is reported here.
    pub fn render(
        &self,
        compiled: &Compiled<'_>,
        input: &RenderInput,
        sources: &SourceMap,
    ) -> Result<Rendered, Diagnostic> {
        let fail = |e: Error| to_diagnostic(&e, compiled.file, sources);
        let template = self.env.template_from_named_str(compiled.name, &compiled.source).map_err(fail)?;
        let recorder = Arc::new(self.recorder(input));
        let ctx = self.context(&recorder, input);
        let result = template.render(ctx);
        let recorded = std::mem::take(&mut *recorder.recorded.lock().expect("recorder lock poisoned"));
        match result {
            Ok(sql) => Ok(Rendered { sql, recorded }),
            Err(e) => Err(classified(fail(e), &recorded)),
        }
    }

    /// Renders a YAML description, which may call `doc()`; plain text is returned as is.
    /// Errors point at the description's span.
    pub fn render_description(&self, text: &str, span: Span) -> Result<String, Diagnostic> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(text.to_string());
        }
        let input = RenderInput {
            mode: Mode::Parse,
            this: None,
            model: BTreeMap::new(),
            config: BTreeMap::new(),
            extra: BTreeMap::new(),
            overrides: None,
        };
        self.render_inline(text, &input, span)
    }

    /// Renders a snippet of Jinja written inside YAML (a description, a test argument);
    /// errors point at `span`, where the snippet was written.
    pub fn render_inline(&self, text: &str, input: &RenderInput, span: Span) -> Result<String, Diagnostic> {
        self.render_snippet(text, input, span, false)
    }

    /// Renders a hook (`pre_hook`, `post_hook`, `on-run-start`, `on-run-end`): like
    /// [`Renderer::render_inline`], and secret environment variables may be read.
    pub fn render_hook(&self, text: &str, input: &RenderInput, span: Span) -> Result<String, Diagnostic> {
        self.render_snippet(text, input, span, true)
    }

    fn render_snippet(&self, text: &str, input: &RenderInput, span: Span, hook: bool) -> Result<String, Diagnostic> {
        let recorder = Arc::new(Recorder { hook, ..self.recorder(input) });
        self.env.render_str(text, self.context(&recorder, input)).map_err(|e| {
            let detail = e.detail().map_or_else(|| e.kind().to_string(), str::to_string);
            Diagnostic::error(Code::JinjaRender, format!("could not render `{}`: {detail}", text.trim()))
                .with_label(span, "written here")
        })
    }

    /// Evaluates a Jinja expression written inside YAML (`ref('x')` as a test argument)
    /// to its value, so a relation stays a relation; errors point at `span`.
    pub fn eval_inline(&self, expr: &str, input: &RenderInput, span: Span) -> Result<Value, Diagnostic> {
        let recorder = Arc::new(self.recorder(input));
        let fail = |e: Error| {
            let detail = e.detail().map_or_else(|| e.kind().to_string(), str::to_string);
            Diagnostic::error(Code::JinjaRender, format!("could not render `{}`: {detail}", expr.trim()))
                .with_label(span, "written here")
        };
        self.env.compile_expression(expr).map_err(fail)?.eval(self.context(&recorder, input)).map_err(fail)
    }

    /// True if the macro of this global name is one etlm ships, not the project's own.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(name)
    }

    /// The macro that replaces dbt's own global macro `name` (`generate_schema_name`), by
    /// its key: the project's macro of that name, else a package's `<engine>__name` or
    /// `default__name` along the `dispatch:` order of the `dbt` namespace.
    pub fn override_of(&self, name: &str) -> Option<String> {
        if self.macros.contains_key(name) && !self.builtin.contains(name) {
            return Some(name.to_string());
        }
        let order = self.dispatch.search_order.get("dbt")?;
        order.iter().filter(|p| **p != "dbt" && **p != self.dispatch.root).find_map(|package| {
            self.dispatch
                .prefixes
                .iter()
                .map(|prefix| format!("{package}.{prefix}__{name}"))
                .find(|key| self.macros.contains_key(key))
        })
    }

    /// The names of the generic tests the project can use (built in, its own, and the
    /// packages' as `package.test`).
    pub fn generic_tests(&self) -> impl Iterator<Item = String> + '_ {
        self.macros.keys().filter_map(|k| match k.split_once('.') {
            Some((package, name)) => name.strip_prefix("test_").map(|t| format!("{package}.{t}")),
            None => k.strip_prefix("test_").map(str::to_string),
        })
    }

    /// The macro (by its key in the macro map) a generic test named in YAML calls:
    /// `pkg.name` the package's `test_name`; a plain `name` the project's own, else a
    /// package's, else etlm's built-in one (dbt ranks installed packages above its core).
    /// A `pkg.name` whose package is not installed falls back to the plain name, so
    /// `dbt_utils.expression_is_true` works with etlm's built-in test.
    pub fn generic_test_macro(&self, test_name: &str) -> Option<String> {
        let (namespace, name) = match test_name.rsplit_once('.') {
            Some((ns, n)) => (Some(ns), n),
            None => (None, test_name),
        };
        let global = format!("test_{name}");
        if let Some(key) = namespace.map(|ns| format!("{ns}.{global}")).filter(|k| self.macros.contains_key(k)) {
            return Some(key);
        }
        if self.macros.contains_key(&global) && !self.builtin.contains(&global) {
            return Some(global);
        }
        match self.package_tests.get(&global) {
            Some(key) if namespace.is_none() => Some(key.clone()),
            _ => self.macros.contains_key(&global).then_some(global),
        }
    }

    /// The file and definition of a macro, by its global name (`test_<name>` for tests).
    pub fn macro_def(&self, name: &str) -> Option<(FileId, &MacroDef)> {
        self.macros.get(name).map(|(f, d, _)| (*f, d))
    }

    /// The definition text of every macro by the name models call it with (generic tests
    /// under `test_<name>`), for change detection.
    pub fn macro_texts(&self, sources: &SourceMap) -> BTreeMap<String, String> {
        self.macros
            .iter()
            .map(|(name, (file, def, _))| {
                (name.clone(), macros::definition_text(&sources.file(*file).text, def).to_string())
            })
            .collect()
    }

    /// Calls a project macro with positional arguments and returns its output, trimmed.
    pub fn call_macro(
        &self,
        name: &str,
        args: &[Value],
        input: &RenderInput,
        sources: &SourceMap,
    ) -> Result<String, Diagnostic> {
        self.call_macro_recorded(name, args, input, sources).map(|r| r.sql)
    }

    /// Calls a macro as `call_macro` does, with what the call recorded (a test macro's
    /// `config(fail_calc=...)`, say).
    pub fn call_macro_recorded(
        &self,
        name: &str,
        args: &[Value],
        input: &RenderInput,
        sources: &SourceMap,
    ) -> Result<Rendered, Diagnostic> {
        let recorder = Arc::new(self.recorder(input));
        let ctx = self.context(&recorder, input);
        let (file, _, f) = self.macros.get(name).expect("caller checked has_macro");
        let template = self.env.template_from_str("").expect("empty template compiles");
        let mut captured = template.render_captured(ctx).map_err(|e| to_diagnostic(&e, *file, sources))?;
        let out = captured.with_state_mut(|st| f.call(st, args)).map_err(|e| {
            classified(to_diagnostic(&e, *file, sources), &recorder.recorded.lock().expect("recorder lock poisoned"))
        })?;
        let recorded = std::mem::take(&mut *recorder.recorded.lock().expect("recorder lock poisoned"));
        Ok(Rendered { sql: out.to_string().trim().to_string(), recorded })
    }

    fn recorder(&self, input: &RenderInput) -> Recorder {
        Recorder {
            mode: input.mode.clone(),
            config: input.config.clone(),
            recorded: Mutex::new(Recorded::default()),
            returned: Mutex::new(None),
            default_schema: self.default_schema.clone(),
            overrides: input.overrides.clone(),
            hook: false,
        }
    }

    fn context(&self, recorder: &Arc<Recorder>, input: &RenderInput) -> Value {
        let mut ctx: BTreeMap<String, Value> = BTreeMap::from([
            (RECORDER.to_string(), Value::from_dyn_object(recorder.clone())),
            ("execute".to_string(), Value::from(recorder.is_compile())),
            ("model".to_string(), to_value(&input.model)),
        ]);
        if let Some(this) = &input.this {
            let cte = match &input.mode {
                Mode::Compile { resolver, .. } => resolver.this_cte(),
                Mode::Parse => None,
            };
            ctx.insert("this".into(), Value::from_object(RelationValue { relation: this.clone(), cte }));
        }
        // A package's node calls the package's macros without a prefix.
        if let Some(locals) =
            input.model.get("package_name").and_then(Json::as_str).and_then(|p| self.package_locals.get(p))
        {
            for (k, v) in locals {
                ctx.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        for (k, v) in &input.extra {
            ctx.insert(k.to_string(), to_value(v));
        }
        // An overridden macro returns the given value; the context shadows the global. A
        // namespaced one (`dbt_utils.current_timestamp`) replaces its namespace by one
        // with that macro replaced.
        let mut namespaces: BTreeMap<&str, BTreeMap<String, Value>> = BTreeMap::new();
        for (name, value) in input.overrides.iter().flat_map(|o| &o.macros) {
            let value = to_value(value);
            let function = Value::from_function(move |_args: minijinja::value::Rest<Value>| value.clone());
            match name.split_once('.') {
                Some((namespace, name)) => {
                    namespaces.entry(namespace).or_default().insert(name.to_string(), function);
                }
                None => {
                    ctx.insert(name.clone(), function);
                }
            }
        }
        for (namespace, overrides) in namespaces {
            let inner = self.env.globals().find(|(n, _)| *n == namespace).map(|(_, v)| v);
            ctx.insert(namespace.to_string(), Value::from_object(objects::OverriddenNamespace { inner, overrides }));
        }
        Value::from(ctx)
    }
}

fn add_env_var(env: &mut Environment<'static>, vars: &Env) {
    let vars = Arc::new(vars.clone());
    env.add_function("env_var", move |state: &State, name: String, default: Option<String>| -> Result<String, Error> {
        // A unit test's `overrides: env_vars:` win inside a model render.
        let recorder = Recorder::of(state).ok();
        if crate::project::is_secret_var(&name) && !recorder.as_ref().is_some_and(|r| r.hook) {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "`{name}` is a secret: `env_var()` of it is allowed only in profiles.yml and hooks, \
                     never in SQL etlm writes to target/"
                ),
            ));
        }
        let overridden = recorder.and_then(|r| r.overrides.as_ref()?.env_vars.get(&name).cloned());
        match overridden {
            Some(v) => Ok(v),
            None => env_var(&vars, &name, default.as_deref()).map_err(|m| Error::new(ErrorKind::InvalidOperation, m)),
        }
    });
}

fn register_globals(
    env: &mut Environment<'static>,
    project: &Project,
    settings: &RenderSettings,
    dispatch: Arc<adapter::Dispatch>,
) {
    env.add_global("target", target_value(&project.target, project.settings.profile.as_deref()));
    env.add_global("run_started_at", modules::DateTime::utc(settings.run_started_at).into_value());
    env.add_global("invocation_id", Value::from(settings.invocation_id.clone()));
    env.add_global("project_name", Value::from(project.name().to_string()));
    env.add_global("flags", adapter::flags(settings.full_refresh, settings.which));
    env.add_global("api", adapter::api());
    env.add_global("modules", modules::modules());
    env.add_function("run_query", adapter::run_query);
    env.add_global("statement", Value::from_object(adapter::Statement));
    env.add_function("load_result", adapter::load_result);
    env.add_function("load_relation", adapter::load_relation);
    env.add_global("config", Value::from_object(ConfigObject));
    env.add_global("exceptions", Value::from_object(Exceptions));
    env.add_global("adapter", Value::from_object(Adapter { engine: project.target.engine.as_str(), dispatch }));

    // A package's nodes (and the macros they call) see the package's vars.
    let vars: Arc<BTreeMap<String, Json>> = Arc::new(project.vars.clone());
    let package_vars: Arc<BTreeMap<String, BTreeMap<String, Json>>> =
        Arc::new(project.packages.iter().map(|p| (p.name.clone(), p.vars.clone())).collect());
    env.add_function("var", move |state: &State, name: String, default: Option<Value>| -> Result<Value, Error> {
        if let Ok(r) = Recorder::of(state) {
            r.record(|rec| {
                rec.vars.insert(name.clone());
            });
            if let Some(v) = r.overrides.as_ref().and_then(|o| o.vars.get(&name)) {
                return Ok(to_value(v));
            }
        }
        let package = state.lookup("model").and_then(|m| m.get_attr("package_name").ok());
        let scoped = package.as_ref().and_then(|p| package_vars.get(p.as_str()?));
        let value = var_value(scoped.unwrap_or(&vars), &name, default)?;
        // As dbt, a var's text is rendered when it is read:
        // `max_depth: "{{ 9 if target.type == 'bigquery' else -1 }}"` reads `-1`.
        match value.as_str() {
            Some(text) if text.contains("{{") || text.contains("{%") => {
                state.env().render_str(text, minijinja::context! {}).map(Value::from)
            }
            _ => Ok(value),
        }
    });
    add_env_var(env, &project.env);
    let docs: Arc<BTreeMap<String, String>> =
        Arc::new(project.docs.iter().map(|(k, b)| (k.clone(), b.text.clone())).collect());
    env.add_function("doc", move |name: String| -> Result<String, Error> {
        docs.get(&name)
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("no docs block named `{name}`")))
    });
    env.add_function(
        "ref",
        |state: &State, first: String, second: Option<String>, kwargs: Kwargs| -> Result<Value, Error> {
            // `v=` / `version=` name a model version; etlm has one version per model.
            let _ = kwargs.get::<Option<Value>>("v")?;
            let _ = kwargs.get::<Option<Value>>("version")?;
            let call = match second {
                Some(name) => RefCall { package: Some(first), name },
                None => RefCall { package: None, name: first },
            };
            let recorder = Recorder::of(state)?;
            recorder.record(|r| r.refs.push(call.clone()));
            match &recorder.mode {
                Mode::Parse => Ok(Value::from_object(RelationValue {
                    relation: Relation::new(recorder.default_schema.clone(), call.name.clone()),
                    cte: None,
                })),
                Mode::Compile { resolver, .. } => {
                    resolver.resolve_ref(&call).map(Value::from_object).ok_or_else(|| {
                        Error::new(
                            ErrorKind::InvalidOperation,
                            format!("`{}` is not a model, seed or snapshot", call.name),
                        )
                    })
                }
            }
        },
    );
    env.add_function("source", |state: &State, source: String, table: String| -> Result<Value, Error> {
        let recorder = Recorder::of(state)?;
        recorder.record(|r| r.sources.push((source.clone(), table.clone())));
        match &recorder.mode {
            Mode::Parse => Ok(Value::from_object(RelationValue { relation: Relation::new(source, table), cte: None })),
            Mode::Compile { resolver, .. } => {
                resolver.resolve_source_value(&source, &table).map(Value::from_object).ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, format!("source `{source}.{table}` does not exist"))
                })
            }
        }
    });
    env.add_function("is_incremental", |state: &State| -> Result<bool, Error> {
        Ok(match &Recorder::of(state)?.mode {
            Mode::Parse => false,
            Mode::Compile { is_incremental, .. } => *is_incremental,
        })
    });
    // dbt's: whether the test being rendered stores its failing rows (`not_null` then
    // selects whole rows).
    env.add_function("should_store_failures", |state: &State| -> Result<bool, Error> {
        Ok(Recorder::of(state)?.config.get("store_failures").and_then(Json::as_bool).unwrap_or(false))
    });
    env.add_function("log", |state: &State, message: Value, _kwargs: Kwargs| -> Result<String, Error> {
        Recorder::of(state)?.record(|r| r.logs.push(message.to_string()));
        Ok(String::new())
    });
    env.add_function("return", |state: &State, value: Value| -> Result<Value, Error> {
        *Recorder::of(state)?.returned.lock().expect("return slot poisoned") = Some(value);
        Err(Error::new(ErrorKind::InvalidOperation, RETURN_SENTINEL))
    });
    env.add_function("fromjson", |text: String| -> Result<Value, Error> {
        let json: Json =
            serde_json::from_str(&text).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
        Ok(to_value(&json))
    });
    env.add_function("tojson", crate::project::jinja::python::tojson);
    env.add_function("zip", crate::project::jinja::python::zip);
}
