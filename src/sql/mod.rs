//! Compiled SQL: parsing in the target's dialect (with the sqlparser DataFusion
//! re-exports, so there is one copy), and mapping positions in compiled SQL back to the
//! model file the user edits.

pub mod fold;
mod lex;
mod position;
pub mod types;

use datafusion::sql::sqlparser;
use sqlparser::ast::Statement;
use sqlparser::dialect::{Dialect, GenericDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;

pub use self::position::PositionMap;

/// The SQL dialect of a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlDialect {
    /// DataFusion's own (sqlparser's generic dialect).
    DataFusion,
    Postgres,
}

impl SqlDialect {
    /// The dialect's name as lineage tools spell it (OpenLineage's `sql` facet).
    pub fn name(self) -> &'static str {
        match self {
            SqlDialect::DataFusion => "datafusion",
            SqlDialect::Postgres => "postgres",
        }
    }

    /// True if an unaliased expression's output column is named by the expression's SQL
    /// text (DataFusion: `count(*)`, `a + 1`); false if named as Postgres does, by the
    /// function or cast inside it, else `?column?`.
    pub fn names_unaliased_columns_by_expression_text(self) -> bool {
        match self {
            SqlDialect::DataFusion => true,
            SqlDialect::Postgres => false,
        }
    }

    fn parser_dialect(self) -> &'static dyn Dialect {
        match self {
            SqlDialect::DataFusion => &GenericDialect {},
            SqlDialect::Postgres => &PostgreSqlDialect {},
        }
    }
}

/// A problem with a model's compiled SQL, at a 1-based line and column of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// Parses a model's compiled SQL, which must be exactly one query.
pub fn parse_query(sql: &str, dialect: SqlDialect) -> Result<Statement, SqlError> {
    let parser = Parser::new(dialect.parser_dialect());
    let parser = match lex::tokenize(sql) {
        Some(tokens) => Ok(parser.with_tokens_with_locations(tokens)),
        None => parser.try_with_sql(sql),
    };
    let statements = parser.and_then(|mut p| p.parse_statements()).map_err(|e| {
        let text = e.to_string();
        // An error at the end of input carries no position: point at the last character.
        let (line, column) = position_in(&text).unwrap_or_else(|| end_of(sql));
        let message = text.trim_start_matches("sql parser error: ").trim_start_matches("sql tokenizer error: ");
        let message = message.find(" at Line: ").map_or(message, |i| &message[..i]);
        SqlError { message: message.to_string(), line, column }
    })?;
    let mut iter = statements.into_iter();
    match (iter.next(), iter.next()) {
        (Some(stmt @ Statement::Query(_)), None) => Ok(stmt),
        (None, _) => Err(SqlError { message: "the model has no SQL".into(), line: 1, column: 1 }),
        (Some(_), None) => Err(SqlError {
            message: "a model must be a single SELECT (or WITH ... SELECT) query".into(),
            line: 1,
            column: 1,
        }),
        (Some(_), Some(second)) => {
            let span = sqlparser::ast::Spanned::span(&second);
            Err(SqlError {
                message: "a model must be one query; found a second statement".into(),
                line: span.start.line.max(1) as usize,
                column: span.start.column.max(1) as usize,
            })
        }
    }
}

/// A fingerprint two queries share when they differ only in the text of quoted
/// identifiers and string literals (not in whether one is empty), and in the kind of
/// their whitespace and comments: sqlparser accepts both or neither, so a syntax check of
/// one stands for the other (generic tests differ mostly in the relation they read).
/// `None` when the fast tokenizer declines the text.
pub fn syntax_shape(sql: &str) -> Option<u64> {
    use sqlparser::tokenizer::{Token, Whitespace, Word};
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let stand_in = |text: &str| if text.is_empty() { String::new() } else { "x".to_string() };
    for t in lex::tokenize(sql)? {
        match t.token {
            Token::Word(Word { value, quote_style: Some(q), keyword }) => {
                Token::Word(Word { value: stand_in(&value), quote_style: Some(q), keyword }).hash(&mut hasher)
            }
            Token::SingleQuotedString(text) => Token::SingleQuotedString(stand_in(&text)).hash(&mut hasher),
            Token::Whitespace(_) => Token::Whitespace(Whitespace::Space).hash(&mut hasher),
            token => token.hash(&mut hasher),
        }
    }
    Some(hasher.finish())
}

