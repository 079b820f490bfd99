//! Prediction contests: an operator sets a pool of papers, a target and a pick limit;
//! signed-in people pick papers (with a probability if they like) until the deadline;
//! the serving model enters every contest with its own picks, made when the contest
//! opens; once the data resolves the target, entries are scored by precision at k and,
//! where probabilities were given, by Brier score.
//!
//! A contest may be a replay "as of" a past day: its pool holds only papers submitted by
//! then, and the model's picks are at-publication forecasts (which read nothing after a
//! paper's submission), so a contest on the bundled data (which ends in 2003) can be
//! entered, locked and scored today.
//!
//! This file is the plain logic (phases, pick validation, scoring); `service.rs` asks
//! the engine, `store.rs` keeps the trees.

pub mod admin;
pub mod error;
pub mod job;
pub mod page;
pub mod routes;
pub mod service;
pub mod store;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

pub use error::ContestError;

/// The model's entrant id in every contest.
pub const MODEL: &str = "model";

/// What a contest asks people to foresee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The model's own label: the paper reaches the top 10 % of its year by citations
    /// within 24 months of submission.
    #[serde(rename = "top_10_percent")]
    Top10Percent,
    /// The pool's `pick_limit` most cited papers in their first 6 months (ties share).
    #[serde(rename = "most_citations_6m")]
    MostCitations6m,
}

impl Target {
    pub fn parse(s: &str) -> Option<Target> {
        match s {
            "top_10_percent" => Some(Target::Top10Percent),
            "most_citations_6m" => Some(Target::MostCitations6m),
            _ => None,
        }
    }

    /// In words, for pages.
    pub fn describe(self, k: usize) -> String {
        match self {
            Target::Top10Percent => {
                "Pick the papers that reach the top 10 % of their year by citations within 24 months.".into()
            }
            Target::MostCitations6m => {
                format!("Pick the {k} papers of the pool cited most in their first 6 months.")
            }
        }
    }
}

/// A paper of the pool as contest pages list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolPaper {
    pub id: String,
    pub title: String,
    pub submitted: String,
}

/// A contest and, once scored, its results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contest {
    pub id: String,
    pub title: String,
    /// Markdown, rendered sanitised.
    pub rules: String,
    pub target: Target,
    /// How the pool was chosen, in words.
    pub pool_label: String,
    pub pool: Vec<PoolPaper>,
    pub pick_limit: usize,
    /// Unix seconds, server time: picks lock then.
    pub deadline: i64,
    /// A replay: the past day the contest is played as of (`YYYY-MM-DD`).
    pub as_of: Option<String>,
    pub created: i64,
    pub locked_at: Option<i64>,
    pub scored_at: Option<i64>,
    pub results: Option<Results>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Taking picks.
    Open,
    /// Past the deadline; waiting for the data to resolve the target.
    Locked,
    Scored,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Open => "open",
            Phase::Locked => "locked",
            Phase::Scored => "scored",
        }
    }
}

impl Contest {
    pub fn phase(&self, now: i64) -> Phase {
        if self.scored_at.is_some() {
            Phase::Scored
        } else if self.locked_at.is_some() || now >= self.deadline {
            Phase::Locked
        } else {
            Phase::Open
        }
    }

    pub fn path(&self) -> String {
        format!("/contests/{}", self.id)
    }
}

/// One picked paper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pick {
    pub paper_id: String,
    /// The entrant's chance that the paper meets the target, when given.
    pub probability: Option<f64>,
}

/// An entrant's picks in one contest (one per entrant; replaced while the contest is open).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub contest_id: String,
    /// A customer id, or [`MODEL`].
    pub entrant: String,
    pub picks: Vec<Pick>,
    /// Unix seconds of the last change.
    pub submitted: i64,
    /// The model version that picked (the model's entry).
    #[serde(default)]
    pub model_version: Option<String>,
}

/// One entrant's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub entrant: String,
    pub rank: usize,
    pub hits: usize,
    /// Hits over the pick limit (picking fewer than allowed counts as misses).
    pub precision: f64,
    /// Mean squared error of the given probabilities; `None` when none were given.
    pub brier: Option<f64>,
    pub picks: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// The pool papers that met the target.
    pub relevant: Vec<String>,
    /// Best first.
    pub scores: Vec<Score>,
}

/// What the data says of one pool paper; `None` where it does not say yet.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PaperOutcome {
    pub reached_top_10_percent: Option<bool>,
    pub citations_6m: Option<u64>,
}

