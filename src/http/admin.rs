//! Operator endpoints under `/admin`, protected by the token the server writes to
//! `DATA_DIR/server.json` (readable only by the user running it). Operator commands
//! given the same `--data-dir` use them while the server holds the store.

use std::path::PathBuf;

use actix_web::{web, HttpRequest, HttpResponse};
use citecast_actors::actors::{GetStats, IndexDocCount, IngestFiles};
use serde::Deserialize;
use serde_json::json;

use super::error::{ask, ApiError};
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
    authorise_token(req).map_err(|e| {
        // A person in a browser gets a page saying what to do, a program the JSON error.
        let wants_html = req
            .headers()
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        match e {
            ApiError::Unauthorized if wants_html => ApiError::UnauthorizedPage,
            other => other,
        }
    })
}

fn authorise_token(req: &HttpRequest) -> Result<Admin, ApiError> {
    // Browsers can't set headers on a link: pages also accept ?token=. Other parameters
    // (hours=, format=) are the page's to check, not a reason to ignore the token.
    let from_query = serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "token").map(|(_, v)| v));
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
    let imports = state.engine.store.send(citecast_actors::actors::ListImports).await??;
    let (running, incomplete) = split_imports(imports);
    Ok(HttpResponse::Ok().json(json!({
        "store": stats,
        "index_docs": index_docs,
        "ready": state.is_ready(),
        "imports_running": running,
        "imports_incomplete": incomplete,
    })))
}

/// Imports now running, and those cut short or failed that no re-run has completed.
pub fn split_imports(
    imports: Vec<citecast_actors::imports::ImportRecord>,
) -> (Vec<citecast_actors::imports::ImportRecord>, Vec<citecast_actors::imports::ImportRecord>) {
    use citecast_actors::imports::ImportStatus as S;
    let (running, rest): (Vec<_>, Vec<_>) = imports.into_iter().partition(|r| r.status == S::Running);
    (running, rest.into_iter().filter(|r| matches!(r.status, S::Interrupted | S::Failed)).collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestBody {
    /// Absolute paths on the server's machine.
    paths: Vec<PathBuf>,
    /// Cap on references per paper for this import (default: the server's setting).
    #[serde(default)]
    max_refs_per_paper: Option<usize>,
}

pub async fn ingest(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<IngestBody>,
) -> Result<HttpResponse, ApiError> {
    let IngestBody { paths, max_refs_per_paper } = body.into_inner();
    if max_refs_per_paper == Some(0) {
        return Err(ApiError::InvalidBody("'max_refs_per_paper' must be at least 1".into()));
    }
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
    let target = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    let reports = state
        .engine
        .ingest
        .send(IngestFiles { paths, progress: None, max_refs_per_paper })
        .await?
        .map_err(ingest_error)?;
    let new: u64 = reports.iter().map(|r| r.new_records()).sum();
    audit(&state, &req, "data.ingest", target, None, &json!({ "new_records": new })).await;
    if new > 0 {
        // Warm the models on the new data step by step; forecasts are served meanwhile.
        let engine = state.engine.clone();
        actix_web::rt::spawn(async move { crate::server::warm_models(&engine).await });
    }
    crate::server::release_freed_memory();
    Ok(HttpResponse::Ok().json(json!({ "reports": reports })))
}

/// An import's failure: the file's fault (unreadable, unknown format) is the caller's,
/// the store's or the index's is the server's.
fn ingest_error(e: citecast_actors::ingest::IngestError) -> ApiError {
    use citecast_actors::ingest::IngestError as E;
    match e {
        e @ (E::Io { .. } | E::UnknownFormat { .. }) => ApiError::InvalidBody(e.to_string()),
        E::Mailbox(_) => ApiError::Unavailable { what: "ingest engine" },
        e @ (E::Store(_) | E::Index(_)) => {
            ApiError::Failed { code: "storage_failed", message: e.to_string() }
        }
    }
}

/// A backup's failure: a path that cannot be used is the caller's; a disk that fills up
/// or a store that fails is the server's.
fn backup_error(e: citecast_actors::backup::BackupError) -> ApiError {
    use citecast_actors::backup::BackupError as B;
    use std::io::ErrorKind as K;
    match e {
        B::Invalid(m) => ApiError::InvalidBody(m),
        B::Io { ref source, .. }
            if matches!(
                source.kind(),
                K::NotFound | K::PermissionDenied | K::AlreadyExists | K::InvalidInput
            ) =>
        {
            ApiError::InvalidBody(e.to_string())
        }
        e => ApiError::Failed { code: "backup_failed", message: e.to_string() },
    }
}

/// The audit log's "who" for an admin request: the CLI names its user in a header.
pub fn actor_of(req: &HttpRequest) -> String {
    let named = req
        .headers()
        .get("x-citecast-actor")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 80 && v.chars().all(|c| c.is_ascii_graphic()));
    match named {
        Some(n) => format!("admin-api/{n}"),
        None => "admin-api".into(),
    }
}

/// Operator actions; see [`crate::operator::OpRequest`].
pub async fn op(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<crate::operator::OpRequest>,
) -> Result<HttpResponse, ApiError> {
    let value =
        crate::operator::execute_as(&state.engine, &state.tiers, body.into_inner(), &actor_of(&req)).await?;
    Ok(HttpResponse::Ok().json(value))
}

/// `GET /admin/jobs`: every job's state, the dead letters and recent runs.
pub async fn jobs(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let jobs = state.jobs.as_ref().ok_or_else(|| ApiError::internal("this server runs no scheduler"))?;
    let report = jobs.send(crate::jobs::GetJobs { history: 50 }).await?.map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(report))
}

