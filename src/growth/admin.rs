//! `/admin/growth`: trigger → upgrade conversion per trigger (HTML for a browser, JSON
//! otherwise), from the stored triggers and each customer's tier.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::{GrowthError, GrowthReport};
use crate::web::auth::Admin;
use crate::web::error::ApiError;
use crate::web::page::{private_html, Nav};
use crate::web::AppState;

#[derive(Template)]
#[template(path = "site/admin_growth.html")]
struct GrowthPage {
    nav: Nav,
    /// (trigger, label, triggered, converted, mailed, rate with its interval).
    rows: Vec<(String, String, u64, u64, u64, String)>,
    attribution_days: i64,
}

fn rate(r: &crate::pricing::stats::Rate) -> String {
    if r.trials == 0 {
        return "no triggers yet".into();
    }
    format!("{:.1} % (95 % CI {:.1} to {:.1} %)", r.rate * 100.0, r.low * 100.0, r.high * 100.0)
}

/// The report over the app's state (on the blocking pool).
pub async fn load(state: &AppState) -> Result<GrowthReport, GrowthError> {
    let (db, accounts, tiers) = (state.engine.db.clone(), state.accounts.clone(), state.tiers.clone());
    let now = citecast_actors::dates::now_secs();
    actix_web::rt::task::spawn_blocking(move || super::conversion_report(&db, accounts.as_ref(), &tiers, now))
        .await
        .map_err(|_| GrowthError::Unavailable)?
}

pub async fn report(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let report = load(&state).await?;
    let html =
        req.headers().get("accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if !html {
        return Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(report));
    }
    let rows = report
        .triggers
        .iter()
        .chain(std::iter::once(&report.total))
        .map(|t| (t.trigger.clone(), t.label.clone(), t.triggered, t.converted, t.mailed, rate(&t.rate)))
        .collect();
    let page =
        GrowthPage { nav: Nav::of(&session, &state.site), rows, attribution_days: report.attribution_days };
    private_html(StatusCode::OK, page.render())
}
