//! The pricing trees (JSON values): `pricing_experiments` (id → experiment),
//! `pricing_exposures` (experiment · 0 · visitor → the variant shown, and the customer the
//! visitor became), `pricing_visitors` (visitor → what their latest `/pricing` showed),
//! `pricing_customers` (customer → the prices recorded at sign-up, which billing charges)
//! and `pricing_meta` (the id counter and the running experiment).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::experiment::{Experiment, ExperimentDraft, PriceTable};
use super::PricingError;
use crate::accounts::tiers::Tiers;

type Result<T> = std::result::Result<T, PricingError>;

const RUNNING: &[u8] = b"running";
const COUNTER: &[u8] = b"next_experiment";

/// A visitor shown a variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exposure {
    pub variant: String,
    /// First shown (unix seconds).
    pub at: i64,
    /// The customer the visitor became, once they confirmed a sign-up.
    pub customer: Option<String>,
}

/// What a visitor's latest look at `/pricing` showed: a variant, or the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastView {
    pub experiment: Option<String>,
    pub variant: Option<String>,
}

/// The prices a customer saw when they signed up, and pays from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceLock {
    pub experiment: String,
    pub variant: String,
    pub prices: PriceTable,
    pub at: i64,
}

#[derive(Clone)]
pub struct PricingStore {
    experiments: sled::Tree,
    exposures: sled::Tree,
    visitors: sled::Tree,
    customers: sled::Tree,
    meta: sled::Tree,
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| PricingError::Corrupt(format!("{what}: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("pricing records serialise")
}

fn exposure_key(experiment: &str, visitor: &str) -> Vec<u8> {
    let mut k = experiment.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(visitor.as_bytes());
    k
}

impl PricingStore {
    pub fn open(db: &sled::Db) -> Result<PricingStore> {
        Ok(PricingStore {
            experiments: db.open_tree("pricing_experiments")?,
            exposures: db.open_tree("pricing_exposures")?,
            visitors: db.open_tree("pricing_visitors")?,
            customers: db.open_tree("pricing_customers")?,
            meta: db.open_tree("pricing_meta")?,
        })
    }

    /// Registers `draft` (validated against `tiers`) and starts it at `now`; one
    /// experiment runs at a time, so two cannot split the same visitors.
    pub fn create(&self, draft: ExperimentDraft, tiers: &Tiers, now: i64, actor: &str) -> Result<Experiment> {
        // Validate once outside the transaction so a bad draft touches nothing.
        draft.clone().register("exp_000000", tiers, now, actor)?;
        let result = (&self.experiments, &self.meta).transaction(|(experiments, meta)| {
            if let Some(running) = meta.get(RUNNING)? {
                let id = String::from_utf8_lossy(&running).into_owned();
                return Err(ConflictableTransactionError::Abort(PricingError::Conflict(format!(
                    "experiment '{id}' is running; stop it before starting another (one at a time keeps the visitors' split clean)"
                ))));
            }
            let n = meta.get(COUNTER)?.and_then(|v| v.as_ref().try_into().ok()).map(u64::from_be_bytes).unwrap_or(0) + 1;
            let id = format!("exp_{n:06}");
            let exp = draft
                .clone()
                .register(&id, tiers, now, actor)
                .map_err(ConflictableTransactionError::Abort)?;
            meta.insert(COUNTER, &n.to_be_bytes())?;
            meta.insert(RUNNING, id.as_bytes())?;
            experiments.insert(id.as_bytes(), encode(&exp))?;
            Ok(exp)
        });
        match result {
            Ok(e) => Ok(e),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Stops the experiment at `now`: from then on `/pricing` shows the table.
    pub fn stop(&self, id: &str, now: i64) -> Result<Experiment> {
        let result = (&self.experiments, &self.meta).transaction(|(experiments, meta)| {
            let Some(v) = experiments.get(id.as_bytes())? else {
                return Err(ConflictableTransactionError::Abort(PricingError::NotFound(id.to_string())));
            };
            let mut exp: Experiment =
                decode(&v, "experiment").map_err(ConflictableTransactionError::Abort)?;
            if exp.stopped.is_some() {
                return Err(ConflictableTransactionError::Abort(PricingError::Conflict(format!(
                    "experiment '{id}' is already stopped"
                ))));
            }
            exp.stopped = Some(now);
            experiments.insert(id.as_bytes(), encode(&exp))?;
            if meta.get(RUNNING)?.is_some_and(|r| r.as_ref() == id.as_bytes()) {
                meta.remove(RUNNING)?;
            }
            Ok(exp)
        });
        match result {
            Ok(e) => Ok(e),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    pub fn experiment(&self, id: &str) -> Result<Option<Experiment>> {
        self.experiments.get(id.as_bytes())?.map(|v| decode(&v, "experiment")).transpose()
    }

    /// Every experiment, oldest first.
    pub fn experiments(&self) -> Result<Vec<Experiment>> {
        self.experiments.iter().map(|kv| decode(&kv?.1, "experiment")).collect()
    }

    /// The running experiment, if any.
    pub fn running(&self) -> Result<Option<Experiment>> {
        match self.meta.get(RUNNING)? {
            Some(id) => self.experiment(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// Records what `visitor` was shown: a variant of `experiment` (the first showing is
    /// the exposure), or the table (`None`). Writes only what changed.
    pub fn record_view(&self, visitor: &str, shown: Option<(&str, &str)>, now: i64) -> Result<()> {
        if let Some((experiment, variant)) = shown {
            let exposure = Exposure { variant: variant.to_string(), at: now, customer: None };
            // The first exposure stands; a visit again is not a second exposure.
            let _ = self.exposures.compare_and_swap(
                exposure_key(experiment, visitor),
                None as Option<&[u8]>,
                Some(encode(&exposure)),
            )?;
        }
        let view =
            LastView { experiment: shown.map(|s| s.0.to_string()), variant: shown.map(|s| s.1.to_string()) };
        let current: Option<LastView> =
            self.visitors.get(visitor.as_bytes())?.map(|v| decode(&v, "visitor")).transpose()?;
        let unseen_table = current.is_none() && shown.is_none();
        if current.as_ref() != Some(&view) && !unseen_table {
            self.visitors.insert(visitor.as_bytes(), encode(&view))?;
        }
        Ok(())
    }

    /// `customer` signed up after `visitor`'s latest look at `/pricing`: when that showed
    /// a variant, its prices are recorded for the customer (once: a lock stands) and the
    /// sign-up counts for the variant. Answers the lock.
    pub fn record_signup(&self, visitor: &str, customer: &str, now: i64) -> Result<Option<PriceLock>> {
        let Some(view) = self.visitors.get(visitor.as_bytes())? else { return Ok(None) };
        let view: LastView = decode(&view, "visitor")?;
        let (Some(exp_id), Some(variant)) = (view.experiment, view.variant) else { return Ok(None) };
        let Some(exp) = self.experiment(&exp_id)? else { return Ok(None) };
        let Some(v) = exp.variant(&variant) else { return Ok(None) };
        if let Some(existing) = self.lock(customer)? {
            return Ok(Some(existing));
        }
        let lock = PriceLock {
            experiment: exp_id.clone(),
            variant: variant.clone(),
            prices: v.prices.clone(),
            at: now,
        };
        self.customers.insert(customer.as_bytes(), encode(&lock))?;
        let key = exposure_key(&exp_id, visitor);
        let mut exposure = match self.exposures.get(&key)? {
            Some(e) => decode(&e, "exposure")?,
            None => Exposure { variant: variant.clone(), at: now, customer: None },
        };
        if exposure.customer.is_none() {
            exposure.customer = Some(customer.to_string());
            self.exposures.insert(key, encode(&exposure))?;
        }
        Ok(Some(lock))
    }

    /// The prices recorded for `customer` at sign-up.
    pub fn lock(&self, customer: &str) -> Result<Option<PriceLock>> {
        self.customers.get(customer.as_bytes())?.map(|v| decode(&v, "price lock")).transpose()
    }

    /// Every customer's recorded prices.
    pub fn locks(&self) -> Result<BTreeMap<String, PriceLock>> {
        self.customers
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Ok((String::from_utf8_lossy(&k).into_owned(), decode(&v, "price lock")?))
            })
            .collect()
    }

    /// The exposures of `experiment`: (variant, customer the visitor became).
    pub fn exposures(&self, experiment: &str) -> Result<Vec<(String, Option<String>)>> {
        let mut prefix = experiment.as_bytes().to_vec();
        prefix.push(0);
        self.exposures
            .scan_prefix(prefix)
            .map(|kv| {
                let e: Exposure = decode(&kv?.1, "exposure")?;
                Ok((e.variant, e.customer))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> ExperimentDraft {
        serde_json::from_value(serde_json::json!({
            "name": "Pro at $39",
            "variants": [{"id": "control"}, {"id": "lower", "prices": {"pro": {"monthly_usd": 39}}}],
            "stopping_rule": {"min_exposures_per_variant": 10, "horizon_days": 14},
        }))
        .unwrap()
    }

    #[test]
    fn one_running_experiment_exposures_once_and_the_price_seen_is_locked() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let s = PricingStore::open(&db).unwrap();
        let tiers = Tiers::builtin();
        // A bad draft stores nothing, not even an id.
        let mut bad = draft();
        bad.variants.truncate(1);
        assert!(matches!(s.create(bad, &tiers, 1, "op"), Err(PricingError::Invalid(_))));
        assert!(s.experiments().unwrap().is_empty());
        let exp = s.create(draft(), &tiers, 1, "op").unwrap();
        assert_eq!(exp.id, "exp_000001");
        assert!(matches!(s.create(draft(), &tiers, 2, "op"), Err(PricingError::Conflict(_))));
        // Two views of one visitor are one exposure; a visitor who saw the table is not locked.
        s.record_view("v1", Some((&exp.id, "lower")), 10).unwrap();
        s.record_view("v1", Some((&exp.id, "lower")), 11).unwrap();
        s.record_view("v2", Some((&exp.id, "control")), 12).unwrap();
        s.record_view("v3", None, 13).unwrap();
        assert_eq!(s.exposures(&exp.id).unwrap().len(), 2);
        assert_eq!(s.record_signup("v3", "cus_c", 20).unwrap(), None);
        assert_eq!(s.record_signup("nobody", "cus_n", 20).unwrap(), None);
        let lock = s.record_signup("v1", "cus_a", 20).unwrap().unwrap();
        assert_eq!(lock.prices["pro"].monthly_minor, 3_900);
        assert_eq!(s.lock("cus_a").unwrap(), Some(lock.clone()));
        // After the stop, the lock stands and a new look at the table changes nothing for it.
        s.stop(&exp.id, 30).unwrap();
        assert!(s.running().unwrap().is_none());
        assert!(matches!(s.stop(&exp.id, 31), Err(PricingError::Conflict(_))));
        assert_eq!(s.locks().unwrap()["cus_a"], lock);
        let exposures = s.exposures(&exp.id).unwrap();
        assert!(exposures.contains(&("lower".to_string(), Some("cus_a".to_string()))));
        // The next experiment gets the next id.
        assert_eq!(s.create(draft(), &tiers, 40, "op").unwrap().id, "exp_000002");
    }
}
