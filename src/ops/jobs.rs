//! The job scheduler actor: runs the named jobs of [`citecast_actors::schedule`] on their
//! schedules, one run per job at a time, and keeps the book in `DATA_DIR/jobs.json`.
//!
//! It lives in the binary rather than the engine crate because its jobs compose engine
//! actors with binary-level pieces (training, configuration). Each job's work is a
//! future of messages to the engine actors, so the scheduler's own thread never blocks;
//! training, the one CPU-heavy job, runs on a blocking thread.
//!
//! The jobs live with their features, each in its `job.rs`: `backup` and `archive`
//! (`ops`), `ingest` (`papers`: files dropped into `DATA_DIR/inbox`), `rollouts`,
//! `rescore` and `retrain` (`forecasts`), `churn` (`accounts`), `newsletter` and `billing`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix::prelude::*;
use citecast_actors::dates::now_secs;
use citecast_actors::schedule::{
    DeadLetter, JobBook, JobSpec, JobStatus, NotStarted, Outcome, RunRecord, Schedule, Trigger,
};
use citecast_actors::Engine;
use serde::Serialize;

use crate::ops::error::JobError;

/// Where jobs put and find things, from the one [`crate::config::Config`].
#[derive(Debug, Clone)]
pub struct JobsConfig {
    pub data_dir: PathBuf,
    pub backup_dir: PathBuf,
    /// Scheduled backups kept; older ones are deleted after a successful backup.
    pub backup_keep: usize,
    /// Forecast and usage records older than this move to the archive.
    pub archive_after_days: u32,
    pub bundled_data: PathBuf,
    /// The operator's alert webhook (`Config::alert_webhook`), for jobs that page them.
    pub alert_webhook: Option<String>,
}

impl JobsConfig {
    pub fn inbox(&self) -> PathBuf {
        self.data_dir.join("inbox")
    }

    pub fn book_file(data_dir: &Path) -> PathBuf {
        data_dir.join("jobs.json")
    }
}

/// A job's default schedule (`daily 03:00`, `every 5m`, ...), retry backoff and daily budget.
pub fn spec(name: &str, schedule: &str, backoff_secs: u64, budget: Option<u64>) -> JobSpec {
    let mut s = JobSpec::new(name, Schedule::parse(schedule).expect("built-in schedules parse"));
    s.backoff_secs = backoff_secs;
    s.daily_budget = budget;
    s
}

/// The built-in jobs and their default schedules.
pub fn default_specs() -> Vec<JobSpec> {
    all_jobs().into_iter().map(|j| j.spec).collect()
}

/// Runs and failures per job since the start, for `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobCounters {
    pub runs: BTreeMap<String, u64>,
    pub failures: BTreeMap<String, u64>,
    pub operations: BTreeMap<String, u64>,
}

pub struct Scheduler {
    book: JobBook,
    file: PathBuf,
    engine: Engine,
    accounts: std::sync::Arc<dyn crate::accounts::AccountStore>,
    issues: std::sync::Arc<dyn crate::newsletter::store::IssueStore>,
    config: JobsConfig,
    counters: JobCounters,
    /// The server's billing store, prices and mailer for the `billing` job.
    billing: Option<crate::billing::job::BillingJobSettings>,
}

