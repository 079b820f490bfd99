//! Training and evaluating one forecast mode end to end: features, baselines, logistic
//! regression, the burn MLP with a small hyperparameter search, an LR+MLP ensemble, a
//! validation-chosen threshold, one look at the test split, and the full report.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::cohort::{self, CohortRank};
use super::corpus::{Corpus, PaperNo};
use super::features::{self, feature_names, FeatureContext, Normaliser};
use super::gbdt::{Gbdt, GbdtParams};
use super::linear::Logistic;
use super::metrics::{choose_threshold, pr_auc, roc_auc, Scorecard};
use super::mlp::{Mlp, MlpConfig, Objective, Target, TrainLog};
use super::report::{self, BaselineScores, EvalSet, Report, Scorer};
use super::task::{self, Mode, Split, TaskError, TaskSpec};
use super::text::TextModel;
use crate::dates::{self, Day};

/// Why training refused to produce a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    /// The data does not support the task (too short, too few high-impact papers).
    #[error("{0}")]
    Task(#[from] TaskError),
    /// The model would serve (nearly) one probability for every paper, or rank no
    /// better than chance: it is not shipped.
    #[error("refusing to ship a degenerate {mode} model: {reason}")]
    Degenerate { mode: &'static str, reason: String },
}

/// Served validation probabilities with fewer distinct values than this (on at least
/// this many papers) make a model degenerate.
const MIN_DISTINCT_PROBABILITIES: usize = 10;
/// Served validation probabilities spread over less than this make a model degenerate.
const MIN_PROBABILITY_SPREAD: f64 = 1e-6;
/// A calibration slope below this maps every rank to about one probability.
const MIN_CALIBRATION_SLOPE: f64 = 1e-3;

/// Largest false-positive rate the decision threshold may give on validation.
pub fn max_fpr(mode: Mode) -> f64 {
    match mode {
        Mode::AtPublication => 0.07,
        Mode::Early => 0.04,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    pub seed: u64,
    /// Training rows start this year (older years fit the later regime worse). Applies
    /// to the bundled task only ([`TaskSpec::bundled`]); any other task trains from its
    /// train period's start.
    pub train_from_year: i32,
    /// Hidden sizes and weight decays tried for the MLP.
    pub hidden_sizes: Vec<usize>,
    pub weight_decays: Vec<f64>,
    pub max_epochs: usize,
    /// L2 penalty of the logistic regression.
    pub logistic_l2: f64,
    pub bootstrap_resamples: usize,
    pub permutation_repeats: usize,
    /// Also try MLPs regressing the dense target, each an average of this many seeds
    /// (0: classification only).
    #[serde(default)]
    pub regression_seeds: usize,
    /// Gradient-boosted regression trees on the dense target, one model per seed,
    /// averaged (0: none; models before session 3 had none).
    #[serde(default)]
    pub gbdt_seeds: usize,
    #[serde(default)]
    pub gbdt: GbdtParams,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            seed: 17,
            train_from_year: 1995,
            hidden_sizes: vec![32, 64],
            weight_decays: vec![1e-4, 1e-3],
            max_epochs: 40,
            logistic_l2: 3.0,
            bootstrap_resamples: 1000,
            permutation_repeats: 3,
            regression_seeds: 5,
            gbdt_seeds: 2,
            gbdt: GbdtParams::default(),
        }
    }
}

impl TrainOptions {
    /// Small settings for tests on a fixture.
    pub fn quick() -> Self {
        TrainOptions {
            hidden_sizes: vec![8],
            weight_decays: vec![1e-3],
            max_epochs: 4,
            bootstrap_resamples: 50,
            permutation_repeats: 1,
            train_from_year: 1992,
            regression_seeds: 2,
            gbdt_seeds: 1,
            gbdt: GbdtParams { trees: 40, min_data_in_leaf: 5, ..GbdtParams::default() },
            ..TrainOptions::default()
        }
    }
}

/// Which model answers forecasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Served {
    Mlp,
    /// Mean of the MLP's and the logistic regression's probabilities.
    Ensemble,
    /// Early mode: the ensemble averaged with the six-month-citation rule's rank (the
    /// training-set CDF of `e_c182`); two different views of the same signal.
    EnsembleRule,
    /// The mean of the gradient-boosted trees' dense-target predictions.
    Gbdt,
    /// The trees and the burn MLP averaged, each standardised by its scores on the
    /// training rows (two model families with different errors).
    GbdtMlp,
}

/// The training-row mean and spread of the MLP's logit and of the trees' output, which
/// put them on one scale for [`Served::GbdtMlp`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Blend {
    pub mlp_mean: f64,
    pub mlp_std: f64,
    pub gbdt_mean: f64,
    pub gbdt_std: f64,
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt().max(1e-9))
}

/// The logit of a probability, finite at 0 and 1.
fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    (p / (1.0 - p)).ln()
}

impl Blend {
    fn fit(mlp_probs: &[f64], gbdt: &[f64]) -> Blend {
        let logits: Vec<f64> = mlp_probs.iter().map(|&p| logit(p)).collect();
        let ((mlp_mean, mlp_std), (gbdt_mean, gbdt_std)) = (mean_std(&logits), mean_std(gbdt));
        Blend { mlp_mean, mlp_std, gbdt_mean, gbdt_std }
    }

    fn score(&self, mlp_prob: f64, gbdt: f64) -> f64 {
        ((logit(mlp_prob) - self.mlp_mean) / self.mlp_std + (gbdt - self.gbdt_mean) / self.gbdt_std) / 2.0
    }

    /// The blend's scores of standardised rows `x` (`d` columns).
    fn predict(&self, mlp: &Mlp, trees: &[Gbdt], x: &[f32], d: usize) -> Vec<f64> {
        mlp.predict(x).iter().zip(gbdt_predict(trees, x, d)).map(|(&m, g)| self.score(m, g)).collect()
    }

