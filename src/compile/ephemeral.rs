//! Ephemeral models are never built: they are inlined as CTEs (`__dbt__cte__<name>`)
//! into every node that reads them, dependencies first, as dbt does.

use std::collections::{BTreeMap, BTreeSet};

use crate::graph::Dag;
use crate::node::{Nodes, ephemeral_cte};

/// Prepends the CTEs of the ephemeral models a node reads (directly or through other
/// ephemeral models), dependencies first, as dbt does.
pub(super) fn inline_ephemerals(nodes: &mut Nodes, dag: &Dag) {
    let bare: BTreeMap<String, String> = nodes
        .values()
        .filter(|n| n.is_ephemeral())
        .filter_map(|n| Some((n.unique_id.clone(), n.compiled_sql.clone()?)))
        .collect();
    if bare.is_empty() {
        return;
    }
    let order: Vec<String> = dag.topological().into_iter().map(String::from).collect();
    for id in &order {
        let node = &nodes[id];
        if node.compiled_sql.is_none() || !node.depends_on.iter().any(|d| bare.contains_key(d)) {
            continue;
        }
        // Ephemeral ancestors reachable through ephemeral nodes only, in dependency order.
        let mut needed: BTreeSet<String> = BTreeSet::new();
        let mut stack: Vec<String> = node.depends_on.clone();
        while let Some(d) = stack.pop() {
            if bare.contains_key(&d) && needed.insert(d.clone()) {
                stack.extend(nodes[&d].depends_on.clone());
            }
        }
        if needed.is_empty() {
            continue;
        }
        let ctes: Vec<String> = order
            .iter()
            .filter(|o| needed.contains(*o))
            .map(|o| format!("{} as (\n{}\n)", ephemeral_cte(&nodes[o].name), bare[o].trim()))
            .collect();
        let node = nodes.get_mut(id).expect("ordered ids are nodes");
        let sql = node.compiled_sql.take().expect("checked above");
        node.compiled_sql = Some(prepend_ctes(&sql, &ctes));
    }
}

/// `with a as (...), <existing ctes> select ...` or `with a as (...) select ...`; leading
/// comments stay in front. Unit tests put their inputs in front of a model the same way.
pub fn prepend_ctes(sql: &str, ctes: &[String]) -> String {
    let start = first_token(sql);
    let (lead, body) = sql.split_at(start);
    let word_end = body.find(|c: char| !c.is_alphanumeric() && c != '_').unwrap_or(body.len());
    if body[..word_end].eq_ignore_ascii_case("with") {
        let rest = body[word_end..].trim_start();
        let after_recursive = rest.get(..9).filter(|w| w.eq_ignore_ascii_case("recursive"));
        if after_recursive.is_some() {
            return format!("{lead}with recursive {},\n{}", ctes.join(",\n"), rest[9..].trim_start());
        }
        format!("{lead}with {},\n{rest}", ctes.join(",\n"))
    } else {
        format!("{lead}with {}\n{body}", ctes.join(",\n"))
    }
}

/// Byte offset of the first SQL token after whitespace and comments.
fn first_token(sql: &str) -> usize {
    let mut i = 0;
    loop {
        let rest = &sql[i..];
        let trimmed = rest.trim_start();
        i += rest.len() - trimmed.len();
        if trimmed.starts_with("--") {
            i += trimmed.find('\n').map_or(trimmed.len(), |n| n + 1);
        } else if trimmed.starts_with("/*") {
            i += trimmed.find("*/").map_or(trimmed.len(), |n| n + 2);
        } else {
            return i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_ctes_merge_into_an_existing_with_after_comments() {
        let ctes = vec!["__dbt__cte__e as (\nselect 1 as x\n)".to_string()];
        assert_eq!(
            prepend_ctes("-- note\nwith a as (select 2) select * from a", &ctes),
            "-- note\nwith __dbt__cte__e as (\nselect 1 as x\n),\na as (select 2) select * from a"
        );
        assert_eq!(
            prepend_ctes("select * from __dbt__cte__e", &ctes),
            "with __dbt__cte__e as (\nselect 1 as x\n)\nselect * from __dbt__cte__e"
        );
    }
}
