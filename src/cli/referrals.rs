//! `citecast referrals`: the monthly payout report of referral commissions, and marking a
//! month's payout paid, through the running server (the ledger is written there).

use std::time::Duration;

use clap::Subcommand;

use super::{admin_json, running_server, CliError};
use crate::config::Config;

#[derive(Subcommand)]
pub enum ReferralsAction {
    /// Approved commissions per referrer for a month (prints JSON).
    Payouts {
        /// The month, YYYY-MM.
        #[arg(long)]
        month: String,
        /// Also record the month's approved commissions as paid out (audited).
        #[arg(long)]
        mark_paid: bool,
    },
}

pub fn referrals(config: Config, action: ReferralsAction) -> Result<(), CliError> {
    let ReferralsAction::Payouts { month, mark_paid } = action;
    let month = crate::referrals::Month::parse(&month).map_err(|e| CliError::Usage(e.to_string()))?;
    let info = running_server(&config).ok_or_else(|| {
        CliError::Usage(format!(
            "the referral ledger is read through the server: start `citecast serve --data-dir {}` first",
            config.data_dir.display()
        ))
    })?;
    let timeout = Duration::from_secs(30);
    if mark_paid {
        let done =
            admin_json(&info, "POST", &format!("/admin/referrals/payouts/{month}/paid"), None, timeout)?;
        eprintln!("marked {} commissions paid", done["paid"].as_array().map(|a| a.len()).unwrap_or(0));
    }
    let value = admin_json(&info, "GET", &format!("/admin/referrals/payouts?month={month}"), None, timeout)?;
    println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
    Ok(())
}