impl Scheduler {
    /// Loads the saved book (or starts a new one), adds jobs this build knows that the
    /// book lacks, and fails any run a crash left marked as running.
    pub fn new(
        engine: Engine,
        accounts: std::sync::Arc<dyn crate::accounts::AccountStore>,
        issues: std::sync::Arc<dyn crate::newsletter::store::IssueStore>,
        config: JobsConfig,
    ) -> Scheduler {
        let now = now_secs();
        let file = JobsConfig::book_file(&config.data_dir);
        let saved = std::fs::read(&file).ok().and_then(|b| match serde_json::from_slice::<JobBook>(&b) {
            Ok(book) => Some(book),
            Err(e) => {
                tracing::error!(error = %e, file = %file.display(), "unreadable job book; starting a new one");
                None
            }
        });
        let mut book =
            saved.unwrap_or_else(|| JobBook::new(Vec::new(), now).expect("an empty book is valid"));
        let known: Vec<String> = book.jobs(now).into_iter().map(|j| j.name).collect();
        for s in default_specs() {
            if !known.contains(&s.name) {
                let name = s.name.clone();
                if let Err(e) = book.upsert(s, now) {
                    tracing::error!(error = %e, job = name, "job not added");
                }
            }
        }
        // A backup killed mid-write leaves its `.partial` file; it is never a backup.
        if let Ok(entries) = std::fs::read_dir(&config.backup_dir) {
            for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
                if p.extension().is_some_and(|x| x == "partial") {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        for r in book.recover_after_restart(now) {
            tracing::warn!(job = %r.record.job, "run interrupted by a restart; retried on its schedule");
        }
        let s = Scheduler {
            book,
            file,
            engine,
            accounts,
            issues,
            config,
            counters: JobCounters::default(),
            billing: None,
        };
        s.save();
        s
    }

    /// Gives the `billing` job the server's billing store, tier table and mailer (without
    /// them it opens the store itself, reads the built-in tiers and writes mail to the
    /// outbox).
    pub fn with_billing(mut self, settings: crate::billing::job::BillingJobSettings) -> Scheduler {
        self.billing = Some(settings);
        self
    }

    fn save(&self) {
        let bytes = serde_json::to_vec_pretty(&self.book).unwrap_or_default();
        if let Err(e) = citecast_actors::files::write_atomically(&self.file, &bytes) {
            tracing::error!(error = %e, file = %self.file.display(), "cannot save the job book");
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = now_secs();
        for name in self.book.due(now) {
            if let Err(why) = self.launch(&name, Trigger::Schedule, ctx) {
                tracing::debug!(job = name, ?why, "job not started");
            }
        }
    }

    fn launch(&mut self, name: &str, trigger: Trigger, ctx: &mut Context<Self>) -> Result<u64, NotStarted> {
        let started = self.book.start(name, trigger, now_secs());
        self.save();
        let ticket = started?;
        let run_id = ticket.run_id;
        let job_ctx = JobContext {
            engine: self.engine.clone(),
            accounts: self.accounts.clone(),
            issues: self.issues.clone(),
            config: self.config.clone(),
            billing: self.billing.clone(),
            budget: ticket.budget_left,
        };
        let work = run_job(name.to_string(), job_ctx);
        let job = name.to_string();
        tracing::info!(job, run_id, attempt = ticket.attempt, "job started");
        ctx.spawn(work.into_actor(self).map(move |result, act, _| {
            let (ops, failed) = match &result {
                Ok(n) => (*n, None),
                Err((n, e)) => (*n, Some(e.clone())),
            };
            *act.counters.runs.entry(job.clone()).or_default() += 1;
            *act.counters.operations.entry(job.clone()).or_default() += ops;
            match &failed {
                Some(e) => {
                    *act.counters.failures.entry(job.clone()).or_default() += 1;
                    tracing::error!(job, run_id, error = %e, "job failed");
                }
                None => tracing::info!(job, run_id, operations = ops, "job finished"),
            }
            match act.book.finish(run_id, result, now_secs()) {
                Ok(report) => {
                    if let Outcome::Failed { .. } = report.record.outcome {
                        tracing::warn!(job, step = ?report.step, "job failure recorded");
                    }
                }
                Err(e) => tracing::error!(error = %e, "job run not recorded"),
            }
            act.save();
        }));
        Ok(run_id)
    }
}

impl Actor for Scheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(Duration::from_secs(1), |act, ctx| act.tick(ctx));
    }
}

/// Everything the status pages and `citecast jobs list` show.
#[derive(Debug, Clone, Serialize)]
pub struct JobsReport {
    pub jobs: Vec<JobStatus>,
    pub dead_letters: Vec<DeadLetter>,
    pub history: Vec<RunRecord>,
    pub counters: JobCounters,
}

pub struct GetJobs {
    pub history: usize,
}

impl Message for GetJobs {
    type Result = JobsReportResult;
}

/// actix needs a named response type for a plain struct reply.
pub type JobsReportResult = Result<JobsReport, JobError>;

impl Handler<GetJobs> for Scheduler {
    type Result = JobsReportResult;
    fn handle(&mut self, m: GetJobs, _: &mut Self::Context) -> Self::Result {
        Ok(JobsReport {
            jobs: self.book.jobs(now_secs()),
            dead_letters: self.book.dead_letters(),
            history: self.book.history(None, m.history),
            counters: self.counters.clone(),
        })
    }
}

/// New settings for a job; absent fields keep their value.
#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    /// `every 10m`, `daily 03:00`, `weekly mon 06:00`, ...
    pub schedule: Option<String>,
    pub daily_budget: Option<u64>,
    /// Removes the daily budget.
    #[serde(default)]
    pub no_budget: bool,
    pub max_attempts: Option<u32>,
}

pub struct SetJob {
    pub name: String,
    pub settings: JobSettings,
}

impl Message for SetJob {
    type Result = Result<serde_json::Value, JobError>;
}

