//! The operator's pricing experiments: register one (token in a header, audited; its
//! variants and stopping rule are fixed from then on), list them, stop one, and the
//! report at `/admin/pricing/experiments/{id}` (HTML for a browser, JSON otherwise).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use bytes::Bytes;
use serde_json::json;

use super::experiment::{ExperimentDraft, Report};
use super::{PricingError, PricingStore};
use crate::billing::{format_money, Billing, InvoiceStatus};
use crate::web::auth::{audit, Admin};
use crate::web::error::ApiError;
use crate::web::page::{private_html, Nav};
use crate::web::AppState;

use super::routes::blocking;

fn wants_html(req: &HttpRequest) -> bool {
    req.headers().get("accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// Whether the customer has paid an invoice with money in it (billing's records: marked
/// paid by an operator, by the provider's webhook or covered by credit alike).
pub fn has_paid(billing: &Billing, customer: &str) -> bool {
    billing.invoices(customer).unwrap_or_default().iter().any(|i| {
        i.total_minor > 0
            && i.paid_at.is_some()
            && matches!(i.status, InvoiceStatus::Paid | InvoiceStatus::Refunded)
    })
}

/// `POST /admin/pricing/experiments` with an [`ExperimentDraft`] as JSON: the experiment
/// as registered (prices resolved in cents), running from now.
pub async fn create(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let draft: ExperimentDraft = serde_json::from_slice(&body)
        .map_err(|e| PricingError::Invalid(format!("the body is not an experiment definition: {e}")))?;
    let (db, tiers, actor) = (state.engine.db.clone(), state.tiers.clone(), crate::web::auth::actor_of(&req));
    let now = citecast_actors::dates::now_secs();
    let exp = blocking(move || PricingStore::open(&db)?.create(draft, &tiers, now, &actor)).await?;
    let after = serde_json::to_value(&exp).unwrap_or_default();
    audit(&state, &req, "pricing.experiment.create", exp.id.clone(), None, &after).await;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(json!({ "experiment": exp })))
}

/// `POST /admin/pricing/experiments/{id}/stop`: `/pricing` shows the table again;
/// customers keep the prices they signed up at.
pub async fn stop(
    _: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (db, id) = (state.engine.db.clone(), path.into_inner());
    let target = id.clone();
    let now = citecast_actors::dates::now_secs();
    let exp = blocking(move || PricingStore::open(&db)?.stop(&id, now)).await?;
    let after = json!({ "stopped": exp.stopped });
    audit(&state, &req, "pricing.experiment.stop", target, None, &after).await;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(json!({ "experiment": exp })))
}

/// `GET /admin/pricing/experiments`: every experiment, oldest first.
pub async fn list(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let db = state.engine.db.clone();
    let all = blocking(move || PricingStore::open(&db)?.experiments()).await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(json!({ "experiments": all })))
}

struct Row {
    id: String,
    control: bool,
    headline: String,
    prices: String,
    exposures: u64,
    signups: String,
    payments: String,
    vs_control: String,
}

#[derive(Template)]
#[template(path = "site/pricing_experiment.html")]
struct ReportPage {
    nav: Nav,
    id: String,
    name: String,
    hypothesis: String,
    metric: &'static str,
    state: String,
    rule: String,
    rows: Vec<Row>,
    alpha: String,
    decision_allowed: bool,
    decision: String,
    outcome: Option<String>,
}

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

fn rate(r: &super::stats::Rate) -> String {
    format!("{} ({} of {}; 95 % CI {} to {})", pct(r.rate), r.successes, r.trials, pct(r.low), pct(r.high))
}

fn page(report: Report, nav: Nav) -> ReportPage {
    let exp = &report.experiment;
    let date = |t: i64| citecast_actors::dates::format(citecast_actors::dates::day_of_secs(t));
    ReportPage {
        nav,
        id: exp.id.clone(),
        name: exp.name.clone(),
        hypothesis: exp.hypothesis.clone(),
        metric: match exp.primary_metric {
            super::experiment::Metric::Signup => "sign-ups per visitor",
            super::experiment::Metric::FirstPayment => "first payments per visitor",
        },
        state: match exp.stopped {
            Some(t) => format!("started {}, stopped {}", date(exp.started), date(t)),
            None => format!("running since {}", date(exp.started)),
        },
        rule: format!(
            "decide only after {} days (on {}) and with at least {} visitors per variant",
            exp.stopping_rule.horizon_days,
            report.decision.horizon_ends,
            exp.stopping_rule.min_exposures_per_variant
        ),
        alpha: format!("{:.4}", report.alpha_per_comparison),
        decision_allowed: report.decision.allowed,
        decision: report.decision.reason.clone(),
        outcome: report.outcome.clone(),
        rows: report
            .variants
            .iter()
            .map(|v| Row {
                id: v.id.clone(),
                control: v.control,
                headline: v.headline.clone().unwrap_or_default(),
                prices: v
                    .prices
                    .iter()
                    .map(|(t, p)| {
                        format!(
                            "{t}: {} / month, {} / year",
                            format_money(p.monthly_minor, "usd"),
                            format_money(p.annual_minor, "usd")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                exposures: v.counts.exposures,
                signups: rate(&v.signup),
                payments: rate(&v.first_payment),
                vs_control: match v.vs_control {
                    None => "control".into(),
                    Some(c) => format!(
                        "{:+.2} points (95 % CI {:+.2} to {:+.2}), z = {:.2}, p = {:.4}: {}",
                        c.difference * 100.0,
                        c.low * 100.0,
                        c.high * 100.0,
                        c.z,
                        c.p_value,
                        if c.significant { "significant" } else { "not significant" }
                    ),
                },
            })
            .collect(),
    }
}

/// `GET /admin/pricing/experiments/{id}`: conversion per variant with 95 % Wilson
/// intervals, each variant against the control (two-proportion z-test), and whether the
/// stopping rule allows a decision yet.
pub async fn show(
    _: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let (db, billing, id) = (state.engine.db.clone(), state.billing.clone(), path.into_inner());
    let now = citecast_actors::dates::now_secs();
    let report = blocking(move || super::experiment_report(&db, &id, |c| has_paid(&billing, c), now)).await?;
    if wants_html(&req) {
        return private_html(StatusCode::OK, page(report, Nav::of(&session, &state.site)).render());
    }
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(report))
}
