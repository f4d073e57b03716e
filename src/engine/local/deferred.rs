//! Relations another warehouse lends to this one (`--defer`). A build that reads its
//! unselected models from another build's warehouse records them in
//! `<root>/.deferred.json`, so later sessions here (`etlm show`, `etlm test`, and views
//! built over them) read them too, wherever this warehouse has no relation of that name.
//!
//! Only names are recorded, never version directories: each session resolves the other
//! warehouse's current version, which that warehouse's own runs replace and sweep.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::storage::{StorageError, StoredRelation, Warehouse};

/// The file under the warehouse root listing the lent relations.
pub const DEFERRED_FILE: &str = ".deferred.json";

/// A relation read from another warehouse under the name this project uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lent {
    /// Schema this project's SQL reads it in.
    pub schema: String,
    /// Name this project's SQL reads it by.
    pub name: String,
    /// The other warehouse's root.
    pub warehouse: PathBuf,
    /// Its schema there.
    pub stored_schema: String,
    /// Its name there.
    pub stored_name: String,
}

/// Replaces the list of lent relations of the warehouse at `root` (a write under the
/// writer lock: a temporary file renamed over the old list).
pub fn record(root: &Path, relations: &[Lent]) -> Result<(), StorageError> {
    let path = root.join(DEFERRED_FILE);
    let tmp = root.join(format!("{DEFERRED_FILE}.tmp"));
    let text = serde_json::to_string_pretty(relations).expect("deferred relations serialize");
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| StorageError::Io { action, path, source }
    };
    std::fs::write(&tmp, text).map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("rename", &path))
}

/// The relations recorded for the warehouse at `root` (none without the file; an
/// unreadable list counts as none, since it only lends, never owns, data).
pub fn recorded(root: &Path) -> Vec<Lent> {
    std::fs::read(root.join(DEFERRED_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Each deferred relation as published in its warehouse now, named as this project reads
/// it, in the order given. One the other warehouse does not have (or a warehouse that is
/// gone) is left out.
pub fn resolve(relations: &[Lent]) -> Result<Vec<StoredRelation>, StorageError> {
    let mut found = Vec::new();
    for d in relations.iter().filter(|d| d.warehouse.is_dir()) {
        let other = Warehouse::open(&d.warehouse)?;
        if let Some(mut stored) = other.relation(&d.stored_schema, &d.stored_name)? {
            stored.schema = d.schema.clone();
            stored.name = d.name.clone();
            found.push(stored);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::local::test_warehouse;

    #[test]
    fn recorded_relations_round_trip_and_a_missing_list_is_empty() {
        let (_temp, wh) = test_warehouse();
        assert!(recorded(wh.root()).is_empty());
        let list = vec![Lent {
            schema: "main".into(),
            name: "orders".into(),
            warehouse: "/elsewhere/warehouse".into(),
            stored_schema: "prod".into(),
            stored_name: "orders".into(),
        }];
        record(wh.root(), &list).unwrap();
        assert_eq!(recorded(wh.root()), list);
        assert!(resolve(&list).unwrap().is_empty(), "a warehouse that is gone lends nothing");
    }
}
