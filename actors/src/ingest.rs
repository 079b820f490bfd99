//! Reading corpus files: papers as JSON Lines, citations as TSV or an edge list,
//! gzip or plain. Each record is validated; a bad line is counted and reported with
//! its line number and reason, and never stops the import. The format is documented
//! in `docs/ingest-format.md`.
//!
//! Besides citecast's own format, records of open scholarly dumps (OpenAlex works, the
//! arXiv metadata snapshot, Crossref works and API responses) are mapped by
//! [`crate::importers`]; `--format auto` sniffs the first record. Every file's papers go
//! to one named collection.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::dates::{self, Day};
use crate::importers::{self, Mapped};
use crate::names;
use crate::records::{AuthorRef, Paper};
use crate::store::{
    AliasConflict, BatchOutcome, CitationInput, Rejection, StoreError, WriteBatch, DEFAULT_COLLECTION,
};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: unrecognised format ({why}); expected papers as JSON Lines (citecast, OpenAlex, arXiv or Crossref) or citations as TSV")]
    UnknownFormat { path: String, why: String },
    #[error("{0}")]
    InvalidCollection(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
    #[error("engine unavailable: {0}")]
    Mailbox(String),
}

/// Papers per store write; bounds memory and makes progress visible.
const PAPER_BATCH: usize = 2_000;
/// Citations per store write.
const CITATION_BATCH: usize = 25_000;
/// Error lines kept in a report; the rest are only counted.
const MAX_ERROR_SAMPLES: usize = 100;
/// Longest accepted input line.
const MAX_LINE_BYTES: usize = 1 << 20;
/// Longest accepted id.
const MAX_ID_LEN: usize = 128;

/// Default cap on the references one paper record may list.
pub const DEFAULT_MAX_REFS_PER_PAPER: usize = 10_000;
/// Default number of references held in memory before they go to a spill file.
pub const DEFAULT_MAX_PENDING_REFS: usize = 100_000;
/// Prefix and suffix of spill files in the spill directory.
const SPILL_PREFIX: &str = "ingest-";
const SPILL_SUFFIX: &str = ".refs";

/// Bounds on what one import may hold in memory.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// A paper line listing more references than this is rejected (with its reason);
    /// the rest of the file goes on.
    pub max_refs_per_paper: usize,
    /// References waiting for the end of the file (they may point forward) held in
    /// memory; beyond this they are appended to a spill file and read back at the end.
    pub max_pending_refs: usize,
    /// Where spill files go (owner-only, removed after the import); `None` uses the
    /// system temporary directory.
    pub spill_dir: Option<PathBuf>,
    /// How paper records are read; files of citations are recognised whatever it says.
    pub format: SourceFormat,
    /// The collection papers go to; `None`: the format's own ([`Format::default_collection`]).
    pub collection: Option<String>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            max_refs_per_paper: DEFAULT_MAX_REFS_PER_PAPER,
            max_pending_refs: DEFAULT_MAX_PENDING_REFS,
            spill_dir: None,
            format: SourceFormat::Auto,
            collection: None,
        }
    }
}

/// The format asked for (`citecast ingest --format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// Sniffed from the first record: OpenAlex (`https://openalex.org/`), Crossref
    /// (`"DOI"` or an API response's `"message"`), arXiv (`authors_parsed`, `versions`),
    /// otherwise citecast's own formats.
    #[default]
    Auto,
    /// citecast's papers JSON Lines, citations TSV or edge list.
    Citecast,
    Openalex,
    Arxiv,
    Crossref,
}

impl SourceFormat {
    pub const ALL: [SourceFormat; 5] = [
        SourceFormat::Auto,
        SourceFormat::Citecast,
        SourceFormat::Openalex,
        SourceFormat::Arxiv,
        SourceFormat::Crossref,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Auto => "auto",
            SourceFormat::Citecast => "citecast",
            SourceFormat::Openalex => "openalex",
            SourceFormat::Arxiv => "arxiv",
            SourceFormat::Crossref => "crossref",
        }
    }
}

impl std::str::FromStr for SourceFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SourceFormat::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| {
            format!("unknown format '{s}': expected auto, citecast, openalex, arxiv or crossref")
        })
    }
}

