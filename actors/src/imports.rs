//! The record of every import: which files, from where, how far it got and how it
//! ended. An import is written as `running` before its first line is read, so a process
//! killed mid-import leaves a record that the next start marks `interrupted`; the first
//! start's bundled import is redone (idempotently) until its record says `completed`,
//! and readiness waits for that. Re-running an interrupted import's files completes it.
//!
//! | tree      | key           | value                    |
//! |-----------|---------------|--------------------------|
//! | `imports` | id (time-ordered) | [`ImportRecord`] (codec) |

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::store::StoreError;

/// Where an import came from.
pub const SOURCE_BUNDLED: &str = "bundled";
pub const SOURCE_INGEST: &str = "ingest";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    Running,
    Completed,
    /// Stopped by an error; the message says which.
    Failed,
    /// The process stopped mid-import (killed, crashed, powered off).
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRecord {
    pub id: String,
    /// [`SOURCE_BUNDLED`] or [`SOURCE_INGEST`].
    pub source: String,
    pub files: Vec<String>,
    pub status: ImportStatus,
    /// Unix seconds.
    pub started: i64,
    pub finished: Option<i64>,
    /// Lines read so far (written every few seconds while running).
    pub lines: u64,
    pub papers_new: u64,
    pub citations_new: u64,
    pub errors: u64,
    /// Why it failed, or which later import completed an interrupted one.
    pub note: Option<String>,
}

#[derive(Clone)]
pub struct Imports {
    tree: sled::Tree,
}

type Result<T> = std::result::Result<T, StoreError>;

impl Imports {
    pub fn open(db: &sled::Db) -> Result<Imports> {
        Ok(Imports { tree: db.open_tree("imports")? })
    }

    fn put(&self, r: &ImportRecord) -> Result<()> {
        self.tree.insert(r.id.as_bytes(), codec::encode(r)?)?;
        // Small and rare: make the record durable before the work it describes.
        self.tree.flush()?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Option<ImportRecord>> {
        Ok(match self.tree.get(id.as_bytes())? {
            Some(v) => Some(codec::decode(&v)?),
            None => None,
        })
    }

    /// Every import, oldest first.
    pub fn list(&self) -> Result<Vec<ImportRecord>> {
        self.tree.iter().values().map(|v| Ok(codec::decode(&v?)?)).collect()
    }

    /// Records an import as running, before it reads anything.
    pub fn start(&self, source: &str, files: Vec<String>) -> Result<ImportRecord> {
        let now = crate::dates::now_secs();
        // Zero-padded time then a counter: ids sort in start order.
        let n = self.tree.len();
        let r = ImportRecord {
            id: format!("imp_{now:012}_{n:06}"),
            source: source.to_string(),
            files,
            status: ImportStatus::Running,
            started: now,
            finished: None,
            lines: 0,
            papers_new: 0,
            citations_new: 0,
            errors: 0,
            note: None,
        };
        self.put(&r)?;
        Ok(r)
    }

    /// Notes progress of a running import (not flushed: a lost update only understates it).
    pub fn progress(&self, id: &str, lines: u64) -> Result<()> {
        if let Some(mut r) = self.get(id)? {
            r.lines = lines;
            self.tree.insert(r.id.as_bytes(), codec::encode(&r)?)?;
        }
        Ok(())
    }

    /// Ends an import. A completed one also completes every earlier interrupted or failed
    /// import of the same files and source: the re-run wrote whatever they had not.
    pub fn finish(&self, mut r: ImportRecord, outcome: std::result::Result<(), String>) -> Result<()> {
        r.finished = Some(crate::dates::now_secs());
        match outcome {
            Ok(()) => {
                r.status = ImportStatus::Completed;
                for mut old in self.list()? {
                    if old.id != r.id
                        && old.source == r.source
                        && old.files == r.files
                        && matches!(old.status, ImportStatus::Interrupted | ImportStatus::Failed)
                    {
                        old.status = ImportStatus::Completed;
                        old.note = Some(format!("completed by the re-run {}", r.id));
                        self.put(&old)?;
                    }
                }
            }
            Err(e) => {
                r.status = ImportStatus::Failed;
                r.note = Some(e);
            }
        }
        self.put(&r)
    }

    /// At start, before any import runs: whatever was running was cut short.
    pub fn mark_interrupted(&self) -> Result<Vec<ImportRecord>> {
        let mut out = Vec::new();
        for mut r in self.list()? {
            if r.status == ImportStatus::Running {
                r.status = ImportStatus::Interrupted;
                self.put(&r)?;
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Imports that did not complete (interrupted or failed) and no re-run has completed.
    pub fn incomplete(&self) -> Result<Vec<ImportRecord>> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|r| matches!(r.status, ImportStatus::Interrupted | ImportStatus::Failed))
            .collect())
    }
}

/// How far the bundled data's first load got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundledState {
    /// No bundled import on record: the caller decides (an empty store loads it).
    NeverStarted,
    /// Started and never completed: it must be redone before the server is ready.
    Unfinished,
    Completed,
}

pub fn bundled_state(records: &[ImportRecord]) -> BundledState {
    let mut bundled = records.iter().filter(|r| r.source == SOURCE_BUNDLED).peekable();
    if bundled.peek().is_none() {
        BundledState::NeverStarted
    } else if bundled.any(|r| r.status == ImportStatus::Completed) {
        BundledState::Completed
    } else {
        BundledState::Unfinished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_cut_short_is_interrupted_until_a_rerun_completes_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let imports = Imports::open(&db).unwrap();
        assert_eq!(bundled_state(&imports.list().unwrap()), BundledState::NeverStarted);
        let files = vec!["a.jsonl".to_string(), "b.tsv".to_string()];
        let first = imports.start(SOURCE_BUNDLED, files.clone()).unwrap();
        imports.progress(&first.id, 500).unwrap();
        assert_eq!(bundled_state(&imports.list().unwrap()), BundledState::Unfinished);

        // The process dies; the next start marks it.
        let cut = imports.mark_interrupted().unwrap();
        assert_eq!(cut.len(), 1);
        assert_eq!(cut[0].lines, 500);
        assert_eq!(imports.incomplete().unwrap().len(), 1);
        assert_eq!(bundled_state(&imports.list().unwrap()), BundledState::Unfinished);

        // A different file set does not complete it; the same files do.
        let other = imports.start(SOURCE_INGEST, files.clone()).unwrap();
        imports.finish(other, Ok(())).unwrap();
        assert_eq!(imports.incomplete().unwrap().len(), 1);
        let rerun = imports.start(SOURCE_BUNDLED, files).unwrap();
        imports.finish(rerun.clone(), Ok(())).unwrap();
        assert!(imports.incomplete().unwrap().is_empty());
        assert_eq!(bundled_state(&imports.list().unwrap()), BundledState::Completed);
        let old = imports.get(&first.id).unwrap().unwrap();
        assert_eq!(old.status, ImportStatus::Completed);
        assert!(old.note.unwrap().contains(&rerun.id));

        // A failure is kept with its reason.
        let bad = imports.start(SOURCE_INGEST, vec!["c".into()]).unwrap();
        imports.finish(bad.clone(), Err("disk full".into())).unwrap();
        let bad = imports.get(&bad.id).unwrap().unwrap();
        assert_eq!((bad.status, bad.note.as_deref()), (ImportStatus::Failed, Some("disk full")));
    }
}
