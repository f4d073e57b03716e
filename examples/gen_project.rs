//! Generates a synthetic, dbt-compatible etlm project for benchmarks and stress tests.
//!
//! ```text
//! cargo run --release --example gen_project -- --models 10000 --out /tmp/gen_10000 \
//!     [--seed 42] [--seed-rows 50] [--tests-per-model 5.4] [--dbt] [--layers view]
//! ```
//!
//! Layout of the generated folder:
//!
//! ```text
//! etlm.yml                      name `gen`, vars, folder config (staging: view, marts: table;
//!                               the layers in between: views, or tables with `--layers table`)
//! profiles.yml                  profile `gen`: the embedded engine (`type: local`)
//! seeds/raw_*.csv               5 seeds: orders, payments, events of `--seed-rows` rows;
//!                               customers, products of a tenth of that (at least 50)
//! macros/helpers.sql            safe_div(a, b) and column_list(alias)
//! tests/generic/gen_tests.sql   generic tests in_range, is_true and row_count_between
//! models/staging/<seed>/        ~5% of the models, one seed each (split in part_NN past 200)
//! models/layer_1 .. layer_K-1/  intermediate layers, each model refs 1-3 earlier models
//! models/marts/                 the last layer
//! models/**/schema.yml          one per folder holding models: descriptions, columns, tests
//! dbt_project.yml               with `--dbt`: the same project for dbt-core (profile `gen`)
//! dbt_profiles/profiles.yml     with `--dbt`: profile `gen` on dbt-duckdb (`gen.duckdb`)
//! ```
//!
//! Every model outputs `id bigint, dt date, amount double precision, category varchar`
//! (plus optional extra columns), so any model can ref any earlier one, and the SQL sticks
//! to what DataFusion, DuckDB and Postgres all accept (`cast(.. as ..)`, no `::`). Refs
//! only point to earlier layers, so the graph has no cycles. `category` is always one of
//! `high`, `mid`, `low`; a model's `id` is unique whenever the schema.yml says so.
//!
//! Tests: `--tests-per-model` (default 5.4) YAML tests per model on average, so 10,000
//! models get exactly 54,000 generic tests (a model has at most as many as it has
//! candidates, 9 or more). Each model has `not_null` on `id`, `unique` when `id` is
//! unique, and a mix of `relationships` (to the seed or first parent the ids come from),
//! `accepted_values`, `not_null` on other columns, and the project's own `in_range`
//! (bounds every row meets), `is_true` (an expression every row meets) and
//! `row_count_between` (1 to the biggest seed's rows). All of them pass on the generated
//! data: a model's ids always come from its first parent, amounts are never negative
//! or NULL, and no model has more rows than the biggest seed.
//!
//! `--dbt` also writes what dbt-core with dbt-duckdb needs to build the folder unchanged.
//! etlm keeps reading `etlm.yml` and `profiles.yml` (it prefers `etlm.yml` over
//! `dbt_project.yml`), so dbt's profile is in its own folder and dbt writes its target
//! folder apart from etlm's; run it from the project folder:
//!
//! ```text
//! cd /tmp/gen_1000 && dbt build --profiles-dir dbt_profiles --target-path dbt_target
//! ```
//!
//! Output is a pure function of the arguments: the same arguments give the same bytes.
//! The generator owns `etlm.yml`, `profiles.yml`, `dbt_project.yml`, `models/`, `seeds/`,
//! `macros/`, `tests/` and `dbt_profiles/` in the output folder and replaces (or, without
//! `--dbt`, removes the dbt files) on each run; anything else there (e.g. `target/`,
//! `warehouse/`, `gen.duckdb`) is kept.
//! Only std is used.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Maximum number of models in one folder; bigger groups are split into `part_NN`.
const MAX_PER_FOLDER: usize = 200;
/// Default rows of the biggest seeds, and the fewest any seed has.
const MIN_SEED_ROWS: usize = 50;
/// Default YAML tests per model, in hundredths.
const DEFAULT_TESTS_PER_MODEL: usize = 540;
/// Every model's `category` is one of these.
const CATEGORIES: &str = "['high', 'mid', 'low']";

struct Args {
    models: usize,
    out: PathBuf,
    seed: u64,
    /// Rows of the biggest seeds.
    seed_rows: usize,
    /// YAML tests per model on average, in hundredths.
    tests_per_model: usize,
    /// Also write `dbt_project.yml` and `dbt_profiles/profiles.yml`.
    dbt: bool,
    /// `--layers table`: the intermediate layers are tables, not views (dbt's default).
    layers_table: bool,
}

const USAGE: &str = "usage: gen_project --models N --out DIR [--seed S] [--seed-rows N (>= 50, default 50)] \
[--tests-per-model X (default 5.4)] [--dbt] [--layers view|table (default view)]";

/// `5.4` -> 540: a non-negative decimal with at most two fraction digits, in hundredths.
fn parse_hundredths(v: &str) -> Option<usize> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: usize = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: usize = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().ok()? };
    int.checked_mul(100)?.checked_add(frac)
}

