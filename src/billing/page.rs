//! The customer's billing pages: `/billing` (plan, period, next invoice, invoices, and
//! the forms to change plan, pause, resume and cancel: as easy as signing up, no
//! retention wall) and `/billing/invoices/{id}` (printable). Every change goes through
//! [`super::Billing`], then the API tier follows the plan at once ([`super::sync_tier`])
//! and the change's notices are mailed.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use bytes::Bytes;
use citecast_actors::dates;

use super::subscription::Status;
use super::{format_money, Billing, BillingError, Change, Interval, Invoice, Plan, Prices, Subscription};
use crate::accounts::page::{message, refused_form, signed_in_or_redirect, unavailable};
use crate::web::error::ApiError;
use crate::web::page::{private_html, see_other, Fields, Nav};
use crate::web::session as websession;
use crate::web::AppState;

/// Session entry: what the last billing form did, shown once on `/billing`.
const FLASH: &str = "billing_flash";

/// Runs billing work on the blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, BillingError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, BillingError> + Send + 'static,
{
    crate::engine::blocking(f, || BillingError::Unavailable).await
}

/// Makes the API tier follow `change` and mails its notices; a failure to mail is
/// logged (the change stands, and the page shows it).
async fn follow(state: &AppState, change: &Change) -> Result<(), BillingError> {
    let accounts = state.accounts.clone();
    let c = change.clone();
    blocking(move || {
        super::sync_tier(accounts.as_ref(), &c).map_err(|e| {
            tracing::warn!(error = %e, "cannot set the customer's tier");
            BillingError::Unavailable
        })
    })
    .await?;
    super::job::mail_notices(
        state.mailer.clone(),
        state.accounts.clone(),
        state.billing.clone(),
        &state.site.base_url,
        &change.notices,
    )
    .await;
    Ok(())
}

/// Starts the plan chosen before sign-up (`pro:annual`), or the free plan; answers a
/// sentence for the welcome page.
pub async fn start_plan(
    state: &AppState,
    customer_id: &str,
    chosen: Option<&str>,
) -> Result<String, BillingError> {
    let prices = Prices::for_customer(&state.engine.db, &state.tiers, customer_id)?;
    let plan =
        chosen.and_then(parse_plan).unwrap_or_else(|| Plan::new(prices.free_tier(), Interval::Monthly));
    let (billing, id, p, pr) = (state.billing.clone(), customer_id.to_string(), plan.clone(), prices.clone());
    let change = blocking(move || {
        billing.start(&id, &p, &pr, dates::today(), dates::now_secs(), &format!("customer:{id}"))
    })
    .await?;
    follow(state, &change).await?;
    Ok(match change.subscription.trial_end {
        Some(end) => format!(
            "Your {} plan is on a free trial until {}; pay its first invoice by then on the billing page.",
            prices.describe(&plan),
            dates::format(end)
        ),
        None => format!("You are on the {} plan.", prices.name(&plan.tier)),
    })
}

/// `pro:annual` or `pro` (monthly).
fn parse_plan(s: &str) -> Option<Plan> {
    let (tier, interval) = s.split_once(':').unwrap_or((s, "monthly"));
    let interval = match interval {
        "monthly" => Interval::Monthly,
        "annual" => Interval::Annual,
        _ => return None,
    };
    (!tier.is_empty() && tier.len() <= 64).then(|| Plan::new(tier, interval))
}

/// The customer's billing records, for the account export.
pub fn export(billing: &Billing, customer_id: &str) -> serde_json::Value {
    let sub = billing.subscription(customer_id).ok().flatten();
    let invoices = billing.invoices(customer_id).unwrap_or_default();
    let ledger = billing.ledger(customer_id).unwrap_or_default();
    let audit = billing.audit(customer_id).unwrap_or_default();
    serde_json::json!({ "subscription": sub, "invoices": invoices, "ledger": ledger, "history": audit })
}

