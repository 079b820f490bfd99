//! Engine benchmarks on the full bundled data (29,555 papers, 352,807 citations).
//!
//! Run with `cargo bench --bench engine`. Groups:
//!
//! - `ingest/full_bundled`: the bundled papers and citations ingested and indexed from
//!   empty into a fresh temporary directory (store writes, tantivy indexing, commit, flush).
//! - `lookup/paper_view`: `Store::resolve` + `Store::paper_view` over a fixed
//!   pseudo-random sample of real ids (canonical and alias forms, `hep-th/9711200` included).
//! - `search/bm25`: `TopicIndex::search`, limit 10, over ~20 rotating physics queries,
//!   some with date or author filters.
//! - `percentiles`: not a criterion bench. Criterion reports means, the targets are
//!   percentiles, so a plain timed loop prints p50/p95/p99/max per call.
//!
//! The lookup and search benches need an ingested data directory: `CITECAST_BENCH_DIR`
//! may point at one (holding `store/` and `index/`, e.g. a `citecast serve` data dir that
//! no server holds open); otherwise the bundled data is ingested once into a temporary dir.
//!
//! Under `cargo test --benches` (criterion's test mode) the heavy work is skipped.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use citecast_actors::dates;
use citecast_actors::index::{SearchRequest, TopicIndex};
use citecast_actors::ingest::{self, IngestError, IngestReport, Sink};
use citecast_actors::names;
use citecast_actors::store::{BatchOutcome, Store, StoreConfig, WriteBatch};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};

/// What the bundled files hold (data/README.md).
const BUNDLED_PAPERS: u64 = 29_555;
const BUNDLED_CITATIONS: u64 = 352_807;
/// The most cited paper of the bundled data (2,414 citations): the heaviest paper view.
const MOST_CITED: &str = "hep-th/9711200";
/// Distinct ids the lookup benches rotate over.
const LOOKUP_SAMPLE: usize = 1_000;
/// Calls timed one by one for the percentile lines.
const PERCENTILE_LOOKUPS: usize = 20_000;
const PERCENTILE_SEARCHES: usize = 5_000;

fn bundled_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// Criterion runs benches for real only under `cargo bench` (it passes `--bench`);
/// `cargo test --benches` runs the same binary without it, in test mode.
fn bench_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test" || a == "--list")
}

/// Whether the name filters given on the command line (`cargo bench --bench engine -- FILTER`)
/// leave `name` in. Substring match; criterion itself matches its benches by regex.
fn filter_allows(name: &str) -> bool {
    const TAKES_VALUE: &[&str] = &[
        "-c",
        "--color",
        "-s",
        "--save-baseline",
        "-b",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--profile-time",
        "--format",
        "--output-format",
        "--plotting-backend",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filters = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a.starts_with('-') {
            if TAKES_VALUE.contains(&a.as_str()) {
                i += 1;
            }
        } else {
            filters.push(a.as_str());
        }
        i += 1;
    }
    filters.is_empty() || filters.iter().any(|f| name.contains(f))
}

/// Writes straight into the store and index, as the ingest actor does by message.
struct DirectSink<'a> {
    store: &'a Store,
    index: &'a TopicIndex,
}

impl Sink for DirectSink<'_> {
    fn write(&mut self, batch: WriteBatch) -> Result<BatchOutcome, IngestError> {
        let mut outcome = self.store.apply(batch)?;
        if !outcome.changed_papers.is_empty() {
            let papers = std::mem::take(&mut outcome.changed_papers);
            self.index.upsert(&papers)?;
        }
        Ok(outcome)
    }

    fn commit(&mut self) -> Result<(), IngestError> {
        self.index.commit()?;
        self.store.flush()?;
        Ok(())
    }
}

fn open(dir: &Path) -> (Store, TopicIndex) {
    let store = Store::open(&dir.join("store"), &StoreConfig::default()).expect("open the store");
    let index = TopicIndex::open(&dir.join("index")).expect("open the index");
    (store, index)
}

/// Ingests the bundled files into `dir` (empty or absent), opening store and index there.
fn ingest_bundled(dir: &Path) -> (Store, TopicIndex, Vec<IngestReport>) {
    let (store, index) = open(dir);
    let mut sink = DirectSink { store: &store, index: &index };
    let reports = ingest::bundled_files(&bundled_dir())
        .iter()
        .map(|f| ingest::ingest_file(f, &mut sink, None).expect("ingest the bundled data"))
        .collect();
    (store, index, reports)
}

fn describe(reports: &[IngestReport]) -> String {
    let sum = |f: fn(&IngestReport) -> u64| reports.iter().map(f).sum::<u64>();
    format!(
        "{} papers, {} citations new, {} lines rejected",
        sum(|r| r.papers_new),
        sum(|r| r.citations_new),
        sum(|r| r.errors)
    )
}

