//! The docs site in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `.ci/run`) opens the example project's `target/docs/index.html` with networking off,
//! and the test reads the DOM after the page's own script ran. The page is opened at
//! `#column=fct_orders.amount_paid`, which makes the script click that column's cell, as
//! a reader would. A screenshot is saved next to the test binaries.
//!
//! Without Chromium the test prints a skip message, unless `CI=true`, where it fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{copy_project, etlm};

/// The Chromium binary on PATH, if any.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
}

/// Runs Chromium headless on `url` with networking off, plus `args`; returns stdout.
fn browse(chromium: &Path, profile: &Path, url: &str, args: &[&str]) -> String {
    // A fresh network namespace when the system allows one; the flags cover the rest.
    let isolate = Command::new("unshare").args(["-n", "true"]).status().is_ok_and(|s| s.success());
    let mut cmd = if isolate {
        let mut c = Command::new("unshare");
        c.arg("-n").arg(chromium);
        c
    } else {
        Command::new(chromium)
    };
    let out = cmd
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text between the first `<tag id="id"` and the next `</tag>` of the same depth.
fn element<'a>(dom: &'a str, tag: &str, id: &str) -> &'a str {
    let start = dom.find(&format!("<{tag} id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in the DOM"));
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut depth = 0;
    let mut i = start;
    loop {
        let next_open = dom[i + 1..].find(&open).map(|n| n + i + 1);
        let next_close = dom[i..].find(&close).map(|n| n + i).expect("element is closed");
        match next_open {
            Some(o) if o < next_close => {
                depth += 1;
                i = o;
            }
            _ if depth == 0 => return &dom[start..next_close + close.len()],
            _ => {
                depth -= 1;
                i = next_close + 1;
            }
        }
    }
}

/// The file stems of every `.sql` file under `dir`.
fn walk_sql(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk_sql(&path));
        } else if path.extension().is_some_and(|e| e == "sql") {
            out.push(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    out
}

#[test]
fn docs_page_lists_every_model_and_shows_a_columns_lineage_when_clicked() {
    let Some(chromium) = chromium() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromium is not installed; .ci/run installs it");
        }
        eprintln!("skipped: chromium is not installed (apt-get install chromium)");
        return;
    };
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("example_project");
    let (tmp, dir) = copy_project(&example.display().to_string());
    let build = etlm(&dir, &["build"]);
    assert_eq!(build.code, 0, "{}\n{}", build.stdout, build.stderr);
    let docs = etlm(&dir, &["docs", "generate"]);
    assert_eq!(docs.code, 0, "{}", docs.stderr);
    let page = dir.join("target/docs/index.html");
    let url = format!("file://{}#column=fct_orders.amount_paid", page.display());
    let profile = tmp.path().join("chromium-profile");
    let dom = browse(&chromium, &profile, &url, &["--dump-dom"]);
    assert!(dom.contains("data-ready=\"true\""), "the page script did not finish:\n{dom}");

    // Every model is listed: one per `models/**/*.sql` file.
    let models: Vec<String> = walk_sql(&dir.join("models")).iter().map(|m| format!("model.shop.{m}")).collect();
    assert_eq!(models.len(), 8);
    let list = element(&dom, "ul", "node-list");
    for id in &models {
        assert!(list.contains(&format!("data-id=\"{id}\"")), "{id} is not listed");
    }

    // The clicked column's lineage: through the ephemeral int_order_payments to the seed,
    // and down to dim_customers.
    let panel = element(&dom, "section", "lineage");
    assert!(panel.contains("data-column=\"fct_orders.amount_paid\""), "{panel}");
    let up = element(panel, "div", "lineage-up");
    for (r, kind) in [
        ("int_order_payments.amount_paid", "transform"),
        ("stg_payments.amount", "aggregate"),
        ("payments.amount", "transform"),
    ] {
        assert!(up.contains(&format!("data-ref=\"{r}\" data-kind=\"{kind}\"")), "upstream lacks {r}:\n{up}");
    }
    let down = element(panel, "div", "lineage-down");
    assert!(down.contains("data-ref=\"dim_customers.lifetime_value\" data-kind=\"aggregate\""), "{down}");
    assert!(dom.contains("<tr data-row=\"fct_orders.amount_paid\" class=\"lineage\">"), "the row is highlighted");
    assert!(
        dom.contains("class=\"box seed lineage\" data-id=\"seed.shop.payments\""),
        "the seed is highlighted in the DAG"
    );

    // The last run's status and row count, from target/run_results.json.
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("target/run_results.json")).unwrap()).unwrap();
    let rows = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unique_id"] == "model.shop.fct_orders")
        .unwrap()["rows"]
        .as_u64()
        .unwrap();
    let last_run = element(&dom, "div", "last-run");
    assert!(last_run.contains("success") && last_run.contains(&format!("{rows} rows")), "{last_run}");

    // Search matches names, descriptions and column names.
    let search = format!("file://{}#search=voucher", page.display());
    let dom = browse(&chromium, &profile, &search, &["--dump-dom"]);
    let list = element(&dom, "ul", "node-list");
    let listed: Vec<&str> = list.split("data-id=\"").skip(1).map(|s| &s[..s.find('"').unwrap()]).collect();
    assert_eq!(listed, ["model.shop.fct_orders", "model.shop.int_order_payments"], "{list}");

    // A screenshot, kept for people to look at.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("docs_site.png");
    let _ = std::fs::remove_file(&shot);
    browse(&chromium, &profile, &url, &[&format!("--screenshot={}", shot.display()), "--window-size=1400,1000"]);
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "not a real screenshot");
    eprintln!("screenshot: {}", shot.display());
}

