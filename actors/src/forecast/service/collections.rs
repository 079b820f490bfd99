//! Corpora side by side: one [`ForecastService`] per collection, each with its own corpus
//! snapshot, cohort tables, labels, models, active choice and rollouts. A paper is
//! forecast by the service of the collection it belongs to, so ingesting a second field
//! leaves the first one's forecasts exactly as they were, and a model is only ever
//! served for the collection it was trained and validated on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::store::DEFAULT_COLLECTION;

/// The collection a model was trained on (`default` for models that do not say).
pub fn model_collection(meta: &registry::ModelMeta) -> &str {
    meta.collection.as_deref().unwrap_or(DEFAULT_COLLECTION)
}

/// Every collection's forecast service.
pub struct Collections {
    services: BTreeMap<String, ForecastService>,
    dirs: Vec<PathBuf>,
    /// Where each collection keeps its active choice and rollouts (`None`: not kept).
    state_dir: Option<PathBuf>,
}

/// The state files of a collection: the default collection keeps the names earlier
/// builds used.
fn state_files(dir: &Path, collection: &str) -> (PathBuf, PathBuf) {
    if collection == DEFAULT_COLLECTION {
        (dir.join("active.json"), dir.join("rollouts.json"))
    } else {
        (dir.join(format!("active-{collection}.json")), dir.join(format!("rollouts-{collection}.json")))
    }
}

impl Collections {
    /// Loads every model under `dirs` into the service of its collection. The default
    /// collection always has a service (it may hold no models).
    pub fn load(dirs: &[&Path], state_dir: Option<&Path>) -> (Collections, Vec<String>) {
        let mut c = Collections {
            services: BTreeMap::new(),
            dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
            state_dir: state_dir.map(Path::to_path_buf),
        };
        let (all, errors) = ForecastService::load(dirs);
        let mut by_collection: BTreeMap<String, Vec<Arc<LoadedModel>>> = BTreeMap::new();
        by_collection.entry(DEFAULT_COLLECTION.to_string()).or_default();
        for m in all.models {
            by_collection.entry(model_collection(&m.meta).to_string()).or_default().push(m);
        }
        for (name, models) in by_collection {
            let service = c.new_service(&name, models);
            c.services.insert(name, service);
        }
        (c, errors)
    }

    fn new_service(&self, collection: &str, models: Vec<Arc<LoadedModel>>) -> ForecastService {
        let mut s = ForecastService::with_models(models, &self.dirs, collection);
        if let Some(dir) = &self.state_dir {
            let (active, rollouts) = state_files(dir, collection);
            s.persist_active_in(active);
            s.persist_rollouts_in(rollouts, dates::now_secs());
            s.keep_cohort_scores_in(dir.join("cohort-scores"));
        }
        s
    }

