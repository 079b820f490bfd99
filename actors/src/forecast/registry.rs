//! Versioned model artefacts: one directory per trained model, holding the MLP weights
//! (burnpack), the text model, and `model.json` with the feature list, normalisation,
//! logistic weights, training window, configuration, data fingerprint and metrics,
//! plus the full performance report. A corrupt or mismatched artefact is refused at
//! load with a clear error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cohort::CohortRank;
use super::corpus::Corpus;
use super::features::{feature_names, Normaliser};
use super::gbdt::Gbdt;
use super::linear::Logistic;
use super::metrics::Scorecard;
use super::mlp::{Mlp, MlpConfig, TrainLog};
use super::report::Report;
use super::task::Mode;
use super::text::TextModel;
use super::train::{Blend, Candidate, Forecaster, Outcome, Served, TrainOptions};
use crate::codec;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io { path: path.display().to_string(), source }
}

fn invalid(path: &Path, message: impl Into<String>) -> RegistryError {
    RegistryError::Invalid { path: path.display().to_string(), message: message.into() }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureSpec {
    pub name: String,
    pub group: String,
}

/// `model.json`: the model card.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelMeta {
    pub version: String,
    pub mode: Mode,
    pub created: String,
    pub features: Vec<FeatureSpec>,
    pub normaliser: Normaliser,
    pub logistic: Logistic,
    pub mlp: MlpConfig,
    pub mlp_training: TrainLog,
    pub served: Served,
    pub threshold: f64,
    /// Sorted standardised training `e_c182` values (early mode's rule blend).
    #[serde(default)]
    pub rule_quantiles: Vec<f32>,
    /// How the raw score becomes the served probability (absent in models trained before
    /// the cohort rank: they serve the raw score).
    #[serde(default)]
    pub cohort: Option<CohortRank>,
    pub training_window: String,
    pub validation_window: String,
    pub test_window: String,
    pub options: TrainOptions,
    pub data_fingerprint: String,
    pub rows: (usize, usize, usize),
    pub validation: Scorecard,
    pub test: Scorecard,
    /// SHA-256 of the weight and text files, checked at load.
    pub weights_sha256: String,
    pub text_sha256: String,
    /// SHA-256 of `gbdt.bin` (the tree models), when the model has any.
    #[serde(default)]
    pub gbdt_sha256: Option<String>,
    /// For a model serving the trees and the MLP blended.
    #[serde(default)]
    pub blend: Option<Blend>,
    /// Every served candidate's validation figures; the best PR-AUC serves.
    #[serde(default)]
    pub candidates: Vec<Candidate>,
}

/// A model loaded and ready to forecast.
pub struct LoadedModel {
    pub meta: ModelMeta,
    pub forecaster: Forecaster,
    pub dir: PathBuf,
}

/// A stable digest of the corpus a model was trained on: ids, dates and edges.
pub fn fingerprint(corpus: &Corpus) -> String {
    let mut h = Sha256::new();
    for p in 0..corpus.len() {
        h.update(corpus.ids[p].as_bytes());
        h.update(corpus.day[p].to_le_bytes());
        for r in &corpus.refs[p] {
            h.update(corpus.ids[*r as usize].as_bytes());
        }
    }
    hex(&h.finalize()[..16])
}

/// Bumped when training changes in a way the options and the feature list don't show
/// (3: cohort-ranked scores, trees and the blend among the candidates).
pub const PIPELINE_REVISION: u32 = 3;

