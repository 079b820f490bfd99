//! Pricing experiments as plain logic: an operator's definition (variants of the pricing
//! page and a stopping rule registered before the first visitor), its validation against
//! the tier table, the stable assignment of a visitor to a variant, and the report:
//! conversion per variant with Wilson intervals, each variant against the control, and
//! whether the pre-registered rule allows a decision yet.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::stats::{self, Comparison, Rate};
use super::PricingError;
use crate::accounts::tiers::Tiers;

/// Most variants in one experiment (the control included).
pub const MAX_VARIANTS: usize = 4;
/// The overall significance level; split between the comparisons with the control.
pub const ALPHA: f64 = 0.05;

/// The prices of one self-serve paid tier, in minor units (cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierPrice {
    pub monthly_minor: i64,
    pub annual_minor: i64,
}

/// Prices by tier id: every self-serve paid tier of the table.
pub type PriceTable = BTreeMap<String, TierPrice>;

/// The table's own self-serve prices (tiers with a monthly price above 0).
pub fn table_prices(tiers: &Tiers) -> PriceTable {
    tiers
        .tiers
        .iter()
        .filter_map(|t| match (t.price_monthly_usd, t.price_annual_usd) {
            (Some(m), Some(a)) if m > 0 => Some((
                t.id.clone(),
                TierPrice { monthly_minor: m as i64 * 100, annual_minor: a as i64 * 100 },
            )),
            _ => None,
        })
        .collect()
}

/// What is measured against the exposures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// A confirmed sign-up.
    #[default]
    Signup,
    /// A paid invoice (after the trial).
    FirstPayment,
}

/// Registered with the experiment and never changed: a decision needs both the fixed
/// horizon to have passed and every variant to have its minimum sample. Nothing stops
/// the experiment early because a difference looks significant on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoppingRule {
    pub min_exposures_per_variant: u64,
    pub horizon_days: u32,
}

/// One tier's price in a variant as the operator writes it (whole dollars).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceDraft {
    pub monthly_usd: u32,
    #[serde(default)]
    pub annual_usd: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantDraft {
    pub id: String,
    #[serde(default)]
    pub headline: Option<String>,
    /// Tiers whose prices differ from the table; the others keep the table's.
    #[serde(default)]
    pub prices: BTreeMap<String, PriceDraft>,
    /// The annual price as a discount on twelve monthly payments, for every tier whose
    /// annual price is not given.
    #[serde(default)]
    pub annual_discount_pct: Option<u32>,
}

/// `POST /admin/pricing/experiments`'s body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentDraft {
    pub name: String,
    #[serde(default)]
    pub hypothesis: String,
    pub variants: Vec<VariantDraft>,
    pub stopping_rule: StoppingRule,
    #[serde(default)]
    pub primary_metric: Metric,
}

/// A variant as registered: its prices resolved against the table of that day, so a
/// later change to the table does not change what its visitors saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub id: String,
    pub headline: Option<String>,
    pub prices: PriceTable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    /// `exp_000001`.
    pub id: String,
    pub name: String,
    pub hypothesis: String,
    /// The first is the control.
    pub variants: Vec<Variant>,
    pub stopping_rule: StoppingRule,
    pub primary_metric: Metric,
    /// Unix seconds; visitors are assigned from then on.
    pub started: i64,
    pub stopped: Option<i64>,
    pub created_by: String,
}

impl Experiment {
    pub fn running(&self) -> bool {
        self.stopped.is_none()
    }

    /// When the fixed horizon ends (unix seconds).
    pub fn horizon_end(&self) -> i64 {
        self.started + self.stopping_rule.horizon_days as i64 * 86_400
    }

    pub fn variant(&self, id: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.id == id)
    }

    /// The variant `visitor` sees, the same on every visit: a hash of the experiment
    /// and the visitor's id, so nothing per visitor needs storing to keep it stable and
    /// the split does not depend on the order of arrival.
    pub fn assign(&self, visitor: &str) -> &Variant {
        let digest = Sha256::digest(format!("{}\0{visitor}", self.id).as_bytes());
        let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        &self.variants[(n % self.variants.len() as u64) as usize]
    }
}

fn invalid(msg: impl Into<String>) -> PricingError {
    PricingError::Invalid(msg.into())
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn plain_text(what: &str, s: &str, max: usize) -> Result<String, PricingError> {
    let s = s.trim();
    if s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(invalid(format!("'{what}' must be at most {max} characters of plain text on one line")));
    }
    Ok(s.to_string())
}

/// Rounds `num / den` half up (non-negative operands).
fn div_round(num: i64, den: i64) -> i64 {
    (2 * num + den) / (2 * den)
}

