//! Alert rules evaluated inside the server, over snapshots of its own metrics.
//!
//! citecast runs as one node with nothing beside it (no Prometheus, no Alertmanager), so
//! the server copies its cumulative counters and gauges into a [`Sample`] every ~10 s and
//! keeps the last day of them in a bounded [`History`] (8640 samples, about 1.5 MB). The
//! windowed figures the rules, the SLOs and the charts need are differences between
//! samples, computed like Prometheus' `increase()`: a counter that goes down means the
//! server restarted, and the value after the restart is the increase since it.
//!
//! An [`AlertEngine`] evaluates each [`Rule`] against the history: a condition that holds
//! makes the rule *pending*; once it has held for `for_secs` the rule is *firing*; when it
//! stops holding the alert is *resolved*. Only the two transitions that matter to a person
//! (firing, resolved) produce a [`Notification`], which is the deduplication: a condition
//! that stays true notifies once, and one that clears while pending notifies nobody.
//! Firings are kept in a bounded incident log for the status page.
//!
//! Notifications are plain values. The server writes each to the log
//! ([`Notification::log_line`]) and posts it to a webhook ([`WebhookSink`]): a blocking
//! POST through the one outbound client (`src/outbound`, HTTP or HTTPS, short timeouts,
//! two retries with backoff), to be called off the async workers.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Latency bucket upper bounds, seconds (the same as `/metrics`).
pub const LATENCY_BUCKETS: [f64; 12] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// A history whose newest sample is older than this (seconds before `now`) is stale: the
/// sampler has stopped, so rules keep their state rather than judge old numbers.
pub const STALE_AFTER_SECS: i64 = 120;

/// Incidents kept in the engine's log.
pub const INCIDENT_LOG_CAPACITY: usize = 200;

/// A snapshot of the server's metrics. Counters are cumulative since the process started
/// ("so far"); gauges are current values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Unix seconds.
    pub at: i64,
    /// HTTP requests answered so far.
    pub requests: u64,
    /// Of those, answered with a 5xx status.
    pub errors: u64,
    /// `latency_le[i]`: requests answered within `LATENCY_BUCKETS[i]` seconds, so far.
    pub latency_le: [u64; 12],
    /// Requests timed so far (including those slower than the last bucket).
    pub latency_count: u64,
    /// Background job runs so far.
    pub job_runs: u64,
    /// Of those, failed.
    pub job_failures: u64,
    /// Jobs that exhausted their retries and wait for an operator (current).
    pub dead_letters: u64,
    /// Used share of the data directory's filesystem, 0..1 (current).
    pub disk_used_ratio: f64,
    /// Drift score of the live forecast distribution against the model's validation
    /// distribution, e.g. a population stability index (current).
    pub model_drift: f64,
    /// Forecasts served so far.
    pub forecasts: u64,
}

/// What the counters added over a span of samples, restarts accounted for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Increase {
    /// Seconds from the first to the last sample of the span.
    pub secs: i64,
    pub requests: u64,
    pub errors: u64,
    pub latency_le: [u64; 12],
    pub latency_count: u64,
    pub job_runs: u64,
    pub job_failures: u64,
    pub forecasts: u64,
}

impl Increase {
    fn over<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Increase {
        let mut inc = Increase::default();
        let mut prev: Option<&Sample> = None;
        for cur in samples {
            if let Some(prev) = prev {
                inc.add_step(prev, cur);
            }
            prev = Some(cur);
        }
        inc
    }

    /// One step between consecutive samples. All counters restart together with the
    /// process, so any counter going down marks the step as a restart for all of them;
    /// judging them one by one could count a restart for errors but not for requests.
    fn add_step(&mut self, prev: &Sample, cur: &Sample) {
        let reset = cur.requests < prev.requests
            || cur.errors < prev.errors
            || cur.latency_count < prev.latency_count
            || cur.job_runs < prev.job_runs
            || cur.job_failures < prev.job_failures
            || cur.forecasts < prev.forecasts
            || cur.latency_le.iter().zip(&prev.latency_le).any(|(c, p)| c < p);
        let delta = |c: u64, p: u64| if reset { c } else { c - p };
        self.secs += cur.at - prev.at;
        self.requests += delta(cur.requests, prev.requests);
        self.errors += delta(cur.errors, prev.errors);
        for (i, le) in self.latency_le.iter_mut().enumerate() {
            *le += delta(cur.latency_le[i], prev.latency_le[i]);
        }
        self.latency_count += delta(cur.latency_count, prev.latency_count);
        self.job_runs += delta(cur.job_runs, prev.job_runs);
        self.job_failures += delta(cur.job_failures, prev.job_failures);
        self.forecasts += delta(cur.forecasts, prev.forecasts);
    }

    /// 5xx answers per request; `None` without traffic.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| (self.errors as f64 / self.requests as f64).min(1.0))
    }

    /// Requests timed, trusting the largest of the total and the last bucket.
    pub fn timed_requests(&self) -> u64 {
        self.latency_count.max(self.latency_le[LATENCY_BUCKETS.len() - 1])
    }

    /// 95th percentile latency, seconds; see [`latency_quantile`].
    pub fn p95_latency(&self) -> Option<f64> {
        latency_quantile(0.95, &self.latency_le, self.timed_requests())
    }

    /// `n` per second over the span; `None` for an empty span.
    pub fn per_second(&self, n: u64) -> Option<f64> {
        (self.secs > 0).then(|| n as f64 / self.secs as f64)
    }
}

/// The `q` quantile (0..1) of a latency histogram with cumulative bucket counts `le` over
/// [`LATENCY_BUCKETS`] and `count` observations in all, as Prometheus' `histogram_quantile`:
/// the bucket holding the `q * count`-th observation is found and the value interpolated
/// linearly inside it (the first bucket starts at 0). Observations beyond the last bound
/// are reported at that bound (5 s), the most the histogram can say. `None` when empty.
pub fn latency_quantile(q: f64, le: &[u64; 12], count: u64) -> Option<f64> {
    let total = count.max(le[le.len() - 1]);
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let (mut lower_bound, mut lower_count) = (0.0, 0u64);
    for (i, &bound) in LATENCY_BUCKETS.iter().enumerate() {
        let cumulative = le[i].max(lower_count);
        if cumulative as f64 >= rank {
            let in_bucket = (cumulative - lower_count) as f64;
            if in_bucket == 0.0 {
                return Some(lower_bound);
            }
            return Some(lower_bound + (bound - lower_bound) * (rank - lower_count as f64) / in_bucket);
        }
        (lower_bound, lower_count) = (bound, cumulative);
    }
    Some(LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1])
}

/// The figures [`History::series`] can chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesMetric {
    /// Requests per second.
    RequestRate,
    /// 5xx share of requests, 0..1 (intervals without traffic are left out).
    ErrorRate,
    /// 95th percentile latency, seconds (intervals without traffic are left out).
    P95Latency,
    /// Failed job runs in the interval.
    JobFailures,
    /// Forecasts per second.
    ForecastRate,
    /// Used share of the data directory's filesystem (the interval's highest).
    DiskUsedRatio,
    /// Model drift score (the interval's highest).
    ModelDrift,
}

