//! Billing: subscriptions, invoices and payments (issue 18). The plain logic lives here
//! and in [`subscription`] (lifecycle, periods, proration); [`store`] keeps the records
//! in sled and applies every change in one transaction; [`signature`] verifies payment
//! webhooks, [`routes`] receives them and [`job`] runs renewals, trials and dunning daily.
//!
//! Money is integer minor units (cents) with a currency; prices are the tier table's USD
//! prices × 100. Billing sends no mail and knows no addresses: every change answers the
//! [`Notice`]s its caller should turn into mail.

pub mod error;
pub mod job;
pub mod page;
pub mod routes;
pub mod signature;
pub mod store;
pub mod subscription;

use std::collections::BTreeMap;

use citecast_actors::dates::{self, Day};
use serde::{Deserialize, Serialize};

use crate::accounts::tiers::Tiers;
use crate::accounts::{AccountError, AccountStore};

pub use error::BillingError;
pub use store::Billing;
use subscription::{Period, Status};

/// The one currency of the tier table.
pub const CURRENCY: &str = "usd";
/// Days of the free trial of a paid plan.
pub const TRIAL_DAYS: Day = 14;
/// Days an invoice may stay unpaid before dunning starts.
pub const DUE_DAYS: Day = 7;
/// Dunning attempts, in days after the payment failed: a reminder at each but the last;
/// when the last comes and the invoice is still open, the subscription is paused.
pub const DUNNING_DAYS: [Day; 3] = [3, 7, 14];
/// The provider of subscriptions this build creates: invoices paid by bank transfer and
/// marked paid by an operator (or by a provider's webhook).
pub const MANUAL_PROVIDER: &str = "manual";

/// How often a plan is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Monthly,
    Annual,
}

impl Interval {
    /// Months in one period.
    pub fn months(self) -> u32 {
        match self {
            Interval::Monthly => 1,
            Interval::Annual => 12,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Interval::Monthly => "monthly",
            Interval::Annual => "annual",
        }
    }
}

/// A tier billed at an interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub tier: String,
    pub interval: Interval,
}

impl Plan {
    pub fn new(tier: &str, interval: Interval) -> Plan {
        Plan { tier: tier.to_string(), interval }
    }
}

#[derive(Debug, Clone)]
struct PriceRow {
    name: String,
    monthly: Option<i64>,
    annual: Option<i64>,
}

/// The self-serve prices of the tier table, in minor units.
#[derive(Debug, Clone)]
pub struct Prices {
    rows: BTreeMap<String, PriceRow>,
    free_tier: String,
}

impl Prices {
    pub fn from_tiers(tiers: &Tiers) -> Prices {
        let cents = |usd: Option<u32>| usd.map(|p| p as i64 * 100);
        let rows = tiers
            .tiers
            .iter()
            .map(|t| {
                let row = PriceRow {
                    name: t.name.clone(),
                    monthly: cents(t.price_monthly_usd),
                    annual: cents(t.price_annual_usd),
                };
                (t.id.clone(), row)
            })
            .collect();
        Prices { rows, free_tier: tiers.default_tier().id.clone() }
    }

    /// The prices `customer_id` pays: the table's, except those recorded for them at
    /// sign-up (the pricing experiment's variant they saw: a customer always pays the
    /// price they were shown). A store failure is an error, never the table's price.
    pub fn for_customer(db: &sled::Db, tiers: &Tiers, customer_id: &str) -> Result<Prices, BillingError> {
        let recorded = crate::pricing::customer_prices(db, customer_id).map_err(|e| {
            tracing::error!(customer = %customer_id, error = %e, "cannot read the customer's recorded prices");
            BillingError::Unavailable
        })?;
        Ok(Prices::from_tiers(tiers).with_recorded(recorded.as_ref()))
    }

    /// These prices with a customer's recorded ones (see [`Prices::for_customer`]) in
    /// place of the table's, tier by tier.
    pub fn with_recorded(mut self, recorded: Option<&crate::pricing::PriceTable>) -> Prices {
        for (tier, p) in recorded.into_iter().flatten() {
            if let Some(row) = self.rows.get_mut(tier) {
                row.monthly = Some(p.monthly_minor);
                row.annual = Some(p.annual_minor);
            }
        }
        self
    }

    /// The price of one period of `tier` at `interval`; `None` for a tier priced per
    /// contract or one the table lacks.
    pub fn price(&self, tier: &str, interval: Interval) -> Option<i64> {
        let row = self.rows.get(tier)?;
        match interval {
            Interval::Monthly => row.monthly,
            Interval::Annual => row.annual,
        }
    }

