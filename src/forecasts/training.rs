//! `citecast train` and `citecast evaluate`: from the bundled data (reproducing the shipped
//! models), from corpus files, or from what the live store holds for one collection
//! (splits derived from the data; through the running server when there is one).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use citecast_actors::forecast::backtest;
use citecast_actors::forecast::corpus::Corpus;
use citecast_actors::forecast::registry;
use citecast_actors::forecast::task::{Mode, TaskOptions, TaskSpec};
use citecast_actors::forecast::train::{self, TrainOptions};
use citecast_actors::ingest;
use citecast_actors::store::DEFAULT_COLLECTION;
use serde_json::json;

use super::error::TrainingError;

/// The shipped models: `models/` of the source tree (or of the working directory).
pub fn default_models_dir() -> PathBuf {
    let local = PathBuf::from("models");
    if local.is_dir() {
        local
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
    }
}

/// Where the training data comes from, and so which task it is trained for.
pub enum Data {
    /// The bundled hep-th files: the fixed task the shipped models were trained for.
    Bundled(PathBuf),
    /// Corpus files as `citecast ingest` takes them (citecast format): splits from the data.
    Files(Vec<PathBuf>),
    /// A collection of the live store, already read: splits from the data.
    Corpus { corpus: Arc<Corpus>, collection: String },
}

/// A corpus read for training or evaluation, and its collection.
pub struct Loaded {
    pub corpus: Arc<Corpus>,
    pub collection: String,
    /// The bundled files: trained for the fixed task of the shipped models.
    pub bundled: bool,
}

fn load_files(paths: &[PathBuf]) -> Result<Arc<Corpus>, TrainingError> {
    let started = Instant::now();
    let corpus = Corpus::from_files(paths).map_err(TrainingError::from_display)?;
    tracing::info!(papers = corpus.len(), seconds = started.elapsed().as_secs(), "corpus loaded");
    Ok(Arc::new(corpus))
}

/// Reads the data.
pub fn load(data: Data) -> Result<Loaded, TrainingError> {
    let (corpus, collection, bundled) = match data {
        Data::Bundled(dir) => {
            (load_files(&ingest::bundled_files(&dir))?, DEFAULT_COLLECTION.to_string(), true)
        }
        Data::Files(paths) => (load_files(&paths)?, DEFAULT_COLLECTION.to_string(), false),
        Data::Corpus { corpus, collection } => (corpus, collection, false),
    };
    if corpus.is_empty() {
        return Err(TrainingError::Data(format!("collection '{collection}' holds no papers")));
    }
    Ok(Loaded { corpus, collection, bundled })
}

/// Backtest cutoffs `citecast train` and `/admin/train` run unless told: two for a task
/// derived from the data (the report then shows how stable the model is across periods),
/// none for the bundled task (its shipped report has none).
pub fn default_backtests(l: &Loaded) -> usize {
    if l.bundled {
        0
    } else {
        2
    }
}

/// The modes `--mode` / `"mode"` names: `at_publication`, `early` or `both`.
pub fn modes_of(mode: &str) -> Result<Vec<Mode>, String> {
    match mode {
        "both" => Ok(Mode::ALL.to_vec()),
        m => Mode::parse(m)
            .map(|m| vec![m])
            .ok_or_else(|| format!("mode must be at_publication, early or both, not '{m}'")),
    }
}

/// The options of a derived task as an operator gives them (`train_from`: YYYY-MM-DD).
pub fn task_options(
    label_months: i32,
    early_months: i32,
    test_months: i32,
    validation_months: i32,
    train_from: Option<&str>,
) -> Result<TaskOptions, String> {
    let train_from = match train_from {
        Some(d) => Some(
            citecast_actors::dates::parse(d)
                .ok_or_else(|| format!("train_from must be a date, YYYY-MM-DD, not '{d}'"))?,
        ),
        None => None,
    };
    Ok(TaskOptions {
        label_months,
        early_months,
        test_months,
        validation_months,
        train_from,
        ..TaskOptions::default()
    })
}

/// The task to train for: the bundled one for the bundled data, else derived from the
/// data (a clear error when the data is too thin for it).
pub fn task_for(l: &Loaded, options: &TaskOptions) -> Result<TaskSpec, TrainingError> {
    if l.bundled {
        return Ok(TaskSpec::bundled());
    }
    TaskSpec::derive(&l.corpus, options).map_err(|e| TrainingError::Data(e.to_string()))
}

/// The directories of model `versions` under `roots` (the first found wins).
pub fn find_versions(roots: &[PathBuf], versions: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    for v in versions {
        let dir = roots
            .iter()
            .flat_map(|r| registry::list(r))
            .find(|d| registry::load(d).is_ok_and(|m| m.meta.version == *v))
            .ok_or_else(|| {
                format!(
                    "no model version '{v}' under {}",
                    roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
                )
            })?;
        found.push(dir);
    }
    Ok(found)
}

