//! The newsletter's public archive: `/newsletter` lists the issues, `/newsletter/{n}`
//! shows one (`?format=json` for either). Pages answer errors with a readable page.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use citecast_actors::actors::{GetNewsletter, ListNewsletters};
use citecast_actors::newsletter::Issue;

use super::error::ApiError;
use super::AppState;

#[derive(Template)]
#[template(path = "newsletter_index.html")]
struct IndexPage {
    issues: Vec<Issue>,
}

#[derive(Template)]
#[template(path = "newsletter_issue.html")]
struct IssuePage {
    issue: Issue,
}

#[derive(Template)]
#[template(path = "error_page.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: String,
    back: &'a str,
    back_label: &'a str,
}

fn html(status: StatusCode, body: Result<String, askama::Error>) -> Result<HttpResponse, ApiError> {
    let body = body.map_err(ApiError::internal)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(body))
}

fn wants_json(req: &HttpRequest) -> bool {
    req.query_string().split('&').any(|kv| kv == "format=json")
}

pub async fn index(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let issues = state.engine.store.send(ListNewsletters).await??;
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
        let page =
            ErrorPage { title: "Issue not found", message, back: "/newsletter", back_label: "All issues" };
        html(StatusCode::NOT_FOUND, page.render())
    };
    let Ok(n) = raw.parse::<u32>() else {
        if wants_json(&req) {
            return Err(ApiError::param("number", format!("'{raw}' is not an issue number")));
        }
        return not_found(format!("'{raw}' is not an issue number: issues are numbered 1, 2, 3, ..."));
    };
    match state.engine.store.send(GetNewsletter(n)).await?? {
        Some(issue) if wants_json(&req) => Ok(HttpResponse::Ok().json(issue)),
        Some(issue) => html(StatusCode::OK, IssuePage { issue }.render()),
        None if wants_json(&req) => Err(ApiError::NotFound { what: "issue", id: raw }),
        None => not_found(format!("There is no issue {n} yet.")),
    }
}
