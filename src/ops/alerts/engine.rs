//! The alert state machine (inactive, pending, firing), its notifications and the
//! incident log.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::*;

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
