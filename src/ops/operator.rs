//! Operator actions: customers and keys, models and rollouts, the audit log and the
//! archive. One implementation serves both the `/admin/op` endpoint (when a server holds
//! the data directory) and the CLI working on the directory directly, so both behave the
//! same, and every action that changes something is written to the audit log here, in
//! one place, with the state before and after.

use std::sync::Arc;

use citecast_actors::actors::{
    AdvanceRollout, AppendAudit, ArchiveOld, GetRolloutReport, ListModels, ListRollouts, PromoteModel,
    ReadAudit, RescanModels, RollbackModel, StartRollout, StopRollout,
};
use citecast_actors::forecast::rollout::{Guards, Strategy};
use citecast_actors::forecast::service::RolloutSpec;
use citecast_actors::forecast::task::Mode;
use citecast_actors::journal::AuditEntry;
use citecast_actors::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::accounts::store::call;
use crate::accounts::AccountStore;
use crate::billing::{self, Billing, BillingError};
use crate::engine::{ask, ask_within};
use crate::ops::error::OpError;

/// Names the model actor in `busy` answers.
const MODEL: &str = "model engine";
/// How long a change to the models (which may warm one) may take before the caller is
/// told the engine is busy; the change itself still happens once its turn comes.
const CHANGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

use crate::accounts::tiers::Tiers;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum OpRequest {
    AddCustomer {
        name: String,
        email: String,
        tier: Option<String>,
    },
    ListCustomers {
        after: Option<String>,
        limit: Option<usize>,
    },
    ListKeys {
        customer_id: String,
    },
    AddKey {
        customer_id: String,
        name: String,
    },
    RevokeKey {
        key_id: String,
    },
    RotateKey {
        key_id: String,
    },
    SetTier {
        customer_id: String,
        tier: String,
    },
    /// Changes a customer's name and/or e-mail address (addresses stay unique).
    EditCustomer {
        customer_id: String,
        name: Option<String>,
        email: Option<String>,
    },
    /// Refuses the customer's keys (403 `account_suspended`) until reactivated.
    SuspendCustomer {
        customer_id: String,
    },
    ReactivateCustomer {
        customer_id: String,
    },
    /// Deletes the customer and its keys; the audit log keeps the record as it was.
    DeleteCustomer {
        customer_id: String,
    },
    ListModels,
    Promote {
        version: String,
    },
    Rollback {
        mode: String,
    },
    /// Loads model directories trained since the start.
    RescanModels,
    /// Starts a canary (5 → 50 → 100 %) or an A/B experiment (fixed `share`).
    StartRollout {
        candidate: String,
        /// `canary` or `experiment`.
        kind: String,
        share: Option<u8>,
        /// Canary: advance a stage after this long (with enough forecasts); none: by command.
        advance_after_secs: Option<u64>,
        max_error_rate: Option<f64>,
        max_p95_ms: Option<f64>,
        max_drift_psi: Option<f64>,
        min_forecasts: Option<u64>,
    },
    AdvanceRollout {
        mode: String,
    },
    StopRollout {
        mode: String,
    },
    ListRollouts,
    RolloutReport {
        id: String,
    },
    Audit {
        after: Option<u64>,
        limit: Option<usize>,
    },
    /// Moves forecast records and usage days older than `older_than_days` into the archive.
    Archive {
        older_than_days: u32,
    },
    /// Forecast-log records (live and archived) between two unix times.
    ForecastLog {
        from: i64,
        to: i64,
        limit: Option<usize>,
    },
    /// Customers with churn signals, as the last `churn` job run found them.
    ChurnSignals,
    /// Marks an open invoice paid (a bank transfer arrived); a past-due or paused
    /// subscription it held back is active again.
    BillingMarkPaid {
        invoice_id: String,
        /// The transfer's reference, kept on the invoice.
        reference: Option<String>,
    },
    /// Refunds a paid invoice (the subscription goes on).
    BillingRefund {
        invoice_id: String,
    },
    /// A customer's subscription, invoices, credit, ledger and status changes.
    ShowBilling {
        customer_id: String,
    },
}

