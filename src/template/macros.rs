//! User macros from `macros/` (and generic tests from `tests/generic/`), callable from any
//! model without an import, as in dbt.
//!
//! Each macro becomes a global function that renders its file's module and calls the
//! macro there, with the caller's per-render context, so `ref`, `this` and `var` work
//! inside macros. `{{ return(x) }}` unwinds with a sentinel error and hands `x` back.
//!
//! Inside its file a macro is renamed `_<name>` (`{% macro a` becomes `{%macro _a`, the
//! same length, so error positions stay true), so a call to `a` from a macro of the
//! same file goes through the global function too: a `return` inside it ends that call,
//! not the caller's.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use minijinja::value::{Kwargs, Object, Value};
use minijinja::{Error, ErrorKind, State};

use super::objects::{RETURN_SENTINEL, Recorder};

/// Context variables a macro inherits from the model that calls it.
pub const INHERITED: &[&str] = &[super::objects::RECORDER, "this", "model", "execute", "etlm_start", "etlm_end", "ds"];

/// One `{% macro name(...) %}` or `{% test name(...) %}` found in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MacroDef {
    pub name: String,
    /// The name inside its file after `rewrite_blocks` (`_<name>` for renamed macros).
    pub local: String,
    pub is_test: bool,
    /// Byte range of the opening tag.
    pub range: std::ops::Range<usize>,
    /// The parameters it declares, in order.
    pub params: Vec<String>,
    /// The parameters it declares without a default.
    pub required: Vec<String>,
    /// Whether its body reads `kwargs` (keyword arguments it does not declare), as
    /// Python's Jinja lets a macro do.
    pub takes_kwargs: bool,
}

/// Finds the macro and test definitions of a file by scanning its block tags.
pub fn scan(source: &str) -> Vec<MacroDef> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(i) = source[pos..].find("{%") {
        let start = pos + i;
        // The tag closes after its opening `{%` (`{%}` does not close itself).
        let Some(len) = source[start + 2..].find("%}") else { break };
        let end = start + 2 + len + 2;
        let open = source[start + 2..end - 2].trim_start_matches('-');
        let inner = open.trim_start();
        // As `rewrite_blocks` reads it: a macro is renamed where one byte of space precedes it.
        let spaced = inner.len() < open.len() && open.as_bytes()[open.len() - inner.len() - 1].is_ascii_whitespace();
        for (keyword, is_test) in [("macro ", false), ("test ", true)] {
            if let Some(rest) = inner.strip_prefix(keyword) {
                let name: String = rest.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    let local = if !is_test && spaced { format!("_{name}") } else { name.clone() };
                    let declared = params_of(&rest.trim_start()[name.len()..]);
                    let required = declared.iter().filter(|(_, d)| !d).map(|(p, _)| p.clone()).collect();
                    let params = declared.into_iter().map(|(p, _)| p).collect();
                    let mut def =
                        MacroDef { name, local, is_test, range: start..end, params, required, takes_kwargs: false };
                    def.takes_kwargs = definition_text(source, &def).contains("kwargs");
                    out.push(def);
                }
            }
        }
        pos = end;
    }
    out
}

/// The parameter names of a signature's `(a, b=1, c='x,y')`, each with whether it has a
/// default.
fn params_of(signature: &str) -> Vec<(String, bool)> {
    let Some(open) = signature.find('(') else { return Vec::new() };
    let mut params = Vec::new();
    let (mut depth, mut quote, mut current) = (0, None, String::new());
    for c in signature[open + 1..].chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')') if depth == 0 => break,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                params.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        if depth == 0 && quote.is_none() {
            current.push(c);
        }
    }
    params.push(current);
    params
        .into_iter()
        .map(|p| (p.split('=').next().unwrap_or("").trim().to_string(), p.contains('=')))
        .filter(|(p, _)| !p.is_empty())
        .collect()
}

/// The text of a macro's definition: from its opening tag through the closing
/// `endmacro`/`endtest` tag (to the end of the file when there is none), so change
/// detection sees a change to one macro and not to its neighbours in the same file.
pub fn definition_text<'a>(source: &'a str, def: &MacroDef) -> &'a str {
    let mut pos = def.range.end;
    while let Some(i) = source[pos..].find("{%") {
        let start = pos + i;
        // The tag closes after its opening `{%` (`{%}` does not close itself).
        let Some(len) = source[start + 2..].find("%}") else { break };
        let end = start + 2 + len + 2;
        let inner = source[start + 2..end - 2].trim_matches('-').trim();
        if inner == "endmacro" || inner == "endtest" {
            return &source[def.range.start..end];
        }
        pos = end;
    }
    &source[def.range.start..]
}

