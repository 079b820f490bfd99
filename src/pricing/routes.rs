//! `GET /pricing` and `GET /sla`.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::{plan_view, PlanView};
use crate::web::error::ApiError;
use crate::web::page::{private_html, Nav};
use crate::web::{get_or_head, AppState, SiteRoute};

pub fn site_routes() -> Vec<SiteRoute> {
    vec![
        SiteRoute::get("/pricing", || get_or_head().to(pricing)),
        SiteRoute::get("/sla", || get_or_head().to(sla)),
    ]
}

#[derive(Template)]
#[template(path = "site/pricing.html")]
struct PricingPage {
    nav: Nav,
    plans: Vec<PlanView>,
    anonymous_daily: u64,
}

#[derive(Template)]
#[template(path = "site/sla.html")]
struct SlaPage {
    nav: Nav,
}

pub async fn pricing(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, ApiError> {
    let page = PricingPage {
        nav: Nav::of(&session, &state.site),
        plans: state.tiers.tiers.iter().map(plan_view).collect(),
        anonymous_daily: state.tiers.anonymous.daily,
    };
    private_html(StatusCode::OK, page.render())
}

pub async fn sla(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, ApiError> {
    private_html(StatusCode::OK, SlaPage { nav: Nav::of(&session, &state.site) }.render())
}
