//! The job scheduler actor: runs the named jobs of [`citecast_actors::schedule`] on their
//! schedules, one run per job at a time, and keeps the book in `DATA_DIR/jobs.json`.
//!
//! It lives in the binary rather than the engine crate because its jobs compose engine
//! actors with binary-level pieces (training, configuration). Each job's work is a
//! future of messages to the engine actors, so the scheduler's own thread never blocks;
//! training, the one CPU-heavy job, runs on a blocking thread.
//!
//! Jobs: `backup` (daily, keeps the newest N files), `archive` (daily: old forecast and
//! usage records into the archive tree), `rollouts` (guards and scheduled canary
//! stages), `ingest` (imports files dropped into `DATA_DIR/inbox`), `rescore`
//! (daily: re-forecasts the newest papers with the serving models, into the forecast log),
//! `retrain` (weekly, paused until an operator resumes it) and `churn` (daily: customers
//! whose usage dropped, went quiet or lost every key).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix::prelude::*;
use citecast_actors::actors::{
    ArchiveOld, BackupTo, ForecastPapers, IngestFiles, RecentPaperIds, RescanModels, TickRollouts,
};
use citecast_actors::dates::now_secs;
use citecast_actors::forecast::service::Route;
use citecast_actors::forecast::task::Mode;
use citecast_actors::schedule::{
    DeadLetter, JobBook, JobSpec, JobStatus, NotStarted, Outcome, RunRecord, Schedule, Trigger,
};
use citecast_actors::Engine;
use serde::Serialize;

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
}

impl JobsConfig {
    pub fn inbox(&self) -> PathBuf {
        self.data_dir.join("inbox")
    }

    pub fn book_file(data_dir: &Path) -> PathBuf {
        data_dir.join("jobs.json")
    }
}

fn spec(name: &str, schedule: &str, backoff_secs: u64, budget: Option<u64>) -> JobSpec {
    let mut s = JobSpec::new(name, Schedule::parse(schedule).expect("built-in schedules parse"));
    s.backoff_secs = backoff_secs;
    s.daily_budget = budget;
    s
}

/// The built-in jobs and their default schedules.
pub fn default_specs() -> Vec<JobSpec> {
    vec![
        spec("backup", "daily 03:00", 300, None),
        spec("archive", "daily 04:00", 300, Some(5_000_000)),
        spec("rollouts", "every 1m", 10, None),
        spec("ingest", "every 5m", 60, None),
        spec("rescore", "daily 05:00", 120, Some(200_000)),
        spec("retrain", "weekly sun 02:00", 600, None),
        spec("churn", "daily 06:00", 300, None),
        spec("newsletter", "weekly mon 06:00", 600, None),
    ]
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
    config: JobsConfig,
    counters: JobCounters,
}

