//! `etlm runs`: the last runs from the run history (`_etlm.runs`), newest first.

use super::{GlobalArgs, Outcome};
use crate::diagnostics::{Diagnostic, SourceMap};
use crate::engine::datafusion::{Access, DataFusionEngine};
use crate::project::Env;
use crate::report::Output;

#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// How many runs to show.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Show the model results of the runs instead of one line per run.
    #[arg(long, conflicts_with = "tests")]
    pub models: bool,
    /// Show the test results of the runs (status, failing rows, threshold, observed value).
    #[arg(long)]
    pub tests: bool,
}

pub fn run(
    global: &GlobalArgs,
    args: &RunsArgs,
    env: Env,
    sources: &SourceMap,
    out: &Output,
) -> Result<Outcome, Vec<Diagnostic>> {
    let opts = crate::project::LoadOptions {
        project_dir: global.project_dir.clone(),
        target: global.target.clone(),
        vars: Default::default(),
        env,
    };
    let project = crate::project::load_project(&opts, sources).map_err(|d| d.0)?;
    let sql = if args.models {
        format!(
            "select m.run_id, m.unique_id, m.status, m.rows, round(m.duration_s, 3) as duration_s, m.error \
             from \"_etlm\".\"model_runs\" m join (select run_id from \"_etlm\".\"runs\" order by started_at desc limit {}) r \
             on m.run_id = r.run_id order by m.started_at desc, m.unique_id",
            args.limit
        )
    } else if args.tests {
        format!(
            "select t.run_id, t.unique_id, t.model, t.column_name, t.severity, t.status, t.failures, t.threshold, \
             t.observed from \"_etlm\".\"test_results\" t join (select run_id from \"_etlm\".\"runs\" \
             order by started_at desc limit {}) r on t.run_id = r.run_id order by t.started_at desc, t.unique_id",
            args.limit
        )
    } else {
        format!(
            "select run_id, command, status, started_at, round(duration_s, 3) as duration_s, ok, error, skipped \
             from \"_etlm\".\"runs\" order by started_at desc limit {}",
            args.limit
        )
    };
    let warehouse = super::warehouse_dir(&project);
    let runtime = super::runtime()?;
    let batches = runtime.block_on(async {
        let engine = DataFusionEngine::open(&warehouse, Access::Read)
            .await
            .map_err(|e| vec![super::engine_diagnostic(e, &warehouse)])?;
        engine.query_limited(&sql, usize::MAX).await.map_err(|e| {
            vec![
                Diagnostic::error("no-history", format!("could not read the run history: {e}"))
                    .with_help("the history exists after the first `etlm run`, `seed` or `build`"),
            ]
        })
    })?;
    let table = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .map_err(|e| vec![Diagnostic::error("query-failed", e.to_string())])?;
    out.lines(&[table.to_string()]);
    Ok(Outcome::Success)
}
