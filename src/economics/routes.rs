//! `/admin/economics` (operator only): the figures of [`super::compute`] as a page or
//! JSON (`?format=json`), each month linking to the events behind it
//! (`/admin/economics/events?month=`), and the forms' JSON twins to record marketing
//! spend and costs (`POST /admin/economics/spend|costs`, admin token in the header).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::store::{parse_amount, EconomicsError, Ledgers, Table};
use super::{compute, facts, month_label, parse_month, Economics};
use crate::billing::format_money;
use crate::web::auth::{audit, Admin};
use crate::web::error::ApiError;
use crate::web::page::{private_html, Nav};
use crate::web::{get_or_head, AppState, SiteRoute};

pub fn site_routes() -> Vec<SiteRoute> {
    vec![
        SiteRoute::get("/admin/economics", || get_or_head().to(page)),
        SiteRoute::get("/admin/economics/events", || get_or_head().to(events)),
        SiteRoute::post("/admin/economics/{table}", || web::post().to(record)),
    ]
}

/// Whether the store was seeded by `serve --demo` (`meta/demo_data`).
pub fn is_demo(db: &sled::Db) -> bool {
    db.open_tree(citecast_actors::migrate::META_TREE)
        .ok()
        .and_then(|m| m.get("demo_data").ok().flatten())
        .is_some()
}

/// The figures now, from the store.
pub fn current(db: &sled::Db, billing: &crate::billing::Billing) -> Result<Economics, EconomicsError> {
    let (customers, invoices) = facts(billing).map_err(|e| EconomicsError::Billing(e.to_string()))?;
    let ledgers = Ledgers::open(db)?;
    Ok(compute(
        &customers,
        &invoices,
        &ledgers.all(Table::Spend)?,
        &ledgers.all(Table::Costs)?,
        citecast_actors::dates::now_secs(),
    ))
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:.1} %", x * 100.0)).unwrap_or_else(|| "–".into())
}

fn money(v: Option<i64>) -> String {
    v.map(|x| format_money(x, "usd")).unwrap_or_else(|| "–".into())
}

struct Row {
    month: String,
    mrr: String,
    growth: String,
    churn: String,
    revenue_churn: String,
    new_paying: u64,
    arpu: String,
    spend: String,
    cac: String,
    margin: String,
}

#[derive(Template)]
#[template(path = "site/economics.html")]
struct EconomicsPage {
    nav: Nav,
    demo: bool,
    as_of: String,
    mrr: String,
    growth: String,
    paying: u64,
    trial_conversion: String,
    annual_share: String,
    ltv: String,
    ltv_to_cac: String,
    rows: Vec<Row>,
    cohorts: Vec<(String, u64, Vec<String>)>,
    max_offset: usize,
}

async fn load(state: &AppState) -> Result<Economics, ApiError> {
    let (db, billing) = (state.engine.db.clone(), state.billing.clone());
    Ok(actix_web::rt::task::spawn_blocking(move || current(&db, &billing))
        .await
        .map_err(ApiError::internal)??)
}

pub async fn page(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let e = load(&state).await?;
    if req.query_string().split('&').any(|kv| kv == "format=json") {
        return Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(&e));
    }
    let last = e.months.last().cloned().unwrap_or_default();
    let max_offset = e.cohorts.iter().map(|c| c.retention.len()).max().unwrap_or(0);
    let page = EconomicsPage {
        nav: Nav::of(&session, &state.site),
        demo: is_demo(&state.engine.db),
        as_of: e.as_of.clone(),
        mrr: format_money(last.mrr_minor, "usd"),
        growth: pct(last.mrr_growth),
        paying: e.paying_now,
        trial_conversion: format!("{} ({} of {})", pct(e.trial_conversion), e.trials_converted, e.trials),
        annual_share: pct(e.annual_share),
        ltv: money(e.ltv_minor),
        ltv_to_cac: e.ltv_to_cac.map(|r| format!("{r:.1}")).unwrap_or_else(|| "–".into()),
        rows: e
            .months
            .iter()
            .rev()
            .map(|f| Row {
                month: f.month.clone(),
                mrr: format_money(f.mrr_minor, "usd"),
                growth: pct(f.mrr_growth),
                churn: format!("{} ({}/{})", pct(f.customer_churn), f.churned, f.paying_at_start),
                revenue_churn: pct(f.revenue_churn),
                new_paying: f.new_paying,
                arpu: money(f.arpu_minor),
                spend: format_money(f.spend_minor, "usd"),
                cac: money(f.cac_minor),
                margin: pct(f.gross_margin),
            })
            .collect(),
        cohorts: e
            .cohorts
            .iter()
            .rev()
            .map(|c| {
                (
                    c.month.clone(),
                    c.customers,
                    c.retention.iter().map(|r| format!("{:.0} %", r * 100.0)).collect(),
                )
            })
            .collect(),
        max_offset,
    };
    private_html(StatusCode::OK, page.render())
}

