//! The `growth` job (daily): for every active customer, the triggers their last seven
//! days set off; each fired trigger is recorded and mailed at most once a month (with the
//! offer at the customer's own price and the way back); a customer now on a higher tier
//! than when a trigger fired is recorded as its conversion; old refusal days are dropped.

use std::sync::Arc;

use citecast_actors::dates::{self, Day};

use super::{GrowthError, GrowthStore, TriggerKind, Week};
use crate::accounts::tiers::Tiers;
use crate::accounts::{AccountStore, Customer, CustomerStatus};
use crate::ops::jobs::{fail, spec, Job, JobContext, JobResult};
use crate::outbound::mail::{Mail, Mailer};

pub fn jobs() -> Vec<Job> {
    vec![Job { spec: spec("growth", "daily 07:15", 600, None), run: |ctx| Box::pin(run(ctx)) }]
}

/// Refusal days kept (the triggers look back seven).
const KEEP_DAYS: Day = 35;

async fn run(ctx: JobContext) -> JobResult {
    let (mailer, base_url, tiers) = match &ctx.billing {
        Some(s) => (s.mailer.clone(), s.base_url.clone(), s.tiers.clone()),
        None => {
            // A scheduler built without the server's settings: mail goes to the outbox.
            let outbox = ctx.config.data_dir.join("outbox");
            let mailer = Mailer::new(None, "citecast <noreply@citecast.localhost>", &outbox).map_err(fail)?;
            (Arc::new(mailer), String::new(), Tiers::builtin())
        }
    };
    daily(&ctx.engine, &ctx.accounts, &tiers, mailer, &base_url, dates::today(), dates::now_secs()).await
}

/// `customer`'s last seven days: requests per day over all their keys (with today's
/// live count when given) and refusals per day and kind.
pub async fn load_week(
    engine: &citecast_actors::Engine,
    accounts: &Arc<dyn AccountStore>,
    live_today: Option<u64>,
    customer: &str,
    today: Day,
) -> Result<Week, GrowthError> {
    let from = today - super::WINDOW_DAYS + 1;
    let (accounts, db, id) = (accounts.clone(), engine.db.clone(), customer.to_string());
    let (keys, refusals) = actix_web::rt::task::spawn_blocking(move || {
        let keys = accounts.keys_of(&id).map_err(|_| GrowthError::Unavailable)?;
        Ok::<_, GrowthError>((keys, GrowthStore::open(&db)?.refusals(&id, from)?))
    })
    .await
    .map_err(|_| GrowthError::Unavailable)??;
    let mut week = Week { refusals, ..Week::default() };
    for key in keys {
        let msg = citecast_actors::actors::UsageBetween { principal: key.id.clone(), from, to: today };
        let days = engine.store.send(msg).await.map_err(|_| GrowthError::Unavailable)?.map_err(|e| {
            tracing::warn!(error = %e, "usage not readable for the growth triggers");
            GrowthError::Unavailable
        })?;
        for d in days {
            if let Some(day) = dates::parse(&d.day) {
                *week.usage.entry(day).or_default() += d.requests;
            }
        }
    }
    if let Some(n) = live_today {
        let e = week.usage.entry(today).or_default();
        *e = (*e).max(n);
    }
    Ok(week)
}

/// One day's run over every customer; the operations are the triggers fired plus the
/// mails sent and conversions recorded. A failed mail is logged and fails the run after
/// every customer is handled (the mail is not marked sent, so the next run tries again).
pub async fn daily(
    engine: &citecast_actors::Engine,
    accounts: &Arc<dyn AccountStore>,
    tiers: &Tiers,
    mailer: Arc<Mailer>,
    base_url: &str,
    today: Day,
    now: i64,
) -> JobResult {
    let (mut ops, mut failures) = (0u64, 0u64);
    let mut after: Option<String> = None;
    loop {
        let (a, from) = (accounts.clone(), after.clone());
        let page = actix_web::rt::task::spawn_blocking(move || a.customers(from.as_deref(), 200))
            .await
            .map_err(fail)?
            .map_err(fail)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for customer in page {
            if customer.status != CustomerStatus::Active {
                continue;
            }
            let Some(tier) = tiers.get(&customer.tier).cloned() else { continue };
            let week = match load_week(engine, accounts, None, &customer.id, today).await {
                Ok(w) => w,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(customer = %customer.id, error = %e, "growth triggers skipped");
                    continue;
                }
            };
            let (db, tiers, mailer, base) =
                (engine.db.clone(), tiers.clone(), mailer.clone(), base_url.to_string());
            let done = actix_web::rt::task::spawn_blocking(move || {
                one_customer(&db, &customer, &tier, &tiers, &week, &mailer, &base, today, now)
            })
            .await
            .map_err(fail)?;
            match done {
                Ok((n, failed)) => {
                    ops += n;
                    failures += failed;
                }
                Err(e) => return Err((ops, e.to_string())),
            }
        }
    }
    let db = engine.db.clone();
    actix_web::rt::task::spawn_blocking(move || GrowthStore::open(&db)?.prune(today - KEEP_DAYS))
        .await
        .map_err(fail)?
        .map_err(|e| (ops, e.to_string()))?;
    if failures > 0 {
        return Err((ops, format!("{failures} growth mails or usage reads failed; see the log")));
    }
    Ok(ops)
}

/// One customer's triggers, mail and conversions; answers (operations, failed mails).
#[allow(clippy::too_many_arguments)]
fn one_customer(
    db: &sled::Db,
    customer: &Customer,
    tier: &crate::accounts::tiers::Tier,
    tiers: &Tiers,
    week: &Week,
    mailer: &Mailer,
    base_url: &str,
    today: Day,
    now: i64,
) -> Result<(u64, u64), GrowthError> {
    let store = GrowthStore::open(db)?;
    let (mut ops, mut failed) = (0, 0);
    // Conversions first: a customer who moved up since a trigger fired converted.
    for kind in TriggerKind::ALL {
        if let Some(mut r) = store.trigger(&customer.id, kind)? {
            let within = now - r.first_at <= super::ATTRIBUTION_DAYS * 86_400;
            if r.converted_at.is_none()
                && within
                && super::rank(tiers, &customer.tier) > super::rank(tiers, &r.tier_at_first)
            {
                r.converted_at = Some(now);
                store.put_trigger(&customer.id, kind, &r)?;
                ops += 1;
            }
        }
    }
    let kinds = super::triggers(week, tier, today);
    if kinds.is_empty() {
        return Ok((ops, 0));
    }
    let prices = crate::billing::Prices::for_customer(db, tiers, &customer.id)
        .map_err(|_| GrowthError::Unavailable)?;
    for kind in kinds {
        let Some(offer) = super::offer(kind, week, tier, tiers, &prices, today) else { continue };
        let mut record = store.fired(&customer.id, kind, &tier.id, &offer.tier, now)?;
        ops += 1;
        if !super::may_mail(record.last_mailed, now) {
            continue;
        }
        let (subject, text) = super::mail_text(&offer, base_url);
        let mail = Mail { to: customer.email.clone(), subject, text, html: None, headers: Vec::new() };
        match mailer.send(&mail) {
            Ok(_) => {
                record.last_mailed = Some(now);
                record.mails += 1;
                store.put_trigger(&customer.id, kind, &record)?;
                ops += 1;
            }
            Err(e) => {
                failed += 1;
                tracing::warn!(customer = %customer.id, trigger = kind.id(), error = %e, "growth mail not sent");
            }
        }
    }
    Ok((ops, failed))
}
