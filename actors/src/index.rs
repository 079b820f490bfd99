//! The tantivy topic index: BM25 search over title, abstract, authors and subject,
//! with date and author filters, snippets and per-year facet counts.
//!
//! The index is derived data: the store is the source of truth, and an index that is
//! missing, from an older schema, or out of step with the store is rebuilt from it.

use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;
use tantivy::collector::{Collector, SegmentCollector, TopDocs};
use tantivy::columnar::Column;
use tantivy::directory::MmapDirectory;
use tantivy::query::Weight;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{
    Facet, FacetOptions, Field, IndexRecordOption, Schema, Value, FAST, INDEXED, STORED, STRING, TEXT,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{
    doc, DocId, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentOrdinal, SegmentReader,
    TantivyDocument, Term, TERMINATED,
};

use crate::dates::{self, Day};
use crate::records::Paper;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("search index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("cannot open the index directory: {0}")]
    Directory(String),
    #[error("the index writer lock was poisoned by a panic in an earlier write")]
    Poisoned,
}

pub type Result<T, E = IndexError> = std::result::Result<T, E>;

/// Memory the index writer may buffer before it flushes a segment.
const WRITER_HEAP_BYTES: usize = 96 * 1024 * 1024;
/// Longest snippet returned with a hit.
const SNIPPET_CHARS: usize = 240;
/// A search without year facets counts its matches exactly up to this many, and beyond it
/// reports this many as a lower bound ([`SearchResults::total_is_lower_bound`]): the count
/// then stops early instead of visiting every matching document.
pub const TOTAL_BOUND: u64 = 10_000;

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    title: Field,
    abstract_text: Field,
    authors: Field,
    author_key: Field,
    subject: Field,
    day: Field,
    year: Field,
    collection: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        title: b.add_text_field("title", TEXT | STORED),
        abstract_text: b.add_text_field("abstract", TEXT | STORED),
        authors: b.add_text_field("authors", TEXT | STORED),
        author_key: b.add_text_field("author_key", STRING),
        subject: b.add_text_field("subject", TEXT),
        day: b.add_i64_field("day", INDEXED | FAST | STORED),
        year: b.add_facet_field("year", FacetOptions::default()),
        collection: b.add_text_field("collection", STRING | STORED),
    };
    (b.build(), fields)
}

/// A search as the API receives it, after validation.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub query: String,
    pub from: Option<Day>,
    pub to: Option<Day>,
    /// Author key (see [`crate::names`]).
    pub author_key: Option<String>,
    /// Only papers of this collection (see [`crate::store::DEFAULT_COLLECTION`]).
    pub collection: Option<String>,
    pub offset: usize,
    pub limit: usize,
}

/// What a search computes besides its page of hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Facets {
    /// Year facets over every match, and so an exact total.
    #[default]
    Years,
    /// No facets; the total is exact up to [`TOTAL_BOUND`] and a lower bound beyond it.
    None,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    pub id: String,
    pub title: String,
    pub authors: Vec<String>,
    pub submitted: String,
    pub score: f32,
    /// A fragment of the abstract with matched terms in `<b>...</b>` (HTML-escaped).
    pub snippet: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct YearCount {
    pub year: i32,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    /// Matching documents: exact, or at least this many when `total_is_lower_bound`.
    pub total: u64,
    /// Set when the count stopped at [`TOTAL_BOUND`] (searches without facets only).
    pub total_is_lower_bound: bool,
    pub hits: Vec<SearchHit>,
    pub years: Vec<YearCount>,
}

pub struct TopicIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    parser: QueryParser,
}

