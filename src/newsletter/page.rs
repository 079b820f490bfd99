//! Readers' side of the newsletter: subscribing (a form on `/newsletter`, or JSON), the
//! one-click confirmation (the mailed link opens a page whose button confirms with a
//! POST, so link scanners confirm nothing), preferences reached from every mail (subjects
//! and saved searches, export, deletion), one-click unsubscribe (RFC 8058: the mail's
//! `List-Unsubscribe` URL answers a POST), and the mail provider's bounce and complaint
//! webhook. Subscribing answers the same whether or not the address is known, and no
//! page ever shows an address to anyone but the holder of its signed link.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use bytes::Bytes;
use citecast_actors::dates;

use super::store::{Signup, Subscribers};
use super::subscribers::{
    token, verify, Purpose, Subscriber, SubscriberState, MAX_SEARCHES, MAX_SEARCH_CHARS, TOPICS,
};
use crate::accounts::page::{message, refused_form, unavailable};
use crate::accounts::signin::{clean_email, clean_name, SigninError};
use crate::outbound::mail::{self, Mail};
use crate::web::error::ApiError;
use crate::web::page::{private_html, Fields, Nav};
use crate::web::session as websession;
use crate::web::{get_or_head, AppState, SiteRoute};

pub fn routes() -> Vec<SiteRoute> {
    vec![
        SiteRoute::post("/newsletter/subscribe", || web::post().to(subscribe)),
        SiteRoute::get("/newsletter/confirm", || get_or_head().to(confirm_form)),
        SiteRoute::post("/newsletter/confirm", || web::post().to(confirm)),
        SiteRoute::get("/newsletter/preferences", || get_or_head().to(preferences)),
        SiteRoute::post("/newsletter/preferences", || web::post().to(save_preferences)),
        SiteRoute::get("/newsletter/export", || get_or_head().to(export)),
        SiteRoute::post("/newsletter/delete", || web::post().to(delete)),
        SiteRoute::get("/newsletter/unsubscribe", || get_or_head().to(unsubscribe_form)),
        SiteRoute::post("/newsletter/unsubscribe", || web::post().to(unsubscribe)),
        SiteRoute::post("/webhooks/mail", || web::post().to(mail_webhook)),
        SiteRoute::post("/admin/newsletter/import", || web::post().to(super::admin::import_route)),
        SiteRoute::get("/admin/newsletter", || get_or_head().to(super::admin::status_route)),
    ]
}

fn subscribers(state: &AppState) -> Result<Subscribers, super::NewsletterError> {
    Subscribers::open(&state.engine.db)
}

async fn blocking<T, F>(f: F) -> Result<T, super::NewsletterError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, super::NewsletterError> + Send + 'static,
{
    crate::engine::blocking(f, || super::NewsletterError::Unavailable).await
}

fn clean_topics(given: &[&str]) -> Vec<String> {
    let mut out: Vec<String> =
        given.iter().filter(|t| TOPICS.iter().any(|(id, _, _)| id == *t)).map(|t| t.to_string()).collect();
    out.sort();
    out.dedup();
    out
}

#[derive(serde::Deserialize)]
struct SubscribeJson {
    email: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    topics: Vec<String>,
}

const SAME_ANSWER: &str = "If this address can receive the newsletter, a message is on its way to it: open its link to confirm. Nothing is sent until you do.";