/// The JSON the page embeds.
fn embedded_data(page: &str) -> serde_json::Value {
    let open = "<script id=\"etlm-data\" type=\"application/json\">";
    let start = page.find(open).expect("data block") + open.len();
    let end = start + page[start..].find("</script>").expect("data block is closed");
    serde_json::from_str(&page[start..end]).expect("embedded data is JSON")
}

#[test]
fn docs_page_embeds_nodes_tests_lineage_and_the_last_run() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("example_project");
    let (_tmp, dir) = copy_project(&example.display().to_string());
    assert_eq!(etlm(&dir, &["docs", "generate"]).code, 0);
    let page = std::fs::read_to_string(dir.join("target/docs/index.html")).unwrap();
    let data = embedded_data(&page);
    let nodes = data["nodes"].as_array().unwrap();
    let count = |t: &str| nodes.iter().filter(|n| n["type"] == t).count();
    assert_eq!((count("model"), count("seed"), count("source"), count("snapshot")), (8, 4, 0, 1));
    let snapshot = nodes.iter().find(|n| n["id"] == "snapshot.shop.customers_snapshot").unwrap();
    assert_eq!(snapshot["tests"].as_array().unwrap().len(), 3, "{snapshot}");
    let fct = nodes.iter().find(|n| n["id"] == "model.shop.fct_orders").unwrap();
    let mut tests: Vec<(String, String)> = fct["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["test"].as_str().unwrap().to_string(), t["column"].as_str().unwrap_or("").to_string()))
        .collect();
    tests.sort();
    let expected = [
        ("accepted_range", "amount_paid"),
        ("accepted_range", "gross_amount"),
        ("accepted_values", "payment_status"),
        ("not_null", "customer_id"),
        ("not_null", "order_id"),
        ("relationships", "customer_id"),
        ("singular", ""),
        ("unique", "order_id"),
    ];
    assert_eq!(tests, expected.map(|(a, b)| (a.to_string(), b.to_string())));
    assert!(fct["run"].is_null(), "no run yet");
    assert_eq!(data["lineage"]["nodes"]["model.shop.fct_orders"]["columns"][0]["name"], "order_id");
    // Edges go from layer to a later layer.
    let layer = |id: &serde_json::Value| nodes.iter().find(|n| &n["id"] == id).unwrap()["layer"].as_u64().unwrap();
    for e in data["edges"].as_array().unwrap() {
        assert!(layer(&e[0]) < layer(&e[1]), "{e}");
    }

    assert_eq!(etlm(&dir, &["build"]).code, 0);
    assert_eq!(etlm(&dir, &["docs", "generate"]).code, 0);
    let data = embedded_data(&std::fs::read_to_string(dir.join("target/docs/index.html")).unwrap());
    let fct = data["nodes"].as_array().unwrap().iter().find(|n| n["id"] == "model.shop.fct_orders").unwrap().clone();
    assert_eq!(fct["run"]["status"], "success");
    assert!(fct["run"]["rows"].as_u64().unwrap() > 0);
}
