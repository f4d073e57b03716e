//! Column lineage on one fixture project per case (`tests/fixtures/projects/lineage_*`):
//! `etlm compile` writes `target/lineage.json`, and each test compares every model's
//! columns, edges and clause usage with lineage written out by hand.
//!
//! The compact form, one line per output column and per used role:
//!
//! ```text
//! m.total <- aggregate orders.amount, transform orders.status
//! m [filter] orders.status
//! ```
//!
//! Edges and usage are sorted by node name, then column; nodes are named by their name
//! (`source.table` for sources).

mod support;

use std::path::Path;

use serde_json::Value;
use support::{copy_project, etlm, fixtures};

fn node_name(id: &str) -> String {
    let parts: Vec<&str> = id.split('.').collect();
    parts[2..].join(".")
}

/// Every model of a compiled project's lineage.json, in the compact form.
fn render(lineage: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    for node in lineage["nodes"].as_object().unwrap().values() {
        if node["resource_type"] != "model" {
            continue;
        }
        let name = node["name"].as_str().unwrap();
        for col in node["columns"].as_array().unwrap() {
            let mut edges: Vec<(String, String, String)> = col["upstream"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        node_name(e["node"].as_str().unwrap()),
                        e["column"].as_str().unwrap().to_string(),
                        e["kind"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            edges.sort();
            let edges: Vec<String> = edges.iter().map(|(n, c, k)| format!("{k} {n}.{c}")).collect();
            lines.push(
                format!("{name}.{} <- {}", col["name"].as_str().unwrap(), edges.join(", ")).trim_end().to_string(),
            );
        }
        for (role, refs) in node["usage"].as_object().unwrap() {
            let mut refs: Vec<String> = refs
                .as_array()
                .unwrap()
                .iter()
                .map(|r| format!("{}.{}", node_name(r["node"].as_str().unwrap()), r["column"].as_str().unwrap()))
                .collect();
            refs.sort();
            lines.push(format!("{name} [{role}] {}", refs.join(", ")));
        }
        if node["columns_complete"] != true {
            lines.push(format!("{name} (columns incomplete)"));
        }
    }
    lines
}

fn compile(name: &str) -> (tempfile::TempDir, std::path::PathBuf, Value) {
    let (tmp, dir) = copy_project(name);
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 0, "{name} must compile:\n{}", run.stderr);
    let json = serde_json::from_slice(&std::fs::read(dir.join("target/lineage.json")).unwrap()).unwrap();
    (tmp, dir, json)
}

fn check(name: &str, expected: &str) {
    let (_tmp, _dir, json) = compile(name);
    let expected: Vec<&str> = expected.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    assert_eq!(render(&json), expected, "lineage of {name}");
}

macro_rules! lineage_cases {
    ($($name:ident => $expected:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name), $expected);
            }
        )*

        #[test]
        fn every_lineage_fixture_has_a_test() {
            let known = [$(stringify!($name)),*];
            assert!(known.len() >= 25);
            for entry in std::fs::read_dir(fixtures()).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                if name.starts_with("lineage_") {
                    assert!(known.contains(&name.as_str()), "fixture {name} has no test");
                }
            }
        }
    };
}

