//! The actors: thin shells that own one piece of state each and turn messages into
//! calls on the plain modules ([`crate::store`], [`crate::index`], [`crate::ingest`]).
//!
//! All three run on `SyncArbiter` threads because their work blocks (sled reads,
//! tantivy commits, file parsing); the async HTTP workers only await replies.
//! Keeping the logic out of the handlers means the actor runtime could be swapped
//! without touching it.

use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;
use futures::executor::block_on as block;

use crate::accounts::{AccountError, Accounts, ApiKey, Auth, Customer, NewKey, Version};
use crate::forecast::rollout::{Rollouts, RouteTable, Transition};
use crate::forecast::service::{
    Forecast, ForecastError, ForecastService, ModelSummary, NewPaper, RolloutReport, RolloutSpec, Route,
};
use crate::forecast::task::Mode;
use crate::imports::{ImportRecord, Imports};
use crate::index::{IndexError, SearchRequest, SearchResults, TopicIndex};
use crate::ingest::{self, IngestError, IngestOptions, IngestReport, ProgressFn, Sink};
use crate::journal::{ArchiveOutcome, AuditEntry, Journal, UsageDay};
use crate::records::ForecastRecord;
use crate::records::Paper;
use crate::store::{
    AuthorView, BatchOutcome, CitationPage, Direction, PaperView, Stats, Store, StoreError, WriteBatch,
};

/// Declares a message, its reply type, and the handler body on the actor's state.
macro_rules! message {
    ($actor:ty, $state:ident, $msg:ty => $reply:ty, |$s:ident, $m:pat_param| $body:expr) => {
        impl Message for $msg {
            type Result = $reply;
        }
        impl Handler<$msg> for $actor {
            type Result = $reply;
            fn handle(&mut self, msg: $msg, _: &mut Self::Context) -> $reply {
                let $s = &self.$state;
                let $m = msg;
                $body
            }
        }
    };
}

// ---------------------------------------------------------------- store

/// Owns the sled store. Started with several threads; sled handles concurrent readers
/// and [`Store::apply`] serialises writers.
pub struct StoreActor {
    store: Store,
    accounts: Accounts,
    journal: Journal,
    imports: Imports,
    /// The index directory and handle, read (never written) by backups.
    index: Option<(PathBuf, Arc<TopicIndex>)>,
}

impl StoreActor {
    pub fn new(store: Store, accounts: Accounts, journal: Journal, imports: Imports) -> Self {
        StoreActor { store, accounts, journal, imports, index: None }
    }

    /// Backups also copy this index's committed files.
    pub fn with_index(mut self, dir: PathBuf, index: Arc<TopicIndex>) -> Self {
        self.index = Some((dir, index));
        self
    }
}

impl Actor for StoreActor {
    type Context = SyncContext<Self>;
}

/// A paper with its citation counts and top citing papers; `id` may be an alias.
pub struct GetPaper {
    pub id: String,
}
message!(StoreActor, store, GetPaper => Result<Option<PaperView>, StoreError>, |s, m| {
    match s.resolve(&m.id)? {
        Some(id) => s.paper_view(&id),
        None => Ok(None),
    }
});

/// The raw stored paper; `id` may be an alias.
pub struct GetPaperRecord {
    pub id: String,
}
message!(StoreActor, store, GetPaperRecord => Result<Option<Paper>, StoreError>, |s, m| {
    match s.resolve(&m.id)? {
        Some(id) => s.paper(&id),
        None => Ok(None),
    }
});

/// A page of citations with the paper's canonical id; `None` when the paper is unknown.
pub struct GetCitations {
    pub id: String,
    pub direction: Direction,
    pub cursor: Option<Vec<u8>>,
    pub limit: usize,
}
message!(StoreActor, store, GetCitations => Result<Option<(String, CitationPage)>, StoreError>, |s, m| {
    match s.resolve(&m.id)? {
        Some(id) => Ok(Some((id.clone(), s.citations(&id, m.direction, m.cursor.as_deref(), m.limit)?))),
        None => Ok(None),
    }
});

pub struct GetAuthor {
    pub key: String,
}
message!(StoreActor, store, GetAuthor => Result<Option<AuthorView>, StoreError>, |s, m| s.author_view(&m.key));

