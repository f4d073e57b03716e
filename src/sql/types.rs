//! Expression types at compile time, as each dialect's engine would type them: column
//! types, literals, arithmetic with the dialect's promotion rules (integer division stays
//! integer), casts, aggregates, window functions, `case`, `coalesce` and common functions.
//! What the rules below do not cover is [`Type::Unknown`], never a guess. The rules are
//! checked against both real engines by `tests/types.rs`.
//!
//! Type names are the engine's own: Arrow's for DataFusion (lowercase, e.g. `int64`,
//! `decimal128(38, 10)`; the three string encodings are all `utf8`, since Parquet stores
//! them alike), and `pg_typeof`'s for Postgres (`integer`, `numeric`, `double precision`,
//! `text`), without a type modifier.

use datafusion::arrow::datatypes::{DataType as Arrow, IntervalUnit, TimeUnit};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, DataType, ExactNumberInfo, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments,
    TimezoneInfo, UnaryOperator, Value,
};
use datafusion::sql::sqlparser::parser::Parser;

use super::SqlDialect;

/// A column or expression type.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Type {
    /// Not known at compile time.
    #[default]
    Unknown,
    Bool,
    Int16,
    Int32,
    Int64,
    UInt64,
    Float32,
    Float64,
    /// Precision and scale; `None` is Postgres' unconstrained `numeric`.
    Decimal(Option<(u8, i8)>),
    Text,
    /// Postgres `character varying` (on DataFusion, `utf8` like `Text`).
    Varchar,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Interval,
    /// A type known by its name only (lowercase), e.g. `uuid` or `jsonb`.
    Named(String),
}

impl Type {
    pub fn is_known(&self) -> bool {
        *self != Type::Unknown
    }

    /// The engine's name for the type; `None` when unknown.
    pub fn render(&self, dialect: SqlDialect) -> Option<String> {
        match self {
            Type::Unknown => None,
            Type::Named(name) => Some(name.clone()),
            _ => match dialect {
                SqlDialect::DataFusion => self.arrow().map(|t| t.to_string().to_lowercase()),
                SqlDialect::Postgres => self.postgres().map(str::to_string),
            },
        }
    }

