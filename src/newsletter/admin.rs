//! The operator's newsletter endpoints: `POST /admin/newsletter/import` (readers from
//! another list) and `GET /admin/newsletter` (subscribers by state and each issue's
//! delivery: queued, deferred, sent, bounced, failed, skipped).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::store::Subscribers;
use crate::accounts::signin::{clean_email, clean_name};
use crate::web::auth::{audit, Admin};
use crate::web::error::ApiError;
use crate::web::AppState;

/// One reader to import.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Imported {
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    pub subscribers: Vec<Imported>,
    /// They opted in on the list they come from: no confirmation mail.
    #[serde(default)]
    pub confirmed: bool,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportReport {
    pub imported: u64,
    /// Addresses already subscribed (left as they are).
    pub existing: u64,
    /// (position in the list, why) of refused entries.
    pub refused: Vec<(usize, String)>,
}

/// Imports readers into `subs` (plain; the CLI calls it directly when no server runs).
pub fn import(
    subs: &Subscribers,
    body: &ImportBody,
    now: i64,
) -> Result<ImportReport, super::NewsletterError> {
    let mut report = ImportReport::default();
    for (i, r) in body.subscribers.iter().enumerate() {
        let email = match clean_email(&r.email) {
            Ok(e) => e,
            Err(e) => {
                report.refused.push((i + 1, e.to_string()));
                continue;
            }
        };
        let name = match r.name.as_deref().filter(|n| !n.trim().is_empty()).map(clean_name).transpose() {
            Ok(n) => n,
            Err(e) => {
                report.refused.push((i + 1, e.to_string()));
                continue;
            }
        };
        match subs.import(&email, name.as_deref(), body.confirmed, now)? {
            Some(_) => report.imported += 1,
            None => report.existing += 1,
        }
    }
    subs.flush()?;
    Ok(report)
}

/// Subscribers by state and delivery per issue, newest first.
pub fn status(subs: &Subscribers) -> Result<serde_json::Value, super::NewsletterError> {
    let issues: Vec<serde_json::Value> =
        subs.stats()?.into_iter().map(|(n, s)| serde_json::json!({ "issue": n, "delivery": s })).collect();
    Ok(serde_json::json!({ "subscribers": subs.counts()?, "issues": issues }))
}

pub async fn import_route(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<ImportBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let subs = Subscribers::open(&state.engine.db)?;
    let now = citecast_actors::dates::now_secs();
    let n = body.subscribers.len();
    let confirmed = body.confirmed;
    let report = actix_web::rt::task::spawn_blocking(move || import(&subs, &body, now))
        .await
        .map_err(ApiError::internal)??;
    let after = serde_json::json!({ "listed": n, "confirmed": confirmed, "imported": report.imported });
    audit(&state, &req, "newsletter.import", format!("{n} addresses"), None, &after).await;
    Ok(HttpResponse::Ok().json(report))
}

pub async fn status_route(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let subs = Subscribers::open(&state.engine.db)?;
    let v =
        actix_web::rt::task::spawn_blocking(move || status(&subs)).await.map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(v))
}
