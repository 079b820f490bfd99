//! The customer's pages: sign-up, address confirmation with the first key (onboarding),
//! log-in and log-out, password reset, and `/account` (keys, usage, recent errors,
//! export). Every form carries a CSRF token and is checked for our origin; every failure
//! is a page in words, and a refused form stores nothing.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use bytes::Bytes;
use citecast_actors::dates;

use super::signin::{self, SigninError, SignupOutcome};
use super::store::Login;
use super::AccountError;
use crate::outbound::mail::{self, Delivery, Mail, MailError};
use crate::web::error::ApiError;
use crate::web::page::{private_html, see_other, Fields, Nav};
use crate::web::session::{self as websession, FormRefusal};
use crate::web::AppState;

/// A paper every bundled corpus has, for the ready-to-paste first call.
pub const EXAMPLE_PAPER: &str = "hep-th/9711200";

#[derive(Template)]
#[template(path = "site/message.html")]
pub struct MessagePage<'a> {
    pub nav: Nav,
    pub title: &'a str,
    pub paragraphs: Vec<String>,
    pub notice: Option<String>,
    pub link_href: &'a str,
    pub link_label: &'a str,
}

/// A page of a few sentences (and a link onward), answered with `status`.
pub fn message(
    status: StatusCode,
    nav: Nav,
    title: &str,
    paragraphs: Vec<String>,
    link: (&str, &str),
) -> Result<HttpResponse, ApiError> {
    let page = MessagePage { nav, title, paragraphs, notice: None, link_href: link.0, link_label: link.1 };
    private_html(status, page.render())
}

/// The server could not do it now (store, mail, a thread pool): 503 with Retry-After,
/// in words; the person's input is not lost because nothing was stored.
pub fn unavailable(nav: Nav, what: &str, cause: impl std::fmt::Display) -> Result<HttpResponse, ApiError> {
    tracing::warn!(error = %cause, what, "page failed on the server's side");
    let mut resp = message(
        StatusCode::SERVICE_UNAVAILABLE,
        nav,
        "Please try again in a moment",
        vec![format!("We could not {what} just now; it is our fault, not yours. Nothing was changed. Please try again in a minute.")],
        ("/", "Home"),
    )?;
    resp.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from_static("30"),
    );
    Ok(resp)
}

fn client_ip(req: &HttpRequest) -> String {
    crate::web::client_ip(req.peer_addr())
}

fn too_many(nav: Nav, wait: u64) -> Result<HttpResponse, ApiError> {
    let mut resp = message(
        StatusCode::TOO_MANY_REQUESTS,
        nav,
        "Too many attempts",
        vec![format!("Too many attempts from here or on this account. Wait {wait} seconds and try again.")],
        ("/", "Home"),
    )?;
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&wait.to_string()) {
        resp.headers_mut().insert(actix_web::http::header::RETRY_AFTER, v);
    }
    Ok(resp)
}

/// Runs store or hashing work on the blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, SigninError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, SigninError> + Send + 'static,
{
    crate::engine::blocking(f, || SigninError::Store(AccountError::Unavailable)).await
}

/// What the page says about where mail went.
fn outbox_note(state: &AppState) -> Option<String> {
    state.mailer.is_outbox().then(|| {
        "This server has no mail server configured (--smtp-url), so the message was written to its outbox directory instead of being sent.".to_string()
    })
}

fn mail_failure(nav: Nav, to: &str, e: MailError) -> Result<HttpResponse, ApiError> {
    match e {
        MailError::Rejected(_) | MailError::Invalid(_) => message(
            StatusCode::UNPROCESSABLE_ENTITY,
            nav,
            "That address does not accept mail",
            vec![format!("The mail server refused to deliver to {to}. Check the address and try again.")],
            ("/signup", "Back"),
        ),
        other => unavailable(nav, "send you an e-mail", other),
    }
}

// ---------------------------------------------------------------- sign-up

#[derive(Template)]
#[template(path = "site/signup.html")]
struct SignupPage {
    nav: Nav,
    name: String,
    email: String,
    plan: String,
    plan_label: Option<String>,
    free_summary: String,
    error: Option<String>,
}