lineage_cases! {
    lineage_cte_chain => "
        m.order_id <- copy orders.id
        m.double_amount <- transform orders.amount
    ",
    lineage_self_join_aliases => "
        m.employee <- copy employees.name
        m.manager <- copy employees.name
        m [join] employees.id, employees.manager_id
    ",
    lineage_star_two_ctes => "
        m.id <- copy orders.id
        m.customer_id <- copy orders.customer_id
        m.amount <- copy orders.amount
        m.status <- copy orders.status
    ",
    lineage_union_by_position => "
        m.id <- copy shop_orders.order_id, copy web_orders.id
        m.amount <- transform shop_orders.amount_cents, copy web_orders.total
    ",
    lineage_union_distinct_three => "
        m.k <- copy orders.id, copy shop_orders.order_id, copy web_orders.id
    ",
    lineage_window_partition => "
        m.id <- copy orders.id
        m.customer_id <- copy orders.customer_id
        m.running_total <- aggregate orders.amount
        m.rn <-
        m [window] orders.customer_id, orders.id
    ",
    lineage_aggregate_case => "
        m.customer_id <- copy orders.customer_id
        m.paid_amount <- aggregate orders.amount, aggregate orders.status
        m.n <-
        m [group] orders.customer_id
    ",
    lineage_case_transform => "
        m.id <- copy orders.id
        m.paid <- transform orders.amount, transform orders.status
    ",
    lineage_correlated_subquery => "
        m.id <- copy customers.id
        m.name <- copy customers.name
        m.total <- aggregate orders.amount
        m [filter] customers.id, orders.customer_id
    ",
    lineage_exists_subquery => "
        m.id <- copy customers.id
        m.name <- copy customers.name
        m [filter] customers.id, orders.customer_id
    ",
    lineage_in_subquery => "
        m.id <- copy orders.id
        m.amount <- copy orders.amount
        m [filter] customers.id, customers.name, orders.customer_id
    ",
    lineage_join_using => "
        m.order_id <- copy orders_u.order_id
        m.amount <- copy orders_u.amount
        m.paid_at <- copy payments.paid_at
        m [join] orders_u.order_id, payments.order_id
    ",
    lineage_natural_join => "
        m.id <- copy a.id
        m.x <- copy a.x
        m.y <- copy b.y
        m [join] a.id, b.id
    ",
    lineage_ephemeral_middle => "
        eph.id <- copy orders.id
        eph.cents <- transform orders.amount
        final.id <- copy eph.id
        final.cents <- copy eph.cents
        final [filter] eph.cents
    ",
    lineage_left_join => "
        m.id <- copy orders.id
        m.customer_name <- copy customers.name
        m [join] customers.id, orders.customer_id
    ",
    lineage_right_join_using => "
        m.id <- copy b.id
        m.x <- copy a.x
        m.y <- copy b.y
        m [join] a.id, b.id
    ",
    lineage_full_join_using => "
        m.id <- copy a.id, copy b.id
        m.x <- copy a.x
        m.y <- copy b.y
        m [join] a.id, b.id
    ",
    lineage_nested_subqueries => "
        m.customer_id <- copy orders.customer_id
        m.total <- aggregate orders.amount
        m [filter] orders.amount, orders.status
        m [group] orders.customer_id
    ",
    lineage_qualified_star => "
        m.id <- copy orders.id
        m.customer_id <- copy orders.customer_id
        m.amount <- copy orders.amount
        m.status <- copy orders.status
        m.name <- copy customers.name
        m [join] customers.id, orders.customer_id
    ",
    lineage_renames => "
        m1.order_key <- copy orders.id
        m1.order_amount <- copy orders.amount
        m2.k <- copy m1.order_key
        m2.order_amount <- copy m1.order_amount
    ",
    lineage_literals => "
        m.id <- copy orders.id
        m.channel <-
        m.one <-
        m.loaded_at <-
        m.nothing <-
    ",
    lineage_group_by_position => "
        m.status <- copy orders.status
        m.n <-
        m.top <- aggregate orders.amount
        m [group] orders.status
    ",
    lineage_order_by => "
        m.id <- copy orders.id
        m.amount <- copy orders.amount
        m [order] orders.amount, orders.status
    ",
    lineage_filter_only => "
        m.id <- copy orders.id
        m [filter] orders.amount, orders.status
    ",
    lineage_having => "
        m.customer_id <- copy orders.customer_id
        m.total <- aggregate orders.amount
        m [filter] orders.amount
        m [group] orders.customer_id
    ",
    lineage_model_chain => "
        int.id <- copy stg.id
        int.cents <- copy stg.cents
        int.customer_id <- copy stg.customer_id
        mart.customer_id <- copy int.customer_id
        mart.total_cents <- aggregate int.cents
        mart [group] int.customer_id
        stg.id <- copy orders.id
        stg.cents <- transform orders.amount
        stg.customer_id <- copy orders.customer_id
    ",
    lineage_source_declared => "
        m.event_id <- copy raw.events.event_id
        m.kind <- transform raw.events.kind
    ",
    lineage_postgres_dialect => "
        m.customer_id <- copy orders.customer_id
        m.amount <- transform orders.amount
        m.is_paid <- transform orders.status
        m.loaded_epoch <-
        m [filter] orders.status
        m [group] orders.customer_id
        m [order] orders.amount, orders.customer_id
    ",
    lineage_intersect_except => "
        m.id <- copy shop_orders.order_id, copy web_orders.id
        m [filter] shop_orders.amount_cents
    ",
    lineage_recursive_cte => "
        m.id <- copy employees.id
        m.name <- copy employees.name
        m.depth <-
        m [filter] employees.manager_id
        m [join] employees.id, employees.manager_id
    ",
    lineage_lateral_subquery => "
        m.name <- copy customers.name
        m.last_amount <- copy orders.amount
        m [filter] customers.id, orders.customer_id
        m [order] orders.id
    ",
    lineage_source_undeclared => "
        m.user_id <- copy raw.clicks.user_id
        m.clicks <-
        m.top <- aggregate orders.amount
        m [group] raw.clicks.user_id
        m [join] orders.customer_id, raw.clicks.user_id
    ",
}

