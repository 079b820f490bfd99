//! The performance report of a trained forecast model: scorecards against baselines, the
//! confusion matrix, the most confident mistakes with their attributions, permutation
//! importance, feature correlations, group ablation, time-ordered cross-validation,
//! per-year stability, calibration, bootstrap significance and the worst segments.
//!
//! [`build`] computes every figure from the inputs (nothing is hard-coded); the binary
//! renders a [`Report`] as a page (`src/forecasts/report_page.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Deserializer, Serialize};

use super::metrics::{self, CalibrationBin, Confusion, Scorecard, SplitMix};
use crate::dates::{self, Day};
use crate::forecast::task::Mode;

/// A model that scores standardised feature rows.
pub trait Scorer: Sync {
    /// Probabilities for `x` (row-major, `d` columns).
    fn score_rows(&self, x: &[f32], d: usize) -> Vec<f64>;
    /// Each feature's contribution to one row's score (any additive attribution; e.g.
    /// weight*value for a linear model, or gradient*input for an MLP), same order as features.
    fn contributions(&self, row: &[f32]) -> Vec<f64>;
    /// Probabilities for rows of papers submitted on `days`; a model that ranks a score
    /// among the papers before it (see `cohort`) needs the dates.
    fn score_set(&self, x: &[f32], d: usize, days: &[Day]) -> Vec<f64> {
        let _ = days;
        self.score_rows(x, d)
    }
}

/// Rows of one split.
#[derive(Clone, Copy)]
pub struct EvalSet<'a> {
    pub x: &'a [f32],
    pub d: usize,
    pub y: &'a [bool],
    pub ids: &'a [String],
    pub days: &'a [Day],
    pub team_size: &'a [u32],
    /// A coarse topic label per row (e.g. the paper's dominant text cluster or subject).
    pub topic: &'a [String],
    /// The dense training target per row (see [`super::mlp::Objective::Regress`]).
    pub dense: &'a [f32],
}

impl EvalSet<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    pub fn positives(&self) -> usize {
        self.y.iter().filter(|l| **l).count()
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    /// Panics with a clear message when the columns disagree in length.
    fn check(&self, split: &str, d: usize) {
        let n = self.len();
        assert_eq!(self.d, d, "{split}: d is {} but there are {d} feature names", self.d);
        assert_eq!(self.x.len(), n * d, "{split}: x has {} values, expected {n} x {d}", self.x.len());
        assert_eq!(self.ids.len(), n, "{split}: ids and labels differ in length");
        assert_eq!(self.days.len(), n, "{split}: days and labels differ in length");
        assert_eq!(self.team_size.len(), n, "{split}: team_size and labels differ in length");
        assert_eq!(self.topic.len(), n, "{split}: topic and labels differ in length");
    }
}

/// Scores of one baseline on validation and test (same row order as the splits).
pub struct BaselineScores {
    pub name: String,
    pub validation: Vec<f64>,
    pub test: Vec<f64>,
}

/// Retrains the served model's family on `train` using only the feature columns in `keep`
/// (indices into the full feature list), using `validation` for early stopping; returns a scorer
/// that takes rows with ONLY those columns, in that order.
pub type Retrain<'a> = dyn Fn(&[usize], &EvalSet, &EvalSet) -> Box<dyn Scorer> + Sync + 'a;

pub struct ReportInput<'a> {
    pub mode: Mode,
    pub version: String,
    pub feature_names: &'a [String],
    /// Group name per feature (author, network, velocity, topic, references, temporal, ...).
    pub feature_groups: &'a [String],
    pub served_name: String,
    pub served: &'a dyn Scorer,
    /// Decision threshold chosen on validation (report it, don't re-choose it).
    pub threshold: f64,
    pub baselines: Vec<BaselineScores>,
    pub train: EvalSet<'a>,
    pub validation: EvalSet<'a>,
    pub test: EvalSet<'a>,
    pub retrain: &'a Retrain<'a>,
    /// FPR cap used when choosing baseline thresholds on validation (metrics::choose_threshold).
    pub max_fpr: f64,
    pub seed: u64,
    /// Bootstrap resamples (e.g. 1000) and permutation repeats (e.g. 3); smaller in tests.
    pub resamples: usize,
    pub permutation_repeats: usize,
}

/// How many of the most confident false positives (and negatives) the report lists.
pub const MISTAKES_LISTED: usize = 20;
/// How many feature contributions each listed mistake shows.
pub const TOP_CONTRIBUTIONS: usize = 5;
/// Bins of the calibration curve.
pub const CALIBRATION_BINS: usize = 10;
/// Consecutive date-ordered blocks the training rows are cut into for cross-validation
/// (so there are one fewer folds).
pub const CV_BLOCKS: usize = 6;
/// The smallest segment the improvement list considers.
pub const MIN_SEGMENT: usize = 20;
/// How many segments the improvement list keeps.
pub const SEGMENTS_LISTED: usize = 10;

// ---------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------

/// serde_json writes non-finite floats (an undefined AUC, say) as `null`; this reads
/// them back as NaN so every report round-trips.
fn nan_or<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// [`Scorecard`] as it deserialises when some of its figures were undefined.
#[derive(Deserialize)]
struct ScorecardRepr {
    n: usize,
    positives: usize,
    #[serde(deserialize_with = "nan_or")]
    roc_auc: f64,
    #[serde(deserialize_with = "nan_or")]
    pr_auc: f64,
    #[serde(deserialize_with = "nan_or")]
    threshold: f64,
    accuracy: f64,
    balanced_accuracy: f64,
    precision: f64,
    recall: f64,
    f1: f64,
    false_positive_rate: f64,
    confusion: Confusion,
}

