//! The newsletter's public archive: `/newsletter` lists the issues, `/newsletter/{n}`
//! shows one (`?format=json` for either). Pages answer errors with a readable page.

use super::store::call;
use super::Issue;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::web::error::ApiError;
use crate::web::page::{self, ErrorPage};
use crate::web::{get_or_head, AppState, SiteRoute};

#[derive(Template)]
#[template(path = "newsletter_index.html")]
struct IndexPage {
    issues: Vec<Issue>,
}

#[derive(Template)]
#[template(path = "newsletter_issue.html")]
struct IssuePage {
    issue: Issue,
    /// What "high" means for the model that judged the issue: its threshold and how often
    /// papers above it did reach the top 10 % in the test years.
    model_note: String,
}

/// The model's threshold and precision in words, or why they cannot be given.
async fn model_note(state: &AppState, version: &str) -> String {
    let models =
        crate::web::error::ask(&state.engine.model, citecast_actors::actors::ListModels, "model engine")
            .await;
    match models.ok().and_then(|m| m.into_iter().find(|m| m.version == version)) {
        Some(m) if m.test.precision.is_finite() => format!(
            "A pick is marked high when its probability is at least {:.0} %, the model's threshold. \
             On the papers of its test years, {:.0} % of the papers it marked high did reach the top 10 % \
             (and it found {:.0} % of those that did): a high mark is a good bet, not a certainty.",
            m.threshold * 100.0,
            m.test.precision * 100.0,
            m.test.recall * 100.0
        ),
        _ => format!(
            "Model {version} is no longer loaded on this server, so how often its high marks were right \
             cannot be shown here."
        ),
    }
}

fn html(status: StatusCode, body: Result<String, askama::Error>) -> Result<HttpResponse, ApiError> {
    page::html(status, body, 300)
}

fn wants_json(req: &HttpRequest) -> bool {
    req.query_string().split('&').any(|kv| kv == "format=json")
}

pub async fn index(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let issues = call(&state.issues, |s| s.list()).await?;
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(serde_json::json!({ "issues": issues })));
    }
    html(StatusCode::OK, IndexPage { issues }.render())
}

pub async fn issue(
    req: HttpRequest,
    number: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let raw = number.into_inner();
    let not_found = |message: String| {
        let page = ErrorPage {
            title: "Issue not found",
            message: &message,
            back: "/newsletter",
            back_label: "All issues",
        };
        html(StatusCode::NOT_FOUND, page.render())
    };
    let Ok(n) = raw.parse::<u32>() else {
        if wants_json(&req) {
            return Err(ApiError::param("number", format!("'{raw}' is not an issue number")));
        }
        return not_found(format!("'{raw}' is not an issue number: issues are numbered 1, 2, 3, ..."));
    };
    match call(&state.issues, move |s| s.get(n)).await? {
        Some(issue) if wants_json(&req) => Ok(HttpResponse::Ok().json(issue)),
        Some(issue) => {
            let model_note = model_note(&state, &issue.model_version).await;
            html(StatusCode::OK, IssuePage { issue, model_note }.render())
        }
        None if wants_json(&req) => Err(ApiError::NotFound { what: "issue", id: raw }),
        None => not_found(format!("There is no issue {n} yet.")),
    }
}

/// The public archive.
pub fn site_routes() -> Vec<SiteRoute> {
    vec![
        SiteRoute::get("/newsletter", || get_or_head().to(index)),
        SiteRoute::get("/newsletter/{number}", || get_or_head().to(issue)),
    ]
}
