//! Walks one model's parsed query: CTEs, subqueries (correlated ones see the outer
//! scopes), joins (`USING`/`NATURAL` merge columns), `*` and `t.*`, set operations by
//! position, aggregates and windows. Produces the model's output columns with their
//! origins, the columns it uses per role, and the unknown/ambiguous names it met.
//! Expressions are walked by `expr.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{
    Distinct, Expr, GroupByExpr, Ident, JoinConstraint, JoinOperator, NamedWindowExpr, ObjectName, OrderBy,
    OrderByKind, Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement, TableFactor,
    TableWithJoins, Value, WildcardAdditionalOptions, WindowSpec,
};

use super::cache::Reads;
use super::scope::{Col, Lookup, Origin, Rel, Scope, merge};
use super::{Catalog, ColumnLineage, ColumnRef, Edge, EdgeKind, Fnv, NodeLineage, Role, fingerprint_text};
use crate::node::Node;
use crate::sql::SqlDialect;
use crate::sql::types::{self, Type};

/// A name the walk could not resolve, at its 1-based line and column in the compiled SQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The name as written.
    pub name: String,
    pub line: usize,
    pub column: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not a column of any relation in scope: each relation's display name and columns.
    Unknown { qualifier: Option<String>, available: Vec<(String, Vec<String>)> },
    /// In more than one relation of the same scope: display names and qualifiers.
    Ambiguous { relations: Vec<(String, String)> },
}

/// What the walk found in one model.
#[derive(Debug, Default)]
pub(super) struct ModelResult {
    pub columns: Vec<Col>,
    pub complete: bool,
    pub usage: BTreeMap<Role, BTreeSet<ColumnRef>>,
    /// What decides the rows the model returns (see `NodeLineage::rows_fingerprint`).
    pub rows: u64,
    pub problems: Vec<Problem>,
    /// The syntax error that stopped the walk before it began.
    pub syntax: Option<crate::diagnostics::Diagnostic>,
    /// What the walk looked up in the catalog.
    pub reads: Reads,
}

/// A query's output: its columns and whether the list is whole.
pub(super) struct Output {
    pub cols: Vec<Col>,
    complete: bool,
    passthrough: Vec<Arc<str>>,
}

/// Resolves a model's compiled query against the schemas in `catalog`.
pub(super) fn walk_model(stmt: &Statement, catalog: &Catalog) -> ModelResult {
    let Statement::Query(query) = stmt else { return ModelResult::default() };
    let mut w = Walker {
        catalog,
        reads: Reads::default(),
        ctes: Vec::new(),
        scopes: Vec::new(),
        usage: BTreeMap::new(),
        problems: Vec::new(),
        refs: Vec::new(),
        rows: Fnv::default(),
    };
    let out = w.query(query);
    let mut problems = w.problems;
    problems.sort_by_key(|p| (p.line, p.column));
    problems.dedup();
    ModelResult {
        columns: out.cols,
        complete: out.complete,
        usage: w.usage,
        rows: w.rows.finish(),
        problems,
        syntax: None,
        reads: w.reads,
    }
}

/// The lineage entry of a model from its walk.
pub(super) fn node_lineage(node: &Node, result: ModelResult, dialect: SqlDialect) -> NodeLineage {
    NodeLineage {
        columns: result
            .columns
            .into_iter()
            .map(|c| ColumnLineage {
                data_type: c.ty.render(dialect),
                fingerprint: Some(fingerprint_text(c.fp)),
                name: c.name,
                upstream: c.origin.into_iter().map(|(r, kind)| Edge { column: r.column, kind, node: r.node }).collect(),
            })
            .collect(),
        columns_complete: result.complete,
        name: node.name.clone(),
        resource_type: node.resource_type.as_str(),
        rows_fingerprint: Some(fingerprint_text(result.rows)),
        usage: result.usage.into_iter().map(|(role, set)| (role, super::sorted_refs(set))).collect(),
    }
}