/// A plan named on the pricing page (`pro`, `pro:annual`), if it is one people can buy.
/// The label names the price the visitor saw on `/pricing` (`shown`: their variant of a
/// pricing experiment), which is also what they will be charged.
fn chosen_plan(
    state: &AppState,
    plan: &str,
    shown: Option<&crate::pricing::experiment::PriceTable>,
) -> Option<(String, String)> {
    let (tier, interval) = plan.split_once(':').unwrap_or((plan, "monthly"));
    let t = state.tiers.tiers.iter().find(|t| t.id == tier)?;
    let table = match interval {
        "monthly" => t.price_monthly_usd.map(|p| p as i64 * 100),
        "annual" => t.price_annual_usd.map(|p| p as i64 * 100),
        _ => None,
    };
    let priced = match (shown.and_then(|s| s.get(tier)), interval) {
        (Some(v), "monthly") if table.is_some() => Some(v.monthly_minor),
        (Some(v), "annual") if table.is_some() => Some(v.annual_minor),
        _ => table,
    };
    match priced {
        Some(p) if p > 0 => Some((
            format!("{tier}:{interval}"),
            format!("{} ({interval}, {})", t.name, crate::billing::format_money(p, "usd")),
        )),
        _ => None,
    }
}

fn signup_page(
    state: &AppState,
    session: &Session,
    shown: Option<&crate::pricing::experiment::PriceTable>,
    status: StatusCode,
    fields: (&str, &str, &str),
    error: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let free = state.tiers.default_tier();
    let chosen = chosen_plan(state, fields.2, shown);
    let page = SignupPage {
        nav: Nav::of(session, &state.site),
        name: fields.0.chars().take(200).collect(),
        email: fields.1.chars().take(254).collect(),
        plan: chosen.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
        plan_label: chosen.map(|c| c.1),
        free_summary: format!("{} requests a day, forecasts included", free.daily),
        error,
    };
    private_html(status, page.render())
}

#[derive(serde::Deserialize)]
pub struct PlanQuery {
    #[serde(default)]
    plan: String,
    #[serde(default)]
    interval: String,
}

pub async fn signup_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    query: Option<web::Query<PlanQuery>>,
) -> Result<HttpResponse, ApiError> {
    let plan =
        query.map(
            |q| if q.interval.is_empty() { q.plan.clone() } else { format!("{}:{}", q.plan, q.interval) },
        );
    let shown = crate::pricing::routes::visitor_prices(&req, &state).await;
    signup_page(
        &state,
        &session,
        shown.as_ref(),
        StatusCode::OK,
        ("", "", plan.as_deref().unwrap_or("")),
        None,
    )
}

pub async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let shown = crate::pricing::routes::visitor_prices(&req, &state).await;
    let f = Fields::parse(&body);
    let values = (f.get("name"), f.get("email"), f.get("plan"));
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return signup_page(
            &state,
            &session,
            None,
            StatusCode::FORBIDDEN,
            values,
            Some(refused.message().into()),
        );
    }
    if let Err(wait) = state.form_limits.check(&client_ip(&req), Some(values.1)) {
        return too_many(Nav::of(&session, &state.site), wait);
    }
    let plan = chosen_plan(&state, values.2, None).map(|c| c.0);
    let (logins, name, email, password) =
        (state.logins.clone(), values.0.to_string(), values.1.to_string(), f.get("password").to_string());
    let now = dates::now_secs();
    let outcome =
        blocking(move || signin::signup(&logins, &name, &email, &password, plan.as_deref(), now)).await;
    let base = &state.site.base_url;
    let mail = match outcome {
        Ok(SignupOutcome::Confirm { email, token }) => Mail {
            to: email,
            subject: "Confirm your citecast account".into(),
            text: format!(
                "Hello,\n\nsomeone (we hope you) signed up for citecast with this address.\n\nOpen this link to confirm it and get your first API key (it works once, for 48 hours):\n\n{base}/confirm?token={token}\n\nIf it was not you, ignore this message: no account is made without confirmation.\n"
            ),
            html: None,
            headers: Vec::new(),
        },
        Ok(SignupOutcome::AlreadyRegistered { email }) => Mail {
            to: email,
            subject: "You already have a citecast account".into(),
            text: format!(
                "Hello,\n\nsomeone (we hope you) tried to sign up for citecast with this address, which already has an account.\n\nLog in: {base}/login\nForgot the password? {base}/password/forgot\n\nIf it was not you, ignore this message.\n"
            ),
            html: None,
            headers: Vec::new(),
        },
        Err(SigninError::Field(e)) => {
            return signup_page(&state, &session, shown.as_ref(), StatusCode::UNPROCESSABLE_ENTITY, values, Some(e.message))
        }
        Err(e) => return unavailable(Nav::of(&session, &state.site), "start your sign-up", e),
    };
    let to = mail.to.clone();
    if let Err(e) = mail::send_blocking(state.mailer.clone(), mail).await {
        return mail_failure(Nav::of(&session, &state.site), &to, e);
    }
    let page = MessagePage {
        nav: Nav::of(&session, &state.site),
        title: "Check your inbox",
        paragraphs: vec![format!(
            "We sent a message to {to}. Open the link in it to confirm your address and get your first API key. The link works for 48 hours."
        )],
        notice: outbox_note(&state),
        link_href: "/",
        link_label: "Home",
    };
    private_html(StatusCode::OK, page.render())
}