fn parse_args() -> Result<Args, String> {
    let mut models = None;
    let mut out = None;
    let mut seed = 42u64;
    let mut seed_rows = MIN_SEED_ROWS;
    let mut tests_per_model = DEFAULT_TESTS_PER_MODEL;
    let mut dbt = false;
    let mut layers_table = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if key == "-h" || key == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let mut value = || inline.clone().or_else(|| it.next()).ok_or_else(|| format!("`{key}` needs a value"));
        match key.as_str() {
            "--models" => {
                let v = value()?;
                let n: usize = v.parse().map_err(|_| format!("`--models {v}`: not a number"))?;
                if n == 0 {
                    return Err("`--models` must be at least 1".into());
                }
                models = Some(n);
            }
            "--out" => out = Some(PathBuf::from(value()?)),
            "--seed" => {
                let v = value()?;
                seed = v.parse().map_err(|_| format!("`--seed {v}`: not a number"))?;
            }
            "--seed-rows" => {
                let v = value()?;
                seed_rows = v.parse().map_err(|_| format!("`--seed-rows {v}`: not a number"))?;
                if seed_rows < MIN_SEED_ROWS {
                    return Err(format!("`--seed-rows` must be at least {MIN_SEED_ROWS}"));
                }
            }
            "--tests-per-model" => {
                let v = value()?;
                tests_per_model =
                    parse_hundredths(&v).ok_or_else(|| format!("`--tests-per-model {v}`: not a number like 5.4"))?;
            }
            "--dbt" => {
                if inline.is_some() {
                    return Err("`--dbt` takes no value".into());
                }
                dbt = true;
            }
            "--layers" => match value()?.as_str() {
                "view" => layers_table = false,
                "table" => layers_table = true,
                v => return Err(format!("`--layers {v}`: `view` or `table`")),
            },
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Args {
        models: models.ok_or("`--models N` is required")?,
        out: out.ok_or("`--out DIR` is required")?,
        seed,
        seed_rows,
        tests_per_model,
        dbt,
        layers_table,
    })
}

/// xorshift64*: tiny, deterministic, good enough for picking parents.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut s = seed ^ 0x9E37_79B9_7F4A_7C15 ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        if s == 0 {
            s = 0x2545_F491_4F6C_DD1D;
        }
        let mut rng = Rng(s);
        for _ in 0..4 {
            rng.next();
        }
        rng
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((self.next() >> 33) % n as u64) as usize
    }

    /// Uniform-ish in `lo..hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo)
    }

    /// True with probability `pct`%.
    fn chance(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }
}

// ---------------------------------------------------------------------------------------
// Seeds

struct SeedDef {
    /// Seed (table) name.
    name: &'static str,
    /// Short name used in staging folder and model names.
    short: &'static str,
    header: &'static str,
    /// Column that becomes `id` when the staging model keys on the primary key.
    pk: &'static str,
    /// A foreign-key column (ids repeat) that some staging models key on instead.
    fk: Option<&'static str>,
    /// The seed (index in `SEEDS`) whose primary key `fk` holds.
    fk_to: usize,
    /// Whether the seed is one of the small ones (a tenth of `--seed-rows`).
    small: bool,
    date: &'static str,
    amount: &'static str,
    label: &'static str,
    /// Every `amount` value is in `0..max_amount`.
    max_amount: usize,
}

const SEEDS: [SeedDef; 5] = [
    SeedDef {
        name: "raw_customers",
        short: "customers",
        header: "customer_id,first_name,last_name,email,signup_date,lifetime_value,segment",
        pk: "customer_id",
        fk: None,
        fk_to: 0,
        small: true,
        date: "signup_date",
        amount: "lifetime_value",
        label: "segment",
        max_amount: 500,
    },
    SeedDef {
        name: "raw_orders",
        short: "orders",
        header: "order_id,customer_id,order_date,amount,status",
        pk: "order_id",
        fk: Some("customer_id"),
        fk_to: 0,
        small: false,
        date: "order_date",
        amount: "amount",
        label: "status",
        max_amount: 250,
    },
    SeedDef {
        name: "raw_payments",
        short: "payments",
        header: "payment_id,order_id,payment_date,amount,method",
        pk: "payment_id",
        fk: Some("order_id"),
        fk_to: 1,
        small: false,
        date: "payment_date",
        amount: "amount",
        label: "method",
        max_amount: 250,
    },
    SeedDef {
        name: "raw_products",
        short: "products",
        header: "product_id,product_name,created_date,price,product_category",
        pk: "product_id",
        fk: None,
        fk_to: 3,
        small: true,
        date: "created_date",
        amount: "price",
        label: "product_category",
        max_amount: 120,
    },
    SeedDef {
        name: "raw_events",
        short: "events",
        header: "event_id,user_id,event_date,event_value,event_type",
        pk: "event_id",
        fk: Some("user_id"),
        fk_to: 0,
        small: false,
        date: "event_date",
        amount: "event_value",
        label: "event_type",
        max_amount: 60,
    },
];

const FIRST_NAMES: [&str; 10] =
    ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Radia", "Ken"];
const LAST_NAMES: [&str; 10] =
    ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Perlman", "Thompson"];
