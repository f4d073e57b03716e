//! Lists and dicts that change in place, as dbt's (Python) Jinja has them: packages build
//! results with `{% do cols.append(c) %}` and `{% do d.update({...}) %}`, inside loops
//! too. minijinja's values are immutable, so a `{% set x = [...] %}` or
//! `{% set x = {...} %}` literal is made one of these (`mutable_literals` rewrites the
//! tag as the template is added); everything else about them reads like a plain list or
//! mapping.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value, ValueKind, from_args};
use minijinja::{Error, ErrorKind, State};

/// The function a rewritten literal calls.
pub const MAKE: &str = "__etlm_mut";

/// A list that `append`, `extend`, `insert`, `pop`, `remove`, `reverse` and `sort` change.
#[derive(Debug, Default)]
pub struct MutList(Mutex<Vec<Value>>);

/// A dict (in insertion order) that `update`, `setdefault`, `pop`, `popitem` and `clear`
/// change.
#[derive(Debug, Default)]
pub struct MutMap(Mutex<Vec<(Value, Value)>>);

impl MutList {
    pub fn new(items: Vec<Value>) -> Value {
        Value::from_object(MutList(Mutex::new(items)))
    }

    fn items(&self) -> std::sync::MutexGuard<'_, Vec<Value>> {
        self.0.lock().expect("list lock poisoned")
    }
}

impl MutMap {
    fn pairs(&self) -> std::sync::MutexGuard<'_, Vec<(Value, Value)>> {
        self.0.lock().expect("dict lock poisoned")
    }

    fn set(&self, key: Value, value: Value) {
        let value = changeable(&value);
        let mut pairs = self.pairs();
        match pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => pairs.push((key, value)),
        }
    }
}

/// A list handed to a macro, made changeable (others are passed as they are).
pub fn changeable(value: &Value) -> Value {
    if value.kind() == ValueKind::Seq && value.downcast_object_ref::<MutList>().is_none() && !value.is_kwargs() {
        if let Ok(items) = value.try_iter() {
            return MutList::new(items.collect());
        }
    }
    value.clone()
}

/// dbt's `set(iterable)`: the distinct items, kept sorted so that two sets of the same
/// items are equal whatever order they came in (a Python set has no order), changeable
/// (`add`, `discard`) and with Python's set operations (`difference`, `union`...).
pub fn set(items: Value) -> Result<Value, Error> {
    let mut out: Vec<Value> = items.try_iter()?.collect();
    out.sort();
    out.dedup();
    Ok(MutList::new(out))
}

/// `__etlm_mut(literal)`: a list or mapping as its changeable twin.
pub fn make(value: Value) -> Result<Value, Error> {
    match value.kind() {
        ValueKind::Seq => Ok(MutList::new(value.try_iter()?.collect())),
        ValueKind::Map => {
            let map = MutMap::default();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                map.set(key, item);
            }
            Ok(Value::from_object(map))
        }
        _ => Ok(value),
    }
}

fn none() -> Value {
    Value::from(())
}

