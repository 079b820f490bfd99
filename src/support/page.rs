//! The customer's support pages: the knowledge base (`/docs`, `/docs/{slug}`), their
//! tickets (`/support`, `/support/{id}`: open, reply, close, reopen) and the NPS survey
//! (`/nps?token=`). Every form carries a CSRF token and is checked for our origin first;
//! bad input is shown again with the reason (4xx) and nothing is stored.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use bytes::Bytes;
use citecast_actors::dates;

use super::store::{call, Support};
use super::{kb, Author, NpsResponse, SupportError, Ticket, TicketStatus};
use crate::accounts::page::{message, refused_form, signed_in_or_redirect, unavailable};
use crate::outbound::mail::{self, Mail};
use crate::web::error::ApiError;
use crate::web::page::{private_html, see_other, Fields, Nav};
use crate::web::session as websession;
use crate::web::AppState;

/// `YYYY-MM-DD HH:MM` (UTC).
pub fn when(secs: i64) -> String {
    let day = dates::format(dates::day_of_secs(secs));
    let s = secs.rem_euclid(86_400);
    format!("{day} {:02}:{:02}", s / 3600, (s % 3600) / 60)
}

/// Whether `id` looks like a ticket id (anything else is answered as unknown without a
/// store read).
pub fn plausible_id(id: &str) -> bool {
    id.len() <= 24
        && id.strip_prefix("tkt_").is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Sends `mail` and logs a failure: the change it reports is stored whatever the mail does.
pub async fn notify(state: &AppState, m: Mail) {
    let to = m.to.clone();
    if let Err(e) = mail::send_blocking(state.mailer.clone(), m).await {
        tracing::warn!(error = %e, to = %to, "support mail not sent");
    }
}

/// The customer's name and address, for mail (`None` when the record is gone).
async fn contact(state: &AppState, customer_id: &str) -> Option<(String, String)> {
    let (accounts, id) = (state.accounts.clone(), customer_id.to_string());
    let found = actix_web::rt::task::spawn_blocking(move || accounts.customer(&id)).await;
    match found {
        Ok(Ok(Some(c))) => Some((c.name, c.email)),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, customer = customer_id, "customer not read for support mail");
            None
        }
        _ => None,
    }
}

// ---------------------------------------------------------------- knowledge base

/// An article in a list: slug, title, summary (or snippet).
type Entry = (&'static str, String, String);
/// Articles of one kind: its label and entries.
type Group = (&'static str, Vec<Entry>);

#[derive(Template)]
#[template(path = "site/support_docs.html")]
struct DocsPage {
    nav: Nav,
    query: String,
    searched: bool,
    error: Option<String>,
    hits: Vec<Entry>,
    groups: Vec<Group>,
}

#[derive(Template)]
#[template(path = "site/support_article.html")]
struct ArticlePage {
    nav: Nav,
    title: String,
    kind: &'static str,
    html: String,
}

#[derive(serde::Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

fn groups() -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for a in kb::articles() {
        let entry = (a.slug, a.title.clone(), a.summary.clone());
        match out.iter_mut().find(|g| g.0 == a.kind.label()) {
            Some(g) => g.1.push(entry),
            None => out.push((a.kind.label(), vec![entry])),
        }
    }
    out
}

/// `GET /docs[?q=]`: the articles by kind, and search results when asked.
pub async fn docs_index(
    state: web::Data<AppState>,
    session: Session,
    query: Option<web::Query<SearchQuery>>,
) -> Result<HttpResponse, ApiError> {
    let q = query.map(|q| q.into_inner().q).unwrap_or_default();
    let nav = Nav::of(&session, &state.site);
    let mut page = DocsPage {
        nav,
        query: String::new(),
        searched: false,
        error: None,
        hits: Vec::new(),
        groups: groups(),
    };
    if q.chars().count() > kb::MAX_QUERY_CHARS {
        page.error = Some(format!(
            "A search is at most {} characters; use a few words that say what you look for.",
            kb::MAX_QUERY_CHARS
        ));
        return private_html(StatusCode::BAD_REQUEST, page.render());
    }
    let q = q.trim().to_string();
    if !q.is_empty() {
        page.searched = true;
        page.hits = kb::search(&q)
            .into_iter()
            .map(|h| (h.article.slug, h.article.title.clone(), h.snippet))
            .collect();
        page.query = q;
    }
    private_html(StatusCode::OK, page.render())
}

/// `GET /docs/{slug}`: one article.
pub async fn docs_article(
    path: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let nav = Nav::of(&session, &state.site);
    match kb::article(&path) {
        Some(a) => private_html(
            StatusCode::OK,
            ArticlePage { nav, title: a.title.clone(), kind: a.kind.label(), html: a.html.clone() }.render(),
        ),
        None => message(
            StatusCode::NOT_FOUND,
            nav,
            "No such article",
            vec!["There is no help article at this address. The list of articles and the search are on the help page.".into()],
            ("/docs", "Help and documentation"),
        ),
    }
}

// ---------------------------------------------------------------- tickets

struct TicketRow {
    id: String,
    subject: String,
    state: &'static str,
    updated: String,
}

#[derive(Template)]
#[template(path = "site/support_tickets.html")]
struct TicketsPage {
    nav: Nav,
    tickets: Vec<TicketRow>,
    subject: String,
    body: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "site/support_ticket.html")]