/// An ingested data directory and what the query benches draw from it.
struct Fixture {
    /// Keeps a temporary data dir alive (and removes it at the end).
    _tmp: Option<tempfile::TempDir>,
    store: Store,
    index: TopicIndex,
    /// Ids to look up: mostly canonical, every 8th in alias form, `MOST_CITED` first.
    sample: Vec<String>,
    searches: Vec<(String, SearchRequest)>,
}

impl Fixture {
    fn load() -> Fixture {
        let reuse = std::env::var_os("CITECAST_BENCH_DIR")
            .map(PathBuf::from)
            .filter(|d| d.join("store").is_dir() && d.join("index").is_dir());
        let (tmp, store, index) = match reuse {
            Some(dir) => {
                // Opening is most of a restart's time to ready, so it is timed too.
                let started = Instant::now();
                let store = Store::open(&dir.join("store"), &StoreConfig::default()).expect("open the store");
                let store_s = started.elapsed().as_secs_f64();
                let started = Instant::now();
                let index = TopicIndex::open(&dir.join("index")).expect("open the index");
                println!(
                    "fixture: reusing the data dir {}: Store::open {store_s:.3} s, TopicIndex::open {:.3} s",
                    dir.display(),
                    started.elapsed().as_secs_f64()
                );
                (None, store, index)
            }
            None => {
                let tmp = tempfile::tempdir().expect("create a temporary dir");
                let started = Instant::now();
                let (store, index, reports) = ingest_bundled(tmp.path());
                println!(
                    "fixture: ingested the bundled data in {:.1} s ({}) into {}",
                    started.elapsed().as_secs_f64(),
                    describe(&reports),
                    tmp.path().display()
                );
                (Some(tmp), store, index)
            }
        };
        assert_eq!(store.paper_count(), BUNDLED_PAPERS, "the data dir must hold the full bundled data");
        assert_eq!(index.num_docs(), BUNDLED_PAPERS, "the index must hold every paper");
        let sample = lookup_sample(&store);
        let searches = search_requests();
        Fixture { _tmp: tmp, store, index, sample, searches }
    }

    fn lookup(&self, id: &str) -> usize {
        let canonical = self.store.resolve(id).expect("resolve").expect("a known id");
        let view = self.store.paper_view(&canonical).expect("paper view").expect("a stored paper");
        view.top_citing.len() + view.citations.total as usize
    }

    fn search(&self, req: &SearchRequest) -> usize {
        let results = self.index.search(req).expect("search");
        results.hits.len() + results.total as usize
    }
}

/// A deterministic pseudo-random sample of real ids (64-bit LCG over the id list).
fn lookup_sample(store: &Store) -> Vec<String> {
    let mut papers: Vec<(String, Option<String>)> = Vec::with_capacity(BUNDLED_PAPERS as usize);
    let mut after: Option<String> = None;
    loop {
        let chunk = store.papers_after(after.as_deref(), 5_000).expect("list papers");
        let Some(last) = chunk.last() else { break };
        after = Some(last.id.clone());
        papers.extend(chunk.into_iter().map(|p| (p.id, p.aliases.into_iter().next())));
    }
    let mut sample = vec![MOST_CITED.to_string()];
    let mut x: u64 = 0x5eed_c17e_ca57;
    while sample.len() < LOOKUP_SAMPLE {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let (id, alias) = &papers[((x >> 33) % papers.len() as u64) as usize];
        let id = match alias {
            Some(a) if sample.len() % 8 == 7 => a.clone(),
            _ => id.clone(),
        };
        sample.push(id);
    }
    sample
}

/// ~20 realistic queries, limit 10; some with a date range, some with an author filter.
fn search_requests() -> Vec<(String, SearchRequest)> {
    let day = |s: &str| dates::parse(s).expect("a valid date");
    let author = |name: &str| names::normalise_author(name).expect("a usable name").key;
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
    let mut out: Vec<(String, SearchRequest)> = plain
        .iter()
        .map(|q| (q.to_string(), SearchRequest { query: q.to_string(), limit: 10, ..Default::default() }))
        .collect();
    let dated = [
        ("brane world", "1999-01-01", "2003-12-31"),
        ("instanton", "1992-01-01", "1996-12-31"),
        ("Chern-Simons theory", "1995-01-01", "2000-12-31"),
    ];
    for (q, from, to) in dated {
        out.push((
            format!("{q} [{from}..{to}]"),
            SearchRequest {
                query: q.into(),
                from: Some(day(from)),
                to: Some(day(to)),
                limit: 10,
                ..Default::default()
            },
        ));
    }
    let by_author =
        [("string duality", "E. Witten"), ("orbifold", "C. Vafa"), ("holography", "J. Maldacena")];
    for (q, name) in by_author {
        let key = author(name);
        out.push((
            format!("{q} [author={key}]"),
            SearchRequest { query: q.into(), author_key: Some(key), limit: 10, ..Default::default() },
        ));
    }
    out
}

