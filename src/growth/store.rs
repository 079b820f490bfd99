//! The growth trees (JSON values): `growth_refusals` (customer · 0 · day BE · kind →
//! that day's count of refusals of the kind, and the largest batch refused) and
//! `growth_triggers` (customer · 0 · kind → when the trigger first and last fired, the
//! tier then, the last e-mail and the conversion).

use std::collections::BTreeMap;

use citecast_actors::dates::Day;
use serde::{Deserialize, Serialize};

use super::{GrowthError, Refusal, RefusalDay, TriggerKind};

type Result<T> = std::result::Result<T, GrowthError>;

/// A trigger's history for one customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerRecord {
    pub first_at: i64,
    pub last_at: i64,
    /// The customer's tier when it first fired (an upgrade is a higher tier than this).
    pub tier_at_first: String,
    /// The tier offered.
    pub offered: String,
    pub last_mailed: Option<i64>,
    pub mails: u32,
    /// When the daily job first saw the customer on a higher tier.
    pub converted_at: Option<i64>,
}

#[derive(Clone)]
pub struct GrowthStore {
    refusals: sled::Tree,
    triggers: sled::Tree,
}

fn kind_byte(k: TriggerKind) -> u8 {
    match k {
        TriggerKind::Quota => 0,
        TriggerKind::RateLimited => 1,
        TriggerKind::BatchRefused => 2,
        TriggerKind::ForecastForbidden => 3,
    }
}

fn kind_of(b: u8) -> Option<TriggerKind> {
    TriggerKind::ALL.into_iter().find(|k| kind_byte(*k) == b)
}

fn prefix(customer: &str) -> Vec<u8> {
    let mut k = customer.as_bytes().to_vec();
    k.push(0);
    k
}

fn refusal_key(customer: &str, day: Day, kind: TriggerKind) -> Vec<u8> {
    let mut k = prefix(customer);
    k.extend_from_slice(&day.to_be_bytes());
    k.push(kind_byte(kind));
    k
}

fn trigger_key(customer: &str, kind: TriggerKind) -> Vec<u8> {
    let mut k = prefix(customer);
    k.push(kind_byte(kind));
    k
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| GrowthError::Corrupt(format!("{what}: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("growth records serialise")
}

impl GrowthStore {
    pub fn open(db: &sled::Db) -> Result<GrowthStore> {
        Ok(GrowthStore {
            refusals: db.open_tree("growth_refusals")?,
            triggers: db.open_tree("growth_triggers")?,
        })
    }

    /// Counts one refusal of `customer` on `day` (one key update, no scan).
    pub fn note(&self, customer: &str, day: Day, refusal: Refusal) -> Result<()> {
        let asked = match refusal {
            Refusal::BatchRefused { asked } => asked,
            _ => 0,
        };
        self.refusals.update_and_fetch(refusal_key(customer, day, refusal.kind()), |old| {
            let mut r: RefusalDay = old.and_then(|v| serde_json::from_slice(v).ok()).unwrap_or_default();
            r.count += 1;
            r.largest = r.largest.max(asked);
            Some(encode(&r))
        })?;
        Ok(())
    }

    /// `customer`'s refusals from `from` on, by day and kind.
    pub fn refusals(&self, customer: &str, from: Day) -> Result<BTreeMap<(Day, TriggerKind), RefusalDay>> {
        let mut out = BTreeMap::new();
        let start = refusal_key(customer, from, TriggerKind::Quota);
        let p = prefix(customer);
        for kv in self.refusals.range(start..) {
            let (k, v) = kv?;
            if !k.starts_with(&p) || k.len() != p.len() + 5 {
                break;
            }
            let day = Day::from_be_bytes(k[p.len()..p.len() + 4].try_into().expect("4 bytes"));
            if let Some(kind) = kind_of(k[p.len() + 4]) {
                out.insert((day, kind), decode(&v, "refusal day")?);
            }
        }
        Ok(out)
    }

    /// Drops refusal days before `before` (the daily job keeps a few weeks).
    pub fn prune(&self, before: Day) -> Result<u64> {
        let mut n = 0;
        for kv in self.refusals.iter() {
            let (k, _) = kv?;
            if k.len() >= 5 {
                let at = k.len() - 5;
                let day = Day::from_be_bytes(k[at..at + 4].try_into().expect("4 bytes"));
                if day < before {
                    self.refusals.remove(k)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    pub fn trigger(&self, customer: &str, kind: TriggerKind) -> Result<Option<TriggerRecord>> {
        self.triggers.get(trigger_key(customer, kind))?.map(|v| decode(&v, "trigger")).transpose()
    }

    /// Records that `kind` fired for `customer` at `now` (on tier `tier`, offering
    /// `offered`); answers the record.
    pub fn fired(
        &self,
        customer: &str,
        kind: TriggerKind,
        tier: &str,
        offered: &str,
        now: i64,
    ) -> Result<TriggerRecord> {
        let record = match self.trigger(customer, kind)? {
            Some(mut r) => {
                r.last_at = now;
                r
            }
            None => TriggerRecord {
                first_at: now,
                last_at: now,
                tier_at_first: tier.to_string(),
                offered: offered.to_string(),
                last_mailed: None,
                mails: 0,
                converted_at: None,
            },
        };
        self.triggers.insert(trigger_key(customer, kind), encode(&record))?;
        Ok(record)
    }

    pub fn put_trigger(&self, customer: &str, kind: TriggerKind, record: &TriggerRecord) -> Result<()> {
        self.triggers.insert(trigger_key(customer, kind), encode(record))?;
        Ok(())
    }

    /// Every trigger record: (customer, kind, record).
    pub fn triggers(&self) -> Result<Vec<(String, TriggerKind, TriggerRecord)>> {
        let mut out = Vec::new();
        for kv in self.triggers.iter() {
            let (k, v) = kv?;
            let Some((&b, rest)) = k.split_last() else { continue };
            let (Some(kind), Some((&0, customer))) = (kind_of(b), rest.split_last()) else { continue };
            out.push((String::from_utf8_lossy(customer).into_owned(), kind, decode(&v, "trigger")?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_count_per_day_and_kind() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let s = GrowthStore::open(&db).unwrap();
        s.note("cus_a", 100, Refusal::RateLimited).unwrap();
        s.note("cus_a", 100, Refusal::RateLimited).unwrap();
        s.note("cus_a", 101, Refusal::BatchRefused { asked: 40 }).unwrap();
        s.note("cus_a", 101, Refusal::BatchRefused { asked: 25 }).unwrap();
        s.note("cus_ab", 101, Refusal::RateLimited).unwrap();
        let r = s.refusals("cus_a", 95).unwrap();
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[&(100, TriggerKind::RateLimited)].count, 2);
        assert_eq!(r[&(101, TriggerKind::BatchRefused)], RefusalDay { count: 2, largest: 40 });
        assert_eq!(s.refusals("cus_a", 101).unwrap().len(), 1);
        assert_eq!(s.prune(101).unwrap(), 1);
        let rec = s.fired("cus_a", TriggerKind::Quota, "free", "pro", 5).unwrap();
        assert_eq!(
            s.fired("cus_a", TriggerKind::Quota, "pro", "enterprise", 9).unwrap().first_at,
            rec.first_at
        );
        let all = s.triggers().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].0.as_str(), all[0].1, all[0].2.last_at), ("cus_a", TriggerKind::Quota, 9));
    }
}
