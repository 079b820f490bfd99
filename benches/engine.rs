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
//! - `limiter/check`: `Limits::check` (governor GCRA bucket plus the daily count written
//!   into sled) for 256 rotating keys of a tier that never refuses; `limiter/sled_insert`
//!   is that sled write alone. A percentile loop follows. Governor's own `check_key`,
//!   without our code, is measured by `benches/governor-raw` (a separate crate, because
//!   this package has no direct governor dependency).
//! - `forecast/features_per_paper`: `FeatureContext::features` for random labelled papers
//!   of the full corpus with the shipped models' text model, per mode, plus a percentile
//!   loop; `forecast/batch_inference`: `Forecaster::predict_std` on 100,000 standardised
//!   rows per mode, with rows/s printed; `forecast/batch_forecasts`: whole forecasts through
//!   `ForecastService`, one by one and in chunks of 1,000, forecasts/s printed, after a timed
//!   `warm()`.
//!
//! The lookup and search benches need an ingested data directory: `CITECAST_BENCH_DIR`
//! may point at one (holding `store/` and `index/`, e.g. a `citecast serve` data dir that
//! no server holds open); otherwise the bundled data is ingested once into a temporary dir.
//!
//! Under `cargo test --benches` (criterion's test mode) the heavy work is skipped.

mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::Arc;

use citecast::accounts::limits::{Decision, Limits, TierLimits};
use citecast_actors::dates;
use citecast_actors::forecast::corpus::{Corpus, PaperNo};
use citecast_actors::forecast::features::{self, FeatureContext};
use citecast_actors::forecast::registry::{self, LoadedModel};
use citecast_actors::forecast::task::Mode;
use citecast_actors::index::{SearchRequest, TopicIndex};
use citecast_actors::ingest::{self, IngestReport};
use citecast_actors::names;
use citecast_actors::store::{Store, StoreConfig};
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
/// Distinct principals the limiter benches rotate over (as the load test's keys).
const LIMITER_KEYS: usize = 256;
const PERCENTILE_CHECKS: usize = 200_000;
/// Labelled papers the feature benches draw from, and calls timed per mode.
const FEATURE_SAMPLE: usize = 2_000;
const PERCENTILE_FEATURES: usize = 5_000;
/// Rows scored per `predict_std` call in the batch inference bench.
const BATCH_ROWS: usize = 100_000;
/// The shipped models (models/README.md).
const SHIPPED_MODELS: [&str; 2] = ["at_publication-8bf59d5e-9398-s17", "early-8bf59d5e-9f1f-s17"];

fn bundled_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
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

fn open(dir: &Path) -> (Store, TopicIndex) {
    let store = Store::open(&dir.join("store"), &StoreConfig::default()).expect("open the store");
    let index = TopicIndex::open(&dir.join("index")).expect("open the index");
    (store, index)
}

