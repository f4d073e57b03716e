//! The columns an expression reads: identifiers are resolved by the walker, aggregate
//! functions raise their arguments to `aggregate` edges, window specs and `FILTER`
//! clauses count as usage, and nested queries get their own scope.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Query, Visit, Visitor, WindowType,
};

use super::EdgeKind;
use super::Role;
use super::scope::{Origin, merge};
use super::walk::{Aliases, Walker};

/// The origin of an expression's value, every edge at least `floor`.
pub(super) fn origin(w: &mut Walker<'_>, e: &Expr, floor: EdgeKind, aliases: Aliases) -> Origin {
    let mut v = ExprVisitor { w, floor, aliases, out: Origin::new(), skip: None };
    let _ = e.visit(&mut v);
    v.out
}

/// Aggregate functions by name (both dialects); any function with `FILTER` or
/// `WITHIN GROUP` counts as one too.
fn is_aggregate(f: &Function) -> bool {
    if f.filter.is_some() || !f.within_group.is_empty() {
        return true;
    }
    let Some(name) = f.name.0.last().and_then(|p| p.as_ident()) else { return false };
    matches!(
        name.value.to_lowercase().as_str(),
        "count"
            | "sum"
            | "avg"
            | "mean"
            | "min"
            | "max"
            | "array_agg"
            | "string_agg"
            | "listagg"
            | "group_concat"
            | "json_agg"
            | "jsonb_agg"
            | "json_object_agg"
            | "jsonb_object_agg"
            | "bool_and"
            | "bool_or"
            | "every"
            | "bit_and"
            | "bit_or"
            | "bit_xor"
            | "stddev"
            | "stddev_pop"
            | "stddev_samp"
            | "variance"
            | "var_pop"
            | "var_samp"
            | "var"
            | "median"
            | "mode"
            | "approx_distinct"
            | "approx_median"
            | "approx_percentile_cont"
            | "approx_percentile_cont_with_weight"
            | "percentile_cont"
            | "percentile_disc"
            | "corr"
            | "covar"
            | "covar_pop"
            | "covar_samp"
            | "regr_slope"
            | "regr_intercept"
            | "regr_count"
            | "regr_r2"
            | "regr_avgx"
            | "regr_avgy"
            | "regr_sxx"
            | "regr_syy"
            | "regr_sxy"
            | "any_value"
            | "first_value_agg"
            | "count_distinct"
    )
}

/// Collects the origins of an expression's columns. Functions (aggregate kind, window
/// specs) and nested queries (their own scope) are handled by the walker, and their
/// children skipped here.
struct ExprVisitor<'w, 'a> {
    w: &'w mut Walker<'a>,
    floor: EdgeKind,
    aliases: Aliases,
    out: Origin,
    /// The node whose children are being skipped, by address.
    skip: Option<*const ()>,
}

impl ExprVisitor<'_, '_> {
    fn sub(&mut self, e: &Expr, floor: EdgeKind) {
        let out = origin(self.w, e, floor, self.aliases);
        merge(&mut self.out, &out, floor);
    }

    fn function(&mut self, f: &Function) {
        let floor = if is_aggregate(f) { EdgeKind::Aggregate } else { self.floor };
        match &f.args {
            FunctionArguments::List(list) => {
                for arg in &list.args {
                    let (FunctionArg::Named { arg, .. }
                    | FunctionArg::ExprNamed { arg, .. }
                    | FunctionArg::Unnamed(arg)) = arg;
                    if let FunctionArgExpr::Expr(e) = arg {
                        self.sub(e, floor);
                    }
                }
            }
            FunctionArguments::Subquery(q) => self.query(q),
            FunctionArguments::None => {}
        }
        if let Some(filter) = &f.filter {
            self.w.role(filter, Role::Filter, self.aliases);
        }
        if let Some(WindowType::WindowSpec(spec)) = &f.over {
            self.w.window_spec(spec);
        }
    }

    fn query(&mut self, q: &Query) {
        let out = self.w.query(q);
        self.w.subquery_ref(q, &out);
        for c in &out.cols {
            merge(&mut self.out, &c.origin, self.floor.max(EdgeKind::Transform));
        }
    }
}

impl Visitor for ExprVisitor<'_, '_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if self.skip.is_none() {
            // A nested query (scalar, IN, EXISTS, ANY): its own scope, outer scopes visible.
            self.query(q);
            self.skip = Some(q as *const Query as *const ());
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if self.skip == Some(q as *const Query as *const ()) {
            self.skip = None;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if self.skip.is_some() {
            return ControlFlow::Continue(());
        }
        match e {
            Expr::Identifier(i) => {
                let c = self.w.column(std::slice::from_ref(i), self.aliases);
                merge(&mut self.out, &c.origin, self.floor);
            }
            Expr::CompoundIdentifier(parts) => {
                let c = self.w.column(parts, self.aliases);
                merge(&mut self.out, &c.origin, self.floor);
            }
            Expr::Function(f) => {
                self.function(f);
                self.skip = Some(e as *const Expr as *const ());
            }
            Expr::Lambda(_) => self.skip = Some(e as *const Expr as *const ()),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if self.skip == Some(e as *const Expr as *const ()) {
            self.skip = None;
        }
        ControlFlow::Continue(())
    }
}
