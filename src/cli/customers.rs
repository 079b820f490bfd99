//! `citecast customers`, `audit` and `archive`: operator actions, run through the
//! running server when one holds the data directory, else on the store directly.

use std::time::Duration;

use citecast_actors::Engine;
use clap::Subcommand;

use super::{admin_json, refuse_missing_default, running_server, CliError};
use crate::config::Config;
use crate::ops::operator::OpRequest;

#[derive(Subcommand)]
pub enum CustomerAction {
    /// Create a customer and its first API key.
    Add {
        /// The customer's name (a person or an organisation), 1 to 200 characters.
        #[arg(long)]
        name: String,
        /// Contact address; one customer per address.
        #[arg(long)]
        email: String,
        /// free, pro or enterprise (default: free).
        #[arg(long)]
        tier: Option<String>,
    },
    /// List customers, 100 at a time.
    List {
        /// Continue after this customer id (from `next_after`).
        #[arg(long)]
        after: Option<String>,
        /// Customers per page (default 100, at most 1000).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// List a customer's keys, or issue a new one with --add.
    Keys {
        /// The customer (cus_...).
        customer_id: String,
        /// Issue a new key with this name.
        #[arg(long)]
        add: Option<String>,
    },
    /// Revoke a key at once.
    Revoke {
        /// The key (key_...).
        key_id: String,
    },
    /// Issue a replacement key and revoke the old one.
    Rotate {
        /// The key (key_...).
        key_id: String,
    },
    /// Move a customer to another tier.
    Tier {
        /// The customer (cus_...).
        customer_id: String,
        /// free, pro or enterprise (or a tier of --tiers).
        tier: String,
    },
    /// Change a customer's name and/or e-mail address (an address belongs to one customer).
    Edit {
        /// The customer (cus_...).
        customer_id: String,
        /// The new name.
        #[arg(long)]
        name: Option<String>,
        /// The new e-mail address (refused if another customer has it).
        #[arg(long)]
        email: Option<String>,
    },
    /// Refuse a customer's keys (403 account_suspended) until `reactivate`; nothing is deleted.
    Suspend {
        /// The customer (cus_...).
        customer_id: String,
    },
    /// Let a suspended customer's keys work again.
    Reactivate {
        /// The customer (cus_...).
        customer_id: String,
    },
    /// Delete a customer and its keys; the audit log keeps the record as it was.
    Delete {
        /// The customer (cus_...).
        customer_id: String,
    },
    /// Customers whose usage dropped, went quiet or who have no active key (as the daily
    /// `churn` job last found them; `citecast jobs run churn` refreshes it).
    Churn,
}

impl CustomerAction {
    pub fn into_op(self) -> OpRequest {
        match self {
            CustomerAction::Add { name, email, tier } => OpRequest::AddCustomer { name, email, tier },
            CustomerAction::List { after, limit } => OpRequest::ListCustomers { after, limit },
            CustomerAction::Keys { customer_id, add: None } => OpRequest::ListKeys { customer_id },
            CustomerAction::Keys { customer_id, add: Some(name) } => OpRequest::AddKey { customer_id, name },
            CustomerAction::Revoke { key_id } => OpRequest::RevokeKey { key_id },
            CustomerAction::Rotate { key_id } => OpRequest::RotateKey { key_id },
            CustomerAction::Tier { customer_id, tier } => OpRequest::SetTier { customer_id, tier },
            CustomerAction::Edit { customer_id, name, email } => {
                OpRequest::EditCustomer { customer_id, name, email }
            }
            CustomerAction::Suspend { customer_id } => OpRequest::SuspendCustomer { customer_id },
            CustomerAction::Reactivate { customer_id } => OpRequest::ReactivateCustomer { customer_id },
            CustomerAction::Delete { customer_id } => OpRequest::DeleteCustomer { customer_id },
            CustomerAction::Churn => OpRequest::ChurnSignals,
        }
    }
}

/// Runs one operator action and prints its JSON answer.
pub fn operate(config: Config, op: OpRequest) -> Result<(), CliError> {
    let value: serde_json::Value = if let Some(info) = running_server(&config) {
        let body = serde_json::to_string(&op).map_err(|e| CliError::Usage(e.to_string()))?;
        admin_json(&info, "POST", "/admin/op", Some(&body), Duration::from_secs(30))?
    } else {
        refuse_missing_default(&config)?;
        std::fs::create_dir_all(&config.data_dir).map_err(|e| CliError::io(&config.data_dir, e))?;
        let engine_config = config.engine();
        let tiers = config.tiers.clone();
        actix_web::rt::System::new().block_on(async move {
            let engine = Engine::start(&engine_config).map_err(CliError::engine)?;
            let accounts: std::sync::Arc<dyn crate::accounts::AccountStore> =
                std::sync::Arc::new(crate::accounts::Accounts::open(&engine.db).map_err(CliError::engine)?);
            crate::ops::operator::execute_as(
                &engine,
                &accounts,
                &tiers,
                op,
                &crate::outbound::admin::cli_actor(),
            )
            .await
            .map_err(|e| CliError::Usage(e.to_string()))
        })?
    };
    println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
    if value.get("secret").is_some() {
        eprintln!(
            "The secret above is shown once: store it now. Use it as 'Authorization: Bearer <secret>'."
        );
    }
    if let Some(refused) = value.get("refused").and_then(|r| r.as_array()).filter(|r| !r.is_empty()) {
        return Err(CliError::Engine(format!(
            "{} model director{} refused: {}",
            refused.len(),
            if refused.len() == 1 { "y" } else { "ies" },
            refused.iter().filter_map(|r| r.as_str()).collect::<Vec<_>>().join("; ")
        )));
    }
    Ok(())
}
