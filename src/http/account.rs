//! `/v1/account`: the calling key's customer, its usage and its keys.

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use citecast_actors::actors::{GetCustomer, GetKey, ListKeys};
use citecast_actors::limiter::UsedToday;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::guard::Principal;
use super::params::Params;
use super::times::with_rfc3339;
use super::AppState;
use crate::operator::{self, OpRequest};

/// Who a customer's own key actions are recorded as in the audit log.
fn actor(p: &Principal) -> String {
    format!("customer:{} (key {})", p.customer_id.as_deref().unwrap_or("?"), p.id)
}

/// The customer behind the request's key (the guard has authenticated it).
fn customer_of(req: &HttpRequest) -> Result<Principal, ApiError> {
    let p = req.extensions().get::<Principal>().cloned().ok_or(ApiError::Unauthorized)?;
    if p.customer_id.is_none() {
        return Err(ApiError::InvalidKey("account endpoints need an API key".into()));
    }
    Ok(p)
}

pub async fn account(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Params::parse(req.query_string(), &[])?;
    let p = customer_of(&req)?;
    let id = p.customer_id.clone().unwrap_or_default();
    let customer = state
        .engine
        .store
        .send(GetCustomer(id.clone()))
        .await??
        .ok_or(ApiError::NotFound { what: "customer", id })?;
    let tier = state.tiers.get(&customer.tier).ok_or_else(|| ApiError::internal("unknown tier"))?;
    // Quotas belong to the customer: every key of it draws on one daily count.
    let used =
        state.engine.limiter.send(UsedToday(p.limit_id().to_string())).await?.map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(with_rfc3339(json!({
        "customer": customer,
        "tier": tier,
        "key_id": p.id,
        "usage_today": { "requests": used, "daily_limit": tier.daily, "remaining": tier.daily.saturating_sub(used) },
    }))))
}

/// `GET /v1/account/usage?from=&to=`: per day, the requests of each of the customer's
/// keys, read from the live counts and the archive alike.
pub async fn usage(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &["from", "to"])?;
    let p = customer_of(&req)?;
    let today = citecast_actors::dates::today();
    let to = params.date("to")?.unwrap_or(today);
    let from = params.date("from")?.unwrap_or(to - 30);
    if from > to {
        return Err(ApiError::param("from", "'from' is after 'to'".to_string()));
    }
    if to - from > 400 {
        return Err(ApiError::param("to", "at most 400 days per request".to_string()));
    }
    let keys = state.engine.store.send(ListKeys(p.customer_id.clone().unwrap_or_default())).await??;
    let mut days: std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>> =
        Default::default();
    let mut total = 0u64;
    for key in keys {
        let msg = citecast_actors::actors::UsageBetween { principal: key.id.clone(), from, to };
        for d in state.engine.store.send(msg).await?? {
            total += d.requests;
            days.entry(d.day).or_default().insert(key.id.clone(), json!(d.requests));
        }
    }
    let days: Vec<_> =
        days.into_iter().map(|(day, by_key)| json!({ "day": day, "by_key": by_key })).collect();
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(json!({
        "from": citecast_actors::dates::format(from),
        "to": citecast_actors::dates::format(to),
        "total_requests": total,
        "days": days,
        "note": "today's count is written every second; the live count is in /v1/account",
    })))
}

pub async fn keys(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Params::parse(req.query_string(), &[])?;
    let p = customer_of(&req)?;
    let keys = state.engine.store.send(ListKeys(p.customer_id.unwrap_or_default())).await??;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(with_rfc3339(json!({ "keys": keys }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    name: String,
}

pub async fn create_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<NewKeyBody>,
) -> Result<HttpResponse, ApiError> {
    let p = customer_of(&req)?;
    // Through the operator service, as the CLI does: the same tier cap and the same
    // audit entry, recorded as the customer's own action.
    let op = OpRequest::AddKey {
        customer_id: p.customer_id.clone().unwrap_or_default(),
        name: body.into_inner().name,
    };
    // (the operator service's answers already carry the RFC 3339 times)
    let v = operator::execute_as(&state.engine, &state.tiers, op, &actor(&p)).await?;
    Ok(HttpResponse::Created().insert_header(("cache-control", "no-store")).json(
        json!({ "key": v["key"], "secret": v["secret"], "note": "the secret is shown once; store it now" }),
    ))
}

/// A key of the caller's own customer; another customer's key is reported as unknown.
async fn own_key(state: &AppState, p: &Principal, key_id: &str) -> Result<(), ApiError> {
    let key = state.engine.store.send(GetKey(key_id.to_string())).await??;
    match key {
        Some(k) if Some(&k.customer_id) == p.customer_id.as_ref() => Ok(()),
        _ => Err(ApiError::NotFound { what: "API key", id: key_id.to_string() }),
    }
}

pub async fn revoke_key(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = customer_of(&req)?;
    let key_id = path.into_inner();
    own_key(&state, &p, &key_id).await?;
    let v = operator::execute_as(&state.engine, &state.tiers, OpRequest::RevokeKey { key_id }, &actor(&p))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "key": v["key"] })))
}

pub async fn rotate_key(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = customer_of(&req)?;
    let key_id = path.into_inner();
    own_key(&state, &p, &key_id).await?;
    let v = operator::execute_as(&state.engine, &state.tiers, OpRequest::RotateKey { key_id }, &actor(&p))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("cache-control", "no-store"))
        .json(json!({ "key": v["key"], "secret": v["secret"], "note": "the old key is revoked" })))
}
