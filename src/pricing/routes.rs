//! `GET /pricing` (with the running experiment's variant for visitors), `GET /sla`, the
//! sign-up hook that records the prices a new customer saw, and the operator's routes
//! of pricing experiments ([`super::admin`]).

use actix_session::Session;
use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{plan_view_priced, PlanView, PriceTable, PricingError, PricingStore};
use crate::web::error::ApiError;
use crate::web::page::{private_html, Nav};
use crate::web::{get_or_head, AppState, Site, SiteRoute};

pub fn site_routes() -> Vec<SiteRoute> {
    use super::admin;
    vec![
        SiteRoute::get("/pricing", || get_or_head().to(pricing)),
        SiteRoute::get("/sla", || get_or_head().to(sla)),
        SiteRoute::get("/admin/pricing/experiments", || get_or_head().to(admin::list)),
        SiteRoute::post("/admin/pricing/experiments", || web::post().to(admin::create)),
        SiteRoute::get("/admin/pricing/experiments/{id}", || get_or_head().to(admin::show)),
        SiteRoute::post("/admin/pricing/experiments/{id}/stop", || web::post().to(admin::stop)),
    ]
}

/// The visitor cookie: a random id and its MAC, so a visitor cannot pick a variant by
/// writing an id of their choosing. It says nothing about the person.
pub const COOKIE: &str = "citecast_pv";
/// Longer than any experiment's horizon can usefully be.
const COOKIE_DAYS: i64 = 400;

fn mac(secret: &[u8], visitor: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(b"pricing-visitor\0");
    m.update(visitor.as_bytes());
    m.finalize().into_bytes()[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// The visitor id in a cookie value, when its MAC is ours.
pub fn read_cookie(secret: &[u8], value: &str) -> Option<String> {
    let (id, given) = value.split_once('.')?;
    let ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric());
    let expected = mac(secret, id);
    (ok && given.len() == expected.len()
        && subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected.as_bytes()).into())
    .then(|| id.to_string())
}

fn cookie_for(site: &Site, visitor: &str) -> Cookie<'static> {
    Cookie::build(COOKIE, format!("{visitor}.{}", mac(&site.secret, visitor)))
        .path("/")
        .http_only(true)
        .secure(site.secure_cookies)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::days(COOKIE_DAYS))
        .finish()
}

fn visitor_of(req: &HttpRequest, site: &Site) -> Option<String> {
    req.cookie(COOKIE).and_then(|c| read_cookie(&site.secret, c.value()))
}

/// The prices this visitor was shown on `/pricing` (their variant of the running
/// experiment), for the sign-up page to name the same price; `None`: the table's.
pub async fn visitor_prices(
    req: &HttpRequest,
    state: &AppState,
) -> Option<crate::pricing::experiment::PriceTable> {
    let visitor = visitor_of(req, &state.site)?;
    let db = state.engine.db.clone();
    blocking(move || Ok(PricingStore::open(&db)?.running()?.map(|exp| exp.assign(&visitor).prices.clone())))
        .await
        .ok()
        .flatten()
}

/// Runs pricing store work on the blocking pool.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, PricingError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, PricingError> + Send + 'static,
{
    crate::engine::blocking(f, || PricingError::Unavailable).await
}

#[derive(Template)]
#[template(path = "site/pricing.html")]
struct PricingPage {
    nav: Nav,
    headline: Option<String>,
    /// Signed in with recorded prices: the page says these are theirs.
    own_prices: bool,
    plans: Vec<PlanView>,
    anonymous_daily: u64,
}

#[derive(Template)]
#[template(path = "site/sla.html")]
struct SlaPage {
    nav: Nav,
}

/// What one look at `/pricing` shows.
struct Shown {
    prices: Option<PriceTable>,
    headline: Option<String>,
    /// A variant was shown: the visitor keeps their cookie.
    cookie: bool,
}

