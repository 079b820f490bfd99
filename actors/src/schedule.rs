//! The pure core of the in-process job scheduler: named jobs (re-ingest, rescore, newsletter,
//! backup, archive, churn signals, retrain) with a schedule, a run history, retries with
//! backoff, a dead-letter list and a daily operations budget.
//!
//! - The caller owns the clock and the threads. Every method takes `now` (unix seconds, UTC) and
//!   nothing here reads the system time, so tests walk across days and weeks instantly and an
//!   actor (or a plain loop) can drive the book without this module knowing about either.
//! - A [`JobBook`] is one serde value: specs, per-job state, the bounded history and the bounded
//!   dead-letter list. The caller persists it whole after each change; it stays small.
//! - A run has two halves: [`JobBook::start`] hands out a [`RunTicket`] and marks the job running,
//!   the work happens outside the book, and [`JobBook::finish`] records the outcome. Marking the
//!   job running at start is what keeps it from running twice at once; a run whose process died
//!   is failed by [`JobBook::recover_after_restart`] so no job stays stuck as running.
//! - Schedules are anchored to the UTC wall clock: `every` intervals are aligned to the unix epoch
//!   (as cron's `*/10` is), `daily` and `weekly` fire at fixed times. After a run the job is next
//!   due at the first slot strictly after the run finished, so the phase never drifts with run
//!   length, and slots missed to a slow run, downtime or a pause collapse into one run instead of
//!   a burst of catch-up runs.
//! - A failed run is retried after `backoff * 2^(k-1)` (capped at an hour) for the k-th
//!   consecutive failure; after `max_attempts` tries it goes to the dead-letter list and the job
//!   returns to its normal schedule, so one bad night does not stop tomorrow's run.
//! - The daily budget counts the operations runs report, per UTC day. A run is only started while
//!   some budget is left (the ticket says how much, so the job can limit itself); a run that
//!   overspends is still counted in full. Either way the job is deferred to the next UTC midnight,
//!   never dropped: its due time is kept, so it becomes due again when the day rolls over.
//! - Pause stops everything but an operator's explicit run-now, which is allowed while paused
//!   (the operator asked for it) but never while the job runs, and still respects the budget.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::dates;

/// Longest wait between retries, however many failures came before.
pub const MAX_BACKOFF_SECS: u64 = 3_600;
/// Runs kept in a book's history, per job.
pub const HISTORY_LIMIT: usize = 200;
/// Entries kept in a book's dead-letter list.
pub const DEAD_LETTER_LIMIT: usize = 100;
/// Longest `every` interval; longer cadences are what `weekly` is for.
pub const MAX_INTERVAL_SECS: u64 = 366 * 86_400;
/// The error recorded for a run that was still in progress when the process stopped.
pub const INTERRUPTED: &str = "interrupted by restart";

const DAY_SECS: i64 = 86_400;
const WEEK_SECS: i64 = 7 * DAY_SECS;
/// 1970-01-01 (day 0) was a Thursday: weekday 3 counting Monday as 0.
const EPOCH_WEEKDAY: i64 = 3;
/// Errors are kept in a persisted book, so a job dumping a whole response body must not bloat it.
const MAX_ERROR_CHARS: usize = 1_000;
const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const WEEKDAY_NAMES: [&str; 7] =
    ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
const USAGE: &str =
    "expected 'every <n>s|m|h|d', 'daily HH:MM', 'weekly <mon..sun> HH:MM' or 'monthly <1..28> HH:MM' (UTC)";

/// When a job is due. Serialised as its text (`"daily 03:00"`) so a config file reads like the
/// admin page and a hand-edited value is checked by the same parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Schedule {
    /// Every `secs` seconds, at multiples of `secs` since the unix epoch.
    Every { secs: u64 },
    /// Every day at `hour:minute` UTC.
    Daily { hour: u8, minute: u8 },
    /// Every week on `weekday` (0 = Monday) at `hour:minute` UTC.
    Weekly { weekday: u8, hour: u8, minute: u8 },
    /// Every month on day `day` (1-28, so every month has it) at `hour:minute` UTC.
    Monthly { day: u8, hour: u8, minute: u8 },
}

impl Schedule {
    /// Parses `every 30s`, `every 10m`, `every 6h`, `every 1d`, `daily 03:00` or
    /// `weekly mon 06:00` (full weekday names too; case and extra spaces do not matter).
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let bad = |reason: String| ScheduleError::BadSchedule { input: text.trim().to_string(), reason };
        let lower = text.to_ascii_lowercase();
        let words: Vec<&str> = lower.split_whitespace().collect();
        let Some((kind, args)) = words.split_first() else {
            return Err(bad(format!("it is empty; {USAGE}")));
        };
        match (*kind, args) {
            ("every", [interval]) => Ok(Schedule::Every { secs: parse_interval(interval).map_err(bad)? }),
            ("every", _) => Err(bad("'every' takes one interval, e.g. 'every 10m'".into())),
            ("daily", [time]) => {
                let (hour, minute) = parse_time(time).map_err(bad)?;
                Ok(Schedule::Daily { hour, minute })
            }
            ("daily", _) => Err(bad("'daily' takes one UTC time, e.g. 'daily 03:00'".into())),
            ("weekly", [day, time]) => {
                let weekday = parse_weekday(day).map_err(bad)?;
                let (hour, minute) = parse_time(time).map_err(bad)?;
                Ok(Schedule::Weekly { weekday, hour, minute })
            }
            ("weekly", _) => {
                Err(bad("'weekly' takes a weekday and a UTC time, e.g. 'weekly mon 06:00'".into()))
            }
            ("monthly", [day, time]) => {
                let day: u8 =
                    day.parse().ok().filter(|d| (1..=28).contains(d)).ok_or_else(|| {
                        bad(format!("day '{day}' is not 1 to 28 (every month has those days)"))
                    })?;
                let (hour, minute) = parse_time(time).map_err(bad)?;
                Ok(Schedule::Monthly { day, hour, minute })
            }
            ("monthly", _) => Err(bad(
                "'monthly' takes a day of the month (1-28) and a UTC time, e.g. 'monthly 1 03:00'".into(),
            )),
            (other, _) => Err(bad(format!("unknown kind '{other}'; {USAGE}"))),
        }
    }

    /// Checks a schedule built in code; parsed ones are always valid.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        let reason = match *self {
            Schedule::Every { secs: 0 } => "the interval must be at least 1 second",
            Schedule::Every { secs } if secs > MAX_INTERVAL_SECS => "the interval is longer than 366 days",
            Schedule::Daily { hour, .. } | Schedule::Weekly { hour, .. } | Schedule::Monthly { hour, .. }
                if hour > 23 =>
            {
                "hour is not 0-23"
            }
            Schedule::Daily { minute, .. }
            | Schedule::Weekly { minute, .. }
            | Schedule::Monthly { minute, .. }
                if minute > 59 =>
            {
                "minute is not 0-59"
            }
            Schedule::Weekly { weekday, .. } if weekday > 6 => "weekday is not 0 (Monday) to 6 (Sunday)",
            Schedule::Monthly { day, .. } if !(1..=28).contains(&day) => "day of the month is not 1-28",
            _ => return Ok(()),
        };
        Err(ScheduleError::BadSchedule { input: self.to_string(), reason: reason.to_string() })
    }

    /// The first due time strictly after `t`. Out-of-range fields (only possible for a schedule
    /// built in code and never validated) are clamped rather than allowed to panic.
    pub fn next_after(&self, t: i64) -> i64 {
        match *self {
            Schedule::Every { secs } => {
                let period = secs.clamp(1, MAX_INTERVAL_SECS) as i64;
                (t.div_euclid(period) + 1) * period
            }
            Schedule::Daily { hour, minute } => {
                let slot = utc_day(t) * DAY_SECS + time_of_day(hour, minute);
                if slot > t {
                    slot
                } else {
                    slot + DAY_SECS
                }
            }
            Schedule::Weekly { weekday, hour, minute } => {
                let day = utc_day(t);
                let monday = day - (day + EPOCH_WEEKDAY).rem_euclid(7);
                let slot = (monday + i64::from(weekday.min(6))) * DAY_SECS + time_of_day(hour, minute);
                if slot > t {
                    slot
                } else {
                    slot + WEEK_SECS
                }
            }
            Schedule::Monthly { day, hour, minute } => {
                let (y, m, _) = crate::dates::to_ymd(utc_day(t) as crate::dates::Day);
                let at = |y: i32, m: u32| {
                    i64::from(crate::dates::from_ymd(y, m, u32::from(day.clamp(1, 28)))) * DAY_SECS
                        + time_of_day(hour, minute)
                };
                let slot = at(y, m);
                if slot > t {
                    slot
                } else if m == 12 {
                    at(y + 1, 1)
                } else {
                    at(y, m + 1)
                }
            }
        }
    }
}