fn status_words(s: &Subscription) -> String {
    match s.status {
        Status::Trialing => {
            format!("on a free trial until {}", s.trial_end.map(dates::format).unwrap_or_default())
        }
        Status::Active if s.cancel_at_period_end => {
            format!("active, ending on {}", dates::format(s.period.end))
        }
        Status::Active => "active".into(),
        Status::PastDue => "past due: an invoice is unpaid".into(),
        Status::Paused => "paused: the API serves the free plan's limits until you resume".into(),
        Status::Canceled => "canceled".into(),
    }
}

struct PlanChoice {
    value: String,
    label: String,
    current: bool,
}

struct InvoiceRow {
    id: String,
    issued: String,
    period: String,
    total: String,
    status: String,
}

struct LineRow {
    description: String,
    amount: String,
}

#[derive(Template)]
#[template(path = "site/billing.html")]
struct BillingPage {
    nav: Nav,
    flash: Option<String>,
    error: Option<String>,
    plan: String,
    status: String,
    period: String,
    scheduled: Option<String>,
    can_pause: bool,
    can_resume: bool,
    can_cancel: bool,
    cancel_pending: bool,
    upcoming_date: String,
    upcoming: Vec<LineRow>,
    upcoming_total: String,
    balance: Option<String>,
    choices: Vec<PlanChoice>,
    invoices: Vec<InvoiceRow>,
    outstanding: Option<String>,
}

