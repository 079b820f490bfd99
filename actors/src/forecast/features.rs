//! Features of a paper as of a date. Every feature reads only data dated on or before
//! the as-of date `A` (papers submitted by `A`, citations made by `A`), and the text
//! vocabulary and embedding are fitted on training papers only; `tests/leakage.rs`
//! proves it by comparing against a corpus truncated at `A`. Definitions and the reason
//! each cannot leak are in `docs/features.md`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::authors::{AuthorIndex, AuthorStats};
use super::corpus::{AuthorNo, Corpus, PaperNo};
use super::task::{Labels, Mode, Resolution, TaskSpec};
use super::text::{self, TextModel};
use crate::dates::{self, Day};

/// Feature groups, for ablations and the documentation.
pub const GROUPS: &[&str] = &["author", "network", "velocity", "topic", "references", "temporal"];

/// (name, group) of every feature a mode uses, in model input order. At most 50 each.
pub fn feature_names(mode: Mode) -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<(&str, &str)> = Vec::new();
    if mode == Mode::Early {
        v.extend([
            ("e_c30", "velocity"),
            ("e_c91", "velocity"),
            ("e_c182", "velocity"),
            ("e_acc", "velocity"),
            ("e_nonself", "velocity"),
            ("e_selfshare", "velocity"),
            ("e_cit_auth", "velocity"),
            ("e_citer_prom_max", "velocity"),
            ("e_citer_prom_mean", "velocity"),
            ("e_citer_cit_sum", "velocity"),
            ("e_coh_p90", "velocity"),
            ("e_rel_p90", "velocity"),
            ("e_rel_mean", "velocity"),
            ("e_rank", "velocity"),
        ]);
    }
    v.extend([
        ("a_sum_citrec", "author"),
        ("a_max_citrec", "author"),
        ("a_max_cit", "author"),
        ("a_max_h", "author"),
        ("a_max_np", "author"),
        ("a_max_age", "author"),
        ("a_sum_hi", "author"),
        ("a_sum_hi182", "author"),
        ("a_max_e182mean", "author"),
        ("a_max_r182mean", "author"),
        ("n_auth", "author"),
        ("frac_new_auth", "author"),
        ("co_deg_max", "network"),
        ("co_deg_sum", "network"),
        ("co_collab_max", "network"),
        ("co_collab_sum", "network"),
        ("n_refs", "references"),
        ("ref_cit_mean", "references"),
        ("ref_rcit_mean", "references"),
        ("ref_rcit_max", "references"),
        ("ref_rcit_sum", "references"),
        ("ref_age_med", "references"),
        ("ref_frac_recent", "references"),
        ("ref_frac_hot", "references"),
        ("t_heat_mean", "topic"),
        ("t_heat_top5", "topic"),
        ("t_growth_mean", "topic"),
        ("t_pop_mean", "topic"),
        ("t_frac_new", "topic"),
        ("t_topic_age", "topic"),
    ]);
    let emb = if mode == Mode::Early { 2 } else { text::EMBED_DIMS };
    v.extend(EMBED_NAMES.iter().take(emb).map(|n| (*n, "topic")));
    v.extend([
        ("n_terms", "topic"),
        ("abs_len", "topic"),
        ("doy", "temporal"),
        ("tod_sin1", "temporal"),
        ("tod_cos1", "temporal"),
        ("tod_sin2", "temporal"),
        ("tod_cos2", "temporal"),
    ]);
    if mode == Mode::AtPublication {
        v.extend([("title_len", "temporal"), ("weekend", "temporal")]);
        v.extend(COUPLING_NAMES.iter().map(|n| (*n, "references")));
    } else {
        // Early forecasts lean on velocity; these add little there and keep it within 50.
        v.retain(|(n, _)| !["a_max_np", "a_max_age", "co_deg_sum", "co_collab_sum"].contains(n));
    }
    debug_assert!(v.len() <= 50);
    v
}

const EMBED_NAMES: [&str; 6] = ["emb0", "emb1", "emb2", "emb3", "emb4", "emb5"];

/// Bibliographic coupling with the papers of the year before the month of the cutoff
/// (at_publication only).
const COUPLING_NAMES: [&str; 5] = ["bc_n", "bc_z", "bc_ztop", "bc_hot", "bc_hot_n"];

/// Coupling features are zero when the window holds fewer papers than this (as in the study).
const COUPLING_MIN_WINDOW: usize = 22;

/// `bc_ztop` averages over this many most-coupled window papers.
const COUPLING_TOP: usize = 10;

/// The as-of date for a paper submitted on `t0`: the day before for `at_publication`
/// (nothing from its own day, so same-day papers don't see each other; with year-only
/// dates nothing from its own year), the end of the early wait for `early`
/// ([`TaskSpec::cutoff`]).
pub fn cutoff(spec: &TaskSpec, mode: Mode, t0: Day) -> Day {
    spec.cutoff(mode, t0)
}

/// Per-term statistics of the year before the start of one month.
struct TermSnapshot {
    /// Smoothed mean log-citations of the window's papers containing the term, minus the
    /// window mean ("is this term in well-cited papers lately").
    heat: Vec<f32>,
    /// log((df last 182 days + 1) / (df the 183 days before + 1)).
    growth: Vec<f32>,
    df: Vec<u32>,
}

/// A window paper sharing references with the subject.
struct Coupled {
    q: PaperNo,
    shared: usize,
    /// `shared / sqrt(max(|R_p|, 1) · max(|R_q|, 1))`.
    cos: f64,
    z: f64,
}

