//! The Python in dbt's Jinja that templates lean on: methods on strings, mappings and
//! lists (`d.items()`, `s.split(',')`), `zip`, `local_md5`, and `tojson` spaced as Python
//! writes JSON.

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior};

/// How many steps one render may take: a loop or recursion that never ends stops with
/// an error in seconds, far above what any real model or macro takes (the heaviest
/// package macros measured take under a million).
pub const FUEL: u64 = 20_000_000;

/// A value read as a number as Python's `float()` would: numbers, booleans, and text
/// that parses after trimming.
fn number_of(v: &Value) -> Option<f64> {
    match v.kind() {
        minijinja::value::ValueKind::Number => f64::try_from(v.clone()).ok(),
        minijinja::value::ValueKind::Bool => Some(if v.is_true() { 1.0 } else { 0.0 }),
        minijinja::value::ValueKind::String => v.as_str()?.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// An environment with strict undefined (printing, iterating or looking into an undefined
/// name fails; `{% if name %}` of one is false, as in dbt) and the Python methods dbt's Jinja has on
/// strings, mappings and lists (`'a'.upper()`, `d.items()`, `d.get(k)`, `s.split(',')`,
/// `l.index(x)`...), and `local_md5(text)`.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_unknown_method_callback(python_method);
    env.add_function("local_md5", |text: String| crate::hex::md5_hex(&text));
    env.add_function(super::mutable::MAKE, super::mutable::make);
    env.add_function("set", super::mutable::set);
    env.add_function("set_strict", super::mutable::set);
    // Jinja2's `int` and `float`, which dbt has: what does not read as a number is the
    // default (0), never an error (`'' | int` is 0, `'3.9' | int` is 3).
    env.add_filter("int", |v: Value, default: Option<Value>| -> Value {
        let fallback = || default.clone().unwrap_or(Value::from(0));
        match v.as_i64() {
            Some(n) if v.is_integer() => Value::from(n),
            _ => match number_of(&v) {
                Some(f) if f.is_finite() && f.abs() < 9.2e18 => Value::from(f.trunc() as i64),
                _ => fallback(),
            },
        }
    });
    env.add_filter("float", |v: Value, default: Option<Value>| -> Value {
        number_of(&v).map(Value::from).unwrap_or_else(|| default.unwrap_or(Value::from(0.0)))
    });
    // dbt's type filters: text read as a number, a boolean, or any literal.
    env.add_filter("as_text", |v: Value| v.to_string());
    env.add_filter("as_number", |v: Value| -> Result<Value, Error> {
        let text = v.to_string();
        let t = text.trim();
        t.parse::<i64>()
            .map(Value::from)
            .or_else(|_| t.parse::<f64>().map(Value::from))
            .map_err(|_| Error::new(ErrorKind::InvalidOperation, format!("`{t}` is not a number")))
    });
    env.add_filter("as_bool", |v: Value| -> Result<Value, Error> {
        match v.to_string().trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Value::from(true)),
            "false" => Ok(Value::from(false)),
            other => Err(Error::new(ErrorKind::InvalidOperation, format!("`{other}` is not a boolean"))),
        }
    });
    env.add_filter("as_native", |v: Value| -> Value {
        let text = v.to_string();
        match serde_json::from_str::<serde_json::Value>(text.trim()) {
            Ok(json) => Value::from(minijinja::value::Serde(json)),
            Err(_) => match text.trim() {
                "True" => Value::from(true),
                "False" => Value::from(false),
                "None" => Value::from(()),
                _ => v,
            },
        }
    });
    env
}

/// A Python method on a Jinja value. Values cannot change in place here, so the list and
/// mapping methods that would (`append`, `update`...) say how to build a new value.
fn python_method(state: &mut State, value: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    use minijinja::value::ValueKind;
    match (value.kind(), method) {
        (ValueKind::Seq, "index") => {
            let (wanted,): (Value,) = minijinja::value::from_args(args)?;
            let found = value.try_iter()?.position(|item| item == wanted);
            found
                .map(Value::from)
                .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("{wanted} is not in the list")))
        }
        (
            ValueKind::Seq | ValueKind::Map,
            "append" | "extend" | "insert" | "pop" | "remove" | "update" | "clear" | "setdefault",
        ) => Err(Error::new(
            ErrorKind::UnknownMethod,
            format!(
                "`{method}` changes a value in place; etlm's Jinja does that for a list or dict made by \
                     `{{% set name = [...] %}}` or `{{% set name = {{...}} %}}`, not for this one (build a new one: \
                     `{{% set l = l + [x] %}}`)"
            ),
        )),
        _ => minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args),
    }
}