const SEGMENTS: [&str; 3] = ["retail", "wholesale", "online"];
const STATUSES: [&str; 4] = ["placed", "shipped", "completed", "returned"];
const METHODS: [&str; 4] = ["credit_card", "bank_transfer", "coupon", "gift_card"];
const PRODUCT_CATEGORIES: [&str; 4] = ["books", "games", "music", "tools"];
const PRODUCT_WORDS: [&str; 6] = ["widget", "gadget", "gizmo", "doohickey", "sprocket", "gear"];
const EVENT_TYPES: [&str; 4] = ["page_view", "click", "signup", "purchase"];

/// `2024-01-01` plus `day` days, for `day` in `0..60` (January and the leap February).
fn date(day: usize) -> String {
    let day = day % 60;
    if day < 31 { format!("2024-01-{:02}", day + 1) } else { format!("2024-02-{:02}", day - 30) }
}

fn money(rng: &mut Rng, lo: usize, hi: usize) -> String {
    let cents = rng.range(lo * 100, hi * 100);
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Rows of each seed: the big ones `seed_rows`, the small ones a tenth of it, at least
/// `MIN_SEED_ROWS`. Ids of seed `i` are `1..=rows[i]`.
fn seed_lengths(seed_rows: usize) -> [usize; 5] {
    SEEDS.each_ref().map(|d| if d.small { (seed_rows / 10).max(MIN_SEED_ROWS) } else { seed_rows })
}

fn seed_csv(index: usize, def: &SeedDef, lengths: &[usize; 5], rng: &mut Rng) -> String {
    let rows = lengths[index];
    let mut s = String::with_capacity(64 * rows);
    s.push_str(def.header);
    s.push('\n');
    for i in 1..=rows {
        let day = date(i * 7 + index * 3);
        // Foreign keys point to existing rows of the seed they reference.
        let fk = rng.range(1, lengths[def.fk_to] + 1);
        let _ = match index {
            0 => {
                let first = FIRST_NAMES[rng.below(FIRST_NAMES.len())];
                let last = LAST_NAMES[rng.below(LAST_NAMES.len())];
                writeln!(
                    s,
                    "{i},{first},{last},{}.{}{i}@example.com,{day},{},{}",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    money(rng, 0, 500),
                    SEGMENTS[rng.below(SEGMENTS.len())]
                )
            }
            1 => writeln!(s, "{i},{fk},{day},{},{}", money(rng, 1, 250), STATUSES[rng.below(STATUSES.len())]),
            2 => writeln!(s, "{i},{fk},{day},{},{}", money(rng, 1, 250), METHODS[rng.below(METHODS.len())]),
            3 => writeln!(
                s,
                "{i},{} {i},{day},{},{}",
                PRODUCT_WORDS[rng.below(PRODUCT_WORDS.len())],
                money(rng, 2, 120),
                PRODUCT_CATEGORIES[rng.below(PRODUCT_CATEGORIES.len())]
            ),
            _ => writeln!(s, "{i},{fk},{day},{},{}", money(rng, 0, 60), EVENT_TYPES[rng.below(EVENT_TYPES.len())]),
        };
    }
    s
}

// ---------------------------------------------------------------------------------------
// Models

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chain,
    Join,
    Aggregate,
    Window,
}

