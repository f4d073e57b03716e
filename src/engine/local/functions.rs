//! SQL functions the embedded engine adds to DataFusion's, or retypes, for SQL written for
//! Postgres (packages' `postgres__` macros and projects' own SQL): `mod(a, b)`; `coalesce`
//! typing a text literal as its other arguments; `round` of a decimal typed the same at
//! every planning stage; `to_char` reading Postgres' patterns (`'FMDay'`, `'YYYY-MM'`) as
//! well as chrono's (`'%Y-%m'`).

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::numeric::rem;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use super::pg_format;

/// Registers the functions on `ctx`, replacing DataFusion's `coalesce` and `round`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(Mod { signature: Signature::user_defined(Volatility::Immutable) }));
    let coalesce = datafusion::functions::core::coalesce();
    ctx.register_udf(ScalarUDF::from(Retyped { inner: coalesce, rule: Rule::TextTakesOtherType }));
    let round = datafusion::functions::math::round();
    ctx.register_udf(ScalarUDF::from(Retyped { inner: round, rule: Rule::DecimalKeepsScale }));
    ctx.register_udf(ScalarUDF::from(ToChar { inner: datafusion::functions::datetime::to_char() }));
}

/// `to_char(date or timestamp, pattern)`: a pattern without `%` is Postgres'; one with `%`
/// is chrono's, as DataFusion's own `to_char` reads it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToChar {
    inner: Arc<ScalarUDF>,
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let postgres = match args.args.get(1) {
            Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(pattern)))) if !pattern.contains('%') => {
                Some(pg_format::parse(pattern))
            }
            _ => None,
        };
        let (Some(tokens), Some(value)) = (postgres, args.args.first()) else {
            return self.inner.invoke_with_args(args);
        };
        if !matches!(value.data_type(), DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)) {
            return self.inner.invoke_with_args(args);
        }
        let array = value.to_array(args.number_rows)?;
        let micros = cast(&array, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
        let micros = micros.as_primitive::<TimestampMicrosecondType>();
        let text: StringArray = micros
            .iter()
            .map(|v| {
                v.and_then(chrono::DateTime::from_timestamp_micros).map(|t| pg_format::format(&t.naive_utc(), &tokens))
            })
            .collect();
        Ok(match value {
            ColumnarValue::Scalar(_) => ColumnarValue::Scalar(ScalarValue::try_from_array(&text, 0)?),
            ColumnarValue::Array(_) => ColumnarValue::Array(Arc::new(text)),
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// Postgres' `mod(a, b)`: the remainder of `a / b`, with the sign of `a` (as `%`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Mod {
    signature: Signature,
}

impl ScalarUDFImpl for Mod {
    fn name(&self) -> &str {
        "mod"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let exact = args.iter().all(|t| t.is_integer() || t.is_null());
        let common = if exact { DataType::Int64 } else { DataType::Float64 };
        Ok(vec![common; args.len()])
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args.first().cloned().unwrap_or(DataType::Int64))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [a, b] = arrays.as_slice() else {
            return datafusion::common::plan_err!("mod takes two arguments");
        };
        Ok(ColumnarValue::Array(Arc::new(rem(a, b)?)))
    }
}

/// A DataFusion function with one typing rule changed to Postgres'; everything else is the
/// original's.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Retyped {
    inner: Arc<ScalarUDF>,
    rule: Rule,
}

#[derive(Debug, PartialEq, Eq, Hash)]
enum Rule {
    /// Postgres types a quoted literal from the other arguments (`coalesce(date_col,
    /// '2099-01-01')` is a date); DataFusion finds no common type for a date and a string.
    /// Text arguments take the common type of the others when there are others.
    TextTakesOtherType,
    /// DataFusion's `round(decimal, n)` reduces the scale to `n` when `n` is a literal, but the
    /// literal is only seen as one after simplification, so the logical plan and the physical
    /// plan disagree on the type and a comparison with the result fails at run time. The
    /// decimal keeps its scale instead (the value is rounded all the same).
    DecimalKeepsScale,
}