/// The papers of the year before the start of one month, for bibliographic coupling.
/// Papers are in date order, so the window is the paper-number range `lo..lo + z.len()`.
struct CouplingSnapshot {
    lo: PaperNo,
    /// Per window paper: log1p(citations received before the month start) minus the mean
    /// of the same over the window's papers submitted in the same calendar month.
    z: Vec<f64>,
    /// The 0.9 quantile of `z` (linear interpolation, as numpy's default): "hot" papers
    /// have `z` at or above it.
    hot: f64,
}

/// The paper features are computed for: one in the corpus, or a new one being scored.
pub struct Subject<'s> {
    pub day: Day,
    pub secs: Option<u32>,
    /// Authors known to the corpus (`None`: an author with no history).
    pub authors: Vec<Option<AuthorNo>>,
    pub refs: Vec<PaperNo>,
    pub title: &'s str,
    pub abstract_text: &'s str,
    pub terms: Vec<u32>,
    /// The paper's own number, excluded from its authors' history.
    pub own: Option<PaperNo>,
    pub cited_by: &'s [(Day, PaperNo)],
}

/// Everything derived from the corpus once, so one paper's features take microseconds.
pub struct FeatureContext {
    pub corpus: Arc<Corpus>,
    pub text: Arc<TextModel>,
    /// The task the features serve: as-of dates, windows, labels.
    spec: TaskSpec,
    labels: Labels,
    /// Citations in the early wait (182 days in the bundled task).
    c182: Vec<u32>,
    /// Mid-rank of `c182` among papers of the preceding year (known at the end of the
    /// early wait).
    r182: Vec<f32>,
    /// Term ids per paper (from the fitted vocabulary).
    terms: Vec<Vec<u32>>,
    /// Per term: days of the papers containing it, ascending.
    term_days: Vec<Vec<Day>>,
    snapshots: Mutex<HashMap<Day, Arc<TermSnapshot>>>,
    /// Early-wait counts of the year up to a day (inclusive), by day: every corpus day at
    /// construction, others (new papers) as they are asked for.
    cohorts: Mutex<HashMap<Day, Arc<CohortHist>>>,
    /// Per paper: references to papers dated on or before it (forward references).
    forward_refs: Vec<u32>,
    coupling: Mutex<HashMap<Day, Arc<CouplingSnapshot>>>,
    /// Author statistics by binary search (see `authors.rs`).
    authors: AuthorIndex,
}

/// Sorts paper numbers ascending: a radix sort (11 bits a pass, as many passes as the
/// largest number needs: two below 4M papers) for long lists, the comparison sort for
/// short ones. Coupling sorts the citers of a paper's references, tens of thousands when
/// it cites a classic; the comparison sort of those was 45 % of a 1M-paper warm-up (perf).
fn sort_paper_numbers(v: &mut Vec<PaperNo>) {
    const RADIX_FROM: usize = 1024;
    const BITS: u32 = 11;
    if v.len() < RADIX_FROM {
        v.sort_unstable();
        return;
    }
    let max = v.iter().copied().max().unwrap_or(0);
    let mut buf = vec![0 as PaperNo; v.len()];
    let mut starts = [0usize; 1 << BITS];
    let mut shift = 0;
    while shift < PaperNo::BITS && (shift == 0 || max >> shift != 0) {
        let digit = |x: PaperNo| ((x >> shift) & ((1 << BITS) - 1)) as usize;
        starts.fill(0);
        for &x in v.iter() {
            starts[digit(x)] += 1;
        }
        let mut at = 0;
        for s in starts.iter_mut() {
            let n = *s;
            *s = at;
            at += n;
        }
        for &x in v.iter() {
            let slot = &mut starts[digit(x)];
            buf[*slot] = x;
            *slot += 1;
        }
        std::mem::swap(v, &mut buf);
        shift += BITS;
    }
}

fn log1p(x: f64) -> f64 {
    x.ln_1p()
}

fn month_start(day: Day) -> Day {
    let (y, m, _) = dates::to_ymd(day);
    dates::from_ymd(y, m, 1)
}

impl FeatureContext {
    pub fn new(corpus: Arc<Corpus>, text: Arc<TextModel>, spec: &TaskSpec) -> FeatureContext {
        let n = corpus.len();
        let spec = spec.clone();
        let labels = Labels::compute(&corpus, &spec);
        let c182: Vec<u32> =
            (0..n).map(|p| corpus.citations_by(p as PaperNo, spec.early_end(corpus.day[p])) as u32).collect();
        // Papers are in date order, so each cohort is a contiguous range; its counts are
        // kept as a histogram per submission day (comparing every paper with its whole
        // year was quadratic: minutes at a few hundred thousand papers).
        let cohorts = CohortHist::by_day(&corpus.day, &c182, spec.year_days());
        let mut r182 = vec![0.5f32; n];
        for p in 0..n {
            let h = &cohorts[&corpus.day[p]];
            let (below, equal) = h.below_equal(c182[p] as usize);
            r182[p] = (below as f32 + 0.5 * equal as f32) / h.n.max(1) as f32;
        }
        let terms: Vec<Vec<u32>> =
            (0..n).map(|p| text.term_ids(&corpus.title[p], &corpus.abstract_text[p])).collect();
        let mut term_days = vec![Vec::new(); text.vocab_len()];
        for (p, ts) in terms.iter().enumerate() {
            for &t in ts {
                term_days[t as usize].push(corpus.day[p]);
            }
        }
        let forward_refs = (0..n)
            .map(|p| {
                corpus.refs[p].iter().filter(|&&r| corpus.day[r as usize] <= corpus.day[p]).count() as u32
            })
            .collect();
        let authors = AuthorIndex::new(corpus.clone(), &c182, &r182, &labels, &spec);
        FeatureContext {
            spec,
            authors,
            corpus,
            text,
            labels,
            c182,
            r182,
            terms,
            term_days,
            snapshots: Mutex::new(HashMap::new()),
            cohorts: Mutex::new(cohorts.into_iter().map(|(d, h)| (d, Arc::new(h))).collect()),
            forward_refs,
            coupling: Mutex::new(HashMap::new()),
        }
    }