#[test]
fn ephemeral_models_are_lineage_nodes() {
    let (_tmp, _dir, json) = compile("lineage_ephemeral_middle");
    let eph = &json["nodes"]["model.lineage_ephemeral_middle.eph"];
    assert_eq!(eph["name"], "eph");
    assert_eq!(eph["columns"][1]["name"], "cents");
}

#[test]
fn lineage_json_is_byte_stable_with_sorted_keys() {
    let (_tmp, dir) = copy_project("lineage_source_undeclared");
    assert_eq!(etlm(&dir, &["compile"]).code, 0);
    let first = std::fs::read(dir.join("target/lineage.json")).unwrap();
    assert_eq!(etlm(&dir, &["compile"]).code, 0);
    assert_eq!(first, std::fs::read(dir.join("target/lineage.json")).unwrap());
    let text = String::from_utf8(first).unwrap();
    let usage = text.find("\"usage\"").unwrap();
    let (group, join) = (text[usage..].find("\"group\"").unwrap(), text[usage..].find("\"join\"").unwrap());
    assert!(group < join, "usage keys are sorted");
    assert!(text.contains("\"version\": 1"));
}

#[test]
fn example_project_lineage_reaches_the_seeds() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("example_project");
    let (_tmp, dir) = copy_project(&example.display().to_string());
    assert_eq!(etlm(&dir, &["compile"]).code, 0);
    let json: Value = serde_json::from_slice(&std::fs::read(dir.join("target/lineage.json")).unwrap()).unwrap();
    let lines = render(&json);
    assert!(lines.contains(&"stg_products.product_name <- copy products.name".to_string()), "{lines:#?}");
    assert!(
        lines.contains(
            &"fct_orders.gross_amount <- transform stg_orders.quantity, transform stg_products.unit_price".to_string()
        ),
        "{lines:#?}"
    );
}

