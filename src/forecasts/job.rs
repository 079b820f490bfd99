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

/// Retraining as labels mature, for every collection that has a serving model: trains
/// both modes on what the store holds now (splits derived from the data), loads them as
/// candidates, and compares each with the model serving its mode on the candidate's
/// validation period (paired bootstrap of the ROC-AUC). Only a candidate significantly
/// better starts a canary (5 → 50 → 100 %, advanced by the `rollouts` job and its
/// guards). Every step is audited; the comparison is kept beside the candidate and shown
/// on its report page.
async fn retrain(engine: &Engine, config: &JobsConfig) -> JobResult {
    let models = config.data_dir.join("models");
    let summaries = engine.model.send(ListModels).await.map_err(fail)?;
    let mut collections: Vec<String> =
        summaries.iter().filter(|m| m.active).map(|m| m.collection.clone()).collect();
    collections.sort();
    collections.dedup();
    let mut trained = 0;
    let mut failures = Vec::new();
    for collection in collections {
        match retrain_collection(engine, &models, &collection, &summaries).await {
            Ok(n) => trained += n,
            Err(e) => failures.push(format!("{collection}: {e}")),
        }
    }
    if !failures.is_empty() {
        return Err((trained, failures.join("; ")));
    }
    Ok(trained)
}

async fn retrain_collection(
    engine: &Engine,
    models: &std::path::Path,
    collection: &str,
    summaries: &[citecast_actors::forecast::service::ModelSummary],
) -> Result<u64, String> {
    use crate::forecasts::training;
    let corpus = engine
        .store
        .send(BuildCollectionCorpus(collection.to_string()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the store has no collection '{collection}'"))?;
    let loaded = training::load(training::Data::Corpus {
        corpus: Arc::new(corpus),
        collection: collection.to_string(),
    })
    .map_err(|e| e.to_string())?;
    let loaded = Arc::new(loaded);
    let seed = now_secs() as u64;
    let (l, dir) = (loaded.clone(), models.to_path_buf());
    let (task, out) = actix_web::rt::task::spawn_blocking(move || {
        let task = training::task_for(&l, &Default::default())?;
        let opts = TrainOptions { seed, ..Default::default() };
        let out = training::train(&l, &task, &dir, &Mode::ALL, &opts)?;
        Ok::<_, crate::forecasts::TrainingError>((task, out))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let (_, refused) =
        engine.model.send(RescanModels).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    if !refused.is_empty() {
        return Err(refused.join("; "));
    }
    let mut trained = 0;
    for m in out["models"].as_array().cloned().unwrap_or_default() {
        trained += 1;
        let (Some(version), Some(dir)) = (m["version"].as_str(), m["dir"].as_str()) else { continue };
        let mode = m["mode"].as_str().and_then(Mode::parse).unwrap_or(Mode::AtPublication);
        audit(engine, "model.retrain", version, &m).await;
        let Some(serving) = summaries
            .iter()
            .find(|s| s.active && s.collection == collection && s.mode == mode)
            .map(|s| s.version.clone())
        else {
            continue;
        };
        let serving_dir = engine
            .model
            .send(ListModelDirs)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|(v, _)| *v == serving)
            .map(|(_, d)| d)
            .ok_or_else(|| format!("serving model {serving} is no longer loaded"))?;
        let (l, t, candidate_dir) = (loaded.clone(), task.clone(), std::path::PathBuf::from(dir));
        let comparison = actix_web::rt::task::spawn_blocking(move || {
            let c = training::compare(&l, &t, &candidate_dir, &serving_dir)?;
            training::save_comparison(&candidate_dir, &c)?;
            Ok::<_, crate::forecasts::TrainingError>(c)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let value = serde_json::to_value(&comparison).unwrap_or_default();
        audit(engine, "model.retrain.compare", version, &value).await;
        if comparison.significant {
            let spec = RolloutSpec {
                candidate: version.to_string(),
                strategy: Strategy::Canary { stage: 0, advance_after_secs: Some(24 * 3600) },
                guards: Guards::default(),
            };
            match engine.model.send(StartRollout(spec)).await.map_err(|e| e.to_string())? {
                Ok(r) => {
                    audit(
                        engine,
                        "rollout.start",
                        version,
                        &serde_json::json!({ "rollout": r, "by": "retrain" }),
                    )
                    .await
                }
                Err(e) => {
                    audit(engine, "rollout.refused", version, &serde_json::json!({ "reason": e.to_string() }))
                        .await
                }
            }
        }
    }
    Ok(trained)
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