impl fmt::Display for Schedule {
    /// The canonical text: `Schedule::parse` of it gives the same schedule back, and intervals
    /// use the largest unit that divides them (`every 60m` shows as `every 1h`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Schedule::Every { secs } => {
                let (count, unit) = [(86_400, "d"), (3_600, "h"), (60, "m")]
                    .into_iter()
                    .find(|&(size, _)| secs > 0 && secs % size == 0)
                    .map_or((secs, "s"), |(size, unit)| (secs / size, unit));
                write!(f, "every {count}{unit}")
            }
            Schedule::Daily { hour, minute } => write!(f, "daily {hour:02}:{minute:02}"),
            Schedule::Weekly { weekday, hour, minute } => match WEEKDAYS.get(usize::from(weekday)) {
                Some(day) => write!(f, "weekly {day} {hour:02}:{minute:02}"),
                None => write!(f, "weekly day{weekday} {hour:02}:{minute:02}"),
            },
            Schedule::Monthly { day, hour, minute } => write!(f, "monthly {day} {hour:02}:{minute:02}"),
        }
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(s)
    }
}

impl TryFrom<String> for Schedule {
    type Error = ScheduleError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Schedule::parse(&text)
    }
}

impl From<Schedule> for String {
    fn from(schedule: Schedule) -> String {
        schedule.to_string()
    }
}

fn parse_interval(word: &str) -> Result<u64, String> {
    let Some(unit) = word.chars().last() else {
        return Err("the interval is empty".into());
    };
    let digits = &word[..word.len() - unit.len_utf8()];
    let unit_secs: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(format!("interval '{word}' needs a unit: s, m, h or d (e.g. 10m)")),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("interval '{word}' must be a whole number followed by s, m, h or d (e.g. 10m)"));
    }
    let secs = digits
        .parse::<u64>()
        .ok()
        .and_then(|count| count.checked_mul(unit_secs))
        .filter(|&secs| secs <= MAX_INTERVAL_SECS)
        .ok_or_else(|| {
            format!("interval '{word}' is longer than 366 days; use 'weekly' for long cadences")
        })?;
    if secs == 0 {
        return Err(format!("interval '{word}' must be at least 1 second"));
    }
    Ok(secs)
}

fn parse_time(word: &str) -> Result<(u8, u8), String> {
    let shape = || format!("time '{word}' must be HH:MM in UTC, e.g. 03:00");
    let (h, m) = word.split_once(':').ok_or_else(shape)?;
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !(1..=2).contains(&h.len()) || m.len() != 2 || !digits(h) || !digits(m) {
        return Err(shape());
    }
    let (hour, minute): (u8, u8) = (h.parse().map_err(|_| shape())?, m.parse().map_err(|_| shape())?);
    if hour > 23 {
        return Err(format!("hour {hour} in '{word}' is not 0-23"));
    }
    if minute > 59 {
        return Err(format!("minute {minute} in '{word}' is not 0-59"));
    }
    Ok((hour, minute))
}

fn parse_weekday(word: &str) -> Result<u8, String> {
    WEEKDAYS
        .iter()
        .position(|&d| d == word)
        .or_else(|| WEEKDAY_NAMES.iter().position(|&d| d == word))
        .map(|i| i as u8)
        .ok_or_else(|| format!("'{word}' is not a weekday (mon, tue, wed, thu, fri, sat, sun)"))
}

fn time_of_day(hour: u8, minute: u8) -> i64 {
    i64::from(hour.min(23)) * 3_600 + i64::from(minute.min(59)) * 60
}

fn utc_day(t: i64) -> i64 {
    t.div_euclid(DAY_SECS)
}

fn next_utc_midnight(t: i64) -> i64 {
    (utc_day(t) + 1) * DAY_SECS
}

/// `YYYY-MM-DD HH:MM UTC`, for messages an operator reads.
fn utc_text(t: i64) -> String {
    let day = dates::format(utc_day(t).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32);
    let secs = t.rem_euclid(DAY_SECS);
    format!("{day} {:02}:{:02} UTC", secs / 3_600, secs % 3_600 / 60)
}

/// Wait before the retry that follows the `failures`-th consecutive failure.
fn retry_delay(backoff_secs: u64, failures: u32) -> u64 {
    let factor = 2u64.saturating_pow(failures.saturating_sub(1));
    backoff_secs.saturating_mul(factor).min(MAX_BACKOFF_SECS)
}

/// Keeps at most [`HISTORY_LIMIT`] runs per job, so a job that runs every minute can't
/// push a daily job's runs out of the history.
fn push_history(list: &mut VecDeque<RunRecord>, item: RunRecord) {
    let job = item.job.clone();
    list.push_front(item);
    if list.iter().filter(|r| r.job == job).count() > HISTORY_LIMIT {
        if let Some(oldest) = list.iter().rposition(|r| r.job == job) {
            list.remove(oldest);
        }
    }
}

fn push_bounded<T>(list: &mut VecDeque<T>, item: T, limit: usize) {
    list.push_front(item);
    list.truncate(limit);
}

fn truncate_error(mut error: String) -> String {
    if let Some((cut, _)) = error.char_indices().nth(MAX_ERROR_CHARS) {
        error.truncate(cut);
        error.push('…');
    }
    error
}

fn default_max_attempts() -> u32 {
    3
}

fn default_backoff_secs() -> u64 {
    60
}

/// A job as configured. What the job does is the caller's: the book only knows its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    pub name: String,
    pub schedule: Schedule,
    /// Tries of one scheduled run (the first included) before it goes to the dead-letter list.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait before the first retry; each further retry doubles it, up to [`MAX_BACKOFF_SECS`].
    #[serde(default = "default_backoff_secs")]
    pub backoff_secs: u64,
    /// Operations the job may do per UTC day; `None` is unlimited.
    #[serde(default)]
    pub daily_budget: Option<u64>,
}

impl JobSpec {
    /// A spec with the defaults: 3 attempts, 60 s backoff, no budget.
    pub fn new(name: impl Into<String>, schedule: Schedule) -> JobSpec {
        JobSpec {
            name: name.into(),
            schedule,
            max_attempts: default_max_attempts(),
            backoff_secs: default_backoff_secs(),
            daily_budget: None,
        }
    }

    pub fn validate(&self) -> Result<(), ScheduleError> {
        let bad = |reason: &str| ScheduleError::BadJob { job: self.name.clone(), reason: reason.to_string() };
        // Names end up in admin URLs and log fields, so keep them plain.
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if self.name.is_empty() || self.name.len() > 64 || !self.name.chars().all(plain) {
            return Err(bad("the name must be 1-64 characters of letters, digits, '-', '_' or '.'"));
        }
        if self.max_attempts == 0 {
            return Err(bad("max_attempts must be at least 1"));
        }
        if self.daily_budget == Some(0) {
            return Err(bad("a daily budget of 0 never lets the job run; pause the job instead"));
        }
        self.schedule.validate()
    }
}

/// Why a run started. The due loop passes `Schedule`; the book records the reason the job became
/// due instead (`Retry` after a failure, `Manual` after a run-now), which only it knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Manual,
    Retry,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed {
        error: String,
    },
    /// Not run: the daily budget was spent; the job is due again from `until`.
    Deferred {
        until: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: u64,
    pub job: String,
    pub trigger: Trigger,
    pub started: i64,
    pub ended: i64,
    pub outcome: Outcome,
    pub operations: u64,
    /// 1 for the first try of a scheduled run, 2 for its first retry, and so on.
    pub attempt: u32,
}

