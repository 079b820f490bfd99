//! Upsell and cross-sell (issue 11) as plain logic: triggers computed from a customer's
//! real usage over the last seven days (past 80 % of the daily quota on 3 of them,
//! repeated 429s, batches refused for their size, forecast endpoints the tier lacks),
//! each offering the cheapest tier that removes that limit at the price the customer
//! would pay; at most one e-mail per trigger per month; and trigger → upgrade conversion.
//!
//! Guard rails: an offer names the limit the customer actually hit and what lifts it,
//! with its price; no countdowns, no pre-ticked boxes, no fake scarcity, and a one-click
//! downgrade is always shown beside the upgrade.

pub mod admin;
pub mod error;
pub mod job;
pub mod routes;
pub mod store;

use std::collections::BTreeMap;

use citecast_actors::dates::Day;
use serde::{Deserialize, Serialize};

use crate::accounts::tiers::{Group, Tier, Tiers};
use crate::billing::{format_money, Interval, Prices};
use crate::pricing::stats::{self, Rate};
pub use error::GrowthError;
pub use store::GrowthStore;

/// Days a trigger looks back over, today included.
pub const WINDOW_DAYS: Day = 7;
/// Days past 80 % of the quota within the window that make the quota trigger.
pub const QUOTA_DAYS: usize = 3;
/// 429 answers within the window that make the rate-limit trigger.
pub const RATE_LIMITED_MIN: u64 = 10;
/// Batches refused for their size within the window that make the batch trigger.
pub const BATCH_REFUSED_MIN: u64 = 2;
/// Forecast calls refused for the tier within the window that make that trigger.
pub const FORBIDDEN_MIN: u64 = 1;
/// Days between two e-mails about the same trigger.
pub const MAIL_EVERY_DAYS: i64 = 30;
/// Days after a trigger first fires within which an upgrade counts as its conversion.
pub const ATTRIBUTION_DAYS: i64 = 30;

/// What a customer ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// Past 80 % of the daily quota on 3 of the last 7 days.
    Quota,
    /// Repeated 429s (per-minute or daily limit).
    RateLimited,
    /// Batch requests refused for their size.
    BatchRefused,
    /// Forecast endpoints refused for the tier.
    ForecastForbidden,
}

impl TriggerKind {
    pub const ALL: [TriggerKind; 4] = [
        TriggerKind::Quota,
        TriggerKind::RateLimited,
        TriggerKind::BatchRefused,
        TriggerKind::ForecastForbidden,
    ];

    pub fn id(self) -> &'static str {
        match self {
            TriggerKind::Quota => "quota_80",
            TriggerKind::RateLimited => "rate_limited",
            TriggerKind::BatchRefused => "batch_refused",
            TriggerKind::ForecastForbidden => "forecast_forbidden",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TriggerKind::Quota => "past 80 % of the daily quota on 3 of 7 days",
            TriggerKind::RateLimited => "repeated 429s",
            TriggerKind::BatchRefused => "batches refused for their size",
            TriggerKind::ForecastForbidden => "forecast endpoints the tier lacks",
        }
    }

    pub fn parse(s: &str) -> Option<TriggerKind> {
        TriggerKind::ALL.into_iter().find(|k| k.id() == s)
    }
}

/// A call the API refused that says a limit is in the way (recorded by the API guard
/// and the batch endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    RateLimited,
    /// A batch of `asked` ids refused for its size.
    BatchRefused {
        asked: u64,
    },
    ForecastForbidden,
}

impl Refusal {
    pub fn kind(self) -> TriggerKind {
        match self {
            Refusal::RateLimited => TriggerKind::RateLimited,
            Refusal::BatchRefused { .. } => TriggerKind::BatchRefused,
            Refusal::ForecastForbidden => TriggerKind::ForecastForbidden,
        }
    }
}

/// One day's refusals of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalDay {
    pub count: u64,
    /// The largest batch refused (batch refusals only).
    pub largest: u64,
}

/// What the triggers look at: a customer's requests per day and refusals per day and
/// kind within the window.
#[derive(Debug, Clone, Default)]
pub struct Week {
    pub usage: BTreeMap<Day, u64>,
    pub refusals: BTreeMap<(Day, TriggerKind), RefusalDay>,
}