struct TicketPage {
    nav: Nav,
    id: String,
    subject: String,
    state: &'static str,
    open: bool,
    opened: String,
    response_note: String,
    /// css class, who, when, text
    messages: Vec<(&'static str, &'static str, String, String)>,
    body: String,
    error: Option<String>,
    notice: Option<String>,
}

/// The conversation as shown: who wrote each message (to the customer the operator is
/// "citecast support").
pub fn conversation(
    t: &Ticket,
    customer_label: &'static str,
) -> Vec<(&'static str, &'static str, String, String)> {
    t.messages
        .iter()
        .map(|m| match m.from {
            Author::Customer => ("from-customer", customer_label, when(m.at), m.body.clone()),
            Author::Operator => ("from-operator", "citecast support", when(m.at), m.body.clone()),
        })
        .collect()
}

/// A sentence on the first-response clock.
pub fn response_note(t: &Ticket) -> String {
    match t.first_response_secs() {
        Some(s) => format!("First answered after {}.", super::duration_words(s)),
        None if t.status == TicketStatus::Open => {
            format!("We aim to answer by {} UTC (within 4 hours).", when(t.due()))
        }
        None => String::new(),
    }
}

async fn tickets_page(
    state: &AppState,
    session: &Session,
    customer_id: &str,
    status: StatusCode,
    fields: (&str, &str),
    error: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let nav = Nav::of(session, &state.site);
    let (db, id) = (state.engine.db.clone(), customer_id.to_string());
    let tickets = match call(move || Support::open(&db)?.tickets_of(&id)).await {
        Ok(t) => t,
        Err(e) => return unavailable(nav, "load your tickets", e),
    };
    let page = TicketsPage {
        nav,
        tickets: tickets
            .into_iter()
            .map(|t| TicketRow {
                state: t.status.as_str(),
                updated: when(t.updated),
                id: t.id,
                subject: t.subject,
            })
            .collect(),
        subject: fields.0.chars().take(super::MAX_SUBJECT_CHARS).collect(),
        body: fields.1.chars().take(super::MAX_BODY_CHARS).collect(),
        error,
    };
    private_html(status, page.render())
}

/// `GET /support`: the customer's tickets and the form to open one.
pub async fn tickets(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    tickets_page(&state, &session, &login.customer_id, StatusCode::OK, ("", ""), None).await
}

