//! The ingest actor: runs imports one at a time, writing through the store and index
//! actors.

use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;

use super::index::{ClearIndex, CommitIndex, IndexActor, IndexDocCount, UpsertPapers};
use super::store::{ApplyBatch, FlushStore, GetStats, PapersAfter, StoreActor};

use futures::executor::block_on as block;

use crate::imports::Imports;
use crate::ingest::SourceFormat;
use crate::ingest::{self, IngestError, IngestOptions, IngestReport, ProgressFn, Sink};
use crate::store::{BatchOutcome, WriteBatch, DEFAULT_COLLECTION};

/// Runs imports one at a time, writing through the store and index actors.
pub struct IngestActor {
    sink: ActorSink,
    imports: Imports,
    options: IngestOptions,
}

impl IngestActor {
    pub fn new(
        store: Addr<StoreActor>,
        index: Addr<IndexActor>,
        imports: Imports,
        options: IngestOptions,
    ) -> Self {
        IngestActor { sink: ActorSink { store, index }, imports, options }
    }

    /// Imports files in order, recorded in [`Imports`] from before the first line to the
    /// outcome, with progress noted every few seconds.
    fn import(
        &mut self,
        source: &str,
        paths: &[PathBuf],
        progress: Option<ProgressFn>,
        choice: Choice,
    ) -> Result<Vec<IngestReport>, IngestError> {
        let mut options = self.options.clone();
        if let Some(n) = choice.max_refs_per_paper {
            options.max_refs_per_paper = n;
        }
        if let Some(name) = &choice.collection {
            crate::store::check_collection_name(name).map_err(IngestError::InvalidCollection)?;
        }
        options.format = choice.format;
        options.collection = choice.collection;
        let files = paths.iter().map(|p| p.display().to_string()).collect();
        let record = self.imports.start(source, files)?;
        let (imports, id) = (self.imports.clone(), record.id.clone());
        let lines_before = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let last_note = Arc::new(std::sync::Mutex::new(std::time::Instant::now()));
        let lb = lines_before.clone();
        let tracked: ProgressFn = Arc::new(move |p: &ingest::Progress| {
            if let Some(f) = &progress {
                f(p);
            }
            if let Ok(mut last) = last_note.lock() {
                if last.elapsed() >= std::time::Duration::from_secs(2) {
                    *last = std::time::Instant::now();
                    let lines = lb.load(std::sync::atomic::Ordering::Relaxed) + p.lines;
                    let _ = imports.progress(&id, lines);
                }
            }
        });
        let mut reports = Vec::with_capacity(paths.len());
        let mut record = record;
        for path in paths {
            match ingest::ingest_file_with(path, &mut self.sink, Some(&tracked), &options) {
                Ok(report) => {
                    tracing::info!(
                        file = %report.file,
                        papers_new = report.papers_new,
                        citations_new = report.citations_new,
                        errors = report.errors,
                        "ingested"
                    );
                    lines_before.fetch_add(report.lines, std::sync::atomic::Ordering::Relaxed);
                    record.lines += report.lines;
                    record.papers_new += report.papers_new;
                    record.citations_new += report.citations_new;
                    record.errors += report.errors;
                    reports.push(report);
                }
                Err(e) => {
                    if let Err(re) = self.imports.finish(record, Err(e.to_string())) {
                        tracing::error!(error = %re, "cannot record the failed import");
                    }
                    return Err(e);
                }
            }
        }
        self.imports.finish(record, Ok(()))?;
        Ok(reports)
    }
}

/// What one import overrides of the engine's ingest options.
#[derive(Default)]
struct Choice {
    max_refs_per_paper: Option<usize>,
    format: SourceFormat,
    collection: Option<String>,
}

impl Actor for IngestActor {
    type Context = SyncContext<Self>;
}

/// Writes batches by message. Runs on the ingest actor's own thread, so blocking on
/// the replies is fine there.
struct ActorSink {
    store: Addr<StoreActor>,
    index: Addr<IndexActor>,
}

fn mailbox(e: MailboxError) -> IngestError {
    IngestError::Mailbox(e.to_string())
}

