//! A fast path for sqlparser's tokenizer, which is a third of the time a compile spends
//! on SQL. It reads the SQL models are mostly made of (ASCII words, numbers, quoted
//! strings and identifiers, `--` comments and the common operators) and produces exactly
//! the tokens and spans sqlparser's tokenizer would. Anything else (non-ASCII text,
//! `/* */` comments, escapes, `$`, exponents, unusual operators...) makes it decline, and
//! the caller tokenizes with sqlparser instead. The tests compare both on every input.

use std::sync::OnceLock;

use datafusion::sql::sqlparser;
use sqlparser::keywords::{ALL_KEYWORDS, ALL_KEYWORDS_INDEX, Keyword};
use sqlparser::tokenizer::{Location, Span, Token, TokenWithSpan, Whitespace, Word};

/// Characters PostgreSQL may continue an operator with: after an operator, one of these
/// could make a longer (or custom) operator, so the fast path declines.
fn is_operator_part(b: u8) -> bool {
    matches!(b, b'+' | b'-' | b'*' | b'/' | b'<' | b'>' | b'=' | b'~' | b'!' | b'@' | b'#' | b'%' | b'^' | b'&')
        || matches!(b, b'|' | b'`' | b'?')
}

fn is_word_part(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Characters that extend a word or number in some dialect, or start a prefixed string
/// (`E'..'`, `U&'..'`) right after one: the fast path declines when one follows.
fn continues_word(b: u8) -> bool {
    matches!(b, b'$' | b'@' | b'#' | b'\'' | b'"' | b'&' | b'`')
}

/// The tokens of `sql` as sqlparser's tokenizer (GenericDialect or PostgreSqlDialect,
/// unescaping) makes them, or `None` when the text has anything this path does not read.
pub(super) fn tokenize(sql: &str) -> Option<Vec<TokenWithSpan>> {
    let bytes = sql.as_bytes();
    if !sql.is_ascii() || bytes.contains(&b'\r') {
        return None;
    }
    let mut lexer = Lexer { bytes, pos: 0, line: 1, line_start: 0 };
    let mut tokens = Vec::with_capacity(bytes.len() / 3);
    while lexer.pos < bytes.len() {
        let start = lexer.location();
        let token = lexer.next_token()?;
        tokens.push(TokenWithSpan::new(token, Span::new(start, lexer.location())));
    }
    Some(tokens)
}

struct Lexer<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u64,
    line_start: usize,
}