    fn arrow(&self) -> Option<Arrow> {
        Some(match self {
            Type::Bool => Arrow::Boolean,
            Type::Int16 => Arrow::Int16,
            Type::Int32 => Arrow::Int32,
            Type::Int64 => Arrow::Int64,
            Type::UInt64 => Arrow::UInt64,
            Type::Float32 => Arrow::Float32,
            Type::Float64 => Arrow::Float64,
            Type::Decimal(Some((p, s))) => Arrow::Decimal128(*p, *s),
            Type::Text | Type::Varchar => Arrow::Utf8,
            Type::Date => Arrow::Date32,
            Type::Time => Arrow::Time64(TimeUnit::Nanosecond),
            Type::Timestamp => Arrow::Timestamp(TimeUnit::Nanosecond, None),
            Type::TimestampTz => Arrow::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into())),
            Type::Interval => Arrow::Interval(IntervalUnit::MonthDayNano),
            Type::Decimal(None) | Type::Unknown | Type::Named(_) => return None,
        })
    }

    fn postgres(&self) -> Option<&'static str> {
        Some(match self {
            Type::Bool => "boolean",
            Type::Int16 => "smallint",
            Type::Int32 => "integer",
            Type::Int64 => "bigint",
            Type::Float32 => "real",
            Type::Float64 => "double precision",
            Type::Decimal(_) => "numeric",
            Type::Text => "text",
            Type::Varchar => "character varying",
            Type::Date => "date",
            Type::Time => "time without time zone",
            Type::Timestamp => "timestamp without time zone",
            Type::TimestampTz => "timestamp with time zone",
            Type::Interval => "interval",
            Type::UInt64 | Type::Unknown | Type::Named(_) => return None,
        })
    }

    /// A type as written in YAML (`data_type:`), in a cast, or by an engine: SQL names
    /// in the dialect, and Arrow's names.
    pub fn parse(text: &str, dialect: SqlDialect) -> Type {
        let name = text.trim().to_lowercase();
        if let Some(t) = arrow_name(&name) {
            return t;
        }
        let parsed = Parser::new(dialect.parser_dialect()).try_with_sql(&name).and_then(|mut p| p.parse_data_type());
        match parsed.map(|t| Type::from_sql(&t, dialect)) {
            Ok(Type::Unknown) | Err(_) => Type::Named(name),
            Ok(t) => t,
        }
    }

    /// The type a cast to `t` gives.
    pub fn from_sql(t: &DataType, dialect: SqlDialect) -> Type {
        let pg = dialect == SqlDialect::Postgres;
        match t {
            DataType::SmallInt(_) | DataType::Int2(_) | DataType::Int16 => Type::Int16,
            DataType::Int(_) | DataType::Integer(_) | DataType::Int4(_) | DataType::Int32 => Type::Int32,
            DataType::BigInt(_) | DataType::Int8(_) | DataType::Int64 => Type::Int64,
            DataType::UInt64 => Type::UInt64,
            DataType::Real | DataType::Float4 | DataType::Float32 => Type::Float32,
            DataType::Float8 | DataType::Float64 | DataType::DoublePrecision | DataType::Double(_) => Type::Float64,
            DataType::Float(info) if pg => match info {
                ExactNumberInfo::Precision(p) if *p <= 24 => Type::Float32,
                _ => Type::Float64,
            },
            DataType::Float(_) => Type::Float32,
            DataType::Numeric(info) | DataType::Decimal(info) | DataType::Dec(info) => match (pg, info) {
                (true, _) => Type::Decimal(None),
                (false, ExactNumberInfo::None) => Type::Decimal(Some((38, 10))),
                (false, ExactNumberInfo::Precision(p)) => decimal(*p as i64, 0),
                (false, ExactNumberInfo::PrecisionAndScale(p, s)) => decimal(*p as i64, *s),
            },
            DataType::Text | DataType::String(_) => Type::Text,
            DataType::Varchar(_) | DataType::CharacterVarying(_) | DataType::CharVarying(_) | DataType::Nvarchar(_) => {
                if pg {
                    Type::Varchar
                } else {
                    Type::Text
                }
            }
            DataType::Char(_) | DataType::Character(_) if pg => Type::Named("character".into()),
            DataType::Char(_) | DataType::Character(_) => Type::Text,
            DataType::Bool | DataType::Boolean => Type::Bool,
            DataType::Date => Type::Date,
            DataType::Time(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => Type::Time,
            DataType::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => Type::Timestamp,
            DataType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => Type::TimestampTz,
            DataType::Interval { .. } => Type::Interval,
            DataType::Custom(name, _) => match name.to_string().to_lowercase().as_str() {
                "timestamptz" => Type::TimestampTz,
                "int4" => Type::Int32,
                "int2" => Type::Int16,
                "float8" => Type::Float64,
                other if pg => Type::Named(other.to_string()),
                _ => Type::Unknown,
            },
            DataType::JSON if pg => Type::Named("json".into()),
            DataType::JSONB if pg => Type::Named("jsonb".into()),
            DataType::Uuid if pg => Type::Named("uuid".into()),
            _ => Type::Unknown,
        }
    }

    /// The type of an Arrow column as the DataFusion engine reads it.
    pub fn from_arrow(t: &Arrow) -> Type {
        match t {
            Arrow::Boolean => Type::Bool,
            Arrow::Int16 => Type::Int16,
            Arrow::Int32 => Type::Int32,
            Arrow::Int64 => Type::Int64,
            Arrow::UInt64 => Type::UInt64,
            Arrow::Float32 => Type::Float32,
            Arrow::Float64 => Type::Float64,
            Arrow::Decimal128(p, s) => Type::Decimal(Some((*p, *s))),
            Arrow::Utf8 | Arrow::Utf8View | Arrow::LargeUtf8 => Type::Text,
            Arrow::Date32 => Type::Date,
            Arrow::Timestamp(TimeUnit::Nanosecond, None) => Type::Timestamp,
            other => Type::Named(other.to_string().to_lowercase()),
        }
    }

    /// The type of a seed column whose CSV values read as `t` (with `declared`, its
    /// `column_types` entry, applied), on the target. Postgres creates the column with
    /// the declared type as written.
    pub fn of_seed(t: &Arrow, declared: Option<&str>, dialect: SqlDialect) -> Type {
        match (dialect, declared) {
            (SqlDialect::DataFusion, _) => Type::from_arrow(t),
            (SqlDialect::Postgres, Some(declared)) => Type::parse(declared, dialect),
            (SqlDialect::Postgres, None) => Type::parse(&postgres_seed_type(t), dialect),
        }
    }

    fn numeric_rank(&self) -> Option<u8> {
        Some(match self {
            Type::Int16 => 1,
            Type::Int32 => 2,
            Type::Int64 => 3,
            Type::Decimal(_) => 4,
            Type::Float32 => 5,
            Type::Float64 => 6,
            _ => return None,
        })
    }

    fn is_integer(&self) -> bool {
        matches!(self, Type::Int16 | Type::Int32 | Type::Int64)
    }

    fn is_string(&self) -> bool {
        matches!(self, Type::Text | Type::Varchar)
    }
}