/// Checks picks against the contest: 1 to `pick_limit` distinct pool papers, each
/// probability within 0..=1.
pub fn check_picks(c: &Contest, picks: &[Pick]) -> Result<(), ContestError> {
    if picks.is_empty() {
        return Err(ContestError::Invalid("Pick at least one paper.".into()));
    }
    if picks.len() > c.pick_limit {
        return Err(ContestError::Invalid(format!(
            "Pick at most {} papers; you picked {}.",
            c.pick_limit,
            picks.len()
        )));
    }
    let mut seen = BTreeSet::new();
    for p in picks {
        if !c.pool.iter().any(|q| q.id == p.paper_id) {
            return Err(ContestError::Invalid(format!("'{}' is not in this contest's pool.", p.paper_id)));
        }
        if !seen.insert(&p.paper_id) {
            return Err(ContestError::Invalid(format!("'{}' is picked twice.", p.paper_id)));
        }
        if let Some(prob) = p.probability {
            if !(0.0..=1.0).contains(&prob) || !prob.is_finite() {
                return Err(ContestError::Invalid(
                    "A probability is a number from 0 to 1 (or a percentage from 0 to 100).".into(),
                ));
            }
        }
    }
    Ok(())
}

/// The pool papers that met `target`, or `None` while the data does not resolve every
/// paper. For the 6-month count, the `k` most cited and every paper tied with the k-th.
pub fn relevant(target: Target, outcomes: &[(String, PaperOutcome)], k: usize) -> Option<BTreeSet<String>> {
    match target {
        Target::Top10Percent => {
            let mut out = BTreeSet::new();
            for (id, o) in outcomes {
                if o.reached_top_10_percent? {
                    out.insert(id.clone());
                }
            }
            Some(out)
        }
        Target::MostCitations6m => {
            let mut counts: Vec<(u64, &String)> =
                outcomes.iter().map(|(id, o)| o.citations_6m.map(|c| (c, id))).collect::<Option<_>>()?;
            counts.sort_by_key(|c| std::cmp::Reverse(c.0));
            let Some(&(cut, _)) = counts.get(k.saturating_sub(1)).or(counts.last()) else {
                return Some(BTreeSet::new());
            };
            Some(counts.into_iter().filter(|(c, _)| *c >= cut).map(|(_, id)| id.clone()).collect())
        }
    }
}

/// One entry's hits, precision at `k` and Brier score.
pub fn score(picks: &[Pick], relevant: &BTreeSet<String>, k: usize) -> (usize, f64, Option<f64>) {
    let hits = picks.iter().filter(|p| relevant.contains(&p.paper_id)).count();
    let precision = if k == 0 { 0.0 } else { hits as f64 / k as f64 };
    let given: Vec<f64> = picks
        .iter()
        .filter_map(|p| {
            let y = if relevant.contains(&p.paper_id) { 1.0 } else { 0.0 };
            p.probability.map(|q| (q - y) * (q - y))
        })
        .collect();
    let brier = (!given.is_empty()).then(|| given.iter().sum::<f64>() / given.len() as f64);
    (hits, precision, brier)
}

/// Every entry scored and ranked: higher precision first, then lower Brier (entries
/// without probabilities after those with), then the earlier entry. Equal precision and
/// Brier share a rank.
pub fn leaderboard(entries: &[Entry], relevant: &BTreeSet<String>, k: usize) -> Vec<Score> {
    let mut rows: Vec<(Score, i64)> = entries
        .iter()
        .map(|e| {
            let (hits, precision, brier) = score(&e.picks, relevant, k);
            (
                Score { entrant: e.entrant.clone(), rank: 0, hits, precision, brier, picks: e.picks.len() },
                e.submitted,
            )
        })
        .collect();
    let brier_key = |b: Option<f64>| b.unwrap_or(f64::INFINITY);
    rows.sort_by(|(a, at), (b, bt)| {
        b.precision
            .total_cmp(&a.precision)
            .then(brier_key(a.brier).total_cmp(&brier_key(b.brier)))
            .then(at.cmp(bt))
    });
    let mut out: Vec<Score> = Vec::with_capacity(rows.len());
    for (i, (mut s, _)) in rows.into_iter().enumerate() {
        s.rank = match out.last() {
            Some(prev) if prev.precision == s.precision && prev.brier == s.brier => prev.rank,
            _ => i + 1,
        };
        out.push(s);
    }
    out
}

