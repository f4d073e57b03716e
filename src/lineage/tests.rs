//! The walk on hand-built catalogs: what resolves, what is reported, what relaxes.

use std::collections::HashMap;
use std::sync::Arc;

use super::walk::{ProblemKind, walk_model};
use super::{Catalog, Schema};
use crate::sql::{SqlDialect, parse_query};

/// `main.orders(id, customer_id, amount, status)`, `main.customers(id, name)`, and
/// `raw.events` with an unknown schema.
fn catalog() -> Catalog {
    let mut c = Catalog {
        relations: HashMap::new(),
        ephemerals: HashMap::new(),
        schemas: HashMap::new(),
        dialect: SqlDialect::Postgres,
    };
    let known = |cols: &[&str]| Schema {
        columns: cols.iter().map(|c| (c.to_string(), crate::sql::types::Type::Unknown)).collect(),
        complete: true,
    };
    for (rel, id, schema) in [
        ("main.orders", "seed.p.orders", known(&["id", "customer_id", "amount", "status"])),
        ("main.customers", "seed.p.customers", known(&["id", "name"])),
        ("raw.events", "source.p.raw.events", Schema::default()),
    ] {
        let id: Arc<str> = Arc::from(id);
        c.relations.insert(rel.into(), id.clone());
        c.schemas.insert(id, schema);
    }
    c
}

/// Problems as `(kind, name, line, column)`.
fn problems(sql: &str) -> Vec<(&'static str, String, usize, usize)> {
    let stmt = parse_query(sql, SqlDialect::Postgres).expect("test SQL parses");
    walk_model(&stmt, &catalog())
        .problems
        .into_iter()
        .map(|p| {
            let kind = match p.kind {
                ProblemKind::Unknown { .. } => "unknown",
                ProblemKind::Ambiguous { .. } => "ambiguous",
            };
            (kind, p.name, p.line, p.column)
        })
        .collect()
}

fn outputs(sql: &str) -> Vec<String> {
    let stmt = parse_query(sql, SqlDialect::Postgres).expect("test SQL parses");
    walk_model(&stmt, &catalog()).columns.into_iter().map(|c| c.name).collect()
}

#[test]
fn valid_sql_has_no_problems() {
    for sql in [
        "select id as k from main.orders order by k",
        "select status as s, count(*) from main.orders group by s having count(*) > 1",
        "select o.id from main.orders o where exists (select 1 from main.customers c where c.id = o.customer_id)",
        "select id, (select max(name) from main.customers c where c.id = orders.customer_id) from main.orders",
        "select * from (values (1, 'a')) v(n, s) where n > 0",
        "select current_date, current_timestamp, true, null from main.orders",
        "select x.anything, y from raw.events x, lateral (select x.other as y) l",
        "select id from main.orders join main.customers using (id)",
        "with recursive r as (select 1 as n union all select n + 1 from r where n < 3) select n from r",
        "select generate_series from generate_series(1, 3)",
        "select o.amount from main.orders as o order by 1",
        "select distinct on (customer_id) customer_id, amount from main.orders order by customer_id, amount desc",
        "select sum(amount) filter (where status = 'paid') from main.orders",
        "select main.orders.id from main.orders",
        "select o from main.orders o",
        "select x.f.g, id from main.orders, lateral (select 1 as f) x",
    ] {
        assert_eq!(problems(sql), [], "{sql}");
    }
}

#[test]
fn unknown_and_ambiguous_names_are_reported_where_they_are() {
    assert_eq!(problems("select amount_usd\nfrom main.orders"), [("unknown", "amount_usd".into(), 1, 8)]);
    assert_eq!(problems("select o.nope from main.orders o"), [("unknown", "nope".into(), 1, 10)]);
    assert_eq!(
        problems("select id from main.orders o join main.customers c on c.id = o.customer_id"),
        [("ambiguous", "id".into(), 1, 8)]
    );
    assert_eq!(
        problems("select name from main.orders join main.customers using (nope)"),
        [("unknown", "nope".into(), 1, 57)]
    );
    // A derived table does not see the FROM clause it sits in.
    assert_eq!(
        problems("select 1 from main.orders o, (select o.id as i, name) d, main.customers"),
        [("unknown", "name".into(), 1, 49)]
    );
}

#[test]
fn unknown_schemas_relax_the_checks() {
    assert_eq!(problems("select anything, e.other from raw.events e"), []);
    assert_eq!(problems("select whatever from main.orders, raw.events"), []);
    assert_eq!(problems("select * from unknown_schema.t where x > 1"), []);
}

#[test]
fn output_names_follow_the_dialect() {
    assert_eq!(
        outputs("select id, amount * 2, sum(amount), cast(status as text), \"Mixed\" from main.orders"),
        ["id", "?column?", "sum", "status", "Mixed"]
    );
}
