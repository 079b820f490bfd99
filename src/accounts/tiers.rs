//! API tiers: limits, allowed endpoint groups and prices, in one table
//! (`src/accounts/tiers.json`, compiled in; `--tiers FILE` replaces it).

use std::path::Path;

use crate::accounts::limits::TierLimits;
use serde::{Deserialize, Serialize};

/// What an endpoint is, for tier permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Papers,
    Search,
    Authors,
    Forecasts,
    Account,
    /// The API's own description (OpenAPI, docs).
    Meta,
}

impl Group {
    pub fn label(self) -> &'static str {
        match self {
            Group::Papers => "paper",
            Group::Search => "search",
            Group::Authors => "author",
            Group::Forecasts => "forecast",
            Group::Account => "account",
            Group::Meta => "documentation",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub id: String,
    pub name: String,
    pub per_minute: u32,
    pub burst: u32,
    pub daily: u64,
    /// Most ids in one batch request.
    pub max_batch: usize,
    pub endpoints: Vec<Group>,
    /// Most active (unrevoked) API keys a customer on this tier may hold. Limits and
    /// quotas belong to the customer, so extra keys add no allowance; the cap keeps
    /// key listings and authentication caches bounded.
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
    /// `None`: priced per contract.
    pub price_monthly_usd: Option<u32>,
    pub price_annual_usd: Option<u32>,
}

fn default_max_keys() -> usize {
    10
}

impl Tier {
    pub fn allows(&self, group: Group) -> bool {
        self.endpoints.contains(&group)
    }

    pub fn limits(&self) -> TierLimits {
        TierLimits {
            tier: self.id.clone(),
            per_minute: self.per_minute,
            burst: self.burst,
            daily: self.daily,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tiers {
    /// Calls without a key, limited per client IP.
    pub anonymous: Tier,
    /// Paid and free plans, cheapest first.
    pub tiers: Vec<Tier>,
}

impl Tiers {
    pub fn builtin() -> Tiers {
        serde_json::from_str(include_str!("tiers.json")).expect("src/accounts/tiers.json is valid")
    }

    pub fn load(path: &Path) -> Result<Tiers, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let tiers: Tiers = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        tiers.validate().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(tiers)
    }

    fn validate(&self) -> Result<(), String> {
        if self.tiers.is_empty() {
            return Err("at least one tier is needed".into());
        }
        for t in self.all() {
            if t.per_minute == 0 || t.burst == 0 {
                return Err(format!("tier '{}': per_minute and burst must be positive", t.id));
            }
        }
        Ok(())
    }

    pub fn all(&self) -> impl Iterator<Item = &Tier> {
        std::iter::once(&self.anonymous).chain(self.tiers.iter())
    }

    pub fn get(&self, id: &str) -> Option<&Tier> {
        self.all().find(|t| t.id == id)
    }

    /// The cheapest paid tier above `id` that is more generous, to name in a 429 or 403.
    pub fn upgrade_from(&self, id: &str, group: Option<Group>) -> Option<&Tier> {
        let current = self.get(id)?;
        self.tiers.iter().find(|t| {
            t.id != id
                && t.per_minute >= current.per_minute
                && t.daily >= current.daily
                && (t.per_minute > current.per_minute || t.daily > current.daily || group.is_some())
                && group.is_none_or(|g| t.allows(g))
        })
    }

    pub fn limits(&self) -> Vec<TierLimits> {
        self.all().map(Tier::limits).collect()
    }

    /// The tier new customers get when none is named.
    pub fn default_tier(&self) -> &Tier {
        &self.tiers[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_is_consistent() {
        let t = Tiers::builtin();
        t.validate().unwrap();
        assert_eq!(t.default_tier().id, "free");
        assert_eq!(t.upgrade_from("free", None).unwrap().id, "pro");
        assert_eq!(t.upgrade_from("anonymous", Some(Group::Forecasts)).unwrap().id, "free");
        assert!(t.upgrade_from("enterprise", None).is_none());
        assert!(!t.get("anonymous").unwrap().allows(Group::Forecasts));
    }
}