/// Ingests the bundled files into `dir` (empty or absent), opening store and index there.
fn ingest_bundled(dir: &Path) -> (Store, TopicIndex, Vec<IngestReport>) {
    let (store, index) = open(dir);
    let mut sink = ingest::IndexedStoreSink { store: &store, index: &index };
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
    if !common::bench_mode() || !filter_allows("ingest/full_bundled") {
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
    let wanted = [
        "lookup/paper_view",
        "search/bm25",
        "percentiles",
        "forecast/features_per_paper",
        "forecast/batch_inference",
        "forecast/batch_forecasts",
    ];
    if !common::bench_mode() || !wanted.iter().any(|n| filter_allows(n)) {
        return;
    }
    let fx = Fixture::load();
    if ["forecast/features_per_paper", "forecast/batch_inference", "forecast/batch_forecasts"]
        .iter()
        .any(|f| filter_allows(f))
    {
        forecast_benches(c, &fx);
    }
    if !wanted[..3].iter().any(|n| filter_allows(n)) {
        return;
    }

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

fn us(d: Duration) -> String {
    format!("{:.3}µs", d.as_secs_f64() * 1e6)
}

/// As [`report`], in microseconds (for calls far below a millisecond).
fn report_us(name: &str, mut times: Vec<Duration>) {
    times.sort_unstable();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "{name} n={} mean={} p50={} p95={} p99={} p99.9={} max={}",
        times.len(),
        us(mean),
        us(pct(&times, 0.50)),
        us(pct(&times, 0.95)),
        us(pct(&times, 0.99)),
        us(pct(&times, 0.999)),
        us(*times.last().expect("at least one call")),
    );
}

/// A 64-bit LCG step; the benches' samples are deterministic.
fn lcg(x: &mut u64) -> u64 {
    *x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    *x >> 33
}

/// `Limits::check` as the API guard calls it (inline, no actor message since issue 15): a governor
/// bucket per key, then the day's count written into sled. The tier never refuses, so
/// every call takes the allowed path, as it does for a customer within their limits.
fn limiter_benches(c: &mut Criterion) {
    if !common::bench_mode() || !(filter_allows("limiter/check") || filter_allows("limiter/sled_insert")) {
        return;
    }
    let tmp = tempfile::tempdir().expect("create a temporary dir");
    let store = Store::open(&tmp.path().join("store"), &StoreConfig::default()).expect("open the store");
    let usage = store.db().open_tree("usage").expect("open the usage tree");
    let tier = TierLimits {
        tier: "bench".into(),
        per_minute: 4_000_000_000,
        burst: 4_000_000_000,
        daily: 1_000_000_000_000_000,
    };
    let mut limits = Limits::new(std::slice::from_ref(&tier), usage.clone());
    let keys: Vec<String> = (0..LIMITER_KEYS).map(|i| format!("key_{i:04x}bench")).collect();
    // The same key layout as the limiter's daily counts: principal, 0, 4-byte day.
    let usage_keys: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| {
            let mut v = k.as_bytes().to_vec();
            v.push(0);
            v.extend_from_slice(&dates::today().to_be_bytes());
            v
        })
        .collect();
    let mut refused = 0u64;
    let mut check = |limits: &mut Limits, key: &str| {
        let d = limits.check(key, None, "bench").expect("limiter check");
        if matches!(d, Decision::Limited { .. }) {
            refused += 1;
        }
        black_box(d);
    };

    let mut group = c.benchmark_group("limiter");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    let mut i = 0;
    group.bench_function("check", |b| {
        b.iter(|| {
            let key = &keys[i % keys.len()];
            i += 1;
            check(&mut limits, black_box(key))
        })
    });
    let mut i = 0u64;
    group.bench_function("sled_insert", |b| {
        b.iter(|| {
            let key = &usage_keys[i as usize % usage_keys.len()];
            i += 1;
            black_box(usage.insert(black_box(key), &i.to_be_bytes()).expect("sled insert"))
        })
    });
    group.finish();

    if filter_allows("limiter/check") {
        println!("\nlimiter percentiles: {PERCENTILE_CHECKS} single calls, {LIMITER_KEYS} keys");
        let mut times = Vec::with_capacity(PERCENTILE_CHECKS);
        for i in 0..PERCENTILE_CHECKS {
            let key = &keys[i % keys.len()];
            let started = Instant::now();
            check(&mut limits, key);
            times.push(started.elapsed());
        }
        report_us("limiter/check", times);
        // An empty timed call: what `Instant::now` + `elapsed` alone add to each figure.
        let mut times = Vec::with_capacity(PERCENTILE_CHECKS);
        for _ in 0..PERCENTILE_CHECKS {
            let started = Instant::now();
            black_box(());
            times.push(started.elapsed());
        }
        report_us("timer overhead", times);
        println!("limiter/check refused {refused} calls (must be 0)\n");
    }
    assert_eq!(refused, 0, "the bench tier must not refuse");
}

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// `FeatureContext::features` per paper and `Forecaster::predict_std` in bulk, with the
/// shipped models, on the corpus built from the fixture's store.
fn forecast_benches(c: &mut Criterion, fx: &Fixture) {
    let started = Instant::now();
    let corpus = Arc::new(Corpus::from_store(&fx.store).expect("build the corpus"));
    let corpus_s = started.elapsed().as_secs_f64();
    let models: Vec<LoadedModel> = SHIPPED_MODELS
        .iter()
        .map(|v| registry::load(&models_dir().join(v)).expect("load a shipped model"))
        .collect();
    let started = Instant::now();
    let mut contexts: Vec<(String, FeatureContext)> = Vec::new();
    for m in &models {
        if !contexts.iter().any(|(sha, _)| *sha == m.meta.text_sha256) {
            let ctx =
                FeatureContext::new(corpus.clone(), m.forecaster.text.clone(), &registry::task_of(&m.meta));
            contexts.push((m.meta.text_sha256.clone(), ctx));
        }
    }
    println!(
        "\nforecast fixture: Corpus::from_store {corpus_s:.2} s ({} papers); {} FeatureContext::new \
         {:.2} s ({} distinct text model(s) among {:?})",
        corpus.len(),
        contexts.len(),
        started.elapsed().as_secs_f64(),
        contexts.len(),
        SHIPPED_MODELS
    );
    let ctx_of = |m: &LoadedModel| {
        &contexts.iter().find(|(sha, _)| *sha == m.meta.text_sha256).expect("built above").1
    };

    // Labelled papers (a full 730-day window), drawn at random.
    let labelled: Vec<PaperNo> = {
        let ctx = &contexts[0].1;
        (0..corpus.len() as PaperNo).filter(|&p| ctx.labels().label[p as usize].is_some()).collect()
    };
    let mut x: u64 = 0xfea7_5eed;
    let sample: Vec<PaperNo> =
        (0..FEATURE_SAMPLE).map(|_| labelled[(lcg(&mut x) % labelled.len() as u64) as usize]).collect();
    println!("forecast fixture: {} labelled papers, {FEATURE_SAMPLE} drawn", labelled.len());

    // The first pass fills the per-month term snapshots; timed on its own.
    for m in &models {
        let (mode, ctx) = (m.meta.mode, ctx_of(m));
        let d = m.forecaster.feature_names.len();
        let mut times = Vec::with_capacity(sample.len());
        for &p in &sample {
            let started = Instant::now();
            let row = black_box(ctx.features(p, mode));
            times.push(started.elapsed());
            assert_eq!(row.len(), d, "feature row width of {}", mode.as_str());
        }
        report(&format!("features[{}] first pass (cold month snapshots)", mode.as_str()), times, "-");
    }

    if filter_allows("forecast/features_per_paper") {
        let mut group = c.benchmark_group("forecast");
        group.throughput(Throughput::Elements(1));
        group.measurement_time(Duration::from_secs(5));
        for m in &models {
            let (mode, ctx) = (m.meta.mode, ctx_of(m));
            let mut i = 0;
            group.bench_function(BenchmarkId::new("features_per_paper", mode.as_str()), |b| {
                b.iter(|| {
                    let p = sample[i % sample.len()];
                    i += 1;
                    black_box(ctx.features(black_box(p), mode))
                })
            });
        }
        group.finish();

        println!("\nfeature percentiles: {PERCENTILE_FEATURES} single calls per mode, warm snapshots");
        for m in &models {
            let (mode, ctx) = (m.meta.mode, ctx_of(m));
            let mut times = Vec::with_capacity(PERCENTILE_FEATURES);
            let mut slowest = (Duration::ZERO, 0);
            for i in 0..PERCENTILE_FEATURES {
                let p = sample[i % sample.len()];
                let started = Instant::now();
                black_box(ctx.features(p, mode));
                let took = started.elapsed();
                if took > slowest.0 {
                    slowest = (took, p);
                }
                times.push(took);
            }
            report(&format!("features[{}]", mode.as_str()), times, &corpus.ids[slowest.1 as usize]);
        }
    }

    if filter_allows("forecast/batch_inference") {
        // Real feature rows of the sample, standardised, repeated up to BATCH_ROWS.
        let batches: Vec<(Mode, Vec<f32>)> = models
            .iter()
            .map(|m| {
                let d = m.forecaster.feature_names.len();
                let mut rows = features::matrix(ctx_of(m), &sample, m.meta.mode);
                m.forecaster.normaliser.apply(&mut rows);
                let x: Vec<f32> = rows.iter().copied().cycle().take(BATCH_ROWS * d).collect();
                (m.meta.mode, x)
            })
            .collect();
        let mut group = c.benchmark_group("forecast");
        group.sample_size(10);
        group.throughput(Throughput::Elements(BATCH_ROWS as u64));
        group.measurement_time(Duration::from_secs(5));
        for (m, (mode, x)) in models.iter().zip(&batches) {
            group.bench_function(BenchmarkId::new("batch_inference", mode.as_str()), |b| {
                b.iter(|| black_box(m.forecaster.predict_std(black_box(x))))
            });
        }
        group.finish();

        println!(
            "\nbatch inference: Forecaster::predict_std on {BATCH_ROWS} standardised rows, 5 timed calls"
        );
        for (m, (mode, x)) in models.iter().zip(&batches) {
            let mut rates = Vec::new();
            for _ in 0..5 {
                let started = Instant::now();
                let p = black_box(m.forecaster.predict_std(x));
                let took = started.elapsed().as_secs_f64();
                assert_eq!(p.len(), BATCH_ROWS);
                rates.push(BATCH_ROWS as f64 / took);
            }
            rates.sort_by(f64::total_cmp);
            println!(
                "batch_inference[{}] served={:?} d={}: rows/s min={:.0} median={:.0} max={:.0}",
                mode.as_str(),
                m.forecaster.served,
                m.forecaster.feature_names.len(),
                rates[0],
                rates[2],
                rates[4]
            );
        }
        println!();
    }

    if filter_allows("forecast/batch_forecasts") {
        batch_forecasts(&corpus, &sample);
    }
}