pub(super) struct Walker<'a> {
    catalog: &'a Catalog,
    /// Every catalog lookup goes through here, so the cache knows what the result depends on.
    reads: Reads,
    /// CTEs in scope, innermost last.
    ctes: Vec<(String, Rel)>,
    /// Scopes of enclosing SELECTs, innermost last (correlated subqueries see them all).
    scopes: Vec<Scope>,
    usage: BTreeMap<Role, BTreeSet<ColumnRef>>,
    problems: Vec<Problem>,
    /// The columns and scalar subqueries resolved while evaluating expressions, by the
    /// address of their node in the syntax tree: what [`Walker::value`] types from.
    refs: Vec<(usize, Type, u64)>,
    /// Hashes what decides the rows (clauses, and the columns those clauses read).
    rows: Fnv,
}

/// How an unqualified name that no relation has may still resolve to an output column.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Aliases {
    /// Not at all (WHERE, SELECT list, ON).
    No,
    /// After the input columns (GROUP BY, HAVING).
    After,
    /// Before the input columns (ORDER BY).
    Before,
}

impl<'a> Walker<'a> {
    pub(super) fn query(&mut self, q: &Query) -> Output {
        let depth = self.ctes.len();
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                let name = norm(&cte.alias.name);
                let mut rel = match self.reads.ephemeral(self.catalog, &name.to_lowercase()) {
                    // An inlined ephemeral model: read it as its node, whose lineage is its own.
                    Some(id) => self.node_rel(id, &name),
                    None if with.recursive => {
                        // First pass: the CTE's own name is unknown; second pass: it has the
                        // columns the first pass found, so the recursive branch resolves.
                        self.ctes.push((name.clone(), Rel::unknown(&name, &name)));
                        let first = self.query(&cte.query);
                        self.ctes.pop();
                        self.ctes.push((name.clone(), output_rel(first, &name, &name)));
                        let out = self.query(&cte.query);
                        self.ctes.pop();
                        output_rel(out, &name, &name)
                    }
                    None => output_rel(self.query(&cte.query), &name, &name),
                };
                let names: Vec<String> = cte.alias.columns.iter().map(|c| norm(&c.name)).collect();
                rel.rename(&names);
                self.ctes.push((name, rel));
            }
        }
        let out = self.set_expr(&q.body, q.order_by.as_ref());
        (&q.limit_clause, &q.fetch).hash(&mut self.rows);
        self.ctes.truncate(depth);
        out
    }

    fn set_expr(&mut self, body: &SetExpr, order_by: Option<&OrderBy>) -> Output {
        match body {
            SetExpr::Select(select) => self.select(select, order_by),
            SetExpr::Query(q) => {
                let out = self.query(q);
                self.order_by_outputs(&out, order_by);
                out
            }
            SetExpr::SetOperation { left, right, op, set_quantifier } => {
                let l = self.set_expr(left, None);
                let r = self.set_expr(right, None);
                (op, set_quantifier).hash(&mut self.rows);
                let mut cols = l.cols;
                // Set operations match columns by position; names come from the left.
                for (c, rc) in cols.iter_mut().zip(&r.cols) {
                    merge(&mut c.origin, &rc.origin, EdgeKind::Copy);
                    c.ty = types::unify(&[c.ty.clone(), rc.ty.clone()], self.catalog.dialect);
                    c.fp = super::fingerprint(&(c.fp, rc.fp));
                }
                let mut passthrough = l.passthrough;
                passthrough.extend(r.passthrough);
                let out = Output { cols, complete: l.complete && r.complete, passthrough };
                self.order_by_outputs(&out, order_by);
                out
            }
            SetExpr::Values(values) => {
                let width = values.rows.first().map_or(0, |r| r.content.len());
                let mut cols: Vec<Col> =
                    (1..=width).map(|i| Col::untyped(&format!("column{i}"), Origin::new())).collect();
                for row in &values.rows {
                    for (c, e) in cols.iter_mut().zip(&row.content) {
                        let v = self.value(e, Aliases::No);
                        merge(&mut c.origin, &v.origin, EdgeKind::Transform);
                        c.fp = super::fingerprint(&(c.fp, v.fp));
                    }
                }
                values.hash(&mut self.rows);
                Output { cols, complete: true, passthrough: Vec::new() }
            }
            SetExpr::Table(t) => {
                let name = t.table_name.clone().unwrap_or_default();
                let rel = self.table_rel(&[Ident::new(name.clone())], &name);
                let out = Output { cols: rel.cols.clone(), complete: rel.complete, passthrough: rel.passthrough };
                self.order_by_outputs(&out, order_by);
                out
            }
            _ => Output { cols: Vec::new(), complete: false, passthrough: Vec::new() },
        }
    }

    /// ORDER BY over a set operation sees only its output columns.
    fn order_by_outputs(&mut self, out: &Output, order_by: Option<&OrderBy>) {
        let Some(OrderBy { kind: OrderByKind::Expressions(list), .. }) = order_by else { return };
        self.scopes.push(Scope { outputs: out.cols.clone(), ..Default::default() });
        for o in list {
            let v = self.expr_or_position(&o.expr, Aliases::Before);
            self.record(Role::Order, &v.origin);
        }
        self.scopes.pop();
    }

    fn select(&mut self, s: &Select, order_by: Option<&OrderBy>) -> Output {
        (&s.from, &s.distinct, &s.top, &s.group_by).hash(&mut self.rows);
        self.scopes.push(Scope::default());
        for twj in &s.from {
            self.table_with_joins(twj);
        }
        if let Some(e) = &s.selection {
            self.role(e, Role::Filter, Aliases::No);
        }
        let out = self.projection(&s.projection);
        // Output aliases are only visible to the clauses after the SELECT list.
        let later = !matches!(&s.group_by, GroupByExpr::Expressions(l, _) if l.is_empty())
            || s.having.is_some()
            || s.qualify.is_some()
            || order_by.is_some()
            || matches!(s.distinct, Some(Distinct::On(_)));
        if later {
            self.top().outputs = out.cols.clone();
        }
        if let Some(Distinct::On(list)) = &s.distinct {
            for e in list {
                self.role(e, Role::Group, Aliases::After);
            }
        }
        if let GroupByExpr::Expressions(list, _) = &s.group_by {
            for e in list {
                let v = self.expr_or_position(e, Aliases::After);
                v.fp.hash(&mut self.rows);
                self.record(Role::Group, &v.origin);
            }
        }
        if let Some(e) = &s.having {
            self.role(e, Role::Filter, Aliases::After);
        }
        if let Some(e) = &s.qualify {
            self.role(e, Role::Filter, Aliases::After);
        }
        for def in &s.named_window {
            if let NamedWindowExpr::WindowSpec(spec) = &def.1 {
                self.window_spec(spec);
            }
        }
        if let Some(OrderBy { kind: OrderByKind::Expressions(list), .. }) = order_by {
            for o in list {
                let v = self.expr_or_position(&o.expr, Aliases::Before);
                self.record(Role::Order, &v.origin);
            }
        }
        self.scopes.pop();
        out
    }

    fn top(&mut self) -> &mut Scope {
        self.scopes.last_mut().expect("a SELECT pushed its scope")
    }

    fn projection(&mut self, items: &[SelectItem]) -> Output {
        let mut out = Output { cols: Vec::new(), complete: true, passthrough: Vec::new() };
        for item in items {
            match item {
                SelectItem::UnnamedExpr(e) => {
                    let v = self.value(e, Aliases::No);
                    out.cols.push(Col { name: self.column_name(e), ..v });
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    let v = self.value(expr, Aliases::No);
                    out.cols.push(Col { name: norm(alias), ..v });
                }
                SelectItem::ExprWithAliases { expr, aliases } => {
                    let v = self.value(expr, Aliases::No);
                    out.cols.extend(aliases.iter().map(|a| Col { name: norm(a), ..v.clone() }));
                }
                SelectItem::Wildcard(opts) => {
                    let scope = self.scopes.last().expect("a SELECT pushed its scope");
                    let mut cols: Vec<Col> = scope.merged.clone();
                    for rel in scope.rels.iter().filter(|r| r.in_star) {
                        let hidden = |c: &Col| rel.hidden.iter().any(|h| h.eq_ignore_ascii_case(&c.name));
                        cols.extend(rel.cols.iter().filter(|c| !hidden(c)).cloned());
                        out.complete &= rel.complete;
                        out.passthrough.extend(rel.passthrough.iter().cloned());
                    }
                    out.cols.extend(star_filter(cols, opts));
                }
                SelectItem::QualifiedWildcard(kind, opts) => {
                    let rel = match kind {
                        SelectItemQualifiedWildcardKind::ObjectName(name) => self.qualified_rel(name),
                        SelectItemQualifiedWildcardKind::Expr(_) => None,
                    };
                    match rel {
                        Some(rel) => {
                            out.complete &= rel.complete;
                            out.passthrough.extend(rel.passthrough.iter().cloned());
                            out.cols.extend(star_filter(rel.cols.clone(), opts));
                        }
                        None => out.complete = false,
                    }
                }
            }
        }
        out
    }

    /// The relation `t.*` (or `schema.t.*`) names, in the innermost scope.
    fn qualified_rel(&self, name: &ObjectName) -> Option<&Rel> {
        let last = name.0.last()?.as_ident()?;
        self.scopes.last()?.rel(&norm(last))
    }

    /// The name an unaliased output column gets.
    fn column_name(&self, e: &Expr) -> String {
        match e {
            Expr::Identifier(i) => norm(i),
            Expr::CompoundIdentifier(parts) => parts.last().map(norm).unwrap_or_default(),
            _ if self.catalog.dialect.names_unaliased_columns_by_expression_text() => e.to_string(),
            Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => self.column_name(inner),
            Expr::Function(f) => f.name.0.last().and_then(|p| p.as_ident()).map(norm).unwrap_or_default(),
            _ => "?column?".into(),
        }
    }

    fn table_with_joins(&mut self, twj: &TableWithJoins) {
        self.table_factor(&twj.relation);
        for join in &twj.joins {
            let right_start = self.top().rels.len();
            self.table_factor(&join.relation);
            let (constraint, side) = join_constraint(&join.join_operator);
            if matches!(side, Side::Semi) {
                for r in &mut self.top().rels[right_start..] {
                    r.in_star = false;
                }
            }
            match constraint {
                Some(JoinConstraint::On(e)) => self.role(e, Role::Join, Aliases::No),
                Some(JoinConstraint::Using(names)) => {
                    let names: Vec<&Ident> = names.iter().filter_map(|n| n.0.last()?.as_ident()).collect();
                    for ident in names {
                        self.merge_using(ident, right_start, side);
                    }
                }
                Some(JoinConstraint::Natural) => {
                    let scope = self.scopes.last().expect("a SELECT pushed its scope");
                    let right: Vec<String> =
                        scope.rels[right_start..].iter().flat_map(|r| r.cols.iter().map(|c| c.name.clone())).collect();
                    let common: Vec<String> = right
                        .into_iter()
                        .filter(|n| {
                            scope.merged.iter().any(|c| c.name.eq_ignore_ascii_case(n))
                                || scope.rels[..right_start].iter().any(|r| r.col(n).is_some())
                        })
                        .collect();
                    for name in common {
                        self.merge_using(&Ident::new(name), right_start, side);
                    }
                }
                _ => {}
            }
        }
    }

    /// `USING (col)`: both sides' columns become one, visible once and unqualified.
    fn merge_using(&mut self, ident: &Ident, right_start: usize, side: Side) {
        let name = norm(ident);
        let scope = self.scopes.last().expect("a SELECT pushed its scope");
        let left = side_lookup(scope, &scope.rels[..right_start], true, &name);
        let right = side_lookup(scope, &scope.rels[right_start..], false, &name);
        let (Some(left), Some(right)) = (left, right) else {
            if scope.rels.iter().all(|r| r.complete) {
                let available = available(&scope.rels);
                self.problem(ident, ProblemKind::Unknown { qualifier: None, available });
            }
            return;
        };
        let mut both = left.origin.clone();
        merge(&mut both, &right.origin, EdgeKind::Copy);
        self.record(Role::Join, &both);
        let col = match side {
            Side::Right => right,
            Side::Full => Col {
                ty: types::unify(&[left.ty.clone(), right.ty.clone()], self.catalog.dialect),
                fp: super::fingerprint(&(left.fp, right.fp)),
                origin: both,
                ..left
            },
            _ => left,
        };
        let scope = self.top();
        scope.merged.retain(|c| !c.name.eq_ignore_ascii_case(&name));
        scope.merged.push(Col { name: name.clone(), ..col });
        for rel in &mut scope.rels {
            if rel.col(&name).is_some() {
                rel.hidden.push(name.clone());
            }
        }
    }

    fn table_factor(&mut self, t: &TableFactor) {
        match t {
            TableFactor::Table { name, alias, args, .. } => {
                let last = name.0.last().and_then(|p| p.as_ident()).map(norm).unwrap_or_default();
                let qualifier = alias.as_ref().map_or(last.clone(), |a| norm(&a.name));
                let mut rel = if args.is_some() {
                    Rel::unknown(&qualifier, &qualifier)
                } else {
                    self.table_rel(&name.0.iter().filter_map(|p| p.as_ident().cloned()).collect::<Vec<_>>(), &qualifier)
                };
                if let Some(a) = alias {
                    rel.qualifier = qualifier;
                    rel.rename(&a.columns.iter().map(|c| norm(&c.name)).collect::<Vec<_>>());
                }
                self.top().rels.push(rel);
            }
            TableFactor::Derived { lateral, subquery, alias, .. } => {
                // Only a LATERAL subquery sees the FROM clause it sits in.
                let hidden = if *lateral { None } else { self.scopes.pop() };
                let out = self.query(subquery);
                if let Some(scope) = hidden {
                    self.scopes.push(scope);
                }
                let name = alias.as_ref().map(|a| norm(&a.name)).unwrap_or_default();
                let mut rel = output_rel(out, &name, &name);
                if let Some(a) = alias {
                    rel.rename(&a.columns.iter().map(|c| norm(&c.name)).collect::<Vec<_>>());
                }
                self.top().rels.push(rel);
            }
            TableFactor::NestedJoin { table_with_joins, .. } => self.table_with_joins(table_with_joins),
            other => {
                let name = table_factor_alias(other).unwrap_or_default();
                self.top().rels.push(Rel::unknown(&name, &name));
            }
        }
    }

    /// A table by name: a CTE in scope, an inlined ephemeral model, or a node's relation.
    fn table_rel(&mut self, parts: &[Ident], qualifier: &str) -> Rel {
        let names: Vec<String> = parts.iter().map(norm).collect();
        if let [single] = names.as_slice() {
            if let Some((_, rel)) = self.ctes.iter().rev().find(|(n, _)| n.eq_ignore_ascii_case(single)) {
                let mut rel = rel.clone();
                rel.qualifier = qualifier.to_string();
                rel.hidden.clear();
                return rel;
            }
            if let Some(id) = self.reads.ephemeral(self.catalog, &single.to_lowercase()) {
                return self.node_rel(id, qualifier);
            }
        }
        if names.len() >= 2 {
            let key = format!("{}.{}", names[names.len() - 2], names[names.len() - 1]).to_lowercase();
            if let Some(id) = self.reads.relation(self.catalog, &key) {
                return self.node_rel(id, qualifier);
            }
        }
        Rel::unknown(names.last().map_or("", String::as_str), qualifier)
    }

    /// A node's relation, shown to the user by the node's name.
    fn node_rel(&mut self, id: &Arc<str>, qualifier: &str) -> Rel {
        let display = id.rsplit('.').next().unwrap_or(id);
        let schema = self.reads.schema(self.catalog, id);
        let mut rel = Rel::node(id, display, qualifier, schema.filter(|s| s.complete).map(|s| s.columns.as_slice()));
        if let Some(partial) = schema.filter(|s| !s.complete) {
            // Known columns of a partial schema still resolve and carry lineage.
            let known = Rel::node(id, display, qualifier, Some(&partial.columns));
            rel.cols = known.cols;
        }
        rel
    }

    pub(super) fn window_spec(&mut self, spec: &WindowSpec) {
        for e in &spec.partition_by {
            self.role(e, Role::Window, Aliases::No);
        }
        for o in &spec.order_by {
            self.role(&o.expr, Role::Window, Aliases::No);
        }
    }

    /// Resolves an expression used in a clause and records its columns under `role`.
    pub(super) fn role(&mut self, e: &Expr, role: Role, aliases: Aliases) {
        let v = self.value(e, aliases);
        if role != Role::Order {
            v.fp.hash(&mut self.rows);
        }
        self.record(role, &v.origin);
    }

    fn record(&mut self, role: Role, origin: &Origin) {
        if !origin.is_empty() {
            self.usage.entry(role).or_default().extend(origin.keys().cloned());
        }
    }

    /// `GROUP BY 2` / `ORDER BY 2` refer to the second output column.
    fn expr_or_position(&mut self, e: &Expr, aliases: Aliases) -> Col {
        if let Expr::Value(v) = e
            && let Value::Number(n, _) = &v.value
            && let Ok(i) = n.parse::<usize>()
        {
            let outputs = &self.scopes.last().expect("a scope is pushed").outputs;
            return outputs.get(i.wrapping_sub(1)).cloned().unwrap_or_else(|| Col::untyped("", Origin::new()));
        }
        self.value(e, aliases)
    }

    /// An expression's value: its origin, type and fingerprint (the expression's syntax
    /// tree, spans aside, and the fingerprints of the columns it reads).
    pub(super) fn value(&mut self, e: &Expr, aliases: Aliases) -> Col {
        let start = self.refs.len();
        let origin = self.expr(e, aliases);
        let refs = self.refs.split_off(start);
        let found = |x: &Expr| {
            let key = ref_key(x)?;
            refs.iter().find(|r| r.0 == key).map(|r| r.1.clone())
        };
        let ty = types::infer(e, self.catalog.dialect, &|x| found(x).unwrap_or_default());
        let mut h = Fnv::default();
        e.hash(&mut h);
        for r in &refs {
            r.2.hash(&mut h);
        }
        Col { name: String::new(), origin, ty, fp: h.finish() }
    }

    /// Records a scalar subquery's value for [`Walker::value`].
    pub(super) fn subquery_ref(&mut self, q: &Query, out: &Output) {
        let first = out.cols.first();
        let fp = super::fingerprint(&out.cols.iter().map(|c| c.fp).collect::<Vec<_>>());
        self.refs.push((q as *const Query as usize, first.map(|c| c.ty.clone()).unwrap_or_default(), fp));
    }

    /// The origin of an expression's value: a bare column keeps its kinds, anything
    /// else is at least a transform.
    fn expr(&mut self, e: &Expr, aliases: Aliases) -> Origin {
        match e {
            Expr::Identifier(i) => self.column(std::slice::from_ref(i), aliases).origin,
            Expr::CompoundIdentifier(parts) => self.column(parts, aliases).origin,
            Expr::Nested(inner) => self.expr(inner, aliases),
            _ => super::expr::origin(self, e, EdgeKind::Transform, aliases),
        }
    }

    /// Resolves a column reference, innermost scope first, and records it for
    /// [`Walker::value`].
    pub(super) fn column(&mut self, parts: &[Ident], aliases: Aliases) -> Col {
        let col = self.resolve(parts, aliases);
        self.refs.push((parts.as_ptr() as usize, col.ty.clone(), col.fp));
        col
    }

    fn resolve(&mut self, parts: &[Ident], aliases: Aliases) -> Col {
        let none = || Col::untyped("", Origin::new());
        match parts {
            [] => none(),
            [name] => self.unqualified(name, aliases),
            [q, name, ..] => {
                // `alias.col[.field]`, then `schema.table.col`, then `col.field`.
                if let Some(o) = self.qualified(q, name) {
                    return o;
                }
                if let [_, t, name, ..] = parts
                    && let Some(c) = self.qualified(t, name)
                {
                    return c;
                }
                let first = norm(q);
                for scope in self.scopes.iter().rev() {
                    if let Some(c) = scope.lookup(&first).col() {
                        // `col.field`: a part of the column, of a type not known here.
                        return Col { ty: Type::Unknown, ..c };
                    }
                }
                // An unknown qualifier: leave it to the engine.
                none()
            }
        }
    }

    fn qualified(&mut self, q: &Ident, name: &Ident) -> Option<Col> {
        let qualifier = norm(q);
        let col = norm(name);
        let rel = self.scopes.iter().rev().find_map(|s| s.rel(&qualifier))?;
        if let Some(c) = rel.col(&col) {
            return Some(c.clone());
        }
        if !rel.complete {
            return Some(rel.passthrough_col(&col));
        }
        let available = vec![(rel.display.clone(), rel.cols.iter().map(|c| c.name.clone()).collect())];
        self.problem(name, ProblemKind::Unknown { qualifier: Some(rel.qualifier.clone()), available });
        Some(Col::untyped(&col, Origin::new()))
    }

    fn unqualified(&mut self, ident: &Ident, aliases: Aliases) -> Col {
        let name = norm(ident);
        let innermost = self.scopes.last();
        if aliases == Aliases::Before
            && let Some(c) = innermost.and_then(|s| s.output(&name))
        {
            return c.clone();
        }
        for scope in self.scopes.iter().rev() {
            match scope.lookup(&name) {
                Lookup::Found(c) | Lookup::Relaxed(c) => return c,
                Lookup::Ambiguous(relations, c) => {
                    self.problem(ident, ProblemKind::Ambiguous { relations });
                    return c;
                }
                Lookup::Missing => {}
            }
        }
        if aliases == Aliases::After
            && let Some(c) = self.scopes.last().and_then(|s| s.output(&name))
        {
            return c.clone();
        }
        if ident.quote_style.is_none() && is_keyword_value(&name) {
            return Col::untyped(&name, Origin::new());
        }
        // Postgres' whole-row reference: `select t from t`.
        if let Some(rel) = self.scopes.iter().rev().find_map(|s| s.rel(&name)) {
            let mut origin = Origin::new();
            for c in &rel.cols {
                merge(&mut origin, &c.origin, EdgeKind::Transform);
            }
            return Col::untyped(&name, origin);
        }
        let available = self.scopes.last().map(|s| available(&s.rels)).unwrap_or_default();
        self.problem(ident, ProblemKind::Unknown { qualifier: None, available });
        Col::untyped(&name, Origin::new())
    }

    fn problem(&mut self, ident: &Ident, kind: ProblemKind) {
        let start = ident.span.start;
        self.problems.push(Problem {
            kind,
            name: ident.value.clone(),
            line: start.line.max(1) as usize,
            column: start.column.max(1) as usize,
        });
    }
}

