//! The community's pages: the discussion on each paper's page (rendered by
//! [`discussion`] for `papers/page.rs`), posting, editing and reporting comments, the
//! guidelines, and the events list and feed. Every form carries a CSRF token and is
//! checked for our origin; a refused comment is shown again with the reason and nothing
//! is stored.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::time::Duration;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use bytes::Bytes;
use citecast_actors::dates;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::events::{self, Event};
use super::store::{call, Community};
use super::zone::{reader_zone, Zone};
use super::{Comment, CommunityError, Report};
use crate::accounts::page::{message, refused_form, signed_in_or_redirect, unavailable};
use crate::web::error::ApiError;
use crate::web::page::{html, private_html, see_other, Fields, Nav};
use crate::web::session as websession;
use crate::web::AppState;

type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// Posting limits: per person (5 at once, then one a minute) and per address (20 at
/// once, then one every 12 seconds), so neither one account nor one machine floods a
/// discussion.
struct PostLimits {
    per_user: Keyed,
    per_ip: Keyed,
}

fn limits() -> &'static PostLimits {
    static LIMITS: OnceLock<PostLimits> = OnceLock::new();
    LIMITS.get_or_init(|| {
        let n = |v| NonZeroU32::new(v).expect("positive");
        PostLimits {
            per_user: RateLimiter::keyed(
                Quota::with_period(Duration::from_secs(60)).expect("positive").allow_burst(n(5)),
            ),
            per_ip: RateLimiter::keyed(
                Quota::with_period(Duration::from_secs(12)).expect("positive").allow_burst(n(20)),
            ),
        }
    })
}

/// Counts one post; `Err(seconds)` to wait.
fn check_limits(user: &str, ip: &str) -> Result<(), u64> {
    let clock = DefaultClock::default();
    let l = limits();
    for (limiter, key) in [(&l.per_user, user), (&l.per_ip, ip)] {
        if let Err(not_until) = limiter.check_key(&key.to_string()) {
            return Err(not_until.wait_time_from(clock.now()).as_secs().max(1));
        }
    }
    Ok(())
}

pub fn client_ip(req: &HttpRequest) -> String {
    crate::web::client_ip(req.peer_addr())
}

/// Customer names by id, for the people on one page; never their addresses.
pub async fn names(state: &AppState, ids: Vec<String>) -> HashMap<String, String> {
    let accounts = state.accounts.clone();
    actix_web::rt::task::spawn_blocking(move || {
        let mut out = HashMap::new();
        for id in ids {
            if out.contains_key(&id) {
                continue;
            }
            let name = match accounts.customer(&id) {
                Ok(Some(c)) if !c.name.trim().is_empty() => c.name,
                _ => "A former member".to_string(),
            };
            out.insert(id, name);
        }
        out
    })
    .await
    .unwrap_or_default()
}

// ---------------------------------------------------------------- the discussion on a paper page

/// One comment as the paper page shows it.
pub struct CommentView {
    pub id: String,
    pub author: String,
    /// Sanitised HTML (see [`super::render_markdown`]).
    pub html: String,
    pub when: String,
    pub edited: bool,
    pub can_edit: bool,
    pub can_report: bool,
}

/// The discussion section of a paper page.
pub struct Discussion {
    pub paper_id: String,
    pub comments: Vec<CommentView>,
    pub signed_in: bool,
    pub csrf: String,
    /// Why this reader may not post (a ban), if so.
    pub banned: Option<String>,
}

/// The discussion of `paper_id` for this reader.
pub async fn discussion(
    state: &AppState,
    session: &Session,
    query: &str,
    paper_id: &str,
) -> Result<Discussion, CommunityError> {
    let me = websession::signed_in(session).map(|(id, _)| id);
    let now = dates::now_secs();
    let (db, paper, who) = (state.engine.db.clone(), paper_id.to_string(), me.clone());
    let (comments, ban) = call(move || {
        let store = Community::open(&db)?;
        let ban = match &who {
            Some(id) => store.ban_of(id, now)?,
            None => None,
        };
        Ok((store.comments_of(&paper)?, ban))
    })
    .await?;
    let shown: Vec<Comment> = comments.into_iter().filter(|c| c.hidden.is_none()).collect();
    let names = names(state, shown.iter().map(|c| c.author.clone()).collect()).await;
    let zone = reader_zone(query, session);
    let comments = shown
        .into_iter()
        .map(|c| CommentView {
            author: names.get(&c.author).cloned().unwrap_or_default(),
            html: super::render_markdown(&c.body),
            when: zone.show(c.created),
            edited: c.edited.is_some(),
            can_edit: me.as_deref() == Some(c.author.as_str())
                && super::check_edit(&c, &c.author, now).is_ok(),
            can_report: me.as_deref().is_some_and(|m| m != c.author),
            id: c.id,
        })
        .collect();
    Ok(Discussion {
        paper_id: paper_id.to_string(),
        comments,
        signed_in: me.is_some(),
        csrf: if me.is_some() { websession::csrf_token(session, &state.site) } else { String::new() },
        banned: ban.map(|b| super::ban_message(&b)),
    })
}