/// The collection a model records: `None` for the default one (as models before
/// collections did).
fn collection_of(p: &Loaded) -> Option<&str> {
    (p.collection != DEFAULT_COLLECTION).then_some(p.collection.as_str())
}

/// The version name: mode, collection (other than the default), data fingerprint,
/// training recipe (which digests a derived task too) and seed, so retraining the same data the same way
/// reproduces the same version, and anything else gets a new one.
pub fn version_name(mode: Mode, p: &Loaded, task: &TaskSpec, opts: &TrainOptions) -> String {
    let mut name = mode.as_str().to_string();
    if p.collection != DEFAULT_COLLECTION {
        name.push('-');
        name.push_str(&p.collection);
    }
    name.push('-');
    name.push_str(&registry::fingerprint(&p.corpus)[..8]);
    format!("{name}-{}-s{}", registry::recipe(mode, opts, task), opts.seed)
}

/// Trains `modes` on the prepared data and writes each model (sealed) under `models`;
/// with `backtest_cutoffs` > 0 each is also backtested (see [`evaluate`]).
pub fn train(
    p: &Loaded,
    task: &TaskSpec,
    models: &Path,
    modes: &[Mode],
    opts: &TrainOptions,
    backtest_cutoffs: usize,
) -> Result<serde_json::Value, TrainingError> {
    std::fs::create_dir_all(models)
        .map_err(|e| TrainingError::Io { path: models.display().to_string(), source: e })?;
    let mut out = Vec::new();
    for &mode in modes {
        let started = Instant::now();
        let version = version_name(mode, p, task, opts);
        let mut outcome = train::train(p.corpus.clone(), task, mode, &version, opts)
            .map_err(|e| TrainingError::Data(format!("{} model not trained: {e}", mode.as_str())))?;
        if *task != TaskSpec::bundled() {
            outcome.report.task = Some(task.describe());
        }
        let dir = registry::save(models, &version, &outcome, &p.corpus, opts, task, collection_of(p))
            .map_err(TrainingError::from_display)?;
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(%version, seconds, "trained");
        // A backtest that cannot run (too little data before an early cutoff) does not
        // undo the model: the reason is reported instead.
        let backtested = if backtest_cutoffs > 0 {
            match attach_backtest(&dir, p, task, mode, opts, backtest_cutoffs) {
                Ok(b) => serde_json::to_value(&b).unwrap_or_default(),
                Err(e) => json!({ "error": e.to_string() }),
            }
        } else {
            serde_json::Value::Null
        };
        out.push(json!({
            "backtest": backtested,
            "version": version,
            "mode": mode,
            "collection": p.collection,
            "task": task_json(task),
            "dir": dir,
            "seconds": seconds,
            "served": outcome.forecaster.served,
            "threshold": outcome.forecaster.threshold,
            "rows": { "train": outcome.rows.0, "validation": outcome.rows.1, "test": outcome.rows.2 },
            "validation": outcome.validation,
            "test": outcome.test,
            "beats_every_baseline": outcome.report.beats_every_baseline,
            "headline": outcome.report.headline(),
            "baselines": outcome.report.baselines.iter().map(|b| json!({"name": b.name, "roc_auc": b.test.roc_auc, "pr_auc": b.test.pr_auc, "f1": b.test.f1})).collect::<Vec<_>>(),
            "significance": outcome.report.significance,
        }));
    }
    Ok(json!({ "models": out }))
}

/// The task as people read it: resolution, windows, and the three periods as dates.
pub fn task_json(task: &TaskSpec) -> serde_json::Value {
    use citecast_actors::dates::format;
    use citecast_actors::forecast::task::Period;
    let period = |p: &Period| json!([format(p.from), format(p.to)]);
    json!({
        "description": task.describe(),
        "resolution": task.resolution,
        "label_window": task.label_window,
        "early_wait": task.early_wait,
        "cohort_days": task.cohort_days,
        "train": period(&task.train),
        "validation": period(&task.validation),
        "test": period(&task.test),
        "last_labelled": format(task.last_labelled),
    })
}

