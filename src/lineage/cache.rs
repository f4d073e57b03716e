//! What an earlier compile found, reused when nothing it was computed from has changed
//! (dbt's partial parsing): `target/compile.cache`.
//!
//! A model's walk is a pure function of its compiled SQL and of what it read from the
//! [`Catalog`]: which node an ephemeral CTE name or a relation name is, and the column
//! names and completeness of those nodes' schemas. An entry is keyed by a hash of the SQL
//! and keeps every read with its answer; it is reused only when each read gives the same
//! answer now, so a new walk would take the same steps and find the same result. Models
//! whose walk found unknown or ambiguous names are not kept: their diagnostics are always
//! computed afresh. A test's SQL is only syntax-checked: the hashes of the texts that
//! parsed are kept. The whole file is ignored when another etlm build or dialect wrote it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::scope::Col;
use super::walk::ModelResult;
use super::{Catalog, ColumnRef, EdgeKind, Role, Schema};
use crate::sql::types::Type;

/// The file name under the target folder.
pub const FILE_NAME: &str = "compile.cache";

/// One lookup a walk made in the catalog, with its answer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) enum Read {
    /// An ephemeral model's CTE name (lowercase) and the node it names.
    Ephemeral { name: String, node: Option<Arc<str>> },
    /// A `schema.identifier` (lowercase) and the node built there.
    Relation { name: String, node: Option<Arc<str>> },
    /// A node's schema: a hash of its column names and completeness (`None`: unknown).
    Schema { node: Arc<str>, columns: Option<String> },
}

impl Read {
    fn ephemeral(catalog: &Catalog, name: &str) -> Read {
        Read::Ephemeral { name: name.to_string(), node: catalog.ephemerals.get(name).cloned() }
    }

    fn relation(catalog: &Catalog, name: &str) -> Read {
        Read::Relation { name: name.to_string(), node: catalog.relations.get(name).cloned() }
    }

    fn schema(catalog: &Catalog, node: &Arc<str>) -> Read {
        Read::Schema { node: node.clone(), columns: catalog.schemas.get(node).map(schema_hash) }
    }

    /// Whether the catalog still gives this answer.
    fn holds(&self, catalog: &Catalog) -> bool {
        *self
            == match self {
                Read::Ephemeral { name, .. } => Read::ephemeral(catalog, name),
                Read::Relation { name, .. } => Read::relation(catalog, name),
                Read::Schema { node, .. } => Read::schema(catalog, node),
            }
    }
}

/// The catalog lookups of one walk, recorded as they are made.
#[derive(Debug, Default)]
pub(super) struct Reads(BTreeSet<Read>);

impl Reads {
    /// The ephemeral model whose CTE is called `name` (lowercase).
    pub fn ephemeral<'c>(&mut self, catalog: &'c Catalog, name: &str) -> Option<&'c Arc<str>> {
        self.0.insert(Read::ephemeral(catalog, name));
        catalog.ephemerals.get(name)
    }

    /// The node built at `schema.identifier` (lowercase).
    pub fn relation<'c>(&mut self, catalog: &'c Catalog, name: &str) -> Option<&'c Arc<str>> {
        self.0.insert(Read::relation(catalog, name));
        catalog.relations.get(name)
    }

    /// A node's schema, if known.
    pub fn schema<'c>(&mut self, catalog: &'c Catalog, node: &Arc<str>) -> Option<&'c Schema> {
        self.0.insert(Read::schema(catalog, node));
        catalog.schemas.get(node)
    }
}

/// A hash of what a walk reads of a schema: its column names and types, in order, and
/// completeness.
fn schema_hash(schema: &Schema) -> String {
    let mut hasher = Sha256::new();
    for (name, ty) in &schema.columns {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(format!("{ty:?}").as_bytes());
        hasher.update([0]);
    }
    hasher.update([u8::from(schema.complete)]);
    crate::hex::hex(&hasher.finalize()[..16])
}

/// The key of a seed's columns: the first 128 bits of the SHA-256 of how it is read
/// (`column_types`, quoting) and its CSV's bytes, in hex.
pub(super) fn seed_key(csv: &[u8], how: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(how.as_bytes());
    hash.update([0]);
    hash.update(csv);
    crate::hex::hex(&hash.finalize()[..16])
}

/// The key of a compiled SQL text: the first 128 bits of its SHA-256, in hex.
pub(super) fn sql_key(sql: &str) -> String {
    crate::hex::hex(&Sha256::digest(sql.as_bytes())[..16])
}

/// An output column: its name, origin, type and derivation fingerprint.
type CachedColumn = (String, Vec<(ColumnRef, EdgeKind)>, Type, u64);