#[test]
fn lineage_command_prints_both_directions_as_a_tree() {
    let (_tmp, dir) = copy_project("lineage_model_chain");
    let run = etlm(&dir, &["lineage", "int.cents"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "int.cents\n  upstream\n  └── copy stg.cents\n      └── transform orders.amount\n  downstream\n  └── aggregate mart.total_cents\n"
    );
    let up = etlm(&dir, &["lineage", "mart.total_cents", "--direction", "up"]);
    assert_eq!(
        up.stdout,
        "mart.total_cents\n  upstream\n  └── aggregate int.cents\n      └── copy stg.cents\n          └── transform orders.amount\n"
    );
}

#[test]
fn the_node_argument_is_not_taken_for_the_target_of_a_profile() {
    let (_tmp, dir) = copy_project("lineage_model_chain");
    let name = std::fs::read_to_string(dir.join("etlm.yml")).unwrap();
    let profile = name.lines().find_map(|l| l.strip_prefix("name:")).unwrap().trim().to_string();
    std::fs::write(
        dir.join("profiles.yml"),
        format!("{profile}:\n  target: dev\n  outputs:\n    dev:\n      type: local\n      schema: main\n"),
    )
    .unwrap();
    let run = etlm(&dir, &["lineage", "int.cents", "--direction", "up"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("int.cents\n  upstream\n"), "{}", run.stdout);
}

#[test]
fn lineage_command_covers_every_column_of_a_node_and_its_usage() {
    let (_tmp, dir) = copy_project("lineage_model_chain");
    let run = etlm(&dir, &["lineage", "mart", "--direction", "up"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let expected = "\
mart.customer_id
  upstream
  └── copy int.customer_id
      └── copy stg.customer_id
          └── copy orders.customer_id

mart.total_cents
  upstream
  └── aggregate int.cents
      └── copy stg.cents
          └── transform orders.amount

mart uses for group: int.customer_id
";
    assert_eq!(run.stdout, expected);
}

#[test]
fn lineage_command_json_has_the_same_paths() {
    let (_tmp, dir) = copy_project("lineage_model_chain");
    let run = etlm(&dir, &["lineage", "orders.amount", "--direction", "down", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(json["node"], "seed.lineage_model_chain.orders");
    let step = &json["columns"][0]["downstream"][0];
    assert_eq!(
        (step["name"].as_str(), step["column"].as_str(), step["kind"].as_str()),
        (Some("stg"), Some("cents"), Some("transform"))
    );
    assert_eq!(step["next"][0]["next"][0]["column"], "total_cents");
    assert!(json["columns"][0].get("upstream").is_none());
}

#[test]
fn lineage_command_rejects_an_unknown_column_with_a_suggestion() {
    let (_tmp, dir) = copy_project("lineage_model_chain");
    let run = etlm(&dir, &["lineage", "stg.cent"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("error[unknown-lineage-target]: `stg` has no column `cent`"), "{}", run.stderr);
    assert!(run.stderr.contains("did you mean `cents`?"), "{}", run.stderr);
}

#[test]
fn a_model_with_an_unknown_column_does_not_cascade_errors_downstream() {
    let (_tmp, dir) = copy_project("lineage_model_chain");
    let sql = "select id, amout * 100 as cent, customer_id from {{ ref('orders') }}\n";
    std::fs::write(dir.join("models/stg.sql"), sql).unwrap();
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr.matches("error[").count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("error[unknown-column]: `amout` is not a column of `orders`"), "{}", run.stderr);
    assert!(run.stderr.contains("did you mean `amount`?"), "{}", run.stderr);
}

#[test]
fn copied_columns_keep_the_seed_type_and_computed_ones_are_typed_through_ctes() {
    let (_tmp, _dir, json) = compile("lineage_renames");
    let m2 = &json["nodes"]["model.lineage_renames.m2"]["columns"];
    assert_eq!((m2[0]["name"].as_str(), m2[0]["data_type"].as_str()), (Some("k"), Some("int32")));
    assert_eq!(m2[1]["data_type"], "float64");
    let (_tmp, _dir, json) = compile("lineage_cte_chain");
    // `amount * 2` over a float64 seed column, through three CTEs.
    assert_eq!(json["nodes"]["model.lineage_cte_chain.m"]["columns"][1]["data_type"], "float64");
}

#[test]
fn an_unknown_column_of_an_ephemeral_model_points_at_the_reading_model() {
    let (_tmp, dir) = copy_project("lineage_ephemeral_middle");
    let sql = "-- reads the ephemeral model\nselect id, cents, centz\nfrom {{ ref('eph') }} where cents > 0\n";
    std::fs::write(dir.join("models/final.sql"), sql).unwrap();
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("error[unknown-column]: `centz` is not a column of `eph`"), "{}", run.stderr);
    assert!(run.stderr.contains(" --> models/final.sql:2:19"), "{}", run.stderr);
    assert!(run.stderr.contains("= help: `eph` has `id`, `cents`"), "{}", run.stderr);
}

#[test]
fn lineage_command_follows_a_column_of_a_source_without_declared_columns() {
    let (_tmp, dir) = copy_project("lineage_source_undeclared");
    let run = etlm(&dir, &["lineage", "raw.clicks.user_id", "--direction", "down"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "clicks.user_id\n  downstream\n  └── copy m.user_id\n");
    let whole = etlm(&dir, &["lineage", "raw.clicks"]);
    assert_eq!(whole.stdout, "`clicks` has no known columns\n");
}

/// Compiles a fixture, applies `edit`, compiles again (reusing `target/compile.cache`),
/// and checks the result against a compile of an edited copy that has no cache.
fn check_cached_compile(name: &str, edit: impl Fn(&Path)) -> Value {
    let (_tmp, dir) = copy_project(name);
    assert_eq!(etlm(&dir, &["compile"]).code, 0);
    assert!(dir.join("target/compile.cache").is_file(), "compile writes its cache");
    edit(&dir);
    let cached = etlm(&dir, &["compile"]);
    let (_fresh_tmp, fresh) = copy_project(name);
    edit(&fresh);
    let uncached = etlm(&fresh, &["compile"]);
    assert_eq!(cached.code, uncached.code, "{}\n---\n{}", cached.stderr, uncached.stderr);
    assert_eq!(
        cached.stderr.replace(&dir.display().to_string(), ""),
        uncached.stderr.replace(&fresh.display().to_string(), "")
    );
    let lineage = |d: &Path| std::fs::read(d.join("target/lineage.json")).unwrap();
    if cached.code == 0 {
        assert_eq!(lineage(&dir), lineage(&fresh));
    }
    serde_json::from_slice(&lineage(&dir)).unwrap()
}

#[test]
fn a_cached_compile_sees_a_column_added_upstream_through_select_star() {
    let json = check_cached_compile("lineage_star_two_ctes", |dir| {
        std::fs::write(dir.join("seeds/orders.csv"), "id,customer_id,amount,status,note\n1,1,10.5,paid,x\n").unwrap();
    });
    assert!(render(&json).contains(&"m.note <- copy orders.note".to_string()), "{:#?}", render(&json));
}

#[test]
fn a_cached_compile_reports_a_column_removed_upstream() {
    check_cached_compile("lineage_model_chain", |dir| {
        std::fs::write(dir.join("models/stg.sql"), "select id, amount * 100 as cents from {{ ref('orders') }}\n")
            .unwrap();
    });
}

#[test]
fn a_cached_compile_reuses_results_when_nothing_changed() {
    check_cached_compile("lineage_ephemeral_middle", |_| {});
}

/// As in dbt, a source's `columns:` document it and need not be complete: a column the
/// model reads that is not declared compiles, and lineage still reaches it.
#[test]
fn a_source_column_not_declared_is_read_without_error() {
    let (_tmp, dir) = copy_project("lineage_source_declared");
    std::fs::write(dir.join("models/m.sql"), "select event_id, payload from {{ source('raw', 'events') }}\n").unwrap();
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: Value = serde_json::from_slice(&std::fs::read(dir.join("target/lineage.json")).unwrap()).unwrap();
    let lines = render(&json);
    assert!(lines.contains(&"m.payload <- copy raw.events.payload".to_string()), "{lines:?}");
}