fn de_scorecard<'de, D: Deserializer<'de>>(d: D) -> Result<Scorecard, D::Error> {
    let r = ScorecardRepr::deserialize(d)?;
    Ok(Scorecard {
        n: r.n,
        positives: r.positives,
        roc_auc: r.roc_auc,
        pr_auc: r.pr_auc,
        threshold: r.threshold,
        accuracy: r.accuracy,
        balanced_accuracy: r.balanced_accuracy,
        precision: r.precision,
        recall: r.recall,
        f1: r.f1,
        false_positive_rate: r.false_positive_rate,
        confusion: r.confusion,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureInfo {
    pub name: String,
    pub group: String,
}

/// Rows and positives of one split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitCount {
    pub n: usize,
    pub positives: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitCounts {
    pub train: SplitCount,
    pub validation: SplitCount,
    pub test: SplitCount,
}

/// A baseline on test, at the threshold chosen on its own validation scores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineResult {
    pub name: String,
    #[serde(deserialize_with = "de_scorecard")]
    pub test: Scorecard,
    /// Whether the served model has both a higher test ROC-AUC and PR-AUC.
    pub served_is_better: bool,
}

/// One feature's share of a row's score.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Contribution {
    pub feature: String,
    pub group: String,
    /// The (standardised) feature value in the row.
    pub value: f64,
    #[serde(deserialize_with = "nan_or")]
    pub contribution: f64,
}

/// One confidently wrong test prediction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mistake {
    pub id: String,
    pub day: Day,
    /// `YYYY-MM-DD`.
    pub date: String,
    pub score: f64,
    pub label: bool,
    /// The largest contributions by magnitude, largest first.
    pub top_contributions: Vec<Contribution>,
}

/// Drop in test ROC-AUC when one feature's column is shuffled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Importance {
    pub feature: String,
    pub group: String,
    #[serde(deserialize_with = "nan_or")]
    pub mean_drop: f64,
    /// Standard deviation over the repeats (0 with one repeat).
    #[serde(deserialize_with = "nan_or")]
    pub std_drop: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PermutationImportance {
    #[serde(deserialize_with = "nan_or")]
    pub base_roc_auc: f64,
    pub repeats: usize,
}

/// Pearson correlations between features on the training rows. A constant feature
/// correlates 0 with every other (1 with itself).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Correlation {
    pub names: Vec<String>,
    pub matrix: Vec<Vec<f64>>,
}

/// Test figures of the model family retrained without (and with only) one feature group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupAblation {
    pub group: String,
    pub features: Vec<String>,
    /// Retrained without this group's columns (NaN when the group holds every column).
    #[serde(deserialize_with = "nan_or")]
    pub without_roc_auc: f64,
    #[serde(deserialize_with = "nan_or")]
    pub without_pr_auc: f64,
    /// `without_*` minus the served model's test figure: negative means the group helps.
    #[serde(deserialize_with = "nan_or")]
    pub delta_roc_auc: f64,
    #[serde(deserialize_with = "nan_or")]
    pub delta_pr_auc: f64,
    /// Retrained on this group's columns alone.
    #[serde(deserialize_with = "nan_or")]
    pub only_roc_auc: f64,
    #[serde(deserialize_with = "nan_or")]
    pub only_pr_auc: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ablation {
    /// The served model's test figures the deltas are taken against.
    #[serde(deserialize_with = "nan_or")]
    pub served_roc_auc: f64,
    #[serde(deserialize_with = "nan_or")]
    pub served_pr_auc: f64,
    /// The family retrained with every column, for scale: how much of a delta is just
    /// retraining noise.
    #[serde(deserialize_with = "nan_or")]
    pub retrained_full_roc_auc: f64,
    #[serde(deserialize_with = "nan_or")]
    pub retrained_full_pr_auc: f64,
    pub groups: Vec<GroupAblation>,
}

/// One fold of time-ordered cross-validation: trained on the blocks before it, evaluated
/// on its own block.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CvFold {
    pub fold: usize,
    pub train_n: usize,
    pub train_start: String,
    pub train_end: String,
    /// First and last submission date of the evaluated block.
    pub start: String,
    pub end: String,
    pub n: usize,
    pub positives: usize,
    #[serde(deserialize_with = "nan_or")]
    pub roc_auc: f64,
    #[serde(deserialize_with = "nan_or")]
    pub pr_auc: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrossValidation {
    pub blocks: usize,
    pub folds: Vec<CvFold>,
    /// Mean and sample standard deviation over the folds whose figure is defined.
    #[serde(deserialize_with = "nan_or")]
    pub mean_roc_auc: f64,
    #[serde(deserialize_with = "nan_or")]
    pub std_roc_auc: f64,
    #[serde(deserialize_with = "nan_or")]
    pub mean_pr_auc: f64,
    #[serde(deserialize_with = "nan_or")]
    pub std_pr_auc: f64,
}

/// The served model on one calendar year of validation and test rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct YearStability {
    pub year: i32,
    pub n: usize,
    pub positives: usize,
    #[serde(deserialize_with = "nan_or")]
    pub roc_auc: f64,
    #[serde(deserialize_with = "nan_or")]
    pub pr_auc: f64,
}

/// Paired bootstrap of the served model's test ROC-AUC gain over one baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignificanceRow {
    pub baseline: String,
    pub metric: String,
    #[serde(deserialize_with = "nan_or")]
    pub gain: f64,
    #[serde(deserialize_with = "nan_or")]
    pub ci_low: f64,
    #[serde(deserialize_with = "nan_or")]
    pub ci_high: f64,
    /// One-sided: the share of resamples where the served model did not beat the baseline.
    pub p_value: f64,
    /// Resamples with a defined gain.
    pub resamples: usize,
}