/// A model's walk, as kept between compiles.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    reads: Vec<Read>,
    columns: Vec<CachedColumn>,
    complete: bool,
    usage: BTreeMap<Role, BTreeSet<ColumnRef>>,
    rows: u64,
}

/// Walk results and syntax checks of one compile, for the next.
///
/// The file is one line per entry, `m <key> <entry as JSON>` for a model and `t <key>`
/// for test SQL that parsed, after a first line naming the build. Entries stay text until
/// a model asks for its own, so reading the cache costs one pass over the file and the
/// JSON of 10,000 entries is parsed on every core, only where it is used.
#[derive(Debug, Default)]
pub struct Cache {
    /// The etlm build and SQL dialect that computed it.
    build: String,
    /// Entry JSON by the key of the model's compiled SQL.
    models: HashMap<String, String>,
    /// Keys of test SQL texts that parsed.
    parsed: HashSet<String>,
    /// Seed column names and types (JSON) by a hash of the CSV's bytes and how it is read.
    seeds: HashMap<String, String>,
}

impl Cache {
    /// An empty cache for results computed by `build`.
    pub fn new(build: String) -> Cache {
        Cache { build, ..Default::default() }
    }

    /// The cache at `path` if `build` wrote it; empty when it is missing, unreadable or
    /// from another build (it is only ever an optimisation).
    pub fn read(path: &Path, build: String) -> Cache {
        let mut cache = Cache::new(build);
        let Ok(text) = std::fs::read_to_string(path) else { return cache };
        let mut lines = text.lines();
        if lines.next() != Some(cache.build.as_str()) {
            return cache;
        }
        for line in lines {
            match line.split_once(' ') {
                Some(("m", rest)) => {
                    if let Some((key, json)) = rest.split_once(' ') {
                        cache.models.insert(key.to_string(), json.to_string());
                    }
                }
                Some(("t", key)) => {
                    cache.parsed.insert(key.to_string());
                }
                Some(("s", rest)) => {
                    if let Some((key, json)) = rest.split_once(' ') {
                        cache.seeds.insert(key.to_string(), json.to_string());
                    }
                }
                _ => {}
            }
        }
        cache
    }

    /// The etlm build and dialect it belongs to.
    pub fn build(&self) -> &str {
        &self.build
    }

