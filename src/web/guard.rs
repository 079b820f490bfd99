//! Middleware in front of `/v1`: load shedding and timeouts, then authentication, tier
//! permissions and rate limits, and the `RateLimit-*` headers on every response.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::accounts::limits::{Decision, LimitKind, Window};
use crate::accounts::{hash_secret, Auth, CustomerStatus, KEY_PREFIX};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage};
use bytes::BytesMut;
use futures::StreamExt;

use crate::accounts::tiers::Group;
use crate::web::error::ApiError;
use crate::web::AppState;

/// Who is calling: a customer's key, or an anonymous client IP.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Key id (`key_...`) or `ip:<addr>`: what limits are counted against.
    pub id: String,
    pub customer_id: Option<String>,
    pub tier: String,
}

impl Principal {
    /// What rate limits and daily quotas are counted against: the customer (all its
    /// keys share one allowance), or the client IP for anonymous calls.
    pub fn limit_id(&self) -> &str {
        self.customer_id.as_deref().unwrap_or(&self.id)
    }
}

/// A cached authentication result for one secret's hash.
#[derive(Clone)]
pub enum CachedAuth {
    Valid(Principal),
    Revoked(String),
    Suspended,
    Unknown,
}

pub fn group_of(path: &str) -> Group {
    let rest = path.strip_prefix("/v1/").unwrap_or(path);
    if rest.starts_with("search") {
        Group::Search
    } else if rest.starts_with("authors") {
        Group::Authors
    } else if rest.starts_with("forecasts") || (rest.starts_with("papers/") && rest.ends_with("/forecast")) {
        Group::Forecasts
    } else if rest.starts_with("papers") {
        Group::Papers
    } else if rest.starts_with("account") {
        Group::Account
    } else {
        Group::Meta
    }
}

/// Requests in flight per caller. A caller over its share gets 429 at once, so one
/// customer's slow or numerous requests cannot take every global slot from the others.
pub struct CallerSlots {
    limit: usize,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

/// One held slot; released when the request is done (or dropped).
pub struct CallerSlot {
    caller: String,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

impl CallerSlots {
    pub fn new(limit: usize) -> Self {
        CallerSlots { limit: limit.max(1), held: Arc::default() }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A slot for `caller`, or `None` when it already holds `limit`.
    pub fn acquire(&self, caller: &str) -> Option<CallerSlot> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(caller.to_string()).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(CallerSlot { caller: caller.to_string(), held: self.held.clone() })
    }

    /// Callers holding at least one slot (the map never keeps idle callers).
    pub fn callers(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for CallerSlot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.caller) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.caller);
            }
        }
    }
}

/// Whether the request announces a body (a length above zero, or chunked).
fn has_body(req: &ServiceRequest) -> bool {
    let h = req.headers();
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
}

/// Reads the whole body within `deadline` and at most `limit` bytes, then puts it back
/// for the handler. A trickling client costs a buffer, not an in-flight slot.
async fn read_body(req: &mut ServiceRequest, limit: usize, deadline: Duration) -> Result<(), ApiError> {
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(ApiError::PayloadTooLarge { limit });
        }
    }
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    let until = tokio::time::Instant::now() + deadline;
    loop {
        match tokio::time::timeout_at(until, payload.next()).await {
            Err(_) => return Err(ApiError::BodyTimeout(deadline.as_secs().max(1))),
            Ok(None) => break,
            Ok(Some(Ok(chunk))) => {
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Some(Err(e))) => return Err(ApiError::InvalidBody(format!("cannot read it: {e}"))),
        }
    }
    req.set_payload(actix_web::dev::Payload::from(body.freeze()));
    Ok(())
}

/// Outermost: reads the request body under its own deadline, then refuses work beyond
/// `max_in_flight` concurrent requests with 503, and answers 503 when a request
/// outlives the timeout, so overload degrades into fast, retryable errors instead of a
/// growing queue. Only requests whose body has arrived count as in flight.
pub async fn shed(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let state =
        req.app_data::<web::Data<AppState>>().cloned().ok_or_else(|| ApiError::internal("no state"))?;
    if has_body(&req) {
        read_body(&mut req, state.max_body_bytes, state.body_read_timeout).await?;
    }
    let in_flight = state.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
    let _release = Release(&state);
    if in_flight > state.max_in_flight {
        return Err(ApiError::Overloaded.into());
    }
    match tokio::time::timeout(state.request_timeout, next.call(req)).await {
        Ok(res) => res,
        Err(_) => Err(ApiError::Timeout(state.request_timeout.as_secs().max(1)).into()),
    }
}

struct Release<'a>(&'a AppState);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn presented_key(req: &ServiceRequest) -> Result<Option<String>, ApiError> {
    if let Some(v) = req.headers().get("x-api-key") {
        let v = v.to_str().map_err(|_| ApiError::InvalidKey("X-API-Key is not readable text".into()))?;
        return Ok(Some(v.trim().to_string()));
    }
    let Some(v) = req.headers().get("authorization") else { return Ok(None) };
    let v = v.to_str().map_err(|_| ApiError::InvalidKey("Authorization is not readable text".into()))?;
    match v.strip_prefix("Bearer ") {
        Some(k) => Ok(Some(k.trim().to_string())),
        None => Err(ApiError::InvalidKey(
            "use 'Authorization: Bearer cc_live_...' or 'X-API-Key: cc_live_...'".into(),
        )),
    }
}

