//! `--skip-unchanged`: a build with nothing changed reuses every node and test, and
//! each kind of change is noticed. After a staging model changes, exactly it and what
//! reads it are built; so after a seed's file, a source's data (loaded by another tool,
//! or its files rewritten in place) or a macro changes.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::{empty_project, etlm, rows, write_file};

/// A shop: two seeds, a source another project loads, a macro, staging views and
/// tables, marts, and tests on them.
fn shop(dir: &Path) {
    write_file(dir, "etlm.yml", "name: shop\nmodels:\n  shop:\n    +materialized: table\n");
    write_file(dir, "seeds/orders.csv", "id,customer_id,amount_cents\n1,1,1000\n2,1,2500\n3,2,400\n");
    write_file(dir, "seeds/customers.csv", "id,name\n1,Ada\n2,Grace\n");
    write_file(dir, "macros/money.sql", "{% macro dollars(c) %}({{ c }} / 100.0){% endmacro %}\n");
    write_file(
        dir,
        "models/staging/sources.yml",
        "version: 2\nsources:\n  - name: raw\n    schema: main\n    tables:\n      - name: payments\n",
    );
    write_file(
        dir,
        "models/staging/stg_orders.sql",
        "{{ config(materialized='view') }}\nselect id, customer_id, {{ dollars('amount_cents') }} as amount from {{ ref('orders') }}\n",
    );
    write_file(dir, "models/staging/stg_customers.sql", "select id, name from {{ ref('customers') }}\n");
    write_file(dir, "models/staging/stg_payments.sql", "select order_id, paid from {{ source('raw', 'payments') }}\n");
    write_file(
        dir,
        "models/marts/customer_orders.sql",
        "select c.id as customer_id, c.name, sum(o.amount) as total\n\
         from {{ ref('stg_customers') }} c join {{ ref('stg_orders') }} o on o.customer_id = c.id\n\
         group by c.id, c.name\n",
    );
    write_file(dir, "models/marts/paid_orders.sql", "select count(*) as n from {{ ref('stg_payments') }} where paid\n");
    write_file(dir, "models/marts/customer_names.sql", "select name from {{ ref('stg_customers') }}\n");
    write_file(
        dir,
        "models/schema.yml",
        "version: 2\nmodels:\n  - name: stg_customers\n    columns:\n      - name: id\n        data_tests: [unique, not_null]\n\
         \x20 - name: customer_orders\n    columns:\n      - name: customer_id\n        data_tests:\n          - unique\n          - relationships:\n              to: ref('stg_customers')\n              field: id\n",
    );
}

