//! `etlm intervals`: for each selected time-windowed model, the periods recorded as done
//! and those missing between its `begin` and now.

use super::{GlobalArgs, Outcome};
use crate::diagnostics::{Diagnostic, SourceMap};
use crate::engine::Access;
use crate::project::Env;
use crate::report::Output;
use crate::window::{self, Period};

pub fn run(global: &GlobalArgs, env: Env, sources: &SourceMap, out: &Output) -> Result<Outcome, Vec<Diagnostic>> {
    let compiled = super::compile_with(global, env, sources, "list")?;
    let selected = super::selected(global, &compiled)?;
    let done = crate::run::invocation::runtime()?.block_on(async {
        let engine = crate::run::invocation::open_engine(&compiled.project.target, Access::Read).await?;
        engine
            .history()
            .intervals()
            .await
            .map_err(|e| vec![crate::run::invocation::engine_diagnostic(e, &compiled.project.target)])
    })?;
    let now = chrono::Utc::now().naive_utc();
    let mut lines = Vec::new();
    let mut json = Vec::new();
    for node in selected.iter().map(|id| &compiled.nodes[id]).filter(|n| n.is_windowed()) {
        let size = node.config.batch_size.expect("windowed models have a batch size");
        let finished = done.get(&node.unique_id).cloned().unwrap_or_default();
        let begin = node.config.begin.as_deref().and_then(window::parse_time);
        let expected = begin
            .filter(|b| window::too_many_periods(*b, now, size).is_none())
            .map(|b| window::periods(b, now, size))
            .unwrap_or_default();
        let missing: Vec<Period> = expected.into_iter().filter(|p| !finished.contains(p)).collect();
        lines.push(format!(
            "{}\n  done:    {}\n  missing: {}",
            node.name,
            ranges(&finished, size),
            ranges(&missing, size)
        ));
        json.push(serde_json::json!({
            "unique_id": node.unique_id,
            "done": finished.iter().map(|p| window::timestamp(p.start)).collect::<Vec<_>>(),
            "missing": missing.iter().map(|p| window::timestamp(p.start)).collect::<Vec<_>>(),
        }));
    }
    match global.format {
        super::Format::Human | super::Format::Markdown => out.lines(&lines),
        super::Format::Json => out.lines(&json.iter().map(|j| j.to_string()).collect::<Vec<_>>()),
    }
    Ok(Outcome::Success)
}

/// Consecutive periods folded into `first..last` ranges of their start times.
fn ranges(periods: &[Period], size: window::BatchSize) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = periods.iter().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while let Some(next) = iter.peek().filter(|p| p.start == window::next(last.start, size)) {
            last = next;
            iter.next();
        }
        let show = |p: &Period| window::timestamp(p.start);
        out.push(if first == last { show(first) } else { format!("{}..{}", show(first), show(last)) });
    }
    if out.is_empty() { "none".into() } else { format!("{} ({} periods)", out.join(", "), periods.len()) }
}
