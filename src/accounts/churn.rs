//! Churn signals from usage: a customer whose API use fell sharply, went quiet, or who
//! has no working key left is worth a call before the subscription lapses.
//!
//! The signals are computed from the daily request counts of all a customer's keys
//! (live and archived, [`crate::journal`]), so they need nothing the API does not
//! already record. The `churn` job recomputes them daily and replaces the stored set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use citecast_actors::dates::{self, Day};
use citecast_actors::journal::Journal;
use citecast_actors::store::StoreError;

use super::{AccountError, AccountStore};

/// Weekly requests a customer must have had for a drop to mean anything.
const MIN_BASELINE_PER_WEEK: f64 = 50.0;
/// The last week below this share of the four weeks before it is a drop.
const DROP_RATIO: f64 = 0.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// The last 7 days' requests fell below half the weekly average of the 28 days before.
    UsageDrop,
    /// No request in the last 14 days after some in the 28 days before.
    Inactive,
    /// Every key is revoked: the customer cannot call the API at all.
    NoActiveKey,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnSignal {
    pub customer_id: String,
    pub email: String,
    pub tier: String,
    pub signals: Vec<Signal>,
    pub last_7_days: u64,
    /// Mean weekly requests of the 28 days before the last 7.
    pub weekly_baseline: f64,
    /// Day the signals were computed for.
    pub day: String,
}

/// The signals of one customer's daily counts (`days`: day -> requests, any order).
pub fn signals_of(days: &BTreeMap<Day, u64>, today: Day, active_keys: usize) -> (Vec<Signal>, u64, f64) {
    let sum = |from: Day, to: Day| days.range(from..=to).map(|(_, n)| *n).sum::<u64>();
    let last7 = sum(today - 6, today);
    let baseline = sum(today - 34, today - 7) as f64 / 4.0;
    let last14 = sum(today - 13, today);
    let before14 = sum(today - 41, today - 14);
    let mut out = Vec::new();
    if baseline >= MIN_BASELINE_PER_WEEK && (last7 as f64) < DROP_RATIO * baseline {
        out.push(Signal::UsageDrop);
    }
    if last14 == 0 && before14 > 0 {
        out.push(Signal::Inactive);
    }
    if active_keys == 0 {
        out.push(Signal::NoActiveKey);
    }
    (out, last7, baseline)
}

#[derive(Debug, thiserror::Error)]
pub enum ChurnError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Accounts(#[from] AccountError),
}

/// Computes every customer's signals for `today`, stores the customers that have any
/// (replacing the previous set) and returns them with the number of customers examined.
pub fn compute(
    accounts: &dyn AccountStore,
    journal: &Journal,
    db: &sled::Db,
    today: Day,
) -> Result<(Vec<ChurnSignal>, u64), ChurnError> {
    let mut found = Vec::new();
    let mut examined = 0;
    let mut after: Option<String> = None;
    loop {
        let page = accounts.customers(after.as_deref(), 500)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for c in &page {
            examined += 1;
            let keys = accounts.keys_of(&c.id)?;
            let mut days = BTreeMap::new();
            for k in &keys {
                for u in journal.usage_between(&k.id, today - 41, today)? {
                    if let Some(d) = dates::parse(&u.day) {
                        *days.entry(d).or_insert(0) += u.requests;
                    }
                }
            }
            let active = keys.iter().filter(|k| k.revoked.is_none()).count();
            let (signals, last_7_days, weekly_baseline) = signals_of(&days, today, active);
            if !signals.is_empty() {
                found.push(ChurnSignal {
                    customer_id: c.id.clone(),
                    email: c.email.clone(),
                    tier: c.tier.clone(),
                    signals,
                    last_7_days,
                    weekly_baseline,
                    day: dates::format(today),
                });
            }
        }
    }
    super::store::save_churn_signals(db, &found)?;
    Ok((found, examined))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(pairs: &[(Day, u64)]) -> BTreeMap<Day, u64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn drops_silence_and_lost_keys_are_signals() {
        let t = 1000;
        // 100 a day for a month, then 10 a day: a drop.
        let mut d: Vec<(Day, u64)> = (t - 34..=t - 7).map(|x| (x, 100)).collect();
        d.extend((t - 6..=t).map(|x| (x, 10)));
        let (s, last7, base) = signals_of(&days(&d), t, 1);
        assert_eq!(s, vec![Signal::UsageDrop]);
        assert_eq!((last7, base), (70, 700.0));

        // Steady use: nothing.
        let steady: Vec<(Day, u64)> = (t - 34..=t).map(|x| (x, 100)).collect();
        assert!(signals_of(&days(&steady), t, 2).0.is_empty());

        // Quiet for two weeks after some use, and no key left.
        let quiet = days(&[(t - 20, 5)]);
        assert_eq!(signals_of(&quiet, t, 0).0, vec![Signal::Inactive, Signal::NoActiveKey]);

        // A small customer's dip is not a drop; a customer that never called is not inactive.
        let small: Vec<(Day, u64)> = (t - 34..=t - 7).map(|x| (x, 2)).collect();
        assert!(signals_of(&days(&small), t, 1).0.is_empty());
        assert!(signals_of(&BTreeMap::new(), t, 1).0.is_empty());
    }
}
