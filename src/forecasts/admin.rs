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