/// `POST /newsletter/subscribe`: a form from `/newsletter` (CSRF token and origin
/// checked) or JSON (`{"email", "name"?, "topics"?}`; no cookie is involved, and a
/// browser cannot send JSON across sites without CORS allowing it).
pub async fn subscribe(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let is_json = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (email, name, topics) = if is_json {
        let b: SubscribeJson = serde_json::from_slice(&body).map_err(|e| {
            ApiError::InvalidBody(format!("expected {{\"email\": ..., \"topics\": [...]}}: {e}"))
        })?;
        (b.email, b.name, b.topics)
    } else {
        let f = Fields::parse(&body);
        if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
            return refused_form(&state, &session, refused);
        }
        let name = Some(f.get("name").to_string()).filter(|n| !n.trim().is_empty());
        (f.get("email").to_string(), name, f.all("topic").into_iter().map(str::to_string).collect())
    };
    let ip = crate::web::client_ip(req.peer_addr());
    if let Err(wait) = state.form_limits.check(&ip, None) {
        if is_json {
            return Err(ApiError::Domain {
                code: "rate_limited",
                status: 429,
                message: format!("too many sign-ups from this address; retry in {wait} s"),
                retry_after: Some(wait as u32),
            });
        }
        let mut resp = message(
            StatusCode::TOO_MANY_REQUESTS,
            Nav::of(&session, &state.site),
            "Too many sign-ups from here",
            vec![format!("Wait {wait} seconds and try again.")],
            ("/newsletter", "The newsletter"),
        )?;
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&wait.to_string()) {
            resp.headers_mut().insert(actix_web::http::header::RETRY_AFTER, v);
        }
        return Ok(resp);
    }
    let checked = clean_email(&email).and_then(|e| Ok((e, name.as_deref().map(clean_name).transpose()?)));
    let (email, name) = match checked {
        Ok(v) => v,
        Err(SigninError::Field(f)) => {
            if is_json {
                return Err(ApiError::InvalidBody(f.message));
            }
            return message(
                StatusCode::UNPROCESSABLE_ENTITY,
                Nav::of(&session, &state.site),
                "Please check the form",
                vec![f.message, "Nothing was stored.".into()],
                ("/newsletter", "Back to the newsletter"),
            );
        }
        Err(e) => return unavailable(Nav::of(&session, &state.site), "sign you up", e),
    };
    let topics = clean_topics(&topics.iter().map(String::as_str).collect::<Vec<_>>());
    let subs = subscribers(&state).map_err(ApiError::from)?;
    let now = dates::now_secs();
    let signup = blocking(move || subs.subscribe(&email, name.as_deref(), &topics, now)).await;
    let signup = match signup {
        Ok(s) => s,
        Err(e) => return unavailable(Nav::of(&session, &state.site), "sign you up", e),
    };
    if let Signup::Confirm(sub) = signup {
        let link = format!(
            "{}/newsletter/confirm?token={}",
            state.site.base_url,
            token(&state.site.secret, Purpose::Confirm, &sub.id)
        );
        let mail = Mail {
            to: sub.email.clone(),
            subject: "Confirm your citecast newsletter subscription".into(),
            text: format!(
                "Hello,\n\nsomeone (we hope you) asked for the citecast weekly newsletter at this address.\n\nConfirm with one click on the page this link opens:\n\n{link}\n\nIf it was not you, ignore this message: nothing will be sent.\n"
            ),
            html: None,
            headers: Vec::new(),
        };
        // A failure to mail is logged, not shown: the answer must not tell whether the
        // address was new. The reader can sign up again after ten minutes.
        if let Err(e) = mail::send_blocking(state.mailer.clone(), mail).await {
            tracing::warn!(subscriber = %sub.id, error = %e, "confirmation mail not sent");
        }
    }
    if is_json {
        return Ok(HttpResponse::Accepted()
            .json(serde_json::json!({ "status": "check_your_inbox", "message": SAME_ANSWER })));
    }
    let mut paragraphs = vec![SAME_ANSWER.to_string()];
    if state.mailer.is_outbox() {
        paragraphs.push("This server has no mail server configured (--smtp-url): its mail is written to the outbox directory.".into());
    }
    message(
        StatusCode::OK,
        Nav::of(&session, &state.site),
        "Check your inbox",
        paragraphs,
        ("/newsletter", "The newsletter"),
    )
}

#[derive(serde::Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Template)]
#[template(path = "site/newsletter_confirm.html")]
struct ConfirmPage {
    nav: Nav,
    token: String,
    action: &'static str,
    title: &'static str,
    text: &'static str,
    button: &'static str,
}

fn bad_link(nav: Nav) -> Result<HttpResponse, ApiError> {
    message(
        StatusCode::NOT_FOUND,
        nav,
        "This link does not work",
        vec!["The link is incomplete or was not made by this server. Copy the whole link from the mail, or subscribe again.".into()],
        ("/newsletter", "The newsletter"),
    )
}

