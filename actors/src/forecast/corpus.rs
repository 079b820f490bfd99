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
    /// SHA-256 (hex) of everything features read: ids, dates, authors, texts and
    /// citations, in corpus order. Equal digests, equal features: what derived data kept
    /// on disk (the cohort score tables) is checked against. Empty until built.
    pub digest: String,
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
        self.digest = self.compute_digest();
    }

    /// See [`Corpus::digest`]. Each field is length-prefixed, so no two corpora share a
    /// byte stream. About a second per million papers.
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
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The whole store's corpus. Streams: one pass over the papers (each kept only for
    /// the fields features use) and one over the citation keys, with no record read per
    /// citation and no list of citations held.
    pub fn from_store(store: &Store) -> Result<Corpus, StoreError> {
        let mut papers = Vec::with_capacity(store.paper_count() as usize);
        store.for_each_paper(|p| papers.push(slim(p)))?;
        papers.sort_by(|a, b| a.submitted.cmp(&b.submitted).then_with(|| a.id.cmp(&b.id)));
        let mut c = Corpus::default();
        for p in papers {
            c.push_paper(p);
        }
        c.start_links();
        store.for_each_citation(c.linker())?;
        c.finish();
        Ok(c)
    }

    /// The corpus of one collection: its papers and the citations among them (citations
    /// to or from other collections are left out). An unknown collection gives an empty
    /// corpus. Cost: one read per paper of the collection, then one pass over every
    /// citation when the collection holds most of the store, else one scan of each of its
    /// papers' references.
    pub fn from_store_collection(store: &Store, collection: &str) -> Result<Corpus, StoreError> {
        let ids = store.collection_paper_ids(collection)?;
        let mut c = Corpus::default();
        // The index is in (day, id) order, the corpus's order.
        for id in &ids {
            // An index entry whose paper record is missing (an interrupted write) is skipped.
            let Some(paper) = store.paper(id)? else { continue };
            c.push_paper(slim(paper));
        }
        drop(ids);
        c.start_links();
        // Aliases are not ids here: `link` looks up canonical ids only, as stored edges hold.
        if 2 * c.len() as u64 >= store.paper_count() {
            store.for_each_citation(c.linker())?;
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
        c.finish();
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