    /// Term statistics over papers submitted in the year before `start` (a month start).
    fn snapshot(&self, start: Day) -> Arc<TermSnapshot> {
        if let Some(s) = self.snapshots.lock().expect("snapshot lock").get(&start) {
            return s.clone();
        }
        let c = &*self.corpus;
        let lo = c.day.partition_point(|d| *d < start - 365);
        let hi = c.day.partition_point(|d| *d < start);
        let mid = c.day.partition_point(|d| *d < start - 182);
        let v = self.text.vocab_len();
        let mut df = vec![0u32; v];
        let mut recent = vec![0u32; v];
        let mut sum = vec![0f64; v];
        let lc: Vec<f64> = (lo..hi).map(|p| log1p(c.citations_by(p as PaperNo, start - 1) as f64)).collect();
        let mu = if lc.is_empty() { 0.0 } else { lc.iter().sum::<f64>() / lc.len() as f64 };
        for p in lo..hi {
            for &t in &self.terms[p] {
                df[t as usize] += 1;
                sum[t as usize] += lc[p - lo];
                if p >= mid {
                    recent[t as usize] += 1;
                }
            }
        }
        let heat = (0..v).map(|t| ((sum[t] + 10.0 * mu) / (df[t] as f64 + 10.0) - mu) as f32).collect();
        let growth = (0..v)
            .map(|t| (((recent[t] + 1) as f64) / ((df[t] - recent[t] + 1) as f64)).ln() as f32)
            .collect();
        let snap = Arc::new(TermSnapshot { heat, growth, df });
        self.snapshots.lock().expect("snapshot lock").insert(start, snap.clone());
        snap
    }

    /// Age-adjusted citations of the papers submitted in the year before `start` (a month
    /// start), counted from citations made before `start`.
    fn coupling_snapshot(&self, start: Day) -> Arc<CouplingSnapshot> {
        if let Some(s) = self.coupling.lock().expect("coupling lock").get(&start) {
            return s.clone();
        }
        let c = &*self.corpus;
        let lo = c.day.partition_point(|d| *d < start - 365);
        let hi = c.day.partition_point(|d| *d < start);
        let lc: Vec<f64> = (lo..hi).map(|q| log1p(c.citations_by(q as PaperNo, start - 1) as f64)).collect();
        // Subtract each calendar month's mean; a month's papers are a contiguous run.
        let mut z = lc.clone();
        let mut i = 0;
        while i < z.len() {
            let month = month_start(c.day[lo + i]);
            let j = i + (lo + i..hi).take_while(|&q| month_start(c.day[q]) == month).count();
            let mu = lc[i..j].iter().sum::<f64>() / (j - i) as f64;
            z[i..j].iter_mut().for_each(|x| *x -= mu);
            i = j;
        }
        let mut sorted = z.clone();
        sorted.sort_by(f64::total_cmp);
        let snap = Arc::new(CouplingSnapshot { lo: lo as PaperNo, z, hot: quantile_f64(&sorted, 0.9) });
        self.coupling.lock().expect("coupling lock").insert(start, snap.clone());
        snap
    }

    /// Bibliographic coupling of a subject (references `refs`, dated by `a`) with the
    /// papers of the year before the month of `a`: through the window papers citing each
    /// reference, no scan of the window.
    fn coupling_features(&self, s: &Subject, refs: &[PaperNo], a: Day, f: &mut HashMap<&'static str, f64>) {
        let c = &*self.corpus;
        for name in COUPLING_NAMES {
            f.insert(name, 0.0);
        }
        let start = month_start(a);
        let snap = self.coupling_snapshot(start);
        if snap.z.len() < COUPLING_MIN_WINDOW {
            return;
        }
        let mut rp = refs.to_vec();
        rp.sort_unstable();
        rp.dedup();
        // Per window paper: references shared, counted through the window papers citing
        // each reference as a forward reference (reference dated on or before the citer).
        // The citers are gathered and counted by sorting them: as cheap as the citations
        // walked, where a counter per window paper cost the whole window (~100k papers a
        // year at 1M) for every paper scored.
        let mut citers: Vec<PaperNo> = Vec::new();
        for &r in &rp {
            let list = &c.cited_by[r as usize];
            let from = list.partition_point(|(d, _)| *d < start - 365);
            let dr = c.day[r as usize];
            for &(d, q) in list[from..].iter().take_while(|(d, _)| *d < start) {
                if d >= dr && Some(q) != s.own {
                    citers.push(q);
                }
            }
        }
        sort_paper_numbers(&mut citers);
        let np = rp.len().max(1) as f64;
        // In window order, as the sums below were always taken.
        let mut coupled: Vec<Coupled> = citers
            .chunk_by(|a, b| a == b)
            .map(|run| {
                let (q, k) = (run[0], run.len());
                let nq = self.forward_refs[q as usize].max(1) as f64;
                Coupled { q, shared: k, cos: k as f64 / (np * nq).sqrt(), z: snap.z[(q - snap.lo) as usize] }
            })
            .collect();
        // Cosine-weighted mean z (0 when nothing is coupled).
        let weighted = |v: &[Coupled]| {
            let w: f64 = v.iter().map(|x| x.cos).sum();
            if w > 0.0 {
                v.iter().map(|x| x.cos * x.z).sum::<f64>() / w
            } else {
                0.0
            }
        };
        f.insert("bc_n", log1p(coupled.len() as f64));
        f.insert("bc_z", weighted(&coupled));
        let hot: f64 = coupled.iter().filter(|x| x.z >= snap.hot).map(|x| x.cos).sum();
        // `0.0 +`: an empty float sum is −0.0.
        f.insert("bc_hot", log1p(0.0 + hot));
        let hot_n = coupled.iter().filter(|x| x.z >= snap.hot && x.shared >= 2).count();
        f.insert("bc_hot_n", log1p(hot_n as f64));
        // The most coupled, ties to the older paper.
        let order = |x: &Coupled, y: &Coupled| y.cos.total_cmp(&x.cos).then(x.q.cmp(&y.q));
        if coupled.len() > COUPLING_TOP {
            coupled.select_nth_unstable_by(COUPLING_TOP - 1, order);
            coupled.truncate(COUPLING_TOP);
        }
        coupled.sort_by(order);
        f.insert("bc_ztop", weighted(&coupled));
    }

    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    pub fn spec(&self) -> &TaskSpec {
        &self.spec
    }