/// Removes spill files an interrupted import left in `dir`; returns how many.
pub fn remove_stale_spills(dir: &Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(SPILL_PREFIX) && name.ends_with(SPILL_SUFFIX) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// References waiting for the end of the file, in file order: the oldest in a spill
/// file once more than `max_pending_refs` are pending, the newest in memory.
struct PendingRefs {
    limit: usize,
    dir: PathBuf,
    memory: Vec<CitationInput>,
    spill: Option<Spill>,
}

/// An owner-only file of `line<TAB>citing<TAB>cited` rows (ids hold no whitespace),
/// deleted when dropped.
struct Spill {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    rows: u64,
}

impl Drop for Spill {
    fn drop(&mut self) {
        self.writer = None;
        let _ = std::fs::remove_file(&self.path);
    }
}

impl PendingRefs {
    fn new(options: &IngestOptions) -> Self {
        PendingRefs {
            limit: options.max_pending_refs.max(1),
            dir: references_dir(options),
            memory: Vec::new(),
            spill: None,
        }
    }

    /// Holds nothing and never spills (what a finished import leaves behind).
    fn empty() -> Self {
        PendingRefs { limit: usize::MAX, dir: PathBuf::new(), memory: Vec::new(), spill: None }
    }

    fn push(&mut self, c: CitationInput) -> std::io::Result<()> {
        self.memory.push(c);
        if self.memory.len() >= self.limit {
            self.spill_memory()?;
        }
        Ok(())
    }

    fn spilled(&self) -> u64 {
        self.spill.as_ref().map_or(0, |s| s.rows)
    }

    fn spill_memory(&mut self) -> std::io::Result<()> {
        if self.spill.is_none() {
            self.spill = Some(Spill::create(&self.dir)?);
        }
        let spill = self.spill.as_mut().expect("spill file just created");
        let w = spill.writer.as_mut().expect("spill file still being written");
        for c in self.memory.drain(..) {
            writeln!(w, "{}\t{}\t{}", c.line, c.citing, c.cited)?;
            spill.rows += 1;
        }
        // Give the capacity back: the point is to hold few references.
        self.memory.shrink_to(self.limit.min(CITATION_BATCH));
        Ok(())
    }

    /// Hands every pending reference, in file order, to `f` in chunks of at most
    /// `chunk`, then removes the spill file.
    fn drain(
        mut self,
        chunk: usize,
        mut f: impl FnMut(Vec<CitationInput>) -> Result<(), IngestError>,
    ) -> Result<(), IngestError> {
        if let Some(mut spill) = self.spill.take() {
            let path = spill.path.clone();
            let io = |source| IngestError::Io { path: path.display().to_string(), source };
            let damaged =
                || io(std::io::Error::new(std::io::ErrorKind::InvalidData, "spill file row is damaged"));
            let mut w = spill.writer.take().expect("spill file still being written");
            w.flush().map_err(io)?;
            drop(w);
            let mut r = BufReader::with_capacity(1 << 16, File::open(&spill.path).map_err(io)?);
            let mut out = Vec::with_capacity(chunk.min(spill.rows as usize));
            let mut text = String::new();
            loop {
                text.clear();
                if r.read_line(&mut text).map_err(io)? == 0 {
                    break;
                }
                let mut cols = text.trim_end_matches('\n').splitn(3, '\t');
                let (Some(line), Some(citing), Some(cited)) = (cols.next(), cols.next(), cols.next()) else {
                    return Err(damaged());
                };
                let line = line.parse().map_err(|_| damaged())?;
                out.push(CitationInput { line, citing: citing.to_string(), cited: cited.to_string() });
                if out.len() >= chunk {
                    f(std::mem::take(&mut out))?;
                }
            }
            if !out.is_empty() {
                f(out)?;
            }
            drop(spill);
        }
        let mut memory = std::mem::take(&mut self.memory);
        while !memory.is_empty() {
            let rest = if memory.len() > chunk { memory.split_off(chunk) } else { Vec::new() };
            f(memory)?;
            memory = rest;
        }
        Ok(())
    }
}

impl Spill {
    fn create(dir: &Path) -> std::io::Result<Spill> {
        use std::sync::atomic::AtomicUsize;
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        create_private_dir(dir)?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{SPILL_PREFIX}{}-{n}{SPILL_SUFFIX}", std::process::id()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(&path)?;
        Ok(Spill { path, writer: Some(BufWriter::with_capacity(1 << 16, file)), rows: 0 })
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One paper per line, see `docs/ingest-format.md`.
    PapersJsonl,
    /// `citing_id<TAB>cited_id[<TAB>citing_date<TAB>cited_date]` with a header row.
    CitationsTsv,
    /// SNAP edge list: `citing<TAB>cited`, `#` comments.
    EdgeList,
    /// OpenAlex works, one per line.
    Openalex,
    /// The arXiv metadata snapshot, one record per line.
    Arxiv,
    /// Crossref works, one per line.
    Crossref,
    /// One Crossref REST API response, `{"message":{"items":[...]}}`.
    CrossrefResponse,
}

impl Format {
    /// The collection a file of this format goes to unless one is named: the format's
    /// name for the open-data formats, [`DEFAULT_COLLECTION`] for citecast's own.
    pub fn default_collection(self) -> &'static str {
        match self {
            Format::Openalex => "openalex",
            Format::Arxiv => "arxiv",
            Format::Crossref | Format::CrossrefResponse => "crossref",
            Format::PapersJsonl | Format::CitationsTsv | Format::EdgeList => DEFAULT_COLLECTION,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IngestReport {
    pub file: String,
    pub format: Option<Format>,
    pub lines: u64,
    pub papers_new: u64,
    pub papers_updated: u64,
    pub papers_unchanged: u64,
    pub citations_new: u64,
    pub citations_unchanged: u64,
    /// Lines rejected (malformed or referring to unknown papers).
    pub errors: u64,
    /// The first rejected lines with their reasons.
    pub error_samples: Vec<Rejection>,
    /// Pending references that went through a spill file to bound memory.
    #[serde(default)]
    pub references_spilled: u64,
    /// The collection the file's papers went to.
    #[serde(default)]
    pub collection: Option<String>,
    /// References without a usable id (a Crossref reference without DOI), skipped.
    #[serde(default)]
    pub references_skipped: u64,
    /// Aliases claimed by a paper that another paper already held: not overwritten, left
    /// ambiguous (resolving to no paper) or with the paper whose id they are.
    #[serde(default)]
    pub aliases_ambiguous: u64,
    /// The first of those clashes, with the line and both papers.
    #[serde(default)]
    pub alias_conflicts: Vec<AliasConflict>,
}

impl IngestReport {
    pub fn new_records(&self) -> u64 {
        self.papers_new + self.papers_updated + self.citations_new
    }

    fn reject(&mut self, line: u64, reason: String) {
        self.errors += 1;
        if self.error_samples.len() < MAX_ERROR_SAMPLES {
            self.error_samples.push(Rejection { line, reason });
        }
    }

    fn add(&mut self, o: BatchOutcome) {
        self.aliases_ambiguous += o.alias_conflicts.len() as u64;
        let room = MAX_ERROR_SAMPLES.saturating_sub(self.alias_conflicts.len());
        self.alias_conflicts.extend(o.alias_conflicts.into_iter().take(room));
        self.papers_new += o.papers_new;
        self.papers_updated += o.papers_updated;
        self.papers_unchanged += o.papers_unchanged;
        self.citations_new += o.citations_new;
        self.citations_unchanged += o.citations_unchanged;
        for r in o.rejected {
            self.reject(r.line, r.reason);
        }
    }
}

/// Where parsed batches go: the store (and, for changed papers, the index).
pub trait Sink {
    fn write(&mut self, batch: WriteBatch) -> Result<BatchOutcome, IngestError>;
    /// Makes index writes so far visible.
    fn commit(&mut self) -> Result<(), IngestError>;
}

/// Writes straight into a store, without the index (training, tools, tests).
pub struct StoreSink(pub crate::store::Store);

impl Sink for StoreSink {
    fn write(&mut self, batch: WriteBatch) -> Result<BatchOutcome, IngestError> {
        Ok(self.0.apply(batch)?)
    }
    fn commit(&mut self) -> Result<(), IngestError> {
        Ok(self.0.flush()?)
    }
}

/// Writes straight into a store and its search index, as the ingest actor does by
/// message (benchmarks and tools that own both).
pub struct IndexedStoreSink<'a> {
    pub store: &'a crate::store::Store,
    pub index: &'a crate::index::TopicIndex,
}

impl Sink for IndexedStoreSink<'_> {
    fn write(&mut self, batch: WriteBatch) -> Result<BatchOutcome, IngestError> {
        let collection = batch.collection.clone().unwrap_or_else(|| DEFAULT_COLLECTION.to_string());
        let mut outcome = self.store.apply(batch)?;
        if !outcome.changed_papers.is_empty() {
            let papers = std::mem::take(&mut outcome.changed_papers);
            self.index.upsert(&papers, &collection)?;
        }
        Ok(outcome)
    }

    fn commit(&mut self) -> Result<(), IngestError> {
        self.index.commit()?;
        self.store.flush()?;
        Ok(())
    }
}

/// Progress of one file: compressed bytes read of the file's size.
#[derive(Debug, Clone)]
pub struct Progress {
    pub file: String,
    pub bytes_read: u64,
    pub bytes_total: u64,
    pub lines: u64,
}

pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> IngestError + '_ {
    move |source| IngestError::Io { path: path.display().to_string(), source }
}

/// Opens a file, transparently decompressing gzip (detected by its magic bytes).
fn open(path: &Path, count: Arc<AtomicU64>) -> Result<Box<dyn BufRead>, IngestError> {
    let file = File::open(path).map_err(io_err(path))?;
    // A buffer large enough to hold the first record of most dumps, for sniffing.
    let mut raw = BufReader::with_capacity(1 << 16, CountingReader { inner: file, count });
    let head = raw.fill_buf().map_err(io_err(path))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(1 << 16, flate2::bufread::MultiGzDecoder::new(raw))))
    } else {
        Ok(Box::new(raw))
    }
}

