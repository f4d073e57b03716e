//! `etlm compile` and `etlm ls` on real projects.

mod support;

use std::path::Path;

use support::{copy_project, etlm};

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("example_project").display().to_string()
}

/// The manifest the last compile wrote.
fn manifest(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("target/manifest.json")).unwrap()).unwrap()
}

#[test]
fn example_project_compiles_to_a_byte_stable_manifest() {
    let (_tmp, dir) = copy_project(&example());
    let first = etlm(&dir, &["compile"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let manifest = std::fs::read(dir.join("target/manifest.json")).unwrap();
    assert!(dir.join("target/compiled/models/marts/fct_orders.sql").is_file());
    let second = etlm(&dir, &["compile"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(manifest, std::fs::read(dir.join("target/manifest.json")).unwrap(), "manifest must be byte-identical");
    let json: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let daily = &json["nodes"]["model.shop.fct_orders_daily"];
    assert_eq!(daily["config"]["materialized"], "incremental");
    assert_eq!(daily["config"]["partition_by"], "dt");
    assert!(json["child_map"]["model.shop.stg_orders"].as_array().unwrap().len() > 1);
    let snapshot = &json["nodes"]["snapshot.shop.customers_snapshot"];
    assert_eq!(snapshot["resource_type"], "snapshot", "{snapshot}");
    assert_eq!(snapshot["depends_on"]["nodes"], serde_json::json!(["seed.shop.customers"]));
    let lineage: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("target/lineage.json")).unwrap()).unwrap();
    let columns = &lineage["nodes"]["snapshot.shop.customers_snapshot"]["columns"];
    let email = columns.as_array().unwrap().iter().find(|c| c["name"] == "email").unwrap();
    assert_eq!(
        email["upstream"],
        serde_json::json!([{"column": "email", "kind": "copy", "node": "seed.shop.customers"}])
    );
    let names: Vec<&str> = columns.as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(names.ends_with(&["dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to"]), "{names:?}");
}

#[test]
fn dbt_style_project_compiles_unchanged() {
    let (_tmp, dir) = copy_project("dbt_style");
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let orders = std::fs::read_to_string(dir.join("target/compiled/models/marts/orders.sql")).unwrap();
    insta::assert_snapshot!("dbt_style_orders", orders);
    let manifest = manifest(&dir);
    let node = &manifest["nodes"]["model.dbt_style.orders"];
    assert_eq!(node["config"]["materialized"], "table", "old-style folder config applies");
    assert_eq!(manifest["nodes"]["model.dbt_style.stg_orders"]["config"]["materialized"], "view");
    assert_eq!(manifest["nodes"]["model.dbt_style.stg_orders"]["tags"][0], "staging");
    assert!(
        node["columns"]["status"]["description"].as_str().unwrap().starts_with("Orders can be one of"),
        "doc() renders"
    );
    assert_eq!(
        node["depends_on"]["nodes"],
        serde_json::json!(["model.dbt_style.stg_orders", "model.dbt_style.stg_payments"])
    );
    assert_eq!(manifest["nodes"]["model.dbt_style.stg_orders"]["relation_name"], "\"main\".\"stg_orders\"");
    // Jinja in config values renders with `target` when the project is read.
    assert!(manifest["nodes"]["seed.dbt_style.raw_orders"].is_object(), "`+enabled: \"{{ target.name != 'prod' }}\"`");
    assert_eq!(manifest["nodes"]["test.dbt_style.not_null_orders_amount"]["config"]["severity"], "warn");
    // A long test name is kept whole; its compiled file takes dbt's short name.
    let long = &manifest["nodes"]["test.dbt_style.accepted_values_orders_status__placed__shipped__completed__return_pending__returned"];
    assert_eq!(long["config"]["alias"], "accepted_values_orders_1ce6ab157c285f7cd2ac656013faf758");
    assert!(
        dir.join("target/compiled/models/schema.yml/accepted_values_orders_1ce6ab157c285f7cd2ac656013faf758.sql")
            .is_file()
    );
}

#[test]
fn ls_lists_selected_nodes_in_dependency_order() {
    let (_tmp, dir) = copy_project("dbt_style");
    let run = etlm(&dir, &["ls", "-s", "+orders", "--exclude", "resource_type:test", "--output", "name"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let pos = |n: &str| lines.iter().position(|l| *l == n).unwrap_or_else(|| panic!("{n} missing from {lines:?}"));
    assert!(pos("raw_orders") < pos("stg_orders") && pos("stg_orders") < pos("orders"));
    assert_eq!(lines.len(), 5, "{lines:?}");
    let json = etlm(&dir, &["ls", "-s", "tag:staging", "--format", "json"]);
    let ids: Vec<String> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["unique_id"].as_str().unwrap().to_string())
        .filter(|id| id.starts_with("model."))
        .collect();
    assert_eq!(ids, ["model.dbt_style.stg_orders", "model.dbt_style.stg_payments"]);
}

#[test]
fn bad_selector_and_bad_vars_exit_2() {
    let (_tmp, dir) = copy_project("dbt_style");
    let run = etlm(&dir, &["ls", "-s", "bogus:x"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("invalid-selector"), "{}", run.stderr);
    let run = etlm(&dir, &["compile", "--vars", "[1, 2]"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("invalid-vars"), "{}", run.stderr);
    let run = etlm(&dir, &["compile", "--vars", "{payment_methods: [coupon]}"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let orders = std::fs::read_to_string(dir.join("target/compiled/models/marts/orders.sql")).unwrap();
    assert!(orders.contains("coupon_amount") && !orders.contains("credit_card_amount"));
}

#[test]
fn missing_project_is_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let run = etlm(tmp.path(), &["compile"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("error[no-project]"), "{}", run.stderr);
}

#[test]
fn config_jinja_sees_vars_and_a_bad_value_points_at_it() {
    let (_tmp, dir) = copy_project("dbt_style");
    let schema = dir.join("models/schema.yml");
    let text = std::fs::read_to_string(&schema).unwrap();
    std::fs::write(&schema, text.replace("'warn' if target.name == 'dev' else 'error'", "var('severity', 'warn')"))
        .unwrap();
    let run = etlm(&dir, &["compile", "--vars", "{severity: error}"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let manifest = manifest(&dir);
    assert_eq!(manifest["nodes"]["test.dbt_style.not_null_orders_amount"]["config"]["severity"], "error");

    let project = dir.join("dbt_project.yml");
    let text = std::fs::read_to_string(&project).unwrap();
    std::fs::write(&project, text.replace("target.name != 'prod'", "no_such_thing")).unwrap();
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("error[config-render]: could not render config `enabled`"), "{}", run.stderr);
    assert!(run.stderr.contains("dbt_project.yml:25:15"), "{}", run.stderr);
}

#[test]
fn a_disabled_seed_is_not_loaded() {
    let (_tmp, dir) = copy_project("dbt_style");
    let project = dir.join("dbt_project.yml");
    let text = std::fs::read_to_string(&project).unwrap();
    std::fs::write(&project, text.replace("target.name != 'prod'", "target.name == 'prod'")).unwrap();
    let run = etlm(&dir, &["ls", "-s", "resource_type:seed"]);
    assert!(!run.stdout.contains("raw_orders"), "{}", run.stdout);
    assert!(run.stderr.contains("raw_orders"), "a model refs the disabled seed: {}", run.stderr);
}

#[test]
fn what_dbt_would_build_and_etlm_does_not_is_a_warning() {
    let (_tmp, dir) = copy_project("dbt_style");
    std::fs::write(dir.join("models/forecast.py"), "def model(dbt, session):\n    return dbt.ref('orders')\n").unwrap();
    std::fs::write(dir.join("models/unit.yml"), "foo: 1\n").unwrap();
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for expected in [
        "warning[python-model]: `models/forecast.py` is a Python model",
        "warning[unknown-property-key]: `foo` is not a key of property files",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
}

/// The project's `generate_schema_name` and `generate_alias_name` name relations; the
/// alias macro sees the schema the schema macro gave, as in dbt.
#[test]
fn schema_and_alias_macros_name_relations() {
    let (_tmp, dir) = copy_project("dbt_style");
    std::fs::write(
        dir.join("macros/naming.sql"),
        "{% macro generate_schema_name(custom_schema_name, node) -%}\n\
         {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}\n\
         {%- endmacro %}\n\
         {% macro generate_alias_name(custom_alias_name=none, node=none) -%}\n\
         {{ node.schema }}_{{ node.package_name }}_{{ custom_alias_name or node.name }}\n\
         {%- endmacro %}\n",
    )
    .unwrap();
    let project = dir.join("dbt_project.yml");
    let text = std::fs::read_to_string(&project).unwrap();
    std::fs::write(
        &project,
        text.replace("      tags: ['staging']", "      tags: ['staging']\n      +schema: staging"),
    )
    .unwrap();
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let manifest = manifest(&dir);
    let relation = |id: &str| manifest["nodes"][id]["relation_name"].as_str().unwrap().to_string();
    assert_eq!(relation("model.dbt_style.stg_orders"), "\"staging\".\"staging_dbt_style_stg_orders\"");
    assert_eq!(relation("model.dbt_style.orders"), "\"main\".\"main_dbt_style_orders\"");
}

#[test]
fn a_package_macro_with_no_package_installed_says_how_to_install_it() {
    let (_tmp, dir) = copy_project("dbt_style");
    std::fs::write(
        dir.join("models/starred.sql"),
        "select {{ dbt_utils.star(ref('orders')) }} from {{ ref('orders') }}\n",
    )
    .unwrap();
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("no macro `star`"), "{}", run.stderr);
    assert!(run.stderr.contains("the packages in `dbt_packages/` (`etlm deps` installs them)"), "{}", run.stderr);
    assert!(run.stderr.contains("models/starred.sql:1:"), "{}", run.stderr);
}

#[test]
fn model_knows_where_it_is_built() {
    let (_tmp, dir) = copy_project("dbt_style");
    std::fs::write(
        dir.join("models/where_am_i.sql"),
        "{{ config(alias='here') }}\nselect '{{ model.schema }}.{{ model.alias }}' as at, '{{ model.package_name }}' as p\n",
    )
    .unwrap();
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sql = std::fs::read_to_string(dir.join("target/compiled/models/where_am_i.sql")).unwrap();
    assert!(sql.contains("select 'main.here' as at, 'dbt_style' as p"), "{sql}");
}

/// Built-in tests of the same column, arguments and config render once and are spelled
/// for each model; a different `where` or `store_failures` is a different query.
#[test]
fn tests_alike_share_a_query_and_each_names_its_model() {
    let (_tmp, dir) = copy_project("dbt_style");
    for model in ["memo_a", "memo_b"] {
        std::fs::write(dir.join(format!("models/{model}.sql")), "select 1 as id\n").unwrap();
    }
    std::fs::write(
        dir.join("models/memo.yml"),
        "version: 2\nmodels:\n  - name: memo_a\n    columns:\n      - name: id\n        tests:\n          - not_null\n          \
         - not_null:\n              name: memo_a_recent\n              config:\n                where: \"id > 1\"\n          \
         - not_null:\n              name: memo_a_stored\n              config:\n                store_failures: true\n  \
         - name: memo_b\n    columns:\n      - name: id\n        tests: [not_null]\n",
    )
    .unwrap();
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sql =
        |name: &str| std::fs::read_to_string(dir.join(format!("target/compiled/models/memo.yml/{name}.sql"))).unwrap();
    let plain = "select id\nfrom \"main\".\"memo_X\"\nwhere id is null\n";
    assert_eq!(sql("not_null_memo_a_id").trim(), plain.replace('X', "a").trim());
    assert_eq!(sql("not_null_memo_b_id").trim(), plain.replace('X', "b").trim());
    assert_eq!(
        sql("memo_a_recent").trim(),
        "select id\nfrom (select * from \"main\".\"memo_a\" where id > 1) dbt_subquery\nwhere id is null"
    );
    assert_eq!(sql("memo_a_stored").trim(), "select *\nfrom \"main\".\"memo_a\"\nwhere id is null");
}

#[test]
fn profiles_are_found_where_dbt_looks_and_an_undefined_target_is_an_error() {
    let (_tmp, dir) = copy_project("dbt_style");
    let schemas = |dir: &Path| -> Vec<String> {
        let nodes = manifest(dir)["nodes"].as_object().unwrap().clone();
        let mut schemas: Vec<String> =
            nodes.values().filter_map(|n| n["schema"].as_str().map(str::to_string)).collect();
        schemas.dedup();
        schemas
    };

    let run = etlm(&dir, &["compile", "--target", "prod"]);
    assert_eq!(run.code, 2, "a target no profile defines must not build on the embedded engine");
    assert!(
        run.stderr.contains("error[unknown-target]: `--target prod` is defined by no profiles.yml"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("profiles.yml`, "), "the places looked in are named: {}", run.stderr);
    assert!(!dir.join("target/manifest.json").exists(), "nothing is written");

    // ~/.dbt/profiles.yml (HOME is the project in tests) holding only other projects' profiles
    // is passed over: the embedded default.
    std::fs::create_dir_all(dir.join(".dbt")).unwrap();
    std::fs::write(dir.join(".dbt/profiles.yml"), "other:\n  outputs:\n    dev: {type: postgres}\n").unwrap();
    assert_eq!(etlm(&dir, &["compile"]).code, 0);
    assert_eq!(schemas(&dir), ["main"]);

    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(
        elsewhere.path().join("profiles.yml"),
        "dbt_style:\n  target: dev\n  outputs:\n    dev: {type: local}\n    ci: {type: local, schema: ci_schema}\n",
    )
    .unwrap();
    let profiles = elsewhere.path().display().to_string();
    let run = etlm(&dir, &["compile", "--target", "ci", "--profiles-dir", &profiles]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(schemas(&dir), ["ci_schema"]);
    let run = support::etlm_with(&dir, &["compile", "--target", "ci"], &[("DBT_PROFILES_DIR", &profiles)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(schemas(&dir), ["ci_schema"]);

    // In ~/.dbt/ a file that defines the profile is used.
    std::fs::copy(elsewhere.path().join("profiles.yml"), dir.join(".dbt/profiles.yml")).unwrap();
    assert_eq!(etlm(&dir, &["compile", "-t", "ci"]).code, 0);
    assert_eq!(schemas(&dir), ["ci_schema"]);
}

#[test]
fn a_selector_that_matches_nothing_is_a_warning_or_with_the_flag_an_error() {
    let (_tmp, dir) = copy_project("dbt_style");
    let run = etlm(&dir, &["seed", "-s", "raw_paymnets"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("warning[empty-selection]: `--select raw_paymnets` matches no node"), "{all}");
    assert!(all.contains("did you mean `raw_payments`?"), "{all}");
    assert!(!dir.join("warehouse/main").exists(), "nothing was selected, so nothing is built");

    let run = etlm(&dir, &["seed", "-s", "raw_paymnets", "raw_orders", "--fail-on-empty-selection"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("error[empty-selection]"), "{}", run.stderr);
    assert!(!dir.join("warehouse/main").exists(), "an error before anything runs");

    let run = etlm(&dir, &["seed", "-s", "raw_orders", "--fail-on-empty-selection"]);
    assert_eq!(run.code, 0, "a selector that matches is fine: {}", run.stderr);
    assert!(!format!("{}{}", run.stdout, run.stderr).contains("empty-selection"));
}

#[test]
fn names_that_would_be_paths_outside_the_warehouse_are_rejected_at_load() {
    let (tmp, dir) = copy_project("dbt_style");
    let orders = dir.join("models/marts/orders.sql");
    let sql = std::fs::read_to_string(&orders).unwrap();
    std::fs::write(&orders, format!("{{{{ config(alias='../../escaped') }}}}\n{sql}")).unwrap();
    let run = etlm(&dir, &["build"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("error[invalid-config]: `model.dbt_style.orders` cannot be built with the name `../../escaped`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("models/marts/orders.sql"), "the file is named: {}", run.stderr);
    assert!(!tmp.path().join("escaped").exists() && !dir.join("warehouse").exists(), "nothing is written");
    std::fs::write(&orders, sql).unwrap();

    let schema = dir.join("models/schema.yml");
    let yaml = std::fs::read_to_string(&schema).unwrap();
    let named = yaml.replacen("- unique\n", "- unique:\n              name: ../../../stolen\n", 1);
    assert_ne!(named, yaml, "the fixture has a unique test to rename");
    std::fs::write(&schema, named).unwrap();
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stderr.contains("`../../../stolen` cannot name a test: it holds a path separator"), "{}", run.stderr);
    assert!(run.stderr.contains("models/schema.yml:"), "{}", run.stderr);
    assert!(!dir.join("target/manifest.json").exists());
}

/// A generic test of the project's own macro that reads its model's columns is rendered
/// again once lineage knows them, and the build catches what each column holds; a test of
/// the project's that reads none renders once, as it is.
#[test]
fn a_project_generic_test_that_reads_its_models_columns_checks_every_one() {
    let (_tmp, dir) = support::empty_project("cols");
    support::write_file(&dir, "etlm.yml", "name: cols\n");
    support::write_file(&dir, "seeds/people.csv", "id,name,city\n1,ann,oslo\n2,,rome\n3,cid,\n4,dee,lima\n");
    support::write_file(&dir, "models/people_v.sql", "select id, name, city from {{ ref('people') }}\n");
    support::write_file(
        &dir,
        "macros/tests.sql",
        "{% test no_nulls(model) %}\nselect * from {{ model }} where \
         {% for c in adapter.get_columns_in_relation(model) %}{{ c.name }} is null\
         {% if not loop.last %} or {% endif %}{% endfor %}\n{% endtest %}\n\
         {% test has_rows(model) %}\nselect n from (select count(*) as n from {{ model }}) c where n = 0\n{% endtest %}\n",
    );
    support::write_file(
        &dir,
        "models/schema.yml",
        "version: 2\nmodels:\n  - name: people_v\n    tests: [no_nulls, has_rows]\n",
    );
    let run = etlm(&dir, &["compile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let compiled =
        |name: &str| std::fs::read_to_string(dir.join("target/compiled/models/schema.yml").join(name)).unwrap();
    let no_nulls = compiled("no_nulls_people_v_.sql");
    assert!(no_nulls.contains("where id is null or name is null or city is null"), "{no_nulls}");
    let has_rows = compiled("has_rows_people_v_.sql");
    assert!(has_rows.contains("select n from (select count(*) as n from"), "{has_rows}");
    let build = etlm(&dir, &["build"]);
    assert_eq!(build.code, 1, "{}\n{}", build.stdout, build.stderr);
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("target/run_results.json")).unwrap()).unwrap();
    let result = |id: &str| {
        results["results"].as_array().unwrap().iter().find(|r| r["unique_id"] == id).cloned().unwrap_or_default()
    };
    let failed = result("test.cols.no_nulls_people_v_");
    assert_eq!((failed["status"].as_str(), failed["failures"].as_u64()), (Some("fail"), Some(2)), "{failed}");
    assert_eq!(result("test.cols.has_rows_people_v_")["status"], "pass");
}
