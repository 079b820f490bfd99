//! The operator's log-in for the `/admin` pages: the admin token (from
//! `DATA_DIR/server.json`) typed once into a form instead of carried in every URL, where
//! it would end up in browser history, proxies and logs. The session then opens the
//! operator pages for reading; changes still need the token in an `Authorization`
//! header (the CLI), so a cookie alone never changes anything.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use bytes::Bytes;

use crate::web::auth::{is_admin_token, operator_mark};
use crate::web::error::ApiError;
use crate::web::page::{private_html, see_other, Fields, Nav};
use crate::web::session::{self as websession, OPERATOR};
use crate::web::AppState;

#[derive(Template)]
#[template(path = "site/operator_login.html")]
struct OperatorLogin {
    nav: Nav,
    error: Option<String>,
}

pub async fn login_form(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, ApiError> {
    private_html(StatusCode::OK, OperatorLogin { nav: Nav::of(&session, &state.site), error: None }.render())
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let f = Fields::parse(&body);
    let again = |status, error: &str| {
        private_html(
            status,
            OperatorLogin { nav: Nav::of(&session, &state.site), error: Some(error.into()) }.render(),
        )
    };
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return again(StatusCode::FORBIDDEN, refused.message());
    }
    let ip = crate::web::client_ip(req.peer_addr());
    if let Err(wait) = state.form_limits.check(&ip, Some("operator")) {
        let mut resp =
            again(StatusCode::TOO_MANY_REQUESTS, &format!("Too many attempts: wait {wait} seconds."))?;
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&wait.to_string()) {
            resp.headers_mut().insert(actix_web::http::header::RETRY_AFTER, v);
        }
        return Ok(resp);
    }
    if !is_admin_token(&state, f.get("token").trim()) {
        return again(StatusCode::UNAUTHORIZED, "That is not this server's admin token.");
    }
    session.renew();
    let _ = session.insert(OPERATOR, operator_mark(&state));
    Ok(see_other("/admin/dashboard"))
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let f = Fields::parse(&body);
    if websession::check_form(&req, &session, &state.site, f.get("csrf")).is_ok() {
        session.remove(OPERATOR);
        session.renew();
    }
    Ok(see_other("/admin/login"))
}