    /// Per-feature contributions to one row's blended score.
    fn contributions(&self, mlp: &Mlp, trees: &[Gbdt], row: &[f32]) -> Vec<f64> {
        mlp.contributions(row)
            .iter()
            .zip(gbdt_contributions(trees, row))
            .map(|(m, g)| (m / self.mlp_std + g / self.gbdt_std) / 2.0)
            .collect()
    }
}

/// A trained forecaster: everything needed to score a paper.
pub struct Forecaster {
    pub mode: Mode,
    pub feature_names: Vec<String>,
    pub feature_groups: Vec<String>,
    pub normaliser: Normaliser,
    pub logistic: Logistic,
    pub mlp: Mlp,
    pub mlp_config: MlpConfig,
    pub served: Served,
    pub threshold: f64,
    pub text: Arc<TextModel>,
    /// For [`Served::EnsembleRule`]: sorted standardised training values of `e_c182`.
    pub rule_quantiles: Vec<f32>,
    /// Gradient-boosted trees on the dense target, one per seed (empty: none trained).
    pub gbdt: Vec<Gbdt>,
    /// For [`Served::GbdtMlp`].
    pub blend: Option<Blend>,
    /// `Some`: the served probability is the raw score's rank among the half-year of
    /// papers before (see `cohort`), calibrated; `None` (models before session 3): the
    /// raw score itself.
    pub cohort: Option<CohortRank>,
}

/// The rule's score: the share of training papers with a lower six-month count.
fn rule_score(quantiles: &[f32], v: f32) -> f64 {
    if quantiles.is_empty() {
        return 0.0;
    }
    let below = quantiles.partition_point(|q| *q < v);
    let upto = quantiles.partition_point(|q| *q <= v);
    (below + upto) as f64 / (2 * quantiles.len()) as f64
}

impl Forecaster {
    /// Probabilities for raw (unstandardised) feature rows.
    pub fn predict_raw(&self, raw: &[f32]) -> Vec<f64> {
        let mut x = raw.to_vec();
        self.normaliser.apply(&mut x);
        self.predict_std(&x)
    }

    pub fn predict_std(&self, x: &[f32]) -> Vec<f64> {
        let d = self.feature_names.len();
        if self.served == Served::Gbdt {
            return gbdt_predict(&self.gbdt, x, d);
        }
        if let (Served::GbdtMlp, Some(b)) = (self.served, &self.blend) {
            return b.predict(&self.mlp, &self.gbdt, x, d);
        }
        let mlp = self.mlp.predict(x);
        let ens = mlp.iter().zip(x.chunks(d)).map(|(m, row)| (m + self.logistic.predict(row)) / 2.0);
        match self.served {
            Served::Mlp | Served::Gbdt | Served::GbdtMlp => mlp,
            Served::Ensemble => ens.collect(),
            Served::EnsembleRule => {
                let j = self.feature_names.iter().position(|n| n == "e_c182").unwrap_or(0);
                ens.zip(x.chunks(d))
                    .map(|(e, row)| (e + rule_score(&self.rule_quantiles, row[j])) / 2.0)
                    .collect()
            }
        }
    }

    /// The served probability of a raw score `s` (from [`Forecaster::predict_std`]) of a
    /// paper submitted on `t0`, with `table` the raw scores of the corpus's papers: the
    /// one function training's figures and `ForecastService` both serve through.
    pub fn served_probability(&self, table: &cohort::Table, t0: Day, s: f64) -> f64 {
        cohort::served_probability(self.cohort.as_ref(), table, t0, s)
    }

    /// Per-feature contributions (logit scale) for one standardised row.
    pub fn contributions_std(&self, row: &[f32]) -> Vec<f64> {
        if self.served == Served::Gbdt {
            return gbdt_contributions(&self.gbdt, row);
        }
        if let (Served::GbdtMlp, Some(b)) = (self.served, &self.blend) {
            return b.contributions(&self.mlp, &self.gbdt, row);
        }
        let mlp = self.mlp.contributions(row);
        match self.served {
            Served::Mlp | Served::Gbdt | Served::GbdtMlp => mlp,
            Served::Ensemble | Served::EnsembleRule => {
                mlp.iter().zip(self.logistic.contributions(row)).map(|(m, l)| (m + l) / 2.0).collect()
            }
        }
    }
}

impl Forecaster {
    /// [`Forecaster::contributions_std`] of every standardised row of `x`, in order, the
    /// rows split across the cores for big batches. Row by row on purpose: the network's
    /// occlusions batched over many rows differ in the 7th digit (f32 matrix products
    /// sum in another order), and a batch must explain a forecast as a single one does.
    pub fn contributions_std_many(&self, x: &[f32]) -> Vec<Vec<f64>> {
        let d = self.feature_names.len();
        if d == 0 || x.is_empty() {
            return Vec::new();
        }
        let n = x.len() / d;
        let threads = if n < 256 { 1 } else { std::thread::available_parallelism().map_or(1, |t| t.get()) };
        let rows = |xs: &[f32]| xs.chunks(d).map(|row| self.contributions_std(row)).collect::<Vec<_>>();
        if threads == 1 {
            return rows(x);
        }
        let chunk = n.div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = x.chunks(chunk * d).map(|xs| s.spawn(move || rows(xs))).collect();
            handles.into_iter().flat_map(|h| h.join().expect("contribution thread")).collect()
        })
    }
}

impl Scorer for Forecaster {
    fn score_rows(&self, x: &[f32], _d: usize) -> Vec<f64> {
        self.predict_std(x)
    }
    fn contributions(&self, row: &[f32]) -> Vec<f64> {
        self.contributions_std(row)
    }
}