impl TopicIndex {
    /// Opens the index at `path`, creating it when absent. An index written with another
    /// schema is discarded (it is rebuilt from the store).
    pub fn open(path: &Path) -> Result<TopicIndex> {
        std::fs::create_dir_all(path).map_err(|e| IndexError::Directory(e.to_string()))?;
        let (schema, fields) = schema();
        let open = || -> Result<Index> {
            let dir = MmapDirectory::open(path).map_err(|e| IndexError::Directory(e.to_string()))?;
            Ok(Index::open_or_create(dir, schema.clone())?)
        };
        let index = match open() {
            Ok(index) => index,
            Err(IndexError::Tantivy(tantivy::TantivyError::SchemaError(msg))) => {
                tracing::warn!(%msg, "index schema changed; discarding the index to rebuild it");
                std::fs::remove_dir_all(path).map_err(|e| IndexError::Directory(e.to_string()))?;
                std::fs::create_dir_all(path).map_err(|e| IndexError::Directory(e.to_string()))?;
                open()?
            }
            Err(e) => return Err(e),
        };
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(4);
        let writer = index.writer_with_num_threads(threads, WRITER_HEAP_BYTES)?;
        // Manual reloads: a commit reloads the reader itself, so a request that follows
        // an ingest sees its documents.
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let mut parser = QueryParser::for_index(
            &index,
            vec![fields.title, fields.abstract_text, fields.authors, fields.subject],
        );
        parser.set_field_boost(fields.title, 2.0);
        Ok(TopicIndex { index, reader, writer: Mutex::new(writer), fields, parser })
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    fn document(&self, p: &Paper, collection: &str) -> TantivyDocument {
        let f = self.fields;
        let year = dates::year_of(p.submitted);
        let mut d = doc!(
            f.id => p.id.as_str(),
            f.collection => collection,
            f.title => crate::names::latex_to_unicode(&p.title),
            f.abstract_text => p.abstract_text.as_str(),
            f.day => p.submitted as i64,
            f.year => Facet::from(format!("/{year}").as_str()),
        );
        for a in &p.authors {
            d.add_text(f.authors, &a.display);
            d.add_text(f.author_key, &a.key);
        }
        if let Some(s) = &p.subject {
            d.add_text(f.subject, s);
        }
        d
    }

    /// Adds or replaces papers of one collection. Not visible to searches until
    /// [`TopicIndex::commit`].
    pub fn upsert(&self, papers: &[Paper], collection: &str) -> Result<()> {
        let writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
        for p in papers {
            writer.delete_term(Term::from_field_text(self.fields.id, &p.id));
            writer.add_document(self.document(p, collection))?;
        }
        Ok(())
    }

    /// Commits pending writes and reloads the reader.
    /// Runs `f` while holding the writer, so no commit starts meanwhile (backups).
    pub fn with_writer_locked<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let _writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
        Ok(f())
    }

    pub fn commit(&self) -> Result<()> {
        let mut writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
        writer.commit()?;
        drop(writer);
        self.reader.reload()?;
        Ok(())
    }

    /// Drops every document (before a rebuild).
    pub fn clear(&self) -> Result<()> {
        let mut writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
        writer.delete_all_documents()?;
        writer.commit()?;
        drop(writer);
        self.reader.reload()?;
        Ok(())
    }

    /// Searches with year facets and an exact total.
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResults> {
        self.search_with(req, Facets::Years)
    }

    /// Searches, computing the facets `facets` asks for. The page of hits is ranked on its
    /// own (tantivy skips blocks that cannot reach the top); facets and the total come
    /// from a second pass over the matches that does not score them.
    pub fn search_with(&self, req: &SearchRequest, facets: Facets) -> Result<SearchResults> {
        let f = self.fields;
        let searcher = self.reader.searcher();
        let (text_query, _errors) = self.parser.parse_query_lenient(&req.query);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text_query.box_clone())];
        if req.from.is_some() || req.to.is_some() {
            let bound = |d: Option<Day>| match d {
                Some(d) => Bound::Included(Term::from_field_i64(f.day, d as i64)),
                None => Bound::Unbounded,
            };
            clauses.push((Occur::Must, Box::new(RangeQuery::new(bound(req.from), bound(req.to)))));
        }
        if let Some(key) = &req.author_key {
            let term = Term::from_field_text(f.author_key, key);
            clauses.push((Occur::Must, Box::new(TermQuery::new(term, IndexRecordOption::Basic))));
        }
        if let Some(name) = &req.collection {
            let term = Term::from_field_text(f.collection, name);
            clauses.push((Occur::Must, Box::new(TermQuery::new(term, IndexRecordOption::Basic))));
        }
        let query = BooleanQuery::new(clauses);

        let top = TopDocs::with_limit(req.limit.max(1)).and_offset(req.offset).order_by_score();
        let top = searcher.search(&query, &top)?;
        let (total, total_is_lower_bound, years) = match facets {
            Facets::Years => {
                let h = searcher.search(&query, &YearHistogram { day: f.day })?;
                (h.docs, false, h.years)
            }
            Facets::None => {
                let (n, more) = searcher.search(&query, &BoundedCount { bound: TOTAL_BOUND })?;
                (n, more, Vec::new())
            }
        };

        let mut snippets = SnippetGenerator::create(&searcher, &*text_query, f.abstract_text)?;
        snippets.set_max_num_chars(SNIPPET_CHARS);
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top.into_iter().take(req.limit) {
            let d: TantivyDocument = searcher.doc(address)?;
            let text = |field| d.get_first(field).and_then(|v| v.as_str()).unwrap_or_default().to_string();
            let day = d.get_first(f.day).and_then(|v| v.as_i64()).unwrap_or_default() as Day;
            let mut snippet = snippets.snippet_from_doc(&d);
            snippet.set_snippet_prefix_postfix("<b>", "</b>");
            hits.push(SearchHit {
                id: text(f.id),
                title: text(f.title),
                authors: d.get_all(f.authors).filter_map(|v| v.as_str().map(str::to_string)).collect(),
                submitted: dates::format(day),
                score,
                snippet: snippet.to_html(),
            });
        }
        Ok(SearchResults { total, total_is_lower_bound, hits, years })
    }

    /// The tantivy index, for diagnostics (segment counts, sizes).
    pub fn inner(&self) -> &Index {
        &self.index
    }
}

