//! Alert rules: what is measured, over which window, against which threshold.

use serde::{Deserialize, Serialize};

use super::*;

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