/// A run in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStart {
    pub run_id: u64,
    pub trigger: Trigger,
    pub started: i64,
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub job: String,
    /// The run whose failure used the last attempt.
    pub run_id: u64,
    pub failed_at: i64,
    pub attempts: u32,
    pub last_error: String,
}

/// Permission to run one job once; hand `run_id` back to [`JobBook::finish`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunTicket {
    pub run_id: u64,
    pub job: String,
    pub trigger: Trigger,
    pub attempt: u32,
    /// Operations left in today's budget, so the job can stop early; `None` is unlimited.
    pub budget_left: Option<u64>,
}

/// Why [`JobBook::start`] did not start a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum NotStarted {
    UnknownJob,
    AlreadyRunning {
        since: i64,
    },
    Paused,
    /// A scheduled start asked for before the job is due.
    NotDue {
        next_due: i64,
    },
    /// Today's budget is spent: recorded as a deferred run, due again from `until`.
    OverBudget {
        until: i64,
    },
}

impl fmt::Display for NotStarted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotStarted::UnknownJob => write!(f, "no such job"),
            NotStarted::AlreadyRunning { since } => write!(f, "already running since {}", utc_text(*since)),
            NotStarted::Paused => write!(f, "the job is paused"),
            NotStarted::NotDue { next_due } => write!(f, "not due until {}", utc_text(*next_due)),
            NotStarted::OverBudget { until } => {
                write!(f, "today's operations budget is spent; deferred until {}", utc_text(*until))
            }
        }
    }
}

impl std::error::Error for NotStarted {}

/// What the book does with the job after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum NextStep {
    /// Back to the schedule (after a success).
    Scheduled,
    /// The run failed and will be tried again as attempt `attempt`.
    Retry { attempt: u32 },
    /// The run failed its last attempt: dead-lettered, and back to the schedule.
    DeadLettered,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FinishReport {
    pub record: RunRecord,
    pub step: NextStep,
    /// When the job is next due, deferral included.
    pub next_due: i64,
    /// Set when the run spent the rest of today's budget.
    pub deferred_until: Option<i64>,
}

/// One job as an admin page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobStatus {
    pub name: String,
    pub schedule: String,
    pub paused: bool,
    pub running_since: Option<i64>,
    pub running_run_id: Option<u64>,
    /// When the job is next due, deferral included.
    pub next_due: i64,
    /// What the next run will be recorded as.
    pub next_trigger: Trigger,
    /// Consecutive failures of the current scheduled run.
    pub attempt: u32,
    pub max_attempts: u32,
    pub ops_today: u64,
    pub daily_budget: Option<u64>,
    pub deferred_until: Option<i64>,
    pub last_outcome: Option<Outcome>,
    pub last_ended: Option<i64>,
    pub runs_in_history: usize,
    pub failures_in_history: usize,
    pub dead_letters: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleError {
    BadSchedule { input: String, reason: String },
    BadJob { job: String, reason: String },
    DuplicateJob(String),
    UnknownJob(String),
    UnknownRun(u64),
    Running { job: String, since: i64 },
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::BadSchedule { input, reason } => write!(f, "bad schedule '{input}': {reason}"),
            ScheduleError::BadJob { job, reason } => write!(f, "bad job '{job}': {reason}"),
            ScheduleError::DuplicateJob(job) => write!(f, "job '{job}' is configured twice"),
            ScheduleError::UnknownJob(job) => write!(f, "no job named '{job}'"),
            ScheduleError::UnknownRun(id) => {
                write!(f, "run {id} is not in progress (already finished, or failed by a restart)")
            }
            ScheduleError::Running { job, since } => {
                write!(f, "job '{job}' is running (since {})", utc_text(*since))
            }
        }
    }
}

impl std::error::Error for ScheduleError {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct JobState {
    paused: bool,
    running: Option<RunStart>,
    /// The schedule's (or retry's, or run-now's) due time; a budget deferral is kept apart in
    /// `deferred_until` so that lifting the deferral restores it.
    next_due: i64,
    /// What a `Trigger::Schedule` start at `next_due` is recorded as.
    pending: Trigger,
    /// Consecutive failures of the current scheduled run.
    attempt: u32,
    ops_today: u64,
    /// The UTC day number `ops_today` counts for.
    ops_day: i64,
    deferred_until: Option<i64>,
    last_run: Option<RunRecord>,
}

impl JobState {
    fn new(spec: &JobSpec, now: i64) -> JobState {
        JobState {
            paused: false,
            running: None,
            next_due: spec.schedule.next_after(now),
            pending: Trigger::Schedule,
            attempt: 0,
            ops_today: 0,
            ops_day: utc_day(now),
            deferred_until: None,
            last_run: None,
        }
    }

    fn effective_due(&self) -> i64 {
        self.deferred_until.map_or(self.next_due, |until| until.max(self.next_due))
    }

    /// Counts are per UTC day; the first touch on a new day starts it at zero.
    fn roll_day(&mut self, now: i64) {
        if utc_day(now) != self.ops_day {
            self.ops_day = utc_day(now);
            self.ops_today = 0;
        }
    }

    fn over_budget(&self, spec: &JobSpec, now: i64) -> bool {
        let ops_today = if utc_day(now) == self.ops_day { self.ops_today } else { 0 };
        spec.daily_budget.is_some_and(|budget| ops_today >= budget)
    }

    fn back_to_schedule(&mut self, spec: &JobSpec, now: i64) {
        self.attempt = 0;
        self.pending = Trigger::Schedule;
        self.next_due = spec.schedule.next_after(now);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Job {
    spec: JobSpec,
    state: JobState,
}

/// Every job's spec and state, the run history and the dead-letter list: the whole scheduler
/// state, persisted by the caller as one value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobBook {
    /// In configuration order, which the admin page keeps; books hold a handful of jobs, so a
    /// linear lookup is cheaper than a map keyed by a name the spec already carries.
    jobs: Vec<Job>,
    /// Newest first.
    history: VecDeque<RunRecord>,
    /// Newest first.
    dead_letters: VecDeque<DeadLetter>,
    /// Run ids stay unique across restarts because the counter is persisted with the book.
    next_run_id: u64,
}

impl JobBook {
    /// A book for `specs`, each first due at its schedule's next slot after `now`.
    pub fn new(specs: Vec<JobSpec>, now: i64) -> Result<JobBook, ScheduleError> {
        let mut book = JobBook {
            jobs: Vec::new(),
            history: VecDeque::new(),
            dead_letters: VecDeque::new(),
            next_run_id: 1,
        };
        for spec in specs {
            if book.find(&spec.name).is_some() {
                return Err(ScheduleError::DuplicateJob(spec.name));
            }
            book.upsert(spec, now)?;
        }
        Ok(book)
    }

    /// Adds a job or replaces an existing job's spec, keeping its state (history, counts,
    /// pause, a run in progress). A changed schedule moves the next due time to the new
    /// schedule unless a retry or run-now is pending, which is sooner and still owed.
    pub fn upsert(&mut self, spec: JobSpec, now: i64) -> Result<(), ScheduleError> {
        spec.validate()?;
        let Some(job) = self.find_mut(&spec.name) else {
            let state = JobState::new(&spec, now);
            self.jobs.push(Job { spec, state });
            return Ok(());
        };
        if job.spec.schedule != spec.schedule && job.state.pending == Trigger::Schedule {
            job.state.next_due = spec.schedule.next_after(now);
        }
        // A raised budget lifts today's deferral; a lowered one is caught at the next start.
        if !job.state.over_budget(&spec, now) {
            job.state.deferred_until = None;
        }
        job.spec = spec;
        Ok(())
    }

    /// The job's current settings.
    pub fn spec(&self, job: &str) -> Option<&JobSpec> {
        self.jobs.iter().find(|j| j.spec.name == job).map(|j| &j.spec)
    }