impl OpRequest {
    /// Whether the action changes state (and so is audited).
    fn changes_state(&self) -> bool {
        !matches!(
            self,
            OpRequest::ListCustomers { .. }
                | OpRequest::ListKeys { .. }
                | OpRequest::ListModels
                | OpRequest::ListRollouts
                | OpRequest::RolloutReport { .. }
                | OpRequest::Audit { .. }
                | OpRequest::ForecastLog { .. }
                | OpRequest::ChurnSignals
                | OpRequest::ShowBilling { .. }
        )
    }

    fn action(&self) -> &'static str {
        match self {
            OpRequest::AddCustomer { .. } => "customer.add",
            OpRequest::ListCustomers { .. } => "customer.list",
            OpRequest::ListKeys { .. } => "key.list",
            OpRequest::AddKey { .. } => "key.add",
            OpRequest::RevokeKey { .. } => "key.revoke",
            OpRequest::RotateKey { .. } => "key.rotate",
            OpRequest::SetTier { .. } => "customer.tier",
            OpRequest::EditCustomer { .. } => "customer.edit",
            OpRequest::SuspendCustomer { .. } => "customer.suspend",
            OpRequest::ReactivateCustomer { .. } => "customer.reactivate",
            OpRequest::DeleteCustomer { .. } => "customer.delete",
            OpRequest::ListModels => "model.list",
            OpRequest::Promote { .. } => "model.promote",
            OpRequest::Rollback { .. } => "model.rollback",
            OpRequest::RescanModels => "model.rescan",
            OpRequest::StartRollout { .. } => "rollout.start",
            OpRequest::AdvanceRollout { .. } => "rollout.advance",
            OpRequest::StopRollout { .. } => "rollout.stop",
            OpRequest::ListRollouts => "rollout.list",
            OpRequest::RolloutReport { .. } => "rollout.report",
            OpRequest::Audit { .. } => "audit.read",
            OpRequest::Archive { .. } => "archive.run",
            OpRequest::ForecastLog { .. } => "forecast_log.read",
            OpRequest::ChurnSignals => "churn.read",
            OpRequest::BillingMarkPaid { .. } => "billing.mark_paid",
            OpRequest::BillingRefund { .. } => "billing.refund",
            OpRequest::ShowBilling { .. } => "billing.show",
        }
    }

    fn target(&self) -> String {
        match self {
            OpRequest::AddCustomer { email, .. } => email.clone(),
            OpRequest::ListKeys { customer_id } | OpRequest::AddKey { customer_id, .. } => {
                customer_id.clone()
            }
            OpRequest::SetTier { customer_id, .. }
            | OpRequest::EditCustomer { customer_id, .. }
            | OpRequest::SuspendCustomer { customer_id }
            | OpRequest::ReactivateCustomer { customer_id }
            | OpRequest::DeleteCustomer { customer_id } => customer_id.clone(),
            OpRequest::RevokeKey { key_id } | OpRequest::RotateKey { key_id } => key_id.clone(),
            OpRequest::Promote { version } => version.clone(),
            OpRequest::StartRollout { candidate, .. } => candidate.clone(),
            OpRequest::Rollback { mode }
            | OpRequest::AdvanceRollout { mode }
            | OpRequest::StopRollout { mode } => mode.clone(),
            OpRequest::RolloutReport { id } => id.clone(),
            OpRequest::BillingMarkPaid { invoice_id, .. } | OpRequest::BillingRefund { invoice_id } => {
                invoice_id.clone()
            }
            OpRequest::ShowBilling { customer_id } => customer_id.clone(),
            _ => String::new(),
        }
    }
}

fn mode_of(m: &str) -> Result<Mode, OpError> {
    Mode::parse(m)
        .ok_or_else(|| OpError::Invalid(format!("'mode' must be at_publication or early, got '{m}'")))
}

/// Runs an operator action for `actor` (`cli`, `admin-api`) and audits it when it
/// changed something. A failed action is not audited: nothing changed.
pub async fn execute_as(
    engine: &Engine,
    accounts: &Arc<dyn AccountStore>,
    tiers: &Tiers,
    req: OpRequest,
    actor: &str,
) -> Result<Value, OpError> {
    let audited = req.changes_state().then(|| (req.action(), req.target()));
    let before = before_of(engine, accounts, &req).await;
    let value = crate::ops::times::with_rfc3339(run(engine, accounts, tiers, req, actor).await?);
    if let Some((action, target)) = audited {
        // Secrets are shown once to the caller and never stored, not even in the audit log.
        let mut after = value.clone();
        if let Some(o) = after.as_object_mut() {
            o.remove("secret");
        }
        let entry = AuditEntry {
            seq: 0,
            at: citecast_actors::dates::now_secs(),
            actor: actor.to_string(),
            action: action.to_string(),
            target,
            before: before.map(|b| b.to_string()),
            after: Some(after.to_string()),
        };
        engine.store.send(AppendAudit(entry)).await??;
    }
    Ok(value)
}

