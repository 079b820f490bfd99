//! Versioned model artefacts: one directory per trained model, holding the MLP weights
//! (burnpack), the text model, and `model.json` with the feature list, normalisation,
//! logistic weights, training window, configuration, data fingerprint and metrics,
//! plus the full performance report. Every file of the directory is listed with its
//! SHA-256 in `SHA256SUMS` (the `sha256sum` format, so `sha256sum -c SHA256SUMS` checks
//! it by hand too), written by training or by `citecast models seal`; at load a missing,
//! extra or changed file is refused naming it, and the shapes of the parts are
//! cross-checked (normaliser and logistic weights against the feature list, tree splits
//! against the feature count, the network's layer widths).

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
use super::task::{Mode, TaskSpec};
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
    /// The task the model was trained and judged for (absent in models saved before
    /// tasks were derived from the data: they were made for [`TaskSpec::bundled`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskSpec>,
    /// The collection of papers the model was trained on (`None`: the default one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
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

/// The task a model serves: the one recorded in its card, or for models saved without
/// one the bundled task they were made for.
pub fn task_of(meta: &ModelMeta) -> TaskSpec {
    meta.task.clone().unwrap_or_else(TaskSpec::bundled)
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
/// list, the options other than the seed and the task (its windows and splits; the
/// bundled task adds nothing, so its models keep the names they had). Part of the
/// version name, so a model trained differently on the same data never takes an
/// existing model's name.
pub fn recipe(mode: Mode, options: &TrainOptions, task: &TaskSpec) -> String {
    let mut h = Sha256::new();
    h.update(PIPELINE_REVISION.to_le_bytes());
    for (name, group) in feature_names(mode) {
        h.update(name.as_bytes());
        h.update(group.as_bytes());
    }
    let options = TrainOptions { seed: 0, ..options.clone() };
    h.update(serde_json::to_string(&options).unwrap_or_default().as_bytes());
    if *task != TaskSpec::bundled() {
        h.update(b"task");
        h.update(serde_json::to_string(task).unwrap_or_default().as_bytes());
    }
    hex(&h.finalize()[..2])
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The checksum manifest of a model directory.
pub const MANIFEST: &str = "SHA256SUMS";
/// Files every model directory holds (`gbdt.bin` too when the model has trees).
const REQUIRED: [&str; 4] = ["model.json", "mlp.bpk", "text.bin", "report.json"];

fn manifest_text(entries: &[(String, String)]) -> String {
    entries.iter().map(|(name, digest)| format!("{digest}  {name}\n")).collect()
}

/// The plain files of `dir` other than the manifest, in name order; anything else (a
/// subdirectory, a link) is refused, since a model directory holds only its files.
fn artefact_names(dir: &Path) -> Result<Vec<String>, RegistryError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == MANIFEST {
            continue;
        }
        let kind = entry.file_type().map_err(io(&path))?;
        if !kind.is_file() {
            return Err(invalid(&path, "not a plain file: a model directory holds only its sealed files"));
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// Reads `SHA256SUMS` into (file name, digest) pairs.
fn read_manifest(dir: &Path) -> Result<Vec<(String, String)>, RegistryError> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(invalid(
                &path,
                format!(
                    "missing: every model file must be listed with its SHA-256; if these files are \
                     trusted, run `citecast models seal {}`",
                    dir.display()
                ),
            ))
        }
        Err(e) => return Err(io(&path)(e)),
    };
    let mut entries: Vec<(String, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || invalid(&path, format!("line {} is not '<sha256>  <file>'", n + 1));
        let (digest, name) = line.split_once(' ').ok_or_else(bad)?;
        let name = name.trim_start_matches(' ').trim_start_matches('*');
        let plain = !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != "..";
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) || !plain {
            return Err(bad());
        }
        if entries.iter().any(|(have, _)| have == name) {
            return Err(invalid(&path, format!("lists {name} twice")));
        }
        entries.push((name.to_string(), digest.to_ascii_lowercase()));
    }
    Ok(entries)
}

