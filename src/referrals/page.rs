//! The customer's side of referrals: the link `/r/{code}` (first-touch cookie, then the
//! sign-up page), the attribution at address confirmation, `/referrals` (the link,
//! referred customers by name, commissions by status, the ambassador tier) and a
//! partner's monthly statement `/referrals/statement?month=YYYY-MM`.

use std::collections::HashMap;

use actix_session::Session;
use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use citecast_actors::dates;

use super::{
    active_referrals, reconcile, tier_for, Commission, CommissionStatus, Month, ReferralError, Referrals,
    Source, COOKIE, WINDOW_SECS,
};
use crate::accounts::page::{message, signed_in_or_redirect, unavailable};
use crate::billing::format_money;
use crate::web::error::ApiError;
use crate::web::page::{private_html, see_other, Nav};
use crate::web::AppState;

/// Runs referral store work on the blocking pool.
pub async fn call<T, F>(f: F) -> Result<T, ReferralError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ReferralError> + Send + 'static,
{
    crate::engine::blocking(f, || ReferralError::Unavailable).await
}

/// The referral trees of this server, attached for the billing hook on the way.
pub fn open(state: &AppState) -> Result<Referrals, ReferralError> {
    super::attach(&state.engine.db, &state.billing);
    Referrals::open(&state.engine.db)
}

/// Display names of customers (a deleted one shows as such).
pub fn names(state: &AppState, ids: impl IntoIterator<Item = String>) -> HashMap<String, String> {
    ids.into_iter()
        .map(|id| {
            let name = match state.accounts.customer(&id) {
                Ok(Some(c)) => c.name,
                _ => "(former customer)".to_string(),
            };
            (id, name)
        })
        .collect()
}

/// A rate in basis points as a percentage: 1000 → "10 %", 1250 → "12.5 %".
pub fn percent(bp: u32) -> String {
    let s = format!("{}.{:02}", bp / 100, bp % 100);
    format!("{} %", s.trim_end_matches('0').trim_end_matches('.'))
}

/// Sums by currency, written out ("$4.90", "$1.00 + 3.00 EUR"; "$0.00" for none).
fn money_sum<'a>(items: impl Iterator<Item = (&'a str, i64)>) -> String {
    let mut by: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for (cur, amount) in items {
        *by.entry(cur.to_ascii_lowercase()).or_default() += amount;
    }
    if by.is_empty() {
        return format_money(0, crate::billing::CURRENCY);
    }
    by.iter().map(|(c, a)| format_money(*a, c)).collect::<Vec<_>>().join(" + ")
}

// ---------------------------------------------------------------- the link

/// `GET /r/{code}`: remembers the first referral link opened (a signed cookie, 30 days;
/// a later link inside the window does not replace it) and goes on to sign-up.
pub async fn link(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let code = path.into_inner();
    let owner = if super::valid_code(&code) {
        let (st, c) = (state.clone(), code.clone());
        match call(move || open(&st)?.owner_of(&c)).await {
            Ok(o) => o,
            Err(e) => return unavailable(Nav::of(&session, &state.site), "follow the referral link", e),
        }
    } else {
        None
    };
    if owner.is_none() {
        return message(
            StatusCode::NOT_FOUND,
            Nav::of(&session, &state.site),
            "This referral link is not valid",
            vec!["The link may have been copied incompletely. You can still sign up without it.".into()],
            ("/signup", "Sign up"),
        );
    }
    let now = dates::now_secs();
    let existing = req.cookie(COOKIE).and_then(|c| super::read_cookie(&state.site.secret, c.value()));
    let mut resp = see_other("/signup");
    if super::should_set_cookie(existing.as_ref(), now) {
        let cookie = Cookie::build(COOKIE, super::sign_cookie(&state.site.secret, &code, now))
            .path("/")
            .http_only(true)
            .secure(state.site.secure_cookies)
            .same_site(SameSite::Lax)
            .max_age(CookieDuration::seconds(WINDOW_SECS))
            .finish();
        resp.add_cookie(&cookie).map_err(ApiError::internal)?;
    }
    Ok(resp)
}