impl Lexer<'_> {
    fn location(&self) -> Location {
        Location::new(self.line, (self.pos - self.line_start + 1) as u64)
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    /// Moves past `n` bytes, none of them a newline.
    fn advance(&mut self, n: usize) {
        self.pos += n;
    }

    /// Moves past one byte, which may be a newline.
    fn bump(&mut self) {
        if self.bytes[self.pos] == b'\n' {
            self.line += 1;
            self.line_start = self.pos + 1;
        }
        self.pos += 1;
    }

    fn text(&self, from: usize) -> String {
        // The input is ASCII, so every byte boundary is a char boundary.
        String::from_utf8(self.bytes[from..self.pos].to_vec()).expect("ASCII")
    }

    fn next_token(&mut self) -> Option<Token> {
        let b = self.bytes[self.pos];
        let token = match b {
            b' ' => self.single(Token::Whitespace(Whitespace::Space)),
            b'\t' => self.single(Token::Whitespace(Whitespace::Tab)),
            b'\n' => {
                self.bump();
                Token::Whitespace(Whitespace::Newline)
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => self.word()?,
            b'0'..=b'9' => self.number()?,
            b'\'' => self.string()?,
            b'"' => self.quoted_identifier()?,
            b'.' => match self.peek(1) {
                Some(b'0'..=b'9' | b'_') => return None,
                _ => self.single(Token::Period),
            },
            b'(' => self.single(Token::LParen),
            b')' => self.single(Token::RParen),
            b',' => self.single(Token::Comma),
            b';' => self.single(Token::SemiColon),
            b'+' => self.single(Token::Plus),
            b'*' => self.single(Token::Mul),
            b'-' if self.peek(1) == Some(b'-') => self.line_comment(),
            b'-' => self.operator(1, Token::Minus)?,
            b'/' => match self.peek(1) {
                Some(b'*' | b'/') => return None,
                _ => self.single(Token::Div),
            },
            b'%' => self.operator(1, Token::Mod)?,
            b'=' => match self.peek(1) {
                Some(b'>' | b'=') => return None,
                _ => self.single(Token::Eq),
            },
            b'!' if self.peek(1) == Some(b'=') => self.exact(2, Token::Neq),
            b'<' => match self.peek(1) {
                Some(b'=') => self.operator(2, Token::LtEq)?,
                Some(b'>') => self.operator(2, Token::Neq)?,
                _ => self.operator(1, Token::Lt)?,
            },
            b'>' => match self.peek(1) {
                Some(b'=') => self.operator(2, Token::GtEq)?,
                _ => self.operator(1, Token::Gt)?,
            },
            b'|' if self.peek(1) == Some(b'|') && self.peek(2) != Some(b'/') => {
                self.operator(2, Token::StringConcat)?
            }
            b':' if self.peek(1) == Some(b':') => self.exact(2, Token::DoubleColon),
            _ => return None,
        };
        Some(token)
    }

    fn single(&mut self, token: Token) -> Token {
        self.exact(1, token)
    }

    fn exact(&mut self, len: usize, token: Token) -> Token {
        self.advance(len);
        token
    }

    /// An operator of `len` bytes that no operator character may follow (sqlparser would
    /// read a longer or custom operator).
    fn operator(&mut self, len: usize, token: Token) -> Option<Token> {
        if self.peek(len).is_some_and(is_operator_part) {
            return None;
        }
        Some(self.exact(len, token))
    }

    fn word(&mut self) -> Option<Token> {
        let from = self.pos;
        let len = self.bytes[from..].iter().position(|&b| !is_word_part(b)).unwrap_or(self.bytes.len() - from);
        self.advance(len);
        if self.peek(0).is_some_and(continues_word) {
            return None;
        }
        let value = self.text(from);
        let keyword = keyword(&value);
        Some(Token::Word(Word { value, quote_style: None, keyword }))
    }

    /// Digits, optionally `.` and more digits: sqlparser's `Number`. Anything that would
    /// make it a different token (`0x`, `1.`, `1e5`, `1_000`, `10L`, `1abc`) declines.
    fn number(&mut self) -> Option<Token> {
        let from = self.pos;
        let digits = |l: &Lexer<'_>| l.bytes[l.pos..].iter().take_while(|b| b.is_ascii_digit()).count();
        let n = digits(self);
        self.advance(n);
        if self.peek(0) == Some(b'.') {
            self.advance(1);
            let fraction = digits(self);
            if fraction == 0 {
                return None;
            }
            self.advance(fraction);
        }
        if self.peek(0).is_some_and(|b| is_word_part(b) || b == b'.' || continues_word(b)) {
            return None;
        }
        Some(Token::Number(self.text(from), false))
    }

    /// `'...'` with `''` for a quote; a backslash declines (its meaning depends on the
    /// dialect and on an `E` prefix).
    fn string(&mut self) -> Option<Token> {
        self.advance(1);
        let mut value = String::new();
        loop {
            match self.peek(0)? {
                b'\'' if self.peek(1) == Some(b'\'') => {
                    value.push('\'');
                    self.advance(2);
                }
                b'\'' => {
                    self.advance(1);
                    break;
                }
                b'\\' => return None,
                b => {
                    value.push(b as char);
                    self.bump();
                }
            }
        }
        Some(Token::SingleQuotedString(value))
    }

    /// `"..."` without `""` inside.
    fn quoted_identifier(&mut self) -> Option<Token> {
        let from = self.pos + 1;
        let len = self.bytes[from..].iter().position(|&b| b == b'"')?;
        if self.bytes.get(from + len + 1) == Some(&b'"') {
            return None;
        }
        for _ in 0..len + 2 {
            self.bump();
        }
        let value = String::from_utf8(self.bytes[from..from + len].to_vec()).expect("ASCII");
        Some(Token::Word(Word { value, quote_style: Some('"'), keyword: Keyword::NoKeyword }))
    }

    /// `--` to the end of the line, the newline included.
    fn line_comment(&mut self) -> Token {
        self.advance(2);
        let from = self.pos;
        let len = self.bytes[from..].iter().position(|&b| b == b'\n').map_or(self.bytes.len() - from, |n| n + 1);
        for _ in 0..len {
            self.bump();
        }
        Token::Whitespace(Whitespace::SingleLineComment { comment: self.text(from), prefix: "--".to_string() })
    }
}

/// The keyword an unquoted word is, as sqlparser looks it up (ASCII case-insensitively),
/// through a table indexed by length and first letter.
fn keyword(word: &str) -> Keyword {
    static TABLE: OnceLock<Vec<Vec<(&'static str, Keyword)>>> = OnceLock::new();
    const LONGEST: usize = 48;
    let slot = |len: usize, first: u8| len * 64 + usize::from(first.to_ascii_uppercase() & 63);
    let table = TABLE.get_or_init(|| {
        let mut table = vec![Vec::new(); (LONGEST + 1) * 64];
        for (name, kw) in ALL_KEYWORDS.iter().zip(ALL_KEYWORDS_INDEX) {
            assert!(name.len() <= LONGEST, "a keyword longer than the lookup table: {name}");
            table[slot(name.len(), name.as_bytes()[0])].push((*name, *kw));
        }
        table
    });
    if word.len() > LONGEST {
        return Keyword::NoKeyword;
    }
    table[slot(word.len(), word.as_bytes()[0])]
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
        .map_or(Keyword::NoKeyword, |(_, kw)| *kw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::{Dialect, GenericDialect, PostgreSqlDialect};
    use sqlparser::tokenizer::Tokenizer;

    const DIALECTS: [&dyn Dialect; 2] = [&GenericDialect {}, &PostgreSqlDialect {}];

    /// sqlparser's tokens for `sql` in each dialect, when it tokenizes it.
    fn reference(sql: &str, dialect: &dyn Dialect) -> Option<Vec<TokenWithSpan>> {
        Tokenizer::new(dialect, sql).with_unescape(true).tokenize_with_location().ok()
    }

    /// The fast path either declines `sql` or gives exactly sqlparser's tokens and spans in
    /// both dialects; returns whether it took it.
    fn agrees(sql: &str) -> bool {
        let Some(fast) = tokenize(sql) else { return false };
        for dialect in DIALECTS {
            let slow =
                reference(sql, dialect).unwrap_or_else(|| panic!("fast path took what sqlparser rejects: {sql:?}"));
            assert_eq!(fast.len(), slow.len(), "token count of {sql:?}:\nfast {fast:?}\nslow {slow:?}");
            for (f, s) in fast.iter().zip(&slow) {
                assert_eq!((&f.token, f.span.start, f.span.end), (&s.token, s.span.start, s.span.end), "in {sql:?}");
            }
        }
        true
    }

    #[test]
    fn reads_common_sql_exactly_as_sqlparser_does() {
        let cases = [
            "select a, b.c as d from \"main\".\"t\" where x >= 1 and y <> 2 or z != 3.25",
            "with base as (\n    select id, sum(amount) as amount\n    from t\n    group by id\n)\nselect * from base",
            "select 'it''s', '', 'a\nb' || 'c' from t -- note\nwhere a <= 4 and b < 5 and c > 6 and d = 7",
            "select cast(x as bigint), y::date, -1, 2 * 3 / 4 % 5, f(a)-g(b) from t;",
            "select\tcase when a then 1 else 0 end as flag -- trailing comment",
            "select row_number() over (partition by id order by dt desc) as rn from t",
            "select b, bb, r, n, e, x, u, q, N1, Ex from t",
            "Select DISTINCT \"Mixed Case\", _under, a1_2 FROM t",
            "--only a comment\n",
            "\n\n  ",
            "",
        ];
        for sql in cases {
            assert!(agrees(sql), "declined {sql:?}");
        }
    }

    #[test]
    fn declines_what_it_does_not_read() {
        let cases = [
            "select 'é'",
            "select 1\r\n",
            "select /* c */ 1",
            "select E'a\\nb'",
            "select 'a\\b'",
            "select $1",
            "select 1e5",
            "select 0x1f",
            "select 1.",
            "select .5",
            "select a->>'b'",
            "select a <=> b",
            "select a <-1",
            "select a ||/ b",
            "select \"a\"\"b\"",
            "select `a`",
            "select a[1]",
            "select U&'x'",
            "select a:b",
            "select 'unterminated",
        ];
        for sql in cases {
            assert!(tokenize(sql).is_none(), "took {sql:?}");
        }
    }

    /// Random mixes of SQL fragments, the unusual ones included: whatever the fast path
    /// takes, it reads as sqlparser does.
    #[test]
    fn agrees_with_sqlparser_on_random_fragments() {
        const PIECES: &[&str] = &[
            "select", "SELECT", "from", "x", "_a1", "B", "e", "N", "U", "0", "12", "3.5", "007", ".", ",", "(", ")",
            ";", "+", "-", "*", "/", "%", "=", "<", ">", "!", "|", ":", "&", "^", "~", "@", "#", "$", "?", "[", "]",
            "'s'", "''", "'a''b'", "'\n'", "\"q\"", "\"\"", " ", "  ", "\t", "\n", "-- c\n", "--", "'", "\"", "é",
            "\\", "\r", "/*", "*/", "e5", "x1", "L", "_", "`",
        ];
        let mut next = crate::testing::pseudo_random(0x9e37_79b9_7f4a_7c15_u64);
        let mut taken = 0;
        for _ in 0..40_000 {
            let len = 1 + next() % 8;
            let sql: String = (0..len).map(|_| PIECES[next() % PIECES.len()]).collect();
            taken += usize::from(agrees(&sql));
        }
        assert!(taken > 5_000, "the fast path took only {taken} of 40,000 inputs");
    }

    #[test]
    fn agrees_with_sqlparser_on_the_repository_sql() {
        let texts = crate::testing::repository_texts(&["example_project", "tests", "templates"], &["sql"]);
        let taken = texts.iter().filter(|text| agrees(&without_jinja(text))).count();
        assert!(taken > 50, "the fast path took only {taken} of {} repository files", texts.len());
    }

    /// The SQL around a template's Jinja: each `{{ }}` becomes the name `x`, and `{% %}` and
    /// `{# #}` are dropped.
    fn without_jinja(template: &str) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some((open, close)) =
            [("{{", "}}"), ("{%", "%}"), ("{#", "#}")].iter().filter_map(|&(o, c)| Some((rest.find(o)?, c))).min()
        {
            out.push_str(&rest[..open]);
            if close == "}}" {
                out.push('x');
            }
            let Some(end) = rest[open..].find(close) else { return out };
            rest = &rest[open + end + 2..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn looks_up_every_keyword_in_any_case() {
        for (name, kw) in ALL_KEYWORDS.iter().zip(ALL_KEYWORDS_INDEX) {
            assert_eq!(keyword(name), *kw);
            assert_eq!(keyword(&name.to_lowercase()), *kw);
        }
        assert_eq!(keyword("selectx"), Keyword::NoKeyword);
    }
}