/// The mean prediction of `models` for rows of `x`, split across the cores for big batches.
fn gbdt_predict(models: &[Gbdt], x: &[f32], d: usize) -> Vec<f64> {
    let n = x.len() / d;
    let mut out = vec![0f64; n];
    if models.is_empty() {
        return out;
    }
    let score = |o: &mut [f64], xs: &[f32]| {
        for m in models {
            for (acc, p) in o.iter_mut().zip(m.predict(xs)) {
                *acc += p as f64;
            }
        }
        o.iter_mut().for_each(|v| *v /= models.len() as f64);
    };
    let threads = if n < 4096 { 1 } else { std::thread::available_parallelism().map_or(1, |t| t.get()) };
    if threads == 1 {
        score(&mut out, x);
        return out;
    }
    let chunk = n.div_ceil(threads);
    std::thread::scope(|s| {
        for (o, xs) in out.chunks_mut(chunk).zip(x.chunks(chunk * d)) {
            s.spawn(move || score(o, xs));
        }
    });
    out
}

/// Per-feature path contributions (Saabas), averaged over `models`.
fn gbdt_contributions(models: &[Gbdt], row: &[f32]) -> Vec<f64> {
    let mut out = vec![0f64; row.len()];
    for m in models {
        for (o, c) in out.iter_mut().zip(m.contributions(row)) {
            *o += c as f64 / models.len() as f64;
        }
    }
    out
}

/// Trains one tree model per seed on the dense target, in parallel; empty when asked for
/// none or when the rows can't be fitted (the MLP candidates still serve).
fn train_gbdt(x: &[f32], d: usize, dense: &[f32], opts: &TrainOptions) -> Vec<Gbdt> {
    let n = dense.len();
    let fits: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..opts.gbdt_seeds as u64)
            .map(|k| {
                let params = GbdtParams { seed: opts.seed + k, ..opts.gbdt.clone() };
                s.spawn(move || Gbdt::fit(x, n, d, dense, &params))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("gbdt training thread")).collect()
    });
    match fits.into_iter().collect::<Result<Vec<Gbdt>, _>>() {
        Ok(models) => models,
        Err(e) => {
            tracing::warn!(error = %e, "gradient-boosted trees not trained");
            Vec::new()
        }
    }
}

struct GbdtScorer(Vec<Gbdt>);

/// The trees + MLP blend as retrained for ablations and cross-validation.
struct BlendScorer {
    mlp: Mlp,
    trees: Vec<Gbdt>,
    blend: Blend,
}

impl Scorer for BlendScorer {
    fn score_rows(&self, x: &[f32], d: usize) -> Vec<f64> {
        self.blend.predict(&self.mlp, &self.trees, x, d)
    }
    fn contributions(&self, row: &[f32]) -> Vec<f64> {
        self.blend.contributions(&self.mlp, &self.trees, row)
    }
}

impl Scorer for GbdtScorer {
    fn score_rows(&self, x: &[f32], d: usize) -> Vec<f64> {
        gbdt_predict(&self.0, x, d)
    }
    fn contributions(&self, row: &[f32]) -> Vec<f64> {
        gbdt_contributions(&self.0, row)
    }
}

/// The forecaster as served: raw scores ranked against the corpus's table.
struct Ranked<'a> {
    forecaster: &'a Forecaster,
    table: cohort::Table<'a>,
}

impl Scorer for Ranked<'_> {
    fn score_rows(&self, x: &[f32], _d: usize) -> Vec<f64> {
        self.forecaster.predict_std(x)
    }
    fn contributions(&self, row: &[f32]) -> Vec<f64> {
        self.forecaster.contributions_std(row)
    }
    fn score_set(&self, x: &[f32], _d: usize, days: &[Day]) -> Vec<f64> {
        let raw = self.forecaster.predict_std(x);
        cohort::served_probabilities(self.forecaster.cohort.as_ref(), &self.table, days, &raw)
    }
}

struct MlpScorer(Mlp);

impl Scorer for MlpScorer {
    fn score_rows(&self, x: &[f32], _d: usize) -> Vec<f64> {
        self.0.predict(x)
    }
    fn contributions(&self, row: &[f32]) -> Vec<f64> {
        self.0.contributions(row)
    }
}

/// The rows of one split.
struct Rows {
    papers: Vec<PaperNo>,
    raw: Vec<f32>,
    x: Vec<f32>,
    y: Vec<bool>,
    /// `log1p(two-year citations) - log1p(the year's label threshold)`: how far above or
    /// below the line a paper landed (the regression target; label-derived, like `y`).
    dense: Vec<f32>,
    ids: Vec<String>,
    days: Vec<i32>,
    team: Vec<u32>,
    topic: Vec<String>,
}

impl Rows {
    fn eval(&self, d: usize) -> EvalSet<'_> {
        EvalSet {
            x: &self.x,
            d,
            y: &self.y,
            ids: &self.ids,
            days: &self.days,
            team_size: &self.team,
            topic: &self.topic,
            dense: &self.dense,
        }
    }
}

/// A served-model candidate as validation judged it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidate {
    pub served: Served,
    pub validation_pr_auc: f64,
    pub validation_roc_auc: f64,
}

/// The served probability of one paper, as the figures were computed from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperForecast {
    pub id: String,
    pub day: Day,
    pub probability: f64,
    pub label: bool,
}

/// Training's full outcome: the forecaster, its card figures and the report.
pub struct Outcome {
    /// The served probability of every test paper the test figures are computed from.
    pub test_forecasts: Vec<PaperForecast>,
    pub forecaster: Forecaster,
    /// Every served candidate's validation figures (on the cohort-rank scale).
    pub candidates: Vec<Candidate>,
    pub mlp_log: TrainLog,
    pub validation: Scorecard,
    pub test: Scorecard,
    pub report: Report,
    pub rows: (usize, usize, usize),
}