impl ExperimentDraft {
    /// Checks every field against `tiers` and registers the experiment as `id`, started
    /// at `now`; the message of a refusal names the field to fix.
    pub fn register(
        self,
        id: &str,
        tiers: &Tiers,
        now: i64,
        actor: &str,
    ) -> Result<Experiment, PricingError> {
        let name = plain_text("name", &self.name, 100)?;
        if name.is_empty() {
            return Err(invalid("'name' is required: say in a few words what is tried"));
        }
        let hypothesis = plain_text("hypothesis", &self.hypothesis, 500)?;
        if self.variants.len() < 2 || self.variants.len() > MAX_VARIANTS {
            return Err(invalid(format!(
                "'variants' must list 2 to {MAX_VARIANTS} variants (the first is the control), not {}",
                self.variants.len()
            )));
        }
        let rule = self.stopping_rule;
        if !(1..=10_000_000).contains(&rule.min_exposures_per_variant) {
            return Err(invalid("'stopping_rule.min_exposures_per_variant' must be 1 to 10000000"));
        }
        if !(1..=365).contains(&rule.horizon_days) {
            return Err(invalid("'stopping_rule.horizon_days' must be 1 to 365"));
        }
        let table = table_prices(tiers);
        let mut variants: Vec<Variant> = Vec::new();
        for (i, v) in self.variants.into_iter().enumerate() {
            let at = format!("variants[{i}]");
            if !is_slug(&v.id) {
                return Err(invalid(format!("'{at}.id' must be 1 to 32 lowercase letters, digits, - or _")));
            }
            if variants.iter().any(|o| o.id == v.id) {
                return Err(invalid(format!("'{at}.id' repeats '{}': each variant needs its own id", v.id)));
            }
            let headline = match &v.headline {
                Some(h) => Some(plain_text(&format!("{at}.headline"), h, 200)?).filter(|h| !h.is_empty()),
                None => None,
            };
            if let Some(pct) = v.annual_discount_pct {
                if pct > 50 {
                    return Err(invalid(format!("'{at}.annual_discount_pct' must be 0 to 50, not {pct}")));
                }
            }
            for tier in v.prices.keys() {
                if !table.contains_key(tier) {
                    let names: Vec<&str> = table.keys().map(String::as_str).collect();
                    return Err(invalid(format!(
                        "'{at}.prices' names '{tier}', which is not a self-serve paid tier; those are: {}",
                        names.join(", ")
                    )));
                }
            }
            let mut prices = PriceTable::new();
            for (tier, base) in &table {
                let given = v.prices.get(tier);
                let monthly = match given {
                    Some(p) if !(1..=100_000).contains(&p.monthly_usd) => {
                        return Err(invalid(format!("'{at}.prices.{tier}.monthly_usd' must be 1 to 100000")))
                    }
                    Some(p) => p.monthly_usd as i64 * 100,
                    None => base.monthly_minor,
                };
                let annual = match (given.and_then(|p| p.annual_usd), v.annual_discount_pct) {
                    (Some(a), _) => a as i64 * 100,
                    (None, Some(pct)) => div_round(monthly * 12 * (100 - pct as i64), 100),
                    // A new monthly price keeps the table's annual discount.
                    (None, None) => div_round(monthly * base.annual_minor, base.monthly_minor),
                };
                if annual <= 0 || annual > monthly * 12 {
                    return Err(invalid(format!(
                        "'{at}.prices.{tier}.annual_usd' must be above 0 and at most 12 monthly payments"
                    )));
                }
                prices.insert(tier.clone(), TierPrice { monthly_minor: monthly, annual_minor: annual });
            }
            variants.push(Variant { id: v.id, headline, prices });
        }
        Ok(Experiment {
            id: id.to_string(),
            name,
            hypothesis,
            variants,
            stopping_rule: rule,
            primary_metric: self.primary_metric,
            started: now,
            stopped: None,
            created_by: actor.to_string(),
        })
    }
}

/// What was counted for one variant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Distinct visitors shown the variant.
    pub exposures: u64,
    pub signups: u64,
    pub first_payments: u64,
}

/// Whether the pre-registered rule lets the operator decide.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// Why, in words.
    pub reason: String,
    /// The horizon's end, `YYYY-MM-DD`.
    pub horizon_ends: String,
}

