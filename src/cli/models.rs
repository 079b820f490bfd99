//! `citecast models`, `experiments`, `train` and `evaluate`: the forecast models.

use std::path::PathBuf;

use citecast_actors::forecast::registry;
use citecast_actors::forecast::task::{Mode, TaskOptions};
use citecast_actors::forecast::train::TrainOptions;

use clap::Subcommand;

use super::{CliError, DataDir};
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

/// `citecast train`'s settings beyond the data directory.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// at_publication, early, or both.
    #[arg(long, default_value = "both")]
    mode: String,
    /// Where model directories are written (default: ./models, or DATA_DIR/models with
    /// --data-dir, where the server loads them from).
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// Directory with the bundled papers.jsonl.gz and citations_dated.tsv.gz.
    #[arg(long)]
    bundled_data: Option<PathBuf>,
    /// Corpus files (citecast format, as `citecast ingest` takes them) to train on
    /// instead of the bundled data; splits are derived from them.
    #[arg(long, num_args = 1..)]
    from: Vec<PathBuf>,
    /// The collection of the live store to train on (with --data-dir).
    #[arg(long, default_value = "default")]
    collection: String,
    /// Random seed: the same seed on the same data gives the same models.
    #[arg(long, default_value_t = 17)]
    seed: u64,
    /// Small settings (few epochs and candidates): for trials and tests, not for serving.
    #[arg(long)]
    quick: bool,
    /// Months of citations the label counts (derived tasks).
    #[arg(long, default_value_t = 24)]
    label_months: i32,
    /// Months the early mode waits after publication (derived tasks).
    #[arg(long, default_value_t = 6)]
    early_months: i32,
    /// Months of the test period: the last fully labelled ones (derived tasks; whole
    /// years with year-only dates).
    #[arg(long, default_value_t = 12)]
    test_months: i32,
    /// Months of the validation period, just before the test period (derived tasks).
    #[arg(long, default_value_t = 12)]
    validation_months: i32,
    /// Train on papers from this day on, YYYY-MM-DD (derived tasks; default: the first).
    #[arg(long)]
    train_from: Option<String>,
    /// Backtest each new model over this many cutoffs (default: 2 for tasks derived from
    /// the data, 0 for the bundled data).
    #[arg(long)]
    backtest: Option<usize>,
}

impl TrainArgs {
    fn modes(&self) -> Result<Vec<Mode>, CliError> {
        training::modes_of(&self.mode).map_err(|e| CliError::Usage(format!("--{e}")))
    }

    fn options(&self) -> TrainOptions {
        let base = if self.quick { TrainOptions::quick() } else { TrainOptions::default() };
        TrainOptions { seed: self.seed, ..base }
    }

    fn task(&self) -> Result<TaskOptions, CliError> {
        training::task_options(
            self.label_months,
            self.early_months,
            self.test_months,
            self.validation_months,
            self.train_from.as_deref(),
        )
        .map_err(|e| CliError::Usage(format!("--{e}")))
    }
}

/// Whether the command names a data directory (flag or environment): then it works on
/// the live store.
fn live(dir: &DataDir) -> bool {
    dir.given()
}

/// The corpus of one collection of the store in `config`'s data directory (no server
/// holds it).
fn store_corpus(config: &crate::config::Config, collection: &str) -> Result<training::Data, CliError> {
    let store = citecast_actors::store::Store::open(&config.engine().store_path(), &Default::default())
        .map_err(CliError::engine)?;
    let known = store.collections().map_err(CliError::engine)?;
    if !known.iter().any(|c| c.name == collection) {
        let names: Vec<String> = known.into_iter().map(|c| c.name).collect();
        return Err(CliError::Usage(format!(
            "no collection '{collection}' in {}; collections: {}",
            config.data_dir.display(),
            if names.is_empty() { "none (ingest data first)".into() } else { names.join(", ") }
        )));
    }
    let corpus = citecast_actors::forecast::corpus::Corpus::from_store_collection(&store, collection)
        .map_err(CliError::engine)?;
    Ok(training::Data::Corpus { corpus: std::sync::Arc::new(corpus), collection: collection.to_string() })
}