/// The page a mailed link opens: one button that POSTs the token, so opening the link
/// (as mail scanners do) changes nothing. `texts`: title, sentence, button.
fn one_button(
    state: &AppState,
    session: &Session,
    token: String,
    purpose: Purpose,
    action: &'static str,
    (title, text, button): (&'static str, &'static str, &'static str),
) -> Result<HttpResponse, ApiError> {
    let nav = Nav::of(session, &state.site);
    if verify(&state.site.secret, purpose, &token).is_none() {
        return bad_link(nav);
    }
    private_html(StatusCode::OK, ConfirmPage { nav, token, action, title, text, button }.render())
}

pub async fn confirm_form(
    state: web::Data<AppState>,
    session: Session,
    q: Option<web::Query<TokenQuery>>,
) -> Result<HttpResponse, ApiError> {
    let token = q.map(|q| q.token.clone()).unwrap_or_default();
    let texts = (
        "Confirm your subscription",
        "One click and the weekly newsletter starts coming.",
        "Confirm my subscription",
    );
    one_button(&state, &session, token, Purpose::Confirm, "/newsletter/confirm", texts)
}

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
    let Some(id) = verify(&state.site.secret, Purpose::Confirm, f.get("token")) else {
        return bad_link(Nav::of(&session, &state.site));
    };
    let subs = subscribers(&state).map_err(ApiError::from)?;
    let now = dates::now_secs();
    let done = blocking(move || {
        subs.update(&id, now, |s| {
            if s.state == SubscriberState::Unconfirmed {
                s.state = SubscriberState::Confirmed;
                s.confirmed = Some(now);
            }
        })
    })
    .await;
    let nav = Nav::of(&session, &state.site);
    match done {
        Ok(Some(s)) if s.state == SubscriberState::Confirmed => {
            let manage = format!(
                "/newsletter/preferences?token={}",
                token(&state.site.secret, Purpose::Manage, &s.id)
            );
            let page = crate::accounts::page::MessagePage {
                nav,
                title: "You are subscribed",
                paragraphs: vec!["The next weekly issue will come to your inbox. Every issue has a link to change your subjects or to unsubscribe in one click.".into()],
                notice: None,
                link_href: &manage,
                link_label: "Choose your subjects",
            };
            private_html(StatusCode::OK, page.render())
        }
        Ok(Some(_)) => message(
            StatusCode::CONFLICT,
            nav,
            "This subscription cannot be confirmed",
            vec!["It was unsubscribed or its address refuses mail. Subscribe again on the newsletter page."
                .into()],
            ("/newsletter", "The newsletter"),
        ),
        Ok(None) => bad_link(nav),
        Err(e) => unavailable(nav, "confirm your subscription", e),
    }
}

#[derive(Template)]
#[template(path = "site/newsletter_preferences.html")]
struct PreferencesPage {
    nav: Nav,
    token: String,
    unsubscribe_token: String,
    email: String,
    state: &'static str,
    topics: Vec<(String, String, bool)>,
    searches: String,
    error: Option<String>,
    saved: bool,
}

fn preferences_page(
    state: &AppState,
    session: &Session,
    token: String,
    s: &Subscriber,
    status: StatusCode,
    error: Option<String>,
    saved: bool,
) -> Result<HttpResponse, ApiError> {
    let page = PreferencesPage {
        nav: Nav::of(session, &state.site),
        token,
        unsubscribe_token: super::subscribers::token(&state.site.secret, Purpose::Unsubscribe, &s.id),
        email: s.email.clone(),
        state: s.state.label(),
        topics: TOPICS
            .iter()
            .map(|(id, label, _)| (id.to_string(), label.to_string(), s.topics.iter().any(|t| t == id)))
            .collect(),
        searches: s.searches.join("\n"),
        error,
        saved,
    };
    private_html(status, page.render())
}

async fn managed(state: &AppState, token: &str) -> Result<Option<Subscriber>, super::NewsletterError> {
    let Some(id) = verify(&state.site.secret, Purpose::Manage, token) else { return Ok(None) };
    let subs = subscribers(state)?;
    blocking(move || subs.get(&id)).await
}