    /// The price of `plan`, or why it cannot be bought here.
    pub fn lookup(&self, plan: &Plan) -> Result<i64, BillingError> {
        match self.rows.get(&plan.tier) {
            None => Err(BillingError::UnknownPlan(plan.tier.clone())),
            Some(row) => self
                .price(&plan.tier, plan.interval)
                .ok_or_else(|| BillingError::PlanNotSelfServe(row.name.clone())),
        }
    }

    /// The tier served when a subscription's plan is not (paused, canceled).
    pub fn free_tier(&self) -> &str {
        &self.free_tier
    }

    /// The tier's display name (its id when the table lacks it).
    pub fn name(&self, tier: &str) -> String {
        self.rows.get(tier).map(|r| r.name.clone()).unwrap_or_else(|| tier.to_string())
    }

    /// "Pro, monthly".
    pub fn describe(&self, plan: &Plan) -> String {
        format!("{}, {}", self.name(&plan.tier), plan.interval.label())
    }
}

/// Payment reminders of an unpaid invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dunning {
    pub invoice_id: String,
    /// Attempts made so far (reminders sent).
    pub attempts: u32,
    pub next_attempt: Day,
    /// The day the payment failed; attempts fall at [`DUNNING_DAYS`] after it.
    #[serde(default)]
    pub started: Day,
}

impl Dunning {
    pub fn start(invoice_id: &str, today: Day) -> Dunning {
        Dunning {
            invoice_id: invoice_id.to_string(),
            attempts: 0,
            next_attempt: today + DUNNING_DAYS[0],
            started: today,
        }
    }
}

/// One customer's subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub customer_id: String,
    pub plan: Plan,
    pub status: Status,
    pub currency: String,
    /// The first day of the first paid period: later periods end on its day of month.
    pub anchor: Day,
    /// The current period (during the trial: the trial).
    pub period: Period,
    /// Periods since the anchor (0: the first).
    pub period_index: u32,
    pub trial_end: Option<Day>,
    /// A downgrade or annual→monthly switch, taking effect at the period end.
    pub scheduled: Option<Plan>,
    pub cancel_at_period_end: bool,
    pub dunning: Option<Dunning>,
    /// `manual`: invoices paid by transfer, marked paid by an operator or a webhook.
    pub provider: String,
    /// The tier served while the plan is not (paused, canceled): the table's default tier.
    #[serde(default = "default_fallback_tier")]
    pub fallback_tier: String,
    pub created: i64,
    pub updated: i64,
}

fn default_fallback_tier() -> String {
    "free".into()
}

impl Subscription {
    /// The tier the API serves now.
    pub fn effective_tier(&self) -> &str {
        if subscription::serves_paid_tier(self.status) {
            &self.plan.tier
        } else {
            &self.fallback_tier
        }
    }

    /// Whether the current period is the free trial.
    pub fn in_trial(&self) -> bool {
        self.trial_end == Some(self.period.end) && self.status != Status::Canceled
    }
}

/// One numbered line of an invoice; lines never change once issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub number: u32,
    pub description: String,
    pub amount_minor: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Open,
    Paid,
    Void,
    Refunded,
}

impl InvoiceStatus {
    pub fn label(self) -> &'static str {
        match self {
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Void => "void",
            InvoiceStatus::Refunded => "refunded",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// `inv_000001`: from a counter, never reused.
    pub id: String,
    pub number: u64,
    pub customer_id: String,
    pub issued: Day,
    pub due: Day,
    pub period: Period,
    pub currency: String,
    pub lines: Vec<Line>,
    pub total_minor: i64,
    pub status: InvoiceStatus,
    pub paid_at: Option<i64>,
    pub refunded_at: Option<i64>,
    /// The bank transfer's reference, the provider's event id, or `credit` when the
    /// customer's credit balance covered it.
    pub payment_ref: Option<String>,
}

/// The id of invoice `number`.
pub fn invoice_id(number: u64) -> String {
    format!("inv_{number:06}")
}

/// Which mail the caller should send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// An invoice was paid.
    Receipt,
    /// A payment failed (or an invoice went unpaid past its due date): dunning starts.
    PaymentFailed,
    /// An unpaid invoice, again.
    DunningReminder,
    Paused,
    /// Canceled now, or scheduled to end at the period end.
    Canceled,
    Refunded,
    /// Changed now (with an invoice for an upgrade) or scheduled for the period end.
    PlanChanged,
    /// A new invoice to pay: the first after the trial, a renewal, a resumed period.
    InvoiceIssued,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub customer_id: String,
    pub invoice_id: Option<String>,
}

