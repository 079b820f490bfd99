//! Prices as people see them: `/pricing` (the tier table, monthly and annual with the
//! annual discount, limits and batch sizes; Enterprise by contract) and `/sla`, the
//! service levels Enterprise contracts promise. Pricing experiments (issue 11) will live
//! here too.

pub mod routes;

use crate::accounts::tiers::Tier;

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
    let saving = match (t.price_monthly_usd, t.price_annual_usd) {
        (Some(m), Some(a)) if m > 0 && a < m * 12 => {
            let pct = ((m * 12 - a) as f64 / (m * 12) as f64 * 100.0).round();
            Some(format!("save {pct:.0} % (${} a year)", m * 12 - a))
        }
        _ => None,
    };
    PlanView {
        id: t.id.clone(),
        name: t.name.clone(),
        monthly: t.price_monthly_usd.map(|p| format!("${p}")),
        annual: t.price_annual_usd.map(|p| format!("${p}")),
        annual_saving: saving,
        daily: thousands(t.daily),
        per_minute: t.per_minute,
        max_batch: t.max_batch,
        max_keys: t.max_keys,
        forecasts: t.allows(crate::accounts::tiers::Group::Forecasts),
        free: t.price_monthly_usd == Some(0),
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