/// The stopping rule applied at `now` to the exposures of each variant.
pub fn decision(exp: &Experiment, exposures: &[(String, u64)], now: i64) -> Decision {
    let end = exp.horizon_end();
    let horizon_ends = citecast_actors::dates::format(citecast_actors::dates::day_of_secs(end));
    let min = exp.stopping_rule.min_exposures_per_variant;
    let until = exp.stopped.unwrap_or(now);
    let short: Vec<String> =
        exposures.iter().filter(|(_, n)| *n < min).map(|(v, n)| format!("{v} has {n} of {min}")).collect();
    let (allowed, reason) = if until < end {
        let reason = match exp.stopped {
            Some(_) => format!(
                "stopped before its horizon ({horizon_ends}): the rule registered with it was not met, so no decision may be drawn from these figures"
            ),
            None => format!(
                "not yet: the fixed horizon ends on {horizon_ends}; differences seen before then are not a reason to stop"
            ),
        };
        (false, reason)
    } else if !short.is_empty() {
        let reason = match exp.stopped {
            Some(_) => {
                format!("stopped without the minimum sample ({}): no decision may be drawn", short.join(", "))
            }
            None => format!("not yet: the horizon has passed but {}; keep it running", short.join(", ")),
        };
        (false, reason)
    } else {
        (true, "the horizon has passed and every variant has its minimum sample: decide now".to_string())
    };
    Decision { allowed, reason, horizon_ends }
}

/// One variant's line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct VariantReport {
    pub id: String,
    pub control: bool,
    pub headline: Option<String>,
    pub prices: PriceTable,
    pub counts: Counts,
    /// Sign-ups per exposure.
    pub signup: Rate,
    /// First payments per exposure.
    pub first_payment: Rate,
    /// Against the control, on the primary metric (none for the control).
    pub vs_control: Option<Comparison>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub experiment: Experiment,
    pub variants: Vec<VariantReport>,
    /// The level each comparison is tested at: [`ALPHA`] split over the comparisons
    /// (Bonferroni), so that more variants do not mean more false winners.
    pub alpha_per_comparison: f64,
    pub decision: Decision,
    /// Once a decision is allowed: the variant to adopt, in words.
    pub outcome: Option<String>,
}