/// `GET /pricing`: the tier table, or for a visitor while an experiment runs, their
/// variant (recorded as an exposure the first time). A signed-in customer sees the
/// prices they pay and is never counted.
pub async fn pricing(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let customer = crate::web::session::signed_in(&session).map(|(id, _)| id);
    let known = visitor_of(&req, &state.site);
    let visitor = known.clone().unwrap_or_else(|| crate::accounts::random_base62(22));
    let counted = req.method() != Method::HEAD;
    let (db, v, now) = (state.engine.db.clone(), visitor.clone(), citecast_actors::dates::now_secs());
    let shown = blocking(move || {
        let store = PricingStore::open(&db)?;
        if let Some(c) = customer {
            return Ok(Shown { prices: store.lock(&c)?.map(|l| l.prices), headline: None, cookie: false });
        }
        match store.running()? {
            Some(exp) => {
                let variant = exp.assign(&v);
                if counted {
                    store.record_view(&v, Some((&exp.id, &variant.id)), now)?;
                }
                Ok(Shown {
                    prices: Some(variant.prices.clone()),
                    headline: variant.headline.clone(),
                    cookie: true,
                })
            }
            None => {
                if counted && known.is_some() {
                    store.record_view(&v, None, now)?;
                }
                Ok(Shown { prices: None, headline: None, cookie: false })
            }
        }
    })
    .await;
    let shown = match shown {
        Ok(s) => s,
        Err(e) => {
            return crate::accounts::page::unavailable(Nav::of(&session, &state.site), "show the prices", e)
        }
    };
    let own_prices = !shown.cookie && shown.prices.is_some();
    let plans = state
        .tiers
        .tiers
        .iter()
        .map(|t| plan_view_priced(t, shown.prices.as_ref().and_then(|p| p.get(&t.id))))
        .collect();
    let page = PricingPage {
        nav: Nav::of(&session, &state.site),
        headline: shown.headline,
        own_prices,
        plans,
        anonymous_daily: state.tiers.anonymous.daily,
    };
    let mut res = private_html(StatusCode::OK, page.render())?;
    if shown.cookie {
        if let Ok(v) =
            actix_web::http::header::HeaderValue::from_str(&cookie_for(&state.site, &visitor).to_string())
        {
            res.headers_mut().append(actix_web::http::header::SET_COOKIE, v);
        }
    }
    Ok(res)
}

pub async fn sla(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, ApiError> {
    private_html(StatusCode::OK, SlaPage { nav: Nav::of(&session, &state.site) }.render())
}

/// The sign-up hook (`accounts::page::confirm`, once the customer exists): when this
/// browser's latest look at `/pricing` showed a variant, its prices become the
/// customer's and the sign-up counts for the variant. Never fails the sign-up; a store
/// failure is logged.
pub async fn record_signup(state: &AppState, req: &HttpRequest, customer_id: &str) {
    let Some(visitor) = visitor_of(req, &state.site) else { return };
    let (db, customer, now) =
        (state.engine.db.clone(), customer_id.to_string(), citecast_actors::dates::now_secs());
    let done = blocking(move || PricingStore::open(&db)?.record_signup(&visitor, &customer, now)).await;
    match done {
        Ok(Some(lock)) => {
            tracing::info!(customer = %customer_id, experiment = %lock.experiment, variant = %lock.variant, "sign-up under a pricing variant")
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(customer = %customer_id, error = %e, "pricing variant not recorded at sign-up")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visitor_cookie_is_signed() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let value = format!("abc123.{}", mac(secret, "abc123"));
        assert_eq!(read_cookie(secret, &value).as_deref(), Some("abc123"));
        let forged = format!("abc124.{}", mac(secret, "abc123"));
        assert_eq!(read_cookie(secret, &forged), None);
        assert_eq!(read_cookie(b"another secret", &value), None);
        for bad in ["", ".", "abc123", "abc123.", "a b.00", "<x>.00"] {
            assert_eq!(read_cookie(secret, bad), None, "{bad}");
        }
    }
}
