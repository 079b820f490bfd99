//! The growth feature's HTTP side: the recorder the API guard and the batch endpoint
//! call on a refusal, the offers shown on `/account`, and the operator's route
//! (`/admin/growth`, see [`super::admin`]).

use super::{GrowthError, GrowthStore, Offer, Refusal, TriggerKind};
use crate::accounts::tiers::{Group, Tier};
use crate::web::{get_or_head, AppState, SiteRoute};

pub fn site_routes() -> Vec<SiteRoute> {
    vec![SiteRoute::get("/admin/growth", || get_or_head().to(super::admin::report))]
}

/// Records a refusal that says a limit is in `customer`'s way (calls without a key are
/// not customers and are not recorded). One key update; a store failure is logged and
/// never changes the answer the caller gets.
pub fn note_refusal(state: &AppState, customer: Option<&str>, refusal: Refusal) {
    let Some(customer) = customer else { return };
    let done = GrowthStore::open(&state.engine.db)
        .and_then(|s| s.note(customer, citecast_actors::dates::today(), refusal));
    if let Err(e) = done {
        tracing::warn!(customer, error = %e, "refusal not recorded for the growth triggers");
    }
}

/// The guard answered 429 (per-minute or daily limit).
pub fn note_limited(state: &AppState, customer: Option<&str>) {
    note_refusal(state, customer, Refusal::RateLimited);
}

/// The batch endpoint refused `asked` ids as more than the tier's batch size.
pub fn note_batch_refused(state: &AppState, customer: Option<&str>, asked: usize) {
    note_refusal(state, customer, Refusal::BatchRefused { asked: asked as u64 });
}

/// The guard refused an endpoint group for the tier: recorded when it is the forecasts.
pub fn note_forbidden(state: &AppState, customer: Option<&str>, group: Group) {
    if group == Group::Forecasts {
        note_refusal(state, customer, Refusal::ForecastForbidden);
    }
}

/// The offers for `/account`: the triggers `customer` (on `tier`) sets off now, each
/// with the tier that lifts its limit at the customer's own price. Each one shown is
/// recorded as fired (for the conversion report). Never fails the page: a failure is
/// logged and shows no offer.
pub async fn account_offers(state: &AppState, customer: &str, tier: &Tier, used_today: u64) -> Vec<Offer> {
    let today = citecast_actors::dates::today();
    let week = match super::job::load_week(&state.engine, &state.accounts, Some(used_today), customer, today)
        .await
    {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(customer, error = %e, "growth offers not computed");
            return Vec::new();
        }
    };
    let kinds = super::triggers(&week, tier, today);
    if kinds.is_empty() {
        return Vec::new();
    }
    let prices = match crate::billing::Prices::for_customer(&state.engine.db, &state.tiers, customer) {
        Ok(p) => p,
        Err(_) => return Vec::new(),
    };
    let offers: Vec<Offer> = kinds
        .into_iter()
        .filter_map(|k| super::offer(k, &week, tier, &state.tiers, &prices, today))
        .collect();
    let (db, id, tier_id, fired) = (
        state.engine.db.clone(),
        customer.to_string(),
        tier.id.clone(),
        offers.iter().map(|o| (o.kind, o.tier.clone())).collect::<Vec<(TriggerKind, String)>>(),
    );
    let now = citecast_actors::dates::now_secs();
    let recorded = actix_web::rt::task::spawn_blocking(move || {
        let s = GrowthStore::open(&db)?;
        for (kind, offered) in fired {
            s.fired(&id, kind, &tier_id, &offered, now)?;
        }
        Ok::<_, GrowthError>(())
    })
    .await;
    if !matches!(recorded, Ok(Ok(()))) {
        tracing::warn!(customer, "growth trigger not recorded");
    }
    offers
}