/// The most recent samples, oldest first, at most `capacity` of them.
///
/// Windows end at the newest sample, not at the wall clock, so the figures are the same
/// whenever they are read; staleness is the engine's concern ([`STALE_AFTER_SECS`]).
#[derive(Debug, Clone)]
pub struct History {
    samples: VecDeque<Sample>,
    capacity: usize,
}

impl History {
    /// A history of at most `capacity` samples (at least 2).
    pub fn new(capacity: usize) -> History {
        let capacity = capacity.max(2);
        History { samples: VecDeque::with_capacity(capacity.min(16_384)), capacity }
    }

    /// Appends a sample, dropping the oldest when full. A sample at the newest sample's
    /// time replaces it; one older than it means the clock stepped back, and the history
    /// restarts from it rather than hold samples out of order.
    pub fn push(&mut self, sample: Sample) {
        if let Some(last) = self.samples.back_mut() {
            if sample.at == last.at {
                *last = sample;
                return;
            }
            if sample.at < last.at {
                self.samples.clear();
            }
        }
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn latest(&self) -> Option<&Sample> {
        self.samples.back()
    }

    /// Share of the last `secs` seconds the process was up and sampling: gaps between
    /// consecutive samples count as up to `max_gap` (a longer gap is downtime, for example
    /// between a crash and the restart). `None` without two samples in the window.
    /// Seconds from the first sample inside the last `secs` to `now`: the span the
    /// uptime ratio covers (shorter than the window for a young server).
    pub fn observed_secs(&self, secs: u64, now: i64) -> Option<u64> {
        let from = now - i64::try_from(secs).unwrap_or(i64::MAX);
        let first = self.samples.iter().map(|s| s.at).find(|&t| t >= from && t <= now)?;
        u64::try_from(now - first).ok()
    }

    pub fn uptime_ratio(&self, secs: u64, max_gap: u64, now: i64) -> Option<f64> {
        let from = now - i64::try_from(secs).unwrap_or(i64::MAX);
        let inside: Vec<i64> = self.samples.iter().map(|s| s.at).filter(|&t| t >= from && t <= now).collect();
        if inside.len() < 2 {
            return None;
        }
        let mut up: i64 = inside.windows(2).map(|w| (w[1] - w[0]).min(max_gap as i64)).sum();
        // Since the last sample: up, as long as it is recent (the server answering this
        // is the proof); a stale last sample means the gap since was downtime.
        let last = inside[inside.len() - 1];
        up += (now - last).min(max_gap as i64);
        let span = (now - inside[0]).max(1);
        Some((up as f64 / span as f64).clamp(0.0, 1.0))
    }

    /// Oldest first (for persisting; [`History::push`] them back in order).
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter()
    }

    /// Index of the oldest sample within `secs` of the newest.
    fn window_start(&self, secs: u64) -> Option<usize> {
        let last = self.samples.back()?;
        let cutoff = last.at.saturating_sub(i64::try_from(secs).unwrap_or(i64::MAX));
        Some(self.samples.partition_point(|s| s.at < cutoff))
    }

    /// The oldest and the newest sample of the last `secs` seconds (the same sample when
    /// the window holds one); `None` when the history is empty.
    pub fn window(&self, secs: u64) -> Option<(&Sample, &Sample)> {
        let start = self.window_start(secs)?;
        Some((&self.samples[start], self.samples.back()?))
    }

    /// Counter increases over the last `secs` seconds; `None` unless the window holds at
    /// least two samples.
    pub fn increase(&self, secs: u64) -> Option<Increase> {
        let start = self.window_start(secs)?;
        (self.samples.len() - start >= 2).then(|| Increase::over(self.samples.range(start..)))
    }

    /// 5xx share of requests over the window; `None` without traffic.
    pub fn error_rate(&self, secs: u64) -> Option<f64> {
        self.increase(secs)?.error_rate()
    }

    /// 95th percentile latency over the window, seconds; see [`latency_quantile`].
    pub fn p95_latency(&self, secs: u64) -> Option<f64> {
        self.increase(secs)?.p95_latency()
    }

    /// Failed job runs over the window.
    pub fn job_failures(&self, secs: u64) -> u64 {
        self.increase(secs).map_or(0, |i| i.job_failures)
    }

    /// Requests per second over the window.
    pub fn requests_rate(&self, secs: u64) -> Option<f64> {
        let inc = self.increase(secs)?;
        inc.per_second(inc.requests)
    }