pub struct GetStats;
message!(StoreActor, store, GetStats => Result<Stats, StoreError>, |s, _m| s.stats());

pub struct ApplyBatch(pub WriteBatch);
message!(StoreActor, store, ApplyBatch => Result<BatchOutcome, StoreError>, |s, m| s.apply(m.0));

/// Papers in id order after `after`, for rebuilding the index in chunks.
pub struct PapersAfter {
    pub after: Option<String>,
    pub limit: usize,
}
message!(StoreActor, store, PapersAfter => Result<Vec<Paper>, StoreError>, |s, m| {
    s.papers_after(m.after.as_deref(), m.limit)
});

/// Writes a consistent backup of the store to a file.
pub struct BackupTo(pub PathBuf);

impl Message for BackupTo {
    type Result = Result<crate::backup::BackupSummary, crate::backup::BackupError>;
}

impl Handler<BackupTo> for StoreActor {
    type Result = Result<crate::backup::BackupSummary, crate::backup::BackupError>;
    fn handle(&mut self, m: BackupTo, _: &mut Self::Context) -> Self::Result {
        let source = self
            .index
            .as_ref()
            .map(|(dir, live)| crate::backup::IndexSource { dir: dir.as_path(), live: Some(live.as_ref()) });
        crate::backup::backup_with_index(&self.store, source, &m.0)
    }
}

/// Ids and submission days of the newest papers, newest first.
pub struct RecentPaperIds {
    pub limit: usize,
}
message!(StoreActor, store, RecentPaperIds => Result<Vec<(String, crate::dates::Day)>, StoreError>, |s, m| {
    s.recent_ids(m.limit)
});

pub struct FlushStore;
message!(StoreActor, store, FlushStore => Result<(), StoreError>, |s, _m| s.flush());

// ---------------------------------------------------------------- journal

pub struct AppendForecasts(pub Vec<ForecastRecord>);
message!(StoreActor, journal, AppendForecasts => Result<(), StoreError>, |j, m| j.append_forecasts(&m.0));

/// Forecast records with `from <= at < to`, archived and live, oldest first.
pub struct ReadForecasts {
    pub from: i64,
    pub to: i64,
    pub limit: usize,
}
message!(StoreActor, journal, ReadForecasts => Result<Vec<ForecastRecord>, StoreError>, |j, m| {
    j.forecasts_between(m.from, m.to, m.limit)
});

pub struct AppendAudit(pub AuditEntry);
message!(StoreActor, journal, AppendAudit => Result<AuditEntry, StoreError>, |j, m| j.append_audit(m.0));

pub struct ReadAudit {
    pub after: Option<u64>,
    pub limit: usize,
}
message!(StoreActor, journal, ReadAudit => Result<Vec<AuditEntry>, StoreError>, |j, m| {
    j.audit_entries(m.after, m.limit)
});

/// Moves old forecast records and usage days into the archive tree.
pub struct ArchiveOld {
    pub forecasts_before: i64,
    pub usage_before: crate::dates::Day,
    pub budget: usize,
}

impl ArchiveOld {
    /// Everything older than `days` days from now, at most `budget` records.
    pub fn older_than(days: u32, budget: usize) -> ArchiveOld {
        let cutoff = crate::dates::now_secs() - days as i64 * 86_400;
        ArchiveOld { forecasts_before: cutoff, usage_before: crate::dates::day_of_secs(cutoff), budget }
    }
}
message!(StoreActor, journal, ArchiveOld => Result<ArchiveOutcome, StoreError>, |j, m| {
    j.archive(m.forecasts_before, m.usage_before, m.budget)
});

pub struct UsageBetween {
    pub principal: String,
    pub from: crate::dates::Day,
    pub to: crate::dates::Day,
}
message!(StoreActor, journal, UsageBetween => Result<Vec<UsageDay>, StoreError>, |j, m| {
    j.usage_between(&m.principal, m.from, m.to)
});

/// Recomputes every customer's churn signals for `today` and stores them; returns the
/// customers with signals and how many were examined.
pub struct ComputeChurn {
    pub today: crate::dates::Day,
}

