//! Serving forecasts: the loaded models per mode (one active, others kept loadable for
//! rollback), the corpus snapshot they read, and the answer for one paper.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::corpus::Corpus;
use super::features::{cutoff, FeatureContext, Subject};
use super::metrics::Scorecard;
use super::registry::{self, LoadedModel};
use super::task::Mode;
use crate::dates::{self, Day};
use crate::names;

/// How many feature contributions a forecast explains itself with.
pub const TOP_FEATURES: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Contribution {
    pub feature: String,
    pub value: f32,
    /// Effect on the model's logit of this feature's value versus an average paper.
    pub contribution: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
        };
        (service, errors)
    }

    /// Keeps promotions in `file` and restores the choice saved there (versions that
    /// are no longer loaded are ignored).
    pub fn persist_active_in(&mut self, file: std::path::PathBuf) {
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Ok(saved) = serde_json::from_str::<HashMap<Mode, String>>(&text) {
                for (mode, version) in saved {
                    if let Some(i) =
                        self.models.iter().position(|m| m.meta.version == version && m.meta.mode == mode)
                    {
                        self.active.insert(mode, i);
                    }
                }
            }
        }
        self.state_file = Some(file);
    }

    fn save_active(&self) -> Result<(), ForecastError> {
        let Some(file) = &self.state_file else { return Ok(()) };
        let saved: HashMap<Mode, &str> =
            self.active.iter().map(|(m, &i)| (*m, self.models[i].meta.version.as_str())).collect();
        let tmp = file.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&tmp, serde_json::to_vec_pretty(&saved).unwrap_or_default())?;
            std::fs::rename(&tmp, file)
        };
        write().map_err(|e| ForecastError::Invalid(format!("cannot save the active models: {e}")))
    }

    /// Makes `version` serve its mode; the model it replaces stays loaded for rollback.
    /// The swap is one assignment between two requests, so none is dropped.
    pub fn promote(&mut self, version: &str) -> Result<ModelSummary, ForecastError> {
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

    /// Puts back the model `mode` served before the last promotion.
    pub fn rollback(&mut self, mode: Mode) -> Result<ModelSummary, ForecastError> {
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

    fn answer(model: &LoadedModel, id: String, mode: Mode, t0: Day, raw: Vec<f32>) -> Forecast {
        let f = &model.forecaster;
        let mut x = raw.clone();
        f.normaliser.apply(&mut x);
        let probability = f.predict_std(&x)[0];
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
                .map(|j| Contribution {
                    feature: f.feature_names[j].clone(),
                    value: raw[j],
                    contribution: contributions[j],
                })
                .collect(),
        }
    }

    /// Builds the feature context of every active model now, so the first forecast after
    /// a start or a data change doesn't pay for it.
    pub fn warm(&mut self) {
        let active: Vec<Arc<LoadedModel>> = self.active.values().map(|&i| self.models[i].clone()).collect();
        for m in active {
            self.context(&m);
        }
    }

    /// Forecasts a stored paper by id (canonical or alias).
    pub fn forecast(&mut self, id: &str, mode: Mode) -> Result<Forecast, ForecastError> {
        let model = self.active(mode)?;
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
        let ctx = self.context(&model);
        let raw = ctx.features(p, mode);
        Ok(Self::answer(&model, self.corpus.ids[p as usize].clone(), mode, t0, raw))
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
        let mut authors = Vec::new();
        for a in &paper.authors {
            let n = names::normalise_author(a)
                .ok_or_else(|| ForecastError::Invalid(format!("'{a}' is not a usable author name")))?;
            authors.push(self.corpus.author_by_key.get(&n.key).copied());
        }
        let mut refs = Vec::new();
        for r in &paper.references {
            refs.push(self.corpus.find(r).ok_or_else(|| ForecastError::UnknownPaper(r.clone()))?);
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
        Ok(Self::answer(&model, "(new paper)".into(), mode, t0, raw))
    }
}