/// The Postgres column type a seed column gets, as dbt names it: whole numbers `integer`
/// (`bigint` past its range), other numbers `double precision` (dbt's `float8`).
pub fn postgres_seed_type(t: &Arrow) -> String {
    match t {
        Arrow::Int8 | Arrow::Int16 | Arrow::Int32 => "integer".into(),
        Arrow::Int64 | Arrow::UInt8 | Arrow::UInt16 | Arrow::UInt32 | Arrow::UInt64 => "bigint".into(),
        Arrow::Float16 | Arrow::Float32 | Arrow::Float64 => "double precision".into(),
        Arrow::Decimal128(p, s) | Arrow::Decimal256(p, s) => format!("numeric({p}, {s})"),
        Arrow::Boolean => "boolean".into(),
        Arrow::Date32 | Arrow::Date64 => "date".into(),
        Arrow::Timestamp(_, None) => "timestamp".into(),
        Arrow::Timestamp(_, Some(_)) => "timestamptz".into(),
        _ => "text".into(),
    }
}

fn decimal(p: i64, s: i64) -> Type {
    match (u8::try_from(p), i8::try_from(s)) {
        (Ok(p), Ok(s)) if (1..=38).contains(&p) => Type::Decimal(Some((p, s))),
        _ => Type::Unknown,
    }
}

/// Arrow's display names, as seeds and the embedded engine report them.
fn arrow_name(name: &str) -> Option<Type> {
    Some(match name {
        "int16" => Type::Int16,
        "int32" => Type::Int32,
        "int64" => Type::Int64,
        "uint64" => Type::UInt64,
        "float32" => Type::Float32,
        "float64" => Type::Float64,
        "utf8" | "utf8view" | "largeutf8" => Type::Text,
        "date32" => Type::Date,
        "timestamp(ns)" => Type::Timestamp,
        _ => {
            let inner = name.strip_prefix("decimal128(")?.strip_suffix(')')?;
            let (p, s) = inner.split_once(',')?;
            return Some(decimal(p.trim().parse().ok()?, s.trim().parse().ok()?));
        }
    })
}