async fn billing_page(
    state: &AppState,
    session: &Session,
    customer_id: &str,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let prices = match Prices::for_customer(&state.engine.db, &state.tiers, customer_id) {
        Ok(p) => p,
        Err(e) => return unavailable(Nav::of(session, &state.site), "load your prices", e),
    };
    let (billing, id, pr) = (state.billing.clone(), customer_id.to_string(), prices.clone());
    let loaded = blocking(move || {
        Ok((
            billing.subscription(&id)?,
            billing.invoices(&id)?,
            billing.upcoming(&id, &pr)?,
            billing.balance(&id)?,
        ))
    })
    .await;
    let nav = Nav::of(session, &state.site);
    let (sub, invoices, upcoming, balance) = match loaded {
        Ok(v) => v,
        Err(e) => return unavailable(nav, "load your billing", e),
    };
    let flash = session.remove(FLASH).and_then(|v| serde_json::from_str::<String>(&v).ok());
    let live = sub.as_ref().filter(|s| s.status != Status::Canceled);
    let current = live.map(|s| s.plan.clone());
    let mut choices = Vec::new();
    for t in &state.tiers.tiers {
        for interval in [Interval::Monthly, Interval::Annual] {
            let Some(price) = prices.price(&t.id, interval) else { continue };
            if price == 0 && interval == Interval::Annual {
                continue;
            }
            let plan = Plan::new(&t.id, interval);
            let per = if interval == Interval::Monthly { "month" } else { "year" };
            choices.push(PlanChoice {
                value: format!("{}:{}", t.id, interval.label()),
                label: if price == 0 {
                    format!("{}: free", t.name)
                } else {
                    format!("{}: {} a {per}", t.name, format_money(price, "usd"))
                },
                current: current.as_ref() == Some(&plan) || (current.is_none() && price == 0),
            });
        }
    }
    let open: i64 =
        invoices.iter().filter(|i| i.status == super::InvoiceStatus::Open).map(|i| i.total_minor).sum();
    let page = BillingPage {
        nav,
        flash,
        error,
        plan: live
            .map(|s| prices.describe(&s.plan))
            .unwrap_or_else(|| format!("{} (no paid plan)", prices.name(prices.free_tier()))),
        status: live.map(status_words).unwrap_or_else(|| "active".into()),
        period: live
            .map(|s| format!("{} to {}", dates::format(s.period.start), dates::format(s.period.end)))
            .unwrap_or_default(),
        scheduled: live.and_then(|s| s.scheduled.as_ref()).map(|p| {
            format!(
                "Changes to {} on {}.",
                prices.describe(p),
                dates::format(live.map(|s| s.period.end).unwrap_or_default())
            )
        }),
        can_pause: live
            .is_some_and(|s| matches!(s.status, Status::Trialing | Status::Active | Status::PastDue)),
        can_resume: live.is_some_and(|s| s.status == Status::Paused),
        can_cancel: live.is_some(),
        cancel_pending: live.is_some_and(|s| s.cancel_at_period_end),
        upcoming_date: upcoming.as_ref().map(|u| dates::format(u.date)).unwrap_or_default(),
        upcoming_total: upcoming
            .as_ref()
            .map(|u| format_money(u.total_minor, &u.currency))
            .unwrap_or_default(),
        upcoming: upcoming
            .map(|u| {
                u.lines
                    .into_iter()
                    .map(|l| LineRow {
                        description: l.description,
                        amount: format_money(l.amount_minor, &u.currency),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        balance: (balance > 0).then(|| format_money(balance, "usd")),
        choices,
        outstanding: (open > 0).then(|| format_money(open, "usd")),
        invoices: invoices
            .iter()
            .map(|i| InvoiceRow {
                id: i.id.clone(),
                issued: dates::format(i.issued),
                period: super::span(i.period),
                total: format_money(i.total_minor, &i.currency),
                status: i.status.label().to_string(),
            })
            .collect(),
    };
    private_html(status, page.render())
}

pub async fn billing(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    billing_page(&state, &session, &login.customer_id, StatusCode::OK, None).await
}

#[derive(Template)]
#[template(path = "site/invoice.html")]
struct InvoicePage {
    nav: Nav,
    id: String,
    customer: String,
    email: String,
    issued: String,
    due: String,
    period: String,
    status: String,
    lines: Vec<(u32, String, String)>,
    total: String,
    paid: Option<String>,
}

pub async fn invoice(
    path: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    let id = path.into_inner();
    let (billing, accounts, inv_id, owner) =
        (state.billing.clone(), state.accounts.clone(), id.clone(), login.customer_id.clone());
    let loaded = blocking(move || {
        let inv = billing.invoice(&inv_id)?.filter(|i| i.customer_id == owner);
        let customer = accounts.customer(&owner).map_err(|_| BillingError::Unavailable)?;
        Ok((inv, customer))
    })
    .await;
    let nav = Nav::of(&session, &state.site);
    let (inv, customer): (Invoice, _) = match loaded {
        Ok((Some(i), c)) => (i, c),
        // Another customer's invoice is answered like an unknown one.
        Ok((None, _)) => {
            return message(
                StatusCode::NOT_FOUND,
                nav,
                "Invoice not found",
                vec![format!("You have no invoice '{}'.", id.chars().take(40).collect::<String>())],
                ("/billing", "Your billing"),
            )
        }
        Err(e) => return unavailable(nav, "load the invoice", e),
    };
    let page = InvoicePage {
        nav,
        id: inv.id.clone(),
        customer: customer.as_ref().map(|c| c.name.clone()).unwrap_or_default(),
        email: customer.map(|c| c.email).unwrap_or_default(),
        issued: dates::format(inv.issued),
        due: dates::format(inv.due),
        period: super::span(inv.period),
        status: inv.status.label().to_string(),
        lines: inv
            .lines
            .iter()
            .map(|l| (l.number, l.description.clone(), format_money(l.amount_minor, &inv.currency)))
            .collect(),
        total: format_money(inv.total_minor, &inv.currency),
        paid: inv.paid_at.map(|t| dates::format(dates::day_of_secs(t))),
    };
    private_html(StatusCode::OK, page.render())
}

/// `POST /billing/{action}`: `plan` (upgrade, downgrade, monthly/annual switch, or the
/// first plan of a customer without one), `pause`, `resume`, `cancel` (`when=period_end`
/// or `now`) and `keep` (undo a cancellation at period end).
pub async fn act(
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
    let action = path.into_inner();
    let id = login.customer_id.clone();
    let prices = match Prices::for_customer(&state.engine.db, &state.tiers, &id) {
        Ok(p) => p,
        Err(e) => return unavailable(Nav::of(&session, &state.site), "load your prices", e),
    };
    let billing = state.billing.clone();
    let actor = format!("customer:{id}");
    let (today, now) = (dates::today(), dates::now_secs());
    let plan = parse_plan(f.get("plan"));
    let when = f.get("when").to_string();
    let result: Result<(Change, String), BillingError> = match action.as_str() {
        "plan" => {
            let Some(plan) = plan else {
                return billing_page(
                    &state,
                    &session,
                    &id,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some("Choose one of the plans listed.".into()),
                )
                .await;
            };
            let described = prices.describe(&plan);
            blocking(move || {
                let live = billing.subscription(&id)?.is_some_and(|s| s.status != Status::Canceled);
                let change = if live {
                    billing.change_plan(&id, &plan, &prices, today, now, &actor)?
                } else {
                    billing.start(&id, &plan, &prices, today, now, &actor)?
                };
                let said = if change.subscription.plan == plan {
                    match &change.invoice {
                        Some(inv) => format!(
                            "You are now on {described}. Invoice {} for {} covers the change.",
                            inv.id,
                            format_money(inv.total_minor, &inv.currency)
                        ),
                        None => format!("You are now on {described}."),
                    }
                } else if change.subscription.scheduled.as_ref() == Some(&plan) {
                    format!(
                        "{described} starts on {}, at the end of the period you paid for.",
                        dates::format(change.subscription.period.end)
                    )
                } else {
                    "The scheduled change is withdrawn; your plan stays as it is.".to_string()
                };
                Ok((change, said))
            })
            .await
        }
        "pause" => {
            blocking(move || {
                let c = billing.pause(&id, now, &actor)?;
                Ok((c, "Your subscription is paused. Resume any time.".into()))
            })
            .await
        }
        "resume" => {
            blocking(move || {
                let c = billing.resume(&id, &prices, today, now, &actor)?;
                Ok((c, "Welcome back: your subscription is active again.".into()))
            })
            .await
        }
        "cancel" => {
            let at_period_end = match when.as_str() {
                "period_end" => true,
                "now" => false,
                _ => {
                    return billing_page(
                        &state,
                        &session,
                        &login.customer_id,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        Some("Choose when to cancel: at the end of the period, or now.".into()),
                    )
                    .await
                }
            };
            blocking(move || {
                let c = billing.cancel(&id, at_period_end, now, &actor)?;
                let said = if c.subscription.status == Status::Canceled {
                    "Your subscription is canceled. Your account and keys stay, on the free plan.".to_string()
                } else {
                    format!(
                        "Your subscription ends on {}. You can keep it until then.",
                        dates::format(c.subscription.period.end)
                    )
                };
                Ok((c, said))
            })
            .await
        }
        "keep" => {
            blocking(move || {
                let c = billing.undo_cancel(&id, now, &actor)?;
                Ok((c, "Your subscription continues; nothing ends.".into()))
            })
            .await
        }
        _ => {
            return message(
                StatusCode::NOT_FOUND,
                Nav::of(&session, &state.site),
                "No such page",
                vec!["The billing page has forms to change plan, pause, resume and cancel.".into()],
                ("/billing", "Your billing"),
            )
        }
    };
    match result {
        Ok((change, said)) => {
            if let Err(e) = follow(&state, &change).await {
                return unavailable(Nav::of(&session, &state.site), "apply your new plan's limits", e);
            }
            let _ = session.insert(FLASH, said);
            Ok(see_other("/billing"))
        }
        Err(e) if crate::error::Coded::status(&e) < 500 => {
            let msg = crate::error::Coded::message(&e);
            billing_page(&state, &session, &login.customer_id, StatusCode::CONFLICT, Some(msg)).await
        }
        Err(e) => unavailable(Nav::of(&session, &state.site), "change your subscription", e),
    }
}
