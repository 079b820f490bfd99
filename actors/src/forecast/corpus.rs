//! An in-memory, read-only snapshot of the corpus for computing features: dense paper
//! numbers, dates, authors, and dated citation lists sorted by date, so a feature
//! "as of a date" is a binary search away. Built from the store (about 1 s for the
//! bundled data in release) by the model actor, which owns it.

use std::collections::HashMap;

use crate::dates::Day;
use crate::records::{Citation, Paper};
use crate::store::{Store, StoreError};

pub type PaperNo = u32;
pub type AuthorNo = u32;

#[derive(Debug, Default)]
pub struct Corpus {
    pub ids: Vec<String>,
    pub by_id: HashMap<String, PaperNo>,
    /// Other ids papers are known by (`9711200` for `hep-th/9711200`).
    pub aliases: HashMap<String, PaperNo>,
    pub day: Vec<Day>,
    /// Seconds after midnight UTC of submission, when known.
    pub secs: Vec<Option<u32>>,
    pub authors: Vec<Vec<AuthorNo>>,
    pub author_keys: Vec<String>,
    pub author_by_key: HashMap<String, AuthorNo>,
    /// Each author's papers, oldest first.
    pub author_papers: Vec<Vec<PaperNo>>,
    /// Citations received: (citing day, citing paper), oldest first.
    pub cited_by: Vec<Vec<(Day, PaperNo)>>,
    /// Papers cited.
    pub refs: Vec<Vec<PaperNo>>,
    pub title: Vec<String>,
    pub abstract_text: Vec<String>,
    /// See [`Corpus::digest`]: computed on first use, since only the cohort tables kept
    /// on disk need it.
    digest: std::sync::OnceLock<String>,
}

impl Corpus {
    /// Builds from papers and citations; citations between unknown papers and
    /// self-citations are skipped.
    pub fn build(
        papers: impl IntoIterator<Item = Paper>,
        citations: impl IntoIterator<Item = Citation>,
    ) -> Corpus {
        let mut c = Corpus::default();
        let mut papers: Vec<Paper> = papers.into_iter().collect();
        papers.sort_by(|a, b| a.submitted.cmp(&b.submitted).then_with(|| a.id.cmp(&b.id)));
        for p in papers {
            c.push_paper(p);
        }
        c.start_links();
        for cit in citations {
            c.link(&cit.citing, &cit.cited);
        }
        c.finish();
        c
    }

    /// Adds the next paper; papers come in (submission day, id) order.
    fn push_paper(&mut self, p: Paper) {
        let c = self;
        let no = c.ids.len() as PaperNo;
        let mut authors = Vec::with_capacity(p.authors.len());
        for a in &p.authors {
            let next = c.author_keys.len() as AuthorNo;
            let an = match c.author_by_key.get(&a.key) {
                Some(&an) => an,
                None => {
                    c.author_by_key.insert(a.key.clone(), next);
                    c.author_keys.push(a.key.clone());
                    c.author_papers.push(Vec::new());
                    next
                }
            };
            if !authors.contains(&an) {
                authors.push(an);
                c.author_papers[an as usize].push(no);
            }
        }
        c.by_id.insert(p.id.clone(), no);
        for a in p.aliases {
            c.aliases.insert(a, no);
        }
        c.ids.push(p.id);
        c.day.push(p.submitted);
        c.secs.push(p.submitted_secs);
        c.authors.push(authors);
        c.title.push(p.title);
        c.abstract_text.push(p.abstract_text);
    }

    /// Once every paper is in: room for the citation lists.
    fn start_links(&mut self) {
        let n = self.ids.len();
        self.cited_by = vec![Vec::new(); n];
        self.refs = vec![Vec::new(); n];
    }

    /// Records that `citing` cites `cited` (ids or aliases; unknown papers and
    /// self-citations are skipped).
    fn link(&mut self, citing: &str, cited: &str) {
        let a = self.by_id.get(citing).copied();
        self.link_from(a, cited);
    }

    fn link_from(&mut self, citing: Option<PaperNo>, cited: &str) {
        let (Some(a), Some(&b)) = (citing, self.by_id.get(cited)) else { return };
        if a == b {
            return;
        }
        self.cited_by[b as usize].push((self.day[a as usize], a));
        self.refs[a as usize].push(b);
    }

