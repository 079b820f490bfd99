//! The subscription lifecycle as plain logic: which status changes are allowed, how
//! billing periods advance across month ends, and what a mid-period plan change charges
//! or credits. Money is integer minor units (cents) with a currency, never floats.
//!
//! Statuses: `trialing → active → past_due → paused → canceled`, and back where it
//! makes sense (a failed payment that is later paid, a pause that is resumed). Canceled
//! is final: a returning customer starts a new subscription.

use citecast_actors::dates::{self, Day};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Trialing,
    Active,
    PastDue,
    Paused,
    Canceled,
}

/// What happens to a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A payment succeeded (first payment, renewal, or a late payment of a past-due one).
    PaymentSucceeded,
    /// A payment failed: dunning starts.
    PaymentFailed,
    /// Dunning gave up after its retries: the subscription is paused, not lost.
    DunningExhausted,
    /// The customer pauses.
    Pause,
    /// The customer resumes a paused subscription.
    Resume,
    /// The customer or an operator cancels.
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from:?} subscription cannot take {event:?}")]
pub struct TransitionError {
    pub from: Status,
    pub event: Event,
}

/// The status after `event`, or why it cannot happen.
pub fn transition(from: Status, event: Event) -> Result<Status, TransitionError> {
    use Event as E;
    use Status as S;
    let to = match (from, event) {
        (S::Trialing | S::Active | S::PastDue, E::PaymentSucceeded) => S::Active,
        (S::Trialing | S::Active, E::PaymentFailed) => S::PastDue,
        (S::PastDue, E::PaymentFailed) => S::PastDue,
        (S::PastDue, E::DunningExhausted) => S::Paused,
        (S::Trialing | S::Active | S::PastDue, E::Pause) => S::Paused,
        (S::Paused, E::Resume) => S::Active,
        // A paused subscription that is paid (an outstanding invoice settled) serves again.
        (S::Paused, E::PaymentSucceeded) => S::Active,
        // Cancelling is always possible and as easy as signing up.
        (S::Trialing | S::Active | S::PastDue | S::Paused, E::Cancel) => S::Canceled,
        _ => return Err(TransitionError { from, event }),
    };
    Ok(to)
}

/// Whether the API serves the customer's paid tier in this status (past-due customers
/// keep it while dunning runs; paused and canceled ones fall back to the free tier).
pub fn serves_paid_tier(status: Status) -> bool {
    matches!(status, Status::Trialing | Status::Active | Status::PastDue)
}

/// `day` plus `months` calendar months, clamped to the month's last day: a period that
/// starts on 31 January renews on 28 (or 29) February, then 28 (29) March.
pub fn add_months(day: Day, months: u32) -> Day {
    let (y, m, d) = dates::to_ymd(day);
    let total = (y as i64) * 12 + (m as i64 - 1) + months as i64;
    let (ny, nm) = ((total.div_euclid(12)) as i32, (total.rem_euclid(12) + 1) as u32);
    dates::from_ymd(ny, nm, d.min(days_in_month(ny, nm)))
}

fn days_in_month(y: i32, m: u32) -> u32 {
    let next = if m == 12 { dates::from_ymd(y + 1, 1, 1) } else { dates::from_ymd(y, m + 1, 1) };
    (next - dates::from_ymd(y, m, 1)) as u32
}

/// A billing period, `[start, end)` in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub start: Day,
    pub end: Day,
}

impl Period {
    /// The period of `months` months (1 monthly, 12 annual) starting on `start`.
    pub fn starting(start: Day, months: u32) -> Period {
        Period { start, end: add_months(start, months) }
    }

    /// The period after this one, of the same length in months, anchored on the first
    /// period's day of month (so 31 Jan, 28 Feb, 31 Mar, not 31 Jan, 28 Feb, 28 Mar).
    pub fn next(&self, anchor: Day, months: u32, index: u32) -> Period {
        Period { start: self.end, end: add_months(anchor, months * (index + 1)) }
    }

    pub fn days(&self) -> i64 {
        (self.end - self.start) as i64
    }
}

