//! The `citecast` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use citecast::config::Config;
use citecast::forecasts::training;
use citecast::ops::operator::OpRequest;
use citecast::outbound::admin as admin_client;
use citecast::server::{self, read_server_info};
use citecast::CliError;
use citecast_actors::actors::{GetStats, IngestFiles, ListImports};
use citecast_actors::forecast::registry;
use citecast_actors::forecast::task::Mode;
use citecast_actors::forecast::train::TrainOptions;
use citecast_actors::imports::ImportRecord;
use citecast_actors::ingest::IngestReport;
use citecast_actors::store::Stats;
use citecast_actors::Engine;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "citecast", version, about = "Forecasts which research papers will become highly cited.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where commands look for data when neither --data-dir nor CITECAST_DATA_DIR says.
const DEFAULT_DATA_DIR: &str = "citecast-data";

#[derive(Args, Clone)]
struct DataDir {
    /// Data directory holding the store and the search index [default: ./citecast-data].
    #[arg(long, env = "CITECAST_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Tier table (JSON, as src/tiers.json) replacing the built-in tiers.
    #[arg(long, env = "CITECAST_TIERS", global = true)]
    tiers: Option<PathBuf>,
}

impl DataDir {
    fn config(self) -> Result<Config, CliError> {
        let given = self.data_dir.is_some();
        let mut config = Config::new(self.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)));
        config.data_dir_given = given;
        if let Some(path) = self.tiers {
            config.tiers = citecast::accounts::tiers::Tiers::load(&path).map_err(CliError::Usage)?;
        }
        Ok(config)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the JSON API. An empty data directory is first filled with the bundled
    /// hep-th data (about 30 s); meanwhile /healthz answers and /readyz says 503.
    Serve {
        #[command(flatten)]
        dir: DataDir,
        /// Address to listen on.
        #[arg(long, env = "CITECAST_ADDR", default_value = "127.0.0.1:8080")]
        addr: String,
        /// Directory with the bundled papers.jsonl.gz and citations_dated.tsv.gz.
        #[arg(long, env = "CITECAST_BUNDLED_DATA")]
        bundled_data: Option<PathBuf>,
        /// HTTP worker threads (default: one per core).
        #[arg(long, env = "CITECAST_WORKERS")]
        workers: Option<usize>,
        /// Where the daily backup job writes (default: DATA_DIR/backups; best on another disk).
        #[arg(long, env = "CITECAST_BACKUP_DIR")]
        backup_dir: Option<PathBuf>,
        /// Scheduled backups kept.
        #[arg(long, env = "CITECAST_BACKUP_KEEP", default_value_t = 7)]
        backup_keep: usize,
        /// Forecast and usage records older than this many days move to the archive.
        #[arg(long, env = "CITECAST_ARCHIVE_AFTER_DAYS", default_value_t = 90)]
        archive_after_days: u32,
        /// https://host/path (or http://) receiving alert transitions (firing, resolved) as
        /// JSON; 5 s timeout, two retries with backoff.
        #[arg(long, env = "CITECAST_ALERT_WEBHOOK")]
        alert_webhook: Option<String>,
        /// Seconds between metric samples and alert evaluations.
        #[arg(long, env = "CITECAST_MONITOR_INTERVAL", default_value_t = 10)]
        monitor_interval: u64,
        /// /v1 requests handled at once before new ones get 503 (all callers together).
        #[arg(long, env = "CITECAST_MAX_IN_FLIGHT", default_value_t = 256)]
        max_in_flight: usize,
        /// /v1 requests one customer (or one anonymous IP) may have in flight at once;
        /// more get 429, so one caller cannot take every slot.
        #[arg(long, env = "CITECAST_MAX_IN_FLIGHT_PER_CALLER", default_value_t = 32)]
        max_in_flight_per_caller: usize,
        /// Seconds a client has to send its whole request body; a body still arriving
        /// then gets 408. Bodies are read before a request counts as in flight.
        #[arg(long, env = "CITECAST_BODY_READ_TIMEOUT", default_value_t = 5)]
        body_read_timeout: u64,
        /// Seconds a /v1 request may take once its body is read before it gets 503.
        #[arg(long, env = "CITECAST_REQUEST_TIMEOUT", default_value_t = 10)]
        request_timeout: u64,
        /// Origins whose web pages may call /v1 from a browser, comma-separated
        /// (https://app.example.org), `*` for any, `none` for no cross-origin calls.
        #[arg(long, env = "CITECAST_CORS_ORIGINS", default_value = "*")]
        cors_origins: String,
        /// A paper record listing more references than this is rejected (reported with
        /// its line); the rest of the file is imported.
        #[arg(long, env = "CITECAST_MAX_REFS_PER_PAPER", default_value_t = citecast_actors::ingest::DEFAULT_MAX_REFS_PER_PAPER, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        max_refs_per_paper: usize,
    },
    /// Import papers (JSON Lines) and citations (TSV or SNAP edge list), gzip or plain.
    /// Papers before the citations that refer to them. See docs/ingest-format.md.
    /// Goes through the running server when one holds the data directory.
    Ingest {
        #[command(flatten)]
        dir: DataDir,
        /// Files to import, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A paper record listing more references than this is rejected (reported with
        /// its line); the rest of the file is imported. Default: the running server's
        /// setting, or 10000.
        #[arg(long, env = "CITECAST_MAX_REFS_PER_PAPER", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        max_refs_per_paper: Option<usize>,

        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage customers and their API keys (prints JSON; a new key's secret is shown once).
    Customers {
        #[command(flatten)]
        dir: DataDir,
        #[command(subcommand)]
        action: CustomerAction,
    },
    /// Train the forecast models (both modes by default) from the bundled data and write
    /// them, with their performance reports, under --models-dir.
    Train {
        /// at_publication, early, or both.
        #[arg(long, default_value = "both")]
        mode: String,
        /// Where model directories are written.
        #[arg(long)]
        models_dir: Option<PathBuf>,
        /// Directory with the bundled papers.jsonl.gz and citations_dated.tsv.gz.
        #[arg(long)]
        bundled_data: Option<PathBuf>,
        /// Random seed: the same seed on the same data gives the same models.
        #[arg(long, default_value_t = 17)]
        seed: u64,
    },
    /// Re-evaluate saved models on the bundled data and rewrite their reports
    /// (default: every model under --models-dir).
    Evaluate {
        /// Model directories to evaluate.
        models: Vec<PathBuf>,
        /// Evaluate every model directory under this one (default: ./models).
        #[arg(long)]
        models_dir: Option<PathBuf>,
        /// Directory with the bundled papers.jsonl.gz and citations_dated.tsv.gz.
        #[arg(long)]
        bundled_data: Option<PathBuf>,
    },
    /// List the loaded forecast models, or hot-swap which one serves a mode.
    Models {
        #[command(flatten)]
        dir: DataDir,
        #[command(subcommand)]
        action: ModelAction,
    },
    /// Write a consistent backup of the store and the search index to FILE (through the
    /// running server when there is one).
    Backup {
        #[command(flatten)]
        dir: DataDir,
        /// The backup file to write (gzip, checksummed; its directory must exist).
        file: PathBuf,
    },
    /// Restore a backup into a new data directory (--data-dir must not hold a store).
    Restore {
        #[command(flatten)]
        dir: DataDir,
        /// A file written by `citecast backup` (verified before anything is written).
        file: PathBuf,
    },
    /// The scheduled jobs: backup, archive, rollouts, ingest, rescore, retrain, churn and
    /// newsletter. List them, run one now (`--wait` for its end), pause, resume, requeue
    /// or reschedule it. Needs the running server except for `list`.
    Jobs {
        #[command(flatten)]
        dir: DataDir,
        #[command(subcommand)]
        action: JobsAction,
    },
    /// The audit log of admin and billing actions, oldest first (read only).
    Audit {
        #[command(flatten)]
        dir: DataDir,
        /// Continue after this entry (`next_after` of the previous page).
        #[arg(long)]
        after: Option<u64>,
        /// Entries per page (default 100, at most 1000).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Move forecast and usage records older than N days into the compressed archive
    /// (the `archive` job does this daily; archived records stay queryable).
    Archive {
        #[command(flatten)]
        dir: DataDir,
        /// Records older than this many days move to the archive.
        #[arg(long, default_value_t = 90)]
        older_than_days: u32,
    },
    /// Show what the data directory holds.
    Stats {
        #[command(flatten)]
        dir: DataDir,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CustomerAction {
    /// Create a customer and its first API key.
    Add {
        /// The customer's name (a person or an organisation), 1 to 200 characters.
        #[arg(long)]
        name: String,
        /// Contact address; one customer per address.
        #[arg(long)]
        email: String,
        /// free, pro or enterprise (default: free).
        #[arg(long)]
        tier: Option<String>,
    },
    /// List customers, 100 at a time.
    List {
        /// Continue after this customer id (from `next_after`).
        #[arg(long)]
        after: Option<String>,
        /// Customers per page (default 100, at most 1000).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// List a customer's keys, or issue a new one with --add.
    Keys {
        /// The customer (cus_...).
        customer_id: String,
        /// Issue a new key with this name.
        #[arg(long)]
        add: Option<String>,
    },
    /// Revoke a key at once.
    Revoke {
        /// The key (key_...).
        key_id: String,
    },
    /// Issue a replacement key and revoke the old one.
    Rotate {
        /// The key (key_...).
        key_id: String,
    },
    /// Move a customer to another tier.
    Tier {
        /// The customer (cus_...).
        customer_id: String,
        /// free, pro or enterprise (or a tier of --tiers).
        tier: String,
    },
    /// Change a customer's name and/or e-mail address (an address belongs to one customer).
    Edit {
        /// The customer (cus_...).
        customer_id: String,
        /// The new name.
        #[arg(long)]
        name: Option<String>,
        /// The new e-mail address (refused if another customer has it).
        #[arg(long)]
        email: Option<String>,
    },
    /// Refuse a customer's keys (403 account_suspended) until `reactivate`; nothing is deleted.
    Suspend {
        /// The customer (cus_...).
        customer_id: String,
    },
    /// Let a suspended customer's keys work again.
    Reactivate {
        /// The customer (cus_...).
        customer_id: String,
    },
    /// Delete a customer and its keys; the audit log keeps the record as it was.
    Delete {
        /// The customer (cus_...).
        customer_id: String,
    },
    /// Customers whose usage dropped, went quiet or who have no active key (as the daily
    /// `churn` job last found them; `citecast jobs run churn` refreshes it).
    Churn,
}

#[derive(Subcommand)]
enum ModelAction {
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
enum ExperimentAction {
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
struct GuardArgs {
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

#[derive(Subcommand)]
enum JobsAction {
    /// Every job: schedule, state, next run, today's operations, dead letters, recent runs.
    List,
    /// Run a job now (also while paused).
    Run {
        /// The job (see `jobs --help`).
        name: String,
        /// Wait for the run to end and print its record; exit 1 if it failed.
        #[arg(long)]
        wait: bool,
    },
    /// Stop scheduling a job (a run in progress finishes); `resume` undoes it.
    Pause {
        /// The job (see `jobs --help`).
        name: String,
    },
    /// Schedule a paused job again from now.
    Resume {
        /// The job (see `jobs --help`).
        name: String,
    },
    /// Retry a job's dead-lettered runs now.
    Requeue {
        /// The job (see `jobs --help`).
        name: String,
    },
    /// Change a job's schedule, daily operations budget or tries before dead-lettering.
    Set {
        /// The job (see `jobs --help`).
        name: String,
        /// `every 30s|10m|6h|1d`, `daily HH:MM`, `weekly mon HH:MM` (UTC).
        #[arg(long)]
        schedule: Option<String>,
        /// Operations (records touched) the job may do per UTC day; past it, runs wait.
        #[arg(long, conflicts_with = "no_budget")]
        daily_budget: Option<u64>,
        /// Remove the daily operations budget.
        #[arg(long)]
        no_budget: bool,
        /// Tries of one run before it goes to the dead letters.
        #[arg(long)]
        max_attempts: Option<u32>,
    },
}

impl ModelAction {
    fn into_op(self) -> OpRequest {
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

impl CustomerAction {
    fn into_op(self) -> OpRequest {
        match self {
            CustomerAction::Add { name, email, tier } => OpRequest::AddCustomer { name, email, tier },
            CustomerAction::List { after, limit } => OpRequest::ListCustomers { after, limit },
            CustomerAction::Keys { customer_id, add: None } => OpRequest::ListKeys { customer_id },
            CustomerAction::Keys { customer_id, add: Some(name) } => OpRequest::AddKey { customer_id, name },
            CustomerAction::Revoke { key_id } => OpRequest::RevokeKey { key_id },
            CustomerAction::Rotate { key_id } => OpRequest::RotateKey { key_id },
            CustomerAction::Tier { customer_id, tier } => OpRequest::SetTier { customer_id, tier },
            CustomerAction::Edit { customer_id, name, email } => {
                OpRequest::EditCustomer { customer_id, name, email }
            }
            CustomerAction::Suspend { customer_id } => OpRequest::SuspendCustomer { customer_id },
            CustomerAction::Reactivate { customer_id } => OpRequest::ReactivateCustomer { customer_id },
            CustomerAction::Delete { customer_id } => OpRequest::DeleteCustomer { customer_id },
            CustomerAction::Churn => OpRequest::ChurnSignals,
        }
    }
}

fn main() -> ExitCode {
    // Everything this process creates (store, index, backups, models, server.json) holds
    // customer records or secrets: readable by the owner only, whatever the caller's umask.
    #[cfg(unix)]
    // SAFETY: umask only sets this process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CITECAST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve {
            dir,
            addr,
            bundled_data,
            workers,
            backup_dir,
            backup_keep,
            archive_after_days,
            alert_webhook,
            monitor_interval,
            max_in_flight,
            max_in_flight_per_caller,
            body_read_timeout,
            request_timeout,
            max_refs_per_paper,
            cors_origins,
        } => {
            let mut config = dir.config()?;
            config.cors_origins = match cors_origins.trim() {
                "none" | "" => Vec::new(),
                list => list
                    .split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_string())
                    .filter(|o| !o.is_empty())
                    .collect(),
            };
            config.max_refs_per_paper = max_refs_per_paper;
            config.max_in_flight = max_in_flight.max(1);
            config.max_in_flight_per_caller = max_in_flight_per_caller.max(1);
            config.body_read_timeout = Duration::from_secs(body_read_timeout.max(1));
            config.request_timeout = Duration::from_secs(request_timeout.max(1));
            config.addr = addr;
            if let Some(b) = backup_dir {
                config.backup_dir = b;
            }
            config.backup_keep = backup_keep.max(1);
            config.archive_after_days = archive_after_days.max(1);
            config.alert_webhook = alert_webhook;
            config.monitor_interval = Duration::from_secs(monitor_interval.max(1));
            if let Some(b) = bundled_data {
                config.bundled_data = b;
            }
            if let Some(w) = workers {
                config.workers = w.max(1);
            }
            actix_web::rt::System::new().block_on(server::serve(config))
        }
        Command::Ingest { dir, files, json, max_refs_per_paper } => {
            ingest(dir.config()?, files, json, max_refs_per_paper)
        }
        Command::Stats { dir, json } => stats(dir.config()?, json),
        Command::Customers { dir, action } => customers(dir.config()?, action.into_op()),
        Command::Backup { dir, file } => backup(dir.config()?, file),
        Command::Models { action: ModelAction::Seal { dir: model_dir }, .. } => seal(&model_dir),
        Command::Models { dir, action } => customers(dir.config()?, action.into_op()),
        Command::Jobs { dir, action } => jobs(dir.config()?, action),
        Command::Audit { dir, after, limit } => customers(dir.config()?, OpRequest::Audit { after, limit }),
        Command::Archive { dir, older_than_days } => {
            customers(dir.config()?, OpRequest::Archive { older_than_days })
        }
        Command::Restore { dir, file } => {
            let config = dir.config()?;
            let summary =
                citecast_actors::backup::restore(&file, &config.data_dir).map_err(CliError::engine)?;
            println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
            let index = if summary.index_files > 0 {
                "the search index came with it (rebuilt on the first `serve` only if it lags the store)"
            } else {
                "the backup holds no search index: it is rebuilt on the first `serve`"
            };
            eprintln!("restored into {}; {index}", config.data_dir.display());
            Ok(())
        }
        Command::Train { mode, models_dir, bundled_data, seed } => {
            let modes = match mode.as_str() {
                "both" => Mode::ALL.to_vec(),
                m => vec![Mode::parse(m).ok_or_else(|| {
                    CliError::Usage(format!("--mode must be at_publication, early or both, not '{m}'"))
                })?],
            };
            let opts = TrainOptions { seed, ..TrainOptions::default() };
            let bundled = bundled_data.unwrap_or_else(citecast::config::default_bundled_data);
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
        Command::Evaluate { models, models_dir, bundled_data } => {
            let dirs = if models.is_empty() {
                registry::list(&models_dir.unwrap_or_else(training::default_models_dir))
            } else {
                models
            };
            if dirs.is_empty() {
                return Err(CliError::Usage("no model directories found; run `citecast train` first".into()));
            }
            let bundled = bundled_data.unwrap_or_else(citecast::config::default_bundled_data);
            let v = training::evaluate(&bundled, &dirs)?;
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            for d in &dirs {
                eprintln!("rewrote {}", d.join("report.json").display());
            }
            Ok(())
        }
    }
}

/// Calls an admin endpoint and returns its JSON, turning an error reply into its message.
fn admin_json(
    info: &server::ServerInfo,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<serde_json::Value, CliError> {
    let resp = admin_client::request(info, method, path, body, timeout)?;
    let value: serde_json::Value = serde_json::from_str(&resp.body)
        .map_err(|e| CliError::Admin(format!("unreadable reply ({}): {e}", resp.status)))?;
    if resp.status != 200 {
        let message = value["error"]["message"].as_str().unwrap_or(&resp.body);
        // The server words its errors for HTTP callers; say them in the CLI's words.
        let message = message.strip_prefix("request body is not valid: ").unwrap_or(message);
        return Err(CliError::Admin(message.to_string()));
    }
    Ok(value)
}

/// The running server on this data directory, if there is one.
fn running_server(config: &Config) -> Option<server::ServerInfo> {
    read_server_info(config).filter(admin_client::is_alive)
}

fn ingest(
    config: Config,
    files: Vec<PathBuf>,
    json: bool,
    max_refs_per_paper: Option<usize>,
) -> Result<(), CliError> {
    let mut paths = Vec::with_capacity(files.len());
    for f in files {
        let abs = std::fs::canonicalize(&f).map_err(|e| CliError::io(&f, e))?;
        paths.push(abs);
    }
    let reports: Vec<IngestReport> = if let Some(info) = running_server(&config) {
        eprintln!("server running at {} (pid {}): importing through it", info.addr, info.pid);
        let mut body = serde_json::json!({ "paths": paths });
        if let Some(n) = max_refs_per_paper {
            body["max_refs_per_paper"] = n.into();
        }
        let body = body.to_string();
        let value = admin_json(&info, "POST", "/admin/ingest", Some(&body), Duration::from_secs(3600))?;
        serde_json::from_value(value["reports"].clone()).map_err(|e| CliError::Admin(e.to_string()))?
    } else {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| CliError::io(&config.data_dir, e))?;
        let engine_config = config.engine();
        actix_web::rt::System::new().block_on(async move {
            let engine = Engine::start(&engine_config).map_err(CliError::engine)?;
            let progress = Some(citecast::cli::progress::reporter());
            engine
                .ingest
                .send(IngestFiles { paths, progress, max_refs_per_paper })
                .await
                .map_err(CliError::engine)?
                .map_err(CliError::engine)
        })?
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&reports).unwrap_or_default());
        return Ok(());
    }
    for r in &reports {
        println!("{}", r.file);
        println!(
            "  lines {}, papers: {} new, {} updated, {} unchanged; citations: {} new, {} unchanged",
            r.lines,
            r.papers_new,
            r.papers_updated,
            r.papers_unchanged,
            r.citations_new,
            r.citations_unchanged
        );
        if r.errors > 0 {
            println!("  {} lines rejected:", r.errors);
            for e in &r.error_samples {
                println!("    line {}: {}", e.line, e.reason);
            }
            if r.errors as usize > r.error_samples.len() {
                println!("    ... and {} more", r.errors as usize - r.error_samples.len());
            }
        }
    }
    let new: u64 = reports.iter().map(IngestReport::new_records).sum();
    println!("{new} new records");
    Ok(())
}

fn stats(config: Config, json: bool) -> Result<(), CliError> {
    let (stats, incomplete): (Stats, Vec<ImportRecord>) = if let Some(info) = running_server(&config) {
        let value = admin_json(&info, "GET", "/admin/stats", None, Duration::from_secs(30))?;
        let parse = |v: &serde_json::Value| v.clone();
        (
            serde_json::from_value(parse(&value["store"])).map_err(|e| CliError::Admin(e.to_string()))?,
            serde_json::from_value(parse(&value["imports_incomplete"])).unwrap_or_default(),
        )
    } else {
        if !config.data_dir.join("store").exists() {
            return Err(CliError::Usage(format!(
                "{} holds no citecast data; run `citecast serve` or `citecast ingest` first",
                config.data_dir.display()
            )));
        }
        let engine_config = config.engine();
        actix_web::rt::System::new().block_on(async move {
            let engine = Engine::start(&engine_config).map_err(CliError::engine)?;
            let stats =
                engine.store.send(GetStats).await.map_err(CliError::engine)?.map_err(CliError::engine)?;
            let imports =
                engine.store.send(ListImports).await.map_err(CliError::engine)?.map_err(CliError::engine)?;
            Ok::<_, CliError>((stats, citecast::papers::split_imports(imports).1))
        })?
    };
    if json {
        let mut v = serde_json::to_value(&stats).unwrap_or_default();
        v["imports_incomplete"] = serde_json::to_value(&incomplete).unwrap_or_default();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("papers      {}", stats.papers);
        println!("citations   {}", stats.citations);
        println!("authors     {}", stats.authors);
        println!(
            "submitted   {} .. {}",
            stats.first_submitted.as_deref().unwrap_or("-"),
            stats.last_submitted.as_deref().unwrap_or("-")
        );
        println!("store size  {:.1} MB", stats.size_on_disk_bytes as f64 / 1e6);
        for r in &incomplete {
            println!(
                "INCOMPLETE  import {} ({:?}, {} lines read) of {}: re-run it to complete it",
                r.id,
                r.status,
                r.lines,
                r.files.join(", ")
            );
        }
    }
    Ok(())
}

fn customers(config: Config, op: OpRequest) -> Result<(), CliError> {
    let value: serde_json::Value = if let Some(info) = running_server(&config) {
        let body = serde_json::to_string(&op).map_err(|e| CliError::Usage(e.to_string()))?;
        admin_json(&info, "POST", "/admin/op", Some(&body), Duration::from_secs(30))?
    } else {
        refuse_missing_default(&config)?;
        std::fs::create_dir_all(&config.data_dir).map_err(|e| CliError::io(&config.data_dir, e))?;
        let engine_config = config.engine();
        let tiers = config.tiers.clone();
        actix_web::rt::System::new().block_on(async move {
            let engine = Engine::start(&engine_config).map_err(CliError::engine)?;
            citecast::ops::operator::execute_as(&engine, &tiers, op, &citecast::outbound::admin::cli_actor())
                .await
                .map_err(|e| CliError::Usage(e.to_string()))
        })?
    };
    println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
    if value.get("secret").is_some() {
        eprintln!(
            "The secret above is shown once: store it now. Use it as 'Authorization: Bearer <secret>'."
        );
    }
    if let Some(refused) = value.get("refused").and_then(|r| r.as_array()).filter(|r| !r.is_empty()) {
        return Err(CliError::Engine(format!(
            "{} model director{} refused: {}",
            refused.len(),
            if refused.len() == 1 { "y" } else { "ies" },
            refused.iter().filter_map(|r| r.as_str()).collect::<Vec<_>>().join("; ")
        )));
    }
    Ok(())
}

/// An operator command run without --data-dir on a directory holding no data would
/// create an empty store whose customers and keys no server knows: refuse it instead,
/// naming where it looked.
fn refuse_missing_default(config: &Config) -> Result<(), CliError> {
    if config.data_dir_given || config.store_path_exists() {
        return Ok(());
    }
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| ".".into());
    Err(CliError::Usage(format!(
        "no citecast data in ./{DEFAULT_DATA_DIR} (the default data directory, looked for in {cwd}); \
         pass --data-dir DIR (or set CITECAST_DATA_DIR) naming the directory your server uses"
    )))
}

fn seal(dir: &std::path::Path) -> Result<(), CliError> {
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

/// The job names this build schedules.
fn job_names() -> Vec<String> {
    citecast::ops::jobs::default_specs().into_iter().map(|s| s.name).collect()
}

fn check_job(name: &str) -> Result<(), CliError> {
    let names = job_names();
    if names.iter().any(|n| n == name) {
        Ok(())
    } else {
        Err(CliError::Usage(format!("no job named '{name}'; the jobs are: {}", names.join(", "))))
    }
}

fn jobs(config: Config, action: JobsAction) -> Result<(), CliError> {
    let wait = matches!(action, JobsAction::Run { wait: true, .. });
    if let JobsAction::Run { name, .. }
    | JobsAction::Pause { name }
    | JobsAction::Resume { name }
    | JobsAction::Requeue { name }
    | JobsAction::Set { name, .. } = &action
    {
        check_job(name)?;
    }
    let (name, verb) = match &action {
        JobsAction::List => {
            let value = if let Some(info) = running_server(&config) {
                admin_json(&info, "GET", "/admin/jobs", None, Duration::from_secs(30))?
            } else {
                // Without a server nothing runs: show the saved book as it stands.
                let file = citecast::ops::jobs::JobsConfig::book_file(&config.data_dir);
                let bytes = std::fs::read(&file).map_err(|e| CliError::io(&file, e))?;
                let book: citecast_actors::schedule::JobBook = serde_json::from_slice(&bytes)
                    .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
                let now = citecast_actors::dates::now_secs();
                serde_json::json!({ "jobs": book.jobs(now), "dead_letters": book.dead_letters(), "history": book.history(None, 50), "server": "not running" })
            };
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            return Ok(());
        }
        JobsAction::Run { name, .. } => (name, "run"),
        JobsAction::Pause { name } => (name, "pause"),
        JobsAction::Resume { name } => (name, "resume"),
        JobsAction::Requeue { name } => (name, "requeue"),
        JobsAction::Set { name, schedule, daily_budget, no_budget, max_attempts } => {
            let info = running_server(&config).ok_or_else(|| {
                CliError::Usage("job settings change inside the running server: start it first".into())
            })?;
            let settings = citecast::ops::jobs::JobSettings {
                schedule: schedule.clone(),
                daily_budget: *daily_budget,
                no_budget: *no_budget,
                max_attempts: *max_attempts,
            };
            let body = serde_json::to_string(&settings).map_err(|e| CliError::Usage(e.to_string()))?;
            let path = format!("/admin/jobs/{name}");
            let value = admin_json(&info, "POST", &path, Some(&body), Duration::from_secs(30))?;
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            return Ok(());
        }
    };
    let info = running_server(&config).ok_or_else(|| {
        CliError::Usage(format!(
            "jobs run inside the server: start `citecast serve --data-dir {}` first",
            config.data_dir.display()
        ))
    })?;
    let value = admin_json(
        &info,
        "POST",
        &format!("/admin/jobs/{name}/{verb}"),
        Some("{}"),
        Duration::from_secs(30),
    )?;
    println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
    if let (true, Some(run_id)) = (wait, value["started"].as_u64()) {
        eprintln!("waiting for run {run_id} of '{name}' to end...");
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let jobs = admin_json(&info, "GET", "/admin/jobs", None, Duration::from_secs(30))?;
            let done = jobs["history"]
                .as_array()
                .and_then(|h| h.iter().find(|r| r["id"].as_u64() == Some(run_id)).cloned());
            if let Some(record) = done {
                println!("{}", serde_json::to_string_pretty(&record).unwrap_or_default());
                return match record["outcome"]["status"].as_str() {
                    Some("failed") => Err(CliError::Engine(format!(
                        "run {run_id} of '{name}' failed: {}",
                        record["outcome"]["error"].as_str().unwrap_or("no reason recorded")
                    ))),
                    _ => Ok(()),
                };
            }
        }
    }
    Ok(())
}

fn backup(config: Config, file: PathBuf) -> Result<(), CliError> {
    let parent = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(parent).map_err(|e| CliError::io(parent, e))?;
    let file = dir.join(file.file_name().ok_or_else(|| CliError::Usage("FILE must name a file".into()))?);
    let summary = if let Some(info) = running_server(&config) {
        let body = serde_json::json!({ "path": file }).to_string();
        admin_json(&info, "POST", "/admin/backup", Some(&body), Duration::from_secs(3600))?
    } else {
        if !config.store_path_exists() {
            return Err(CliError::Usage(format!("{} holds no citecast data", config.data_dir.display())));
        }
        let store = citecast_actors::store::Store::open(&config.engine().store_path(), &Default::default())
            .map_err(CliError::engine)?;
        if let Err(e) = citecast_actors::backup::remove_interrupted(&store) {
            tracing::warn!(error = %e, "cannot clear interrupted backups");
        }
        let index_dir = config.engine().index_path();
        let source = citecast_actors::backup::IndexSource { dir: &index_dir, live: None };
        let s = citecast_actors::backup::backup_with_index(&store, Some(source), &file)
            .map_err(CliError::engine)?;
        serde_json::to_value(s).unwrap_or_default()
    };
    println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command and every option or argument says what it is for in `--help`.
    #[test]
    fn every_subcommand_and_option_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() == "help" {
                    continue;
                }
                let here = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(format!("{here} (command)"));
                }
                walk(sub, &here, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "citecast", &mut missing);
        assert!(missing.is_empty(), "without help text:\n{}", missing.join("\n"));
    }
}
