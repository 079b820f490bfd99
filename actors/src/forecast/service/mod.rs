//! Serving forecasts: the loaded models per mode (one active, others kept loadable for
//! rollback), the corpus snapshot they read, and the answer for one paper.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::cohort;
use super::corpus::Corpus;
use super::coverage::Coverage;
use super::features::{self, FeatureContext, Subject};
use super::metrics::Scorecard;
use super::registry::{self, LoadedModel};
use super::rollout::{self, Arm, Rollout, RolloutError, Rollouts, Scored, StartRequest, Transition};
use super::task::{Mode, Resolution, TaskSpec};
use crate::dates::{self, Day};
use crate::names;
use crate::records::ForecastRecord;

mod active;
mod batch;
mod cohort_cache;
mod collections;
mod drift;
mod new_paper;
mod rollouts;

pub use collections::{model_collection, Collections};
pub use new_paper::NewPaper;
pub use rollouts::{RolloutReport, RolloutSpec};

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
    /// The data about the paper's time is complete up to this day (`YYYY-MM-DD`): the end
    /// of the period the collection covers around it. Nothing later is known, and nothing
    /// unknown is read as "not cited".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_complete_until: Option<String>,
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
    /// `names` lists the collections there are.
    #[error("no collection '{name}'; collections: {names}")]
    UnknownCollection { name: String, names: String },
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
    /// Only papers of this collection (`None`: whichever collection holds the paper).
    pub collection: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub version: String,
    /// The collection the model was trained on and serves.
    pub collection: String,
    pub mode: Mode,
    pub active: bool,
    pub threshold: f64,
    pub test: Scorecard,
    pub validation: Scorecard,
}