impl Handler<SetJob> for Scheduler {
    type Result = Result<serde_json::Value, JobError>;
    fn handle(&mut self, m: SetJob, _: &mut Self::Context) -> Self::Result {
        let mut spec = self.book.spec(&m.name).cloned().ok_or_else(|| JobError::Unknown(m.name.clone()))?;
        let before = serde_json::to_value(&spec).unwrap_or_default();
        let s = m.settings;
        if s.no_budget && s.daily_budget.is_some() {
            return Err(JobError::Refused("give either daily_budget or no_budget, not both".into()));
        }
        if let Some(text) = &s.schedule {
            spec.schedule = Schedule::parse(text).map_err(|e| JobError::Refused(e.to_string()))?;
        }
        if let Some(b) = s.daily_budget {
            spec.daily_budget = Some(b);
        }
        if s.no_budget {
            spec.daily_budget = None;
        }
        if let Some(n) = s.max_attempts {
            spec.max_attempts = n;
        }
        self.book.upsert(spec.clone(), now_secs()).map_err(|e| JobError::Refused(e.to_string()))?;
        self.save();
        Ok(serde_json::json!({ "before": before, "after": spec }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobAction {
    Run,
    Pause,
    Resume,
    /// Puts a job's dead letters back as a run now.
    Requeue,
}

pub struct ControlJob {
    pub name: String,
    pub action: JobAction,
}

impl Message for ControlJob {
    type Result = Result<serde_json::Value, JobError>;
}

impl Handler<ControlJob> for Scheduler {
    type Result = Result<serde_json::Value, JobError>;
    fn handle(&mut self, m: ControlJob, ctx: &mut Self::Context) -> Self::Result {
        let now = now_secs();
        let out = match m.action {
            JobAction::Run => match self.launch(&m.name, Trigger::Manual, ctx) {
                Ok(run_id) => serde_json::json!({ "started": run_id }),
                Err(NotStarted::UnknownJob) => return Err(JobError::Unknown(m.name)),
                Err(why) => return Err(JobError::Refused(format!("'{}' not started: {why}", m.name))),
            },
            JobAction::Pause => {
                self.book.pause(&m.name).map_err(|e| JobError::Refused(e.to_string()))?;
                serde_json::json!({ "paused": m.name })
            }
            JobAction::Resume => {
                self.book.resume(&m.name, now).map_err(|e| JobError::Refused(e.to_string()))?;
                serde_json::json!({ "resumed": m.name })
            }
            JobAction::Requeue => {
                let n = self
                    .book
                    .requeue_dead_letter(&m.name, now)
                    .map_err(|e| JobError::Refused(e.to_string()))?;
                serde_json::json!({ "requeued": n })
            }
        };
        self.save();
        Ok(out)
    }
}

/// A job's outcome: operations done, or those done and why it failed.
pub type JobResult = Result<u64, (u64, String)>;

/// A job run's work.
pub type JobFuture = std::pin::Pin<Box<dyn std::future::Future<Output = JobResult>>>;

/// What a job run is given.
#[derive(Clone)]
pub struct JobContext {
    pub engine: Engine,
    pub accounts: std::sync::Arc<dyn crate::accounts::AccountStore>,
    pub issues: std::sync::Arc<dyn crate::newsletter::store::IssueStore>,
    pub config: JobsConfig,
    /// The server's billing settings (see [`Scheduler::with_billing`]).
    pub billing: Option<crate::billing::job::BillingJobSettings>,
    /// What is left of the job's daily budget of operations, if it has one.
    pub budget: Option<u64>,
}

/// A job: its name and default schedule, and its work. Each feature lists its own in its
/// `job.rs`; [`all_jobs`] gathers them.
pub struct Job {
    pub spec: JobSpec,
    pub run: fn(JobContext) -> JobFuture,
}

/// A failure with no operations done.
pub fn fail<E: std::fmt::Display>(e: E) -> (u64, String) {
    (0, e.to_string())
}

/// Every job of this build.
pub fn all_jobs() -> Vec<Job> {
    [
        crate::ops::job::jobs(),
        crate::papers::job::jobs(),
        crate::forecasts::job::jobs(),
        crate::accounts::job::jobs(),
        crate::newsletter::job::jobs(),
        crate::billing::job::jobs(),
        crate::growth::job::jobs(),
        crate::contests::job::jobs(),
        crate::webhooks::job::jobs(),
        crate::support::job::jobs(),
        crate::retention::job::jobs(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

async fn run_job(name: String, ctx: JobContext) -> JobResult {
    match all_jobs().into_iter().find(|j| j.spec.name == name) {
        Some(job) => (job.run)(ctx).await,
        None => Err((0, format!("this build has no job '{name}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_jobs_have_valid_specs() {
        for s in default_specs() {
            s.validate().unwrap();
        }
    }
}
