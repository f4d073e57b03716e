//! `etlm diff`, `state:` and `result:` selectors, `--defer` and `etlm retry`.
//!
//! Each change case is the `diff_base` project ("main", compiled or built) against a copy
//! with one change from `tests/fixtures/diff/<case>/` applied ("the pull request"). The
//! impact cases change the jaffle-shaped `impact_base` (`tests/fixtures/diff/impact/`),
//! whose marts read staging through CTEs and joins; their text and Markdown reports are
//! snapshots.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{apply_change, copy_project, etlm, rows};

/// Main's build and a changed copy, each in its own temp dir.
struct Pair {
    _temps: (tempfile::TempDir, tempfile::TempDir),
    main: PathBuf,
    pr: PathBuf,
}

impl Pair {
    /// `main` compiled (or built, with `build`), and a copy with `change` applied.
    fn new(change: &str, command: &str) -> Pair {
        Pair::on("diff_base", change, command)
    }

    /// Like [`Pair::new`] on another base project.
    fn on(base: &str, change: &str, command: &str) -> Pair {
        let (t1, main) = copy_project(base);
        let run = etlm(&main, &[command]);
        assert_eq!(run.code, 0, "{command} of main failed: {}{}", run.stdout, run.stderr);
        let (t2, pr) = copy_project(base);
        apply_change(&pr, change);
        Pair { _temps: (t1, t2), main, pr }
    }

    fn state(&self) -> String {
        self.main.join("target").display().to_string()
    }

    /// `etlm diff --state <main>/target` with extra args; asserts the exit code.
    fn diff(&self, extra: &[&str], code: i32) -> String {
        let state = self.state();
        let mut args = vec!["diff", "--state", state.as_str()];
        args.extend_from_slice(extra);
        let run = etlm(&self.pr, &args);
        assert_eq!(run.code, code, "diff exit code; stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
        run.stdout
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.diff(&["--format", "json"], 0)).expect("diff JSON")
    }

    /// The model names `etlm ls -s <selector> --state <main>/target` lists, sorted.
    fn select(&self, selector: &str) -> Vec<String> {
        let state = self.state();
        let run =
            etlm(&self.pr, &["ls", "-s", selector, "--state", &state, "--resource-type", "model", "--output", "name"]);
        assert_eq!(run.code, 0, "ls failed: {}", run.stderr);
        let mut names: Vec<String> = run.stdout.lines().map(str::to_string).collect();
        names.sort();
        names
    }
}

/// `name: class [reason(names), ...]` for every modified node that is a model.
fn modified(diff: &Value) -> Vec<String> {
    diff["modified"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["resource_type"] == "model")
        .map(|m| {
            let reasons: Vec<String> = m["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    let names: Vec<&str> = c["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
                    if names.is_empty() {
                        c["reason"].as_str().unwrap().to_string()
                    } else {
                        format!("{}({})", c["reason"].as_str().unwrap(), names.join(","))
                    }
                })
                .collect();
            format!("{}: {} [{}]", m["name"].as_str().unwrap(), m["class"].as_str().unwrap(), reasons.join(", "))
        })
        .collect()
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn sql_change_selects_the_model_and_plus_its_descendants() {
    let pair = Pair::new("sql_change", "compile");
    let diff = pair.json();
    assert_eq!(modified(&diff), ["stg_orders: values-may-change [body]"]);
    assert_eq!(diff["modified"].as_array().unwrap().len(), 1, "tests of unchanged models are not modified");
    let sql = diff["modified"][0]["sql_diff"].as_str().unwrap();
    assert!(sql.contains("+where status <> 'cancelled'"), "{sql}");
    assert_eq!(pair.select("state:modified"), ["stg_orders"]);
    assert_eq!(pair.select("state:modified+"), ["customers", "order_status", "orders", "report", "stg_orders"]);
    assert_eq!(pair.select("state:new"), Vec::<String>::new());
}

#[test]
fn config_change_selects_only_the_model_whose_config_changed() {
    let pair = Pair::new("config_change", "compile");
    assert_eq!(modified(&pair.json()), ["customers: non-breaking [config(materialized)]"]);
    assert_eq!(pair.select("state:modified"), ["customers"]);
    assert_eq!(pair.select("state:modified.config"), ["customers"]);
    assert_eq!(pair.select("state:modified.body"), Vec::<String>::new());
}