/// A slice of the test rows and the served model's errors on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Segment {
    /// `year`, `team_size` or `topic`.
    pub kind: String,
    pub value: String,
    pub n: usize,
    pub positives: usize,
    pub errors: usize,
    pub error_rate: f64,
    /// FP / negatives (0 without negatives).
    pub fpr: f64,
    /// FN / positives (0 without positives).
    pub fnr: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub mode: Mode,
    pub version: String,
    pub served_name: String,
    pub threshold: f64,
    pub max_fpr: f64,
    pub seed: u64,
    pub resamples: usize,
    pub permutation_repeats: usize,
    pub features: Vec<FeatureInfo>,
    pub counts: SplitCounts,
    /// Test predictions counted in the confusion matrix / test rows.
    pub coverage: f64,
    /// Test scores that were NaN or infinite (counted as negative predictions).
    pub nonfinite_test_scores: usize,

    // 1-2. Scorecards (the test one holds the confusion matrix).
    #[serde(deserialize_with = "de_scorecard")]
    pub served_validation: Scorecard,
    #[serde(deserialize_with = "de_scorecard")]
    pub served_test: Scorecard,
    pub baselines: Vec<BaselineResult>,
    /// Test ROC-AUC and PR-AUC both higher than every baseline's.
    pub beats_every_baseline: bool,

    // 3. The most confident mistakes on test.
    pub false_positives: Vec<Mistake>,
    pub false_negatives: Vec<Mistake>,

    // 4.
    pub permutation: PermutationImportance,
    /// Sorted by `mean_drop`, largest first.
    pub permutation_importance: Vec<Importance>,

    // 5.
    pub correlation: Correlation,

    // 6.
    pub ablation: Ablation,

    // 7.
    pub cross_validation: CrossValidation,

    // 8.
    pub per_year: Vec<YearStability>,

    // 9.
    pub calibration: Vec<CalibrationBin>,

    // 10.
    pub significance: Vec<SignificanceRow>,

    // 11.
    /// Segments with at least [`MIN_SEGMENT`] rows considered for the improvement list.
    pub segments_considered: usize,
    pub improvements: Vec<Segment>,

    // 12. Added by training, `citecast evaluate --backtest` and the retraining job.
    /// The task, in words: resolution, windows and the three periods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Rolling-origin backtest over earlier cutoffs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backtest: Option<super::backtest::Backtest>,
    /// The comparison with the model serving when this one was trained by the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}

/// A retrained candidate against the model serving its mode, on the candidate's
/// validation period (the same papers and labels for both), as the retraining job
/// judged it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub candidate: String,
    pub serving: String,
    pub mode: Mode,
    /// The validation period both were scored on, `YYYY-MM-DD`.
    pub validation_from: String,
    pub validation_to: String,
    pub papers: usize,
    pub positives: usize,
    pub candidate_roc_auc: f64,
    pub serving_roc_auc: f64,
    /// Paired bootstrap of the ROC-AUC gain of the candidate.
    pub significance: metrics::Significance,
    /// Whether the gain is positive and significant at [`ALPHA`].
    pub significant: bool,
    /// What the retraining job did with it, in words.
    pub decision: String,
}

/// Significance level the report's headline uses for "significantly better".
pub const ALPHA: f64 = 0.05;

/// The report's one-line verdict on the served model against the baselines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Headline {
    /// True only when the model is better than every baseline on test and every
    /// gain is significant at [`ALPHA`].
    pub good: bool,
    pub text: String,
}

impl Report {
    /// A headline that claims only what the scorecards and the significance table
    /// support: "beats every baseline" needs higher test ROC-AUC and PR-AUC than each
    /// baseline and a paired-bootstrap p-value below [`ALPHA`] for each gain; otherwise
    /// it names the baselines where the claim fails and why.
    pub fn headline(&self) -> Headline {
        if self.baselines.is_empty() {
            return Headline {
                good: false,
                text: "No baselines were scored, so the report makes no comparison.".into(),
            };
        }
        let worse: Vec<&str> =
            self.baselines.iter().filter(|b| !b.served_is_better).map(|b| b.name.as_str()).collect();
        if !worse.is_empty() {
            return Headline {
                good: false,
                text: format!(
                    "The served model does not beat every baseline on test: {} {} at least as high a ROC-AUC or PR-AUC.",
                    join_names(&worse),
                    if worse.len() == 1 { "has" } else { "have" }
                ),
            };
        }
        let not_significant: Vec<String> = self
            .baselines
            .iter()
            .filter_map(|b| {
                let row = self.significance.iter().find(|s| s.baseline == b.name);
                match row {
                    Some(s) if s.p_value < ALPHA && s.ci_low > 0.0 => None,
                    Some(s) if s.p_value.is_finite() => {
                        Some(format!("{} (p = {})", b.name, p_text(s.p_value)))
                    }
                    _ => Some(format!("{} (not tested)", b.name)),
                }
            })
            .collect();
        if not_significant.is_empty() {
            return Headline {
                good: true,
                text: format!(
                    "The served model beats every baseline on test (higher ROC-AUC and PR-AUC), and each ROC-AUC gain is significant at p < {ALPHA}."
                ),
            };
        }
        let names: Vec<&str> = not_significant.iter().map(String::as_str).collect();
        Headline {
            good: false,
            text: format!(
                "The served model scores higher than every baseline on test (ROC-AUC and PR-AUC), but its ROC-AUC gain over {} is not significant at p < {ALPHA}, so the data do not show it beats {}.",
                join_names(&names),
                if names.len() == 1 { "that baseline" } else { "those baselines" }
            ),
        }
    }
}

fn join_names(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {}", init.join(", "), last),
    }
}

fn p_text(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// A decision threshold as a reader should see it: a number, or in words when no
/// finite threshold exists (no candidate kept the false-positive rate within the cap,
/// so the model predicts no positives; stored reports read such a threshold back as NaN).
pub fn threshold_text(t: f64) -> String {
    if t.is_finite() {
        format!("{t:.4}")
    } else {
        "none (no positive predictions)".into()
    }
}

/// A figure that may be undefined (an AUC on a split without positives, say).
pub fn figure_text(x: f64) -> String {
    if x.is_nan() {
        "undefined".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "infinite".into()
        } else {
            "minus infinite".into()
        }
    } else {
        format!("{x:.4}")
    }
}

// ---------------------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------------------

