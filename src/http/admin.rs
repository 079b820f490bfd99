//! Operator endpoints under `/admin`, protected by the token the server writes to
//! `DATA_DIR/server.json` (readable only by the user running it). Operator commands
//! given the same `--data-dir` use them while the server holds the store.

use std::path::PathBuf;

use actix_web::{web, HttpRequest, HttpResponse};
use citecast_actors::actors::{GetStats, IndexDocCount, IngestFiles};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::params::Params;
use super::AppState;

/// Proof that the request carried the admin token. As an extractor listed before the
/// body it rejects unauthenticated requests before their body is read.
pub struct Admin;

impl actix_web::FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(authorise(req))
    }
}

fn authorise(req: &HttpRequest) -> Result<Admin, ApiError> {
    // Browsers can't set headers on a link: pages also accept ?token=.
    let from_query = Params::parse(req.query_string(), &["token", "format"])
        .ok()
        .and_then(|p| p.get("token").map(str::to_string));
    let state = req.app_data::<web::Data<AppState>>().ok_or_else(|| ApiError::internal("no app state"))?;
    let expected = state.admin_token.as_deref().ok_or(ApiError::Unauthorized)?;
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
        .or(from_query)
        .ok_or(ApiError::Unauthorized)?;
    // Compare in constant time so the token can't be guessed byte by byte.
    let same = given.len() == expected.len()
        && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if same {
        Ok(Admin)
    } else {
        Err(ApiError::Unauthorized)
    }
}

pub async fn stats(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let stats = state.engine.store.send(GetStats).await??;
    let index_docs = state.engine.index.send(IndexDocCount).await?;
    Ok(HttpResponse::Ok()
        .json(json!({ "store": stats, "index_docs": index_docs, "ready": state.is_ready() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestBody {
    /// Absolute paths on the server's machine.
    paths: Vec<PathBuf>,
}

pub async fn ingest(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<IngestBody>,
) -> Result<HttpResponse, ApiError> {
    let paths = body.into_inner().paths;
    if paths.is_empty() {
        return Err(ApiError::InvalidBody("'paths' must list at least one file".into()));
    }
    for p in &paths {
        if !p.is_absolute() || !p.is_file() {
            return Err(ApiError::InvalidBody(format!(
                "'{}' is not an absolute path to a file",
                p.display()
            )));
        }
    }
    let reports = state
        .engine
        .ingest
        .send(IngestFiles { paths, progress: None })
        .await?
        .map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    crate::server::release_freed_memory();
    Ok(HttpResponse::Ok().json(json!({ "reports": reports })))
}

/// Customer and key administration; see [`crate::operator::OpRequest`].
pub async fn op(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<crate::operator::OpRequest>,
) -> Result<HttpResponse, ApiError> {
    let value = crate::operator::execute(&state.engine, &state.tiers, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(value))
}

/// `GET /admin/models`: every loaded model, which one serves each mode, and its figures.
pub async fn models(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let models = state.engine.model.send(citecast_actors::actors::ListModels).await?;
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
    let report = state
        .engine
        .model
        .send(citecast_actors::actors::GetModelReport(version.clone()))
        .await?
        .ok_or(ApiError::NotFound { what: "model", id: version })?
        .map_err(ApiError::internal)?;
    if req.query_string().contains("format=json") {
        return Ok(HttpResponse::Ok().json(report));
    }
    let html = citecast_actors::forecast::report::render_html(&report).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupBody {
    /// Absolute path on the server's machine for the backup file.
    path: PathBuf,
}

/// `POST /admin/backup`: a consistent online backup of the store.
pub async fn backup(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<BackupBody>,
) -> Result<HttpResponse, ApiError> {
    let path = body.into_inner().path;
    if !path.is_absolute() {
        return Err(ApiError::InvalidBody(format!("'{}' is not an absolute path", path.display())));
    }
    let summary = state
        .engine
        .store
        .send(citecast_actors::actors::BackupTo(path))
        .await?
        .map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    Ok(HttpResponse::Ok().json(summary))
}

/// `POST /admin/models/{version}/promote`: hot-swaps the serving model of its mode.
pub async fn promote(
    _: Admin,
    version: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let summary =
        state.engine.model.send(citecast_actors::actors::PromoteModel(version.into_inner())).await??;
    Ok(HttpResponse::Ok().json(json!({ "active": summary })))
}

/// `POST /admin/models/rollback/{mode}`: puts back the model served before the last promotion.
pub async fn rollback(
    _: Admin,
    mode: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mode = mode.into_inner();
    let mode = citecast_actors::forecast::task::Mode::parse(&mode).ok_or_else(|| {
        ApiError::param("mode", format!("'mode' must be at_publication or early, got '{mode}'"))
    })?;
    let summary = state.engine.model.send(citecast_actors::actors::RollbackModel(mode)).await??;
    Ok(HttpResponse::Ok().json(json!({ "active": summary })))
}
