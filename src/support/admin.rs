//! Support for operators: `/admin/support` (every ticket with the first-response and
//! NPS figures) and `/admin/support/{id}`, readable from an operator's browser session
//! (HTML) or with the token (JSON, for `citecast support`); and the token-only changes,
//! each audited: reply (the first reply stops the first-response clock), close, reopen.
//! The customer is mailed on a reply and on a close.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use bytes::Bytes;
use citecast_actors::dates;
use serde::Deserialize;
use serde_json::json;

use super::page::{conversation, notify, plausible_id, response_note, when};
use super::store::{call, Support};
use super::{Author, NpsSummary, SupportError, Ticket, TicketStatus, TicketSummary};
use crate::outbound::mail::Mail;
use crate::web::auth::{audit, Admin};
use crate::web::error::ApiError;
use crate::web::page::{private_html, Nav};
use crate::web::AppState;

/// A person in a browser gets the page, a program (`citecast support`) the JSON.
fn wants_html(req: &HttpRequest) -> bool {
    req.headers().get("accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// A ticket as the JSON lists it (times as unix seconds and RFC 3339).
fn ticket_json(t: &Ticket, now: i64, with_messages: bool) -> serde_json::Value {
    let mut v = json!({
        "id": t.id,
        "customer_id": t.customer_id,
        "subject": t.subject,
        "status": t.status.as_str(),
        "opened": t.opened,
        "opened_at": dates::rfc3339(t.opened),
        "due_at": dates::rfc3339(t.due()),
        "first_response_secs": t.first_response_secs(),
        "overdue": t.overdue(now),
        "escalated_at": t.escalated.map(dates::rfc3339),
        "closed_at": t.closed.map(dates::rfc3339),
        "messages": t.messages.len(),
    });
    if with_messages {
        v["conversation"] = json!(t
            .messages
            .iter()
            .map(|m| json!({ "from": m.from, "at": dates::rfc3339(m.at), "body": m.body }))
            .collect::<Vec<_>>());
    }
    v
}

struct Row {
    id: String,
    customer: String,
    subject: String,
    state: String,
    opened: String,
    response: String,
}

#[derive(Template)]
#[template(path = "site/support_admin.html")]
struct ListPage {
    nav: Nav,
    summary: TicketSummary,
    nps: NpsSummary,
    nps_score: String,
    median: String,
    target: String,
    rows: Vec<Row>,
}

/// `GET /admin/support`: every ticket, open and overdue ones first, with the figures.
pub async fn list(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let db = state.engine.db.clone();
    let now = dates::now_secs();
    let (mut tickets, nps) = call(move || {
        let s = Support::open(&db)?;
        Ok((s.tickets()?, super::store::nps_summary(&db)?))
    })
    .await?;
    let summary = super::summarise_tickets(&tickets, now);
    // Overdue first, then open by age, then the rest newest first.
    tickets.sort_by_key(|t| {
        (
            !t.overdue(now),
            t.status != TicketStatus::Open,
            if t.status == TicketStatus::Open { t.opened } else { -t.updated },
        )
    });
    if !wants_html(&req) {
        let list: Vec<_> = tickets.iter().map(|t| ticket_json(t, now, false)).collect();
        return Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(json!({ "summary": summary, "nps": nps, "tickets": list })));
    }
    let rows = tickets
        .iter()
        .map(|t| Row {
            id: t.id.clone(),
            customer: t.customer_id.clone(),
            subject: t.subject.clone(),
            state: if t.overdue(now) { "open, OVERDUE".into() } else { t.status.as_str().into() },
            opened: when(t.opened),
            response: t.first_response_secs().map(super::duration_words).unwrap_or_else(|| "none yet".into()),
        })
        .collect();
    let page = ListPage {
        nav: Nav::of(&session, &state.site),
        median: summary
            .median_first_response_secs
            .map(super::duration_words)
            .unwrap_or_else(|| "none yet".into()),
        nps_score: nps.score.map(|s| format!("{s:.0}")).unwrap_or_else(|| "none yet".into()),
        target: super::duration_words(super::FIRST_RESPONSE_TARGET_SECS),
        summary,
        nps,
        rows,
    };
    private_html(StatusCode::OK, page.render())
}

#[derive(Template)]
#[template(path = "site/support_admin_ticket.html")]
struct TicketPage {
    nav: Nav,
    id: String,
    customer: String,
    subject: String,
    state: &'static str,
    opened: String,
    response_note: String,
    messages: Vec<(&'static str, &'static str, String, String)>,
}

async fn load(id: String, state: &AppState) -> Result<Ticket, SupportError> {
    if !plausible_id(&id) {
        return Err(SupportError::NotFound(format!("ticket '{}'", id.chars().take(40).collect::<String>())));
    }
    let db = state.engine.db.clone();
    call(move || {
        Support::open(&db)?.ticket(&id)?.ok_or_else(|| SupportError::NotFound(format!("ticket '{id}'")))
    })
    .await
}

/// `GET /admin/support/{id}`: one ticket with its conversation.
pub async fn show(
    _: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let t = load(path.into_inner(), &state).await?;
    if !wants_html(&req) {
        return Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(ticket_json(
            &t,
            dates::now_secs(),
            true,
        )));
    }
    let page = TicketPage {
        nav: Nav::of(&session, &state.site),
        state: t.status.as_str(),
        opened: when(t.opened),
        response_note: response_note(&t),
        messages: conversation(&t, "Customer"),
        customer: t.customer_id.clone(),
        subject: t.subject.clone(),
        id: t.id,
    };
    private_html(StatusCode::OK, page.render())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyBody {
    message: String,
}

/// The customer's address, for mail.
async fn email_of(state: &AppState, customer_id: &str) -> Option<(String, String)> {
    let (accounts, id) = (state.accounts.clone(), customer_id.to_string());
    match actix_web::rt::task::spawn_blocking(move || accounts.customer(&id)).await {
        Ok(Ok(Some(c))) => Some((c.name, c.email)),
        _ => None,
    }
}

/// `POST /admin/support/{id}/reply` `{"message"}`: the operator answers; the customer is
/// mailed.
pub async fn reply(
    _: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let b: ReplyBody = serde_json::from_slice(&body)
        .map_err(|e| SupportError::Invalid(format!("the body must be {{\"message\": \"...\"}}: {e}")))?;
    let text = super::check_text(&b.message, super::MAX_BODY_CHARS, "message")?;
    let id = path.into_inner();
    if !plausible_id(&id) {
        return Err(
            SupportError::NotFound(format!("ticket '{}'", id.chars().take(40).collect::<String>())).into()
        );
    }
    let (db, tid, written) = (state.engine.db.clone(), id.clone(), text.clone());
    let now = dates::now_secs();
    let t = call(move || Support::open(&db)?.reply(&tid, None, Author::Operator, &written, now)).await?;
    audit(
        &state,
        &req,
        "support.reply",
        t.id.clone(),
        None,
        &json!({ "message": text, "first_response": t.first_response }),
    )
    .await;
    if let Some((name, email)) = email_of(&state, &t.customer_id).await {
        notify(
            &state,
            Mail {
                to: email,
                subject: format!("Re: {} ({})", t.subject, t.id),
                text: format!(
                    "Hello {name},\n\ncitecast support answered your ticket {}:\n\n{text}\n\nReply or close the ticket here: {}/support/{}\n",
                    t.id, state.site.base_url, t.id
                ),
                html: None,
                headers: Vec::new(),
            },
        )
        .await;
    }
    Ok(HttpResponse::Ok().json(ticket_json(&t, now, false)))
}

async fn set_status(
    req: HttpRequest,
    id: String,
    state: web::Data<AppState>,
    status: TicketStatus,
) -> Result<HttpResponse, ApiError> {
    if !plausible_id(&id) {
        return Err(
            SupportError::NotFound(format!("ticket '{}'", id.chars().take(40).collect::<String>())).into()
        );
    }
    let db = state.engine.db.clone();
    let now = dates::now_secs();
    let t = call(move || Support::open(&db)?.set_status(&id, None, status, now)).await?;
    let action = if status == TicketStatus::Closed { "support.close" } else { "support.reopen" };
    audit(&state, &req, action, t.id.clone(), None, &json!({ "status": t.status.as_str() })).await;
    if status == TicketStatus::Closed {
        if let Some((name, email)) = email_of(&state, &t.customer_id).await {
            notify(
                &state,
                Mail {
                    to: email,
                    subject: format!("Closed: {} ({})", t.subject, t.id),
                    text: format!(
                        "Hello {name},\n\nwe closed your ticket {} as solved. If it is not, reply on {}/support/{} and it opens again.\n",
                        t.id, state.site.base_url, t.id
                    ),
                    html: None,
                    headers: Vec::new(),
                },
            )
            .await;
        }
    }
    Ok(HttpResponse::Ok().json(ticket_json(&t, now, false)))
}

/// `POST /admin/support/{id}/close`.
pub async fn close(
    _: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    set_status(req, path.into_inner(), state, TicketStatus::Closed).await
}

/// `POST /admin/support/{id}/reopen`.
pub async fn reopen(
    _: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    set_status(req, path.into_inner(), state, TicketStatus::Open).await
}