    /// [`Corpus::link`] for citations grouped by citing paper (the store's order): the
    /// citing id is looked up once per paper, not once per citation (id lookups were
    /// the top of a 1M-paper build's profile).
    fn linker(&mut self) -> impl FnMut(&str, &str) + '_ {
        let mut last: Option<(String, Option<PaperNo>)> = None;
        move |citing, cited| {
            let a = match &last {
                Some((id, a)) if id == citing => *a,
                _ => {
                    let a = self.by_id.get(citing).copied();
                    last = Some((citing.to_string(), a));
                    a
                }
            };
            self.link_from(a, cited);
        }
    }

    /// Sorts the lists and gives back the room growing them left (up to half of it).
    fn finish(&mut self) {
        for list in &mut self.cited_by {
            list.sort_unstable();
            list.shrink_to_fit();
        }
        for list in &mut self.refs {
            list.sort_unstable();
            list.shrink_to_fit();
        }
        for list in &mut self.author_papers {
            list.shrink_to_fit();
        }
        self.ids.shrink_to_fit();
        self.author_keys.shrink_to_fit();
        self.title.shrink_to_fit();
        self.abstract_text.shrink_to_fit();
    }

    /// SHA-256 (hex) of everything features read: ids, dates, authors, texts and
    /// citations, in corpus order. Equal digests, equal features: what derived data kept
    /// on disk (the cohort score tables) is checked against. Each field is
    /// length-prefixed, so no two corpora share a byte stream. About a second per
    /// million papers, paid once, on first use.
    pub fn digest(&self) -> &str {
        self.digest.get_or_init(|| self.compute_digest())
    }

    fn compute_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let text = |buf: &mut Vec<u8>, s: &str| {
            buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
            buf.extend_from_slice(s.as_bytes());
        };
        h.update((self.len() as u64).to_le_bytes());
        for p in 0..self.len() {
            buf.clear();
            text(&mut buf, &self.ids[p]);
            buf.extend_from_slice(&self.day[p].to_le_bytes());
            buf.extend_from_slice(&self.secs[p].map_or(u64::MAX, u64::from).to_le_bytes());
            buf.extend_from_slice(&(self.authors[p].len() as u32).to_le_bytes());
            for a in &self.authors[p] {
                buf.extend_from_slice(&a.to_le_bytes());
            }
            text(&mut buf, &self.title[p]);
            text(&mut buf, &self.abstract_text[p]);
            buf.extend_from_slice(&(self.cited_by[p].len() as u32).to_le_bytes());
            for (d, c) in &self.cited_by[p] {
                buf.extend_from_slice(&d.to_le_bytes());
                buf.extend_from_slice(&c.to_le_bytes());
            }
            h.update(&buf);
        }
        super::registry::hex(&h.finalize())
    }

    /// The whole store's corpus. Streams: one pass over the papers (each kept only for
    /// the fields features use) and one over the citation keys, with no record read per
    /// citation and no list of citations held.
    pub fn from_store(store: &Store) -> Result<Corpus, StoreError> {
        let mut phases = Phases::start();
        let mut c = Corpus::with_papers_of(store)?;
        phases.mark("papers read and numbered");
        c.start_links();
        link_all(store, &mut c)?;
        phases.mark("citations linked");
        c.finish();
        phases.mark("lists sorted");
        phases.log(c.len());
        Ok(c)
    }

    /// Every stored paper, numbered in (submission day, id) order, with no citations yet.
    fn with_papers_of(store: &Store) -> Result<Corpus, StoreError> {
        let mut papers = Vec::with_capacity(store.paper_count() as usize);
        store.for_each_paper(|p| papers.push(slim(p)))?;
        papers.sort_by(|a, b| a.submitted.cmp(&b.submitted).then_with(|| a.id.cmp(&b.id)));
        let mut c = Corpus::default();
        for p in papers {
            c.push_paper(p);
        }
        Ok(c)
    }

    /// The corpus of one collection: its papers and the citations among them (citations
    /// to or from other collections are left out). An unknown collection gives an empty
    /// corpus. Cost: one read per paper of the collection, then one pass over every
    /// citation when the collection holds most of the store, else one scan of each of its
    /// papers' references.
    pub fn from_store_collection(store: &Store, collection: &str) -> Result<Corpus, StoreError> {
        let mut phases = Phases::start();
        let ids = store.collection_paper_ids(collection)?;
        let mut c = Corpus::default();
        // The index is in (day, id) order, the corpus's order.
        for id in &ids {
            // An index entry whose paper record is missing (an interrupted write) is skipped.
            let Some(paper) = store.paper(id)? else { continue };
            c.push_paper(slim(paper));
        }
        drop(ids);
        phases.mark("papers read");
        c.start_links();
        // Aliases are not ids here: `link` looks up canonical ids only, as stored edges hold.
        if 2 * c.len() as u64 >= store.paper_count() {
            link_all(store, &mut c)?;
        } else {
            for p in 0..c.len() {
                let citing = c.ids[p].clone();
                let mut cited_ids = Vec::new();
                store.for_each_reference(&citing, |cited| cited_ids.push(cited.to_string()))?;
                for cited in cited_ids {
                    c.link(&citing, &cited);
                }
            }
        }
        phases.mark("citations linked");
        c.finish();
        phases.mark("lists sorted");
        phases.log(c.len());
        Ok(c)
    }

    /// Reads corpus files (as `citecast ingest` takes them) through a temporary store,
    /// so training reproduces from the bundled data alone.
    pub fn from_files(paths: &[std::path::PathBuf]) -> Result<Corpus, crate::ingest::IngestError> {
        let dir = scratch_dir()?;
        // A bulk import with no server, as `citecast ingest` does it: with the default
        // cache (64 MiB for an empty dir) a 1M-paper corpus took 45 min to load, against
        // 15 min for `citecast ingest`.
        let config = crate::store::StoreConfig { cache_bytes: crate::store::BULK_CACHE_BYTES };
        let store = Store::open(&dir, &config)?;
        let mut sink = crate::ingest::StoreSink(store.clone());
        for p in paths {
            crate::ingest::ingest_file(p, &mut sink, None)?;
        }
        let corpus = Corpus::from_store(&store)?;
        drop(sink);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(corpus)
    }

    /// The corpus as it stood at the end of `as_of`: papers submitted by then and the
    /// citations they made. Used to prove features do not look past their date.
    pub fn truncated(&self, as_of: Day) -> Corpus {
        let papers =
            (0..self.len()).filter(|&p| self.day[p] <= as_of).map(|p| self.paper_record(p as PaperNo));
        let citations = (0..self.len()).filter(|&p| self.day[p] <= as_of).flat_map(|p| {
            self.refs[p].iter().map(move |&r| Citation {
                citing: self.ids[p].clone(),
                cited: self.ids[r as usize].clone(),
                citing_date: self.day[p],
                cited_date: self.day[r as usize],
            })
        });
        Corpus::build(papers.collect::<Vec<_>>(), citations.collect::<Vec<_>>())
    }

    fn paper_record(&self, p: PaperNo) -> Paper {
        let p = p as usize;
        Paper {
            id: self.ids[p].clone(),
            aliases: Vec::new(),
            title: self.title[p].clone(),
            authors: self.authors[p]
                .iter()
                .map(|&a| crate::records::AuthorRef {
                    raw: self.author_keys[a as usize].clone(),
                    display: self.author_keys[a as usize].clone(),
                    key: self.author_keys[a as usize].clone(),
                })
                .collect(),
            submitted: self.day[p],
            submitted_secs: self.secs[p],
            revised: Vec::new(),
            abstract_text: self.abstract_text[p].clone(),
            subject: None,
            journal_ref: None,
            comments: None,
            report_no: None,
        }
    }

    /// A paper's number by canonical id or alias.
    pub fn find(&self, id: &str) -> Option<PaperNo> {
        self.by_id.get(id).or_else(|| self.aliases.get(id)).copied()
    }

    /// The latest submission day in the corpus (the data's "now").
    pub fn last_day(&self) -> Option<Day> {
        self.day.last().copied()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Citations `p` received with citing day in `[from, to]`.
    pub fn citations_between(&self, p: PaperNo, from: Day, to: Day) -> usize {
        let list = &self.cited_by[p as usize];
        let lo = list.partition_point(|(d, _)| *d < from);
        let hi = list.partition_point(|(d, _)| *d <= to);
        hi.saturating_sub(lo)
    }

    /// Citations `p` received by the end of `as_of`.
    pub fn citations_by(&self, p: PaperNo, as_of: Day) -> usize {
        self.cited_by[p as usize].partition_point(|(d, _)| *d <= as_of)
    }
}

