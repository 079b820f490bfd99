//! The operator's side: `/admin/referrals` (held commissions, partners; readable from an
//! operator's browser session), approving or rejecting a held commission, the monthly
//! payout report and marking it paid, and making a customer a partner. Every change
//! needs the admin token in a header and is audited.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use bytes::Bytes;
use citecast_actors::dates;
use serde::Deserialize;
use serde_json::json;

use super::page::{call, names, open, percent};
use super::{
    payouts as payout_lines, reconcile, Commission, CommissionStatus, EntryKind, LedgerEntry, Month, Partner,
    ReferralError,
};
use crate::billing::format_money;
use crate::web::auth::{actor_of, audit, Admin};
use crate::web::error::ApiError;
use crate::web::page::{private_html, Nav};
use crate::web::AppState;

fn wants_html(req: &HttpRequest) -> bool {
    req.headers().get("accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

struct HeldRow {
    id: String,
    date: String,
    referrer: String,
    referred: String,
    invoice: String,
    amount: String,
    reasons: String,
}

#[derive(Template)]
#[template(path = "site/referrals_admin.html")]
struct QueuePage {
    nav: Nav,
    held: Vec<HeldRow>,
    partners: Vec<(String, String, String)>,
    month: String,
}

/// `GET /admin/referrals`: commissions held for review and the partners.
pub async fn queue(_: Admin, state: web::Data<AppState>, session: Session) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let (held, partners, names) = call(move || {
        let refs = open(&st)?;
        reconcile(&refs, &st.billing, None)?;
        let held = refs.held()?;
        let partners = refs.partners()?;
        let ids = held
            .iter()
            .flat_map(|c| [c.referrer_id.clone(), c.referred_id.clone()])
            .chain(partners.iter().map(|p| p.customer_id.clone()));
        let names = names(&st, ids);
        Ok((held, partners, names))
    })
    .await?;
    let name = |id: &str| names.get(id).cloned().unwrap_or_default();
    let page = QueuePage {
        nav: Nav::of(&session, &state.site),
        held: held
            .iter()
            .map(|c| HeldRow {
                id: c.id.clone(),
                date: dates::format(dates::day_of_secs(c.earned_at)),
                referrer: name(&c.referrer_id),
                referred: name(&c.referred_id),
                invoice: c.invoice_id.clone(),
                amount: format_money(c.amount_minor, &c.currency),
                reasons: c.reasons.join("; "),
            })
            .collect(),
        partners: partners
            .iter()
            .map(|p| (name(&p.customer_id), p.customer_id.clone(), percent(p.rate_bp)))
            .collect(),
        month: Month::of_secs(dates::now_secs()).to_string(),
    };
    private_html(StatusCode::OK, page.render())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Reason {
    #[serde(default)]
    reason: String,
}

fn parse_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ReferralError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ReferralError::Invalid(format!("the body is not the expected JSON: {e}")))
}

/// `POST /admin/referrals/{id}/approve` and `/reject` `{"reason"}` (optional): decides a
/// held commission.
pub async fn decide(
    _: Admin,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let (id, action) = path.into_inner();
    let approve = match action.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(ReferralError::NotFound(format!("action '{action}' (approve or reject)")).into()),
    };
    let r: Reason = parse_body(&body)?;
    if r.reason.chars().count() > 500 {
        return Err(ReferralError::Invalid("the reason must be at most 500 characters".into()).into());
    }
    let (st, by, cid) = (state.clone(), actor_of(&req), id.clone());
    let now = dates::now_secs();
    let (before, after) = call(move || {
        let refs = open(&st)?;
        let before =
            refs.commission(&cid)?.ok_or_else(|| ReferralError::NotFound(format!("commission '{cid}'")))?;
        let (after, _) =
            refs.update_commission(&cid, |c| decide_one(c, approve, &r.reason, &by, now).map(Some))?;
        Ok((before, after))
    })
    .await?;
    let verb = if approve { "referral.approve" } else { "referral.reject" };
    audit(&state, &req, verb, id, Some(&json!(before)), &json!(after)).await;
    Ok(HttpResponse::Ok().json(json!({ "commission": after })))
}

/// The operator's decision on held commission `c`: approved it is owed, rejected it is
/// taken out of the ledger. Anything not held is refused.
pub fn decide_one(
    c: &mut Commission,
    approve: bool,
    reason: &str,
    by: &str,
    now: i64,
) -> Result<LedgerEntry, ReferralError> {
    if c.status != CommissionStatus::Held {
        return Err(ReferralError::Refused(format!(
            "commission {} is {}, not held for review; only held commissions are approved or rejected",
            c.id,
            c.status.label()
        )));
    }
    c.decided_at = Some(now);
    c.decided_by = Some(by.to_string());
    if !reason.is_empty() {
        c.reasons.push(format!("operator: {reason}"));
    }
    let (kind, amount) = if approve {
        c.status = CommissionStatus::Approved;
        (EntryKind::Approved, 0)
    } else {
        c.status = CommissionStatus::Rejected;
        (EntryKind::Rejected, -c.amount_minor)
    };
    Ok(LedgerEntry::of(c, now, kind, amount, reason))
}

#[derive(Deserialize)]
pub struct MonthQuery {
    #[serde(default)]
    month: String,
}

#[derive(Template)]
#[template(path = "site/referrals_payouts.html")]
struct PayoutsPage {
    nav: Nav,
    month: String,
    rows: Vec<(String, String, usize, String, String)>,
    total: String,
}