/// Whole forecasts (features, score, cohort rank, contributions, outcome) through
/// `ForecastService`: one by one (`forecast_routed`, as `POST /v1/forecasts` used to) and in
/// chunks of 1,000 (`forecast_batch`, as it does now), forecasts/s printed per mode; and the
/// warm-up (`warm`: contexts and every paper's cohort score for both models) timed first.
fn batch_forecasts(corpus: &Arc<Corpus>, sample: &[PaperNo]) {
    use citecast_actors::forecast::service::{ForecastService, Route};
    let (mut service, refused) = ForecastService::load(&[models_dir().as_path()]);
    assert!(refused.is_empty(), "{refused:?}");
    service.set_corpus(corpus.clone());
    let started = Instant::now();
    service.warm();
    println!(
        "\nbatch forecasts: warm() {:.2} s ({} papers, both shipped models)",
        started.elapsed().as_secs_f64(),
        corpus.len()
    );
    let ids: Vec<String> = sample.iter().map(|&p| corpus.ids[p as usize].clone()).collect();
    let route = Route { caller: Some("bench".into()), ..Route::default() };
    for mode in [Mode::AtPublication, Mode::Early] {
        let started = Instant::now();
        let one = ids.iter().filter(|id| service.forecast_routed(id, mode, &route).is_ok()).count();
        let one_rate = ids.len() as f64 / started.elapsed().as_secs_f64();
        let mut rates = Vec::new();
        let mut ok = 0;
        for _ in 0..3 {
            let started = Instant::now();
            ok = 0;
            for chunk in ids.chunks(1_000) {
                ok += service.forecast_batch(chunk, mode, &route).iter().filter(|r| r.is_ok()).count();
            }
            rates.push(ids.len() as f64 / started.elapsed().as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        assert_eq!(ok, one, "the batch answers what one by one answers");
        println!(
            "batch_forecasts[{}]: {} ids ({ok} forecast): one by one {one_rate:.0}/s; chunks of 1,000 \
             min={:.0} median={:.0} max={:.0}/s",
            mode.as_str(),
            ids.len(),
            rates[0],
            rates[1],
            rates[2]
        );
    }
}

criterion_group!(benches, limiter_benches, query_benches, ingest_benches);
criterion_main!(benches);
