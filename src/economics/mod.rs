//! Unit economics from stored events, never typed-in figures: recognised revenue (MRR)
//! and its growth, customer and revenue churn, trial→paid conversion, ARPU, LTV, CAC and
//! LTV:CAC, gross margin, the annual-plan share and cohort retention. The inputs are the
//! billing store's subscriptions, their status transitions and paid invoices, plus the
//! operator's marketing-spend and cost tables ([`store`]); `/admin/economics` and
//! `citecast economics --json` show the same [`Economics`].
//!
//! Definitions (all per calendar month, UTC):
//! - **MRR** is revenue recognised in the month: each paid, unrefunded invoice is spread
//!   evenly over the days of the period it covers. An annual invoice adds a twelfth a
//!   month, and a prorated upgrade invoice adds only its prorated amount, so upgrades,
//!   credits and annual plans are counted as they were charged.
//! - A customer is **paying** at a moment when their latest status is `active` or
//!   `past_due`. **Customer churn** is the share of customers paying at the month's start
//!   whose subscription was canceled during it; **revenue churn** is their share of the
//!   previous month's MRR.
//! - **ARPU** is MRR over the customers with revenue that month; **LTV** is ARPU × gross
//!   margin ÷ the mean customer churn of the last three months (undefined without churn);
//!   **CAC** is the month's marketing spend over its new paying customers (first paid
//!   invoice that month).

pub mod routes;
pub mod store;

use std::collections::{BTreeMap, BTreeSet};

use citecast_actors::dates::{self, Day};
use serde::{Deserialize, Serialize};

use crate::billing::subscription::Status;
use crate::billing::{Interval, TransitionRecord};

/// A month as a number: year × 12 + month − 1.
pub type Month = i32;

pub fn month_of_day(d: Day) -> Month {
    let (y, m, _) = dates::to_ymd(d);
    y * 12 + m as i32 - 1
}

pub fn month_of_secs(t: i64) -> Month {
    month_of_day(dates::day_of_secs(t))
}

/// `2026-11`.
pub fn month_label(m: Month) -> String {
    format!("{:04}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1)
}

pub fn parse_month(s: &str) -> Option<Month> {
    let (y, m) = s.trim().split_once('-')?;
    let (y, m): (i32, i32) = (y.parse().ok()?, m.parse().ok()?);
    ((1970..=9999).contains(&y) && (1..=12).contains(&m) && s.trim().len() == 7).then_some(y * 12 + m - 1)
}

/// First day of a month.
pub fn month_start(m: Month) -> Day {
    dates::from_ymd(m.div_euclid(12), (m.rem_euclid(12) + 1) as u32, 1)
}

/// Unix seconds at the start of a month.
pub fn month_start_secs(m: Month) -> i64 {
    month_start(m) as i64 * 86_400
}

/// One customer's subscription facts.
#[derive(Debug, Clone)]
pub struct CustomerFacts {
    pub id: String,
    /// Unix seconds the subscription began (the sign-up, for cohorts).
    pub signed_up: i64,
    pub interval: Interval,
    /// Status changes, oldest first.
    pub history: Vec<TransitionRecord>,
}

impl CustomerFacts {
    /// The status in force at `t` (None before the first record).
    pub fn status_at(&self, t: i64) -> Option<Status> {
        self.history.iter().take_while(|r| r.at <= t).last().map(|r| r.to)
    }

    pub fn paying_at(&self, t: i64) -> bool {
        matches!(self.status_at(t), Some(Status::Active | Status::PastDue))
    }
}

/// One paid invoice.
#[derive(Debug, Clone)]
pub struct PaidInvoice {
    pub id: String,
    pub customer_id: String,
    pub total_minor: i64,
    pub start: Day,
    pub end: Day,
    pub paid_at: i64,
    pub refunded: bool,
}

/// An amount the operator recorded for a month (marketing spend, a cost).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub month: String,
    pub amount_minor: i64,
    /// Channel (spend) or kind (cost), e.g. `ads`, `hosting`.
    pub label: String,
    pub recorded: i64,
}