async fn authenticate(state: &AppState, req: &ServiceRequest) -> Result<Principal, ApiError> {
    let Some(secret) = presented_key(req)? else {
        let ip = crate::web::client_ip(req.peer_addr());
        return Ok(Principal {
            id: format!("ip:{ip}"),
            customer_id: None,
            tier: state.tiers.anonymous.id.clone(),
        });
    };
    if secret.is_empty() || secret.len() > 128 || !secret.starts_with(KEY_PREFIX) {
        return Err(ApiError::InvalidKey(
            "malformed API key: keys look like cc_live_ followed by 32 letters and digits".into(),
        ));
    }
    let hash = hash_secret(&secret);
    let version = state.accounts.version().get();
    let cached = match state.key_cache.get(&hash) {
        Some((v, auth)) if v == version => auth,
        _ => {
            let auth = match crate::accounts::store::call(&state.accounts, move |a| a.authenticate(&secret))
                .await?
            {
                Auth::Valid { customer, .. } if customer.status == CustomerStatus::Suspended => {
                    CachedAuth::Suspended
                }
                Auth::Valid { customer, key } => CachedAuth::Valid(Principal {
                    id: key.id,
                    customer_id: Some(customer.id),
                    tier: customer.tier,
                }),
                Auth::Revoked { key } => CachedAuth::Revoked(key.prefix),
                Auth::Unknown => CachedAuth::Unknown,
            };
            state.key_cache.insert(hash, (version, auth.clone()));
            auth
        }
    };
    match cached {
        CachedAuth::Valid(p) => Ok(p),
        CachedAuth::Revoked(prefix) => Err(ApiError::RevokedKey { prefix }),
        CachedAuth::Suspended => Err(ApiError::Suspended),
        CachedAuth::Unknown => Err(ApiError::InvalidKey("unknown API key".into())),
    }
}

fn limit_headers(res: &mut actix_web::http::header::HeaderMap, minute: &Window, day: &Window) {
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.insert(HeaderName::from_static(name), v);
        }
    };
    put("ratelimit-limit", minute.limit.to_string());
    put("ratelimit-remaining", minute.remaining.to_string());
    put("ratelimit-reset", minute.reset_secs.to_string());
    put("ratelimit-policy", format!("{};w=60, {};w=86400", minute.limit, day.limit));
    put("x-daily-quota-remaining", day.remaining.to_string());
}

