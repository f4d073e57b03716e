//! SQL functions the embedded engine adds to DataFusion's, for SQL written for Postgres
//! (packages' `postgres__` macros): `mod(a, b)`.

use std::sync::Arc;

use datafusion::arrow::compute::kernels::numeric::rem;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;

/// Registers the functions on `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(Mod { signature: Signature::user_defined(Volatility::Immutable) }));
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
}