/// Computes every section of the report. Panics when the inputs disagree in shape
/// (columns of different lengths, baseline scores not matching their split).
pub fn build(input: &ReportInput) -> Report {
    let d = input.feature_names.len();
    assert_eq!(input.feature_groups.len(), d, "one group per feature");
    input.train.check("train", d);
    input.validation.check("validation", d);
    input.test.check("test", d);
    for b in &input.baselines {
        assert_eq!(b.validation.len(), input.validation.len(), "baseline {}: validation scores", b.name);
        assert_eq!(b.test.len(), input.test.len(), "baseline {}: test scores", b.name);
    }
    let (val, test) = (&input.validation, &input.test);

    let val_scores = input.served.score_set(val.x, d, val.days);
    let test_scores = input.served.score_set(test.x, d, test.days);
    assert_eq!(val_scores.len(), val.len(), "served model: one validation score per row");
    assert_eq!(test_scores.len(), test.len(), "served model: one test score per row");

    // 1-2. Scorecards.
    let served_validation = Scorecard::new(&val_scores, val.y, input.threshold);
    let served_test = Scorecard::new(&test_scores, test.y, input.threshold);
    let baselines: Vec<BaselineResult> = input
        .baselines
        .iter()
        .map(|b| {
            let threshold = metrics::choose_threshold(&b.validation, val.y, input.max_fpr);
            let card = Scorecard::new(&b.test, test.y, threshold);
            BaselineResult {
                name: b.name.clone(),
                served_is_better: served_test.roc_auc > card.roc_auc && served_test.pr_auc > card.pr_auc,
                test: card,
            }
        })
        .collect();
    let beats_every_baseline = baselines.iter().all(|b| b.served_is_better);
    let c = &served_test.confusion;
    let analysed = (c.tp + c.fp + c.tn + c.r#fn) as f64;
    let coverage = if test.is_empty() { 1.0 } else { analysed / test.len() as f64 };
    let nonfinite_test_scores = test_scores.iter().filter(|s| !s.is_finite()).count();

    let features: Vec<FeatureInfo> = input
        .feature_names
        .iter()
        .zip(input.feature_groups)
        .map(|(n, g)| FeatureInfo { name: n.clone(), group: g.clone() })
        .collect();
    let count = |s: &EvalSet| SplitCount { n: s.len(), positives: s.positives() };

    // 3.
    let (false_positives, false_negatives) = mistakes(input, &test_scores);
    // 4.
    let (permutation, permutation_importance) = permutation_importance(input, &test_scores);
    // 5.
    let correlation =
        Correlation { names: input.feature_names.to_vec(), matrix: correlation_matrix(&input.train) };
    // 6.
    let ablation = ablation(input, &served_test);
    // 7.
    let cross_validation = cross_validation(input);
    // 8.
    let per_year = per_year(val, &val_scores, test, &test_scores);
    // 9.
    let calibration = metrics::calibration(&test_scores, test.y, CALIBRATION_BINS);
    // 10.
    let significance = input
        .baselines
        .iter()
        .map(|b| {
            let s = metrics::paired_bootstrap_auc(&test_scores, &b.test, test.y, input.resamples, input.seed);
            SignificanceRow {
                baseline: b.name.clone(),
                metric: s.metric,
                gain: s.gain,
                ci_low: s.ci_low,
                ci_high: s.ci_high,
                p_value: s.p_value,
                resamples: s.resamples,
            }
        })
        .collect();
    // 11.
    let (segments_considered, improvements) = improvements(test, &test_scores, input.threshold);

    Report {
        mode: input.mode,
        version: input.version.clone(),
        served_name: input.served_name.clone(),
        threshold: input.threshold,
        max_fpr: input.max_fpr,
        seed: input.seed,
        resamples: input.resamples,
        permutation_repeats: input.permutation_repeats,
        features,
        counts: SplitCounts { train: count(&input.train), validation: count(val), test: count(test) },
        coverage,
        nonfinite_test_scores,
        served_validation,
        served_test,
        baselines,
        beats_every_baseline,
        false_positives,
        false_negatives,
        permutation,
        permutation_importance,
        correlation,
        ablation,
        cross_validation,
        per_year,
        calibration,
        significance,
        segments_considered,
        improvements,
        task: None,
        backtest: None,
        comparison: None,
    }
}

/// `f(0..n)` on up to `available_parallelism` scoped threads, results in index order.
fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(n);
    if threads <= 1 {
        return (0..n).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break done;
                        }
                        done.push((i, f(i)));
                    }
                })
            })
            .collect();
        for h in handles {
            for (i, v) in h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)) {
                out[i] = Some(v);
            }
        }
    });
    out.into_iter().map(|v| v.expect("every index is computed once")).collect()
}

/// The columns `keep` of row-major `x` with `d` columns.
fn select_columns(x: &[f32], d: usize, keep: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len() / d.max(1) * keep.len());
    for row in x.chunks_exact(d.max(1)) {
        out.extend(keep.iter().map(|&j| row[j]));
    }
    out
}

/// The most confident false positives (highest-scoring negatives at or above the
/// threshold) and false negatives (lowest-scoring positives below it) on test.
fn mistakes(input: &ReportInput, scores: &[f64]) -> (Vec<Mistake>, Vec<Mistake>) {
    let test = &input.test;
    let predicted = |i: usize| scores[i] >= input.threshold;
    let mut fp: Vec<usize> = (0..test.len()).filter(|&i| !test.y[i] && predicted(i)).collect();
    let mut fne: Vec<usize> = (0..test.len()).filter(|&i| test.y[i] && !predicted(i)).collect();
    fp.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    fne.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    let describe = |i: usize| {
        let row = test.row(i);
        let contrib = input.served.contributions(row);
        let mut order: Vec<usize> = (0..contrib.len().min(row.len())).collect();
        order.sort_by(|&a, &b| contrib[b].abs().total_cmp(&contrib[a].abs()).then(a.cmp(&b)));
        Mistake {
            id: test.ids[i].clone(),
            day: test.days[i],
            date: dates::format(test.days[i]),
            score: scores[i],
            label: test.y[i],
            top_contributions: order
                .into_iter()
                .take(TOP_CONTRIBUTIONS)
                .map(|j| Contribution {
                    feature: input.feature_names[j].clone(),
                    group: input.feature_groups[j].clone(),
                    value: row[j] as f64,
                    contribution: contrib[j],
                })
                .collect(),
        }
    };
    let fp = fp.into_iter().take(MISTAKES_LISTED).map(describe).collect();
    let fne = fne.into_iter().take(MISTAKES_LISTED).map(describe).collect();
    (fp, fne)
}