/// dbt's `tojson(value)`: Python's `json.dumps`, so `{"a": 1, "b": [1, 2]}` with its
/// spaces after `:` and `,` (a hash of the text matches dbt's).
pub fn tojson(value: Value) -> Result<String, Error> {
    struct PythonStyle;
    impl serde_json::ser::Formatter for PythonStyle {
        fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
            if first { Ok(()) } else { w.write_all(b", ") }
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
            if first { Ok(()) } else { w.write_all(b", ") }
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
            w.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonStyle);
    serde::Serialize::serialize(&value, &mut serializer)
        .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))?;
    String::from_utf8(out).map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))
}

/// Python's `zip(a, b, ...)`, which dbt's context has: tuples of the lists' items, as
/// long as the shortest list (rendered `(1, 3)`, as dbt does).
pub fn zip(lists: minijinja::value::Rest<Value>) -> Result<Value, Error> {
    let lists: Vec<Vec<Value>> = lists.iter().map(|l| Ok(l.try_iter()?.collect())).collect::<Result<_, Error>>()?;
    let len = lists.iter().map(Vec::len).min().unwrap_or(0);
    let tuple =
        |i: usize| Value::from(minijinja::value::Tuple::from(lists.iter().map(|l| l[i].clone()).collect::<Vec<_>>()));
    Ok(Value::from((0..len).map(tuple).collect::<Vec<_>>()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn int_and_float_read_numbers_as_jinja2_does() {
        let env = super::environment();
        let render = |t: &str| env.render_str(t, ()).unwrap();
        assert_eq!(
            render("{{ '' | int }} {{ 'x' | int(5) }} {{ '-1' | int }} {{ ' 3.9 ' | int }} {{ 2.7 | int }}"),
            "0 5 -1 3 2"
        );
        assert_eq!(render("{{ true | int }} {{ none | int }} {{ '1e3' | int }} {{ 7 | int }}"), "1 0 1000 7");
        assert_eq!(render("{{ '1.5' | float }} {{ 'no' | float }} {{ 2 | float }}"), "1.5 0.0 2.0");
        assert_eq!(render("{% if '4' | int > 0 %}yes{% endif %}"), "yes");
    }

    #[test]
    fn an_undefined_name_is_false_in_a_truth_test_and_an_error_when_printed() {
        let env = super::environment();
        assert_eq!(env.render_str("{% if not_set %}yes{% else %}no{% endif %}", ()).unwrap(), "no");
        let err = env.render_str("{{ not_set }}", ()).unwrap_err();
        assert_eq!(err.kind(), minijinja::ErrorKind::UndefinedError, "{err}");
        assert!(env.render_str("{{ not_set.x }}", ()).is_err());
        assert!(env.render_str("{% for x in not_set %}{% endfor %}", ()).is_err());
    }

    #[test]
    fn zip_pairs_items_up_to_the_shortest_list() {
        let mut env = minijinja::Environment::new();
        env.add_function("zip", super::zip);
        let text = "{% for n, s in zip([1, 2, 3], ['x', 'y']) %}{{ n }}{{ s }} {% endfor %}{{ zip([1], [3]) }}";
        assert_eq!(env.render_str(text, ()).unwrap(), "1x 2y [(1, 3)]", "tuples, rendered as dbt does");
    }

    #[test]
    fn tojson_spaces_like_python() {
        let mut env = minijinja::Environment::new();
        env.add_function("tojson", super::tojson);
        let text = "{{ tojson({'a': 1, 'b': [1, 'x'], 'c': none}) }}";
        assert_eq!(env.render_str(text, ()).unwrap(), r#"{"a": 1, "b": [1, "x"], "c": null}"#);
    }

    #[test]
    fn python_methods_work_and_in_place_ones_say_what_to_do_instead() {
        let env = super::environment();
        let text = "{% set d = {'a': 1} %}{{ 'A,b '.lower().strip().split(',') }} {{ d.items() | list }} \
                    {{ d.get('z', 9) }} {{ [1, 2].index(2) }} {{ local_md5('a') }}";
        assert_eq!(env.render_str(text, ()).unwrap(), "['a', 'b'] [('a', 1)] 9 1 0cc175b9c0f1b6a831c399e269772661");
        let err = env.render_str("{% set l = 'a,b'.split(',') %}{% do l.append(1) %}", ()).unwrap_err();
        assert!(err.to_string().contains("`append` changes a value in place"), "{err}");
    }
}
