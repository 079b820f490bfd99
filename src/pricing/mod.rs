//! Prices as people see them: `/pricing` (the tier table, monthly and annual with the
//! annual discount, limits and batch sizes; Enterprise by contract) and `/sla`, the
//! service levels Enterprise contracts promise.
//!
//! Pricing experiments (issue 11): an operator registers variants of the page (prices,
//! annual discount, headline) with a stopping rule ([`experiment`]); each visitor sees
//! one variant, the same on every visit; the prices a visitor saw are recorded for the
//! customer they become, and billing charges those ([`customer_prices`]). The report
//! ([`experiment::report`], [`stats`]) says whether the rule allows a decision yet.

pub mod admin;
pub mod error;
pub mod experiment;
pub mod routes;
pub mod stats;
pub mod store;

use std::collections::BTreeMap;

use crate::accounts::tiers::Tier;
pub use error::PricingError;
pub use experiment::{PriceTable, TierPrice};
pub use store::PricingStore;

/// The prices recorded for `customer_id` when they signed up under a pricing
/// experiment's variant, by tier; `None`: they pay the tier table's.
pub fn customer_prices(db: &sled::Db, customer_id: &str) -> Result<Option<PriceTable>, PricingError> {
    Ok(PricingStore::open(db)?.lock(customer_id)?.map(|l| l.prices))
}

/// Every customer's recorded prices (for the daily billing run).
pub fn all_customer_prices(db: &sled::Db) -> Result<BTreeMap<String, PriceTable>, PricingError> {
    Ok(PricingStore::open(db)?.locks()?.into_iter().map(|(c, l)| (c, l.prices)).collect())
}

/// The report of experiment `id` at `now`; `paid` says whether a customer has paid an
/// invoice (billing's records: a first payment, whoever marked it paid).
pub fn experiment_report(
    db: &sled::Db,
    id: &str,
    paid: impl Fn(&str) -> bool,
    now: i64,
) -> Result<experiment::Report, PricingError> {
    let store = PricingStore::open(db)?;
    let exp = store.experiment(id)?.ok_or_else(|| PricingError::NotFound(id.to_string()))?;
    let mut counts: BTreeMap<String, experiment::Counts> = BTreeMap::new();
    for (variant, customer) in store.exposures(id)? {
        let c = counts.entry(variant).or_default();
        c.exposures += 1;
        if let Some(customer) = customer {
            c.signups += 1;
            if paid(&customer) {
                c.first_payments += 1;
            }
        }
    }
    Ok(experiment::report(&exp, &counts, now))
}

/// One plan's column on the pricing page.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanView {
    pub id: String,
    pub name: String,
    /// "$49" per month, or `None` for contract pricing.
    pub monthly: Option<String>,
    pub annual: Option<String>,
    /// "2 months free" style saving of the annual price against 12 monthly payments.
    pub annual_saving: Option<String>,
    pub daily: String,
    pub per_minute: u32,
    pub max_batch: usize,
    pub max_keys: usize,
    pub forecasts: bool,
    pub free: bool,
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn plan_view(t: &Tier) -> PlanView {
    plan_view_priced(t, None)
}

/// "$49", or "$49.50" when there are cents.
fn dollars(minor: i64) -> String {
    if minor % 100 == 0 {
        format!("${}", minor / 100)
    } else {
        format!("${}.{:02}", minor / 100, minor % 100)
    }
}

/// A plan's column at `price` (a variant's, or a customer's recorded one) instead of
/// the table's.
pub fn plan_view_priced(t: &Tier, price: Option<&TierPrice>) -> PlanView {
    let cents = |usd: Option<u32>| usd.map(|p| p as i64 * 100);
    let (monthly, annual) = match price {
        Some(p) => (Some(p.monthly_minor), Some(p.annual_minor)),
        None => (cents(t.price_monthly_usd), cents(t.price_annual_usd)),
    };
    let saving = match (monthly, annual) {
        (Some(m), Some(a)) if m > 0 && a < m * 12 => {
            let pct = ((m * 12 - a) as f64 / (m * 12) as f64 * 100.0).round();
            Some(format!("save {pct:.0} % ({} a year)", dollars(m * 12 - a)))
        }
        _ => None,
    };
    PlanView {
        id: t.id.clone(),
        name: t.name.clone(),
        monthly: monthly.map(dollars),
        annual: annual.map(dollars),
        annual_saving: saving,
        daily: thousands(t.daily),
        per_minute: t.per_minute,
        max_batch: t.max_batch,
        max_keys: t.max_keys,
        forecasts: t.allows(crate::accounts::tiers::Group::Forecasts),
        free: monthly == Some(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::tiers::Tiers;

    #[test]
    fn the_table_shows_prices_savings_and_contracts() {
        let tiers = Tiers::builtin();
        let pro = plan_view(tiers.get("pro").unwrap());
        assert_eq!(pro.monthly.as_deref(), Some("$49"));
        assert_eq!(pro.annual.as_deref(), Some("$490"));
        assert_eq!(pro.annual_saving.as_deref(), Some("save 17 % ($98 a year)"));
        assert_eq!(pro.daily, "100,000");
        let ent = plan_view(tiers.get("enterprise").unwrap());
        assert!(ent.monthly.is_none() && ent.annual_saving.is_none());
        assert!(plan_view(tiers.get("free").unwrap()).free);
    }
}
