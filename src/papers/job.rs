//! The `ingest` job: imports files dropped into `DATA_DIR/inbox`.

use std::path::PathBuf;

use citecast_actors::actors::IngestFiles;
use citecast_actors::Engine;

use crate::ops::jobs::{fail, spec, Job, JobResult, JobsConfig};

pub fn jobs() -> Vec<Job> {
    vec![Job {
        spec: spec("ingest", "every 5m", 60, None),
        run: |ctx| Box::pin(async move { ingest_inbox(&ctx.engine, &ctx.config).await }),
    }]
}

/// Imports the files waiting in the inbox, oldest name first, and moves each to
/// `inbox/done` (or `inbox/failed` with its error beside it).
async fn ingest_inbox(engine: &Engine, config: &JobsConfig) -> JobResult {
    let inbox = config.inbox();
    let Ok(entries) = std::fs::read_dir(&inbox) else { return Ok(0) };
    let mut files: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    files.sort();
    let mut new = 0;
    for f in files {
        let name = f.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        let result = engine
            .ingest
            .send(IngestFiles { paths: vec![f.clone()], ..Default::default() })
            .await
            .map_err(fail)?;
        match result {
            Ok(reports) => {
                new += reports.iter().map(|r| r.new_records()).sum::<u64>();
                let done = inbox.join("done");
                std::fs::create_dir_all(&done).map_err(|e| (new, e.to_string()))?;
                std::fs::rename(&f, done.join(&name)).map_err(|e| (new, e.to_string()))?;
            }
            Err(e) => {
                let failed = inbox.join("failed");
                let _ = std::fs::create_dir_all(&failed);
                let _ = std::fs::rename(&f, failed.join(&name));
                let _ =
                    std::fs::write(failed.join(format!("{}.error", name.to_string_lossy())), e.to_string());
                return Err((new, format!("{}: {e}", f.display())));
            }
        }
    }
    if new > 0 {
        // New data: warm the models step by step now rather than in the first forecasts.
        let engine = engine.clone();
        actix_web::rt::spawn(async move { crate::forecasts::warm_models(&engine).await });
    }
    Ok(new)
}
