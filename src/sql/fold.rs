//! Folding tests: a test's failing-rows query of a shape known here becomes one
//! aggregate expression over the relation it reads, so the tests of one relation are
//! answered by a single scan (`select <fold 1>, <fold 2>, ... from relation`).
//!
//! The shapes are recognized in the query, not by the test's name, so a project's own
//! `{% test not_null %}` folds when it has a known shape and runs alone when it has not.
//! A shape is accepted only when the query is exactly that shape: the parts are taken out
//! of the parsed query, put back together, and the result must parse to the same tree.
//!
//! | shape | tests | folded |
//! | --- | --- | --- |
//! | `select cols from R where p` | not_null, accepted_range, expression_is_true | rows where `p` (exact) |
//! | `select n from (select count(*) as n from R) c where p(n)` | row_count | one if `p(count(*))` (exact) |
//! | `with x as (select g as v, count(*) as k from R group by g) select cols from x where p(v)` | accepted_values | rows where `p(g)`: zero exactly when no value fails |
//! | `select g .., count(*) .. from R [where w] group by g having count(*) > 1` | unique | repeated values of `g`: zero exactly when none repeats |

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, GroupByExpr, Ident, Query, Select, SelectItem, SetExpr, Statement, TableFactor, visit_expressions,
    visit_expressions_mut,
};

use super::{SqlDialect, parse_query};

/// What a folded expression counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Count {
    /// The test's failing-row count itself.
    Exact,
    /// Zero exactly when the test has no failing rows; when it is not zero, the test's
    /// own query counts them.
    NonZero,
}

/// A test's query folded: the relation it reads (as written in the query), and an
/// expression over that relation's rows giving a `bigint`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folded {
    pub relation: String,
    pub expression: String,
    pub count: Count,
}

/// `sql` folded, if it has one of the shapes this module knows.
pub fn fold(sql: &str, dialect: SqlDialect) -> Option<Folded> {
    let query = query(sql, dialect)?;
    row_filter(&query, dialect)
        .or_else(|| row_count(&query, dialect))
        .or_else(|| value_filter(&query, dialect))
        .or_else(|| repeated_values(&query, dialect))
}

/// `select cols from R where p`: the rows where `p` holds.
fn row_filter(query: &Query, dialect: SqlDialect) -> Option<Folded> {
    let s = select(query)?;
    let (relation, alias) = single_table(s)?;
    let p = s.selection.as_ref()?;
    if alias || !plain_columns(&s.projection) || has_subquery(p) {
        return None;
    }
    same(query, &format!("select {} from {relation} where {p}", list(&s.projection)), dialect)?;
    Some(Folded { relation, expression: rows_where(&p.to_string()), count: Count::Exact })
}

/// `select n from (select count(*) as n from R) c where p(n)`: one when `p` holds of the
/// row count.
fn row_count(query: &Query, dialect: SqlDialect) -> Option<Folded> {
    let s = select(query)?;
    let [from] = s.from.as_slice() else { return None };
    let TableFactor::Derived { subquery, alias: Some(alias), lateral: false, .. } = &from.relation else { return None };
    let inner = select(subquery)?;
    let (relation, false) = single_table(inner)? else { return None };
    let [SelectItem::ExprWithAlias { expr, alias: n }] = inner.projection.as_slice() else { return None };
    let p = s.selection.as_ref()?;
    if !from.joins.is_empty() || !is_count_star(expr) || !plain_columns(&s.projection) || has_subquery(p) {
        return None;
    }
    let canonical =
        format!("select {} from (select count(*) as {n} from {relation}) {alias} where {p}", list(&s.projection));
    same(query, &canonical, dialect)?;
    let p = substituted(p, n, expr)?;
    Some(Folded { relation, expression: format!("case when {p} then 1 else 0 end"), count: Count::Exact })
}

