//! Operator endpoints for the models: list, report, promote, roll back.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::web::auth::{actor_of, Admin};
use crate::web::error::{ask, ApiError};
use crate::web::AppState;

/// `GET /admin/models`: every loaded model, which one serves each mode, and its figures.
pub async fn models(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let models = ask(&state.engine.model, citecast_actors::actors::ListModels, "model engine").await?;
    Ok(HttpResponse::Ok().json(json!({ "models": models })))
}

/// `GET /admin/models/{version}`: the model's performance report as a page (`?format=json`
/// for the JSON).
pub async fn model_report(
    _: Admin,
    req: HttpRequest,
    version: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let version = version.into_inner();
    let report =
        ask(&state.engine.model, citecast_actors::actors::GetModelReport(version.clone()), "model engine")
            .await?
            .ok_or(ApiError::NotFound { what: "model", id: version })?
            .map_err(ApiError::internal)?;
    if req.query_string().contains("format=json") {
        return Ok(HttpResponse::Ok().json(report));
    }
    let html = super::report_page::render_html(&report).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html))
}

/// `POST /admin/models/{version}/promote`: hot-swaps the serving model of its mode.
pub async fn promote(
    _: Admin,
    req: HttpRequest,
    version: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let op = crate::ops::operator::OpRequest::Promote { version: version.into_inner() };
    Ok(HttpResponse::Ok().json(
        crate::ops::operator::execute_as(&state.engine, &state.accounts, &state.tiers, op, &actor_of(&req))
            .await?,
    ))
}

/// `POST /admin/models/rollback/{mode}`: puts back the model served before the last promotion.
pub async fn rollback(
    _: Admin,
    req: HttpRequest,
    mode: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mode = mode.into_inner();
    if citecast_actors::forecast::task::Mode::parse(&mode).is_none() {
        return Err(ApiError::param("mode", format!("'mode' must be at_publication or early, got '{mode}'")));
    }
    let op = crate::ops::operator::OpRequest::Rollback { mode };
    Ok(HttpResponse::Ok().json(
        crate::ops::operator::execute_as(&state.engine, &state.accounts, &state.tiers, op, &actor_of(&req))
            .await?,
    ))
}

/// `POST /admin/train` body: what to train on the live store.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainBody {
    #[serde(default = "default_collection")]
    collection: String,
    /// `at_publication`, `early` or `both` (default).
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
    /// Small settings, for trials and tests.
    #[serde(default)]
    quick: bool,
    #[serde(default)]
    label_months: Option<i32>,
    #[serde(default)]
    early_months: Option<i32>,
    #[serde(default)]
    test_months: Option<i32>,
    #[serde(default)]
    validation_months: Option<i32>,
    /// `YYYY-MM-DD`: train on papers from this day on.
    #[serde(default)]
    train_from: Option<String>,
    /// Backtest cutoffs per new model (default 2).
    #[serde(default)]
    backtest: Option<usize>,
}

fn default_collection() -> String {
    citecast_actors::store::DEFAULT_COLLECTION.to_string()
}

/// The corpus of one collection as the store holds it now.
async fn live_corpus(state: &AppState, collection: &str) -> Result<super::training::Loaded, ApiError> {
    let corpora =
        state.engine.store.send(citecast_actors::actors::BuildCollectionCorpus(collection.to_string()));
    let corpus = corpora
        .await?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound { what: "collection", id: collection.to_string() })?;
    let data =
        super::training::Data::Corpus { corpus: std::sync::Arc::new(corpus), collection: collection.into() };
    Ok(super::training::load(data)?)
}

/// `POST /admin/train`: trains on what the store holds for a collection (splits from the
/// data) into `DATA_DIR/models` and loads the new versions as candidates: they serve
/// only once promoted or rolled out, except in a mode that has no model at all. Audited.
pub async fn train(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<TrainBody>,
) -> Result<HttpResponse, ApiError> {
    use citecast_actors::forecast::task::TaskOptions;
    use citecast_actors::forecast::train::TrainOptions;
    let b = body.into_inner();
    let modes =
        super::training::modes_of(b.mode.as_deref().unwrap_or("both")).map_err(ApiError::InvalidBody)?;
    let base = if b.quick { TrainOptions::quick() } else { TrainOptions::default() };
    let opts = TrainOptions { seed: b.seed.unwrap_or(base.seed), ..base };
    let defaults = TaskOptions::default();
    let task_options = super::training::task_options(
        b.label_months.unwrap_or(defaults.label_months),
        b.early_months.unwrap_or(defaults.early_months),
        b.test_months.unwrap_or(defaults.test_months),
        b.validation_months.unwrap_or(defaults.validation_months),
        b.train_from.as_deref(),
    )
    .map_err(ApiError::InvalidBody)?;
    if b.backtest.is_some_and(|n| n > 12) {
        return Err(ApiError::InvalidBody("'backtest' may ask for at most 12 cutoffs".into()));
    }
    let backtest = b.backtest;
    let loaded = live_corpus(&state, &b.collection).await?;
    let models = state.models_dir.clone();
    let out = crate::engine::blocking(
        move || {
            let task = super::training::task_for(&loaded, &task_options)?;
            let backtests = backtest.unwrap_or(super::training::default_backtests(&loaded));
            super::training::train(&loaded, &task, &models, &modes, &opts, backtests)
        },
        || super::TrainingError::Failed("the server is stopping".into()),
    )
    .await?;
    let (loaded_versions, refused) = crate::web::error::ask_within(
        &state.engine.model,
        citecast_actors::actors::RescanModels,
        "model engine",
        std::time::Duration::from_secs(600),
    )
    .await?
    .map_err(ApiError::from)?;
    let value = json!({ "models": out["models"], "loaded": loaded_versions, "refused": refused });
    crate::web::auth::audit(&state, &req, "model.train", b.collection, None, &value).await;
    Ok(HttpResponse::Ok().json(value))
}

/// `POST /admin/evaluate` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateBody {
    #[serde(default = "default_collection")]
    collection: String,
    versions: Vec<String>,
    /// Cutoffs of a rolling-origin backtest (0: none).
    #[serde(default)]
    backtest: usize,
}

/// `POST /admin/evaluate`: re-evaluates loaded models on the live store's collection
/// (each on the task it was trained for), rewriting their reports; with `backtest`, also
/// backtests them. Audited (it rewrites the reports).
pub async fn evaluate(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<EvaluateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    if b.versions.is_empty() {
        return Err(ApiError::InvalidBody("'versions' must name at least one model version".into()));
    }
    if b.backtest > 12 {
        return Err(ApiError::InvalidBody("'backtest' may ask for at most 12 cutoffs".into()));
    }
    let listed = ask(&state.engine.model, citecast_actors::actors::ListModelDirs, "model engine").await?;
    let mut dirs = Vec::new();
    for v in &b.versions {
        let dir = listed.iter().find(|(version, _)| version == v).map(|(_, d)| d.clone());
        dirs.push(dir.ok_or_else(|| ApiError::NotFound { what: "model", id: v.clone() })?);
    }
    let loaded = live_corpus(&state, &b.collection).await?;
    let backtest = b.backtest;
    let out = crate::engine::blocking(
        move || super::training::evaluate(&loaded, &dirs, backtest),
        || super::TrainingError::Failed("the server is stopping".into()),
    )
    .await?;
    crate::web::auth::audit(
        &state,
        &req,
        "model.evaluate",
        b.versions.join(","),
        None,
        &json!({ "versions": b.versions, "backtest": backtest }),
    )
    .await;
    Ok(HttpResponse::Ok().json(out))
}
