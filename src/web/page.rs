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

/// A personal page (a form with its token, an account): never stored by any cache.
pub fn private_html(
    status: StatusCode,
    body: Result<String, askama::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = body.map_err(ApiError::internal)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}

/// 303 to `location` (after a form, so a reload does not send it again).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// The site's header: who is signed in, and the token of its log-out form.
pub struct Nav {
    pub signed_in: bool,
    pub csrf: String,
}

impl Nav {
    pub fn of(session: &actix_session::Session, site: &super::Site) -> Nav {
        Nav {
            signed_in: super::session::signed_in(session).is_some(),
            csrf: super::session::csrf_token(session, site),
        }
    }
}

/// The fields of a posted form (`application/x-www-form-urlencoded`). Anything else,
/// or bytes that are not such a form, gives no fields, so every required field is
/// reported missing in words rather than the request failing as a whole.
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Fields {
        Fields(serde_urlencoded::from_bytes(body).unwrap_or_default())
    }

    /// The field's (last) value, or "" when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    /// Every value of a repeated field (checkboxes), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}