/// The object an action is about to change, for the audit log.
async fn before_of(engine: &Engine, accounts: &Arc<dyn AccountStore>, req: &OpRequest) -> Option<Value> {
    match req {
        OpRequest::SetTier { customer_id, .. }
        | OpRequest::EditCustomer { customer_id, .. }
        | OpRequest::SuspendCustomer { customer_id }
        | OpRequest::ReactivateCustomer { customer_id }
        | OpRequest::DeleteCustomer { customer_id } => {
            let id = customer_id.clone();
            call(accounts, move |a| a.customer(&id)).await.ok()?.map(|c| json!(c))
        }
        OpRequest::RevokeKey { key_id } | OpRequest::RotateKey { key_id } => {
            let id = key_id.clone();
            call(accounts, move |a| a.key(&id)).await.ok()?.map(|k| json!(k))
        }
        OpRequest::BillingMarkPaid { invoice_id, .. } | OpRequest::BillingRefund { invoice_id } => {
            let billing = Arc::new(Billing::open(&engine.db).ok()?);
            let id = invoice_id.clone();
            billing::store::call(&billing, move |b| b.invoice(&id)).await.ok()?.map(|i| json!(i))
        }
        OpRequest::Promote { .. }
        | OpRequest::Rollback { .. }
        | OpRequest::StartRollout { .. }
        | OpRequest::AdvanceRollout { .. }
        | OpRequest::StopRollout { .. } => {
            let models = ask(&engine.model, ListModels, MODEL).await.ok()?;
            let active: Vec<&str> = models.iter().filter(|m| m.active).map(|m| m.version.as_str()).collect();
            Some(json!({ "active": active }))
        }
        _ => None,
    }
}

fn check_tier(tiers: &Tiers, tier: &str) -> Result<(), OpError> {
    if tiers.tiers.iter().any(|t| t.id == tier) {
        Ok(())
    } else {
        let names: Vec<&str> = tiers.tiers.iter().map(|t| t.id.as_str()).collect();
        Err(OpError::Invalid(format!("unknown tier '{tier}'; tiers: {}", names.join(", "))))
    }
}

/// Runs an operator action without auditing it (billing's own transition records name
/// the actor `operator`).
pub async fn execute(
    engine: &Engine,
    accounts: &Arc<dyn AccountStore>,
    tiers: &Tiers,
    req: OpRequest,
) -> Result<Value, OpError> {
    run(engine, accounts, tiers, req, "operator").await
}

/// Billing's errors in the operator's words: a missing invoice or subscription is
/// `not_found`, a refused action says why, a store failure is the store's.
fn billing_error(e: BillingError) -> OpError {
    match e {
        BillingError::UnknownInvoice(id) => OpError::NotFound { what: "invoice", id },
        BillingError::NoSubscription(id) => OpError::NotFound { what: "subscription of customer", id },
        BillingError::Store(e) => OpError::Store(e.into()),
        BillingError::Unavailable => {
            OpError::Engine(crate::engine::EngineError::Unavailable { what: "billing store" })
        }
        BillingError::Corrupt(why) => OpError::Store(sled::Error::ReportableBug(why).into()),
        e => OpError::Billing(e),
    }
}

/// A billing change as the operator sees it, after the customer's tier follows it.
async fn billing_change(accounts: &Arc<dyn AccountStore>, change: billing::Change) -> Result<Value, OpError> {
    let synced = change.clone();
    call(accounts, move |a| billing::sync_tier(a, &synced)).await?;
    Ok(json!({
        "invoice": change.invoice,
        "subscription": change.subscription,
        "effective_tier": change.effective_tier,
        "notices": change.notices,
    }))
}

