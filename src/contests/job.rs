//! The `contests` job (every minute): enters the model in open contests that lack its
//! picks, locks contests at their deadline and scores those the data resolves, each step
//! audited and announced.

use crate::ops::jobs::{fail, spec, Job};

pub fn jobs() -> Vec<Job> {
    vec![Job {
        spec: spec("contests", "every 1m", 60, None),
        run: |ctx| {
            Box::pin(async move {
                let now = citecast_actors::dates::now_secs();
                super::service::tick(&ctx.engine, &ctx.accounts, now).await.map_err(fail)
            })
        },
    }]
}
