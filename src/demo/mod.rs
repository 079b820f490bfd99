//! Demo mode (`citecast serve --demo`): an empty data directory is seeded with twelve
//! months of synthetic business: customers signing up on every plan, trials, paid and
//! unpaid invoices, upgrades, pauses and cancellations, marketing spend and costs, all
//! driven through the real billing code day by day so every page computes from real
//! records. Everything is marked: customers are `Demo …` at `@demo.citecast.invalid`
//! (a domain that never receives mail), the store carries `meta/demo_data`, and the
//! operator pages say so. A directory holding real customers is refused.

use citecast_actors::dates::{self, Day};

use crate::accounts::tiers::Tiers;
use crate::accounts::AccountStore;
use crate::billing::{Billing, Interval, Plan, Prices};
use crate::economics::store::{Ledgers, Table};

/// The e-mail domain of demo customers (`.invalid` is reserved: no mail can go there).
pub const DEMO_DOMAIN: &str = "demo.citecast.invalid";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0} holds real customers; demo data never mixes with them: use an empty --data-dir")]
    RealData(String),
    #[error("seeding the demo failed: {0}")]
    Failed(String),
}

fn failed(e: impl std::fmt::Display) -> DemoError {
    DemoError::Failed(e.to_string())
}

/// What was seeded.
#[derive(Debug, Default, serde::Serialize)]
pub struct Seeded {
    pub customers: usize,
    pub invoices_paid: usize,
    pub cancellations: usize,
    pub already: bool,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn secs(d: Day, hour: i64) -> i64 {
    d as i64 * 86_400 + hour * 3600
}

/// Whether the store holds demo data already.
pub fn is_seeded(db: &sled::Db) -> bool {
    crate::economics::routes::is_demo(db)
}

/// Seeds a year of demo business ending today, unless already seeded; refuses a store
/// with real customers.
pub fn seed(
    db: &sled::Db,
    accounts: &dyn AccountStore,
    billing: &Billing,
    tiers: &Tiers,
    label: &str,
) -> Result<Seeded, DemoError> {
    if is_seeded(db) {
        return Ok(Seeded { already: true, ..Default::default() });
    }
    if !accounts.customers(None, 1).map_err(failed)?.is_empty() {
        return Err(DemoError::RealData(label.to_string()));
    }
    let meta = db.open_tree(citecast_actors::migrate::META_TREE).map_err(failed)?;
    // Marked first: a crash mid-seed leaves a directory known to be demo, never "real".
    meta.insert("demo_data", b"1".as_slice()).map_err(failed)?;
    let prices = Prices::from_tiers(tiers);
    let paid_tier =
        tiers.tiers.iter().find(|t| t.price_monthly_usd.is_some_and(|p| p > 0)).map(|t| t.id.clone());
    let free = tiers.default_tier().id.clone();
    let today = dates::today();
    let start = today - 365;
    let mut rng = Rng(2026);
    let mut out = Seeded::default();
    let mut live: Vec<String> = Vec::new();
    let actor = "demo";
    for day in start..=today {
        // Sign-ups: growing from about one every three days to one a day.
        let rate = 0.3 + 0.7 * (day - start) as f64 / 365.0;
        if rng.next() < rate {
            let n = out.customers;
            let name = format!("Demo Lab {n:03}");
            let email = format!("lab{n:03}@{DEMO_DOMAIN}");
            let (customer, _) = accounts.add_customer(&name, &email, &free).map_err(failed)?;
            let plan = match (rng.next(), &paid_tier) {
                (r, Some(t)) if r < 0.35 => Plan::new(t, Interval::Monthly),
                (r, Some(t)) if r < 0.5 => Plan::new(t, Interval::Annual),
                _ => Plan::new(&free, Interval::Monthly),
            };
            billing.start(&customer.id, &plan, &prices, day, secs(day, 9), actor).map_err(failed)?;
            live.push(customer.id);
            out.customers += 1;
        }
        // Renewals, trial ends and dunning, as the daily job runs them; most invoices are
        // paid within days, some never (dunning then pauses them).
        for change in billing.run_daily(day, secs(day, 1), &prices).map_err(failed)? {
            if let Some(inv) = change.invoice.filter(|i| i.status == crate::billing::InvoiceStatus::Open) {
                if rng.next() < 0.93 {
                    billing
                        .mark_paid(&inv.id, Some("demo-transfer"), secs(day, 15), actor)
                        .map_err(failed)?;
                    out.invoices_paid += 1;
                }
            }
        }
        // What customers do on a given day.
        for id in &live {
            let Some(sub) = billing.subscription(id).map_err(failed)? else { continue };
            use crate::billing::subscription::Status;
            let r = rng.next();
            let result = match sub.status {
                Status::Active if r < 0.0015 => {
                    billing.cancel(id, false, secs(day, 12), actor).map(|_| out.cancellations += 1)
                }
                Status::Active if r < 0.0025 && sub.plan.tier == free => match &paid_tier {
                    Some(t) => billing
                        .change_plan(id, &Plan::new(t, Interval::Monthly), &prices, day, secs(day, 11), actor)
                        .and_then(|c| {
                            match c.invoice.filter(|i| i.status == crate::billing::InvoiceStatus::Open) {
                                Some(inv) => billing
                                    .mark_paid(&inv.id, Some("demo-transfer"), secs(day, 16), actor)
                                    .map(|_| out.invoices_paid += 1),
                                None => Ok(()),
                            }
                        }),
                    None => Ok(()),
                },
                Status::Active if r < 0.0030 => billing.pause(id, secs(day, 10), actor).map(|_| ()),
                Status::Paused if r < 0.05 => {
                    billing.resume(id, &prices, day, secs(day, 10), actor).map(|_| ())
                }
                _ => Ok(()),
            };
            // A refused move (a pause while an invoice is unpaid, say) is just not made.
            let _ = result;
        }
    }
    // The API serves each customer the tier their subscription pays for.
    for id in &live {
        if let Some(sub) = billing.subscription(id).map_err(failed)? {
            accounts.set_tier(id, sub.effective_tier()).map_err(failed)?;
        }
    }
    // Traffic of the last 60 days, in the daily counts the limiter keeps (per customer
    // and per key): paying customers call more, and every fifth one is fading out, so
    // the churn job finds something.
    let usage = db.open_tree("usage").map_err(failed)?;
    for (n, id) in live.iter().enumerate() {
        let Some(sub) = billing.subscription(id).map_err(failed)? else { continue };
        let base = if sub.effective_tier() == free { 200.0 } else { 4_000.0 };
        let keys = accounts.keys_of(id).map_err(failed)?;
        for back in 0..60 {
            let day = today - back;
            let fading = n % 5 == 0 && back < 10;
            let count = (base * (0.5 + rng.next()) * if fading { 0.1 } else { 1.0 }) as u64;
            for principal in std::iter::once(id.as_str()).chain(keys.iter().take(1).map(|k| k.id.as_str())) {
                let mut k = principal.as_bytes().to_vec();
                k.push(0);
                k.extend_from_slice(&day.to_be_bytes());
                usage.insert(k, &count.to_be_bytes()).map_err(failed)?;
            }
        }
    }
    // Support tickets (most answered within hours, two still waiting) and survey answers.
    let support = crate::support::Support::open(db).map_err(failed)?;
    let subjects = [
        "Batch size on Pro",
        "Invoice address",
        "Forecast for a new paper",
        "Rate limit reached",
        "Annual plan switch",
    ];
    for (n, id) in live.iter().enumerate().filter(|(n, _)| n % 4 == 1) {
        let opened = secs(today - (n as i32 * 3) % 330 - 1, 9);
        let t = support
            .open_ticket(
                id,
                subjects[n % subjects.len()],
                "Demo ticket: a question a customer might ask.",
                opened,
            )
            .map_err(failed)?;
        if n % 16 != 1 {
            let answered = opened + (1 + (rng.next() * 6.0) as i64) * 3600;
            support
                .reply(
                    &t.id,
                    None,
                    crate::support::Author::Operator,
                    "Demo answer from the operator.",
                    answered,
                )
                .map_err(failed)?;
            support
                .set_status(&t.id, None, crate::support::TicketStatus::Closed, answered + 3600)
                .map_err(failed)?;
        }
    }
    for (n, id) in live.iter().enumerate().filter(|(n, _)| n % 3 == 0) {
        let score = [10u8, 9, 9, 8, 7, 10, 6, 9, 3, 10][n % 10];
        let r = crate::support::NpsResponse {
            customer_id: id.clone(),
            score,
            comment: "Demo survey answer.".into(),
            at: secs(today - 1, 12),
        };
        support.answer_survey(&r).map_err(failed)?;
    }
    // Marketing spend and costs for each month of the year.
    let ledgers = Ledgers::open(db).map_err(failed)?;
    let now = dates::now_secs();
    let first = crate::economics::month_of_day(start);
    let last = crate::economics::month_of_day(today);
    for m in first..=last {
        let label = crate::economics::month_label(m);
        let spend = 80_000 + (rng.next() * 60_000.0) as i64;
        ledgers.record(Table::Spend, &label, spend, "demo ads", now).map_err(failed)?;
        ledgers
            .record(Table::Costs, &label, 25_000 + (rng.next() * 10_000.0) as i64, "demo hosting", now)
            .map_err(failed)?;
    }
    db.flush().map_err(failed)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_year_of_demo_business_computes_and_real_data_is_refused() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let accounts = crate::accounts::Accounts::open(&db).unwrap();
        let billing = Billing::open(&db).unwrap();
        let tiers = Tiers::builtin();
        let s = seed(&db, &accounts, &billing, &tiers, "test").unwrap();
        assert!(s.customers > 100 && s.invoices_paid > 100, "{s:?}");
        assert!(seed(&db, &accounts, &billing, &tiers, "test").unwrap().already, "seeded once");
        let e = crate::economics::routes::current(&db, &billing).unwrap();
        assert!(e.months.len() >= 12 && e.paying_now > 0, "{e:?}");
        assert!(e.months.iter().rev().nth(1).is_some_and(|m| m.mrr_minor > 0 && m.cac_minor.is_some()));
        assert!(e.trial_conversion.is_some() && !e.cohorts.is_empty());

        let real = sled::Config::new().temporary(true).open().unwrap();
        let accounts = crate::accounts::Accounts::open(&real).unwrap();
        accounts.add_customer("Real Lab", "lab@example.org", "free").unwrap();
        let refused = seed(&real, &accounts, &Billing::open(&real).unwrap(), &tiers, "real");
        assert!(matches!(refused, Err(DemoError::RealData(_))));
    }
}