/// The hook in address confirmation: attributes the new customer to the owner of the
/// referral link in the request's cookie, when the cookie is ours, inside its window,
/// names a stored code and is not the customer's own. Never fails the confirmation.
pub async fn attribute(req: &HttpRequest, state: &web::Data<AppState>, customer: &crate::accounts::Customer) {
    // Every sign-up passes here: from now on the billing hook finds this server's trees.
    super::attach(&state.engine.db, &state.billing);
    let Some((code, clicked_at)) =
        req.cookie(COOKIE).and_then(|c| super::read_cookie(&state.site.secret, c.value()))
    else {
        return;
    };
    let now = dates::now_secs();
    if !super::within_window(clicked_at, now) {
        return;
    }
    let (st, customer) = (state.clone(), customer.clone());
    let done = call(move || {
        let refs = open(&st)?;
        let Some(referrer_id) = refs.owner_of(&code)? else { return Ok(false) };
        if referrer_id == customer.id {
            return Ok(false);
        }
        let referrer = st.accounts.customer(&referrer_id).map_err(|_| ReferralError::Unavailable)?;
        let Some(referrer) = referrer else { return Ok(false) };
        refs.attribute(&super::Attribution {
            referred_id: customer.id.clone(),
            referrer_id,
            code,
            clicked_at,
            at: now,
            referred_email: customer.email.clone(),
            referrer_email: referrer.email,
        })
    })
    .await;
    if let Err(e) = done {
        tracing::error!(error = %e, "referral not attributed");
    }
}

// ---------------------------------------------------------------- /referrals

struct CommissionRow {
    date: String,
    customer: String,
    amount: String,
    status: String,
    reasons: String,
}

#[derive(Template)]
#[template(path = "site/referrals.html")]
struct OverviewPage {
    nav: Nav,
    link: String,
    tier: String,
    rate: String,
    active: usize,
    next_tier: Option<String>,
    partner: Option<String>,
    referred: Vec<String>,
    held: String,
    approved: String,
    paid: String,
    clawed_back: String,
    rows: Vec<CommissionRow>,
}

fn rows(list: &[Commission], names: &HashMap<String, String>) -> Vec<CommissionRow> {
    list.iter()
        .rev()
        .map(|c| CommissionRow {
            date: dates::format(dates::day_of_secs(c.earned_at)),
            customer: names.get(&c.referred_id).cloned().unwrap_or_default(),
            amount: format_money(c.amount_minor, &c.currency),
            status: c.status.label().to_string(),
            reasons: c.reasons.join("; "),
        })
        .collect()
}

fn total(list: &[Commission], status: CommissionStatus) -> String {
    money_sum(list.iter().filter(|c| c.status == status).map(|c| (c.currency.as_str(), c.amount_minor)))
}

/// `GET /referrals`: the signed-in customer's link, referrals, commissions and tier.
pub async fn overview(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    let (st, id) = (state.clone(), login.customer_id.clone());
    let loaded = call(move || {
        let refs = open(&st)?;
        let code = refs.code_for(&id)?;
        let referred = refs.referred_by(&id)?;
        let ids: Vec<String> = referred.iter().map(|a| a.referred_id.clone()).collect();
        reconcile(&refs, &st.billing, Some(&ids))?;
        let active = active_referrals(&refs, &st.billing, &id)?;
        let commissions = refs.commissions_of(&id)?;
        let partner = refs.partner(&id)?;
        let names = names(&st, ids.iter().cloned());
        Ok((code, ids, active, commissions, partner, names))
    })
    .await;
    let nav = Nav::of(&session, &state.site);
    let (code, ids, active, commissions, partner, names) = match loaded {
        Ok(v) => v,
        Err(e) => return unavailable(nav, "load your referrals", e),
    };
    let tier = tier_for(active);
    let page = OverviewPage {
        nav,
        link: format!("{}/r/{code}", state.site.base_url),
        tier: tier.label().to_string(),
        rate: percent(tier.rate_bp()),
        active,
        next_tier: tier.next().map(|(t, n)| {
            format!(
                "{} more active referrals make you {} ({} commission).",
                n - active,
                t.label(),
                percent(t.rate_bp())
            )
        }),
        partner: partner.map(|p| percent(p.rate_bp)),
        referred: ids.iter().map(|i| names.get(i).cloned().unwrap_or_default()).collect(),
        held: total(&commissions, CommissionStatus::Held),
        approved: total(&commissions, CommissionStatus::Approved),
        paid: total(&commissions, CommissionStatus::Paid),
        clawed_back: total(&commissions, CommissionStatus::ClawedBack),
        rows: rows(&commissions, &names),
    };
    private_html(StatusCode::OK, page.render())
}