impl Message for ComputeChurn {
    type Result = Result<(Vec<crate::churn::ChurnSignal>, u64), crate::churn::ChurnError>;
}

impl Handler<ComputeChurn> for StoreActor {
    type Result = Result<(Vec<crate::churn::ChurnSignal>, u64), crate::churn::ChurnError>;
    fn handle(&mut self, m: ComputeChurn, _: &mut Self::Context) -> Self::Result {
        let tree = self.store.db().open_tree("churn_signals").map_err(StoreError::from)?;
        crate::churn::compute(&self.accounts, &self.journal, &tree, m.today)
    }
}

/// The churn signals the last `churn` run stored.
pub struct GetChurnSignals;
message!(StoreActor, store, GetChurnSignals => Result<Vec<crate::churn::ChurnSignal>, StoreError>, |s, _m| {
    crate::churn::stored(&s.db().open_tree("churn_signals")?)
});

/// Stores a newsletter issue (unless its week is already built): (number, new).
pub struct SaveNewsletter(pub crate::newsletter::Issue);
message!(StoreActor, store, SaveNewsletter => Result<(u32, bool), StoreError>, |s, m| {
    crate::newsletter::save(&s.db().open_tree("newsletters")?, m.0)
});

pub struct ListNewsletters;
message!(StoreActor, store, ListNewsletters => Result<Vec<crate::newsletter::Issue>, StoreError>, |s, _m| {
    crate::newsletter::list(&s.db().open_tree("newsletters")?)
});

pub struct GetNewsletter(pub u32);
message!(StoreActor, store, GetNewsletter => Result<Option<crate::newsletter::Issue>, StoreError>, |s, m| {
    crate::newsletter::get(&s.db().open_tree("newsletters")?, m.0)
});

pub struct JournalSizes;
message!(StoreActor, journal, JournalSizes => Result<(usize, Vec<(String, u64)>), StoreError>, |j, _m| {
    Ok((j.live_forecast_count(), j.archive_chunks()?))
});

// ---------------------------------------------------------------- accounts

pub struct AddCustomer {
    pub name: String,
    pub email: String,
    pub tier: String,
}
message!(StoreActor, accounts, AddCustomer => Result<(Customer, NewKey), AccountError>, |a, m| {
    a.add_customer(&m.name, &m.email, &m.tier)
});

pub struct ListCustomers {
    pub after: Option<String>,
    pub limit: usize,
}
message!(StoreActor, accounts, ListCustomers => Result<Vec<Customer>, AccountError>, |a, m| {
    a.customers(m.after.as_deref(), m.limit)
});

pub struct GetCustomer(pub String);
message!(StoreActor, accounts, GetCustomer => Result<Option<Customer>, AccountError>, |a, m| a.customer(&m.0));

pub struct SetTier {
    pub customer_id: String,
    pub tier: String,
}
message!(StoreActor, accounts, SetTier => Result<Customer, AccountError>, |a, m| a.set_tier(&m.customer_id, &m.tier));

/// Changes a customer's name and/or e-mail address.
pub struct EditCustomer {
    pub customer_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
}
message!(StoreActor, accounts, EditCustomer => Result<Customer, AccountError>, |a, m| {
    a.edit_customer(&m.customer_id, m.name.as_deref(), m.email.as_deref())
});

/// Suspends (`suspended: true`) or reactivates a customer.
pub struct SuspendCustomer {
    pub customer_id: String,
    pub suspended: bool,
}
message!(StoreActor, accounts, SuspendCustomer => Result<Customer, AccountError>, |a, m| {
    a.set_suspended(&m.customer_id, m.suspended)
});

/// Deletes a customer and its keys; answers the record as it was.
pub struct DeleteCustomer(pub String);
message!(StoreActor, accounts, DeleteCustomer => Result<Customer, AccountError>, |a, m| a.delete_customer(&m.0));

pub struct IssueKey {
    pub customer_id: String,
    pub name: String,
    /// The tier's cap on active keys; `None` for none.
    pub max_active: Option<usize>,
}
message!(StoreActor, accounts, IssueKey => Result<NewKey, AccountError>, |a, m| a.issue_key(&m.customer_id, &m.name, m.max_active));

