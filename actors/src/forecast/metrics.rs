//! Evaluation metrics for a binary forecast: ranking quality (ROC-AUC, PR-AUC), the
//! confusion matrix at a threshold, calibration, and a paired bootstrap test of one
//! model's gain over another.

use serde::{Deserialize, Serialize};

/// Area under the ROC curve, with ties handled by average ranks (Mann-Whitney U).
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let n = scores.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[idx[k]] = avg;
        }
        i = j + 1;
    }
    let pos = labels.iter().filter(|l| **l).count() as f64;
    let neg = n as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    let rank_sum: f64 = ranks.iter().zip(labels).filter(|(_, l)| **l).map(|(r, _)| r).sum();
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Area under the precision-recall curve as average precision (the step-wise sum used
/// by scikit-learn), with tied scores taken as one step.
pub fn pr_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let pos = labels.iter().filter(|l| **l).count() as f64;
    if pos == 0.0 {
        return f64::NAN;
    }
    let (mut tp, mut fp, mut prev_recall, mut ap) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let s = scores[idx[i]];
        while i < idx.len() && scores[idx[i]] == s {
            if labels[idx[i]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        let recall = tp / pos;
        let precision = tp / (tp + fp);
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    ap
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    pub r#fn: u64,
}

impl Confusion {
    pub fn at(scores: &[f64], labels: &[bool], threshold: f64) -> Confusion {
        let mut c = Confusion::default();
        for (s, l) in scores.iter().zip(labels) {
            match (*s >= threshold, *l) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.r#fn += 1,
            }
        }
        c
    }

    fn ratio(a: u64, b: u64) -> f64 {
        if b == 0 {
            0.0
        } else {
            a as f64 / b as f64
        }
    }

    pub fn accuracy(&self) -> f64 {
        Self::ratio(self.tp + self.tn, self.tp + self.tn + self.fp + self.r#fn)
    }
    pub fn precision(&self) -> f64 {
        Self::ratio(self.tp, self.tp + self.fp)
    }
    pub fn recall(&self) -> f64 {
        Self::ratio(self.tp, self.tp + self.r#fn)
    }
    pub fn fpr(&self) -> f64 {
        Self::ratio(self.fp, self.fp + self.tn)
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
    pub fn balanced_accuracy(&self) -> f64 {
        (self.recall() + Self::ratio(self.tn, self.tn + self.fp)) / 2.0
    }
}

/// Every figure the report shows for one model on one split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scorecard {
    pub n: usize,
    pub positives: usize,
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub threshold: f64,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub false_positive_rate: f64,
    pub confusion: Confusion,
}

impl Scorecard {
    pub fn new(scores: &[f64], labels: &[bool], threshold: f64) -> Scorecard {
        let c = Confusion::at(scores, labels, threshold);
        Scorecard {
            n: scores.len(),
            positives: labels.iter().filter(|l| **l).count(),
            roc_auc: roc_auc(scores, labels),
            pr_auc: pr_auc(scores, labels),
            threshold,
            accuracy: c.accuracy(),
            balanced_accuracy: c.balanced_accuracy(),
            precision: c.precision(),
            recall: c.recall(),
            f1: c.f1(),
            false_positive_rate: c.fpr(),
            confusion: c,
        }
    }
}

/// The threshold that maximises F1 on (validation) scores among those whose false
/// positive rate stays within `max_fpr`; candidates are the distinct scores.
pub fn choose_threshold(scores: &[f64], labels: &[bool], max_fpr: f64) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let pos = labels.iter().filter(|l| **l).count() as f64;
    let neg = scores.len() as f64 - pos;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut best = (f64::MIN, f64::INFINITY);
    let mut i = 0;
    while i < idx.len() {
        let s = scores[idx[i]];
        while i < idx.len() && scores[idx[i]] == s {
            if labels[idx[i]] {
                tp += 1.0
            } else {
                fp += 1.0
            }
            i += 1;
        }
        if neg > 0.0 && fp / neg > max_fpr {
            break;
        }
        let f1 = if tp == 0.0 { 0.0 } else { 2.0 * tp / (2.0 * tp + fp + (pos - tp)) };
        if f1 > best.0 {
            best = (f1, s);
        }
    }
    best.1
}

/// One bin of a calibration curve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub mean_predicted: f64,
    pub observed_rate: f64,
    pub count: usize,
}

/// Predicted probability against observed frequency in `bins` equal-width bins.
pub fn calibration(probs: &[f64], labels: &[bool], bins: usize) -> Vec<CalibrationBin> {
    let mut sums = vec![(0.0, 0usize, 0usize); bins];
    for (p, l) in probs.iter().zip(labels) {
        let b = ((p * bins as f64) as usize).min(bins - 1);
        sums[b].0 += p;
        sums[b].1 += 1;
        sums[b].2 += *l as usize;
    }
    sums.into_iter()
        .filter(|s| s.1 > 0)
        .map(|(sp, n, pos)| CalibrationBin {
            mean_predicted: sp / n as f64,
            observed_rate: pos as f64 / n as f64,
            count: n,
        })
        .collect()
}

/// Expected calibration error of a calibration curve: the mean gap between observed rate
/// and mean predicted probability over the bins, weighted by their rows (0 is perfect).
/// Computed from the bins alone, so every stored report has it.
pub fn expected_calibration_error(bins: &[CalibrationBin]) -> f64 {
    let n: usize = bins.iter().map(|b| b.count).sum();
    if n == 0 {
        return f64::NAN;
    }
    bins.iter().map(|b| b.count as f64 * (b.observed_rate - b.mean_predicted).abs()).sum::<f64>() / n as f64
}

/// A small deterministic generator (SplitMix64) for bootstraps and shuffles, so reports
/// reproduce exactly from a seed.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Paired bootstrap of the ROC-AUC gain of `a` over `b` on the same examples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Significance {
    pub metric: String,
    pub gain: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// One-sided: the share of resamples where `a` did not beat `b`.
    pub p_value: f64,
    pub resamples: usize,
}

