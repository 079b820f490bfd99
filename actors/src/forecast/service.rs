//! Serving forecasts: the loaded models per mode (one active, others kept loadable for
//! rollback), the corpus snapshot they read, and the answer for one paper.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::cohort;
use super::corpus::Corpus;
use super::features::{self, cutoff, FeatureContext, Subject};
use super::metrics::Scorecard;
use super::registry::{self, LoadedModel};
use super::rollout::{self, Arm, Rollout, RolloutError, Rollouts, Scored, StartRequest, Transition};
use super::task::{Labels, Mode};
use crate::dates::{self, Day};
use crate::names;
use crate::records::ForecastRecord;

/// How many feature contributions a forecast explains itself with.
pub const TOP_FEATURES: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Contribution {
    pub feature: String,
    /// The feature's value as the model reads it (counts as `log1p`).
    pub value: f32,
    /// Effect on the model's log-odds of this feature's value versus an average paper:
    /// +0.5 multiplies the odds by about 1.65.
    pub contribution: f64,
    /// The feature's plain name (`docs/features.md`, "In plain words").
    #[serde(default)]
    pub label: String,
    /// The value in its natural unit ("54", "38 %", "2.4×").
    #[serde(default)]
    pub shown: String,
    /// Name and value as a sentence: "it cites 54 papers of the corpus".
    #[serde(default)]
    pub sentence: String,
}