/// Every relation's display name and columns, for help text.
fn available(rels: &[Rel]) -> Vec<(String, Vec<String>)> {
    rels.iter().map(|r| (r.display.clone(), r.cols.iter().map(|c| c.name.clone()).collect())).collect()
}

/// The origin of `name` on one side of a join: merged columns, then known columns, then
/// relations with an unknown schema. `None` when no relation on that side can have it.
fn side_lookup(scope: &Scope, rels: &[Rel], left: bool, name: &str) -> Option<Col> {
    if left && let Some(c) = scope.merged.iter().find(|c| c.name.eq_ignore_ascii_case(name)) {
        return Some(c.clone());
    }
    if let Some(c) = rels.iter().find_map(|r| r.col(name)) {
        return Some(c.clone());
    }
    let open: Vec<&Rel> = rels.iter().filter(|r| !r.complete).collect();
    match open.as_slice() {
        [] => None,
        [one] => Some(one.passthrough_col(name)),
        _ => Some(Col::untyped(name, Origin::new())),
    }
}

/// The key [`Walker::value`] finds a column reference or scalar subquery by: the address
/// of its first name part, or of its query.
fn ref_key(e: &Expr) -> Option<usize> {
    match e {
        Expr::Identifier(i) => Some(i as *const Ident as usize),
        Expr::CompoundIdentifier(parts) => Some(parts.as_ptr() as usize),
        Expr::Subquery(q) => Some(&**q as *const Query as usize),
        _ => None,
    }
}