/// What changing from `old_minor` to `new_minor` (prices per period, minor units) on
/// `day` costs for the rest of `period`: positive is a charge (an upgrade, due at once),
/// negative a credit. Days are whole; the change takes effect at the start of `day`.
/// Rounded to the nearest minor unit, halves away from zero.
pub fn prorate(old_minor: i64, new_minor: i64, period: Period, day: Day) -> i64 {
    let total = period.days();
    if total <= 0 || day >= period.end {
        return 0;
    }
    let remaining = (period.end - day.max(period.start)) as i64;
    let numerator = (new_minor - old_minor) * remaining;
    let half = total / 2;
    if numerator >= 0 {
        (numerator + half) / total
    } else {
        -((-numerator + half) / total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Event as E;
    use Status as S;

    #[test]
    fn every_allowed_and_every_refused_transition() {
        let statuses = [S::Trialing, S::Active, S::PastDue, S::Paused, S::Canceled];
        let events =
            [E::PaymentSucceeded, E::PaymentFailed, E::DunningExhausted, E::Pause, E::Resume, E::Cancel];
        let allowed = [
            (S::Trialing, E::PaymentSucceeded, S::Active),
            (S::Trialing, E::PaymentFailed, S::PastDue),
            (S::Trialing, E::Pause, S::Paused),
            (S::Trialing, E::Cancel, S::Canceled),
            (S::Active, E::PaymentSucceeded, S::Active),
            (S::Active, E::PaymentFailed, S::PastDue),
            (S::Active, E::Pause, S::Paused),
            (S::Active, E::Cancel, S::Canceled),
            (S::PastDue, E::PaymentSucceeded, S::Active),
            (S::PastDue, E::PaymentFailed, S::PastDue),
            (S::PastDue, E::DunningExhausted, S::Paused),
            (S::PastDue, E::Pause, S::Paused),
            (S::PastDue, E::Cancel, S::Canceled),
            (S::Paused, E::Resume, S::Active),
            (S::Paused, E::PaymentSucceeded, S::Active),
            (S::Paused, E::Cancel, S::Canceled),
        ];
        for from in statuses {
            for event in events {
                let want = allowed.iter().find(|(f, e, _)| *f == from && *e == event).map(|(_, _, to)| *to);
                match (transition(from, event), want) {
                    (Ok(got), Some(to)) => assert_eq!(got, to, "{from:?} + {event:?}"),
                    (Err(e), None) => assert_eq!(e, TransitionError { from, event }),
                    (got, want) => panic!("{from:?} + {event:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        // Canceled is final.
        assert!(events.iter().all(|&e| transition(S::Canceled, e).is_err()));
        assert!(
            serves_paid_tier(S::PastDue) && !serves_paid_tier(S::Paused) && !serves_paid_tier(S::Canceled)
        );
    }

    #[test]
    fn periods_clamp_to_month_ends_and_keep_their_anchor() {
        let d = |y, m, day| dates::from_ymd(y, m, day);
        assert_eq!(add_months(d(2027, 1, 31), 1), d(2027, 2, 28));
        assert_eq!(add_months(d(2028, 1, 31), 1), d(2028, 2, 29), "leap year");
        assert_eq!(add_months(d(2027, 12, 15), 1), d(2028, 1, 15));
        assert_eq!(add_months(d(2028, 2, 29), 12), d(2029, 2, 28), "annual from a leap day");
        assert_eq!(add_months(d(2027, 3, 31), 11), d(2028, 2, 29));
        // Monthly from 31 January: Feb ends on the 28th, March goes back to the 31st.
        let anchor = d(2027, 1, 31);
        let first = Period::starting(anchor, 1);
        assert_eq!(first.end, d(2027, 2, 28));
        let second = first.next(anchor, 1, 1);
        assert_eq!((second.start, second.end), (d(2027, 2, 28), d(2027, 3, 31)));
        assert_eq!(Period::starting(d(2028, 1, 1), 12).days(), 366, "a leap year has 366 days");
    }

    #[test]
    fn prorating_charges_upgrades_credits_downgrades_and_rounds_to_the_cent() {
        let d = |y, m, day| dates::from_ymd(y, m, day);
        // February 2027 has 28 days: upgrading 49.00 -> 199.00 with 14 days left is half.
        let feb = Period::starting(d(2027, 2, 1), 1);
        assert_eq!(prorate(4_900, 19_900, feb, d(2027, 2, 15)), 7_500);
        assert_eq!(prorate(19_900, 4_900, feb, d(2027, 2, 15)), -7_500);
        // Leap February has 29 days: 14 of 29 left.
        let leap = Period::starting(d(2028, 2, 1), 1);
        assert_eq!(prorate(0, 10_000, leap, d(2028, 2, 16)), 4_828); // 10000 * 14 / 29 = 4827.6
        assert_eq!(prorate(10_000, 0, leap, d(2028, 2, 16)), -4_828);
        // The first day charges the whole difference; after the period, nothing.
        assert_eq!(prorate(4_900, 19_900, feb, d(2027, 2, 1)), 15_000);
        assert_eq!(prorate(4_900, 19_900, feb, d(2027, 3, 1)), 0);
        assert_eq!(prorate(4_900, 4_900, feb, d(2027, 2, 10)), 0);
    }
}
