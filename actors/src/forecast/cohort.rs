//! Cohort rank of a score: where a paper's raw model score falls among the scores the
//! same model gave the papers submitted in the half-year before it, each scored at its
//! own as-of date.
//!
//! Why: raw scores drift upward over the years (authors and citation counts grow), so a
//! threshold chosen on 1999 flagged too many papers in 2000–01 (test false-positive rate
//! 0.08 against a validation 0.07). On the rank scale the threshold means "in the top x %
//! of the last half-year", which travels across years (`research/FINDINGS.md`, second
//! pass, ingredient 2). It cannot leak: every cohort paper is submitted strictly before
//! `t0`, so its own as-of date is before the forecast's (`t0 − 1 + 182` in early mode,
//! too, is before `t0 + 182`).

use serde::{Deserialize, Serialize};

use crate::dates::Day;

/// Days of papers before `t0` a score is ranked among in the bundled task (day-dated
/// data); year-dated data ranks among the previous year (`TaskSpec::cohort_days`).
pub const WINDOW_DAYS: Day = 182;

/// How a model turns its raw score into the served probability: the cohort rank, mapped
/// to a probability by a logistic fit on validation (monotone, so ranking and the
/// threshold are unchanged by it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CohortRank {
    pub window_days: Day,
    /// `p = sigmoid(a · logit(rank) + b)`.
    pub calibration: [f64; 2],
}

impl CohortRank {
    pub fn probability(&self, rank: f64) -> f64 {
        let [a, b] = self.calibration;
        1.0 / (1.0 + (-(a * logit(rank) + b)).exp())
    }

    /// Fits the calibration of validation ranks to their labels. Where the fit is
    /// degenerate (a tiny or separable validation set, a model whose scores all tie) it
    /// falls back to `sigmoid(logit(rank) + logit(base rate))`: still monotone in the rank,
    /// centred on the validation positive rate.
    pub fn fit(window_days: Day, ranks: &[f64], labels: &[bool]) -> CohortRank {
        let z: Vec<f64> = ranks.iter().map(|&r| logit(r)).collect();
        let [a, b] = super::mlp::platt(&z, labels);
        let calibration =
            if a.is_finite() && b.is_finite() && a > 0.0 && a <= MAX_SLOPE && b.abs() <= MAX_SLOPE {
                [a, b]
            } else {
                let positives = labels.iter().filter(|l| **l).count() as f64;
                let rate = ((positives + 0.5) / (labels.len() as f64 + 1.0)).clamp(1e-3, 1.0 - 1e-3);
                [1.0, (rate / (1.0 - rate)).ln()]
            };
        CohortRank { window_days, calibration }
    }
}

/// Largest calibration slope and offset taken from a fit; beyond them it has diverged
/// (the real models fit slopes of 1 to 3 and offsets of −3 to −7).
const MAX_SLOPE: f64 = 50.0;

/// The logit of a rank, squeezed linearly into [1e-4, 1 − 1e-4] first so it stays
/// finite at 0 and 1 without merging ranks (and their tie-breaks) at the ends.
fn logit(r: f64) -> f64 {
    let r = (1e-4 + (1.0 - 2e-4) * r).clamp(1e-12, 1.0 - 1e-12);
    (r / (1.0 - r)).ln()
}

/// Added to a rank to order papers of equal rank (several papers above their whole
/// cohort share rank 1) by their raw score; far below any rank step.
fn tie_break(s: f64) -> f64 {
    1e-9 * s / (1.0 + s.abs())
}

/// The index range of `days` (sorted ascending) inside the window of a paper submitted
/// on `t0`: `[end − window, end)` with `end = min(t0, last + 1)`. Papers newer than the
/// data (a new paper scored today) are ranked among the latest half-year known.
pub fn window(days: &[Day], t0: Day, window_days: Day) -> std::ops::Range<usize> {
    let Some(&last) = days.last() else { return 0..0 };
    let end = t0.min(last + 1);
    let lo = days.partition_point(|&d| d < end - window_days);
    let hi = days.partition_point(|&d| d < end);
    lo..hi.max(lo)
}

/// Mid-rank of `s` among `cohort` (values that are NaN, papers not scorable yet, are
/// skipped), in [0, 1]; 0.5 for an empty cohort. Compared at the table's f32 precision,
/// so a score equals its own stored value.
pub fn mid_rank(cohort: &[f32], s: f64) -> f64 {
    let s = s as f32;
    let (mut below, mut equal, mut n) = (0usize, 0usize, 0usize);
    for &c in cohort {
        if c.is_nan() {
            continue;
        }
        n += 1;
        if c < s {
            below += 1;
        } else if c == s {
            equal += 1;
        }
    }
    if n == 0 {
        return 0.5;
    }
    (below as f64 + 0.5 * equal as f64) / n as f64
}

