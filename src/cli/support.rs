//! `citecast support`: the operator's side of support tickets, through the running
//! server (`/admin/support`, with the admin token; replies and closes are audited there).

use std::time::Duration;

use clap::Subcommand;

use super::{admin_json, running_server, CliError};
use crate::config::Config;

#[derive(Subcommand)]
pub enum SupportAction {
    /// Every ticket (overdue and open first) with the first-response and NPS figures.
    List {
        /// Print the full JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one ticket with its conversation (JSON).
    Show {
        /// The ticket, e.g. tkt_000000000042.
        id: String,
    },
    /// Answer a ticket; the customer is mailed. The first answer stops its first-response clock.
    Reply {
        /// The ticket, e.g. tkt_000000000042.
        id: String,
        /// The answer (plain text, at most 5000 characters).
        #[arg(long, short)]
        message: String,
    },
    /// Close a ticket as solved; the customer is mailed and may reopen it by replying.
    Close {
        /// The ticket, e.g. tkt_000000000042.
        id: String,
    },
    /// Reopen a closed ticket.
    Reopen {
        /// The ticket, e.g. tkt_000000000042.
        id: String,
    },
}

pub fn support(config: Config, action: SupportAction) -> Result<(), CliError> {
    let info = running_server(&config).ok_or_else(|| {
        CliError::Usage(format!(
            "support tickets are handled through the running server: start `citecast serve --data-dir {}` first",
            config.data_dir.display()
        ))
    })?;
    let timeout = Duration::from_secs(30);
    let value = match &action {
        SupportAction::List { .. } => admin_json(&info, "GET", "/admin/support", None, timeout)?,
        SupportAction::Show { id } => {
            admin_json(&info, "GET", &format!("/admin/support/{}", path_part(id)?), None, timeout)?
        }
        SupportAction::Reply { id, message } => {
            let body = serde_json::json!({ "message": message }).to_string();
            admin_json(
                &info,
                "POST",
                &format!("/admin/support/{}/reply", path_part(id)?),
                Some(&body),
                timeout,
            )?
        }
        SupportAction::Close { id } => admin_json(
            &info,
            "POST",
            &format!("/admin/support/{}/close", path_part(id)?),
            Some("{}"),
            timeout,
        )?,
        SupportAction::Reopen { id } => admin_json(
            &info,
            "POST",
            &format!("/admin/support/{}/reopen", path_part(id)?),
            Some("{}"),
            timeout,
        )?,
    };
    match action {
        SupportAction::List { json: false } => print!("{}", table(&value)),
        _ => println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default()),
    }
    Ok(())
}

/// A ticket id as it goes into the URL: only the characters ids have.
fn path_part(id: &str) -> Result<&str, CliError> {
    if !id.is_empty() && id.len() <= 40 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(id)
    } else {
        Err(CliError::Usage(format!("'{id}' is not a ticket id (they look like tkt_000000000042)")))
    }
}

/// The list as a table with the figures above it.
fn table(v: &serde_json::Value) -> String {
    let s = &v["summary"];
    let n = &v["nps"];
    let median = s["median_first_response_secs"]
        .as_i64()
        .map(crate::support::duration_words)
        .unwrap_or_else(|| "none yet".into());
    let nps = n["score"].as_f64().map(|x| format!("{x:.0}")).unwrap_or_else(|| "none yet".into());
    let mut out = format!(
        "{} open, {} overdue, {} escalated; median first response {median}; NPS {nps} from {} answers\n",
        s["open"], s["overdue"], s["escalated"], n["responses"]
    );
    let tickets = v["tickets"].as_array().cloned().unwrap_or_default();
    if tickets.is_empty() {
        out.push_str("no tickets\n");
        return out;
    }
    out.push_str(&format!(
        "{:<18} {:<8} {:<20} {:<22} {}\n",
        "TICKET", "STATE", "OPENED", "CUSTOMER", "SUBJECT"
    ));
    for t in tickets {
        let state =
            if t["overdue"].as_bool() == Some(true) { "OVERDUE" } else { t["status"].as_str().unwrap_or("") };
        out.push_str(&format!(
            "{:<18} {:<8} {:<20} {:<22} {}\n",
            t["id"].as_str().unwrap_or(""),
            state,
            t["opened_at"].as_str().unwrap_or(""),
            t["customer_id"].as_str().unwrap_or(""),
            t["subject"].as_str().unwrap_or("")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_overdue_tickets_loudly() {
        let v = serde_json::json!({
            "summary": { "open": 1, "overdue": 1, "escalated": 0, "median_first_response_secs": null },
            "nps": { "score": 30.0, "responses": 10 },
            "tickets": [{ "id": "tkt_000000000001", "status": "open", "overdue": true, "opened_at": "2026-01-01T00:00:00Z", "customer_id": "cus_1", "subject": "Down" }]
        });
        let t = table(&v);
        assert!(t.contains("1 overdue") && t.contains("NPS 30 from 10") && t.contains("OVERDUE"), "{t}");
        assert!(path_part("tkt_1/../x").is_err());
        assert_eq!(path_part("tkt_000000000001").unwrap(), "tkt_000000000001");
    }
}