/// Rewrites dbt's `{% test %}` blocks as macros and renames macros to their local name
/// (`MacroDef::local`), keeping every byte offset unchanged so error positions stay
/// true: the space before `test`/`endtest` makes room for the one extra letter of
/// `macro`/`endmacro` (`{% test` and `{%macro` have the same length), the space before
/// `macro` for the `_` of `_<name>`.
pub fn rewrite_blocks(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut pos = 0;
    while let Some(i) = source[pos..].find("{%") {
        let start = pos + i;
        // The tag closes after its opening `{%` (`{%}` does not close itself).
        let Some(len) = source[start + 2..].find("%}") else { break };
        let end = start + 2 + len + 2;
        out.push_str(&source[pos..start]);
        let tag = &source[start..end];
        let open = if tag[2..].starts_with('-') { 3 } else { 2 };
        let inner = &tag[open..];
        let keyword_at = inner.len() - inner.trim_start().len();
        let rest = inner.trim_start();
        let replaced =
            [("test ", "macro "), ("endtest", "endmacro"), ("macro ", "macro _")].iter().find_map(|(from, to)| {
                let word = from.trim_end();
                let is_word = rest.starts_with(word)
                    && !rest[word.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_');
                // The space given up for the longer keyword is one byte (not a `\u{a0}`).
                let room = keyword_at > 0 && inner.as_bytes()[keyword_at - 1].is_ascii_whitespace();
                (is_word && room).then(|| match *from {
                    // `{% macro  a` keeps its spaces after the keyword; the name gets the `_`.
                    "macro " => {
                        let after = &rest[word.len()..];
                        let name_at = after.len() - after.trim_start().len();
                        format!(
                            "{}{}{}{}_{}",
                            &tag[..open],
                            &inner[..keyword_at - 1],
                            word,
                            &after[..name_at],
                            &after[name_at..]
                        )
                    }
                    _ => {
                        format!("{}{}{}{}", &tag[..open], &inner[..keyword_at - 1], to.trim_end(), &rest[word.len()..])
                    }
                })
            });
        out.push_str(replaced.as_deref().unwrap_or(tag));
        pos = end;
    }
    out.push_str(&source[pos..]);
    out
}

/// In a package's macros, `{{ name }}` of a plain variable, or of a path into one
/// (`{{ props["min_time"] }}`, `{{ a.b }}`), prints nothing when it is undefined, as in dbt
/// (packages print optional pieces, `{{ select_gb_cols }}`, that only some branches set);
/// the project's own templates stay strict. The expression is rewritten
/// `{{ name|default('') }}`.
pub fn lenient_prints(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut pos = 0;
    while let Some(i) = source[pos..].find("{{") {
        let start = pos + i;
        let Some(len) = source[start..].find("}}") else { break };
        let end = start + len + 2;
        let inner = &source[start + 2..end - 2];
        let bare = inner.trim_matches(['-', ' ', '\t']);
        out.push_str(&source[pos..start]);
        if is_path(bare) {
            out.push_str(&source[start..end - 2].replacen(bare, &format!("{bare}|default('')"), 1));
            out.push_str("}}");
        } else {
            out.push_str(&source[start..end]);
        }
        pos = end;
    }
    out.push_str(&source[pos..]);
    out
}

/// A name, then any `.attr`, `["key"]`, `['key']` or `[0]`: what `lenient_prints` makes
/// lenient. Literals (`none`, `true`, numbers) are not names.
fn is_path(text: &str) -> bool {
    let ident_len = |t: &str| t.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(t.len());
    let first = ident_len(text);
    if first == 0
        || text.starts_with(|c: char| c.is_ascii_digit())
        || matches!(&text[..first], "none" | "true" | "false" | "None" | "True" | "False")
    {
        return false;
    }
    let mut rest = &text[first..];
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let n = ident_len(after);
            if n == 0 {
                return false;
            }
            rest = &after[n..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(close) = after.find(']') else { return false };
            let key = &after[..close];
            let quoted = key.len() >= 2
                && (key.starts_with('"') && key.ends_with('"') || key.starts_with('\'') && key.ends_with('\''))
                && !key[1..key.len() - 1].contains(['"', '\'']);
            if !quoted && !(!key.is_empty() && key.chars().all(|c| c.is_ascii_digit())) {
                return false;
            }
            rest = &after[close + 1..];
        } else {
            return false;
        }
    }
    true
}

