//! A synthetic corpus in the ingest format (docs/ingest-format.md), at any size, fitted on
//! the bundled hep-th data; for the scale bench (issue 15, `benches/scale.sh`).
//!
//! ```sh
//! cargo bench --bench gen_corpus -- --papers 1000000 --seed 1 --out DIR
//! ```
//!
//! writes, like `data/`:
//!
//! - `DIR/papers.jsonl.gz`: one paper per line (`id`, `title`, `authors`, `submitted_utc`,
//!   `revised_utc`, `abstract`, sometimes `comments`, `journal_ref`, `subj_class`), oldest first;
//! - `DIR/citations_dated.tsv.gz`: `citing_id  cited_id  citing_date  cited_date`, header row;
//! - `DIR/queries.txt`: 2,000 two-word queries, words drawn from the generated titles;
//! - `DIR/corpus.json`: the settings, the fitted parameters and what was written.
//!
//! so `citecast serve --bundled-data DIR`, `citecast ingest DIR/papers.jsonl.gz
//! DIR/citations_dated.tsv.gz` and `citecast train --bundled-data DIR` take it. Ids are
//! `gen/00000001` … (1-based, zero-padded to 8 digits), which no arXiv id can be.
//!
//! Options: `--papers N` (default 30000), `--seed S` (1), `--out DIR` (required),
//! `--refs-mean R` (10: references per paper on average, before the cap below),
//! `--years Y` (11.33: the span of submission dates), `--end YYYY-MM-DD` (2003-04-30: the
//! last submission date; with 11.33 years the corpus spans the bundled data's 1991-12-31 ..
//! 2003-04-30, because the forecast task's train/validation/test years are fixed to that
//! calendar: a corpus elsewhere in time trains on no rows), `--attract A` (1), `--fitness-sigma F` (0.3), `--career-years C` (3)
//! (see below), `--data DIR` (the bundled data to fit on, default `data/`), `--queries Q`
//! (2000). 30,000 papers take 2.5 s in release (5 s in a debug build), plus the fit (~2 s,
//! 11 s in debug); 100,000 take 8.4 s.
//!
//! ## The model, and what is fitted on the bundled data
//!
//! The bundled files are read at every run and these are fitted from them; no table is
//! committed. `corpus.json` records the fitted values (and the generator prints them).
//!
//! - **Yearly volume** grows exponentially at the rate fitted by least squares on the log of
//!   the per-year paper counts of the full years of the bundled data (1992–2002: +7.0 % a
//!   year). The volume is scaled so that `--papers` fall in the `--years` before `--end`
//!   (a denser field than hep-th, over the same calendar):
//!   paper i (0-based, N papers) is submitted at the fraction
//!   t = ln(1 + (e^{rT} − 1)(i + ½)/N) / (rT) of the span, so dates never decrease with the id.
//! - **Topics**: each bundled paper is given one of 23 topics by seed phrases (`TOPICS`):
//!   the topic whose phrases occur most often, with three times the weight in the title, else
//!   `general` (18 %). Per topic, the word frequencies of titles and of abstracts are counted
//!   (whitespace tokens, outer punctuation stripped, a sentence's first word lower-cased when
//!   the rest of it is). A synthetic paper draws its topic from the topics' shares, its title
//!   and abstract lengths from the bundled lengths (8.1 and 94 words on average), each word
//!   from its topic's title or abstract distribution (a unigram model: word order is random),
//!   and its abstract's sentence lengths geometric with the bundled mean. Words that occur
//!   once in the whole bundled text (hapaxes) are 1.35 % of the tokens; a synthetic token is a
//!   new pseudo-word (random letters) with that probability, so the vocabulary keeps growing
//!   with the corpus, as a real one does, instead of stopping at the bundled 72,000 words.
//! - **Authors**: team sizes are drawn from the bundled distribution (1: 39 %, 2: 35 %,
//!   3: 18 %, 4+: 8 %). Each author slot is a new author with probability p (the bundled ratio
//!   of distinct author strings to author slots, 0.26), else an existing author drawn in
//!   proportion to their papers (cumulative advantage, Yule–Simon), among the authors of the
//!   last `--career-years` only, from the same topic's authors with probability 0.75 (not
//!   fitted), else from all; a pool holding fewer than 200 slots (a topic's first months)
//!   always gets a new author. The window and the floor keep the first authors from growing
//!   into hubs of thousands of papers (the plain Yule process gives the first author ~1,000
//!   papers at 30,000; the bundled maximum is 129; here: 117). Names are "I. Surname" with the
//!   bundled surnames; each author number maps to a distinct (initial, surname) pair,
//!   double-barrelled when the pairs run out, so author keys (surname + initial) do not collide.
//! - **Citations**: the number of references of a paper is drawn from the out-degrees of
//!   the bundled papers of 1997 on (when the bundled corpus had five years of history; mean
//!   15.9), scaled to `--refs-mean` on average with randomised rounding, and capped by the
//!   papers available. Each reference goes, with the bundled share of same-topic citations
//!   (0.31 under the topic rule above), to a paper of the citing paper's topic, else to any
//!   paper. The cited paper is drawn by preferential attachment with ageing and fitness
//!   (Bianconi–Barabási): a paper's weight is η · (A + citations so far) · K(age), with η
//!   log-normal of mean 1 and σ `--fitness-sigma`, and K the log-normal density of the bundled
//!   citation lags (μ = 6.08, σ = 1.28 in ln days, median 437 days), taken per month of age.
//!   Weights are kept as integer "tickets" per month (η · A at submission and η per citation,
//!   randomly rounded); a month is drawn by K(age) × its tickets, then a ticket uniformly.
//!   Only papers submitted strictly before the citing paper are cited, and a paper cites
//!   another at most once; each TSV row carries both papers' submission dates.
//!   σ = 0.3 and A = 1 were chosen by comparing 24-month citation counts at 30,000 papers
//!   with the bundled ones, on a 20-year calendar (p50/p90/p95/p99 and share of zeros:
//!   generated 2/12/18/39, 28 %; bundled 2/18/31/83, 26 %, with 16 rather than 10 references
//!   per paper; most cited 1,687 against 2,414). Without fitness (σ = 0) the tail was too thin
//!   (27 at p99, 16 % zeros); σ = 0.5 made one paper take 5,549 citations. On the default
//!   (bundled) calendar, seed 1: 2/12/19/46, 28 % zeros, most cited 5,134 — one early paper
//!   gathers more than the bundled maximum, as the same number of papers is packed into 11
//!   rather than 20 years.
//! - **Other fields**: `comments`, `journal_ref` and `subj_class` are drawn (with the bundled
//!   share of papers that have one) from the bundled values; `revised_utc` has one date with
//!   the bundled share of revised papers, at a lag drawn from the bundled first-revision lags.
//!
//! Not modelled: topics' popularity changing over time, author ageing beyond the window,
//! citations from revisions (the bundled data has 0.3 % "backwards" citations; here none),
//! aliases (no `arxiv_id`; the store derives `00001234` and `1234` from `gen/00001234` as from
//! an old-style arXiv id), word order (phrase queries match less than on real text). Lags are
//! longer than the bundled ones (p10/p50/p90 159/754/2,151 days against 77/536/1,837): the
//! kernel is fitted on observed lags, and preferential attachment then favours older papers.
//!
//! Memory: per paper a day number, a topic, a fitness and a citation count; per citation
//! about one `u32` ticket twice (the per-topic and the global lists); per author slot two
//! `u32` twice; plus the fitted tables (~60 MB, most of it the fitting pass).
//!
//! Under `cargo test --benches` it generates 3,000 papers twice into a temporary dir and
//! checks them (ids, dates, references to earlier papers, no duplicates, determinism).

