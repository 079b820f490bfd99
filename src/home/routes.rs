//! `GET /`.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use citecast_actors::actors::{ForecastPapers, GetPaper};
use citecast_actors::forecast::service::Route;
use citecast_actors::forecast::task::Mode;

use crate::accounts::page::EXAMPLE_PAPER;
use crate::web::error::{ask, ApiError};
use crate::web::page::{private_html, Nav};
use crate::web::{get_or_head, AppState, SiteRoute};

pub fn site_routes() -> Vec<SiteRoute> {
    vec![SiteRoute::get("/", || get_or_head().to(home))]
}

/// The live example: a paper from the data and what the model says of it now.
struct Example {
    href: String,
    title: String,
    chance: String,
    label: String,
    as_of: String,
    model: String,
}

#[derive(Template)]
#[template(path = "site/home.html")]
struct HomePage {
    nav: Nav,
    papers: u64,
    example: Option<Example>,
    example_note: String,
    free_daily: u64,
}

async fn example(state: &AppState) -> Result<Example, String> {
    state.require_ready().map_err(|_| "The data is still loading; reload in a minute.".to_string())?;
    state
        .require_warm_models()
        .map_err(|_| "The models are warming up after a start; reload in a minute.".to_string())?;
    let paper = state
        .engine
        .store
        .send(GetPaper { id: EXAMPLE_PAPER.into() })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "This server's data has no example paper; search it on the API.".to_string())?;
    let msg = ForecastPapers {
        ids: vec![EXAMPLE_PAPER.into()],
        mode: Mode::AtPublication,
        route: Route::default(),
    };
    let f = ask(&state.engine.model, msg, "model engine")
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?
        .pop()
        .ok_or("no forecast")?
        .map_err(|e| e.to_string())?
        .for_people();
    Ok(Example {
        href: crate::papers::page::href(&paper.paper.id),
        title: crate::newsletter::plain_title(&paper.paper.title),
        chance: format!("{:.1} %", f.probability * 100.0),
        label: if f.label == "high" {
            "likely to be highly cited".into()
        } else {
            "not marked likely".into()
        },
        as_of: f.as_of,
        model: f.model_version,
    })
}

pub async fn home(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, ApiError> {
    let papers = match state.engine.store.send(citecast_actors::actors::GetStats).await {
        Ok(Ok(s)) => s.papers,
        _ => 0,
    };
    let (example, example_note) = match example(&state).await {
        Ok(e) => (Some(e), String::new()),
        Err(note) => (None, note),
    };
    let page = HomePage {
        nav: Nav::of(&session, &state.site),
        papers,
        example,
        example_note,
        free_daily: state.tiers.default_tier().daily,
    };
    private_html(StatusCode::OK, page.render())
}