    /// `metric` over the last `secs` seconds as at most `points` (time, value) pairs for a
    /// chart: the window is cut into `points` equal spans, each ending at a sample, and the
    /// point is stamped with that sample's time. Gauges also get a first point at the
    /// window's start.
    pub fn series(&self, metric: SeriesMetric, secs: u64, points: usize) -> Vec<(i64, f64)> {
        let Some(start) = self.window_start(secs) else { return Vec::new() };
        let window: Vec<&Sample> = self.samples.range(start..).collect();
        let points = points.max(1);
        let bounds: Vec<usize> = if window.len() <= points + 1 {
            (0..window.len()).collect()
        } else {
            let (t0, tn) = (window[0].at, window[window.len() - 1].at);
            let mut bounds: Vec<usize> = Vec::with_capacity(points + 1);
            for k in 0..=points {
                let t = t0 + ((tn - t0) as i128 * k as i128 / points as i128) as i64;
                let i = window.partition_point(|s| s.at <= t).saturating_sub(1);
                if bounds.last() != Some(&i) {
                    bounds.push(i);
                }
            }
            bounds
        };
        let gauge = |s: &Sample| match metric {
            SeriesMetric::DiskUsedRatio => Some(s.disk_used_ratio),
            SeriesMetric::ModelDrift => Some(s.model_drift),
            _ => None,
        };
        let mut out = Vec::with_capacity(bounds.len());
        if let Some(v) = gauge(window[bounds[0]]).filter(|v| v.is_finite()) {
            out.push((window[bounds[0]].at, v));
        }
        for pair in bounds.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let value = if gauge(window[b]).is_some() {
                window[a + 1..=b].iter().filter_map(|s| gauge(s)).filter(|v| v.is_finite()).reduce(f64::max)
            } else {
                let inc = Increase::over(window[a..=b].iter().copied());
                match metric {
                    SeriesMetric::RequestRate => inc.per_second(inc.requests),
                    SeriesMetric::ErrorRate => inc.error_rate(),
                    SeriesMetric::P95Latency => inc.p95_latency(),
                    SeriesMetric::JobFailures => Some(inc.job_failures as f64),
                    SeriesMetric::ForecastRate => inc.per_second(inc.forecasts),
                    SeriesMetric::DiskUsedRatio | SeriesMetric::ModelDrift => None,
                }
            };
            if let Some(v) = value {
                out.push((window[b].at, v));
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Needs attention within working hours.
    Warning,
    /// Needs attention now.
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What a rule watches. Every condition is "value above threshold".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Condition {
    /// 5xx share of requests over the window above `threshold`; not judged (clear) on
    /// fewer than `min_requests` requests, where one error is most of the rate.
    ErrorRateAbove { window_secs: u64, threshold: f64, min_requests: u64 },
    /// 95th percentile latency over the window above `seconds`; clear on fewer than
    /// `min_requests` requests, where one slow request is the percentile.
    P95LatencyAbove { window_secs: u64, seconds: f64, min_requests: u64 },
    /// At least `at_least` failed job runs over the window, or any dead-lettered job
    /// (which stays until an operator deals with it). Value: failures plus dead letters.
    JobFailures { window_secs: u64, at_least: u64 },
    /// Used share of the data directory's filesystem above `ratio`.
    DiskUsedAbove { ratio: f64 },
    /// Model drift score above `score`.
    ModelDriftAbove { score: f64 },
}

/// A condition judged against a history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// The watched figure, when there is one (an error rate needs traffic).
    pub value: Option<f64>,
    /// Whether the condition holds.
    pub holds: bool,
}

impl Condition {
    /// The line `value` is compared with.
    pub fn threshold(&self) -> f64 {
        match *self {
            Condition::ErrorRateAbove { threshold, .. } => threshold,
            Condition::P95LatencyAbove { seconds, .. } => seconds,
            Condition::JobFailures { at_least, .. } => at_least.max(1) as f64,
            Condition::DiskUsedAbove { ratio } => ratio,
            Condition::ModelDriftAbove { score } => score,
        }
    }

    /// `None` when the history cannot tell (too few samples, a gauge not measured): the
    /// rule then keeps its state, so a gap in the data neither fires nor resolves it.
    pub fn check(&self, history: &History) -> Option<Reading> {
        match *self {
            Condition::ErrorRateAbove { window_secs, threshold, min_requests } => {
                let inc = history.increase(window_secs)?;
                let value = inc.error_rate();
                let judged = inc.requests >= min_requests;
                Some(Reading { value, holds: judged && value.is_some_and(|v| v > threshold) })
            }
            Condition::P95LatencyAbove { window_secs, seconds, min_requests } => {
                let inc = history.increase(window_secs)?;
                let value = inc.p95_latency();
                let judged = inc.timed_requests() >= min_requests;
                Some(Reading { value, holds: judged && value.is_some_and(|v| v > seconds) })
            }
            Condition::JobFailures { window_secs, at_least } => {
                let failures = history.increase(window_secs)?.job_failures;
                let dead = history.latest()?.dead_letters;
                let holds = failures >= at_least.max(1) || dead > 0;
                Some(Reading { value: Some((failures + dead) as f64), holds })
            }
            Condition::DiskUsedAbove { ratio } => gauge(history.latest()?.disk_used_ratio, ratio),
            Condition::ModelDriftAbove { score } => gauge(history.latest()?.model_drift, score),
        }
    }
}

fn gauge(value: f64, above: f64) -> Option<Reading> {
    value.is_finite().then_some(Reading { value: Some(value), holds: value > above })
}

/// An alert rule. Names are unique, kebab-case, and name the runbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    /// One sentence saying what is wrong when it fires.
    pub description: String,
    pub condition: Condition,
    /// How long the condition must hold before the alert fires.
    pub for_secs: u64,
    pub severity: Severity,
    /// `docs/runbooks/<name>.md`.
    pub runbook: String,
}

impl Rule {
    pub fn new(
        name: &str,
        description: &str,
        condition: Condition,
        for_secs: u64,
        severity: Severity,
    ) -> Rule {
        Rule {
            name: name.to_string(),
            description: description.to_string(),
            condition,
            for_secs,
            severity,
            runbook: format!("docs/runbooks/{name}.md"),
        }
    }
}

/// The rules the server runs. Windows are long enough that one bad minute on a quiet
/// server does not page, and short enough that a real outage fires within minutes.
pub fn default_rules() -> Vec<Rule> {
    vec![
        Rule::new(
            "high-error-rate",
            "More than 1% of HTTP requests failed with a 5xx status over the last 5 minutes.",
            Condition::ErrorRateAbove { window_secs: 300, threshold: 0.01, min_requests: 20 },
            120,
            Severity::Critical,
        ),
        Rule::new(
            "high-p95-latency",
            "The 95th percentile of HTTP latency was above 250 ms over the last 5 minutes.",
            Condition::P95LatencyAbove { window_secs: 300, seconds: 0.25, min_requests: 20 },
            300,
            Severity::Warning,
        ),
        Rule::new(
            "job-failures",
            "A background job failed in the last 15 minutes, or a job is in the dead-letter queue.",
            Condition::JobFailures { window_secs: 900, at_least: 1 },
            0,
            Severity::Warning,
        ),
        Rule::new(
            "disk-almost-full",
            "The filesystem holding the data directory is more than 90% full.",
            Condition::DiskUsedAbove { ratio: 0.9 },
            120,
            Severity::Critical,
        ),
        Rule::new(
            "model-drift",
            "Live forecast scores drifted from the model's validation distribution (PSI above 0.25).",
            Condition::ModelDriftAbove { score: 0.25 },
            1800,
            Severity::Warning,
        ),
    ]
}

/// A rule's state: pending while the condition holds but not yet for `for_secs`, then
/// firing. `since` is when the condition started to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending { since: i64 },
    Firing { since: i64 },
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending { .. } => "pending",
            AlertState::Firing { .. } => "firing",
        }
    }

    pub fn since(self) -> Option<i64> {
        match self {
            AlertState::Inactive => None,
            AlertState::Pending { since } | AlertState::Firing { since } => Some(since),
        }
    }
}

/// The transitions people are told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    Firing,
    Resolved,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Firing => "firing",
            Transition::Resolved => "resolved",
        }
    }
}

/// One alert transition; its JSON is the webhook body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub alert: String,
    pub state: Transition,
    pub severity: Severity,
    /// The watched figure at the transition (`null` when there was none).
    pub value: Option<f64>,
    pub threshold: f64,
    /// When the condition started to hold (unix seconds).
    pub since: i64,
    /// When this transition happened (unix seconds).
    pub at: i64,
    pub runbook: String,
    pub description: String,
}

impl Notification {
    /// One logfmt line for the log sink, e.g. `alert=high-error-rate state=firing
    /// severity=critical value=0.034 threshold=0.01 since=… at=… runbook=… description="…"`.
    pub fn log_line(&self) -> String {
        let value = self.value.map_or_else(|| "none".to_string(), format_number);
        format!(
            "alert={} state={} severity={} value={} threshold={} since={} at={} runbook={} description=\"{}\"",
            self.alert,
            self.state.as_str(),
            self.severity.as_str(),
            value,
            format_number(self.threshold),
            self.since,
            self.at,
            self.runbook,
            self.description.replace('\\', "\\\\").replace('"', "\\\"")
        )
    }
}

/// Up to six decimals, trailing zeros trimmed, so log lines show `0.01`, not
/// `0.010000000000000002`.
fn format_number(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// A rule's state for the status page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertStatus {
    pub rule: String,
    pub description: String,
    pub severity: Severity,
    /// Serialised as `"state"` and, unless inactive, `"since"`.
    #[serde(flatten)]
    pub state: AlertState,
    /// The figure at the last evaluation that could judge it.
    pub value: Option<f64>,
    pub threshold: f64,
    pub runbook: String,
}