mod common;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use citecast_actors::dates::{self, Day};
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};

/// Topics, each with its seed phrases (lower case, substrings). A bundled paper takes the
/// topic whose phrases occur most often in its title (weight 3) and abstract (weight 1);
/// ties go to the earlier topic; no occurrence: `general`.
const TOPICS: &[(&str, &[&str])] = &[
    ("black holes", &["black hole"]),
    ("d-branes", &["d-brane", "dbrane", "d brane"]),
    ("supersymmetric gauge theory", &["supersymmetric gauge", "super yang-mills", "supersymmetric yang"]),
    ("ads/cft", &["ads/cft", "anti-de sitter", "ads_", "holograph"]),
    ("compactification", &["compactification", "calabi-yau", "orbifold", "orientifold"]),
    ("matrix models", &["matrix model"]),
    ("noncommutative geometry", &["noncommutative", "non-commutative"]),
    ("seiberg-witten", &["seiberg-witten", "seiberg witten"]),
    ("conformal field theory", &["conformal field", "cft", "virasoro"]),
    ("tachyons", &["tachyon"]),
    ("m-theory", &["m-theory", "eleven-dimensional", "11-dimensional"]),
    ("topological strings", &["topological"]),
    ("cosmology", &["cosmolog", "inflation", "de sitter"]),
    ("brane worlds", &["brane world", "braneworld", "randall-sundrum"]),
    ("instantons", &["instanton", "monopole", "soliton"]),
    ("chern-simons", &["chern-simons", "chern simons"]),
    ("string duality", &["duality", "dualities"]),
    ("integrable systems", &["integrab", "bethe", "yang-baxter"]),
    ("quantum groups", &["quantum group", "q-deform", "hopf algebra"]),
    ("lattice and qcd", &["lattice", "qcd", "chiral"]),
    ("gravity", &["gravity", "gravitational", "einstein"]),
    ("string theory", &["string", "superstring"]),
    ("quantum field theory", &["field theory", "renormaliz", "anomal"]),
];
/// Author slots filled from the same topic's authors (else from all); not fitted.
const SAME_TOPIC_AUTHOR: f64 = 0.75;
/// Author slots a pool must hold before existing authors are drawn from it.
const MIN_AUTHOR_POOL: usize = 200;
/// Tries to find an acceptable cited paper (earlier, not yet cited by this paper).
const REF_TRIES: usize = 20;
/// Days in an attachment bucket (a month).
const BUCKET_DAYS: f64 = 30.4375;
/// Query words: at least this long, ASCII letters only, not in `STOP`.
const QUERY_WORD_MIN: usize = 4;
const STOP: &[&str] = &[
    "with", "from", "that", "this", "their", "into", "over", "under", "some", "between", "about", "using",
    "based", "through", "which", "other", "these", "when", "where", "upon", "within", "without", "after",
    "before", "such", "also", "have", "been", "than", "them", "they", "there", "more", "most", "only",
];

// ---------------------------------------------------------------------------------------
// Random numbers: SplitMix64, so the output depends on nothing but the seed and the code.

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Uniform in [0, n), n > 0.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
}

/// A discrete distribution over 0..n given by counts (cumulative sums, binary search).
struct Dist {
    cum: Vec<u64>,
}

impl Dist {
    fn new(counts: impl IntoIterator<Item = u64>) -> Dist {
        let mut total = 0;
        let cum = counts
            .into_iter()
            .map(|c| {
                total += c;
                total
            })
            .collect();
        Dist { cum }
    }
    fn total(&self) -> u64 {
        self.cum.last().copied().unwrap_or(0)
    }
    fn sample(&self, rng: &mut Rng) -> usize {
        let r = rng.below(self.total());
        self.cum.partition_point(|&c| c <= r)
    }
}

/// Words with their counts, sorted by word so the tables do not depend on hash order.
struct Vocab {
    words: Vec<Box<str>>,
    dist: Dist,
}

