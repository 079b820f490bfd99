//! Prometheus metrics: requests and latency per route and status, rate-limit
//! rejections, forecasts per model, response-cache hits, and store and index sizes,
//! rendered as Prometheus text at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Latency bucket upper bounds, seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    pub latency_le: [u64; BUCKETS.len()],
    pub latency_count: u64,
    pub forecasts: u64,
}

#[derive(Default)]
pub struct Metrics {
    /// (route pattern, method, status) -> count.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// (tier, limit kind) -> rejections.
    rate_limited: Mutex<BTreeMap<(String, String), u64>>,
    forecasts: Mutex<BTreeMap<String, u64>>,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((route.to_string(), method.to_string(), status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(route.to_string()).or_default();
            for (i, b) in BUCKETS.iter().enumerate() {
                if seconds <= *b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += seconds;
        }
    }

    /// Sums over every route, for the monitor's samples. `/readyz` answering 503 while
    /// data loads is expected, not an error.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        if let Ok(r) = self.requests.lock() {
            for ((route, _, status), n) in r.iter() {
                t.requests += n;
                if *status >= 500 && route != "/readyz" {
                    t.errors += n;
                }
            }
        }
        if let Ok(l) = self.latency.lock() {
            for h in l.values() {
                for (i, c) in h.counts.iter().enumerate() {
                    t.latency_le[i] += c;
                }
                t.latency_count += h.count;
            }
        }
        if let Ok(f) = self.forecasts.lock() {
            t.forecasts = f.values().sum();
        }
        t
    }

    pub fn rate_limited(&self, tier: &str, limit: &str) {
        if let Ok(mut r) = self.rate_limited.lock() {
            *r.entry((tier.to_string(), limit.to_string())).or_default() += 1;
        }
    }

    pub fn forecast_served(&self, model: &str) {
        if let Ok(mut f) = self.forecasts.lock() {
            *f.entry(model.to_string()).or_default() += 1;
        }
    }

    pub fn cache(&self, hit: bool) {
        let c = if hit { &self.cache_hits } else { &self.cache_misses };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition; `gauges` are (name, help, value) read at scrape time.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        out.push_str("# HELP citecast_http_requests_total HTTP requests by route, method and status.\n");
        out.push_str("# TYPE citecast_http_requests_total counter\n");
        if let Ok(r) = self.requests.lock() {
            for ((route, method, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "citecast_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                    esc(route)
                );
            }
        }
        out.push_str("# HELP citecast_http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE citecast_http_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for (route, h) in l.iter() {
                let route = esc(route);
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "citecast_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "citecast_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "citecast_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "citecast_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
        out.push_str("# HELP citecast_rate_limited_total Requests refused by rate limits.\n");
        out.push_str("# TYPE citecast_rate_limited_total counter\n");
        if let Ok(r) = self.rate_limited.lock() {
            for ((tier, limit), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "citecast_rate_limited_total{{tier=\"{}\",limit=\"{limit}\"}} {n}",
                    esc(tier)
                );
            }
        }
        out.push_str("# HELP citecast_forecasts_total Forecasts served by model version.\n");
        out.push_str("# TYPE citecast_forecasts_total counter\n");
        if let Ok(f) = self.forecasts.lock() {
            for (model, n) in f.iter() {
                let _ = writeln!(out, "citecast_forecasts_total{{model=\"{}\"}} {n}", esc(model));
            }
        }
        let (hits, misses) =
            (self.cache_hits.load(Ordering::Relaxed), self.cache_misses.load(Ordering::Relaxed));
        out.push_str("# HELP citecast_cache_requests_total Response-cache lookups by outcome.\n");
        out.push_str("# TYPE citecast_cache_requests_total counter\n");
        let _ = writeln!(out, "citecast_cache_requests_total{{outcome=\"hit\"}} {hits}");
        let _ = writeln!(out, "citecast_cache_requests_total{{outcome=\"miss\"}} {misses}");
        let ratio = if hits + misses == 0 { 0.0 } else { hits as f64 / (hits + misses) as f64 };
        out.push_str("# HELP citecast_cache_hit_ratio Share of response-cache lookups that hit.\n");
        out.push_str("# TYPE citecast_cache_hit_ratio gauge\n");
        let _ = writeln!(out, "citecast_cache_hit_ratio {ratio}");
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        out
    }
}

/// The method as a label from a closed set: any client can send any method token, and
/// each distinct label value is a series kept for the life of the process.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method as M;
    match *method {
        M::GET => "GET",
        M::HEAD => "HEAD",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::PATCH => "PATCH",
        M::OPTIONS => "OPTIONS",
        M::CONNECT => "CONNECT",
        M::TRACE => "TRACE",
        _ => "other",
    }
}

/// Job runs, failures and operations per job, and the dead-letter count.
pub fn render_jobs(out: &mut String, r: &crate::ops::jobs::JobsReport) {
    for (name, help, map) in [
        ("citecast_job_runs_total", "Scheduled job runs finished, by job.", &r.counters.runs),
        ("citecast_job_failures_total", "Scheduled job runs that failed, by job.", &r.counters.failures),
        (
            "citecast_job_operations_total",
            "Operations done by scheduled jobs, by job.",
            &r.counters.operations,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (job, n) in map {
            let _ = writeln!(out, "{name}{{job=\"{job}\"}} {n}");
        }
    }
    let _ = writeln!(
        out,
        "# HELP citecast_job_dead_letters Job runs that exhausted their retries.\n# TYPE citecast_job_dead_letters gauge\ncitecast_job_dead_letters {}",
        r.dead_letters.len()
    );
}

/// Alert states (1 firing, 0.5 pending, 0 inactive) and SLO attainment and budget burn.
pub fn render_monitor(out: &mut String, v: &crate::ops::monitor::MonitorView) {
    out.push_str("# HELP citecast_alert_state Alert rule state: 0 inactive, 0.5 pending, 1 firing.\n");
    out.push_str("# TYPE citecast_alert_state gauge\n");
    for a in &v.alerts {
        let x = match a.state.as_str() {
            "firing" => 1.0,
            "pending" => 0.5,
            _ => 0.0,
        };
        let _ = writeln!(out, "citecast_alert_state{{alert=\"{}\"}} {x}", a.rule);
    }
    out.push_str(
        "# HELP citecast_slo_error_budget_spent_ratio Share of the SLO's error budget spent (24 h).\n",
    );
    out.push_str("# TYPE citecast_slo_error_budget_spent_ratio gauge\n");
    for s in &v.slos {
        let _ = writeln!(
            out,
            "citecast_slo_error_budget_spent_ratio{{slo=\"{}\"}} {}",
            s.name, s.error_budget_spent_ratio
        );
    }
    if let Some(sample) = &v.latest {
        let _ = writeln!(
            out,
            "# HELP citecast_model_drift_psi Largest score drift (PSI): served vs validation, or a rollout's candidate vs control.\n# TYPE citecast_model_drift_psi gauge\ncitecast_model_drift_psi {}",
            sample.model_drift
        );
        let _ = writeln!(
            out,
            "# HELP citecast_disk_used_ratio Used share of the data directory's filesystem.\n# TYPE citecast_disk_used_ratio gauge\ncitecast_disk_used_ratio {}",
            sample.disk_used_ratio
        );
    }
}