impl Object for MutList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = self.items();
        let index = i64::try_from(key.clone()).ok()?;
        let index = if index < 0 { items.len() as i64 + index } else { index };
        items.get(usize::try_from(index).ok()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.items().clone())
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "append" => {
                let (item,): (Value,) = from_args(args)?;
                self.items().push(changeable(&item));
                Ok(none())
            }
            "extend" => {
                let (more,): (Value,) = from_args(args)?;
                let more: Vec<Value> = more.try_iter()?.collect();
                self.items().extend(more);
                Ok(none())
            }
            "insert" => {
                let (at, item): (i64, Value) = from_args(args)?;
                let mut items = self.items();
                let len = items.len() as i64;
                let at = if at < 0 { (len + at).max(0) } else { at.min(len) };
                items.insert(at as usize, item);
                Ok(none())
            }
            "pop" => {
                let (at,): (Option<i64>,) = from_args(args)?;
                let mut items = self.items();
                let len = items.len() as i64;
                let at = at.map_or(len - 1, |a| if a < 0 { len + a } else { a });
                if at < 0 || at >= len {
                    return Err(Error::new(ErrorKind::InvalidOperation, "pop index out of range"));
                }
                Ok(items.remove(at as usize))
            }
            "remove" => {
                let (item,): (Value,) = from_args(args)?;
                let mut items = self.items();
                let at = items
                    .iter()
                    .position(|i| *i == item)
                    .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("{item} is not in the list")))?;
                items.remove(at);
                Ok(none())
            }
            "reverse" => {
                self.items().reverse();
                Ok(none())
            }
            "sort" => {
                self.items().sort();
                Ok(none())
            }
            "copy" => Ok(MutList::new(self.items().clone())),
            // dbt's `set()` is one of these lists with its items made unique.
            "add" => {
                let (item,): (Value,) = from_args(args)?;
                let mut items = self.items();
                if let Err(at) = items.binary_search(&item) {
                    items.insert(at, item);
                }
                Ok(none())
            }
            "discard" => {
                let (item,): (Value,) = from_args(args)?;
                self.items().retain(|i| *i != item);
                Ok(none())
            }
            "difference" | "intersection" | "union" | "issubset" | "issuperset" => {
                let (other,): (Value,) = from_args(args)?;
                let other: Vec<Value> = other.try_iter()?.collect();
                let mine = self.items().clone();
                Ok(match method {
                    "difference" => MutList::new(mine.into_iter().filter(|i| !other.contains(i)).collect()),
                    "intersection" => MutList::new(mine.into_iter().filter(|i| other.contains(i)).collect()),
                    "union" => set(MutList::new(mine.into_iter().chain(other).collect()))?,
                    "issubset" => Value::from(mine.iter().all(|i| other.contains(i))),
                    _ => Value::from(other.iter().all(|i| mine.contains(i))),
                })
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

impl Object for MutMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.pairs().iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.pairs().iter().map(|(k, _)| k.clone()).collect())
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "update" => {
                let (other, kwargs): (Option<Value>, minijinja::value::Kwargs) = from_args(args)?;
                if let Some(other) = other {
                    for key in other.try_iter()? {
                        let value = other.get_item(&key)?;
                        self.set(key, value);
                    }
                }
                for key in kwargs.args() {
                    let value: Value = kwargs.get(key)?;
                    self.set(Value::from(key), value);
                }
                Ok(none())
            }
            "setdefault" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                if let Some(v) = self.get_value_of(&key) {
                    return Ok(v);
                }
                let value = default.unwrap_or_else(none);
                self.set(key, value.clone());
                Ok(value)
            }
            "pop" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                let mut pairs = self.pairs();
                match pairs.iter().position(|(k, _)| *k == key) {
                    Some(at) => Ok(pairs.remove(at).1),
                    None => default.ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("no key {key}"))),
                }
            }
            "popitem" => {
                let pair = self.pairs().pop().ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "empty dict"))?;
                Ok(Value::from(vec![pair.0, pair.1]))
            }
            "clear" => {
                self.pairs().clear();
                Ok(none())
            }
            "copy" => Ok(Value::from_object(MutMap(Mutex::new(self.pairs().clone())))),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

impl MutMap {
    fn get_value_of(&self, key: &Value) -> Option<Value> {
        self.pairs().iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }
}

