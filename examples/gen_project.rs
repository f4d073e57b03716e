//! Generates a synthetic, dbt-compatible etlm project for benchmarks and stress tests.
//!
//! ```text
//! cargo run --release --example gen_project -- --models 10000 --out /tmp/gen_10000 [--seed 42]
//! ```
//!
//! Layout of the generated folder:
//!
//! ```text
//! etlm.yml                      name `gen`, vars, folder config (staging: view, marts: table)
//! profiles.yml                  profile `gen`: the embedded engine (`type: local`)
//! seeds/raw_*.csv               5 seeds of 50 rows
//! macros/helpers.sql            safe_div(a, b) and column_list(alias)
//! models/staging/<seed>/        ~5% of the models, one seed each (split in part_NN past 200)
//! models/layer_1 .. layer_K-1/  intermediate layers, each model refs 1-3 earlier models
//! models/marts/                 the last layer
//! models/**/schema.yml          one per folder holding models: descriptions, columns, tests
//! ```
//!
//! Every model outputs `id bigint, dt date, amount double precision, category varchar`
//! (plus optional extra columns), so any model can ref any earlier one, and the SQL sticks
//! to what both DataFusion and Postgres accept (`cast(.. as ..)`, no `::`). Refs only point
//! to earlier layers, so the graph has no cycles. `category` is always one of `high`,
//! `mid`, `low`; a model's `id` is unique whenever the schema.yml says so.
//!
//! Output is a pure function of the arguments: the same `--models`, `--seed` give the same
//! bytes. The generator owns `etlm.yml`, `profiles.yml`, `models/`, `seeds/` and `macros/`
//! in the output folder and replaces them on each run; anything else there (e.g.
//! `target/`) is kept.
//! Only std is used.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Maximum number of models in one folder; bigger groups are split into `part_NN`.
const MAX_PER_FOLDER: usize = 200;
/// Rows per seed.
const SEED_ROWS: usize = 50;
/// Every model's `category` is one of these.
const CATEGORIES: &str = "['high', 'mid', 'low']";

struct Args {
    models: usize,
    out: PathBuf,
    seed: u64,
}

const USAGE: &str = "usage: gen_project --models N --out DIR [--seed S]";

fn parse_args() -> Result<Args, String> {
    let mut models = None;
    let mut out = None;
    let mut seed = 42u64;
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
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Args { models: models.ok_or("`--models N` is required")?, out: out.ok_or("`--out DIR` is required")?, seed })
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
    date: &'static str,
    amount: &'static str,
    label: &'static str,
}

const SEEDS: [SeedDef; 5] = [
    SeedDef {
        name: "raw_customers",
        short: "customers",
        header: "customer_id,first_name,last_name,email,signup_date,lifetime_value,segment",
        pk: "customer_id",
        fk: None,
        date: "signup_date",
        amount: "lifetime_value",
        label: "segment",
    },
    SeedDef {
        name: "raw_orders",
        short: "orders",
        header: "order_id,customer_id,order_date,amount,status",
        pk: "order_id",
        fk: Some("customer_id"),
        date: "order_date",
        amount: "amount",
        label: "status",
    },
    SeedDef {
        name: "raw_payments",
        short: "payments",
        header: "payment_id,order_id,payment_date,amount,method",
        pk: "payment_id",
        fk: Some("order_id"),
        date: "payment_date",
        amount: "amount",
        label: "method",
    },
    SeedDef {
        name: "raw_products",
        short: "products",
        header: "product_id,product_name,created_date,price,product_category",
        pk: "product_id",
        fk: None,
        date: "created_date",
        amount: "price",
        label: "product_category",
    },
    SeedDef {
        name: "raw_events",
        short: "events",
        header: "event_id,user_id,event_date,event_value,event_type",
        pk: "event_id",
        fk: Some("user_id"),
        date: "event_date",
        amount: "event_value",
        label: "event_type",
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

fn seed_csv(index: usize, def: &SeedDef, rng: &mut Rng) -> String {
    let mut s = String::with_capacity(64 * SEED_ROWS);
    s.push_str(def.header);
    s.push('\n');
    for i in 1..=SEED_ROWS {
        let day = date(i * 7 + index * 3);
        let fk = rng.range(1, SEED_ROWS + 1);
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
        models.push(Model {
            name: format!("stg_{}_{:0stg_width$}", def.short, k + 1),
            layer: 0,
            dir: folder(&format!("staging/{}", def.short), k, count),
            unique,
            sql,
            description,
            extras,
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
            models.push(Model { name, layer, dir: folder(&base, i, size), unique, sql, description, extras });
        }
        starts.push(models.len());
    }
    models
}

fn schema_yml(models: &[&Model], rng: &mut Rng) -> String {
    let mut s = String::with_capacity(models.len() * 600);
    s.push_str("version: 2\n\nmodels:\n");
    for m in models {
        let _ = writeln!(s, "  - name: {}", m.name);
        let _ = writeln!(s, "    description: \"{}\"", m.description);
        s.push_str("    columns:\n");
        s.push_str("      - name: id\n        description: \"Entity identifier shared across the project.\"\n");
        if m.unique && rng.chance(55) {
            s.push_str("        data_tests:\n          - unique\n          - not_null\n");
        } else if rng.chance(25) {
            s.push_str("        data_tests:\n          - not_null\n");
        }
        s.push_str("      - name: dt\n        description: \"Business date.\"\n");
        s.push_str("      - name: amount\n        description: \"Amount in dollars.\"\n");
        s.push_str("      - name: category\n        description: \"Amount bucket: high, mid or low.\"\n");
        if rng.chance(20) {
            let _ =
                writeln!(s, "        data_tests:\n          - accepted_values:\n              values: {CATEGORIES}");
        }
        for extra in &m.extras {
            let _ = writeln!(s, "      - name: {extra}");
        }
    }
    s
}

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

fn write_project(out: &Path, models: &[Model], seed: u64) -> std::io::Result<usize> {
    fs::create_dir_all(out)?;
    for owned in ["models", "seeds", "macros"] {
        let p = out.join(owned);
        if p.exists() {
            fs::remove_dir_all(&p)?;
        }
    }
    let mut files: Vec<(PathBuf, String)> = Vec::with_capacity(models.len() + 200);
    let mut dirs: Vec<PathBuf> = vec![out.join("macros"), out.join("seeds")];
    files.push((out.join("etlm.yml"), PROJECT.to_string()));
    files.push((out.join("profiles.yml"), PROFILES.to_string()));
    files.push((out.join("macros/helpers.sql"), HELPERS.to_string()));
    let mut seed_rng = Rng::new(seed, 2);
    for (i, def) in SEEDS.iter().enumerate() {
        files.push((out.join("seeds").join(format!("{}.csv", def.name)), seed_csv(i, def, &mut seed_rng)));
    }
    // Models, grouped by folder (folders in name order, models in generation order).
    let mut folders: BTreeMap<&str, Vec<&Model>> = BTreeMap::new();
    for m in models {
        folders.entry(m.dir.as_str()).or_default().push(m);
    }
    let mut schema_rng = Rng::new(seed, 3);
    for (dir, group) in &folders {
        let path = out.join("models").join(dir);
        for m in group {
            files.push((path.join(format!("{}.sql", m.name)), m.sql.clone()));
        }
        files.push((path.join("schema.yml"), schema_yml(group, &mut schema_rng)));
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
    Ok(files.len())
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
    match write_project(&args.out, &models, args.seed) {
        Ok(files) => {
            eprintln!(
                "gen_project: {} models ({} layers after staging), {files} files in {} ({:.2} s)",
                models.len(),
                layers,
                args.out.display(),
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
