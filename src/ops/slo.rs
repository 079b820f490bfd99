//! Service-level objectives and their error budgets, for the `/status` page.
//!
//! An SLO is a share of requests that must be good over a window: available (not a 5xx)
//! or fast (answered within a latency threshold). The budget is the bad share the
//! objective allows (0.1 % of requests for 99.9 %); the page shows how much of it the
//! window has spent and how fast the last hour and the last six hours burn it. The
//! figures come from the same [`History`] the alerts read, so the window is at most what
//! the server keeps (a day at 10 s samples) and restarts count as in the alerts.
//!
//! Burn rate is the bad share over a window divided by the allowed share: at 1 the budget
//! lasts exactly the SLO window, at 10 it is gone in a tenth of it.

use serde::{Deserialize, Serialize};

use crate::ops::alerts::{History, Increase, LATENCY_BUCKETS};

/// The window SLOs are reported over by default: the day a 10 s [`History`] of 8640 holds.
pub const SLO_WINDOW_SECS: u64 = 86_400;

/// Share of the error budget spent at which an SLO is at risk.
pub const AT_RISK_BUDGET_SPENT: f64 = 0.5;

/// An SLO is also at risk when the last hour's burn rate would spend the remaining budget
/// within this many hours.
pub const AT_RISK_EXHAUSTION_HOURS: f64 = 6.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    pub name: String,
    /// Share of requests that must be good, e.g. 0.999.
    pub objective: f64,
    pub kind: SloKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SloKind {
    /// Good: answered without a 5xx status.
    Availability,
    /// Good: answered within `seconds`. The histogram only knows bucket bounds, so a
    /// request counts as good when it fell in a bucket whose bound is at most `seconds`;
    /// put the threshold on a bound ([`LATENCY_BUCKETS`]; 250 ms is one) to make it exact.
    Latency { seconds: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SloStatus {
    Ok,
    /// Half the budget is spent, or the last hour burns it fast enough to run out within
    /// [`AT_RISK_EXHAUSTION_HOURS`].
    AtRisk,
    /// More bad requests than the objective allows over the window.
    Breached,
}

impl SloStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SloStatus::Ok => "ok",
            SloStatus::AtRisk => "at_risk",
            SloStatus::Breached => "breached",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloReport {
    pub name: String,
    pub objective: f64,
    pub window_secs: u64,
    /// Requests over the window.
    pub requests: u64,
    /// Of those, not good.
    pub bad_requests: u64,
    /// Share of good requests; `None` without traffic.
    pub attained: Option<f64>,
    /// Bad requests the objective allows over the window: `requests × (1 − objective)`.
    pub error_budget_total: f64,
    /// `bad_requests / error_budget_total`: 0 without traffic, above 1 when breached.
    pub error_budget_spent_ratio: f64,
    /// `None` without traffic in the last hour.
    pub burn_rate_1h: Option<f64>,
    /// `None` without traffic in the last six hours.
    pub burn_rate_6h: Option<f64>,
    pub status: SloStatus,
}

/// Availability 99.9 %; 95 % of requests within 250 ms (a p95 latency of 250 ms).
pub fn default_slos() -> Vec<Slo> {
    vec![
        Slo { name: "availability".into(), objective: 0.999, kind: SloKind::Availability },
        Slo { name: "latency-p95".into(), objective: 0.95, kind: SloKind::Latency { seconds: 0.25 } },
    ]
}

/// Reports for every SLO over the last `window_secs` seconds.
pub fn reports(slos: &[Slo], history: &History, window_secs: u64) -> Vec<SloReport> {
    slos.iter().map(|slo| slo.report(history, window_secs)).collect()
}

impl Slo {
    /// The bad share the objective allows.
    pub fn allowed_bad_ratio(&self) -> f64 {
        (1.0 - self.objective).max(0.0)
    }

    /// (bad, all) requests over the last `secs` seconds; (0, 0) without data.
    fn counts(&self, history: &History, secs: u64) -> (u64, u64) {
        let Some(inc) = history.increase(secs) else { return (0, 0) };
        match self.kind {
            SloKind::Availability => (inc.errors.min(inc.requests), inc.requests),
            SloKind::Latency { seconds } => {
                let all = inc.timed_requests();
                (all - good_within(&inc, seconds).min(all), all)
            }
        }
    }

    /// Bad share over the window relative to the allowed share; `None` without traffic
    /// (and infinite for a 100 % objective with any bad request).
    pub fn burn_rate(&self, history: &History, secs: u64) -> Option<f64> {
        let (bad, all) = self.counts(history, secs);
        (all > 0).then(|| {
            let ratio = bad as f64 / all as f64;
            if ratio == 0.0 {
                0.0
            } else {
                ratio / self.allowed_bad_ratio()
            }
        })
    }

    pub fn report(&self, history: &History, window_secs: u64) -> SloReport {
        let (bad, all) = self.counts(history, window_secs);
        let budget = all as f64 * self.allowed_bad_ratio();
        let spent = match (bad, budget > 0.0) {
            (0, _) => 0.0,
            (_, true) => bad as f64 / budget,
            (_, false) => f64::INFINITY,
        };
        let burn_rate_1h = self.burn_rate(history, 3600);
        let burn_rate_6h = self.burn_rate(history, 6 * 3600);
        let window_hours = window_secs as f64 / 3600.0;
        // At burn rate b the budget goes at b / window_hours of itself per hour.
        let runs_out_soon = burn_rate_1h
            .is_some_and(|b| b > 0.0 && (1.0 - spent) * window_hours / b < AT_RISK_EXHAUSTION_HOURS);
        // `1 − 0.999` is not exact in binary; a tolerance keeps the lines where the
        // decimal objective puts them (72 of 144 allowed is half, not just under).
        const EPS: f64 = 1e-9;
        let status = if spent > 1.0 + EPS {
            SloStatus::Breached
        } else if spent >= AT_RISK_BUDGET_SPENT - EPS || runs_out_soon {
            SloStatus::AtRisk
        } else {
            SloStatus::Ok
        };
        SloReport {
            name: self.name.clone(),
            objective: self.objective,
            window_secs,
            requests: all,
            bad_requests: bad,
            attained: (all > 0).then(|| 1.0 - bad as f64 / all as f64),
            error_budget_total: budget,
            error_budget_spent_ratio: spent,
            burn_rate_1h,
            burn_rate_6h,
            status,
        }
    }
}

/// Requests in buckets whose bound is at most `seconds` (0 below the first bound).
fn good_within(inc: &Increase, seconds: f64) -> u64 {
    LATENCY_BUCKETS.iter().rposition(|&b| b <= seconds * (1.0 + 1e-9)).map_or(0, |i| inc.latency_le[i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::alerts::Sample;

    /// A day of samples each minute, 100 requests a minute; `bad(minute)` says how many
    /// of that minute's requests fail and how many take 0.4 s (the rest take 20 ms).
    fn day(bad: impl Fn(i64) -> (u64, u64)) -> History {
        let mut h = History::new(2000);
        let mut s = Sample::default();
        h.push(s.clone());
        for minute in 1..=1440 {
            s.at = minute * 60;
            let (errors, slow) = bad(minute);
            s.requests += 100;
            s.errors += errors;
            s.latency_count += 100;
            for (i, &b) in LATENCY_BUCKETS.iter().enumerate() {
                s.latency_le[i] += if b >= 0.4 {
                    100
                } else if b >= 0.02 {
                    100 - slow
                } else {
                    0
                };
            }
            h.push(s.clone());
        }
        h
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    fn availability() -> Slo {
        default_slos().remove(0)
    }

    #[test]
    fn clean_day_is_ok() {
        let r = availability().report(&day(|_| (0, 0)), SLO_WINDOW_SECS);
        assert_eq!((r.requests, r.bad_requests), (144_000, 0));
        assert_eq!(r.attained, Some(1.0));
        assert!(close(r.error_budget_total, 144.0));
        assert_eq!(r.error_budget_spent_ratio, 0.0);
        assert_eq!((r.burn_rate_1h, r.burn_rate_6h), (Some(0.0), Some(0.0)));
        assert_eq!(r.status, SloStatus::Ok);
    }

    #[test]
    fn half_the_budget_spent_long_ago_is_at_risk() {
        // 72 errors in the first hour: half of the 144 allowed, none recently.
        let r = availability().report(
            &day(|m| {
                (
                    if m <= 12 {
                        2
                    } else if m <= 60 {
                        1
                    } else {
                        0
                    },
                    0,
                )
            }),
            SLO_WINDOW_SECS,
        );
        assert_eq!(r.bad_requests, 72);
        assert!(close(r.attained.unwrap(), 0.9995));
        assert!(close(r.error_budget_spent_ratio, 0.5));
        assert_eq!((r.burn_rate_1h, r.burn_rate_6h), (Some(0.0), Some(0.0)));
        assert_eq!(r.status, SloStatus::AtRisk);
    }

    #[test]
    fn fast_burn_in_the_last_hour_is_at_risk() {
        // 30 errors in the last hour: 21 % of the day's budget, but at a burn rate of 5 the
        // rest would be gone in (1 − 0.208) × 24 / 5 ≈ 3.8 h.
        let r = availability().report(&day(|m| (u64::from(m > 1380 && m % 2 == 0), 0)), SLO_WINDOW_SECS);
        assert_eq!(r.bad_requests, 30);
        assert!(close(r.error_budget_spent_ratio, 30.0 / 144.0));
        assert!(close(r.burn_rate_1h.unwrap(), 5.0));
        assert!(close(r.burn_rate_6h.unwrap(), 30.0 / 36_000.0 / 0.001));
        assert_eq!(r.status, SloStatus::AtRisk);
    }

    #[test]
    fn more_bad_requests_than_allowed_is_breached() {
        // 200 errors in the last hour.
        let r = availability().report(
            &day(|m| {
                (
                    if m > 1400 {
                        3
                    } else if m > 1380 {
                        4
                    } else {
                        0
                    },
                    0,
                )
            }),
            SLO_WINDOW_SECS,
        );
        assert_eq!(r.bad_requests, 200);
        assert!(close(r.error_budget_spent_ratio, 200.0 / 144.0));
        assert!(close(r.burn_rate_1h.unwrap(), 200.0 / 6000.0 / 0.001));
        assert!(close(r.burn_rate_6h.unwrap(), 200.0 / 36_000.0 / 0.001));
        assert!(r.attained.unwrap() < 0.999);
        assert_eq!(r.status, SloStatus::Breached);
    }

    #[test]
    fn latency_slo_counts_requests_over_the_threshold() {
        // 3 % of requests take 0.4 s all day: within the 5 % allowed, 60 % of the budget.
        let slo = default_slos().remove(1);
        let r = slo.report(&day(|_| (0, 3)), SLO_WINDOW_SECS);
        assert_eq!((r.requests, r.bad_requests), (144_000, 4320));
        assert!(close(r.attained.unwrap(), 0.97));
        assert!(close(r.error_budget_total, 7200.0));
        assert!(close(r.error_budget_spent_ratio, 0.6));
        assert!(close(r.burn_rate_1h.unwrap(), 0.6));
        assert!(close(r.burn_rate_6h.unwrap(), 0.6));
        assert_eq!(r.status, SloStatus::AtRisk);
        // Errors do not make a request slow, nor the other way round.
        let a = availability().report(&day(|_| (0, 3)), SLO_WINDOW_SECS);
        assert_eq!(a.bad_requests, 0);
    }

    #[test]
    fn latency_threshold_between_bounds_uses_the_bound_below() {
        let slo = Slo { name: "p95-300ms".into(), objective: 0.95, kind: SloKind::Latency { seconds: 0.3 } };
        let r = slo.report(&day(|_| (0, 3)), SLO_WINDOW_SECS);
        assert_eq!(r.bad_requests, 4320, "0.4 s requests are over 0.25 s, the bound below 0.3 s");
    }

    #[test]
    fn no_traffic_is_ok_with_nothing_to_say() {
        let mut h = History::new(10);
        h.push(Sample { at: 0, ..Default::default() });
        h.push(Sample { at: 60, ..Default::default() });
        for r in reports(&default_slos(), &h, SLO_WINDOW_SECS) {
            assert_eq!((r.attained, r.burn_rate_1h, r.requests), (None, None, 0));
            assert_eq!((r.error_budget_spent_ratio, r.status), (0.0, SloStatus::Ok));
        }
        assert!(reports(&default_slos(), &History::new(10), SLO_WINDOW_SECS).iter().all(|r| r.requests == 0));
    }

    #[test]
    fn report_serialises_status_in_snake_case() {
        let r = availability().report(&day(|m| (if m <= 60 { 2 } else { 0 }, 0)), SLO_WINDOW_SECS);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["status"], "at_risk");
        assert_eq!(json["objective"], 0.999);
    }
}