/// Links every stored citation into `c`: one thread walks the store's citation keys and
/// hands them over in batches while this one looks the ids up, so the two halves of the
/// pass (sled's iteration, the id lookups: about even in a 1M-paper profile) run side by
/// side.
fn link_all(store: &Store, c: &mut Corpus) -> Result<(), StoreError> {
    link_all_batched(store, c, 1 << 16)
}

fn link_all_batched(store: &Store, c: &mut Corpus, batch_pairs: usize) -> Result<(), StoreError> {
    /// Ids back to back, and where each pair's two ids end.
    #[derive(Default)]
    struct Batch {
        text: String,
        ends: Vec<(u32, u32)>,
    }
    let (send, receive) = std::sync::mpsc::sync_channel::<Batch>(4);
    std::thread::scope(|scope| {
        let walker = scope.spawn(move || {
            let mut batch = Batch::default();
            store.for_each_citation(|citing, cited| {
                batch.text.push_str(citing);
                let mid = batch.text.len() as u32;
                batch.text.push_str(cited);
                batch.ends.push((mid, batch.text.len() as u32));
                if batch.ends.len() == batch_pairs {
                    // A closed channel (the linker is gone) only ends the walk early.
                    let _ = send.send(std::mem::take(&mut batch));
                }
            })?;
            let _ = send.send(batch);
            Ok::<(), StoreError>(())
        });
        let mut link = c.linker();
        for batch in receive {
            let mut start = 0usize;
            for (mid, end) in batch.ends {
                let (mid, end) = (mid as usize, end as usize);
                link(&batch.text[start..mid], &batch.text[mid..end]);
                start = end;
            }
        }
        walker.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// How long each pass of a corpus build took, logged at the end (at a million papers the
/// build is most of a restart's warm-up).
struct Phases {
    last: std::time::Instant,
    took: Vec<(&'static str, f64)>,
}

impl Phases {
    fn start() -> Phases {
        Phases { last: std::time::Instant::now(), took: Vec::new() }
    }

    fn mark(&mut self, phase: &'static str) {
        self.took.push((phase, self.last.elapsed().as_secs_f64()));
        self.last = std::time::Instant::now();
    }

    fn log(&self, papers: usize) {
        let phases: Vec<String> = self.took.iter().map(|(p, s)| format!("{p} {s:.2} s")).collect();
        tracing::info!(papers, phases = %phases.join(", "), "forecast corpus built");
    }
}

/// A paper with only what the corpus keeps (the rest dropped before the papers are sorted).
fn slim(p: Paper) -> Paper {
    Paper { revised: Vec::new(), subject: None, journal_ref: None, comments: None, report_no: None, ..p }
}

/// A fresh scratch directory: unique per process and call, so concurrent loads don't
/// share (and delete) each other's store.
fn scratch_dir() -> Result<std::path::PathBuf, crate::ingest::IngestError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("citecast-corpus-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|source| crate::ingest::IngestError::Io { path: dir.display().to_string(), source })?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CitationInput, StoreConfig, WriteBatch};

    #[test]
    fn the_store_build_equals_the_in_memory_build_whatever_the_batches() {
        let day = crate::dates::from_ymd;
        let original = crate::forecast::task::synthetic::day_dated(day(1995, 1, 1), day(1999, 12, 31), 60, 3);
        let citations: Vec<CitationInput> = (0..original.len())
            .flat_map(|p| original.refs[p].iter().map(move |&r| (p, r as usize)))
            .map(|(p, r)| CitationInput {
                line: 0,
                citing: original.ids[p].clone(),
                cited: original.ids[r].clone(),
            })
            .collect();
        assert!(citations.len() > 100, "{}", citations.len());
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
        let papers = (0..original.len()).map(|p| original.paper_record(p as PaperNo)).collect();
        store.apply(WriteBatch { papers, citations, ..Default::default() }).unwrap();

        let stored = Corpus::from_store(&store).unwrap();
        let mut small = Corpus::with_papers_of(&store).unwrap();
        small.start_links();
        link_all_batched(&store, &mut small, 7).unwrap();
        small.finish();
        for c in [&stored, &small] {
            assert_eq!(c.ids, original.ids);
            assert_eq!(c.day, original.day);
            assert_eq!(c.cited_by, original.cited_by);
            assert_eq!(c.refs, original.refs);
            assert_eq!(c.digest(), original.digest());
        }
    }
}
