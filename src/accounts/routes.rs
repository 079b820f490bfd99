//! `/v1/account`: the calling key's customer, its usage and its keys.

use super::store::call;
use super::{ApiKey, Customer};
use crate::accounts::limits::UsedToday;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use citecast_actors::dates::rfc3339;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::ops::operator::{self, OpRequest};
use crate::web::error::ApiError;
use crate::web::guard::Principal;
use crate::web::params::Params;
use crate::web::{get_or_head, AppState, Endpoint, SiteRoute};

/// The `/v1/account` routes.
/// The customer's pages (`page.rs`): sign-up, confirmation, log-in, reset, account.
pub fn site_routes() -> Vec<SiteRoute> {
    use super::page;
    vec![
        SiteRoute::get("/signup", || get_or_head().to(page::signup_form)),
        SiteRoute::post("/signup", || web::post().to(page::signup)),
        SiteRoute::get("/confirm", || get_or_head().to(page::confirm_form)),
        SiteRoute::post("/confirm", || web::post().to(page::confirm)),
        SiteRoute::get("/login", || get_or_head().to(page::login_form)),
        SiteRoute::post("/login", || web::post().to(page::login)),
        SiteRoute::post("/logout", || web::post().to(page::logout)),
        SiteRoute::get("/password/forgot", || get_or_head().to(page::forgot_form)),
        SiteRoute::post("/password/forgot", || web::post().to(page::forgot)),
        SiteRoute::get("/password/reset", || get_or_head().to(page::reset_form)),
        SiteRoute::post("/password/reset", || web::post().to(page::reset)),
        SiteRoute::get("/account", || get_or_head().to(page::account)),
        SiteRoute::get("/account/export", || get_or_head().to(page::export)),
        SiteRoute::post("/account/keys", || web::post().to(page::create_key)),
        SiteRoute::post("/account/keys/{id}/{action}", || web::post().to(page::key_action)),
    ]
}