/// `POST /support`: opens a ticket, tells both sides, and shows it.
pub async fn open_ticket(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    let f = Fields::parse(&body);
    let fields = (f.get("subject"), f.get("body"));
    let again =
        |status, e: String| tickets_page(&state, &session, &login.customer_id, status, fields, Some(e));
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return again(StatusCode::FORBIDDEN, refused.message().into()).await;
    }
    let checked = super::check_subject(fields.0)
        .and_then(|s| Ok((s, super::check_text(fields.1, super::MAX_BODY_CHARS, "message")?)));
    let (subject, text) = match checked {
        Ok(v) => v,
        Err(e) => return again(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).await,
    };
    let (db, customer) = (state.engine.db.clone(), login.customer_id.clone());
    let now = dates::now_secs();
    let opened = call(move || Support::open(&db)?.open_ticket(&customer, &subject, &text, now)).await;
    let t = match opened {
        Ok(t) => t,
        Err(e @ SupportError::Conflict(_)) => return again(StatusCode::CONFLICT, e.to_string()).await,
        Err(e) => return unavailable(Nav::of(&session, &state.site), "open your ticket", e),
    };
    let base = &state.site.base_url;
    let who = contact(&state, &t.customer_id).await;
    let (name, email) = who.clone().unwrap_or_default();
    notify(
        &state,
        Mail {
            to: super::operator_address(&state.mailer),
            subject: format!("[support] New ticket {}: {}", t.id, t.subject),
            text: format!(
                "{name} <{email}> ({}) opened {}:\n\n{}\n\nThe first response is due by {} UTC.\nSee {base}/admin/support/{} and reply with `citecast support reply {} --message ...`.\n",
                t.customer_id,
                t.id,
                t.messages[0].body,
                when(t.due()),
                t.id,
                t.id
            ),
            html: None,
            headers: Vec::new(),
        },
    )
    .await;
    if who.is_some() {
        notify(
            &state,
            Mail {
                to: email,
                subject: format!("We got your ticket {}: {}", t.id, t.subject),
                text: format!(
                    "Hello {name},\n\nthank you for writing. We answer within 4 hours, by {} UTC at the latest.\n\nFollow the ticket and reply here: {base}/support/{}\n",
                    when(t.due()),
                    t.id
                ),
                html: None,
                headers: Vec::new(),
            },
        )
        .await;
    }
    Ok(see_other(&format!("/support/{}", t.id)))
}

fn no_ticket(state: &AppState, session: &Session) -> Result<HttpResponse, ApiError> {
    message(
        StatusCode::NOT_FOUND,
        Nav::of(session, &state.site),
        "No such ticket",
        vec!["You have no ticket with this number. Your tickets are listed on the support page.".into()],
        ("/support", "Support"),
    )
}

async fn ticket_page(
    state: &AppState,
    session: &Session,
    t: Ticket,
    status: StatusCode,
    body: &str,
    error: Option<String>,
    notice: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let page = TicketPage {
        nav: Nav::of(session, &state.site),
        state: t.status.as_str(),
        open: t.status == TicketStatus::Open,
        opened: when(t.opened),
        response_note: response_note(&t),
        messages: conversation(&t, "You"),
        body: body.chars().take(super::MAX_BODY_CHARS).collect(),
        error,
        notice,
        subject: t.subject,
        id: t.id,
    };
    private_html(status, page.render())
}

/// The signed-in customer's ticket `id`, or the answer to give instead.
async fn own_ticket(
    state: &AppState,
    session: &Session,
    customer_id: &str,
    id: &str,
) -> Result<Ticket, Result<HttpResponse, ApiError>> {
    if !plausible_id(id) {
        return Err(no_ticket(state, session));
    }
    let (db, c, i) = (state.engine.db.clone(), customer_id.to_string(), id.to_string());
    match call(move || Support::open(&db)?.ticket_of(&c, &i)).await {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(no_ticket(state, session)),
        Err(e) => Err(unavailable(Nav::of(session, &state.site), "load your ticket", e)),
    }
}

/// `GET /support/{id}`: one of the customer's tickets.
pub async fn ticket(
    path: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    match own_ticket(&state, &session, &login.customer_id, &path).await {
        Ok(t) => ticket_page(&state, &session, t, StatusCode::OK, "", None, None).await,
        Err(answer) => answer,
    }
}