/// The models and the corpus snapshot they read. Owned by the model actor.
pub struct ForecastService {
    /// The collection whose papers this service forecasts (see `collections`).
    collection: String,
    /// What the corpus covers (computed on first use per corpus).
    coverage: Option<Arc<Coverage>>,
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
    /// Where complete cohort score tables are kept across restarts (`None`: not kept;
    /// see `cohort_cache.rs`).
    cohort_dir: Option<PathBuf>,
    /// Model versions whose table on disk is the one in `cohort_scores` for this corpus.
    cohort_on_disk: std::collections::HashSet<String>,
    /// Where models are loaded from, for a rescan that picks up newly trained ones.
    dirs: Vec<PathBuf>,
    rollouts: Rollouts,
    rollouts_file: Option<PathBuf>,
    /// Per model version, the histogram of its scores on validation papers: what drift
    /// is measured against.
    reference: HashMap<String, [u64; rollout::SCORE_BINS]>,
    /// Per model version, how far the stepped warm-up got over the current corpus:
    /// papers whose cohort scores are filled (`usize::MAX`: warm).
    warm_cursor: HashMap<String, usize>,
    /// Per model version, when the warm-up began filling its cohort scores (for the log).
    warm_began: HashMap<String, Instant>,
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
            collection: crate::store::DEFAULT_COLLECTION.to_string(),
            coverage: None,
            models,
            active,
            previous: HashMap::new(),
            state_file: None,
            corpus: Arc::new(Corpus::default()),
            contexts: HashMap::new(),
            cohort_scores: HashMap::new(),
            cohort_dir: None,
            cohort_on_disk: Default::default(),
            dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
            rollouts: Rollouts::default(),
            rollouts_file: None,
            reference: HashMap::new(),
            warm_cursor: HashMap::new(),
            warm_began: HashMap::new(),
            live: HashMap::new(),
        };
        (service, errors)
    }

    pub fn set_corpus(&mut self, corpus: Arc<Corpus>) {
        self.corpus = corpus;
        self.coverage = None;
        self.contexts.clear();
        self.cohort_scores.clear();
        self.cohort_on_disk.clear();
        self.warm_cursor.clear();
        self.warm_began.clear();
    }

    /// Keeps complete cohort score tables in `dir` and reads them back on unchanged data.
    pub fn keep_cohort_scores_in(&mut self, dir: PathBuf) {
        self.cohort_dir = Some(dir);
    }

    /// The cohort score table of `model`: as kept on disk for this corpus, else all NaN
    /// (to be filled).
    fn cohort_table(&mut self, model: &LoadedModel) -> &mut Vec<f32> {
        let version = &model.meta.version;
        if !self.cohort_scores.contains_key(version) {
            let n = self.corpus.len();
            let kept = self
                .cohort_dir
                .as_deref()
                .and_then(|dir| cohort_cache::load(dir, &self.collection, version, &self.corpus));
            let table = match kept {
                Some(t) => {
                    tracing::info!(model = %version, papers = n, "cohort scores read from disk");
                    self.cohort_on_disk.insert(version.clone());
                    t
                }
                None => vec![f32::NAN; n],
            };
            self.cohort_scores.insert(version.clone(), table);
        }
        self.cohort_scores.get_mut(version).expect("inserted above")
    }

    /// Saves `model`'s complete table, once per corpus; a failure only costs the next
    /// start a warm-up.
    fn keep_cohort_table(&mut self, model: &LoadedModel) {
        let version = &model.meta.version;
        let (Some(dir), Some(table)) = (&self.cohort_dir, self.cohort_scores.get(version)) else { return };
        if self.cohort_on_disk.contains(version) {
            return;
        }
        match cohort_cache::save(dir, &self.collection, version, &self.corpus, table) {
            Ok(()) => {
                self.cohort_on_disk.insert(version.clone());
            }
            Err(e) => tracing::warn!(model = %version, error = %e, "cohort scores not kept on disk"),
        }
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
                collection: self.collection.clone(),
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
                Arc::new(FeatureContext::new(
                    self.corpus.clone(),
                    model.forecaster.text.clone(),
                    &registry::task_of(&model.meta),
                ))
            })
            .clone()
    }

    /// Builds the missing feature contexts of `models` at once, one thread each: they
    /// read the same corpus and nothing else, and at a million papers each takes ~25 s
    /// (two modes: the cores side by side instead of one after the other).
    fn build_contexts(&mut self, models: &[Arc<LoadedModel>]) {
        let missing: Vec<&Arc<LoadedModel>> =
            models.iter().filter(|m| !self.contexts.contains_key(&m.meta.version)).collect();
        let corpus = &self.corpus;
        let built: Vec<(String, FeatureContext, f64)> = std::thread::scope(|scope| {
            let handles: Vec<_> = missing
                .iter()
                .map(|m| {
                    scope.spawn(move || {
                        let started = Instant::now();
                        let ctx = FeatureContext::new(
                            corpus.clone(),
                            m.forecaster.text.clone(),
                            &registry::task_of(&m.meta),
                        );
                        (m.meta.version.clone(), ctx, started.elapsed().as_secs_f64())
                    })
                })
                .collect();
            // A panic in a build is the same panic the one-thread build would raise.
            handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
        });
        for (version, ctx, seconds) in built {
            tracing::info!(
                model = %version,
                papers = self.corpus.len(),
                seconds = format!("{seconds:.2}"),
                "feature context built"
            );
            self.contexts.insert(version, Arc::new(ctx));
        }
    }

    /// Computes the missing raw scores of `model` for the corpus papers in `range`
    /// (those old enough to be scored in the model's mode).
    fn fill_cohort(&mut self, model: &LoadedModel, range: std::ops::Range<usize>) {
        let spec = registry::task_of(&model.meta);
        let coverage = self.coverage();
        let mode = model.meta.mode;
        let corpus = self.corpus.clone();
        let scores = self.cohort_table(model);
        // Scorable: the paper's features up to its as-of date lie in covered time.
        let missing: Vec<u32> = range
            .filter(|&p| {
                let day = corpus.day[p];
                scores[p].is_nan() && coverage.observed(day, spec.cutoff(mode, day))
            })
            .map(|p| p as u32)
            .collect();
        if missing.is_empty() {
            return;
        }
        let ctx = self.context(model);
        let mut x = features::matrix(&ctx, &missing, mode);
        model.forecaster.normaliser.apply(&mut x);
        self.cohort_on_disk.remove(&model.meta.version);
        let scores = self.cohort_table(model);
        for (p, s) in missing.iter().zip(model.forecaster.predict_std(&x)) {
            scores[*p as usize] = s as f32;
        }
    }

    /// What `model` serves for a raw score `s` of a paper submitted on `t0`: through
    /// [`cohort::served_probability`], as training's figures were computed.
    fn served_probability(&mut self, model: &LoadedModel, t0: Day, s: f64) -> f64 {
        let Some(c) = model.forecaster.cohort else { return s };
        let range = cohort::window(&self.corpus.day, t0, c.window_days);
        self.fill_cohort(model, range);
        let table =
            cohort::Table { days: &self.corpus.day, scores: &self.cohort_scores[&model.meta.version] };
        model.forecaster.served_probability(&table, t0, s)
    }

    fn answer(&mut self, model: &LoadedModel, id: String, mode: Mode, t0: Day, raw: Vec<f32>) -> Forecast {
        let f = &model.forecaster;
        let mut x = raw.clone();
        f.normaliser.apply(&mut x);
        let probability = self.served_probability(model, t0, f.predict_std(&x)[0]);
        let contributions = f.contributions_std(&x);
        explain(model, id, mode, t0, &raw, probability, &contributions)
    }

    /// What happened to corpus paper `p`, when its label window (under `model`'s task)
    /// is in the data.
    fn outcome_of(&mut self, model: &LoadedModel, p: u32) -> Option<Outcome> {
        let ctx = self.context(model);
        let labels = ctx.labels();
        let reached = labels.label.get(p as usize).copied().flatten()?;
        let day = self.corpus.day[p as usize];
        Some(Outcome {
            citations_in_window: labels.count[p as usize],
            window_ends: dates::format(ctx.spec().label_end(day)),
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
        for m in &active {
            let version = m.meta.version.clone();
            let cursor = self.warm_cursor.get(&version).copied().unwrap_or(0);
            if cursor == usize::MAX {
                continue;
            }
            if !self.contexts.contains_key(&version) {
                self.build_contexts(&active);
                return false;
            }
            if cursor < n {
                self.warm_began.entry(version.clone()).or_insert_with(Instant::now);
                let end = cursor.saturating_add(papers.max(1)).min(n);
                self.fill_cohort(m, cursor..end);
                self.warm_cursor.insert(version, end);
                return false;
            }
            self.reference_of(m);
            self.keep_cohort_table(m);
            if let Some(began) = self.warm_began.remove(&version) {
                tracing::info!(
                    model = %version,
                    papers = n,
                    seconds = format!("{:.2}", began.elapsed().as_secs_f64()),
                    "cohort scores filled"
                );
            }
            self.warm_cursor.insert(version, usize::MAX);
            return false;
        }
        true
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
        let (p, t0) = self.locate(id, mode, &active)?;
        let arms = self.arms(mode, route);
        let scored = match &arms {
            None => (self.score(&active, p, mode, t0), None),
            Some(a) => (self.score(&a.control, p, mode, t0), Some(self.score(&a.candidate, p, mode, t0))),
        };
        self.settle(p, mode, route, &active, arms.as_ref(), scored, dates::now_secs())
    }

    /// The running rollout of `mode` and the arm `route`'s caller is in, if any.
    fn arms(&self, mode: Mode, route: &Route) -> Option<Arms> {
        let r = self.rollouts.get(mode)?;
        let control = self.model(&r.control)?.clone();
        let candidate = self.model(&r.candidate)?.clone();
        let arm = match &route.arm {
            Some((rid, arm)) if *rid == r.id => *arm,
            _ => r.arm_for(route.caller.as_deref().unwrap_or("")),
        };
        Some(Arms { rollout: r.id.clone(), control, candidate, arm })
    }

    /// Turns a paper's scores into the answer and its log record: without a rollout the
    /// active model's (`scored.0`); during one, the control's (`scored.0`) and the
    /// candidate's (`scored.1`), the caller's arm answering and the rollout counting both.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &mut self,
        p: u32,
        mode: Mode,
        route: &Route,
        active: &LoadedModel,
        arms: Option<&Arms>,
        scored: Scores,
        at: i64,
    ) -> Result<(Forecast, ForecastRecord), ForecastError> {
        let mut record = ForecastRecord {
            at,
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
        let ((fc, sc), candidate) = scored;
        let (Some(a), Some((fk, sk))) = (arms, candidate) else {
            sc.probability.ok_or_else(|| no_score(active))?;
            let f = fc;
            record.model_version = f.model_version.clone();
            record.probability = f.probability;
            if counts_for_drift {
                self.record_live(mode, f.probability);
            }
            return Ok((f, record));
        };
        let served =
            if a.arm == Arm::Candidate && sk.probability.is_some() { Arm::Candidate } else { Arm::Control };
        if let Some(r) = self.rollouts.get_mut(mode) {
            r.record(sc, sk, served);
        }
        let (f, shadow) = match served {
            Arm::Candidate => (fk, (&fc, sc)),
            Arm::Control => (fc, (&fk, sk)),
        };
        if f.probability.is_nan() {
            return Err(no_score(&a.control));
        }
        record.model_version = f.model_version.clone();
        record.probability = f.probability;
        if counts_for_drift && served == Arm::Control {
            self.record_live(mode, f.probability);
        }
        record.rollout = Some(a.rollout.clone());
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
        f.outcome = self.outcome_of(model, p);
        f.data_complete_until = self.coverage().complete_until(t0).map(dates::format);
        (f, scored)
    }

    /// The paper number and submission day of `id`, or why it cannot be forecast in `mode`
    /// (under `model`'s task).
    fn locate(&mut self, id: &str, mode: Mode, model: &LoadedModel) -> Result<(u32, Day), ForecastError> {
        let p = self.corpus.find(id).ok_or_else(|| ForecastError::UnknownPaper(id.to_string()))?;
        let t0 = self.corpus.day[p as usize];
        let spec = registry::task_of(&model.meta);
        let coverage = self.coverage();
        let as_of = spec.cutoff(mode, t0);
        if !coverage.observed(t0, as_of) {
            let ends = coverage.complete_until(t0).or(self.corpus.last_day()).unwrap_or(t0);
            return Err(ForecastError::TooYoung {
                id: self.corpus.ids[p as usize].clone(),
                submitted: dates::format(t0),
                as_of: dates::format(as_of),
                data_ends: dates::format(ends),
            });
        }
        Ok((p, t0))
    }

    /// What the current corpus covers, computed once per corpus.
    fn coverage(&mut self) -> Arc<Coverage> {
        if self.coverage.is_none() {
            let year_only = TaskSpec::resolution_of(&self.corpus) == Resolution::Year;
            self.coverage = Some(Arc::new(Coverage::of(&self.corpus.day, year_only)));
        }
        self.coverage.clone().expect("set above")
    }
}

/// A paper's answer and score by the serving model (the control during a rollout), and by
/// the candidate during one.
type Scores = ((Forecast, Scored), Option<(Forecast, Scored)>);

/// A running rollout as one request meets it.
struct Arms {
    rollout: String,
    control: Arc<LoadedModel>,
    candidate: Arc<LoadedModel>,
    arm: Arm,
}

fn no_score(model: &LoadedModel) -> ForecastError {
    ForecastError::Invalid(format!("model {} produced no score for this paper", model.meta.version))
}

/// The forecast `model` gives for a paper: its served probability and label, and the
/// features that moved it most (`raw`: the paper's unstandardised features).
fn explain(
    model: &LoadedModel,
    id: String,
    mode: Mode,
    t0: Day,
    raw: &[f32],
    probability: f64,
    contributions: &[f64],
) -> Forecast {
    let f = &model.forecaster;
    let mut order: Vec<usize> = (0..contributions.len()).collect();
    order.sort_by(|a, b| contributions[*b].abs().total_cmp(&contributions[*a].abs()));
    Forecast {
        paper_id: id,
        mode,
        as_of: dates::format(registry::task_of(&model.meta).as_of(mode, t0)),
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
        data_complete_until: None,
    }
}