/// The type of `e`. `column` answers for column references and scalar subqueries.
pub fn infer(e: &Expr, dialect: SqlDialect, column: &dyn Fn(&Expr) -> Type) -> Type {
    let t = |e: &Expr| infer(e, dialect, column);
    let pg = dialect == SqlDialect::Postgres;
    match e {
        Expr::Identifier(i) => match column(e) {
            Type::Unknown if i.quote_style.is_none() => keyword_value(&i.value.to_lowercase(), dialect),
            found => found,
        },
        Expr::CompoundIdentifier(_) | Expr::Subquery(_) => column(e),
        Expr::Nested(inner) => t(inner),
        Expr::Value(v) => literal(&v.value, dialect),
        Expr::TypedString(ts) => Type::from_sql(&ts.data_type, dialect),
        Expr::Interval(_) => Type::Interval,
        Expr::Cast { data_type, .. } => Type::from_sql(data_type, dialect),
        Expr::BinaryOp { left, op, right } => binary(&t(left), op, &t(right), dialect),
        Expr::UnaryOp { op: UnaryOperator::Not, .. } => Type::Bool,
        Expr::UnaryOp { op: UnaryOperator::Minus | UnaryOperator::Plus, expr } => {
            let inner = t(expr);
            if inner.numeric_rank().is_some() { inner } else { Type::Unknown }
        }
        Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotTrue(_)
        | Expr::IsNotFalse(_)
        | Expr::IsDistinctFrom(..)
        | Expr::IsNotDistinctFrom(..)
        | Expr::InList { .. }
        | Expr::InSubquery { .. }
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::Exists { .. } => Type::Bool,
        Expr::Case { conditions, else_result, .. } => {
            let branches = conditions.iter().map(|c| &c.result).chain(else_result.as_deref());
            common(branches, dialect, column)
        }
        Expr::Function(f) => function(f, dialect, column),
        Expr::Substring { .. } | Expr::Trim { .. } => Type::Text,
        Expr::Position { .. } => Type::Int32,
        Expr::Extract { .. } if pg => Type::Decimal(None),
        _ => Type::Unknown,
    }
}

fn literal(v: &Value, dialect: SqlDialect) -> Type {
    let pg = dialect == SqlDialect::Postgres;
    match v {
        Value::Number(n, _) if n.contains(['.', 'e', 'E']) => {
            if pg {
                Type::Decimal(None)
            } else {
                Type::Float64
            }
        }
        Value::Number(n, _) => match (n.parse::<i32>(), n.parse::<i64>()) {
            (Ok(_), _) if pg => Type::Int32,
            (_, Ok(_)) => Type::Int64,
            _ if pg => Type::Decimal(None),
            _ => Type::Unknown,
        },
        Value::SingleQuotedString(_) | Value::EscapedStringLiteral(_) => Type::Text,
        Value::Boolean(_) => Type::Bool,
        _ => Type::Unknown,
    }
}

/// `current_date` and friends, which parse as bare names.
fn keyword_value(name: &str, dialect: SqlDialect) -> Type {
    match name {
        "current_date" => Type::Date,
        "current_timestamp" | "now" if dialect == SqlDialect::Postgres => Type::TimestampTz,
        _ => Type::Unknown,
    }
}

fn binary(l: &Type, op: &BinaryOperator, r: &Type, dialect: SqlDialect) -> Type {
    use BinaryOperator as B;
    match op {
        B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq | B::And | B::Or => Type::Bool,
        B::StringConcat if l.is_string() || r.is_string() => Type::Text,
        B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo => {
            if let Some(t) = temporal(l, op, r, dialect) {
                return t;
            }
            if matches!(op, B::Modulo) && !(l.is_integer() && r.is_integer()) {
                return Type::Unknown;
            }
            promote(l, r, dialect)
        }
        _ => Type::Unknown,
    }
}

/// Date and time arithmetic (Postgres only; DataFusion's rules are left unknown).
fn temporal(l: &Type, op: &BinaryOperator, r: &Type, dialect: SqlDialect) -> Option<Type> {
    use BinaryOperator as B;
    if dialect != SqlDialect::Postgres {
        return None;
    }
    Some(match (l, op, r) {
        (Type::Date, B::Plus | B::Minus, Type::Int16 | Type::Int32) => Type::Date,
        (Type::Int16 | Type::Int32, B::Plus, Type::Date) => Type::Date,
        (Type::Date, B::Minus, Type::Date) => Type::Int32,
        (Type::Date, B::Plus | B::Minus, Type::Interval) => Type::Timestamp,
        (Type::Timestamp, B::Plus | B::Minus, Type::Interval) => Type::Timestamp,
        (Type::TimestampTz, B::Plus | B::Minus, Type::Interval) => Type::TimestampTz,
        (Type::Timestamp, B::Minus, Type::Timestamp) | (Type::TimestampTz, B::Minus, Type::TimestampTz) => {
            Type::Interval
        }
        (Type::Interval, B::Plus | B::Minus, Type::Interval) => Type::Interval,
        _ => return None,
    })
}