fn column(raw: &[f32], d: usize, j: usize) -> Vec<f64> {
    raw.chunks(d).map(|r| r[j] as f64).collect()
}

fn select(x: &[f32], d: usize, keep: &[usize]) -> Vec<f32> {
    x.chunks(d).flat_map(|r| keep.iter().map(move |&j| r[j])).collect()
}

/// The paper's dominant direction in the text embedding, as a coarse topic label.
fn topic_of(text: &TextModel, corpus: &Corpus, p: PaperNo) -> String {
    let e = text.embed(&corpus.title[p as usize], &corpus.abstract_text[p as usize]);
    let (i, v) = e.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap_or((0, &0.0));
    format!("topic {}{}", i, if *v >= 0.0 { "+" } else { "-" })
}

/// Where the dense target is clipped: far-below papers differ little from each other,
/// and at publication a few runaway papers would dominate the squared loss.
fn regression_clip(mode: Mode) -> Objective {
    match mode {
        Mode::AtPublication => Objective::Regress { clip_lo: -3.0, clip_hi: 1.0 },
        Mode::Early => Objective::Regress { clip_lo: -3.0, clip_hi: 2.0 },
    }
}

fn clipped(dense: &[f32], objective: Objective) -> Vec<f32> {
    match objective {
        Objective::Regress { clip_lo, clip_hi } => dense.iter().map(|v| v.clamp(clip_lo, clip_hi)).collect(),
        Objective::Classify => dense.to_vec(),
    }
}

/// Trains with the target `cfg.objective` asks for.
fn train_mlp(
    x: &[f32],
    y: &[bool],
    dense: &[f32],
    va: (&[f32], &[bool]),
    d: usize,
    cfg: &MlpConfig,
) -> (Mlp, TrainLog) {
    match cfg.objective {
        Objective::Classify => Mlp::train(x, Target::Labels(y), va.0, va.1, d, cfg),
        objective => Mlp::train(x, Target::Values(&clipped(dense, objective)), va.0, va.1, d, cfg),
    }
}

fn train_mlp_search(
    tr: &Rows,
    va: (&[f32], &[bool]),
    d: usize,
    mode: Mode,
    opts: &TrainOptions,
) -> (Mlp, MlpConfig, TrainLog) {
    let mut best: Option<(Mlp, MlpConfig, TrainLog)> = None;
    let mut objectives = vec![(Objective::Classify, 1)];
    if opts.regression_seeds > 0 {
        objectives.push((regression_clip(mode), opts.regression_seeds));
    }
    for &(objective, seeds) in &objectives {
        for &hidden in &opts.hidden_sizes {
            for &wd in &opts.weight_decays {
                let cfg = MlpConfig {
                    hidden,
                    weight_decay: wd,
                    max_epochs: opts.max_epochs,
                    seed: opts.seed,
                    objective,
                    seeds,
                    ..MlpConfig::default()
                };
                let (m, log) = train_mlp(&tr.x, &tr.y, &tr.dense, va, d, &cfg);
                tracing::info!(
                    hidden,
                    weight_decay = wd,
                    ?objective,
                    val_pr_auc = log.best_validation_pr_auc,
                    "mlp candidate"
                );
                if best.as_ref().is_none_or(|b| log.best_validation_pr_auc > b.2.best_validation_pr_auc) {
                    best = Some((m, cfg, log));
                }
            }
        }
    }
    best.expect("at least one MLP configuration")
}

struct Prepared {
    ctx: FeatureContext,
    d: usize,
    tr: Rows,
    va: Rows,
    te: Rows,
    /// Every paper the cohort ranks of the splits can reach (corpus order), and their
    /// feature rows (standardised once the normaliser is applied).
    cohort_papers: Vec<PaperNo>,
    cohort_x: Vec<f32>,
}

impl Prepared {
    /// Raw scores of `forecaster` for every corpus paper (NaN outside `cohort_papers`).
    fn cohort_scores(&self, corpus: &Corpus, forecaster: &Forecaster) -> Vec<f32> {
        let mut scores = vec![f32::NAN; corpus.len()];
        for (&p, s) in self.cohort_papers.iter().zip(forecaster.predict_std(&self.cohort_x)) {
            scores[p as usize] = s as f32;
        }
        scores
    }
}

/// The first day of training rows: the task's train start, and for the bundled task not
/// before `opts.train_from_year`.
fn train_rows_from(spec: &TaskSpec, opts: &TrainOptions) -> Day {
    if *spec == TaskSpec::bundled() {
        spec.train.from.max(dates::from_ymd(opts.train_from_year, 1, 1))
    } else {
        spec.train.from
    }
}

