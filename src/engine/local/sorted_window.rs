//! One pass over sorted input for the common window functions.
//!
//! DataFusion's `WindowAggExec` slices its input into one batch per partition and builds
//! an accumulator (or evaluator) per partition and per window function, then concatenates
//! the per-partition results. With many small partitions (`partition by id`, the usual way
//! to deduplicate) that per-partition work is almost all of the query. [`SortedWindowExec`]
//! computes the same columns in one pass over the whole input, from the partition and
//! peer boundaries, for:
//! - `row_number()`, `rank()`, `dense_rank()`;
//! - `count(..)` and `sum(..)` of `bigint` or `double` values, over the frames
//!   `unbounded preceding` to `current row` (ROWS or RANGE) or to `unbounded following`.
//!
//! Sums add each step's values with arrow's `sum` and then add that to the running total,
//! exactly as DataFusion's accumulator does, so floating-point results are identical.
//! Anything else (DISTINCT, FILTER, IGNORE NULLS, other functions, types or frames) keeps
//! DataFusion's operator: [`SortedWindowExec::try_new`] returns `None`.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, PrimitiveArray, UInt64Array};
use datafusion::arrow::compute::{concat_batches, partition};
use datafusion::arrow::datatypes::{
    ArrowNativeType, ArrowNativeTypeOp, ArrowPrimitiveType, DataType, Float64Type, Int64Type,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, internal_err};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{WindowFrameBound, WindowFrameUnits};
use datafusion::physical_expr::OrderingRequirements;
use datafusion::physical_expr::window::{PlainAggregateWindowExpr, StandardWindowExpr};
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::windows::{WindowAggExec, WindowUDFExpr};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputDistributionRequirements, PlanProperties,
    SendableRecordBatchStream, WindowExpr,
};
use futures_util::{StreamExt, TryStreamExt, stream};

/// A window column this operator computes.
#[derive(Debug, Clone)]
enum Column {
    RowNumber,
    Rank,
    DenseRank,
    /// A running aggregate of `argument` over `frame`.
    Aggregate {
        aggregate: Aggregate,
        frame: Frame,
        argument: Arc<dyn PhysicalExpr>,
    },
}

/// An aggregate this operator computes.
#[derive(Debug, Clone, Copy)]
enum Aggregate {
    Count,
    Sum,
}

/// The frames of a running aggregate this operator computes; every one starts at the
/// partition's first row.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Frame {
    /// `rows between unbounded preceding and current row`.
    ToRow,
    /// `range between unbounded preceding and current row`: through the last peer.
    ToPeer,
    /// The whole partition.
    Partition,
}

/// Replaces a `WindowAggExec` whose functions are all supported (see the module docs).
#[derive(Debug)]
pub struct SortedWindowExec {
    /// The operator replaced: its schema, properties and input requirements.
    window: Arc<WindowAggExec>,
    columns: Vec<Column>,
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    order_by: Vec<PhysicalSortExpr>,
    metrics: ExecutionPlanMetricsSet,
}

/// `window` as a [`SortedWindowExec`] when its functions are all supported, else `window`
/// itself as the error.
pub fn replace(window: Arc<WindowAggExec>) -> Result<Arc<dyn ExecutionPlan>, Arc<dyn ExecutionPlan>> {
    match SortedWindowExec::try_new(Arc::clone(&window)) {
        Some(sorted) => Ok(Arc::new(sorted)),
        None => Err(window),
    }
}

