//! `citecast train` and `citecast evaluate`: reproducible from the bundled data alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use citecast_actors::forecast::corpus::Corpus;
use citecast_actors::forecast::registry;
use citecast_actors::forecast::task::{Mode, TaskSpec};
use citecast_actors::forecast::train::{self, TrainOptions};
use citecast_actors::ingest;
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

fn load_corpus(bundled: &Path) -> Result<Arc<Corpus>, TrainingError> {
    let started = Instant::now();
    let corpus = Corpus::from_files(&ingest::bundled_files(bundled)).map_err(TrainingError::from_display)?;
    tracing::info!(papers = corpus.len(), seconds = started.elapsed().as_secs(), "corpus loaded");
    Ok(Arc::new(corpus))
}

/// The version name: mode, data fingerprint, training recipe and seed, so retraining the
/// same data the same way reproduces the same version, and anything else gets a new one.
pub fn version_name(mode: Mode, corpus: &Corpus, opts: &TrainOptions) -> String {
    format!(
        "{}-{}-{}-s{}",
        mode.as_str(),
        &registry::fingerprint(corpus)[..8],
        registry::recipe(mode, opts, &TaskSpec::bundled()),
        opts.seed
    )
}

pub fn train(
    bundled: &Path,
    models: &Path,
    modes: &[Mode],
    opts: &TrainOptions,
) -> Result<serde_json::Value, TrainingError> {
    let corpus = load_corpus(bundled)?;
    std::fs::create_dir_all(models)
        .map_err(|e| TrainingError::Io { path: models.display().to_string(), source: e })?;
    let mut out = Vec::new();
    for &mode in modes {
        let started = Instant::now();
        let version = version_name(mode, &corpus, opts);
        // The bundled data's task (the shipped models' splits and windows).
        let task = TaskSpec::bundled();
        let outcome =
            train::train(corpus.clone(), &task, mode, &version, opts).map_err(TrainingError::from_display)?;
        let dir = registry::save(models, &version, &outcome, &corpus, opts, &task, None)
            .map_err(TrainingError::from_display)?;
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(%version, seconds, "trained");
        out.push(json!({
            "version": version,
            "dir": dir,
            "seconds": seconds,
            "served": outcome.forecaster.served,
            "threshold": outcome.forecaster.threshold,
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

pub fn evaluate(bundled: &Path, model_dirs: &[PathBuf]) -> Result<serde_json::Value, TrainingError> {
    let corpus = load_corpus(bundled)?;
    let mut out = Vec::new();
    for dir in model_dirs {
        let model = registry::load(dir).map_err(TrainingError::from_display)?;
        let opts = model.meta.options.clone();
        let (validation, test, report) = train::evaluate(
            corpus.clone(),
            &registry::task_of(&model.meta),
            &model.forecaster,
            &model.meta.version,
            &opts,
        );
        let path = dir.join("report.json");
        registry::write_report(dir, &report).map_err(TrainingError::from_display)?;
        out.push(json!({
            "version": model.meta.version,
            "data_fingerprint_matches": registry::fingerprint(&corpus) == model.meta.data_fingerprint,
            "validation": validation,
            "test": test,
            "beats_every_baseline": report.beats_every_baseline,
            "headline": report.headline(),
            "significance": report.significance,
            "report": path,
        }));
    }
    Ok(json!({ "models": out }))
}