/// Raw scores of a whole corpus in submission order (`days` sorted ascending, NaN where a
/// paper has no score), and the ranks of any rows against it.
pub struct Table<'a> {
    pub days: &'a [Day],
    pub scores: &'a [f32],
}

impl Table<'_> {
    /// The rank of a raw score `s` of a paper submitted on `t0`, ties broken by `s`.
    pub fn rank(&self, t0: Day, s: f64, window_days: Day) -> f64 {
        mid_rank(&self.scores[window(self.days, t0, window_days)], s) + tie_break(s)
    }

    /// [`Table::rank`] of many rows (`t0s[i]`, `scores[i]`), equal to it row by row. Rows
    /// are grouped by their window; a window shared by [`SORT_FROM_ROWS`] rows or more is
    /// sorted once and each of its rows counted by binary search instead of a scan of the
    /// window. One window is held sorted at a time. Training ranked a million rows one scan
    /// each (a half-year of scores per row: all of a 1M training's profile for over ten
    /// minutes).
    pub fn ranks(&self, t0s: &[Day], scores: &[f64], window_days: Day) -> Vec<f64> {
        let windows: Vec<std::ops::Range<usize>> =
            t0s.iter().map(|&t0| window(self.days, t0, window_days)).collect();
        let mut order: Vec<usize> = (0..t0s.len()).collect();
        order.sort_by_key(|&i| (windows[i].start, windows[i].end));
        let mut out = vec![0.0; t0s.len()];
        for group in order.chunk_by(|&a, &b| windows[a] == windows[b]) {
            let cohort = &self.scores[windows[group[0]].clone()];
            if group.len() >= SORT_FROM_ROWS {
                let mut sorted: Vec<f32> = cohort.iter().copied().filter(|c| !c.is_nan()).collect();
                sorted.sort_by(f32::total_cmp);
                for &i in group {
                    out[i] = mid_rank_sorted(&sorted, scores[i]) + tie_break(scores[i]);
                }
            } else {
                for &i in group {
                    out[i] = mid_rank(cohort, scores[i]) + tie_break(scores[i]);
                }
            }
        }
        out
    }
}

/// [`served_probability`] of many rows (`t0s[i]`, `scores[i]`) against one table, equal to
/// it row by row, through [`Table::ranks`].
pub fn served_probabilities(
    rank: Option<&CohortRank>,
    table: &Table,
    t0s: &[Day],
    scores: &[f64],
) -> Vec<f64> {
    let Some(c) = rank else { return scores.to_vec() };
    table.ranks(t0s, scores, c.window_days).into_iter().map(|r| c.probability(r)).collect()
}

/// Rows sharing a window from which sorting it beats scanning it once per row.
const SORT_FROM_ROWS: usize = 16;

/// [`mid_rank`] over a cohort already sorted (by `total_cmp`, NaNs removed): the same
/// counts, `<` and `==` at f32 (−0 and +0 tie in both), found by binary search.
fn mid_rank_sorted(sorted: &[f32], s: f64) -> f64 {
    if sorted.is_empty() {
        return 0.5;
    }
    let s = s as f32;
    let below = sorted.partition_point(|&c| c < s);
    let upto = sorted.partition_point(|&c| c <= s);
    (below as f64 + 0.5 * (upto - below) as f64) / sorted.len() as f64
}

