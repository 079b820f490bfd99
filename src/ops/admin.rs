//! Operator endpoints under `/admin` for the store, backups, jobs and the audit log,
//! protected by the token the server writes to `DATA_DIR/server.json` (readable only by
//! the user running it). Operator commands given the same `--data-dir` use them while
//! the server holds the store. Model and ingest endpoints live with their features.

use std::path::PathBuf;

use actix_web::{web, HttpRequest, HttpResponse};
use citecast_actors::actors::{GetStats, IndexDocCount};
use serde::Deserialize;
use serde_json::json;

use crate::web::auth::{actor_of, audit, Admin};
use crate::web::error::ApiError;
use crate::web::params::Params;
use crate::web::AppState;

pub async fn stats(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let stats = state.engine.store.send(GetStats).await??;
    let index_docs = state.engine.index.send(IndexDocCount).await?;
    let imports = state.engine.store.send(citecast_actors::actors::ListImports).await??;
    let (running, incomplete) = crate::papers::split_imports(imports);
    Ok(HttpResponse::Ok().json(json!({
        "store": stats,
        "index_docs": index_docs,
        "ready": state.is_ready(),
        "imports_running": running,
        "imports_incomplete": incomplete,
    })))
}

/// Operator actions; see [`crate::ops::operator::OpRequest`].
pub async fn op(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<crate::ops::operator::OpRequest>,
) -> Result<HttpResponse, ApiError> {
    let value = crate::ops::operator::execute_as(
        &state.engine,
        &state.accounts,
        &state.tiers,
        body.into_inner(),
        &actor_of(&req),
    )
    .await?;
    // Billing actions (mark-paid, refund) tell whom to mail: the server sends it.
    if let Some(notices) = value
        .get("notices")
        .and_then(|n| serde_json::from_value::<Vec<crate::billing::Notice>>(n.clone()).ok())
    {
        crate::billing::job::mail_notices(
            state.mailer.clone(),
            state.accounts.clone(),
            state.billing.clone(),
            &state.site.base_url,
            &notices,
        )
        .await;
    }
    Ok(HttpResponse::Ok().json(value))
}

/// `GET /admin/jobs`: every job's state, the dead letters and recent runs.
pub async fn jobs(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let jobs = state.jobs.as_ref().ok_or_else(|| ApiError::internal("this server runs no scheduler"))?;
    let report = jobs.send(crate::ops::jobs::GetJobs { history: 50 }).await??;
    Ok(HttpResponse::Ok().json(report))
}

/// `POST /admin/jobs/{name}`: change a job's schedule, daily budget or retries.
pub async fn set_job(
    _: Admin,
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<AppState>,
    body: web::Json<crate::ops::jobs::JobSettings>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let jobs = state.jobs.as_ref().ok_or_else(|| ApiError::internal("this server runs no scheduler"))?;
    let value =
        jobs.send(crate::ops::jobs::SetJob { name: name.clone(), settings: body.into_inner() }).await??;
    audit(&state, &req, "job.settings", name, Some(&value["before"]), &value["after"]).await;
    Ok(HttpResponse::Ok().json(value))
}

/// `POST /admin/jobs/{name}/{run|pause|resume|requeue}`.
pub async fn control_job(
    _: Admin,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (name, action) = path.into_inner();
    let action: crate::ops::jobs::JobAction = serde_json::from_value(json!(action)).map_err(|_| {
        ApiError::param("action", format!("'{action}' is not a job action: run, pause, resume or requeue"))
    })?;
    let jobs = state.jobs.as_ref().ok_or_else(|| ApiError::internal("this server runs no scheduler"))?;
    let value = jobs.send(crate::ops::jobs::ControlJob { name: name.clone(), action }).await??;
    let verb = match action {
        crate::ops::jobs::JobAction::Run => "job.run",
        crate::ops::jobs::JobAction::Pause => "job.pause",
        crate::ops::jobs::JobAction::Resume => "job.resume",
        crate::ops::jobs::JobAction::Requeue => "job.requeue",
    };
    audit(&state, &req, verb, name, None, &value).await;
    Ok(HttpResponse::Ok().json(value))
}

/// `GET /admin/audit?after=&limit=`: the audit log, oldest first (read only: there is
/// no endpoint that edits or deletes entries).
pub async fn audit_log(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::parse(req.query_string(), &["after", "limit", "token"])?;
    let after = match p.get("after") {
        Some(a) => Some(a.parse::<u64>().map_err(|_| {
            ApiError::param("after", format!("'after' must be an entry's seq number, got '{a}'"))
        })?),
        None => None,
    };
    let limit = p.int("limit", 100, 1, 1000)?;
    let op = crate::ops::operator::OpRequest::Audit { after, limit: Some(limit) };
    Ok(HttpResponse::Ok()
        .json(crate::ops::operator::execute(&state.engine, &state.accounts, &state.tiers, op).await?))
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
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<BackupBody>,
) -> Result<HttpResponse, ApiError> {
    let path = body.into_inner().path;
    if !path.is_absolute() {
        return Err(ApiError::InvalidBody(format!("'{}' is not an absolute path", path.display())));
    }
    let summary = state.engine.store.send(citecast_actors::actors::BackupTo(path.clone())).await??;
    let value = serde_json::to_value(&summary).map_err(ApiError::internal)?;
    audit(&state, &req, "backup.run", path.display().to_string(), None, &value).await;
    Ok(HttpResponse::Ok().json(summary))
}