/// What a billing call did.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub subscription: Subscription,
    /// The invoice issued or changed, if any.
    pub invoice: Option<Invoice>,
    /// The tier the API must serve now.
    pub effective_tier: String,
    pub notices: Vec<Notice>,
}

impl Change {
    pub fn new(subscription: Subscription, invoice: Option<Invoice>, notices: Vec<Notice>) -> Change {
        let effective_tier = subscription.effective_tier().to_string();
        Change { subscription, invoice, effective_tier, notices }
    }
}

/// What the next renewal will charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upcoming {
    pub date: Day,
    pub lines: Vec<Line>,
    pub total_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    /// An invoice was issued (amount: its total).
    Invoiced,
    /// An invoice was paid (amount: its total).
    Paid,
    /// A paid invoice was refunded (amount: its total).
    Refunded,
    /// Credit for the customer (amount: added to the balance).
    Credit,
    /// Credit spent on an invoice (amount: negative, taken from the balance).
    CreditApplied,
}

/// One entry of a customer's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub seq: u64,
    pub at: i64,
    pub customer_id: String,
    pub kind: LedgerKind,
    pub amount_minor: i64,
    pub currency: String,
    pub invoice_id: Option<String>,
    /// The credit balance after this entry.
    pub balance_minor: i64,
}

/// One status change of a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionRecord {
    pub at: i64,
    pub from: Option<Status>,
    pub to: Status,
    pub event: String,
    pub actor: String,
}

/// What a payment provider reports about an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentEvent {
    Succeeded,
    Failed,
}

/// The outcome of a provider's event.
// A short-lived return value: boxing the change would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Applied {
    Done(Change),
    /// The event id was applied before: nothing changed.
    Replayed,
}

/// Whether moving from `old` to `new` (prices per period) is an upgrade, taking effect
/// at once: a higher price per month (another tier), or monthly to annual (a longer
/// commitment), or any paid plan after a free one. Annual to monthly on the same tier waits.
pub fn is_upgrade(old: &Plan, old_price: i64, new: &Plan, new_price: i64) -> bool {
    if old.interval == Interval::Monthly && new.interval == Interval::Annual && new_price > 0 {
        return true;
    }
    if old_price == 0 {
        return new_price > 0;
    }
    // The same tier billed monthly costs more per month, but it is a shorter
    // commitment: the switch waits for the end of the paid year.
    if old.tier == new.tier && old.interval == Interval::Annual {
        return false;
    }
    // Per month, without division: new / new_months > old / old_months.
    new_price * old.interval.months() as i64 > old_price * new.interval.months() as i64
}

/// The lines and new period of an upgrade from `old` to `new` on `today` within `period`:
/// the new plan's price for the rest of the period, less the unused rest of the old one.
/// When the interval changes or the old plan was free, a new period starts today at the
/// full new price.
pub fn upgrade_lines(
    prices: &Prices,
    old: (&Plan, i64),
    new: (&Plan, i64),
    period: Period,
    today: Day,
) -> (Vec<Line>, Option<Period>) {
    let (old_plan, old_price) = old;
    let (new_plan, new_price) = new;
    let restart = old_price == 0 || old_plan.interval != new_plan.interval;
    let mut lines = Vec::new();
    let new_period = if restart {
        let p = Period::starting(today, new_plan.interval.months());
        lines.push((format!("{}, {}", prices.describe(new_plan), span(p)), new_price));
        Some(p)
    } else {
        let charge = subscription::prorate(0, new_price, period, today);
        let rest = Period { start: today.max(period.start), end: period.end };
        lines.push((format!("{}, {} (prorated)", prices.describe(new_plan), span(rest)), charge));
        None
    };
    let unused = subscription::prorate(0, old_price, period, today);
    if unused > 0 {
        let rest = Period { start: today.max(period.start), end: period.end };
        lines.push((format!("Unused time on {}, {}", prices.describe(old_plan), span(rest)), -unused));
    }
    (number_lines(lines), new_period)
}

/// Numbers lines from 1.
pub fn number_lines(lines: Vec<(String, i64)>) -> Vec<Line> {
    lines
        .into_iter()
        .enumerate()
        .map(|(i, (description, amount_minor))| Line { number: i as u32 + 1, description, amount_minor })
        .collect()
}