/// Matches per submission year, read from the `day` fast field: one column read per
/// match, into a per-segment array of years. (tantivy's `FacetCollector` on the `year`
/// facet did the same with term ordinals and a facet dictionary, about a fifth of a search.)
struct YearHistogram {
    day: Field,
}

/// What [`YearHistogram`] gathers: matching documents, and per year those with a day.
struct Years {
    docs: u64,
    years: Vec<YearCount>,
}

struct SegmentYears {
    day: Column<i64>,
    /// The year of `day_lo..day_hi` (the last year seen: documents of a segment come in
    /// ingest order, mostly by date, so the year rarely changes from one match to the next).
    year: i32,
    day_lo: i64,
    day_hi: i64,
    /// Counts by year, from `first_year`.
    first_year: i32,
    counts: Vec<u64>,
    docs: u64,
}

impl SegmentYears {
    fn add(&mut self, doc: DocId) {
        self.docs += 1;
        let Some(day) = self.day.first(doc) else { return };
        if day < self.day_lo || day >= self.day_hi {
            let year = dates::year_of(day as Day);
            self.year = year;
            self.day_lo = dates::from_ymd(year, 1, 1) as i64;
            self.day_hi = dates::from_ymd(year + 1, 1, 1) as i64;
        }
        let i = self.year - self.first_year;
        if i < 0 {
            // Only when the column's minimum is not a day of this segment (never in practice).
            let shift = (-i) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, shift));
            self.first_year = self.year;
        }
        let i = (self.year - self.first_year) as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
    }
}

impl SegmentCollector for SegmentYears {
    type Fruit = Years;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.add(doc);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        for &doc in docs {
            self.add(doc);
        }
    }

    fn harvest(self) -> Years {
        let first = self.first_year;
        let years = (first..)
            .zip(self.counts)
            .filter(|(_, count)| *count > 0)
            .map(|(year, count)| YearCount { year, count })
            .collect();
        Years { docs: self.docs, years }
    }
}

impl Collector for YearHistogram {
    type Fruit = Years;
    type Child = SegmentYears;

    fn for_segment(&self, _ord: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<SegmentYears> {
        let name = segment.schema().get_field_name(self.day).to_string();
        let day = segment.fast_fields().i64(&name)?;
        let first_year = if day.num_docs() > 0 { dates::year_of(day.min_value() as Day) } else { 0 };
        Ok(SegmentYears { day, year: 0, day_lo: 0, day_hi: 0, first_year, counts: Vec::new(), docs: 0 })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Years>) -> tantivy::Result<Years> {
        let mut by_year = std::collections::BTreeMap::new();
        let mut docs = 0;
        for fruit in fruits {
            docs += fruit.docs;
            for y in fruit.years {
                *by_year.entry(y.year).or_insert(0) += y.count;
            }
        }
        Ok(Years {
            docs,
            years: by_year.into_iter().map(|(year, count)| YearCount { year, count }).collect(),
        })
    }
}

/// Counts matches up to `bound`, and says whether there are more: it walks each segment's
/// matches without scoring and stops at the bound, where `Count` visits them all.
struct BoundedCount {
    bound: u64,
}

/// Unused: [`BoundedCount`] walks the matches itself in `collect_segment`.
struct SegmentBoundedCount;

impl SegmentCollector for SegmentBoundedCount {
    type Fruit = (u64, bool);

    fn collect(&mut self, _doc: DocId, _score: Score) {}

    fn harvest(self) -> (u64, bool) {
        (0, false)
    }
}

impl Collector for BoundedCount {
    type Fruit = (u64, bool);
    type Child = SegmentBoundedCount;

    fn for_segment(
        &self,
        _ord: SegmentOrdinal,
        _segment: &SegmentReader,
    ) -> tantivy::Result<SegmentBoundedCount> {
        Ok(SegmentBoundedCount)
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        _ord: u32,
        reader: &SegmentReader,
    ) -> tantivy::Result<(u64, bool)> {
        let mut docs = weight.scorer(reader, 1.0)?;
        let alive = reader.alive_bitset();
        let mut n = 0;
        let mut doc = docs.doc();
        while doc != TERMINATED {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                if n == self.bound {
                    return Ok((n, true));
                }
                n += 1;
            }
            doc = docs.advance();
        }
        Ok((n, false))
    }

