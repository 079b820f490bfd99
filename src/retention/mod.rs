//! Churn and retention: a daily risk score per customer from what is stored (the churn
//! job's usage signals, failed payments, support tickets left unresolved), the win-back
//! mail 30 days after a cancellation ([`job`]), and the rates that say whether any of it
//! works: pauses that end in a resume, and win-back mails followed by a new subscription.
//! Cancelling stays one click on `/billing`, with pause offered beside it, never in the way.

pub mod job;
pub mod store;

use serde::Serialize;

use crate::accounts::churn::{ChurnSignal, Signal};
use crate::billing::subscription::Status;
use crate::billing::TransitionRecord;

/// A customer's churn risk, 0 (none seen) to 100, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Risk {
    pub customer_id: String,
    pub score: u32,
    pub reasons: Vec<String>,
}

/// The score: usage falling 30, no call in 14 days 30, no working key 20, an unpaid
/// invoice (past due) 30, each unresolved support ticket 10 (at most 20); capped at 100.
pub fn risk(customer_id: &str, signals: &[Signal], past_due: bool, open_tickets: usize) -> Risk {
    let mut score = 0u32;
    let mut reasons = Vec::new();
    for s in signals {
        let (points, why) = match s {
            Signal::UsageDrop => (30, "API use fell by more than half"),
            Signal::Inactive => (30, "no API call in 14 days"),
            Signal::NoActiveKey => (20, "no working API key"),
        };
        score += points;
        reasons.push(why.to_string());
    }
    if past_due {
        score += 30;
        reasons.push("an invoice is past due".into());
    }
    if open_tickets > 0 {
        score += (10 * open_tickets as u32).min(20);
        reasons.push(format!("{open_tickets} support ticket(s) unresolved"));
    }
    Risk { customer_id: customer_id.to_string(), score: score.min(100), reasons }
}

/// Risks of every customer with a signal, a past-due subscription or open tickets,
/// highest first.
pub fn risks(signals: &[ChurnSignal], past_due: &[String], open_tickets: &[(String, usize)]) -> Vec<Risk> {
    let mut ids: std::collections::BTreeSet<&str> = signals.iter().map(|s| s.customer_id.as_str()).collect();
    ids.extend(past_due.iter().map(String::as_str));
    ids.extend(open_tickets.iter().filter(|(_, n)| *n > 0).map(|(c, _)| c.as_str()));
    let mut out: Vec<Risk> = ids
        .into_iter()
        .map(|id| {
            let sig =
                signals.iter().find(|s| s.customer_id == id).map(|s| s.signals.clone()).unwrap_or_default();
            let tickets = open_tickets.iter().find(|(c, _)| c == id).map(|(_, n)| *n).unwrap_or(0);
            risk(id, &sig, past_due.iter().any(|p| p == id), tickets)
        })
        .filter(|r| r.score > 0)
        .collect();
    out.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.customer_id.cmp(&b.customer_id)));
    out
}

/// Pauses, and how many ended in a resume (a pause counts once, by its next change).
pub fn pause_to_resume(histories: &[Vec<TransitionRecord>]) -> (u64, u64) {
    let (mut pauses, mut resumed) = (0, 0);
    for h in histories {
        for (i, r) in h.iter().enumerate() {
            if r.to == Status::Paused {
                pauses += 1;
                if h.get(i + 1).is_some_and(|n| n.to == Status::Active) {
                    resumed += 1;
                }
            }
        }
    }
    (pauses, resumed)
}

/// Win-back mails sent, and how many were followed by a new subscription within 30
/// days (`restarts`: customer → unix seconds of their subscriptions' starts).
pub fn win_back(
    mailed: &[(String, i64)],
    restarts: &std::collections::BTreeMap<String, Vec<i64>>,
) -> (u64, u64) {
    let won = mailed
        .iter()
        .filter(|(c, at)| {
            restarts.get(c).is_some_and(|starts| starts.iter().any(|s| *s > *at && *s <= at + 30 * 86_400))
        })
        .count() as u64;
    (mailed.len() as u64, won)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(at: i64, to: Status) -> TransitionRecord {
        TransitionRecord { at, from: None, to, event: "e".into(), actor: "t".into() }
    }

    #[test]
    fn risk_scores_add_up_and_cap() {
        assert_eq!(risk("a", &[], false, 0).score, 0);
        assert_eq!(risk("a", &[Signal::UsageDrop], true, 0).score, 60);
        let all = risk("a", &[Signal::UsageDrop, Signal::Inactive, Signal::NoActiveKey], true, 5);
        assert_eq!((all.score, all.reasons.len()), (100, 5));
        assert_eq!(risk("a", &[], false, 3).score, 20, "tickets count at most 20");
        let list = risks(&[], &["b".into()], &[("a".into(), 1), ("c".into(), 0)]);
        assert_eq!(
            list.iter().map(|r| (r.customer_id.as_str(), r.score)).collect::<Vec<_>>(),
            [("b", 30), ("a", 10)]
        );
    }

    #[test]
    fn pause_and_win_back_rates_from_events() {
        let h = vec![
            vec![
                rec(1, Status::Active),
                rec(2, Status::Paused),
                rec(3, Status::Active),
                rec(4, Status::Paused),
            ],
            vec![rec(1, Status::Active), rec(2, Status::Paused), rec(3, Status::Canceled)],
        ];
        assert_eq!(pause_to_resume(&h), (3, 1));
        let day = 86_400;
        let mailed =
            vec![("a".to_string(), 100 * day), ("b".to_string(), 100 * day), ("c".to_string(), 100 * day)];
        let mut restarts = std::collections::BTreeMap::new();
        restarts.insert("a".to_string(), vec![10 * day, 110 * day]); // back within 30 days
        restarts.insert("b".to_string(), vec![150 * day]); // too late
        assert_eq!(win_back(&mailed, &restarts), (3, 1));
    }
}

/// What the operator's dashboard shows of retention.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overview {
    /// The customers most at risk, highest first (at most 10).
    pub risks: Vec<Risk>,
    pub pauses: u64,
    pub resumed: u64,
    pub winbacks_sent: u64,
    pub winbacks_won: u64,
}

/// The overview from the stores: churn signals, subscriptions and their histories, the
/// win-back mails, and `open_tickets` (customer, unresolved tickets) from support.
pub fn overview(
    db: &sled::Db,
    billing: &crate::billing::Billing,
    open_tickets: &[(String, usize)],
) -> Result<Overview, String> {
    let signals = crate::accounts::store::churn_signals(db).map_err(|e| e.to_string())?;
    let subs = billing.subscriptions().map_err(|e| e.to_string())?;
    let past_due: Vec<String> =
        subs.iter().filter(|s| s.status == Status::PastDue).map(|s| s.customer_id.clone()).collect();
    let mut histories = Vec::new();
    let mut restarts: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for s in &subs {
        let h = billing.audit(&s.customer_id).map_err(|e| e.to_string())?;
        restarts.insert(
            s.customer_id.clone(),
            h.iter().filter(|r| r.from.is_none() || r.event == "start").map(|r| r.at).collect(),
        );
        histories.push(h);
    }
    let (pauses, resumed) = pause_to_resume(&histories);
    let mailed = store::WinBacks::open(db).and_then(|w| w.all()).map_err(|e| e.to_string())?;
    let (winbacks_sent, winbacks_won) = win_back(&mailed, &restarts);
    let mut risks = risks(&signals, &past_due, open_tickets);
    risks.truncate(10);
    Ok(Overview { risks, pauses, resumed, winbacks_sent, winbacks_won })
}
