//! Moderation and events for operators: `/admin/community` (the queue of reported
//! comments and the bans in force, readable from an operator's browser session) and the
//! token-only actions, each audited: hide a comment, dismiss its reports, ban or lift a
//! ban, create an event and link its recording and notes afterwards.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::events::{check_link, Event, Kind};
use super::store::{call, Community};
use super::{Ban, CommunityError, Moderation};
use crate::web::auth::{actor_of, audit, Admin};
use crate::web::error::ApiError;
use crate::web::page::{private_html, Nav};
use crate::web::AppState;

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, CommunityError> {
    serde_json::from_slice(body)
        .map_err(|e| CommunityError::Invalid(format!("the body is not the expected JSON: {e}")))
}

fn parse_instant(field: &str, v: &serde_json::Value) -> Result<i64, CommunityError> {
    let bad = || CommunityError::Invalid(format!("'{field}' must be unix seconds or an RFC 3339 time"));
    match v {
        serde_json::Value::Number(n) => n.as_i64().ok_or_else(bad),
        serde_json::Value::String(s) => {
            s.parse::<jiff::Timestamp>().map(|t| t.as_second()).map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reason {
    #[serde(default)]
    reason: String,
}

/// `POST /admin/community/comments/{id}/hide` `{"reason"}`: the comment leaves the page
/// (kept for the record) and its reports are resolved.
pub async fn hide(
    _: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let r: Reason = if body.is_empty() { Reason { reason: String::new() } } else { parse_body(&body)? };
    let (db, id, by) = (state.engine.db.clone(), path.into_inner(), actor_of(&req));
    let now = citecast_actors::dates::now_secs();
    let (before, after) = call(move || {
        let store = Community::open(&db)?;
        let mut c = store.comment(&id)?.ok_or_else(|| CommunityError::NotFound(format!("comment '{id}'")))?;
        let before = c.clone();
        c.hidden = Some(Moderation { at: now, by, reason: r.reason });
        store.put_comment(&c)?;
        store.resolve_reports(&id)?;
        Ok((before, c))
    })
    .await?;
    audit(&state, &req, "comment.hide", after.id.clone(), Some(&json!(before)), &json!(after)).await;
    Ok(HttpResponse::Ok().json(json!({ "hidden": after.id })))
}

/// `POST /admin/community/comments/{id}/dismiss`: the reports were unfounded.
pub async fn dismiss(
    _: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (db, id) = (state.engine.db.clone(), path.into_inner());
    let target = id.clone();
    let n = call(move || Community::open(&db)?.resolve_reports(&id)).await?;
    let after = json!({ "dismissed_reports": n });
    audit(&state, &req, "comment.dismiss_reports", target, None, &after).await;
    Ok(HttpResponse::Ok().json(after))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBan {
    customer_id: String,
    reason: String,
    /// How long it lasts: `days`, or `seconds` (at least one second).
    #[serde(default)]
    days: Option<u32>,
    #[serde(default)]
    seconds: Option<u32>,
}

/// `POST /admin/community/bans` `{"customer_id", "reason", "days" | "seconds"}`.
pub async fn ban(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let b: NewBan = parse_body(&body)?;
    let reason = b.reason.trim().to_string();
    if reason.is_empty() || reason.len() > 500 {
        return Err(CommunityError::Invalid("'reason' must be 1 to 500 characters".into()).into());
    }
    let secs = match (b.days, b.seconds) {
        (Some(d), None) if d > 0 => i64::from(d) * 86_400,
        (None, Some(s)) if s > 0 => i64::from(s),
        _ => {
            return Err(CommunityError::Invalid(
                "give the ban's length as 'days' or 'seconds' (above 0)".into(),
            )
            .into())
        }
    };
    let (accounts, id) = (state.accounts.clone(), b.customer_id.clone());
    let known = actix_web::rt::task::spawn_blocking(move || accounts.customer(&id))
        .await
        .map_err(|_| CommunityError::Unavailable)?
        .map_err(|_| CommunityError::Unavailable)?;
    if known.is_none() {
        return Err(CommunityError::NotFound(format!("customer '{}'", b.customer_id)).into());
    }
    let now = citecast_actors::dates::now_secs();
    let ban = Ban { customer_id: b.customer_id, reason, at: now, until: now + secs, by: actor_of(&req) };
    let (db, stored) = (state.engine.db.clone(), ban.clone());
    let before = call(move || Community::open(&db)?.put_ban(&stored)).await?;
    audit(
        &state,
        &req,
        "community.ban",
        ban.customer_id.clone(),
        before.as_ref().map(|b| json!(b)).as_ref(),
        &json!(ban),
    )
    .await;
    Ok(HttpResponse::Created()
        .json(json!({ "ban": ban, "until": citecast_actors::dates::rfc3339(ban.until) })))
}

/// `POST /admin/community/bans/{customer_id}/lift`.
pub async fn lift(
    _: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (db, id) = (state.engine.db.clone(), path.into_inner());
    let target = id.clone();
    let before = call(move || Community::open(&db)?.lift_ban(&id)).await?;
    let Some(before) = before else {
        return Err(CommunityError::NotFound(format!("a ban of '{target}'")).into());
    };
    audit(&state, &req, "community.unban", target, Some(&json!(before)), &json!(null)).await;
    Ok(HttpResponse::Ok().json(json!({ "lifted": before })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventFields {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    starts: Option<serde_json::Value>,
    #[serde(default)]
    ends: Option<serde_json::Value>,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    recording: Option<String>,
    #[serde(default)]
    notes: Option<String>,
}

/// Applies the given fields to `e`, checking each.
fn apply(e: &mut Event, f: EventFields) -> Result<(), CommunityError> {
    if let Some(k) = f.kind {
        e.kind = Kind::parse(&k).filter(|k| *k != Kind::ContestDeadline).ok_or_else(|| {
            CommunityError::Invalid(
                "'kind' must be challenge, discussion or other (contest deadlines come from contests)".into(),
            )
        })?;
    }
    if let Some(t) = f.title {
        let t = t.trim().to_string();
        if t.is_empty() || t.chars().count() > 200 {
            return Err(CommunityError::Invalid("'title' must be 1 to 200 characters".into()));
        }
        e.title = t;
    }
    if let Some(d) = f.description {
        if d.len() > 20_000 {
            return Err(CommunityError::Invalid("'description' must be at most 20,000 bytes".into()));
        }
        e.description = d;
    }
    if let Some(s) = f.starts {
        e.starts = parse_instant("starts", &s)?;
    }
    if let Some(end) = f.ends {
        e.ends = if end.is_null() { None } else { Some(parse_instant("ends", &end)?) };
    }
    for (field, value, slot) in [
        ("link", f.link, &mut e.link),
        ("recording", f.recording, &mut e.recording),
        ("notes", f.notes, &mut e.notes),
    ] {
        if let Some(v) = value {
            if v.is_empty() {
                *slot = None;
            } else {
                check_link(field, &v)?;
                *slot = Some(v);
            }
        }
    }
    if e.title.is_empty() {
        return Err(CommunityError::Invalid("an event needs a 'title'".into()));
    }
    if e.ends.is_some_and(|end| end < e.starts) {
        return Err(CommunityError::Invalid("'ends' is before 'starts'".into()));
    }
    Ok(())
}

/// `POST /admin/events` `{"kind", "title", "description", "starts", "ends", "link"}`.
pub async fn create_event(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let f: EventFields = parse_body(&body)?;
    if f.starts.is_none() {
        return Err(CommunityError::Invalid("an event needs 'starts'".into()).into());
    }
    let db = state.engine.db.clone();
    let e = call(move || {
        let store = Community::open(&db)?;
        let mut e = Event {
            id: store.next_id("ev")?,
            kind: Kind::Other,
            title: String::new(),
            description: String::new(),
            starts: 0,
            ends: None,
            link: None,
            recording: None,
            notes: None,
            created: citecast_actors::dates::now_secs(),
        };
        apply(&mut e, f)?;
        store.put_event(&e)?;
        Ok(e)
    })
    .await?;
    audit(&state, &req, "event.create", e.id.clone(), None, &json!(e)).await;
    Ok(HttpResponse::Created().json(json!({ "event": e })))
}

/// `POST /admin/events/{id}`: changes fields, e.g. links the recording and notes after.
pub async fn update_event(
    _: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let f: EventFields = parse_body(&body)?;
    let (db, id) = (state.engine.db.clone(), path.into_inner());
    let (before, after) = call(move || {
        let store = Community::open(&db)?;
        let mut e = store.event(&id)?.ok_or_else(|| CommunityError::NotFound(format!("event '{id}'")))?;
        let before = e.clone();
        apply(&mut e, f)?;
        store.put_event(&e)?;
        Ok((before, e))
    })
    .await?;
    audit(&state, &req, "event.update", after.id.clone(), Some(&json!(before)), &json!(after)).await;
    Ok(HttpResponse::Ok().json(json!({ "event": after })))
}

struct Queued {
    comment_id: String,
    paper_href: String,
    author: String,
    author_id: String,
    html: String,
    reports: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "site/community_moderation.html")]
struct Queue {
    nav: Nav,
    queued: Vec<Queued>,
    bans: Vec<(String, String, String, String)>,
}

/// `GET /admin/community`: reported comments, oldest first, and bans in force.
pub async fn queue(_: Admin, state: web::Data<AppState>, session: Session) -> Result<HttpResponse, ApiError> {
    let db = state.engine.db.clone();
    let now = citecast_actors::dates::now_secs();
    let (reports, comments, bans) = call(move || {
        let store = Community::open(&db)?;
        let reports = store.reports()?;
        let mut comments = Vec::new();
        for r in &reports {
            if !comments.iter().any(|c: &super::Comment| c.id == r.comment_id) {
                if let Some(c) = store.comment(&r.comment_id)? {
                    comments.push(c);
                }
            }
        }
        let bans: Vec<Ban> = store.bans()?.into_iter().filter(|b| b.active(now)).collect();
        Ok((reports, comments, bans))
    })
    .await?;
    let mut people: Vec<String> = comments.iter().map(|c| c.author.clone()).collect();
    people.extend(reports.iter().map(|r| r.reporter.clone()));
    people.extend(bans.iter().map(|b| b.customer_id.clone()));
    let names = super::page::names(&state, people).await;
    let name = |id: &str| names.get(id).cloned().unwrap_or_default();
    let queued = comments
        .into_iter()
        .map(|c| Queued {
            reports: reports
                .iter()
                .filter(|r| r.comment_id == c.id)
                .map(|r| {
                    (
                        name(&r.reporter),
                        if r.reason.is_empty() { "(no reason given)".into() } else { r.reason.clone() },
                    )
                })
                .collect(),
            paper_href: crate::papers::page::href(&c.paper_id),
            author: name(&c.author),
            author_id: c.author.clone(),
            html: super::render_markdown(&c.body),
            comment_id: c.id,
        })
        .collect();
    let bans = bans
        .into_iter()
        .map(|b| (name(&b.customer_id), b.customer_id, b.reason, citecast_actors::dates::rfc3339(b.until)))
        .collect();
    private_html(StatusCode::OK, Queue { nav: Nav::of(&session, &state.site), queued, bans }.render())
}
