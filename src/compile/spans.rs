//! Finding where a `ref`, `source` or `config` call is written in a model's source, so
//! diagnostics about recorded calls point at the call itself.

use std::ops::Range;

/// The span of the first call `func(...)` whose quoted arguments end with `last_arg`
/// (and, for `source`, start with `first_arg`), widened to its `{{ ... }}` if it has one.
pub fn find_call(source: &str, func: &str, first_arg: Option<&str>, last_arg: &str) -> Option<Range<usize>> {
    let needle = format!("{func}(");
    let mut from = 0;
    while let Some(i) = source[from..].find(&needle) {
        let start = from + i;
        from = start + needle.len();
        let preceded_by_ident =
            source[..start].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
        if preceded_by_ident {
            continue;
        }
        let Some(close) = source[from..].find(')') else { break };
        let args: Vec<&str> = source[from..from + close]
            .split(',')
            .map(|a| a.trim().trim_matches(['\'', '"']))
            .filter(|a| !a.contains('='))
            .collect();
        let matches = args.last() == Some(&last_arg) && first_arg.is_none_or(|f| args.first() == Some(&f));
        if matches {
            return Some(widen_to_expression(source, start..from + close + 1));
        }
    }
    None
}

/// Widens a range inside `{{ ... }}` to the whole expression.
fn widen_to_expression(source: &str, range: Range<usize>) -> Range<usize> {
    let open = source[..range.start].rfind("{{");
    let close_before = source[..range.start].rfind("}}");
    match open {
        Some(o) if close_before.is_none_or(|c| c < o) => match source[range.end..].find("}}") {
            Some(c) => o..range.end + c + 2,
            None => range,
        },
        _ => range,
    }
}

/// The span of `key` inside the first `config(...)` call, or of the call itself.
pub fn find_config_key(source: &str, key: &str) -> Option<Range<usize>> {
    let start = source.find("config(")?;
    let end = source[start..].find(')').map_or(source.len(), |e| start + e + 1);
    let body = &source[start..end];
    let mut from = 0;
    while let Some(i) = body[from..].find(key) {
        let at = from + i;
        let after = body[at + key.len()..].trim_start();
        let before_ok = body[..at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if before_ok && after.starts_with('=') {
            return Some(start + at..start + at + key.len());
        }
        from = at + key.len();
    }
    Some(start..start + "config".len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_ref_expression() {
        let src = "select *\n    from {{ ref('stg_ordrs') }}\n";
        let r = find_call(src, "ref", None, "stg_ordrs").unwrap();
        assert_eq!(&src[r], "{{ ref('stg_ordrs') }}");
    }

    #[test]
    fn finds_two_argument_sources_and_config_keys() {
        let src = "{{ config(materialized='tabel', tags=['a']) }}\nselect * from {{ source('raw', 'orders') }}";
        let r = find_call(src, "source", Some("raw"), "orders").unwrap();
        assert_eq!(&src[r], "{{ source('raw', 'orders') }}");
        let k = find_config_key(src, "materialized").unwrap();
        assert_eq!(&src[k], "materialized");
    }
}