    /// Citations of `p` in its early wait (its first 182 days in the bundled task).
    pub fn c182(&self, p: PaperNo) -> u32 {
        self.c182[p as usize]
    }

    /// Statistics of one author's papers before the cutoff (excluding the paper itself).
    fn author_stats(&self, author: u32, a: Day, exclude: Option<PaperNo>) -> AuthorStats {
        self.authors.stats(author, a, exclude, &self.r182)
    }

    /// The features of corpus paper `p` in `mode`, in [`feature_names`] order.
    pub fn features(&self, p: PaperNo, mode: Mode) -> Vec<f32> {
        let c = &*self.corpus;
        let pi = p as usize;
        let subject = Subject {
            day: c.day[pi],
            secs: c.secs[pi],
            authors: c.authors[pi].iter().map(|a| Some(*a)).collect(),
            refs: c.refs[pi].clone(),
            title: &c.title[pi],
            abstract_text: &c.abstract_text[pi],
            terms: self.terms[pi].clone(),
            own: Some(p),
            cited_by: &c.cited_by[pi],
        };
        self.features_of(&subject, mode)
    }

    /// Term ids of a text under this context's vocabulary.
    pub fn term_ids(&self, title: &str, abstract_text: &str) -> Vec<u32> {
        self.text.term_ids(title, abstract_text)
    }

