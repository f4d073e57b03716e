//! Templates embedded in the binary from `templates/`: the built-in generic tests and
//! dbt's cross-database macros (`dbt.date_trunc`, `dbt.datediff`, ...).
//!
//! Lookup is `templates/<engine>/<path>`, then `templates/default/<path>`, so an engine
//! that spells a test differently overrides one file and inherits the rest. A user's own
//! `{% test unique(...) %}` in `macros/` replaces the built-in one.

/// Every embedded template, by its path under `templates/`.
const EMBEDDED: &[(&str, &str)] = &[
    ("default/macros/cross_database.sql", include_str!("../../templates/default/macros/cross_database.sql")),
    ("default/tests/accepted_range.sql", include_str!("../../templates/default/tests/accepted_range.sql")),
    ("default/tests/accepted_values.sql", include_str!("../../templates/default/tests/accepted_values.sql")),
    ("default/tests/expression_is_true.sql", include_str!("../../templates/default/tests/expression_is_true.sql")),
    ("default/tests/freshness.sql", include_str!("../../templates/default/tests/freshness.sql")),
    ("default/tests/not_null.sql", include_str!("../../templates/default/tests/not_null.sql")),
    ("default/tests/relationships.sql", include_str!("../../templates/default/tests/relationships.sql")),
    ("default/tests/row_count.sql", include_str!("../../templates/default/tests/row_count.sql")),
    ("default/tests/unique.sql", include_str!("../../templates/default/tests/unique.sql")),
    (
        "default/tests/unique_combination_of_columns.sql",
        include_str!("../../templates/default/tests/unique_combination_of_columns.sql"),
    ),
];

/// The built-in macro files, under `macros/`.
pub const BUILTIN_MACROS: &[&str] = &["cross_database.sql"];

/// The namespaces dbt projects call built-in macros through (`dbt.hash(...)`).
pub const MACRO_NAMESPACES: &[&str] = &["dbt", "dbt_utils"];

/// The names of the built-in generic tests.
pub const BUILTIN_TESTS: &[&str] = &[
    "accepted_range",
    "accepted_values",
    "expression_is_true",
    "freshness",
    "not_null",
    "relationships",
    "row_count",
    "unique",
    "unique_combination_of_columns",
];

/// The template at `path` for `engine`: its override if it has one, else the default.
/// Returns the path it was found under and the text.
pub fn lookup(engine: &str, path: &str) -> Option<(String, &'static str)> {
    [format!("{engine}/{path}"), format!("default/{path}")]
        .into_iter()
        .find_map(|p| EMBEDDED.iter().find(|(q, _)| *q == p).map(|(q, text)| (format!("templates/{q}"), *text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_test_has_a_default_template() {
        for name in BUILTIN_TESTS {
            let (path, text) = lookup("local", &format!("tests/{name}.sql")).expect("embedded");
            assert_eq!(path, format!("templates/default/tests/{name}.sql"));
            assert!(text.contains(&format!("{{% test {name}(")), "{name}");
        }
        assert!(lookup("local", "tests/nope.sql").is_none());
    }
}