// ---------------------------------------------------------------- confirmation

#[derive(Template)]
#[template(path = "site/confirm.html")]
struct ConfirmPage {
    nav: Nav,
    token: String,
}

#[derive(Template)]
#[template(path = "site/welcome.html")]
struct WelcomePage {
    nav: Nav,
    name: String,
    plan_note: String,
    secret: String,
    curl: String,
}

#[derive(serde::Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn link_gone(nav: Nav, what: &str, onward: (&str, &str)) -> Result<HttpResponse, ApiError> {
    message(
        StatusCode::GONE,
        nav,
        "This link no longer works",
        vec![format!(
            "The {what} link was already used, has expired, or was copied incompletely. Links work once and for a limited time."
        )],
        onward,
    )
}

/// `GET /confirm?token=`: a page with one button. Opening the link changes nothing, so
/// mail scanners that follow links cannot confirm for the person.
pub async fn confirm_form(
    state: web::Data<AppState>,
    session: Session,
    query: Option<web::Query<TokenQuery>>,
) -> Result<HttpResponse, ApiError> {
    let token = query.map(|q| q.token.clone()).unwrap_or_default();
    let (logins, t) = (state.logins.clone(), token.clone());
    let now = dates::now_secs();
    let valid = blocking(move || Ok(logins.peek_token(&t, now)?)).await;
    let nav = Nav::of(&session, &state.site);
    match valid {
        Ok(Some(super::store::TokenGrant::Confirm { .. })) => {
            private_html(StatusCode::OK, ConfirmPage { nav, token }.render())
        }
        Ok(_) => link_gone(nav, "confirmation", ("/signup", "Sign up again")),
        Err(e) => unavailable(nav, "check the link", e),
    }
}

/// `POST /confirm`: makes the account, signs the person in and shows the first key once.
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let f = Fields::parse(&body);
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return refused_form(&state, &session, refused);
    }
    let (logins, accounts, token) =
        (state.logins.clone(), state.accounts.clone(), f.get("token").to_string());
    let default_tier = state.tiers.default_tier().id.clone();
    let now = dates::now_secs();
    let done =
        blocking(move || signin::confirm(&logins, accounts.as_ref(), &default_tier, &token, now)).await;
    let confirmed = match done {
        Ok(c) => c,
        Err(SigninError::BadToken) => {
            return link_gone(Nav::of(&session, &state.site), "confirmation", ("/login", "Log in"))
        }
        Err(SigninError::Store(AccountError::EmailTaken(_))) => {
            return message(
                StatusCode::CONFLICT,
                Nav::of(&session, &state.site),
                "This address already has an account",
                vec!["Another sign-up with this address was confirmed first. Log in, or reset the password if you need to.".into()],
                ("/login", "Log in"),
            )
        }
        Err(e) => return unavailable(Nav::of(&session, &state.site), "create your account", e),
    };
    crate::referrals::page::attribute(&req, &state, &confirmed.customer).await;
    websession::sign_in(&session, &confirmed.customer.id);
    crate::pricing::routes::record_signup(&state, &req, &confirmed.customer.id).await;
    let plan_note = match crate::billing::page::start_plan(
        &state,
        &confirmed.customer.id,
        confirmed.plan.as_deref(),
    )
    .await
    {
        Ok(note) => note,
        Err(e) => {
            tracing::warn!(error = %e, customer = %confirmed.customer.id, "cannot start the chosen plan");
            "Your chosen plan could not be started just now; you are on the free plan, and can choose it again on the billing page.".into()
        }
    };
    let page = WelcomePage {
        nav: Nav::of(&session, &state.site),
        name: confirmed.customer.name.clone(),
        plan_note,
        curl: format!(
            "curl -H 'Authorization: Bearer {}' {}/v1/papers/{EXAMPLE_PAPER}/forecast",
            confirmed.key.secret, state.site.base_url
        ),
        secret: confirmed.key.secret,
    };
    private_html(StatusCode::OK, page.render())
}