/// Checks every file of `dir` against `SHA256SUMS`: each listed file present and
/// unchanged, no file unlisted, the required ones listed. Returns the bytes of the files
/// the loader needs.
fn verify_manifest(dir: &Path) -> Result<std::collections::HashMap<String, Vec<u8>>, RegistryError> {
    let entries = read_manifest(dir)?;
    let present = artefact_names(dir)?;
    for name in &present {
        if !entries.iter().any(|(n, _)| n == name) {
            return Err(invalid(
                &dir.join(name),
                format!("not listed in {MANIFEST}: a model directory holds only its sealed files"),
            ));
        }
    }
    for name in REQUIRED {
        if !entries.iter().any(|(n, _)| n == name) {
            return Err(invalid(&dir.join(MANIFEST), format!("does not list {name}")));
        }
    }
    let mut files = std::collections::HashMap::new();
    for (name, digest) in entries {
        let path = dir.join(&name);
        if !present.contains(&name) {
            return Err(invalid(&path, format!("listed in {MANIFEST} but missing")));
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        if sha(&bytes) != digest {
            return Err(invalid(
                &path,
                format!(
                    "checksum mismatch: {} corrupt or changed since the model was sealed ({MANIFEST})",
                    describe(&name)
                ),
            ));
        }
        if name != "report.json" {
            files.insert(name, bytes);
        }
    }
    Ok(files)
}

/// What a model file is, for messages.
fn describe(name: &str) -> String {
    match name {
        "model.json" => "the model card is".into(),
        "mlp.bpk" => "the weights file is".into(),
        "text.bin" => "the text model is".into(),
        "gbdt.bin" => "the tree models are".into(),
        "report.json" => "the performance report is".into(),
        other => format!("{other} is"),
    }
}

/// Writes `SHA256SUMS` for the files of `dir` (through a temporary file renamed in place).
fn write_manifest(dir: &Path) -> Result<(), RegistryError> {
    let mut entries = Vec::new();
    for name in artefact_names(dir)? {
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        entries.push((name, sha(&bytes)));
    }
    let tmp = dir.join(format!(".{MANIFEST}.tmp"));
    std::fs::write(&tmp, manifest_text(&entries)).map_err(io(&tmp))?;
    let path = dir.join(MANIFEST);
    std::fs::rename(&tmp, &path).map_err(io(&path))
}

/// Vouches for the files of a model directory as they are: checks that they form a
/// model this build can serve (parsable, shapes consistent, the checksums `model.json`
/// records for its weights), then writes `SHA256SUMS` over every file. For models made
/// before manifests existed, or copied in by hand. Refuses a directory that would not
/// load, leaving it as it was.
pub fn seal(dir: &Path) -> Result<LoadedModel, RegistryError> {
    if !dir.join("model.json").is_file() {
        return Err(invalid(dir, "not a model directory (no model.json)"));
    }
    let mut files = std::collections::HashMap::new();
    for name in artefact_names(dir)? {
        if name == "report.json" {
            continue;
        }
        let path = dir.join(&name);
        files.insert(name, std::fs::read(&path).map_err(io(&path))?);
    }
    for name in REQUIRED {
        if !dir.join(name).is_file() {
            return Err(invalid(&dir.join(name), "missing"));
        }
    }
    load_report(dir)?;
    build(dir, files)?;
    write_manifest(dir)?;
    load(dir)
}

/// Writes a trained model into `root/<version>/` atomically (a temp dir renamed in place),
/// with the task it was trained for and the collection (`None`: the default) of `corpus`.
pub fn save(
    root: &Path,
    version: &str,
    outcome: &Outcome,
    corpus: &Corpus,
    options: &TrainOptions,
    task: &TaskSpec,
    collection: Option<&str>,
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
        training_window: if *task == TaskSpec::bundled() {
            format!("{}-01-01..1998-12-31", options.train_from_year)
        } else {
            task.train.to_string()
        },
        validation_window: task.validation.to_string(),
        test_window: task.test.to_string(),
        options: options.clone(),
        task: Some(task.clone()),
        collection: collection.map(str::to_string),
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
    write_manifest(&tmp)?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(io(&dir))?;
    Ok(dir)
}

/// Loads and verifies a model directory: the manifest first, then each part and the
/// shapes that tie them together.
pub fn load(dir: &Path) -> Result<LoadedModel, RegistryError> {
    let files = verify_manifest(dir)?;
    build(dir, files)
}

/// Builds a model from its files' bytes (already read and, on load, verified).
fn build(
    dir: &Path,
    mut files: std::collections::HashMap<String, Vec<u8>>,
) -> Result<LoadedModel, RegistryError> {
    let mut take = |name: &str| files.remove(name).ok_or_else(|| invalid(&dir.join(name), "missing"));
    let meta_path = dir.join("model.json");
    let meta: ModelMeta = serde_json::from_slice(&take("model.json")?)
        .map_err(|e| invalid(&meta_path, format!("unreadable: {e}")))?;
    let weights = take("mlp.bpk")?;
    if sha(&weights) != meta.weights_sha256 {
        return Err(invalid(
            &dir.join("mlp.bpk"),
            "checksum mismatch: the weights file is corrupt or truncated",
        ));
    }
    let text_bytes = take("text.bin")?;
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
            let bytes = take("gbdt.bin")?;
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
    check_shapes(&meta, d).map_err(|m| invalid(&meta_path, m))?;
    for (i, tree_model) in gbdt.iter().enumerate() {
        tree_model.validate(d).map_err(|m| invalid(&dir.join("gbdt.bin"), format!("tree model {i}: {m}")))?;
    }
    if meta.mlp.hidden == 0 {
        return Err(invalid(&meta_path, "the network's hidden width is 0"));
    }
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

/// The numbers of `model.json` that must agree with the feature count `d`.
fn check_shapes(meta: &ModelMeta, d: usize) -> Result<(), String> {
    let n = &meta.normaliser;
    if n.mean.len() != d || n.std.len() != d {
        return Err(format!(
            "the normaliser has {} means and {} deviations for {d} features",
            n.mean.len(),
            n.std.len()
        ));
    }
    if let Some(i) = n.mean.iter().chain(&n.std).position(|v| !v.is_finite()) {
        return Err(format!("the normaliser holds a non-finite value (entry {i})"));
    }
    if n.std.iter().any(|s| *s <= 0.0) {
        return Err("the normaliser holds a deviation that is not positive".into());
    }
    if meta.logistic.weights.len() != d + 1 {
        return Err(format!(
            "the logistic model has {} weights for {d} features and an intercept",
            meta.logistic.weights.len()
        ));
    }
    if meta.logistic.weights.iter().any(|w| !w.is_finite()) {
        return Err("the logistic model holds a non-finite weight".into());
    }
    if !(meta.threshold.is_finite() && (0.0..=1.0).contains(&meta.threshold)) {
        return Err(format!("the decision threshold {} is not a probability", meta.threshold));
    }
    if meta.rule_quantiles.iter().any(|q| !q.is_finite()) || !meta.rule_quantiles.is_sorted() {
        return Err("the rule quantiles are not a sorted list of numbers".into());
    }
    Ok(())
}

/// Replaces a model's `report.json` (a re-evaluation) and its line in the manifest, so
/// the directory stays sealed; the other files' lines are left as they are.
pub fn write_report(dir: &Path, report: &Report) -> Result<(), RegistryError> {
    let mut entries = read_manifest(dir)?;
    let bytes = serde_json::to_vec(report).map_err(|e| invalid(dir, e.to_string()))?;
    let digest = sha(&bytes);
    match entries.iter_mut().find(|(n, _)| n == "report.json") {
        Some(entry) => entry.1 = digest,
        None => entries.push(("report.json".into(), digest)),
    }
    let tmp = dir.join(".report.json.tmp");
    std::fs::write(&tmp, &bytes).map_err(io(&tmp))?;
    let manifest_tmp = dir.join(format!(".{MANIFEST}.tmp"));
    std::fs::write(&manifest_tmp, manifest_text(&entries)).map_err(io(&manifest_tmp))?;
    let path = dir.join("report.json");
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    let manifest = dir.join(MANIFEST);
    std::fs::rename(&manifest_tmp, &manifest).map_err(io(&manifest))
}

/// The stored report of a model directory, checked against the manifest when the
/// directory has one.
pub fn load_report(dir: &Path) -> Result<Report, RegistryError> {
    let p = dir.join("report.json");
    let bytes = std::fs::read(&p).map_err(io(&p))?;
    if dir.join(MANIFEST).is_file() {
        let listed = read_manifest(dir)?.into_iter().find(|(n, _)| n == "report.json");
        if listed.map(|(_, digest)| digest) != Some(sha(&bytes)) {
            return Err(invalid(&p, format!("checksum mismatch: not the report sealed in {MANIFEST}")));
        }
    }
    serde_json::from_slice(&bytes).map_err(|e| invalid(&p, format!("unreadable: {e}")))
}

/// Model directories under `root`, in name order.
pub fn list(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                // `.<version>.tmp` is a save in progress (or cut short), not a model.
                .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
                .filter(|p| p.join("model.json").is_file())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of a shipped model in a temporary directory.
    fn shipped_copy() -> (tempfile::TempDir, PathBuf) {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        let src = list(&models).into_iter().find(|d| d.join("gbdt.bin").is_file()).expect("a shipped model");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(src.file_name().unwrap());
        std::fs::create_dir(&dir).unwrap();
        for e in std::fs::read_dir(&src).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
        (tmp, dir)
    }

    fn refusal(dir: &Path) -> String {
        match load(dir) {
            Ok(m) => panic!("{} loaded", m.meta.version),
            Err(e) => e.to_string(),
        }
    }

    /// Rewrites one manifest line as if the file had been sealed as it is now.
    fn reseal_entry(dir: &Path, name: &str) {
        let digest = sha(&std::fs::read(dir.join(name)).unwrap());
        let text = std::fs::read_to_string(dir.join(MANIFEST)).unwrap();
        let text: String = text
            .lines()
            .map(|l| {
                if l.ends_with(&format!("  {name}")) {
                    format!("{digest}  {name}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(dir.join(MANIFEST), text).unwrap();
    }

    #[test]
    fn shipped_models_are_sealed_and_load() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        let dirs = list(&models);
        assert!(dirs.len() >= 2);
        for dir in dirs {
            load(&dir).unwrap_or_else(|e| panic!("{e}"));
            load_report(&dir).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn a_corrupted_copy_of_any_model_file_is_refused_naming_it() {
        let (_tmp, dir) = shipped_copy();
        load(&dir).expect("the untouched copy loads");
        for name in ["model.json", "mlp.bpk", "text.bin", "gbdt.bin", "report.json"] {
            let path = dir.join(name);
            let good = std::fs::read(&path).unwrap();
            let mut bad = good.clone();
            let at = bad.len() / 2;
            bad[at] ^= 0x20;
            std::fs::write(&path, &bad).unwrap();
            let err = refusal(&dir);
            assert!(err.contains(name) && err.contains("checksum mismatch"), "{name}: {err}");
            std::fs::write(&path, &good).unwrap();
        }
        load(&dir).expect("restored files load again");
        // A re-evaluation rewrites the report and keeps the directory sealed.
        let mut report = load_report(&dir).unwrap();
        report.version = "re-evaluated".into();
        write_report(&dir, &report).unwrap();
        assert_eq!(load_report(&dir).unwrap().version, "re-evaluated");
        load(&dir).expect("still sealed after a new report");
    }

    #[test]
    fn a_model_json_that_lost_a_normaliser_entry_is_refused_even_when_resealed() {
        let (_tmp, dir) = shipped_copy();
        let path = dir.join("model.json");
        let mut meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        meta["normaliser"]["mean"].as_array_mut().unwrap().pop();
        std::fs::write(&path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
        // The manifest catches the edit...
        assert!(refusal(&dir).contains("checksum mismatch"));
        // ... and with the manifest rewritten to match, the shape check does.
        reseal_entry(&dir, "model.json");
        let err = refusal(&dir);
        assert!(err.contains("model.json") && err.contains("normaliser has"), "{err}");
        // Sealing vouches only for a model that would load.
        let err = seal(&dir).err().expect("seal refuses it").to_string();
        assert!(err.contains("normaliser has"), "{err}");
    }

    #[test]
    fn a_network_width_that_does_not_match_its_weights_is_refused() {
        let (_tmp, dir) = shipped_copy();
        let path = dir.join("model.json");
        let mut meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let hidden = meta["mlp"]["hidden"].as_u64().unwrap();
        meta["mlp"]["hidden"] = (hidden + 1).into();
        std::fs::write(&path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
        reseal_entry(&dir, "model.json");
        let err = refusal(&dir);
        assert!(err.contains("mlp.bpk"), "{err}");
    }

    #[test]
    fn a_tree_splitting_on_a_feature_past_the_list_is_refused() {
        let (_tmp, dir) = shipped_copy();
        let path = dir.join("gbdt.bin");
        let mut trees: Vec<Gbdt> = codec::decode(&std::fs::read(&path).unwrap()).unwrap();
        let d = trees[0].features();
        assert!(trees[0].validate(d).is_ok());
        assert!(trees[0].validate(d + 1).is_err(), "a feature count mismatch is caught");
        trees[0].corrupt_first_split_for_test(d as u32 + 3);
        let bytes = codec::encode(&trees).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        // Make every checksum agree, as a careless hand edit would.
        let meta_path = dir.join("model.json");
        let mut meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
        meta["gbdt_sha256"] = sha(&bytes).into();
        std::fs::write(&meta_path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
        reseal_entry(&dir, "gbdt.bin");
        reseal_entry(&dir, "model.json");
        let err = refusal(&dir);
        assert!(err.contains("gbdt.bin") && err.contains("splits on feature"), "{err}");
    }

    #[test]
    fn a_missing_manifest_a_missing_file_and_an_extra_file_are_refused() {
        let (_tmp, dir) = shipped_copy();
        std::fs::write(dir.join("notes.txt"), "hello").unwrap();
        let err = refusal(&dir);
        assert!(err.contains("notes.txt") && err.contains("not listed"), "{err}");
        std::fs::remove_file(dir.join("notes.txt")).unwrap();

        let text = std::fs::read(dir.join("text.bin")).unwrap();
        std::fs::remove_file(dir.join("text.bin")).unwrap();
        let err = refusal(&dir);
        assert!(err.contains("text.bin") && err.contains("missing"), "{err}");
        std::fs::write(dir.join("text.bin"), text).unwrap();

        std::fs::remove_file(dir.join(MANIFEST)).unwrap();
        let err = refusal(&dir);
        assert!(err.contains(MANIFEST) && err.contains("citecast models seal"), "{err}");
        // Sealing the intact files makes it load again.
        seal(&dir).expect("seal");
        load(&dir).expect("sealed model loads");
    }
}
