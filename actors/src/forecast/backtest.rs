//! Rolling-origin evaluation: the model retrained as of each of the last few cutoffs and
//! judged on the period after it, so a figure is not one lucky split. Cutoff `k` moves
//! validation, test and the last labelled day back `k` test periods; the corpus is cut
//! where that cutoff's last test label becomes known, so no feature, cohort score or
//! label of training or validation reads anything dated later (every training and
//! validation label window ends before the test labels' do).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::corpus::Corpus;
use super::metrics::{pr_auc, roc_auc, SplitMix};
use super::task::{Mode, TaskSpec};
use super::train::{self, TrainError, TrainOptions};
use crate::dates;

/// A figure with its bootstrap 95 % confidence interval (percentiles of the resamples
/// where it is defined; NaN when it never is).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
}

/// One cutoff's model judged on the period after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Period {
    /// How many test periods back from the base task (0: the base task itself).
    pub periods_back: usize,
    /// The task the model was trained for (its test period is the one scored).
    pub task: TaskSpec,
    /// The corpus as of this day was used (`YYYY-MM-DD`): the end of the last test
    /// paper's label window.
    pub data_as_of: String,
    pub papers: usize,
    pub positives: usize,
    pub roc_auc: Estimate,
    pub pr_auc: Estimate,
    /// Mean squared error of the served probabilities.
    pub brier: Estimate,
    /// Expected calibration error over ten equal-width probability bins.
    pub ece: Estimate,
}

/// Every cutoff's figures, oldest period first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backtest {
    pub mode: Mode,
    pub base: TaskSpec,
    pub periods: Vec<Period>,
}

/// Retrains `mode` as of each of the last `cutoffs` cutoffs of `base` (step: the test
/// period's length in months) with `opts` (`TrainOptions::quick()` for tests) and scores
/// the period after each. Fails as training does: too little data before an early cutoff,
/// or a degenerate model.
pub fn backtest(
    corpus: &Arc<Corpus>,
    base: &TaskSpec,
    mode: Mode,
    opts: &TrainOptions,
    cutoffs: usize,
) -> Result<Backtest, TrainError> {
    let step = base.test_months();
    let mut periods = Vec::with_capacity(cutoffs);
    for k in (0..cutoffs).rev() {
        let task = base.shifted_back(step * k as i32);
        let as_of = task.label_end(task.last_labelled);
        let data = Arc::new(corpus.truncated(as_of));
        let version = format!("backtest-{}-{k}", mode.as_str());
        let outcome = train::train(data, &task, mode, &version, opts)?;
        let probs: Vec<f64> = outcome.test_forecasts.iter().map(|f| f.probability).collect();
        let labels: Vec<bool> = outcome.test_forecasts.iter().map(|f| f.label).collect();
        let [roc_auc, pr_auc, brier, ece] =
            estimates(&probs, &labels, opts.bootstrap_resamples, opts.seed.wrapping_add(k as u64));
        periods.push(Period {
            periods_back: k,
            data_as_of: dates::format(as_of),
            papers: probs.len(),
            positives: labels.iter().filter(|l| **l).count(),
            task,
            roc_auc,
            pr_auc,
            brier,
            ece,
        });
    }
    Ok(Backtest { mode, base: base.clone(), periods })
}

/// Mean squared error of probabilities against outcomes.
pub fn brier(probs: &[f64], labels: &[bool]) -> f64 {
    if probs.is_empty() {
        return f64::NAN;
    }
    probs.iter().zip(labels).map(|(p, &y)| (p - f64::from(u8::from(y))).powi(2)).sum::<f64>()
        / probs.len() as f64
}

/// Expected calibration error: per equal-width bin of `bins`, the gap between the mean
/// probability and the observed rate, weighted by the bin's share of papers.
pub fn expected_calibration_error(probs: &[f64], labels: &[bool], bins: usize) -> f64 {
    if probs.is_empty() || bins == 0 {
        return f64::NAN;
    }
    let mut sums = vec![(0.0f64, 0.0f64, 0usize); bins];
    for (&p, &y) in probs.iter().zip(labels) {
        let b = ((p * bins as f64) as usize).min(bins - 1);
        sums[b].0 += p;
        sums[b].1 += f64::from(u8::from(y));
        sums[b].2 += 1;
    }
    let n = probs.len() as f64;
    sums.iter().filter(|s| s.2 > 0).map(|&(sp, sy, _)| (sp - sy).abs() / n).sum()
}