/// Rewrites `{% set name = [...] %}` and `{% set name = {...} %}` so the literal is
/// changeable: `{% set name = __etlm_mut([...]) %}`. Other tags are kept byte for byte.
pub fn mutable_literals(source: &str) -> Cow<'_, str> {
    if !source.contains("set ") {
        return Cow::Borrowed(source);
    }
    let mut out = String::new();
    let mut copied = 0;
    let mut pos = 0;
    while let Some(i) = source[pos..].find("{%") {
        let start = pos + i;
        // The tag closes after its opening `{%` (`{%}` does not close itself).
        let Some(len) = source[start + 2..].find("%}") else { break };
        let end = start + 2 + len;
        let body = &source[start + 2..end];
        let inner = body.trim_start_matches(['-', '+']).trim_end_matches(['-', '+']);
        if let Some((expr_start, expr_end)) = literal_of_set(inner) {
            let offset = start + 2 + (inner.as_ptr() as usize - body.as_ptr() as usize);
            out.push_str(&source[copied..offset + expr_start]);
            out.push_str(MAKE);
            out.push('(');
            out.push_str(&source[offset + expr_start..offset + expr_end]);
            out.push(')');
            copied = offset + expr_end;
        }
        pos = end + 2;
    }
    if copied == 0 {
        return Cow::Borrowed(source);
    }
    out.push_str(&source[copied..]);
    Cow::Owned(out)
}

/// In a tag's inner text, the byte range of a `set name = <literal>`'s literal.
fn literal_of_set(inner: &str) -> Option<(usize, usize)> {
    let lead = inner.len() - inner.trim_start().len();
    let rest = inner.trim_start().strip_prefix("set ")?;
    let eq = rest.find('=')?;
    let name = rest[..eq].trim();
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') || rest[eq..].starts_with("==") {
        return None;
    }
    let expr = &rest[eq + 1..];
    let trimmed = expr.trim();
    let balanced =
        (trimmed.starts_with('[') && trimmed.ends_with(']')) || (trimmed.starts_with('{') && trimmed.ends_with('}'));
    if !balanced || !closes_at_end(trimmed) {
        return None;
    }
    let expr_start = lead + 4 + eq + 1 + (expr.len() - expr.trim_start().len());
    Some((expr_start, expr_start + trimmed.len()))
}

/// Whether the bracket opening `text` closes at its last character (so `[a] + [b]` is not
/// taken for one literal); brackets inside quotes do not count.
fn closes_at_end(text: &str) -> bool {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '{' | '(') => depth += 1,
            (None, ']' | '}' | ')') => {
                depth -= 1;
                if depth == 0 && i + c.len_utf8() != text.len() {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_literals_become_changeable_and_nothing_else_moves() {
        let src = "{%- set cols = [] -%}{% set d = {'a': 1} %}{% set n = 1 %}{% set x = [1] + [2] %}{{ [] }}";
        assert_eq!(
            mutable_literals(src),
            "{%- set cols = __etlm_mut([]) -%}{% set d = __etlm_mut({'a': 1}) %}{% set n = 1 %}{% set x = [1] + [2] %}{{ [] }}"
        );
        assert!(matches!(mutable_literals("select 1"), Cow::Borrowed(_)));
    }

    // Regression: #18, `{%}` sliced the tag backwards.
    #[test]
    fn a_tag_closes_after_its_opening() {
        assert_eq!(mutable_literals("select '{%}' {% set x = [] %}"), "select '{%}' {% set x = [] %}");
        assert_eq!(mutable_literals("{% set x = [] %} '{%}'"), "{% set x = __etlm_mut([]) %} '{%}'");
    }

    #[test]
    fn lists_and_dicts_change_in_place_inside_loops() {
        let mut env = crate::project::jinja::python::environment();
        env.add_template_owned(
            "t",
            mutable_literals(
                "{% set cols = [] %}{% set seen = {} %}{% for c in ['a', 'b', 'c'] %}{% if c != 'b' %}\
                 {% do cols.append(c | upper) %}{% do seen.update({c: loop.index}) %}{% endif %}{% endfor %}\
                 {{ cols | join(',') }} {{ cols | length }} {{ cols[-1] }} {{ seen['c'] }} {{ seen.items() | list }} \
                 {{ 'A' in cols }} {{ cols.pop() }} {{ cols + ['z'] }} {{ seen.get('q', 0) }}",
            )
            .into_owned(),
        )
        .unwrap();
        let out = env.get_template("t").unwrap().render(()).unwrap();
        assert_eq!(out, "A,C 2 C 3 [('a', 1), ('c', 3)] True C ['A', 'z'] 0");
    }
}