struct Model {
    name: String,
    layer: usize,
    /// Folder relative to `models/`.
    dir: String,
    /// Whether `id` is unique in the output.
    unique: bool,
    sql: String,
    description: String,
    /// Extra output columns beyond id, dt, amount, category.
    extras: Vec<&'static str>,
    /// `(relation, column)` holding every `id` of this model: `ref('x')` and `id` of the
    /// first parent, or the seed and its key a staging model's ids come from. None when
    /// the ids come from several parents.
    ids_from: Option<(String, &'static str)>,
    /// For staging models: every `amount` is in `0..max_amount`.
    max_amount: Option<usize>,
}

/// `with` item reading the four standard columns of `parent`, sometimes through the
/// `column_list` macro, sometimes filtered on `var('min_amount')`.
fn source_cte(s: &mut String, cte: &str, parent: &str, use_macro: bool, min_amount: bool) {
    let _ = writeln!(s, "{cte} as (");
    if use_macro {
        let _ = writeln!(s, "    select {{{{ column_list('s') }}}}");
        let _ = writeln!(s, "    from {{{{ ref('{parent}') }}}} as s");
        if min_amount {
            let _ = writeln!(s, "    where s.amount >= {{{{ var('min_amount') }}}}");
        }
    } else {
        let _ = writeln!(s, "    select id, dt, amount, category");
        let _ = writeln!(s, "    from {{{{ ref('{parent}') }}}}");
        if min_amount {
            let _ = writeln!(s, "    where amount >= {{{{ var('min_amount') }}}}");
        }
    }
    s.push(')');
}

const BUCKET: &str = "case\n            when amount >= 100 then 'high'\n            when amount >= 30 then 'mid'\n            else 'low'\n        end";

/// The outer select every model ends with: fixed column types, optional extras, and the
/// incremental filter.
fn final_select(s: &mut String, from: &str, amount_expr: &str, extras: &[(&str, &str, &str)], incremental: bool) {
    s.push_str("\n\nselect\n");
    s.push_str("    cast(id as bigint) as id,\n");
    s.push_str("    cast(dt as date) as dt,\n");
    let _ = writeln!(s, "    cast({amount_expr} as double precision) as amount,");
    s.push_str("    cast(category as varchar) as category");
    for (expr, ty, name) in extras {
        let _ = write!(s, ",\n    cast({expr} as {ty}) as {name}");
    }
    let _ = write!(s, "\nfrom {from}\n");
    if incremental {
        s.push_str("{% if is_incremental() %}\nwhere dt >= (select max(dt) from {{ this }})\n{% endif %}\n");
    }
}

fn staging_sql(def: &SeedDef, variant: usize, rng: &mut Rng) -> (String, bool, Vec<&'static str>, String) {
    let on_fk = def.fk.is_some() && variant % 3 == 2;
    let key = if on_fk { def.fk.unwrap() } else { def.pk };
    let min_amount = rng.chance(10);
    let full_name = def.short == "customers" && variant % 2 == 1;
    let mut s = String::with_capacity(900);
    let _ = writeln!(s, "-- staging model over {} (variant {variant})\n", def.name);
    let _ = writeln!(s, "with source as (\n    select * from {{{{ ref('{}') }}}}\n),", def.name);
    s.push_str("renamed as (\n    select\n");
    let _ = writeln!(s, "        cast({key} as bigint) as id,");
    let _ = writeln!(s, "        cast({} as date) as dt,", def.date);
    let _ = writeln!(s, "        cast({} as double precision) as amount,", def.amount);
    if full_name {
        s.push_str("        cast(first_name || ' ' || last_name as varchar) as full_name,\n");
    }
    let _ = writeln!(s, "        cast({} as varchar) as source_label", def.label);
    s.push_str("    from source\n");
    if min_amount {
        let _ = writeln!(s, "    where {} >= {{{{ var('min_amount') }}}}", def.amount);
    }
    s.push_str("),\nshaped as (\n    select\n        id,\n        dt,\n        amount,\n");
    let _ = writeln!(s, "        {BUCKET} as category,");
    if full_name {
        s.push_str("        full_name,\n");
    }
    s.push_str("        source_label\n    from renamed\n)");
    let mut extras = vec![];
    let mut extra_cols: Vec<(&str, &str, &str)> = vec![];
    if full_name {
        extras.push("full_name");
        extra_cols.push(("full_name", "varchar", "full_name"));
    }
    extras.push("source_label");
    extra_cols.push(("source_label", "varchar", "source_label"));
    final_select(&mut s, "shaped", "amount", &extra_cols, false);
    let desc = format!(
        "Staging model over {}: renames and casts, keyed on {key}{}.",
        def.name,
        if min_amount { ", filtered on var min_amount" } else { "" }
    );
    (s, !on_fk, extras, desc)
}

/// Generates the SQL of a non-staging model. `parents[i]` is `(name, unique)`.
fn layer_sql(
    kind: Kind,
    parents: &[(String, bool)],
    layer: usize,
    incremental: bool,
    min_amount: bool,
    rng: &mut Rng,
) -> (String, bool, Vec<&'static str>, String) {
    let mut s = String::with_capacity(1600);
    let names: Vec<&str> = parents.iter().map(|p| p.0.as_str()).collect();
    let _ = writeln!(s, "-- layer {layer}: {} of {}", kind_name(kind), names.join(", "));
    if incremental {
        s.push_str("{{ config(materialized='incremental', unique_key='id') }}\n");
    }
    s.push('\n');
    let macro_src = rng.chance(30);
    let mut extras: Vec<&'static str> = vec![];
    let unique;
    let desc;
    s.push_str("with ");
    match kind {
        Kind::Chain => {
            source_cte(&mut s, "src", names[0], macro_src, min_amount);
            let steps = rng.range(1, 4);
            let mut prev = "src".to_string();
            for step in 0..steps {
                let cte = format!("step_{}", step + 1);
                let _ = write!(s, ",\n{cte} as (\n");
                match rng.below(4) {
                    0 => {
                        let num = rng.range(1, 6);
                        let den = rng.range(1, 5);
                        let _ = writeln!(
                            s,
                            "    select\n        id,\n        dt,\n        {{{{ safe_div('amount * {num}', '{den}') }}}} as amount,\n        category\n    from {prev}"
                        );
                    }
                    1 => {
                        let _ = writeln!(
                            s,
                            "    select id, dt, amount, category\n    from {prev}\n    where dt >= cast('{}' as date)",
                            date(rng.below(20))
                        );
                    }
                    2 => {
                        let _ = writeln!(
                            s,
                            "    select\n        id,\n        dt,\n        amount,\n        {BUCKET} as category\n    from {prev}"
                        );
                    }
                    _ => {
                        let _ = writeln!(
                            s,
                            "    select\n        id,\n        dt,\n        amount + {} as amount,\n        case when category = 'high' and amount < 50 then 'mid' else category end as category\n    from {prev}",
                            rng.range(1, 10)
                        );
                    }
                }
                s.push(')');
                prev = cte;
            }
            unique = parents[0].1;
            final_select(&mut s, &prev, "amount", &[], incremental);
            desc = format!("Layer {layer} CTE chain of {steps} steps over {}.", names[0]);
        }
        Kind::Join => {
            source_cte(&mut s, "base", names[0], macro_src, min_amount);
            let inner = rng.chance(30);
            for (i, p) in names.iter().enumerate().skip(1) {
                let _ = write!(
                    s,
                    ",\nj{i} as (\n    select id, sum(amount) as amount, max(category) as category\n    from {{{{ ref('{p}') }}}}\n    group by id\n)"
                );
            }
            s.push_str(",\njoined as (\n    select\n        base.id,\n        base.dt,\n        base.amount");
            for i in 1..names.len() {
                let _ = write!(s, " + coalesce(j{i}.amount, 0)");
            }
            s.push_str(" as amount,\n        coalesce(j1.category, base.category) as category");
            let ratio = rng.chance(50);
            if ratio {
                s.push_str(",\n        {{ safe_div('base.amount', 'j1.amount') }} as amount_ratio");
                extras.push("amount_ratio");
            }
            s.push_str("\n    from base");
            for i in 1..names.len() {
                let join = if inner && i == 1 { "inner join" } else { "left join" };
                let _ = write!(s, "\n    {join} j{i} on base.id = j{i}.id");
            }
            s.push_str("\n)");
            unique = parents[0].1;
            let extra_cols: &[(&str, &str, &str)] =
                if ratio { &[("amount_ratio", "double precision", "amount_ratio")] } else { &[] };
            final_select(&mut s, "joined", "amount", extra_cols, incremental);
            desc = format!("Layer {layer} join of {} with {}.", names[0], names[1..].join(" and "));
        }
        Kind::Aggregate => {
            source_cte(&mut s, "src", names[0], macro_src, min_amount);
            let from = if names.len() > 1 {
                s.push_str(",\n");
                source_cte(&mut s, "other", names[1], false, false);
                s.push_str(
                    ",\nunioned as (\n    select id, dt, amount, category from src\n    union all\n    select id, dt, amount, category from other\n)",
                );
                "unioned"
            } else {
                "src"
            };
            let _ = write!(
                s,
                ",\naggregated as (\n    select\n        id,\n        max(dt) as dt,\n        sum(amount) as total_amount,\n        max(category) as category,\n        count(*) as n_rows\n    from {from}\n    group by id\n)"
            );
            unique = true;
            extras.push("n_rows");
            final_select(
                &mut s,
                "aggregated",
                "{{ safe_div('total_amount', 'n_rows') }}",
                &[("n_rows", "bigint", "n_rows")],
                incremental,
            );
            desc = format!("Layer {layer} per-id aggregate of {}.", names.join(" and "));
        }
        Kind::Window => {
            source_cte(&mut s, "src", names[0], macro_src, min_amount);
            s.push_str(
                ",\nranked as (\n    select\n        id,\n        dt,\n        amount,\n        category,\n        row_number() over (partition by id order by dt, amount) as rn,\n        sum(amount) over (partition by id order by dt, amount rows between unbounded preceding and current row) as running_amount\n    from src\n)",
            );
            // Incremental models need a unique key: always deduplicate them.
            let filter = if incremental { 0 } else { rng.below(3) };
            let from = match filter {
                0 => {
                    s.push_str(",\ndeduped as (\n    select id, dt, amount, category, rn, running_amount\n    from ranked\n    where rn = 1\n)");
                    "deduped"
                }
                1 => {
                    s.push_str(",\nrecent as (\n    select id, dt, amount, category, rn, running_amount\n    from ranked\n    where rn <= {{ var('lookback_days') }}\n)");
                    "recent"
                }
                _ => "ranked",
            };
            unique = filter == 0 || parents[0].1;
            extras.push("rn");
            extras.push("running_amount");
            final_select(
                &mut s,
                from,
                "amount",
                &[("rn", "bigint", "rn"), ("running_amount", "double precision", "running_amount")],
                incremental,
            );
            desc = format!(
                "Layer {layer} window over {}{}.",
                names[0],
                match filter {
                    0 => ", first row per id",
                    1 => ", first lookback_days rows per id",
                    _ => "",
                }
            );
        }
    }
    (s, unique, extras, desc)
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Chain => "chain",
        Kind::Join => "join",
        Kind::Aggregate => "aggregate",
        Kind::Window => "window",
    }
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// Folder for item `i` of a group of `count` under `base`: `base` itself while the group
/// fits in one folder, else `base/part_NN` with evenly sized parts.
fn folder(base: &str, i: usize, count: usize) -> String {
    if count <= MAX_PER_FOLDER {
        return base.to_string();
    }
    let parts = count.div_ceil(MAX_PER_FOLDER);
    format!("{base}/part_{:02}", i * parts / count + 1)
}

fn generate(n: usize, seed: u64) -> Vec<Model> {
    let staging = (n / 20).max(n.min(SEEDS.len()));
    let rest = n - staging;
    let layers = if rest == 0 { 0 } else { (rest / 20).clamp(1, 12) };
    let width = digits(n).max(5);
    let mut models: Vec<Model> = Vec::with_capacity(n);
    let mut rng = Rng::new(seed, 1);

    // Staging: model j reads seed j % 5.
    let per_seed_max = staging.div_ceil(SEEDS.len());
    let stg_width = digits(per_seed_max).max(3);
    for j in 0..staging {
        let si = j % SEEDS.len();
        let def = &SEEDS[si];
        let k = j / SEEDS.len();
        let count = staging / SEEDS.len() + usize::from(si < staging % SEEDS.len());
        let (sql, unique, extras, description) = staging_sql(def, k, &mut rng);
        // Keyed on the primary key, the ids are the seed's; on the foreign key, they are
        // keys of the seed it references.
        let from = if unique { def } else { &SEEDS[def.fk_to] };
        models.push(Model {
            name: format!("stg_{}_{:0stg_width$}", def.short, k + 1),
            layer: 0,
            dir: folder(&format!("staging/{}", def.short), k, count),
            unique,
            sql,
            description,
            extras,
            ids_from: Some((from.name.to_string(), from.pk)),
            max_amount: Some(def.max_amount),
        });
    }

    // Layers 1..=layers; `starts[l]` is the index of the first model of layer l.
    let mut starts = vec![0, staging];
    let mut global = 0;
    for layer in 1..=layers {
        let size = rest / layers + usize::from(layer <= rest % layers);
        let is_mart = layer == layers;
        let base = if is_mart { "marts".to_string() } else { format!("layer_{layer}") };
        let prev = (starts[layer - 1], starts[layer]);
        let earlier = starts[layer];
        for i in 0..size {
            global += 1;
            let kind = match rng.below(100) {
                0..=29 => Kind::Chain,
                30..=59 => Kind::Join,
                60..=79 => Kind::Aggregate,
                _ => Kind::Window,
            };
            let incremental = rng.chance(10);
            let kind = if incremental && matches!(kind, Kind::Chain | Kind::Join) {
                if rng.chance(50) { Kind::Aggregate } else { Kind::Window }
            } else {
                kind
            };
            let min_amount = rng.chance(10);
            let wanted = match kind {
                Kind::Join => {
                    if rng.chance(70) {
                        2
                    } else {
                        3
                    }
                }
                Kind::Aggregate => {
                    if rng.chance(50) {
                        1
                    } else {
                        2
                    }
                }
                _ => 1,
            };
            // The first parent comes from the previous layer 70% of the time, the others
            // from anywhere earlier.
            let mut picked: Vec<usize> = Vec::with_capacity(wanted);
            let first = if rng.chance(70) { rng.range(prev.0, prev.1) } else { rng.below(earlier) };
            picked.push(first);
            let mut tries = 0;
            while picked.len() < wanted && tries < 16 {
                tries += 1;
                let p = rng.below(earlier);
                if !picked.contains(&p) {
                    picked.push(p);
                }
            }
            let kind = if kind == Kind::Join && picked.len() < 2 { Kind::Chain } else { kind };
            let parents: Vec<(String, bool)> =
                picked.iter().map(|&p| (models[p].name.clone(), models[p].unique)).collect();
            let (sql, unique, extras, description) =
                layer_sql(kind, &parents, layer, incremental, min_amount, &mut rng);
            let name =
                if is_mart { format!("mart_{global:0width$}") } else { format!("int_l{layer:02}_{global:0width$}") };
            // Every kind keeps (a subset of) its first parent's ids, except an aggregate
            // over the union of two parents.
            let ids_from = (kind != Kind::Aggregate || parents.len() == 1).then(|| (parents[0].0.clone(), "id"));
            models.push(Model {
                name,
                layer,
                dir: folder(&base, i, size),
                unique,
                sql,
                description,
                extras,
                ids_from,
                max_amount: None,
            });
        }
        starts.push(models.len());
    }
    models
}

/// One candidate YAML test of a model: the column it is on (None: a model-level test),
/// its list item (`- unique`, or a name with `arguments:`), and how keen the model is to
/// have it (the highest-scored ones are kept).
struct TestCandidate {
    column: Option<&'static str>,
    item: String,
    score: usize,
}

/// A test with arguments, as a list item: `name:` then `arguments:` (dbt 1.10's place for
/// them, which etlm reads too).
fn test_with_args(name: &str, args: &[(&str, String)]) -> String {
    let mut s = format!("- {name}:\n    arguments:");
    for (k, v) in args {
        let _ = write!(s, "\n      {k}: {v}");
    }
    s
}

/// Every test the generated data provably passes on `m`, scored with `rng`. `not_null` and
/// `unique` on `id` come first, as in most projects.
fn test_candidates(m: &Model, seed_rows: usize, rng: &mut Rng) -> Vec<TestCandidate> {
    let mut c = Vec::with_capacity(16);
    let mut add = |column: Option<&'static str>, item: String, score: usize| {
        c.push(TestCandidate { column, item, score });
    };
    let dates = [
        ("min_value", "\"cast('2024-01-01' as date)\"".to_string()),
        ("max_value", "\"cast('2024-02-29' as date)\"".to_string()),
    ];
    add(Some("id"), "- not_null".into(), 10_000);
    if m.unique {
        add(Some("id"), "- unique".into(), 9_000);
    }
    if let Some((to, field)) = &m.ids_from {
        let item = test_with_args("relationships", &[("to", format!("ref('{to}')")), ("field", field.to_string())]);
        add(Some("id"), item, 300 + rng.below(500));
    }
    add(Some("dt"), "- not_null".into(), rng.below(500));
    add(Some("dt"), test_with_args("in_range", &dates), 100 + rng.below(500));
    add(Some("amount"), "- not_null".into(), rng.below(500));
    if let Some(max) = m.max_amount {
        let item = test_with_args("in_range", &[("min_value", "0".into()), ("max_value", max.to_string())]);
        add(Some("amount"), item, 100 + rng.below(500));
    }
    add(Some("category"), "- not_null".into(), rng.below(500));
    add(Some("category"), test_with_args("accepted_values", &[("values", CATEGORIES.into())]), 200 + rng.below(500));
    for &extra in &m.extras {
        match extra {
            // A ratio is NULL where the joined amount is missing or zero.
            "amount_ratio" => {}
            "rn" => {
                let item =
                    test_with_args("in_range", &[("min_value", "1".into()), ("max_value", seed_rows.to_string())]);
                add(Some(extra), item, rng.below(400));
            }
            "n_rows" => {
                let item = test_with_args(
                    "in_range",
                    &[("min_value", "1".into()), ("max_value", (2 * seed_rows).to_string())],
                );
                add(Some(extra), item, rng.below(400));
            }
            _ => add(Some(extra), "- not_null".into(), rng.below(400)),
        }
    }
    let expression = if m.extras.contains(&"n_rows") {
        "amount >= 0 and n_rows >= 1"
    } else if m.extras.contains(&"rn") {
        "amount >= 0 and rn >= 1"
    } else {
        "amount >= 0 and id > 0"
    };
    add(None, test_with_args("is_true", &[("expression", format!("\"{expression}\""))]), 100 + rng.below(500));
    // No model has more rows than the biggest seed (ids are at most its row count, and
    // every kind keeps its first parent's row count or fewer, or groups by id).
    let rows = [("min_value", "1".to_string()), ("max_value", seed_rows.to_string())];
    add(None, test_with_args("row_count_between", &rows), 200 + rng.below(500));
    c
}