impl Scheduler {
    /// Loads the saved book (or starts a new one), adds jobs this build knows that the
    /// book lacks, and fails any run a crash left marked as running.
    pub fn new(engine: Engine, config: JobsConfig) -> Scheduler {
        let now = now_secs();
        let file = JobsConfig::book_file(&config.data_dir);
        let saved = std::fs::read(&file).ok().and_then(|b| match serde_json::from_slice::<JobBook>(&b) {
            Ok(book) => Some(book),
            Err(e) => {
                tracing::error!(error = %e, file = %file.display(), "unreadable job book; starting a new one");
                None
            }
        });
        let fresh = saved.is_none();
        let mut book =
            saved.unwrap_or_else(|| JobBook::new(Vec::new(), now).expect("an empty book is valid"));
        let known: Vec<String> = book.jobs(now).into_iter().map(|j| j.name).collect();
        for s in default_specs() {
            if !known.contains(&s.name) {
                let name = s.name.clone();
                if let Err(e) = book.upsert(s, now) {
                    tracing::error!(error = %e, job = name, "job not added");
                }
                // Retraining takes the CPU for minutes: an operator opts in.
                if name == "retrain" && fresh {
                    let _ = book.pause(&name);
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
        let s = Scheduler { book, file, engine, config, counters: JobCounters::default() };
        s.save();
        s
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
        let work = run_job(name.to_string(), ticket.budget_left, self.engine.clone(), self.config.clone());
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
pub type JobsReportResult = Result<JobsReport, String>;

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
    type Result = Result<serde_json::Value, String>;
}

impl Handler<SetJob> for Scheduler {
    type Result = Result<serde_json::Value, String>;
    fn handle(&mut self, m: SetJob, _: &mut Self::Context) -> Self::Result {
        let mut spec =
            self.book.spec(&m.name).cloned().ok_or_else(|| format!("no job named '{}'", m.name))?;
        let before = serde_json::to_value(&spec).unwrap_or_default();
        let s = m.settings;
        if s.no_budget && s.daily_budget.is_some() {
            return Err("give either daily_budget or no_budget, not both".into());
        }
        if let Some(text) = &s.schedule {
            spec.schedule = Schedule::parse(text).map_err(|e| e.to_string())?;
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
        self.book.upsert(spec.clone(), now_secs()).map_err(|e| e.to_string())?;
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
    type Result = Result<serde_json::Value, String>;
}

impl Handler<ControlJob> for Scheduler {
    type Result = Result<serde_json::Value, String>;
    fn handle(&mut self, m: ControlJob, ctx: &mut Self::Context) -> Self::Result {
        let now = now_secs();
        let out = match m.action {
            JobAction::Run => match self.launch(&m.name, Trigger::Manual, ctx) {
                Ok(run_id) => serde_json::json!({ "started": run_id }),
                Err(NotStarted::UnknownJob) => return Err(format!("no job named '{}'", m.name)),
                Err(why) => return Err(format!("'{}' not started: {why}", m.name)),
            },
            JobAction::Pause => {
                self.book.pause(&m.name).map_err(|e| e.to_string())?;
                serde_json::json!({ "paused": m.name })
            }
            JobAction::Resume => {
                self.book.resume(&m.name, now).map_err(|e| e.to_string())?;
                serde_json::json!({ "resumed": m.name })
            }
            JobAction::Requeue => {
                let n = self.book.requeue_dead_letter(&m.name, now).map_err(|e| e.to_string())?;
                serde_json::json!({ "requeued": n })
            }
        };
        self.save();
        Ok(out)
    }
}

type JobResult = Result<u64, (u64, String)>;

fn fail<E: std::fmt::Display>(e: E) -> (u64, String) {
    (0, e.to_string())
}

async fn run_job(name: String, budget: Option<u64>, engine: Engine, config: JobsConfig) -> JobResult {
    match name.as_str() {
        "backup" => backup(&engine, &config).await,
        "archive" => {
            let budget = budget.unwrap_or(u64::MAX).min(usize::MAX as u64) as usize;
            let msg = ArchiveOld::older_than(config.archive_after_days, budget);
            let out = engine.store.send(msg).await.map_err(fail)?.map_err(fail)?;
            Ok(out.forecasts_moved + out.usage_moved)
        }
        "rollouts" => Ok(engine.model.send(TickRollouts).await.map_err(fail)?.len() as u64),
        "ingest" => ingest_inbox(&engine, &config).await,
        "rescore" => rescore(&engine, budget).await,
        "retrain" => retrain(&engine, &config).await,
        "newsletter" => newsletter(&engine).await,
        "churn" => {
            let today = citecast_actors::dates::today();
            let (found, examined) = engine
                .store
                .send(citecast_actors::actors::ComputeChurn { today })
                .await
                .map_err(fail)?
                .map_err(fail)?;
            if !found.is_empty() {
                tracing::info!(customers = found.len(), "churn signals found");
            }
            Ok(examined)
        }
        other => Err((0, format!("this build has no job '{other}'"))),
    }
}

/// A timestamped backup into the backup directory, then retention.
async fn backup(engine: &Engine, config: &JobsConfig) -> JobResult {
    std::fs::create_dir_all(&config.backup_dir).map_err(fail)?;
    // Milliseconds keep two runs in one second apart; names still sort by time.
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_millis())
        .unwrap_or(0);
    let stamp = format!("{}-{millis:03}", citecast_actors::dates::format_secs_compact(now_secs()));
    let path = config.backup_dir.join(format!("citecast-{stamp}.ccbak"));
    let summary = engine.store.send(BackupTo(path)).await.map_err(fail)?.map_err(fail)?;
    prune_backups(&config.backup_dir, config.backup_keep).map_err(|e| (summary.entries, e.to_string()))?;
    Ok(summary.entries)
}

/// Deletes all but the newest `keep` scheduled backups (names sort by time).
pub fn prune_backups(dir: &Path, keep: usize) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("citecast-") && name.ends_with(".ccbak")
        })
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(keep.max(1));
    let removed: Vec<PathBuf> = files.drain(..excess).collect();
    for f in &removed {
        std::fs::remove_file(f)?;
    }
    Ok(removed)
}

/// Imports the files waiting in the inbox, oldest name first, and moves each to
/// `inbox/done` (or `inbox/failed` with its error beside it).
async fn ingest_inbox(engine: &Engine, config: &JobsConfig) -> JobResult {
    let inbox = config.inbox();
    let Ok(entries) = std::fs::read_dir(&inbox) else { return Ok(0) };
    let mut files: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    files.sort();
    let mut new = 0;
    for f in files {
        let name = f.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        let result = engine
            .ingest
            .send(IngestFiles { paths: vec![f.clone()], progress: None, max_refs_per_paper: None })
            .await
            .map_err(fail)?;
        match result {
            Ok(reports) => {
                new += reports.iter().map(|r| r.new_records()).sum::<u64>();
                let done = inbox.join("done");
                std::fs::create_dir_all(&done).map_err(|e| (new, e.to_string()))?;
                std::fs::rename(&f, done.join(&name)).map_err(|e| (new, e.to_string()))?;
            }
            Err(e) => {
                let failed = inbox.join("failed");
                let _ = std::fs::create_dir_all(&failed);
                let _ = std::fs::rename(&f, failed.join(&name));
                let _ =
                    std::fs::write(failed.join(format!("{}.error", name.to_string_lossy())), e.to_string());
                return Err((new, format!("{}: {e}", f.display())));
            }
        }
    }
    if new > 0 {
        // New data: warm the models step by step now rather than in the first forecasts.
        let engine = engine.clone();
        actix_web::rt::spawn(async move { crate::server::warm_models(&engine).await });
    }
    Ok(new)
}

/// Re-forecasts the newest papers in both modes with the serving models; the forecasts
/// go to the forecast log (papers too young for `early` are skipped, not failures).
async fn rescore(engine: &Engine, budget: Option<u64>) -> JobResult {
    let limit = budget.unwrap_or(1000).min(1000) as usize;
    let recent = engine.store.send(RecentPaperIds { limit }).await.map_err(fail)?.map_err(fail)?;
    let ids: Vec<String> = recent.into_iter().map(|(id, _)| id).collect();
    let mut done = 0;
    for mode in Mode::ALL {
        let route = Route { caller: Some("scheduler".into()), arm: None };
        let msg = ForecastPapers { ids: ids.clone(), mode, route };
        match engine.model.send(msg).await.map_err(fail)? {
            Ok(results) => done += results.iter().filter(|r| r.is_ok()).count() as u64,
            // No model for a mode is not the job's failure.
            Err(citecast_actors::forecast::service::ForecastError::NoModel(_)) => {}
            Err(e) => return Err((done, e.to_string())),
        }
    }
    Ok(done)
}

/// Papers in a newsletter issue.
const NEWSLETTER_ITEMS: usize = 10;

/// Builds this week's newsletter issue: the papers of the latest week of submissions in
/// the data, ranked by the serving `at_publication` model, the top ten kept. A week
/// already built is not built again.
async fn newsletter(engine: &Engine) -> JobResult {
    use citecast_actors::actors::{GetPaperRecord, SaveNewsletter};
    use citecast_actors::newsletter::{Issue, Item};
    let recent = engine.store.send(RecentPaperIds { limit: 5_000 }).await.map_err(fail)?.map_err(fail)?;
    let Some(&(_, week_to)) = recent.first() else { return Ok(0) };
    let week_from = week_to - 6;
    let ids: Vec<String> =
        recent.into_iter().take_while(|(_, d)| *d >= week_from).map(|(id, _)| id).collect();
    let route = Route { caller: Some("scheduler".into()), arm: None };
    let msg = ForecastPapers { ids: ids.clone(), mode: Mode::AtPublication, route };
    let mut forecasts: Vec<_> = engine
        .model
        .send(msg)
        .await
        .map_err(fail)?
        .map_err(fail)?
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    forecasts.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    forecasts.truncate(NEWSLETTER_ITEMS);
    let Some(model_version) = forecasts.first().map(|f| f.model_version.clone()) else { return Ok(0) };
    let mut items = Vec::new();
    for f in forecasts {
        let paper = engine
            .store
            .send(GetPaperRecord { id: f.paper_id.clone() })
            .await
            .map_err(fail)?
            .map_err(fail)?
            .ok_or_else(|| (0, format!("paper {} vanished while the issue was built", f.paper_id)))?;
        let why = f.top_features.first().map(|c| c.sentence.clone()).unwrap_or_default();
        items.push(Item {
            paper_id: f.paper_id,
            title: paper.title,
            authors: paper.authors.into_iter().map(|a| a.display).collect(),
            submitted: citecast_actors::dates::format(paper.submitted),
            probability: f.probability,
            label: f.label,
            why,
        });
    }
    let issue = Issue {
        number: 0,
        built_at: now_secs(),
        week_from: citecast_actors::dates::format(week_from),
        week_to: citecast_actors::dates::format(week_to),
        model_version,
        papers_considered: ids.len(),
        items,
    };
    let n = issue.items.len() as u64;
    let (number, new) = engine.store.send(SaveNewsletter(issue)).await.map_err(fail)?.map_err(fail)?;
    tracing::info!(number, new, "newsletter issue");
    Ok(if new { n } else { 0 })
}

/// Trains both modes from the bundled data into `DATA_DIR/models` with a new seed, then
/// loads them (they serve only after a rollout or promotion).
async fn retrain(engine: &Engine, config: &JobsConfig) -> JobResult {
    let bundled = config.bundled_data.clone();
    let models = config.data_dir.join("models");
    let seed = now_secs() as u64;
    let out = actix_web::rt::task::spawn_blocking(move || {
        let opts = citecast_actors::forecast::train::TrainOptions { seed, ..Default::default() };
        crate::forecasts::training::train(&bundled, &models, &Mode::ALL, &opts)
    })
    .await
    .map_err(fail)?
    .map_err(fail)?;
    let trained = out["models"].as_array().map(|a| a.len() as u64).unwrap_or(0);
    let (_, refused) = engine.model.send(RescanModels).await.map_err(fail)?.map_err(fail)?;
    if !refused.is_empty() {
        return Err((trained, refused.join("; ")));
    }
    Ok(trained)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_keeps_the_newest_backups_only() {
        let dir = tempfile::tempdir().unwrap();
        for stamp in ["20261101-030000", "20261102-030000", "20261103-030000", "20261104-030000"] {
            std::fs::write(dir.path().join(format!("citecast-{stamp}.ccbak")), b"x").unwrap();
        }
        std::fs::write(dir.path().join("manual.ccbak"), b"x").unwrap();
        let removed = prune_backups(dir.path(), 2).unwrap();
        assert_eq!(removed.len(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["citecast-20261103-030000.ccbak", "citecast-20261104-030000.ccbak", "manual.ccbak"]
        );
    }

    #[test]
    fn default_jobs_have_valid_specs() {
        for s in default_specs() {
            s.validate().unwrap();
        }
    }
}