impl Week {
    fn refused(&self, kind: TriggerKind, today: Day) -> RefusalDay {
        self.refusals.iter().filter(|((d, k), _)| *k == kind && in_window(*d, today)).fold(
            RefusalDay::default(),
            |acc, (_, r)| RefusalDay { count: acc.count + r.count, largest: acc.largest.max(r.largest) },
        )
    }
}

fn in_window(day: Day, today: Day) -> bool {
    day > today - WINDOW_DAYS && day <= today
}

/// Days of the window on which more than 80 % of `daily` requests were made.
pub fn quota_days(usage: &BTreeMap<Day, u64>, daily: u64, today: Day) -> usize {
    // used > 0.8 · daily, in integers.
    usage.iter().filter(|(d, used)| in_window(**d, today) && **used * 5 > daily * 4).count()
}

/// The triggers `week` sets off for a customer on `tier`, as of `today`.
pub fn triggers(week: &Week, tier: &Tier, today: Day) -> Vec<TriggerKind> {
    let mut out = Vec::new();
    if tier.daily > 0 && quota_days(&week.usage, tier.daily, today) >= QUOTA_DAYS {
        out.push(TriggerKind::Quota);
    }
    if week.refused(TriggerKind::RateLimited, today).count >= RATE_LIMITED_MIN {
        out.push(TriggerKind::RateLimited);
    }
    if week.refused(TriggerKind::BatchRefused, today).count >= BATCH_REFUSED_MIN {
        out.push(TriggerKind::BatchRefused);
    }
    if week.refused(TriggerKind::ForecastForbidden, today).count >= FORBIDDEN_MIN {
        out.push(TriggerKind::ForecastForbidden);
    }
    out
}

/// What a trigger offers: why, the tier that removes the limit, and its price.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Offer {
    pub kind: TriggerKind,
    /// What the customer ran into, in numbers.
    pub reason: String,
    pub tier: String,
    pub tier_name: String,
    /// What the tier gives that the current one does not, and its price.
    pub benefit: String,
    /// `pro:monthly`, when the tier can be bought on the billing page (else it is priced
    /// per contract and the offer says how to ask).
    pub plan: Option<String>,
    pub price_label: Option<String>,
    /// The free plan to go back to, for the downgrade shown beside every offer.
    pub downgrade_plan: String,
    pub downgrade_name: String,
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

/// The offer of `kind` to a customer on `current`, priced with `prices` (theirs): the
/// cheapest tier that lifts the limit they hit; `None` when no tier does.
pub fn offer(
    kind: TriggerKind,
    week: &Week,
    current: &Tier,
    tiers: &Tiers,
    prices: &Prices,
    today: Day,
) -> Option<Offer> {
    let lifts = |t: &&Tier| t.id != current.id;
    let (target, reason, benefit): (&Tier, String, String) = match kind {
        TriggerKind::Quota => {
            let t = tiers.tiers.iter().filter(lifts).find(|t| t.daily > current.daily)?;
            let days = quota_days(&week.usage, current.daily, today);
            (
                t,
                format!(
                    "You used more than 80 % of the {} plan's {} daily requests on {days} of the last 7 days.",
                    current.name,
                    thousands(current.daily)
                ),
                format!("{} allows {} requests a day", t.name, thousands(t.daily)),
            )
        }
        TriggerKind::RateLimited => {
            let t = tiers.upgrade_from(&current.id, None)?;
            let n = week.refused(kind, today).count;
            (
                t,
                format!("{n} of your calls in the last 7 days were refused with 429 (too many requests) on the {} plan.", current.name),
                format!("{} allows {} requests a minute and {} a day", t.name, t.per_minute, thousands(t.daily)),
            )
        }
        TriggerKind::BatchRefused => {
            let r = week.refused(kind, today);
            let t = tiers.tiers.iter().filter(lifts).find(|t| {
                t.max_batch as u64 >= r.largest.max(current.max_batch as u64 + 1) && t.daily >= current.daily
            })?;
            (
                t,
                format!(
                    "{} batch requests in the last 7 days were refused for their size (up to {} papers; the {} plan allows {}).",
                    r.count, r.largest, current.name, current.max_batch
                ),
                format!("{} allows batches of up to {} papers", t.name, t.max_batch),
            )
        }
        TriggerKind::ForecastForbidden => {
            let t = tiers.upgrade_from(&current.id, Some(Group::Forecasts))?;
            let n = week.refused(kind, today).count;
            (
                t,
                format!(
                    "{n} forecast calls in the last 7 days were refused: the {} plan has no forecasts.",
                    current.name
                ),
                format!("{} includes the forecast endpoints", t.name),
            )
        }
    };
    let listed = prices.price(&target.id, Interval::Monthly);
    let price = listed.filter(|p| *p > 0);
    let free = tiers.default_tier();
    Some(Offer {
        kind,
        reason,
        tier: target.id.clone(),
        tier_name: target.name.clone(),
        benefit: match listed {
            Some(p) if p > 0 => format!("{benefit} for {} a month.", format_money(p, "usd")),
            Some(_) => format!("{benefit}, free of charge."),
            None => format!("{benefit}; it is priced per contract."),
        },
        plan: price.map(|_| format!("{}:monthly", target.id)),
        price_label: price.map(|p| format!("{} a month", format_money(p, "usd"))),
        downgrade_plan: format!("{}:monthly", free.id),
        downgrade_name: free.name.clone(),
    })
}

