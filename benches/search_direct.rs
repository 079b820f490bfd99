//! Search straight on the index, in one process and on one thread: the anchor for "search
//! near tantivy's own speed" (issue 15), next to the HTTP figures of `benches/load.sh` and
//! `benches/scale.sh`.
//!
//! ```sh
//! cargo bench --bench search_direct                              # the bundled data, ingested into a temp dir
//! CITECAST_BENCH_DATA=DATA_DIR cargo bench --bench search_direct # an existing data dir (no server on it)
//! ```
//!
//! Two query sets:
//!
//! - `fixed20`: the 20 queries of `benches/search.lua` (14 plain, 3 with a date range, 3 with
//!   an author filter), limit 10, as `/v1/search` receives them;
//! - `random2`: 1,000 two-word queries, each two distinct words (ASCII letters, at least 4)
//!   of the title of a random stored paper (seeded), limit 10.
//!
//! and five variants per set, each call timed on its own (after a warm-up round):
//!
//! - `full`: `TopicIndex::search`, what the server calls by default: BM25 top 10 (pruned),
//!   then a pass without scores for the exact total and the year histogram of the `day`
//!   column, then the 10 stored documents and a snippet each;
//! - `full_no_facets`: `TopicIndex::search_with(.., Facets::None)` (`facets=none`): top 10,
//!   a total counted up to `TOTAL_BOUND`, documents and snippets;
//! - `top_count_facets`: top 10 + `Count` + tantivy's `FacetCollector` over the year facet
//!   in one pass, without documents and snippets (what `full` did before issue 15);
//! - `top_count`: `TopDocs` + `Count`;
//! - `top_only`: `TopDocs` alone, the floor.
//!
//! The query is parsed as `TopicIndex` parses it (title, abstract, authors, subject; title
//! boosted 2×; lenient), with the same date and author clauses. Each line prints n, mean,
//! p50, p99 and the throughput of one thread (1 / mean), plus a `SEARCH_DIRECT` line that
//! `benches/scale.sh` parses. Under `cargo test --benches` it does nothing.

mod common;

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use citecast_actors::dates;
use citecast_actors::index::{Facets, SearchRequest, TopicIndex};
use citecast_actors::ingest;
use citecast_actors::names;
use citecast_actors::store::{Store, StoreConfig};
use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, IndexReader, ReloadPolicy, Searcher, TantivyDocument, Term};

const RANDOM_QUERIES: usize = 1_000;
/// Timed calls per query set and variant.
const CALLS: usize = 4_000;
const LIMIT: usize = 10;

/// The 20 queries of benches/search.lua, as `/v1/search` turns them into requests.
fn fixed_requests() -> Vec<SearchRequest> {
    let day = |s: &str| dates::parse(s).expect("a valid date");
    let plain = [
        "black hole entropy",
        "D-brane",
        "supersymmetric gauge theory",
        "AdS/CFT correspondence",
        "string compactification",
        "matrix model",
        "noncommutative geometry",
        "Seiberg-Witten",
        "conformal field theory",
        "tachyon condensation",
        "M-theory",
        "Calabi-Yau mirror symmetry",
        "topological string amplitudes",
        "cosmological constant",
    ];
    let mut out: Vec<SearchRequest> = plain
        .iter()
        .map(|q| SearchRequest { query: q.to_string(), limit: LIMIT, ..Default::default() })
        .collect();
    for (q, from, to) in [
        ("brane world", "1999-01-01", "2003-12-31"),
        ("instanton", "1992-01-01", "1996-12-31"),
        ("Chern-Simons theory", "1995-01-01", "2000-12-31"),
    ] {
        out.push(SearchRequest {
            query: q.into(),
            from: Some(day(from)),
            to: Some(day(to)),
            limit: LIMIT,
            ..Default::default()
        });
    }
    for (q, name) in
        [("string duality", "E. Witten"), ("orbifold", "C. Vafa"), ("holography", "J. Maldacena")]
    {
        let key = names::normalise_author(name).expect("a usable name").key;
        out.push(SearchRequest {
            query: q.into(),
            author_key: Some(key),
            limit: LIMIT,
            ..Default::default()
        });
    }
    out
}