/// "2027-02-01 to 2027-03-01" (the end is the next period's first day).
pub fn span(p: Period) -> String {
    format!("{} to {}", dates::format(p.start), dates::format(p.end))
}

/// The period after `sub`'s current one if it renews on `plan`.
pub fn next_period(sub: &Subscription, plan: &Plan) -> (Period, Day, u32) {
    if sub.in_trial() || plan.interval != sub.plan.interval {
        let anchor = sub.period.end;
        (Period::starting(anchor, plan.interval.months()), anchor, 0)
    } else {
        let months = plan.interval.months();
        let index = sub.period_index + 1;
        (sub.period.next(sub.anchor, months, index), sub.anchor, index)
    }
}

/// `$49.00`, `-$10.00`; other currencies as `49.00 EUR`.
pub fn format_money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let amount = format!("{}.{:02}", abs / 100, abs % 100);
    if currency.eq_ignore_ascii_case("usd") {
        format!("{sign}${amount}")
    } else {
        format!("{sign}{amount} {}", currency.to_uppercase())
    }
}

/// Sets the customer's tier to the one `change` says the API must serve, when it differs:
/// the API limits follow the plan at once.
pub fn sync_tier(accounts: &dyn AccountStore, change: &Change) -> Result<(), AccountError> {
    let id = &change.subscription.customer_id;
    let customer = accounts.customer(id)?.ok_or_else(|| AccountError::NoCustomer(id.clone()))?;
    if customer.tier != change.effective_tier {
        accounts.set_tier(id, &change.effective_tier)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_come_from_the_tier_table() {
        let p = Prices::from_tiers(&Tiers::builtin());
        assert_eq!(p.price("pro", Interval::Monthly), Some(4_900));
        assert_eq!(p.price("pro", Interval::Annual), Some(49_000));
        assert_eq!(p.price("free", Interval::Monthly), Some(0));
        assert_eq!(p.price("enterprise", Interval::Monthly), None);
        assert_eq!(p.price("nope", Interval::Monthly), None);
        assert!(matches!(
            p.lookup(&Plan::new("enterprise", Interval::Annual)),
            Err(BillingError::PlanNotSelfServe(_))
        ));
        assert!(matches!(p.lookup(&Plan::new("nope", Interval::Annual)), Err(BillingError::UnknownPlan(_))));
        assert_eq!(p.free_tier(), "free");
    }

    #[test]
    fn recorded_prices_replace_the_tables_for_their_tiers_only() {
        let mut recorded = crate::pricing::PriceTable::new();
        recorded
            .insert("pro".into(), crate::pricing::TierPrice { monthly_minor: 3_900, annual_minor: 39_000 });
        recorded.insert("gone".into(), crate::pricing::TierPrice { monthly_minor: 1, annual_minor: 1 });
        let p = Prices::from_tiers(&Tiers::builtin()).with_recorded(Some(&recorded));
        assert_eq!(p.price("pro", Interval::Monthly), Some(3_900));
        assert_eq!(p.price("pro", Interval::Annual), Some(39_000));
        assert_eq!(p.price("free", Interval::Monthly), Some(0));
        assert_eq!(p.price("gone", Interval::Monthly), None, "no tier is made up");
        let db = sled::Config::new().temporary(true).open().unwrap();
        let table = Prices::for_customer(&db, &Tiers::builtin(), "cus_nobody").unwrap();
        assert_eq!(table.price("pro", Interval::Monthly), Some(4_900));
    }

    #[test]
    fn upgrades_and_downgrades() {
        let pm = Plan::new("pro", Interval::Monthly);
        let pa = Plan::new("pro", Interval::Annual);
        let fm = Plan::new("free", Interval::Monthly);
        assert!(is_upgrade(&fm, 0, &pm, 4_900));
        assert!(is_upgrade(&pm, 4_900, &pa, 49_000), "monthly to annual");
        assert!(!is_upgrade(&pa, 49_000, &pm, 4_900), "annual to monthly waits");
        assert!(!is_upgrade(&pm, 4_900, &fm, 0));
        assert!(is_upgrade(&pm, 4_900, &Plan::new("big", Interval::Monthly), 19_900));
    }

    #[test]
    fn money_reads_as_dollars() {
        assert_eq!(format_money(4_900, "usd"), "$49.00");
        assert_eq!(format_money(-1_005, "usd"), "-$10.05");
        assert_eq!(format_money(7, "eur"), "0.07 EUR");
        assert_eq!(invoice_id(1), "inv_000001");
        assert_eq!(invoice_id(1_234_567), "inv_1234567");
    }
}
