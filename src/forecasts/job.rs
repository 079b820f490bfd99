//! The forecast jobs: `rollouts` (guards and scheduled canary stages), `rescore`
//! (re-forecasts the newest papers into the forecast log) and `retrain` (monthly, on the
//! live store, canarying only a significantly better candidate).

use std::sync::Arc;

use citecast_actors::actors::{
    BuildCollectionCorpus, ForecastPapers, ListModelDirs, ListModels, RecentPaperIds, RescanModels,
    StartRollout, TickRollouts,
};
use citecast_actors::dates::now_secs;
use citecast_actors::forecast::rollout::{Guards, Strategy};
use citecast_actors::forecast::service::{RolloutSpec, Route};
use citecast_actors::forecast::task::Mode;
use citecast_actors::forecast::train::TrainOptions;
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
            spec: spec("retrain", "monthly 1 02:00", 3600, None),
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
        let route = Route { caller: Some("scheduler".into()), ..Route::default() };
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

/// Retraining as labels mature, for every collection and mode with a serving model:
/// trains on what the store holds now (splits derived from the data, so labels that
/// matured since the last run count) with the serving model's recipe and a new seed,
/// loads the result as a candidate, and compares it with the serving model on the
/// candidate's validation period (paired bootstrap of the ROC-AUC). Only a candidate
/// significantly better starts a canary (5 → 50 → 100 %, a stage a day under the
/// `rollouts` job's guards). Every step is audited; the comparison is kept in the
/// candidate's report and shown on its page. A collection whose data cannot train a model
/// (too little of it, a degenerate model) is skipped with its reason in the audit log.
async fn retrain(engine: &Engine, config: &JobsConfig) -> JobResult {
    let models = config.data_dir.join("models");
    let summaries = engine.model.send(ListModels).await.map_err(fail)?;
    let dirs = engine.model.send(ListModelDirs).await.map_err(fail)?;
    let mut trained = 0;
    let mut failures = Vec::new();
    for serving in summaries.iter().filter(|m| m.active) {
        let Some((_, dir)) = dirs.iter().find(|(v, _)| *v == serving.version) else { continue };
        match retrain_one(engine, &models, serving, dir).await {
            Ok(n) => trained += n,
            Err(e) => failures.push(format!("{} {}: {e}", serving.collection, serving.mode.as_str())),
        }
    }
    if !failures.is_empty() {
        return Err((trained, failures.join("; ")));
    }
    Ok(trained)
}

/// Retrains the mode and collection `serving` serves; `Ok(0)` when the data cannot
/// train a model (audited as skipped).
async fn retrain_one(
    engine: &Engine,
    models: &std::path::Path,
    serving: &citecast_actors::forecast::service::ModelSummary,
    serving_dir: &std::path::Path,
) -> Result<u64, String> {
    use crate::forecasts::training;
    use crate::forecasts::TrainingError;
    let collection = serving.collection.clone();
    let corpus = engine
        .store
        .send(BuildCollectionCorpus(collection.clone()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the store has no collection '{collection}'"))?;
    let loaded =
        training::load(training::Data::Corpus { corpus: Arc::new(corpus), collection: collection.clone() });
    let card = std::fs::read(serving_dir.join("model.json")).map_err(|e| e.to_string())?;
    let meta: citecast_actors::forecast::registry::ModelMeta =
        serde_json::from_slice(&card).map_err(|e| format!("{}: {e}", serving_dir.display()))?;
    let opts = TrainOptions { seed: now_secs() as u64, ..meta.options };
    let (mode, dir) = (serving.mode, models.to_path_buf());
    let trainedout = actix_web::rt::task::spawn_blocking(move || {
        let loaded = Arc::new(loaded?);
        let task = training::task_for(&loaded, &Default::default())?;
        let out = training::train(&loaded, &task, &dir, &[mode], &opts, 0)?;
        Ok::<_, TrainingError>((loaded, task, out))
    })
    .await
    .map_err(|e| e.to_string())?;
    let (loaded, task, out) = match trainedout {
        Ok(t) => t,
        Err(TrainingError::Data(reason)) => {
            tracing::warn!(%collection, mode = mode.as_str(), %reason, "retraining skipped");
            let note = serde_json::json!({ "collection": collection, "mode": mode, "reason": reason });
            audit(engine, "model.retrain.skipped", &serving.version, &note).await;
            return Ok(0);
        }
        Err(e) => return Err(e.to_string()),
    };
    let (_, refused) =
        engine.model.send(RescanModels).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    if !refused.is_empty() {
        return Err(refused.join("; "));
    }
    let m = out["models"][0].clone();
    let (Some(version), Some(dir)) = (m["version"].as_str(), m["dir"].as_str()) else {
        return Err("training reported no model".into());
    };
    audit(engine, "model.retrain", version, &m).await;
    let (candidate_dir, serving_dir) = (std::path::PathBuf::from(dir), serving_dir.to_path_buf());
    let comparison = actix_web::rt::task::spawn_blocking(move || {
        let c = training::compare(&loaded, &task, &candidate_dir, &serving_dir)?;
        training::save_comparison(&candidate_dir, &c)?;
        Ok::<_, TrainingError>(c)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    audit(engine, "model.retrain.compare", version, &serde_json::to_value(&comparison).unwrap_or_default())
        .await;
    if comparison.significant {
        let spec = RolloutSpec {
            candidate: version.to_string(),
            strategy: Strategy::Canary { stage: 0, advance_after_secs: Some(24 * 3600) },
            guards: Guards::default(),
        };
        match engine.model.send(StartRollout(spec)).await.map_err(|e| e.to_string())? {
            Ok(r) => {
                audit(engine, "rollout.start", version, &serde_json::json!({ "rollout": r, "by": "retrain" }))
                    .await
            }
            Err(e) => {
                audit(engine, "rollout.refused", version, &serde_json::json!({ "reason": e.to_string() }))
                    .await
            }
        }
    }
    Ok(1)
}

/// An audit entry of the retraining job.
async fn audit(engine: &Engine, action: &str, target: &str, after: &serde_json::Value) {
    let entry = citecast_actors::journal::AuditEntry {
        seq: 0,
        at: now_secs(),
        actor: "scheduler/retrain".into(),
        action: action.into(),
        target: target.into(),
        before: None,
        after: Some(after.to_string()),
    };
    match engine.store.send(citecast_actors::actors::AppendAudit(entry)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, action, "audit entry not written"),
        Err(e) => tracing::error!(error = %e, action, "audit entry not written"),
    }
}