impl SortedWindowExec {
    /// The operator for `window`, or `None` when one of its functions is not supported.
    pub fn try_new(window: Arc<WindowAggExec>) -> Option<Self> {
        let exprs = window.window_expr();
        let first = exprs.first()?;
        let input = window.input().schema();
        let mut columns = Vec::with_capacity(exprs.len());
        for expr in exprs {
            if expr.partition_by() != first.partition_by() || expr.order_by() != first.order_by() {
                return None;
            }
            columns.push(column(expr.as_ref(), &input)?);
        }
        Some(SortedWindowExec {
            partition_by: first.partition_by().to_vec(),
            order_by: first.order_by().to_vec(),
            window,
            columns,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

/// The supported column `expr` computes over `input`, if it is one.
fn column(expr: &dyn WindowExpr, input: &datafusion::arrow::datatypes::Schema) -> Option<Column> {
    let output = expr.field().ok()?.data_type().clone();
    let any = expr.as_any();
    if let Some(standard) = any.downcast_ref::<StandardWindowExpr>() {
        let udf = standard.get_standard_func_expr().as_any().downcast_ref::<WindowUDFExpr>()?;
        let column = match udf.fun().name() {
            "row_number" => Column::RowNumber,
            "rank" => Column::Rank,
            "dense_rank" => Column::DenseRank,
            _ => return None,
        };
        return (output == DataType::UInt64).then_some(column);
    }
    let aggregate_expr = any.downcast_ref::<PlainAggregateWindowExpr>()?;
    let aggregate = aggregate_expr.get_aggregate_expr();
    if aggregate.is_distinct() || aggregate.ignore_nulls() || aggregate.is_reversed() {
        return None;
    }
    // DataFusion does not export the trait that exposes the FILTER clause; the derived
    // `Debug` ends with that field (a test checks a FILTER keeps DataFusion's operator).
    if !format!("{aggregate_expr:?}").ends_with("filter: None }") {
        return None;
    }
    let [argument] = aggregate.expressions().try_into().ok()?;
    let frame = frame(expr)?;
    let argument_type = argument.data_type(input).ok()?;
    let aggregate = match aggregate.fun().name() {
        "count" if output == DataType::Int64 => Aggregate::Count,
        "sum" if output == argument_type && matches!(output, DataType::Int64 | DataType::Float64) => Aggregate::Sum,
        _ => return None,
    };
    Some(Column::Aggregate { aggregate, frame, argument })
}

/// The supported frame of `expr`, if it has one.
fn frame(expr: &dyn WindowExpr) -> Option<Frame> {
    let frame = expr.get_window_frame();
    if !matches!(frame.start_bound, WindowFrameBound::Preceding(ref v) if v.is_null()) {
        return None;
    }
    match (&frame.end_bound, frame.units) {
        (WindowFrameBound::Following(v), WindowFrameUnits::Rows | WindowFrameUnits::Range) if v.is_null() => {
            Some(Frame::Partition)
        }
        (WindowFrameBound::CurrentRow, WindowFrameUnits::Rows) => Some(Frame::ToRow),
        (WindowFrameBound::CurrentRow, WindowFrameUnits::Range) => Some(Frame::ToPeer),
        _ => None,
    }
}

impl DisplayAs for SortedWindowExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<_> = self.window.window_expr().iter().map(|e| e.name().to_owned()).collect();
        write!(f, "SortedWindowExec: wdw=[{}]", names.join(", "))
    }
}

impl ExecutionPlan for SortedWindowExec {
    fn name(&self) -> &str {
        "SortedWindowExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.window.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.window.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.window.apply_expressions(f)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        self.window.maintains_input_order()
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        self.window.required_input_ordering()
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.window.input_distribution_requirements()
    }

    #[allow(deprecated)] // the window's own `with_new_children`
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let window = Arc::clone(&self.window).with_new_children(children)?;
        Ok(match window.downcast_ref::<WindowAggExec>() {
            Some(window) => replace(Arc::new(WindowAggExec::clone(window))).unwrap_or_else(|w| w),
            None => window,
        })
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.window.input().execute(partition, context)?;
        let input_schema = input.schema();
        let schema = self.schema();
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let (columns, partition_by, order_by) =
            (self.columns.clone(), self.partition_by.clone(), self.order_by.clone());
        let out_schema = Arc::clone(&schema);
        let output = stream::once(async move {
            let batches: Vec<RecordBatch> = input.try_collect().await?;
            let _timer = metrics.elapsed_compute().timer();
            let batch = concat_batches(&input_schema, &batches)?;
            drop(batches);
            if batch.num_rows() == 0 {
                return Ok(None);
            }
            let bounds = Bounds::of(&batch, &partition_by, &order_by, &columns)?;
            let mut arrays = batch.columns().to_vec();
            for column in &columns {
                arrays.push(evaluate(column, &batch, &bounds)?);
            }
            let out = RecordBatch::try_new(out_schema, arrays)?;
            metrics.record_output(out.num_rows());
            Ok(Some(out))
        })
        .filter_map(|r: Result<Option<RecordBatch>>| async move { r.transpose() });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, output)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// The partitions of a sorted batch, and its peer groups (rows of a partition with equal
/// ORDER BY values) when a column needs them. Both are ranges of rows, in order; peer
/// groups never cross a partition's end.
struct Bounds {
    partitions: Vec<Range<usize>>,
    peers: Vec<Range<usize>>,
}

impl Bounds {
    fn of(
        batch: &RecordBatch,
        partition_by: &[Arc<dyn PhysicalExpr>],
        order_by: &[PhysicalSortExpr],
        columns: &[Column],
    ) -> Result<Bounds> {
        let rows = batch.num_rows();
        let mut keys =
            partition_by.iter().map(|e| e.evaluate(batch)?.into_array(rows)).collect::<Result<Vec<ArrayRef>>>()?;
        let partitions = ranges(rows, &keys)?;
        let needs_peers = columns
            .iter()
            .any(|c| matches!(c, Column::Rank | Column::DenseRank | Column::Aggregate { frame: Frame::ToPeer, .. }));
        let peers = if needs_peers {
            for sort in order_by {
                keys.push(sort.expr.evaluate(batch)?.into_array(rows)?);
            }
            ranges(rows, &keys)?
        } else {
            Vec::new()
        };
        Ok(Bounds { partitions, peers })
    }

    /// The ranges a running aggregate over `frame` adds at a time, each paired with
    /// whether it starts a partition.
    fn steps(&self, frame: Frame) -> Vec<(Range<usize>, bool)> {
        match frame {
            Frame::Partition => self.partitions.iter().map(|p| (p.clone(), true)).collect(),
            Frame::ToPeer => self.groups(&self.peers).map(|(group, first)| (group.clone(), first)).collect(),
            Frame::ToRow => {
                self.partitions.iter().flat_map(|p| p.clone().map(move |i| (i..i + 1, i == p.start))).collect()
            }
        }
    }

    /// `groups` (ranges nested in the partitions), each paired with whether it starts a
    /// partition.
    fn groups<'a>(&'a self, groups: &'a [Range<usize>]) -> impl Iterator<Item = (&'a Range<usize>, bool)> + 'a {
        let mut starts = self.partitions.iter().map(|p| p.start).peekable();
        groups.iter().map(move |group| {
            let first = starts.next_if_eq(&group.start).is_some();
            (group, first)
        })
    }
}

