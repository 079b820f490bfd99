//! The samples of the server's own metrics and the windowed figures computed from them.

use std::collections::VecDeque;

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
