//! The `citecast` command line: its definition and dispatch here, one file per command
//! group (`serve`, `data`, `customers`, `billing`, `models`, `jobs`); `main.rs` only parses and calls
//! [`run`].

pub mod billing;
pub mod customers;
pub mod data;
pub mod economics;
mod error;
pub mod forecast;
pub mod jobs;
pub mod models;
pub mod newsletter;
pub mod pricing;
pub mod progress;
pub mod referrals;
pub mod serve;
pub mod support;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub use error::CliError;

use crate::config::Config;
use crate::ops::operator::OpRequest;
use crate::outbound::admin as admin_client;
use crate::server::{self, read_server_info};

#[derive(Parser)]
#[command(name = "citecast", version, about = "Forecasts which research papers will become highly cited.")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where commands look for data when neither --data-dir nor CITECAST_DATA_DIR says.
const DEFAULT_DATA_DIR: &str = "citecast-data";

#[derive(Args, Clone)]
pub struct DataDir {
    /// Data directory holding the store and the search index [default: ./citecast-data].
    #[arg(long, env = "CITECAST_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Tier table (JSON, as src/accounts/tiers.json) replacing the built-in tiers.
    #[arg(long, env = "CITECAST_TIERS", global = true)]
    tiers: Option<PathBuf>,
}

impl DataDir {
    /// Whether a data directory was named (flag or `CITECAST_DATA_DIR`).
    pub fn given(&self) -> bool {
        self.data_dir.is_some()
    }