    /// Writes the cache in the format [`Cache::read`] reads.
    pub fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "{}", self.build)?;
        // In key order, so the same compile writes the same file.
        let mut models: Vec<(&String, &String)> = self.models.iter().collect();
        models.sort_unstable();
        for (key, json) in models {
            writeln!(out, "m {key} {json}")?;
        }
        let mut parsed: Vec<&String> = self.parsed.iter().collect();
        parsed.sort_unstable();
        for key in parsed {
            writeln!(out, "t {key}")?;
        }
        let mut seeds: Vec<(&String, &String)> = self.seeds.iter().collect();
        seeds.sort_unstable();
        for (key, json) in seeds {
            writeln!(out, "s {key} {json}")?;
        }
        Ok(())
    }

    /// The earlier walk of SQL with this key, with its entry's JSON, if every catalog read
    /// gives the same answer now.
    pub(super) fn model(&self, key: &str, catalog: &Catalog) -> Option<(ModelResult, String)> {
        let json = self.models.get(key)?;
        let entry: Entry = serde_json::from_str(json).ok()?;
        if !entry.reads.iter().all(|r| r.holds(catalog)) {
            return None;
        }
        let result = ModelResult {
            columns: entry
                .columns
                .into_iter()
                .map(|(name, origin, ty, fp)| Col { name, origin: origin.into_iter().collect(), ty, fp })
                .collect(),
            complete: entry.complete,
            usage: entry.usage,
            rows: entry.rows,
            problems: Vec::new(),
            syntax: None,
            reads: Reads(entry.reads.into_iter().collect()),
        };
        Some((result, json.clone()))
    }

    /// The entry JSON of a model's walk; `None` when it found problems or its SQL did not
    /// parse (those are never reused).
    pub(super) fn entry_json(result: &ModelResult) -> Option<String> {
        if result.syntax.is_some() || !result.problems.is_empty() {
            return None;
        }
        let entry = Entry {
            reads: result.reads.0.iter().cloned().collect(),
            columns: result
                .columns
                .iter()
                .map(|c| {
                    let origin = c.origin.iter().map(|(r, k)| (r.clone(), *k)).collect();
                    (c.name.clone(), origin, c.ty.clone(), c.fp)
                })
                .collect(),
            complete: result.complete,
            usage: result.usage.clone(),
            rows: result.rows,
        };
        Some(serde_json::to_string(&entry).expect("cache entries serialize"))
    }

    /// Keeps a model's entry JSON for the next compile.
    pub(super) fn keep_model(&mut self, key: String, json: String) {
        self.models.insert(key, json);
    }

    /// Whether test SQL with this key parsed before.
    pub(super) fn parsed(&self, key: &str) -> bool {
        self.parsed.contains(key)
    }

    /// Records that test SQL with this key parsed.
    pub(super) fn keep_parsed(&mut self, key: String) {
        self.parsed.insert(key);
    }

    /// A seed's columns found before, by [`seed_key`].
    pub(super) fn seed(&self, key: &str) -> Option<Vec<(String, Type)>> {
        serde_json::from_str(self.seeds.get(key)?).ok()
    }

    /// Keeps a seed's columns for the next compile.
    pub(super) fn keep_seed(&mut self, key: String, columns: &[(String, Type)]) {
        self.seeds.insert(key, serde_json::to_string(columns).expect("seed columns serialize"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::SqlDialect;

    fn catalog() -> Catalog {
        let stg: Arc<str> = Arc::from("model.p.stg");
        Catalog {
            relations: HashMap::from([("main.stg".to_string(), stg.clone())]),
            ephemerals: HashMap::new(),
            schemas: HashMap::from([(stg, Schema { columns: vec![("id".into(), Type::Unknown)], complete: true })]),
            dialect: SqlDialect::DataFusion,
        }
    }

    #[test]
    fn reads_hold_until_the_catalog_answers_differently() {
        let mut catalog = catalog();
        let mut reads = Reads::default();
        let stg = reads.relation(&catalog, "main.stg").cloned().unwrap();
        reads.schema(&catalog, &stg);
        reads.ephemeral(&catalog, "__dbt__cte__eph");
        reads.relation(&catalog, "main.other");
        let holds = |c: &Catalog| reads.0.iter().all(|r| r.holds(c));
        assert!(holds(&catalog));

        // Column names and types are read by the walk (types decide the types it infers).
        catalog.schemas.get_mut(&stg).unwrap().columns[0].1 = Type::Int64;
        assert!(!holds(&catalog));
        let mut catalog = self::catalog();
        catalog.schemas.get_mut(&stg).unwrap().columns.push(("amount".into(), Type::Unknown));
        assert!(!holds(&catalog));
        let mut catalog = self::catalog();
        catalog.schemas.get_mut(&stg).unwrap().complete = false;
        assert!(!holds(&catalog));

        let mut catalog = self::catalog();
        catalog.relations.insert("main.other".into(), Arc::from("model.p.other"));
        assert!(!holds(&catalog), "a relation that appeared");
        let mut catalog = self::catalog();
        catalog.ephemerals.insert("__dbt__cte__eph".into(), Arc::from("model.p.eph"));
        assert!(!holds(&catalog), "an ephemeral model that appeared");
        let mut catalog = self::catalog();
        catalog.relations.insert("main.stg".into(), Arc::from("model.p.renamed"));
        assert!(!holds(&catalog), "a relation built by another node");
    }

    #[test]
    fn a_cache_is_read_back_only_by_the_build_that_wrote_it() {
        let mut cache = Cache::new("etlm 1 DataFusion".into());
        cache.keep_model("k1".into(), "{}".into());
        cache.keep_parsed("k2".into());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut text = Vec::new();
        cache.write(&mut text).unwrap();
        std::fs::write(&path, text).unwrap();

        let same = Cache::read(&path, "etlm 1 DataFusion".into());
        assert_eq!(same.models.get("k1").map(String::as_str), Some("{}"));
        assert!(same.parsed("k2"));
        let other = Cache::read(&path, "etlm 2 DataFusion".into());
        assert!(other.models.is_empty() && !other.parsed("k2"));
        let missing = Cache::read(&dir.path().join("nothing"), "etlm 1 DataFusion".into());
        assert!(missing.models.is_empty());
    }
    #[test]
    fn the_same_entries_are_written_the_same_way_whatever_their_order() {
        let text = |keys: &[&str]| {
            let mut cache = Cache::new("etlm 1 DataFusion".into());
            for key in keys {
                cache.keep_model(format!("m{key}"), format!("{{\"k\":\"{key}\"}}"));
                cache.keep_parsed(format!("t{key}"));
            }
            let mut text = Vec::new();
            cache.write(&mut text).unwrap();
            String::from_utf8(text).unwrap()
        };
        let keys: Vec<String> = (0..200).map(|i| format!("{:03}", (i * 37) % 200)).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut reversed = keys.clone();
        reversed.reverse();
        let written = text(&keys);
        assert_eq!(written, text(&reversed));
        assert!(written.lines().nth(1).unwrap().starts_with("m m000 "), "{written}");
    }
}