/// Writes `item` (a list item whose lines are relative to its `- `) at `indent`.
fn push_item(s: &mut String, item: &str, indent: usize) {
    for line in item.lines() {
        let _ = writeln!(s, "{:indent$}{line}", "");
    }
}

/// The schema.yml of one folder. `counter` numbers the models across folders, so the
/// test count of model `i` is `floor((i + 1) * t) - floor(i * t)` for `t` tests per model
/// (in hundredths), and the project total is exactly `floor(models * t)` while every model
/// has enough candidates.
fn schema_yml(
    models: &[&Model],
    rng: &mut Rng,
    counter: &mut usize,
    tests_per_model: usize,
    seed_rows: usize,
) -> (String, usize) {
    let mut s = String::with_capacity(models.len() * 1600);
    let mut total = 0;
    s.push_str("version: 2\n\nmodels:\n");
    for m in models {
        let i = *counter;
        *counter += 1;
        let wanted = ((i + 1) * tests_per_model) / 100 - (i * tests_per_model) / 100;
        let candidates = test_candidates(m, seed_rows, rng);
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by_key(|&k| (std::cmp::Reverse(candidates[k].score), k));
        let mut keep = vec![false; candidates.len()];
        for &k in order.iter().take(wanted) {
            keep[k] = true;
        }
        total += wanted.min(candidates.len());
        let on = |column: Option<&'static str>| -> Vec<&TestCandidate> {
            candidates.iter().zip(&keep).filter(|(t, kept)| **kept && t.column == column).map(|(t, _)| t).collect()
        };
        let _ = writeln!(s, "  - name: {}", m.name);
        let _ = writeln!(s, "    description: \"{}\"", m.description);
        let model_tests = on(None);
        if !model_tests.is_empty() {
            s.push_str("    data_tests:\n");
            for t in model_tests {
                push_item(&mut s, &t.item, 6);
            }
        }
        s.push_str("    columns:\n");
        let described: [(&'static str, &str); 4] = [
            ("id", "Entity identifier shared across the project."),
            ("dt", "Business date."),
            ("amount", "Amount in dollars."),
            ("category", "Amount bucket: high, mid or low."),
        ];
        let columns = described.iter().map(|&(c, d)| (c, Some(d))).chain(m.extras.iter().map(|&c| (c, None)));
        for (column, description) in columns {
            let _ = writeln!(s, "      - name: {column}");
            if let Some(d) = description {
                let _ = writeln!(s, "        description: \"{d}\"");
            }
            let tests = on(Some(column));
            if !tests.is_empty() {
                s.push_str("        data_tests:\n");
                for t in tests {
                    push_item(&mut s, &t.item, 10);
                }
            }
        }
    }
    (s, total)
}