/// One firing of an alert, for the status page's incident list; persisted by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub alert: String,
    pub severity: Severity,
    pub fired_at: i64,
    /// `None` while it is firing.
    pub resolved_at: Option<i64>,
    /// Highest value seen from the condition starting to hold until it cleared.
    pub peak_value: f64,
}

#[derive(Debug, Clone, Default)]
struct RuleRuntime {
    state: Option<AlertState>,
    value: Option<f64>,
    peak: Option<f64>,
}

impl RuleRuntime {
    fn state(&self) -> AlertState {
        self.state.unwrap_or(AlertState::Inactive)
    }
}

/// Evaluates rules and remembers their states and incidents. Not thread-safe by itself:
/// the server keeps one behind a mutex (or in one task) and evaluates after each sample.
#[derive(Debug, Clone)]
pub struct AlertEngine {
    rules: Vec<Rule>,
    runtime: Vec<RuleRuntime>,
    /// Newest first.
    incidents: VecDeque<Incident>,
}

impl AlertEngine {
    /// Rule names must be unique: incidents are matched to rules by name.
    pub fn new(rules: Vec<Rule>) -> AlertEngine {
        debug_assert!(
            rules.iter().enumerate().all(|(i, r)| rules[..i].iter().all(|o| o.name != r.name)),
            "alert rule names must be unique"
        );
        let runtime = vec![RuleRuntime::default(); rules.len()];
        AlertEngine { rules, runtime, incidents: VecDeque::new() }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Takes back a persisted incident log (newest first). An incident still open for a
    /// known rule makes that rule firing again, so a restart neither repeats the firing
    /// notification nor loses the resolution; one for a rule that no longer exists is
    /// closed at `now`.
    pub fn restore_incidents(&mut self, incidents: Vec<Incident>, now: i64) {
        self.incidents = incidents.into_iter().take(INCIDENT_LOG_CAPACITY).collect();
        for incident in self.incidents.iter_mut().filter(|i| i.resolved_at.is_none()) {
            match self.rules.iter().position(|r| r.name == incident.alert) {
                Some(i) if self.runtime[i].state() == AlertState::Inactive => {
                    self.runtime[i] = RuleRuntime {
                        state: Some(AlertState::Firing { since: incident.fired_at }),
                        value: None,
                        peak: Some(incident.peak_value),
                    };
                }
                _ => incident.resolved_at = Some(now),
            }
        }
    }

    /// Judges every rule against `history` at `now` (unix seconds) and returns the
    /// notifications for the transitions this made: at most one per rule.
    pub fn evaluate(&mut self, history: &History, now: i64) -> Vec<Notification> {
        let fresh = history.latest().is_some_and(|s| now.saturating_sub(s.at) <= STALE_AFTER_SECS);
        let mut out = Vec::new();
        for (rule, rt) in self.rules.iter().zip(self.runtime.iter_mut()) {
            let Some(reading) = fresh.then(|| rule.condition.check(history)).flatten() else { continue };
            rt.value = reading.value;
            let notify = |state: Transition, since: i64| Notification {
                alert: rule.name.clone(),
                state,
                severity: rule.severity,
                value: reading.value,
                threshold: rule.condition.threshold(),
                since,
                at: now,
                runbook: rule.runbook.clone(),
                description: rule.description.clone(),
            };
            if !reading.holds {
                if let AlertState::Firing { since } = rt.state() {
                    out.push(notify(Transition::Resolved, since));
                    if let Some(open) = open_incident(&mut self.incidents, &rule.name) {
                        open.resolved_at = Some(now);
                    }
                }
                *rt = RuleRuntime { state: None, value: reading.value, peak: None };
                continue;
            }
            rt.peak = match (rt.peak, reading.value) {
                (Some(p), Some(v)) => Some(p.max(v)),
                (p, v) => p.or(v),
            };
            match rt.state() {
                AlertState::Inactive => rt.state = Some(AlertState::Pending { since: now }),
                AlertState::Firing { .. } => {
                    if let (Some(open), Some(peak)) =
                        (open_incident(&mut self.incidents, &rule.name), rt.peak)
                    {
                        open.peak_value = open.peak_value.max(peak);
                    }
                }
                AlertState::Pending { .. } => {}
            }
            if let AlertState::Pending { since } = rt.state() {
                let held = u64::try_from(now.saturating_sub(since)).unwrap_or(0);
                if held >= rule.for_secs {
                    rt.state = Some(AlertState::Firing { since });
                    out.push(notify(Transition::Firing, since));
                    if self.incidents.len() >= INCIDENT_LOG_CAPACITY {
                        // Drop the oldest resolved incident; open ones are still being updated.
                        let oldest = self.incidents.len() - 1;
                        let evict =
                            self.incidents.iter().rposition(|i| i.resolved_at.is_some()).unwrap_or(oldest);
                        self.incidents.remove(evict);
                    }
                    self.incidents.push_front(Incident {
                        alert: rule.name.clone(),
                        severity: rule.severity,
                        fired_at: now,
                        resolved_at: None,
                        peak_value: rt.peak.or(reading.value).unwrap_or(0.0),
                    });
                }
            }
        }
        out
    }

    /// Every rule with its state, in rule order.
    pub fn statuses(&self) -> Vec<AlertStatus> {
        self.rules
            .iter()
            .zip(&self.runtime)
            .map(|(rule, rt)| AlertStatus {
                rule: rule.name.clone(),
                description: rule.description.clone(),
                severity: rule.severity,
                state: rt.state(),
                value: rt.value,
                threshold: rule.condition.threshold(),
                runbook: rule.runbook.clone(),
            })
            .collect()
    }

    /// The rules that are pending or firing.
    pub fn active(&self) -> Vec<AlertStatus> {
        self.statuses().into_iter().filter(|s| s.state != AlertState::Inactive).collect()
    }

    /// The incident log, newest first (at most [`INCIDENT_LOG_CAPACITY`]).
    pub fn incidents(&self) -> Vec<Incident> {
        self.incidents.iter().cloned().collect()
    }
}

fn open_incident<'a>(incidents: &'a mut VecDeque<Incident>, alert: &str) -> Option<&'a mut Incident> {
    incidents.iter_mut().find(|i| i.alert == alert && i.resolved_at.is_none())
}

/// Failures of webhook configuration and delivery.
#[derive(Debug)]
pub enum AlertError {
    /// Not a usable `http(s)://host[:port][/path]` URL.
    BadUrl { url: String, reason: String },
    /// Any scheme but `http` and `https`.
    UnsupportedScheme { url: String, scheme: String },
    /// Resolving, connecting, writing or reading failed (including timeouts).
    Io { url: String, source: std::io::Error },
    /// The receiver answered with a status other than 2xx.
    Status { url: String, status: u16 },
    /// The receiver's answer did not start with an HTTP status line.
    MalformedReply { url: String },
}