fn output_rel(out: Output, display: &str, qualifier: &str) -> Rel {
    let mut rel = Rel::unknown(display, qualifier);
    rel.cols = out.cols;
    rel.complete = out.complete;
    rel.passthrough = out.passthrough;
    rel
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Inner,
    Right,
    Full,
    Semi,
}

fn join_constraint(op: &JoinOperator) -> (Option<&JoinConstraint>, Side) {
    use JoinOperator as J;
    match op {
        J::Join(c) | J::Inner(c) | J::Left(c) | J::LeftOuter(c) | J::CrossJoin(c) | J::StraightJoin(c) => {
            (Some(c), Side::Inner)
        }
        J::Right(c) | J::RightOuter(c) => (Some(c), Side::Right),
        J::FullOuter(c) => (Some(c), Side::Full),
        J::Semi(c) | J::LeftSemi(c) | J::Anti(c) | J::LeftAnti(c) => (Some(c), Side::Semi),
        J::RightSemi(c) | J::RightAnti(c) => (Some(c), Side::Right),
        J::AsOf { constraint, .. } => (Some(constraint), Side::Inner),
        _ => (None, Side::Inner),
    }
}

fn table_factor_alias(t: &TableFactor) -> Option<String> {
    match t {
        TableFactor::TableFunction { alias, .. }
        | TableFactor::Function { alias, .. }
        | TableFactor::UNNEST { alias, .. } => alias.as_ref().map(|a| norm(&a.name)),
        _ => None,
    }
}