/// The project's own generic tests (`tests/generic/`). Each returns the failing rows.
const GENERIC_TESTS: &str = "\
{# Generic tests used by the generated schema.yml files. #}

{% test in_range(model, column_name, min_value, max_value) %}
select {{ column_name }}
from {{ model }}
where not ({{ column_name }} >= {{ min_value }} and {{ column_name }} <= {{ max_value }})
{% endtest %}

{% test is_true(model, expression) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}

{% test row_count_between(model, min_value, max_value) %}
select n
from (select count(*) as n from {{ model }}) c
where n < {{ min_value }} or n > {{ max_value }}
{% endtest %}
";

const HELPERS: &str = "\
{# Helpers used by the generated models. #}

{% macro safe_div(a, b) -%}
case when {{ b }} = 0 then null else {{ a }} / {{ b }} end
{%- endmacro %}

{% macro column_list(alias) -%}
{%- for col in ['id', 'dt', 'amount', 'category'] -%}
{{ alias }}.{{ col }}{% if not loop.last %}, {% endif %}
{%- endfor -%}
{%- endmacro %}
";

/// `etlm.yml`: [`PROJECT`], with the intermediate layers as tables for `--layers table`.
fn project_yml(args: &Args) -> String {
    match args.layers_table {
        true => PROJECT.replacen("    staging:\n", "    +materialized: table\n    staging:\n", 1),
        false => PROJECT.to_string(),
    }
}

