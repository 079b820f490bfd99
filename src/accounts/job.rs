//! The `churn` job: daily, the customers whose usage dropped, went quiet or lost every key.

use citecast_actors::journal::Journal;

use crate::ops::jobs::{fail, spec, Job};

pub fn jobs() -> Vec<Job> {
    vec![Job {
        spec: spec("churn", "daily 06:00", 300, None),
        run: |ctx| {
            Box::pin(async move {
                let today = citecast_actors::dates::today();
                let (accounts, db) = (ctx.accounts.clone(), ctx.engine.db.clone());
                // Reads every customer's keys and usage: on the blocking pool.
                let (found, examined) = actix_web::rt::task::spawn_blocking(move || {
                    let journal = Journal::open(&db).map_err(|e| e.to_string())?;
                    super::churn::compute(accounts.as_ref(), &journal, &db, today).map_err(|e| e.to_string())
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
    }]
}
