//! `citecast economics`: the unit-economics figures (as `/admin/economics` shows them),
//! and recording marketing spend and costs. Through the running server when one holds
//! the data directory, else on the store directly.

use std::time::Duration;

use clap::Subcommand;

use super::{admin_json, refuse_missing_default, running_server, CliError};
use crate::config::Config;
use crate::economics::store::{parse_amount, Ledgers, Table};

#[derive(Subcommand)]
pub enum EconomicsAction {
    /// Record marketing spend for a month (feeds CAC).
    Spend {
        /// The month, e.g. 2026-11.
        #[arg(long)]
        month: String,
        /// The amount in dollars, e.g. 1200.50 (negative corrects an earlier entry).
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// The channel, e.g. ads, conference.
        #[arg(long)]
        label: String,
    },
    /// Record a cost of revenue for a month (feeds gross margin).
    Costs {
        /// The month, e.g. 2026-11.
        #[arg(long)]
        month: String,
        /// The amount in dollars, e.g. 310.00.
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// The kind, e.g. hosting, support, payments.
        #[arg(long)]
        label: String,
    },
}

pub fn economics(config: Config, json: bool, action: Option<EconomicsAction>) -> Result<(), CliError> {
    let usage = |e: crate::economics::store::EconomicsError| CliError::Usage(e.to_string());
    if let Some(info) = running_server(&config) {
        let v = match action {
            None => admin_json(&info, "GET", "/admin/economics?format=json", None, Duration::from_secs(60))?,
            Some(a) => {
                let (table, month, amount, label) = match a {
                    EconomicsAction::Spend { month, amount, label } => ("spend", month, amount, label),
                    EconomicsAction::Costs { month, amount, label } => ("costs", month, amount, label),
                };
                let body =
                    serde_json::json!({ "month": month, "amount": amount, "label": label }).to_string();
                admin_json(
                    &info,
                    "POST",
                    &format!("/admin/economics/{table}"),
                    Some(&body),
                    Duration::from_secs(30),
                )?
            }
        };
        print(&v, json);
        return Ok(());
    }
    refuse_missing_default(&config)?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| CliError::io(&config.data_dir, e))?;
    let db = sled::Config::new()
        .path(config.engine().store_path())
        .open()
        .map_err(|e| CliError::Engine(e.to_string()))?;
    let v = match action {
        None => {
            let billing = crate::billing::Billing::open(&db).map_err(|e| CliError::Engine(e.to_string()))?;
            serde_json::to_value(crate::economics::routes::current(&db, &billing).map_err(usage)?)
                .unwrap_or_default()
        }
        Some(a) => {
            let (table, month, amount, label) = match a {
                EconomicsAction::Spend { month, amount, label } => (Table::Spend, month, amount, label),
                EconomicsAction::Costs { month, amount, label } => (Table::Costs, month, amount, label),
            };
            let ledgers = Ledgers::open(&db).map_err(usage)?;
            let e = ledgers
                .record(
                    table,
                    &month,
                    parse_amount(&amount).map_err(usage)?,
                    &label,
                    citecast_actors::dates::now_secs(),
                )
                .map_err(usage)?;
            serde_json::to_value(e).unwrap_or_default()
        }
    };
    db.flush().map_err(|e| CliError::Engine(e.to_string()))?;
    print(&v, json);
    Ok(())
}

fn print(v: &serde_json::Value, json: bool) {
    if json || v.get("months").is_none() {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        return;
    }
    let money = |m: &serde_json::Value| {
        m.as_i64().map(|x| crate::billing::format_money(x, "usd")).unwrap_or_else(|| "–".into())
    };
    let pct = |m: &serde_json::Value| {
        m.as_f64().map(|x| format!("{:.1} %", x * 100.0)).unwrap_or_else(|| "–".into())
    };
    println!(
        "as of {}: {} paying customers, trial→paid {}, annual share {}, LTV {}, LTV:CAC {}",
        v["as_of"].as_str().unwrap_or(""),
        v["paying_now"],
        pct(&v["trial_conversion"]),
        pct(&v["annual_share"]),
        money(&v["ltv_minor"]),
        v["ltv_to_cac"].as_f64().map(|x| format!("{x:.1}")).unwrap_or_else(|| "–".into())
    );
    println!("{:<8} {:>12} {:>8} {:>8} {:>10} {:>10}", "month", "MRR", "growth", "churn", "ARPU", "CAC");
    for m in v["months"].as_array().into_iter().flatten() {
        println!(
            "{:<8} {:>12} {:>8} {:>8} {:>10} {:>10}",
            m["month"].as_str().unwrap_or(""),
            money(&m["mrr_minor"]),
            pct(&m["mrr_growth"]),
            pct(&m["customer_churn"]),
            money(&m["arpu_minor"]),
            money(&m["cac_minor"])
        );
    }
}