#[derive(Deserialize)]
pub struct MonthQuery {
    month: String,
}

/// `GET /admin/economics/events?month=YYYY-MM`: the paid invoices recognised in the
/// month and the status changes in it: what every figure of that month is made of.
pub async fn events(
    _: Admin,
    q: Option<web::Query<MonthQuery>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let raw = q.map(|q| q.month.clone()).unwrap_or_default();
    let month = parse_month(&raw).ok_or_else(|| {
        ApiError::param(
            "month",
            format!("'{}' is not a month like 2026-11", raw.chars().take(40).collect::<String>()),
        )
    })?;
    let billing = state.billing.clone();
    let (customers, invoices) = actix_web::rt::task::spawn_blocking(move || facts(&billing))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)?;
    let recognised = super::recognised(&invoices);
    let (start, end) = (super::month_start_secs(month), super::month_start_secs(month + 1));
    let inv: Vec<serde_json::Value> = invoices
        .iter()
        .filter_map(|i| {
            let part =
                super::recognised(std::slice::from_ref(i)).get(&(month, i.customer_id.clone())).copied()?;
            Some(
                serde_json::json!({ "invoice": i.id, "customer": i.customer_id, "total_minor": i.total_minor,
                "recognised_this_month_minor": part, "refunded": i.refunded }),
            )
        })
        .collect();
    let transitions: Vec<serde_json::Value> = customers
        .iter()
        .flat_map(|c| c.history.iter().filter(|r| r.at >= start && r.at < end).map(move |r| serde_json::json!({
            "customer": c.id, "at": citecast_actors::dates::rfc3339(r.at), "from": r.from, "to": r.to, "event": r.event })))
        .collect();
    let total: i64 = recognised.iter().filter(|((m, _), _)| *m == month).map(|(_, v)| v).sum();
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(serde_json::json!({
        "month": month_label(month), "mrr_minor": total, "invoices": inv, "transitions": transitions })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryBody {
    month: String,
    /// `1200.50` as text, or minor units with `amount_minor`.
    #[serde(default)]
    amount: Option<String>,
    #[serde(default)]
    amount_minor: Option<i64>,
    label: String,
}

pub async fn record(
    _: Admin,
    req: HttpRequest,
    table: web::Path<String>,
    state: web::Data<AppState>,
    body: web::Json<EntryBody>,
) -> Result<HttpResponse, ApiError> {
    let t = match table.as_str() {
        "spend" => Table::Spend,
        "costs" => Table::Costs,
        other => {
            return Err(ApiError::NotFound { what: "economics table", id: other.chars().take(40).collect() })
        }
    };
    let b = body.into_inner();
    let amount = match (b.amount_minor, b.amount.as_deref()) {
        (Some(m), None) => m,
        (None, Some(a)) => parse_amount(a)?,
        _ => return Err(ApiError::InvalidBody("give either amount (\"1200.50\") or amount_minor".into())),
    };
    let ledgers = Ledgers::open(&state.engine.db)?;
    let now = citecast_actors::dates::now_secs();
    let e = actix_web::rt::task::spawn_blocking(move || ledgers.record(t, &b.month, amount, &b.label, now))
        .await
        .map_err(ApiError::internal)??;
    let after = serde_json::to_value(&e).unwrap_or_default();
    audit(&state, &req, &format!("economics.{}", table.as_str()), e.month.clone(), None, &after).await;
    Ok(HttpResponse::Ok().json(e))
}