// ---------------------------------------------------------------- posting and editing

#[derive(Template)]
#[template(path = "site/community_comment_form.html")]
struct CommentForm {
    nav: Nav,
    heading: String,
    action: String,
    paper_id: String,
    paper_href: String,
    body: String,
    error: Option<String>,
}

fn comment_form(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    action: String,
    paper_id: &str,
    body: &str,
    error: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let editing = action.ends_with("/edit");
    let page = CommentForm {
        nav: Nav::of(session, &state.site),
        heading: if editing { "Edit your comment".into() } else { "Your comment".into() },
        action,
        paper_id: paper_id.to_string(),
        paper_href: crate::papers::page::href(paper_id),
        body: body.chars().take(super::MAX_COMMENT_BYTES + 100).collect(),
        error,
    };
    private_html(status, page.render())
}

/// The account's creation time, for the link limit of new accounts.
async fn created_of(state: &AppState, id: &str) -> Result<i64, CommunityError> {
    let (accounts, id) = (state.accounts.clone(), id.to_string());
    actix_web::rt::task::spawn_blocking(move || accounts.customer(&id).map(|c| c.map(|c| c.created)))
        .await
        .map_err(|_| CommunityError::Unavailable)?
        .map_err(|_| CommunityError::Unavailable)?
        .ok_or_else(|| CommunityError::Forbidden("Your account no longer exists.".into()))
}

fn refusal(
    state: &AppState,
    session: &Session,
    e: CommunityError,
    action: String,
    paper: &str,
    body: &str,
) -> Result<HttpResponse, ApiError> {
    match e {
        CommunityError::Invalid(m) => {
            comment_form(state, session, StatusCode::UNPROCESSABLE_ENTITY, action, paper, body, Some(m))
        }
        CommunityError::Forbidden(m) => {
            comment_form(state, session, StatusCode::FORBIDDEN, action, paper, body, Some(m))
        }
        CommunityError::NotFound(what) => message(
            StatusCode::NOT_FOUND,
            Nav::of(session, &state.site),
            "Not found",
            vec![format!("{what} was not found.")],
            ("/", "Home"),
        ),
        other => unavailable(Nav::of(session, &state.site), "save your comment", other),
    }
}

fn too_many(
    state: &AppState,
    session: &Session,
    wait: u64,
    action: String,
    paper: &str,
    body: &str,
) -> Result<HttpResponse, ApiError> {
    let msg =
        format!("You are posting faster than the discussion allows. Wait {wait} seconds and send it again.");
    let mut resp =
        comment_form(state, session, StatusCode::TOO_MANY_REQUESTS, action, paper, body, Some(msg))?;
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&wait.to_string()) {
        resp.headers_mut().insert(actix_web::http::header::RETRY_AFTER, v);
    }
    Ok(resp)
}