// ---------------------------------------------------------------- the partner's statement

#[derive(Template)]
#[template(path = "site/referrals_statement.html")]
struct StatementPage {
    nav: Nav,
    month: String,
    rate: String,
    rows: Vec<StatementRow>,
    invoiced: String,
    share: String,
}

struct StatementRow {
    date: String,
    customer: String,
    invoice: String,
    total: String,
    share: String,
    status: String,
}

#[derive(serde::Deserialize)]
pub struct MonthQuery {
    #[serde(default)]
    month: String,
}

/// `GET /referrals/statement?month=YYYY-MM` (this month by default): a partner's
/// referred customers' paid invoices that month and the revenue share of each.
pub async fn statement(
    state: web::Data<AppState>,
    session: Session,
    query: Option<web::Query<MonthQuery>>,
) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    let given = query.map(|q| q.month.clone()).unwrap_or_default();
    let month = if given.is_empty() { Ok(Month::of_secs(dates::now_secs())) } else { Month::parse(&given) };
    let month = match month {
        Ok(m) => m,
        Err(e) => {
            return message(
                StatusCode::BAD_REQUEST,
                Nav::of(&session, &state.site),
                "Which month?",
                vec![e.to_string()],
                ("/referrals/statement", "This month's statement"),
            )
        }
    };
    let (st, id) = (state.clone(), login.customer_id.clone());
    let loaded = call(move || {
        let refs = open(&st)?;
        let Some(partner) = refs.partner(&id)? else { return Ok(None) };
        let ids: Vec<String> = refs.referred_by(&id)?.into_iter().map(|a| a.referred_id).collect();
        reconcile(&refs, &st.billing, Some(&ids))?;
        let list: Vec<Commission> = refs
            .commissions_of(&id)?
            .into_iter()
            .filter(|c| c.source == Source::Partner && month.contains(c.earned_at))
            .collect();
        let names = names(&st, ids);
        Ok(Some((partner, list, names)))
    })
    .await;
    let nav = Nav::of(&session, &state.site);
    let (partner, list, names) = match loaded {
        Ok(Some(v)) => v,
        Ok(None) => {
            return message(
                StatusCode::FORBIDDEN,
                nav,
                "Statements are for partners",
                vec!["Your account is not a partner account. Your referral commissions are on the referrals page; write to us if you would like to become a partner.".into()],
                ("/referrals", "Your referrals"),
            )
        }
        Err(e) => return unavailable(nav, "load your statement", e),
    };
    let owed =
        |c: &&Commission| !matches!(c.status, CommissionStatus::Rejected | CommissionStatus::ClawedBack);
    let page = StatementPage {
        nav,
        month: month.to_string(),
        rate: percent(partner.rate_bp),
        invoiced: money_sum(list.iter().filter(owed).map(|c| (c.currency.as_str(), c.invoice_total_minor))),
        share: money_sum(list.iter().filter(owed).map(|c| (c.currency.as_str(), c.amount_minor))),
        rows: list
            .iter()
            .map(|c| StatementRow {
                date: dates::format(dates::day_of_secs(c.earned_at)),
                customer: names.get(&c.referred_id).cloned().unwrap_or_default(),
                invoice: c.invoice_id.clone(),
                total: format_money(c.invoice_total_minor, &c.currency),
                share: format_money(c.amount_minor, &c.currency),
                status: c.status.label().to_string(),
            })
            .collect(),
    };
    private_html(StatusCode::OK, page.render())
}