    /// Removes a job; its history and dead letters stay until they age out.
    pub fn remove(&mut self, job: &str) -> Result<JobSpec, ScheduleError> {
        let index = self.index(job)?;
        if let Some(run) = &self.jobs[index].state.running {
            return Err(ScheduleError::Running { job: job.to_string(), since: run.started });
        }
        Ok(self.jobs.remove(index).spec)
    }

    /// Jobs to start now, earliest due first: due by `now`, not running, not deferred past
    /// `now`, and not paused unless an operator asked to run it now.
    pub fn due(&self, now: i64) -> Vec<String> {
        let mut due: Vec<&Job> = self
            .jobs
            .iter()
            .filter(|j| j.state.running.is_none() && j.state.effective_due() <= now)
            .filter(|j| !j.state.paused || j.state.pending == Trigger::Manual)
            .collect();
        due.sort_by_key(|j| j.state.effective_due());
        due.into_iter().map(|j| j.spec.name.clone()).collect()
    }

    /// Marks `job` running and hands out its ticket. `Trigger::Schedule` is what the due loop
    /// passes and is refused before the job is due; `Trigger::Manual` starts it now, even when
    /// paused. Both are refused while the job runs or when today's budget is spent; the latter
    /// is recorded as a deferred run and, for a manual start, keeps the run-now owed.
    pub fn start(&mut self, job: &str, trigger: Trigger, now: i64) -> Result<RunTicket, NotStarted> {
        let Some(entry) = self.jobs.iter_mut().find(|j| j.spec.name == job) else {
            return Err(NotStarted::UnknownJob);
        };
        let (spec, state) = (&entry.spec, &mut entry.state);
        if let Some(run) = &state.running {
            return Err(NotStarted::AlreadyRunning { since: run.started });
        }
        let trigger = if trigger == Trigger::Schedule { state.pending } else { trigger };
        if state.paused && trigger != Trigger::Manual {
            return Err(NotStarted::Paused);
        }
        if trigger != Trigger::Manual && state.next_due > now {
            return Err(NotStarted::NotDue { next_due: state.effective_due() });
        }
        state.roll_day(now);
        let attempt = state.attempt + 1;
        let run_id = self.next_run_id;
        self.next_run_id += 1;
        if state.over_budget(spec, now) {
            let until = next_utc_midnight(now);
            state.deferred_until = Some(until);
            if trigger == Trigger::Manual {
                state.pending = Trigger::Manual;
                state.next_due = state.next_due.min(now);
            }
            let record = RunRecord {
                id: run_id,
                job: job.to_string(),
                trigger,
                started: now,
                ended: now,
                outcome: Outcome::Deferred { until },
                operations: 0,
                attempt,
            };
            state.last_run = Some(record.clone());
            push_history(&mut self.history, record);
            return Err(NotStarted::OverBudget { until });
        }
        state.running = Some(RunStart { run_id, trigger, started: now, attempt });
        state.deferred_until = None;
        let budget_left = spec.daily_budget.map(|budget| budget.saturating_sub(state.ops_today));
        Ok(RunTicket { run_id, job: job.to_string(), trigger, attempt, budget_left })
    }

    /// Records the end of run `run_id`: `Ok(operations)` or `Err((operations done before
    /// failing, error))`. Operations count against the UTC day of `now`, in full even past the
    /// budget. A failure is retried after the backoff until `max_attempts` tries, then
    /// dead-lettered; a success or a dead letter puts the job back on its schedule.
    pub fn finish(
        &mut self,
        run_id: u64,
        result: Result<u64, (u64, String)>,
        now: i64,
    ) -> Result<FinishReport, ScheduleError> {
        let entry = self
            .jobs
            .iter_mut()
            .find(|j| j.state.running.as_ref().is_some_and(|run| run.run_id == run_id))
            .ok_or(ScheduleError::UnknownRun(run_id))?;
        let (spec, state) = (&entry.spec, &mut entry.state);
        let Some(run) = state.running.take() else {
            return Err(ScheduleError::UnknownRun(run_id));
        };
        let (operations, failure) = match result {
            Ok(operations) => (operations, None),
            Err((operations, error)) => (operations, Some(truncate_error(error))),
        };
        state.roll_day(now);
        state.ops_today = state.ops_today.saturating_add(operations);
        let step = match &failure {
            None => {
                state.back_to_schedule(spec, now);
                NextStep::Scheduled
            }
            Some(_) if run.attempt < spec.max_attempts => {
                state.attempt = run.attempt;
                state.pending = Trigger::Retry;
                let delay = retry_delay(spec.backoff_secs, run.attempt);
                state.next_due = now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
                NextStep::Retry { attempt: run.attempt + 1 }
            }
            Some(error) => {
                let letter = DeadLetter {
                    job: spec.name.clone(),
                    run_id,
                    failed_at: now,
                    attempts: run.attempt,
                    last_error: error.clone(),
                };
                push_bounded(&mut self.dead_letters, letter, DEAD_LETTER_LIMIT);
                state.back_to_schedule(spec, now);
                NextStep::DeadLettered
            }
        };
        if state.over_budget(spec, now) {
            state.deferred_until = Some(next_utc_midnight(now));
        }
        let record = RunRecord {
            id: run_id,
            job: spec.name.clone(),
            trigger: run.trigger,
            started: run.started,
            // A clock stepped back mid-run must not give a negative duration.
            ended: now.max(run.started),
            outcome: failure.map_or(Outcome::Ok, |error| Outcome::Failed { error }),
            operations,
            attempt: run.attempt,
        };
        state.last_run = Some(record.clone());
        push_history(&mut self.history, record.clone());
        Ok(FinishReport {
            record,
            step,
            next_due: state.effective_due(),
            deferred_until: state.deferred_until,
        })
    }

    /// Call once after loading a persisted book, before the first start: runs the previous
    /// process left in progress can never finish, so each is failed with [`INTERRUPTED`] and
    /// takes the normal retry path instead of holding its job as running forever.
    pub fn recover_after_restart(&mut self, now: i64) -> Vec<FinishReport> {
        let interrupted: Vec<u64> =
            self.jobs.iter().filter_map(|j| j.state.running.as_ref().map(|run| run.run_id)).collect();
        interrupted
            .into_iter()
            .filter_map(|run_id| self.finish(run_id, Err((0, INTERRUPTED.to_string())), now).ok())
            .collect()
    }

    /// Stops scheduled runs and retries of `job` (a run in progress finishes normally).
    pub fn pause(&mut self, job: &str) -> Result<(), ScheduleError> {
        self.find_mut(job).ok_or_else(|| ScheduleError::UnknownJob(job.to_string()))?.state.paused = true;
        Ok(())
    }

    /// Lifts a pause. Slots missed while paused are skipped, not caught up (run-now is there for
    /// that); a pending retry or run-now is kept.
    pub fn resume(&mut self, job: &str, now: i64) -> Result<(), ScheduleError> {
        let entry = self.find_mut(job).ok_or_else(|| ScheduleError::UnknownJob(job.to_string()))?;
        let state = &mut entry.state;
        if state.paused {
            state.paused = false;
            if state.pending == Trigger::Schedule && state.next_due <= now {
                state.next_due = entry.spec.schedule.next_after(now);
            }
        }
        Ok(())
    }

    /// Makes `job` due now as a manual run, even while paused, and returns when it will be due
    /// (later than `now` when today's budget is spent). Refused while the job runs.
    pub fn run_now(&mut self, job: &str, now: i64) -> Result<i64, ScheduleError> {
        let entry = self.find_mut(job).ok_or_else(|| ScheduleError::UnknownJob(job.to_string()))?;
        let state = &mut entry.state;
        if let Some(run) = &state.running {
            return Err(ScheduleError::Running { job: job.to_string(), since: run.started });
        }
        state.next_due = state.next_due.min(now);
        state.pending = Trigger::Manual;
        Ok(state.effective_due())
    }