fn mean_std(xs: &[f64]) -> (f64, f64) {
    let xs: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let std = if xs.len() < 2 {
        0.0
    } else {
        (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    };
    (mean, std)
}

/// Drop in the served model's test ROC-AUC when each column is shuffled, averaged over
/// the repeats; each (feature, repeat) has its own stream derived from the seed, so the
/// result does not depend on thread scheduling.
fn permutation_importance(input: &ReportInput, scores: &[f64]) -> (PermutationImportance, Vec<Importance>) {
    let test = &input.test;
    let (n, d) = (test.len(), test.d);
    let repeats = input.permutation_repeats.max(1);
    let base = metrics::roc_auc(scores, test.y);
    let drops = par_map(d, |j| {
        let mut x = test.x.to_vec();
        let column: Vec<f32> = (0..n).map(|i| test.x[i * d + j]).collect();
        let mut perm: Vec<usize> = (0..n).collect();
        (0..repeats)
            .map(|r| {
                let mut rng =
                    SplitMix(input.seed ^ ((j * repeats + r) as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
                for (i, p) in perm.iter_mut().enumerate() {
                    *p = i;
                }
                for i in (1..n).rev() {
                    perm.swap(i, rng.below(i + 1));
                }
                for i in 0..n {
                    x[i * d + j] = column[perm[i]];
                }
                base - metrics::roc_auc(&input.served.score_set(&x, d, test.days), test.y)
            })
            .collect::<Vec<f64>>()
    });
    let mut out: Vec<Importance> = drops
        .iter()
        .enumerate()
        .map(|(j, drops)| {
            let (mean_drop, std_drop) = mean_std(drops);
            Importance {
                feature: input.feature_names[j].clone(),
                group: input.feature_groups[j].clone(),
                mean_drop,
                std_drop,
            }
        })
        .collect();
    out.sort_by(|a, b| b.mean_drop.total_cmp(&a.mean_drop));
    (PermutationImportance { base_roc_auc: base, repeats }, out)
}

/// Pearson correlations between the columns of `set`.
fn correlation_matrix(set: &EvalSet) -> Vec<Vec<f64>> {
    let (n, d) = (set.len(), set.d);
    let mut mean = vec![0.0f64; d];
    for row in set.x.chunks_exact(d.max(1)) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += *v as f64;
        }
    }
    for m in &mut mean {
        *m /= n.max(1) as f64;
    }
    let mut cov = vec![0.0f64; d * d];
    let mut centred = vec![0.0f64; d];
    for row in set.x.chunks_exact(d.max(1)) {
        for j in 0..d {
            centred[j] = row[j] as f64 - mean[j];
        }
        for a in 0..d {
            for b in 0..=a {
                cov[a * d + b] += centred[a] * centred[b];
            }
        }
    }
    (0..d)
        .map(|a| {
            (0..d)
                .map(|b| {
                    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
                    let denom = (cov[a * d + a] * cov[b * d + b]).sqrt();
                    if a == b {
                        1.0
                    } else if denom > 0.0 && denom.is_finite() {
                        (cov[hi * d + lo] / denom).clamp(-1.0, 1.0)
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect()
}

/// Test ROC-AUC and PR-AUC of the family retrained on `train` with the columns `keep`.
fn retrain_and_score(
    input: &ReportInput,
    keep: &[usize],
    train: &EvalSet,
    val: &EvalSet,
    eval: &EvalSet,
) -> (f64, f64) {
    let model = (input.retrain)(keep, train, val);
    let x = select_columns(eval.x, eval.d, keep);
    let scores = model.score_rows(&x, keep.len());
    (metrics::roc_auc(&scores, eval.y), metrics::pr_auc(&scores, eval.y))
}

fn ablation(input: &ReportInput, served_test: &Scorecard) -> Ablation {
    let d = input.feature_names.len();
    let mut groups: Vec<&String> = Vec::new();
    for g in input.feature_groups {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    // Task 0 is every column; then (without g, only g) per group.
    let mut keeps: Vec<Vec<usize>> = vec![(0..d).collect()];
    for g in &groups {
        keeps.push((0..d).filter(|&j| &input.feature_groups[j] != *g).collect());
        keeps.push((0..d).filter(|&j| &input.feature_groups[j] == *g).collect());
    }
    let results = par_map(keeps.len(), |t| {
        if keeps[t].is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            retrain_and_score(input, &keeps[t], &input.train, &input.validation, &input.test)
        }
    });
    let groups = groups
        .iter()
        .enumerate()
        .map(|(k, g)| {
            let (without, only) = (results[1 + 2 * k], results[2 + 2 * k]);
            GroupAblation {
                group: (*g).clone(),
                features: keeps[2 + 2 * k].iter().map(|&j| input.feature_names[j].clone()).collect(),
                without_roc_auc: without.0,
                without_pr_auc: without.1,
                delta_roc_auc: without.0 - served_test.roc_auc,
                delta_pr_auc: without.1 - served_test.pr_auc,
                only_roc_auc: only.0,
                only_pr_auc: only.1,
            }
        })
        .collect();
    Ablation {
        served_roc_auc: served_test.roc_auc,
        served_pr_auc: served_test.pr_auc,
        retrained_full_roc_auc: results[0].0,
        retrained_full_pr_auc: results[0].1,
        groups,
    }
}

/// Owned rows of a split, for the subsets cross-validation trains on.
struct OwnedSet {
    x: Vec<f32>,
    d: usize,
    y: Vec<bool>,
    ids: Vec<String>,
    days: Vec<Day>,
    team_size: Vec<u32>,
    topic: Vec<String>,
    dense: Vec<f32>,
}

impl OwnedSet {
    fn rows(set: &EvalSet, rows: &[usize]) -> OwnedSet {
        let mut x = Vec::with_capacity(rows.len() * set.d);
        for &i in rows {
            x.extend_from_slice(set.row(i));
        }
        OwnedSet {
            x,
            d: set.d,
            y: rows.iter().map(|&i| set.y[i]).collect(),
            ids: rows.iter().map(|&i| set.ids[i].clone()).collect(),
            days: rows.iter().map(|&i| set.days[i]).collect(),
            team_size: rows.iter().map(|&i| set.team_size[i]).collect(),
            topic: rows.iter().map(|&i| set.topic[i].clone()).collect(),
            dense: rows.iter().map(|&i| set.dense[i]).collect(),
        }
    }

    fn view(&self) -> EvalSet<'_> {
        EvalSet {
            x: &self.x,
            d: self.d,
            y: &self.y,
            ids: &self.ids,
            days: &self.days,
            team_size: &self.team_size,
            topic: &self.topic,
            dense: &self.dense,
        }
    }
}

/// Sorts the training rows by date, cuts them into [`CV_BLOCKS`] consecutive blocks and,
/// for each later block k, retrains on blocks `0..k` (the last of them doubling as the
/// early-stopping set) and evaluates on block k.
fn cross_validation(input: &ReportInput) -> CrossValidation {
    let train = &input.train;
    let n = train.len();
    let d = input.feature_names.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (train.days[i], i));
    let bounds: Vec<usize> = (0..=CV_BLOCKS).map(|b| b * n / CV_BLOCKS).collect();
    let folds_n = if n >= CV_BLOCKS { CV_BLOCKS - 1 } else { 0 };
    let all: Vec<usize> = (0..d).collect();
    let span = |rows: &[usize]| match (rows.first(), rows.last()) {
        (Some(&a), Some(&b)) => (dates::format(train.days[a]), dates::format(train.days[b])),
        _ => (String::new(), String::new()),
    };
    let folds = par_map(folds_n, |f| {
        let k = f + 1;
        let fit_rows = &order[..bounds[k]];
        let stop_rows = &order[bounds[k - 1]..bounds[k]];
        let eval_rows = &order[bounds[k]..bounds[k + 1]];
        let (fit, stop, eval) = (
            OwnedSet::rows(train, fit_rows),
            OwnedSet::rows(train, stop_rows),
            OwnedSet::rows(train, eval_rows),
        );
        let (roc_auc, pr_auc) = retrain_and_score(input, &all, &fit.view(), &stop.view(), &eval.view());
        let (train_start, train_end) = span(fit_rows);
        let (start, end) = span(eval_rows);
        CvFold {
            fold: k,
            train_n: fit_rows.len(),
            train_start,
            train_end,
            start,
            end,
            n: eval_rows.len(),
            positives: eval.y.iter().filter(|l| **l).count(),
            roc_auc,
            pr_auc,
        }
    });
    let (mean_roc_auc, std_roc_auc) = mean_std(&folds.iter().map(|f| f.roc_auc).collect::<Vec<_>>());
    let (mean_pr_auc, std_pr_auc) = mean_std(&folds.iter().map(|f| f.pr_auc).collect::<Vec<_>>());
    CrossValidation { blocks: CV_BLOCKS, folds, mean_roc_auc, std_roc_auc, mean_pr_auc, std_pr_auc }
}

fn per_year(val: &EvalSet, val_scores: &[f64], test: &EvalSet, test_scores: &[f64]) -> Vec<YearStability> {
    let mut years: BTreeMap<i32, (Vec<f64>, Vec<bool>)> = BTreeMap::new();
    for (set, scores) in [(val, val_scores), (test, test_scores)] {
        for ((day, score), label) in set.days.iter().zip(scores).zip(set.y) {
            let e = years.entry(dates::year_of(*day)).or_default();
            e.0.push(*score);
            e.1.push(*label);
        }
    }
    years
        .into_iter()
        .map(|(year, (s, y))| YearStability {
            year,
            n: y.len(),
            positives: y.iter().filter(|l| **l).count(),
            roc_auc: metrics::roc_auc(&s, &y),
            pr_auc: metrics::pr_auc(&s, &y),
        })
        .collect()
}

/// The team-size bucket the improvement list uses.
fn team_bucket(size: u32) -> &'static str {
    match size {
        0 => "unknown",
        1 => "1",
        2 => "2",
        3 => "3",
        _ => "4+",
    }
}

fn improvements(test: &EvalSet, scores: &[f64], threshold: f64) -> (usize, Vec<Segment>) {
    let mut cells: BTreeMap<(&str, String), Confusion> = BTreeMap::new();
    for (i, score) in scores.iter().enumerate().take(test.len()) {
        let keys = [
            ("year", dates::year_of(test.days[i]).to_string()),
            ("team_size", team_bucket(test.team_size[i]).to_string()),
            ("topic", test.topic[i].clone()),
        ];
        for key in keys {
            let c = cells.entry(key).or_default();
            match (*score >= threshold, test.y[i]) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.r#fn += 1,
            }
        }
    }
    let rate = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let mut segments: Vec<Segment> = cells
        .into_iter()
        .map(|((kind, value), c)| {
            let n = c.tp + c.fp + c.tn + c.r#fn;
            Segment {
                kind: kind.to_string(),
                value,
                n: n as usize,
                positives: (c.tp + c.r#fn) as usize,
                errors: (c.fp + c.r#fn) as usize,
                error_rate: rate(c.fp + c.r#fn, n),
                fpr: rate(c.fp, c.fp + c.tn),
                fnr: rate(c.r#fn, c.r#fn + c.tp),
            }
        })
        .filter(|s| s.n >= MIN_SEGMENT)
        .collect();
    let considered = segments.len();
    segments.sort_by(|a, b| b.error_rate.total_cmp(&a.error_rate).then(b.n.cmp(&a.n)));
    segments.truncate(SEGMENTS_LISTED);
    (considered, segments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::linear::Logistic;

    struct Linear(Logistic);

    impl Scorer for Linear {
        fn score_rows(&self, x: &[f32], d: usize) -> Vec<f64> {
            x.chunks_exact(d).map(|r| self.0.predict(r)).collect()
        }
        fn contributions(&self, row: &[f32]) -> Vec<f64> {
            self.0.contributions(row)
        }
    }

    struct Data {
        x: Vec<f32>,
        y: Vec<bool>,
        ids: Vec<String>,
        days: Vec<Day>,
        team: Vec<u32>,
        topic: Vec<String>,
        dense: Vec<f32>,
    }

    impl Data {
        fn set(&self) -> EvalSet<'_> {
            EvalSet {
                x: &self.x,
                d: D,
                y: &self.y,
                ids: &self.ids,
                days: &self.days,
                team_size: &self.team,
                topic: &self.topic,
                dense: &self.dense,
            }
        }
    }

    const D: usize = 6;

    /// `n` rows dated uniformly in `[from, to)`: f0 is strongly informative, f2 weakly,
    /// f1 is f0 plus noise (correlated but adds nothing), the rest are noise.
    fn data(rng: &mut SplitMix, n: usize, from: Day, to: Day, tag: &str) -> Data {
        let mut gauss = || {
            let (u, v) = (rng.unit().max(1e-12), rng.unit());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos(), v)
        };
        let mut d = Data {
            x: vec![],
            y: vec![],
            ids: vec![],
            days: vec![],
            team: vec![],
            topic: vec![],
            dense: vec![],
        };
        for i in 0..n {
            let f: Vec<f64> = (0..D).map(|_| gauss().0).collect();
            let f1 = 0.8 * f[0] + 0.6 * f[1];
            let row = [f[0], f1, f[2], f[3], f[4], f[5]];
            let z = 2.5 * f[0] + 0.7 * f[2] + gauss().0;
            let (_, u) = gauss();
            d.x.extend(row.iter().map(|v| *v as f32));
            d.y.push(z > 2.6);
            d.ids.push(format!("{tag}-{i}"));
            d.days.push(from + ((to - from) as f64 * u) as Day);
            d.team.push(1 + (u * 1000.0) as u32 % 6);
            d.topic.push(["hep-th", "gr-qc", "hep-ph"][i % 3].to_string());
            d.dense.push((z - 2.6) as f32);
        }
        d
    }

    fn fit(keep: &[usize], set: &EvalSet) -> Linear {
        let x = select_columns(set.x, set.d, keep);
        Linear(Logistic::fit(&x, set.y, keep.len(), 1e-2, 1.0))
    }

    fn names(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    fn report() -> Report {
        let mut rng = SplitMix(11);
        let train = data(&mut rng, 600, dates::from_ymd(1992, 1, 1), dates::from_ymd(1999, 1, 1), "tr");
        let val = data(&mut rng, 200, dates::from_ymd(1999, 1, 1), dates::from_ymd(2000, 1, 1), "va");
        let test = data(&mut rng, 200, dates::from_ymd(2000, 1, 1), dates::from_ymd(2001, 5, 1), "te");
        let feature_names = names(&["signal", "echo", "weak", "noise_a", "noise_b", "noise_c"]);
        let feature_groups = names(&["core", "core", "side", "side", "noise", "noise"]);
        let all: Vec<usize> = (0..D).collect();
        let served = fit(&all, &train.set());
        let val_scores = served.score_rows(&val.x, D);
        let threshold = metrics::choose_threshold(&val_scores, &val.y, 0.2);
        let weak = |s: &Data| s.x.chunks_exact(D).map(|r| r[2] as f64).collect::<Vec<f64>>();
        let retrain: &Retrain = &|keep, train, _val| Box::new(fit(keep, train));
        let input = ReportInput {
            mode: Mode::AtPublication,
            version: "v-test".into(),
            feature_names: &feature_names,
            feature_groups: &feature_groups,
            served_name: "logistic".into(),
            served: &served,
            threshold,
            baselines: vec![
                BaselineScores {
                    name: "constant".into(),
                    validation: vec![0.5; val.y.len()],
                    test: vec![0.5; test.y.len()],
                },
                BaselineScores { name: "weak feature".into(), validation: weak(&val), test: weak(&test) },
            ],
            train: train.set(),
            validation: val.set(),
            test: test.set(),
            retrain,
            max_fpr: 0.2,
            seed: 42,
            resamples: 100,
            permutation_repeats: 2,
        };
        build(&input)
    }

    #[test]
    fn report_has_every_section_and_honest_figures() {
        let r = report();
        assert_eq!(r.coverage, 1.0);
        assert_eq!(r.nonfinite_test_scores, 0);
        assert_eq!((r.counts.train.n, r.counts.validation.n, r.counts.test.n), (600, 200, 200));
        assert!(r.counts.test.positives > 10, "{:?}", r.counts);
        let c = r.served_test.confusion;
        assert_eq!((c.tp + c.fp + c.tn + c.r#fn) as usize, r.served_test.n);
        assert_eq!(r.features.len(), D);

        // 1. Scorecards and baselines.
        assert!(r.served_test.roc_auc > 0.85, "{:?}", r.served_test);
        assert_eq!(r.baselines.len(), 2);
        assert!(r.beats_every_baseline);
        assert_eq!(r.baselines[0].test.roc_auc, 0.5);
        assert!(r.significance.iter().all(|s| s.p_value < ALPHA), "{:?}", r.significance);
        assert!(r.headline().good, "{:?}", r.headline());

        // 3. Mistakes are real mistakes, most confident first, with attributions.
        assert!(!r.false_positives.is_empty() && !r.false_negatives.is_empty());
        assert!(r.false_positives.len() <= MISTAKES_LISTED && r.false_negatives.len() <= MISTAKES_LISTED);
        for m in &r.false_positives {
            assert!(!m.label && m.score >= r.threshold);
            assert_eq!(m.top_contributions.len(), TOP_CONTRIBUTIONS);
        }
        for m in &r.false_negatives {
            assert!(m.label && m.score < r.threshold);
        }
        assert!(r.false_positives.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(r.false_negatives.windows(2).all(|w| w[0].score <= w[1].score));
        let top = &r.false_negatives[0].top_contributions;
        assert!(top.windows(2).all(|w| w[0].contribution.abs() >= w[1].contribution.abs()));

        // 4. Permutation importance finds the informative feature.
        assert_eq!(r.permutation_importance.len(), D);
        assert_eq!(r.permutation_importance[0].feature, "signal", "{:?}", r.permutation_importance);
        assert!(r.permutation_importance[0].mean_drop > 0.1);
        assert!(r.permutation_importance.windows(2).all(|w| w[0].mean_drop >= w[1].mean_drop));

        // 5. Correlation: symmetric, unit diagonal, the echo feature correlates with the signal.
        let m = &r.correlation.matrix;
        assert_eq!((m.len(), m[0].len()), (D, D));
        for (a, row) in m.iter().enumerate() {
            assert_eq!(row[a], 1.0);
            assert!(row.iter().zip(m).all(|(v, other)| (v - other[a]).abs() < 1e-12));
        }
        assert!(m[0][1] > 0.6 && m[0][3].abs() < 0.2, "{m:?}");

        // 6. Ablation: removing the informative group hurts, removing noise hardly matters.
        assert_eq!(r.ablation.groups.len(), 3);
        let core = r.ablation.groups.iter().find(|g| g.group == "core").unwrap();
        assert!(core.delta_roc_auc < -0.1, "{core:?}");
        assert!(core.only_roc_auc > 0.8, "{core:?}");
        let noise = r.ablation.groups.iter().find(|g| g.group == "noise").unwrap();
        assert!(noise.delta_roc_auc.abs() < 0.05 && noise.only_roc_auc < 0.7, "{noise:?}");
        assert!((r.ablation.retrained_full_roc_auc - r.served_test.roc_auc).abs() < 1e-9);

        // 7. Cross-validation: five time-ordered folds.
        let cv = &r.cross_validation;
        assert_eq!(cv.folds.len(), 5);
        assert_eq!(cv.folds.iter().map(|f| f.n).sum::<usize>(), 500);
        assert!(cv.folds.windows(2).all(|w| w[0].end <= w[1].start && w[0].train_n < w[1].train_n));
        assert!(cv.folds.iter().all(|f| f.train_end <= f.start));
        assert!(cv.mean_roc_auc > 0.8 && cv.std_roc_auc.is_finite(), "{cv:?}");

        // 8. Per year: 1999, 2000, 2001.
        assert_eq!(r.per_year.iter().map(|y| y.year).collect::<Vec<_>>(), vec![1999, 2000, 2001]);
        assert_eq!(r.per_year.iter().map(|y| y.n).sum::<usize>(), 400);

        // 9-10.
        assert!(!r.calibration.is_empty());
        assert_eq!(r.calibration.iter().map(|b| b.count).sum::<usize>(), 200);
        assert_eq!(r.significance.len(), 2);
        assert!(r.significance[0].p_value < 0.05 && r.significance[0].gain > 0.3, "{:?}", r.significance);

        // 11.
        assert!(!r.improvements.is_empty() && r.improvements.len() <= SEGMENTS_LISTED);
        assert!(r.improvements.iter().all(|s| s.n >= MIN_SEGMENT));
        assert!(r.improvements.windows(2).all(|w| w[0].error_rate >= w[1].error_rate));
        let kinds: Vec<&str> = r.improvements.iter().map(|s| s.kind.as_str()).collect();
        assert!(kinds.contains(&"topic") || kinds.contains(&"team_size") || kinds.contains(&"year"));

        // Round trip through JSON (serde_json's float parsing may move the last digit).
        let json = serde_json::to_value(&r).unwrap();
        let back: Report = serde_json::from_value(json.clone()).unwrap();
        assert!(same_json(&serde_json::to_value(&back).unwrap(), &json));
    }

    fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
        use serde_json::Value;
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                (x - y).abs() <= 1e-12 * x.abs().max(1.0)
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
            }
            _ => a == b,
        }
    }

    #[test]
    fn nan_figures_round_trip() {
        let mut r = report();
        r.per_year[0].roc_auc = f64::NAN;
        r.served_test.roc_auc = f64::NAN;
        r.baselines[0].test.threshold = f64::INFINITY;
        let json = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert!(back.per_year[0].roc_auc.is_nan() && back.served_test.roc_auc.is_nan());
        assert!(back.baselines[0].test.threshold.is_nan());
    }

    #[test]
    fn team_buckets() {
        assert_eq!(team_bucket(7), "4+");
    }

    #[test]
    fn headline_claims_only_what_significance_supports() {
        let mut r = report();
        assert!(r.headline().text.contains("beats every baseline"));
        // Better on point estimates, but one gain not significant: no "beats" claim.
        let name = r.significance[1].baseline.clone();
        r.significance[1].p_value = 0.067;
        let h = r.headline();
        assert!(!h.good);
        assert!(!h.text.contains("beats every"), "{}", h.text);
        assert!(h.text.contains(&format!("{name} (p = 0.067)")), "{}", h.text);
        // A baseline at least as good is named as such.
        r.baselines[0].served_is_better = false;
        let h = r.headline();
        assert!(
            h.text.contains("does not beat every baseline") && h.text.contains(&r.baselines[0].name),
            "{}",
            h.text
        );
        r.baselines.clear();
        assert!(!r.headline().good);
    }

    #[test]
    fn non_finite_figures_are_words() {
        assert_eq!(threshold_text(f64::INFINITY), "none (no positive predictions)");
        assert_eq!(threshold_text(f64::NAN), "none (no positive predictions)");
        assert_eq!(threshold_text(0.25), "0.2500");
        assert_eq!(figure_text(f64::NAN), "undefined");
    }
}