impl fmt::Display for AlertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlertError::BadUrl { url, reason } => {
                write!(f, "webhook URL '{url}': {reason} (expected https://host[:port]/path or http://...)")
            }
            AlertError::UnsupportedScheme { url, scheme } => {
                write!(f, "webhook URL '{url}': {scheme}:// is not supported, only https:// and http://")
            }
            AlertError::Io { url, source } => write!(f, "webhook {url}: {source}"),
            AlertError::Status { url, status } => write!(f, "webhook {url} answered {status}, expected 2xx"),
            AlertError::MalformedReply { url } => write!(f, "webhook {url}: the reply is not HTTP"),
        }
    }
}

impl std::error::Error for AlertError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AlertError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The parts of an `http://` or `https://` URL a POST needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https://` (TLS) rather than `http://`.
    pub tls: bool,
    /// Host name or address, IPv6 without brackets.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// `host:port` as the `Host` header wants it.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

/// Parses `http(s)://host[:port][/path][?query]` (port 80 or 443 by default, a fragment
/// dropped).
/// Refuses other schemes, credentials in the URL, and whitespace or control characters
/// (which would let a URL inject request headers).
pub fn parse_http_url(url: &str) -> Result<HttpUrl, AlertError> {
    let bad = |reason: &str| AlertError::BadUrl { url: url.to_string(), reason: reason.to_string() };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains whitespace or control characters"));
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let tls = scheme.eq_ignore_ascii_case("https");
    if !tls && !scheme.eq_ignore_ascii_case("http") {
        return Err(AlertError::UnsupportedScheme {
            url: url.to_string(),
            scheme: scheme.to_ascii_lowercase(),
        });
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(bad("credentials in the URL are not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '[' in the host"))?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(|| bad("junk after the IPv6 address"))?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None if tls => 443,
        None => 80,
        Some(p) => {
            p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| bad("the port is not 1..65535"))?
        }
    };
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    Ok(HttpUrl { tls, host: host.to_string(), port, path })
}

/// Delivers notifications as JSON POSTs to an `https://` or `http://` URL.
#[derive(Clone)]
pub struct WebhookSink {
    url: HttpUrl,
    timeout: Duration,
    retries: u32,
    /// Built once per setting: its TLS configuration is not rebuilt per alert.
    client: crate::outbound::Client,
}