/// `* EXCLUDE (..)` / `* EXCEPT (..)`.
fn star_filter(cols: Vec<Col>, opts: &WildcardAdditionalOptions) -> Vec<Col> {
    use datafusion::sql::sqlparser::ast::ExcludeSelectItem;
    let mut drop: Vec<String> = Vec::new();
    match &opts.opt_exclude {
        Some(ExcludeSelectItem::Single(n)) => drop.extend(n.0.last().and_then(|p| p.as_ident()).map(norm)),
        Some(ExcludeSelectItem::Multiple(list)) => {
            drop.extend(list.iter().filter_map(|n| n.0.last().and_then(|p| p.as_ident()).map(norm)))
        }
        None => {}
    }
    if let Some(except) = &opts.opt_except {
        drop.push(norm(&except.first_element));
        drop.extend(except.additional_elements.iter().map(norm));
    }
    cols.into_iter().filter(|c| !drop.iter().any(|d| d.eq_ignore_ascii_case(&c.name))).collect()
}

/// An identifier as the engine sees it: unquoted ones fold to lowercase.
fn norm(i: &Ident) -> String {
    if i.quote_style.is_some() { i.value.clone() } else { i.value.to_lowercase() }
}

/// SQL special values that parse as plain identifiers.
fn is_keyword_value(name: &str) -> bool {
    matches!(
        name,
        "current_date"
            | "current_time"
            | "current_timestamp"
            | "localtime"
            | "localtimestamp"
            | "current_user"
            | "session_user"
            | "current_role"
            | "current_schema"
            | "current_catalog"
            | "user"
    )
}
