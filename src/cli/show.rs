//! `etlm show "SQL"` and `etlm show -s model`: query the target and print a table.

use super::{GlobalArgs, Outcome};
use crate::diagnostics::{Code, Diagnostic, SourceMap};
use crate::engine::Access;
use crate::graph::ResourceType;
use crate::project::Env;
use crate::report::Format;
use crate::report::Output;

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A query to run; without it, `-s MODEL` shows that model's rows.
    pub sql: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Read the tables as they were: at this Delta version of each (`3`), or at their
    /// latest commits by this time (`2026-12-04T18:00:00Z`, `2026-12-04`). Delta Lake
    /// targets only.
    #[arg(long, value_name = "VERSION|TIME")]
    pub as_of: Option<crate::engine::AsOf>,
}

pub fn run(
    global: &GlobalArgs,
    args: &ShowArgs,
    env: Env,
    sources: &SourceMap,
    out: &Output,
) -> Result<Outcome, Vec<Diagnostic>> {
    let compiled = super::compile_with(global, env, sources, "show")?;
    let sql = match &args.sql {
        Some(sql) => sql.clone(),
        None => {
            let selected = super::selected(global, &compiled)?;
            let relations: Vec<_> = selected
                .iter()
                .map(|id| &compiled.nodes[id])
                .filter(|n| n.resource_type.is_built() || n.resource_type == ResourceType::Source)
                .filter_map(|n| n.relation.as_ref())
                .collect();
            match relations.as_slice() {
                [one] => format!("select * from {one}"),
                _ => {
                    return Err(vec![
                        Diagnostic::error(
                            Code::InvalidArgument,
                            format!("`etlm show` needs a query or `-s` naming one model; {} selected", relations.len()),
                        )
                        .with_help("try `etlm show \"select * from main.orders\"` or `etlm show -s orders`"),
                    ]);
                }
            }
        }
    };
    let runtime = crate::run::invocation::runtime()?;
    let batches = runtime.block_on(async {
        let target = &compiled.project.target;
        let engine = match args.as_of {
            None => crate::run::invocation::open_engine(target, Access::Read).await?,
            Some(as_of) => crate::engine::open_as_of(target, as_of)
                .await
                .map_err(|e| vec![crate::run::invocation::engine_diagnostic(e, target)])?,
        };
        engine.query(&sql, args.limit).await.map_err(|e| {
            let failed = Diagnostic::error(Code::QueryFailed, format!("the query failed: {e}"))
                .with_note(format!("query: {sql}"));
            vec![match args.as_of {
                Some(_) => failed.with_note(
                    "with `--as-of`, a table that had no such version then, or whose files of then were \
                     removed (`keep_versions`), is absent",
                ),
                None => failed,
            }]
        })
    })?;
    match global.format {
        Format::Human | Format::Markdown => {
            let table = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .map_err(|e| vec![Diagnostic::error(Code::QueryFailed, e.to_string())])?;
            out.lines(&[table.to_string()]);
        }
        Format::Json => {
            let mut writer = datafusion::arrow::json::LineDelimitedWriter::new(Vec::new());
            let refs: Vec<_> = batches.iter().collect();
            writer.write_batches(&refs).map_err(|e| vec![Diagnostic::error(Code::QueryFailed, e.to_string())])?;
            writer.finish().map_err(|e| vec![Diagnostic::error(Code::QueryFailed, e.to_string())])?;
            out.lines(&[String::from_utf8_lossy(&writer.into_inner()).trim_end().to_string()]);
        }
    }
    Ok(Outcome::Success)
}