#[test]
fn var_change_selects_only_the_model_reading_the_var() {
    // `min_amount` is read by `orders` only; `report` reads another var.
    let pair = Pair::new("var_change", "compile");
    assert_eq!(modified(&pair.json()), ["orders: values-may-change [body, vars(min_amount)]"]);
    assert_eq!(pair.select("state:modified"), ["orders"]);
    assert_eq!(pair.select("state:modified.vars"), ["orders"]);
}

#[test]
fn macro_change_selects_the_models_calling_it_and_not_for_an_unused_macro() {
    // Both macros change; only `cents_to_dollars` is called (by `orders`).
    let pair = Pair::new("macro_change", "compile");
    assert_eq!(modified(&pair.json()), ["orders: values-may-change [body, macros(cents_to_dollars)]"]);
    assert_eq!(pair.select("state:modified"), ["orders"]);
    assert_eq!(pair.select("state:modified.macros"), ["orders"]);
}

#[test]
fn column_removed_and_read_downstream_is_breaking() {
    let pair = Pair::new("column_removed", "compile");
    let diff = pair.json();
    assert_eq!(modified(&diff), ["order_status: non-breaking [upstream_schema(orders)]", "orders: breaking [body]"]);
    let orders = diff["modified"].as_array().unwrap().iter().find(|m| m["name"] == "orders").unwrap();
    assert_eq!(orders["columns"]["removed"], serde_json::json!([{"name": "status", "data_type": "utf8"}]));
    assert_eq!(
        orders["impacts"],
        serde_json::json!([{
            "column": "status", "change": "removed", "class": "breaking",
            "downstream": [{"model": "order_status", "column": "status", "how": "copy"}]
        }])
    );
    assert_eq!(diff["summary"]["breaking"], 1);
    assert_eq!(pair.select("state:modified"), ["order_status", "orders"]);
    pair.diff(&["--fail-on", "breaking"], 1);
    pair.diff(&[], 0);
    // A selection narrows the report: without `orders`, nothing breaking is left.
    let narrowed: Value = serde_json::from_str(&pair.diff(&["-s", "order_status", "--format", "json"], 0)).unwrap();
    assert_eq!(modified(&narrowed), ["order_status: non-breaking [upstream_schema(orders)]"]);
    pair.diff(&["-s", "order_status", "--fail-on", "breaking"], 0);
}

#[test]
fn column_added_is_non_breaking() {
    let pair = Pair::new("column_added", "compile");
    let diff = pair.json();
    assert_eq!(
        modified(&diff),
        ["order_status: non-breaking [upstream_schema(orders)]", "orders: non-breaking [body]"]
    );
    let orders = diff["modified"].as_array().unwrap().iter().find(|m| m["name"] == "orders").unwrap();
    assert_eq!(orders["columns"]["added"], serde_json::json!([{"name": "amount_cents", "data_type": "int32"}]));
    assert_eq!(orders["columns"]["removed"], serde_json::json!([]));
    assert_eq!(diff["summary"]["breaking"], 0);
    assert_eq!(pair.select("state:modified"), ["order_status", "orders"]);
    pair.diff(&["--fail-on", "breaking"], 0);
}