/// Two distinct title words of random stored papers (a 64-bit LCG, fixed seed).
fn random_requests(searcher: &Searcher, title: tantivy::schema::Field) -> Vec<SearchRequest> {
    let segments: Vec<(u32, u32)> =
        searcher.segment_readers().iter().enumerate().map(|(i, s)| (i as u32, s.max_doc())).collect();
    let total: u64 = segments.iter().map(|s| s.1 as u64).sum();
    let mut x: u64 = 0x5eed_5ea7_c4ed;
    let mut next = |n: u64| {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) % n.max(1)
    };
    let mut out = Vec::with_capacity(RANDOM_QUERIES);
    let mut tries = 0;
    while out.len() < RANDOM_QUERIES && tries < RANDOM_QUERIES * 20 {
        tries += 1;
        let mut k = next(total) as u32;
        let mut seg = 0;
        while k >= segments[seg].1 {
            k -= segments[seg].1;
            seg += 1;
        }
        let Ok(d) = searcher.doc::<TantivyDocument>(DocAddress::new(segments[seg].0, k)) else { continue };
        let text = d.get_first(title).and_then(|v| v.as_str()).unwrap_or_default().to_lowercase();
        let words: Vec<&str> = text
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| w.len() >= 4)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if words.len() < 2 {
            continue;
        }
        let a = next(words.len() as u64) as usize;
        let mut b = next(words.len() as u64 - 1) as usize;
        if b >= a {
            b += 1;
        }
        out.push(SearchRequest {
            query: format!("{} {}", words[a], words[b]),
            limit: LIMIT,
            ..Default::default()
        });
    }
    out
}

/// The query `TopicIndex::search` builds, rebuilt from the schema (its parser is private).
struct Raw {
    reader: IndexReader,
    parser: QueryParser,
    day: tantivy::schema::Field,
    author_key: tantivy::schema::Field,
}

impl Raw {
    fn new(index: &TopicIndex) -> Raw {
        let inner = index.inner();
        let schema = inner.schema();
        let field = |name: &str| schema.get_field(name).expect("a field of the citecast schema");
        let mut parser = QueryParser::for_index(
            inner,
            vec![field("title"), field("abstract"), field("authors"), field("subject")],
        );
        parser.set_field_boost(field("title"), 2.0);
        let reader = inner.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().expect("a reader");
        Raw { reader, parser, day: field("day"), author_key: field("author_key") }
    }

    fn query(&self, req: &SearchRequest) -> BooleanQuery {
        let (text, _errors) = self.parser.parse_query_lenient(&req.query);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text)];
        if req.from.is_some() || req.to.is_some() {
            let bound = |d: Option<dates::Day>| match d {
                Some(d) => Bound::Included(Term::from_field_i64(self.day, d as i64)),
                None => Bound::Unbounded,
            };
            clauses.push((Occur::Must, Box::new(RangeQuery::new(bound(req.from), bound(req.to)))));
        }
        if let Some(key) = &req.author_key {
            let term = Term::from_field_text(self.author_key, key);
            clauses.push((Occur::Must, Box::new(TermQuery::new(term, IndexRecordOption::Basic))));
        }
        BooleanQuery::new(clauses)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Full,
    FullNoFacets,
    TopCountFacets,
    TopCount,
    TopOnly,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Full => "full",
            Variant::FullNoFacets => "full_no_facets",
            Variant::TopCountFacets => "top_count_facets",
            Variant::TopCount => "top_count",
            Variant::TopOnly => "top_only",
        }
    }
}