/// A short digest of how a model is trained: the pipeline revision, the mode's feature
/// list and the options other than the seed. Part of the version name, so a model
/// trained differently on the same data never takes an existing model's name.
pub fn recipe(mode: Mode, options: &TrainOptions) -> String {
    let mut h = Sha256::new();
    h.update(PIPELINE_REVISION.to_le_bytes());
    for (name, group) in feature_names(mode) {
        h.update(name.as_bytes());
        h.update(group.as_bytes());
    }
    let options = TrainOptions { seed: 0, ..options.clone() };
    h.update(serde_json::to_string(&options).unwrap_or_default().as_bytes());
    hex(&h.finalize()[..2])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Writes a trained model into `root/<version>/` atomically (a temp dir renamed in place).
pub fn save(
    root: &Path,
    version: &str,
    outcome: &Outcome,
    corpus: &Corpus,
    options: &TrainOptions,
) -> Result<PathBuf, RegistryError> {
    let f = &outcome.forecaster;
    let dir = root.join(version);
    let tmp = root.join(format!(".{version}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let weights = f.mlp.to_bytes().map_err(|e| invalid(&tmp, e))?;
    let text = codec::encode(&*f.text).map_err(|e| invalid(&tmp, e.to_string()))?;
    let gbdt = if f.gbdt.is_empty() {
        None
    } else {
        Some(codec::encode(&f.gbdt).map_err(|e| invalid(&tmp, e.to_string()))?)
    };
    let meta = ModelMeta {
        version: version.to_string(),
        mode: f.mode,
        created: crate::dates::format(crate::dates::today()),
        features: f
            .feature_names
            .iter()
            .zip(&f.feature_groups)
            .map(|(n, g)| FeatureSpec { name: n.clone(), group: g.clone() })
            .collect(),
        normaliser: f.normaliser.clone(),
        logistic: f.logistic.clone(),
        mlp: f.mlp_config.clone(),
        mlp_training: outcome.mlp_log.clone(),
        served: f.served,
        threshold: f.threshold,
        rule_quantiles: f.rule_quantiles.clone(),
        cohort: f.cohort,
        training_window: format!("{}-01-01..1998-12-31", options.train_from_year),
        validation_window: "1999-01-01..1999-12-31".into(),
        test_window: "2000-01-01..2001-04-30".into(),
        options: options.clone(),
        data_fingerprint: fingerprint(corpus),
        rows: outcome.rows,
        validation: outcome.validation.clone(),
        test: outcome.test.clone(),
        weights_sha256: sha(&weights),
        text_sha256: sha(&text),
        gbdt_sha256: gbdt.as_deref().map(sha),
        candidates: outcome.candidates.clone(),
        blend: f.blend,
    };
    let write = |name: &str, bytes: &[u8]| {
        let p = tmp.join(name);
        std::fs::write(&p, bytes).map_err(io(&p))
    };
    write("mlp.bpk", &weights)?;
    write("text.bin", &text)?;
    if let Some(bytes) = &gbdt {
        write("gbdt.bin", bytes)?;
    }
    write("model.json", serde_json::to_string_pretty(&meta).unwrap_or_default().as_bytes())?;
    write("report.json", serde_json::to_string(&outcome.report).unwrap_or_default().as_bytes())?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(io(&dir))?;
    Ok(dir)
}

/// Loads and verifies a model directory.
pub fn load(dir: &Path) -> Result<LoadedModel, RegistryError> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read(&p).map_err(io(&p))
    };
    let meta_path = dir.join("model.json");
    let meta: ModelMeta = serde_json::from_slice(&read("model.json")?)
        .map_err(|e| invalid(&meta_path, format!("unreadable: {e}")))?;
    let weights = read("mlp.bpk")?;
    if sha(&weights) != meta.weights_sha256 {
        return Err(invalid(
            &dir.join("mlp.bpk"),
            "checksum mismatch: the weights file is corrupt or truncated",
        ));
    }
    let text_bytes = read("text.bin")?;
    if sha(&text_bytes) != meta.text_sha256 {
        return Err(invalid(
            &dir.join("text.bin"),
            "checksum mismatch: the text model is corrupt or truncated",
        ));
    }
    let gbdt: Vec<Gbdt> = match &meta.gbdt_sha256 {
        None => Vec::new(),
        Some(want) => {
            let path = dir.join("gbdt.bin");
            let bytes = read("gbdt.bin")?;
            if sha(&bytes) != *want {
                return Err(invalid(&path, "checksum mismatch: the tree models are corrupt or truncated"));
            }
            codec::decode(&bytes).map_err(|e| invalid(&path, e.to_string()))?
        }
    };
    if matches!(meta.served, Served::Gbdt | Served::GbdtMlp) && gbdt.is_empty() {
        return Err(invalid(&meta_path, "it serves gradient-boosted trees but has none"));
    }
    if meta.served == Served::GbdtMlp && meta.blend.is_none() {
        return Err(invalid(&meta_path, "it serves a blend but has no blend scales"));
    }
    let expected: Vec<String> = feature_names(meta.mode).iter().map(|(n, _)| n.to_string()).collect();
    let have: Vec<String> = meta.features.iter().map(|f| f.name.clone()).collect();
    if expected != have {
        return Err(invalid(&meta_path, "its feature list differs from this build's; retrain it"));
    }
    let d = have.len();
    let mlp = Mlp::from_bytes(&weights, d, meta.mlp.hidden)
        .map_err(|e| invalid(&dir.join("mlp.bpk"), e))?
        .with_calibration(meta.mlp_training.calibration);
    // Schema version 2 left the text model's layout as it was: version-1 artefacts load.
    let mut text: TextModel = match codec::decode(&text_bytes) {
        Err(codec::CodecError::UnknownVersion { found: 1 }) => codec::decode_version(&text_bytes, 1),
        other => other,
    }
    .map_err(|e| invalid(&dir.join("text.bin"), e.to_string()))?;
    text.reindex();
    let forecaster = Forecaster {
        mode: meta.mode,
        feature_names: have,
        feature_groups: meta.features.iter().map(|f| f.group.clone()).collect(),
        normaliser: meta.normaliser.clone(),
        logistic: meta.logistic.clone(),
        mlp,
        mlp_config: meta.mlp.clone(),
        served: meta.served,
        threshold: meta.threshold,
        text: Arc::new(text),
        rule_quantiles: meta.rule_quantiles.clone(),
        gbdt,
        blend: meta.blend,
        cohort: meta.cohort,
    };
    Ok(LoadedModel { meta, forecaster, dir: dir.to_path_buf() })
}

/// The stored report of a model directory.
pub fn load_report(dir: &Path) -> Result<Report, RegistryError> {
    let p = dir.join("report.json");
    let bytes = std::fs::read(&p).map_err(io(&p))?;
    serde_json::from_slice(&bytes).map_err(|e| invalid(&p, format!("unreadable: {e}")))
}

/// Model directories under `root`, in name order.
pub fn list(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("model.json").is_file()).collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}
