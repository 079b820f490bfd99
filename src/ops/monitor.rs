//! The monitor actor: every few seconds it samples the server's metrics into a
//! [`History`], evaluates the alert rules over it, and delivers each alert transition
//! to the log and, when configured, to a webhook. The status page, the admin dashboard
//! and `/metrics` read their SLOs, alert states and charts from it.
//!
//! Incidents are kept in `DATA_DIR/incidents.json`, so a restart neither repeats a
//! firing notification nor forgets one that is still open.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use actix::prelude::*;
use citecast_actors::actors::{GetDrift, ListRollouts};
use citecast_actors::dates::now_secs;
use citecast_actors::Engine;

use crate::ops::alerts::{AlertEngine, AlertStatus, History, Incident, Notification, Sample, WebhookSink};
use crate::ops::jobs::Scheduler;
use crate::ops::metrics::Metrics;
use crate::ops::slo::{self, SloReport};

/// A day of samples at the default interval.
const HISTORY_SAMPLES: usize = 8_640;

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub data_dir: PathBuf,
    pub interval: Duration,
    /// `http://host:port/path` receiving alert transitions as JSON.
    pub webhook: Option<String>,
}

/// What the monitor samples: the request metrics, the engine, and the scheduler when
/// one runs. Handles only, so the monitor does not depend on the HTTP layer.
#[derive(Clone)]
pub struct Sources {
    pub engine: Engine,
    pub metrics: Arc<Metrics>,
    pub jobs: Option<Addr<Scheduler>>,
}

pub struct Monitor {
    sources: Sources,
    config: MonitorConfig,
    history: History,
    alerts: AlertEngine,
    webhook: Option<WebhookSink>,
    /// Set while a sample is being taken (it awaits other actors).
    sampling: bool,
    last_saved: i64,
}

fn incidents_file(data_dir: &Path) -> PathBuf {
    data_dir.join("incidents.json")
}

fn history_file(data_dir: &Path) -> PathBuf {
    data_dir.join("monitor-history.bin")
}

/// Samples are saved this often, so SLOs and uptime span restarts (and count the downtime).
const SAVE_EVERY_SECS: i64 = 60;

impl Monitor {
    pub fn new(sources: Sources, config: MonitorConfig) -> Result<Monitor, String> {
        let webhook = match &config.webhook {
            Some(url) => Some(WebhookSink::new(url).map_err(|e| format!("alert webhook '{url}': {e}"))?),
            None => None,
        };
        let mut alerts = AlertEngine::new(crate::ops::alerts::default_rules());
        if let Ok(bytes) = std::fs::read(incidents_file(&config.data_dir)) {
            match serde_json::from_slice::<Vec<Incident>>(&bytes) {
                Ok(incidents) => alerts.restore_incidents(incidents, now_secs()),
                Err(e) => tracing::error!(error = %e, "unreadable incidents file ignored"),
            }
        }
        let mut history = History::new(HISTORY_SAMPLES);
        // The samples of earlier runs: SLOs and uptime span restarts.
        if let Ok(bytes) = std::fs::read(history_file(&config.data_dir)) {
            match citecast_actors::codec::decode::<Vec<Sample>>(&bytes) {
                Ok(samples) => samples.into_iter().for_each(|s| history.push(s)),
                Err(e) => tracing::error!(error = %e, "unreadable monitor history ignored"),
            }
        }
        // Counters start at zero with the process: that is the first sample, so a failure
        // before the first scheduled sample still shows as an increase (and the drop from
        // the last run's counters reads as a restart, not as negative traffic).
        history.push(Sample { at: now_secs(), ..Sample::default() });
        Ok(Monitor { sources, config, history, alerts, webhook, sampling: false, last_saved: 0 })
    }

    fn save_history(&mut self) {
        let samples: Vec<Sample> = self.history.samples().cloned().collect();
        let result = citecast_actors::codec::encode(&samples).map_err(|e| e.to_string()).and_then(|b| {
            citecast_actors::files::write_atomically(&history_file(&self.config.data_dir), &b)
                .map_err(|e| e.to_string())
        });
        match result {
            Ok(()) => self.last_saved = now_secs(),
            Err(e) => tracing::error!(error = %e, "cannot save the monitor history"),
        }
    }

    fn save_incidents(&self) {
        let file = incidents_file(&self.config.data_dir);
        let bytes = serde_json::to_vec_pretty(&self.alerts.incidents()).unwrap_or_default();
        if let Err(e) = citecast_actors::files::write_atomically(&file, &bytes) {
            tracing::error!(error = %e, "cannot save incidents");
        }
    }

    /// Records a sample and acts on the alert transitions it causes.
    pub fn observe(&mut self, sample: Sample) -> Vec<Notification> {
        let now = sample.at;
        self.history.push(sample);
        if now - self.last_saved >= SAVE_EVERY_SECS {
            self.save_history();
        }
        let notes = self.alerts.evaluate(&self.history, now);
        if !notes.is_empty() {
            self.save_incidents();
        }
        for n in &notes {
            tracing::warn!(target: "citecast::alerts", "{}", n.log_line());
            if let Some(hook) = self.webhook.clone() {
                let n = n.clone();
                // Delivery blocks on the network: keep it off the actor's thread.
                actix_web::rt::task::spawn_blocking(move || {
                    if let Err(e) = hook.deliver(&n) {
                        tracing::error!(error = %e, alert = %n.alert, "alert webhook delivery failed");
                    }
                });
            }
        }
        notes
    }
}