/// The served probability of a raw score `s` of a paper submitted on `t0`: its rank
/// among `table`'s scores of the cohort window before it (ties broken by `s`, as training
/// figured it), calibrated; without a cohort rank (models before it), `s` itself.
/// Training's figures and `ForecastService` both serve through this one function.
pub fn served_probability(rank: Option<&CohortRank>, table: &Table, t0: Day, s: f64) -> f64 {
    match rank {
        Some(c) => c.probability(table.rank(t0, s, c.window_days)),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_the_half_year_strictly_before_t0() {
        let days: Vec<Day> = vec![0, 10, 100, 181, 182, 190, 200, 200, 400];
        // t0 = 200: [18, 200) holds 100, 181, 182, 190, not the same-day 200s.
        assert_eq!(window(&days, 200, 182), 2..6);
        // t0 before every paper: empty.
        assert_eq!(window(&days, 0, 182), 0..0);
        // t0 after the data: ranked among the latest half-year known, [219, 401).
        assert_eq!(window(&days, 5000, 182), 8..9);
        assert_eq!(window(&[], 5, 182), 0..0);
    }

    #[test]
    fn mid_rank_counts_ties_half_and_skips_unscored() {
        assert_eq!(mid_rank(&[], 1.0), 0.5);
        assert_eq!(mid_rank(&[f32::NAN], 1.0), 0.5);
        assert_eq!(mid_rank(&[0.1, 0.2, 0.3, 0.4], 0.35), 0.75);
        assert_eq!(mid_rank(&[0.1, 0.2, f32::NAN, 0.2], 0.2), (1.0 + 1.0) / 3.0);
        assert_eq!(mid_rank(&[0.1, 0.2], 5.0), 1.0);
        assert_eq!(mid_rank(&[0.1, 0.2], -5.0), 0.0);
    }

    #[test]
    fn ranks_follow_the_window_of_each_row() {
        let days: Vec<Day> = vec![0, 1, 2, 300, 301];
        let scores = vec![0.1, 0.5, 0.9, 0.2, 0.3];
        let t = Table { days: &days, scores: &scores };
        // A paper on day 3 with 0.5 sits in the middle of {0.1, 0.5, 0.9}.
        assert!((t.rank(3, 0.5, 182) - 0.5).abs() < 1e-8);
        // On day 302 only days 300 and 301 are in the window: 0.25 is above one of two.
        assert!((t.rank(302, 0.25, 182) - 0.5).abs() < 1e-8);
        let r = t.ranks(&[3, 302, 3], &[1.0, 0.0, 2.0], 182);
        assert!((r[0] - 1.0).abs() < 1e-8 && r[1].abs() < 1e-8);
        // Two papers above their whole cohort: the higher raw score still ranks higher,
        // through the calibration too.
        assert!(r[2] > r[0]);
        let c = CohortRank { window_days: 182, calibration: [1.0, 0.0] };
        assert!(c.probability(r[2]) > c.probability(r[0]));
    }

    #[test]
    fn batched_probabilities_equal_the_row_by_row_ones() {
        let days: Vec<Day> = (0..400).map(|i| i / 2).collect();
        let scores: Vec<f32> = (0..400)
            .map(|i| match i % 7 {
                0 => f32::NAN,
                1 => 0.0,
                2 => -0.0,
                _ => ((i * 37) % 101) as f32 / 50.0 - 1.0,
            })
            .collect();
        let t = Table { days: &days, scores: &scores };
        let c = CohortRank { window_days: 30, calibration: [1.3, -0.4] };
        // Many rows on one day (sorted path) and a few on others (scanned path).
        let mut t0s: Vec<Day> = vec![150; 40];
        t0s.extend([0, 3, 90, 199, 500]);
        let s: Vec<f64> = (0..t0s.len()).map(|i| [0.0, -0.0, 0.5, -1.0, 2.0, 0.02][i % 6]).collect();
        let batch = served_probabilities(Some(&c), &t, &t0s, &s);
        let ranks = t.ranks(&t0s, &s, 30);
        for ((&t0, &s), r) in t0s.iter().zip(&s).zip(&ranks) {
            assert_eq!(t.rank(t0, s, 30).to_bits(), r.to_bits(), "t0 {t0} s {s}");
        }
        for ((&t0, &s), b) in t0s.iter().zip(&s).zip(&batch) {
            assert_eq!(served_probability(Some(&c), &t, t0, s).to_bits(), b.to_bits(), "t0 {t0} s {s}");
        }
        assert_eq!(served_probabilities(None, &t, &t0s, &s), s);
    }

    #[test]
    fn calibration_is_monotone_and_fits_rates() {
        // Positives concentrated in the top ranks.
        let ranks: Vec<f64> = (0..1000).map(|i| (i as f64 + 0.5) / 1000.0).collect();
        let labels: Vec<bool> =
            ranks.iter().map(|&r| r > 0.9 || (r > 0.7 && ((r * 1000.0) as u32).is_multiple_of(5))).collect();
        let c = CohortRank::fit(WINDOW_DAYS, &ranks, &labels);
        assert!(c.calibration[0] > 0.0, "{c:?}");
        let p: Vec<f64> = ranks.iter().map(|&r| c.probability(r)).collect();
        assert!(p.windows(2).all(|w| w[0] <= w[1]));
        assert!(p[999] > 0.5 && p[0] < 0.05, "{} {}", p[999], p[0]);
    }

    #[test]
    fn a_degenerate_fit_falls_back_to_a_monotone_map_at_the_base_rate() {
        // Every rank ties (a model that scores everything alike), half the labels positive.
        let ranks = vec![0.5; 40];
        let labels: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
        let c = CohortRank::fit(WINDOW_DAYS, &ranks, &labels);
        assert_eq!(c.calibration[0], 1.0, "{c:?}");
        assert!((c.probability(0.5) - 0.5).abs() < 0.01);
        assert!(c.probability(0.9) > c.probability(0.5) && c.probability(0.1) < c.probability(0.5));
    }
}