/// `POST /support/{id}/reply`: the customer writes; a closed ticket reopens.
pub async fn reply(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    let t = match own_ticket(&state, &session, &login.customer_id, &path).await {
        Ok(t) => t,
        Err(answer) => return answer,
    };
    let f = Fields::parse(&body);
    let text = f.get("body");
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return ticket_page(
            &state,
            &session,
            t,
            StatusCode::FORBIDDEN,
            text,
            Some(refused.message().into()),
            None,
        )
        .await;
    }
    let text = match super::check_text(text, super::MAX_BODY_CHARS, "reply") {
        Ok(v) => v,
        Err(e) => {
            let typed = f.get("body").to_string();
            return ticket_page(
                &state,
                &session,
                t,
                StatusCode::UNPROCESSABLE_ENTITY,
                &typed,
                Some(e.to_string()),
                None,
            )
            .await;
        }
    };
    let (db, owner, id) = (state.engine.db.clone(), login.customer_id.clone(), t.id.clone());
    let now = dates::now_secs();
    let written = text.clone();
    let done =
        call(move || Support::open(&db)?.reply(&id, Some(&owner), Author::Customer, &written, now)).await;
    let after = match done {
        Ok(after) => after,
        Err(e @ SupportError::Conflict(_)) => {
            return ticket_page(&state, &session, t, StatusCode::CONFLICT, &text, Some(e.to_string()), None)
                .await
        }
        Err(SupportError::NotFound(_)) => return no_ticket(&state, &session),
        Err(e) => return unavailable(Nav::of(&session, &state.site), "send your reply", e),
    };
    let reopened = t.status == TicketStatus::Closed;
    let (name, email) = contact(&state, &after.customer_id).await.unwrap_or_default();
    notify(
        &state,
        Mail {
            to: super::operator_address(&state.mailer),
            subject: format!(
                "[support] {} {}: {}",
                if reopened { "Reopened by a reply" } else { "Reply on" },
                after.id,
                after.subject
            ),
            text: format!(
                "{name} <{email}> wrote on {}:\n\n{text}\n\nSee {}/admin/support/{}\n",
                after.id, state.site.base_url, after.id
            ),
            html: None,
            headers: Vec::new(),
        },
    )
    .await;
    Ok(see_other(&format!("/support/{}", after.id)))
}

/// `POST /support/{id}/close`: the customer says it is solved.
pub async fn close(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    set_status(req, path.into_inner(), state, session, body, TicketStatus::Closed).await
}

/// `POST /support/{id}/reopen`.
pub async fn reopen(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    set_status(req, path.into_inner(), state, session, body, TicketStatus::Open).await
}

async fn set_status(
    req: HttpRequest,
    id: String,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
    status: TicketStatus,
) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    let t = match own_ticket(&state, &session, &login.customer_id, &id).await {
        Ok(t) => t,
        Err(answer) => return answer,
    };
    let f = Fields::parse(&body);
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return ticket_page(
            &state,
            &session,
            t,
            StatusCode::FORBIDDEN,
            "",
            Some(refused.message().into()),
            None,
        )
        .await;
    }
    let (db, owner, tid) = (state.engine.db.clone(), login.customer_id.clone(), t.id.clone());
    let now = dates::now_secs();
    match call(move || Support::open(&db)?.set_status(&tid, Some(&owner), status, now)).await {
        Ok(after) => {
            if status == TicketStatus::Open {
                notify(
                    &state,
                    Mail {
                        to: super::operator_address(&state.mailer),
                        subject: format!("[support] Reopened {}: {}", after.id, after.subject),
                        text: format!(
                            "The customer reopened {}.\n\nSee {}/admin/support/{}\n",
                            after.id, state.site.base_url, after.id
                        ),
                        html: None,
                        headers: Vec::new(),
                    },
                )
                .await;
            }
            Ok(see_other(&format!("/support/{}", after.id)))
        }
        Err(e @ SupportError::Conflict(_)) => {
            ticket_page(&state, &session, t, StatusCode::CONFLICT, "", Some(e.to_string()), None).await
        }
        Err(SupportError::NotFound(_)) => no_ticket(&state, &session),
        Err(e) => unavailable(Nav::of(&session, &state.site), "change your ticket", e),
    }
}