/// `with x as (select g as v, count(*) as k from R group by g) select cols from x where
/// p(v)` (accepted_values): a value fails when `p` holds of it, so some row's `p(g)`
/// holds exactly when some value fails.
fn value_filter(query: &Query, dialect: SqlDialect) -> Option<Folded> {
    let with = query.with.as_ref()?;
    let [cte] = with.cte_tables.as_slice() else { return None };
    let inner = select(&cte.query)?;
    let (relation, false) = single_table(inner)? else { return None };
    let [SelectItem::ExprWithAlias { expr: g, alias: v }, SelectItem::ExprWithAlias { expr: k_expr, alias: k }] =
        inner.projection.as_slice()
    else {
        return None;
    };
    let GroupByExpr::Expressions(group, _) = &inner.group_by else { return None };
    let outer = select(query)?;
    let (x, false) = single_table(outer)? else { return None };
    let p = outer.selection.as_ref()?;
    if group.as_slice() != std::slice::from_ref(g) || !is_count_star(k_expr) || !plain_columns(&outer.projection) {
        return None;
    }
    if has_subquery(p) || has_subquery(g) || with.recursive {
        return None;
    }
    let name = &cte.alias.name;
    let canonical = format!(
        "with {name} as (select {g} as {v}, count(*) as {k} from {relation} group by {g}) select {} from {x} where {p}",
        list(&outer.projection)
    );
    same(query, &canonical, dialect)?;
    let p = substituted(p, v, g)?;
    Some(Folded { relation, expression: rows_where(&p), count: Count::NonZero })
}

/// `select g, count(*) from R [where w] group by g having count(*) > 1` (unique): rows
/// beyond the first of each value, plus one when more than one row has a null `g` (null
/// values group together).
fn repeated_values(query: &Query, dialect: SqlDialect) -> Option<Folded> {
    let s = select(query)?;
    let (relation, false) = single_table(s)? else { return None };
    let GroupByExpr::Expressions(group, modifiers) = &s.group_by else { return None };
    let [g] = group.as_slice() else { return None };
    let only_g_or_count = s.projection.iter().all(|item| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e == g || is_count_star(e),
        _ => false,
    });
    if !modifiers.is_empty() || !only_g_or_count || has_subquery(g) || s.selection.as_ref().is_some_and(has_subquery) {
        return None;
    }
    let filter = s.selection.as_ref().map(|w| format!(" where {w}")).unwrap_or_default();
    let canonical = format!("select {} from {relation}{filter} group by {g} having count(*) > 1", list(&s.projection));
    same(query, &canonical, dialect)?;
    let w = s.selection.as_ref().map_or_else(|| "true".to_string(), |w| format!("({w})"));
    let expression = format!(
        "count(case when {w} then {g} end) - count(distinct case when {w} then {g} end) \
         + case when {} > 1 then 1 else 0 end",
        rows_where(&format!("{w} and ({g}) is null"))
    );
    Some(Folded { relation, expression, count: Count::NonZero })
}

/// How many rows `p` holds for (zero over no rows).
fn rows_where(p: &str) -> String {
    format!("coalesce(sum(case when {p} then 1 else 0 end), 0)")
}

fn query(sql: &str, dialect: SqlDialect) -> Option<Box<Query>> {
    match parse_query(sql, dialect).ok()? {
        Statement::Query(q) => Some(q),
        _ => None,
    }
}

fn select(query: &Query) -> Option<&Select> {
    match query.body.as_ref() {
        SetExpr::Select(s) => Some(s),
        _ => None,
    }
}

/// The one table `s` reads with no join, and whether it has an alias.
fn single_table(s: &Select) -> Option<(String, bool)> {
    let [from] = s.from.as_slice() else { return None };
    let TableFactor::Table { name, alias, args: None, .. } = &from.relation else { return None };
    from.joins.is_empty().then(|| (name.to_string(), alias.is_some()))
}

