//! `citecast models`, `experiments`, `train` and `evaluate`: the forecast models.

use std::path::PathBuf;

use citecast_actors::forecast::registry;
use citecast_actors::forecast::task::Mode;
use citecast_actors::forecast::train::TrainOptions;

use clap::Subcommand;

use super::CliError;
use crate::forecasts::training;
use crate::ops::operator::OpRequest;

#[derive(Subcommand)]
pub enum ModelAction {
    /// Every loaded model, which one serves each mode, and its test figures.
    List,
    /// Make a model version serve its mode (no restart; the old one stays for rollback).
    Promote { version: String },
    /// Put back the model a mode served before its last promotion; during a rollout,
    /// end it with the control serving.
    Rollback {
        /// at_publication or early.
        mode: String,
    },
    /// Load model directories trained since the server started. Exits non-zero when a
    /// model directory was refused (each refusal names the file and the reason).
    Rescan,
    /// Check a model directory (parts readable, shapes consistent) and write its
    /// SHA256SUMS manifest over every file, so it loads. Training seals its models
    /// itself; this is for models copied in by hand or made before manifests.
    Seal {
        /// The model directory (holding model.json).
        dir: PathBuf,
    },
    /// A/B experiments and canary rollouts of a candidate model.
    Experiment {
        #[command(subcommand)]
        action: ExperimentAction,
    },
}

#[derive(Subcommand)]
pub enum ExperimentAction {
    /// Route a fixed share of the candidate's mode to it (A/B), both models scoring every forecast.
    Start {
        /// The candidate model version (loaded; see `models list`).
        candidate: String,
        /// Percent of callers (by customer) served by the candidate, 1 to 99.
        #[arg(long)]
        share: u8,
        #[command(flatten)]
        guards: GuardArgs,
    },
    /// Canary: 5 % of callers, then 50 %, then 100 %, then promotion; rolls back on its own
    /// when a guard trips.
    Canary {
        /// The candidate model version (loaded; see `models list`).
        candidate: String,
        /// Advance a stage after this many seconds (with enough forecasts); without it,
        /// stages advance by `experiment advance`.
        #[arg(long)]
        advance_after: Option<u64>,
        #[command(flatten)]
        guards: GuardArgs,
    },
    /// Next canary stage (past 100 %: promote); promotes an experiment's candidate.
    Advance {
        /// at_publication or early.
        mode: String,
    },
    /// End a rollout without a verdict (the control keeps serving).
    Stop {
        /// at_publication or early.
        mode: String,
    },
    /// Running and finished rollouts.
    List,
    /// A rollout's comparison: agreement, score distributions, latency, AUC per arm.
    Report {
        /// The rollout id (from `experiment list`).
        id: String,
    },
}

#[derive(clap::Args)]
pub struct GuardArgs {
    /// Largest share of failed candidate forecasts (0..1) before automatic rollback.
    #[arg(long)]
    max_error_rate: Option<f64>,
    /// Largest candidate p95 compute time, ms.
    #[arg(long)]
    max_p95_ms: Option<f64>,
    /// Largest score drift (PSI) of the candidate against the control.
    #[arg(long)]
    max_drift_psi: Option<f64>,
    /// Candidate forecasts before guards judge and stages advance.
    #[arg(long)]
    min_forecasts: Option<u64>,
}

impl ModelAction {
    pub fn into_op(self) -> OpRequest {
        let start =
            |candidate, kind: &str, share, advance_after_secs, g: GuardArgs| OpRequest::StartRollout {
                candidate,
                kind: kind.into(),
                share,
                advance_after_secs,
                max_error_rate: g.max_error_rate,
                max_p95_ms: g.max_p95_ms,
                max_drift_psi: g.max_drift_psi,
                min_forecasts: g.min_forecasts,
            };
        match self {
            ModelAction::List => OpRequest::ListModels,
            ModelAction::Promote { version } => OpRequest::Promote { version },
            ModelAction::Rollback { mode } => OpRequest::Rollback { mode },
            ModelAction::Rescan => OpRequest::RescanModels,
            ModelAction::Seal { .. } => unreachable!("sealing runs locally, not as an operation"),
            ModelAction::Experiment { action } => match action {
                ExperimentAction::Start { candidate, share, guards } => {
                    start(candidate, "experiment", Some(share), None, guards)
                }
                ExperimentAction::Canary { candidate, advance_after, guards } => {
                    start(candidate, "canary", None, advance_after, guards)
                }
                ExperimentAction::Advance { mode } => OpRequest::AdvanceRollout { mode },
                ExperimentAction::Stop { mode } => OpRequest::StopRollout { mode },
                ExperimentAction::List => OpRequest::ListRollouts,
                ExperimentAction::Report { id } => OpRequest::RolloutReport { id },
            },
        }
    }
}

pub fn seal(dir: &std::path::Path) -> Result<(), CliError> {
    let model = citecast_actors::forecast::registry::seal(dir).map_err(CliError::engine)?;
    println!(
        "sealed {} ({:?}): {} written over every file of {}",
        model.meta.version,
        model.meta.mode,
        citecast_actors::forecast::registry::MANIFEST,
        dir.display()
    );
    println!("a running server loads it after `citecast models rescan` (if it sits in one of its model directories)");
    Ok(())
}

/// `citecast train`.
pub fn train(
    mode: String,
    models_dir: Option<PathBuf>,
    bundled_data: Option<PathBuf>,
    seed: u64,
) -> Result<(), CliError> {
    let modes = match mode.as_str() {
        "both" => Mode::ALL.to_vec(),
        m => vec![Mode::parse(m).ok_or_else(|| {
            CliError::Usage(format!("--mode must be at_publication, early or both, not '{m}'"))
        })?],
    };
    let opts = TrainOptions { seed, ..TrainOptions::default() };
    let bundled = bundled_data.unwrap_or_else(crate::config::default_bundled_data);
    let models = models_dir.unwrap_or_else(training::default_models_dir);
    eprintln!("training on {}; models will be written under {}", bundled.display(), models.display());
    let v = training::train(&bundled, &models, &modes, &opts)?;
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    eprintln!(
        "models written under {} (each directory sealed by its SHA256SUMS); a running server loads them after `citecast models rescan` when that is one of its model directories",
        models.display()
    );
    Ok(())
}

/// `citecast evaluate`.
pub fn evaluate(
    models: Vec<PathBuf>,
    models_dir: Option<PathBuf>,
    bundled_data: Option<PathBuf>,
) -> Result<(), CliError> {
    let dirs = if models.is_empty() {
        registry::list(&models_dir.unwrap_or_else(training::default_models_dir))
    } else {
        models
    };
    if dirs.is_empty() {
        return Err(CliError::Usage("no model directories found; run `citecast train` first".into()));
    }
    let bundled = bundled_data.unwrap_or_else(crate::config::default_bundled_data);
    let v = training::evaluate(&bundled, &dirs)?;
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    for d in &dirs {
        eprintln!("rewrote {}", d.join("report.json").display());
    }
    Ok(())
}