pub struct ListKeys(pub String);
message!(StoreActor, accounts, ListKeys => Result<Vec<ApiKey>, AccountError>, |a, m| a.keys_of(&m.0));

pub struct GetKey(pub String);
message!(StoreActor, accounts, GetKey => Result<Option<ApiKey>, AccountError>, |a, m| a.key(&m.0));

pub struct RevokeKey(pub String);
message!(StoreActor, accounts, RevokeKey => Result<ApiKey, AccountError>, |a, m| a.revoke(&m.0));

pub struct RotateKey(pub String);
message!(StoreActor, accounts, RotateKey => Result<NewKey, AccountError>, |a, m| a.rotate(&m.0));

pub struct Authenticate(pub String);
message!(StoreActor, accounts, Authenticate => Result<Auth, AccountError>, |a, m| a.authenticate(&m.0));

// ---------------------------------------------------------------- index

/// Owns the tantivy index (its single writer and its reader).
pub struct IndexActor {
    index: Arc<TopicIndex>,
}

impl IndexActor {
    pub fn new(index: Arc<TopicIndex>) -> Self {
        IndexActor { index }
    }
}

impl Actor for IndexActor {
    type Context = SyncContext<Self>;
}

pub struct Search(pub SearchRequest);
message!(IndexActor, index, Search => Result<SearchResults, IndexError>, |ix, m| ix.search(&m.0));

pub struct UpsertPapers(pub Vec<Paper>);
message!(IndexActor, index, UpsertPapers => Result<(), IndexError>, |ix, m| ix.upsert(&m.0));

pub struct CommitIndex;
message!(IndexActor, index, CommitIndex => Result<(), IndexError>, |ix, _m| ix.commit());

pub struct ClearIndex;
message!(IndexActor, index, ClearIndex => Result<(), IndexError>, |ix, _m| ix.clear());

pub struct IndexDocCount;
message!(IndexActor, index, IndexDocCount => u64, |ix, _m| ix.num_docs());