#[test]
fn column_retyped_and_read_downstream_is_breaking() {
    // The seed's `customer_id` becomes varchar; every model copies it through.
    let pair = Pair::new("column_retyped", "compile");
    let diff = pair.json();
    let seed = diff["modified"].as_array().unwrap().iter().find(|m| m["name"] == "raw_orders").unwrap();
    assert_eq!(seed["class"], "breaking");
    assert_eq!(seed["changes"], serde_json::json!([{"reason": "config", "names": ["column_types"]}]));
    assert_eq!(seed["columns"]["retyped"], serde_json::json!([{"name": "customer_id", "from": "int32", "to": "utf8"}]));
    assert_eq!(
        modified(&diff),
        [
            "customers: breaking [upstream_retyped(orders)]",
            "order_status: non-breaking [upstream_retyped(orders)]",
            "orders: breaking [upstream_retyped(stg_orders)]",
            "report: non-breaking [upstream_retyped(customers)]",
            "stg_orders: breaking [upstream_retyped(raw_orders)]",
        ]
    );
    assert_eq!(pair.select("state:modified.config"), Vec::<String>::new(), "only the seed's config changed");
    assert_eq!(
        pair.select("state:modified.upstream_retyped"),
        ["customers", "order_status", "orders", "report", "stg_orders"]
    );
    assert_eq!(pair.select("state:modified.upstream_schema"), Vec::<String>::new(), "no column added or removed");
    assert_eq!(pair.select("state:modified"), ["customers", "order_status", "orders", "report", "stg_orders"]);
    pair.diff(&["--fail-on", "breaking"], 1);
}

#[test]
fn model_rename_is_a_breaking_rename_and_selects_the_new_model() {
    let pair = Pair::new("model_renamed", "compile");
    let diff = pair.json();
    assert_eq!(diff["renamed"][0]["from"]["name"], "customers");
    assert_eq!(diff["renamed"][0]["to"]["name"], "customer_summary");
    assert_eq!(diff["renamed"][0]["class"], "breaking");
    assert_eq!(names(&diff["added"]), Vec::<String>::new());
    assert_eq!(names(&diff["removed"]), Vec::<String>::new());
    assert_eq!(modified(&diff), ["report: non-breaking [body]"]);
    assert_eq!(pair.select("state:new"), ["customer_summary"]);
    assert_eq!(pair.select("state:modified"), ["customer_summary", "report"]);
    pair.diff(&["--fail-on", "breaking"], 1);
}

#[test]
fn seed_data_change_selects_the_seed() {
    let pair = Pair::new("seed_change", "compile");
    let diff = pair.json();
    let changed: Vec<(String, String)> = diff["modified"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_string(), m["changes"][0]["reason"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(changed, [("raw_orders".to_string(), "body".to_string())]);
    assert_eq!(pair.select("state:modified+"), ["customers", "order_status", "orders", "report", "stg_orders"]);
}

#[test]
fn markdown_report_for_a_breaking_column_removal() {
    let pair = Pair::new("column_removed", "compile");
    let markdown = pair.diff(&["--format", "markdown"], 0);
    insta::assert_snapshot!("diff_markdown_column_removed", markdown);
}

#[test]
fn human_report_names_each_reason() {
    let pair = Pair::new("var_change", "compile");
    let text = pair.diff(&[], 0);
    assert!(text.contains("~ model orders (values may change)"), "{text}");
    assert!(text.contains("its rows may change"), "{text}");
    assert!(text.contains("why: var `min_amount` changed"), "{text}");
    assert!(!text.contains("\u{1b}["), "no colour off a terminal");
}

/// The impact case `case`: its JSON, and its text and Markdown reports as snapshots.
fn impact(case: &str) -> Value {
    let pair = Pair::on("impact_base", &format!("impact/{case}"), "compile");
    insta::assert_snapshot!(format!("impact_{case}_text"), pair.diff(&[], 0));
    insta::assert_snapshot!(format!("impact_{case}_markdown"), pair.diff(&["--format", "markdown"], 0));
    pair.json()
}

fn impact_of<'a>(diff: &'a Value, model: &str, column: &str) -> &'a Value {
    let node = diff["modified"].as_array().unwrap().iter().find(|m| m["name"] == model).expect("modified model");
    node["impacts"].as_array().unwrap().iter().find(|i| i["column"] == column).expect("impact on the column")
}

#[test]
fn integer_division_turned_numeric_is_a_breaking_retype_reaching_both_marts() {
    let diff = impact("division");
    assert_eq!(
        modified(&diff),
        [
            "customers: non-breaking [upstream_retyped(orders)]",
            "orders: breaking [upstream_retyped(stg_payments)]",
            "stg_payments: breaking [body]",
        ]
    );
    let amount = impact_of(&diff, "stg_payments", "amount");
    assert_eq!(amount["change"], "retyped");
    assert_eq!(amount["detail"], "int64 -> float64");
    let stg = diff["modified"].as_array().unwrap().iter().find(|m| m["name"] == "stg_payments").unwrap();
    assert_eq!(stg["reaches"], serde_json::json!(["customers", "orders"]));
    let via: Vec<&Value> =
        amount["downstream"].as_array().unwrap().iter().filter(|u| u["model"] == "customers").collect();
    assert_eq!(via[0]["via"], serde_json::json!(["orders.amount"]));
}

