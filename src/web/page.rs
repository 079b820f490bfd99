//! What every HTML page shares: the readable error page and the response around a
//! rendered template.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::error::ApiError;

/// A readable error page for people (`templates/error_page.html`).
#[derive(askama::Template)]
#[template(path = "error_page.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub back: &'a str,
    pub back_label: &'a str,
}

/// A rendered page as a response with `status`, cacheable for `max_age` seconds; a
/// template that fails to render is the server's fault.
pub fn html(
    status: StatusCode,
    body: Result<String, askama::Error>,
    max_age: u32,
) -> Result<HttpResponse, ApiError> {
    let body = body.map_err(ApiError::internal)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", format!("public, max-age={max_age}")))
        .body(body))
}