/// Share of the filesystem holding `path` that is used, 0..1, as `df` computes it.
pub fn disk_used_ratio(path: &Path) -> Option<f64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 || st.f_blocks == 0 {
        return None;
    }
    // As df reports it: blocks reserved for root are neither used nor available to us.
    let used = st.f_blocks.saturating_sub(st.f_bfree) as f64;
    let avail = st.f_bavail as f64;
    (used + avail > 0.0).then(|| used / (used + avail))
}

/// Counters and gauges now: HTTP from the request metrics, jobs from the scheduler,
/// drift from the running rollouts (the largest candidate-vs-control PSI).
async fn take_sample(sources: Sources, data_dir: PathBuf) -> Sample {
    let totals = sources.metrics.totals();
    let mut sample = Sample {
        at: now_secs(),
        requests: totals.requests,
        errors: totals.errors,
        latency_le: totals.latency_le,
        latency_count: totals.latency_count,
        forecasts: totals.forecasts,
        disk_used_ratio: disk_used_ratio(&data_dir).unwrap_or(0.0),
        ..Sample::default()
    };
    if let Some(jobs) = &sources.jobs {
        if let Ok(Ok(r)) = jobs.send(crate::ops::jobs::GetJobs { history: 0 }).await {
            sample.job_runs = r.counters.runs.values().sum();
            sample.job_failures = r.counters.failures.values().sum();
            sample.dead_letters = r.dead_letters.len() as u64;
        }
    }
    // Drift: the larger of the serving models' drift against their validation scores and
    // a running rollout's candidate-vs-control drift.
    // Bounded: a model actor busy warming up must not stall the samples.
    let bound = std::time::Duration::from_secs(5);
    if let Ok(Ok(drift)) = sources.engine.model.send(GetDrift).timeout(bound).await {
        sample.model_drift = drift.iter().filter_map(|(_, d)| *d).fold(0.0, f64::max);
    }
    if let Ok(Ok(rollouts)) = sources.engine.model.send(ListRollouts).timeout(bound).await {
        let rollout_drift = rollouts.running.values().filter_map(|r| r.drift_psi()).fold(0.0, f64::max);
        sample.model_drift = sample.model_drift.max(rollout_drift);
    }
    sample
}

impl Actor for Monitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.config.interval, |act, ctx| {
            if act.sampling {
                return;
            }
            act.sampling = true;
            let fut = take_sample(act.sources.clone(), act.config.data_dir.clone());
            ctx.spawn(fut.into_actor(act).map(|sample, act, _| {
                act.sampling = false;
                act.observe(sample);
            }));
        });
    }
}

/// A dashboard chart: label, unit and (time, value) points.
pub type Chart = (&'static str, &'static str, Vec<(i64, f64)>);

/// What the status page, the dashboard and `/metrics` show.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MonitorView {
    /// Share of the last 24 h the server was up (from its samples; gaps are downtime).
    pub uptime_24h: Option<f64>,
    /// The span `uptime_24h` covers: 24 h, or less for a server with a shorter history.
    pub uptime_observed_secs: Option<u64>,
    pub slos: Vec<SloReport>,
    pub alerts: Vec<AlertStatus>,
    pub incidents: Vec<Incident>,
    pub latest: Option<Sample>,
    /// (label, unit, points) for the dashboard charts.
    #[serde(skip)]
    pub series: Vec<Chart>,
}

pub struct GetView {
    /// Seconds of history for the charts (0: no charts).
    pub chart_secs: u64,
}

impl Message for GetView {
    type Result = Result<MonitorView, String>;
}

impl Handler<GetView> for Monitor {
    type Result = Result<MonitorView, String>;
    fn handle(&mut self, m: GetView, _: &mut Self::Context) -> Self::Result {
        use crate::ops::alerts::SeriesMetric as S;
        let series = if m.chart_secs == 0 {
            Vec::new()
        } else {
            let s = |metric| self.history.series(metric, m.chart_secs, 60);
            vec![
                ("Requests per second", "", s(S::RequestRate)),
                ("Error rate", "%", s(S::ErrorRate)),
                ("p95 latency", "s", s(S::P95Latency)),
                ("Forecasts per second", "", s(S::ForecastRate)),
                ("Job failures", "", s(S::JobFailures)),
                ("Disk used", "%", s(S::DiskUsedRatio)),
                ("Score drift (PSI)", "", s(S::ModelDrift)),
            ]
        };
        // A gap of more than three sampling intervals is downtime.
        let max_gap = 3 * self.config.interval.as_secs().max(1);
        Ok(MonitorView {
            uptime_24h: self.history.uptime_ratio(slo::SLO_WINDOW_SECS, max_gap, now_secs()),
            uptime_observed_secs: self.history.observed_secs(slo::SLO_WINDOW_SECS, now_secs()),
            slos: slo::reports(&slo::default_slos(), &self.history, slo::SLO_WINDOW_SECS),
            alerts: self.alerts.statuses(),
            incidents: self.alerts.incidents().into_iter().take(20).collect(),
            latest: self.history.latest().cloned(),
            series,
        })
    }
}

/// Feeds a sample directly (tests drive the alert path without waiting for traffic).
pub struct Observe(pub Sample);

impl Message for Observe {
    type Result = Vec<Notification>;
}

impl Handler<Observe> for Monitor {
    type Result = MessageResult<Observe>;
    fn handle(&mut self, m: Observe, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.observe(m.0))
    }
}