/// Feature rows of the three splits under `text`'s vocabulary (standardised later).
fn prepare(
    corpus: &Arc<Corpus>,
    spec: &TaskSpec,
    mode: Mode,
    text: &Arc<TextModel>,
    opts: &TrainOptions,
) -> Prepared {
    let ctx = FeatureContext::new(corpus.clone(), text.clone(), spec);
    let d = feature_names(mode).len();
    let labels = ctx.labels().clone();
    let rows_from = train_rows_from(spec, opts);
    let split_papers = |split: Split| -> Vec<PaperNo> {
        labels
            .papers_in(corpus, spec, split)
            .into_iter()
            .filter(|&p| split != Split::Train || corpus.day[p as usize] >= rows_from)
            .collect()
    };
    // Features are computed once for every paper a split row or its cohort can reach
    // (scorable papers from a cohort window before the first training row), in corpus order.
    let splits = [split_papers(Split::Train), split_papers(Split::Validation), split_papers(Split::Test)];
    let last = spec.data_end(corpus).unwrap_or(Day::MIN);
    let from =
        splits.iter().flatten().map(|&p| corpus.day[p as usize]).min().unwrap_or(Day::MAX) - spec.cohort_days;
    let mut cohort_papers: Vec<PaperNo> = (0..corpus.len() as PaperNo)
        .filter(|&p| corpus.day[p as usize] >= from && spec.cutoff(mode, corpus.day[p as usize]) <= last)
        .chain(splits.iter().flatten().copied())
        .collect();
    cohort_papers.sort_unstable();
    cohort_papers.dedup();
    let cohort_x = features::matrix(&ctx, &cohort_papers, mode);
    let row_of = |p: PaperNo| {
        let i = cohort_papers.binary_search(&p).expect("split papers are in the cohort table");
        &cohort_x[i * d..(i + 1) * d]
    };
    let rows_of = |papers: Vec<PaperNo>| -> Rows {
        let raw: Vec<f32> = papers.iter().flat_map(|&p| row_of(p).iter().copied()).collect();
        let dense = papers
            .iter()
            .map(|&p| {
                let thr =
                    labels.thresholds.get(&dates::year_of(corpus.day[p as usize])).copied().unwrap_or(0.0);
                ((labels.count[p as usize] as f64).ln_1p() - thr.ln_1p()) as f32
            })
            .collect();
        Rows {
            dense,
            y: papers.iter().map(|&p| labels.label[p as usize] == Some(true)).collect(),
            ids: papers.iter().map(|&p| corpus.ids[p as usize].clone()).collect(),
            days: papers.iter().map(|&p| corpus.day[p as usize]).collect(),
            team: papers.iter().map(|&p| corpus.authors[p as usize].len() as u32).collect(),
            topic: papers.iter().map(|&p| topic_of(text, corpus, p)).collect(),
            x: raw.clone(),
            raw,
            papers,
        }
    };
    let [tr, va, te] = splits.map(rows_of);
    Prepared { ctx, d, tr, va, te, cohort_papers, cohort_x }
}

/// Trains `mode` on `corpus` for the task `spec` and evaluates it. The test split is
/// scored once, at the end. Refuses a split without high-impact papers and a model whose
/// served probabilities are (nearly) constant or rank no better than chance.
pub fn train(
    corpus: Arc<Corpus>,
    spec: &TaskSpec,
    mode: Mode,
    version: &str,
    opts: &TrainOptions,
) -> Result<Outcome, TrainError> {
    let train_docs: Vec<(&str, &str)> = (0..corpus.len())
        .filter(|&p| spec.split_of(corpus.day[p]) == Some(Split::Train))
        .map(|p| (corpus.title[p].as_str(), corpus.abstract_text[p].as_str()))
        .collect();
    let text = Arc::new(TextModel::fit(&train_docs, opts.seed));
    let mut prep = prepare(&corpus, spec, mode, &text, opts);
    for (split, rows) in [(Split::Train, &prep.tr), (Split::Validation, &prep.va), (Split::Test, &prep.te)] {
        let positives = rows.y.iter().filter(|y| **y).count();
        if positives == 0 {
            let period = match split {
                Split::Train => task::Period { from: train_rows_from(spec, opts), to: spec.train.to },
                _ => spec.period(split),
            };
            return Err(TaskError::TooFewPositives {
                split: split.as_str(),
                period: period.to_string(),
                papers: rows.y.len(),
                positives,
                needed: 1,
            }
            .into());
        }
    }
    let d = prep.d;
    let normaliser = Normaliser::fit(&prep.tr.raw, d);
    for r in [&mut prep.tr, &mut prep.va, &mut prep.te] {
        normaliser.apply(&mut r.x);
    }
    normaliser.apply(&mut prep.cohort_x);
    let (tr, va) = (&prep.tr, &prep.va);
    let pos = tr.y.iter().filter(|y| **y).count().max(1) as f64;
    let pos_weight = (tr.y.len() as f64 - pos) / pos;
    let logistic = Logistic::fit(&tr.x, &tr.y, d, opts.logistic_l2, pos_weight);
    let (mlp, mlp_config, mlp_log) = train_mlp_search(tr, (&va.x, &va.y), d, mode, opts);
    let gbdt = train_gbdt(&tr.x, d, &tr.dense, opts);
    let blend = (!gbdt.is_empty()).then(|| Blend::fit(&mlp.predict(&tr.x), &gbdt_predict(&gbdt, &tr.x, d)));
    let names = feature_names(mode);
    let mut rule_quantiles = Vec::new();
    if let Some(j) = names.iter().position(|(n, _)| *n == "e_c182") {
        rule_quantiles = tr.x.chunks(d).map(|r| r[j]).collect();
        rule_quantiles.sort_by(f32::total_cmp);
    }
    let mut forecaster = Forecaster {
        mode,
        feature_names: names.iter().map(|(n, _)| n.to_string()).collect(),
        feature_groups: names.iter().map(|(_, g)| g.to_string()).collect(),
        normaliser,
        logistic,
        mlp,
        mlp_config,
        served: Served::Mlp,
        threshold: 0.5,
        text,
        rule_quantiles,
        gbdt,
        blend,
        cohort: None,
    };
    // Candidates, each judged by the validation PR-AUC of its cohort rank; the best serves.
    let mut kinds = vec![Served::Mlp, Served::Ensemble];
    if !forecaster.rule_quantiles.is_empty() {
        kinds.push(Served::EnsembleRule);
    }
    if !forecaster.gbdt.is_empty() {
        kinds.extend([Served::Gbdt, Served::GbdtMlp]);
    }
    let mut candidates = Vec::new();
    let mut best: Option<(Served, Vec<f64>, f64)> = None;
    for kind in kinds {
        forecaster.served = kind;
        let scores = prep.cohort_scores(&corpus, &forecaster);
        let table = cohort::Table { days: &corpus.day, scores: &scores };
        let ranks = table.ranks(&va.days, &forecaster.predict_std(&va.x), spec.cohort_days);
        let pr = pr_auc(&ranks, &va.y);
        tracing::info!(?kind, val_pr_auc = pr, "served candidate");
        candidates.push(Candidate {
            served: kind,
            validation_pr_auc: pr,
            validation_roc_auc: roc_auc(&ranks, &va.y),
        });
        if best.as_ref().is_none_or(|b| pr > b.2) {
            best = Some((kind, ranks, pr));
        }
    }
    let (served, ranks, _) = best.expect("candidates");
    forecaster.served = served;
    let calibrated = CohortRank::fit(spec.cohort_days, &ranks, &va.y);
    let val_probs: Vec<f64> = ranks.iter().map(|&r| calibrated.probability(r)).collect();
    if let Some(reason) = degenerate(&val_probs, &va.y, &calibrated) {
        return Err(TrainError::Degenerate { mode: mode.as_str(), reason });
    }
    forecaster.threshold = choose_threshold(&val_probs, &va.y, max_fpr(mode));
    if !forecaster.threshold.is_finite() {
        // Even the top-scored validation group breaks the FPR limit: label nothing high
        // (a finite value, so the model card stays valid JSON).
        forecaster.threshold = f64::MAX;
    }
    forecaster.cohort = Some(calibrated);
    let (validation, test, report, test_forecasts) = assess(&corpus, &prep, &forecaster, version, opts);
    Ok(Outcome {
        test_forecasts,
        candidates,
        rows: (prep.tr.y.len(), prep.va.y.len(), prep.te.y.len()),
        forecaster,
        mlp_log,
        validation,
        test,
        report,
    })
}