/// A form refused before its fields were read: a page saying why, with a way back.
pub fn refused_form(
    state: &AppState,
    session: &Session,
    refused: FormRefusal,
) -> Result<HttpResponse, ApiError> {
    message(
        StatusCode::FORBIDDEN,
        Nav::of(session, &state.site),
        "The form was not accepted",
        vec![refused.message().into()],
        ("/", "Home"),
    )
}

// ---------------------------------------------------------------- log in and out

#[derive(Template)]
#[template(path = "site/login.html")]
struct LoginPage {
    nav: Nav,
    email: String,
    error: Option<String>,
}

pub async fn login_form(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, ApiError> {
    if websession::signed_in(&session).is_some() {
        return Ok(see_other("/account"));
    }
    private_html(
        StatusCode::OK,
        LoginPage { nav: Nav::of(&session, &state.site), email: String::new(), error: None }.render(),
    )
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let f = Fields::parse(&body);
    let email: String = f.get("email").chars().take(254).collect();
    let again = |status, error: String| {
        private_html(
            status,
            LoginPage { nav: Nav::of(&session, &state.site), email: email.clone(), error: Some(error) }
                .render(),
        )
    };
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return again(StatusCode::FORBIDDEN, refused.message().into());
    }
    if let Err(wait) = state.form_limits.check(&client_ip(&req), Some(&email)) {
        return too_many(Nav::of(&session, &state.site), wait);
    }
    let (logins, e, password) = (state.logins.clone(), email.clone(), f.get("password").to_string());
    match blocking(move || signin::sign_in(&logins, &e, &password)).await {
        Ok(customer_id) => {
            websession::sign_in(&session, &customer_id);
            Ok(see_other("/account"))
        }
        Err(SigninError::WrongCredentials) => {
            again(StatusCode::UNAUTHORIZED, "The e-mail address or the password is wrong.".into())
        }
        Err(SigninError::Field(e)) => again(StatusCode::UNPROCESSABLE_ENTITY, e.message),
        Err(e) => unavailable(Nav::of(&session, &state.site), "log you in", e),
    }
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let f = Fields::parse(&body);
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return refused_form(&state, &session, refused);
    }
    session.purge();
    Ok(see_other("/"))
}

// ---------------------------------------------------------------- password reset

#[derive(Template)]
#[template(path = "site/forgot.html")]
struct ForgotPage {
    nav: Nav,
    email: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "site/reset.html")]
struct ResetPage {
    nav: Nav,
    token: String,
    error: Option<String>,
}