/// ROC-AUC, PR-AUC, Brier and ECE with bootstrap 95 % intervals over `resamples` draws.
fn estimates(probs: &[f64], labels: &[bool], resamples: usize, seed: u64) -> [Estimate; 4] {
    let figures = |p: &[f64], y: &[bool]| {
        [roc_auc(p, y), pr_auc(p, y), brier(p, y), expected_calibration_error(p, y, 10)]
    };
    let point = figures(probs, labels);
    let n = probs.len();
    let mut draws: [Vec<f64>; 4] = Default::default();
    let mut rng = SplitMix(seed);
    if n > 0 {
        let (mut p, mut y) = (vec![0.0; n], vec![false; n]);
        for _ in 0..resamples {
            for i in 0..n {
                let j = rng.below(n);
                p[i] = probs[j];
                y[i] = labels[j];
            }
            for (d, v) in draws.iter_mut().zip(figures(&p, &y)) {
                if v.is_finite() {
                    d.push(v);
                }
            }
        }
    }
    std::array::from_fn(|i| {
        let d = &mut draws[i];
        d.sort_by(f64::total_cmp);
        Estimate { value: point[i], lo: percentile(d, 0.025), hi: percentile(d, 0.975) }
    })
}

/// The `q` percentile of ascending values (nearest rank); NaN for none.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::task::{synthetic, TaskOptions};

    #[test]
    fn figures_follow_their_definitions() {
        let probs = [0.1, 0.4, 0.35, 0.8];
        let labels = [false, false, true, true];
        assert!((brier(&probs, &labels) - (0.01 + 0.16 + 0.4225 + 0.04) / 4.0).abs() < 1e-12);
        // Bins: 0.1 -> bin 1 (rate 0), 0.35 and 0.4 -> bins 3 and 4, 0.8 -> bin 8.
        let ece = expected_calibration_error(&probs, &labels, 10);
        assert!((ece - (0.1 + 0.4 + 0.65 + 0.2) / 4.0).abs() < 1e-12, "{ece}");
        let [auc, _, b, _] = estimates(&probs, &labels, 200, 1);
        assert_eq!(auc.value, 0.75);
        assert!(auc.lo <= auc.value && auc.value <= auc.hi, "{auc:?}");
        assert!(b.lo <= b.value && b.value <= b.hi, "{b:?}");
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn each_cutoff_trains_on_what_was_known_then_and_scores_the_period_after() {
        let d = dates::from_ymd;
        let corpus = Arc::new(synthetic::day_dated(d(1990, 1, 1), d(2001, 12, 31), 70, 11));
        let base = TaskSpec::derive(&corpus, &TaskOptions::default()).unwrap();
        let opts = TrainOptions { bootstrap_resamples: 30, ..TrainOptions::quick() };
        let bt = backtest(&corpus, &base, Mode::AtPublication, &opts, 2).unwrap();
        assert_eq!(bt.periods.len(), 2);
        let (old, new) = (&bt.periods[0], &bt.periods[1]);
        assert_eq!((old.periods_back, new.periods_back), (1, 0));
        assert_eq!(new.task, base);
        // One test period (12 months) back: the old test period is the base's validation.
        assert_eq!(old.task.test, base.validation);
        assert!(
            old.task.validation.to < base.validation.from && old.task.train.to < old.task.validation.from
        );
        assert_eq!(old.task.last_labelled, old.task.test.to);
        // Trained on data as of the end of its last test label window: two years
        // before the base's.
        assert_eq!(old.data_as_of, dates::format(old.task.label_end(old.task.test.to)));
        assert!(old.data_as_of < new.data_as_of);
        for p in &bt.periods {
            assert!(p.papers >= 50 && p.positives >= 5, "{p:?}");
            for e in [p.roc_auc, p.pr_auc, p.brier, p.ece] {
                assert!(e.value.is_finite() && e.lo <= e.hi, "{p:?}");
            }
            assert!(p.roc_auc.value > 0.5, "{p:?}");
        }
        let json = serde_json::to_string(&bt).unwrap();
        assert_eq!(serde_json::from_str::<Backtest>(&json).unwrap().periods.len(), 2);
    }
}