impl Sink for ActorSink {
    fn write(&mut self, batch: WriteBatch) -> Result<BatchOutcome, IngestError> {
        let collection = batch.collection.clone().unwrap_or_else(|| DEFAULT_COLLECTION.to_string());
        let mut outcome = block(self.store.send(ApplyBatch(batch))).map_err(mailbox)??;
        if !outcome.changed_papers.is_empty() {
            let papers = std::mem::take(&mut outcome.changed_papers);
            block(self.index.send(UpsertPapers { papers, collection })).map_err(mailbox)??;
        }
        Ok(outcome)
    }

    fn commit(&mut self) -> Result<(), IngestError> {
        block(self.index.send(CommitIndex)).map_err(mailbox)??;
        block(self.store.send(FlushStore)).map_err(mailbox)??;
        Ok(())
    }
}

/// Imports files in order and reports on each.
#[derive(Default)]
pub struct IngestFiles {
    pub paths: Vec<PathBuf>,
    pub progress: Option<ProgressFn>,
    /// Overrides the engine's cap on references per paper for this import.
    pub max_refs_per_paper: Option<usize>,
    /// How paper records are read (`auto` sniffs each file).
    pub format: SourceFormat,
    /// The collection the papers go to; `None`: each file's format's own.
    pub collection: Option<String>,
}

impl Message for IngestFiles {
    type Result = Result<Vec<IngestReport>, IngestError>;
}

impl Handler<IngestFiles> for IngestActor {
    type Result = Result<Vec<IngestReport>, IngestError>;
    fn handle(&mut self, msg: IngestFiles, _: &mut Self::Context) -> Self::Result {
        let choice = Choice {
            max_refs_per_paper: msg.max_refs_per_paper,
            format: msg.format,
            collection: msg.collection,
        };
        self.import(crate::imports::SOURCE_INGEST, &msg.paths, msg.progress, choice)
    }
}

/// Loads the bundled data: as [`IngestFiles`], recorded as the bundled import, which a
/// start redoes until one completed.
pub struct ImportBundled {
    pub paths: Vec<PathBuf>,
    pub progress: Option<ProgressFn>,
}

impl Message for ImportBundled {
    type Result = Result<Vec<IngestReport>, IngestError>;
}

impl Handler<ImportBundled> for IngestActor {
    type Result = Result<Vec<IngestReport>, IngestError>;
    fn handle(&mut self, msg: ImportBundled, _: &mut Self::Context) -> Self::Result {
        self.import(crate::imports::SOURCE_BUNDLED, &msg.paths, msg.progress, Choice::default())
    }
}

/// Rebuilds the index from the store when their document counts differ (an index
/// lost, from an older schema, or interrupted mid-import). Returns whether it rebuilt.
pub struct Reconcile {
    pub progress: Option<ProgressFn>,
}

impl Message for Reconcile {
    type Result = Result<bool, IngestError>;
}

impl Handler<Reconcile> for IngestActor {
    type Result = Result<bool, IngestError>;
    fn handle(&mut self, msg: Reconcile, _: &mut Self::Context) -> Self::Result {
        let sink = &self.sink;
        let stats = block(sink.store.send(GetStats)).map_err(mailbox)??;
        let docs = block(sink.index.send(IndexDocCount)).map_err(mailbox)?;
        if docs == stats.papers {
            return Ok(false);
        }
        tracing::warn!(
            index_docs = docs,
            papers = stats.papers,
            "index out of step with the store; rebuilding it"
        );
        block(sink.index.send(ClearIndex)).map_err(mailbox)??;
        let mut after = None;
        let mut done = 0u64;
        loop {
            let chunk = block(sink.store.send(PapersAfter { after: after.take(), limit: 2_000 }))
                .map_err(mailbox)??;
            let Some((last, _)) = chunk.last() else { break };
            after = Some(last.id.clone());
            done += chunk.len() as u64;
            // The index files each paper under its collection, as an ingest does.
            let mut by_collection: std::collections::BTreeMap<String, Vec<_>> = Default::default();
            for (paper, collection) in chunk {
                by_collection.entry(collection).or_default().push(paper);
            }
            for (collection, papers) in by_collection {
                block(sink.index.send(UpsertPapers { papers, collection })).map_err(mailbox)??;
            }
            if let Some(p) = &msg.progress {
                p(&ingest::Progress {
                    file: "index rebuild".into(),
                    bytes_read: done,
                    bytes_total: stats.papers,
                    lines: done,
                });
            }
        }
        block(sink.index.send(CommitIndex)).map_err(mailbox)??;
        Ok(true)
    }
}