pub fn paired_bootstrap_auc(
    a: &[f64],
    b: &[f64],
    labels: &[bool],
    resamples: usize,
    seed: u64,
) -> Significance {
    let n = labels.len();
    let mut rng = SplitMix(seed);
    let mut gains = Vec::with_capacity(resamples);
    let (mut sa, mut sb, mut sl) = (vec![0.0; n], vec![0.0; n], vec![false; n]);
    for _ in 0..resamples {
        for i in 0..n {
            let j = rng.below(n);
            sa[i] = a[j];
            sb[i] = b[j];
            sl[i] = labels[j];
        }
        let g = roc_auc(&sa, &sl) - roc_auc(&sb, &sl);
        if g.is_finite() {
            gains.push(g);
        }
    }
    gains.sort_by(f64::total_cmp);
    let q =
        |p: f64| gains.get(((gains.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
    let not_better = gains.iter().filter(|g| **g <= 0.0).count();
    Significance {
        metric: "roc_auc".into(),
        gain: roc_auc(a, labels) - roc_auc(b, labels),
        ci_low: q(0.025),
        ci_high: q(0.975),
        p_value: (not_better as f64 + 1.0) / (gains.len() as f64 + 1.0),
        resamples: gains.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_matches_hand_computed_values() {
        let labels = [true, false, true, false];
        assert_eq!(roc_auc(&[0.9, 0.1, 0.8, 0.2], &labels), 1.0);
        assert_eq!(roc_auc(&[0.1, 0.9, 0.2, 0.8], &labels), 0.0);
        assert_eq!(roc_auc(&[0.5, 0.5, 0.5, 0.5], &labels), 0.5);
        // One inversion out of four pairs.
        assert_eq!(roc_auc(&[0.9, 0.85, 0.8, 0.1], &labels), 0.75);
        assert!((pr_auc(&[0.9, 0.1, 0.8, 0.2], &labels) - 1.0).abs() < 1e-12);
        // sklearn average_precision_score([1,0,1,0],[0.9,0.85,0.8,0.1]) = 0.8333
        assert!((pr_auc(&[0.9, 0.85, 0.8, 0.1], &labels) - 0.833_333).abs() < 1e-5);
    }

    #[test]
    fn confusion_and_threshold() {
        let scores = [0.9, 0.8, 0.7, 0.2, 0.1];
        let labels = [true, false, true, false, false];
        let c = Confusion::at(&scores, &labels, 0.7);
        assert_eq!((c.tp, c.fp, c.tn, c.r#fn), (2, 1, 2, 0));
        assert!((c.fpr() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(choose_threshold(&scores, &labels, 1.0), 0.7);
        assert_eq!(choose_threshold(&scores, &labels, 0.0), 0.9);
    }

    #[test]
    fn bootstrap_finds_a_real_gain() {
        let mut rng = SplitMix(1);
        let labels: Vec<bool> = (0..400).map(|i| i % 5 == 0).collect();
        let good: Vec<f64> = labels.iter().map(|l| *l as u8 as f64 + rng.unit()).collect();
        let bad: Vec<f64> = labels.iter().map(|l| *l as u8 as f64 * 0.2 + rng.unit()).collect();
        let s = paired_bootstrap_auc(&good, &bad, &labels, 200, 7);
        assert!(s.gain > 0.1 && s.p_value < 0.01, "{s:?}");
        let s = paired_bootstrap_auc(&bad, &good, &labels, 200, 7);
        assert!(s.p_value > 0.9, "{s:?}");
    }

    #[test]
    fn expected_calibration_error_weights_bins_by_rows() {
        let probs = [0.1, 0.1, 0.9, 0.9];
        let labels = [false, true, true, true];
        let bins = calibration(&probs, &labels, 10);
        // Bin 0.1: observed 0.5 (gap 0.4, 2 rows); bin 0.9: observed 1.0 (gap 0.1, 2 rows).
        assert!((expected_calibration_error(&bins) - 0.25).abs() < 1e-12);
        assert!(expected_calibration_error(&[]).is_nan());
    }
}
