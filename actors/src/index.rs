//! The tantivy topic index: BM25 search over title, abstract, authors and subject,
//! with date and author filters, snippets and per-year facet counts.
//!
//! The index is derived data: the store is the source of truth, and an index that is
//! missing, from an older schema, or out of step with the store is rebuilt from it.

use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;
use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{
    Facet, FacetOptions, Field, IndexRecordOption, Schema, Value, FAST, INDEXED, STORED, STRING, TEXT,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

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
    pub total: u64,
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

    pub fn search(&self, req: &SearchRequest) -> Result<SearchResults> {
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

        let mut years = FacetCollector::for_field("year");
        years.add_facet("/");
        let top = TopDocs::with_limit(req.limit.max(1)).and_offset(req.offset).order_by_score();
        let (top, total, facets) = searcher.search(&query, &(top, Count, years))?;

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
        let mut years: Vec<YearCount> = facets
            .get("/")
            .filter_map(|(facet, count)| {
                let year = facet.to_path().last()?.parse().ok()?;
                Some(YearCount { year, count })
            })
            .collect();
        years.sort_by_key(|y| y.year);
        Ok(SearchResults { total: total as u64, hits, years })
    }

    /// The tantivy index, for diagnostics (segment counts, sizes).
    pub fn inner(&self) -> &Index {
        &self.index
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
}