    /// The features of any subject, in [`feature_names`] order.
    pub fn features_of(&self, s: &Subject, mode: Mode) -> Vec<f32> {
        let c = &*self.corpus;
        let t0 = s.day;
        let a = self.spec.cutoff(mode, t0);
        let mut f: HashMap<&'static str, f64> = HashMap::with_capacity(64);

        // Authors.
        let authors = &s.authors;
        let stats: Vec<AuthorStats> = authors
            .iter()
            .map(|au| au.map(|au| self.author_stats(au, a, s.own)).unwrap_or_default())
            .collect();
        let max = |g: &dyn Fn(&AuthorStats) -> f64| stats.iter().map(g).fold(0.0, f64::max);
        let sum = |g: &dyn Fn(&AuthorStats) -> f64| stats.iter().map(g).sum::<f64>();
        f.insert("a_sum_citrec", log1p(sum(&|s| s.recent_citations)));
        f.insert("a_max_citrec", log1p(max(&|s| s.recent_citations)));
        f.insert("a_max_cit", log1p(max(&|s| s.citations)));
        f.insert("a_max_h", max(&|s| s.h_index));
        f.insert("a_max_np", log1p(max(&|s| s.papers)));
        f.insert("a_max_age", max(&|s| s.age_years));
        f.insert("a_sum_hi", sum(&|s| s.high_impact));
        f.insert("a_sum_hi182", sum(&|s| s.hi182));
        f.insert("a_max_e182mean", log1p(max(&|s| s.e182_mean)));
        f.insert("a_max_r182mean", max(&|s| s.r182_mean));
        f.insert("n_auth", log1p(authors.len() as f64));
        let new = stats.iter().filter(|s| s.papers == 0.0).count() as f64;
        f.insert("frac_new_auth", if authors.is_empty() { 0.0 } else { new / authors.len() as f64 });

        // Co-authorship network as of the cutoff: degree centrality and the citations
        // collected by each author's collaborators.
        let (mut deg_max, mut deg_sum, mut col_max, mut col_sum) = (0.0f64, 0.0, 0.0f64, 0.0);
        for &au in authors.iter().flatten() {
            let (degree, collab) = self.authors.collaborators(au, a);
            let collab = collab as f64;
            deg_max = deg_max.max(degree as f64);
            deg_sum += degree as f64;
            col_max = col_max.max(collab);
            col_sum += collab;
        }
        f.insert("co_deg_max", log1p(deg_max));
        f.insert("co_deg_sum", log1p(deg_sum));
        f.insert("co_collab_max", log1p(col_max));
        f.insert("co_collab_sum", log1p(col_sum));

        // References dated by the cutoff.
        let refs: Vec<PaperNo> = s.refs.iter().copied().filter(|&r| c.day[r as usize] <= a).collect();
        f.insert("n_refs", log1p(refs.len() as f64));
        if refs.is_empty() {
            for k in [
                "ref_cit_mean",
                "ref_rcit_mean",
                "ref_rcit_max",
                "ref_rcit_sum",
                "ref_frac_recent",
                "ref_frac_hot",
            ] {
                f.insert(k, 0.0);
            }
            f.insert("ref_age_med", 3.0);
        } else {
            let rc: Vec<f64> = refs.iter().map(|&r| c.citations_by(r, a) as f64).collect();
            let rrc: Vec<f64> = refs.iter().map(|&r| c.citations_between(r, a - 364, a) as f64).collect();
            let mut age: Vec<f64> =
                refs.iter().map(|&r| self.spec.years_between(c.day[r as usize], t0)).collect();
            age.sort_by(f64::total_cmp);
            let n = refs.len() as f64;
            f.insert("ref_cit_mean", rc.iter().map(|x| log1p(*x)).sum::<f64>() / n);
            f.insert("ref_rcit_mean", rrc.iter().map(|x| log1p(*x)).sum::<f64>() / n);
            f.insert("ref_rcit_max", log1p(rrc.iter().copied().fold(0.0, f64::max)));
            f.insert("ref_rcit_sum", log1p(rrc.iter().sum()));
            f.insert("ref_age_med", median(&age));
            f.insert("ref_frac_recent", age.iter().filter(|x| **x <= 1.0).count() as f64 / n);
            f.insert("ref_frac_hot", rrc.iter().filter(|x| **x >= 20.0).count() as f64 / n);
        }

        // Topic: the paper's terms in the year before the month of the cutoff.
        let terms = &s.terms;
        let snap = self.snapshot(month_start(a));
        let known: Vec<u32> = terms.iter().copied().filter(|&t| snap.df[t as usize] >= 3).collect();
        let mut heat: Vec<f64> = known.iter().map(|&t| snap.heat[t as usize] as f64).collect();
        heat.sort_by(f64::total_cmp);
        f.insert("t_heat_mean", mean(&heat));
        f.insert("t_heat_top5", mean(&heat[heat.len().saturating_sub(5)..]));
        let growth: Vec<f64> = known.iter().map(|&t| snap.growth[t as usize] as f64).collect();
        f.insert("t_growth_mean", mean(&growth));
        let pop: Vec<f64> = terms.iter().map(|&t| log1p(snap.df[t as usize] as f64)).collect();
        f.insert("t_pop_mean", mean(&pop));
        let unseen = terms.iter().filter(|&&t| snap.df[t as usize] == 0).count() as f64;
        f.insert("t_frac_new", if terms.is_empty() { 0.0 } else { unseen / terms.len() as f64 });
        // Years since each term first appeared (by the cutoff), capped at 5.
        let ages: Vec<f64> = terms
            .iter()
            .map(|&t| {
                let days = &self.term_days[t as usize];
                match days.first() {
                    Some(&d0) if d0 <= a => ((a - d0) as f64 / 365.0).min(5.0),
                    _ => 0.0,
                }
            })
            .collect();
        f.insert("t_topic_age", mean(&ages));
        let emb = self.text.embed(s.title, s.abstract_text);
        for (i, name) in EMBED_NAMES.iter().enumerate() {
            f.insert(name, emb.get(i).copied().unwrap_or(0.0) as f64);
        }
        f.insert("n_terms", log1p(terms.len() as f64));
        f.insert("abs_len", log1p(s.abstract_text.split_whitespace().count() as f64));
        f.insert("title_len", s.title.split_whitespace().count() as f64);

        // Temporal: with year-only dates the day, weekday and time are unknown (0).
        let day_known = self.spec.resolution == Resolution::Day;
        let (y, _, _) = dates::to_ymd(t0);
        let doy = if day_known { (t0 - dates::from_ymd(y, 1, 1)) as f64 / 365.0 } else { 0.0 };
        f.insert("doy", doy);
        f.insert("weekend", (day_known && (t0 + 3).rem_euclid(7) >= 5) as u8 as f64);
        let after = hours_after_deadline(t0, s.secs.filter(|_| day_known));
        for k in [1.0, 2.0] {
            let angle = 2.0 * std::f64::consts::PI * k * after / 24.0;
            f.insert(if k == 1.0 { "tod_sin1" } else { "tod_sin2" }, angle.sin());
            f.insert(if k == 1.0 { "tod_cos1" } else { "tod_cos2" }, angle.cos());
        }

        if mode == Mode::AtPublication {
            self.coupling_features(s, &refs, a, &mut f);
        }
        if mode == Mode::Early {
            self.velocity(s, a, &mut f);
        }
        feature_names(mode).iter().map(|(name, _)| f.get(name).copied().unwrap_or(0.0) as f32).collect()
    }

    /// Citation velocity in the early wait (`a`, its end, is the cutoff).
    fn velocity(&self, s: &Subject, a: Day, f: &mut HashMap<&'static str, f64>) {
        let c = &*self.corpus;
        let t0 = s.day;
        let cited_by = s.cited_by;
        let upto = |d: Day| cited_by.partition_point(|(x, _)| *x <= d.min(a));
        let k182 = upto(a);
        let c91 = upto(t0 + 91);
        f.insert("e_c30", log1p(upto(t0 + 30) as f64));
        f.insert("e_c91", log1p(c91 as f64));
        f.insert("e_c182", log1p(k182 as f64));
        f.insert("e_acc", k182 as f64 - 2.0 * c91 as f64);
        let own: HashSet<u32> = s.authors.iter().flatten().copied().collect();
        let citers: Vec<PaperNo> = cited_by[..k182].iter().map(|(_, q)| *q).collect();
        let self_cites =
            citers.iter().filter(|&&q| c.authors[q as usize].iter().any(|x| own.contains(x))).count();
        f.insert("e_nonself", log1p((k182 - self_cites) as f64));
        f.insert("e_selfshare", if k182 == 0 { 0.0 } else { self_cites as f64 / k182 as f64 });
        let citing_authors: HashSet<u32> = citers
            .iter()
            .flat_map(|&q| c.authors[q as usize].iter().copied())
            .filter(|x| !own.contains(x))
            .collect();
        f.insert("e_cit_auth", log1p(citing_authors.len() as f64));
        let prominence: Vec<f64> = citers
            .iter()
            .map(|&q| {
                c.authors[q as usize]
                    .iter()
                    .map(|&x| self.authors.citations_without(x, a, q) as f64)
                    .fold(0.0, f64::max)
            })
            .collect();
        f.insert("e_citer_prom_max", log1p(prominence.iter().copied().fold(0.0, f64::max)));
        let logs: Vec<f64> = prominence.iter().map(|x| log1p(*x)).collect();
        f.insert("e_citer_prom_mean", mean(&logs));
        f.insert("e_citer_cit_sum", log1p(citers.iter().map(|&q| c.citations_by(q, a) as f64).sum()));
        // The paper against its cohort: papers of the year before it, whose early-wait
        // counts are all known by the cutoff.
        let cohort = self.cohort(t0);
        let p90 = cohort.quantile(0.9);
        let avg = cohort.sum as f64 / cohort.n.max(1) as f64;
        f.insert("e_coh_p90", log1p(p90));
        f.insert("e_rel_p90", k182 as f64 / p90.max(1.0));
        f.insert("e_rel_mean", k182 as f64 / avg.max(0.1));
        let (below, equal) = cohort.below_equal(k182);
        f.insert("e_rank", (below as f64 + 0.5 * equal as f64) / cohort.n.max(1) as f64);
    }

