//! The operator's contest endpoints (admin token, audited): create a contest (a replay
//! with `as_of`), lock it now, and score it now if the data resolves it.

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde_json::json;

use super::service::{self, NewContest};
use super::ContestError;
use crate::web::auth::{actor_of, audit, Admin};
use crate::web::error::ApiError;
use crate::web::AppState;

/// `POST /admin/contests`: see [`NewContest`]; 201 with the contest.
pub async fn create(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let new: NewContest = serde_json::from_slice(&body)
        .map_err(|e| ContestError::Invalid(format!("the body is not the expected JSON: {e}")))?;
    let c = service::create(&state.engine, new, citecast_actors::dates::now_secs()).await?;
    let mut shown = json!(c);
    shown["pool_size"] = json!(c.pool.len());
    audit(
        &state,
        &req,
        "contest.create",
        c.id.clone(),
        None,
        &json!({ "title": c.title, "deadline": c.deadline, "as_of": c.as_of, "pool": c.pool.len() }),
    )
    .await;
    Ok(HttpResponse::Created().json(json!({ "contest": shown })))
}

/// `POST /admin/contests/{id}/lock`: picks close now.
pub async fn lock(
    _: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let locked =
        service::lock(&state.engine, &id, &actor_of(&req), citecast_actors::dates::now_secs()).await?;
    Ok(HttpResponse::Ok().json(json!({ "contest": id, "locked": true, "already_locked": !locked })))
}

/// `POST /admin/contests/{id}/score`: scores a locked contest when the data resolves it
/// (409 while open, 409 while the data does not say yet).
pub async fn score(
    _: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let now = citecast_actors::dates::now_secs();
    match service::score(&state.engine, &state.accounts, &id, &actor_of(&req), now).await? {
        Some(c) => Ok(HttpResponse::Ok().json(json!({ "contest": c.id, "results": c.results }))),
        None => {
            Err(ContestError::Refused("the data does not resolve every paper of the pool yet".into()).into())
        }
    }
}