    fn config(self) -> Result<Config, CliError> {
        let given = self.data_dir.is_some();
        let mut config = Config::new(self.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)));
        config.data_dir_given = given;
        if let Some(path) = self.tiers {
            config.tiers = crate::accounts::tiers::Tiers::load(&path).map_err(CliError::Usage)?;
        }
        Ok(config)
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the JSON API. An empty data directory is first filled with the bundled
    /// hep-th data (about 30 s); meanwhile /healthz answers and /readyz says 503.
    Serve(Box<serve::ServeArgs>),
    /// Import papers (citecast JSON Lines, OpenAlex works, the arXiv metadata snapshot,
    /// Crossref works) and citations (TSV or SNAP edge list), gzip or plain. Papers
    /// before the citations that refer to them. See docs/ingest-format.md.
    /// Goes through the running server when one holds the data directory.
    Ingest {
        #[command(flatten)]
        dir: DataDir,
        /// Files to import, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// How paper records are read: auto (sniffed from each file's first record),
        /// citecast, openalex, arxiv or crossref. Citation files (TSV, edge list) are
        /// recognised whatever the format.
        #[arg(long, default_value = "auto", value_parser = parse_format)]
        format: citecast_actors::ingest::SourceFormat,
        /// The collection the papers go to, 1-40 of a-z, 0-9 and '-'. Default: the
        /// format's name (openalex, arxiv, crossref), or "default" for citecast files.
        #[arg(long, value_parser = parse_collection)]
        collection: Option<String>,
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
        action: customers::CustomerAction,
    },
    /// Subscriptions and invoices: mark an invoice paid (bank transfer), refund one, or
    /// show a customer's billing (prints JSON).
    Billing {
        #[command(flatten)]
        dir: DataDir,
        #[command(subcommand)]
        action: billing::BillingAction,
    },
    /// Pricing experiments: define variants of /pricing with a pre-registered stopping
    /// rule, see their report, stop them (through the running server; prints JSON).
    Pricing {
        #[command(flatten)]
        dir: DataDir,
        #[command(subcommand)]
        action: pricing::PricingAction,
    },
    /// Unit economics from the stored billing events (MRR, churn, ARPU, LTV, CAC, cohorts),
    /// or record marketing spend and costs.
    Economics {
        #[command(flatten)]
        dir: DataDir,
        /// Print every figure as JSON.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<economics::EconomicsAction>,
    },
    /// The newsletter's readers: import them from another list, or see subscribers and
    /// each issue's delivery (prints JSON).
    Newsletter {
        #[command(flatten)]
        dir: DataDir,
        #[command(subcommand)]
        action: newsletter::NewsletterAction,
    },
    /// Train the forecast models (both modes by default). With --data-dir: on what the
    /// store holds for one collection, splits derived from the data, registered as
    /// candidates (through the running server when there is one). With --from: on corpus
    /// files. Otherwise on the bundled data, reproducing the shipped models.
    Train {
        #[command(flatten)]
        dir: DataDir,
        #[command(flatten)]
        train: models::TrainArgs,
    },
    /// Re-evaluate models and rewrite their reports: with --data-dir, model VERSIONs on the
    /// live store's collection (optionally with --backtest); otherwise model directories
    /// on the bundled data or --from files (default: every model under --models-dir).
    Evaluate {
        #[command(flatten)]
        dir: DataDir,
        /// Model versions (with --data-dir) or model directories to evaluate.
        models: Vec<String>,
        /// Evaluate every model directory under this one (default: ./models).
        #[arg(long)]
        models_dir: Option<PathBuf>,
        /// Directory with the bundled papers.jsonl.gz and citations_dated.tsv.gz.
        #[arg(long)]
        bundled_data: Option<PathBuf>,
        /// Corpus files (citecast format) to evaluate on instead of the bundled data.
        #[arg(long, num_args = 1..)]
        from: Vec<PathBuf>,
        /// The collection of the live store to evaluate on (with --data-dir).
        #[arg(long, default_value = "default")]
        collection: String,
        /// Also backtest: retrain as of each of the last N cutoffs and score the period
        /// after it (ROC-AUC, PR-AUC, Brier, calibration with confidence intervals).
        #[arg(long, default_value_t = 0)]
        backtest: usize,
    },
    /// Forecast every stored paper (of a collection, of a submission date range) into a
    /// JSON Lines file, one forecast or error per paper, as POST /v1/forecasts/bulk
    /// streams them. Reads the store directly: stop the server first (or ask it).
    Forecast {
        #[command(flatten)]
        dir: DataDir,
        #[command(flatten)]
        args: forecast::ForecastArgs,
    },
    /// List the loaded forecast models, or hot-swap which one serves a mode.
    Models {
        #[command(flatten)]
        dir: DataDir,
        #[command(subcommand)]
        action: models::ModelAction,
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
    /// The scheduled jobs (`jobs --help` names them all). List them, run one now
    /// (`--wait` for its end), pause, resume, requeue or reschedule it. Needs the running
    /// server except for `list`.
    #[command(after_help = jobs::names_line())]
    Jobs {
        #[command(flatten)]
        dir: DataDir,
        #[command(subcommand)]
        action: jobs::JobsAction,
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
    /// Referral commissions: the monthly payout report (through the running server).
    Referrals {
        #[command(flatten)]
        dir: DataDir,
        #[command(subcommand)]
        action: referrals::ReferralsAction,
    },
    /// Support tickets: list them with the first-response and NPS figures, show, reply,
    /// close or reopen one (through the running server).
    Support {
        #[command(flatten)]
        dir: DataDir,
        #[command(subcommand)]
        action: support::SupportAction,
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

fn parse_format(s: &str) -> Result<citecast_actors::ingest::SourceFormat, String> {
    s.parse()
}

fn parse_collection(s: &str) -> Result<String, String> {
    citecast_actors::store::check_collection_name(s).map(|_| s.to_string())
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(args) => serve::serve(*args),
        Command::Ingest { dir, files, json, max_refs_per_paper, format, collection } => data::ingest(
            dir.config()?,
            files,
            json,
            data::IngestChoice { max_refs_per_paper, format, collection },
        ),
        Command::Stats { dir, json } => data::stats(dir.config()?, json),
        Command::Customers { dir, action } => customers::operate(dir.config()?, action.into_op()),
        Command::Billing { dir, action } => customers::operate(dir.config()?, action.into_op()),
        Command::Pricing { dir, action } => pricing::pricing(dir.config()?, action),
        Command::Economics { dir, json, action } => economics::economics(dir.config()?, json, action),
        Command::Newsletter { dir, action } => newsletter::newsletter(dir.config()?, action),
        Command::Backup { dir, file } => data::backup(dir.config()?, file),
        Command::Models { action: models::ModelAction::Seal { dir: model_dir }, .. } => {
            models::seal(&model_dir)
        }
        Command::Models { dir, action } => customers::operate(dir.config()?, action.into_op()),
        Command::Jobs { dir, action } => jobs::jobs(dir.config()?, action),
        Command::Support { dir, action } => support::support(dir.config()?, action),
        Command::Referrals { dir, action } => referrals::referrals(dir.config()?, action),
        Command::Audit { dir, after, limit } => {
            customers::operate(dir.config()?, OpRequest::Audit { after, limit })
        }
        Command::Archive { dir, older_than_days } => {
            customers::operate(dir.config()?, OpRequest::Archive { older_than_days })
        }
        Command::Restore { dir, file } => data::restore(dir.config()?, file),
        Command::Train { dir, train } => models::train(dir, train),
        Command::Forecast { dir, args } => forecast::forecast(dir, args),
        Command::Evaluate { dir, models, models_dir, bundled_data, from, collection, backtest } => {
            models::evaluate(
                dir,
                models::EvaluateArgs { models, models_dir, bundled_data, from, collection, backtest },
            )
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