    /// The early-wait counts of the papers of the year up to `t0` (inclusive).
    fn cohort(&self, t0: Day) -> Arc<CohortHist> {
        if let Some(h) = self.cohorts.lock().expect("cohort lock").get(&t0) {
            return h.clone();
        }
        let c = &*self.corpus;
        let lo = c.day.partition_point(|d| *d < t0 - self.spec.year_days());
        let hi = c.day.partition_point(|d| *d <= t0);
        let h = Arc::new(CohortHist::of(self.c182[lo..hi.max(lo)].iter().copied()));
        self.cohorts.lock().expect("cohort lock").insert(t0, h.clone());
        h
    }
}

/// A multiset of counts as sorted distinct values with cumulative multiplicities: ranks,
/// quantiles and the mean of a cohort without holding or sorting its members.
#[derive(Debug, Clone, PartialEq)]
struct CohortHist {
    /// (value, members with a value up to and including it), values ascending.
    cumulative: Vec<(u32, u64)>,
    n: u64,
    sum: u64,
}

impl CohortHist {
    fn of(values: impl IntoIterator<Item = u32>) -> CohortHist {
        let mut counts = std::collections::BTreeMap::new();
        for v in values {
            *counts.entry(v).or_insert(0u64) += 1;
        }
        CohortHist::from_counts(&counts)
    }

    fn from_counts(counts: &std::collections::BTreeMap<u32, u64>) -> CohortHist {
        let (mut n, mut sum) = (0u64, 0u64);
        let mut cumulative = Vec::with_capacity(counts.len());
        for (&v, &k) in counts {
            n += k;
            sum += u64::from(v) * k;
            cumulative.push((v, n));
        }
        CohortHist { cumulative, n, sum }
    }

    /// For every distinct day of `days` (ascending), the histogram of `values` of the
    /// papers dated in `[day - window, day]`, by one pass of a sliding window.
    fn by_day(days: &[Day], values: &[u32], window: Day) -> HashMap<Day, CohortHist> {
        let mut out = HashMap::new();
        let mut counts = std::collections::BTreeMap::new();
        let (mut lo, mut hi) = (0, 0);
        let mut i = 0;
        while i < days.len() {
            let day = days[i];
            while hi < days.len() && days[hi] <= day {
                *counts.entry(values[hi]).or_insert(0u64) += 1;
                hi += 1;
            }
            while lo < hi && days[lo] < day - window {
                let k = counts.get_mut(&values[lo]).expect("counted when it entered");
                *k -= 1;
                if *k == 0 {
                    counts.remove(&values[lo]);
                }
                lo += 1;
            }
            out.insert(day, CohortHist::from_counts(&counts));
            i = hi;
        }
        out
    }

    /// Members below `k` and equal to it.
    fn below_equal(&self, k: usize) -> (u64, u64) {
        let i = self.cumulative.partition_point(|&(v, _)| (v as usize) < k);
        let below = if i == 0 { 0 } else { self.cumulative[i - 1].1 };
        let upto = match self.cumulative.get(i) {
            Some(&(v, c)) if v as usize == k => c,
            _ => below,
        };
        (below, upto - below)
    }

    /// The member at position `i` of the sorted cohort.
    fn at(&self, i: u64) -> u32 {
        let j = self.cumulative.partition_point(|&(_, c)| c <= i);
        self.cumulative[j.min(self.cumulative.len() - 1)].0
    }

    /// As [`super::task::quantile`] of the sorted members (linear interpolation).
    fn quantile(&self, q: f64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let pos = q * (self.n - 1) as f64;
        let lo = pos.floor() as u64;
        let hi = (lo + 1).min(self.n - 1);
        let (a, b) = (self.at(lo) as f64, self.at(hi) as f64);
        a + (b - a) * (pos - lo as f64)
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// The `q` quantile of ascending values, interpolating linearly (numpy's default).
fn quantile_f64(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let (a, b, t) = (sorted[lo], sorted[hi], pos - lo as f64);
    // numpy's lerp, so values tied at the quantile compare the same way.
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    }
}

fn median(sorted: &[f64]) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let m = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[m - 1] + sorted[m]) / 2.0
    } else {
        sorted[m]
    }
}

/// Hours after arXiv's 16:00 US-Eastern daily deadline (papers just after it are listed
/// first the next day). US daylight time is approximated as April-October. 0 when the
/// time of day is unknown.
pub fn hours_after_deadline(day: Day, secs: Option<u32>) -> f64 {
    let Some(secs) = secs else { return 0.0 };
    let (_, m, _) = dates::to_ymd(day);
    let offset = if (4..=10).contains(&m) { 4.0 } else { 5.0 };
    let eastern = (secs as f64 / 3600.0 - offset).rem_euclid(24.0);
    (eastern - 16.0).rem_euclid(24.0)
}