/// `POST /community/comments`: a new comment under `paper`.
pub async fn post_comment(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    let f = Fields::parse(&body);
    let (paper, text) = (f.get("paper").trim().to_string(), f.get("body").to_string());
    let action = "/community/comments".to_string();
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return comment_form(
            &state,
            &session,
            StatusCode::FORBIDDEN,
            action,
            &paper,
            &text,
            Some(refused.message().into()),
        );
    }
    let Ok(paper) = crate::papers::clean_id(&paper) else {
        let e = CommunityError::Invalid("The form does not name a paper.".into());
        return refusal(&state, &session, e, action, "", &text);
    };
    let exists = state.engine.store.send(citecast_actors::actors::GetPaperRecord { id: paper.clone() }).await;
    let paper = match exists {
        Ok(Ok(Some(p))) => p.id,
        Ok(Ok(None)) => {
            return refusal(
                &state,
                &session,
                CommunityError::NotFound(format!("Paper '{paper}'")),
                action,
                "",
                &text,
            )
        }
        Ok(Err(e)) => return unavailable(Nav::of(&session, &state.site), "find the paper", e),
        Err(e) => return unavailable(Nav::of(&session, &state.site), "find the paper", e),
    };
    let now = dates::now_secs();
    let who = login.customer_id.clone();
    let created = match created_of(&state, &who).await {
        Ok(c) => c,
        Err(e) => return refusal(&state, &session, e, action, &paper, &text),
    };
    let (db, w) = (state.engine.db.clone(), who.clone());
    match call(move || Community::open(&db)?.ban_of(&w, now)).await {
        Ok(Some(ban)) => {
            return refusal(
                &state,
                &session,
                CommunityError::Forbidden(super::ban_message(&ban)),
                action,
                &paper,
                &text,
            )
        }
        Ok(None) => {}
        Err(e) => return refusal(&state, &session, e, action, &paper, &text),
    }
    if let Err(e) = super::check_comment(&text, created, now) {
        return refusal(&state, &session, e, action, &paper, &text);
    }
    if let Err(wait) = check_limits(&who, &client_ip(&req)) {
        return too_many(&state, &session, wait, action, &paper, &text);
    }
    let db = state.engine.db.clone();
    let (p, t) = (paper.clone(), text.clone());
    let saved = call(move || {
        let store = Community::open(&db)?;
        let c = Comment {
            id: store.next_id("m")?,
            paper_id: p,
            author: who,
            body: t,
            created: now,
            edited: None,
            hidden: None,
        };
        store.put_comment(&c)?;
        Ok(c)
    })
    .await;
    match saved {
        Ok(c) => Ok(see_other(&format!("{}#{}", crate::papers::page::href(&c.paper_id), c.id))),
        Err(e) => refusal(&state, &session, e, action, &paper, &text),
    }
}

/// `GET /community/comments/{id}/edit`.
pub async fn edit_form(
    path: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    let id = path.into_inner();
    let action = format!("/community/comments/{id}/edit");
    let (db, key) = (state.engine.db.clone(), id.clone());
    let c = match call(move || Community::open(&db)?.comment(&key)).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return refusal(&state, &session, CommunityError::NotFound("The comment".into()), action, "", "")
        }
        Err(e) => return refusal(&state, &session, e, action, "", ""),
    };
    let error = super::check_edit(&c, &login.customer_id, dates::now_secs()).err().map(|e| e.to_string());
    let status = if error.is_some() { StatusCode::FORBIDDEN } else { StatusCode::OK };
    comment_form(&state, &session, status, action, &c.paper_id, &c.body, error)
}

/// `POST /community/comments/{id}/edit`: the author, within ten minutes, not banned.
pub async fn edit(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    let id = path.into_inner();
    let f = Fields::parse(&body);
    let text = f.get("body").to_string();
    let action = format!("/community/comments/{id}/edit");
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return comment_form(
            &state,
            &session,
            StatusCode::FORBIDDEN,
            action,
            "",
            &text,
            Some(refused.message().into()),
        );
    }
    let now = dates::now_secs();
    let who = login.customer_id.clone();
    let created = match created_of(&state, &who).await {
        Ok(c) => c,
        Err(e) => return refusal(&state, &session, e, action, "", &text),
    };
    let (db, key, t) = (state.engine.db.clone(), id.clone(), text.clone());
    let saved = call(move || {
        let store = Community::open(&db)?;
        let mut c = store.comment(&key)?.ok_or_else(|| CommunityError::NotFound("The comment".into()))?;
        if let Some(ban) = store.ban_of(&who, now)? {
            return Err(CommunityError::Forbidden(super::ban_message(&ban)));
        }
        super::check_edit(&c, &who, now)?;
        super::check_comment(&t, created, now)?;
        c.body = t;
        c.edited = Some(now);
        store.put_comment(&c)?;
        Ok(c)
    })
    .await;
    match saved {
        Ok(c) => Ok(see_other(&format!("{}#{}", crate::papers::page::href(&c.paper_id), c.id))),
        Err(e) => refusal(&state, &session, e, action, "", &text),
    }
}

