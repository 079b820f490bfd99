//! `citecast pricing experiments ...`: pricing experiments, through the running server
//! (the pricing page assigns visitors there, so definitions change only there).

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use super::{admin_json, running_server, CliError};
use crate::config::Config;

#[derive(Subcommand)]
pub enum PricingAction {
    /// Pricing experiments: variants of /pricing with a pre-registered stopping rule.
    Experiments {
        #[command(subcommand)]
        action: ExperimentAction,
    },
}

#[derive(Subcommand)]
pub enum ExperimentAction {
    /// Every experiment, oldest first.
    List,
    /// Register and start an experiment from a JSON file (`-`: standard input):
    /// {"name", "hypothesis", "variants": [{"id", "headline", "prices": {"pro":
    /// {"monthly_usd", "annual_usd"}}, "annual_discount_pct"}], "stopping_rule":
    /// {"min_exposures_per_variant", "horizon_days"}, "primary_metric": "signup"|"first_payment"}.
    Create {
        /// The definition (JSON); the first variant is the control.
        file: PathBuf,
    },
    /// The report: conversion per variant with 95 % intervals, each variant against the
    /// control, and whether the stopping rule allows a decision yet.
    Show {
        /// The experiment's id (`exp_000001`).
        id: String,
    },
    /// Stop an experiment: /pricing shows the tier table again; customers keep the
    /// prices they signed up at.
    Stop {
        /// The experiment's id (`exp_000001`).
        id: String,
    },
}

fn check_id(id: &str) -> Result<(), CliError> {
    let ok = !id.is_empty() && id.len() <= 40 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(CliError::Usage(format!("'{id}' is not an experiment id (like exp_000001)")))
    }
}

pub fn pricing(config: Config, action: PricingAction) -> Result<(), CliError> {
    let PricingAction::Experiments { action } = action;
    let (method, path, body) = match &action {
        ExperimentAction::List => ("GET", "/admin/pricing/experiments".to_string(), None),
        ExperimentAction::Create { file } => {
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                    .map_err(|e| CliError::io(file, e))?;
                s
            } else {
                std::fs::read_to_string(file).map_err(|e| CliError::io(file, e))?
            };
            serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| CliError::Usage(format!("{}: not JSON: {e}", file.display())))?;
            ("POST", "/admin/pricing/experiments".to_string(), Some(text))
        }
        ExperimentAction::Show { id } => {
            check_id(id)?;
            ("GET", format!("/admin/pricing/experiments/{id}"), None)
        }
        ExperimentAction::Stop { id } => {
            check_id(id)?;
            ("POST", format!("/admin/pricing/experiments/{id}/stop"), Some("{}".to_string()))
        }
    };
    let info = running_server(&config).ok_or_else(|| {
        CliError::Usage(format!(
            "pricing experiments live in the running server: start `citecast serve --data-dir {}` first",
            config.data_dir.display()
        ))
    })?;
    let value = admin_json(&info, method, &path, body.as_deref(), Duration::from_secs(30))?;
    println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
    Ok(())
}
