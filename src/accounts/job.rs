//! The accounts' jobs: `churn` (daily, the customers whose usage dropped, went quiet or
//! lost every key) and `sessions` (hourly, drops expired web sessions and expired
//! confirmation and reset tokens, so neither tree grows without end).

use citecast_actors::journal::Journal;

use crate::ops::jobs::{fail, spec, Job};

pub fn jobs() -> Vec<Job> {
    vec![
        Job {
            spec: spec("churn", "daily 06:00", 300, None),
            run: |ctx| {
                Box::pin(async move {
                    let today = citecast_actors::dates::today();
                    let (accounts, db) = (ctx.accounts.clone(), ctx.engine.db.clone());
                    // Reads every customer's keys and usage: on the blocking pool.
                    let (found, examined) = actix_web::rt::task::spawn_blocking(move || {
                        let journal = Journal::open(&db).map_err(|e| e.to_string())?;
                        super::churn::compute(accounts.as_ref(), &journal, &db, today)
                            .map_err(|e| e.to_string())
                    })
                    .await
                    .map_err(fail)?
                    .map_err(fail)?;
                    if !found.is_empty() {
                        tracing::info!(customers = found.len(), "churn signals found");
                    }
                    Ok(examined)
                })
            },
        },
        Job {
            spec: spec("sessions", "every 60m", 300, None),
            run: |ctx| {
                Box::pin(async move {
                    let db = ctx.engine.db.clone();
                    let swept = actix_web::rt::task::spawn_blocking(move || {
                        let now = citecast_actors::dates::now_secs();
                        let tokens = super::Logins::open(&db)
                            .and_then(|l| l.sweep_tokens(now))
                            .map_err(|e| e.to_string())?;
                        let sessions = crate::web::session::SledSessions::open(&db)
                            .and_then(|s| s.sweep())
                            .map_err(|e| e.to_string())?;
                        Ok::<_, String>(tokens + sessions)
                    })
                    .await
                    .map_err(fail)?
                    .map_err(fail)?;
                    Ok(swept as u64)
                })
            },
        },
    ]
}