/// 1-based line and column of the last non-blank character.
fn end_of(sql: &str) -> (usize, usize) {
    let trimmed = sql.trim_end();
    let line = trimmed.matches('\n').count() + 1;
    let column = trimmed.rsplit('\n').next().map_or(1, |l| l.chars().count().max(1));
    (line, column)
}

/// Reads `Line: 3, Column: 14` out of a sqlparser message.
fn position_in(text: &str) -> Option<(usize, usize)> {
    let i = text.rfind("Line: ")?;
    let rest = &text[i + "Line: ".len()..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_position_of_a_syntax_error() {
        let err = parse_query("select a\nfrom t\n  where )", SqlDialect::DataFusion).unwrap_err();
        assert_eq!((err.line, err.column), (3, 9));
        assert!(err.message.starts_with("Expected"), "{}", err.message);
        let eof = parse_query("select a,\n  from t where", SqlDialect::DataFusion).unwrap_err();
        assert_eq!((eof.line, eof.column), (2, 14));
    }

    #[test]
    fn queries_differing_only_in_quoted_text_share_a_shape() {
        let shape = |sql| syntax_shape(sql).expect("the fast tokenizer reads it");
        let not_null = shape("select * from \"main\".\"orders\" where id is null-- note\n");
        assert_eq!(not_null, shape("select *\nfrom \"prod\".\"customers\"\twhere id is null\n"));
        assert_ne!(not_null, shape("select * from \"main\".\"orders\" where name is null"));
        assert_ne!(not_null, shape("select * from \"main\".\"\" where id is null"));
        assert_eq!(shape("select 'a' as x"), shape("select 'b c' as x"));
        assert_ne!(shape("select 'a' as x"), shape("select '' as x"));
        assert_ne!(shape("select 1 as x"), shape("select 2 as x"));
    }

    /// Random queries built from a few templates: all those of one shape parse alike.
    #[test]
    fn a_shape_parses_one_way() {
        let pieces: [&[&str]; 4] = [
            &["\"a\"", "\"b c\"", "\"\"", "\"select\"", "t", "x"],
            &["'s'", "''", "'it''s'", "1", "1.5", "null"],
            &["=", "<>", "is", "is not", "in", "||", ",", "and", ""],
            &["select", "from", "where", "(", ")", "group by", "*", ".", "as"],
        ];
        let mut next = crate::testing::pseudo_random(0x2545_f491_4f6c_dd1d_u64);
        let mut outcomes: std::collections::HashMap<u64, (bool, String)> = std::collections::HashMap::new();
        for _ in 0..20_000 {
            let mut sql = String::from("select ");
            for _ in 0..(1 + next() % 10) {
                let group = pieces[next() % pieces.len()];
                sql.push_str(group[next() % group.len()]);
                sql.push(' ');
            }
            let Some(shape) = syntax_shape(&sql) else { continue };
            let ok = parse_query(&sql, SqlDialect::Postgres).is_ok();
            let (first_ok, first) = outcomes.entry(shape).or_insert((ok, sql.clone()));
            assert_eq!(*first_ok, ok, "one shape, two outcomes:\n{first}\n{sql}");
        }
        assert!(outcomes.values().filter(|(ok, _)| *ok).count() > 50, "too few valid queries to compare");
    }

    #[test]
    fn accepts_one_query_only() {
        assert!(parse_query("with a as (select 1 as x) select x from a", SqlDialect::Postgres).is_ok());
        assert!(parse_query("select 1; select 2", SqlDialect::Postgres).is_err());
        assert!(parse_query("create table t (a int)", SqlDialect::Postgres).is_err());
    }
}
