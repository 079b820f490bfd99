//! Forecasts: serving them over the API, and training and evaluating the models.

pub mod admin;
pub mod bulk;
mod error;
pub mod job;
pub mod report_page;
pub mod routes;
pub mod training;

pub use error::TrainingError;

use std::time::Instant;

use citecast_actors::Engine;

/// Papers scored per warm-up step: a step takes well under a second, so forecasts
/// arriving during the warm-up wait at most that long for the model actor.
const WARM_STEP_PAPERS: usize = 2_000;

/// Warms the active models (feature contexts, cohort scores) step by step, one message
/// per step, so forecasts keep being answered meanwhile. Run after readiness and after
/// imports.
pub async fn warm_models(engine: &Engine) {
    let started = Instant::now();
    let mut steps = 0u64;
    loop {
        match engine.model.send(citecast_actors::actors::WarmStep { papers: WARM_STEP_PAPERS }).await {
            Ok(Ok(true)) => break,
            Ok(Ok(false)) => steps += 1,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "forecast models not warmed");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "model actor unavailable");
                return;
            }
        }
    }
    tracing::info!(
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        steps,
        "forecast models warm"
    );
}