/// A second project, another tool for the shop: it loads the shop's source
/// `main.payments` into the shop's warehouse.
fn loader(dir: &Path, warehouse: &Path, payments: &str) {
    write_file(dir, "etlm.yml", "name: loader\nprofile: loader\n");
    let profile = format!(
        "loader:\n  target: dev\n  outputs:\n    dev:\n      type: local\n      path: {}\n",
        warehouse.display()
    );
    write_file(dir, "profiles.yml", &profile);
    write_file(dir, "seeds/payments.csv", payments);
    let run = etlm(dir, &["seed"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

/// The kind (`model`, `seed`, `test`), name and status of each result of the last run.
fn results(dir: &Path) -> Vec<(String, String, String)> {
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("target/run_results.json")).unwrap()).unwrap();
    results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut id = r["unique_id"].as_str().unwrap().splitn(3, '.');
            let kind = id.next().unwrap().to_string();
            let name = id.nth(1).unwrap().to_string();
            (kind, name, r["status"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The status of every node and test of the last run, by name.
fn statuses(dir: &Path) -> BTreeMap<String, String> {
    results(dir).into_iter().map(|(_, name, status)| (name, status)).collect()
}

/// Builds with skipping on; returns the names of the seeds and models that were built.
fn build(dir: &Path) -> Vec<String> {
    let run = etlm(dir, &["build", "--skip-unchanged"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let results = results(dir);
    for (_, name, status) in &results {
        assert!(["success", "reused", "pass"].contains(&status.as_str()), "{name}: {status}");
    }
    let mut built: Vec<String> = results
        .into_iter()
        .filter(|(kind, _, status)| kind != "test" && status == "success")
        .map(|(_, n, _)| n)
        .collect();
    built.sort();
    built
}

#[test]
fn nothing_changed_reuses_everything_and_each_change_rebuilds_exactly_what_it_reaches() {
    let (_tmp, dir) = empty_project("shop");
    let (_loader_tmp, loader_dir) = empty_project("loader");
    let warehouse = dir.join("warehouse");
    shop(&dir);
    loader(&loader_dir, &warehouse, "order_id,paid\n1,true\n2,false\n");
    let all = [
        "customer_names",
        "customer_orders",
        "customers",
        "orders",
        "paid_orders",
        "stg_customers",
        "stg_orders",
        "stg_payments",
    ];
    assert_eq!(build(&dir), all, "the first build builds everything");

    // Nothing changed: every node and test is reused, and each says what it relied on.
    let run = etlm(&dir, &["build", "--skip-unchanged", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let reused = statuses(&dir);
    assert!(reused.values().all(|s| s == "reused"), "{reused:?}");
    assert_eq!(reused.len(), all.len() + 4, "8 nodes and 4 tests");
    let line = run.stdout.lines().find(|l| l.contains("\"model.shop.customer_orders\"")).expect("a result line");
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["status"], "reused");
    let inputs = line["proof"]["inputs"].as_object().expect("the proof names its inputs");
    let mut read: Vec<&str> = inputs.keys().map(String::as_str).collect();
    read.sort_unstable();
    // stg_orders is a view: what it reads is read too.
    assert_eq!(read, ["main.orders", "main.stg_customers", "main.stg_orders"], "{line}");
    assert!(line["proof"]["output"].is_string() && line["proof"]["definition"].is_string(), "{line}");
    assert!(line["message"].as_str().unwrap().starts_with("reused: its definition and the 3 relations"), "{line}");
    let history = rows(&dir, "select status, count(*) as n from _etlm.model_runs group by status order by status");
    assert!(history.iter().any(|r| r["status"] == "reused"), "the history records reuse: {history:?}");
    // Without the flag, everything builds.
    let run = etlm(&dir, &["build"]);
    assert_eq!(run.code, 0);
    assert!(statuses(&dir).values().all(|s| s == "success" || s == "pass"));
    assert!(build(&dir).is_empty(), "a build without skipping leaves proofs too");

    // A staging model: it and what reads it.
    let sql = dir.join("models/staging/stg_customers.sql");
    std::fs::write(&sql, "select id, upper(name) as name from {{ ref('customers') }}\n").unwrap();
    assert_eq!(build(&dir), ["customer_names", "customer_orders", "stg_customers"]);
    assert!(build(&dir).is_empty(), "and then nothing");
    assert_eq!(rows(&dir, "select name from main.customer_names order by name")[0]["name"], "ADA");

    // A seed's file: the seed, the view over it and what reads the view.
    write_file(&dir, "seeds/orders.csv", "id,customer_id,amount_cents\n1,1,1000\n2,1,2500\n3,2,500\n");
    assert_eq!(build(&dir), ["customer_orders", "orders", "stg_orders"]);

    // A macro: the model whose SQL it writes, and what reads it.
    write_file(&dir, "macros/money.sql", "{% macro dollars(c) %}({{ c }} / 100.0 * 2){% endmacro %}\n");
    assert_eq!(build(&dir), ["customer_orders", "stg_orders"]);
    assert_eq!(
        rows(&dir, "select total from main.customer_orders where customer_id = 2"),
        [serde_json::json!({"total": 10.0})]
    );

    // A source loaded again by another tool.
    loader(&loader_dir, &warehouse, "order_id,paid\n1,true\n2,true\n");
    assert_eq!(build(&dir), ["paid_orders", "stg_payments"]);
    assert_eq!(rows(&dir, "select n from main.paid_orders"), [serde_json::json!({"n": 2})]);

    // A source's files rewritten in place, its version unchanged.
    let version = std::fs::read_link(warehouse.join("main/payments")).unwrap();
    let version = warehouse.join("main").join(version);
    let file = walkdir::WalkDir::new(&version)
        .into_iter()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "parquet"))
        .expect("the source has a Parquet file");
    let bytes = std::fs::read(file.path()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(file.path(), bytes).unwrap();
    assert_eq!(build(&dir), ["paid_orders", "stg_payments"]);

    // A new test on a reused model runs on its published data; the model stays reused.
    let yml = std::fs::read_to_string(dir.join("models/schema.yml")).unwrap();
    std::fs::write(
        dir.join("models/schema.yml"),
        format!("{yml}  - name: customer_names\n    columns:\n      - name: name\n        data_tests: [not_null]\n"),
    )
    .unwrap();
    assert!(build(&dir).is_empty());
    assert_eq!(statuses(&dir)["not_null_customer_names_name"], "pass");
    assert_eq!(statuses(&dir)["customer_names"], "reused");
}

#[test]
fn full_refresh_the_clock_and_a_dropped_relation_build_again() {
    let (_tmp, dir) = empty_project("shop");
    write_file(&dir, "etlm.yml", "name: shop\nflags:\n  skip_unchanged: true\n");
    write_file(&dir, "models/fixed.sql", "select 1 as id\n");
    write_file(&dir, "seeds/codes.csv", "code\na\nb\n");
    write_file(&dir, "models/stamped.sql", "select 1 as id, now() as at\n");
    let run = || {
        let run = etlm(&dir, &["build"]);
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        statuses(&dir)
    };
    run();
    let second = run();
    assert_eq!(second["fixed"], "reused", "the project's flags turn skipping on");
    assert_eq!(second["stamped"], "success", "a model reading the clock is built every time");
    let refreshed = etlm(&dir, &["build", "--full-refresh"]);
    assert_eq!(refreshed.code, 0);
    assert_eq!(statuses(&dir)["fixed"], "success");
    let off = etlm(&dir, &["build", "--no-skip-unchanged"]);
    assert_eq!(off.code, 0);
    assert_eq!(statuses(&dir)["fixed"], "success", "--no-skip-unchanged wins over the flags");
    // A model or seed dropped behind etlm's back is built again (the seed, not read
    // before the run since it looked reusable, is read when it must be loaded).
    run();
    std::fs::remove_file(dir.join("warehouse/main/fixed")).unwrap();
    std::fs::remove_file(dir.join("warehouse/main/codes")).unwrap();
    let again = run();
    assert_eq!((again["fixed"].as_str(), again["codes"].as_str()), ("success", "success"));
    assert_eq!(rows(&dir, "select count(*) as n from main.codes"), [serde_json::json!({"n": 2})]);
}

/// A run killed after it published, before it recorded its proofs, leaves no proof that
/// claims what is not so: the next run builds again what the killed run changed, and
/// ends with a clean build's rows.
#[test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs --features failpoints")]
fn a_run_killed_before_its_proofs_are_kept_builds_again_what_it_changed() {
    for point in ["after-publish:stg_customers", "before-state-write:customer_orders"] {
        let (_tmp, dir) = empty_project("shop");
        let (_loader_tmp, loader_dir) = empty_project("loader");
        shop(&dir);
        loader(&loader_dir, &dir.join("warehouse"), "order_id,paid\n1,true\n");
        build(&dir);
        let sql = dir.join("models/staging/stg_customers.sql");
        std::fs::write(&sql, "select id, upper(name) as name from {{ ref('customers') }}\n").unwrap();
        let killed = support::etlm_with(&dir, &["build", "--skip-unchanged"], &[("ETLM_FAILPOINT", point)]);
        assert_ne!(killed.code, 0, "{point}: the failpoint kills the run");
        assert_eq!(build(&dir), ["customer_names", "customer_orders", "stg_customers"], "{point}");
        assert_eq!(
            rows(&dir, "select name from main.customer_names order by name"),
            [serde_json::json!({"name": "ADA"}), serde_json::json!({"name": "GRACE"})],
            "{point}"
        );
        assert!(build(&dir).is_empty(), "{point}: and then nothing");
    }
}