/// The type two numbers are computed in.
fn promote(l: &Type, r: &Type, dialect: SqlDialect) -> Type {
    let (Some(a), Some(b)) = (l.numeric_rank(), r.numeric_rank()) else { return Type::Unknown };
    let wider = if a >= b { l } else { r };
    match dialect {
        SqlDialect::Postgres => match wider {
            Type::Decimal(_) => Type::Decimal(None),
            // No operator mixes real with another type: both become double precision.
            Type::Float32 if a != b => Type::Float64,
            _ => wider.clone(),
        },
        SqlDialect::DataFusion => match wider {
            // Decimal precision rules are left unknown; a float wins over a decimal.
            Type::Decimal(_) => Type::Unknown,
            Type::Float32 if a != b => Type::Float64,
            _ => wider.clone(),
        },
    }
}

/// The common type of `case` branches, `coalesce` arguments or union sides; a bare
/// `null` takes the others' type.
pub fn common<'e>(exprs: impl Iterator<Item = &'e Expr>, dialect: SqlDialect, column: &dyn Fn(&Expr) -> Type) -> Type {
    let types: Vec<Type> = exprs
        .filter(|e| !matches!(e, Expr::Value(v) if v.value == Value::Null))
        .map(|e| infer(e, dialect, column))
        .collect();
    unify(&types, dialect)
}

/// The common type of several known types; unknown if any is.
pub fn unify(types: &[Type], dialect: SqlDialect) -> Type {
    let Some(first) = types.first() else { return Type::Unknown };
    if types.iter().all(|t| t == first) {
        return first.clone();
    }
    if types.iter().all(Type::is_string) {
        return Type::Text;
    }
    if types.iter().all(|t| t.numeric_rank().is_some()) {
        return types[1..].iter().fold(first.clone(), |acc, t| match (&acc, t) {
            (Type::Unknown, _) => Type::Unknown,
            _ => promote(&acc, t, dialect),
        });
    }
    Type::Unknown
}

/// The plain arguments of a call.
fn args(f: &Function) -> Vec<&Expr> {
    let FunctionArguments::List(list) = &f.args else { return Vec::new() };
    list.args
        .iter()
        .filter_map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
            | FunctionArg::Named { arg: FunctionArgExpr::Expr(e), .. }
            | FunctionArg::ExprNamed { arg: FunctionArgExpr::Expr(e), .. } => Some(e),
            _ => None,
        })
        .collect()
}