impl Retyped {
    fn inner(&self) -> &dyn ScalarUDFImpl {
        self.inner.inner().as_ref()
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

impl ScalarUDFImpl for Retyped {
    fn name(&self) -> &str {
        self.inner().name()
    }

    fn aliases(&self) -> &[String] {
        self.inner().aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner().signature()
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.inner().return_type(args)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if self.rule == Rule::DecimalKeepsScale
            && let Some(input) = args.arg_fields.first()
            && let DataType::Decimal128(precision, scale) = input.data_type()
        {
            let precision = precision.saturating_add(1).min(38);
            let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
            return Ok(Arc::new(Field::new(self.name(), DataType::Decimal128(precision, *scale), nullable)));
        }
        self.inner().return_field_from_args(args)
    }

    fn is_strict(&self) -> bool {
        self.inner().is_strict()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.inner().invoke_with_args(args)
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.inner().simplify(args, info)
    }

    fn short_circuits(&self) -> bool {
        self.inner().short_circuits()
    }

    fn conditional_arguments<'a>(&self, args: &'a [Expr]) -> Option<(Vec<&'a Expr>, Vec<&'a Expr>)> {
        self.inner().conditional_arguments(args)
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner().output_ordering(inputs)
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if self.rule == Rule::TextTakesOtherType && args.iter().any(is_text) {
            let others: Vec<DataType> = args.iter().filter(|t| !is_text(t) && !t.is_null()).cloned().collect();
            if let Some(common) = self.inner().coerce_types(&others).ok().and_then(|types| types.into_iter().next()) {
                return Ok(vec![common; args.len()]);
            }
        }
        self.inner().coerce_types(args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner().documentation()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;

    #[tokio::test]
    async fn mod_is_postgres_remainder() {
        let ctx = datafusion::prelude::SessionContext::new();
        super::register(&ctx);
        let batches =
            ctx.sql("select mod(7, 3) as a, mod(-7, 3) as b, mod(7.5, 2) as c").await.unwrap().collect().await;
        let text = pretty_format_batches(&batches.unwrap()).unwrap().to_string();
        assert!(text.contains("| 1 | -1 | 1.5 |"), "{text}");
    }

    async fn one_row(sql: &str) -> String {
        let ctx = datafusion::prelude::SessionContext::new();
        super::register(&ctx);
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    #[tokio::test]
    async fn coalesce_types_a_text_literal_as_the_other_arguments() {
        let text = one_row(
            "select coalesce(cast(null as date), '2099-01-01') < date '2100-01-01' as a, \
             arrow_typeof(coalesce(cast(null as date), '2099-01-01')) as t, \
             coalesce(cast(null as bigint), '7') + 1 as n, coalesce('a', 'b') as s",
        )
        .await;
        assert!(text.contains("| true | Date32 | 8 | a |"), "{text}");
    }

    #[tokio::test]
    async fn to_char_reads_postgres_and_chrono_patterns() {
        let text = one_row(
            "select to_char(date '2020-11-29', 'FMDay') as a, to_char(timestamp '2020-11-29 14:05:00', 'WW HH24:MI') as b, \
             to_char(date '2020-11-29', '%Y/%m') as c, to_char(cast(null as date), 'Mon') as d",
        )
        .await;
        assert!(text.contains("| Sunday | 48 14:05 | 2020/11 |   |"), "{text}");
    }

    #[tokio::test]
    async fn round_of_a_decimal_compares_with_an_integer() {
        let text = one_row(
            "select count(*) as n from (select cast(2 as bigint) as e, \
             round(cast(1.5 as decimal(28,6)), 0) as a, round(cast(2.345 as decimal(28,6)), 2) as b) \
             where e = a and b = 2.35",
        )
        .await;
        assert!(text.contains("| 1 |"), "{text}");
    }
}
