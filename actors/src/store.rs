//! The sled store: papers, authors and dated citation edges, with the secondary
//! indexes the queries need.
//!
//! Layout (every value goes through [`crate::codec`]; index entries have empty values):
//!
//! | tree            | key                                   | value          |
//! |-----------------|---------------------------------------|----------------|
//! | `papers`        | canonical id                          | [`Paper`]      |
//! | `aliases`       | other id (`9711200`)                  | canonical id   |
//! | `by_date`       | day · id                              | -              |
//! | `cit_in`        | cited · 0 · citing day · citing       | -              |
//! | `cit_out`       | citing · 0 · cited day · cited        | -              |
//! | `in_count`      | id                                    | u32 BE         |
//! | `authors`       | author key                            | [`AuthorRecord`] |
//! | `author_papers` | author key · 0 · day · id             | -              |
//! | `ambiguous_aliases` | alias claimed by several papers   | their canonical ids (`Vec<String>`) |
//! | `collection_of` | canonical id                          | collection name (UTF-8) |
//! | `collection_papers` | collection name · 0 · day · id    | -              |
//!
//! Aliases never collide silently: an alias a second paper claims moves from `aliases`
//! to `ambiguous_aliases`, where it resolves to nothing (a lookup says "not found", a
//! citation naming it is rejected with both ids), and the ingest report names the clash.
//! A canonical id always resolves to its own paper, whatever aliases say.
//!
//! Collections: every paper belongs to one named collection (one per ingested source).
//! A paper without a `collection_of` entry (stores written before collections existed)
//! belongs to [`DEFAULT_COLLECTION`]; at open such papers are added to the
//! `collection_papers` index once, so per-collection counts and dates stay cheap.
//!
//! Crash safety without multi-tree transactions: each write applies the derived trees
//! first and the primary record (`papers`, `cit_out`) last, and "already stored" is
//! decided from the primary record only. A crash between the two leaves a record that
//! the next ingest sees as new and writes again, so re-running an import repairs it.
//! `in_count` is recomputed from `cit_in` for every cited paper a batch touches, so it
//! is repaired the same way. Counts are derived at open, never persisted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::dates::{self, Day};
use crate::records::{AuthorRecord, Citation, Paper};
use crate::Version;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored value is unreadable: {0}")]
    Codec(#[from] CodecError),
    #[error("the store's write lock was poisoned by a panic in an earlier write")]
    Poisoned,
    #[error("archive chunk unreadable: {0}")]
    Archive(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How many citing papers a paper view lists.
pub const TOP_CITING: usize = 10;

/// The collection of the bundled data, of files in citecast's own format, and of every
/// paper stored before collections existed.
pub const DEFAULT_COLLECTION: &str = "default";

/// Longest collection name.
pub const MAX_COLLECTION_LEN: usize = 40;

/// Checks a collection name: 1 to 40 of `[a-z0-9-]`, so it is safe in keys, URLs and
/// author keys (`kim_j@physics-x`).
pub fn check_collection_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > MAX_COLLECTION_LEN {
        return Err(format!(
            "collection name must be 1 to {MAX_COLLECTION_LEN} characters, got {}",
            name.len()
        ));
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(format!("collection name '{name}' may only hold a-z, 0-9 and '-'"));
    }
    Ok(())
}

/// An author's key within a collection: the default collection's keys are the plain
/// name keys (`witten_e`), any other collection's carry its name (`kim_j@physics-x`),
/// so authors of different collections never merge.
pub fn author_key_in(key: &str, collection: &str) -> String {
    if collection == DEFAULT_COLLECTION {
        key.to_string()
    } else {
        format!("{key}@{collection}")
    }
}

/// One collection as `GET /v1/collections` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CollectionInfo {
    pub name: String,
    pub papers: u64,
    /// Day number of the earliest submission (see [`crate::dates`]).
    pub first_day: Option<Day>,
    pub last_day: Option<Day>,
}

#[derive(Debug, Clone, Default)]
pub struct StoreConfig {
    /// sled page cache; `0` (the default) sizes it from the store on disk
    /// ([`StoreConfig::cache_for`]).
    pub cache_bytes: u64,
}

/// The page cache of a small store (the bundled data), and the floor of the automatic size.
pub const MIN_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// The ceiling of the automatic size (a million papers' store is ~4 GB on disk).
pub const MAX_AUTO_CACHE_BYTES: u64 = 1024 * 1024 * 1024;
/// A bulk import into a store with no server: the trees it writes at random (`cit_in`,
/// `in_count`, the aliases) stay in memory instead of being paged in and out of sled's log
/// for every batch, which made imports superlinear (docs/benchmarks.md, "Scale").
pub const BULK_CACHE_BYTES: u64 = 2 * 1024 * 1024 * 1024;

impl StoreConfig {
    /// The cache for the store at `path`: the configured size, or a quarter of what the
    /// store holds on disk between [`MIN_CACHE_BYTES`] and [`MAX_AUTO_CACHE_BYTES`]. sled
    /// reads a page it does not hold from its log and rebuilds the node, which for a store
    /// many times its cache costs more than the lookup itself.
    pub fn cache_for(&self, path: &Path) -> u64 {
        if self.cache_bytes > 0 {
            return self.cache_bytes;
        }
        (dir_bytes(path) / 4).clamp(MIN_CACHE_BYTES, MAX_AUTO_CACHE_BYTES)
    }
}

/// Bytes of the files directly under `path` and one level down (sled keeps its log and
/// snapshots there); 0 for a missing directory.
fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    let mut total = 0;
    for e in entries.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_dir() {
            total += std::fs::read_dir(e.path())
                .map(|d| d.flatten().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum::<u64>())
                .unwrap_or(0);
        } else {
            total += meta.len();
        }
    }
    total
}

#[derive(Clone)]
struct Trees {
    papers: sled::Tree,
    aliases: sled::Tree,
    by_date: sled::Tree,
    cit_in: sled::Tree,
    cit_out: sled::Tree,
    in_count: sled::Tree,
    authors: sled::Tree,
    author_papers: sled::Tree,
    ambiguous: sled::Tree,
    collection_of: sled::Tree,
    collection_papers: sled::Tree,
}

#[derive(Default)]
struct Counts {
    papers: AtomicU64,
    citations: AtomicU64,
    authors: AtomicU64,
    /// Papers per collection name, from the `collection_papers` index.
    collections: Mutex<BTreeMap<String, u64>>,
}

/// Where the counts live between runs, so opening a store does not walk its trees.
const COUNTS_KEY: &[u8] = b"engine_counts";

/// [`Counts`] as saved in the `meta` tree after every write.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SavedCounts {
    papers: u64,
    citations: u64,
    authors: u64,
    collections: BTreeMap<String, u64>,
}

/// Handle to the store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    trees: Trees,
    meta: sled::Tree,
    counts: Arc<Counts>,
    /// Bumped by every write that changed something; caches key on it.
    generation: Version,
    /// One writer at a time: the read-compare-write of a batch must not interleave.
    write_lock: Arc<Mutex<()>>,
}

/// A citation as read from an input file, before its ids are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CitationInput {
    /// Line in the source file, for error reports.
    pub line: u64,
    pub citing: String,
    pub cited: String,
}

/// What an ingest wants written.
#[derive(Debug, Default)]
pub struct WriteBatch {
    pub papers: Vec<Paper>,
    pub citations: Vec<CitationInput>,
    /// The collection the papers belong to; `None` is [`DEFAULT_COLLECTION`]. A stored
    /// paper written again in another collection moves to it.
    pub collection: Option<String>,
    /// Source line of each paper, in the order of `papers`, for reports (missing: 0).
    pub paper_lines: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub line: u64,
    pub reason: String,
}

