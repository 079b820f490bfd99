//! Schema migrations, keyed by the codec's version byte and run when the store opens.
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
//! - 2: customers gained `status` (active, paused, cancelled) and `updated`; every
//!   other value kept its layout and is only re-tagged.

use crate::accounts::{Customer, CustomerV1};
use crate::codec::{self, CodecError, SCHEMA_VERSION};
use crate::store::{Result, StoreError};

const META_TREE: &str = "meta";
const VERSION_KEY: &[u8] = b"schema_version";

/// Trees whose values go through the codec (the others hold empty values, counters or
/// compressed chunks with their own inner version bytes).
const CODEC_TREES: [&str; 7] =
    ["papers", "aliases", "authors", "customers", "api_keys", "forecast_log", "audit"];

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
    let empty = db.open_tree("papers")?.is_empty() && db.open_tree("customers")?.is_empty();
    // Stores from before the meta tree existed were written by version 1.
    let from = recorded.unwrap_or(if empty { SCHEMA_VERSION } else { 1 });
    if from > SCHEMA_VERSION {
        return Err(StoreError::Codec(CodecError::UnknownVersion { found: from }));
    }
    let mut report = MigrationReport { from, to: SCHEMA_VERSION, migrated: 0 };
    if from < SCHEMA_VERSION {
        for version in from..SCHEMA_VERSION {
            for name in CODEC_TREES {
                report.migrated += step(&db.open_tree(name)?, name, version)?;
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

/// Rewrites the values of `tree` written by `version` as `version + 1`.
fn step(tree: &sled::Tree, name: &str, version: u8) -> Result<u64> {
    let mut n = 0;
    for kv in tree.iter() {
        let (k, v) = kv?;
        if v.first() != Some(&version) {
            continue;
        }
        let new = match (version, name) {
            (1, "customers") => {
                let old: CustomerV1 = codec::decode_version(&v, 1)?;
                codec::encode(&Customer::from(old))?
            }
            // Unchanged layout: only the version byte moves on.
            _ => {
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
    fn version_1_customers_gain_their_new_fields() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let old = CustomerV1 {
            id: "cus_1".into(),
            name: "A".into(),
            email: "a@x.org".into(),
            tier: "pro".into(),
            created: 7,
        };
        let mut bytes = vec![1u8];
        bytes.extend(bincode::serde::encode_to_vec(&old, bincode::config::standard()).unwrap());
        db.open_tree("customers").unwrap().insert("cus_1", bytes).unwrap();
        let mut paper = codec::encode(&"hep-th/1".to_string()).unwrap();
        paper[0] = 1;
        db.open_tree("aliases").unwrap().insert("1", paper).unwrap();
        let r = migrate(&db).unwrap();
        assert_eq!((r.from, r.to, r.migrated), (1, SCHEMA_VERSION, 2));
        let c: Customer =
            codec::decode(&db.open_tree("customers").unwrap().get("cus_1").unwrap().unwrap()).unwrap();
        assert_eq!(
            (c.status, c.updated, c.tier.as_str()),
            (crate::accounts::CustomerStatus::Active, 7, "pro")
        );
        let a: String = codec::decode(&db.open_tree("aliases").unwrap().get("1").unwrap().unwrap()).unwrap();
        assert_eq!(a, "hep-th/1");
        assert_eq!(migrate(&db).unwrap().migrated, 0, "a second open has nothing to do");
    }
}