    /// A summary per job, in configuration order.
    pub fn jobs(&self, now: i64) -> Vec<JobStatus> {
        self.jobs
            .iter()
            .map(|Job { spec, state }| {
                let runs = || self.history.iter().filter(|r| r.job == spec.name);
                JobStatus {
                    name: spec.name.clone(),
                    schedule: spec.schedule.to_string(),
                    paused: state.paused,
                    running_since: state.running.as_ref().map(|run| run.started),
                    running_run_id: state.running.as_ref().map(|run| run.run_id),
                    next_due: state.effective_due(),
                    next_trigger: state.pending,
                    attempt: state.attempt,
                    max_attempts: spec.max_attempts,
                    ops_today: if utc_day(now) == state.ops_day { state.ops_today } else { 0 },
                    daily_budget: spec.daily_budget,
                    deferred_until: state.deferred_until.filter(|&until| until > now),
                    last_outcome: state.last_run.as_ref().map(|r| r.outcome.clone()),
                    last_ended: state.last_run.as_ref().map(|r| r.ended),
                    runs_in_history: runs().count(),
                    failures_in_history: runs()
                        .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
                        .count(),
                    dead_letters: self.dead_letters.iter().filter(|d| d.job == spec.name).count(),
                }
            })
            .collect()
    }

    /// The newest `limit` runs, of one job or of all, newest first.
    pub fn history(&self, job: Option<&str>, limit: usize) -> Vec<RunRecord> {
        self.history.iter().filter(|r| job.is_none_or(|job| r.job == job)).take(limit).cloned().collect()
    }

    /// Dead letters, newest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead_letters.iter().cloned().collect()
    }

    /// Forgets `job`'s dead letters (acknowledged by an operator); returns how many.
    pub fn clear_dead_letter(&mut self, job: &str) -> usize {
        let before = self.dead_letters.len();
        self.dead_letters.retain(|d| d.job != job);
        before - self.dead_letters.len()
    }

    /// Clears `job`'s dead letters and, if there were any, runs it now; returns how many.
    pub fn requeue_dead_letter(&mut self, job: &str, now: i64) -> Result<usize, ScheduleError> {
        let entry = self.find(job).ok_or_else(|| ScheduleError::UnknownJob(job.to_string()))?;
        if let Some(run) = &entry.state.running {
            return Err(ScheduleError::Running { job: job.to_string(), since: run.started });
        }
        let cleared = self.clear_dead_letter(job);
        if cleared > 0 {
            self.run_now(job, now)?;
        }
        Ok(cleared)
    }

    fn find(&self, job: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.spec.name == job)
    }

    fn find_mut(&mut self, job: &str) -> Option<&mut Job> {
        self.jobs.iter_mut().find(|j| j.spec.name == job)
    }