    fn merge_fruits(&self, fruits: Vec<(u64, bool)>) -> tantivy::Result<(u64, bool)> {
        let (n, more) = fruits.into_iter().fold((0, false), |(n, more), (m, x)| (n + m, more || x));
        Ok((n.min(self.bound), more || n > self.bound))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::AuthorRef;

    fn paper(id: &str, title: &str) -> Paper {
        Paper {
            id: id.into(),
            aliases: vec![],
            title: title.into(),
            authors: vec![AuthorRef { raw: "J. Kim".into(), display: "J. Kim".into(), key: "kim_j".into() }],
            submitted: 10_000,
            submitted_secs: None,
            revised: vec![],
            abstract_text: "black holes".into(),
            subject: None,
            journal_ref: None,
            comments: None,
            report_no: None,
        }
    }

    #[test]
    fn search_can_be_limited_to_one_collection() {
        let dir = tempfile::tempdir().unwrap();
        let index = TopicIndex::open(dir.path()).unwrap();
        index.upsert(&[paper("a", "Black hole entropy")], "default").unwrap();
        index.upsert(&[paper("b", "Black hole mergers"), paper("c", "Black hole spin")], "astro").unwrap();
        index.commit().unwrap();
        let ids = |collection: Option<&str>| {
            let req = SearchRequest {
                query: "black hole".into(),
                collection: collection.map(str::to_string),
                limit: 10,
                ..Default::default()
            };
            let mut ids: Vec<String> = index.search(&req).unwrap().hits.into_iter().map(|h| h.id).collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(None), vec!["a", "b", "c"]);
        assert_eq!(ids(Some("astro")), vec!["b", "c"]);
        assert_eq!(ids(Some("default")), vec!["a"]);
        assert!(ids(Some("other")).is_empty());
    }

    fn paper_on(id: &str, day: &str) -> Paper {
        Paper { submitted: dates::parse(day).unwrap(), ..paper(id, "Black hole entropy") }
    }

    #[test]
    fn year_facets_count_every_match_by_year_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let index = TopicIndex::open(dir.path()).unwrap();
        // Two commits, two segments; years out of order within a segment, and the last
        // and first day of a year.
        index
            .upsert(
                &[paper_on("a", "1999-12-31"), paper_on("b", "1998-03-01"), paper_on("c", "2000-01-01")],
                "default",
            )
            .unwrap();
        index.commit().unwrap();
        index.upsert(&[paper_on("d", "1999-01-01"), paper_on("e", "2003-06-30")], "default").unwrap();
        // A paper that does not match the query is not counted.
        index.upsert(&[Paper { abstract_text: "quarks".into(), ..paper("f", "Gluons") }], "default").unwrap();
        index.commit().unwrap();
        // A replaced paper (deleted, then added again with another day) counts once.
        index.upsert(&[paper_on("b", "2003-01-01")], "default").unwrap();
        index.commit().unwrap();
        let req = SearchRequest { query: "black hole".into(), limit: 2, ..Default::default() };
        let r = index.search(&req).unwrap();
        assert_eq!(r.total, 5);
        assert!(!r.total_is_lower_bound);
        assert_eq!(r.hits.len(), 2);
        let years: Vec<(i32, u64)> = r.years.iter().map(|y| (y.year, y.count)).collect();
        assert_eq!(years, vec![(1999, 2), (2000, 1), (2003, 2)]);
        // Without facets: the same total (below the bound), no years.
        let r = index.search_with(&req, Facets::None).unwrap();
        assert_eq!((r.total, r.total_is_lower_bound, r.years.len()), (5, false, 0));
    }

    #[test]
    fn bounded_count_is_exact_up_to_the_bound_then_a_lower_bound() {
        let dir = tempfile::tempdir().unwrap();
        let index = TopicIndex::open(dir.path()).unwrap();
        let papers: Vec<Paper> = (0..25).map(|i| paper(&format!("p{i}"), "Black hole entropy")).collect();
        index.upsert(&papers[..10], "default").unwrap();
        index.commit().unwrap();
        index.upsert(&papers[10..], "default").unwrap();
        index.upsert(&[paper("p3", "Black hole entropy")], "default").unwrap();
        index.commit().unwrap();
        let searcher = index.reader.searcher();
        let (query, _) = index.parser.parse_query_lenient("black hole");
        let count = |bound| searcher.search(&*query, &BoundedCount { bound }).unwrap();
        assert_eq!(count(100), (25, false));
        assert_eq!(count(25), (25, false), "exactly the bound is still exact");
        assert_eq!(count(24), (24, true));
        assert_eq!(count(12), (12, true), "the bound holds across segments");
        assert_eq!(count(3), (3, true));
        assert_eq!(count(0), (0, true));
    }
}
