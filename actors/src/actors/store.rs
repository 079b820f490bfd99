//! The store actor: owns the sled store (papers, citations, the journal)
//! on several `SyncArbiter` threads; sled serves concurrent readers and
//! [`crate::store::Store::apply`] serialises writers.

use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;

use crate::imports::{ImportRecord, Imports};
use crate::index::TopicIndex;
use crate::journal::{ArchiveOutcome, AuditEntry, Journal, UsageDay};
use crate::records::ForecastRecord;
use crate::records::Paper;
use crate::store::{
    AuthorView, BatchOutcome, CitationPage, Direction, PaperView, Stats, Store, StoreError, WriteBatch,
};

/// Owns the sled store. Started with several threads; sled handles concurrent readers
/// and [`Store::apply`] serialises writers.
pub struct StoreActor {
    store: Store,
    journal: Journal,
    imports: Imports,
    /// The index directory and handle, read (never written) by backups.
    index: Option<(PathBuf, Arc<TopicIndex>)>,
}

impl StoreActor {
    pub fn new(store: Store, journal: Journal, imports: Imports) -> Self {
        StoreActor { store, journal, imports, index: None }
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

/// Papers in id order after `after`, each with its collection, for rebuilding the index
/// in chunks.
pub struct PapersAfter {
    pub after: Option<String>,
    pub limit: usize,
}
message!(StoreActor, store, PapersAfter => Result<Vec<(Paper, String)>, StoreError>, |s, m| {
    s.collected_papers_after(m.after.as_deref(), m.limit)
});

/// The collections holding papers, with counts and dates.
pub struct ListCollections;
message!(StoreActor, store, ListCollections => Result<Vec<crate::store::CollectionInfo>, StoreError>, |s, _m| {
    s.collections()
});

/// The collection a paper belongs to (`id` may be an alias); `None` for an unknown paper.
pub struct GetCollectionOf {
    pub id: String,
}
message!(StoreActor, store, GetCollectionOf => Result<Option<String>, StoreError>, |s, m| s.collection_of(&m.id));

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

pub struct JournalSizes;
message!(StoreActor, journal, JournalSizes => Result<(usize, Vec<(String, u64)>), StoreError>, |j, _m| {
    Ok((j.live_forecast_count(), j.archive_chunks()?))
});

/// Every import on record, oldest first (answered by the store actor, so it works
/// while an import keeps the ingest actor busy).
pub struct ListImports;
message!(StoreActor, imports, ListImports => Result<Vec<ImportRecord>, StoreError>, |i, _m| i.list());

/// A corpus snapshot for the model actor.
pub struct BuildCorpus;
message!(StoreActor, store, BuildCorpus => Result<crate::forecast::corpus::Corpus, StoreError>, |s, _m| {
    crate::forecast::corpus::Corpus::from_store(s)
});

/// The corpus snapshot of one collection (`None`: the store has no such collection).
pub struct BuildCollectionCorpus(pub String);
message!(StoreActor, store, BuildCollectionCorpus => Result<Option<crate::forecast::corpus::Corpus>, StoreError>, |s, m| {
    if !s.collections()?.iter().any(|c| c.name == m.0) {
        return Ok(None);
    }
    crate::forecast::corpus::Corpus::from_store_collection(s, &m.0).map(Some)
});

/// One corpus snapshot per collection (the default collection always, even empty).
pub struct BuildCorpora;
message!(StoreActor, store, BuildCorpora => Result<Vec<(String, crate::forecast::corpus::Corpus)>, StoreError>, |s, _m| {
    let mut names: Vec<String> = s.collections()?.into_iter().map(|c| c.name).collect();
    if !names.iter().any(|n| n == crate::store::DEFAULT_COLLECTION) {
        names.insert(0, crate::store::DEFAULT_COLLECTION.to_string());
    }
    names
        .into_iter()
        .map(|n| crate::forecast::corpus::Corpus::from_store_collection(s, &n).map(|c| (n, c)))
        .collect()
});
