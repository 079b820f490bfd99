//! Operator actions on customers and keys. One implementation serves both the
//! `/admin/op` endpoint (when a server holds the data directory) and the CLI working on
//! the directory directly, so both behave the same.

use citecast_actors::actors::{
    AddCustomer, IssueKey, ListCustomers, ListKeys, RevokeKey, RotateKey, SetTier,
};
use citecast_actors::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::http::error::ApiError;
use crate::tiers::Tiers;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum OpRequest {
    AddCustomer { name: String, email: String, tier: Option<String> },
    ListCustomers { after: Option<String>, limit: Option<usize> },
    ListKeys { customer_id: String },
    AddKey { customer_id: String, name: String },
    RevokeKey { key_id: String },
    RotateKey { key_id: String },
    SetTier { customer_id: String, tier: String },
}

fn check_tier(tiers: &Tiers, tier: &str) -> Result<(), ApiError> {
    if tiers.tiers.iter().any(|t| t.id == tier) {
        Ok(())
    } else {
        let names: Vec<&str> = tiers.tiers.iter().map(|t| t.id.as_str()).collect();
        Err(ApiError::InvalidBody(format!("unknown tier '{tier}'; tiers: {}", names.join(", "))))
    }
}

pub async fn execute(engine: &Engine, tiers: &Tiers, req: OpRequest) -> Result<Value, ApiError> {
    let store = &engine.store;
    Ok(match req {
        OpRequest::AddCustomer { name, email, tier } => {
            let tier = tier.unwrap_or_else(|| tiers.default_tier().id.clone());
            check_tier(tiers, &tier)?;
            let (customer, key) = store.send(AddCustomer { name, email, tier }).await??;
            json!({ "customer": customer, "key": key.key, "secret": key.secret })
        }
        OpRequest::ListCustomers { after, limit } => {
            let limit = limit.unwrap_or(100).clamp(1, 1000);
            let customers = store.send(ListCustomers { after, limit }).await??;
            let next = (customers.len() == limit).then(|| customers.last().map(|c| c.id.clone())).flatten();
            json!({ "customers": customers, "next_after": next })
        }
        OpRequest::ListKeys { customer_id } => json!({ "keys": store.send(ListKeys(customer_id)).await?? }),
        OpRequest::AddKey { customer_id, name } => {
            let key = store.send(IssueKey { customer_id, name }).await??;
            json!({ "key": key.key, "secret": key.secret })
        }
        OpRequest::RevokeKey { key_id } => json!({ "key": store.send(RevokeKey(key_id)).await?? }),
        OpRequest::RotateKey { key_id } => {
            let key = store.send(RotateKey(key_id)).await??;
            json!({ "key": key.key, "secret": key.secret })
        }
        OpRequest::SetTier { customer_id, tier } => {
            check_tier(tiers, &tier)?;
            json!({ "customer": store.send(SetTier { customer_id, tier }).await?? })
        }
    })
}