pub async fn preferences(
    state: web::Data<AppState>,
    session: Session,
    q: Option<web::Query<TokenQuery>>,
) -> Result<HttpResponse, ApiError> {
    let token = q.map(|q| q.token.clone()).unwrap_or_default();
    match managed(&state, &token).await {
        Ok(Some(s)) => preferences_page(&state, &session, token, &s, StatusCode::OK, None, false),
        Ok(None) => bad_link(Nav::of(&session, &state.site)),
        Err(e) => unavailable(Nav::of(&session, &state.site), "open your preferences", e),
    }
}

pub async fn save_preferences(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let f = Fields::parse(&body);
    let token = f.get("token").to_string();
    let current = match managed(&state, &token).await {
        Ok(Some(s)) => s,
        Ok(None) => return bad_link(Nav::of(&session, &state.site)),
        Err(e) => return unavailable(Nav::of(&session, &state.site), "open your preferences", e),
    };
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return preferences_page(
            &state,
            &session,
            token,
            &current,
            StatusCode::FORBIDDEN,
            Some(refused.message().into()),
            false,
        );
    }
    let topics = clean_topics(&f.all("topic"));
    let searches: Vec<String> =
        f.get("searches").lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    let problem = if searches.len() > MAX_SEARCHES {
        Some(format!("Keep at most {MAX_SEARCHES} searches, one per line."))
    } else if searches.iter().any(|s| s.chars().count() > MAX_SEARCH_CHARS || s.chars().any(char::is_control))
    {
        Some(format!("Each search may have at most {MAX_SEARCH_CHARS} characters."))
    } else {
        None
    };
    if let Some(p) = problem {
        return preferences_page(
            &state,
            &session,
            token,
            &current,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(p),
            false,
        );
    }
    let subs = subscribers(&state).map_err(ApiError::from)?;
    let (id, now) = (current.id.clone(), dates::now_secs());
    match blocking(move || {
        subs.update(&id, now, |s| {
            s.topics = topics;
            s.searches = searches;
        })
    })
    .await
    {
        Ok(Some(s)) => preferences_page(&state, &session, token, &s, StatusCode::OK, None, true),
        Ok(None) => bad_link(Nav::of(&session, &state.site)),
        Err(e) => unavailable(Nav::of(&session, &state.site), "save your preferences", e),
    }
}

/// `GET /newsletter/export?token=`: everything kept about the reader, as JSON.
pub async fn export(
    state: web::Data<AppState>,
    session: Session,
    q: Option<web::Query<TokenQuery>>,
) -> Result<HttpResponse, ApiError> {
    let token = q.map(|q| q.token.clone()).unwrap_or_default();
    let s = match managed(&state, &token).await {
        Ok(Some(s)) => s,
        Ok(None) => return bad_link(Nav::of(&session, &state.site)),
        Err(e) => return unavailable(Nav::of(&session, &state.site), "export your data", e),
    };
    let subs = subscribers(&state).map_err(ApiError::from)?;
    let id = s.id.clone();
    let seen = blocking(move || subs.seen_by(&id)).await.map_err(ApiError::from)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Content-Disposition", "attachment; filename=\"citecast-newsletter.json\""))
        .json(serde_json::json!({ "subscriber": s, "papers_sent": seen })))
}

/// `POST /newsletter/delete`: forgets the reader entirely.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let f = Fields::parse(&body);
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return refused_form(&state, &session, refused);
    }
    let Some(id) = verify(&state.site.secret, Purpose::Manage, f.get("token")) else {
        return bad_link(Nav::of(&session, &state.site));
    };
    let subs = subscribers(&state).map_err(ApiError::from)?;
    let now = dates::now_secs();
    match blocking(move || subs.delete(&id, now)).await {
        Ok(_) => message(
            StatusCode::OK,
            Nav::of(&session, &state.site),
            "Your data is deleted",
            vec!["Your address, subjects and the record of what we sent you are gone. You will get no more mail.".into()],
            ("/newsletter", "The newsletter"),
        ),
        Err(e) => unavailable(Nav::of(&session, &state.site), "delete your data", e),
    }
}

pub async fn unsubscribe_form(
    state: web::Data<AppState>,
    session: Session,
    q: Option<web::Query<TokenQuery>>,
) -> Result<HttpResponse, ApiError> {
    let token = q.map(|q| q.token.clone()).unwrap_or_default();
    let texts = ("Unsubscribe", "One click and no more issues come.", "Unsubscribe");
    one_button(&state, &session, token, Purpose::Unsubscribe, "/newsletter/unsubscribe", texts)
}

