//! Schema migrations of the engine's trees, keyed by the codec's version byte and run when
//! the store opens. The product's features migrate their own trees the same way from
//! their `store.rs`, with [`step`] and their own version key in the `meta` tree.
//!
//! Every stored value starts with the schema version that wrote it. A migration step
//! rewrites the values of one version into the next, tree by tree; `meta/schema_version`
//! records the version the whole store has reached, so an up-to-date store pays one
//! read at open. Each value is converted on its own and the version byte says whether it
//! still needs converting, so a migration interrupted by a crash simply continues at
//! the next open. A store written by a newer build is refused rather than guessed at.
//!
//! Versions:
//! - 1: the first release.
//! - 2: customers gained `status` (active, paused, cancelled) and `updated` (migrated by
//!   `src/accounts/store.rs`); every engine value kept its layout and is only re-tagged.

use crate::codec::{CodecError, SCHEMA_VERSION};
use crate::store::{Result, StoreError};

pub const META_TREE: &str = "meta";
const VERSION_KEY: &[u8] = b"schema_version";

/// Trees whose values go through the codec (the others hold empty values, counters or
/// compressed chunks with their own inner version bytes).
const CODEC_TREES: [&str; 6] = ["papers", "aliases", "authors", "forecast_log", "audit", "ambiguous_aliases"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    pub from: u8,
    pub to: u8,
    pub migrated: u64,
}

/// Brings every value of `db` to [`SCHEMA_VERSION`].
pub fn migrate(db: &sled::Db) -> Result<MigrationReport> {
    let meta = db.open_tree(META_TREE)?;
    let recorded = meta.get(VERSION_KEY)?.and_then(|v| v.first().copied());
    let empty = db.open_tree("papers")?.is_empty();
    // Stores from before the meta tree existed were written by version 1.
    let from = recorded.unwrap_or(if empty { SCHEMA_VERSION } else { 1 });
    if from > SCHEMA_VERSION {
        return Err(StoreError::Codec(CodecError::UnknownVersion { found: from }));
    }
    let mut report = MigrationReport { from, to: SCHEMA_VERSION, migrated: 0 };
    if from < SCHEMA_VERSION {
        for version in from..SCHEMA_VERSION {
            for name in CODEC_TREES {
                report.migrated += step(&db.open_tree(name)?, version, None)?;
            }
        }
        db.flush()?;
    }
    if recorded != Some(SCHEMA_VERSION) {
        meta.insert(VERSION_KEY, &[SCHEMA_VERSION])?;
        meta.flush()?;
    }
    Ok(report)
}

/// Turns a value's bytes of one schema version into the encoding of the next.
pub type Convert<'a> = &'a dyn Fn(&[u8]) -> Result<Vec<u8>>;

/// Rewrites the values of `tree` written by `version` as `version + 1`: through `convert`
/// when their layout changed, else by moving the version byte on. Each value is
/// converted on its own (compare-and-swap), so an interrupted run resumes.
pub fn step(tree: &sled::Tree, version: u8, convert: Option<Convert>) -> Result<u64> {
    let mut n = 0;
    for kv in tree.iter() {
        let (k, v) = kv?;
        if v.first() != Some(&version) {
            continue;
        }
        let new = match convert {
            Some(f) => f(&v)?,
            None => {
                let mut bytes = v.to_vec();
                bytes[0] = version + 1;
                bytes
            }
        };
        // Compare-and-swap: a value rewritten meanwhile is left as it is.
        let _ = tree.compare_and_swap(&k, Some(&v), Some(new))?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_store_is_refused_and_a_fresh_one_is_tagged() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        assert_eq!(migrate(&db).unwrap().migrated, 0);
        assert_eq!(
            db.open_tree(META_TREE).unwrap().get(VERSION_KEY).unwrap().unwrap().as_ref(),
            [SCHEMA_VERSION]
        );
        db.open_tree(META_TREE).unwrap().insert(VERSION_KEY, &[SCHEMA_VERSION + 1]).unwrap();
        assert!(migrate(&db).is_err());
    }

    #[test]
    fn version_1_values_are_retagged() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let mut paper = crate::codec::encode(&"hep-th/1".to_string()).unwrap();
        paper[0] = 1;
        db.open_tree("aliases").unwrap().insert("1", paper).unwrap();
        db.open_tree("papers").unwrap().insert("x", vec![1u8]).unwrap();
        let r = migrate(&db).unwrap();
        assert_eq!((r.from, r.to), (1, SCHEMA_VERSION));
        let a: String =
            crate::codec::decode(&db.open_tree("aliases").unwrap().get("1").unwrap().unwrap()).unwrap();
        assert_eq!(a, "hep-th/1");
        assert_eq!(migrate(&db).unwrap().migrated, 0, "a second open has nothing to do");
    }
}