/// A macro exposed as a global function.
#[derive(Debug)]
pub struct MacroFn {
    /// The template the macro lives in (its project-relative path).
    pub template: String,
    /// The macro's name, as callers and messages spell it.
    pub name: String,
    /// Its name inside that template (`MacroDef::local`).
    pub local: String,
    /// The parameters it declares, and whether it reads undeclared keyword arguments
    /// through `kwargs`.
    pub params: Arc<[String]>,
    pub required: Arc<[String]>,
    pub takes_kwargs: bool,
    /// For a package's macro: the package's macros by name (its local namespace, less the
    /// names the root project defines), which the macro calls without a prefix. Filled
    /// once every macro of the package exists.
    pub locals: Option<PackageLocals>,
}

/// A package's macros by name, shared by each of them.
pub type PackageLocals = Arc<OnceLock<BTreeMap<String, Value>>>;

impl Object for MacroFn {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let mut ctx: BTreeMap<String, Value> = BTreeMap::new();
        if let Some(locals) = self.locals.as_ref().and_then(|l| l.get()) {
            ctx.extend(locals.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        ctx.extend(INHERITED.iter().filter_map(|k| state.lookup(k).map(|v| (k.to_string(), v))));
        let (args, extra) = self.arguments(args)?;
        if let Some(extra) = extra {
            ctx.insert("kwargs".to_string(), extra);
        }
        if let Ok(recorder) = Recorder::of(state) {
            recorder.record(|r| {
                r.macros.insert(self.name.clone());
            });
            // A unit test's overridden macros (or their namespace) stay overridden inside
            // other macros.
            for key in recorder.overrides.iter().flat_map(|o| o.macros.keys()) {
                let name = key.split_once('.').map_or(key.as_str(), |(namespace, _)| namespace);
                if let Some(value) = state.lookup(name) {
                    ctx.insert(name.to_string(), value);
                }
            }
        }
        let template = state.env().get_template(&self.template)?;
        let mut module = template.render_captured(Value::from(ctx)).map_err(|e| self.wrap(e))?;
        let result = module.with_state_mut(|st| {
            let m = st
                .lookup(&self.local)
                .ok_or_else(|| Error::new(ErrorKind::UnknownFunction, format!("macro `{}` not found", self.name)))?;
            m.call(st, &args)
        });
        match result {
            Ok(v) => Ok(v),
            Err(e) if e.detail() == Some(RETURN_SENTINEL) => {
                let recorder = Recorder::of(state)?;
                let value = recorder.returned.lock().expect("return slot poisoned").take();
                Ok(value.unwrap_or(Value::from(())))
            }
            Err(e) => Err(self.wrap(e)),
        }
    }
}

impl MacroFn {
    /// The arguments as the macro takes them: lists changeable in place (Python passes a
    /// list by reference, and package macros append to the ones they are given), and the
    /// keyword arguments it does not declare set apart as `kwargs` when it reads them.
    fn arguments(&self, args: &[Value]) -> Result<(Vec<Value>, Option<Value>), Error> {
        let mut out: Vec<Value> = args.iter().map(crate::project::jinja::mutable::changeable).collect();
        let mut extra = None;
        if self.takes_kwargs && out.last().is_some_and(Value::is_kwargs) {
            let kwargs = Kwargs::try_from(out.pop().expect("checked")).expect("a kwargs value");
            let (mut declared, mut rest) = (Vec::new(), BTreeMap::new());
            for key in kwargs.args() {
                let value: Value = kwargs.get(key)?;
                if self.params.iter().any(|p| p == key) {
                    declared.push((key.to_string(), value));
                } else {
                    rest.insert(key.to_string(), value);
                }
            }
            if !declared.is_empty() {
                out.push(Value::from(Kwargs::from_iter(declared)));
            }
            extra = Some(Value::from(rest));
        }
        if self.locals.is_some() {
            out = self.missing_as_empty(out)?;
        }
        Ok((out, extra))
    }

    /// A package's macro called without an argument it declares with no default gets it
    /// empty, as dbt's (lenient) Jinja makes it: it prints as nothing, and is false.
    fn missing_as_empty(&self, mut args: Vec<Value>) -> Result<Vec<Value>, Error> {
        let kwargs = match args.last().filter(|v| v.is_kwargs()) {
            Some(_) => Some(Kwargs::try_from(args.pop().expect("checked")).expect("a kwargs value")),
            None => None,
        };
        let named: Vec<&str> = kwargs.iter().flat_map(|k| k.args()).collect();
        let missing: Vec<&String> = self
            .params
            .iter()
            .skip(args.len())
            .filter(|p| self.required.contains(p) && !named.contains(&p.as_str()))
            .collect();
        if missing.is_empty() {
            args.extend(kwargs.map(Value::from));
            return Ok(args);
        }
        let mut pairs: Vec<(String, Value)> = Vec::new();
        if let Some(kwargs) = &kwargs {
            for key in kwargs.args() {
                pairs.push((key.to_string(), kwargs.get(key)?));
            }
        }
        pairs.extend(missing.into_iter().map(|p| (p.clone(), Value::from(""))));
        args.push(Value::from(Kwargs::from_iter(pairs)));
        Ok(args)
    }

