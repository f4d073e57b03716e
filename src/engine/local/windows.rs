//! A physical plan rewrite for window functions over a sort.
//!
//! DataFusion plans a window whose frame needs no following rows (`row_number()`,
//! `sum(..) over (.. rows between unbounded preceding and current row)`) as
//! `BoundedWindowAggExec`, which streams and keeps per-partition state keyed by the
//! partition values. With many small partitions (`partition by id`, the usual way to
//! deduplicate), that bookkeeping dominates: twice the time of `WindowAggExec`, which
//! computes each partition of the sorted input in one pass. `WindowAggExec` holds its
//! whole input, so it is used only where the window reads a `SortExec` (through
//! projections), which holds that input already.
//!
//! A `WindowAggExec` whose functions [`sorted_window::SortedWindowExec`] computes (row
//! numbers, ranks, running counts and sums) is then replaced by it: one pass over the
//! whole input instead of one evaluation per partition.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec};
use datafusion::physical_plan::{ExecutionPlan, InputOrderMode, sorts::sort::SortExec};

use super::sorted_window;

/// Runs windows over a sort as `WindowAggExec` (see the module docs).
#[derive(Debug)]
pub struct WindowsOverSorts;

impl PhysicalOptimizerRule for WindowsOverSorts {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let (window, rewritten) = if let Some(window) = node.downcast_ref::<WindowAggExec>() {
                (Arc::new(WindowAggExec::clone(window)), false)
            } else if let Some(window) = node.downcast_ref::<BoundedWindowAggExec>() {
                if window.input_order_mode != InputOrderMode::Sorted || !reads_a_sort(window.input()) {
                    return Ok(Transformed::no(node));
                }
                // Repartitioned by the partition keys exactly when the bounded one was.
                let repartitioned = !window.partition_keys().is_empty();
                let window =
                    WindowAggExec::try_new(window.window_expr().to_vec(), window.input().clone(), repartitioned)?;
                (Arc::new(window), true)
            } else {
                return Ok(Transformed::no(node));
            };
            Ok(match sorted_window::replace(window) {
                Ok(sorted) => Transformed::yes(sorted),
                Err(window) if rewritten => Transformed::yes(window),
                Err(_) => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "etlm_windows_over_sorts"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `plan` is a `SortExec`, or projections of one (which keep its rows and order).
fn reads_a_sort(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut plan: &dyn ExecutionPlan = plan.as_ref();
    while let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        plan = projection.input().as_ref();
    }
    plan.downcast_ref::<SortExec>().is_some()
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;

    use crate::engine::local::new_context;

    /// The rewritten plan gives the bounded one's rows, for row_number and running sums
    /// over partitions of one and of many rows, with NULLs in the partition key.
    #[tokio::test]
    async fn windows_over_a_sort_give_the_same_rows_without_the_bounded_operator() {
        let ctx = new_context();
        let data = "select * from (values (1, 3, 1.0), (1, 1, 2.0), (2, 5, 4.0), (null, 2, 8.0), (null, 1, 16.0), \
                    (3, 1, 32.0), (1, 2, 64.0)) as t(id, dt, amount)";
        let query = format!(
            "select id, dt, row_number() over (partition by id order by dt) as rn, \
             sum(amount) over (partition by id order by dt rows between unbounded preceding and current row) as running, \
             sum(amount) over (partition by id order by dt rows between 1 preceding and current row) as pair \
             from ({data}) order by id nulls first, dt"
        );
        let plan = pretty_format_batches(&ctx.sql(&format!("explain {query}")).await.unwrap().collect().await.unwrap())
            .unwrap()
            .to_string();
        assert!(plan.contains("WindowAggExec") && !plan.contains("BoundedWindowAggExec"), "{plan}");
        let out = pretty_format_batches(&ctx.sql(&query).await.unwrap().collect().await.unwrap()).unwrap().to_string();
        let expected = "\
+----+----+----+---------+------+
| id | dt | rn | running | pair |
+----+----+----+---------+------+
|    | 1  | 1  | 16.0    | 16.0 |
|    | 2  | 2  | 24.0    | 24.0 |
| 1  | 1  | 1  | 2.0     | 2.0  |
| 1  | 2  | 2  | 66.0    | 66.0 |
| 1  | 3  | 3  | 67.0    | 65.0 |
| 2  | 5  | 1  | 4.0     | 4.0  |
| 3  | 1  | 1  | 32.0    | 32.0 |
+----+----+----+---------+------+";
        assert_eq!(out, expected);
    }
}
