//! Node selection, as in dbt: `m`, `+m`, `m+`, `2+m`, `m+1`, `@m`, `tag:x`,
//! `path:models/staging`, `config.materialized:incremental`, `resource_type:seed`,
//! `source:raw.orders`, `fqn:`, `package:`, `test_type:`, `test_name:`, wildcards (`stg_*`).
//! Arguments are a union; commas inside one argument intersect; `--exclude` subtracts.
//! Tests attached to a selected node are selected too (dbt's eager indirect selection).
//! `state:new`, `state:modified[.reason]` and `result:<status>` match sets computed
//! outside the graph (another build's manifest, the last run), handed in as [`PriorState`].

use std::collections::{BTreeMap, BTreeSet};

use super::{Dag, NodeInfo, ResourceType};

/// A selector that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector `{selector}`: {reason}")]
pub struct SelectError {
    pub selector: String,
    pub reason: String,
}

/// One selection method and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Method {
    /// No method: a name, a dotted fqn or (with a `/`) a path.
    Default(String),
    Fqn(String),
    Tag(String),
    Path(String),
    Config(String, String),
    ResourceType(String),
    Source(String),
    Package(String),
    TestType(String),
    TestName(String),
    /// Methods resolved from outside the graph (`state:`, `result:`): the ids they match.
    External(String, String),
}

/// One atom: a method with graph operators.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Atom {
    method: Method,
    at: bool,
    parents: Option<Option<usize>>,
    children: Option<Option<usize>>,
}

/// A parsed `--select` or `--exclude`: a union of intersections of atoms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    union: Vec<Vec<Atom>>,
    /// Each member of the union as written.
    words: Vec<String>,
}

/// Parses the words given to `--select` (each may hold several space-separated selectors).
pub fn parse_selectors(words: &[String]) -> Result<Selector, SelectError> {
    let mut union = Vec::new();
    let mut written = Vec::new();
    for word in words.iter().flat_map(|w| w.split_whitespace()) {
        let atoms = word.split(',').map(|a| parse_atom(a, word)).collect::<Result<Vec<_>, _>>()?;
        union.push(atoms);
        written.push(word.to_string());
    }
    Ok(Selector { union, words: written })
}