/// The delivery client: `timeout` per attempt, `retries` more after a failed one.
fn client(timeout: Duration, retries: u32) -> crate::outbound::Client {
    crate::outbound::Client::new(timeout).with_retries(retries, Duration::from_millis(500))
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("url", &self.url.to_string())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl WebhookSink {
    /// Connect, write and read timeouts (each).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// Checks the URL now, so a bad one fails at startup rather than at the first alert.
    pub fn new(url: &str) -> Result<WebhookSink, AlertError> {
        let (timeout, retries) = (WebhookSink::DEFAULT_TIMEOUT, 2);
        Ok(WebhookSink { url: parse_http_url(url)?, timeout, retries, client: client(timeout, retries) })
    }

    /// Each attempt's bound.
    pub fn with_timeout(mut self, timeout: Duration) -> WebhookSink {
        self.timeout = timeout;
        self.client = client(self.timeout, self.retries);
        self
    }

    /// Attempts after a failed one (no answer, 429 or 5xx); 2 by default.
    pub fn with_retries(mut self, retries: u32) -> WebhookSink {
        self.retries = retries;
        self.client = client(self.timeout, self.retries);
        self
    }

    pub fn url(&self) -> &HttpUrl {
        &self.url
    }

    /// POSTs `notification` as JSON and waits for the status line. Blocks for up to a few
    /// timeouts: call it from a thread of its own (or `web::block`), not an async worker.
    pub fn deliver(&self, notification: &Notification) -> Result<(), AlertError> {
        let body = serde_json::to_vec(notification).map_err(|e| self.io(e.into()))?;
        self.post_json(&body)
    }

    fn io(&self, source: std::io::Error) -> AlertError {
        AlertError::Io { url: self.url.to_string(), source }
    }

    fn post_json(&self, body: &[u8]) -> Result<(), AlertError> {
        use crate::outbound::OutboundError;
        let url = self.url.to_string();
        match self.client.post_json(&url, body) {
            Ok(reply) if (200..300).contains(&reply.status) => Ok(()),
            Ok(reply) => Err(AlertError::Status { url, status: reply.status }),
            Err(OutboundError::Protocol { .. }) => Err(AlertError::MalformedReply { url }),
            Err(OutboundError::Transport { message, kind, .. }) => {
                Err(AlertError::Io { url, source: std::io::Error::new(kind, message) })
            }
            Err(OutboundError::BadUrl { reason, .. }) => Err(AlertError::BadUrl { url, reason }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::thread;

    const STEP: i64 = 10;

    /// Adds `n` requests that each took `seconds`, `errors` of them 5xx.
    fn traffic(s: &mut Sample, n: u64, errors: u64, seconds: f64) {
        s.requests += n;
        s.errors += errors;
        s.latency_count += n;
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *b {
                s.latency_le[i] += n;
            }
        }
    }

    fn healthy(s: &mut Sample) {
        traffic(s, 10, 0, 0.02);
        s.job_runs += 1;
        s.disk_used_ratio = 0.5;
        s.model_drift = 0.05;
        s.forecasts += 5;
    }

    /// A server sampled every 10 s with one rule.
    struct Sim {
        history: History,
        engine: AlertEngine,
        cur: Sample,
        log: Vec<Notification>,
    }

    impl Sim {
        fn new(rule: Rule) -> Sim {
            let mut sim = Sim {
                history: History::new(8640),
                engine: AlertEngine::new(vec![rule]),
                cur: Sample::default(),
                log: vec![],
            };
            sim.cur.at = 1_700_000_000;
            sim
        }

        fn default_rule(name: &str) -> Sim {
            Sim::new(default_rules().into_iter().find(|r| r.name == name).expect("rule"))
        }

        fn now(&self) -> i64 {
            self.cur.at
        }

        fn state(&self) -> AlertState {
            self.engine.statuses()[0].state
        }

        /// One sample; returns this step's notifications.
        fn step(&mut self, f: fn(&mut Sample)) -> Vec<Notification> {
            self.cur.at += STEP;
            f(&mut self.cur);
            self.history.push(self.cur.clone());
            let n = self.engine.evaluate(&self.history, self.cur.at);
            self.log.extend(n.iter().cloned());
            n
        }

        /// Steps until `until` says stop (true) or `secs` pass; the stopping step's notes.
        fn run_until(
            &mut self,
            secs: i64,
            f: fn(&mut Sample),
            until: impl Fn(&Sim, &[Notification]) -> bool,
        ) -> Option<Vec<Notification>> {
            for _ in 0..secs / STEP {
                let n = self.step(f);
                if until(self, &n) {
                    return Some(n);
                }
            }
            None
        }

        fn run_quiet(&mut self, secs: i64, f: fn(&mut Sample)) {
            let noisy = self.run_until(secs, f, |_, n| !n.is_empty());
            assert_eq!(noisy, None, "no notification expected");
        }
    }

    /// Inactive → pending (no notification) → firing (one) → still firing (none) →
    /// resolved (one) → quiet, and one closed incident.
    fn lifecycle(name: &str, bad: fn(&mut Sample)) {
        let mut sim = Sim::default_rule(name);
        let rule = sim.engine.rules()[0].clone();
        sim.run_quiet(900, healthy);
        assert_eq!(sim.state(), AlertState::Inactive);

        let first =
            sim.run_until(3600, bad, |s, _| s.state() != AlertState::Inactive).expect("condition holds");
        let pending_since = sim.now();
        if rule.for_secs > 0 {
            assert!(first.is_empty(), "{name}: pending must not notify");
            assert_eq!(sim.state(), AlertState::Pending { since: pending_since });
            assert!(!sim.engine.active().is_empty());
            let fired = sim.run_until(7200, bad, |_, n| !n.is_empty()).expect("fires");
            assert_eq!(fired.len(), 1);
            assert_eq!(fired[0].state, Transition::Firing);
            assert_eq!(sim.now() - pending_since, rule.for_secs as i64, "{name}: fires after for_secs");
        } else {
            assert_eq!(first.len(), 1, "{name}: for_secs 0 fires at once");
            assert_eq!(first[0].state, Transition::Firing);
        }
        let fired = sim.log[0].clone();
        assert_eq!(fired.alert, name);
        assert_eq!(fired.since, pending_since);
        assert_eq!(fired.runbook, format!("docs/runbooks/{name}.md"));
        assert!(fired.value.expect("value") >= fired.threshold);
        assert!(matches!(sim.state(), AlertState::Firing { since } if since == pending_since));
        assert_eq!(sim.engine.incidents()[0].resolved_at, None);

        sim.run_quiet(3600, bad);
        assert!(matches!(sim.state(), AlertState::Firing { .. }), "{name}: stays firing");

        let resolved = sim.run_until(7200, healthy, |_, n| !n.is_empty()).expect("resolves");
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].state, Transition::Resolved);
        assert_eq!(resolved[0].since, pending_since);
        assert_eq!(sim.state(), AlertState::Inactive);
        sim.run_quiet(3600, healthy);
        assert_eq!(sim.log.len(), 2, "{name}: exactly one firing and one resolved");

        let incidents = sim.engine.incidents();
        assert_eq!(incidents.len(), 1);
        assert_eq!(incidents[0].alert, name);
        assert_eq!(incidents[0].fired_at, fired.at);
        assert_eq!(incidents[0].resolved_at, Some(resolved[0].at));
        assert!(incidents[0].peak_value >= fired.value.unwrap_or(0.0));
    }

    #[test]
    fn high_error_rate_fires_and_resolves() {
        lifecycle("high-error-rate", |s| {
            healthy(s);
            traffic(s, 10, 1, 0.02);
        });
    }

    #[test]
    fn high_p95_latency_fires_and_resolves() {
        lifecycle("high-p95-latency", |s| {
            healthy(s);
            traffic(s, 10, 0, 0.8);
        });
    }

    #[test]
    fn job_failures_fire_and_resolve() {
        lifecycle("job-failures", |s| {
            healthy(s);
            s.job_failures += 1;
        });
    }

    #[test]
    fn disk_almost_full_fires_and_resolves() {
        lifecycle("disk-almost-full", |s| {
            healthy(s);
            s.disk_used_ratio = 0.95;
        });
    }

    #[test]
    fn model_drift_fires_and_resolves() {
        lifecycle("model-drift", |s| {
            healthy(s);
            s.model_drift = 0.4;
        });
    }

    #[test]
    fn job_failures_with_a_delay_go_through_pending() {
        let mut rule = default_rules().into_iter().find(|r| r.name == "job-failures").unwrap();
        rule.for_secs = 60;
        let mut sim = Sim::new(rule);
        sim.run_quiet(600, healthy);
        assert!(sim
            .step(|s| {
                healthy(s);
                s.job_failures += 1
            })
            .is_empty());
        assert!(matches!(sim.state(), AlertState::Pending { .. }));
        let fired = sim.run_until(600, healthy, |_, n| !n.is_empty()).unwrap();
        assert_eq!(fired[0].state, Transition::Firing);
    }

    #[test]
    fn dead_letters_keep_the_job_alert_firing_until_cleared() {
        let mut sim = Sim::default_rule("job-failures");
        sim.run_quiet(600, healthy);
        let fired = sim.step(|s| {
            healthy(s);
            s.job_failures += 1;
            s.dead_letters = 1;
        });
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].value, Some(2.0));
        sim.run_quiet(3600, healthy); // failure long out of the window, dead letter still there
        assert!(matches!(sim.state(), AlertState::Firing { .. }));
        let resolved = sim.step(|s| {
            healthy(s);
            s.dead_letters = 0;
        });
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].state, Transition::Resolved);
    }

    #[test]
    fn pending_that_clears_notifies_nobody() {
        let mut sim = Sim::default_rule("disk-almost-full");
        sim.run_quiet(300, healthy);
        sim.step(|s| {
            healthy(s);
            s.disk_used_ratio = 0.95;
        });
        assert!(matches!(sim.state(), AlertState::Pending { .. }));
        sim.run_quiet(600, healthy);
        assert_eq!(sim.state(), AlertState::Inactive);
        assert!(sim.log.is_empty() && sim.engine.incidents().is_empty());
    }

    #[test]
    fn few_requests_do_not_judge_the_error_rate() {
        let mut sim = Sim::default_rule("high-error-rate");
        // One failing request per minute: a 100% error rate, but under 20 requests per 5 minutes.
        sim.run_quiet(3600, |s| {
            if s.at % 60 == 0 {
                traffic(s, 1, 1, 0.01);
            }
        });
        let status = &sim.engine.statuses()[0];
        assert_eq!(status.state, AlertState::Inactive);
        assert_eq!(status.value, Some(1.0));
    }

    #[test]
    fn stale_or_missing_data_keeps_the_state() {
        let mut sim = Sim::default_rule("disk-almost-full");
        sim.run_until(600, |s| s.disk_used_ratio = 0.95, |_, n| !n.is_empty()).expect("fires");
        // The sampler stops: evaluations long after the last sample change nothing.
        let later = sim.now() + 3600;
        assert!(sim.engine.evaluate(&sim.history, later).is_empty());
        assert!(matches!(sim.state(), AlertState::Firing { .. }));
        // An empty history (after a restart) cannot resolve it either.
        assert!(sim.engine.evaluate(&History::new(10), later).is_empty());
        assert!(matches!(sim.state(), AlertState::Firing { .. }));
    }

    #[test]
    fn restored_open_incident_resolves_without_firing_again() {
        let mut sim = Sim::default_rule("disk-almost-full");
        sim.run_until(600, |s| s.disk_used_ratio = 0.95, |_, n| !n.is_empty()).expect("fires");
        let saved = serde_json::to_string(&sim.engine.incidents()).unwrap();
        let stale = Incident {
            alert: "retired-rule".into(),
            severity: Severity::Warning,
            fired_at: 5,
            resolved_at: None,
            peak_value: 1.0,
        };
        let mut restored: Vec<Incident> = serde_json::from_str(&saved).unwrap();
        restored.push(stale);

        let mut restarted = Sim::default_rule("disk-almost-full");
        restarted.cur.at = sim.now();
        restarted.engine.restore_incidents(restored, sim.now());
        assert!(matches!(restarted.state(), AlertState::Firing { .. }));
        assert_eq!(restarted.engine.incidents()[1].resolved_at, Some(sim.now()));
        restarted.run_quiet(300, |s| s.disk_used_ratio = 0.95);
        let resolved = restarted.step(|s| s.disk_used_ratio = 0.5);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].state, Transition::Resolved);
        assert!(restarted.engine.incidents()[0].resolved_at.is_some());
    }

    #[test]
    fn incident_log_is_bounded_newest_first() {
        let mut rule = default_rules().into_iter().find(|r| r.name == "disk-almost-full").unwrap();
        rule.for_secs = 0;
        let mut sim = Sim::new(rule);
        for _ in 0..INCIDENT_LOG_CAPACITY + 10 {
            sim.step(|s| s.disk_used_ratio = 0.95);
            sim.step(|s| s.disk_used_ratio = 0.1);
        }
        let incidents = sim.engine.incidents();
        assert_eq!(incidents.len(), INCIDENT_LOG_CAPACITY);
        assert!(incidents.windows(2).all(|w| w[0].fired_at > w[1].fired_at));
        assert_eq!(sim.log.len(), 2 * (INCIDENT_LOG_CAPACITY + 10));
    }

    #[test]
    fn counter_reset_counts_the_value_after_the_restart() {
        let mut h = History::new(100);
        let mut at = 0;
        for (requests, errors) in [(100, 0), (200, 1), (50, 5), (150, 5)] {
            at += 10;
            h.push(Sample { at, requests, errors, ..Sample::default() });
        }
        let inc = h.increase(3600).unwrap();
        assert_eq!((inc.requests, inc.errors, inc.secs), (250, 6, 30));
        assert_eq!(h.error_rate(3600), Some(6.0 / 250.0));

        // Only errors went down, yet the whole step is a restart: requests count from 0 too.
        let mut h = History::new(100);
        h.push(Sample { at: 0, requests: 200, errors: 10, ..Sample::default() });
        h.push(Sample { at: 10, requests: 210, errors: 2, ..Sample::default() });
        let inc = h.increase(60).unwrap();
        assert_eq!((inc.requests, inc.errors), (210, 2));
    }

    #[test]
    fn windows_end_at_the_newest_sample() {
        let mut h = History::new(100);
        for i in 0..=60 {
            h.push(Sample {
                at: i * 10,
                requests: (i * 10) as u64,
                job_failures: u64::from(i > 40),
                ..Default::default()
            });
        }
        let (first, last) = h.window(300).unwrap();
        assert_eq!((first.at, last.at), (300, 600));
        assert_eq!(h.requests_rate(300), Some(1.0));
        assert_eq!(h.job_failures(300), 1);
        assert_eq!(h.job_failures(30), 0);
        assert_eq!(h.error_rate(300), Some(0.0));
        assert_eq!(History::new(10).error_rate(300), None);
    }

    #[test]
    fn history_is_bounded_and_restarts_when_the_clock_steps_back() {
        let mut h = History::new(3);
        for at in [10, 20, 30, 40] {
            h.push(Sample { at, ..Default::default() });
        }
        assert_eq!(h.samples().map(|s| s.at).collect::<Vec<_>>(), [20, 30, 40]);
        h.push(Sample { at: 40, requests: 7, ..Default::default() });
        assert_eq!((h.len(), h.latest().unwrap().requests), (3, 7));
        h.push(Sample { at: 5, ..Default::default() });
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn p95_interpolates_within_the_bucket() {
        let le_with = |pairs: &[(usize, u64)]| {
            let mut le = [0u64; 12];
            for &(i, n) in pairs {
                for c in le.iter_mut().skip(i) {
                    *c += n;
                }
            }
            le
        };
        // 90 requests within 100 ms, 10 more within 250 ms: the 95th is halfway through 100..250.
        let le = le_with(&[(7, 90), (8, 10)]);
        assert!((latency_quantile(0.95, &le, 100).unwrap() - 0.175).abs() < 1e-12);
        // All within 0.5 ms.
        let le = le_with(&[(0, 100)]);
        assert!((latency_quantile(0.95, &le, 100).unwrap() - 0.000475).abs() < 1e-12);
        // Exactly on a bound: 95 within 10 ms, the rest slower.
        let le = le_with(&[(4, 95), (9, 5)]);
        assert!((latency_quantile(0.95, &le, 100).unwrap() - 0.01).abs() < 1e-12);
        // Most requests slower than the last bucket: the last bound is all it can say.
        let le = le_with(&[(11, 10)]);
        assert_eq!(latency_quantile(0.95, &le, 100), Some(5.0));
        assert_eq!(latency_quantile(0.95, &[0; 12], 0), None);

        let mut h = History::new(10);
        h.push(Sample::default());
        let mut s = Sample { at: 10, ..Default::default() };
        traffic(&mut s, 90, 0, 0.08);
        traffic(&mut s, 10, 0, 0.2);
        h.push(s);
        assert!((h.p95_latency(60).unwrap() - 0.175).abs() < 1e-12);
    }

    #[test]
    fn series_are_downsampled_per_interval() {
        let mut h = History::new(8640);
        let mut s = Sample::default();
        for i in 0..=360 {
            s.at = i * 10;
            if i > 0 {
                traffic(&mut s, 10, if i > 180 { 1 } else { 0 }, 0.02);
            }
            s.disk_used_ratio = i as f64 / 360.0;
            h.push(s.clone());
        }
        let rate = h.series(SeriesMetric::RequestRate, 3600, 12);
        assert_eq!(rate.len(), 12);
        assert!(rate.iter().all(|&(_, v)| (v - 1.0).abs() < 1e-9));
        assert_eq!(rate.last().unwrap().0, 3600);
        let errors = h.series(SeriesMetric::ErrorRate, 3600, 12);
        assert!(errors[..6].iter().all(|&(_, v)| v == 0.0));
        assert!(errors[6..].iter().all(|&(_, v)| (v - 0.1).abs() < 1e-9));
        let disk = h.series(SeriesMetric::DiskUsedRatio, 3600, 12);
        assert_eq!(disk.len(), 13);
        assert_eq!(disk.last().unwrap().1, 1.0);
        let p95 = h.series(SeriesMetric::P95Latency, 600, 100);
        assert_eq!(p95.len(), 60, "fewer samples than points: one point per interval");
        assert!(h.series(SeriesMetric::RequestRate, 3600, 0).len() == 1);
        assert!(History::new(5).series(SeriesMetric::ModelDrift, 60, 10).is_empty());

        let mut quiet = History::new(10);
        quiet.push(Sample { at: 0, ..Default::default() });
        quiet.push(Sample { at: 10, ..Default::default() });
        assert!(quiet.series(SeriesMetric::ErrorRate, 60, 10).is_empty(), "no traffic, no point");
    }

    fn notification() -> Notification {
        Notification {
            alert: "high-error-rate".into(),
            state: Transition::Firing,
            severity: Severity::Critical,
            value: Some(0.034),
            threshold: 0.01,
            since: 1_700_000_000,
            at: 1_700_000_120,
            runbook: "docs/runbooks/high-error-rate.md".into(),
            description: "More than 1% \"failed\".".into(),
        }
    }

    #[test]
    fn log_line_is_one_logfmt_line() {
        let line = notification().log_line();
        assert_eq!(
            line,
            "alert=high-error-rate state=firing severity=critical value=0.034 threshold=0.01 \
             since=1700000000 at=1700000120 runbook=docs/runbooks/high-error-rate.md \
             description=\"More than 1% \\\"failed\\\".\""
        );
        assert!(!line.contains('\n'));
    }

    /// A one-shot HTTP receiver answering `status`; returns the raw request.
    fn receiver(status: &'static str) -> (String, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut raw = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                let n = conn.read(&mut buf).unwrap();
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            conn.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok").as_bytes()).unwrap();
            String::from_utf8(raw).unwrap()
        });
        (format!("http://{addr}/hooks/alerts?team=ops"), handle)
    }

    #[test]
    fn webhook_posts_the_notification_as_json() {
        let (url, server) = receiver("200 OK");
        WebhookSink::new(&url).unwrap().deliver(&notification()).unwrap();
        let request = server.join().unwrap();
        let (head, body) = request.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /hooks/alerts?team=ops HTTP/1.1\r\n"), "{head}");
        // (header names are case-insensitive; the client sends them in lower case)
        let head_lc = head.to_ascii_lowercase();
        assert!(head_lc.contains("content-type: application/json"), "{head}");
        assert!(head_lc.contains(&format!("host: {}", url.split('/').nth(2).unwrap())), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "alert": "high-error-rate",
                "state": "firing",
                "severity": "critical",
                "value": 0.034,
                "threshold": 0.01,
                "since": 1_700_000_000,
                "at": 1_700_000_120,
                "runbook": "docs/runbooks/high-error-rate.md",
                "description": "More than 1% \"failed\"."
            })
        );
    }

    #[test]
    fn webhook_reports_a_non_2xx_answer() {
        let (url, server) = receiver("500 Internal Server Error");
        let err = WebhookSink::new(&url).unwrap().with_retries(0).deliver(&notification()).unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, AlertError::Status { status: 500, .. }), "{err}");
        assert!(err.to_string().contains("answered 500"));
    }

    #[test]
    fn webhook_reports_a_refused_connection() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let err = WebhookSink::new(&format!("http://127.0.0.1:{port}/"))
            .unwrap()
            .deliver(&notification())
            .unwrap_err();
        assert!(matches!(err, AlertError::Io { .. }), "{err}");
    }

    #[test]
    fn webhook_times_out_on_a_silent_receiver() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let started = std::time::Instant::now();
        let err = WebhookSink::new(&url)
            .unwrap()
            .with_timeout(Duration::from_millis(200))
            .with_retries(0)
            .deliver(&notification())
            .unwrap_err();
        assert!(matches!(err, AlertError::Io { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
        drop(listener);
    }

    #[test]
    fn parses_http_urls_and_refuses_others() {
        let u = parse_http_url("http://alerts.example:9000/hook?x=1#frag").unwrap();
        assert_eq!(
            u,
            HttpUrl { tls: false, host: "alerts.example".into(), port: 9000, path: "/hook?x=1".into() }
        );
        assert_eq!(u.to_string(), "http://alerts.example:9000/hook?x=1");
        let u = parse_http_url("HTTP://localhost").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        assert_eq!(parse_http_url("http://h?a=b").unwrap().path, "/?a=b");
        let u = parse_http_url("http://[::1]:8081/x").unwrap();
        assert_eq!((u.host.as_str(), u.authority()), ("::1", "[::1]:8081".to_string()));

        // HTTPS receivers (chat tools, paging services) are reached directly.
        let u = parse_http_url("https://hooks.example/x").unwrap();
        assert_eq!((u.tls, u.port, u.to_string().as_str()), (true, 443, "https://hooks.example:443/x"));
        for bad in [
            "localhost:8080/x",
            "http://",
            "http:///path",
            "http://host:0/",
            "http://host:99999/",
            "http://host:port/",
            "http://user:pw@host/",
            "http://host/a b",
            "http://host/\r\nX-Injected: 1",
            "http://[::1/",
        ] {
            assert!(matches!(parse_http_url(bad), Err(AlertError::BadUrl { .. })), "{bad}");
        }
        assert!(matches!(parse_http_url("ftp://host/"), Err(AlertError::UnsupportedScheme { .. })));
        assert!(WebhookSink::new("https://x/").is_ok());
        assert!(WebhookSink::new("gopher://x/").is_err());
    }

    #[test]
    fn every_default_rule_has_a_runbook_listed_in_the_index() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let index = std::fs::read_to_string(root.join("docs/runbooks/README.md")).unwrap();
        for rule in default_rules() {
            let page = std::fs::read_to_string(root.join(&rule.runbook)).expect(&rule.runbook);
            assert!(page.starts_with(&format!("# {}\n", rule.name)), "{}", rule.runbook);
            for section in ["## What it means", "## How to check", "## How to fix", "## How to roll back"] {
                assert!(page.contains(section), "{} lacks {section}", rule.runbook);
            }
            assert!(index.contains(&format!("({}.md)", rule.name)), "README.md lacks {}", rule.name);
            assert!(crate::ops::has_runbook(&rule.name), "{} is not built in for /runbooks", rule.name);
        }
    }

    #[test]
    fn status_and_incidents_serialise_for_the_status_page() {
        let status = AlertStatus {
            rule: "model-drift".into(),
            description: "d".into(),
            severity: Severity::Warning,
            state: AlertState::Pending { since: 7 },
            value: Some(0.3),
            threshold: 0.25,
            runbook: "docs/runbooks/model-drift.md".into(),
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!((json["state"].as_str(), json["since"].as_i64()), (Some("pending"), Some(7)));
        assert_eq!(serde_json::from_value::<AlertStatus>(json).unwrap(), status);
        let rules = serde_json::to_value(default_rules()).unwrap();
        assert_eq!(rules[0]["condition"]["kind"], "error_rate_above");
    }

    #[test]
    fn uptime_counts_long_gaps_between_samples_as_downtime() {
        let mut h = History::new(100);
        for at in [0, 10, 20, 1000, 1010] {
            h.push(Sample { at, ..Sample::default() });
        }
        // Up: 10 + 10 + 30 (the 980 s gap counts as 30) + 10 = 60 s of 1010.
        let r = h.uptime_ratio(2000, 30, 1010).unwrap();
        assert!((r - 60.0 / 1010.0).abs() < 1e-9, "{r}");
        // Only the last two samples fall in the last 15 s: fully up.
        assert_eq!(h.uptime_ratio(15, 30, 1010), Some(1.0));
        assert_eq!(History::new(10).uptime_ratio(100, 30, 5), None);
    }
}