pub fn endpoints() -> Vec<Endpoint> {
    use crate::accounts::tiers::Group::*;
    use crate::web::openapi::{date, path, schema_of, Body, Op, Param};
    const KEY_ID: Param = path("key_id", "key_...");
    const USAGE_PARAMS: &[Param] = &[
        date("from", "first day, YYYY-MM-DD (default: 30 days ago)"),
        date("to", "last day, YYYY-MM-DD (default: today); at most 400 days after from"),
    ];
    vec![
        Endpoint {
            path: "/account",
            route: || get_or_head().to(account),
            ops: &[Op {
                method: "GET",
                path: "/v1/account",
                summary: "Your customer record, tier and today's usage",
                group: Account,
                params: &[],
                body: None,
                success: 200,
                also: &[],
                response: Some(schema_of::<AccountResponse>),
            }],
        },
        Endpoint {
            path: "/account/usage",
            route: || get_or_head().to(usage),
            ops: &[Op {
                method: "GET",
                path: "/v1/account/usage",
                summary: "Daily request counts of your keys, archived days included",
                group: Account,
                params: USAGE_PARAMS,
                body: None,
                success: 200,
                also: &[],
                response: Some(schema_of::<UsageResponse>),
            }],
        },
        Endpoint {
            path: "/account/keys",
            route: || get_or_head().to(keys),
            ops: &[Op {
                method: "GET",
                path: "/v1/account/keys",
                summary: "Your API keys (never their secrets)",
                group: Account,
                params: &[],
                body: None,
                success: 200,
                also: &[],
                response: Some(schema_of::<KeysResponse>),
            }],
        },
        Endpoint {
            path: "/account/keys",
            route: || web::post().to(create_key),
            ops: &[Op {
                method: "POST",
                path: "/v1/account/keys",
                summary: "Create a named key; the secret is shown once",
                group: Account,
                params: &[],
                body: Some(Body { example: r#"{"name": "ci"}"#, schema: schema_of::<NewKeyBody> }),
                success: 201,
                also: &[409],
                response: Some(schema_of::<NewKeyResponse>),
            }],
        },
        Endpoint {
            path: "/account/keys/{key_id}",
            route: || web::delete().to(revoke_key),
            ops: &[Op {
                method: "DELETE",
                path: "/v1/account/keys/{key_id}",
                summary: "Revoke one of your keys",
                group: Account,
                params: &[KEY_ID],
                body: None,
                success: 200,
                also: &[],
                response: Some(schema_of::<RevokedKeyResponse>),
            }],
        },
        Endpoint {
            path: "/account/keys/{key_id}/rotate",
            route: || web::post().to(rotate_key),
            ops: &[Op {
                method: "POST",
                path: "/v1/account/keys/{key_id}/rotate",
                summary: "Replace a key: a new secret, the old key revoked",
                group: Account,
                params: &[KEY_ID],
                body: None,
                success: 201,
                also: &[409],
                response: Some(schema_of::<NewKeyResponse>),
            }],
        },
    ]
}

/// A customer record as the API shows it: times as unix seconds and RFC 3339 text.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CustomerView {
    pub id: String,
    pub name: String,
    pub email: String,
    /// Tier id (`free`, `researcher`, ...).
    pub tier: String,
    /// `active`, `paused`, `cancelled` or `suspended`.
    pub status: String,
    pub created: i64,
    pub created_at: String,
    pub updated: i64,
    pub updated_at: String,
}

impl From<Customer> for CustomerView {
    fn from(c: Customer) -> CustomerView {
        let status = serde_json::to_value(c.status).ok().and_then(|v| v.as_str().map(str::to_string));
        CustomerView {
            created_at: rfc3339(c.created),
            updated_at: rfc3339(c.updated),
            id: c.id,
            name: c.name,
            email: c.email,
            tier: c.tier,
            status: status.unwrap_or_default(),
            created: c.created,
            updated: c.updated,
        }
    }
}

/// An API key as the API shows it: never its secret, only the first characters.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyView {
    pub id: String,
    pub customer_id: String,
    pub name: String,
    /// The first characters of the secret, e.g. `cc_live_Ab3x`.
    pub prefix: String,
    pub created: i64,
    pub created_at: String,
    /// Unix seconds of the revocation; absent while the key is active.
    pub revoked: Option<i64>,
    pub revoked_at: Option<String>,
}

impl From<ApiKey> for KeyView {
    fn from(k: ApiKey) -> KeyView {
        KeyView {
            created_at: rfc3339(k.created),
            revoked_at: k.revoked.map(rfc3339),
            id: k.id,
            customer_id: k.customer_id,
            name: k.name,
            prefix: k.prefix,
            created: k.created,
            revoked: k.revoked,
        }
    }
}

/// `GET /v1/account`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountResponse {
    pub customer: CustomerView,
    pub tier: crate::accounts::tiers::Tier,
    /// The key this request was made with.
    pub key_id: String,
    pub usage_today: UsageToday,
}

/// Requests counted against today's quota (UTC day).
#[derive(Serialize, utoipa::ToSchema)]
pub struct UsageToday {
    pub requests: u64,
    pub daily_limit: u64,
    pub remaining: u64,
}

/// `GET /v1/account/usage`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UsageResponse {
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day, `YYYY-MM-DD`.
    pub to: String,
    pub total_requests: u64,
    /// Days with any requests, oldest first.
    pub days: Vec<UsageDay>,
    pub note: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UsageDay {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Requests per key id.
    pub by_key: BTreeMap<String, u64>,
}

/// `GET /v1/account/keys`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeysResponse {
    pub keys: Vec<KeyView>,
}

/// `POST /v1/account/keys` and `.../rotate`: the new key and its secret, shown once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NewKeyResponse {
    pub key: KeyView,
    /// The whole secret (`cc_live_...`): store it now, it is not shown again.
    pub secret: String,
    pub note: String,
}

/// `DELETE /v1/account/keys/{key_id}`: the key as revoked.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RevokedKeyResponse {
    pub key: KeyView,
}