// ---------------------------------------------------------------- NPS survey

#[derive(Template)]
#[template(path = "site/support_nps.html")]
struct NpsPage {
    nav: Nav,
    token: String,
    /// 0 to 10, and whether it is the one chosen.
    scores: Vec<(u8, bool)>,
    comment: String,
    error: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn nps_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    token: &str,
    chosen: Option<u8>,
    comment: &str,
    error: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let page = NpsPage {
        nav: Nav::of(session, &state.site),
        token: token.chars().take(200).collect(),
        scores: (0..=10).map(|n| (n, chosen == Some(n))).collect(),
        comment: comment.chars().take(super::MAX_COMMENT_CHARS).collect(),
        error,
    };
    private_html(status, page.render())
}

fn bad_link(state: &AppState, session: &Session) -> Result<HttpResponse, ApiError> {
    message(
        StatusCode::NOT_FOUND,
        Nav::of(session, &state.site),
        "This survey link does not work",
        vec!["The link was copied incompletely or is not one we sent. Open it again from the e-mail.".into()],
        ("/", "Home"),
    )
}

fn thanks(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    first: bool,
) -> Result<HttpResponse, ApiError> {
    let said = if first {
        "Your answer is recorded. Thank you: it tells us what to improve."
    } else {
        "You already answered this survey, and one answer per customer is kept. Thank you!"
    };
    message(
        status,
        Nav::of(session, &state.site),
        "Thank you",
        vec![
            said.into(),
            "If something needs fixing now, open a support ticket: we answer within 4 hours.".into(),
        ],
        ("/support", "Support"),
    )
}

/// `GET /nps?token=`: the survey form (or a thank-you when already answered).
pub async fn nps_form(
    state: web::Data<AppState>,
    session: Session,
    query: Option<web::Query<TokenQuery>>,
) -> Result<HttpResponse, ApiError> {
    let token = query.map(|q| q.into_inner().token).unwrap_or_default();
    let Some(customer) = super::verify_survey_token(&state.site.secret, &token) else {
        return bad_link(&state, &session);
    };
    let db = state.engine.db.clone();
    match call(move || Support::open(&db)?.survey_answer(&customer)).await {
        Ok(Some(_)) => thanks(&state, &session, StatusCode::OK, false),
        Ok(None) => nps_page(&state, &session, StatusCode::OK, &token, None, "", None),
        Err(e) => unavailable(Nav::of(&session, &state.site), "open the survey", e),
    }
}

/// `POST /nps`: stores the score and comment, once per customer.
pub async fn nps_answer(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let f = Fields::parse(&body);
    let (token, comment) = (f.get("token"), f.get("comment"));
    let chosen = super::check_score(f.get("score")).ok();
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        if super::verify_survey_token(&state.site.secret, token).is_none() {
            return refused_form(&state, &session, refused);
        }
        return nps_page(
            &state,
            &session,
            StatusCode::FORBIDDEN,
            token,
            chosen,
            comment,
            Some(refused.message().into()),
        );
    }
    let Some(customer) = super::verify_survey_token(&state.site.secret, token) else {
        return bad_link(&state, &session);
    };
    let checked = super::check_score(f.get("score")).and_then(|s| Ok((s, super::check_comment(comment)?)));
    let (score, text) = match checked {
        Ok(v) => v,
        Err(e) => {
            return nps_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                token,
                chosen,
                comment,
                Some(e.to_string()),
            )
        }
    };
    let db = state.engine.db.clone();
    let r = NpsResponse { customer_id: customer, score, comment: text, at: dates::now_secs() };
    match call(move || Support::open(&db)?.answer_survey(&r)).await {
        Ok(()) => thanks(&state, &session, StatusCode::OK, true),
        Err(SupportError::Conflict(_)) => thanks(&state, &session, StatusCode::CONFLICT, false),
        Err(e) => unavailable(Nav::of(&session, &state.site), "record your answer", e),
    }
}
