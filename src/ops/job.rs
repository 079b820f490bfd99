//! The operator's scheduled work: the daily backup with retention, and the archive of
//! old forecast and usage records.

use std::path::{Path, PathBuf};

use citecast_actors::actors::{ArchiveOld, BackupTo};
use citecast_actors::dates::now_secs;
use citecast_actors::Engine;

use crate::ops::jobs::{fail, spec, Job, JobResult, JobsConfig};

pub fn jobs() -> Vec<Job> {
    vec![
        Job {
            spec: spec("backup", "daily 03:00", 300, None),
            run: |ctx| Box::pin(async move { backup(&ctx.engine, &ctx.config).await }),
        },
        Job {
            spec: spec("archive", "daily 04:00", 300, Some(5_000_000)),
            run: |ctx| {
                Box::pin(async move {
                    let budget = ctx.budget.unwrap_or(u64::MAX).min(usize::MAX as u64) as usize;
                    let msg = ArchiveOld::older_than(ctx.config.archive_after_days, budget);
                    let out = ctx.engine.store.send(msg).await.map_err(fail)?.map_err(fail)?;
                    Ok(out.forecasts_moved + out.usage_moved)
                })
            },
        },
    ]
}

/// A timestamped backup into the backup directory, then retention.
async fn backup(engine: &Engine, config: &JobsConfig) -> JobResult {
    std::fs::create_dir_all(&config.backup_dir).map_err(fail)?;
    // Milliseconds keep two runs in one second apart; names still sort by time.
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_millis())
        .unwrap_or(0);
    let stamp = format!("{}-{millis:03}", citecast_actors::dates::format_secs_compact(now_secs()));
    let path = config.backup_dir.join(format!("citecast-{stamp}.ccbak"));
    let summary = engine.store.send(BackupTo(path)).await.map_err(fail)?.map_err(fail)?;
    prune_backups(&config.backup_dir, config.backup_keep).map_err(|e| (summary.entries, e.to_string()))?;
    Ok(summary.entries)
}

/// Deletes all but the newest `keep` scheduled backups (names sort by time).
pub fn prune_backups(dir: &Path, keep: usize) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("citecast-") && name.ends_with(".ccbak")
        })
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(keep.max(1));
    let removed: Vec<PathBuf> = files.drain(..excess).collect();
    for f in &removed {
        std::fs::remove_file(f)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_keeps_the_newest_backups_only() {
        let dir = tempfile::tempdir().unwrap();
        for stamp in ["20261101-030000", "20261102-030000", "20261103-030000", "20261104-030000"] {
            std::fs::write(dir.path().join(format!("citecast-{stamp}.ccbak")), b"x").unwrap();
        }
        std::fs::write(dir.path().join("manual.ccbak"), b"x").unwrap();
        let removed = prune_backups(dir.path(), 2).unwrap();
        assert_eq!(removed.len(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["citecast-20261103-030000.ccbak", "citecast-20261104-030000.ccbak", "manual.ccbak"]
        );
    }
}