/// The ranges of equal consecutive rows over `keys` (all rows when there is none).
fn ranges(rows: usize, keys: &[ArrayRef]) -> Result<Vec<Range<usize>>> {
    if keys.is_empty() {
        return Ok(std::iter::once(0..rows).collect());
    }
    Ok(partition(keys)?.ranges())
}

/// The values of `column` for every row of `batch`.
fn evaluate(column: &Column, batch: &RecordBatch, bounds: &Bounds) -> Result<ArrayRef> {
    Ok(match column {
        Column::RowNumber => {
            Arc::new(UInt64Array::from_iter_values(bounds.partitions.iter().flat_map(|p| 1..=p.len() as u64)))
        }
        Column::Rank => {
            let mut start = 0;
            Arc::new(UInt64Array::from_iter_values(bounds.groups(&bounds.peers).flat_map(|(peer, first)| {
                if first {
                    start = peer.start;
                }
                std::iter::repeat_n((peer.start - start + 1) as u64, peer.len())
            })))
        }
        Column::DenseRank => {
            let mut rank = 0;
            Arc::new(UInt64Array::from_iter_values(bounds.groups(&bounds.peers).flat_map(|(peer, first)| {
                rank = if first { 1 } else { rank + 1 };
                std::iter::repeat_n(rank, peer.len())
            })))
        }
        Column::Aggregate { aggregate, frame, argument } => {
            let values = argument.evaluate(batch)?.into_array(batch.num_rows())?;
            let steps = bounds.steps(*frame);
            match (aggregate, values.data_type()) {
                (Aggregate::Count, _) => Arc::new(running_count(&values, &steps)),
                (Aggregate::Sum, DataType::Int64) => Arc::new(running_sum(values.as_primitive::<Int64Type>(), &steps)),
                (Aggregate::Sum, DataType::Float64) => {
                    Arc::new(running_sum(values.as_primitive::<Float64Type>(), &steps))
                }
                (Aggregate::Sum, other) => return internal_err!("a sum over {other} was planned as bigint or double"),
            }
        }
    })
}

/// The count of non-null `values` from the partition's start through each step, for
/// every row of the step.
fn running_count(values: &ArrayRef, steps: &[(Range<usize>, bool)]) -> Int64Array {
    let mut out = Vec::with_capacity(values.len());
    let mut count = 0i64;
    let nulls = values.logical_nulls();
    for (step, first) in steps {
        if *first {
            count = 0;
        }
        count += match &nulls {
            Some(nulls) => (step.len() - nulls.slice(step.start, step.len()).null_count()) as i64,
            None => step.len() as i64,
        };
        out.extend(std::iter::repeat_n(count, step.len()));
    }
    Int64Array::from(out)
}