/// `POST /newsletter/unsubscribe?token=` (RFC 8058 one-click, from a mail client: the
/// body is `List-Unsubscribe=One-Click`) or from the page's button (token in the body).
/// The signed token is the authority; no session or CSRF token is needed, since all it
/// can do is stop mail to its own reader.
pub async fn unsubscribe(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    q: Option<web::Query<TokenQuery>>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let f = Fields::parse(&body);
    let token =
        q.map(|q| q.token.clone()).filter(|t| !t.is_empty()).unwrap_or_else(|| f.get("token").to_string());
    let one_click = f.get("List-Unsubscribe") == "One-Click";
    let Some(id) = verify(&state.site.secret, Purpose::Unsubscribe, &token) else {
        if one_click {
            return Err(ApiError::NotFound { what: "subscription", id: "(unknown link)".into() });
        }
        return bad_link(Nav::of(&session, &state.site));
    };
    let subs = subscribers(&state).map_err(ApiError::from)?;
    let now = dates::now_secs();
    let done = blocking(move || {
        subs.update(&id, now, |s| {
            if matches!(s.state, SubscriberState::Confirmed | SubscriberState::Unconfirmed) {
                s.state = SubscriberState::Unsubscribed;
            }
        })
    })
    .await;
    if let Err(e) = done {
        return unavailable(Nav::of(&session, &state.site), "unsubscribe you", e);
    }
    tracing::info!(one_click, "newsletter unsubscribe");
    let _ = req;
    if one_click {
        return Ok(HttpResponse::Ok().json(serde_json::json!({ "unsubscribed": true })));
    }
    message(
        StatusCode::OK,
        Nav::of(&session, &state.site),
        "You are unsubscribed",
        vec!["No more issues will come. Changed your mind? Subscribe again on the newsletter page.".into()],
        ("/newsletter", "The newsletter"),
    )
}

#[derive(serde::Deserialize)]
struct MailEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    email: String,
}

/// `POST /webhooks/mail`: a mail provider's bounce and complaint notices (DSNs), signed
/// like the payment webhooks (`Stripe-Signature`, the `--mail-webhook-secret`). A
/// `bounce` (permanent) or `complaint` stops all mail to the address.
pub async fn mail_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    if state.site.mail_webhook_secrets.is_empty() {
        return Err(ApiError::Domain {
            code: "webhooks_disabled",
            status: 503,
            message: "mail webhooks are disabled on this server: no --mail-webhook-secret is configured"
                .into(),
            retry_after: None,
        });
    }
    let secrets: Vec<&[u8]> = state.site.mail_webhook_secrets.iter().map(Vec::as_slice).collect();
    let header = req.headers().get("stripe-signature").and_then(|v| v.to_str().ok());
    crate::billing::signature::verify(
        header,
        &body,
        &secrets,
        dates::now_secs(),
        crate::billing::signature::DEFAULT_TOLERANCE_SECS,
    )?;
    let event: MailEvent = serde_json::from_slice(&body).map_err(|e| {
        ApiError::InvalidBody(format!(
            "expected {{\"id\", \"type\": \"bounce\"|\"complaint\", \"email\"}}: {e}"
        ))
    })?;
    let new_state = match event.kind.as_str() {
        "bounce" => SubscriberState::Bounced,
        "complaint" => SubscriberState::Complained,
        _ => return Ok(HttpResponse::Ok().json(serde_json::json!({ "received": true, "ignored": true }))),
    };
    let subs = subscribers(&state).map_err(ApiError::from)?;
    let now = dates::now_secs();
    let email = event.email.clone();
    let changed = blocking(move || match subs.by_email(&email)? {
        Some(s) => subs.update(&s.id, now, |s| s.state = new_state).map(|s| s.is_some()),
        None => Ok(false),
    })
    .await
    .map_err(ApiError::from)?;
    tracing::info!(event = %event.id, kind = %event.kind, known = changed, "mail provider event");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "received": true, "applied": changed })))
}