impl Vocab {
    fn new(counts: HashMap<String, u64>) -> Vocab {
        let mut pairs: Vec<(String, u64)> = counts.into_iter().collect();
        pairs.sort_unstable();
        let dist = Dist::new(pairs.iter().map(|(_, c)| *c));
        Vocab { words: pairs.into_iter().map(|(w, _)| w.into_boxed_str()).collect(), dist }
    }
    fn sample(&self, rng: &mut Rng) -> &str {
        &self.words[self.dist.sample(rng)]
    }
}

/// Values with their counts (lengths, out-degrees, lags), sorted by value.
fn dist_of_values(values: &[u64]) -> (Vec<u64>, Dist) {
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for v in values {
        *counts.entry(*v).or_default() += 1;
    }
    let mut pairs: Vec<(u64, u64)> = counts.into_iter().collect();
    pairs.sort_unstable();
    let dist = Dist::new(pairs.iter().map(|p| p.1));
    (pairs.into_iter().map(|p| p.0).collect(), dist)
}

/// Strings with their counts (comments, journal refs, subjects), sorted.
fn pool_of(values: Vec<String>) -> Vocab {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    Vocab::new(counts)
}

// ---------------------------------------------------------------------------------------
// Fitting on the bundled data.

#[derive(Deserialize)]
struct BundledPaper {
    id: String,
    title: String,
    #[serde(default)]
    authors: Vec<String>,
    submitted_utc: String,
    #[serde(default)]
    revised_utc: Vec<String>,
    #[serde(rename = "abstract", default)]
    abstract_text: Option<String>,
    comments: Option<String>,
    journal_ref: Option<String>,
    subj_class: Option<String>,
}

/// What the generator draws from, fitted on the bundled data.
struct Model {
    /// Yearly growth rate of the volume (ln per year).
    growth: f64,
    /// Share of papers per topic (the last one is `general`).
    topic_share: Dist,
    titles: Vec<Vocab>,
    abstracts: Vec<Vocab>,
    title_len: (Vec<u64>, Dist),
    abstract_len: (Vec<u64>, Dist),
    sentence_mean: f64,
    hapax_share: f64,
    team: (Vec<u64>, Dist),
    new_author: f64,
    surnames: Vec<String>,
    /// First initials, most frequent first.
    initials: Vec<char>,
    out_degree: (Vec<u64>, Dist),
    out_degree_mean: f64,
    same_topic_cite: f64,
    lag_mu: f64,
    lag_sigma: f64,
    comments: (f64, Vocab),
    journal_ref: (f64, Vocab),
    subject: (f64, Vocab),
    revised: (f64, (Vec<u64>, Dist)),
    /// Facts about the bundled data, for corpus.json and the printout.
    facts: serde_json::Value,
}

fn open_gz(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let f = File::open(path)?;
    Ok(Box::new(BufReader::with_capacity(1 << 16, MultiGzDecoder::new(f))))
}

fn topic_of(title: &str, abstract_text: &str) -> usize {
    let (t, a) = (title.to_lowercase(), abstract_text.to_lowercase());
    let mut best = (TOPICS.len(), 0);
    for (i, (_, keys)) in TOPICS.iter().enumerate() {
        let score: usize = keys.iter().map(|k| 3 * t.matches(k).count() + a.matches(k).count()).sum();
        if score > best.1 {
            best = (i, score);
        }
    }
    best.0
}

/// Whitespace tokens with outer punctuation stripped; a sentence's first word is
/// lower-cased when the rest of it is lower case ("We" -> "we", "Witten" stays).
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut sentence_start = true;
    for raw in text.split_whitespace() {
        let ends = raw.ends_with('.') && !raw.ends_with("..");
        let w = raw
            .trim_start_matches(['(', '"', '`', '\''])
            .trim_end_matches(['.', ',', ';', ':', ')', '"', '\'', '?', '!']);
        if !w.is_empty() {
            let mut chars = w.chars();
            let first = chars.next().unwrap_or(' ');
            let w = if sentence_start && first.is_ascii_uppercase() && chars.all(|c| !c.is_uppercase()) {
                w.to_lowercase()
            } else {
                w.to_string()
            };
            out.push(w);
        }
        sentence_start = ends;
    }
    out
}