/// Reads one line without its terminator. `Ok(None)` at end of input; a line that is
/// not UTF-8 or too long comes back as `Err(reason)`.
fn next_line(r: &mut dyn BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<Result<String, String>>> {
    buf.clear();
    let n = (&mut *r).take(MAX_LINE_BYTES as u64 + 1).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
        // Skip the rest of the oversized line.
        let mut sink = Vec::new();
        while !sink.ends_with(b"\n") {
            sink.clear();
            if (&mut *r).take(MAX_LINE_BYTES as u64).read_until(b'\n', &mut sink)? == 0 {
                break;
            }
        }
        return Ok(Some(Err(format!("line longer than {MAX_LINE_BYTES} bytes"))));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    // A UTF-8 byte-order mark (written by some editors at the start of a file) is not
    // part of the record: strip it for parsing as well as for format detection.
    if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
        buf.drain(..3);
    }
    Ok(Some(String::from_utf8(std::mem::take(buf)).map_err(|_| "line is not valid UTF-8".to_string())))
}

fn detect(first: &str) -> Result<Format, String> {
    let t = first.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('{') {
        Ok(Format::PapersJsonl)
    } else if t.starts_with("citing") {
        Ok(Format::CitationsTsv)
    } else if t.starts_with('#') || t.split_whitespace().count() == 2 {
        Ok(Format::EdgeList)
    } else {
        let shown: String = t.chars().take(60).collect();
        Err(format!("first line starts with '{shown}'"))
    }
}

/// Recognises an open-data record from the start of a file (the first record, or the
/// first bytes of a pretty-printed document): `None` for citecast's own formats.
fn sniff_record(head: &str) -> Option<Format> {
    let t = head.trim_start_matches('\u{feff}').trim_start();
    if !t.starts_with('{') {
        return None;
    }
    if is_crossref_response(t) {
        return Some(Format::CrossrefResponse);
    }
    let first = first_record(t);
    // A whole first record is judged by its keys, so words quoted inside a citecast
    // abstract ("versions") cannot mislead it; a record longer than the head by the
    // keys' quoted names, which such records give early.
    let (openalex, doi, arxiv) = match serde_json::from_str::<serde_json::Value>(first) {
        Ok(serde_json::Value::Object(map)) => {
            let id = map.get("id").and_then(|v| v.as_str()).unwrap_or_default();
            (
                id.starts_with("https://openalex.org/"),
                map.contains_key("DOI"),
                map.contains_key("authors_parsed") || map.contains_key("versions"),
            )
        }
        Ok(_) => (false, false, false),
        Err(_) => (
            first.contains("\"https://openalex.org/"),
            first.contains("\"DOI\""),
            first.contains("\"authors_parsed\"") || first.contains("\"versions\""),
        ),
    };
    if openalex {
        Some(Format::Openalex)
    } else if doi {
        Some(Format::Crossref)
    } else if arxiv {
        Some(Format::Arxiv)
    } else {
        None
    }
}

/// The first line, or the whole head when that line is not a whole record (a
/// pretty-printed document).
fn first_record(t: &str) -> &str {
    let line = t.lines().next().unwrap_or_default();
    if serde_json::from_str::<serde::de::IgnoredAny>(line).is_ok() {
        line
    } else {
        t
    }
}