/// True if every item is `*` or a column, maybe renamed: the items do not change how
/// many rows there are, nor can they fail.
fn plain_columns(items: &[SelectItem]) -> bool {
    let column = |e: &Expr| matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
    items.iter().all(|item| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => column(e),
        SelectItem::Wildcard(_) => true,
        _ => false,
    })
}

fn list(items: &[SelectItem]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn is_count_star(e: &Expr) -> bool {
    e.to_string().eq_ignore_ascii_case("count(*)")
}

fn has_subquery(e: &Expr) -> bool {
    visit_expressions(e, |e| match e {
        Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// `Some(())` when `canonical` parses to the same query: `query` is exactly that shape.
fn same(query: &Query, canonical: &str, dialect: SqlDialect) -> Option<()> {
    (self::query(canonical, dialect)?.as_ref() == query).then_some(())
}

/// `p` with every mention of the column `name` replaced by `(by)`; `None` when `p` names
/// any other column.
fn substituted(p: &Expr, name: &Ident, by: &Expr) -> Option<String> {
    let mut p = p.clone();
    let mut other = false;
    let _ = visit_expressions_mut(&mut p, |e| {
        match e {
            Expr::Identifier(id) if id == name => *e = Expr::Nested(Box::new(by.clone())),
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => other = true,
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    (!other).then(|| p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: SqlDialect = SqlDialect::DataFusion;

    fn folded(sql: &str) -> Option<(String, Count)> {
        fold(sql, D).map(|f| {
            assert_eq!(f.relation, "main.t__audit");
            (f.expression, f.count)
        })
    }

    #[test]
    fn row_filters_count_their_rows_exactly() {
        let (e, count) = folded("select id\nfrom main.t__audit\nwhere id is null\n").expect("folds");
        assert_eq!(e, "coalesce(sum(case when id IS NULL then 1 else 0 end), 0)");
        assert_eq!(count, Count::Exact);
        assert!(folded("select * from main.t__audit where not (amount >= 0)").is_some());
    }

    #[test]
    fn row_counts_and_value_lists_and_repeats_fold() {
        let rc = "select row_count from (select count(*) as row_count from main.t__audit) counted where 1 = 2 or row_count < 5";
        assert_eq!(folded(rc), Some(("case when 1 = 2 OR (count(*)) < 5 then 1 else 0 end".into(), Count::Exact)));
        let av = "with all_values as (select status as value_field, count(*) as n_records from main.t__audit group by status) select value_field, n_records from all_values where value_field not in ('a', 'b')";
        assert_eq!(
            folded(av),
            Some(("coalesce(sum(case when (status) NOT IN ('a', 'b') then 1 else 0 end), 0)".into(), Count::NonZero))
        );
        let u = "select id as unique_field, count(*) as n_records from main.t__audit where id is not null group by id having count(*) > 1";
        let (e, count) = folded(u).expect("folds");
        assert!(e.starts_with("count(case when (id IS NOT NULL) then id end) - count(distinct"), "{e}");
        assert_eq!(count, Count::NonZero);
    }

    #[test]
    fn other_shapes_do_not_fold() {
        for sql in [
            // joins, subqueries, limits, extra clauses and computed columns change what is counted
            "select a.id from main.t__audit a join main.u on a.id = u.id where a.id is null",
            "select id from main.t__audit where id not in (select id from main.u)",
            "select id from main.t__audit where id is null limit 3",
            "select distinct id from main.t__audit where id is null",
            "select id / 0 from main.t__audit where id is null",
            "select id from main.t__audit",
            "select id, count(*) from main.t__audit group by id having count(*) > 2",
            "with all_values as (select status as value_field, count(*) as n_records from main.t__audit group by status) select value_field from all_values where n_records > 1",
            "select n from (select count(*) as n from main.t__audit where x) c where n < 1",
        ] {
            assert_eq!(fold(sql, D), None, "{sql}");
        }
    }
}