fn fit(data: &Path) -> Model {
    let reader = open_gz(&data.join("papers.jsonl.gz")).expect("open the bundled papers.jsonl.gz");
    let k = TOPICS.len() + 1;
    let mut per_year: HashMap<i32, u64> = HashMap::new();
    let mut topic_counts = vec![0u64; k];
    let mut title_words: Vec<HashMap<String, u64>> = vec![HashMap::new(); k];
    let mut abstract_words: Vec<HashMap<String, u64>> = vec![HashMap::new(); k];
    let mut global_words: HashMap<String, u64> = HashMap::new();
    let (mut title_lens, mut abstract_lens, mut teams, mut revision_lags) = (vec![], vec![], vec![], vec![]);
    let (mut sentences, mut abstract_tokens) = (0u64, 0u64);
    let mut authors: HashSet<String> = HashSet::new();
    let mut surnames: HashSet<String> = HashSet::new();
    let mut initials: HashMap<char, u64> = HashMap::new();
    let (mut comments, mut journal_refs, mut subjects) = (vec![], vec![], vec![]);
    let mut papers: HashMap<String, (usize, Day)> = HashMap::new();
    let (mut n, mut slots) = (0u64, 0u64);
    for line in reader.lines() {
        let line = line.expect("read the bundled papers");
        if line.trim().is_empty() {
            continue;
        }
        let p: BundledPaper = serde_json::from_str(&line).expect("a bundled paper line");
        let abstract_text = p.abstract_text.unwrap_or_default();
        let Some(day) = dates::parse(&p.submitted_utc) else { continue };
        n += 1;
        *per_year.entry(dates::year_of(day)).or_default() += 1;
        let topic = topic_of(&p.title, &abstract_text);
        topic_counts[topic] += 1;
        papers.insert(p.id.clone(), (topic, day));
        let t = tokens(&p.title);
        title_lens.push(t.len() as u64);
        for w in t {
            *global_words.entry(w.clone()).or_default() += 1;
            *title_words[topic].entry(w).or_default() += 1;
        }
        let a = tokens(&abstract_text);
        abstract_lens.push(a.len() as u64);
        abstract_tokens += a.len() as u64;
        sentences += abstract_text.split_whitespace().filter(|w| w.ends_with('.')).count().max(1) as u64;
        for w in a {
            *global_words.entry(w.clone()).or_default() += 1;
            *abstract_words[topic].entry(w).or_default() += 1;
        }
        teams.push(p.authors.len().max(1) as u64);
        slots += p.authors.len().max(1) as u64;
        for name in &p.authors {
            authors.insert(name.clone());
            let clean: String = name.split('(').next().unwrap_or_default().trim().to_string();
            if let Some(last) = clean.split([' ', '.']).next_back() {
                let ok = last.len() >= 3
                    && last.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && last.chars().skip(1).all(|c| c.is_ascii_lowercase() || c == '-');
                if ok {
                    surnames.insert(last.to_string());
                }
            }
            if let Some(c) = clean.chars().next().filter(|c| c.is_ascii_uppercase()) {
                *initials.entry(c).or_default() += 1;
            }
        }
        if let Some(first) = p.revised_utc.first().and_then(|r| dates::parse(r)) {
            revision_lags.push((first - day).max(1) as u64);
        }
        comments.extend(p.comments.filter(|s| !s.is_empty()));
        journal_refs.extend(p.journal_ref.filter(|s| !s.is_empty()));
        subjects.extend(p.subj_class.filter(|s| !s.is_empty()));
    }
    assert!(n > 1000, "the bundled papers file holds too few papers ({n})");

    // Growth: least squares on ln(count) over the years strictly inside the data's span.
    let (first_year, last_year) =
        (*per_year.keys().min().expect("years"), *per_year.keys().max().expect("years"));
    let full: Vec<(f64, f64)> = (first_year + 1..last_year)
        .filter_map(|y| per_year.get(&y).map(|&c| (y as f64, (c as f64).ln())))
        .collect();
    let mean_x = full.iter().map(|p| p.0).sum::<f64>() / full.len() as f64;
    let mean_y = full.iter().map(|p| p.1).sum::<f64>() / full.len() as f64;
    let growth = full.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum::<f64>()
        / full.iter().map(|p| (p.0 - mean_x).powi(2)).sum::<f64>();

    // Citations: out-degrees (papers of 1997 on), same-topic share, lags.
    let reader =
        open_gz(&data.join("citations_dated.tsv.gz")).expect("open the bundled citations_dated.tsv.gz");
    let mut out_degree: HashMap<&str, u64> = HashMap::new();
    let (mut edges, mut same, mut ln_sum, mut ln_sq, mut lags) = (0u64, 0u64, 0.0f64, 0.0f64, 0u64);
    let lines: Vec<String> = reader.lines().map(|l| l.expect("read the bundled citations")).collect();
    for line in &lines {
        let mut f = line.split('\t');
        let (Some(citing), Some(cited)) = (f.next(), f.next()) else { continue };
        let (Some(a), Some(b)) = (papers.get(citing), papers.get(cited)) else { continue };
        edges += 1;
        *out_degree.entry(citing).or_default() += 1;
        if a.0 == b.0 {
            same += 1;
        }
        let lag = a.1 - b.1;
        if lag >= 1 {
            let l = (lag as f64).ln();
            ln_sum += l;
            ln_sq += l * l;
            lags += 1;
        }
    }
    let from = dates::from_ymd(1997, 1, 1);
    let degrees: Vec<u64> = papers
        .iter()
        .filter(|(_, (_, day))| *day >= from)
        .map(|(id, _)| out_degree.get(id.as_str()).copied().unwrap_or(0))
        .collect();
    let out_degree_mean = degrees.iter().sum::<u64>() as f64 / degrees.len().max(1) as f64;
    let lag_mu = ln_sum / lags as f64;
    let lag_sigma = (ln_sq / lags as f64 - lag_mu * lag_mu).sqrt();

    let hapaxes: u64 = global_words.values().filter(|&&c| c == 1).count() as u64;
    let all_tokens: u64 = global_words.values().sum();
    let mut surnames: Vec<String> = surnames.into_iter().collect();
    surnames.sort_unstable();
    let mut initials: Vec<(char, u64)> = initials.into_iter().collect();
    initials.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let new_author = authors.len() as f64 / slots as f64;
    let share = |v: &Vec<String>| v.len() as f64 / n as f64;
    let facts = serde_json::json!({
        "bundled_papers": n,
        "bundled_citations": edges,
        "years_fitted": [first_year + 1, last_year - 1],
        "growth_per_year": growth.exp() - 1.0,
        "topic_shares": TOPICS.iter().map(|t| t.0).chain(["general"]).zip(topic_counts.iter())
            .map(|(t, c)| (t.to_string(), serde_json::json!(*c as f64 / n as f64))).collect::<serde_json::Map<_, _>>(),
        "same_topic_citation_share": same as f64 / edges as f64,
        "out_degree_mean_1997_on": out_degree_mean,
        "lag_days_lognormal": { "mu": lag_mu, "sigma": lag_sigma, "median_days": lag_mu.exp() },
        "title_words_mean": title_lens.iter().sum::<u64>() as f64 / n as f64,
        "abstract_words_mean": abstract_tokens as f64 / n as f64,
        "hapax_token_share": hapaxes as f64 / all_tokens as f64,
        "distinct_words": global_words.len(),
        "new_author_share": new_author,
        "productivity_tail_exponent": 1.0 + 1.0 / (1.0 - new_author),
        "team_mean": slots as f64 / n as f64,
        "surnames": surnames.len(),
    });
    Model {
        growth,
        topic_share: Dist::new(topic_counts),
        titles: title_words.into_iter().map(Vocab::new).collect(),
        abstracts: abstract_words.into_iter().map(Vocab::new).collect(),
        title_len: dist_of_values(&title_lens),
        abstract_len: dist_of_values(&abstract_lens),
        sentence_mean: abstract_tokens as f64 / sentences as f64,
        hapax_share: hapaxes as f64 / all_tokens as f64,
        team: dist_of_values(&teams),
        new_author,
        surnames,
        initials: initials.into_iter().map(|p| p.0).collect(),
        out_degree: dist_of_values(&degrees),
        out_degree_mean,
        same_topic_cite: same as f64 / edges as f64,
        lag_mu,
        lag_sigma,
        comments: (share(&comments), pool_of(comments)),
        journal_ref: (share(&journal_refs), pool_of(journal_refs)),
        subject: (share(&subjects), pool_of(subjects)),
        revised: (revision_lags.len() as f64 / n as f64, dist_of_values(&revision_lags)),
        facts,
    }
}