/// An API response wraps its works in `message`; a work never has that key.
fn is_crossref_response(t: &str) -> bool {
    let first = first_record(t);
    match serde_json::from_str::<serde_json::Value>(first) {
        Ok(v) => v.get("message").is_some(),
        // Pretty-printed or longer than the head: look for the envelope's keys.
        Err(_) => t.contains("\"message\"") && (t.contains("\"message-type\"") || t.contains("\"items\"")),
    }
}

/// The format of a file: what `choice` asks for, or sniffed for `auto`. Citation files
/// (a TSV header or edge list) are recognised whatever the choice, so an arXiv import
/// may name its citations file in the same command.
fn choose_format(choice: SourceFormat, head: &str) -> Result<Format, String> {
    let t = head.trim_start_matches('\u{feff}').trim_start();
    let record = t.starts_with('{');
    match choice {
        SourceFormat::Auto => match sniff_record(t) {
            Some(f) => Ok(f),
            None => detect(t.lines().next().unwrap_or_default()),
        },
        SourceFormat::Citecast => detect(t.lines().next().unwrap_or_default()),
        _ if !record => match detect(t.lines().next().unwrap_or_default())? {
            Format::PapersJsonl => Err("expected a JSON object".into()),
            citations => Ok(citations),
        },
        SourceFormat::Openalex => Ok(Format::Openalex),
        SourceFormat::Arxiv => Ok(Format::Arxiv),
        SourceFormat::Crossref if is_crossref_response(t) => Ok(Format::CrossrefResponse),
        SourceFormat::Crossref => Ok(Format::Crossref),
    }
}

/// A paper record as it appears in a JSON Lines file.
#[derive(Debug, Deserialize)]
struct PaperRecord {
    id: String,
    #[serde(default)]
    arxiv_id: Option<String>,
    title: String,
    #[serde(default)]
    authors: Option<Vec<String>>,
    #[serde(default)]
    authors_raw: Option<String>,
    #[serde(default, alias = "submitted")]
    submitted_utc: Option<String>,
    #[serde(default)]
    revised_utc: Vec<String>,
    #[serde(default, rename = "abstract")]
    abstract_text: Option<String>,
    #[serde(default, alias = "subject")]
    subj_class: Option<String>,
    #[serde(default)]
    journal_ref: Option<String>,
    #[serde(default)]
    comments: Option<String>,
    #[serde(default)]
    report_no: Option<String>,
    /// Ids this paper cites; stored as citations once the whole file is read.
    #[serde(default)]
    references: Vec<String>,
}

/// Checks an id: 1 to 128 characters without whitespace or control characters.
pub(crate) fn check_id(what: &str, id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!("{what} is longer than {MAX_ID_LEN} characters"));
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{what} '{id}' contains whitespace or control characters"));
    }
    Ok(())
}

/// A `YYYY-MM-DD` date of 1900-2100, for the importers.
pub(crate) fn check_date_range(field: &str, s: &str) -> Result<Day, String> {
    check_date(field, s)
}

fn check_date(field: &str, s: &str) -> Result<Day, String> {
    let day = dates::parse(s)
        .ok_or_else(|| format!("{field} '{s}' is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)"))?;
    let year = dates::year_of(day);
    if !(1900..=2100).contains(&year) {
        return Err(format!("{field} '{s}' is outside 1900-2100"));
    }
    Ok(day)
}

/// Other ids a paper is known by: the source id and, for an old-style arXiv id
/// (`archive/NNNNNNN`), the number with and without leading zeros (the SNAP files drop
/// them). Only those: the part after a DOI's slash (`10.1000/0123`) is no id at all.
pub(crate) fn aliases_of(canonical: &str, source_id: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |s: &str| {
        if !s.is_empty() && s != canonical && !out.iter().any(|o: &String| o == s) {
            out.push(s.to_string());
        }
    };
    push(source_id);
    if let Some((_, number)) = canonical.rsplit_once('/').filter(|_| importers::is_old_arxiv_id(canonical)) {
        push(number);
        if number.bytes().all(|b| b.is_ascii_digit()) {
            push(number.trim_start_matches('0'));
        }
    }
    out
}

/// Splits a free-form author list ("A. B, C. D and E. F") when no array is given.
pub(crate) fn split_authors(raw: &str) -> Vec<String> {
    raw.replace(" and ", ",")
        .replace(" & ", ",")
        .split([',', ';'])
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn clean(s: Option<String>) -> Option<String> {
    s.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|s| !s.is_empty())
}

/// Validates a JSON line into a paper and the ids it references.
fn parse_paper(line: &str, max_refs: usize) -> Result<(Paper, Vec<String>), String> {
    let r: PaperRecord = serde_json::from_str(line).map_err(|e| format!("invalid paper record: {e}"))?;
    if r.references.len() > max_refs {
        return Err(format!(
            "{} references, more than the {max_refs} one paper may list (--max-refs-per-paper)",
            r.references.len()
        ));
    }
    check_id("id", &r.id)?;
    let canonical = r.arxiv_id.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| r.id.clone());
    check_id("arxiv_id", &canonical)?;
    let title = clean(Some(r.title)).ok_or("title is empty")?;
    let raw_authors = match (r.authors, r.authors_raw) {
        (Some(list), _) if !list.is_empty() => list,
        (_, Some(raw)) => split_authors(&raw),
        _ => Vec::new(),
    };
    let authors: Vec<AuthorRef> = raw_authors
        .iter()
        .filter_map(|a| names::normalise_author(a))
        .map(|n| AuthorRef { raw: n.raw, display: n.display, key: n.key })
        .collect();
    if authors.is_empty() {
        return Err("no usable author: give \"authors\" as a non-empty array of names".into());
    }
    let submitted_text = r.submitted_utc.as_deref().ok_or("submitted_utc is missing")?;
    let submitted = check_date("submitted_utc", submitted_text)?;
    let submitted_secs = dates::parse_time_of_day(submitted_text);
    let revised =
        r.revised_utc.iter().map(|s| check_date("revised_utc", s)).collect::<Result<Vec<_>, _>>()?;
    for reference in &r.references {
        check_id("reference", reference)?;
    }
    let paper = Paper {
        aliases: aliases_of(&canonical, &r.id),
        id: canonical,
        title,
        authors,
        submitted,
        submitted_secs,
        revised,
        abstract_text: clean(r.abstract_text).unwrap_or_default(),
        subject: clean(r.subj_class),
        journal_ref: clean(r.journal_ref),
        comments: clean(r.comments),
        report_no: clean(r.report_no),
    };
    Ok((paper, r.references))
}