/// The sum of `values` from the partition's start through each step (NULL while every
/// value so far is NULL), for every row of the step. Each step's values are added with
/// arrow's `sum`, then to the total, as DataFusion's sum accumulator does.
fn running_sum<T: ArrowPrimitiveType>(values: &PrimitiveArray<T>, steps: &[(Range<usize>, bool)]) -> PrimitiveArray<T> {
    let mut out = Vec::with_capacity(values.len());
    let mut total: Option<T::Native> = None;
    for (step, first) in steps {
        if *first {
            total = None;
        }
        let added = if step.len() == 1 {
            values.is_valid(step.start).then(|| values.value(step.start))
        } else {
            datafusion::arrow::compute::sum(&values.slice(step.start, step.len()))
        };
        if let Some(x) = added {
            total = Some(total.unwrap_or(T::Native::usize_as(0)).add_wrapping(x));
        }
        out.extend(std::iter::repeat_n(total, step.len()));
    }
    PrimitiveArray::from_iter(out).with_data_type(values.data_type().clone())
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;

    use crate::engine::local::new_context;

    /// 3,000 rows: partitions of every size from 1 row to all of them, ORDER BY ties,
    /// NULLs in keys and values, `bigint` and `double` values, several input batches.
    const DATA: &str = "create table t as select value as rid, \
        case when value % 11 = 0 then null else value % 7 end as g, value % 2 as h, value / 2 as id, \
        case when value % 19 = 0 then null else value % 13 end as dt, \
        case when value % 5 = 0 then null else (value % 17) * 0.25 end as amount, \
        case when value % 3 = 0 then null else value % 9 end as qty \
        from range(0, 3000)";

    async fn run(ctx: &SessionContext, query: &str) -> (String, String) {
        let plan = ctx.sql(&format!("explain {query}")).await.unwrap().collect().await.unwrap();
        let rows = ctx.sql(query).await.unwrap().collect().await.unwrap();
        (pretty_format_batches(&plan).unwrap().to_string(), pretty_format_batches(&rows).unwrap().to_string())
    }

    /// Each query gives DataFusion's own rows, and runs on this operator exactly when it
    /// computes every window function of the query.
    #[tokio::test]
    async fn window_functions_give_datafusions_rows() {
        let (ours, theirs) = (new_context(), SessionContext::new());
        for ctx in [&ours, &theirs] {
            ctx.sql(DATA).await.unwrap().collect().await.unwrap();
        }
        let queries = [
            (
                true,
                "row_number() over (partition by g order by dt, rid), rank() over (partition by g order by dt), \
                    dense_rank() over (partition by g order by dt)",
            ),
            (
                true,
                "sum(amount) over (partition by g order by dt, rid rows between unbounded preceding and current row), \
                    sum(qty) over (partition by g order by dt, rid rows between unbounded preceding and current row), \
                    count(amount) over (partition by g order by dt, rid rows between unbounded preceding and current row), \
                    count(*) over (partition by g order by dt, rid rows between unbounded preceding and current row)",
            ),
            (
                true,
                "sum(amount) over (partition by g order by dt), sum(qty) over (partition by g order by dt), \
                    count(qty) over (partition by g order by dt), count(*) over (partition by g order by dt)",
            ),
            (
                true,
                "sum(amount) over (partition by g), count(qty) over (partition by g), \
                    sum(qty) over (partition by g order by dt range between unbounded preceding and unbounded following)",
            ),
            (true, "sum(amount) over (order by dt), row_number() over (order by dt, rid), count(*) over ()"),
            (
                true,
                "rank() over (partition by g, h order by dt desc nulls first, amount), \
                    dense_rank() over (partition by h, g order by dt desc nulls first, amount), \
                    sum(qty) over (partition by g, h order by dt desc nulls first, amount)",
            ),
            (
                true,
                "row_number() over (partition by id order by dt, amount), \
                    sum(amount) over (partition by id order by dt, amount rows between unbounded preceding and current row)",
            ),
            (false, "sum(amount) filter (where qty > 3) over (partition by g order by dt)"),
            (false, "count(amount) over (partition by g order by dt, rid rows between 2 preceding and current row)"),
            (false, "row_number() over (partition by g order by rid), lag(amount) over (partition by g order by rid)"),
            (false, "max(amount) over (partition by g order by dt)"),
        ];
        for (supported, windows) in queries {
            let query = format!("select rid, {windows} from t order by rid");
            let ((plan, rows), (_, expected)) = (run(&ours, &query).await, run(&theirs, &query).await);
            assert_eq!(plan.contains("SortedWindowExec"), supported, "{windows}\n{plan}");
            assert_eq!(rows, expected, "{windows}");
        }
    }

    /// A window over no rows gives no rows.
    #[tokio::test]
    async fn a_window_over_no_rows_gives_none() {
        let ctx = new_context();
        ctx.sql(DATA).await.unwrap().collect().await.unwrap();
        let query = "select rid, row_number() over (partition by g order by dt) from t where rid < 0";
        let (plan, rows) = run(&ctx, query).await;
        assert!(plan.contains("SortedWindowExec"), "{plan}");
        assert_eq!(rows, "++\n++");
    }
}