pub async fn forgot_form(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, ApiError> {
    private_html(
        StatusCode::OK,
        ForgotPage { nav: Nav::of(&session, &state.site), email: String::new(), error: None }.render(),
    )
}

pub async fn forgot(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let f = Fields::parse(&body);
    let email: String = f.get("email").chars().take(254).collect();
    let again = |status, error: String| {
        private_html(
            status,
            ForgotPage { nav: Nav::of(&session, &state.site), email: email.clone(), error: Some(error) }
                .render(),
        )
    };
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return again(StatusCode::FORBIDDEN, refused.message().into());
    }
    if let Err(wait) = state.form_limits.check(&client_ip(&req), Some(&email)) {
        return too_many(Nav::of(&session, &state.site), wait);
    }
    let (logins, e) = (state.logins.clone(), email.clone());
    let now = dates::now_secs();
    let mut notice = None;
    match blocking(move || signin::forgot(&logins, &e, now)).await {
        Ok(Some((to, token))) => {
            let base = &state.site.base_url;
            let mail = Mail {
                to: to.clone(),
                subject: "Reset your citecast password".into(),
                text: format!(
                    "Hello,\n\nsomeone (we hope you) asked to reset the password of the citecast account with this address.\n\nChoose a new password here (the link works once, for one hour):\n\n{base}/password/reset?token={token}\n\nIf it was not you, ignore this message: your password stays as it is.\n"
                ),
                html: None,
                headers: Vec::new(),
            };
            match mail::send_blocking(state.mailer.clone(), mail).await {
                Ok(Delivery::Outbox { .. }) => notice = outbox_note(&state),
                Ok(Delivery::Sent { .. }) => {}
                Err(e) => return mail_failure(Nav::of(&session, &state.site), &to, e),
            }
        }
        Ok(None) => notice = outbox_note(&state),
        Err(SigninError::Field(e)) => return again(StatusCode::UNPROCESSABLE_ENTITY, e.message),
        Err(e) => return unavailable(Nav::of(&session, &state.site), "start the reset", e),
    }
    // The same answer whether or not the address has an account.
    let page = MessagePage {
        nav: Nav::of(&session, &state.site),
        title: "Check your inbox",
        paragraphs: vec![format!(
            "If an account uses {email}, we sent it a link to choose a new password. The link works once, for an hour."
        )],
        notice,
        link_href: "/login",
        link_label: "Log in",
    };
    private_html(StatusCode::OK, page.render())
}

pub async fn reset_form(
    state: web::Data<AppState>,
    session: Session,
    query: Option<web::Query<TokenQuery>>,
) -> Result<HttpResponse, ApiError> {
    let token = query.map(|q| q.token.clone()).unwrap_or_default();
    let (logins, t) = (state.logins.clone(), token.clone());
    let now = dates::now_secs();
    let nav = Nav::of(&session, &state.site);
    match blocking(move || signin::reset_token_valid(&logins, &t, now)).await {
        Ok(true) => private_html(StatusCode::OK, ResetPage { nav, token, error: None }.render()),
        Ok(false) => link_gone(nav, "password reset", ("/password/forgot", "Ask for a new link")),
        Err(e) => unavailable(nav, "check the link", e),
    }
}

pub async fn reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let f = Fields::parse(&body);
    let token: String = f.get("token").chars().take(128).collect();
    let again = |status, error: String| {
        private_html(
            status,
            ResetPage { nav: Nav::of(&session, &state.site), token: token.clone(), error: Some(error) }
                .render(),
        )
    };
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return again(StatusCode::FORBIDDEN, refused.message().into());
    }
    if let Err(wait) = state.form_limits.check(&client_ip(&req), None) {
        return too_many(Nav::of(&session, &state.site), wait);
    }
    let (logins, accounts, t, password) =
        (state.logins.clone(), state.accounts.clone(), token.clone(), f.get("password").to_string());
    let sessions = state.sessions.clone();
    let now = dates::now_secs();
    let done = blocking(move || {
        let id = signin::reset(&logins, accounts.as_ref(), &t, &password, now)?;
        // Whoever held the old password is signed out everywhere.
        sessions.end_sessions_of(&id).map_err(|e| SigninError::Store(e.into()))?;
        Ok(id)
    })
    .await;
    match done {
        Ok(_) => {
            session.purge();
            message(
                StatusCode::OK,
                Nav { signed_in: false, csrf: String::new() },
                "Your password is changed",
                vec!["Log in with the new password. Every other session of your account was signed out."
                    .into()],
                ("/login", "Log in"),
            )
        }
        Err(SigninError::Field(e)) => again(StatusCode::UNPROCESSABLE_ENTITY, e.message),
        Err(SigninError::BadToken) => link_gone(
            Nav::of(&session, &state.site),
            "password reset",
            ("/password/forgot", "Ask for a new link"),
        ),
        Err(e) => unavailable(Nav::of(&session, &state.site), "change your password", e),
    }
}

// ---------------------------------------------------------------- the account page