    /// The names of the collections with a service, default first.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.services.keys().cloned().collect();
        names.sort_by_key(|n| (n != DEFAULT_COLLECTION, n.clone()));
        names
    }

    /// Gives each collection its corpus snapshot; a collection new to the store gets a
    /// service without models (it forecasts once a model is trained for it).
    pub fn set_corpora(&mut self, corpora: Vec<(String, Arc<Corpus>)>) {
        for (name, corpus) in corpora {
            if !self.services.contains_key(&name) {
                let s = self.new_service(&name, Vec::new());
                self.services.insert(name.clone(), s);
            }
            if let Some(s) = self.services.get_mut(&name) {
                s.set_corpus(corpus);
            }
        }
    }

    pub fn get(&self, collection: &str) -> Option<&ForecastService> {
        self.services.get(collection)
    }

    fn unknown(&self, name: &str) -> ForecastError {
        ForecastError::UnknownCollection { name: name.to_string(), names: self.names().join(", ") }
    }

    /// The service of `collection`, or a clear refusal naming the collections there are.
    pub fn service(&mut self, collection: &str) -> Result<&mut ForecastService, ForecastError> {
        if !self.services.contains_key(collection) {
            return Err(self.unknown(collection));
        }
        Ok(self.services.get_mut(collection).expect("checked above"))
    }

    /// The collection whose corpus holds paper `id` (canonical or alias), limited to
    /// `collection` when given; the default collection is asked first.
    pub fn collection_of_paper(&self, id: &str, collection: Option<&str>) -> Result<String, ForecastError> {
        if let Some(c) = collection {
            let s = self.services.get(c).ok_or_else(|| self.unknown(c))?;
            return match s.corpus().find(id) {
                Some(_) => Ok(c.to_string()),
                None => Err(ForecastError::UnknownPaper(id.to_string())),
            };
        }
        self.names()
            .into_iter()
            .find(|n| self.services[n].corpus().find(id).is_some())
            .ok_or_else(|| ForecastError::UnknownPaper(id.to_string()))
    }

    /// The service holding model `version`.
    pub fn service_of_version(&mut self, version: &str) -> Result<&mut ForecastService, ForecastError> {
        let name = self
            .services
            .iter()
            .find(|(_, s)| s.model(version).is_some())
            .map(|(n, _)| n.clone())
            .ok_or_else(|| ForecastError::Invalid(format!("no loaded model '{version}'")))?;
        Ok(self.services.get_mut(&name).expect("found above"))
    }

    pub fn model(&self, version: &str) -> Option<&Arc<LoadedModel>> {
        self.services.values().find_map(|s| s.model(version))
    }

    /// (version, directory) of every loaded model.
    pub fn model_dirs(&self) -> Vec<(String, PathBuf)> {
        self.services
            .values()
            .flat_map(|s| s.models.iter().map(|m| (m.meta.version.clone(), m.dir.clone())))
            .collect()
    }

    pub fn summaries(&self) -> Vec<ModelSummary> {
        self.names().iter().flat_map(|n| self.services[n].summaries()).collect()
    }

    /// Running rollouts of every collection, for request routing. A mode runs at most
    /// one rollout across collections (see [`Collections::start_rollout`]).
    pub fn routes(&self) -> Vec<(Mode, String, u8)> {
        self.services.values().flat_map(|s| s.routes()).collect()
    }

    /// Starts a rollout in the collection of its candidate. The HTTP layer routes callers
    /// by mode, so a mode already running a rollout in another collection is refused.
    pub fn start_rollout(&mut self, spec: RolloutSpec) -> Result<rollout::Rollout, ForecastError> {
        let candidate = self
            .model(&spec.candidate)
            .cloned()
            .ok_or_else(|| ForecastError::Invalid(format!("no loaded model '{}'", spec.candidate)))?;
        let collection = model_collection(&candidate.meta).to_string();
        if let Some((other, r)) = self
            .services
            .iter()
            .filter(|(n, _)| **n != collection)
            .find_map(|(n, s)| s.rollouts().get(candidate.meta.mode).map(|r| (n.clone(), r.clone())))
        {
            return Err(ForecastError::Invalid(format!(
                "rollout {} of collection '{other}' is running in {} mode; finish or stop it first",
                r.id,
                candidate.meta.mode.as_str()
            )));
        }
        self.service(&collection)?.start_rollout(spec)
    }

    /// The service running a rollout in `mode` (the default collection when none does,
    /// so the refusal names the mode as before).
    pub fn service_with_rollout(&mut self, mode: Mode) -> &mut ForecastService {
        let name = self
            .services
            .iter()
            .find(|(_, s)| s.rollouts().get(mode).is_some())
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| DEFAULT_COLLECTION.to_string());
        self.services.get_mut(&name).expect("the default collection always has a service")
    }

    pub fn tick_rollouts(&mut self, now: i64) -> Vec<Transition> {
        self.services.values_mut().flat_map(|s| s.tick_rollouts(now)).collect()
    }

    /// Every collection's rollouts: running ones by mode, finished ones newest last.
    pub fn rollouts(&self) -> Rollouts {
        let mut all = Rollouts::default();
        for s in self.services.values() {
            let r = s.rollouts();
            for (mode, running) in &r.running {
                all.running.insert(*mode, running.clone());
            }
            all.finished.extend(r.finished.iter().cloned());
        }
        all.finished.sort_by_key(|r| r.started_at);
        all
    }

    /// The service holding rollout `id`.
    pub fn service_of_rollout(&mut self, id: &str) -> Option<&mut ForecastService> {
        self.services.values_mut().find(|s| s.rollouts().find(id).is_some())
    }

    /// One bounded warm-up step over the collections, default first; true when all are warm.
    pub fn warm_step(&mut self, papers: usize) -> bool {
        for name in self.names() {
            if let Some(s) = self.services.get_mut(&name) {
                if !s.warm_step(papers) {
                    return false;
                }
            }
        }
        true
    }

    pub fn warm(&mut self) {
        while !self.warm_step(usize::MAX) {}
    }

    /// Drift per mode: the first collection (default first) with a judged drift for it.
    pub fn drift(&mut self) -> Vec<(Mode, Option<f64>)> {
        let mut out: Vec<(Mode, Option<f64>)> = Vec::new();
        for name in self.names() {
            let Some(s) = self.services.get_mut(&name) else { continue };
            for (mode, psi) in s.drift() {
                match out.iter_mut().find(|(m, _)| *m == mode) {
                    Some(slot) if slot.1.is_none() => slot.1 = psi,
                    Some(_) => {}
                    None => out.push((mode, psi)),
                }
            }
        }
        out
    }

    /// Loads model directories that appeared since the start into their collections'
    /// services (as candidates: a mode that already has a serving model keeps it).
    pub fn rescan(&mut self) -> (Vec<String>, Vec<String>) {
        let (mut loaded, mut errors) = (Vec::new(), Vec::new());
        let known: Vec<PathBuf> = self.model_dirs().into_iter().map(|(_, d)| d).collect();
        for root in self.dirs.clone() {
            for dir in registry::list(&root) {
                if known.contains(&dir) {
                    continue;
                }
                match registry::load(&dir) {
                    Ok(m) if self.model(&m.meta.version).is_some() => errors.push(format!(
                        "{}: version {} is already loaded",
                        dir.display(),
                        m.meta.version
                    )),
                    Ok(m) => {
                        let name = model_collection(&m.meta).to_string();
                        if !self.services.contains_key(&name) {
                            let s = self.new_service(&name, Vec::new());
                            self.services.insert(name.clone(), s);
                        }
                        loaded.push(m.meta.version.clone());
                        self.services.get_mut(&name).expect("inserted above").add_model(Arc::new(m), false);
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
        (loaded, errors)
    }
}

impl ForecastService {
    /// A service over `models` (all of one collection) with the first model of each mode
    /// active; `dirs` are where its rescans look.
    fn with_models(models: Vec<Arc<LoadedModel>>, dirs: &[PathBuf], collection: &str) -> ForecastService {
        let (mut s, _) = ForecastService::load(&[]);
        s.dirs = dirs.to_vec();
        s.collection = collection.to_string();
        for m in models {
            s.add_model(m, true);
        }
        s
    }

    /// Adds a loaded model. At load (`newest_serves`) the newest of each mode serves,
    /// as [`ForecastService::load`] does; later (a rescan) it is a candidate, except for
    /// a mode without any model, which starts serving it.
    fn add_model(&mut self, m: Arc<LoadedModel>, newest_serves: bool) {
        let mode = m.meta.mode;
        self.models.push(m);
        let last = self.models.len() - 1;
        if newest_serves {
            self.active.insert(mode, last);
        } else {
            self.active.entry(mode).or_insert(last);
        }
    }

    /// The collection this service forecasts.
    pub fn collection(&self) -> &str {
        &self.collection
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::rollout::{Guards, Strategy};
    use crate::forecast::task::{synthetic, TaskOptions};
    use crate::forecast::train::{self, TrainOptions};

    /// A quick at-publication model of `corpus`, saved under `root` for `collection`.
    fn model_for(root: &Path, corpus: &Arc<Corpus>, collection: Option<&str>, version: &str) {
        let spec = TaskSpec::derive(corpus, &TaskOptions::default()).unwrap();
        let opts = TrainOptions { bootstrap_resamples: 20, ..TrainOptions::quick() };
        let outcome = train::train(corpus.clone(), &spec, Mode::AtPublication, version, &opts).unwrap();
        registry::save(root, version, &outcome, corpus, &opts, &spec, collection).unwrap();
    }

    #[test]
    fn each_collection_is_forecast_by_its_own_model_and_rollouts_do_not_cross() {
        let day = |y, m, d| dates::from_ymd(y, m, d);
        let a = Arc::new(synthetic::day_dated(day(1990, 1, 1), day(2001, 12, 31), 70, 5));
        let b = Arc::new(synthetic::year_only(1988..=2001, 90, 7));
        let root = tempfile::tempdir().unwrap();
        model_for(root.path(), &a, None, "at_publication-a1");
        model_for(root.path(), &a, None, "at_publication-a2");
        model_for(root.path(), &b, Some("field-b"), "at_publication-b1");
        let (mut c, errors) = Collections::load(&[root.path()], None);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.names(), vec!["default".to_string(), "field-b".to_string()]);
        c.set_corpora(vec![("default".into(), a.clone()), ("field-b".into(), b.clone())]);

        // Papers are found in their own collection and answered by its model.
        let pa = a.ids[a.len() / 2].clone();
        // (The synthetic corpora number their ids alike: take one only `b` has, as ids
        // are unique across the collections of a store.)
        let pb = b.ids.iter().rev().find(|id| a.find(id).is_none()).unwrap().clone();
        assert_eq!(c.collection_of_paper(&pa, None).unwrap(), "default");
        assert_eq!(c.collection_of_paper(&pb, None).unwrap(), "field-b");
        assert!(matches!(c.collection_of_paper(&pb, Some("default")), Err(ForecastError::UnknownPaper(_))));
        let err = c.collection_of_paper(&pa, Some("nope")).unwrap_err();
        assert!(err.to_string().contains("collections: default, field-b"), "{err}");
        let fb = c.service("field-b").unwrap().forecast(&pb, Mode::AtPublication).unwrap();
        assert_eq!(fb.model_version, "at_publication-b1");
        assert!(fb.data_complete_until.is_some());
        let fa = c.service("default").unwrap().forecast(&pa, Mode::AtPublication).unwrap();
        assert!(fa.model_version.starts_with("at_publication-a"));
        // Summaries name each model's collection; promotion stays inside it.
        let summaries = c.summaries();
        assert!(summaries
            .iter()
            .any(|s| s.version == "at_publication-b1" && s.collection == "field-b" && s.active));
        assert_eq!(c.service_of_version("at_publication-b1").unwrap().collection(), "field-b");

        // A rollout runs in its candidate's collection; the same mode elsewhere waits.
        let active_a =
            c.service("default").unwrap().active(Mode::AtPublication).unwrap().meta.version.clone();
        let candidate =
            if active_a == "at_publication-a1" { "at_publication-a2" } else { "at_publication-a1" };
        let spec = |candidate: &str| RolloutSpec {
            candidate: candidate.into(),
            strategy: Strategy::Canary { stage: 0, advance_after_secs: None },
            guards: Guards::default(),
        };
        let r = c.start_rollout(spec(candidate)).unwrap();
        assert_eq!(r.control, active_a);
        assert_eq!(c.routes().len(), 1);
        model_for(root.path(), &b, Some("field-b"), "at_publication-b2");
        let (loaded, refused) = c.rescan();
        assert_eq!((loaded, refused), (vec!["at_publication-b2".to_string()], Vec::<String>::new()));
        // Loaded as a candidate: b1 still serves field-b.
        let still = c.service("field-b").unwrap().active(Mode::AtPublication).unwrap().meta.version.clone();
        assert_eq!(still, "at_publication-b1");
        let refused = c.start_rollout(spec("at_publication-b2")).unwrap_err();
        assert!(refused.to_string().contains("collection 'default'"), "{refused}");
        assert!(c.rollouts().running.contains_key(&Mode::AtPublication));
        assert!(c.service_with_rollout(Mode::AtPublication).stop_rollout(Mode::AtPublication).is_ok());
        assert!(c.start_rollout(spec("at_publication-b2")).is_ok());
    }

    #[test]
    fn a_restart_on_unchanged_data_reads_the_cohort_scores_instead_of_scoring() {
        let day = |y, m, d| dates::from_ymd(y, m, d);
        let a = Arc::new(synthetic::day_dated(day(1990, 1, 1), day(2001, 12, 31), 70, 5));
        let models = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        model_for(models.path(), &a, None, "at_publication-a1");
        let start = |corpus: &Arc<Corpus>| {
            let (mut c, errors) = Collections::load(&[models.path()], Some(state.path()));
            assert!(errors.is_empty(), "{errors:?}");
            c.set_corpora(vec![("default".into(), corpus.clone())]);
            c
        };
        let kept = state.path().join("cohort-scores/default--at_publication-a1.scores");
        let mut first = start(&a);
        first.warm();
        let saved = std::fs::metadata(&kept).expect("the warm-up kept its table").modified().unwrap();
        let ids: Vec<String> = (0..a.len()).step_by(37).map(|p| a.ids[p].clone()).collect();
        let before: Vec<f64> = ids
            .iter()
            .map(|id| {
                first.service("default").unwrap().forecast(id, Mode::AtPublication).unwrap().probability
            })
            .collect();

        // The same data again: the table is read back, forecasts are the same to the bit,
        // and the file is not rewritten.
        let mut second = start(&Arc::new(synthetic::day_dated(day(1990, 1, 1), day(2001, 12, 31), 70, 5)));
        let s = second.service("default").unwrap();
        let model = s.active(Mode::AtPublication).unwrap();
        assert!(!s.cohort_table(&model).iter().all(|v| v.is_nan()), "read from disk, not empty");
        second.warm();
        for (id, p) in ids.iter().zip(&before) {
            let f = second.service("default").unwrap().forecast(id, Mode::AtPublication).unwrap();
            assert_eq!(f.probability.to_bits(), p.to_bits(), "{id}");
        }
        assert_eq!(std::fs::metadata(&kept).unwrap().modified().unwrap(), saved);

        // Other data (one paper fewer): a miss, scored afresh.
        let other = Arc::new(a.truncated(a.day[a.len() - 2]));
        let mut third = start(&other);
        let s = third.service("default").unwrap();
        let model = s.active(Mode::AtPublication).unwrap();
        assert!(s.cohort_table(&model).iter().all(|v| v.is_nan()), "not another corpus's table");
    }
}
