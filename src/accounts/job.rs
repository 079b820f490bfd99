//! The `churn` job: daily, the customers whose usage dropped, went quiet or lost every key.

use crate::ops::jobs::{fail, spec, Job};

pub fn jobs() -> Vec<Job> {
    vec![Job {
        spec: spec("churn", "daily 06:00", 300, None),
        run: |ctx| {
            Box::pin(async move {
                let today = citecast_actors::dates::today();
                let (found, examined) = ctx
                    .engine
                    .store
                    .send(citecast_actors::actors::ComputeChurn { today })
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
