//! `citecast jobs`: the scheduler's jobs, through the running server.

use std::time::Duration;

use clap::Subcommand;

use super::{admin_json, running_server, CliError};
use crate::config::Config;

#[derive(Subcommand)]
pub enum JobsAction {
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

/// "Jobs: backup, archive, ..." for `jobs --help`, from the jobs this build schedules.
pub fn names_line() -> String {
    format!("Jobs: {}.", job_names().join(", "))
}

/// The job names this build schedules.
pub fn job_names() -> Vec<String> {
    crate::ops::jobs::default_specs().into_iter().map(|s| s.name).collect()
}

pub fn check_job(name: &str) -> Result<(), CliError> {
    let names = job_names();
    if names.iter().any(|n| n == name) {
        Ok(())
    } else {
        Err(CliError::Usage(format!("no job named '{name}'; the jobs are: {}", names.join(", "))))
    }
}

pub fn jobs(config: Config, action: JobsAction) -> Result<(), CliError> {
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
                let file = crate::ops::jobs::JobsConfig::book_file(&config.data_dir);
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
            let settings = crate::ops::jobs::JobSettings {
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