/// The month's payout report as JSON (also what the CLI prints).
fn payout_report(state: &AppState, month: Month) -> Result<serde_json::Value, ReferralError> {
    let refs = open(state)?;
    reconcile(&refs, &state.billing, None)?;
    let lines = payout_lines(&refs.commissions()?, month);
    let names = names(state, lines.iter().map(|l| l.referrer_id.clone()));
    let total: i64 = lines.iter().map(|l| l.amount_minor).sum();
    let referrers: Vec<_> = lines
        .iter()
        .map(|l| {
            json!({
                "referrer_id": l.referrer_id,
                "name": names.get(&l.referrer_id),
                "currency": l.currency,
                "commissions": l.commissions,
                "amount_minor": l.amount_minor,
                "paid_minor": l.paid_minor,
                "amount": format_money(l.amount_minor, &l.currency),
            })
        })
        .collect();
    Ok(json!({ "month": month.to_string(), "referrers": referrers, "total_minor": total }))
}

/// `GET /admin/referrals/payouts?month=YYYY-MM`: approved commissions per referrer for
/// the month (JSON; a page for a browser).
pub async fn payouts(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    query: Option<web::Query<MonthQuery>>,
) -> Result<HttpResponse, ApiError> {
    let given = query.map(|q| q.month.clone()).unwrap_or_default();
    if given.is_empty() {
        return Err(ReferralError::Invalid("name the month: ?month=YYYY-MM".into()).into());
    }
    let month = Month::parse(&given)?;
    let st = state.clone();
    let report = call(move || payout_report(&st, month)).await?;
    if !wants_html(&req) {
        return Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(report));
    }
    let rows = report["referrers"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|l| {
                    let cur = l["currency"].as_str().unwrap_or("usd");
                    (
                        l["name"].as_str().unwrap_or_default().to_string(),
                        l["referrer_id"].as_str().unwrap_or_default().to_string(),
                        l["commissions"].as_u64().unwrap_or(0) as usize,
                        format_money(l["amount_minor"].as_i64().unwrap_or(0), cur),
                        format_money(l["paid_minor"].as_i64().unwrap_or(0), cur),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let page = PayoutsPage {
        nav: Nav::of(&session, &state.site),
        month: month.to_string(),
        rows,
        total: format_money(report["total_minor"].as_i64().unwrap_or(0), crate::billing::CURRENCY),
    };
    private_html(StatusCode::OK, page.render())
}

/// `POST /admin/referrals/payouts/{month}/paid`: the month's approved commissions were
/// paid out; answers how many and how much.
pub async fn mark_paid(
    _: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let month = Month::parse(&path.into_inner())?;
    let (st, by) = (state.clone(), actor_of(&req));
    let now = dates::now_secs();
    let (ids, amount) = call(move || {
        let refs = open(&st)?;
        reconcile(&refs, &st.billing, None)?;
        let due: Vec<Commission> = refs
            .commissions()?
            .into_iter()
            .filter(|c| c.status == CommissionStatus::Approved && month.contains(c.earned_at))
            .collect();
        let (mut ids, mut amount) = (Vec::new(), 0i64);
        for c in due {
            let (after, changed) = refs.update_commission(&c.id, |c| {
                if c.status != CommissionStatus::Approved {
                    return Ok(None);
                }
                c.status = CommissionStatus::Paid;
                c.paid_out_at = Some(now);
                Ok(Some(LedgerEntry::of(c, now, EntryKind::PaidOut, 0, &format!("payout {month} by {by}"))))
            })?;
            if changed {
                amount += after.amount_minor;
                ids.push(after.id);
            }
        }
        Ok((ids, amount))
    })
    .await?;
    let after = json!({ "month": month.to_string(), "paid": ids, "amount_minor": amount });
    audit(&state, &req, "referral.payout_paid", month.to_string(), None, &after).await;
    Ok(HttpResponse::Ok().json(after))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerBody {
    customer_id: String,
    /// A percentage: 20, "12.5".
    rate_percent: serde_json::Value,
}

/// `POST /admin/referrals/partners` `{"customer_id","rate_percent"}`: makes a customer a
/// partner with a revenue-share rate (or changes the rate).
pub async fn set_partner(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let b: PartnerBody = serde_json::from_slice(&body).map_err(|e| {
        ReferralError::Invalid(format!("the body must be {{\"customer_id\", \"rate_percent\"}}: {e}"))
    })?;
    let rate = match &b.rate_percent {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        _ => String::new(),
    };
    let rate_bp = super::parse_rate_percent(&rate)?;
    let (st, by) = (state.clone(), actor_of(&req));
    let now = dates::now_secs();
    let id = b.customer_id.clone();
    let (before, after) = call(move || {
        let exists = st.accounts.customer(&id).map_err(|_| ReferralError::Unavailable)?;
        if exists.is_none() {
            return Err(ReferralError::NotFound(format!(
                "customer '{}'",
                id.chars().take(80).collect::<String>()
            )));
        }
        let refs = open(&st)?;
        let since = refs.partner(&id)?.map(|p| p.since).unwrap_or(now);
        let p = Partner { customer_id: id, rate_bp, since, by };
        let before = refs.put_partner(&p)?;
        Ok((before, p))
    })
    .await?;
    audit(
        &state,
        &req,
        "referral.partner",
        after.customer_id.clone(),
        before.as_ref().map(|b| json!(b)).as_ref(),
        &json!(after),
    )
    .await;
    Ok(HttpResponse::Ok().json(json!({ "partner": after })))
}