async fn run(
    engine: &Engine,
    accounts: &Arc<dyn AccountStore>,
    tiers: &Tiers,
    req: OpRequest,
    actor: &str,
) -> Result<Value, OpError> {
    let store = &engine.store;
    Ok(match req {
        OpRequest::AddCustomer { name, email, tier } => {
            let tier = tier.unwrap_or_else(|| tiers.default_tier().id.clone());
            check_tier(tiers, &tier)?;
            let (customer, key) = call(accounts, move |a| a.add_customer(&name, &email, &tier)).await?;
            json!({ "customer": customer, "key": key.key, "secret": key.secret })
        }
        OpRequest::ListCustomers { after, limit } => {
            let limit = limit.unwrap_or(100).clamp(1, 1000);
            let customers = call(accounts, move |a| a.customers(after.as_deref(), limit)).await?;
            let next = (customers.len() == limit).then(|| customers.last().map(|c| c.id.clone())).flatten();
            json!({ "customers": customers, "next_after": next })
        }
        OpRequest::ListKeys { customer_id } => {
            json!({ "keys": call(accounts, move |a| a.keys_of(&customer_id)).await? })
        }
        OpRequest::AddKey { customer_id, name } => {
            // The tier's key cap holds for operators too: extra keys would add no
            // allowance (limits are per customer), only more secrets to leak.
            let id = customer_id.clone();
            let customer = call(accounts, move |a| a.customer(&id)).await?;
            let max_active = match customer {
                Some(c) => tiers.get(&c.tier).map(|t| t.max_keys),
                None => None,
            };
            let key = call(accounts, move |a| a.issue_key(&customer_id, &name, max_active)).await?;
            json!({ "key": key.key, "secret": key.secret })
        }
        OpRequest::RevokeKey { key_id } => {
            json!({ "key": call(accounts, move |a| a.revoke(&key_id)).await? })
        }
        OpRequest::RotateKey { key_id } => {
            let key = call(accounts, move |a| a.rotate(&key_id)).await?;
            json!({ "key": key.key, "secret": key.secret })
        }
        OpRequest::SetTier { customer_id, tier } => {
            check_tier(tiers, &tier)?;
            json!({ "customer": call(accounts, move |a| a.set_tier(&customer_id, &tier)).await? })
        }
        OpRequest::EditCustomer { customer_id, name, email } => {
            if name.is_none() && email.is_none() {
                return Err(OpError::Invalid("give a new name, a new e-mail address or both".into()));
            }
            json!({ "customer": call(accounts, move |a| a.edit_customer(&customer_id, name.as_deref(), email.as_deref())).await? })
        }
        OpRequest::SuspendCustomer { customer_id } => {
            json!({ "customer": call(accounts, move |a| a.set_suspended(&customer_id, true)).await? })
        }
        OpRequest::ReactivateCustomer { customer_id } => {
            json!({ "customer": call(accounts, move |a| a.set_suspended(&customer_id, false)).await? })
        }
        OpRequest::DeleteCustomer { customer_id } => {
            json!({ "deleted": call(accounts, move |a| a.delete_customer(&customer_id)).await? })
        }
        OpRequest::ListModels => json!({ "models": ask(&engine.model, ListModels, MODEL).await? }),
        OpRequest::Promote { version } => {
            json!({ "active": ask_within(&engine.model, PromoteModel(version), MODEL, CHANGE_TIMEOUT).await?? })
        }
        OpRequest::Rollback { mode } => {
            json!({ "active": ask_within(&engine.model, RollbackModel(mode_of(&mode)?, None), MODEL, CHANGE_TIMEOUT).await?? })
        }
        OpRequest::RescanModels => {
            let (loaded, refused) = ask_within(&engine.model, RescanModels, MODEL, CHANGE_TIMEOUT).await??;
            json!({ "loaded": loaded, "refused": refused })
        }
        OpRequest::StartRollout {
            candidate,
            kind,
            share,
            advance_after_secs,
            max_error_rate,
            max_p95_ms,
            max_drift_psi,
            min_forecasts,
        } => {
            let strategy = match kind.as_str() {
                "canary" if share.is_none() => Strategy::Canary { stage: 0, advance_after_secs },
                "canary" => {
                    return Err(OpError::Invalid(
                        "a canary's shares are 5, 50 and 100 %: 'share' is for experiments".into(),
                    ))
                }
                "experiment" => Strategy::Experiment {
                    share: share
                        .ok_or_else(|| OpError::Invalid("an experiment needs 'share' (1 to 99 %)".into()))?,
                },
                other => {
                    return Err(OpError::Invalid(format!(
                        "'kind' must be canary or experiment, got '{other}'"
                    )))
                }
            };
            let d = Guards::default();
            let guards = Guards {
                max_error_rate: max_error_rate.unwrap_or(d.max_error_rate),
                max_p95_ms: max_p95_ms.unwrap_or(d.max_p95_ms),
                max_drift_psi: max_drift_psi.unwrap_or(d.max_drift_psi),
                min_forecasts: min_forecasts.unwrap_or(d.min_forecasts),
            };
            let spec = RolloutSpec { candidate, strategy, guards };
            json!({ "rollout": ask_within(&engine.model, StartRollout(spec), MODEL, CHANGE_TIMEOUT).await?? })
        }
        OpRequest::AdvanceRollout { mode } => {
            let t =
                ask_within(&engine.model, AdvanceRollout(mode_of(&mode)?), MODEL, CHANGE_TIMEOUT).await??;
            json!({ "transition": format!("{t:?}"), "rollouts": ask(&engine.model, ListRollouts, MODEL).await?? })
        }
        OpRequest::StopRollout { mode } => {
            let t = ask_within(&engine.model, StopRollout(mode_of(&mode)?), MODEL, CHANGE_TIMEOUT).await??;
            json!({ "transition": format!("{t:?}") })
        }
        OpRequest::ListRollouts => json!({ "rollouts": ask(&engine.model, ListRollouts, MODEL).await?? }),
        OpRequest::RolloutReport { id } => {
            let report = ask(&engine.model, GetRolloutReport(id.clone()), MODEL).await??;
            json!({ "report": report.ok_or(OpError::NotFound { what: "rollout", id })? })
        }
        OpRequest::Audit { after, limit } => {
            let limit = limit.unwrap_or(100).clamp(1, 1000);
            let entries = store.send(ReadAudit { after, limit }).await??;
            let next = (entries.len() == limit).then(|| entries.last().map(|e| e.seq)).flatten();
            json!({ "entries": entries, "next_after": next })
        }
        OpRequest::ChurnSignals => {
            json!({ "customers": crate::accounts::store::churn_signals(&engine.db)? })
        }
        OpRequest::BillingMarkPaid { invoice_id, reference } => {
            let billing = Arc::new(Billing::open(&engine.db).map_err(billing_error)?);
            let (now, actor) = (citecast_actors::dates::now_secs(), actor.to_string());
            let change = billing::store::call(&billing, move |b| {
                b.mark_paid(&invoice_id, reference.as_deref(), now, &actor)
            })
            .await
            .map_err(billing_error)?;
            billing_change(accounts, change).await?
        }
        OpRequest::BillingRefund { invoice_id } => {
            let billing = Arc::new(Billing::open(&engine.db).map_err(billing_error)?);
            let (now, actor) = (citecast_actors::dates::now_secs(), actor.to_string());
            let change = billing::store::call(&billing, move |b| b.refund(&invoice_id, now, &actor))
                .await
                .map_err(billing_error)?;
            billing_change(accounts, change).await?
        }
        OpRequest::ShowBilling { customer_id } => {
            let billing = Arc::new(Billing::open(&engine.db).map_err(billing_error)?);
            let prices =
                billing::Prices::for_customer(&engine.db, tiers, &customer_id).map_err(billing_error)?;
            billing::store::call(&billing, move |b| {
                let id = customer_id.as_str();
                Ok(json!({
                    "customer_id": id,
                    "subscription": b.subscription(id)?,
                    "upcoming": b.upcoming(id, &prices)?,
                    "balance_minor": b.balance(id)?,
                    "invoices": b.invoices(id)?,
                    "ledger": b.ledger(id)?,
                    "audit": b.audit(id)?,
                }))
            })
            .await
            .map_err(billing_error)?
        }
        OpRequest::ForecastLog { from, to, limit } => {
            let limit = limit.unwrap_or(1000).clamp(1, 100_000);
            let msg = citecast_actors::actors::ReadForecasts { from, to, limit };
            json!({ "records": store.send(msg).await?? })
        }
        OpRequest::Archive { older_than_days } => {
            if older_than_days == 0 {
                return Err(OpError::Invalid("'older_than_days' must be at least 1".into()));
            }
            let msg = ArchiveOld::older_than(older_than_days, 1_000_000);
            json!({ "archived": store.send(msg).await?? })
        }
    })
}