/// Whether a trigger last mailed at `last` may be mailed again at `now`: at most once in
/// [`MAIL_EVERY_DAYS`].
pub fn may_mail(last: Option<i64>, now: i64) -> bool {
    last.is_none_or(|t| now - t >= MAIL_EVERY_DAYS * 86_400)
}

/// The e-mail of `offer` (plain text, value first, and how to go back).
pub fn mail_text(offer: &Offer, base_url: &str) -> (String, String) {
    let subject = format!("A limit you ran into on citecast: {}", offer.tier_name);
    let mut text = format!("Hello,\n\n{}\n\n{}\n\n", offer.reason, offer.benefit);
    match &offer.plan {
        Some(_) => text.push_str(&format!(
            "If that helps, you can change plan on your account page in one click: {base_url}/account\n\
             Upgrades apply at once and you pay only for the rest of the period; going back to {} is one click too, and takes effect at the end of the period.\n",
            offer.downgrade_name
        )),
        None => text.push_str(&format!("If that helps, reply to this mail and we will send a contract. Details: {base_url}/pricing\n")),
    }
    text.push_str(
        "\nWe write about each limit at most once a month, and only when you actually ran into it. If this is not useful, ignore it: nothing changes.\n",
    );
    (subject, text)
}

/// Position of a tier in the table (cheapest first); unknown tiers rank lowest.
pub fn rank(tiers: &Tiers, tier: &str) -> i64 {
    tiers.tiers.iter().position(|t| t.id == tier).map(|i| i as i64).unwrap_or(-1)
}

/// One trigger's conversion figures.
#[derive(Debug, Clone, Serialize)]
pub struct TriggerConversion {
    pub trigger: String,
    pub label: String,
    /// Customers it fired for.
    pub triggered: u64,
    /// Those who moved to a higher tier within [`ATTRIBUTION_DAYS`] of it.
    pub converted: u64,
    /// Those mailed about it (at least once).
    pub mailed: u64,
    /// `converted / triggered` with its 95 % Wilson interval.
    pub rate: Rate,
}

/// Trigger → upgrade conversion, per trigger and over all (a customer counts once in
/// the total, converted if any of their triggers converted).
#[derive(Debug, Clone, Serialize)]
pub struct GrowthReport {
    pub attribution_days: i64,
    pub triggers: Vec<TriggerConversion>,
    pub total: TriggerConversion,
}

/// Builds the report from trigger records and each customer's tier now.
pub fn report(
    records: &[(String, TriggerKind, store::TriggerRecord)],
    tier_now: impl Fn(&str) -> Option<String>,
    tiers: &Tiers,
    now: i64,
) -> GrowthReport {
    let converted = |customer: &str, r: &store::TriggerRecord| match r.converted_at {
        Some(at) => at - r.first_at <= ATTRIBUTION_DAYS * 86_400,
        None => {
            now - r.first_at <= ATTRIBUTION_DAYS * 86_400
                && tier_now(customer).is_some_and(|t| rank(tiers, &t) > rank(tiers, &r.tier_at_first))
        }
    };
    let line = |trigger: String, label: String, triggered: u64, conv: u64, mailed: u64| TriggerConversion {
        trigger,
        label,
        triggered,
        converted: conv,
        mailed,
        rate: stats::wilson(conv, triggered),
    };
    let mut lines = Vec::new();
    let mut customers: BTreeMap<&str, (bool, bool)> = BTreeMap::new();
    for kind in TriggerKind::ALL {
        let (mut t, mut c, mut m) = (0, 0, 0);
        for (customer, _, r) in records.iter().filter(|(_, k, _)| *k == kind) {
            let conv = converted(customer, r);
            t += 1;
            c += conv as u64;
            m += (r.last_mailed.is_some()) as u64;
            let e = customers.entry(customer).or_default();
            e.0 |= conv;
            e.1 |= r.last_mailed.is_some();
        }
        lines.push(line(kind.id().into(), kind.label().into(), t, c, m));
    }
    let total = line(
        "any".into(),
        "any trigger".into(),
        customers.len() as u64,
        customers.values().filter(|v| v.0).count() as u64,
        customers.values().filter(|v| v.1).count() as u64,
    );
    GrowthReport { attribution_days: ATTRIBUTION_DAYS, triggers: lines, total }
}