    /// An error inside the macro, wrapped so the caller's location is added on the way out.
    fn wrap(&self, inner: Error) -> Error {
        Error::new(inner.kind(), format!("in macro `{}`", self.name)).with_source(inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_prints_of_undefined_names_are_empty() {
        let src = "{% macro m(a) %}[{{a}}|{{ b }}|{{- c -}}|{{ a.x }}|{{ d['k'] }}|{{ a + 1 }}|{{ none }}]{% endmacro %}\
                   {{ m(1) }}";
        let out = lenient_prints(src);
        assert_eq!(
            out,
            "{% macro m(a) %}[{{a|default('')}}|{{ b|default('') }}|{{- c|default('') -}}|{{ a.x|default('') }}|\
             {{ d['k']|default('') }}|{{ a + 1 }}|{{ none }}]{% endmacro %}{{ m(1) }}"
        );
        let env = crate::project::jinja::python::environment();
        let out = out.replace("{{ d['k']|default('') }}", "{{ {}['k']|default('') }}");
        assert_eq!(env.render_str(&out, ()).unwrap(), "[1|||||2|None]");
        assert!(!super::is_path("a[b]") && !super::is_path("1x") && super::is_path("a.b[0][\"c\"]"));
    }

    #[test]
    fn signatures_list_their_parameters() {
        let defs = scan(
            "{% macro m(a, b=[1, 2], c='x,y', d=f(1, 2)) %}{{ kwargs.get('e') }}{% endmacro %}{% macro n() %}{% endmacro %}",
        );
        assert_eq!(defs[0].params, ["a", "b", "c", "d"]);
        assert!(defs[0].takes_kwargs);
        assert!(defs[1].params.is_empty() && !defs[1].takes_kwargs);
    }

    #[test]
    fn finds_macros_and_tests() {
        let src = "{% macro a(x) %}{% endmacro %}\n{%- test not_empty(model, column_name) -%}x{% endtest %}";
        let names: Vec<(String, bool)> = scan(src).into_iter().map(|d| (d.name, d.is_test)).collect();
        assert_eq!(names, vec![("a".to_string(), false), ("not_empty".to_string(), true)]);
    }

    #[test]
    fn definition_text_ends_at_its_own_end_tag() {
        let src = "{% macro a(x) %}{{ x }}{% endmacro %}\n{% macro b() %}{% if 1 %}2{% endif %}{%- endmacro -%}tail";
        let defs = scan(src);
        assert_eq!(definition_text(src, &defs[0]), "{% macro a(x) %}{{ x }}{% endmacro %}");
        assert_eq!(definition_text(src, &defs[1]), "{% macro b() %}{% if 1 %}2{% endif %}{%- endmacro -%}");
    }

    #[test]
    fn rewriting_tests_keeps_offsets() {
        let src = "{% test t(model) %}select 1{% endtest %}";
        let out = rewrite_blocks(src);
        assert_eq!(out, "{%macro t(model) %}select 1{%endmacro %}");
        assert_eq!(out.len(), src.len());
        let src =
            "{% macro a(x) %}{{ b() }}{% endmacro %}{%-  macro  b() -%}1{%- endmacro %}{%macro c() %}{% endmacro %}";
        let out = rewrite_blocks(src);
        assert_eq!(
            out,
            "{%macro _a(x) %}{{ b() }}{% endmacro %}{%- macro  _b() -%}1{%- endmacro %}{%macro c() %}{% endmacro %}"
        );
        assert_eq!(out.len(), src.len());
        let locals: Vec<String> = scan(src).into_iter().map(|d| d.local).collect();
        assert_eq!(locals, ["_a", "_b", "c"]);
    }

    // Regression: #18, `{%}` sliced a tag backwards, and a non-ASCII space before a
    // keyword was cut in half.
    #[test]
    fn odd_tags_are_read_without_panicking() {
        let src = "{% macro a() %}1{% endmacro %} select '{%}' {% macro b() %}2";
        let defs = scan(src);
        assert_eq!(defs.len(), 1);
        assert_eq!(definition_text(src, &defs[0]), "{% macro a() %}1{% endmacro %}");
        assert_eq!(rewrite_blocks(src), src.replacen("{% macro a", "{%macro _a", 1));
        let src = "{%\u{a0}test t(model) %}1{%\u{a0}endtest %}{%\u{a0}macro m() %}{% endmacro %}";
        assert_eq!(rewrite_blocks(src), src);
        assert_eq!(scan(src).into_iter().map(|d| d.local).collect::<Vec<_>>(), ["t", "m"]);
    }
}