fn ingest_benches(c: &mut Criterion) {
    if !bench_mode() || !filter_allows("ingest/full_bundled") {
        return;
    }
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    // One ingest takes tens of seconds: a tiny budget makes criterion run the minimum
    // (one warm-up run and 10 samples of one run each).
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(BUNDLED_PAPERS + BUNDLED_CITATIONS));
    let mut first = true;
    group.bench_function("full_bundled", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let tmp = tempfile::tempdir().expect("create a temporary dir");
                let started = Instant::now();
                let (store, index, reports) = ingest_bundled(tmp.path());
                let took = started.elapsed();
                total += took;
                if first {
                    first = false;
                    println!(
                        "\ningest/full_bundled: one full ingest + index from empty took {:.2} s ({})",
                        took.as_secs_f64(),
                        describe(&reports)
                    );
                }
                // Closing and removing the directory is not part of the measurement.
                drop((index, store));
                drop(tmp);
            }
            total
        })
    });
    group.finish();
}

fn query_benches(c: &mut Criterion) {
    let wanted = ["lookup/paper_view", "search/bm25", "percentiles"];
    if !bench_mode() || !wanted.iter().any(|n| filter_allows(n)) {
        return;
    }
    let fx = Fixture::load();

    let mut group = c.benchmark_group("lookup");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    let mut i = 0;
    group.bench_function("paper_view", |b| {
        b.iter(|| {
            let id = &fx.sample[i % fx.sample.len()];
            i += 1;
            black_box(fx.lookup(black_box(id)))
        })
    });
    group.bench_with_input(BenchmarkId::new("paper_view", "most_cited_9711200"), MOST_CITED, |b, id| {
        b.iter(|| black_box(fx.lookup(black_box(id))))
    });
    group.finish();

    let mut group = c.benchmark_group("search");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    let mut i = 0;
    group.bench_function("bm25", |b| {
        b.iter(|| {
            let (_, req) = &fx.searches[i % fx.searches.len()];
            i += 1;
            black_box(fx.search(black_box(req)))
        })
    });
    group.finish();

    if filter_allows("percentiles") {
        percentiles(&fx);
    }
}

/// `p` in [0, 1] of sorted durations (nearest rank).
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.3}ms", d.as_secs_f64() * 1e3)
}

fn report(name: &str, mut times: Vec<Duration>, slowest: &str) {
    times.sort_unstable();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "{name} n={} mean={} p50={} p95={} p99={} max={} (slowest: {slowest})",
        times.len(),
        ms(mean),
        ms(pct(&times, 0.50)),
        ms(pct(&times, 0.95)),
        ms(pct(&times, 0.99)),
        ms(*times.last().expect("at least one call")),
    );
}

/// Times each call on its own, so the targets' percentiles can be read off.
fn percentiles(fx: &Fixture) {
    println!("\npercentiles: single-threaded timed loops, one call per timing");
    // One pass over the sample first, so the timed loop sees a warm page cache.
    for id in &fx.sample {
        black_box(fx.lookup(id));
    }
    let mut times = Vec::with_capacity(PERCENTILE_LOOKUPS);
    let mut slowest = (Duration::ZERO, "");
    for i in 0..PERCENTILE_LOOKUPS {
        let id = &fx.sample[i % fx.sample.len()];
        let started = Instant::now();
        black_box(fx.lookup(id));
        let took = started.elapsed();
        if took > slowest.0 {
            slowest = (took, id);
        }
        times.push(took);
    }
    report("lookup", times, slowest.1);

    // The most cited paper alone: the worst case among real papers.
    let mut times = Vec::with_capacity(200);
    for _ in 0..200 {
        let started = Instant::now();
        black_box(fx.lookup(MOST_CITED));
        times.push(started.elapsed());
    }
    report(&format!("lookup[{MOST_CITED}]"), times, MOST_CITED);

    for (_, req) in &fx.searches {
        black_box(fx.search(req));
    }
    let mut times = Vec::with_capacity(PERCENTILE_SEARCHES);
    let mut slowest = (Duration::ZERO, "");
    for i in 0..PERCENTILE_SEARCHES {
        let (label, req) = &fx.searches[i % fx.searches.len()];
        let started = Instant::now();
        black_box(fx.search(req));
        let took = started.elapsed();
        if took > slowest.0 {
            slowest = (took, label);
        }
        times.push(took);
    }
    report("search", times, slowest.1);
    println!();
}

criterion_group!(benches, query_benches, ingest_benches);
criterion_main!(benches);