/// Why served validation probabilities make a model degenerate, if they do: (nearly)
/// one value for every paper, a calibration that flattens the ranks, or a ranking no
/// better than chance.
fn degenerate(probs: &[f64], labels: &[bool], calibration: &CohortRank) -> Option<String> {
    let mut sorted: Vec<f64> = probs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let spread = sorted.last().zip(sorted.first()).map_or(0.0, |(hi, lo)| hi - lo);
    sorted.dedup();
    let n = probs.len();
    if n >= MIN_DISTINCT_PROBABILITIES && sorted.len() < MIN_DISTINCT_PROBABILITIES {
        return Some(format!(
            "it serves only {} distinct probabilities on {n} validation papers (at least \
             {MIN_DISTINCT_PROBABILITIES} needed)",
            sorted.len()
        ));
    }
    if spread < MIN_PROBABILITY_SPREAD || !spread.is_finite() {
        return Some(format!(
            "its validation probabilities span {spread:.3e} (at least {MIN_PROBABILITY_SPREAD:e} needed): \
             every paper gets about the same forecast"
        ));
    }
    if calibration.calibration[0] < MIN_CALIBRATION_SLOPE {
        return Some(format!(
            "its calibration slope is {:.3e}: every rank maps to about the same probability",
            calibration.calibration[0]
        ));
    }
    let auc = roc_auc(probs, labels);
    if auc.is_nan() || auc <= 0.5 {
        return Some(format!(
            "its validation ROC-AUC is {auc:.3}: it ranks high-impact papers no better than chance"
        ));
    }
    None
}

/// Re-evaluates a saved forecaster on `corpus` for the task `spec`: its scorecards and
/// full report.
pub fn evaluate(
    corpus: Arc<Corpus>,
    spec: &TaskSpec,
    forecaster: &Forecaster,
    version: &str,
    opts: &TrainOptions,
) -> (Scorecard, Scorecard, Report) {
    let mut prep = prepare(&corpus, spec, forecaster.mode, &forecaster.text, opts);
    for r in [&mut prep.tr, &mut prep.va, &mut prep.te] {
        forecaster.normaliser.apply(&mut r.x);
    }
    forecaster.normaliser.apply(&mut prep.cohort_x);
    let (validation, test, report, _) = assess(&corpus, &prep, forecaster, version, opts);
    (validation, test, report)
}

/// The probabilities a forecaster serves for the labelled papers of one split of a task,
/// with their labels: two models compared on the same papers read these.
#[derive(Debug, Clone)]
pub struct SplitScores {
    pub ids: Vec<String>,
    pub probabilities: Vec<f64>,
    pub labels: Vec<bool>,
}

/// What `forecaster` serves (cohort-ranked and calibrated, as the service computes it)
/// for the labelled papers of `split` of `spec` on `corpus`.
pub fn served_scores(
    corpus: Arc<Corpus>,
    spec: &TaskSpec,
    forecaster: &Forecaster,
    split: Split,
) -> SplitScores {
    let mut prep = prepare(&corpus, spec, forecaster.mode, &forecaster.text, &TrainOptions::default());
    forecaster.normaliser.apply(&mut prep.cohort_x);
    let scores = prep.cohort_scores(&corpus, forecaster);
    let rows = match split {
        Split::Train => &mut prep.tr,
        Split::Validation => &mut prep.va,
        Split::Test => &mut prep.te,
    };
    forecaster.normaliser.apply(&mut rows.x);
    let table = cohort::Table { days: &corpus.day, scores: &scores };
    let raw = forecaster.predict_std(&rows.x);
    let probabilities = cohort::served_probabilities(forecaster.cohort.as_ref(), &table, &rows.days, &raw);
    SplitScores { ids: rows.ids.clone(), probabilities, labels: rows.y.clone() }
}