// ---------------------------------------------------------------- ingest

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
        max_refs_per_paper: Option<usize>,
    ) -> Result<Vec<IngestReport>, IngestError> {
        let mut options = self.options.clone();
        if let Some(n) = max_refs_per_paper {
            options.max_refs_per_paper = n;
        }
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
        let mut outcome = block(self.store.send(ApplyBatch(batch))).map_err(mailbox)??;
        if !outcome.changed_papers.is_empty() {
            let papers = std::mem::take(&mut outcome.changed_papers);
            block(self.index.send(UpsertPapers(papers))).map_err(mailbox)??;
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
pub struct IngestFiles {
    pub paths: Vec<PathBuf>,
    pub progress: Option<ProgressFn>,
    /// Overrides the engine's cap on references per paper for this import.
    pub max_refs_per_paper: Option<usize>,
}

impl Message for IngestFiles {
    type Result = Result<Vec<IngestReport>, IngestError>;
}

impl Handler<IngestFiles> for IngestActor {
    type Result = Result<Vec<IngestReport>, IngestError>;
    fn handle(&mut self, msg: IngestFiles, _: &mut Self::Context) -> Self::Result {
        self.import(crate::imports::SOURCE_INGEST, &msg.paths, msg.progress, msg.max_refs_per_paper)
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
        self.import(crate::imports::SOURCE_BUNDLED, &msg.paths, msg.progress, None)
    }
}

/// Every import on record, oldest first (answered by the store actor, so it works
/// while an import keeps the ingest actor busy).
pub struct ListImports;
message!(StoreActor, imports, ListImports => Result<Vec<ImportRecord>, StoreError>, |i, _m| i.list());

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
            let Some(last) = chunk.last() else { break };
            after = Some(last.id.clone());
            done += chunk.len() as u64;
            block(sink.index.send(UpsertPapers(chunk))).map_err(mailbox)??;
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

// ---------------------------------------------------------------- model

/// A corpus snapshot for the model actor.
pub struct BuildCorpus;
message!(StoreActor, store, BuildCorpus => Result<crate::forecast::corpus::Corpus, StoreError>, |s, _m| {
    crate::forecast::corpus::Corpus::from_store(s)
});

/// Owns the loaded forecast models and the corpus snapshot their features read; the
/// snapshot is rebuilt when the store's data generation moves.
pub struct ModelActor {
    service: ForecastService,
    store: Addr<StoreActor>,
    data_version: Version,
    /// Bumped when the active model of a mode changes; forecast caches compare it.
    models_version: Version,
    corpus_generation: Option<u64>,
    /// The running rollouts' shares, published for the HTTP layer's routing and caching.
    routes: RouteTable,
}

impl ModelActor {
    pub fn new(
        service: ForecastService,
        store: Addr<StoreActor>,
        data_version: Version,
        models_version: Version,
        routes: RouteTable,
    ) -> Self {
        routes.set(service.routes());
        ModelActor { service, store, data_version, models_version, corpus_generation: None, routes }
    }

    /// After any change to which model answers whom: new cache generation, new routes.
    fn routing_changed(&mut self) {
        self.routes.set(self.service.routes());
        self.models_version.bump();
    }

    fn refresh(&mut self) -> Result<(), ForecastError> {
        let generation = self.data_version.get();
        if self.corpus_generation == Some(generation) {
            return Ok(());
        }
        let corpus = block(self.store.send(BuildCorpus))
            .map_err(|e| ForecastError::Unavailable(format!("store unavailable: {e}")))?
            .map_err(|e| ForecastError::Unavailable(format!("cannot read the corpus: {e}")))?;
        tracing::info!(papers = corpus.len(), generation, "forecast corpus refreshed");
        self.service.set_corpus(std::sync::Arc::new(corpus));
        self.corpus_generation = Some(generation);
        Ok(())
    }
}

impl Actor for ModelActor {
    type Context = SyncContext<Self>;
}

/// Forecasts for stored papers; one result per id, in order. Each computed forecast is
/// appended to the forecast log.
pub struct ForecastPapers {
    pub ids: Vec<String>,
    pub mode: Mode,
    pub route: Route,
}

impl Message for ForecastPapers {
    type Result = Result<Vec<Result<Forecast, ForecastError>>, ForecastError>;
}

impl Handler<ForecastPapers> for ModelActor {
    type Result = Result<Vec<Result<Forecast, ForecastError>>, ForecastError>;
    fn handle(&mut self, m: ForecastPapers, _: &mut Self::Context) -> Self::Result {
        self.refresh()?;
        self.service.active(m.mode)?;
        let mut log = Vec::new();
        let out = m
            .ids
            .iter()
            .map(|id| {
                self.service.forecast_routed(id, m.mode, &m.route).map(|(f, record)| {
                    log.push(record);
                    f
                })
            })
            .collect();
        if !log.is_empty() {
            // Fire and forget: the log must never slow or fail a forecast.
            self.store.do_send(AppendForecasts(log));
        }
        Ok(out)
    }
}

pub struct ScoreNewPaper {
    pub paper: NewPaper,
    pub mode: Mode,
}

impl Message for ScoreNewPaper {
    type Result = Result<Forecast, ForecastError>;
}

impl Handler<ScoreNewPaper> for ModelActor {
    type Result = Result<Forecast, ForecastError>;
    fn handle(&mut self, m: ScoreNewPaper, _: &mut Self::Context) -> Self::Result {
        self.refresh()?;
        self.service.score_new(&m.paper, m.mode)
    }
}

/// Refreshes the corpus snapshot and builds the active models' feature contexts.
pub struct WarmModels;

impl Message for WarmModels {
    type Result = Result<(), ForecastError>;
}

impl Handler<WarmModels> for ModelActor {
    type Result = Result<(), ForecastError>;
    fn handle(&mut self, _: WarmModels, _: &mut Self::Context) -> Self::Result {
        self.refresh()?;
        self.service.warm();
        Ok(())
    }
}

/// One bounded step of the warm-up (see [`ForecastService::warm_step`]): refreshes the
/// corpus snapshot if the data changed, then builds a context or scores `papers` papers.
/// Answers whether the models are warm; the caller sends the next step, so forecasts
/// queued meanwhile are served between steps.
pub struct WarmStep {
    pub papers: usize,
}

impl Message for WarmStep {
    type Result = Result<bool, ForecastError>;
}

impl Handler<WarmStep> for ModelActor {
    type Result = Result<bool, ForecastError>;
    fn handle(&mut self, m: WarmStep, _: &mut Self::Context) -> Self::Result {
        self.refresh()?;
        Ok(self.service.warm_step(m.papers))
    }
}

/// Keeps the model actor busy for the given time, as a long warm-up or a slow model
/// would: for drills and tests of the callers' timeouts. Nothing in the server sends it.
pub struct HoldModelActor(pub std::time::Duration);

impl Message for HoldModelActor {
    type Result = ();
}

impl Handler<HoldModelActor> for ModelActor {
    type Result = ();
    fn handle(&mut self, m: HoldModelActor, _: &mut Self::Context) {
        std::thread::sleep(m.0);
    }
}

/// Makes a loaded model version serve its mode (hot swap, no restart).
pub struct PromoteModel(pub String);

impl Message for PromoteModel {
    type Result = Result<ModelSummary, ForecastError>;
}

impl Handler<PromoteModel> for ModelActor {
    type Result = Result<ModelSummary, ForecastError>;
    fn handle(&mut self, m: PromoteModel, _: &mut Self::Context) -> Self::Result {
        let summary = self.service.promote(&m.0)?;
        self.routing_changed();
        self.service.warm();
        tracing::info!(version = %summary.version, "model promoted");
        Ok(summary)
    }
}

/// Puts back the model a mode served before its last promotion.
pub struct RollbackModel(pub Mode);

impl Message for RollbackModel {
    type Result = Result<ModelSummary, ForecastError>;
}

impl Handler<RollbackModel> for ModelActor {
    type Result = Result<ModelSummary, ForecastError>;
    fn handle(&mut self, m: RollbackModel, _: &mut Self::Context) -> Self::Result {
        let summary = self.service.rollback(m.0)?;
        self.routing_changed();
        tracing::warn!(version = %summary.version, "model rolled back");
        Ok(summary)
    }
}

pub struct ListModels;

impl Message for ListModels {
    type Result = Vec<ModelSummary>;
}

impl Handler<ListModels> for ModelActor {
    type Result = Vec<ModelSummary>;
    fn handle(&mut self, _: ListModels, _: &mut Self::Context) -> Self::Result {
        self.service.summaries()
    }
}

/// A model's stored performance report.
pub struct GetModelReport(pub String);

impl Message for GetModelReport {
    type Result = Option<Result<crate::forecast::report::Report, String>>;
}

impl Handler<GetModelReport> for ModelActor {
    type Result = Option<Result<crate::forecast::report::Report, String>>;
    fn handle(&mut self, m: GetModelReport, _: &mut Self::Context) -> Self::Result {
        let model = self.service.model(&m.0)?;
        Some(crate::forecast::registry::load_report(&model.dir).map_err(|e| e.to_string()))
    }
}

// ---------------------------------------------------------------- rollouts

/// Starts an A/B experiment or a canary.
pub struct StartRollout(pub RolloutSpec);

impl Message for StartRollout {
    type Result = Result<crate::forecast::rollout::Rollout, ForecastError>;
}

impl Handler<StartRollout> for ModelActor {
    type Result = Result<crate::forecast::rollout::Rollout, ForecastError>;
    fn handle(&mut self, m: StartRollout, _: &mut Self::Context) -> Self::Result {
        self.refresh()?;
        let r = self.service.start_rollout(m.0)?;
        self.routing_changed();
        tracing::info!(id = %r.id, candidate = %r.candidate, share = r.share(), "rollout started");
        Ok(r)
    }
}

/// Advances (or promotes) the running rollout of a mode.
pub struct AdvanceRollout(pub Mode);
/// Ends the running rollout of a mode without a verdict.
pub struct StopRollout(pub Mode);

impl Message for AdvanceRollout {
    type Result = Result<Transition, ForecastError>;
}
impl Message for StopRollout {
    type Result = Result<Transition, ForecastError>;
}

impl Handler<AdvanceRollout> for ModelActor {
    type Result = Result<Transition, ForecastError>;
    fn handle(&mut self, m: AdvanceRollout, _: &mut Self::Context) -> Self::Result {
        let t = self.service.advance_rollout(m.0)?;
        self.routing_changed();
        tracing::info!(transition = ?t, "rollout advanced");
        Ok(t)
    }
}

impl Handler<StopRollout> for ModelActor {
    type Result = Result<Transition, ForecastError>;
    fn handle(&mut self, m: StopRollout, _: &mut Self::Context) -> Self::Result {
        let t = self.service.stop_rollout(m.0)?;
        self.routing_changed();
        Ok(t)
    }
}

/// Guard checks and scheduled stage advances (sent by the scheduler).
pub struct TickRollouts;

impl Message for TickRollouts {
    type Result = Vec<Transition>;
}

impl Handler<TickRollouts> for ModelActor {
    type Result = Vec<Transition>;
    fn handle(&mut self, _: TickRollouts, _: &mut Self::Context) -> Self::Result {
        let t = self.service.tick_rollouts(crate::dates::now_secs());
        if !t.is_empty() {
            for x in &t {
                tracing::warn!(transition = ?x, "rollout changed on its own");
            }
            self.routing_changed();
        }
        t
    }
}

pub struct ListRollouts;

impl Message for ListRollouts {
    type Result = Result<Rollouts, ForecastError>;
}

impl Handler<ListRollouts> for ModelActor {
    type Result = Result<Rollouts, ForecastError>;
    fn handle(&mut self, _: ListRollouts, _: &mut Self::Context) -> Self::Result {
        Ok(self.service.rollouts().clone())
    }
}

/// A rollout's comparison, reading its records from the forecast log.
pub struct GetRolloutReport(pub String);

impl Message for GetRolloutReport {
    type Result = Result<Option<RolloutReport>, ForecastError>;
}

impl Handler<GetRolloutReport> for ModelActor {
    type Result = Result<Option<RolloutReport>, ForecastError>;
    fn handle(&mut self, m: GetRolloutReport, _: &mut Self::Context) -> Self::Result {
        self.refresh()?;
        let Some(r) = self.service.rollouts().find(&m.0).cloned() else { return Ok(None) };
        let end = match r.state {
            crate::forecast::rollout::RolloutState::Running => i64::MAX,
            crate::forecast::rollout::RolloutState::Promoted { at }
            | crate::forecast::rollout::RolloutState::RolledBack { at, .. }
            | crate::forecast::rollout::RolloutState::Stopped { at } => at + 1,
        };
        let read = ReadForecasts { from: r.started_at, to: end, limit: 1_000_000 };
        let records = block(self.store.send(read))
            .map_err(|e| ForecastError::Unavailable(format!("store unavailable: {e}")))?
            .map_err(|e| ForecastError::Unavailable(format!("cannot read the corpus: {e}")))?;
        Ok(self.service.rollout_report(&m.0, &records))
    }
}

/// Per mode, the drift (PSI) of served scores against the serving model's validation scores.
pub struct GetDrift;

impl Message for GetDrift {
    type Result = Result<Vec<(Mode, Option<f64>)>, ForecastError>;
}

impl Handler<GetDrift> for ModelActor {
    type Result = Result<Vec<(Mode, Option<f64>)>, ForecastError>;
    fn handle(&mut self, _: GetDrift, _: &mut Self::Context) -> Self::Result {
        Ok(self.service.drift())
    }
}

/// Loads model directories that appeared since the start; (loaded versions, refusals).
pub struct RescanModels;

impl Message for RescanModels {
    type Result = Result<(Vec<String>, Vec<String>), ForecastError>;
}

impl Handler<RescanModels> for ModelActor {
    type Result = Result<(Vec<String>, Vec<String>), ForecastError>;
    fn handle(&mut self, _: RescanModels, _: &mut Self::Context) -> Self::Result {
        let (loaded, errors) = self.service.rescan();
        for e in &errors {
            tracing::error!(error = %e, "model refused; the serving ones are untouched");
        }
        if !loaded.is_empty() {
            self.routing_changed();
        }
        Ok((loaded, errors))
    }
}