    fn index(&self, job: &str) -> Result<usize, ScheduleError> {
        self.jobs
            .iter()
            .position(|j| j.spec.name == job)
            .ok_or_else(|| ScheduleError::UnknownJob(job.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600;
    const D: i64 = 86_400;
    /// 2024-01-01 00:00 UTC, a Monday.
    const MON: i64 = 1_704_067_200;

    fn spec(name: &str, schedule: &str) -> JobSpec {
        JobSpec::new(name, Schedule::parse(schedule).unwrap())
    }

    fn failed(operations: u64, error: &str) -> Result<u64, (u64, String)> {
        Err((operations, error.to_string()))
    }

    fn status(book: &JobBook, job: &str, now: i64) -> JobStatus {
        book.jobs(now).into_iter().find(|s| s.name == job).unwrap()
    }

    #[test]
    fn schedules_round_trip_through_their_text() {
        for text in
            ["every 30s", "every 10m", "every 6h", "every 2d", "every 90s", "daily 03:00", "weekly mon 06:00"]
        {
            assert_eq!(Schedule::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Schedule::parse("every 10m").unwrap(), Schedule::Every { secs: 600 });
        assert_eq!(Schedule::parse("every 60m").unwrap().to_string(), "every 1h");
        assert_eq!(Schedule::parse("  Daily   3:05 ").unwrap(), Schedule::Daily { hour: 3, minute: 5 });
        assert_eq!(
            "WEEKLY Friday 18:30".parse::<Schedule>().unwrap(),
            Schedule::Weekly { weekday: 4, hour: 18, minute: 30 }
        );
        assert_eq!(Schedule::Weekly { weekday: 6, hour: 23, minute: 59 }.to_string(), "weekly sun 23:59");
    }

    #[test]
    fn bad_schedules_are_refused_with_the_reason() {
        let cases = [
            ("", "it is empty"),
            ("every", "'every' takes one interval"),
            ("every 0m", "at least 1 second"),
            ("every 10x", "needs a unit"),
            ("every 10é", "needs a unit"),
            ("every m", "whole number"),
            ("every -5m", "whole number"),
            ("every 400d", "longer than 366 days"),
            ("every 99999999999999999999s", "longer than 366 days"),
            ("daily 24:00", "hour 24 in '24:00' is not 0-23"),
            ("daily 03:60", "minute 60 in '03:60' is not 0-59"),
            ("daily 3", "must be HH:MM"),
            ("daily 003:00", "must be HH:MM"),
            ("daily 03:00 extra", "'daily' takes one UTC time"),
            ("weekly xyz 06:00", "'xyz' is not a weekday"),
            ("weekly mon", "'weekly' takes a weekday and a UTC time"),
            ("hourly", "unknown kind 'hourly'"),
        ];
        for (input, reason) in cases {
            let message = Schedule::parse(input).unwrap_err().to_string();
            assert!(message.contains(reason), "{input:?} gave {message:?}");
        }
        assert_eq!(
            Schedule::parse("daily 24:00").unwrap_err().to_string(),
            "bad schedule 'daily 24:00': hour 24 in '24:00' is not 0-23"
        );
    }

    #[test]
    fn every_is_aligned_to_the_epoch_and_strictly_after() {
        let every = Schedule::Every { secs: 600 };
        assert_eq!(every.next_after(0), 600);
        assert_eq!(every.next_after(599), 600);
        assert_eq!(every.next_after(600), 1_200);
        assert_eq!(every.next_after(-1), 0);
        assert_eq!(every.next_after(-600), 0);
        assert_eq!(Schedule::Every { secs: 6 * 3_600 }.next_after(MON + 5 * H), MON + 6 * H);
        assert_eq!(Schedule::Every { secs: 6 * 3_600 }.next_after(MON + 23 * H), MON + D);
    }

    #[test]
    fn daily_crosses_day_and_year_boundaries() {
        let daily = Schedule::Daily { hour: 3, minute: 0 };
        assert_eq!(daily.next_after(MON), MON + 3 * H);
        assert_eq!(daily.next_after(MON + 3 * H - 1), MON + 3 * H);
        assert_eq!(daily.next_after(MON + 3 * H), MON + D + 3 * H);
        assert_eq!(daily.next_after(MON + 23 * H), MON + D + 3 * H);
        // 2023-12-31 23:00 to 2024-01-01 00:30.
        assert_eq!(Schedule::Daily { hour: 0, minute: 30 }.next_after(MON - H), MON + 30 * 60);
        let midnight = Schedule::Daily { hour: 0, minute: 0 };
        assert_eq!(midnight.next_after(-1), 0);
        assert_eq!(midnight.next_after(0), D);
    }

    #[test]
    fn weekly_crosses_week_boundaries() {
        let monday = Schedule::parse("weekly mon 06:00").unwrap();
        assert_eq!(monday.next_after(MON), MON + 6 * H);
        assert_eq!(monday.next_after(MON + 6 * H), MON + 7 * D + 6 * H);
        assert_eq!(monday.next_after(MON + 6 * D + 23 * H), MON + 7 * D + 6 * H);
        let sunday = Schedule::parse("weekly sun 23:59").unwrap();
        assert_eq!(sunday.next_after(MON), MON + 6 * D + 23 * H + 59 * 60);
        // Day 0 was a Thursday.
        let thursday = Schedule::parse("weekly thu 00:00").unwrap();
        assert_eq!(thursday.next_after(-1), 0);
        assert_eq!(thursday.next_after(0), 7 * D);
        assert_eq!(Schedule::parse("weekly wed 12:00").unwrap().next_after(0), 6 * D + 12 * H);
        for weekday in 0..7u8 {
            let weekly = Schedule::Weekly { weekday, hour: 9, minute: 15 };
            for t in (MON - 30 * D..MON + 30 * D).step_by(4_999) {
                let next = weekly.next_after(t);
                assert!(next > t && next <= t + 7 * D, "{weekly} after {t} gave {next}");
                assert_eq!((utc_day(next) + EPOCH_WEEKDAY).rem_euclid(7), i64::from(weekday));
                assert_eq!(next.rem_euclid(D), 9 * H + 15 * 60);
            }
        }
    }

    #[test]
    fn never_runs_twice_at_once() {
        let mut book = JobBook::new(vec![spec("backup", "every 10m")], MON).unwrap();
        assert_eq!(book.due(MON + 599), Vec::<String>::new());
        assert_eq!(book.due(MON + 600), vec!["backup"]);
        let ticket = book.start("backup", Trigger::Schedule, MON + 600).unwrap();
        assert_eq!(
            ticket,
            RunTicket {
                run_id: 1,
                job: "backup".into(),
                trigger: Trigger::Schedule,
                attempt: 1,
                budget_left: None
            }
        );
        assert_eq!(book.due(MON + 1_800), Vec::<String>::new());
        let running = NotStarted::AlreadyRunning { since: MON + 600 };
        assert_eq!(book.start("backup", Trigger::Schedule, MON + 601), Err(running.clone()));
        assert_eq!(book.start("backup", Trigger::Manual, MON + 601), Err(running));
        assert_eq!(
            book.run_now("backup", MON + 601),
            Err(ScheduleError::Running { job: "backup".into(), since: MON + 600 })
        );
        assert_eq!(status(&book, "backup", MON + 601).running_since, Some(MON + 600));

        let report = book.finish(1, Ok(5), MON + 700).unwrap();
        assert_eq!(report.step, NextStep::Scheduled);
        assert_eq!(report.next_due, MON + 1_200);
        assert_eq!(report.record.operations, 5);
        assert_eq!(book.finish(1, Ok(5), MON + 701), Err(ScheduleError::UnknownRun(1)));
        assert_eq!(
            book.start("backup", Trigger::Schedule, MON + 700),
            Err(NotStarted::NotDue { next_due: MON + 1_200 })
        );
        assert_eq!(book.start("backup", Trigger::Manual, MON + 700).unwrap().run_id, 2);
        assert_eq!(book.start("nope", Trigger::Manual, MON), Err(NotStarted::UnknownJob));
    }

    #[test]
    fn failures_retry_with_exponential_backoff_then_dead_letter() {
        let ingest = JobSpec { max_attempts: 3, backoff_secs: 60, ..spec("ingest", "daily 03:00") };
        let mut book = JobBook::new(vec![ingest], MON).unwrap();
        let t = MON + 3 * H;
        assert_eq!(book.due(t), vec!["ingest"]);
        let first = book.start("ingest", Trigger::Schedule, t).unwrap();
        let report = book.finish(first.run_id, failed(2, "timeout"), t + 10).unwrap();
        assert_eq!(report.step, NextStep::Retry { attempt: 2 });
        assert_eq!(report.next_due, t + 70);
        assert_eq!(book.due(t + 69), Vec::<String>::new());
        assert_eq!(book.due(t + 70), vec!["ingest"]);

        let second = book.start("ingest", Trigger::Schedule, t + 70).unwrap();
        assert_eq!((second.trigger, second.attempt), (Trigger::Retry, 2));
        let report = book.finish(second.run_id, failed(0, "timeout"), t + 80).unwrap();
        assert_eq!((report.step, report.next_due), (NextStep::Retry { attempt: 3 }, t + 80 + 120));

        let third = book.start("ingest", Trigger::Schedule, t + 200).unwrap();
        assert_eq!((third.trigger, third.attempt), (Trigger::Retry, 3));
        let report = book.finish(third.run_id, failed(1, "boom"), t + 210).unwrap();
        assert_eq!(report.step, NextStep::DeadLettered);
        assert_eq!(report.next_due, MON + D + 3 * H, "back on the normal schedule");
        assert_eq!(
            book.dead_letters(),
            vec![DeadLetter {
                job: "ingest".into(),
                run_id: third.run_id,
                failed_at: t + 210,
                attempts: 3,
                last_error: "boom".into()
            }]
        );
        let history = book.history(Some("ingest"), 10);
        assert_eq!(history.iter().map(|r| r.attempt).collect::<Vec<_>>(), [3, 2, 1]);
        assert_eq!(
            history.iter().map(|r| r.trigger).collect::<Vec<_>>(),
            [Trigger::Retry, Trigger::Retry, Trigger::Schedule]
        );
        let now = status(&book, "ingest", t + 210);
        assert_eq!(
            (now.attempt, now.next_trigger, now.failures_in_history, now.dead_letters),
            (0, Trigger::Schedule, 3, 1)
        );
        assert_eq!(now.ops_today, 3);

        let tomorrow = book.start("ingest", Trigger::Schedule, MON + D + 3 * H).unwrap();
        assert_eq!((tomorrow.trigger, tomorrow.attempt), (Trigger::Schedule, 1));
        book.finish(tomorrow.run_id, Ok(1), MON + D + 3 * H + 5).unwrap();

        assert_eq!(book.requeue_dead_letter("ingest", MON + D + 4 * H), Ok(1));
        assert!(book.dead_letters().is_empty());
        assert_eq!(book.due(MON + D + 4 * H), vec!["ingest"]);
        assert_eq!(status(&book, "ingest", MON + D + 4 * H).next_trigger, Trigger::Manual);
        assert_eq!(book.requeue_dead_letter("ingest", MON + D + 4 * H), Ok(0));
        assert_eq!(book.requeue_dead_letter("nope", MON), Err(ScheduleError::UnknownJob("nope".into())));
    }

    #[test]
    fn backoff_doubles_and_is_capped_at_an_hour() {
        assert_eq!((1..=4).map(|k| retry_delay(1_000, k)).collect::<Vec<_>>(), [1_000, 2_000, 3_600, 3_600]);
        assert_eq!(retry_delay(60, 70), 3_600);
        assert_eq!(retry_delay(0, 1), 0);

        let archive = JobSpec { max_attempts: 10, backoff_secs: 1_000, ..spec("archive", "daily 04:00") };
        let mut book = JobBook::new(vec![archive], MON).unwrap();
        let mut now = MON + 4 * H;
        let mut waits = Vec::new();
        for _ in 0..4 {
            let ticket = book.start("archive", Trigger::Schedule, now).unwrap();
            let next = book.finish(ticket.run_id, failed(0, "disk full"), now).unwrap().next_due;
            waits.push(next - now);
            now = next;
        }
        assert_eq!(waits, [1_000, 2_000, 3_600, 3_600]);
        assert_eq!(status(&book, "archive", now).attempt, 4);
    }

    #[test]
    fn pause_resume_and_run_now() {
        let mut book = JobBook::new(vec![spec("newsletter", "weekly mon 06:00")], MON).unwrap();
        book.pause("newsletter").unwrap();
        assert_eq!(book.due(MON + 7 * H), Vec::<String>::new());
        assert_eq!(book.start("newsletter", Trigger::Schedule, MON + 7 * H), Err(NotStarted::Paused));

        // Resumed on Tuesday 9th: the missed Monday slot is skipped, not caught up.
        book.resume("newsletter", MON + 8 * D).unwrap();
        assert_eq!(status(&book, "newsletter", MON + 8 * D).next_due, MON + 14 * D + 6 * H);
        assert_eq!(book.due(MON + 8 * D), Vec::<String>::new());

        book.pause("newsletter").unwrap();
        let now = MON + 8 * D + H;
        assert_eq!(book.run_now("newsletter", now), Ok(now));
        assert_eq!(book.due(now), vec!["newsletter"], "run-now works while paused");
        let ticket = book.start("newsletter", Trigger::Schedule, now).unwrap();
        assert_eq!(ticket.trigger, Trigger::Manual);
        book.finish(ticket.run_id, Ok(40), now + 30).unwrap();
        let after = status(&book, "newsletter", now + 30);
        assert!(after.paused);
        assert_eq!((after.next_due, after.next_trigger), (MON + 14 * D + 6 * H, Trigger::Schedule));
        assert_eq!(after.last_outcome, Some(Outcome::Ok));
        assert_eq!(book.due(MON + 14 * D + 6 * H), Vec::<String>::new());
        assert_eq!(book.start("newsletter", Trigger::Manual, now + 60).unwrap().trigger, Trigger::Manual);

        assert_eq!(book.pause("nope"), Err(ScheduleError::UnknownJob("nope".into())));
        assert_eq!(book.resume("nope", MON), Err(ScheduleError::UnknownJob("nope".into())));
        assert_eq!(book.run_now("nope", MON), Err(ScheduleError::UnknownJob("nope".into())));
    }

    fn budget_book() -> JobBook {
        let rescore = JobSpec { daily_budget: Some(100), ..spec("rescore", "every 1h") };
        JobBook::new(vec![rescore], MON).unwrap()
    }

    #[test]
    fn spent_budget_defers_to_next_utc_midnight_and_the_job_comes_back() {
        let mut book = budget_book();
        let first = book.start("rescore", Trigger::Schedule, MON + H).unwrap();
        assert_eq!(first.budget_left, Some(100));
        let report = book.finish(first.run_id, Ok(60), MON + H + 10).unwrap();
        assert_eq!((report.next_due, report.deferred_until), (MON + 2 * H, None));

        let second = book.start("rescore", Trigger::Schedule, MON + 2 * H).unwrap();
        assert_eq!(second.budget_left, Some(40));
        // The run overspends: all its operations count, and the next run waits for the new day.
        let report = book.finish(second.run_id, Ok(70), MON + 2 * H + 10).unwrap();
        assert_eq!((report.next_due, report.deferred_until), (MON + D, Some(MON + D)));
        let today = status(&book, "rescore", MON + 2 * H + 10);
        assert_eq!((today.ops_today, today.deferred_until), (130, Some(MON + D)));
        assert_eq!(book.due(MON + D - 1), Vec::<String>::new());
        assert_eq!(
            book.start("rescore", Trigger::Schedule, MON + 3 * H),
            Err(NotStarted::OverBudget { until: MON + D })
        );
        assert_eq!(book.history(None, 1)[0].outcome, Outcome::Deferred { until: MON + D });

        assert_eq!(book.due(MON + D), vec!["rescore"], "deferred, not dropped");
        assert_eq!(status(&book, "rescore", MON + D).ops_today, 0);
        let next_day = book.start("rescore", Trigger::Schedule, MON + D).unwrap();
        assert_eq!((next_day.budget_left, next_day.trigger), (Some(100), Trigger::Schedule));
        let report = book.finish(next_day.run_id, Ok(10), MON + D + 20).unwrap();
        assert_eq!((report.next_due, report.deferred_until), (MON + D + H, None));
    }

    #[test]
    fn a_failing_run_that_overspends_retries_on_the_next_day() {
        let mut book = budget_book();
        let ticket = book.start("rescore", Trigger::Schedule, MON + H).unwrap();
        let report = book.finish(ticket.run_id, failed(150, "crashed"), MON + H + 5).unwrap();
        assert_eq!(report.step, NextStep::Retry { attempt: 2 });
        assert_eq!(report.next_due, MON + D);
        assert_eq!(book.due(MON + D), vec!["rescore"]);
        assert_eq!(book.start("rescore", Trigger::Schedule, MON + D).unwrap().trigger, Trigger::Retry);
    }

    #[test]
    fn manual_run_over_budget_is_recorded_deferred_and_stays_owed() {
        let mut book = budget_book();
        let ticket = book.start("rescore", Trigger::Schedule, MON + H).unwrap();
        book.finish(ticket.run_id, Ok(100), MON + H + 5).unwrap();

        assert_eq!(book.run_now("rescore", MON + 5 * H), Ok(MON + D));
        assert_eq!(
            book.start("rescore", Trigger::Manual, MON + 5 * H),
            Err(NotStarted::OverBudget { until: MON + D })
        );
        let deferred = &book.history(Some("rescore"), 1)[0];
        assert_eq!((deferred.trigger, deferred.operations), (Trigger::Manual, 0));
        assert_eq!(deferred.outcome, Outcome::Deferred { until: MON + D });
        assert_eq!(status(&book, "rescore", MON + 5 * H).last_outcome, Some(deferred.outcome.clone()));

        assert_eq!(book.due(MON + D), vec!["rescore"]);
        assert_eq!(book.start("rescore", Trigger::Schedule, MON + D).unwrap().trigger, Trigger::Manual);
    }

    #[test]
    fn raising_the_budget_lifts_todays_deferral() {
        let mut book = budget_book();
        let ticket = book.start("rescore", Trigger::Schedule, MON + H).unwrap();
        book.finish(ticket.run_id, Ok(100), MON + H + 5).unwrap();
        assert_eq!(book.due(MON + 2 * H), Vec::<String>::new());
        let bigger = JobSpec { daily_budget: Some(1_000), ..spec("rescore", "every 1h") };
        book.upsert(bigger, MON + 2 * H).unwrap();
        assert_eq!(book.due(MON + 2 * H), vec!["rescore"]);
        assert_eq!(book.start("rescore", Trigger::Schedule, MON + 2 * H).unwrap().budget_left, Some(900));
    }

    #[test]
    fn recover_after_restart_fails_interrupted_runs_into_the_retry_path() {
        let mut book =
            JobBook::new(vec![spec("backup", "every 10m"), spec("archive", "daily 04:00")], MON).unwrap();
        let ticket = book.start("backup", Trigger::Schedule, MON + 600).unwrap();
        let saved = serde_json::to_string(&book).unwrap();

        let mut loaded: JobBook = serde_json::from_str(&saved).unwrap();
        let reports = loaded.recover_after_restart(MON + 5_000);
        assert_eq!(reports.len(), 1);
        let report = &reports[0];
        assert_eq!(report.record.id, ticket.run_id);
        assert_eq!(report.record.outcome, Outcome::Failed { error: INTERRUPTED.into() });
        assert_eq!((report.record.started, report.record.ended), (MON + 600, MON + 5_000));
        assert_eq!(report.step, NextStep::Retry { attempt: 2 });
        assert_eq!(report.next_due, MON + 5_060);
        assert_eq!(status(&loaded, "backup", MON + 5_000).running_since, None);
        assert_eq!(loaded.finish(ticket.run_id, Ok(3), MON + 5_001), Err(ScheduleError::UnknownRun(1)));
        assert!(loaded.recover_after_restart(MON + 5_001).is_empty());

        let retry = loaded.start("backup", Trigger::Schedule, MON + 5_060).unwrap();
        assert_eq!((retry.run_id, retry.trigger, retry.attempt), (2, Trigger::Retry, 2));
    }

    #[test]
    fn book_round_trips_through_json() {
        let specs = vec![
            JobSpec { daily_budget: Some(50), ..spec("backup", "every 10m") },
            JobSpec { max_attempts: 1, ..spec("churn", "daily 02:00") },
            spec("retrain", "weekly sun 01:30"),
        ];
        let mut book = JobBook::new(specs, MON).unwrap();
        let backup = book.start("backup", Trigger::Schedule, MON + 600).unwrap();
        book.finish(backup.run_id, Ok(80), MON + 650).unwrap();
        let churn = book.start("churn", Trigger::Manual, MON + 700).unwrap();
        book.finish(churn.run_id, failed(2, "no signal"), MON + 710).unwrap();
        book.pause("retrain").unwrap();
        book.start("retrain", Trigger::Manual, MON + 800).unwrap();

        let json = serde_json::to_string(&book).unwrap();
        assert!(json.contains(r#""schedule":"every 10m""#), "{json}");
        assert!(json.contains(r#""outcome":{"status":"failed","error":"no signal"}"#), "{json}");
        let back: JobBook = serde_json::from_str(&json).unwrap();
        assert_eq!(back, book);
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert_eq!(back.dead_letters().len(), 1);
        assert_eq!(back.jobs(MON + 800), book.jobs(MON + 800));

        let minimal: JobSpec = serde_json::from_str(r#"{"name":"backup","schedule":"daily 03:00"}"#).unwrap();
        assert_eq!(minimal, spec("backup", "daily 03:00"));
        assert_eq!((minimal.max_attempts, minimal.backoff_secs, minimal.daily_budget), (3, 60, None));
        let bad = serde_json::from_str::<JobSpec>(r#"{"name":"x","schedule":"daily 25:00"}"#).unwrap_err();
        assert!(bad.to_string().contains("bad schedule 'daily 25:00'"), "{bad}");
        let status_json = serde_json::to_value(book.jobs(MON + 800)).unwrap();
        assert_eq!(status_json[2]["running_since"], MON + 800);
        assert_eq!(status_json[1]["last_outcome"]["status"], "failed");
    }

    #[test]
    fn upsert_keeps_state_and_follows_a_changed_schedule() {
        let mut book = JobBook::new(vec![spec("retrain", "weekly sun 02:00")], MON).unwrap();
        assert_eq!(status(&book, "retrain", MON).next_due, MON + 6 * D + 2 * H);
        let ticket = book.start("retrain", Trigger::Manual, MON + H).unwrap();
        book.finish(ticket.run_id, Ok(7), MON + H + 1).unwrap();

        book.upsert(spec("retrain", "daily 05:00"), MON + 2 * H).unwrap();
        let changed = status(&book, "retrain", MON + 2 * H);
        assert_eq!((changed.schedule.as_str(), changed.next_due), ("daily 05:00", MON + 5 * H));
        assert_eq!((changed.ops_today, changed.runs_in_history), (7, 1));

        book.upsert(JobSpec { max_attempts: 5, ..spec("retrain", "daily 05:00") }, MON + 6 * H).unwrap();
        let same = status(&book, "retrain", MON + 6 * H);
        assert_eq!((same.next_due, same.max_attempts), (MON + 5 * H, 5), "same schedule keeps the due time");

        // A pending retry is owed and survives a schedule change.
        let ticket = book.start("retrain", Trigger::Schedule, MON + 6 * H).unwrap();
        book.finish(ticket.run_id, failed(0, "oom"), MON + 6 * H).unwrap();
        book.upsert(spec("retrain", "weekly mon 00:00"), MON + 6 * H + 1).unwrap();
        assert_eq!(status(&book, "retrain", MON + 6 * H).next_due, MON + 6 * H + 60);

        book.upsert(spec("backup", "every 1h"), MON + 6 * H).unwrap();
        assert_eq!(book.jobs(MON).iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["retrain", "backup"]);
        let running = book.start("backup", Trigger::Manual, MON + 6 * H).unwrap();
        assert_eq!(
            book.remove("backup"),
            Err(ScheduleError::Running { job: "backup".into(), since: MON + 6 * H })
        );
        book.finish(running.run_id, Ok(0), MON + 6 * H).unwrap();
        assert_eq!(book.remove("backup").unwrap().name, "backup");
        assert_eq!(book.jobs(MON).len(), 1);
        assert_eq!(
            JobBook::new(vec![spec("a", "every 1m"), spec("a", "every 2m")], MON),
            Err(ScheduleError::DuplicateJob("a".into()))
        );
    }

    #[test]
    fn specs_are_validated() {
        let bad = |spec: JobSpec| spec.validate().unwrap_err().to_string();
        assert!(bad(spec("bad name!", "every 1m")).contains("the name must be"));
        assert!(bad(spec("", "every 1m")).contains("the name must be"));
        assert!(bad(JobSpec { max_attempts: 0, ..spec("a", "every 1m") }).contains("max_attempts"));
        assert!(bad(JobSpec { daily_budget: Some(0), ..spec("a", "every 1m") }).contains("pause the job"));
        assert_eq!(
            bad(JobSpec::new("a", Schedule::Daily { hour: 24, minute: 0 })),
            "bad schedule 'daily 24:00': hour is not 0-23"
        );
        assert!(bad(JobSpec::new("a", Schedule::Every { secs: 0 })).contains("at least 1 second"));
        assert!(
            bad(JobSpec::new("a", Schedule::Weekly { weekday: 7, hour: 1, minute: 0 })).contains("weekday")
        );
        let mut book = JobBook::new(Vec::new(), MON).unwrap();
        assert!(book.upsert(JobSpec { max_attempts: 0, ..spec("a", "every 1m") }, MON).is_err());
        assert!(book.jobs(MON).is_empty());
    }

    #[test]
    fn history_and_dead_letters_are_bounded_newest_first() {
        let flaky = JobSpec { max_attempts: 1, ..spec("flaky", "every 1m") };
        let mut book = JobBook::new(vec![flaky], MON).unwrap();
        for i in 0..250 {
            let ticket = book.start("flaky", Trigger::Manual, MON + i * 10).unwrap();
            let result = if i % 2 == 0 { Ok(1) } else { failed(0, &format!("failure {i}")) };
            book.finish(ticket.run_id, result, MON + i * 10 + 1).unwrap();
        }
        let all = book.history(None, 1_000);
        assert_eq!(all.len(), HISTORY_LIMIT);
        assert_eq!((all[0].id, all[HISTORY_LIMIT - 1].id), (250, 51));
        assert_eq!(book.history(Some("flaky"), 3).iter().map(|r| r.id).collect::<Vec<_>>(), [250, 249, 248]);
        assert!(book.history(Some("other"), 3).is_empty());
        let letters = book.dead_letters();
        assert_eq!(letters.len(), DEAD_LETTER_LIMIT);
        assert_eq!((letters[0].run_id, letters[0].last_error.as_str()), (250, "failure 249"));
        assert_eq!(book.clear_dead_letter("flaky"), DEAD_LETTER_LIMIT);
        assert!(book.dead_letters().is_empty());
    }

    #[test]
    fn long_errors_are_cut_and_messages_name_utc_times() {
        let mut book = JobBook::new(vec![spec("ingest", "every 1h")], MON).unwrap();
        let ticket = book.start("ingest", Trigger::Manual, MON).unwrap();
        let report = book.finish(ticket.run_id, Err((0, "é".repeat(5_000))), MON).unwrap();
        let Outcome::Failed { error } = report.record.outcome else { panic!("not a failure") };
        assert_eq!(error.chars().count(), MAX_ERROR_CHARS + 1);
        assert_eq!(utc_text(MON + 3 * H + 5 * 60), "2024-01-01 03:05 UTC");
        assert_eq!(
            NotStarted::OverBudget { until: MON + D }.to_string(),
            "today's operations budget is spent; deferred until 2024-01-02 00:00 UTC"
        );
    }

    #[test]
    fn monthly_schedules_parse_print_and_fall_due_once_a_month() {
        let m = Schedule::parse("monthly 1 03:00").unwrap();
        assert_eq!(m, Schedule::Monthly { day: 1, hour: 3, minute: 0 });
        assert_eq!(m.to_string(), "monthly 1 03:00");
        assert!(Schedule::parse("monthly 31 03:00").unwrap_err().to_string().contains("1 to 28"));
        assert!(Schedule::parse("monthly 03:00").is_err());
        let secs = |y, mo, d, h: i64| i64::from(crate::dates::from_ymd(y, mo, d)) * 86_400 + h * 3600;
        assert_eq!(m.next_after(secs(2026, 12, 4, 0)), secs(2027, 1, 1, 3));
        assert_eq!(m.next_after(secs(2027, 1, 1, 2)), secs(2027, 1, 1, 3));
        assert_eq!(m.next_after(secs(2027, 1, 1, 3)), secs(2027, 2, 1, 3));
    }
}
