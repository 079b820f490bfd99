//! Operating the server: the monitor, alerts, SLOs, metrics, the status page, the job
//! scheduler, operator actions and their audit trail.

pub mod admin;
pub mod alerts;
pub mod job;
pub mod jobs;
pub mod metrics;
pub mod monitor;
pub mod operator;
pub mod routes;
pub mod slo;