/// The signed-in customer, when the session is still good: its login exists and the
/// password has not changed since it signed in.
pub async fn current_login(state: &AppState, session: &Session) -> Result<Option<Login>, SigninError> {
    let Some((id, at)) = websession::signed_in(session) else { return Ok(None) };
    let logins = state.logins.clone();
    let login = blocking(move || Ok(logins.login(&id)?)).await?;
    match login {
        Some(l) if l.password_changed <= at => Ok(Some(l)),
        _ => {
            session.purge();
            Ok(None)
        }
    }
}

struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    created: String,
    state: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "site/account.html")]
struct AccountPage {
    nav: Nav,
    name: String,
    email: String,
    tier_name: String,
    used: u64,
    daily: u64,
    remaining: u64,
    per_minute: u32,
    max_batch: usize,
    keys: Vec<KeyRow>,
    new_secret: Option<(String, String)>,
    errors: Vec<(String, String, u16)>,
    error: Option<String>,
    /// Upgrade offers from the customer's own usage (`growth`), each with a downgrade.
    growth: Vec<crate::growth::Offer>,
}

fn when(secs: i64) -> String {
    let day = dates::format(dates::day_of_secs(secs));
    let s = secs.rem_euclid(86_400);
    format!("{day} {:02}:{:02}", s / 3600, (s % 3600) / 60)
}

async fn account_page(
    state: &AppState,
    session: &Session,
    login: &Login,
    status: StatusCode,
    new_secret: Option<(String, String)>,
    error: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let nav = Nav::of(session, &state.site);
    let id = login.customer_id.clone();
    let accounts = state.accounts.clone();
    let loaded = blocking(move || {
        let customer = accounts.customer(&id)?;
        let keys = accounts.keys_of(&id)?;
        Ok((customer, keys))
    })
    .await;
    let (customer, keys) = match loaded {
        Ok((Some(c), k)) => (c, k),
        Ok((None, _)) => {
            session.purge();
            return Ok(see_other("/login"));
        }
        Err(e) => return unavailable(nav, "load your account", e),
    };
    let tier = state.tiers.get(&customer.tier).unwrap_or_else(|| state.tiers.default_tier()).clone();
    let used = match state.limiter.send(super::limits::UsedToday(customer.id.clone())).await {
        Ok(Ok(n)) => n,
        _ => 0,
    };
    let errors = state
        .recent_errors
        .get(&customer.id)
        .unwrap_or_default()
        .into_iter()
        .rev()
        .map(|e| (when(e.at), format!("{} {}", e.method, e.path), e.status))
        .collect();
    let growth = crate::growth::routes::account_offers(state, &customer.id, &tier, used).await;
    let keys = keys
        .into_iter()
        .map(|k| KeyRow {
            state: match k.revoked {
                Some(at) => format!("revoked {}", when(at)),
                None => "active".into(),
            },
            active: k.revoked.is_none(),
            created: when(k.created),
            id: k.id,
            name: k.name,
            prefix: k.prefix,
        })
        .collect();
    let page = AccountPage {
        nav,
        name: customer.name,
        email: customer.email,
        tier_name: tier.name.clone(),
        used,
        daily: tier.daily,
        remaining: tier.daily.saturating_sub(used),
        per_minute: tier.per_minute,
        max_batch: tier.max_batch,
        keys,
        new_secret,
        errors,
        error,
        growth,
    };
    private_html(status, page.render())
}

/// Signed in, or a redirect to the log-in page (or a 503 page when the store fails).
macro_rules! signed_in_or_redirect {
    ($state:expr, $session:expr) => {
        match $crate::accounts::page::current_login(&$state, &$session).await {
            Ok(Some(login)) => login,
            Ok(None) => return Ok($crate::web::page::see_other("/login")),
            Err(e) => {
                return $crate::accounts::page::unavailable(
                    $crate::web::page::Nav::of(&$session, &$state.site),
                    "check your session",
                    e,
                )
            }
        }
    };
}
pub(crate) use signed_in_or_redirect;

pub async fn account(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    account_page(&state, &session, &login, StatusCode::OK, None, None).await
}