/// Validates a citation line (TSV or edge list).
fn parse_citation(format: Format, line_no: u64, line: &str) -> Result<CitationInput, String> {
    let cols: Vec<&str> = match format {
        Format::CitationsTsv => line.split('\t').map(str::trim).collect(),
        _ => line.split_whitespace().collect(),
    };
    if cols.len() < 2 {
        return Err(format!("expected 2 columns (citing, cited), found {}", cols.len()));
    }
    check_id("citing id", cols[0])?;
    check_id("cited id", cols[1])?;
    if format == Format::CitationsTsv {
        if cols.len() != 2 && cols.len() != 4 {
            return Err(format!("expected 2 or 4 columns, found {}", cols.len()));
        }
        if cols.len() == 4 {
            check_date("citing_date", cols[2])?;
            check_date("cited_date", cols[3])?;
        }
    }
    Ok(CitationInput { line: line_no, citing: cols[0].to_string(), cited: cols[1].to_string() })
}

/// Imports one file into `sink`. Only I/O and storage failures are errors; bad lines
/// are reported in the returned [`IngestReport`].
pub fn ingest_file(
    path: &Path,
    sink: &mut dyn Sink,
    progress: Option<&ProgressFn>,
) -> Result<IngestReport, IngestError> {
    ingest_file_with(path, sink, progress, &IngestOptions::default())
}

/// [`ingest_file`] with explicit memory bounds, format and collection.
pub fn ingest_file_with(
    path: &Path,
    sink: &mut dyn Sink,
    progress: Option<&ProgressFn>,
    options: &IngestOptions,
) -> Result<IngestReport, IngestError> {
    if let Some(name) = &options.collection {
        crate::store::check_collection_name(name).map_err(IngestError::InvalidCollection)?;
    }
    let bytes_total = std::fs::metadata(path).map_err(io_err(path))?.len();
    let count = Arc::new(AtomicU64::new(0));
    let mut reader = open(path, count.clone())?;
    let file = path.display().to_string();
    // The first bytes (at most one buffer) decide the format; nothing is consumed.
    let head = String::from_utf8_lossy(reader.fill_buf().map_err(io_err(path))?).into_owned();
    let format = if head.trim_start_matches('\u{feff}').trim().is_empty() {
        None
    } else {
        Some(
            choose_format(options.format, &head)
                .map_err(|why| IngestError::UnknownFormat { path: file.clone(), why })?,
        )
    };
    let collection = options
        .collection
        .clone()
        .unwrap_or_else(|| format.map_or(DEFAULT_COLLECTION, Format::default_collection).to_string());
    // A file of citations adds no papers to any collection.
    let citations_only = matches!(format, Some(Format::CitationsTsv | Format::EdgeList));
    let report = IngestReport {
        file,
        format,
        collection: (!citations_only || options.collection.is_some()).then(|| collection.clone()),
        ..Default::default()
    };
    let mut run = Run {
        report,
        batch: WriteBatch::default(),
        references: PendingRefs::new(options),
        spill_dir: references_dir(options),
        collection,
        sink,
        max_refs: options.max_refs_per_paper,
    };
    let tick = |report: &IngestReport| {
        if let Some(p) = progress {
            p(&Progress {
                file: report.file.clone(),
                bytes_read: count.load(Ordering::Relaxed),
                bytes_total,
                lines: report.lines,
            });
        }
    };

    if format == Some(Format::CrossrefResponse) {
        let max_refs = run.max_refs;
        let mut item_no = 0u64;
        let read = importers::crossref::for_each_item(&mut *reader, |line, item| {
            item_no += 1;
            run.report.lines = line;
            let mapped = importers::crossref::map_value(item, max_refs)
                .map_err(|reason| format!("item {item_no}: {reason}"));
            run.paper(line, mapped)?;
            if run.flush_if_full()? {
                tick(&run.report);
            }
            Ok::<_, IngestError>(())
        });
        match read {
            Ok(result) => run.report.lines = run.report.lines.max(result?),
            // A broken document ends the file; what came before it is imported.
            Err((line, reason)) => {
                run.report.lines = line;
                run.report.reject(line, reason);
            }
        }
    } else {
        let mut header_pending = format == Some(Format::CitationsTsv);
        let mut buf = Vec::new();
        while let Some(line) = next_line(&mut *reader, &mut buf).map_err(io_err(path))? {
            run.report.lines += 1;
            let n = run.report.lines;
            let line = match line {
                Ok(l) => l,
                Err(reason) => {
                    run.report.reject(n, reason);
                    continue;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let Some(fmt) = format else { continue };
            if header_pending {
                header_pending = false;
                continue;
            }
            let max_refs = run.max_refs;
            match fmt {
                Format::PapersJsonl => {
                    let mapped = parse_paper(&line, max_refs).map(|(paper, references)| Mapped {
                        paper,
                        references,
                        references_skipped: 0,
                    });
                    run.paper(n, mapped)?;
                }
                Format::Openalex => run.paper(n, importers::openalex::map(&line, max_refs))?,
                Format::Arxiv => run.paper(n, importers::arxiv::map(&line))?,
                Format::Crossref | Format::CrossrefResponse => {
                    run.paper(n, importers::crossref::map(&line, max_refs))?
                }
                Format::EdgeList if line.starts_with('#') => {}
                Format::CitationsTsv | Format::EdgeList => match parse_citation(fmt, n, &line) {
                    Ok(c) => run.batch.citations.push(c),
                    Err(reason) => run.report.reject(n, reason),
                },
            }
            if run.flush_if_full()? {
                tick(&run.report);
            }
        }
    }
    let mut report = run.finish()?;
    tick(&report);
    report.error_samples.sort_by_key(|r| r.line);
    report.alias_conflicts.sort_by_key(|c| c.line);
    Ok(report)
}

/// One file's import in progress: the report, the batch being filled and the
/// references waiting for the end of the file.
struct Run<'a> {
    report: IngestReport,
    batch: WriteBatch,
    references: PendingRefs,
    spill_dir: PathBuf,
    collection: String,
    sink: &'a mut dyn Sink,
    max_refs: usize,
}

impl Run<'_> {
    fn spill_err(&self, source: std::io::Error) -> IngestError {
        IngestError::Io { path: format!("spill file in {}", self.spill_dir.display()), source }
    }

    /// Takes one mapped paper record (or its rejection) from line `line`.
    fn paper(&mut self, line: u64, mapped: Result<Mapped, String>) -> Result<(), IngestError> {
        let Mapped { mut paper, references, references_skipped } = match mapped {
            Ok(m) => m,
            Err(reason) => {
                self.report.reject(line, reason);
                return Ok(());
            }
        };
        self.report.references_skipped += references_skipped;
        for a in &mut paper.authors {
            a.key = crate::store::author_key_in(&a.key, &self.collection);
        }
        for cited in references {
            let c = CitationInput { line, citing: paper.id.clone(), cited };
            self.references.push(c).map_err(|e| self.spill_err(e))?;
        }
        self.batch.papers.push(paper);
        self.batch.paper_lines.push(line);
        Ok(())
    }

    fn take_batch(&mut self) -> WriteBatch {
        let mut batch = std::mem::take(&mut self.batch);
        batch.collection = Some(self.collection.clone());
        batch
    }

    /// Writes the batch once it is full; says whether it did.
    fn flush_if_full(&mut self) -> Result<bool, IngestError> {
        if self.batch.papers.len() >= PAPER_BATCH || self.batch.citations.len() >= CITATION_BATCH {
            let batch = self.take_batch();
            let outcome = self.sink.write(batch)?;
            self.report.add(outcome);
            return Ok(true);
        }
        Ok(false)
    }

    /// Writes what is left, then the references (they may point forward in the file, so
    /// they are written after every paper), and commits.
    fn finish(mut self) -> Result<IngestReport, IngestError> {
        if !self.batch.papers.is_empty() || !self.batch.citations.is_empty() {
            let batch = self.take_batch();
            let outcome = self.sink.write(batch)?;
            self.report.add(outcome);
        }
        self.report.references_spilled = self.references.spilled();
        let references = std::mem::replace(&mut self.references, PendingRefs::empty());
        let (sink, report) = (&mut *self.sink, &mut self.report);
        references.drain(CITATION_BATCH, |citations| {
            report.add(sink.write(WriteBatch { citations, ..Default::default() })?);
            Ok(())
        })?;
        self.sink.commit()?;
        Ok(self.report)
    }
}