/// Trigger → upgrade conversion from the stored triggers (for `/admin/growth` and the
/// economics page). Blocking: run it on the blocking pool.
pub fn conversion_report(
    db: &sled::Db,
    accounts: &dyn crate::accounts::AccountStore,
    tiers: &Tiers,
    now: i64,
) -> Result<GrowthReport, GrowthError> {
    let records = GrowthStore::open(db)?.triggers()?;
    let tier_now = |c: &str| accounts.customer(c).ok().flatten().map(|c| c.tier);
    Ok(report(&records, tier_now, tiers, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use citecast_actors::dates;

    fn today() -> Day {
        dates::from_ymd(2027, 3, 10)
    }

    /// A week of counts, oldest first, ending today.
    fn week(counts: [u64; 7]) -> Week {
        let mut w = Week::default();
        for (i, n) in counts.iter().enumerate() {
            w.usage.insert(today() - 6 + i as Day, *n);
        }
        w
    }

    fn refusals(w: &mut Week, kind: TriggerKind, per_day: &[(Day, u64, u64)]) {
        for (d, count, largest) in per_day {
            w.refusals.insert((today() - d, kind), RefusalDay { count: *count, largest: *largest });
        }
    }

    #[test]
    fn quota_trigger_needs_three_days_past_eighty_percent_in_the_window() {
        let tiers = Tiers::builtin();
        let free = tiers.get("free").unwrap(); // 2,000 a day: past 80 % is 1,601 or more
                                               // Exactly 1,600 is 80 %, not past it.
        let w = week([1_601, 1_600, 0, 1_700, 10, 1_600, 0]);
        assert_eq!(quota_days(&w.usage, 2_000, today()), 2);
        assert!(triggers(&w, free, today()).is_empty());
        let w = week([1_601, 1_600, 0, 1_700, 10, 1_600, 2_000]);
        assert_eq!(triggers(&w, free, today()), vec![TriggerKind::Quota]);
        // A day outside the window does not count: 8 days ago.
        let mut w = week([0, 0, 0, 0, 0, 1_900, 1_900]);
        w.usage.insert(today() - 7, 1_900);
        assert!(triggers(&w, free, today()).is_empty());
        // The offer: Pro, at the customer's price, with the downgrade beside it.
        let w = week([1_601, 0, 1_700, 0, 0, 0, 2_000]);
        let o = offer(TriggerKind::Quota, &w, free, &tiers, &Prices::from_tiers(&tiers), today()).unwrap();
        assert_eq!(o.tier, "pro");
        assert_eq!(o.plan.as_deref(), Some("pro:monthly"));
        assert_eq!(o.benefit, "Pro allows 100,000 requests a day for $49.00 a month.");
        assert!(o.reason.contains("on 3 of the last 7 days"), "{}", o.reason);
        assert_eq!(o.downgrade_plan, "free:monthly");
        // Pro past 80 %: Enterprise, priced per contract (no one-click form).
        let pro = tiers.get("pro").unwrap();
        let w = week([90_000, 90_000, 90_000, 0, 0, 0, 0]);
        assert_eq!(triggers(&w, pro, today()), vec![TriggerKind::Quota]);
        let o = offer(TriggerKind::Quota, &w, pro, &tiers, &Prices::from_tiers(&tiers), today()).unwrap();
        assert_eq!((o.tier.as_str(), o.plan), ("enterprise", None));
    }

    #[test]
    fn refusal_triggers_count_the_window_only() {
        let tiers = Tiers::builtin();
        let free = tiers.get("free").unwrap();
        let mut w = week([0; 7]);
        // 9 429s in the window and 5 eight days ago: not yet; one more today: yes.
        refusals(&mut w, TriggerKind::RateLimited, &[(0, 4, 0), (3, 5, 0), (8, 5, 0)]);
        assert!(triggers(&w, free, today()).is_empty());
        refusals(&mut w, TriggerKind::RateLimited, &[(0, 5, 0)]);
        assert_eq!(triggers(&w, free, today()), vec![TriggerKind::RateLimited]);
        // One refused batch is a mistake; two are a need. The offer fits the largest.
        refusals(&mut w, TriggerKind::BatchRefused, &[(1, 1, 40)]);
        assert!(!triggers(&w, free, today()).contains(&TriggerKind::BatchRefused));
        refusals(&mut w, TriggerKind::BatchRefused, &[(2, 1, 500)]);
        assert!(triggers(&w, free, today()).contains(&TriggerKind::BatchRefused));
        let p = Prices::from_tiers(&tiers);
        let o = offer(TriggerKind::BatchRefused, &w, free, &tiers, &p, today()).unwrap();
        assert_eq!(o.tier, "enterprise", "only Enterprise takes 500 papers a batch");
        refusals(&mut w, TriggerKind::BatchRefused, &[(2, 1, 50)]);
        let o = offer(TriggerKind::BatchRefused, &w, free, &tiers, &p, today()).unwrap();
        assert_eq!(o.tier, "pro");
        assert!(o.reason.starts_with("2 batch requests"), "{}", o.reason);
        // A forbidden forecast call: the tier that has forecasts (anonymous → free here).
        let anon = tiers.get("anonymous").unwrap();
        refusals(&mut w, TriggerKind::ForecastForbidden, &[(6, 1, 0)]);
        assert!(triggers(&w, anon, today()).contains(&TriggerKind::ForecastForbidden));
        let o = offer(TriggerKind::ForecastForbidden, &w, anon, &tiers, &p, today()).unwrap();
        assert_eq!((o.tier.as_str(), o.plan), ("free", None), "free costs nothing: no upgrade form");
    }

    #[test]
    fn at_most_one_mail_per_trigger_per_month() {
        let t0 = 1_800_000_000;
        assert!(may_mail(None, t0));
        assert!(!may_mail(Some(t0), t0 + 86_400));
        assert!(!may_mail(Some(t0), t0 + 29 * 86_400 + 86_399));
        assert!(may_mail(Some(t0), t0 + 30 * 86_400));
    }

    #[test]
    fn conversion_counts_upgrades_within_the_window() {
        let tiers = Tiers::builtin();
        let t0 = 1_800_000_000;
        let rec = |first_at, converted_at: Option<i64>, mailed: Option<i64>| store::TriggerRecord {
            first_at,
            last_at: first_at,
            tier_at_first: "free".into(),
            offered: "pro".into(),
            last_mailed: mailed,
            mails: mailed.is_some() as u32,
            converted_at,
        };
        let records = vec![
            ("a".to_string(), TriggerKind::Quota, rec(t0, Some(t0 + 86_400), Some(t0))),
            ("a".to_string(), TriggerKind::RateLimited, rec(t0, None, None)),
            ("b".to_string(), TriggerKind::Quota, rec(t0, Some(t0 + 40 * 86_400), None)),
            ("c".to_string(), TriggerKind::Quota, rec(t0, None, None)),
            ("d".to_string(), TriggerKind::Quota, rec(t0, None, None)),
        ];
        // c is on Pro now (not yet stamped by the job); d still on free.
        let now_tier = |c: &str| Some(if c == "c" { "pro".to_string() } else { "free".to_string() });
        let r = report(&records, now_tier, &tiers, t0 + 2 * 86_400);
        let quota = &r.triggers[0];
        // a converted in a day; b after 40 days (too late); c live; d not.
        assert_eq!((quota.triggered, quota.converted, quota.mailed), (4, 2, 1));
        assert!((quota.rate.rate - 0.5).abs() < 1e-12);
        assert_eq!((r.triggers[1].triggered, r.triggers[1].converted), (1, 0));
        assert_eq!((r.total.triggered, r.total.converted), (4, 2));
    }
}