/// One call; returns something derived from the result so it is not optimised away.
fn call(index: &TopicIndex, raw: &Raw, searcher: &Searcher, v: Variant, req: &SearchRequest) -> usize {
    if v == Variant::Full {
        let r = index.search(req).expect("search");
        return r.hits.len() + r.total as usize;
    }
    if v == Variant::FullNoFacets {
        let r = index.search_with(req, Facets::None).expect("search");
        return r.hits.len() + r.total as usize;
    }
    let query = raw.query(req);
    let top = TopDocs::with_limit(LIMIT).order_by_score();
    match v {
        Variant::TopOnly => searcher.search(&query, &top).expect("search").len(),
        Variant::TopCount => {
            let (top, n) = searcher.search(&query, &(top, Count)).expect("search");
            top.len() + n
        }
        _ => {
            let mut years = FacetCollector::for_field("year");
            years.add_facet("/");
            let (top, n, facets) = searcher.search(&query, &(top, Count, years)).expect("search");
            top.len() + n + facets.get("/").count()
        }
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn measure(index: &TopicIndex, raw: &Raw, set: &str, reqs: &[SearchRequest]) {
    let searcher = raw.reader.searcher();
    let avg_hits: f64 =
        reqs.iter().map(|r| index.search(r).map(|x| x.total).unwrap_or(0) as f64).sum::<f64>()
            / reqs.len() as f64;
    for v in
        [Variant::Full, Variant::FullNoFacets, Variant::TopCountFacets, Variant::TopCount, Variant::TopOnly]
    {
        let mut sink = 0usize;
        for r in reqs.iter().take(200) {
            sink += call(index, raw, &searcher, v, r);
        }
        let mut times = Vec::with_capacity(CALLS);
        let started = Instant::now();
        for i in 0..CALLS {
            let r = &reqs[i % reqs.len()];
            let t = Instant::now();
            sink += call(index, raw, &searcher, v, r);
            times.push(t.elapsed());
        }
        let wall = started.elapsed();
        std::hint::black_box(sink);
        times.sort_unstable();
        let mean = wall / CALLS as u32;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{set:<8} {:<17} n={CALLS} mean={:.3}ms p50={:.3}ms p99={:.3}ms max={:.3}ms  {:.0} queries/s on 1 thread",
            v.name(),
            ms(mean),
            ms(pct(&times, 0.5)),
            ms(pct(&times, 0.99)),
            ms(*times.last().expect("calls")),
            1.0 / mean.as_secs_f64()
        );
        println!(
            "SEARCH_DIRECT set={set} variant={} n={CALLS} mean_ms={:.4} p50_ms={:.4} p99_ms={:.4} qps={:.0} avg_total_hits={avg_hits:.0}",
            v.name(),
            ms(mean),
            ms(pct(&times, 0.5)),
            ms(pct(&times, 0.99)),
            1.0 / mean.as_secs_f64()
        );
    }
}

fn main() {
    if !common::bench_mode() {
        println!("search_direct: skipped (run it with cargo bench --bench search_direct)");
        return;
    }
    let given = std::env::var_os("CITECAST_BENCH_DATA").map(PathBuf::from);
    let _tmp;
    let (index, _store) = match given {
        Some(dir) => {
            let started = Instant::now();
            let index =
                TopicIndex::open(&dir.join("index")).expect("open the index (is a server holding it?)");
            println!("index of {}: opened in {:.3} s", dir.display(), started.elapsed().as_secs_f64());
            (index, None)
        }
        None => {
            let tmp = tempfile::tempdir().expect("a temporary dir");
            let store =
                Store::open(&tmp.path().join("store"), &StoreConfig::default()).expect("open the store");
            let index = TopicIndex::open(&tmp.path().join("index")).expect("open the index");
            let started = Instant::now();
            let mut sink = ingest::IndexedStoreSink { store: &store, index: &index };
            let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
            for f in ingest::bundled_files(&bundled) {
                ingest::ingest_file(&f, &mut sink, None).expect("ingest the bundled data");
            }
            println!(
                "bundled data ingested into {} in {:.1} s",
                tmp.path().display(),
                started.elapsed().as_secs_f64()
            );
            _tmp = tmp;
            (index, Some(store))
        }
    };
    let raw = Raw::new(&index);
    let searcher = raw.reader.searcher();
    println!(
        "{} documents in {} segments; {} calls per set and variant, limit {LIMIT}, one thread",
        searcher.num_docs(),
        searcher.segment_readers().len(),
        CALLS
    );
    let title = index.inner().schema().get_field("title").expect("a title field");
    measure(&index, &raw, "fixed20", &fixed_requests());
    let random = random_requests(&searcher, title);
    println!(
        "random2: {} queries, e.g. {:?}",
        random.len(),
        random.iter().take(3).map(|r| &r.query).collect::<Vec<_>>()
    );
    measure(&index, &raw, "random2", &random);
}