/// The key and secret of an operator-service answer (AddKey, RotateKey).
fn issued(v: &serde_json::Value) -> Result<(KeyView, String), ApiError> {
    let key: ApiKey = serde_json::from_value(v["key"].clone()).map_err(ApiError::internal)?;
    let secret = v["secret"].as_str().ok_or_else(|| ApiError::internal("no secret in the answer"))?;
    Ok((key.into(), secret.to_string()))
}

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
    let lookup = id.clone();
    let customer = call(&state.accounts, move |a| a.customer(&lookup))
        .await?
        .ok_or(ApiError::NotFound { what: "customer", id })?;
    let tier = state.tiers.get(&customer.tier).ok_or_else(|| ApiError::internal("unknown tier"))?;
    // Quotas belong to the customer: every key of it draws on one daily count.
    let used = state.limiter.send(UsedToday(p.limit_id().to_string())).await?.map_err(ApiError::internal)?;
    let body = AccountResponse {
        customer: customer.into(),
        tier: tier.clone(),
        key_id: p.id.clone(),
        usage_today: UsageToday {
            requests: used,
            daily_limit: tier.daily,
            remaining: tier.daily.saturating_sub(used),
        },
    };
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(body))
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
    let customer_id = p.customer_id.clone().unwrap_or_default();
    let keys = call(&state.accounts, move |a| a.keys_of(&customer_id)).await?;
    let mut days: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut total = 0u64;
    for key in keys {
        let msg = citecast_actors::actors::UsageBetween { principal: key.id.clone(), from, to };
        for d in state.engine.store.send(msg).await?? {
            total += d.requests;
            days.entry(d.day).or_default().insert(key.id.clone(), d.requests);
        }
    }
    let body = UsageResponse {
        from: citecast_actors::dates::format(from),
        to: citecast_actors::dates::format(to),
        total_requests: total,
        days: days.into_iter().map(|(day, by_key)| UsageDay { day, by_key }).collect(),
        note: "today's count is written every second; the live count is in /v1/account".into(),
    };
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(body))
}

pub async fn keys(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Params::parse(req.query_string(), &[])?;
    let p = customer_of(&req)?;
    let customer_id = p.customer_id.unwrap_or_default();
    let keys = call(&state.accounts, move |a| a.keys_of(&customer_id)).await?;
    let body = KeysResponse { keys: keys.into_iter().map(KeyView::from).collect() };
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(body))
}

/// `POST /v1/account/keys` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    /// A name to tell your keys apart (e.g. `ci`).
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
    let v = operator::execute_as(&state.engine, &state.accounts, &state.tiers, op, &actor(&p)).await?;
    let (key, secret) = issued(&v)?;
    let note = "the secret is shown once; store it now".to_string();
    Ok(HttpResponse::Created().insert_header(("cache-control", "no-store")).json(NewKeyResponse {
        key,
        secret,
        note,
    }))
}

/// A key of the caller's own customer; another customer's key is reported as unknown.
async fn own_key(state: &AppState, p: &Principal, key_id: &str) -> Result<(), ApiError> {
    let id = key_id.to_string();
    let key = call(&state.accounts, move |a| a.key(&id)).await?;
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
    let v = operator::execute_as(
        &state.engine,
        &state.accounts,
        &state.tiers,
        OpRequest::RevokeKey { key_id },
        &actor(&p),
    )
    .await?;
    let key: ApiKey = serde_json::from_value(v["key"].clone()).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(RevokedKeyResponse { key: key.into() }))
}

pub async fn rotate_key(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = customer_of(&req)?;
    let key_id = path.into_inner();
    own_key(&state, &p, &key_id).await?;
    let v = operator::execute_as(
        &state.engine,
        &state.accounts,
        &state.tiers,
        OpRequest::RotateKey { key_id },
        &actor(&p),
    )
    .await?;
    let (key, secret) = issued(&v)?;
    let note = "the old key is revoked".to_string();
    Ok(HttpResponse::Created().insert_header(("cache-control", "no-store")).json(NewKeyResponse {
        key,
        secret,
        note,
    }))
}