/// Where spill files go: the configured directory, else the system's temporary one.
fn references_dir(options: &IngestOptions) -> PathBuf {
    options.spill_dir.clone().unwrap_or_else(std::env::temp_dir)
}

/// The files `serve` imports into an empty data directory, in order (papers first,
/// so citations can refer to them).
pub fn bundled_files(data_dir: &Path) -> Vec<PathBuf> {
    vec![data_dir.join("papers.jsonl.gz"), data_dir.join("citations_dated.tsv.gz")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_bundled_record() {
        let line = r#"{"id": "9201002", "arxiv_id": "hep-th/9201002", "title": "Inomogeneous  Quantum Groups", "authors_raw": "F.Bonechi and E.Celeghini", "authors": ["F.Bonechi", "E.Celeghini"], "submitted_utc": "1992-01-02T12:17:00Z", "revised_utc": [], "comments": "5 pags", "subj_class": null, "journal_ref": "Phys.Rev.Lett. 68 (1992) 3718-3720", "report_no": null, "abstract": "The quantum deformed algebra.", "dir_year": "1992"}"#;
        let (p, refs) = parse_paper(line, DEFAULT_MAX_REFS_PER_PAPER).unwrap();
        assert_eq!(p.id, "hep-th/9201002");
        assert_eq!(p.aliases, vec!["9201002".to_string()]);
        assert_eq!(p.title, "Inomogeneous Quantum Groups");
        assert_eq!(p.authors.len(), 2);
        assert_eq!(dates::format(p.submitted), "1992-01-02");
        assert!(refs.is_empty());
    }

    #[test]
    fn a_byte_order_mark_does_not_lose_the_first_record() {
        let line = "\u{feff}{\"id\":\"x1\", \"title\":\"t\", \"authors\":[\"A. B\"], \"submitted_utc\":\"1999-01-01\"}\r\n";
        let mut r = std::io::Cursor::new(line.as_bytes().to_vec());
        let mut buf = Vec::new();
        let first = next_line(&mut r, &mut buf).unwrap().unwrap().unwrap();
        assert_eq!(detect(&first).unwrap(), Format::PapersJsonl);
        let (p, _) =
            parse_paper(&first, DEFAULT_MAX_REFS_PER_PAPER).expect("the first record parses despite the BOM");
        assert_eq!(p.id, "x1");
    }

    /// Papers citing each other forwards and backwards, with unknown and repeated
    /// references and a rejected line in between.
    fn reference_heavy_file(dir: &Path) -> PathBuf {
        let mut text = String::new();
        for i in 0..60 {
            let refs: Vec<String> = (0..(i % 9))
                .map(|k| match k {
                    0 => "unknown/404".to_string(),
                    1 => format!("p{}", (i + 7) % 60), // forward
                    _ => format!("p{}", (i * 13 + k) % 60),
                })
                .collect();
            let refs = serde_json::to_string(&refs).unwrap();
            text.push_str(&format!(
                "{{\"id\":\"p{i}\",\"title\":\"Paper {i}\",\"authors\":[\"A. Author{}\"],\"submitted_utc\":\"1999-01-{:02}\",\"references\":{refs}}}\n",
                i % 5,
                1 + i % 28
            ));
            if i == 30 {
                text.push_str("{}\n");
            }
        }
        let path = dir.join("papers.jsonl");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn citation_counts(store: &crate::store::Store) -> Vec<(String, u64)> {
        (0..60)
            .map(|i| {
                let id = format!("p{i}");
                let n = store.citation_count(&id).unwrap();
                (id, n)
            })
            .collect()
    }

    #[test]
    fn spilled_references_give_the_same_import_as_in_memory_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let file = reference_heavy_file(tmp.path());
        let cfg = crate::store::StoreConfig::default();

        let mut memory_sink = StoreSink(crate::store::Store::open(&tmp.path().join("a"), &cfg).unwrap());
        let in_memory = ingest_file(&file, &mut memory_sink, None).unwrap();
        assert_eq!(in_memory.references_spilled, 0);

        let spill_dir = tmp.path().join("spill");
        let options =
            IngestOptions { max_pending_refs: 3, spill_dir: Some(spill_dir.clone()), ..Default::default() };
        let mut spill_sink = StoreSink(crate::store::Store::open(&tmp.path().join("b"), &cfg).unwrap());
        let mut spilled = ingest_file_with(&file, &mut spill_sink, None, &options).unwrap();
        assert!(spilled.references_spilled > 100, "spilled {}", spilled.references_spilled);
        spilled.references_spilled = 0;

        assert_eq!(serde_json::to_value(&in_memory).unwrap(), serde_json::to_value(&spilled).unwrap());
        assert!(in_memory.citations_new > 100 && in_memory.errors > 50, "{in_memory:?}");
        assert_eq!(citation_counts(&memory_sink.0), citation_counts(&spill_sink.0));
        assert_eq!(memory_sink.0.stats().unwrap().citations, spill_sink.0.stats().unwrap().citations);
        // The spill file is gone, and the directory is the owner's alone.
        assert_eq!(std::fs::read_dir(&spill_dir).unwrap().count(), 0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&spill_dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
    }

    #[test]
    fn a_paper_over_the_reference_cap_is_rejected_and_the_file_goes_on() {
        let tmp = tempfile::tempdir().unwrap();
        let refs: Vec<String> = (0..11).map(|k| format!("r{k}")).collect();
        let text = format!(
            "{{\"id\":\"big\",\"title\":\"t\",\"authors\":[\"A. B\"],\"submitted_utc\":\"1999-01-01\",\"references\":{}}}\n{{\"id\":\"ok\",\"title\":\"t\",\"authors\":[\"A. B\"],\"submitted_utc\":\"1999-01-02\",\"references\":[\"big\"]}}\n",
            serde_json::to_string(&refs).unwrap()
        );
        let file = tmp.path().join("p.jsonl");
        std::fs::write(&file, text).unwrap();
        let mut sink =
            StoreSink(crate::store::Store::open(&tmp.path().join("s"), &Default::default()).unwrap());
        let options = IngestOptions { max_refs_per_paper: 10, ..Default::default() };
        let report = ingest_file_with(&file, &mut sink, None, &options).unwrap();
        assert_eq!(report.papers_new, 1);
        // Line 1 refused for its references; line 2's reference to it is then unknown.
        assert_eq!(report.error_samples[0].line, 1);
        assert!(report.error_samples[0].reason.contains("11 references, more than the 10"), "{report:?}");
        assert!(sink.0.paper("ok").unwrap().is_some());
        assert!(sink.0.paper("big").unwrap().is_none());
    }

    #[test]
    fn stale_spill_files_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("ingest-1-0.refs"), "1\ta\tb\n").unwrap();
        std::fs::write(tmp.path().join("keep.txt"), "x").unwrap();
        assert_eq!(remove_stale_spills(tmp.path()).unwrap(), 1);
        assert_eq!(remove_stale_spills(&tmp.path().join("missing")).unwrap(), 0);
        assert!(tmp.path().join("keep.txt").exists());
    }

    #[test]
    fn auto_recognises_each_format_by_its_first_record() {
        let sniff = |head: &str| choose_format(SourceFormat::Auto, head).unwrap();
        assert_eq!(sniff(r#"{"id":"https://openalex.org/W1","doi":null}"#), Format::Openalex);
        assert_eq!(sniff(r#"{"DOI":"10.1/x","title":["t"]}"#), Format::Crossref);
        assert_eq!(
            sniff("{\n  \"status\": \"ok\",\n  \"message\": {\n    \"items\": ["),
            Format::CrossrefResponse
        );
        assert_eq!(sniff(r#"{"status":"ok","message":{"items":[]}}"#), Format::CrossrefResponse);
        assert_eq!(sniff(r#"{"id":"0704.0001","authors_parsed":[],"versions":[]}"#), Format::Arxiv);
        // Quoted words inside a citecast record's text do not count.
        let citecast = r#"{"id":"x","title":"t","abstract":"two \"versions\" and a \"DOI\""}"#;
        assert_eq!(sniff(citecast), Format::PapersJsonl);
        assert_eq!(sniff("citing\tcited\n1\t2"), Format::CitationsTsv);
        // A chosen format still takes a citations file as citations, and refuses other text.
        assert_eq!(choose_format(SourceFormat::Arxiv, "citing\tcited").unwrap(), Format::CitationsTsv);
        assert_eq!(choose_format(SourceFormat::Openalex, "1001 1002").unwrap(), Format::EdgeList);
        assert_eq!(
            choose_format(SourceFormat::Crossref, r#"{"message":{"items":[]}}"#).unwrap(),
            Format::CrossrefResponse
        );
        assert!(choose_format(SourceFormat::Openalex, "hello there world").is_err());
    }

    #[test]
    fn an_open_data_file_goes_to_its_collection_with_namespaced_authors() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("works.jsonl");
        let work = |n: u32, refs: &str| {
            format!(
                r#"{{"id":"https://openalex.org/W{n}","display_name":"Paper {n}","publication_date":"2020-01-0{n}","authorships":[{{"author":{{"display_name":"Jin Kim"}}}}],"referenced_works":[{refs}]}}"#
            )
        };
        std::fs::write(&file, format!("{}\n{}\n", work(1, ""), work(2, r#""https://openalex.org/W1""#)))
            .unwrap();
        let store = crate::store::Store::open(&tmp.path().join("s"), &Default::default()).unwrap();
        let mut sink = StoreSink(store.clone());
        let report = ingest_file(&file, &mut sink, None).unwrap();
        assert_eq!((report.papers_new, report.citations_new, report.errors), (2, 1, 0), "{report:?}");
        assert_eq!(report.collection.as_deref(), Some("openalex"));
        assert_eq!(store.collection_of("https://openalex.org/W2").unwrap().as_deref(), Some("openalex"));
        assert!(store.author("kim_j").unwrap().is_none());
        assert_eq!(store.author_paper_ids("kim_j@openalex").unwrap(), vec!["W1", "W2"]);
        // Named explicitly, the same file goes to that collection instead.
        let options = IngestOptions { collection: Some("physics-x".into()), ..Default::default() };
        let moved = ingest_file_with(&file, &mut sink, None, &options).unwrap();
        assert_eq!(moved.papers_updated, 2);
        assert_eq!(store.author_paper_ids("kim_j@physics-x").unwrap(), vec!["W1", "W2"]);
        let bad = IngestOptions { collection: Some("Physics".into()), ..Default::default() };
        assert!(matches!(
            ingest_file_with(&file, &mut sink, None, &bad),
            Err(IngestError::InvalidCollection(_))
        ));
    }

    #[test]
    fn a_clashing_alias_is_reported_by_line_and_a_reference_to_it_is_not_stored() {
        let tmp = tempfile::tempdir().unwrap();
        let rec = |id: &str, arxiv_id: &str, refs: &str| {
            format!(
                r#"{{"id":"{id}","arxiv_id":"{arxiv_id}","title":"t","authors":["A. B"],"submitted_utc":"1999-01-01","references":[{refs}]}}"#
            )
        };
        let text = [
            // Two DOIs whose suffixes once both became the alias "123".
            rec("10.1000/0123", "", ""),
            rec("10.2000/123", "", r#""123""#),
            // Two records naming the same source id for different papers.
            rec("s1", "A1", ""),
            rec("s1", "B1", r#""s1""#),
        ]
        .join("\n");
        let file = tmp.path().join("p.jsonl");
        std::fs::write(&file, text).unwrap();
        let store = crate::store::Store::open(&tmp.path().join("s"), &Default::default()).unwrap();
        let mut sink = StoreSink(store.clone());
        let report = ingest_file(&file, &mut sink, None).unwrap();
        assert_eq!(report.papers_new, 4);
        assert_eq!(report.aliases_ambiguous, 1);
        assert_eq!(
            report.alias_conflicts,
            vec![AliasConflict { line: 4, alias: "s1".into(), paper: "B1".into(), other: "A1".into() }]
        );
        // "123" is no alias of anything; "s1" is ambiguous: both references are refused.
        assert_eq!(report.citations_new, 0);
        let reasons: Vec<(u64, &str)> =
            report.error_samples.iter().map(|e| (e.line, e.reason.as_str())).collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].0 == 2 && reasons[0].1.contains("unknown paper id '123'"), "{reasons:?}");
        assert!(
            reasons[1].0 == 4 && reasons[1].1.contains("'s1' is ambiguous (an alias of A1, B1)"),
            "{reasons:?}"
        );
        assert_eq!(store.resolve("s1").unwrap(), None);
        assert_eq!(store.resolve("123").unwrap(), None);
        // Importing again stores nothing new; the clash is now reported on both papers'
        // lines, as each of them claims an alias that does not resolve to it.
        let again = ingest_file(&file, &mut sink, None).unwrap();
        assert_eq!((again.papers_unchanged, again.aliases_ambiguous, again.errors), (4, 2, 2));
    }

    #[test]
    fn aliases_cover_snap_ids() {
        assert_eq!(aliases_of("hep-th/0001001", "1001"), vec!["1001".to_string(), "0001001".to_string()]);
        // Only old-style arXiv ids: a DOI's suffix is no id of its own.
        assert!(aliases_of("10.1000/0123", "10.1000/0123").is_empty());
    }

    #[test]
    fn rejects_bad_records_with_reasons() {
        let cases = [
            ("{", "invalid paper record"),
            (r#"{"id":"", "title":"t", "authors":["A. B"], "submitted_utc":"1999-01-01"}"#, "id is empty"),
            (
                r#"{"id":"x", "title":" ", "authors":["A. B"], "submitted_utc":"1999-01-01"}"#,
                "title is empty",
            ),
            (r#"{"id":"x", "title":"t", "authors":[], "submitted_utc":"1999-01-01"}"#, "no usable author"),
            (r#"{"id":"x", "title":"t", "authors":["A. B"], "submitted_utc":"1999-02-30"}"#, "not a date"),
            (r#"{"id":"x", "title":"t", "authors":["A. B"]}"#, "submitted_utc is missing"),
            (r#"{"id":"a b", "title":"t", "authors":["A. B"], "submitted_utc":"1999-01-01"}"#, "whitespace"),
        ];
        for (line, want) in cases {
            let err = parse_paper(line, DEFAULT_MAX_REFS_PER_PAPER).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
        assert!(parse_citation(Format::CitationsTsv, 1, "1001").unwrap_err().contains("2 columns"));
        assert!(parse_citation(Format::CitationsTsv, 1, "1\t2\t1999-01-01\tnope")
            .unwrap_err()
            .contains("cited_date"));
        assert!(parse_citation(Format::EdgeList, 1, "1001 9304045").is_ok());
    }
}
