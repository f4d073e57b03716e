//! Source freshness on the target: the newest `loaded_at_field` of a source table, one
//! `max()` query, judged against the source's rule (`quality::freshness`).

use crate::engine::Engine;
use crate::node::Node;
use crate::project::Freshness;
use crate::quality::freshness::{FreshnessStatus, SourceCheck, judge, parse_loaded_at};

/// Checks one source table against its rule: one `max()` query.
pub async fn check_source(
    engine: &dyn Engine,
    node: &Node,
    rule: &Freshness,
    now: chrono::NaiveDateTime,
) -> SourceCheck {
    let Some(relation) = node.relation.as_ref() else {
        return SourceCheck {
            unique_id: node.unique_id.clone(),
            relation: node.name.clone(),
            status: "error",
            max_loaded_at: None,
            age_s: None,
            warn_after_s: None,
            error_after_s: None,
            error: Some("the source has no relation".into()),
        };
    };
    let filter = rule.filter.as_deref().map_or_else(String::new, |f| format!(" where {f}"));
    let sql = format!("select cast(max({}) as varchar) as latest from {relation}{filter}", rule.loaded_at_field);
    let seconds = |d: Option<chrono::Duration>| d.map(|d| d.num_seconds());
    let mut checked = SourceCheck {
        unique_id: node.unique_id.clone(),
        relation: format!("{}.{}", relation.schema, relation.identifier),
        status: "error",
        max_loaded_at: None,
        age_s: None,
        warn_after_s: seconds(rule.warn_after),
        error_after_s: seconds(rule.error_after),
        error: None,
    };
    let latest = match engine.query(&sql, 1).await {
        Ok(batches) => first_value(&batches),
        Err(e) => {
            checked.error = Some(format!("could not read `{}`: {e}", rule.loaded_at_field));
            return checked;
        }
    };
    let parsed = latest.as_deref().and_then(parse_loaded_at);
    if latest.is_some() && parsed.is_none() {
        checked.error =
            Some(format!("`{}` is not a date or time: {}", rule.loaded_at_field, latest.unwrap_or_default()));
        return checked;
    }
    checked.max_loaded_at = latest;
    checked.age_s = parsed.map(|t| (now - t).num_seconds());
    checked.status = match judge(parsed, now, rule) {
        FreshnessStatus::Pass => "pass",
        FreshnessStatus::Warn => "warn",
        FreshnessStatus::Error => "error",
    };
    checked
}

/// The first column of the first row, as text.
fn first_value(batches: &[datafusion::arrow::array::RecordBatch]) -> Option<String> {
    let batch = batches.iter().find(|b| b.num_rows() > 0)?;
    let column = batch.column(0);
    (!column.is_null(0)).then(|| datafusion::arrow::util::display::array_value_to_string(column, 0).ok()).flatten()
}