/// Pins the embedded engine, so a `~/.etlm/profiles.yml` without a `gen` profile can't
/// change or break the benchmark.
const PROFILES: &str = "\
gen:
  target: dev
  outputs:
    dev:
      type: local
";

const PROJECT: &str = "\
name: gen
version: '1.0'
config-version: 2

model-paths: ['models']
seed-paths: ['seeds']
macro-paths: ['macros']

vars:
  lookback_days: 3
  min_amount: 10

models:
  gen:
    staging:
      +materialized: view
    marts:
      +materialized: table
";

/// dbt's profile (`--dbt`): dbt-duckdb, with the database file in the folder dbt runs in
/// (the project folder), so it never meets etlm's `warehouse/`.
const DBT_PROFILES: &str = "\
gen:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: gen.duckdb
      threads: 2
";

/// dbt's project file (`--dbt`): etlm.yml with the profile named, and no usage
/// statistics sent.
fn dbt_project(args: &Args) -> String {
    let mut s = project_yml(args).replacen("config-version: 2\n", "config-version: 2\nprofile: gen\n", 1);
    s.push_str("\nflags:\n  send_anonymous_usage_stats: false\n");
    s
}

/// What was written: files, and YAML tests.
struct Written {
    files: usize,
    tests: usize,
}

fn write_project(out: &Path, models: &[Model], args: &Args) -> std::io::Result<Written> {
    fs::create_dir_all(out)?;
    for owned in ["models", "seeds", "macros", "tests", "dbt_profiles"] {
        let p = out.join(owned);
        if p.exists() {
            fs::remove_dir_all(&p)?;
        }
    }
    if out.join("dbt_project.yml").exists() {
        fs::remove_file(out.join("dbt_project.yml"))?;
    }
    let mut files: Vec<(PathBuf, String)> = Vec::with_capacity(models.len() + 200);
    let mut dirs: Vec<PathBuf> = vec![out.join("macros"), out.join("seeds"), out.join("tests/generic")];
    files.push((out.join("etlm.yml"), project_yml(args)));
    files.push((out.join("profiles.yml"), PROFILES.to_string()));
    if args.dbt {
        dirs.push(out.join("dbt_profiles"));
        files.push((out.join("dbt_project.yml"), dbt_project(args)));
        files.push((out.join("dbt_profiles/profiles.yml"), DBT_PROFILES.to_string()));
    }
    files.push((out.join("macros/helpers.sql"), HELPERS.to_string()));
    files.push((out.join("tests/generic/gen_tests.sql"), GENERIC_TESTS.to_string()));
    let mut seed_rng = Rng::new(args.seed, 2);
    let lengths = seed_lengths(args.seed_rows);
    for (i, def) in SEEDS.iter().enumerate() {
        files.push((out.join("seeds").join(format!("{}.csv", def.name)), seed_csv(i, def, &lengths, &mut seed_rng)));
    }
    // Models, grouped by folder (folders in name order, models in generation order).
    let mut folders: BTreeMap<&str, Vec<&Model>> = BTreeMap::new();
    for m in models {
        folders.entry(m.dir.as_str()).or_default().push(m);
    }
    let mut schema_rng = Rng::new(args.seed, 3);
    let mut counter = 0;
    let mut tests = 0;
    for (dir, group) in &folders {
        let path = out.join("models").join(dir);
        for m in group {
            files.push((path.join(format!("{}.sql", m.name)), m.sql.clone()));
        }
        let (yml, n) = schema_yml(group, &mut schema_rng, &mut counter, args.tests_per_model, args.seed_rows);
        tests += n;
        files.push((path.join("schema.yml"), yml));
        dirs.push(path);
    }
    for d in &dirs {
        fs::create_dir_all(d)?;
    }
    // Writing is bound by file-system latency, not CPU: spread it over a few threads.
    let threads = 8.min(files.len().max(1));
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().try_for_each(|(path, text)| fs::write(path, text))))
            .collect();
        handles.into_iter().try_for_each(|h| h.join().expect("writer thread panicked"))
    })?;
    Ok(Written { files: files.len(), tests })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gen_project: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    let models = generate(args.models, args.seed);
    let layers = models.last().map_or(0, |m| m.layer);
    match write_project(&args.out, &models, &args) {
        Ok(Written { files, tests }) => {
            eprintln!(
                "gen_project: {} models ({} layers after staging), {tests} YAML tests, seeds of {} rows, {files} files in {}{} ({:.2} s)",
                models.len(),
                layers,
                args.seed_rows,
                args.out.display(),
                if args.dbt { " (with dbt's files)" } else { "" },
                start.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen_project: writing {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}