/// An alias a paper claims that another paper already holds: it is not overwritten but
/// becomes ambiguous (or, when it is the other paper's canonical id, stays with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasConflict {
    pub line: u64,
    pub alias: String,
    /// The paper whose record claimed the alias.
    pub paper: String,
    /// The paper(s) already holding it, comma-separated.
    pub other: String,
}

#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub papers_new: u64,
    pub papers_updated: u64,
    pub papers_unchanged: u64,
    pub citations_new: u64,
    pub citations_unchanged: u64,
    pub rejected: Vec<Rejection>,
    /// Aliases left ambiguous (or with another paper) instead of being overwritten.
    pub alias_conflicts: Vec<AliasConflict>,
    /// New and updated papers, for the topic index.
    pub changed_papers: Vec<Paper>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Papers citing this one.
    In,
    /// Papers this one cites.
    Out,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub papers: u64,
    pub citations: u64,
    pub authors: u64,
    pub first_submitted: Option<String>,
    pub last_submitted: Option<String>,
    pub size_on_disk_bytes: u64,
    pub generation: u64,
}

/// Citation counts of a paper, total and within windows after its submission.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CitationCounts {
    pub total: u64,
    pub within_6_months: u64,
    pub within_12_months: u64,
    pub within_24_months: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PaperSummary {
    pub id: String,
    pub title: String,
    pub submitted: String,
    pub citations: u64,
}