// ---------------------------------------------------------------------------------------
// Generation.

struct Settings {
    papers: usize,
    seed: u64,
    out: PathBuf,
    refs_mean: f64,
    years: f64,
    end: Day,
    attract: f64,
    fitness_sigma: f64,
    career_years: f64,
    data: PathBuf,
    queries: usize,
}

#[derive(Serialize)]
struct OutPaper<'a> {
    id: &'a str,
    title: &'a str,
    authors: &'a [String],
    submitted_utc: &'a str,
    revised_utc: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    comments: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    journal_ref: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subj_class: Option<&'a str>,
    #[serde(rename = "abstract")]
    abstract_text: &'a str,
}

fn paper_id(i: usize) -> String {
    format!("gen/{:08}", i + 1)
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut Rng) -> f64 {
    let u = rng.f64().max(1e-300);
    let v = rng.f64();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// floor(x), plus one with probability fract(x).
fn stochastic_round(x: f64, rng: &mut Rng) -> usize {
    x.floor() as usize + usize::from(rng.chance(x.fract()))
}

/// A pseudo-word of 5–10 letters, consonants and vowels alternating.
fn pseudo_word(rng: &mut Rng) -> String {
    const C: &[u8] = b"bcdfghjklmnprstvwxz";
    const V: &[u8] = b"aeiou";
    let len = 5 + rng.below(6) as usize;
    let start = rng.below(2);
    (0..len)
        .map(|i| {
            let set = if (i as u64 + start).is_multiple_of(2) { C } else { V };
            set[rng.below(set.len() as u64) as usize] as char
        })
        .collect()
}

/// The name of author `n`: a distinct (initial, surname) pair per author.
fn author_name(model: &Model, n: u64) -> String {
    // n = q·s + r. The surname depends on r only (a stride coprime with s spreads
    // consecutive authors over the alphabet), the initial on (q + r) mod k, the second
    // surname of a double-barrelled name on q / k. Two authors with the same surname have
    // the same r, so different q: a different initial or a different second surname.
    let s = model.surnames.len() as u64;
    let (q, r) = (n / s, n % s);
    let mut stride = 7919 % s.max(2);
    while gcd(stride.max(1), s) != 1 {
        stride += 1;
    }
    let surname = &model.surnames[((r * stride) % s) as usize];
    let k = model.initials.len() as u64;
    let initial = model.initials[((q + r) % k) as usize];
    let barrel = q / k;
    if barrel == 0 {
        format!("{initial}. {surname}")
    } else {
        let second = &model.surnames[((barrel - 1) % s) as usize];
        format!("{initial}. {surname}-{second}")
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn push_words(out: &mut String, vocab: &Vocab, n: usize, hapax: f64, rng: &mut Rng, sentence_mean: f64) {
    let mut left_in_sentence = 0usize;
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        let start = left_in_sentence == 0;
        if start {
            // Geometric sentence length with the bundled mean, at least 4 words.
            let p = 1.0 / sentence_mean.max(4.0);
            left_in_sentence = 4 + (rng.f64().max(1e-12).ln() / (1.0 - p).ln()) as usize;
        }
        let word: std::borrow::Cow<str> =
            if rng.chance(hapax) { pseudo_word(rng).into() } else { vocab.sample(rng).into() };
        if start && sentence_mean > 0.0 {
            let mut c = word.chars();
            if let Some(f) = c.next() {
                out.extend(f.to_uppercase());
                out.push_str(c.as_str());
            }
        } else {
            out.push_str(&word);
        }
        left_in_sentence -= 1;
        if (left_in_sentence == 0 || i + 1 == n) && sentence_mean > 0.0 {
            out.push('.');
            left_in_sentence = 0;
        }
    }
}

struct Written {
    papers: u64,
    citations: u64,
    authors: u64,
    papers_bytes: u64,
    citations_bytes: u64,
    seconds: f64,
    first_day: Day,
    last_day: Day,
    max_citations: u32,
    lag_days_p10_p50_p90: [i64; 3],
}

fn generate(model: &Model, s: &Settings) -> std::io::Result<Written> {
    let started = Instant::now();
    std::fs::create_dir_all(&s.out)?;
    let gz = |name: &str| -> std::io::Result<GzEncoder<BufWriter<File>>> {
        let f = File::create(s.out.join(name))?;
        Ok(GzEncoder::new(BufWriter::with_capacity(1 << 20, f), Compression::fast()))
    };
    let mut papers_out = gz("papers.jsonl.gz")?;
    let mut cites_out = gz("citations_dated.tsv.gz")?;
    writeln!(cites_out, "citing_id\tcited_id\tciting_date\tcited_date")?;
    let mut rng = Rng::new(s.seed);

    let n = s.papers;
    let k = TOPICS.len() + 1;
    let span = (s.years * 365.25).round().max(1.0) as Day;
    let start = s.end - span;
    let months = (span as f64 / BUCKET_DAYS).ceil() as usize + 1;
    let day_str: Vec<String> = (start..=s.end + 366 * 20).map(dates::format).collect();
    let rt = model.growth * s.years;
    let grow = rt.exp_m1();
    // The ageing kernel per month of age: the log-normal density of the lag in days.
    let kernel: Vec<f64> = (0..months)
        .map(|m| {
            let x = (m as f64 + 0.5) * BUCKET_DAYS;
            let z = (x.ln() - model.lag_mu) / model.lag_sigma;
            (-0.5 * z * z).exp() / x
        })
        .collect();
    let refs_scale = s.refs_mean / model.out_degree_mean.max(1e-9);

    let mut day_of: Vec<Day> = Vec::with_capacity(n);
    let mut topic_of_paper: Vec<u8> = Vec::with_capacity(n);
    let mut cited_count: Vec<u32> = vec![0; n];
    // Attachment tickets per month: a paper's own A tickets plus one per citation received.
    let mut tickets_topic: Vec<Vec<Vec<u32>>> = vec![vec![Vec::new(); months]; k];
    let mut tickets_all: Vec<Vec<u32>> = vec![Vec::new(); months];
    let mut fitness: Vec<f32> = Vec::with_capacity(n);
    // Author slots (author, paper), per topic and all; only those of the last
    // --career-years are drawn from (the start of each list moves forward).
    let mut slots_topic: Vec<Vec<(u32, u32)>> = vec![Vec::new(); k];
    let mut slots_all: Vec<(u32, u32)> = Vec::new();
    let mut active_topic: Vec<usize> = vec![0; k];
    let mut active_all: usize = 0;
    let career = (s.career_years * 365.25) as Day;
    let mut next_author: u64 = 0;
    let mut weights = vec![0.0f64; months];
    let mut lag_sample: Vec<i64> = Vec::new();
    let mut queries: Vec<String> = Vec::new();
    let query_step = (n / s.queries.max(1)).max(1);
    let (mut title, mut abstract_text, mut line) = (String::new(), String::new(), Vec::<u8>::new());
    let mut citations: u64 = 0;

    for i in 0..n {
        let u = (i as f64 + 0.5) / n as f64;
        let t = if rt.abs() < 1e-9 { u } else { (1.0 + grow * u).ln() / rt };
        let day = start + (t * span as f64).floor() as Day;
        let month = (((day - start) as f64) / BUCKET_DAYS) as usize;
        let topic = model.topic_share.sample(&mut rng);
        day_of.push(day);
        topic_of_paper.push(topic as u8);
        let id = paper_id(i);
        // Fitness: log-normal with mean 1 (Bianconi–Barabási); it multiplies the tickets.
        let z = normal(&mut rng);
        let eta = (s.fitness_sigma * z - 0.5 * s.fitness_sigma * s.fitness_sigma).exp();
        fitness.push(eta as f32);

        // Authors.
        let cutoff = day - career;
        while slots_all.get(active_all).is_some_and(|x| day_of[x.1 as usize] < cutoff) {
            active_all += 1;
        }
        let list = &slots_topic[topic];
        while list.get(active_topic[topic]).is_some_and(|x| day_of[x.1 as usize] < cutoff) {
            active_topic[topic] += 1;
        }
        let team = model.team.0[model.team.1.sample(&mut rng)] as usize;
        let mut ids: Vec<u32> = Vec::with_capacity(team);
        for _ in 0..team {
            let mut pick = None;
            for _ in 0..5 {
                let pool = if rng.chance(SAME_TOPIC_AUTHOR) {
                    &slots_topic[topic][active_topic[topic]..]
                } else {
                    &slots_all[active_all..]
                };
                // A small pool (a topic's first months) would make its first authors
                // hubs: new authors until it holds MIN_AUTHOR_POOL slots.
                let a = if pool.len() < MIN_AUTHOR_POOL || rng.chance(model.new_author) {
                    next_author += 1;
                    (next_author - 1) as u32
                } else {
                    pool[rng.below(pool.len() as u64) as usize].0
                };
                if !ids.contains(&a) {
                    pick = Some(a);
                    break;
                }
            }
            let a = pick.unwrap_or_else(|| {
                next_author += 1;
                (next_author - 1) as u32
            });
            ids.push(a);
        }
        for &a in &ids {
            slots_topic[topic].push((a, i as u32));
            slots_all.push((a, i as u32));
        }
        let authors: Vec<String> = ids.iter().map(|&a| author_name(model, a as u64)).collect();

        // Title and abstract.
        title.clear();
        let tl = (model.title_len.0[model.title_len.1.sample(&mut rng)] as usize).max(1);
        push_words(&mut title, &model.titles[topic], tl, model.hapax_share, &mut rng, 0.0);
        if let Some(f) = title.chars().next() {
            let upper: String = f.to_uppercase().collect();
            title.replace_range(..f.len_utf8(), &upper);
        }
        abstract_text.clear();
        let al = (model.abstract_len.0[model.abstract_len.1.sample(&mut rng)] as usize).max(1);
        push_words(
            &mut abstract_text,
            &model.abstracts[topic],
            al,
            model.hapax_share,
            &mut rng,
            model.sentence_mean,
        );
        if i.is_multiple_of(query_step) && queries.len() < s.queries {
            let words: Vec<String> = title
                .split_whitespace()
                .map(|w| w.to_ascii_lowercase())
                .filter(|w| {
                    w.len() >= QUERY_WORD_MIN
                        && w.bytes().all(|b| b.is_ascii_lowercase())
                        && !STOP.contains(&w.as_str())
                })
                .collect();
            if words.len() >= 2 {
                let a = rng.below(words.len() as u64) as usize;
                let mut b = rng.below(words.len() as u64 - 1) as usize;
                if b >= a {
                    b += 1;
                }
                queries.push(format!("{} {}", words[a], words[b]));
            }
        }

        // References: preferential attachment with ageing, to strictly earlier papers.
        let drawn = model.out_degree.0[model.out_degree.1.sample(&mut rng)] as f64 * refs_scale;
        let mut want = drawn.floor() as usize + usize::from(rng.chance(drawn.fract()));
        want = want.min(i);
        let mut refs: Vec<u32> = Vec::with_capacity(want);
        if want > 0 {
            let mut cum_topic: Option<(Vec<f64>, f64)> = None;
            let mut cum_all: Option<(Vec<f64>, f64)> = None;
            for _ in 0..want {
                let same = rng.chance(model.same_topic_cite);
                let buckets = if same { &tickets_topic[topic] } else { &tickets_all };
                let cum = if same { &mut cum_topic } else { &mut cum_all };
                let (cum, total) = cum.get_or_insert_with(|| {
                    let mut total = 0.0;
                    for m in 0..=month {
                        total += kernel[month - m] * buckets[m].len() as f64;
                        weights[m] = total;
                    }
                    (weights[..=month].to_vec(), total)
                });
                if *total <= 0.0 {
                    continue;
                }
                for _ in 0..REF_TRIES {
                    let r = rng.f64() * *total;
                    let m = cum.partition_point(|&c| c <= r).min(month);
                    let bucket = &buckets[m];
                    if bucket.is_empty() {
                        continue;
                    }
                    let cited = bucket[rng.below(bucket.len() as u64) as usize];
                    if day_of[cited as usize] < day && !refs.contains(&cited) {
                        refs.push(cited);
                        break;
                    }
                }
            }
        }
        for &c in &refs {
            let c = c as usize;
            let cm = ((day_of[c] - start) as f64 / BUCKET_DAYS) as usize;
            for _ in 0..stochastic_round(fitness[c] as f64, &mut rng) {
                tickets_topic[topic_of_paper[c] as usize][cm].push(c as u32);
                tickets_all[cm].push(c as u32);
            }
            cited_count[c] += 1;
            let lag = (day - day_of[c]) as i64;
            if lag_sample.len() < 1_000_000 {
                lag_sample.push(lag);
            }
            writeln!(
                cites_out,
                "{id}\t{}\t{}\t{}",
                paper_id(c),
                day_str[(day - start) as usize],
                day_str[(day_of[c] - start) as usize]
            )?;
        }
        citations += refs.len() as u64;
        for _ in 0..stochastic_round(s.attract * eta, &mut rng) {
            tickets_topic[topic][month].push(i as u32);
            tickets_all[month].push(i as u32);
        }

        // Other fields.
        let revised: Vec<String> = if rng.chance(model.revised.0) {
            let lag = model.revised.1 .0[model.revised.1 .1.sample(&mut rng)] as Day;
            vec![day_str[(day - start + lag) as usize].clone()]
        } else {
            Vec::new()
        };
        let mut optional = |(share, pool): &(f64, Vocab)| {
            if rng.chance(*share) && pool.dist.total() > 0 {
                Some(pool.sample(&mut rng).to_string())
            } else {
                None
            }
        };
        let comments = optional(&model.comments);
        let journal_ref = optional(&model.journal_ref);
        let subject = optional(&model.subject);
        let record = OutPaper {
            id: &id,
            title: &title,
            authors: &authors,
            submitted_utc: &day_str[(day - start) as usize],
            revised_utc: &revised,
            comments: comments.as_deref(),
            journal_ref: journal_ref.as_deref(),
            subj_class: subject.as_deref(),
            abstract_text: &abstract_text,
        };
        line.clear();
        serde_json::to_writer(&mut line, &record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        papers_out.write_all(&line)?;
    }
    papers_out.finish()?.flush()?;
    cites_out.finish()?.flush()?;
    std::fs::write(s.out.join("queries.txt"), queries.join("\n") + "\n")?;
    lag_sample.sort_unstable();
    let pct = |p: f64| lag_sample.get(((lag_sample.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0);
    Ok(Written {
        papers: n as u64,
        citations,
        authors: next_author,
        papers_bytes: std::fs::metadata(s.out.join("papers.jsonl.gz"))?.len(),
        citations_bytes: std::fs::metadata(s.out.join("citations_dated.tsv.gz"))?.len(),
        seconds: started.elapsed().as_secs_f64(),
        first_day: day_of.first().copied().unwrap_or(start),
        last_day: day_of.last().copied().unwrap_or(start),
        max_citations: cited_count.iter().copied().max().unwrap_or(0),
        lag_days_p10_p50_p90: [pct(0.1), pct(0.5), pct(0.9)],
    })
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn parse_args() -> Result<Settings, String> {
    let mut s = Settings {
        papers: 30_000,
        seed: 1,
        out: PathBuf::new(),
        refs_mean: 10.0,
        years: 11.33,
        end: dates::from_ymd(2003, 4, 30),
        attract: 1.0,
        fitness_sigma: 0.3,
        career_years: 3.0,
        data: Path::new(env!("CARGO_MANIFEST_DIR")).join("data"),
        queries: 2_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--bench" {
            continue;
        }
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        let bad = |e: &dyn std::fmt::Display| format!("{a}: {e}");
        match a.as_str() {
            "--papers" => s.papers = value()?.replace('_', "").parse().map_err(|e| bad(&e))?,
            "--seed" => s.seed = value()?.parse().map_err(|e| bad(&e))?,
            "--out" => s.out = PathBuf::from(value()?),
            "--refs-mean" => s.refs_mean = value()?.parse().map_err(|e| bad(&e))?,
            "--years" => s.years = value()?.parse().map_err(|e| bad(&e))?,
            "--end" => {
                s.end = dates::parse(&value()?).ok_or_else(|| format!("{a}: not a YYYY-MM-DD date"))?
            }
            "--attract" => s.attract = value()?.parse().map_err(|e| bad(&e))?,
            "--fitness-sigma" => s.fitness_sigma = value()?.parse().map_err(|e| bad(&e))?,
            "--career-years" => s.career_years = value()?.parse().map_err(|e| bad(&e))?,
            "--data" => s.data = PathBuf::from(value()?),
            "--queries" => s.queries = value()?.parse().map_err(|e| bad(&e))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if s.out.as_os_str().is_empty() {
        return Err("--out DIR is required".into());
    }
    if s.papers == 0 || s.papers > 99_999_999 {
        return Err("--papers must be 1..=99999999".into());
    }
    if s.years <= 0.0 || s.career_years <= 0.0 || s.fitness_sigma < 0.0 || s.attract <= 0.0 {
        return Err("--years and --career-years must be positive, --fitness-sigma not negative".into());
    }
    Ok(s)
}

fn run(s: &Settings) {
    let started = Instant::now();
    let model = fit(&s.data);
    let fit_s = started.elapsed().as_secs_f64();
    println!("fitted on {} in {fit_s:.1} s: {}", s.data.display(), model.facts);
    let w = generate(&model, s).expect("write the corpus");
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "generated {} papers, {} citations ({:.2} per paper), {} authors, {} .. {}, in {:.1} s \
         ({:.0} papers/s); papers.jsonl.gz {:.1} MB, citations_dated.tsv.gz {:.1} MB; most cited paper: {} \
         citations; citation lag p10/p50/p90 {:?} days; peak RSS {:.0} MB",
        w.papers,
        w.citations,
        w.citations as f64 / w.papers as f64,
        w.authors,
        dates::format(w.first_day),
        dates::format(w.last_day),
        w.seconds,
        w.papers as f64 / w.seconds,
        mb(w.papers_bytes),
        mb(w.citations_bytes),
        w.max_citations,
        w.lag_days_p10_p50_p90,
        status_kb("VmHWM:") as f64 / 1024.0
    );
    let summary = serde_json::json!({
        "settings": {
            "papers": s.papers, "seed": s.seed, "refs_mean": s.refs_mean, "years": s.years,
            "end": dates::format(s.end), "attract": s.attract, "fitness_sigma": s.fitness_sigma,
            "career_years": s.career_years,
        },
        "fitted": model.facts,
        "written": {
            "papers": w.papers, "citations": w.citations, "authors": w.authors,
            "first_day": dates::format(w.first_day), "last_day": dates::format(w.last_day),
            "papers_jsonl_gz_bytes": w.papers_bytes, "citations_tsv_gz_bytes": w.citations_bytes,
            "most_cited": w.max_citations, "lag_days_p10_p50_p90": w.lag_days_p10_p50_p90,
            "generation_seconds": w.seconds, "fit_seconds": fit_s,
        },
    });
    let text = serde_json::to_string_pretty(&summary).expect("serialise the summary");
    std::fs::write(s.out.join("corpus.json"), text + "\n").expect("write corpus.json");
    println!("wrote {}", s.out.display());
}

/// `cargo test --benches`: a small corpus, generated twice, checked.
fn self_check() {
    let tmp = tempfile::tempdir().expect("a temporary dir");
    let model = fit(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data"));
    let settings = |out: PathBuf| Settings {
        papers: 3_000,
        seed: 7,
        out,
        refs_mean: 10.0,
        years: 11.33,
        end: dates::from_ymd(2003, 4, 30),
        attract: 1.0,
        fitness_sigma: 0.3,
        career_years: 3.0,
        data: PathBuf::new(),
        queries: 100,
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let w = generate(&model, &settings(a.clone())).expect("generate");
    generate(&model, &settings(b.clone())).expect("generate again");
    for f in ["papers.jsonl.gz", "citations_dated.tsv.gz", "queries.txt"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs between runs"
        );
    }
    let mut text = String::new();
    MultiGzDecoder::new(File::open(a.join("papers.jsonl.gz")).unwrap()).read_to_string(&mut text).unwrap();
    let mut days: HashMap<String, String> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let id = v["id"].as_str().expect("an id").to_string();
        assert_eq!(id, paper_id(i));
        assert!(!v["title"].as_str().unwrap().is_empty() && !v["authors"].as_array().unwrap().is_empty());
        days.insert(id, v["submitted_utc"].as_str().unwrap().to_string());
    }
    assert_eq!(days.len(), 3_000, "ids are unique");
    text.clear();
    MultiGzDecoder::new(File::open(a.join("citations_dated.tsv.gz")).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut pairs = HashSet::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        assert!(f[1] < f[0], "{line}: cites a later id");
        assert!(f[3] < f[2], "{line}: the cited paper is not older");
        assert_eq!((days[f[0]].as_str(), days[f[1]].as_str()), (f[2], f[3]));
        assert!(pairs.insert((f[0].to_string(), f[1].to_string())), "{line}: twice");
    }
    assert_eq!(pairs.len() as u64, w.citations);
    let mean = w.citations as f64 / 3_000.0;
    assert!((5.0..=12.0).contains(&mean), "{mean} references per paper");
    println!("gen_corpus self-check: 3,000 papers, {} citations, deterministic", w.citations);
}

fn main() {
    if !common::bench_mode() {
        self_check();
        return;
    }
    match parse_args() {
        Ok(s) => run(&s),
        Err(e) => {
            eprintln!("gen_corpus: {e}\nusage: cargo bench --bench gen_corpus -- --papers N [--seed S] --out DIR \
                       [--refs-mean 10] [--years 11.33] [--end 2003-04-30] [--attract 1] [--fitness-sigma 0.3] [--career-years 3] [--data data] [--queries 2000]");
            std::process::exit(2);
        }
    }
}