pub async fn create_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    let f = Fields::parse(&body);
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return account_page(
            &state,
            &session,
            &login,
            StatusCode::FORBIDDEN,
            None,
            Some(refused.message().into()),
        )
        .await;
    }
    let name = f.get("name").trim().to_string();
    // A label for the person's own list: letters, digits, spaces and - _ . ( ) keep it
    // readable everywhere it is shown (logs, the CLI, mail).
    let allowed = |c: char| c.is_alphanumeric() || " -_.()".contains(c);
    if name.is_empty() || name.chars().count() > 100 || !name.chars().all(allowed) {
        let e = "Give the key a name of 1 to 100 letters, digits, spaces or - _ . ( ).".to_string();
        return account_page(&state, &session, &login, StatusCode::UNPROCESSABLE_ENTITY, None, Some(e)).await;
    }
    let (accounts, id) = (state.accounts.clone(), login.customer_id.clone());
    let tiers = state.tiers.clone();
    let issued = blocking(move || {
        let tier = accounts.customer(&id)?.map(|c| c.tier).unwrap_or_default();
        let max = tiers.get(&tier).map(|t| t.max_keys);
        Ok(accounts.issue_key(&id, &name, max)?)
    })
    .await;
    match issued {
        Ok(k) => {
            let shown = (k.key.name.clone(), k.secret);
            account_page(&state, &session, &login, StatusCode::OK, Some(shown), None).await
        }
        Err(SigninError::Store(e @ AccountError::TooManyKeys { .. })) => {
            let msg = format!("{}.", capitalise(&e.to_string()));
            account_page(&state, &session, &login, StatusCode::CONFLICT, None, Some(msg)).await
        }
        Err(e) => unavailable(Nav::of(&session, &state.site), "create the key", e),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// `POST /account/keys/{id}/{rotate|revoke}` for one of the customer's own keys.
pub async fn key_action(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    let f = Fields::parse(&body);
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return account_page(
            &state,
            &session,
            &login,
            StatusCode::FORBIDDEN,
            None,
            Some(refused.message().into()),
        )
        .await;
    }
    let (key_id, action) = path.into_inner();
    if action != "rotate" && action != "revoke" {
        return message(
            StatusCode::NOT_FOUND,
            Nav::of(&session, &state.site),
            "No such page",
            vec!["Keys can be rotated or revoked.".into()],
            ("/account", "Your account"),
        );
    }
    let (accounts, owner) = (state.accounts.clone(), login.customer_id.clone());
    let done = blocking(move || {
        // Another customer's key id is answered like an unknown one.
        match accounts.key(&key_id)? {
            Some(k) if k.customer_id == owner => {}
            _ => return Err(SigninError::Store(AccountError::NoKey(key_id))),
        }
        if action == "rotate" {
            let k = accounts.rotate(&key_id)?;
            Ok(Some((k.key.name, k.secret)))
        } else {
            accounts.revoke(&key_id)?;
            Ok(None)
        }
    })
    .await;
    match done {
        Ok(Some(shown)) => account_page(&state, &session, &login, StatusCode::OK, Some(shown), None).await,
        Ok(None) => Ok(see_other("/account")),
        Err(SigninError::Store(e @ (AccountError::NoKey(_) | AccountError::AlreadyRevoked(_)))) => {
            let msg = format!("{}.", capitalise(&e.to_string()));
            account_page(&state, &session, &login, StatusCode::NOT_FOUND, None, Some(msg)).await
        }
        Err(e) => unavailable(Nav::of(&session, &state.site), "change the key", e),
    }
}

/// `GET /account/export`: everything held about the signed-in customer, as JSON (keys
/// without secrets, the login without its password hash).
pub async fn export(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    let (accounts, billing, id) = (state.accounts.clone(), state.billing.clone(), login.customer_id.clone());
    let data = blocking(move || {
        let customer = accounts.customer(&id)?;
        let keys = accounts.keys_of(&id)?;
        let billing = crate::billing::page::export(&billing, &id);
        Ok(serde_json::json!({
            "customer": customer,
            "api_keys": keys,
            "login": {
                "signed_up": login.signed_up,
                "confirmed": login.confirmed,
                "password_changed": login.password_changed,
                "first_api_call": login.first_call,
            },
            "billing": billing,
        }))
    })
    .await;
    match data {
        Ok(v) => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .insert_header(("Content-Disposition", "attachment; filename=\"citecast-account.json\""))
            .json(v)),
        Err(e) => unavailable(Nav::of(&session, &state.site), "export your data", e),
    }
}