#[test]
fn widened_cast_is_a_retype_read_by_a_join_downstream() {
    let diff = impact("widened_cast");
    let id = impact_of(&diff, "stg_orders", "customer_id");
    assert_eq!((id["class"].as_str(), id["detail"].as_str()), (Some("breaking"), Some("int32 -> int64")));
    let hows: Vec<String> = id["downstream"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            format!(
                "{}.{}:{}",
                u["model"].as_str().unwrap(),
                u["column"].as_str().unwrap_or("-"),
                u["how"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(hows, ["orders.customer_id:copy", "customers.-:group", "customers.-:join"]);
}

#[test]
fn renamed_column_read_downstream_is_breaking_and_names_the_updated_reader() {
    let diff = impact("renamed_column");
    let removed = impact_of(&diff, "stg_orders", "status");
    assert_eq!((removed["change"].as_str(), removed["class"].as_str()), (Some("removed"), Some("breaking")));
    assert_eq!(removed["downstream"][0]["updated"], true);
    assert_eq!(impact_of(&diff, "stg_orders", "order_status")["change"], "added");
}

#[test]
fn changed_expression_of_the_same_type_is_values_may_change() {
    let diff = impact("same_type");
    assert_eq!(modified(&diff), ["stg_payments: values-may-change [body]"]);
    let amount = impact_of(&diff, "stg_payments", "amount");
    assert_eq!(amount["change"], "expression");
    assert_eq!(diff["summary"]["values_may_change"], 1);
    assert_eq!(diff["summary"]["breaking"], 0);
}

#[test]
fn change_that_nothing_reads_is_non_breaking_and_reaches_no_model() {
    let diff = impact("unread");
    assert_eq!(modified(&diff), ["stg_customers: non-breaking [body]"]);
    assert_eq!(diff["modified"][0]["reaches"], serde_json::json!([]));
    assert_eq!(impact_of(&diff, "stg_customers", "full_name")["downstream"], serde_json::json!([]));
}

#[test]
fn change_reaching_a_mart_through_two_ctes_and_a_join() {
    let diff = impact("through_ctes");
    let method = impact_of(&diff, "stg_payments", "payment_method");
    assert_eq!(method["class"], "values-may-change");
    assert_eq!(
        method["downstream"],
        serde_json::json!([{"model": "orders", "column": "coupon_amount", "how": "aggregate"}])
    );
}

#[test]
fn missing_or_bad_state_is_an_error() {
    let (_t, dir) = copy_project("diff_base");
    let run = etlm(&dir, &["diff"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("error[missing-state]"), "{}", run.stderr);
    let run = etlm(&dir, &["diff", "--state", "/nonexistent/target"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("error[state-not-found]"), "{}", run.stderr);
    let run = etlm(&dir, &["ls", "--state", dir.join("models").to_str().unwrap()]);
    assert_eq!(run.code, 2, "a folder without manifest.json");
    assert!(run.stderr.contains("error[state-not-found]"), "{}", run.stderr);
    let run = etlm(&dir, &["ls", "-s", "state:modified"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("error[invalid-selector]") && run.stderr.contains("--state"), "{}", run.stderr);
    let run = etlm(&dir, &["ls", "--format", "markdown"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("only for `etlm diff`"), "{}", run.stderr);
}

/// Sorted rows of a model, as JSON text, for comparing two warehouses.
fn table(dir: &Path, model: &str) -> Vec<String> {
    let mut out: Vec<String> =
        rows(dir, &format!("select * from main.{model}")).iter().map(|r| r.to_string()).collect();
    out.sort();
    out
}

fn result_ids(dir: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dir.join("target/run_results.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut out: Vec<(String, String)> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["unique_id"].as_str().unwrap().to_string(), r["status"].as_str().unwrap().to_string()))
        .collect();
    out.sort();
    out
}

#[test]
fn deferred_build_of_modified_models_equals_a_full_build() {
    let pair = Pair::new("sql_change", "build");
    let state = pair.state();
    let run = etlm(&pair.pr, &["build", "-s", "state:modified+", "--defer", "--state", &state]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let built: Vec<String> = result_ids(&pair.pr).into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        built,
        [
            "model.diff_base.customers",
            "model.diff_base.order_status",
            "model.diff_base.orders",
            "model.diff_base.report",
            "model.diff_base.stg_orders",
            "test.diff_base.not_null_orders_id",
            "test.diff_base.unique_orders_id",
        ]
    );
    // The seed was read from main's warehouse, not loaded here.
    assert!(!pair.pr.join("warehouse/main/raw_orders").exists());

    let (_t, full) = copy_project("diff_base");
    apply_change(&full, "sql_change");
    let run = etlm(&full, &["build"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // `stg_orders` is a view built here over the seed lent by main's warehouse.
    assert!(pair.pr.join("warehouse/main/stg_orders").exists());
    for model in ["stg_orders", "orders", "customers", "order_status", "report"] {
        assert_eq!(table(&pair.pr, model), table(&full, model), "{model} differs from a full build");
    }
    // The change is visible: the cancelled order is gone.
    assert_eq!(table(&pair.pr, "orders").len(), 4);
}

#[test]
fn deferred_build_reads_unselected_parents_from_the_other_warehouse() {
    let pair = Pair::new("column_added", "build");
    let state = pair.state();
    let run = etlm(&pair.pr, &["build", "-s", "state:modified", "--defer", "--state", &state]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let models: Vec<String> =
        result_ids(&pair.pr).into_iter().map(|(id, _)| id).filter(|id| id.starts_with("model.")).collect();
    assert_eq!(models, ["model.diff_base.order_status", "model.diff_base.orders"]);
    assert!(!pair.pr.join("warehouse/main/stg_orders").exists(), "stg_orders is read from main");
    let rows = rows(&pair.pr, "select amount_cents from main.order_status order by amount_cents");
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["amount_cents"], 150);
}

#[test]
fn defer_without_state_is_an_error() {
    let (_t, dir) = copy_project("diff_base");
    let run = etlm(&dir, &["run", "--defer"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("error[missing-state]"), "{}", run.stderr);
}

#[test]
fn result_selectors_and_retry_rerun_what_failed_or_was_skipped() {
    let (_t, dir) = copy_project("diff_base");
    let good = std::fs::read_to_string(dir.join("models/customers.sql")).unwrap();
    // Fails at run time (the cast), not at compile time.
    std::fs::write(
        dir.join("models/customers.sql"),
        "select customer_id, count(*) as order_count, sum(cast(status as int)) as total_amount\n\
         from {{ ref('orders') }}\ngroup by customer_id\n",
    )
    .unwrap();
    let run = etlm(&dir, &["build"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let ls = |selector: &str| {
        let run = etlm(&dir, &["ls", "-s", selector, "--output", "name"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let mut names: Vec<String> = run.stdout.lines().map(str::to_string).collect();
        names.sort();
        names
    };
    assert_eq!(ls("result:error"), ["customers"]);
    assert_eq!(ls("result:skipped"), ["report"]);
    assert_eq!(ls("result:fail"), Vec::<String>::new());

    std::fs::write(dir.join("models/customers.sql"), good).unwrap();
    let run = etlm(&dir, &["retry"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        result_ids(&dir),
        [
            ("model.diff_base.customers".to_string(), "success".to_string()),
            ("model.diff_base.report".to_string(), "success".to_string()),
        ]
    );
    let run = etlm(&dir, &["retry"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("nothing to retry"), "{}", run.stdout);
}

#[test]
fn retry_without_a_previous_run_is_an_error() {
    let (_t, dir) = copy_project("diff_base");
    let run = etlm(&dir, &["retry"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("error[no-previous-run]"), "{}", run.stderr);
}
