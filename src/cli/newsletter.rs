//! `citecast newsletter`: import readers from another list, and see subscribers and
//! each issue's delivery. Through the running server when one holds the data directory,
//! else on the store directly.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use super::{admin_json, refuse_missing_default, running_server, CliError};
use crate::config::Config;
use crate::newsletter::admin::{ImportBody, ImportReport, Imported};

#[derive(Subcommand)]
pub enum NewsletterAction {
    /// Import readers: a file with one `address` or `address,name` per line (# comments
    /// and blank lines skipped). Each gets a confirmation mail, unless --confirmed.
    Import {
        /// The list: one `address` or `address,name` per line.
        file: PathBuf,
        /// They already opted in on the list they come from: subscribe them at once
        /// (recorded in the audit log).
        #[arg(long)]
        confirmed: bool,
    },
    /// Subscribers by state, and each issue's delivery (queued, deferred, sent, bounced).
    Status,
}

/// Addresses sent to the server per request (keeps each under the body limit).
const BATCH: usize = 500;

pub fn newsletter(config: Config, action: NewsletterAction) -> Result<(), CliError> {
    match action {
        NewsletterAction::Import { file, confirmed } => {
            let text = std::fs::read_to_string(&file).map_err(|e| CliError::io(&file, e))?;
            let all: Vec<Imported> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| match l.split_once(',') {
                    Some((e, n)) => Imported { email: e.trim().into(), name: Some(n.trim().into()) },
                    None => Imported { email: l.into(), name: None },
                })
                .collect();
            let mut total = ImportReport::default();
            for (b, chunk) in all.chunks(BATCH).enumerate() {
                let body = ImportBody { subscribers: chunk.to_vec(), confirmed };
                let r: ImportReport =
                    serde_json::from_value(call(&config, "POST", "/admin/newsletter/import", Some(&body))?)
                        .map_err(|e| CliError::Engine(e.to_string()))?;
                total.imported += r.imported;
                total.existing += r.existing;
                total.refused.extend(r.refused.into_iter().map(|(i, why)| (b * BATCH + i, why)));
            }
            println!("{}", serde_json::to_string_pretty(&total).unwrap_or_default());
            Ok(())
        }
        NewsletterAction::Status => {
            let v = call::<()>(&config, "GET", "/admin/newsletter", None)?;
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(())
        }
    }
}

fn call<B: serde::Serialize>(
    config: &Config,
    method: &str,
    path: &str,
    body: Option<&B>,
) -> Result<serde_json::Value, CliError> {
    if let Some(info) = running_server(config) {
        let body = body.map(|b| serde_json::to_string(b).unwrap_or_default());
        return admin_json(&info, method, path, body.as_deref(), Duration::from_secs(60));
    }
    refuse_missing_default(config)?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| CliError::io(&config.data_dir, e))?;
    let db = sled::Config::new()
        .path(config.engine().store_path())
        .open()
        .map_err(|e| CliError::Engine(e.to_string()))?;
    let subs =
        crate::newsletter::store::Subscribers::open(&db).map_err(|e| CliError::Engine(e.to_string()))?;
    let now = citecast_actors::dates::now_secs();
    let out = match (method, body) {
        ("POST", Some(b)) => {
            let body: ImportBody =
                serde_json::from_value(serde_json::to_value(b).map_err(|e| CliError::Usage(e.to_string()))?)
                    .map_err(|e| CliError::Usage(e.to_string()))?;
            serde_json::to_value(
                crate::newsletter::admin::import(&subs, &body, now)
                    .map_err(|e| CliError::Engine(e.to_string()))?,
            )
            .map_err(|e| CliError::Engine(e.to_string()))?
        }
        _ => crate::newsletter::admin::status(&subs).map_err(|e| CliError::Engine(e.to_string()))?,
    };
    db.flush().map_err(|e| CliError::Engine(e.to_string()))?;
    Ok(out)
}
