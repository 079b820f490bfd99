//! The operator's webhook endpoints: register and remove receivers (token in a header,
//! audited), send a dead letter again, and `/admin/webhooks`, the dashboard of endpoints,
//! recent deliveries and dead letters (readable from an operator's browser session).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::store::call;
use super::{EventKind, Format, WebhookError, Webhooks};
use crate::web::auth::{audit, Admin};
use crate::web::error::ApiError;
use crate::web::page::{private_html, Nav};
use crate::web::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEndpoint {
    url: String,
    /// `slack`, `discord` or `json`.
    #[serde(default = "json_format")]
    format: String,
    #[serde(default)]
    events: Vec<String>,
}

fn json_format() -> String {
    "json".into()
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, WebhookError> {
    serde_json::from_slice(body)
        .map_err(|e| WebhookError::Invalid(format!("the body is not the expected JSON: {e}")))
}

/// `POST /admin/webhooks` `{"url", "format": "slack"|"discord"|"json", "events": [...]}`:
/// 201 with the endpoint and its signing secret, shown this once.
pub async fn add(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let new: NewEndpoint = parse_body(&body)?;
    let format = Format::parse(&new.format).ok_or_else(|| {
        WebhookError::Invalid(format!("'format' must be slack, discord or json, not '{}'", new.format))
    })?;
    let mut events = Vec::new();
    for e in &new.events {
        let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        events.push(EventKind::parse(e).ok_or_else(|| {
            WebhookError::Invalid(format!("unknown event '{e}'; events: {}", names.join(", ")))
        })?);
    }
    let (db, base) = (state.engine.db.clone(), state.site.base_url.clone());
    let ep = call(move || {
        let hooks = Webhooks::open(&db)?;
        hooks.set_base_url(&base)?;
        hooks.add_endpoint(&new.url, format, events, citecast_actors::dates::now_secs())
    })
    .await?;
    audit(&state, &req, "webhook.add", ep.id.clone(), None, &ep.public()).await;
    Ok(HttpResponse::Created().json(json!({ "endpoint": ep.public(), "secret": ep.secret })))
}

/// `POST /admin/webhooks/{id}/remove`.
pub async fn remove(
    _: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (db, id) = (state.engine.db.clone(), path.into_inner());
    let target = id.clone();
    let ep = call(move || Webhooks::open(&db)?.remove_endpoint(&id)).await?;
    audit(&state, &req, "webhook.remove", target, Some(&ep.public()), &json!(null)).await;
    Ok(HttpResponse::Ok().json(json!({ "removed": ep.public() })))
}

/// `POST /admin/webhooks/deliveries/{id}/retry`: a dead letter is sent again.
pub async fn retry(
    _: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (db, id) = (state.engine.db.clone(), path.into_inner());
    let target = id.clone();
    let d = call(move || Webhooks::open(&db)?.requeue(&id, citecast_actors::dates::now_secs())).await?;
    super::kick(state.engine.db.clone());
    let after = json!({ "delivery": d.id, "state": "pending" });
    audit(&state, &req, "webhook.retry", target, None, &after).await;
    Ok(HttpResponse::Ok().json(after))
}

/// `GET /admin/webhooks/deliveries`: the latest 200 deliveries as JSON.
pub async fn deliveries(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let db = state.engine.db.clone();
    let list = call(move || Webhooks::open(&db)?.recent(200)).await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(json!({ "deliveries": list })))
}

struct Row {
    id: String,
    endpoint: String,
    event: &'static str,
    created: String,
    state: &'static str,
    attempts: u32,
    last: String,
}

#[derive(Template)]
#[template(path = "site/webhook_dashboard.html")]
struct Dashboard {
    nav: Nav,
    endpoints: Vec<(String, String, &'static str, String)>,
    recent: Vec<Row>,
    dead: Vec<Row>,
    pending: usize,
}

fn row(d: super::Delivery) -> Row {
    Row {
        event: d.announcement.kind().as_str(),
        created: citecast_actors::dates::rfc3339(d.created),
        state: match d.state {
            super::DeliveryState::Pending => "pending",
            super::DeliveryState::Delivered => "delivered",
            super::DeliveryState::Dead => "dead letter",
        },
        attempts: d.attempts,
        last: match (d.last_status, d.last_error) {
            (_, Some(e)) => e,
            (Some(s), None) => format!("answered {s}"),
            (None, None) => String::new(),
        },
        id: d.id,
        endpoint: d.endpoint_id,
    }
}

/// `GET /admin/webhooks`: endpoints, recent deliveries and dead letters.
pub async fn dashboard(
    _: Admin,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let db = state.engine.db.clone();
    let (endpoints, recent, dead) = call(move || {
        let h = Webhooks::open(&db)?;
        Ok((h.endpoints()?, h.recent(50)?, h.dead(50)?))
    })
    .await?;
    let pending = recent.iter().filter(|d| d.state == super::DeliveryState::Pending).count();
    let page = Dashboard {
        nav: Nav::of(&session, &state.site),
        endpoints: endpoints
            .into_iter()
            .map(|e| {
                let events = e.events.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
                (e.id, e.url, e.format.as_str(), events)
            })
            .collect(),
        recent: recent.into_iter().map(row).collect(),
        dead: dead.into_iter().map(row).collect(),
        pending,
    };
    private_html(StatusCode::OK, page.render())
}