/// What happened to a paper whose two-year window is already in the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Outcome {
    /// Citations received within two years of submission.
    pub citations_in_window: u32,
    /// The last day of that window.
    pub window_ends: String,
    /// Citations its year's top 10 % needed (the label's threshold).
    pub top_10_percent_needed: Option<f64>,
    /// Whether it reached its year's top 10 %: what the forecast predicts.
    pub reached_top_10_percent: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Forecast {
    pub paper_id: String,
    pub mode: Mode,
    pub as_of: String,
    pub probability: f64,
    /// `high` at or above the model's threshold, else `low`.
    pub label: String,
    pub threshold: f64,
    pub model_version: String,
    pub top_features: Vec<Contribution>,
    /// For a paper whose outcome is in the data: what happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

impl Forecast {
    /// As shown to people: probability and threshold to three significant digits (the
    /// label was decided on the exact values).
    pub fn for_people(mut self) -> Forecast {
        self.probability = super::glossary::round_probability(self.probability);
        self.threshold = super::glossary::round_probability(self.threshold);
        self
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum ForecastError {
    #[error("paper '{0}' not found")]
    UnknownPaper(String),
    #[error("paper '{id}' was submitted on {submitted}; an early forecast needs data up to {as_of}, and the data ends on {data_ends}")]
    TooYoung { id: String, submitted: String, as_of: String, data_ends: String },
    #[error("no {0} model is loaded")]
    NoModel(String),
    #[error("{0}")]
    Invalid(String),
    /// A part of the engine could not be reached (the store's mailbox): the server's
    /// failure, answered with 503.
    #[error("{0}")]
    Unavailable(String),
    /// A file the service keeps could not be written (disk full, permissions).
    #[error("{0}")]
    Io(String),
}

impl From<RolloutError> for ForecastError {
    fn from(e: RolloutError) -> Self {
        ForecastError::Invalid(e.to_string())
    }
}

/// Who a forecast is for, and the arm the HTTP layer already chose (it keys its cache
/// on the arm, so the actor serves that arm while the same rollout runs).
#[derive(Debug, Clone, Default)]
pub struct Route {
    pub caller: Option<String>,
    pub arm: Option<(String, Arm)>,
}

/// How a rollout is asked for: the candidate version names the mode; the control is
/// whatever serves that mode now.
#[derive(Debug, Clone)]
pub struct RolloutSpec {
    pub candidate: String,
    pub strategy: rollout::Strategy,
    pub guards: rollout::Guards,
}

/// A rollout with the comparison read from the forecast log, AUC per arm included once
/// the papers' labels have resolved.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutReport {
    pub rollout: Rollout,
    pub share: u8,
    pub agreement: Option<f64>,
    pub mean_abs_difference: Option<f64>,
    pub drift_psi: Option<f64>,
    pub control_mean_score: Option<f64>,
    pub candidate_mean_score: Option<f64>,
    pub control_p95_ms: Option<f64>,
    pub candidate_p95_ms: Option<f64>,
    /// Forecast-log records of this rollout, distinct papers among them, and those with a label.
    pub logged_forecasts: usize,
    pub distinct_papers: usize,
    pub labelled_papers: usize,
    /// ROC-AUC of each arm on the labelled papers it served (`None` with one class only).
    pub control_served_auc: Option<f64>,
    pub candidate_served_auc: Option<f64>,
    /// ROC-AUC of both models on every labelled paper (both score every forecast).
    pub control_auc: Option<f64>,
    pub candidate_auc: Option<f64>,
    pub guard_violation: Option<String>,
}

/// A paper not in the store, scored from its metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPaper {
    pub title: String,
    #[serde(default, rename = "abstract")]
    pub abstract_text: String,
    pub authors: Vec<String>,
    /// Submission date, YYYY-MM-DD (optionally with a time).
    pub date: String,
    #[serde(default)]
    pub references: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub version: String,
    pub mode: Mode,
    pub active: bool,
    pub threshold: f64,
    pub test: Scorecard,
    pub validation: Scorecard,
}

/// The models and the corpus snapshot they read. Owned by the model actor.
pub struct ForecastService {
    models: Vec<Arc<LoadedModel>>,
    active: HashMap<Mode, usize>,
    /// The model each mode served before the last promotion, for rollback.
    previous: HashMap<Mode, usize>,
    /// Where the active choice is kept across restarts (`None`: not kept).
    state_file: Option<std::path::PathBuf>,
    corpus: Arc<Corpus>,
    /// Per model version, features over the current corpus (built on first use).
    contexts: HashMap<String, Arc<FeatureContext>>,
    /// Per model version, its raw score of each corpus paper at the paper's own as-of
    /// date (NaN: not computed yet), for cohort ranks; filled window by window on use
    /// and all at once by `warm`.
    cohort_scores: HashMap<String, Vec<f32>>,
    /// Where models are loaded from, for a rescan that picks up newly trained ones.
    dirs: Vec<PathBuf>,
    rollouts: Rollouts,
    rollouts_file: Option<PathBuf>,
    /// Labels of the current corpus, for rollout AUCs (computed on first use).
    labels: Option<Arc<Labels>>,
    /// Per model version, the histogram of its scores on validation papers: what drift
    /// is measured against.
    reference: HashMap<String, [u64; rollout::SCORE_BINS]>,
    /// Per model version, how far the stepped warm-up got over the current corpus:
    /// papers whose cohort scores are filled (`usize::MAX`: warm).
    warm_cursor: HashMap<String, usize>,
    /// Per mode, the score bins of the latest forecasts served to callers.
    live: HashMap<Mode, std::collections::VecDeque<u8>>,
}

/// Served forecasts the live score distribution is taken over.
const DRIFT_WINDOW: usize = 2_000;
/// Served forecasts needed before drift is judged at all.
const DRIFT_MIN: usize = 200;
/// Validation papers scored for a model's reference distribution (every k-th).
const REFERENCE_PAPERS: usize = 1_000;

/// What `active.json` holds: the serving model per mode and the one before it.
#[derive(Default, Serialize, Deserialize)]
struct SavedChoice {
    active: HashMap<Mode, String>,
    #[serde(default)]
    previous: HashMap<Mode, String>,
}

impl ForecastService {
    /// Loads every model under `dirs`; the newest (last by name) of each mode is active.
    /// A model that fails to load is reported and skipped; the others serve.
    pub fn load(dirs: &[&Path]) -> (ForecastService, Vec<String>) {
        let mut models = Vec::new();
        let mut errors = Vec::new();
        for root in dirs {
            for dir in registry::list(root) {
                match registry::load(&dir) {
                    Ok(m) => models.push(Arc::new(m)),
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
        let mut active = HashMap::new();
        for (i, m) in models.iter().enumerate() {
            active.insert(m.meta.mode, i);
        }
        let service = ForecastService {
            models,
            active,
            previous: HashMap::new(),
            state_file: None,
            corpus: Arc::new(Corpus::default()),
            contexts: HashMap::new(),
            cohort_scores: HashMap::new(),
            dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
            rollouts: Rollouts::default(),
            rollouts_file: None,
            labels: None,
            reference: HashMap::new(),
            warm_cursor: HashMap::new(),
            live: HashMap::new(),
        };
        (service, errors)
    }

    /// Loads model directories that appeared since the start (a `citecast train` into
    /// the data directory); returns the versions loaded and the refusals. A corrupt
    /// model is refused with its reason and the serving ones are untouched.
    pub fn rescan(&mut self) -> (Vec<String>, Vec<String>) {
        let (mut loaded, mut errors) = (Vec::new(), Vec::new());
        for root in self.dirs.clone() {
            for dir in registry::list(&root) {
                if self.models.iter().any(|m| m.dir == dir) {
                    continue;
                }
                match registry::load(&dir) {
                    Ok(m) if self.model(&m.meta.version).is_some() => errors.push(format!(
                        "{}: version {} is already loaded",
                        dir.display(),
                        m.meta.version
                    )),
                    Ok(m) => {
                        loaded.push(m.meta.version.clone());
                        let mode = m.meta.mode;
                        self.models.push(Arc::new(m));
                        // A mode without any model starts serving the first one found.
                        self.active.entry(mode).or_insert(self.models.len() - 1);
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
        (loaded, errors)
    }

    /// Keeps promotions in `file` and restores the choice saved there (versions that
    /// are no longer loaded are ignored).
    pub fn persist_active_in(&mut self, file: std::path::PathBuf) {
        if let Ok(text) = std::fs::read_to_string(&file) {
            // Earlier builds saved only the mode -> version map.
            let saved = serde_json::from_str::<SavedChoice>(&text).ok().or_else(|| {
                serde_json::from_str::<HashMap<Mode, String>>(&text)
                    .ok()
                    .map(|active| SavedChoice { active, previous: HashMap::new() })
            });
            if let Some(saved) = saved {
                let find = |mode: Mode, version: &str| {
                    self.models.iter().position(|m| m.meta.version == version && m.meta.mode == mode)
                };
                for (mode, version) in &saved.active {
                    if let Some(i) = find(*mode, version) {
                        self.active.insert(*mode, i);
                    }
                }
                for (mode, version) in &saved.previous {
                    if let Some(i) = find(*mode, version) {
                        self.previous.insert(*mode, i);
                    }
                }
            }
        }
        self.state_file = Some(file);
    }

    /// Keeps rollouts in `file` and resumes the ones saved there; a rollout whose models
    /// are no longer loaded ends as rolled back.
    pub fn persist_rollouts_in(&mut self, file: PathBuf, now: i64) {
        if let Ok(text) = std::fs::read_to_string(&file) {
            match serde_json::from_str::<Rollouts>(&text) {
                Ok(r) => self.rollouts = r,
                Err(e) => {
                    tracing::error!(error = %e, file = %file.display(), "unreadable rollouts file ignored")
                }
            }
        }
        self.rollouts_file = Some(file);
        let loaded: Vec<String> = self.models.iter().map(|m| m.meta.version.clone()).collect();
        if !self.rollouts.forget_unloaded(&|v| loaded.iter().any(|l| l == v), now).is_empty() {
            let _ = self.save_rollouts();
        }
    }

    fn save_active(&self) -> Result<(), ForecastError> {
        let Some(file) = &self.state_file else { return Ok(()) };
        let name = |(m, &i): (&Mode, &usize)| (*m, self.models[i].meta.version.clone());
        let saved = SavedChoice {
            active: self.active.iter().map(name).collect(),
            previous: self.previous.iter().map(name).collect(),
        };
        crate::files::write_atomically(file, &serde_json::to_vec_pretty(&saved).unwrap_or_default())
            .map_err(|e| ForecastError::Io(format!("cannot save the active models: {e}")))
    }

    fn save_rollouts(&self) -> Result<(), ForecastError> {
        let Some(file) = &self.rollouts_file else { return Ok(()) };
        crate::files::write_atomically(file, &serde_json::to_vec_pretty(&self.rollouts).unwrap_or_default())
            .map_err(|e| ForecastError::Io(format!("cannot save the rollouts: {e}")))
    }

    /// Makes `version` serve its mode; the model it replaces stays loaded for rollback.
    /// The swap is one assignment between two requests, so none is dropped. Promoting a
    /// running rollout's candidate completes that rollout.
    pub fn promote(&mut self, version: &str) -> Result<ModelSummary, ForecastError> {
        let mode = self.model(version).map(|m| m.meta.mode);
        if let Some(r) = mode.and_then(|m| self.rollouts.get(m)) {
            if r.candidate != version {
                return Err(ForecastError::Invalid(format!(
                    "rollout {} of {} is running; stop it or promote its candidate {}",
                    r.id, r.candidate, r.candidate
                )));
            }
            let mode = r.mode;
            self.rollouts.advance_to_end(mode, dates::now_secs(), "promoted by an operator")?;
            self.save_rollouts()?;
        }
        self.swap_active(version)
    }

    fn swap_active(&mut self, version: &str) -> Result<ModelSummary, ForecastError> {
        // The live window described the model being replaced.
        if let Some(m) = self.model(version) {
            let mode = m.meta.mode;
            self.live.remove(&mode);
        }
        let i = self
            .models
            .iter()
            .position(|m| m.meta.version == version)
            .ok_or_else(|| ForecastError::Invalid(format!("no loaded model '{version}'")))?;
        let mode = self.models[i].meta.mode;
        if let Some(old) = self.active.insert(mode, i) {
            if old != i {
                self.previous.insert(mode, old);
            }
        }
        self.save_active()?;
        Ok(self.summaries().swap_remove(i))
    }

    /// Puts back the model `mode` served before the last promotion. During a rollout it
    /// ends the rollout instead: the control, which never stopped serving, stays.
    pub fn rollback(&mut self, mode: Mode) -> Result<ModelSummary, ForecastError> {
        if self.rollouts.get(mode).is_some() {
            self.rollouts.rollback(mode, dates::now_secs(), "rolled back by an operator", false)?;
            self.save_rollouts()?;
            let i = self.active[&mode];
            return Ok(self.summaries().swap_remove(i));
        }
        self.live.remove(&mode);
        let prev = self.previous.remove(&mode).ok_or_else(|| {
            ForecastError::Invalid(format!("no earlier {} model to roll back to", mode.as_str()))
        })?;
        if let Some(cur) = self.active.insert(mode, prev) {
            self.previous.insert(mode, cur);
        }
        self.save_active()?;
        Ok(self.summaries().swap_remove(prev))
    }

    pub fn set_corpus(&mut self, corpus: Arc<Corpus>) {
        self.corpus = corpus;
        self.contexts.clear();
        self.cohort_scores.clear();
        self.warm_cursor.clear();
        self.labels = None;
    }

    pub fn corpus(&self) -> &Arc<Corpus> {
        &self.corpus
    }

    pub fn summaries(&self) -> Vec<ModelSummary> {
        self.models
            .iter()
            .enumerate()
            .map(|(i, m)| ModelSummary {
                version: m.meta.version.clone(),
                mode: m.meta.mode,
                active: self.active.get(&m.meta.mode) == Some(&i),
                threshold: m.meta.threshold,
                test: m.meta.test.clone(),
                validation: m.meta.validation.clone(),
            })
            .collect()
    }

    pub fn model(&self, version: &str) -> Option<&Arc<LoadedModel>> {
        self.models.iter().find(|m| m.meta.version == version)
    }

    pub fn active(&self, mode: Mode) -> Result<Arc<LoadedModel>, ForecastError> {
        self.active
            .get(&mode)
            .map(|&i| self.models[i].clone())
            .ok_or_else(|| ForecastError::NoModel(mode.as_str().into()))
    }

    fn context(&mut self, model: &LoadedModel) -> Arc<FeatureContext> {
        self.contexts
            .entry(model.meta.version.clone())
            .or_insert_with(|| {
                Arc::new(FeatureContext::new(self.corpus.clone(), model.forecaster.text.clone()))
            })
            .clone()
    }

    /// Computes the missing raw scores of `model` for the corpus papers in `range`
    /// (those old enough to be scored in the model's mode).
    fn fill_cohort(&mut self, model: &LoadedModel, range: std::ops::Range<usize>) {
        let n = self.corpus.len();
        let last = self.corpus.last_day().unwrap_or(Day::MIN);
        let mode = model.meta.mode;
        let scores =
            self.cohort_scores.entry(model.meta.version.clone()).or_insert_with(|| vec![f32::NAN; n]);
        let missing: Vec<u32> = range
            .filter(|&p| scores[p].is_nan() && cutoff(mode, self.corpus.day[p]) <= last)
            .map(|p| p as u32)
            .collect();
        if missing.is_empty() {
            return;
        }
        let ctx = self.context(model);
        let mut x = features::matrix(&ctx, &missing, mode);
        model.forecaster.normaliser.apply(&mut x);
        let scores = self.cohort_scores.get_mut(&model.meta.version).expect("inserted above");
        for (p, s) in missing.iter().zip(model.forecaster.predict_std(&x)) {
            scores[*p as usize] = s as f32;
        }
    }

    /// What `model` serves for a raw score `s` of a paper submitted on `t0`.
    fn served_probability(&mut self, model: &LoadedModel, t0: Day, s: f64) -> f64 {
        let Some(c) = model.forecaster.cohort else { return s };
        let range = cohort::window(&self.corpus.day, t0, c.window_days);
        self.fill_cohort(model, range.clone());
        let scores = &self.cohort_scores[&model.meta.version];
        c.probability(cohort::mid_rank(&scores[range], s))
    }

    fn answer(&mut self, model: &LoadedModel, id: String, mode: Mode, t0: Day, raw: Vec<f32>) -> Forecast {
        let f = &model.forecaster;
        let mut x = raw.clone();
        f.normaliser.apply(&mut x);
        let probability = self.served_probability(model, t0, f.predict_std(&x)[0]);
        let contributions = f.contributions_std(&x);
        let mut order: Vec<usize> = (0..contributions.len()).collect();
        order.sort_by(|a, b| contributions[*b].abs().total_cmp(&contributions[*a].abs()));
        Forecast {
            paper_id: id,
            mode,
            as_of: dates::format(mode.as_of(t0)),
            probability,
            label: if probability >= f.threshold { "high" } else { "low" }.into(),
            threshold: f.threshold,
            model_version: model.meta.version.clone(),
            top_features: order
                .into_iter()
                .take(TOP_FEATURES)
                .map(|j| {
                    let name = &f.feature_names[j];
                    let entry = super::glossary::entry(name);
                    Contribution {
                        feature: name.clone(),
                        value: raw[j],
                        contribution: contributions[j],
                        label: entry.map(|e| e.label.to_string()).unwrap_or_else(|| name.clone()),
                        shown: entry
                            .map(|e| super::glossary::shown(e.unit, f64::from(raw[j])))
                            .unwrap_or_else(|| format!("{:.3}", raw[j])),
                        sentence: super::glossary::sentence(name, f64::from(raw[j])),
                    }
                })
                .collect(),
            outcome: None,
        }
    }

    /// What happened to corpus paper `p`, when its two-year window is in the data.
    fn outcome_of(&mut self, p: u32) -> Option<Outcome> {
        let labels = self.labels();
        let reached = labels.label.get(p as usize).copied().flatten()?;
        let day = self.corpus.day[p as usize];
        Some(Outcome {
            citations_in_window: labels.count[p as usize],
            window_ends: dates::format(day + super::task::LABEL_WINDOW),
            top_10_percent_needed: labels.thresholds.get(&dates::year_of(day)).copied(),
            reached_top_10_percent: reached,
        })
    }

    /// Builds the feature context of every active model now, so the first forecast after
    /// a start or a data change doesn't pay for it.
    pub fn warm(&mut self) {
        while !self.warm_step(usize::MAX) {}
    }

    /// One bounded piece of the warm-up: builds one model's feature context, or scores
    /// the next `papers` corpus papers for its cohort ranks, or its reference histogram.
    /// Returns whether every active model is warm. The model actor runs one step per
    /// message, so forecasts queued meanwhile are answered between steps instead of
    /// after the whole warm-up.
    pub fn warm_step(&mut self, papers: usize) -> bool {
        let mut active: Vec<Arc<LoadedModel>> =
            self.active.values().map(|&i| self.models[i].clone()).collect();
        active.sort_by(|a, b| a.meta.version.cmp(&b.meta.version));
        let n = self.corpus.len();
        for m in active {
            let version = m.meta.version.clone();
            let cursor = self.warm_cursor.get(&version).copied().unwrap_or(0);
            if cursor == usize::MAX {
                continue;
            }
            if !self.contexts.contains_key(&version) {
                self.context(&m);
                return false;
            }
            if cursor < n {
                let end = cursor.saturating_add(papers.max(1)).min(n);
                self.fill_cohort(&m, cursor..end);
                self.warm_cursor.insert(version, end);
                return false;
            }
            self.reference_of(&m);
            self.warm_cursor.insert(version, usize::MAX);
            return false;
        }
        true
    }

    /// The model's score histogram over (a sample of) the validation papers.
    fn reference_of(&mut self, model: &Arc<LoadedModel>) -> Option<[u64; rollout::SCORE_BINS]> {
        if let Some(r) = self.reference.get(&model.meta.version) {
            return Some(*r);
        }
        if self.corpus.is_empty() {
            return None;
        }
        let labels = self.labels();
        let papers = labels.papers_in(&self.corpus, super::task::Split::Validation);
        if papers.is_empty() {
            return None;
        }
        let step = papers.len().div_ceil(REFERENCE_PAPERS).max(1);
        // The validation papers' raw scores are in the cohort table (one batched fill).
        let (first, last) = (papers[0] as usize, papers[papers.len() - 1] as usize);
        self.fill_cohort(model, first..last + 1);
        let mut bins = [0u64; rollout::SCORE_BINS];
        for &p in papers.iter().step_by(step) {
            let raw = self.cohort_scores[&model.meta.version][p as usize] as f64;
            let prob = self.served_probability(model, self.corpus.day[p as usize], raw);
            if prob.is_finite() {
                bins[rollout::score_bin(prob)] += 1;
            }
        }
        self.reference.insert(model.meta.version.clone(), bins);
        Some(bins)
    }

    /// The current corpus's labels, computed once per corpus.
    fn labels(&mut self) -> Arc<Labels> {
        self.labels.get_or_insert_with(|| Arc::new(Labels::compute(&self.corpus))).clone()
    }

    fn record_live(&mut self, mode: Mode, probability: f64) {
        let window = self.live.entry(mode).or_default();
        window.push_back(rollout::score_bin(probability) as u8);
        if window.len() > DRIFT_WINDOW {
            window.pop_front();
        }
    }

    /// Per mode, the PSI of the scores served lately against the serving model's scores on
    /// its validation papers (`None` until enough forecasts were served).
    pub fn drift(&mut self) -> Vec<(Mode, Option<f64>)> {
        let modes: Vec<Mode> = self.active.keys().copied().collect();
        modes
            .into_iter()
            .map(|mode| {
                let live = self.live.get(&mode).filter(|w| w.len() >= DRIFT_MIN).map(|w| {
                    let mut bins = [0u64; rollout::SCORE_BINS];
                    for &b in w {
                        bins[b as usize] += 1;
                    }
                    bins
                });
                let psi = match (live, self.active(mode).ok()) {
                    (Some(live), Some(model)) => {
                        self.reference_of(&model).and_then(|reference| rollout::psi(&reference, &live))
                    }
                    _ => None,
                };
                (mode, psi)
            })
            .collect()
    }

    /// Forecasts a stored paper by id (canonical or alias) with the active model.
    pub fn forecast(&mut self, id: &str, mode: Mode) -> Result<Forecast, ForecastError> {
        self.forecast_routed(id, mode, &Route::default()).map(|(f, _)| f)
    }

    /// Forecasts a stored paper for a caller: during a rollout both models score it, the
    /// caller's arm answers, and the record says what each model said. A candidate that
    /// fails to score is answered by the control, so a bad candidate fails no request.
    pub fn forecast_routed(
        &mut self,
        id: &str,
        mode: Mode,
        route: &Route,
    ) -> Result<(Forecast, ForecastRecord), ForecastError> {
        let active = self.active(mode)?;
        let (p, t0) = self.locate(id, mode)?;
        let arms = self.rollouts.get(mode).and_then(|r| {
            let control = self.model(&r.control)?.clone();
            let candidate = self.model(&r.candidate)?.clone();
            let arm = match &route.arm {
                Some((rid, arm)) if *rid == r.id => *arm,
                _ => r.arm_for(route.caller.as_deref().unwrap_or("")),
            };
            Some((r.id.clone(), control, candidate, arm))
        });
        let mut record = ForecastRecord {
            at: dates::now_secs(),
            paper_id: self.corpus.ids[p as usize].clone(),
            mode: mode.as_str().into(),
            model_version: String::new(),
            probability: 0.0,
            caller: route.caller.clone(),
            rollout: None,
            arm: None,
            shadow_version: None,
            shadow_probability: None,
        };
        // Scheduled rescoring is not what callers are served: it stays out of drift.
        let counts_for_drift = route.caller.as_deref().is_some_and(|c| c != "scheduler");
        let Some((rollout_id, control, candidate, arm)) = arms else {
            let (f, scored) = self.score(&active, p, mode, t0);
            scored.probability.ok_or_else(|| no_score(&active))?;
            record.model_version = f.model_version.clone();
            record.probability = f.probability;
            if counts_for_drift {
                self.record_live(mode, f.probability);
            }
            return Ok((f, record));
        };
        let (fc, sc) = self.score(&control, p, mode, t0);
        let (fk, sk) = self.score(&candidate, p, mode, t0);
        let served =
            if arm == Arm::Candidate && sk.probability.is_some() { Arm::Candidate } else { Arm::Control };
        if let Some(r) = self.rollouts.get_mut(mode) {
            r.record(sc, sk, served);
        }
        let (f, shadow) = match served {
            Arm::Candidate => (fk, (&fc, sc)),
            Arm::Control => (fc, (&fk, sk)),
        };
        if f.probability.is_nan() {
            return Err(no_score(&control));
        }
        record.model_version = f.model_version.clone();
        record.probability = f.probability;
        if counts_for_drift && served == Arm::Control {
            self.record_live(mode, f.probability);
        }
        record.rollout = Some(rollout_id);
        record.arm = Some(served.as_str().into());
        record.shadow_version = Some(shadow.0.model_version.clone());
        record.shadow_probability = shadow.1.probability;
        Ok((f, record))
    }

    fn score(&mut self, model: &Arc<LoadedModel>, p: u32, mode: Mode, t0: Day) -> (Forecast, Scored) {
        // A cold cohort window (the first forecast of a half-year after a start or a data
        // change) is model-wide work, not this forecast's latency: fill it before timing.
        if let Some(c) = model.forecaster.cohort {
            self.fill_cohort(model, cohort::window(&self.corpus.day, t0, c.window_days));
        }
        let started = Instant::now();
        let ctx = self.context(model);
        let raw = ctx.features(p, mode);
        let mut f = self.answer(model, self.corpus.ids[p as usize].clone(), mode, t0, raw);
        let scored = Scored {
            probability: f.probability.is_finite().then_some(f.probability),
            high: f.label == "high",
            micros: started.elapsed().as_micros() as u64,
        };
        f.outcome = self.outcome_of(p);
        (f, scored)
    }

    /// The paper number and submission day of `id`, or why it cannot be forecast in `mode`.
    fn locate(&self, id: &str, mode: Mode) -> Result<(u32, Day), ForecastError> {
        let p = self.corpus.find(id).ok_or_else(|| ForecastError::UnknownPaper(id.to_string()))?;
        let t0 = self.corpus.day[p as usize];
        let last = self.corpus.last_day().unwrap_or(t0);
        if cutoff(mode, t0) > last {
            return Err(ForecastError::TooYoung {
                id: self.corpus.ids[p as usize].clone(),
                submitted: dates::format(t0),
                as_of: dates::format(cutoff(mode, t0)),
                data_ends: dates::format(last),
            });
        }
        Ok((p, t0))
    }

    /// Forecasts a paper that is not stored, from its metadata, with features computed
    /// now against the current corpus. Only `at_publication`: a new paper has no citations.
    pub fn score_new(&mut self, paper: &NewPaper, mode: Mode) -> Result<Forecast, ForecastError> {
        if mode != Mode::AtPublication {
            return Err(ForecastError::Invalid(
                "a paper that is not stored has no citations yet: use mode at_publication".into(),
            ));
        }
        let title = paper.title.trim();
        if title.is_empty() || title.len() > 1000 {
            return Err(ForecastError::Invalid("'title' must be 1 to 1000 characters".into()));
        }
        if paper.abstract_text.len() > 20_000 {
            return Err(ForecastError::Invalid("'abstract' is longer than 20000 characters".into()));
        }
        if paper.authors.is_empty() || paper.authors.len() > 100 {
            return Err(ForecastError::Invalid("'authors' must list 1 to 100 names".into()));
        }
        if paper.references.len() > 1000 {
            return Err(ForecastError::Invalid("'references' lists more than 1000 ids".into()));
        }
        let t0 = dates::parse(&paper.date).ok_or_else(|| {
            ForecastError::Invalid(format!("'date' must be YYYY-MM-DD, got '{}'", paper.date))
        })?;
        // Papers are dated from the first journals on to about a year ahead (a preprint
        // with a planned date); years 0 or 9999 are typing errors, not papers.
        let latest = dates::today() + 366;
        if dates::year_of(t0) < 1800 || t0 > latest {
            return Err(ForecastError::Invalid(format!(
                "'date' must be between 1800-01-01 and {}, got '{}'",
                dates::format(latest),
                paper.date
            )));
        }
        let mut authors = Vec::new();
        for a in &paper.authors {
            let n = names::normalise_author(a)
                .ok_or_else(|| ForecastError::Invalid(format!("'{a}' is not a usable author name")))?;
            authors.push(self.corpus.author_by_key.get(&n.key).copied());
        }
        let mut refs = Vec::new();
        for r in &paper.references {
            // A reference in the body is the caller's input: an unknown one is a bad
            // request naming it, not a missing resource (404 would read as a wrong URL).
            refs.push(self.corpus.find(r).ok_or_else(|| {
                ForecastError::Invalid(format!("'references' names '{r}', which is not a stored paper"))
            })?);
        }
        let model = self.active(mode)?;
        let ctx = self.context(&model);
        let subject = Subject {
            day: t0,
            secs: dates::parse_time_of_day(&paper.date),
            authors,
            refs,
            title,
            abstract_text: &paper.abstract_text,
            terms: ctx.term_ids(title, &paper.abstract_text),
            own: None,
            cited_by: &[],
        };
        let raw = ctx.features_of(&subject, mode);
        Ok(self.answer(&model, "(new paper)".into(), mode, t0, raw))
    }
}

impl ForecastService {
    /// Starts an A/B experiment or a canary of `spec.candidate` against the model that
    /// serves its mode now; the candidate's features are built before it takes traffic.
    pub fn start_rollout(&mut self, spec: RolloutSpec) -> Result<Rollout, ForecastError> {
        let candidate = self
            .model(&spec.candidate)
            .cloned()
            .ok_or_else(|| ForecastError::Invalid(format!("no loaded model '{}'", spec.candidate)))?;
        let mode = candidate.meta.mode;
        let control = self.active(mode)?;
        self.context(&candidate);
        let req = StartRequest {
            mode,
            control: control.meta.version.clone(),
            candidate: spec.candidate,
            strategy: spec.strategy,
            guards: spec.guards,
        };
        let started = self.rollouts.start(req, dates::now_secs())?.clone();
        self.save_rollouts()?;
        Ok(started)
    }

    /// Advances a canary one stage (past 100 % the candidate is promoted) or promotes an
    /// experiment's candidate.
    pub fn advance_rollout(&mut self, mode: Mode) -> Result<Transition, ForecastError> {
        let t = self.rollouts.advance(mode, dates::now_secs(), "operator")?;
        self.apply(&t)?;
        self.save_rollouts()?;
        Ok(t)
    }

    pub fn stop_rollout(&mut self, mode: Mode) -> Result<Transition, ForecastError> {
        let t = self.rollouts.stop(mode, dates::now_secs())?;
        self.save_rollouts()?;
        Ok(t)
    }

    /// Guard checks and scheduled advances; also saves the rollouts' statistics.
    pub fn tick_rollouts(&mut self, now: i64) -> Vec<Transition> {
        let transitions = self.rollouts.tick(now);
        for t in &transitions {
            if let Err(e) = self.apply(t) {
                tracing::error!(error = %e, "rollout transition failed");
            }
        }
        if !self.rollouts.running.is_empty() || !transitions.is_empty() {
            if let Err(e) = self.save_rollouts() {
                tracing::error!(error = %e, "cannot save rollouts");
            }
        }
        transitions
    }

    fn apply(&mut self, t: &Transition) -> Result<(), ForecastError> {
        if let Transition::Promote { candidate, .. } = t {
            self.swap_active(candidate)?;
        }
        Ok(())
    }

    pub fn rollouts(&self) -> &Rollouts {
        &self.rollouts
    }

    /// (mode, rollout id, candidate share) of the running rollouts, for request routing.
    pub fn routes(&self) -> Vec<(Mode, String, u8)> {
        self.rollouts.running.values().map(|r| (r.mode, r.id.clone(), r.share())).collect()
    }

    /// The comparison of a rollout's arms, from its counters and its forecast-log records.
    pub fn rollout_report(&mut self, id: &str, records: &[ForecastRecord]) -> Option<RolloutReport> {
        let r = self.rollouts.find(id)?.clone();
        let labels = self.labels();
        let mut seen = std::collections::HashSet::new();
        let (mut served_c, mut served_k, mut both_c, mut both_k) = (vec![], vec![], vec![], vec![]);
        let mut labelled = 0;
        for rec in records.iter().filter(|rec| rec.rollout.as_deref() == Some(id)) {
            if !seen.insert(rec.paper_id.as_str()) {
                continue;
            }
            let Some(label) = self.corpus.find(&rec.paper_id).and_then(|p| labels.label[p as usize]) else {
                continue;
            };
            let Some(shadow) = rec.shadow_probability else { continue };
            labelled += 1;
            let candidate_served = rec.arm.as_deref() == Some(Arm::Candidate.as_str());
            let (pc, pk) =
                if candidate_served { (shadow, rec.probability) } else { (rec.probability, shadow) };
            both_c.push((pc, label));
            both_k.push((pk, label));
            if candidate_served {
                served_k.push((pk, label));
            } else {
                served_c.push((pc, label));
            }
        }
        let auc = |v: &[(f64, bool)]| {
            let pos = v.iter().filter(|x| x.1).count();
            (pos > 0 && pos < v.len()).then(|| {
                let (s, l): (Vec<f64>, Vec<bool>) = v.iter().copied().unzip();
                super::metrics::roc_auc(&s, &l)
            })
        };
        Some(RolloutReport {
            share: r.share(),
            agreement: r.agreement(),
            mean_abs_difference: (r.paired > 0).then(|| r.abs_diff_sum / r.paired as f64),
            drift_psi: r.drift_psi(),
            control_mean_score: r.control_stats.mean_score(),
            candidate_mean_score: r.candidate_stats.mean_score(),
            control_p95_ms: r.control_stats.p95_ms(),
            candidate_p95_ms: r.candidate_stats.p95_ms(),
            logged_forecasts: records.iter().filter(|rec| rec.rollout.as_deref() == Some(id)).count(),
            distinct_papers: seen.len(),
            labelled_papers: labelled,
            control_served_auc: auc(&served_c),
            candidate_served_auc: auc(&served_k),
            control_auc: auc(&both_c),
            candidate_auc: auc(&both_k),
            guard_violation: r.guard_violation(),
            rollout: r,
        })
    }
}

fn no_score(model: &LoadedModel) -> ForecastError {
    ForecastError::Invalid(format!("model {} produced no score for this paper", model.meta.version))
}