/// The report of `exp` over `counts` (by variant id) at `now`.
pub fn report(exp: &Experiment, counts: &BTreeMap<String, Counts>, now: i64) -> Report {
    let alpha = ALPHA / (exp.variants.len().saturating_sub(1).max(1)) as f64;
    let rate = |c: &Counts| match exp.primary_metric {
        Metric::Signup => stats::wilson(c.signups, c.exposures),
        Metric::FirstPayment => stats::wilson(c.first_payments, c.exposures),
    };
    let control = counts.get(&exp.variants[0].id).copied().unwrap_or_default();
    let variants: Vec<VariantReport> = exp
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let c = counts.get(&v.id).copied().unwrap_or_default();
            VariantReport {
                id: v.id.clone(),
                control: i == 0,
                headline: v.headline.clone(),
                prices: v.prices.clone(),
                counts: c,
                signup: stats::wilson(c.signups, c.exposures),
                first_payment: stats::wilson(c.first_payments, c.exposures),
                vs_control: (i > 0).then(|| stats::compare(&rate(&control), &rate(&c), alpha)),
            }
        })
        .collect();
    let exposures: Vec<(String, u64)> = variants.iter().map(|v| (v.id.clone(), v.counts.exposures)).collect();
    let decision = decision(exp, &exposures, now);
    let outcome = decision.allowed.then(|| {
        let better = variants
            .iter()
            .filter(|v| v.vs_control.is_some_and(|c| c.significant && c.difference > 0.0))
            .max_by(|a, b| rate(&a.counts).rate.total_cmp(&rate(&b.counts).rate));
        match better {
            Some(v) => format!("'{}' converts significantly better than the control: adopt it", v.id),
            None => "no variant converts significantly better than the control: keep the control".to_string(),
        }
    });
    Report { experiment: exp.clone(), variants, alpha_per_comparison: alpha, decision, outcome }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(json: serde_json::Value) -> ExperimentDraft {
        serde_json::from_value(json).unwrap()
    }

    fn two_variants() -> ExperimentDraft {
        draft(serde_json::json!({
            "name": "Pro at $39",
            "variants": [
                {"id": "control"},
                {"id": "lower", "headline": "Forecasts for less", "prices": {"pro": {"monthly_usd": 39}}},
            ],
            "stopping_rule": {"min_exposures_per_variant": 100, "horizon_days": 14},
        }))
    }

    const T0: i64 = 1_800_000_000;

    #[test]
    fn variants_resolve_their_prices_against_the_table() {
        let exp = two_variants().register("exp_000001", &Tiers::builtin(), T0, "op").unwrap();
        assert_eq!(exp.variants[0].prices["pro"], TierPrice { monthly_minor: 4_900, annual_minor: 49_000 });
        // $39 keeps the table's discount: 39 · 490 / 49 = $390 a year.
        assert_eq!(exp.variants[1].prices["pro"], TierPrice { monthly_minor: 3_900, annual_minor: 39_000 });
        assert!(
            !exp.variants[0].prices.contains_key("free")
                && !exp.variants[0].prices.contains_key("enterprise")
        );
        // A discount: 39 · 12 · 0.75 = $351.
        let mut d = two_variants();
        d.variants[1].annual_discount_pct = Some(25);
        let exp = d.register("e", &Tiers::builtin(), T0, "op").unwrap();
        assert_eq!(exp.variants[1].prices["pro"].annual_minor, 35_100);
    }

    #[test]
    fn bad_definitions_are_refused_with_the_field_named() {
        let tiers = Tiers::builtin();
        type Change = Box<dyn Fn(&mut ExperimentDraft)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|d| d.name = " ".into()), "'name'"),
            (Box::new(|d| d.variants.truncate(1)), "'variants'"),
            (Box::new(|d| d.variants[1].id = "Lower!".into()), "variants[1].id"),
            (Box::new(|d| d.variants[1].id = "control".into()), "repeats"),
            (Box::new(|d| d.variants[1].prices.get_mut("pro").unwrap().monthly_usd = 0), "monthly_usd"),
            (
                Box::new(|d| {
                    d.variants[1]
                        .prices
                        .insert("enterprise".into(), PriceDraft { monthly_usd: 9, annual_usd: None });
                }),
                "not a self-serve paid tier",
            ),
            (
                Box::new(|d| d.variants[1].prices.get_mut("pro").unwrap().annual_usd = Some(9_999)),
                "annual_usd",
            ),
            (Box::new(|d| d.variants[1].annual_discount_pct = Some(90)), "annual_discount_pct"),
            (Box::new(|d| d.stopping_rule.horizon_days = 0), "horizon_days"),
            (Box::new(|d| d.stopping_rule.min_exposures_per_variant = 0), "min_exposures"),
            (Box::new(|d| d.variants[1].headline = Some("a\nb".into())), "headline"),
        ];
        for (change, needle) in cases {
            let mut d = two_variants();
            change(&mut d);
            let e = d.register("e", &tiers, T0, "op").unwrap_err();
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn a_visitor_keeps_their_variant_and_visitors_split_about_evenly() {
        let exp = two_variants().register("exp_000001", &Tiers::builtin(), T0, "op").unwrap();
        assert_eq!(exp.assign("visitor-a").id, exp.assign("visitor-a").id);
        let lower = (0..1000).filter(|i| exp.assign(&format!("v{i}")).id == "lower").count();
        assert!((430..570).contains(&lower), "{lower}");
    }

    #[test]
    fn the_stopping_rule_needs_the_horizon_and_the_sample() {
        let mut exp = two_variants().register("e", &Tiers::builtin(), T0, "op").unwrap();
        let day = 86_400;
        let full = [("control".to_string(), 100), ("lower".to_string(), 120)];
        let short = [("control".to_string(), 100), ("lower".to_string(), 99)];
        // Day 13 of 14 with the sample complete: no decision (no peeking).
        let d = decision(&exp, &full, T0 + 13 * day);
        assert!(!d.allowed && d.reason.contains("not yet"), "{d:?}");
        // Day 14 without the sample: keep running.
        let d = decision(&exp, &short, T0 + 14 * day);
        assert!(!d.allowed && d.reason.contains("lower has 99 of 100"), "{d:?}");
        // Day 14 with it: decide.
        assert!(decision(&exp, &full, T0 + 14 * day).allowed);
        // Stopped by hand on day 10: never a decision, whatever the date now.
        exp.stopped = Some(T0 + 10 * day);
        let d = decision(&exp, &full, T0 + 30 * day);
        assert!(!d.allowed && d.reason.contains("stopped before"), "{d:?}");
    }

    #[test]
    fn the_report_compares_each_variant_with_the_control() {
        let exp = two_variants().register("e", &Tiers::builtin(), T0, "op").unwrap();
        let mut counts = BTreeMap::new();
        counts.insert("control".to_string(), Counts { exposures: 100, signups: 10, first_payments: 4 });
        counts.insert("lower".to_string(), Counts { exposures: 100, signups: 20, first_payments: 5 });
        let early = report(&exp, &counts, T0 + 86_400);
        let lower = &early.variants[1];
        let c = lower.vs_control.unwrap();
        assert!(c.significant && (c.p_value - 0.047676).abs() < 1e-4, "{c:?}");
        assert!(early.outcome.is_none(), "significant, but the horizon is not reached");
        let late = report(&exp, &counts, T0 + 15 * 86_400);
        assert!(late.outcome.unwrap().contains("'lower'"));
        assert!((late.variants[0].first_payment.rate - 0.04).abs() < 1e-12);
    }
}