fn assess(
    corpus: &Corpus,
    prep: &Prepared,
    forecaster: &Forecaster,
    version: &str,
    opts: &TrainOptions,
) -> (Scorecard, Scorecard, Report, Vec<PaperForecast>) {
    let (tr, va, te, d, mode) = (&prep.tr, &prep.va, &prep.te, prep.d, forecaster.mode);
    let names = &forecaster.feature_names;
    let mut baselines = vec![BaselineScores {
        name: "all-negative".into(),
        validation: vec![0.0; va.y.len()],
        test: vec![0.0; te.y.len()],
    }];
    if mode == Mode::Early {
        let c182 = |r: &Rows| r.papers.iter().map(|&p| prep.ctx.c182(p) as f64).collect::<Vec<_>>();
        baselines.push(BaselineScores {
            name: "rule: first-6-month citations >= k".into(),
            validation: c182(va),
            test: c182(te),
        });
    }
    let j = names.iter().position(|n| n == "a_max_cit").expect("a_max_cit is a feature");
    baselines.push(BaselineScores {
        name: "author prior-citation rank".into(),
        validation: column(&va.raw, d, j),
        test: column(&te.raw, d, j),
    });
    baselines.push(BaselineScores {
        name: "logistic regression".into(),
        validation: tr_scores(&forecaster.logistic, &va.x, d),
        test: tr_scores(&forecaster.logistic, &te.x, d),
    });
    let threshold = forecaster.threshold;
    let scores = prep.cohort_scores(corpus, forecaster);
    let served = Ranked { forecaster, table: cohort::Table { days: &corpus.day, scores: &scores } };
    let validation = Scorecard::new(&served.score_set(&va.x, d, &va.days), &va.y, threshold);
    let test_probs = served.score_set(&te.x, d, &te.days);
    let test = Scorecard::new(&test_probs, &te.y, threshold);
    let test_forecasts = te
        .ids
        .iter()
        .zip(&te.days)
        .zip(test_probs.iter().zip(&te.y))
        .map(|((id, &day), (&probability, &label))| PaperForecast { id: id.clone(), day, probability, label })
        .collect();
    let mlp_config = forecaster.mlp_config.clone();
    // Ablations and cross-validation retrain the served family (trees: one seed).
    let retrain = |keep: &[usize], t: &EvalSet, v: &EvalSet| -> Box<dyn Scorer> {
        let (xt, xv) = (select(t.x, t.d, keep), select(v.x, v.d, keep));
        let trees = matches!(forecaster.served, Served::Gbdt | Served::GbdtMlp)
            .then(|| {
                Gbdt::fit(
                    &xt,
                    t.len(),
                    keep.len(),
                    t.dense,
                    &GbdtParams { seed: opts.seed, ..opts.gbdt.clone() },
                )
            })
            .and_then(Result::ok);
        if let (Served::Gbdt, Some(g)) = (forecaster.served, &trees) {
            return Box::new(GbdtScorer(vec![g.clone()]));
        }
        let cfg = MlpConfig { max_epochs: opts.max_epochs.min(20), ..mlp_config.clone() };
        let (m, _) = train_mlp(&xt, t.y, t.dense, (&xv, v.y), keep.len(), &cfg);
        match trees {
            Some(g) => {
                let trees = vec![g];
                let blend = Blend::fit(&m.predict(&xt), &gbdt_predict(&trees, &xt, keep.len()));
                Box::new(BlendScorer { mlp: m, trees, blend })
            }
            None => Box::new(MlpScorer(m)),
        }
    };
    let input = report::ReportInput {
        mode,
        version: version.to_string(),
        feature_names: &forecaster.feature_names,
        feature_groups: &forecaster.feature_groups,
        served_name: format!(
            "{:?}{} ({})",
            forecaster.served,
            if forecaster.cohort.is_some() { ", ranked in its half-year cohort" } else { "" },
            if forecaster.served == Served::Gbdt {
                format!("{} x {} trees", forecaster.gbdt.len(), opts.gbdt.trees)
            } else if forecaster.served == Served::GbdtMlp {
                format!(
                    "{} x {} trees + MLP hidden {}, burn flex",
                    forecaster.gbdt.len(),
                    opts.gbdt.trees,
                    mlp_config.hidden
                )
            } else {
                format!("MLP hidden {}, burn flex", mlp_config.hidden)
            }
        ),
        served: &served,
        threshold,
        baselines,
        train: tr.eval(d),
        validation: va.eval(d),
        test: te.eval(d),
        retrain: &retrain,
        max_fpr: max_fpr(mode),
        seed: opts.seed,
        resamples: opts.bootstrap_resamples,
        permutation_repeats: opts.permutation_repeats,
    };
    (validation, test, report::build(&input), test_forecasts)
}

