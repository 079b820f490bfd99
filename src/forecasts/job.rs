//! The forecast jobs: `rollouts` (guards and scheduled canary stages), `rescore`
//! (re-forecasts the newest papers into the forecast log) and `retrain` (weekly; paused
//! until an operator resumes it).

use citecast_actors::actors::{ForecastPapers, RecentPaperIds, RescanModels, TickRollouts};
use citecast_actors::dates::now_secs;
use citecast_actors::forecast::service::Route;
use citecast_actors::forecast::task::Mode;
use citecast_actors::Engine;

use crate::ops::jobs::{fail, spec, Job, JobResult, JobsConfig};

pub fn jobs() -> Vec<Job> {
    vec![
        Job {
            spec: spec("rollouts", "every 1m", 10, None),
            run: |ctx| {
                Box::pin(
                    async move { Ok(ctx.engine.model.send(TickRollouts).await.map_err(fail)?.len() as u64) },
                )
            },
        },
        Job {
            spec: spec("rescore", "daily 05:00", 120, Some(200_000)),
            run: |ctx| Box::pin(async move { rescore(&ctx.engine, ctx.budget).await }),
        },
        Job {
            spec: spec("retrain", "weekly sun 02:00", 600, None),
            run: |ctx| Box::pin(async move { retrain(&ctx.engine, &ctx.config).await }),
        },
    ]
}

/// Re-forecasts the newest papers in both modes with the serving models; the forecasts
/// go to the forecast log (papers too young for `early` are skipped, not failures).
async fn rescore(engine: &Engine, budget: Option<u64>) -> JobResult {
    let limit = budget.unwrap_or(1000).min(1000) as usize;
    let recent = engine.store.send(RecentPaperIds { limit }).await.map_err(fail)?.map_err(fail)?;
    let ids: Vec<String> = recent.into_iter().map(|(id, _)| id).collect();
    let mut done = 0;
    for mode in Mode::ALL {
        let route = Route { caller: Some("scheduler".into()), arm: None };
        let msg = ForecastPapers { ids: ids.clone(), mode, route };
        match engine.model.send(msg).await.map_err(fail)? {
            Ok(results) => done += results.iter().filter(|r| r.is_ok()).count() as u64,
            // No model for a mode is not the job's failure.
            Err(citecast_actors::forecast::service::ForecastError::NoModel(_)) => {}
            Err(e) => return Err((done, e.to_string())),
        }
    }
    Ok(done)
}

/// Trains both modes from the bundled data into `DATA_DIR/models` with a new seed, then
/// loads them (they serve only after a rollout or promotion).
async fn retrain(engine: &Engine, config: &JobsConfig) -> JobResult {
    let bundled = config.bundled_data.clone();
    let models = config.data_dir.join("models");
    let seed = now_secs() as u64;
    let out = actix_web::rt::task::spawn_blocking(move || {
        let opts = citecast_actors::forecast::train::TrainOptions { seed, ..Default::default() };
        crate::forecasts::training::train(&bundled, &models, &Mode::ALL, &opts)
    })
    .await
    .map_err(fail)?
    .map_err(fail)?;
    let trained = out["models"].as_array().map(|a| a.len() as u64).unwrap_or(0);
    let (_, refused) = engine.model.send(RescanModels).await.map_err(fail)?.map_err(fail)?;
    if !refused.is_empty() {
        return Err((trained, refused.join("; ")));
    }
    Ok(trained)
}