fn function(f: &Function, dialect: SqlDialect, column: &dyn Fn(&Expr) -> Type) -> Type {
    let pg = dialect == SqlDialect::Postgres;
    let Some(name) = f.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_lowercase()) else {
        return Type::Unknown;
    };
    let args = args(f);
    let arg = |i: usize| args.get(i).map_or(Type::Unknown, |e| infer(e, dialect, column));
    match name.as_str() {
        "count" => Type::Int64,
        "sum" => match (pg, arg(0)) {
            (true, Type::Int16 | Type::Int32) => Type::Int64,
            (true, Type::Int64 | Type::Decimal(_)) => Type::Decimal(None),
            (true, t @ (Type::Float32 | Type::Float64 | Type::Interval)) => t,
            (false, Type::Int16 | Type::Int32 | Type::Int64) => Type::Int64,
            (false, Type::UInt64) => Type::UInt64,
            (false, Type::Float32 | Type::Float64) => Type::Float64,
            (false, Type::Decimal(Some((p, s)))) => decimal((p as i64 + 10).min(38), s as i64),
            _ => Type::Unknown,
        },
        "avg" | "mean" => match (pg, arg(0)) {
            (true, Type::Int16 | Type::Int32 | Type::Int64 | Type::Decimal(_)) => Type::Decimal(None),
            (true, Type::Float32 | Type::Float64) => Type::Float64,
            (true, Type::Interval) => Type::Interval,
            (false, Type::Int16 | Type::Int32 | Type::Int64 | Type::UInt64 | Type::Float32 | Type::Float64) => {
                Type::Float64
            }
            (false, Type::Decimal(Some((p, s)))) => decimal((p as i64 + 4).min(38), (s as i64 + 4).min(38)),
            _ => Type::Unknown,
        },
        "min" | "max" | "any_value" | "lag" | "lead" | "first_value" | "last_value" | "nth_value" => arg(0),
        "row_number" | "rank" | "dense_rank" | "ntile" => {
            if pg {
                Type::Int64
            } else {
                Type::UInt64
            }
        }
        "percent_rank" | "cume_dist" => Type::Float64,
        "bool_and" | "bool_or" | "every" => Type::Bool,
        "abs" => match arg(0) {
            t if t.numeric_rank().is_some() => t,
            _ => Type::Unknown,
        },
        "coalesce" | "greatest" | "least" => common(args.iter().copied(), dialect, column),
        // Postgres keeps the first argument's type; DataFusion coerces both to a common one.
        "nullif" if pg => arg(0),
        "nullif" => common(args.iter().copied(), dialect, column),
        "round" | "trunc" | "ceil" | "floor" => match arg(0) {
            Type::Float64 => Type::Float64,
            Type::Decimal(_) if pg => Type::Decimal(None),
            _ => Type::Unknown,
        },
        "lower" | "upper" | "trim" | "btrim" | "ltrim" | "rtrim" | "replace" | "concat" | "concat_ws" | "substr"
        | "substring" | "left" | "right" | "lpad" | "rpad" | "initcap" | "md5" | "reverse" | "repeat"
        | "split_part" | "to_char" | "translate" | "regexp_replace" | "string_agg" => Type::Text,
        "length" | "char_length" | "character_length" | "strpos" => Type::Int32,
        "now" | "current_timestamp" if pg => Type::TimestampTz,
        "current_date" => Type::Date,
        "to_date" => Type::Date,
        "date_trunc" => match arg(1) {
            t @ (Type::Timestamp | Type::TimestampTz) => t,
            _ => Type::Unknown,
        },
        "date_part" if pg => Type::Float64,
        _ => Type::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_names_parse_in_both_vocabularies_and_render_as_the_engine_names_them() {
        let pg = SqlDialect::Postgres;
        let df = SqlDialect::DataFusion;
        for (text, t) in [
            ("integer", Type::Int32),
            ("INT4", Type::Int32),
            ("bigint", Type::Int64),
            ("int8", Type::Int64),
            ("varchar(20)", Type::Varchar),
            ("timestamptz", Type::TimestampTz),
            ("timestamp with time zone", Type::TimestampTz),
            ("double precision", Type::Float64),
            ("numeric(10,2)", Type::Decimal(None)),
            ("utf8", Type::Text),
            ("int32", Type::Int32),
            ("uuid", Type::Named("uuid".into())),
        ] {
            assert_eq!(Type::parse(text, pg), t, "{text}");
        }
        assert_eq!(Type::parse("numeric(10,2)", df), Type::Decimal(Some((10, 2))));
        assert_eq!(Type::parse("decimal128(10, 2)", df).render(df).as_deref(), Some("decimal128(10, 2)"));
        assert_eq!(Type::parse("varchar", df).render(df).as_deref(), Some("utf8"));
        assert_eq!(Type::Timestamp.render(pg).as_deref(), Some("timestamp without time zone"));
        assert_eq!(Type::parse("timestamp", df), Type::Timestamp);
        assert_eq!(Type::Timestamp.render(df), Type::parse(&Type::Timestamp.render(df).unwrap(), df).render(df));
        assert_eq!(Type::Unknown.render(pg), None);
    }

    #[test]
    fn seeds_on_postgres_get_dbt_s_column_types() {
        assert_eq!(Type::of_seed(&Arrow::Int16, None, SqlDialect::Postgres), Type::Int32);
        assert_eq!(Type::of_seed(&Arrow::Int16, None, SqlDialect::DataFusion), Type::Int16);
        assert_eq!(Type::of_seed(&Arrow::Float32, None, SqlDialect::Postgres), Type::Float64);
        assert_eq!(Type::of_seed(&Arrow::Utf8, Some("varchar(8)"), SqlDialect::Postgres), Type::Varchar);
    }
}