fn tr_scores(m: &Logistic, x: &[f32], d: usize) -> Vec<f64> {
    x.chunks(d).map(|r| m.predict(r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::registry;
    use crate::forecast::service::ForecastService;
    use crate::forecast::task::{synthetic, TaskOptions};

    fn day_corpus() -> Arc<Corpus> {
        Arc::new(synthetic::day_dated(dates::from_ymd(1990, 1, 1), dates::from_ymd(2001, 12, 31), 70, 5))
    }

    /// Trains `mode` for `spec`, saves and loads the model into a `ForecastService`, and
    /// checks that every test paper is served exactly the probability the test figures
    /// were computed from.
    fn served_equals_reported(corpus: &Arc<Corpus>, spec: &TaskSpec, mode: Mode) {
        let opts = TrainOptions { bootstrap_resamples: 20, ..TrainOptions::quick() };
        let version = format!("served-check-{}", mode.as_str());
        let outcome = train(corpus.clone(), spec, mode, &version, &opts).unwrap();
        assert!(outcome.test_forecasts.len() >= 50);
        let dir = tempfile::tempdir().unwrap();
        registry::save(dir.path(), &version, &outcome, corpus, &opts, spec, Some("synthetic")).unwrap();
        let (mut service, errors) = ForecastService::load(&[dir.path()]);
        assert!(errors.is_empty(), "{errors:?}");
        service.set_corpus(corpus.clone());
        let model = service.model(&version).unwrap().clone();
        assert_eq!(registry::task_of(&model.meta), *spec);
        assert_eq!(model.meta.collection.as_deref(), Some("synthetic"));
        let mut served = Vec::new();
        for f in &outcome.test_forecasts {
            let answer = service.forecast(&f.id, mode).unwrap();
            assert_eq!(answer.probability.to_bits(), f.probability.to_bits(), "{mode:?} {}", f.id);
            served.push(answer.probability);
        }
        let labels: Vec<bool> = outcome.test_forecasts.iter().map(|f| f.label).collect();
        let card = Scorecard::new(&served, &labels, outcome.forecaster.threshold);
        assert_eq!(serde_json::to_string(&card).unwrap(), serde_json::to_string(&outcome.test).unwrap());
        // The probabilities are not one value for all.
        let mut distinct = served.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        assert!(distinct.len() >= 20, "{mode:?}: {}", distinct.len());
    }

    #[test]
    fn served_probabilities_equal_the_ones_the_test_figures_are_computed_from() {
        let corpus = day_corpus();
        let spec = TaskSpec::derive(&corpus, &TaskOptions::default()).unwrap();
        for mode in Mode::ALL {
            served_equals_reported(&corpus, &spec, mode);
        }
        // Year-only dates: the data runs to the end of the last year, the cohort is the
        // previous year.
        let years = Arc::new(synthetic::year_only(1988..=2001, 60, 9));
        let spec = TaskSpec::derive(&years, &TaskOptions::default()).unwrap();
        served_equals_reported(&years, &spec, Mode::Early);
    }

    #[test]
    fn a_year_only_corpus_trains_with_ranks_among_the_previous_year() {
        let corpus = Arc::new(synthetic::year_only(1988..=2001, 60, 9));
        let spec = TaskSpec::derive(&corpus, &TaskOptions::default()).unwrap();
        assert_eq!(spec.cohort_days, 366);
        let opts = TrainOptions { bootstrap_resamples: 20, ..TrainOptions::quick() };
        let outcome = train(corpus.clone(), &spec, Mode::AtPublication, "years", &opts).unwrap();
        let mut p: Vec<f64> = outcome.test_forecasts.iter().map(|f| f.probability).collect();
        p.sort_by(f64::total_cmp);
        p.dedup();
        assert!(p.len() >= 20, "{}", p.len());
        // The old half-year cohort is empty for year-only dates: every paper would get
        // rank 0.5, one probability for all. Training refuses to ship that.
        let half_year = TaskSpec { cohort_days: 182, ..spec };
        match train(corpus, &half_year, Mode::AtPublication, "years-182", &opts) {
            Err(TrainError::Degenerate { reason, .. }) => {
                assert!(reason.contains("distinct") || reason.contains("span"), "{reason}")
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a constant model was accepted"),
        }
    }

    #[test]
    fn degenerate_probabilities_are_named() {
        let rank = CohortRank { window_days: 182, calibration: [1.0, 0.0] };
        let labels: Vec<bool> = (0..100).map(|i| i % 7 == 0).collect();
        let constant = vec![0.3; 100];
        assert!(degenerate(&constant, &labels, &rank).unwrap().contains("distinct"));
        let nearly: Vec<f64> = (0..100).map(|i| 0.3 + i as f64 * 1e-9).collect();
        assert!(degenerate(&nearly, &labels, &rank).unwrap().contains("span"));
        let good: Vec<f64> =
            (0..100).map(|i| if labels[i] { 0.5 + i as f64 / 1000.0 } else { i as f64 / 1000.0 }).collect();
        assert_eq!(degenerate(&good, &labels, &rank), None);
        let flat = CohortRank { window_days: 182, calibration: [1e-5, 0.0] };
        assert!(degenerate(&good, &labels, &flat).unwrap().contains("slope"));
        // Labels unrelated to the scores (here: reversed) rank no better than chance.
        let reversed: Vec<f64> = good.iter().map(|p| 1.0 - p).collect();
        assert!(degenerate(&reversed, &labels, &rank).unwrap().contains("chance"));
    }

    #[test]
    fn a_split_without_high_impact_papers_is_refused() {
        let corpus = day_corpus();
        let spec = TaskSpec::derive(&corpus, &TaskOptions::default()).unwrap();
        // Training rows from after the data: nothing to train on.
        let late = TaskSpec { train: task::Period { from: spec.validation.from, to: spec.train.to }, ..spec };
        let err = train(corpus, &late, Mode::AtPublication, "none", &TrainOptions::quick()).err().unwrap();
        assert!(matches!(err, TrainError::Task(TaskError::TooFewPositives { split: "train", .. })), "{err}");
    }

    #[test]
    fn new_task_recipes_differ_and_the_bundled_one_is_unchanged() {
        let opts = TrainOptions::default();
        let bundled = TaskSpec::bundled();
        let shifted = bundled.shifted_back(12);
        let mode = Mode::AtPublication;
        assert_ne!(registry::recipe(mode, &opts, &bundled), registry::recipe(mode, &opts, &shifted));
        // The shipped models' names: `<mode>-<fingerprint>-<recipe>-s17`.
        let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        for dir in registry::list(&models) {
            let m = registry::load(&dir).unwrap();
            assert_eq!(registry::task_of(&m.meta), bundled);
            let recipe = registry::recipe(m.meta.mode, &m.meta.options, &bundled);
            assert!(m.meta.version.contains(&format!("-{recipe}-")), "{} {recipe}", m.meta.version);
        }
    }
}