/// Authenticates, checks the tier may call this endpoint and is within its limits.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let state =
        req.app_data::<web::Data<AppState>>().cloned().ok_or_else(|| ApiError::internal("no state"))?;
    let group = group_of(req.path());
    let principal = authenticate(&state, &req).await?;
    let tier =
        state.tiers.get(&principal.tier).ok_or_else(|| ApiError::internal("customer on an unknown tier"))?;
    if !tier.allows(group) {
        let upgrade = state.tiers.upgrade_from(&tier.id, Some(group));
        let hint = match (upgrade, principal.customer_id.is_none()) {
            (_, true) => "; call with an API key (Authorization: Bearer cc_live_...)".to_string(),
            (Some(u), false) => format!("; the {} tier can", u.name),
            (None, false) => String::new(),
        };
        crate::growth::routes::note_forbidden(&state, principal.customer_id.as_deref(), group);
        return Err(ApiError::Forbidden {
            message: format!("the {} tier cannot call {} endpoints{hint}", tier.name, group.label()),
        }
        .into());
    }
    // Per-caller concurrency before the limiter, so a refused request costs no quota.
    let Some(_slot) = state.caller_slots.acquire(principal.limit_id()) else {
        return Err(ApiError::TooManyInFlight { limit: state.caller_slots.limit() }.into());
    };
    // Inline, not a message to an actor: the check is a short in-memory operation (a
    // governor bucket, a daily count; a sled read the first time a caller is seen today).
    let key = principal.customer_id.as_ref().map(|_| principal.id.as_str());
    let decision =
        state.limits.lock().check(principal.limit_id(), key, &tier.id).map_err(ApiError::internal)?;
    let (minute, day) = match decision {
        Decision::Allowed { minute, day } => (minute, day),
        Decision::Limited { kind, retry_after_secs, minute, day } => {
            crate::growth::routes::note_limited(&state, principal.customer_id.as_deref());
            let upgrade = state.tiers.upgrade_from(&tier.id, None);
            state
                .metrics
                .rate_limited(&tier.id, if kind == LimitKind::Daily { "daily" } else { "per_minute" });
            let what = match kind {
                LimitKind::PerMinute => {
                    format!("{} requests per minute (burst {})", tier.per_minute, tier.burst)
                }
                LimitKind::Daily => format!("{} requests per day", tier.daily),
            };
            let lift = match upgrade {
                Some(u) if kind == LimitKind::PerMinute => {
                    format!(" The {} tier allows {} per minute.", u.name, u.per_minute)
                }
                Some(u) => format!(" The {} tier allows {} per day.", u.name, u.daily),
                None => String::new(),
            };
            let err = ApiError::RateLimited {
                message: format!(
                    "The {} tier allows {what}; retry in {retry_after_secs} s.{lift}",
                    tier.name
                ),
                limit: kind,
                tier: tier.id.clone(),
                upgrade: upgrade.map(|u| u.id.clone()),
                retry_after: retry_after_secs,
            };
            let mut res = actix_web::ResponseError::error_response(&err);
            limit_headers(res.headers_mut(), &minute, &day);
            return Err(actix_web::error::InternalError::from_response(err, res).into());
        }
    };
    let refund = {
        let (limits, principal, key) = (
            state.limits.clone(),
            principal.limit_id().to_string(),
            principal.customer_id.as_ref().map(|_| principal.id.clone()),
        );
        move || {
            if let Err(e) = limits.lock().refund(&principal, key.as_deref()) {
                tracing::error!(error = %e, "cannot refund a refused request's daily count");
            }
        }
    };
    let called = principal.customer_id.clone().map(|c| (c, req.method().to_string(), req.path().to_string()));
    req.extensions_mut().insert(principal);
    let mut day = day;
    let mut res = match next.call(req).await {
        Ok(res) => res,
        Err(e) => {
            // A refusal by the handler (bad parameter, unknown id, a body that does not
            // parse) spends no daily quota.
            let status = e.as_response_error().status_code();
            if status.is_client_error() {
                refund();
            }
            if let Some((customer, method, path)) = called {
                note_call(&state, customer, method, path, status.as_u16());
            }
            return Err(e);
        }
    };
    if let Some((customer, method, path)) = called {
        note_call(&state, customer, method, path, res.status().as_u16());
    }
    if res.status().is_client_error() {
        refund();
        day.remaining = (day.remaining + 1).min(day.limit);
    }
    limit_headers(res.headers_mut(), &minute, &day);
    if let Some(d) = state.deprecations.iter().find(|d| res.request().path().starts_with(&d.path_prefix)) {
        let h = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!("@{}", d.deprecated_at)) {
            h.insert(HeaderName::from_static("deprecation"), v);
        }
        if let Ok(v) = HeaderValue::from_str(&http_date(d.sunset_at)) {
            h.insert(HeaderName::from_static("sunset"), v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("<{}>; rel=\"deprecation\"", d.link)) {
            h.insert(actix_web::http::header::LINK, v);
        }
    }
    Ok(res)
}

/// A customer's call that failed, for the account page.
#[derive(Debug, Clone)]
pub struct RecentError {
    pub at: i64,
    pub method: String,
    pub path: String,
    pub status: u16,
}

/// Errors kept per customer for the account page (newest last).
pub const RECENT_ERRORS: usize = 20;

/// Records what the account page and the onboarding figures need from a customer's
/// call: its first success (once, in the store) and its recent errors (in memory).
fn note_call(state: &web::Data<AppState>, customer: String, method: String, path: String, status: u16) {
    let now = crate::web::session_now();
    if status >= 400 {
        let mut list = state.recent_errors.get(&customer).unwrap_or_default();
        list.push(RecentError { at: now, method, path, status });
        if list.len() > RECENT_ERRORS {
            list.remove(0);
        }
        state.recent_errors.insert(customer, list);
        return;
    }
    if !(200..300).contains(&status) {
        return;
    }
    let known = state.first_calls.lock().map(|mut seen| !seen.insert(customer.clone())).unwrap_or(true);
    if known {
        return;
    }
    let logins = state.logins.clone();
    actix_web::rt::spawn(async move {
        let done =
            actix_web::rt::task::spawn_blocking(move || logins.record_first_call(&customer, now)).await;
        match done {
            Ok(Ok(Some(login))) => {
                tracing::info!(customer = %login.customer_id, seconds = now - login.signed_up, "first API call")
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot record a first API call"),
            Err(e) => tracing::warn!(error = %e, "cannot record a first API call"),
        }
    });
}

/// RFC 7231 IMF-fixdate for a unix time.
pub fn http_date(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    httpdate::fmt_http_date(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_holds_at_most_its_share_of_slots_and_gets_them_back() {
        let slots = CallerSlots::new(2);
        let a1 = slots.acquire("cus_a").unwrap();
        let _a2 = slots.acquire("cus_a").unwrap();
        assert!(slots.acquire("cus_a").is_none(), "a third request of one caller waits its turn");
        let _b = slots.acquire("cus_b").expect("another caller is not affected");
        drop(a1);
        let _a3 = slots.acquire("cus_a").expect("a finished request frees its slot");
        drop((_a2, _a3, _b));
        assert_eq!(slots.callers(), 0, "idle callers are not kept");
    }
}