/// Contests whose picks are still open, soonest deadline first (for the events page).
pub fn open_contests(db: &sled::Db, now: i64) -> Result<Vec<Contest>, ContestError> {
    let mut open: Vec<Contest> =
        store::Contests::open(db)?.all()?.into_iter().filter(|c| c.phase(now) == Phase::Open).collect();
    open.sort_by_key(|c| c.deadline);
    Ok(open)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(id: &str, p: Option<f64>) -> Pick {
        Pick { paper_id: id.into(), probability: p }
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn precision_at_k_and_brier_by_hand() {
        // Pool a..f; relevant {a, c, e}; k = 4.
        let relevant = set(&["a", "c", "e"]);
        // Picks a (0.9), b (0.6), c (no probability): hits 2, precision 2/4 = 0.5.
        // Brier over the two with probabilities: ((0.9-1)^2 + (0.6-0)^2) / 2 = (0.01 + 0.36) / 2 = 0.185.
        let (hits, precision, brier) =
            score(&[pick("a", Some(0.9)), pick("b", Some(0.6)), pick("c", None)], &relevant, 4);
        assert_eq!((hits, precision), (2, 0.5));
        assert!((brier.unwrap() - 0.185).abs() < 1e-12);
        // No probabilities: no Brier score.
        assert_eq!(score(&[pick("b", None)], &relevant, 4), (0, 0.0, None));
    }

    #[test]
    fn the_leaderboard_ranks_by_precision_then_brier_then_time() {
        let relevant = set(&["a", "c"]);
        let entry = |who: &str, at: i64, picks: Vec<Pick>| Entry {
            contest_id: "c".into(),
            entrant: who.into(),
            picks,
            submitted: at,
            model_version: None,
        };
        let entries = vec![
            // 1 hit, Brier ((0.5-1)^2 + (0.5-0)^2)/2 = 0.25
            entry("u1", 1, vec![pick("a", Some(0.5)), pick("b", Some(0.5))]),
            // 2 hits, Brier ((0.8-1)^2 + (0.6-1)^2)/2 = (0.04 + 0.16)/2 = 0.1
            entry(MODEL, 0, vec![pick("a", Some(0.8)), pick("c", Some(0.6))]),
            // 1 hit, Brier (0.9-1)^2 = 0.01: beats u1 on Brier.
            entry("u2", 2, vec![pick("c", Some(0.9))]),
            // 1 hit, no probabilities: after both.
            entry("u3", 3, vec![pick("a", None)]),
            // Same as u3, later: shares its rank.
            entry("u4", 4, vec![pick("c", None)]),
        ];
        let board = leaderboard(&entries, &relevant, 2);
        let order: Vec<(&str, usize)> = board.iter().map(|s| (s.entrant.as_str(), s.rank)).collect();
        assert_eq!(order, vec![(MODEL, 1), ("u2", 2), ("u1", 3), ("u3", 4), ("u4", 4)]);
        assert_eq!(board[0].precision, 1.0);
        assert!((board[0].brier.unwrap() - 0.1).abs() < 1e-12);
        assert!((board[2].brier.unwrap() - 0.25).abs() < 1e-12);
    }

    #[test]
    fn relevance_waits_for_the_data_and_shares_ties() {
        let o = |t: Option<bool>, c: Option<u64>| PaperOutcome { reached_top_10_percent: t, citations_6m: c };
        let outcomes = vec![
            ("a".to_string(), o(Some(true), Some(5))),
            ("b".to_string(), o(Some(false), Some(3))),
            ("c".to_string(), o(Some(true), Some(3))),
            ("d".to_string(), o(Some(false), Some(1))),
        ];
        assert_eq!(relevant(Target::Top10Percent, &outcomes, 2), Some(set(&["a", "c"])));
        // Top 2 by 6-month citations: a (5), then b and c tied at 3.
        assert_eq!(relevant(Target::MostCitations6m, &outcomes, 2), Some(set(&["a", "b", "c"])));
        let mut unresolved = outcomes.clone();
        unresolved[3].1 = o(None, None);
        assert_eq!(relevant(Target::Top10Percent, &unresolved, 2), None);
        assert_eq!(relevant(Target::MostCitations6m, &unresolved, 2), None);
    }

    #[test]
    fn picks_are_checked_against_the_pool_and_the_limit() {
        let c = Contest {
            id: "c1".into(),
            title: "t".into(),
            rules: String::new(),
            target: Target::Top10Percent,
            pool_label: String::new(),
            pool: ["a", "b", "c"]
                .iter()
                .map(|i| PoolPaper { id: i.to_string(), title: String::new(), submitted: String::new() })
                .collect(),
            pick_limit: 2,
            deadline: 100,
            as_of: None,
            created: 0,
            locked_at: None,
            scored_at: None,
            results: None,
        };
        assert!(check_picks(&c, &[pick("a", Some(0.3)), pick("b", None)]).is_ok());
        for bad in [
            vec![],
            vec![pick("a", None), pick("b", None), pick("c", None)],
            vec![pick("z", None)],
            vec![pick("a", None), pick("a", None)],
            vec![pick("a", Some(1.5))],
            vec![pick("a", Some(f64::NAN))],
        ] {
            assert!(check_picks(&c, &bad).is_err(), "{bad:?}");
        }
        assert_eq!(c.phase(99), Phase::Open);
        assert_eq!(c.phase(100), Phase::Locked);
    }
}