/// Re-evaluates models on the prepared data, each on the task it was trained for (its
/// collection's data must be the data given), rewriting their reports; with `backtest`
/// > 0, also a rolling-origin backtest over that many earlier cutoffs.
pub fn evaluate(
    p: &Loaded,
    model_dirs: &[PathBuf],
    backtest_cutoffs: usize,
) -> Result<serde_json::Value, TrainingError> {
    let mut out = Vec::new();
    for dir in model_dirs {
        let model = registry::load(dir).map_err(TrainingError::from_display)?;
        let collection = citecast_actors::forecast::service::model_collection(&model.meta);
        if collection != p.collection {
            return Err(TrainingError::Data(format!(
                "model {} was trained on collection '{collection}', not '{}'",
                model.meta.version, p.collection
            )));
        }
        let task = registry::task_of(&model.meta);
        let opts = model.meta.options.clone();
        let (validation, test, mut report) =
            train::evaluate(p.corpus.clone(), &task, &model.forecaster, &model.meta.version, &opts);
        if task != TaskSpec::bundled() {
            report.task = Some(task.describe());
        }
        // A re-evaluation keeps what the retraining job and earlier backtests recorded.
        if let Ok(old) = registry::load_report(dir) {
            report.comparison = old.comparison;
            report.backtest = old.backtest;
        }
        let path = dir.join("report.json");
        registry::write_report(dir, &report).map_err(TrainingError::from_display)?;
        let mut entry = json!({
            "version": model.meta.version,
            "collection": collection,
            "task": task_json(&task),
            "data_fingerprint_matches": registry::fingerprint(&p.corpus) == model.meta.data_fingerprint,
            "validation": validation,
            "test": test,
            "beats_every_baseline": report.beats_every_baseline,
            "headline": report.headline(),
            "significance": report.significance,
            "report": path,
        });
        if backtest_cutoffs > 0 {
            let b = attach_backtest(dir, p, &task, model.meta.mode, &opts, backtest_cutoffs)?;
            entry["backtest"] = serde_json::to_value(&b).unwrap_or_default();
        }
        out.push(entry);
    }
    Ok(json!({ "models": out }))
}

/// Backtests a saved model's recipe on `p` over `cutoffs` earlier cutoffs of `task` and
/// keeps the result in its sealed report (shown on its report page).
fn attach_backtest(
    dir: &Path,
    p: &Loaded,
    task: &TaskSpec,
    mode: Mode,
    opts: &TrainOptions,
    cutoffs: usize,
) -> Result<backtest::Backtest, TrainingError> {
    let started = Instant::now();
    let b = backtest::backtest(&p.corpus, task, mode, opts, cutoffs)
        .map_err(|e| TrainingError::Data(format!("backtest: {e}")))?;
    tracing::info!(dir = %dir.display(), seconds = started.elapsed().as_secs(), "backtested");
    let mut report = registry::load_report(dir).map_err(TrainingError::from_display)?;
    report.backtest = Some(b.clone());
    registry::write_report(dir, &report).map_err(TrainingError::from_display)?;
    Ok(b)
}

pub use citecast_actors::forecast::report::Comparison;

/// Resamples of the paired bootstrap a comparison makes.
const COMPARISON_RESAMPLES: usize = 1000;

/// Compares the candidate in `candidate_dir` with the model in `serving_dir` on the
/// candidate's validation period of `l`, each by the probabilities it serves.
pub fn compare(
    l: &Loaded,
    task: &TaskSpec,
    candidate_dir: &Path,
    serving_dir: &Path,
) -> Result<Comparison, TrainingError> {
    use citecast_actors::forecast::metrics::{paired_bootstrap_auc, roc_auc};
    use citecast_actors::forecast::task::Split;
    let candidate = registry::load(candidate_dir).map_err(TrainingError::from_display)?;
    let serving = registry::load(serving_dir).map_err(TrainingError::from_display)?;
    let scored = |f: &citecast_actors::forecast::train::Forecaster| {
        train::served_scores(l.corpus.clone(), task, f, Split::Validation)
    };
    let c = scored(&candidate.forecaster);
    let s = scored(&serving.forecaster);
    let significance =
        paired_bootstrap_auc(&c.probabilities, &s.probabilities, &c.labels, COMPARISON_RESAMPLES, 17);
    let significant =
        significance.gain > 0.0 && significance.p_value < citecast_actors::forecast::report::ALPHA;
    let decision = if significant {
        format!(
            "better by {:.4} ROC-AUC (p = {:.3}): a canary starts",
            significance.gain, significance.p_value
        )
    } else {
        format!(
            "not significantly better (gain {:.4}, p = {:.3}): kept as a candidate, no rollout",
            significance.gain, significance.p_value
        )
    };
    let citecast_actors::forecast::task::Period { from, to } = task.validation;
    Ok(Comparison {
        candidate: candidate.meta.version.clone(),
        serving: serving.meta.version.clone(),
        mode: candidate.meta.mode,
        validation_from: citecast_actors::dates::format(from),
        validation_to: citecast_actors::dates::format(to),
        papers: c.labels.len(),
        positives: c.labels.iter().filter(|y| **y).count(),
        candidate_roc_auc: roc_auc(&c.probabilities, &c.labels),
        serving_roc_auc: roc_auc(&s.probabilities, &s.labels),
        significance,
        significant,
        decision,
    })
}

/// Keeps the comparison in the candidate's sealed report (shown on its report page).
pub fn save_comparison(dir: &Path, c: &Comparison) -> Result<(), TrainingError> {
    let mut report = registry::load_report(dir).map_err(TrainingError::from_display)?;
    report.comparison = Some(c.clone());
    registry::write_report(dir, &report).map_err(TrainingError::from_display)
}