/// `citecast train`.
pub fn train(dir: DataDir, args: TrainArgs) -> Result<(), CliError> {
    let modes = args.modes()?;
    let opts = args.options();
    if live(&dir) {
        if !args.from.is_empty() || args.bundled_data.is_some() {
            return Err(CliError::Usage(
                "--data-dir trains on the store; --from and --bundled-data train on files: give one".into(),
            ));
        }
        let config = dir.config()?;
        let v = if let Some(info) = super::running_server(&config) {
            eprintln!("server running at {} (pid {}): training through it", info.addr, info.pid);
            let body = serde_json::json!({
                "collection": args.collection,
                "mode": args.mode,
                "seed": args.seed,
                "quick": args.quick,
                "label_months": args.label_months,
                "early_months": args.early_months,
                "test_months": args.test_months,
                "validation_months": args.validation_months,
                "train_from": args.train_from,
                "backtest": args.backtest,
            })
            .to_string();
            super::admin_json(
                &info,
                "POST",
                "/admin/train",
                Some(&body),
                std::time::Duration::from_secs(4 * 3600),
            )?
        } else {
            let models = args.models_dir.clone().unwrap_or_else(|| config.data_dir.join("models"));
            let data = store_corpus(&config, &args.collection)?;
            let loaded = training::load(data)?;
            let task = training::task_for(&loaded, &args.task()?)?;
            eprintln!(
                "training on collection '{}' ({} papers); models will be written under {}",
                args.collection,
                loaded.corpus.len(),
                models.display()
            );
            training::train(
                &loaded,
                &task,
                &models,
                &modes,
                &opts,
                args.backtest.unwrap_or(training::default_backtests(&loaded)),
            )?
        };
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        eprintln!("the new models are candidates: see `citecast models list`, then promote or canary them");
        return Ok(());
    }
    let data = if args.from.is_empty() {
        training::Data::Bundled(args.bundled_data.clone().unwrap_or_else(crate::config::default_bundled_data))
    } else {
        training::Data::Files(args.from.clone())
    };
    let models = args.models_dir.clone().unwrap_or_else(training::default_models_dir);
    let loaded = training::load(data)?;
    let task = training::task_for(&loaded, &args.task()?)?;
    eprintln!(
        "training on {} papers; models will be written under {}",
        loaded.corpus.len(),
        models.display()
    );
    let v = training::train(
        &loaded,
        &task,
        &models,
        &modes,
        &opts,
        args.backtest.unwrap_or(training::default_backtests(&loaded)),
    )?;
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    eprintln!(
        "models written under {} (each directory sealed by its SHA256SUMS); a running server loads them after `citecast models rescan` when that is one of its model directories",
        models.display()
    );
    Ok(())
}

/// `citecast evaluate`'s settings beyond the data directory.
pub struct EvaluateArgs {
    pub models: Vec<String>,
    pub models_dir: Option<PathBuf>,
    pub bundled_data: Option<PathBuf>,
    pub from: Vec<PathBuf>,
    pub collection: String,
    pub backtest: usize,
}

/// `citecast evaluate`.
pub fn evaluate(dir: DataDir, args: EvaluateArgs) -> Result<(), CliError> {
    if live(&dir) {
        let config = dir.config()?;
        if args.models.is_empty() {
            return Err(CliError::Usage(
                "name the model versions to evaluate (`citecast models list`)".into(),
            ));
        }
        let v = if let Some(info) = super::running_server(&config) {
            eprintln!("server running at {} (pid {}): evaluating through it", info.addr, info.pid);
            let body = serde_json::json!({
                "collection": args.collection,
                "versions": args.models,
                "backtest": args.backtest,
            })
            .to_string();
            super::admin_json(
                &info,
                "POST",
                "/admin/evaluate",
                Some(&body),
                std::time::Duration::from_secs(4 * 3600),
            )?
        } else {
            let mut roots = vec![config.data_dir.join("models"), training::default_models_dir()];
            if let Some(d) = &args.models_dir {
                roots.insert(0, d.clone());
            }
            let dirs = training::find_versions(&roots, &args.models).map_err(CliError::Usage)?;
            let loaded = training::load(store_corpus(&config, &args.collection)?)?;
            training::evaluate(&loaded, &dirs, args.backtest)?
        };
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    let dirs: Vec<PathBuf> = if args.models.is_empty() {
        registry::list(&args.models_dir.unwrap_or_else(training::default_models_dir))
    } else {
        args.models.iter().map(PathBuf::from).collect()
    };
    if dirs.is_empty() {
        return Err(CliError::Usage("no model directories found; run `citecast train` first".into()));
    }
    let data = if args.from.is_empty() {
        training::Data::Bundled(args.bundled_data.unwrap_or_else(crate::config::default_bundled_data))
    } else {
        training::Data::Files(args.from)
    };
    let loaded = training::load(data)?;
    let v = training::evaluate(&loaded, &dirs, args.backtest)?;
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    for d in &dirs {
        eprintln!("rewrote {}", d.join("report.json").display());
    }
    Ok(())
}