fn parse_atom(text: &str, whole: &str) -> Result<Atom, SelectError> {
    let err = |reason: &str| SelectError { selector: whole.to_string(), reason: reason.to_string() };
    if text.is_empty() {
        return Err(err("empty selector"));
    }
    let mut rest = text;
    let at = rest.starts_with('@');
    if at {
        rest = &rest[1..];
    }
    let mut parents = None;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if rest[digits.len()..].starts_with('+') {
        let depth = if digits.is_empty() { None } else { Some(digits.parse().map_err(|_| err("bad depth"))?) };
        parents = Some(depth);
        rest = &rest[digits.len() + 1..];
    } else if !digits.is_empty()
        && rest.len() > digits.len()
        && !rest[digits.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
    {
        return Err(err("a depth must be followed by `+`"));
    }
    let mut children = None;
    if let Some(plus) = rest.rfind('+') {
        let tail = &rest[plus + 1..];
        if tail.chars().all(|c| c.is_ascii_digit()) {
            let depth = if tail.is_empty() { None } else { Some(tail.parse().map_err(|_| err("bad depth"))?) };
            children = Some(depth);
            rest = &rest[..plus];
        }
    }
    if at && (parents.is_some() || children.is_some()) {
        return Err(err("`@` cannot be combined with `+`"));
    }
    if rest.is_empty() {
        return Err(err("nothing to select"));
    }
    let method = match rest.split_once(':') {
        None => Method::Default(rest.to_string()),
        Some((m, v)) => {
            if v.is_empty() {
                return Err(err("a method needs a value, like `tag:daily`"));
            }
            let v = v.to_string();
            match m {
                "fqn" => Method::Fqn(v),
                "tag" => Method::Tag(v),
                "path" | "file" => Method::Path(v),
                "resource_type" => Method::ResourceType(v),
                "source" => Method::Source(v),
                "package" => Method::Package(v),
                "test_type" => Method::TestType(v),
                "test_name" => Method::TestName(v),
                "state" | "result" => Method::External(m.to_string(), v),
                m if m.starts_with("config.") => Method::Config(m["config.".len()..].to_string(), v),
                other => return Err(err(&format!("unknown method `{other}`"))),
            }
        }
    };
    Ok(Atom { method, at, parents, children })
}

/// Matches `text` against a glob with `*` and `?`.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

fn fqn_matches(node: &NodeInfo, selector: &str) -> bool {
    if glob(selector, &node.name) {
        return true;
    }
    let parts: Vec<&str> = selector.split('.').collect();
    let flat: Vec<&str> = node.fqn.iter().flat_map(|s| s.split('.')).collect();
    if parts.len() > flat.len() {
        return false;
    }
    for (i, part) in parts.iter().enumerate() {
        if *part == "*" {
            return true;
        }
        if !glob(part, flat[i]) {
            return false;
        }
    }
    true
}

fn path_matches(node: &NodeInfo, selector: &str) -> bool {
    let sel = selector.trim_end_matches('/');
    let sel = sel.strip_prefix("./").unwrap_or(sel);
    node.path == sel || node.path.starts_with(&format!("{sel}/")) || (sel.contains(['*', '?']) && glob(sel, &node.path))
}

fn config_matches(node: &NodeInfo, key: &str, value: &str) -> bool {
    match node.config.get(key) {
        Some(serde_json::Value::String(s)) => glob(value, s),
        Some(serde_json::Value::Array(items)) => items.iter().any(|i| i.as_str().is_some_and(|s| glob(value, s))),
        Some(other) => *other == value,
        None => false,
    }
}

fn method_matches(node: &NodeInfo, method: &Method) -> bool {
    match method {
        Method::Default(v) if v.contains('/') || v.ends_with(".sql") || v.ends_with(".csv") => path_matches(node, v),
        Method::Default(v) | Method::Fqn(v) => node.resource_type != ResourceType::Source && fqn_matches(node, v),
        Method::Tag(t) => node.tags.iter().any(|x| glob(t, x)),
        Method::Path(p) => path_matches(node, p),
        Method::Config(k, v) => config_matches(node, k, v),
        Method::ResourceType(t) => node.resource_type.as_str() == t,
        Method::Source(v) => {
            let Some(src) = &node.source_name else { return false };
            match v.split_once('.') {
                Some((s, t)) => glob(s, src) && glob(t, &node.name),
                None => glob(v, src),
            }
        }
        Method::Package(p) => glob(p, &node.package),
        // `data` is dbt's name for generic and singular tests together.
        Method::TestType(t) if t == "data" => matches!(node.test_type, Some("generic" | "singular")),
        Method::TestType(t) => node.test_type == Some(t.as_str()),
        Method::TestName(n) => node.test_name.as_deref().is_some_and(|x| glob(n, x)),
        Method::External(..) => false,
    }
}

/// Answers `state:` and `result:` methods, which need another manifest or a past run.
pub trait ExternalMethods {
    /// The node ids matched by `method:value`, or an explanation why it cannot be answered.
    fn matching(&self, method: &str, value: &str) -> Result<BTreeSet<String>, String>;
}

/// What `state:` and `result:` selectors match: node sets computed from another build's
/// manifest (`--state`) and from the last run's results.
#[derive(Clone, Debug)]
pub struct PriorState {
    /// `None` without `--state`.
    pub state: Option<StateSets>,
    /// Node id -> status of the last run (`success`, `error`, `fail`, `skipped`, `warn`,
    /// `pass`), or why there is none.
    pub results: Result<BTreeMap<String, String>, String>,
}

/// The nodes another build's manifest marks as new or modified.
#[derive(Clone, Debug, Default)]
pub struct StateSets {
    /// `state:new`.
    pub new: BTreeSet<String>,
    /// Reason (`body`, `config`, ...) -> nodes modified for it; every reason is a key.
    pub modified: BTreeMap<String, BTreeSet<String>>,
}

/// The statuses `result:` accepts.
const RESULT_STATUSES: [&str; 6] = ["success", "error", "fail", "skipped", "warn", "pass"];

impl ExternalMethods for PriorState {
    fn matching(&self, method: &str, value: &str) -> Result<BTreeSet<String>, String> {
        match method {
            "state" => {
                let sets = self.state.as_ref().ok_or_else(|| {
                    "`state:` selectors need `--state DIR`, the target folder of another build".to_string()
                })?;
                match value.split_once('.') {
                    None if value == "new" => Ok(sets.new.clone()),
                    None if value == "modified" => {
                        Ok(sets.modified.values().flatten().chain(&sets.new).cloned().collect())
                    }
                    Some(("modified", reason)) => sets.modified.get(reason).cloned().ok_or_else(|| {
                        let known: Vec<String> = sets.modified.keys().map(|k| format!("`modified.{k}`")).collect();
                        format!("unknown state `{value}`; use `new`, `modified` or {}", known.join(", "))
                    }),
                    _ => Err(format!("unknown state `{value}`; use `new` or `modified`")),
                }
            }
            "result" => {
                if !RESULT_STATUSES.contains(&value) {
                    return Err(format!("unknown result `{value}`; use one of {}", RESULT_STATUSES.join(", ")));
                }
                let results = self.results.as_ref().map_err(Clone::clone)?;
                Ok(results.iter().filter(|(_, s)| s.as_str() == value).map(|(id, _)| id.clone()).collect())
            }
            other => Err(format!("unknown method `{other}`")),
        }
    }
}

impl Selector {
    pub fn is_empty(&self) -> bool {
        self.union.is_empty()
    }

    /// The node ids this selector matches, with graph operators applied.
    pub fn matches(&self, dag: &Dag, external: &dyn ExternalMethods) -> Result<BTreeSet<String>, SelectError> {
        let mut out = BTreeSet::new();
        for intersection in &self.union {
            let mut acc: Option<BTreeSet<String>> = None;
            for atom in intersection {
                let set = atom_matches(atom, dag, external)?;
                acc = Some(match acc {
                    None => set,
                    Some(prev) => prev.intersection(&set).cloned().collect(),
                });
            }
            out.extend(acc.unwrap_or_default());
        }
        Ok(out)
    }
}

impl Selector {
    /// The selectors as written that match no node, with the nearest node name for a
    /// plain name. `state:` and `result:` are left out: matching nothing is their usual
    /// answer (nothing changed, nothing failed).
    pub fn unmatched(
        &self,
        dag: &Dag,
        external: &dyn ExternalMethods,
    ) -> Result<Vec<(String, Option<String>)>, SelectError> {
        let mut out = Vec::new();
        for (intersection, word) in self.union.iter().zip(&self.words) {
            if intersection.iter().any(|a| matches!(a.method, Method::External(..))) {
                continue;
            }
            let one = Selector { union: vec![intersection.clone()], words: Vec::new() };
            if one.matches(dag, external)?.is_empty() {
                let name = intersection.iter().find_map(|a| match &a.method {
                    Method::Default(name) => Some(name.as_str()),
                    _ => None,
                });
                let near = name.and_then(|name| {
                    crate::diagnostics::nearest(name, dag.nodes().map(|n| n.name.as_str())).map(str::to_string)
                });
                out.push((word.clone(), near));
            }
        }
        Ok(out)
    }
}

fn atom_matches(atom: &Atom, dag: &Dag, external: &dyn ExternalMethods) -> Result<BTreeSet<String>, SelectError> {
    let base: BTreeSet<String> = match &atom.method {
        // Another build's or run's ids: only those still in this DAG are nodes to select.
        Method::External(m, v) => external
            .matching(m, v)
            .map_err(|reason| SelectError { selector: format!("{m}:{v}"), reason })?
            .into_iter()
            .filter(|id| dag.contains(id))
            .collect(),
        method => dag.nodes().filter(|n| method_matches(n, method)).map(|n| n.unique_id.clone()).collect(),
    };
    let mut out = base.clone();
    for id in &base {
        if atom.at {
            let down = dag.descendants(id, None);
            for d in down.iter().chain(std::iter::once(id)) {
                out.extend(dag.ancestors(d, None));
            }
            out.extend(down);
        }
        if let Some(depth) = atom.parents {
            out.extend(dag.ancestors(id, depth));
        }
        if let Some(depth) = atom.children {
            out.extend(dag.descendants(id, depth));
        }
    }
    Ok(out)
}

/// The final selection: `select` (everything when empty) plus the tests of selected
/// nodes, minus `exclude` and every test that touches an excluded node (dbt's eager
/// indirect selection works both ways).
pub fn select(
    dag: &Dag,
    select: &Selector,
    exclude: &Selector,
    external: &dyn ExternalMethods,
) -> Result<BTreeSet<String>, SelectError> {
    let chosen = if select.is_empty() {
        let all: BTreeSet<String> = dag.nodes().map(|n| n.unique_id.clone()).collect();
        if exclude.is_empty() {
            return Ok(all);
        }
        all
    } else {
        select.matches(dag, external)?
    };
    let mut excluded = exclude.matches(dag, external)?;
    let touching = |set: &BTreeSet<String>| -> Vec<String> {
        dag.nodes()
            .filter(|n| matches!(n.resource_type, ResourceType::Test | ResourceType::UnitTest))
            .filter(|n| dag.parents(&n.unique_id).iter().any(|p| set.contains(*p)))
            .map(|n| n.unique_id.clone())
            .collect()
    };
    excluded.extend(touching(&excluded));
    let mut out: BTreeSet<String> = chosen.difference(&excluded).cloned().collect();
    out.extend(touching(&out).into_iter().filter(|t| !excluded.contains(t)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::node;
    use super::*;

    /// seeds: raw_orders, raw_customers; source raw.events;
    /// stg_orders <- raw_orders; stg_customers <- raw_customers; stg_events <- raw.events;
    /// orders <- stg_orders, stg_customers; daily <- orders; report <- daily, stg_events;
    /// test unique_orders_id on orders; test rel on orders + stg_customers.
    fn graph() -> Dag {
        let mut dag = Dag::default();
        let mut add = |id: &str, rt: ResourceType, path: &str, tags: &[&str], mat: Option<&str>| {
            let mut n = node(id, rt);
            n.path = path.to_string();
            n.tags = tags.iter().map(|s| s.to_string()).collect();
            if let Some(m) = mat {
                n.config.insert("materialized".into(), m.into());
            }
            let folder = path.split('/').nth(1).filter(|f| !f.ends_with(".sql") && !f.ends_with(".csv"));
            if let Some(f) = folder {
                n.fqn = vec!["shop".into(), f.into(), n.name.clone()];
            }
            if rt == ResourceType::Source {
                n.source_name = Some("raw".into());
                n.fqn = vec!["shop".into(), "raw".into(), n.name.clone()];
            }
            if rt == ResourceType::Test {
                n.test_type = Some("generic");
                n.test_name = Some(if id.contains("unique") { "unique".into() } else { "relationships".into() });
            }
            dag.add_node(n);
        };
        add("seed.shop.raw_orders", ResourceType::Seed, "seeds/raw_orders.csv", &[], None);
        add("seed.shop.raw_customers", ResourceType::Seed, "seeds/raw_customers.csv", &[], None);
        add("source.shop.raw.events", ResourceType::Source, "models/sources.yml", &[], None);
        add("model.shop.stg_orders", ResourceType::Model, "models/staging/stg_orders.sql", &["staging"], Some("view"));
        add(
            "model.shop.stg_customers",
            ResourceType::Model,
            "models/staging/stg_customers.sql",
            &["staging"],
            Some("view"),
        );
        add("model.shop.stg_events", ResourceType::Model, "models/staging/stg_events.sql", &["staging"], Some("view"));
        add("model.shop.orders", ResourceType::Model, "models/marts/orders.sql", &["daily"], Some("table"));
        add("model.shop.daily", ResourceType::Model, "models/marts/daily.sql", &["daily"], Some("incremental"));
        add("model.shop.report", ResourceType::Model, "models/marts/report.sql", &[], Some("table"));
        add("test.shop.unique_orders_id", ResourceType::Test, "models/marts/schema.yml", &[], None);
        add("test.shop.rel_orders_customers", ResourceType::Test, "models/marts/schema.yml", &[], None);
        for (p, c) in [
            ("seed.shop.raw_orders", "model.shop.stg_orders"),
            ("seed.shop.raw_customers", "model.shop.stg_customers"),
            ("source.shop.raw.events", "model.shop.stg_events"),
            ("model.shop.stg_orders", "model.shop.orders"),
            ("model.shop.stg_customers", "model.shop.orders"),
            ("model.shop.orders", "model.shop.daily"),
            ("model.shop.daily", "model.shop.report"),
            ("model.shop.stg_events", "model.shop.report"),
            ("model.shop.orders", "test.shop.unique_orders_id"),
            ("model.shop.orders", "test.shop.rel_orders_customers"),
            ("model.shop.stg_customers", "test.shop.rel_orders_customers"),
        ] {
            dag.add_edges(&[(p, c)]);
        }
        dag
    }

    fn names(select_words: &[&str], exclude_words: &[&str]) -> Vec<String> {
        let dag = graph();
        let s = parse_selectors(&select_words.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let e = parse_selectors(&exclude_words.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let nothing = PriorState { state: None, results: Err("no run".into()) };
        let mut out: Vec<String> = select(&dag, &s, &e, &nothing)
            .unwrap()
            .into_iter()
            .map(|id| id.rsplit('.').next().unwrap().to_string())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn bare_name_selects_the_node_and_its_tests() {
        assert_eq!(names(&["orders"], &[]), ["orders", "rel_orders_customers", "unique_orders_id"]);
    }

    #[test]
    fn plus_prefix_selects_all_ancestors() {
        assert_eq!(
            names(&["+daily"], &["resource_type:test"]),
            ["daily", "orders", "raw_customers", "raw_orders", "stg_customers", "stg_orders"]
        );
    }

    #[test]
    fn depth_prefix_limits_ancestors() {
        assert_eq!(names(&["2+daily"], &["resource_type:test"]), ["daily", "orders", "stg_customers", "stg_orders"]);
        assert_eq!(names(&["1+daily"], &["resource_type:test"]), ["daily", "orders"]);
    }

    #[test]
    fn plus_suffix_selects_descendants_and_depth_limits_them() {
        assert_eq!(names(&["stg_orders+"], &["resource_type:test"]), ["daily", "orders", "report", "stg_orders"]);
        assert_eq!(names(&["stg_orders+1"], &["resource_type:test"]), ["orders", "stg_orders"]);
    }

    #[test]
    fn at_selects_descendants_and_their_ancestors() {
        assert_eq!(
            names(&["@daily"], &["resource_type:test"]),
            [
                "daily",
                "events",
                "orders",
                "raw_customers",
                "raw_orders",
                "report",
                "stg_customers",
                "stg_events",
                "stg_orders"
            ]
        );
    }

    #[test]
    fn test_type_data_is_generic_and_singular_and_unit_is_unit_tests() {
        let mut dag = graph();
        let mut unit = node("unit_test.shop.orders.sums", ResourceType::UnitTest);
        unit.test_type = Some("unit");
        dag.add_node(unit);
        let mut singular = node("test.shop.no_negative", ResourceType::Test);
        singular.test_type = Some("singular");
        dag.add_node(singular);
        dag.add_edges(&[
            ("model.shop.orders", "unit_test.shop.orders.sums"),
            ("model.shop.orders", "test.shop.no_negative"),
        ]);
        let pick = |words: &[&str]| -> Vec<String> {
            let s = parse_selectors(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>()).unwrap();
            let nothing = PriorState { state: None, results: Err("no run".into()) };
            let none = parse_selectors(&[]).unwrap();
            select(&dag, &s, &none, &nothing).unwrap().into_iter().collect()
        };
        assert_eq!(pick(&["test_type:unit"]), ["unit_test.shop.orders.sums"]);
        assert_eq!(
            pick(&["test_type:data"]),
            ["test.shop.no_negative", "test.shop.rel_orders_customers", "test.shop.unique_orders_id"]
        );
        assert!(
            pick(&["orders"]).contains(&"unit_test.shop.orders.sums".to_string()),
            "a model's unit tests follow it"
        );
        assert!(!pick(&["resource_type:test"]).contains(&"unit_test.shop.orders.sums".to_string()));
    }

    #[test]
    fn tag_path_config_and_resource_type_methods() {
        assert_eq!(names(&["tag:staging"], &[]), ["rel_orders_customers", "stg_customers", "stg_events", "stg_orders"]);
        assert_eq!(names(&["path:models/marts"], &["resource_type:test"]), ["daily", "orders", "report"]);
        assert_eq!(names(&["models/staging/stg_orders.sql"], &[]), ["stg_orders"]);
        assert_eq!(names(&["config.materialized:incremental"], &[]), ["daily"]);
        assert_eq!(names(&["resource_type:seed"], &[]), ["raw_customers", "raw_orders"]);
        assert_eq!(names(&["source:raw"], &[]), ["events"]);
        assert_eq!(names(&["source:raw.events+1"], &[]), ["events", "stg_events"]);
        assert_eq!(names(&["test_name:unique"], &[]), ["unique_orders_id"]);
    }

    #[test]
    fn space_is_union_comma_is_intersection() {
        assert_eq!(names(&["stg_orders stg_events"], &[]), ["stg_events", "stg_orders"]);
        assert_eq!(names(&["stg_orders", "stg_events"], &[]), ["stg_events", "stg_orders"]);
        assert_eq!(
            names(&["tag:daily,config.materialized:table"], &[]),
            ["orders", "rel_orders_customers", "unique_orders_id"]
        );
    }

    #[test]
    fn exclude_subtracts_and_drops_tests_touching_excluded_nodes() {
        // rel_orders_customers goes too: it touches the excluded `stg_customers`, though
        // it also tests the selected `orders` (dbt's eager mode, on the exclude side).
        assert_eq!(
            names(&["+orders"], &["resource_type:seed", "stg_customers"]),
            ["orders", "stg_orders", "unique_orders_id"]
        );
        assert_eq!(names(&["+orders"], &["resource_type:seed", "orders"]), ["stg_customers", "stg_orders"]);
        // A test picked by the selector itself goes when its node is excluded.
        assert_eq!(names(&["resource_type:test"], &["orders"]), Vec::<String>::new());
    }

    #[test]
    fn fqn_folders_and_wildcards() {
        assert_eq!(names(&["shop.staging"], &["resource_type:test"]), ["stg_customers", "stg_events", "stg_orders"]);
        assert_eq!(names(&["stg_*"], &["resource_type:test"]), ["stg_customers", "stg_events", "stg_orders"]);
        assert_eq!(names(&["fqn:shop.marts.*"], &["resource_type:test"]), ["daily", "orders", "report"]);
    }

    fn prior() -> PriorState {
        let ids = |list: &[&str]| list.iter().map(|n| format!("model.shop.{n}")).collect::<BTreeSet<String>>();
        PriorState {
            state: Some(StateSets {
                new: ids(&["stg_events"]),
                modified: BTreeMap::from([
                    ("body".to_string(), ids(&["orders"])),
                    ("config".to_string(), ids(&["stg_customers"])),
                    ("vars".to_string(), BTreeSet::new()),
                ]),
            }),
            results: Ok(BTreeMap::from([
                ("model.shop.orders".to_string(), "error".to_string()),
                ("model.shop.daily".to_string(), "skipped".to_string()),
                ("model.shop.stg_orders".to_string(), "success".to_string()),
                ("test.shop.unique_orders_id".to_string(), "fail".to_string()),
            ])),
        }
    }

    fn names_with(
        select_words: &[&str],
        exclude_words: &[&str],
        prior: &dyn ExternalMethods,
    ) -> Result<Vec<String>, String> {
        let dag = graph();
        let words = |w: &[&str]| parse_selectors(&w.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let mut out: Vec<String> = select(&dag, &words(select_words), &words(exclude_words), prior)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|id| id.rsplit('.').next().unwrap().to_string())
            .collect();
        out.sort();
        Ok(out)
    }

    #[test]
    fn state_new_and_modified_select_from_the_other_manifest() {
        let p = prior();
        let no_tests = ["resource_type:test"];
        assert_eq!(names_with(&["state:new"], &no_tests, &p).unwrap(), ["stg_events"]);
        assert_eq!(names_with(&["state:modified"], &no_tests, &p).unwrap(), ["orders", "stg_customers", "stg_events"]);
        assert_eq!(names_with(&["state:modified.config"], &no_tests, &p).unwrap(), ["stg_customers"]);
        assert_eq!(names_with(&["state:modified.vars"], &no_tests, &p).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn state_modified_plus_adds_descendants() {
        assert_eq!(
            names_with(&["state:modified.body+"], &["resource_type:test"], &prior()).unwrap(),
            ["daily", "orders", "report"]
        );
        assert_eq!(
            names_with(&["state:modified+"], &["resource_type:test"], &prior()).unwrap(),
            ["daily", "orders", "report", "stg_customers", "stg_events"]
        );
    }

    #[test]
    fn state_selectors_intersect_and_exclude_like_others() {
        assert_eq!(
            names_with(&["state:modified,tag:staging"], &["resource_type:test"], &prior()).unwrap(),
            ["stg_customers", "stg_events"]
        );
        assert_eq!(
            names_with(&["state:modified+"], &["resource_type:test", "state:new+"], &prior()).unwrap(),
            ["daily", "orders", "stg_customers"]
        );
    }

    #[test]
    fn result_selectors_match_last_run_statuses() {
        let p = prior();
        assert_eq!(names_with(&["result:error"], &["resource_type:test"], &p).unwrap(), ["orders"]);
        assert_eq!(names_with(&["result:skipped"], &[], &p).unwrap(), ["daily"]);
        assert_eq!(names_with(&["result:fail"], &[], &p).unwrap(), ["unique_orders_id"]);
        assert_eq!(names_with(&["result:error+"], &["resource_type:test"], &p).unwrap(), ["daily", "orders", "report"]);
    }

    // Regression: #18, a node of the last run that the project no longer has was selected,
    // and the commands looking it up panicked.
    #[test]
    fn result_selectors_skip_nodes_gone_from_the_project() {
        let mut p = prior();
        if let Ok(results) = &mut p.results {
            results.insert("model.shop.deleted".to_string(), "error".to_string());
        }
        assert_eq!(names_with(&["result:error"], &["resource_type:test"], &p).unwrap(), ["orders"]);
    }

    #[test]
    fn state_and_result_without_their_inputs_are_errors() {
        let none = PriorState { state: None, results: Err("no run_results.json".into()) };
        assert!(names_with(&["state:modified"], &[], &none).unwrap_err().contains("--state"));
        assert!(names_with(&["result:error"], &[], &none).unwrap_err().contains("no run_results.json"));
        assert!(names_with(&["state:changed"], &[], &prior()).unwrap_err().contains("unknown state"));
        assert!(names_with(&["state:modified.bogus"], &[], &prior()).unwrap_err().contains("modified.body"));
        assert!(names_with(&["result:broken"], &[], &prior()).unwrap_err().contains("unknown result"));
    }

    #[test]
    fn bad_selectors_are_errors() {
        assert!(parse_selectors(&["tag:".to_string()]).is_err());
        assert!(parse_selectors(&["bogus:x".to_string()]).is_err());
        assert!(parse_selectors(&["@+x".to_string()]).is_err());
        assert!(parse_selectors(&["2x".to_string()]).is_ok(), "a name may start with digits");
    }
}