/// Each paid invoice's amount spread over its days, summed per month and customer.
pub fn recognised(invoices: &[PaidInvoice]) -> BTreeMap<(Month, String), i64> {
    let mut out: BTreeMap<(Month, String), i64> = BTreeMap::new();
    for inv in invoices.iter().filter(|i| !i.refunded && i.total_minor > 0) {
        let days = (inv.end - inv.start).max(1) as i64;
        // Cumulative rounding: the parts add up to the total exactly.
        let mut given = 0i64;
        let mut d = inv.start;
        while d < inv.end.max(inv.start + 1) {
            let next = month_start(month_of_day(d) + 1).min(inv.end.max(inv.start + 1));
            let upto = (next - inv.start) as i64;
            let cumulative = inv.total_minor * upto / days;
            *out.entry((month_of_day(d), inv.customer_id.clone())).or_default() += cumulative - given;
            given = cumulative;
            d = next;
        }
    }
    out
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MonthFigures {
    pub month: String,
    pub mrr_minor: i64,
    /// Growth of MRR on the month before, as a fraction (None: no MRR before).
    pub mrr_growth: Option<f64>,
    pub paying_at_start: u64,
    pub churned: u64,
    pub customer_churn: Option<f64>,
    pub revenue_churn: Option<f64>,
    pub new_paying: u64,
    pub arpu_minor: Option<i64>,
    pub spend_minor: i64,
    pub cac_minor: Option<i64>,
    pub costs_minor: i64,
    pub gross_margin: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cohort {
    pub month: String,
    pub customers: u64,
    /// Share still paying at the end of each month since sign-up (0 = the sign-up month).
    pub retention: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Economics {
    pub as_of: String,
    pub months: Vec<MonthFigures>,
    pub trials: u64,
    pub trials_converted: u64,
    pub trial_conversion: Option<f64>,
    pub paying_now: u64,
    pub annual_share: Option<f64>,
    pub ltv_minor: Option<i64>,
    pub ltv_to_cac: Option<f64>,
    pub cohorts: Vec<Cohort>,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// Every figure, for the months from the first event to `now`'s month.
pub fn compute(
    customers: &[CustomerFacts],
    invoices: &[PaidInvoice],
    spend: &[Entry],
    costs: &[Entry],
    now: i64,
) -> Economics {
    let this = month_of_secs(now);
    let first = customers
        .iter()
        .map(|c| month_of_secs(c.signed_up))
        .chain(invoices.iter().map(|i| month_of_day(i.start)))
        .min()
        .unwrap_or(this)
        .min(this);
    let by_month_customer = recognised(invoices);
    let mut mrr: BTreeMap<Month, i64> = BTreeMap::new();
    for ((m, _), v) in &by_month_customer {
        *mrr.entry(*m).or_default() += v;
    }
    let sum_entries = |list: &[Entry], m: Month| -> i64 {
        list.iter().filter(|e| parse_month(&e.month) == Some(m)).map(|e| e.amount_minor).sum()
    };
    let first_paid: BTreeMap<&str, Month> = {
        let mut f: BTreeMap<&str, Month> = BTreeMap::new();
        for i in invoices.iter().filter(|i| !i.refunded && i.total_minor > 0) {
            let m = month_of_secs(i.paid_at);
            f.entry(i.customer_id.as_str()).and_modify(|x| *x = (*x).min(m)).or_insert(m);
        }
        f
    };
    let mut months = Vec::new();
    for m in first..=this {
        let (start, end) = (month_start_secs(m), month_start_secs(m + 1) - 1);
        let paying_start: Vec<&CustomerFacts> = customers.iter().filter(|c| c.paying_at(start - 1)).collect();
        let churned: Vec<&&CustomerFacts> = paying_start
            .iter()
            .filter(|c| c.history.iter().any(|r| r.to == Status::Canceled && r.at >= start && r.at <= end))
            .collect();
        let prev_mrr = mrr.get(&(m - 1)).copied().unwrap_or(0);
        let lost: i64 =
            churned.iter().map(|c| by_month_customer.get(&(m - 1, c.id.clone())).copied().unwrap_or(0)).sum();
        let revenue = mrr.get(&m).copied().unwrap_or(0);
        let with_revenue = by_month_customer.keys().filter(|(mm, _)| *mm == m).count() as i64;
        let new_paying = first_paid.values().filter(|&&f| f == m).count() as u64;
        let spend_m = sum_entries(spend, m);
        let costs_m = sum_entries(costs, m);
        months.push(MonthFigures {
            month: month_label(m),
            mrr_minor: revenue,
            mrr_growth: ratio((revenue - prev_mrr) as f64, prev_mrr as f64),
            paying_at_start: paying_start.len() as u64,
            churned: churned.len() as u64,
            customer_churn: ratio(churned.len() as f64, paying_start.len() as f64),
            revenue_churn: ratio(lost as f64, prev_mrr as f64),
            new_paying,
            arpu_minor: (with_revenue > 0).then(|| revenue / with_revenue),
            spend_minor: spend_m,
            cac_minor: (new_paying > 0 && spend_m > 0).then(|| spend_m / new_paying as i64),
            costs_minor: costs_m,
            gross_margin: ratio((revenue - costs_m) as f64, revenue as f64),
        });
    }
    // Trials: those that began trialing; converted when they later became active.
    let trials: Vec<&CustomerFacts> =
        customers.iter().filter(|c| c.history.iter().any(|r| r.to == Status::Trialing)).collect();
    let converted = trials
        .iter()
        .filter(|c| {
            let t0 = c.history.iter().find(|r| r.to == Status::Trialing).map(|r| r.at).unwrap_or(0);
            c.history.iter().any(|r| r.at >= t0 && r.to == Status::Active)
        })
        .count() as u64;
    let paying_now: Vec<&CustomerFacts> = customers.iter().filter(|c| c.paying_at(now)).collect();
    let annual = paying_now.iter().filter(|c| c.interval == Interval::Annual).count();
    // LTV from the last three complete months (or what there is).
    let recent: Vec<&MonthFigures> = months.iter().rev().skip(1).take(3).collect();
    let churns: Vec<f64> = recent.iter().filter_map(|f| f.customer_churn).collect();
    let mean_churn = (!churns.is_empty()).then(|| churns.iter().sum::<f64>() / churns.len() as f64);
    let last = recent.first().copied().or(months.last());
    let arpu = last.and_then(|f| f.arpu_minor);
    let margin = last.and_then(|f| f.gross_margin).unwrap_or(1.0);
    let ltv = match (arpu, mean_churn) {
        (Some(a), Some(c)) if c > 0.0 => Some((a as f64 * margin / c).round() as i64),
        _ => None,
    };
    let cacs: Vec<i64> = recent.iter().filter_map(|f| f.cac_minor).collect();
    let cac = (!cacs.is_empty()).then(|| cacs.iter().sum::<i64>() / cacs.len() as i64);
    // Cohorts by sign-up month.
    let cohort_months: BTreeSet<Month> = customers.iter().map(|c| month_of_secs(c.signed_up)).collect();
    let cohorts = cohort_months
        .into_iter()
        .map(|cm| {
            let members: Vec<&CustomerFacts> =
                customers.iter().filter(|c| month_of_secs(c.signed_up) == cm).collect();
            let retention = (cm..=this)
                .map(|m| {
                    let at = (month_start_secs(m + 1) - 1).min(now);
                    members.iter().filter(|c| c.paying_at(at)).count() as f64 / members.len() as f64
                })
                .collect();
            Cohort { month: month_label(cm), customers: members.len() as u64, retention }
        })
        .collect();
    Economics {
        as_of: dates::format(dates::day_of_secs(now)),
        months,
        trials: trials.len() as u64,
        trials_converted: converted,
        trial_conversion: ratio(converted as f64, trials.len() as f64),
        paying_now: paying_now.len() as u64,
        annual_share: ratio(annual as f64, paying_now.len() as f64),
        ltv_minor: ltv,
        ltv_to_cac: match (ltv, cac) {
            (Some(l), Some(c)) if c > 0 => Some(l as f64 / c as f64),
            _ => None,
        },
        cohorts,
    }
}

/// The facts from the billing store.
pub fn facts(
    billing: &crate::billing::Billing,
) -> Result<(Vec<CustomerFacts>, Vec<PaidInvoice>), crate::billing::BillingError> {
    let mut customers = Vec::new();
    let mut invoices = Vec::new();
    for s in billing.subscriptions()? {
        let mut history = billing.audit(&s.customer_id)?;
        history.sort_by_key(|r| r.at);
        for i in billing.invoices(&s.customer_id)? {
            if let Some(paid_at) = i.paid_at {
                invoices.push(PaidInvoice {
                    id: i.id.clone(),
                    customer_id: i.customer_id.clone(),
                    total_minor: i.total_minor,
                    start: i.period.start,
                    end: i.period.end,
                    paid_at,
                    refunded: i.status == crate::billing::InvoiceStatus::Refunded,
                });
            }
        }
        customers.push(CustomerFacts {
            id: s.customer_id.clone(),
            signed_up: s.created,
            interval: s.plan.interval,
            history,
        });
    }
    Ok((customers, invoices))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(y: i32, m: u32, d: u32) -> i64 {
        dates::from_ymd(y, m, d) as i64 * 86_400 + 3600
    }

    fn rec(at: i64, to: Status) -> TransitionRecord {
        TransitionRecord { at, from: None, to, event: "e".into(), actor: "t".into() }
    }

    fn inv(id: &str, c: &str, total: i64, start: Day, end: Day, paid: i64) -> PaidInvoice {
        PaidInvoice {
            id: id.into(),
            customer_id: c.into(),
            total_minor: total,
            start,
            end,
            paid_at: paid,
            refunded: false,
        }
    }

    #[test]
    fn revenue_is_spread_over_the_days_it_pays_for() {
        let d = dates::from_ymd;
        // 31 days from 15 Jan to 15 Feb 2027: 17 days in January, 14 in February.
        let r = recognised(&[inv("i1", "a", 3_100, d(2027, 1, 15), d(2027, 2, 15), 0)]);
        let jan = month_of_day(d(2027, 1, 1));
        assert_eq!(r[&(jan, "a".into())], 1_700);
        assert_eq!(r[&(jan + 1, "a".into())], 1_400);
        // An annual 490.00 from 1 March 2027: a twelfth-ish a month, adding up exactly.
        let r = recognised(&[inv("i2", "b", 49_000, d(2027, 3, 1), d(2028, 3, 1), 0)]);
        assert_eq!(r.values().sum::<i64>(), 49_000);
        assert_eq!(r.len(), 12);
        assert_eq!(r[&(month_of_day(d(2027, 3, 1)), "b".into())], 49_000 * 31 / 366);
    }

    #[test]
    fn churn_conversion_arpu_ltv_and_cohorts_from_hand_worked_events() {
        let d = dates::from_ymd;
        // a: trial in Jan, paying from Feb 1 (49/month), cancels Apr 10.
        // b: paying from Feb 1 (49/month), annual share counts its interval.
        // c: trial in Feb, never pays (canceled Mar 1).
        let a = CustomerFacts {
            id: "a".into(),
            signed_up: secs(2027, 1, 18),
            interval: Interval::Monthly,
            history: vec![
                rec(secs(2027, 1, 18), Status::Trialing),
                rec(secs(2027, 2, 1), Status::Active),
                rec(secs(2027, 4, 10), Status::Canceled),
            ],
        };
        let b = CustomerFacts {
            id: "b".into(),
            signed_up: secs(2027, 2, 1),
            interval: Interval::Annual,
            history: vec![rec(secs(2027, 2, 1), Status::Active)],
        };
        let c = CustomerFacts {
            id: "c".into(),
            signed_up: secs(2027, 2, 3),
            interval: Interval::Monthly,
            history: vec![rec(secs(2027, 2, 3), Status::Trialing), rec(secs(2027, 3, 1), Status::Canceled)],
        };
        let invoices = vec![
            inv("a1", "a", 4_900, d(2027, 2, 1), d(2027, 3, 1), secs(2027, 2, 1)),
            inv("a2", "a", 4_900, d(2027, 3, 1), d(2027, 4, 1), secs(2027, 3, 1)),
            inv("b1", "b", 4_900, d(2027, 2, 1), d(2027, 3, 1), secs(2027, 2, 1)),
            inv("b2", "b", 4_900, d(2027, 3, 1), d(2027, 4, 1), secs(2027, 3, 1)),
            inv("b3", "b", 4_900, d(2027, 4, 1), d(2027, 5, 1), secs(2027, 4, 1)),
        ];
        let spend =
            vec![Entry { month: "2027-02".into(), amount_minor: 10_000, label: "ads".into(), recorded: 0 }];
        let costs = vec![Entry {
            month: "2027-03".into(),
            amount_minor: 1_960,
            label: "hosting".into(),
            recorded: 0,
        }];
        let e = compute(&[a, b, c], &invoices, &spend, &costs, secs(2027, 4, 20));
        let m = |label: &str| e.months.iter().find(|f| f.month == label).unwrap().clone();
        assert_eq!(e.months.first().unwrap().month, "2027-01");
        assert_eq!(
            (m("2027-02").mrr_minor, m("2027-03").mrr_minor, m("2027-04").mrr_minor),
            (9_800, 9_800, 4_900)
        );
        assert_eq!(m("2027-03").mrr_growth, Some(0.0));
        // April: a and b paying at its start, a canceled: churn 1/2, revenue churn 4900/9800.
        assert_eq!((m("2027-04").paying_at_start, m("2027-04").churned), (2, 1));
        assert_eq!(m("2027-04").customer_churn, Some(0.5));
        assert_eq!(m("2027-04").revenue_churn, Some(0.5));
        // February: two new paying customers and 100.00 of spend: CAC 50.00.
        assert_eq!((m("2027-02").new_paying, m("2027-02").cac_minor), (2, Some(5_000)));
        assert_eq!(m("2027-03").arpu_minor, Some(4_900));
        assert_eq!(m("2027-03").gross_margin, Some(0.8));
        // Trials: a converted, c did not.
        assert_eq!((e.trials, e.trials_converted, e.trial_conversion), (2, 1, Some(0.5)));
        assert_eq!((e.paying_now, e.annual_share), (1, Some(1.0)));
        // LTV: ARPU 49.00 × margin 0.8 / mean churn of Jan..Mar (only March has a paying base: 0).
        assert_eq!(e.ltv_minor, None, "no churn measured before April: LTV undefined");
        // Cohorts: January (a): paying at the end of Feb and Mar, not Apr.
        let jan = e.cohorts.iter().find(|c| c.month == "2027-01").unwrap();
        assert_eq!(jan.retention, vec![0.0, 1.0, 1.0, 0.0]);
        let feb = e.cohorts.iter().find(|c| c.month == "2027-02").unwrap();
        assert_eq!((feb.customers, feb.retention.clone()), (2, vec![0.5, 0.5, 0.5]));
    }

    #[test]
    fn months_parse_and_print() {
        assert_eq!(parse_month("2026-11").map(month_label).as_deref(), Some("2026-11"));
        for bad in ["2026-13", "2026-1", "26-11", "x", "", "2026-11-01"] {
            assert_eq!(parse_month(bad), None, "{bad}");
        }
    }
}
