//! Operating the server: the monitor, alerts, SLOs, metrics, the status page, the job
//! scheduler, operator actions and their audit trail.

pub mod admin;
pub mod alerts;
pub mod error;
pub mod job;
pub mod jobs;
pub mod metrics;
pub mod monitor;
pub mod operator;
pub mod page;
pub mod routes;
pub mod slo;
pub mod times;

/// The runbooks, built into the binary so the alert tables can link to them.
const RUNBOOKS: &[(&str, &str)] = &[
    ("index", include_str!("../../docs/runbooks/README.md")),
    ("disk-almost-full", include_str!("../../docs/runbooks/disk-almost-full.md")),
    ("high-error-rate", include_str!("../../docs/runbooks/high-error-rate.md")),
    ("high-p95-latency", include_str!("../../docs/runbooks/high-p95-latency.md")),
    ("job-failures", include_str!("../../docs/runbooks/job-failures.md")),
    ("model-drift", include_str!("../../docs/runbooks/model-drift.md")),
];

/// Whether a runbook is built in under `name` (tests check every alert rule's).
pub fn has_runbook(name: &str) -> bool {
    RUNBOOKS.iter().any(|(n, _)| *n == name)
}