/// Dated features of many papers, computed on all cores.
pub fn matrix(ctx: &FeatureContext, papers: &[PaperNo], mode: Mode) -> Vec<f32> {
    let d = feature_names(mode).len();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).max(1);
    let chunk = papers.len().div_ceil(threads).max(1);
    let mut out = vec![0f32; papers.len() * d];
    std::thread::scope(|s| {
        for (rows, ps) in out.chunks_mut(chunk * d).zip(papers.chunks(chunk)) {
            s.spawn(move || {
                for (row, &p) in rows.chunks_mut(d).zip(ps) {
                    row.copy_from_slice(&ctx.features(p, mode));
                }
            });
        }
    });
    out
}

/// Feature means and standard deviations (from training rows) used to standardise inputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Normaliser {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normaliser {
    pub fn fit(x: &[f32], d: usize) -> Normaliser {
        let n = (x.len() / d).max(1) as f64;
        let mut mean = vec![0f64; d];
        let mut sq = vec![0f64; d];
        for row in x.chunks(d) {
            for j in 0..d {
                mean[j] += row[j] as f64;
                sq[j] += (row[j] as f64).powi(2);
            }
        }
        let mean: Vec<f64> = mean.iter().map(|m| m / n).collect();
        let std =
            (0..d).map(|j| ((sq[j] / n - mean[j] * mean[j]).max(0.0).sqrt().max(1e-6)) as f32).collect();
        Normaliser { mean: mean.into_iter().map(|m| m as f32).collect(), std }
    }

    pub fn apply(&self, x: &mut [f32]) {
        let d = self.mean.len();
        for row in x.chunks_mut(d) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = ((*v - m) / s).clamp(-8.0, 8.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_numbers_sort_alike_by_radix_and_by_comparison() {
        let mut rng = crate::forecast::metrics::SplitMix(9);
        for len in [0usize, 1, 5, 511, 512, 513, 5_000, 70_000] {
            let mut v: Vec<PaperNo> = (0..len)
                .map(|i| match i % 4 {
                    0 => (rng.unit() * 1e3) as PaperNo,
                    1 => (rng.unit() * 4e9) as PaperNo,
                    2 => 65_535 + (i as PaperNo % 3),
                    _ => (rng.unit() * 2e6) as PaperNo,
                })
                .collect();
            let mut expected = v.clone();
            expected.sort_unstable();
            sort_paper_numbers(&mut v);
            assert_eq!(v, expected, "length {len}");
        }
    }

    #[test]
    fn cohort_histograms_agree_with_the_sorted_cohort() {
        // Days with gaps and repeats, counts with ties and a long tail.
        let days: Vec<Day> = (0..400).map(|i| (i * 7 / 3) as Day).collect();
        let values: Vec<u32> =
            (0..400u32).map(|i| (i * 37 % 11) * (i % 3) + u32::from(i % 50 == 0) * 90).collect();
        let window = 120;
        let hists = CohortHist::by_day(&days, &values, window);
        for (p, &day) in days.iter().enumerate() {
            let mut cohort: Vec<u32> = (0..days.len())
                .filter(|&q| days[q] >= day - window && days[q] <= day)
                .map(|q| values[q])
                .collect();
            cohort.sort_unstable();
            let h = &hists[&day];
            assert_eq!(*h, CohortHist::of(cohort.iter().copied()), "day {day}");
            assert_eq!(h.n as usize, cohort.len());
            for q in [0.0, 0.1, 0.5, 0.9, 0.99, 1.0] {
                assert_eq!(h.quantile(q), crate::forecast::task::quantile(&cohort, q), "day {day} q {q}");
            }
            for k in [0, 1, values[p] as usize, 5, 90, 1000] {
                let below = cohort.iter().filter(|v| (**v as usize) < k).count() as u64;
                let equal = cohort.iter().filter(|v| **v as usize == k).count() as u64;
                assert_eq!(h.below_equal(k), (below, equal), "day {day} k {k}");
            }
        }
        assert_eq!(CohortHist::of([]).quantile(0.9), 0.0);
    }

    fn fixture_context() -> FeatureContext {
        let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let corpus = Corpus::from_files(&[d.join("papers.jsonl"), d.join("citations.tsv.gz")]).unwrap();
        let docs: Vec<(&str, &str)> =
            (0..corpus.len()).map(|p| (corpus.title[p].as_str(), corpus.abstract_text[p].as_str())).collect();
        let text = Arc::new(TextModel::fit(&docs, 7));
        FeatureContext::new(Arc::new(corpus), text, &TaskSpec::bundled())
    }

    /// Column indexes of the coupling features in at_publication order.
    fn coupling_columns() -> Vec<usize> {
        let names = feature_names(Mode::AtPublication);
        COUPLING_NAMES.iter().map(|n| names.iter().position(|(m, _)| m == n).unwrap()).collect()
    }

    /// The coupling features straight from their definition, scanning every paper of the
    /// window (the study's way), before the log1p of the counts.
    fn coupling_by_scan(c: &Corpus, p: usize) -> [f64; 5] {
        let a = cutoff(&TaskSpec::bundled(), Mode::AtPublication, c.day[p]);
        let st = month_start(a);
        let win: Vec<usize> = (0..c.len()).filter(|&q| c.day[q] >= st - 365 && c.day[q] < st).collect();
        if win.len() < COUPLING_MIN_WINDOW {
            return [0.0; 5];
        }
        let lc: Vec<f64> = win
            .iter()
            .map(|&q| log1p(c.cited_by[q].iter().filter(|(d, _)| *d < st).count() as f64))
            .collect();
        let z: Vec<f64> = (0..win.len())
            .map(|i| {
                let same: Vec<f64> = (0..win.len())
                    .filter(|&j| month_start(c.day[win[j]]) == month_start(c.day[win[i]]))
                    .map(|j| lc[j])
                    .collect();
                lc[i] - mean(&same)
            })
            .collect();
        let mut sorted = z.clone();
        sorted.sort_by(f64::total_cmp);
        let hot = quantile_f64(&sorted, 0.9);
        let rp: HashSet<PaperNo> = c.refs[p].iter().copied().filter(|&r| c.day[r as usize] <= a).collect();
        let (mut n, mut w, mut wz, mut hot_cos, mut hot_n) = (0.0, 0.0, 0.0, 0.0, 0.0);
        let mut top: Vec<(f64, usize, f64)> = Vec::new();
        for (i, &q) in win.iter().enumerate() {
            let rq: Vec<PaperNo> =
                c.refs[q].iter().copied().filter(|&r| c.day[r as usize] <= c.day[q]).collect();
            let shared = rq.iter().filter(|r| rp.contains(r)).count();
            if shared == 0 {
                continue;
            }
            let cos = shared as f64 / ((rp.len().max(1) * rq.len().max(1)) as f64).sqrt();
            n += 1.0;
            w += cos;
            wz += cos * z[i];
            if z[i] >= hot {
                hot_cos += cos;
                if shared >= 2 {
                    hot_n += 1.0;
                }
            }
            top.push((cos, q, z[i]));
        }
        top.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        top.truncate(COUPLING_TOP);
        let tw: f64 = top.iter().map(|x| x.0).sum();
        let tz: f64 = top.iter().map(|x| x.0 * x.2).sum();
        let ratio = |num: f64, den: f64| if den > 0.0 { num / den } else { 0.0 };
        [n, ratio(wz, w), ratio(tz, tw), hot_cos, hot_n]
    }

    #[test]
    fn coupling_features_follow_their_definition() {
        let ctx = fixture_context();
        let c = &*ctx.corpus;
        let cols = coupling_columns();
        let mut coupled = 0;
        for p in 0..c.len() {
            let x = ctx.features(p as PaperNo, Mode::AtPublication);
            let [n, z, ztop, hot, hot_n] = coupling_by_scan(c, p);
            let want = [log1p(n), z, ztop, log1p(hot), log1p(hot_n)];
            for (k, &j) in cols.iter().enumerate() {
                assert!(
                    (x[j] as f64 - want[k]).abs() <= 1e-5 * (1.0 + want[k].abs()),
                    "{} {}: {} vs {}",
                    c.ids[p],
                    COUPLING_NAMES[k],
                    x[j],
                    want[k]
                );
            }
            coupled += (n > 0.0) as usize;
        }
        // Not vacuous: most fixture papers share references with the year before them.
        assert!(coupled >= 100, "only {coupled} coupled papers");
    }

    #[test]
    fn coupling_of_a_new_paper_matches_the_corpus_paper() {
        let ctx = fixture_context();
        let c = &*ctx.corpus;
        let cols = coupling_columns();
        let mut checked = 0;
        for p in 0..c.len() {
            let x = ctx.features(p as PaperNo, Mode::AtPublication);
            if x[cols[0]] == 0.0 {
                continue;
            }
            // As `ForecastService` scores a new paper: no own number, no citations; the
            // references in any order, repeated, and one dated after the cutoff (ignored).
            let mut refs: Vec<PaperNo> = c.refs[p].iter().rev().copied().collect();
            refs.push(refs[0]);
            refs.push((c.len() - 1) as PaperNo);
            let subject = Subject {
                day: c.day[p],
                secs: c.secs[p],
                authors: c.authors[p].iter().map(|a| Some(*a)).collect(),
                refs,
                title: &c.title[p],
                abstract_text: &c.abstract_text[p],
                terms: ctx.term_ids(&c.title[p], &c.abstract_text[p]),
                own: None,
                cited_by: &[],
            };
            let y = ctx.features_of(&subject, Mode::AtPublication);
            for &j in &cols {
                assert_eq!(x[j].to_bits(), y[j].to_bits(), "{} column {j}", c.ids[p]);
            }
            checked += 1;
        }
        assert!(checked >= 100, "only {checked} coupled papers");
    }

    #[test]
    fn coupling_features_do_not_look_past_the_cutoff() {
        let ctx = fixture_context();
        let c = &*ctx.corpus;
        let cols = coupling_columns();
        let mut checked = 0;
        for p in (0..c.len()).step_by(2) {
            let x = ctx.features(p as PaperNo, Mode::AtPublication);
            if x[cols[0]] == 0.0 {
                continue;
            }
            // The paper itself is known from its day; its features look only before it.
            let tctx = FeatureContext::new(Arc::new(c.truncated(c.day[p])), ctx.text.clone(), ctx.spec());
            let y = tctx.features(tctx.corpus.by_id[&c.ids[p]], Mode::AtPublication);
            for &j in &cols {
                assert_eq!(x[j].to_bits(), y[j].to_bits(), "{} column {j}", c.ids[p]);
            }
            checked += 1;
        }
        assert!(checked >= 50, "only {checked} coupled papers");
    }

    #[test]
    fn quantile_matches_numpy_linear() {
        // np.quantile([0, 1, 2, 3, 10], 0.9) == 7.2; np.quantile([1, 2], 0.25) == 1.25.
        assert!((quantile_f64(&[0.0, 1.0, 2.0, 3.0, 10.0], 0.9) - 7.2).abs() < 1e-12);
        assert_eq!(quantile_f64(&[1.0, 2.0], 0.25), 1.25);
        assert_eq!(quantile_f64(&[-1.5], 0.9), -1.5);
        assert_eq!(quantile_f64(&[], 0.9), 0.0);
    }
}