#[derive(Debug, Clone)]
pub struct PaperView {
    pub paper: Paper,
    pub citations: CitationCounts,
    pub references: u64,
    /// Citing papers, most cited first.
    pub top_citing: Vec<PaperSummary>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CitationEntry {
    pub id: String,
    pub title: String,
    /// The other paper's submission date.
    pub date: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CitationPage {
    pub total: u64,
    pub items: Vec<CitationEntry>,
    /// Opaque position after the last item; `None` at the end.
    pub next_cursor: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CoAuthor {
    pub key: String,
    pub name: String,
    pub joint_papers: u64,
}

#[derive(Debug, Clone)]
pub struct AuthorView {
    pub author: AuthorRecord,
    /// Newest first.
    pub papers: Vec<PaperSummary>,
    pub coauthors: Vec<CoAuthor>,
    pub citations_total: u64,
    pub h_index: u64,
}

/// A paper as listed among others, with its citation count.
fn summary_of(paper: &Paper, citations: u64) -> PaperSummary {
    PaperSummary {
        id: paper.id.clone(),
        title: paper.title.clone(),
        submitted: dates::format(paper.submitted),
        citations,
    }
}

/// Day numbers are stored big-endian with the sign bit flipped so byte order is date order.
fn day_bytes(day: Day) -> [u8; 4] {
    ((day as u32) ^ 0x8000_0000).to_be_bytes()
}

fn day_from_bytes(b: &[u8]) -> Day {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    (u32::from_be_bytes(a) ^ 0x8000_0000) as Day
}

/// `owner · 0`: the prefix of all edge and author-paper keys of one owner.
fn owner_prefix(owner: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(owner.len() + 1);
    k.extend_from_slice(owner.as_bytes());
    k.push(0);
    k
}

fn edge_key(owner: &str, day: Day, other: &str) -> Vec<u8> {
    let mut k = owner_prefix(owner);
    k.extend_from_slice(&day_bytes(day));
    k.extend_from_slice(other.as_bytes());
    k
}

/// Splits the part of an edge key after its owner prefix into (day, other id).
fn edge_tail(tail: &[u8]) -> Option<(Day, String)> {
    if tail.len() < 4 {
        return None;
    }
    let other = std::str::from_utf8(&tail[4..]).ok()?;
    Some((day_from_bytes(tail), other.to_string()))
}

/// Whether `cursor` has the shape of a citation page cursor (a day then a paper id), so
/// forged or damaged cursors are refused instead of silently starting somewhere.
pub fn is_citation_cursor(cursor: &[u8]) -> bool {
    match edge_tail(cursor) {
        Some((_, id)) => !id.is_empty() && id.len() <= 128 && !id.chars().any(char::is_control),
        None => false,
    }
}

fn date_key(day: Day, id: &str) -> Vec<u8> {
    let mut k = day_bytes(day).to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

/// `collection · 0 · day · id`: a paper's entry in the collection index.
fn collection_key(collection: &str, day: Day, id: &str) -> Vec<u8> {
    edge_key(collection, day, id)
}

/// What an alias resolves to while a batch is written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AliasState {
    Free,
    Owner(String),
    Ambiguous(Vec<String>),
}

fn count_value(n: u64) -> [u8; 4] {
    (n.min(u32::MAX as u64) as u32).to_be_bytes()
}

impl Store {
    pub fn open(path: &Path, config: &StoreConfig) -> Result<Store> {
        let db = sled::Config::new().path(path).cache_capacity(config.cache_for(path)).open()?;
        let report = crate::migrate::migrate(&db)?;
        if report.migrated > 0 {
            tracing::info!(from = report.from, to = report.to, values = report.migrated, "store migrated");
        }
        let trees = Trees {
            papers: db.open_tree("papers")?,
            aliases: db.open_tree("aliases")?,
            by_date: db.open_tree("by_date")?,
            cit_in: db.open_tree("cit_in")?,
            cit_out: db.open_tree("cit_out")?,
            in_count: db.open_tree("in_count")?,
            authors: db.open_tree("authors")?,
            author_papers: db.open_tree("author_papers")?,
            ambiguous: db.open_tree("ambiguous_aliases")?,
            collection_of: db.open_tree("collection_of")?,
            collection_papers: db.open_tree("collection_papers")?,
        };
        let meta = db.open_tree(crate::migrate::META_TREE)?;
        let store = Store {
            db,
            trees,
            meta,
            counts: Arc::new(Counts::default()),
            generation: Version::default(),
            write_lock: Arc::new(Mutex::new(())),
        };
        match store.saved_counts() {
            Some(saved) => {
                store.counts.papers.store(saved.papers, Ordering::Relaxed);
                store.counts.citations.store(saved.citations, Ordering::Relaxed);
                store.counts.authors.store(saved.authors, Ordering::Relaxed);
                *store.counts.collections.lock().map_err(|_| StoreError::Poisoned)? = saved.collections;
            }
            None => store.recount()?,
        }
        Ok(store)
    }

    /// The counts saved by the last completed write, if they are there and readable.
    fn saved_counts(&self) -> Option<SavedCounts> {
        let bytes = self.meta.get(COUNTS_KEY).ok().flatten()?;
        codec::decode(&bytes).ok()
    }

    /// Counts every tree (`Tree::len` walks it: seconds for a million papers) and saves
    /// the result; runs when no saved counts are there (a store from before they were
    /// kept, or a write interrupted between its trees).
    fn recount(&self) -> Result<()> {
        let t = &self.trees;
        self.counts.papers.store(t.papers.len() as u64, Ordering::Relaxed);
        self.counts.citations.store(t.cit_out.len() as u64, Ordering::Relaxed);
        self.counts.authors.store(t.authors.len() as u64, Ordering::Relaxed);
        self.count_collections()?;
        self.save_counts()
    }

    fn save_counts(&self) -> Result<()> {
        let saved = SavedCounts {
            papers: self.counts.papers.load(Ordering::Relaxed),
            citations: self.counts.citations.load(Ordering::Relaxed),
            authors: self.counts.authors.load(Ordering::Relaxed),
            collections: self.counts.collections.lock().map_err(|_| StoreError::Poisoned)?.clone(),
        };
        self.meta.insert(COUNTS_KEY, codec::encode(&saved)?)?;
        Ok(())
    }

    /// Derives the per-collection counts from the `collection_papers` index, first adding
    /// to it the papers stored before collections existed (the default collection's).
    fn count_collections(&self) -> Result<()> {
        let t = &self.trees;
        let count = || -> Result<BTreeMap<String, u64>> {
            let mut per: BTreeMap<String, u64> = BTreeMap::new();
            for kv in t.collection_papers.iter() {
                let (k, _) = kv?;
                let nul = k.iter().position(|b| *b == 0).unwrap_or(k.len());
                *per.entry(String::from_utf8_lossy(&k[..nul]).into_owned()).or_default() += 1;
            }
            Ok(per)
        };
        let mut per = count()?;
        if per.values().sum::<u64>() < self.paper_count() {
            let mut batch = sled::Batch::default();
            for kv in t.by_date.iter() {
                let (k, _) = kv?;
                let id = String::from_utf8_lossy(&k[4..]).into_owned();
                if t.collection_of.contains_key(id.as_bytes())? {
                    continue;
                }
                batch.insert(collection_key(DEFAULT_COLLECTION, day_from_bytes(&k), &id), &[]);
            }
            t.collection_papers.apply_batch(batch)?;
            per = count()?;
        }
        *self.counts.collections.lock().map_err(|_| StoreError::Poisoned)? = per;
        Ok(())
    }

    /// The collection a paper belongs to (`id` may be an alias); `None` for an unknown
    /// paper.
    pub fn collection_of(&self, id: &str) -> Result<Option<String>> {
        let Some(id) = self.resolve(id)? else { return Ok(None) };
        Ok(Some(self.stored_collection(&id)?))
    }

    /// The collection of a stored canonical id (the default one without an entry).
    fn stored_collection(&self, id: &str) -> Result<String> {
        Ok(match self.trees.collection_of.get(id.as_bytes())? {
            Some(v) => String::from_utf8_lossy(&v).into_owned(),
            None => DEFAULT_COLLECTION.to_string(),
        })
    }

    /// Every collection holding papers, by name, with its paper count and first and last
    /// submission day. Cost: the counts are kept in memory (derived at open) and each
    /// collection's dates are the two ends of its index range, so a call is
    /// O(collections · log papers): cheap enough for every admin request.
    pub fn collections(&self) -> Result<Vec<CollectionInfo>> {
        let per = self.counts.collections.lock().map_err(|_| StoreError::Poisoned)?.clone();
        let mut out = Vec::with_capacity(per.len());
        for (name, papers) in per {
            if papers == 0 {
                continue;
            }
            let prefix = owner_prefix(&name);
            let day = |kv: Option<(sled::IVec, sled::IVec)>| {
                kv.and_then(|(k, _)| edge_tail(&k[prefix.len()..])).map(|(day, _)| day)
            };
            let first_day = day(self.trees.collection_papers.scan_prefix(&prefix).next().transpose()?);
            let last_day = day(self.trees.collection_papers.scan_prefix(&prefix).next_back().transpose()?);
            out.push(CollectionInfo { name, papers, first_day, last_day });
        }
        Ok(out)
    }

    /// Canonical ids of a collection's papers, oldest first (O(papers in it)).
    pub fn collection_paper_ids(&self, collection: &str) -> Result<Vec<String>> {
        let prefix = owner_prefix(collection);
        let mut ids = Vec::new();
        for kv in self.trees.collection_papers.scan_prefix(&prefix) {
            let (k, _) = kv?;
            if let Some((_, id)) = edge_tail(&k[prefix.len()..]) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Canonical ids of the papers `id` cites, in date order.
    pub fn references_of(&self, id: &str) -> Result<Vec<String>> {
        let prefix = owner_prefix(id);
        let mut ids = Vec::new();
        for kv in self.trees.cit_out.scan_prefix(&prefix) {
            let (k, _) = kv?;
            if let Some((_, cited)) = edge_tail(&k[prefix.len()..]) {
                ids.push(cited);
            }
        }
        Ok(ids)
    }

    /// Calls `f(cited)` for each paper `id` cites, without allocating per edge.
    pub fn for_each_reference(&self, id: &str, mut f: impl FnMut(&str)) -> Result<()> {
        let prefix = owner_prefix(id);
        for kv in self.trees.cit_out.scan_prefix(&prefix) {
            let (k, _) = kv?;
            if let Some(cited) = k.get(prefix.len() + 4..).and_then(|b| std::str::from_utf8(b).ok()) {
                f(cited);
            }
        }
        Ok(())
    }

    /// Calls `f(citing, cited)` for every citation, in key order (one sequential pass over
    /// `cit_out`; no record is read and nothing is allocated per edge).
    pub fn for_each_citation(&self, mut f: impl FnMut(&str, &str)) -> Result<()> {
        for kv in self.trees.cit_out.iter() {
            let (k, _) = kv?;
            let Some(nul) = k.iter().position(|b| *b == 0) else { continue };
            let (Ok(citing), Some(Ok(cited))) =
                (std::str::from_utf8(&k[..nul]), k.get(nul + 5..).map(std::str::from_utf8))
            else {
                continue;
            };
            f(citing, cited);
        }
        Ok(())
    }

    /// Calls `f(paper)` for every paper in id order (one sequential pass).
    pub fn for_each_paper(&self, mut f: impl FnMut(Paper)) -> Result<()> {
        for kv in self.trees.papers.iter() {
            let (_, v) = kv?;
            f(codec::decode(&v)?);
        }
        Ok(())
    }

    /// The papers an alias is ambiguous between, when several claimed it.
    pub fn ambiguous_alias(&self, alias: &str) -> Result<Option<Vec<String>>> {
        match self.trees.ambiguous.get(alias.as_bytes())? {
            Some(v) => Ok(Some(codec::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// Runs `f` while no batch is being written (backups want one consistent state).
    pub fn with_write_lock<T>(&self, f: impl FnOnce(&sled::Db) -> T) -> Result<T> {
        let _guard = self.write_lock.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(f(&self.db))
    }

    /// The sled database, for other owners of trees in the same directory (accounts, usage).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// A read-only view of the write generation, for caches outside the actor.
    pub fn generation_version(&self) -> Version {
        self.generation.clone()
    }

    pub fn paper_count(&self) -> u64 {
        self.counts.papers.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.paper_count() == 0
    }

    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// The canonical id for `id`, which may be canonical already or an alias. An
    /// ambiguous alias (claimed by several papers) resolves to `None`. A DOI is also
    /// found as written by people: any case, with `https://doi.org/` or `doi:`.
    pub fn resolve(&self, id: &str) -> Result<Option<String>> {
        if let Some(found) = self.resolve_exact(id)? {
            return Ok(Some(found));
        }
        match crate::importers::normalise_doi(id) {
            Some(doi) if doi != id => self.resolve_exact(&doi),
            _ => Ok(None),
        }
    }

    fn resolve_exact(&self, id: &str) -> Result<Option<String>> {
        if self.trees.papers.contains_key(id)? {
            return Ok(Some(id.to_string()));
        }
        match self.trees.aliases.get(id)? {
            Some(v) => Ok(Some(codec::decode(&v)?)),
            None => Ok(None),
        }
    }

    pub fn paper(&self, id: &str) -> Result<Option<Paper>> {
        match self.trees.papers.get(id)? {
            Some(v) => Ok(Some(codec::decode(&v)?)),
            None => Ok(None),
        }
    }

    pub fn citation_count(&self, id: &str) -> Result<u64> {
        Ok(match self.trees.in_count.get(id)? {
            Some(v) if v.len() == 4 => u32::from_be_bytes([v[0], v[1], v[2], v[3]]) as u64,
            _ => 0,
        })
    }

    fn summary(&self, paper: &Paper) -> Result<PaperSummary> {
        Ok(summary_of(paper, self.citation_count(&paper.id)?))
    }

    /// Incoming citation dates of a paper, in date order.
    pub fn citation_dates(&self, id: &str) -> Result<Vec<(Day, String)>> {
        let prefix = owner_prefix(id);
        let mut out = Vec::new();
        for kv in self.trees.cit_in.scan_prefix(&prefix) {
            let (k, _) = kv?;
            if let Some(e) = edge_tail(&k[prefix.len()..]) {
                out.push(e);
            }
        }
        Ok(out)
    }

    pub fn paper_view(&self, id: &str) -> Result<Option<PaperView>> {
        let Some(paper) = self.paper(id)? else { return Ok(None) };
        let citing = self.citation_dates(id)?;
        let t0 = paper.submitted;
        // Calendar months: "within 24 months" of 2000-03-01 ends on 2002-03-01 whatever
        // leap days lie between.
        let within = |months: i32| {
            let end = dates::add_months(t0, months);
            citing.iter().filter(|(d, _)| *d <= end).count() as u64
        };
        let citations = CitationCounts {
            total: citing.len() as u64,
            within_6_months: within(6),
            within_12_months: within(12),
            within_24_months: within(24),
        };
        // Rank citers by their own citation counts, then take the few we show.
        let mut ranked = Vec::with_capacity(citing.len());
        for (_, citer) in &citing {
            ranked.push((self.citation_count(citer)?, citer));
        }
        let top = TOP_CITING.min(ranked.len());
        let order = |a: &(u64, &String), b: &(u64, &String)| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1));
        if top > 0 && top < ranked.len() {
            ranked.select_nth_unstable_by(top - 1, order);
            ranked.truncate(top);
        }
        ranked.sort_by(order);
        let mut top_citing = Vec::new();
        for (citations, citer) in ranked.into_iter().take(TOP_CITING) {
            if let Some(p) = self.paper(citer)? {
                top_citing.push(summary_of(&p, citations));
            }
        }
        let references = self.trees.cit_out.scan_prefix(owner_prefix(id)).count() as u64;
        Ok(Some(PaperView { paper, citations, references, top_citing }))
    }

    /// One page of a paper's citations in date order, starting after `cursor`.
    pub fn citations(
        &self,
        id: &str,
        direction: Direction,
        cursor: Option<&[u8]>,
        limit: usize,
    ) -> Result<CitationPage> {
        let tree = match direction {
            Direction::In => &self.trees.cit_in,
            Direction::Out => &self.trees.cit_out,
        };
        let prefix = owner_prefix(id);
        let total = match direction {
            Direction::In => self.citation_count(id)?,
            Direction::Out => tree.scan_prefix(&prefix).count() as u64,
        };
        let mut start = prefix.clone();
        if let Some(c) = cursor {
            start.extend_from_slice(c);
            // Strictly after the cursor: the smallest key greater than it.
            start.push(0);
        }
        let mut items = Vec::with_capacity(limit);
        let mut last_tail = None;
        let mut more = false;
        for kv in tree.range(start..) {
            let (k, _) = kv?;
            if !k.starts_with(&prefix) {
                break;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            let tail = &k[prefix.len()..];
            let Some((day, other)) = edge_tail(tail) else { continue };
            let title = self.paper(&other)?.map(|p| p.title).unwrap_or_default();
            items.push(CitationEntry { id: other, title, date: dates::format(day) });
            last_tail = Some(tail.to_vec());
        }
        Ok(CitationPage { total, items, next_cursor: if more { last_tail } else { None } })
    }

    pub fn author(&self, key: &str) -> Result<Option<AuthorRecord>> {
        match self.trees.authors.get(key)? {
            Some(v) => Ok(Some(codec::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// Ids of an author's papers, oldest first.
    pub fn author_paper_ids(&self, key: &str) -> Result<Vec<String>> {
        let prefix = owner_prefix(key);
        let mut ids = Vec::new();
        for kv in self.trees.author_papers.scan_prefix(&prefix) {
            let (k, _) = kv?;
            if let Some((_, id)) = edge_tail(&k[prefix.len()..]) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    pub fn author_view(&self, key: &str) -> Result<Option<AuthorView>> {
        let Some(author) = self.author(key)? else { return Ok(None) };
        let mut papers = Vec::new();
        let mut coauthors: HashMap<String, CoAuthor> = HashMap::new();
        for id in self.author_paper_ids(key)?.iter().rev() {
            let Some(p) = self.paper(id)? else { continue };
            let mut seen = HashSet::new();
            for a in &p.authors {
                if a.key != key && seen.insert(a.key.clone()) {
                    coauthors
                        .entry(a.key.clone())
                        .or_insert_with(|| CoAuthor {
                            key: a.key.clone(),
                            name: a.display.clone(),
                            joint_papers: 0,
                        })
                        .joint_papers += 1;
                }
            }
            papers.push(self.summary(&p)?);
        }
        let citations_total = papers.iter().map(|p| p.citations).sum();
        let mut counts: Vec<u64> = papers.iter().map(|p| p.citations).collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let h_index = counts.iter().enumerate().take_while(|(i, c)| **c > *i as u64).count() as u64;
        let mut coauthors: Vec<CoAuthor> = coauthors.into_values().collect();
        coauthors.sort_by(|a, b| b.joint_papers.cmp(&a.joint_papers).then_with(|| a.key.cmp(&b.key)));
        Ok(Some(AuthorView { author, papers, coauthors, citations_total, h_index }))
    }

    pub fn stats(&self) -> Result<Stats> {
        let first = self.trees.by_date.first()?.map(|(k, _)| dates::format(day_from_bytes(&k)));
        let last = self.trees.by_date.last()?.map(|(k, _)| dates::format(day_from_bytes(&k)));
        Ok(Stats {
            papers: self.paper_count(),
            citations: self.counts.citations.load(Ordering::Relaxed),
            authors: self.counts.authors.load(Ordering::Relaxed),
            first_submitted: first,
            last_submitted: last,
            size_on_disk_bytes: self.db.size_on_disk()?,
            generation: self.generation(),
        })
    }

    /// Up to `limit` papers in id order after `after` (for rebuilding the topic index).
    pub fn papers_after(&self, after: Option<&str>, limit: usize) -> Result<Vec<Paper>> {
        let range = match after {
            Some(a) => self
                .trees
                .papers
                .range::<&[u8], _>((std::ops::Bound::Excluded(a.as_bytes()), std::ops::Bound::Unbounded)),
            None => self.trees.papers.iter(),
        };
        let mut out = Vec::with_capacity(limit);
        for kv in range.take(limit) {
            let (_, v) = kv?;
            out.push(codec::decode(&v)?);
        }
        Ok(out)
    }

    /// As [`Store::papers_after`], each paper with its collection.
    pub fn collected_papers_after(&self, after: Option<&str>, limit: usize) -> Result<Vec<(Paper, String)>> {
        let papers = self.papers_after(after, limit)?;
        let mut out = Vec::with_capacity(papers.len());
        for p in papers {
            let collection = self.stored_collection(&p.id)?;
            out.push((p, collection));
        }
        Ok(out)
    }

    /// Writes a batch: papers first (so citations in the same batch can refer to them),
    /// then citations. Unknown citation endpoints are rejected, not stored.
    pub fn apply(&self, batch: WriteBatch) -> Result<BatchOutcome> {
        let _guard = self.write_lock.lock().map_err(|_| StoreError::Poisoned)?;
        let mut outcome = BatchOutcome::default();
        if batch.papers.is_empty() && batch.citations.is_empty() {
            return Ok(outcome);
        }
        let collection = batch.collection.unwrap_or_else(|| DEFAULT_COLLECTION.to_string());
        // The saved counts go first and come back last: a write interrupted in between
        // leaves none, and the next open counts the trees again.
        self.meta.remove(COUNTS_KEY)?;
        self.apply_papers(batch.papers, &batch.paper_lines, &collection, &mut outcome)?;
        self.apply_citations(batch.citations, &mut outcome)?;
        self.save_counts()?;
        if outcome.papers_new + outcome.papers_updated + outcome.citations_new > 0 {
            self.generation.bump();
        }
        Ok(outcome)
    }

    /// What `alias` resolves to, staged changes of this batch first.
    fn alias_state(&self, staged: &mut HashMap<String, AliasState>, alias: &str) -> Result<AliasState> {
        if let Some(s) = staged.get(alias) {
            return Ok(s.clone());
        }
        let state = if let Some(ids) = self.ambiguous_alias(alias)? {
            AliasState::Ambiguous(ids)
        } else if let Some(v) = self.trees.aliases.get(alias.as_bytes())? {
            AliasState::Owner(codec::decode(&v)?)
        } else {
            AliasState::Free
        };
        staged.insert(alias.to_string(), state.clone());
        Ok(state)
    }

    /// Whether `id` is the canonical id of a stored paper or of one in this batch.
    fn is_canonical(&self, pending: &HashMap<String, Paper>, id: &str) -> Result<bool> {
        Ok(pending.contains_key(id) || self.trees.papers.contains_key(id.as_bytes())?)
    }

    /// Gives `alias` to `id` unless another paper holds it: then it is reported, and
    /// becomes ambiguous unless it is the other paper's canonical id (which always wins).
    fn claim_alias(
        &self,
        staged: &mut HashMap<String, AliasState>,
        pending: &HashMap<String, Paper>,
        id: &str,
        alias: &str,
        line: u64,
        outcome: &mut BatchOutcome,
    ) -> Result<()> {
        if alias == id {
            return Ok(());
        }
        let conflict =
            |other: String| AliasConflict { line, alias: alias.to_string(), paper: id.to_string(), other };
        if self.is_canonical(pending, alias)? {
            outcome.alias_conflicts.push(conflict(alias.to_string()));
            return Ok(());
        }
        match self.alias_state(staged, alias)? {
            AliasState::Free => {
                staged.insert(alias.to_string(), AliasState::Owner(id.to_string()));
            }
            AliasState::Owner(owner) if owner == id => {}
            AliasState::Owner(owner) => {
                outcome.alias_conflicts.push(conflict(owner.clone()));
                staged.insert(alias.to_string(), AliasState::Ambiguous(vec![owner, id.to_string()]));
            }
            AliasState::Ambiguous(mut ids) => {
                let others: Vec<&str> = ids.iter().map(String::as_str).filter(|o| *o != id).collect();
                outcome.alias_conflicts.push(conflict(others.join(", ")));
                if !ids.iter().any(|o| o == id) {
                    ids.push(id.to_string());
                    staged.insert(alias.to_string(), AliasState::Ambiguous(ids));
                }
            }
        }
        Ok(())
    }

    /// Takes `alias` back from `id` (its record no longer lists it); an ambiguous alias
    /// left with one claimant resolves to it again.
    fn release_alias(&self, staged: &mut HashMap<String, AliasState>, id: &str, alias: &str) -> Result<()> {
        let next = match self.alias_state(staged, alias)? {
            AliasState::Owner(owner) if owner == id => AliasState::Free,
            AliasState::Ambiguous(mut ids) if ids.iter().any(|o| o == id) => {
                ids.retain(|o| o != id);
                if ids.len() == 1 {
                    AliasState::Owner(ids.remove(0))
                } else {
                    AliasState::Ambiguous(ids)
                }
            }
            _ => return Ok(()),
        };
        staged.insert(alias.to_string(), next);
        Ok(())
    }

    /// Reports the aliases of an unchanged paper that do not resolve to it, so importing
    /// a file again reports the same clashes.
    fn report_alias_clashes(
        &self,
        staged: &mut HashMap<String, AliasState>,
        pending: &HashMap<String, Paper>,
        paper: &Paper,
        line: u64,
        outcome: &mut BatchOutcome,
    ) -> Result<()> {
        for alias in paper.aliases.iter().filter(|a| **a != paper.id) {
            let other = if self.is_canonical(pending, alias)? {
                Some(alias.clone())
            } else {
                match self.alias_state(staged, alias)? {
                    AliasState::Owner(owner) if owner == paper.id => None,
                    AliasState::Owner(owner) => Some(owner),
                    AliasState::Ambiguous(ids) => Some(
                        ids.iter()
                            .map(String::as_str)
                            .filter(|o| *o != paper.id)
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    AliasState::Free => None,
                }
            };
            if let Some(other) = other {
                outcome.alias_conflicts.push(AliasConflict {
                    line,
                    alias: alias.clone(),
                    paper: paper.id.clone(),
                    other,
                });
            }
        }
        Ok(())
    }

    fn apply_papers(
        &self,
        papers: Vec<Paper>,
        lines: &[u64],
        collection: &str,
        outcome: &mut BatchOutcome,
    ) -> Result<()> {
        if papers.is_empty() {
            return Ok(());
        }
        let t = &self.trees;
        let mut primary = sled::Batch::default();
        let mut by_date = sled::Batch::default();
        let mut author_papers = sled::Batch::default();
        let mut collection_of = sled::Batch::default();
        let mut collection_papers = sled::Batch::default();
        let mut staged: HashMap<String, AliasState> = HashMap::new();
        // Author records touched by this batch, written back if changed.
        let mut authors: BTreeMap<String, (AuthorRecord, bool)> = BTreeMap::new();
        let mut pending: HashMap<String, Paper> = HashMap::new();
        let mut pending_collection: HashMap<String, String> = HashMap::new();
        let mut count_moves: Vec<(String, i64)> = Vec::new();
        let mut date_moves: Vec<(String, Day, Day)> = Vec::new();
        let mut new_authors = 0u64;

        for (i, paper) in papers.into_iter().enumerate() {
            let line = lines.get(i).copied().unwrap_or(0);
            let old = match pending.get(&paper.id) {
                Some(p) => Some(p.clone()),
                None => self.paper(&paper.id)?,
            };
            let old_collection = match (&old, pending_collection.get(&paper.id)) {
                (None, _) => None,
                (Some(_), Some(c)) => Some(c.clone()),
                (Some(_), None) => Some(self.stored_collection(&paper.id)?),
            };
            match &old {
                Some(old) if *old == paper && old_collection.as_deref() == Some(collection) => {
                    outcome.papers_unchanged += 1;
                    self.report_alias_clashes(&mut staged, &pending, &paper, line, outcome)?;
                    continue;
                }
                Some(old) => {
                    outcome.papers_updated += 1;
                    by_date.remove(date_key(old.submitted, &old.id));
                    for a in &old.authors {
                        author_papers.remove(edge_key(&a.key, old.submitted, &old.id));
                    }
                    for alias in old.aliases.iter().filter(|a| !paper.aliases.contains(a)) {
                        self.release_alias(&mut staged, &old.id, alias)?;
                    }
                    if old.submitted != paper.submitted {
                        date_moves.push((paper.id.clone(), old.submitted, paper.submitted));
                    }
                    let old_collection = old_collection.clone().unwrap_or_default();
                    collection_papers.remove(collection_key(&old_collection, old.submitted, &old.id));
                    count_moves.push((old_collection, -1));
                }
                None => {
                    outcome.papers_new += 1;
                    // Its id may have been another paper's alias: the id wins from now on.
                    if let AliasState::Owner(owner) = self.alias_state(&mut staged, &paper.id)? {
                        if owner != paper.id {
                            outcome.alias_conflicts.push(AliasConflict {
                                line,
                                alias: paper.id.clone(),
                                paper: paper.id.clone(),
                                other: owner,
                            });
                        }
                    }
                }
            }
            by_date.insert(date_key(paper.submitted, &paper.id), &[]);
            collection_papers.insert(collection_key(collection, paper.submitted, &paper.id), &[]);
            collection_of.insert(paper.id.as_bytes(), collection.as_bytes());
            count_moves.push((collection.to_string(), 1));
            // Staged before its aliases are claimed, so a paper claiming its own id as an
            // alias, or a later paper of the batch claiming this id, is seen.
            pending.insert(paper.id.clone(), paper.clone());
            pending_collection.insert(paper.id.clone(), collection.to_string());
            for alias in &paper.aliases {
                self.claim_alias(&mut staged, &pending, &paper.id, alias, line, outcome)?;
            }
            for a in &paper.authors {
                author_papers.insert(edge_key(&a.key, paper.submitted, &paper.id), &[]);
                if !authors.contains_key(&a.key) {
                    let existing = self.author(&a.key)?;
                    if existing.is_none() {
                        new_authors += 1;
                    }
                    let is_new = existing.is_none();
                    let record = existing.unwrap_or_else(|| AuthorRecord {
                        key: a.key.clone(),
                        name: a.display.clone(),
                        variants: Vec::new(),
                    });
                    authors.insert(a.key.clone(), (record, is_new));
                }
                let (record, dirty) = authors.get_mut(&a.key).expect("inserted above");
                *dirty |= record.add_variant(&a.raw);
            }
            primary.insert(paper.id.as_bytes(), codec::encode(&paper)?);
            outcome.changed_papers.push(paper);
        }

        let mut author_batch = sled::Batch::default();
        for (key, (record, dirty)) in &authors {
            if *dirty {
                author_batch.insert(key.as_bytes(), codec::encode(record)?);
            }
        }
        let mut aliases = sled::Batch::default();
        let mut ambiguous = sled::Batch::default();
        for (alias, state) in staged {
            match state {
                AliasState::Free => {
                    aliases.remove(alias.as_bytes());
                    ambiguous.remove(alias.as_bytes());
                }
                AliasState::Owner(owner) => {
                    aliases.insert(alias.as_bytes(), codec::encode(&owner)?);
                    ambiguous.remove(alias.as_bytes());
                }
                AliasState::Ambiguous(ids) => {
                    aliases.remove(alias.as_bytes());
                    ambiguous.insert(alias.as_bytes(), codec::encode(&ids)?);
                }
            }
        }
        t.by_date.apply_batch(by_date)?;
        t.ambiguous.apply_batch(ambiguous)?;
        t.aliases.apply_batch(aliases)?;
        t.author_papers.apply_batch(author_papers)?;
        t.authors.apply_batch(author_batch)?;
        t.collection_papers.apply_batch(collection_papers)?;
        t.collection_of.apply_batch(collection_of)?;
        for (id, old_day, new_day) in date_moves {
            self.move_citation_dates(&id, old_day, new_day)?;
        }
        t.papers.apply_batch(primary)?;
        self.counts.papers.fetch_add(outcome.papers_new, Ordering::Relaxed);
        self.counts.authors.fetch_add(new_authors, Ordering::Relaxed);
        let mut per = self.counts.collections.lock().map_err(|_| StoreError::Poisoned)?;
        for (name, delta) in count_moves {
            let n = per.entry(name).or_default();
            *n = n.saturating_add_signed(delta);
        }
        Ok(())
    }

    /// Rewrites the edge keys that embed a paper's submission day after it changed.
    fn move_citation_dates(&self, id: &str, old_day: Day, new_day: Day) -> Result<()> {
        let t = &self.trees;
        // Papers citing `id` hold `id`'s day in their cit_out keys.
        for (_, citer) in self.citation_dates(id)? {
            if t.cit_out.remove(edge_key(&citer, old_day, id))?.is_some() {
                t.cit_out.insert(edge_key(&citer, new_day, id), &[])?;
            }
        }
        // Papers `id` cites hold `id`'s day in their cit_in keys.
        let prefix = owner_prefix(id);
        for kv in t.cit_out.scan_prefix(&prefix) {
            let (k, _) = kv?;
            if let Some((_, cited)) = edge_tail(&k[prefix.len()..]) {
                if t.cit_in.remove(edge_key(&cited, old_day, id))?.is_some() {
                    t.cit_in.insert(edge_key(&cited, new_day, id), &[])?;
                }
            }
        }
        Ok(())
    }

    fn apply_citations(&self, citations: Vec<CitationInput>, outcome: &mut BatchOutcome) -> Result<()> {
        if citations.is_empty() {
            return Ok(());
        }
        let t = &self.trees;
        let mut days: HashMap<String, Day> = HashMap::new();
        let mut ids: HashMap<String, Option<String>> = HashMap::new();
        let mut cit_in = sled::Batch::default();
        let mut cit_out = sled::Batch::default();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut added: HashMap<String, u64> = HashMap::new();
        let mut recount: HashSet<String> = HashSet::new();

        for c in citations {
            let mut resolved = [None, None];
            for (slot, raw) in resolved.iter_mut().zip([&c.citing, &c.cited]) {
                if !ids.contains_key(raw) {
                    // An alias whose paper record is missing (an interrupted write)
                    // counts as unknown.
                    let mut canonical = self.resolve(raw)?;
                    if let Some(id) = canonical.clone() {
                        if let std::collections::hash_map::Entry::Vacant(slot) = days.entry(id) {
                            match self.paper(slot.key())? {
                                Some(p) => {
                                    slot.insert(p.submitted);
                                }
                                None => canonical = None,
                            }
                        }
                    }
                    ids.insert(raw.clone(), canonical);
                }
                *slot = ids[raw].clone();
            }
            let [Some(citing), Some(cited)] = resolved else {
                let unknown = if ids[&c.citing].is_none() { &c.citing } else { &c.cited };
                let reason = match self.ambiguous_alias(unknown)? {
                    Some(claimants) => format!(
                        "paper id '{unknown}' is ambiguous (an alias of {}): cite the paper by its canonical id",
                        claimants.join(", ")
                    ),
                    None => format!("unknown paper id '{unknown}': ingest its paper record first"),
                };
                outcome.rejected.push(Rejection { line: c.line, reason });
                continue;
            };
            let out_key = edge_key(&citing, days[&cited], &cited);
            if !seen.insert(out_key.clone()) {
                outcome.citations_unchanged += 1;
                continue;
            }
            if t.cit_out.contains_key(&out_key)? {
                outcome.citations_unchanged += 1;
                recount.insert(cited);
                continue;
            }
            cit_in.insert(edge_key(&cited, days[&citing], &citing), &[]);
            cit_out.insert(out_key, &[]);
            *added.entry(cited).or_default() += 1;
            outcome.citations_new += 1;
        }
        t.cit_in.apply_batch(cit_in)?;
        t.cit_out.apply_batch(cit_out)?;

        // Derived counts. A paper that only gained edges gains their number; one with an
        // edge already stored is counted again, so a repeated or interrupted import
        // converges on the right value (counting every time made a cited hub cost its
        // whole citation list in every batch).
        let mut counts = sled::Batch::default();
        for (id, n) in &added {
            if !recount.contains(id) {
                counts.insert(id.as_bytes(), &count_value(self.citation_count(id)? + n));
            }
        }
        for id in recount {
            let n = t.cit_in.scan_prefix(owner_prefix(&id)).count() as u64;
            if self.citation_count(&id)? != n {
                counts.insert(id.as_bytes(), &count_value(n));
            }
        }
        t.in_count.apply_batch(counts)?;
        self.counts.citations.fetch_add(outcome.citations_new, Ordering::Relaxed);
        Ok(())
    }

    /// Papers submitted in `[from, to]`, oldest first.
    /// Ids and submission days of the most recently submitted papers, newest first.
    pub fn recent_ids(&self, limit: usize) -> Result<Vec<(String, Day)>> {
        self.trees
            .by_date
            .iter()
            .rev()
            .take(limit)
            .map(|kv| {
                let (k, _) = kv?;
                Ok((String::from_utf8_lossy(&k[4..]).into_owned(), day_from_bytes(&k)))
            })
            .collect()
    }

    pub fn papers_between(&self, from: Day, to: Day) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for kv in self.trees.by_date.range(day_bytes(from).to_vec()..) {
            let (k, _) = kv?;
            if day_from_bytes(&k) > to {
                break;
            }
            ids.push(String::from_utf8_lossy(&k[4..]).into_owned());
        }
        Ok(ids)
    }

    /// All citations as records (tests and exports; O(citations)).
    pub fn all_citations(&self) -> impl Iterator<Item = Result<Citation>> + '_ {
        self.trees.cit_out.iter().map(move |kv| {
            let (k, _) = kv?;
            let nul = k.iter().position(|b| *b == 0).unwrap_or(k.len());
            let citing = String::from_utf8_lossy(&k[..nul]).into_owned();
            let (cited_date, cited) = edge_tail(&k[nul + 1..]).unwrap_or((0, String::new()));
            let citing_date = self.paper(&citing)?.map(|p| p.submitted).unwrap_or(0);
            Ok(Citation { citing, cited, citing_date, cited_date })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::AuthorRef;

    fn paper(id: &str, day: Day, authors: &[&str]) -> Paper {
        Paper {
            id: id.into(),
            aliases: vec![id.trim_start_matches("hep-th/").to_string()],
            title: format!("Title {id}"),
            authors: authors
                .iter()
                .map(|a| AuthorRef { raw: a.to_string(), display: a.to_string(), key: a.to_lowercase() })
                .collect(),
            submitted: day,
            submitted_secs: None,
            revised: vec![],
            abstract_text: "abstract".into(),
            subject: None,
            journal_ref: None,
            comments: None,
            report_no: None,
        }
    }

    fn cite(line: u64, a: &str, b: &str) -> CitationInput {
        CitationInput { line, citing: a.into(), cited: b.into() }
    }

    #[test]
    fn writes_are_idempotent_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
        let batch = || WriteBatch {
            papers: vec![paper("hep-th/9701001", 100, &["a"]), paper("hep-th/9801001", 500, &["a", "b"])],
            citations: vec![cite(1, "9801001", "9701001"), cite(2, "9801001", "nope")],
            ..Default::default()
        };
        let first = store.apply(batch()).unwrap();
        assert_eq!((first.papers_new, first.citations_new), (2, 1));
        assert_eq!(first.rejected.len(), 1);
        assert_eq!(first.rejected[0].line, 2);
        let generation = store.generation();
        let second = store.apply(batch()).unwrap();
        assert_eq!((second.papers_new, second.papers_unchanged, second.citations_new), (0, 2, 0));
        assert_eq!(store.generation(), generation, "an unchanged batch must not invalidate caches");

        let view = store.paper_view("hep-th/9701001").unwrap().unwrap();
        assert_eq!(view.citations.total, 1);
        assert_eq!(view.citations.within_6_months, 0);
        assert_eq!(view.citations.within_24_months, 1);
        assert_eq!(store.author_view("a").unwrap().unwrap().papers.len(), 2);
        assert_eq!(store.resolve("9701001").unwrap().as_deref(), Some("hep-th/9701001"));

        // Reopening derives the same counts.
        drop(store);
        let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
        let stats = store.stats().unwrap();
        assert_eq!((stats.papers, stats.citations, stats.authors), (2, 1, 2));
    }

    #[test]
    fn counts_grow_by_batch_and_converge_after_an_interrupted_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
        let ids: Vec<String> = (1..=30).map(|i| format!("hep-th/97010{i:02}")).collect();
        let papers = ids.iter().enumerate().map(|(i, id)| paper(id, 100 + i as Day, &["a"])).collect();
        store.apply(WriteBatch { papers, ..Default::default() }).unwrap();
        // The first paper is a hub cited by every other, over three batches; paper 2 is
        // cited twice in one batch by the same paper (counted once).
        let mut line = 0;
        for chunk in ids[1..].chunks(10) {
            let mut citations = Vec::new();
            for citing in chunk {
                line += 1;
                citations.push(cite(line, citing, &ids[0]));
            }
            citations.push(cite(line, &chunk[chunk.len() - 1], &ids[1]));
            citations.push(cite(line, &chunk[chunk.len() - 1], &ids[1]));
            store.apply(WriteBatch { citations, ..Default::default() }).unwrap();
        }
        let scanned = |s: &Store, id: &str| s.citation_dates(id).unwrap().len() as u64;
        assert_eq!(store.citation_count(&ids[0]).unwrap(), 29);
        assert_eq!(store.citation_count(&ids[1]).unwrap(), 3);
        for id in &ids {
            assert_eq!(store.citation_count(id).unwrap(), scanned(&store, id), "{id}");
        }

        // An import interrupted after its edges but before their counts: the edges are
        // there, the count is stale, and the saved counts are gone.
        store.trees.in_count.insert(ids[0].as_bytes(), &count_value(5)).unwrap();
        store.meta.remove(COUNTS_KEY).unwrap();
        let redo = WriteBatch { citations: vec![cite(1, &ids[1], &ids[0])], ..Default::default() };
        let outcome = store.apply(redo).unwrap();
        assert_eq!((outcome.citations_new, outcome.citations_unchanged), (0, 1));
        assert_eq!(store.citation_count(&ids[0]).unwrap(), 29, "a repeated edge recounts its paper");

        // Reopening reads the saved counts; without them it counts the trees, alike.
        let saved = store.stats().unwrap();
        drop(store);
        let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
        let reopened = store.stats().unwrap();
        assert_eq!((reopened.papers, reopened.citations, reopened.authors), (30, 32, 1));
        assert_eq!((saved.papers, saved.citations), (reopened.papers, reopened.citations));
        store.meta.remove(COUNTS_KEY).unwrap();
        let collections = store.collections().unwrap();
        drop(store);
        let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
        let recounted = store.stats().unwrap();
        assert_eq!((recounted.papers, recounted.citations, recounted.authors), (30, 32, 1));
        assert_eq!(store.collections().unwrap(), collections);
        assert!(store.saved_counts().is_some(), "the recount is saved for the next open");
    }

    #[test]
    fn the_cache_is_sized_from_the_store_unless_configured() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(StoreConfig::default().cache_for(dir.path()), MIN_CACHE_BYTES);
        assert_eq!(StoreConfig { cache_bytes: 5 }.cache_for(dir.path()), 5);
        let sub = dir.path().join("snap");
        std::fs::create_dir(&sub).unwrap();
        std::fs::File::create(sub.join("big")).unwrap().set_len(1024 * 1024 * 1024).unwrap();
        assert_eq!(StoreConfig::default().cache_for(dir.path()), 256 * 1024 * 1024);
        std::fs::File::create(dir.path().join("huge")).unwrap().set_len(8 * 1024 * 1024 * 1024).unwrap();
        assert_eq!(StoreConfig::default().cache_for(dir.path()), MAX_AUTO_CACHE_BYTES);
    }

    #[test]
    fn updated_dates_move_their_edges() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
        store
            .apply(WriteBatch {
                papers: vec![paper("x", 10, &["a"]), paper("y", 20, &["b"])],
                citations: vec![cite(1, "y", "x")],
                ..Default::default()
            })
            .unwrap();
        let out = store
            .apply(WriteBatch {
                papers: vec![paper("x", 15, &["a"])],
                citations: vec![],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(out.papers_updated, 1);
        let page = store.citations("y", Direction::Out, None, 10).unwrap();
        assert_eq!(page.items[0].date, dates::format(15));
        // Re-sending the citation finds it stored under the new date.
        let again = store
            .apply(WriteBatch { papers: vec![], citations: vec![cite(1, "y", "x")], ..Default::default() })
            .unwrap();
        assert_eq!(again.citations_unchanged, 1);
    }

    #[test]
    fn pages_through_citations_with_cursors() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
        let mut papers = vec![paper("target", 0, &["a"])];
        let mut cites = vec![];
        for i in 0..25 {
            papers.push(paper(&format!("c{i:02}"), 10 + i, &["b"]));
            cites.push(cite(i as u64, &format!("c{i:02}"), "target"));
        }
        store.apply(WriteBatch { papers, citations: cites, ..Default::default() }).unwrap();
        let mut cursor: Option<Vec<u8>> = None;
        let mut got = vec![];
        loop {
            let page = store.citations("target", Direction::In, cursor.as_deref(), 10).unwrap();
            assert_eq!(page.total, 25);
            got.extend(page.items.into_iter().map(|e| e.id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let expected: Vec<String> = (0..25).map(|i| format!("c{i:02}")).collect();
        assert_eq!(got, expected);
    }

    fn with_aliases(mut p: Paper, aliases: &[&str]) -> Paper {
        p.aliases = aliases.iter().map(|a| a.to_string()).collect();
        p
    }

    #[test]
    fn a_clashing_alias_becomes_ambiguous_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
        // Before the fix both DOIs claimed "123" (everything after the slash).
        let a = with_aliases(paper("10.1000/0123", 10, &["a"]), &["123", "W1"]);
        let b = with_aliases(paper("10.2000/123", 20, &["b"]), &["123", "W2"]);
        let out = store
            .apply(WriteBatch { papers: vec![a.clone()], paper_lines: vec![1], ..Default::default() })
            .unwrap();
        assert!(out.alias_conflicts.is_empty());
        assert_eq!(store.resolve("123").unwrap().as_deref(), Some("10.1000/0123"));
        let out = store
            .apply(WriteBatch {
                papers: vec![b.clone(), paper("c", 30, &["c"])],
                paper_lines: vec![7, 8],
                citations: vec![cite(9, "c", "123"), cite(10, "c", "W2")],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            out.alias_conflicts,
            vec![AliasConflict {
                line: 7,
                alias: "123".into(),
                paper: "10.2000/123".into(),
                other: "10.1000/0123".into()
            }]
        );
        // Neither paper answers to it; each still answers to its own ids.
        assert_eq!(store.resolve("123").unwrap(), None);
        assert_eq!(store.ambiguous_alias("123").unwrap().unwrap(), vec!["10.1000/0123", "10.2000/123"]);
        assert_eq!(store.resolve("W2").unwrap().as_deref(), Some("10.2000/123"));
        assert_eq!(store.resolve("10.2000/123").unwrap().as_deref(), Some("10.2000/123"));
        assert_eq!(store.resolve("https://doi.org/10.2000/123").unwrap().as_deref(), Some("10.2000/123"));
        // A citation naming the ambiguous alias is rejected with both ids, not stored.
        assert_eq!(out.citations_new, 1);
        assert_eq!(out.rejected.len(), 1);
        assert!(out.rejected[0].reason.contains("ambiguous"), "{:?}", out.rejected);
        assert!(out.rejected[0].reason.contains("10.1000/0123, 10.2000/123"), "{:?}", out.rejected);

        // Importing the same records again changes nothing and reports the same clash.
        let generation = store.generation();
        let again = store
            .apply(WriteBatch {
                papers: vec![a.clone(), b.clone()],
                paper_lines: vec![1, 7],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(again.papers_unchanged, 2);
        assert_eq!(again.alias_conflicts.len(), 2);
        assert_eq!(store.generation(), generation);

        // When one of them drops the alias, it resolves to the other again.
        let b2 = with_aliases(paper("10.2000/123", 20, &["b"]), &["W2"]);
        store.apply(WriteBatch { papers: vec![b2], ..Default::default() }).unwrap();
        assert_eq!(store.resolve("123").unwrap().as_deref(), Some("10.1000/0123"));
        assert_eq!(store.ambiguous_alias("123").unwrap(), None);
    }

    #[test]
    fn an_alias_never_takes_over_another_papers_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
        let out = store
            .apply(WriteBatch {
                papers: vec![paper("x1", 10, &["a"]), with_aliases(paper("x2", 20, &["b"]), &["x1", "same"])],
                paper_lines: vec![1, 2],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(out.alias_conflicts.len(), 1);
        assert_eq!(
            (out.alias_conflicts[0].alias.as_str(), out.alias_conflicts[0].other.as_str()),
            ("x1", "x1")
        );
        assert_eq!(store.resolve("x1").unwrap().as_deref(), Some("x1"));
        assert_eq!(store.resolve("same").unwrap().as_deref(), Some("x2"));
    }

    #[test]
    fn collections_count_their_papers_and_keep_authors_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
        // A store from before collections: papers without an entry are the default's.
        store.apply(WriteBatch { papers: vec![paper("old", 5, &["kim_j"])], ..Default::default() }).unwrap();
        store.trees.collection_of.clear().unwrap();
        store.trees.collection_papers.clear().unwrap();
        store.meta.remove(COUNTS_KEY).unwrap(); // nor did it save counts
        drop(store);
        let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
        assert_eq!(store.collection_of("old").unwrap().as_deref(), Some(DEFAULT_COLLECTION));
        assert_eq!(store.collection_of("nope").unwrap(), None);

        let in_physics = |id: &str, day| {
            let mut p = paper(id, day, &["kim_j"]);
            for a in &mut p.authors {
                a.key = author_key_in(&a.key, "physics-x");
            }
            p
        };
        let batch = || WriteBatch {
            papers: vec![in_physics("p1", 100), in_physics("p2", 300)],
            citations: vec![cite(1, "p2", "p1"), cite(2, "p2", "old")],
            collection: Some("physics-x".into()),
            ..Default::default()
        };
        store.apply(batch()).unwrap();
        assert_eq!(store.apply(batch()).unwrap().papers_unchanged, 2, "idempotent");
        assert_eq!(store.collection_of("p1").unwrap().as_deref(), Some("physics-x"));
        let list = store.collections().unwrap();
        assert_eq!(
            list,
            vec![
                CollectionInfo { name: "default".into(), papers: 1, first_day: Some(5), last_day: Some(5) },
                CollectionInfo {
                    name: "physics-x".into(),
                    papers: 2,
                    first_day: Some(100),
                    last_day: Some(300)
                },
            ]
        );
        // Two fields' kim_j are two people.
        assert_eq!(store.author_view("kim_j").unwrap().unwrap().papers.len(), 1);
        assert_eq!(store.author_view("kim_j@physics-x").unwrap().unwrap().papers.len(), 2);

        // The collection's corpus holds its papers and only the citations among them.
        let corpus = crate::forecast::corpus::Corpus::from_store_collection(&store, "physics-x").unwrap();
        assert_eq!(corpus.ids, vec!["p1", "p2"]);
        assert_eq!(corpus.refs[1], vec![0]);
        assert!(corpus.author_by_key.contains_key("kim_j@physics-x"));
        assert!(crate::forecast::corpus::Corpus::from_store_collection(&store, "none").unwrap().is_empty());

        // A paper written again in another collection moves there; counts follow at reopen too.
        store.apply(WriteBatch { papers: vec![paper("p1", 100, &["kim_j"])], ..Default::default() }).unwrap();
        let counts = |s: &Store| {
            s.collections().unwrap().iter().map(|c| (c.name.clone(), c.papers)).collect::<Vec<_>>()
        };
        assert_eq!(counts(&store), vec![("default".into(), 2), ("physics-x".into(), 1)]);
        drop(store);
        let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
        assert_eq!(counts(&store), vec![("default".into(), 2), ("physics-x".into(), 1)]);
        assert_eq!(store.collection_paper_ids("physics-x").unwrap(), vec!["p2"]);
    }

    #[test]
    fn collection_names_are_checked() {
        assert!(check_collection_name("physics-x").is_ok());
        assert!(check_collection_name(&"a".repeat(40)).is_ok());
        for bad in ["", "Physics", "a b", "a_b", "a@b", &"a".repeat(41)] {
            assert!(check_collection_name(bad).is_err(), "{bad}");
        }
        assert_eq!(author_key_in("kim_j", DEFAULT_COLLECTION), "kim_j");
        assert_eq!(author_key_in("kim_j", "bio"), "kim_j@bio");
    }
}