/// `POST /admin/jobs/{name}`: change a job's schedule, daily budget or retries.
pub async fn set_job(
    _: Admin,
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<AppState>,
    body: web::Json<crate::jobs::JobSettings>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let jobs = state.jobs.as_ref().ok_or_else(|| ApiError::internal("this server runs no scheduler"))?;
    let value = jobs
        .send(crate::jobs::SetJob { name: name.clone(), settings: body.into_inner() })
        .await?
        .map_err(ApiError::InvalidBody)?;
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
    let action: crate::jobs::JobAction = serde_json::from_value(json!(action)).map_err(|_| {
        ApiError::param("action", format!("'{action}' is not a job action: run, pause, resume or requeue"))
    })?;
    let jobs = state.jobs.as_ref().ok_or_else(|| ApiError::internal("this server runs no scheduler"))?;
    let value = jobs
        .send(crate::jobs::ControlJob { name: name.clone(), action })
        .await?
        .map_err(ApiError::InvalidBody)?;
    let verb = match action {
        crate::jobs::JobAction::Run => "job.run",
        crate::jobs::JobAction::Pause => "job.pause",
        crate::jobs::JobAction::Resume => "job.resume",
        crate::jobs::JobAction::Requeue => "job.requeue",
    };
    audit(&state, &req, verb, name, None, &value).await;
    Ok(HttpResponse::Ok().json(value))
}

/// Appends an audit entry for an action that does not go through [`crate::operator`].
pub async fn audit(
    state: &AppState,
    req: &HttpRequest,
    action: &str,
    target: String,
    before: Option<&serde_json::Value>,
    after: &serde_json::Value,
) {
    let entry = citecast_actors::journal::AuditEntry {
        seq: 0,
        at: citecast_actors::dates::now_secs(),
        actor: actor_of(req),
        action: action.into(),
        target,
        before: before.map(|b| b.to_string()),
        after: Some(after.to_string()),
    };
    match state.engine.store.send(citecast_actors::actors::AppendAudit(entry)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, action, "audit entry not written"),
        Err(e) => tracing::error!(error = %e, action, "audit entry not written"),
    }
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
    let op = crate::operator::OpRequest::Audit { after, limit: Some(limit) };
    Ok(HttpResponse::Ok().json(crate::operator::execute(&state.engine, &state.tiers, op).await?))
}

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
    req: HttpRequest,
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
        .send(citecast_actors::actors::BackupTo(path.clone()))
        .await?
        .map_err(backup_error)?;
    let value = serde_json::to_value(&summary).map_err(ApiError::internal)?;
    audit(&state, &req, "backup.run", path.display().to_string(), None, &value).await;
    Ok(HttpResponse::Ok().json(summary))
}

/// `POST /admin/models/{version}/promote`: hot-swaps the serving model of its mode.
pub async fn promote(
    _: Admin,
    req: HttpRequest,
    version: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let op = crate::operator::OpRequest::Promote { version: version.into_inner() };
    Ok(HttpResponse::Ok()
        .json(crate::operator::execute_as(&state.engine, &state.tiers, op, &actor_of(&req)).await?))
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
    let op = crate::operator::OpRequest::Rollback { mode };
    Ok(HttpResponse::Ok()
        .json(crate::operator::execute_as(&state.engine, &state.tiers, op, &actor_of(&req)).await?))
}
