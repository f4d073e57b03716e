//! `etlm runs`: the last runs from the run history (`runs` in the metadata store), newest first.

use super::{GlobalArgs, Outcome};
use crate::diagnostics::{Code, Diagnostic, SourceMap};
use crate::engine::Access;
use crate::history::{Listing, listing_query};
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
    let opts = global.load_options(Default::default(), env);
    let project = crate::project::load_project(&opts, sources).map_err(|d| d.0)?;
    let runtime = crate::run::invocation::runtime()?;
    let batches = runtime.block_on(async {
        let engine = crate::run::invocation::open_engine(&project.target, Access::Read).await?;
        let listing = match (args.models, args.tests) {
            (true, _) => Listing::Models,
            (_, true) => Listing::Tests,
            _ => Listing::Runs,
        };
        let sql = listing_query(&engine.history().schema(), listing, args.limit);
        engine.query(&sql, usize::MAX).await.map_err(|e| {
            vec![
                Diagnostic::error(Code::NoHistory, format!("could not read the run history: {e}"))
                    .with_help("the history exists after the first `etlm run`, `seed` or `build`"),
            ]
        })
    })?;
    let table = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .map_err(|e| vec![Diagnostic::error(Code::QueryFailed, e.to_string())])?;
    out.lines(&[table.to_string()]);
    Ok(Outcome::Success)
}