/// `POST /community/comments/{id}/report`: into the moderator queue.
pub async fn report(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    let f = Fields::parse(&body);
    if let Err(refused) = websession::check_form(&req, &session, &state.site, f.get("csrf")) {
        return refused_form(&state, &session, refused);
    }
    let reason: String = f.get("reason").trim().chars().take(500).collect();
    let id = path.into_inner();
    let (db, key, who) = (state.engine.db.clone(), id.clone(), login.customer_id.clone());
    let now = dates::now_secs();
    let done = call(move || {
        let store = Community::open(&db)?;
        let c = store.comment(&key)?.ok_or_else(|| CommunityError::NotFound("The comment".into()))?;
        store.report(&Report { comment_id: key, reporter: who, reason, at: now })?;
        Ok(c)
    })
    .await;
    let nav = Nav::of(&session, &state.site);
    match done {
        Ok(c) => {
            let back = crate::papers::page::href(&c.paper_id);
            message(
                StatusCode::OK,
                nav,
                "Thank you for the report",
                vec!["A moderator will read the comment against the community guidelines.".into()],
                (&back, "Back to the paper"),
            )
        }
        Err(CommunityError::NotFound(_)) => message(
            StatusCode::NOT_FOUND,
            nav,
            "Not found",
            vec!["That comment does not exist.".into()],
            ("/", "Home"),
        ),
        Err(e) => unavailable(nav, "record your report", e),
    }
}

// ---------------------------------------------------------------- guidelines and events

#[derive(Template)]
#[template(path = "site/community_guidelines.html")]
struct Guidelines {
    nav: Nav,
    edit_minutes: i64,
    new_links: usize,
    max_links: usize,
}

/// `GET /community/guidelines`.
pub async fn guidelines(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, ApiError> {
    let page = Guidelines {
        nav: Nav::of(&session, &state.site),
        edit_minutes: super::EDIT_WINDOW_SECS / 60,
        new_links: super::NEW_ACCOUNT_LINKS,
        max_links: super::MAX_LINKS,
    };
    html(StatusCode::OK, page.render(), 0)
}

struct EventView {
    id: String,
    kind: &'static str,
    title: String,
    when: String,
    description: String,
    link: Option<String>,
    recording: Option<String>,
    notes: Option<String>,
    past: bool,
}

#[derive(Template)]
#[template(path = "site/events_list.html")]
struct EventsPage {
    nav: Nav,
    zone: String,
    upcoming: Vec<EventView>,
    past: Vec<EventView>,
}

fn view(e: Event, zone: &Zone, now: i64) -> EventView {
    let when = match e.ends {
        Some(end) => format!("{} to {}", zone.show(e.starts), zone.show(end)),
        None => zone.show(e.starts),
    };
    EventView {
        past: e.ends.unwrap_or(e.starts) < now,
        id: e.id,
        kind: e.kind.label(),
        title: e.title,
        when,
        description: super::render_markdown(&e.description),
        link: e.link,
        recording: e.recording,
        notes: e.notes,
    }
}

/// `GET /events`: upcoming and past events in the reader's zone (`?tz=`).
pub async fn events_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let zone = reader_zone(req.query_string(), &session);
    let now = dates::now_secs();
    let db = state.engine.db.clone();
    let all = match call(move || events::all_events(&db, now)).await {
        Ok(a) => a,
        Err(e) => return unavailable(Nav::of(&session, &state.site), "list the events", e),
    };
    let (mut past, upcoming): (Vec<EventView>, Vec<EventView>) =
        all.into_iter().map(|e| view(e, &zone, now)).partition(|e| e.past);
    past.reverse();
    let page = EventsPage { nav: Nav::of(&session, &state.site), zone: zone.name.clone(), upcoming, past };
    private_html(StatusCode::OK, page.render())
}

/// `GET /events.ics`: the iCalendar feed.
pub async fn events_ics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let now = dates::now_secs();
    let db = state.engine.db.clone();
    let all = call(move || events::all_events(&db, now)).await?;
    let host =
        state.site.base_url.split("://").nth(1).unwrap_or("citecast").trim_end_matches('/').to_string();
    let body = events::ics(&all, &state.site.base_url, &host, now);
    Ok(HttpResponse::Ok()
        .content_type("text/calendar; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(body))
}
