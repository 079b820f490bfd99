//! Per-author statistics as of any date without walking the author's papers: sorted
//! citation days and prefix sums by paper date, built once per corpus. An author key
//! shared by many papers (a common surname and initial, or a flood of imported papers)
//! used to cost a walk over all of its papers for each of them, quadratic in its paper
//! count; here each figure is a binary search, and the figures are exactly those of the
//! walk (`tests` below compare them on every paper).
//!
//! A citation of one of the author's papers `q` by paper `r` counts by the cutoff `a`
//! when both are dated by then: `max(day q, day r) <= a`. Almost always `r` is the later
//! paper, so the author's citation days, sorted, answer "how many by `a`" with one
//! search; the few citations from a paper dated before the one it cites (a later
//! version citing forward) are kept apart, sorted by the cited paper's day.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::corpus::{AuthorNo, Corpus, PaperNo};
use super::task::{Labels, TaskSpec};
use crate::dates::Day;

/// Rows of variable length in one allocation (a vector per author costs more than
/// its contents for the many authors with one paper).
#[derive(Debug, Default)]
struct Rows<T> {
    start: Vec<usize>,
    items: Vec<T>,
}

impl<T> Rows<T> {
    fn new() -> Self {
        Rows { start: vec![0], items: Vec::new() }
    }

    fn end_row(&mut self) {
        self.start.push(self.items.len());
    }

    fn row(&self, i: usize) -> &[T] {
        &self.items[self.start[i]..self.start[i + 1]]
    }
}

/// The running sum `row` holds over its first `j` entries (0 for none).
fn upto<T: Copy + Default>(row: &[T], j: usize) -> T {
    if j == 0 {
        T::default()
    } else {
        row[j - 1]
    }
}

/// Co-author counts above which an author's collaborators' citations are answered from
/// one sorted list (built on first use) instead of one search per collaborator.
const HUB_DEGREE: usize = 64;

/// What [`AuthorIndex::stats`] reports; see `features.rs` for how features use it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AuthorStats {
    pub papers: f64,
    pub citations: f64,
    pub recent_citations: f64,
    pub max_citations: f64,
    pub h_index: f64,
    pub age_years: f64,
    pub high_impact: f64,
    pub hi182: f64,
    pub e182_mean: f64,
    pub r182_mean: f64,
    pub first_day: Option<Day>,
}

/// Per-author lookups over one corpus.
pub struct AuthorIndex {
    corpus: Arc<Corpus>,
    /// Per author: the days of their papers (in `author_papers` order, oldest first).
    days: Rows<Day>,
    /// Per author, per paper: running sums over their papers up to it (inclusive) of the
    /// six-month count, its cohort rank (summed in paper order, as a walk would), papers
    /// ranked in their cohort's top 10 % and papers labelled highly cited.
    c182_sum: Rows<u64>,
    r182_sum: Rows<f64>,
    hi182_sum: Rows<u32>,
    high_sum: Rows<u32>,
    /// Per author: citing days of citations not earlier than the cited paper, sorted.
    cites: Rows<Day>,
    /// Per author: (cited day, citing day) of citations from an earlier paper, sorted.
    forward: Rows<(Day, Day)>,
    /// Per author: their papers with at least one citation, as (citations ever, paper),
    /// most cited first: the most cited paper and the h-index by any date are found by
    /// scanning this until no paper left can change them.
    by_final: Rows<(u32, PaperNo)>,
    /// Per author: each co-author with the day of their first joint paper, by that day.
    coauthors: Rows<(Day, AuthorNo)>,
    /// Per hub author: the days from which each citation of each co-author counts toward
    /// the collaborators' citations (max of the first joint day and the citation's own
    /// day), sorted.
    hubs: Mutex<HashMap<AuthorNo, Arc<Vec<Day>>>>,
    /// When a paper's early wait ends and its label becomes public.
    spec: TaskSpec,
}

impl AuthorIndex {
    pub fn new(
        corpus: Arc<Corpus>,
        c182: &[u32],
        r182: &[f32],
        labels: &Labels,
        spec: &TaskSpec,
    ) -> AuthorIndex {
        let c = &*corpus;
        let authors = c.author_papers.len();
        let mut days = Rows::new();
        let (mut c182_sum, mut r182_sum, mut hi182_sum, mut high_sum) =
            (Rows::new(), Rows::new(), Rows::new(), Rows::new());
        let (mut cites, mut forward, mut by_final, mut coauthors) =
            (Rows::new(), Rows::new(), Rows::new(), Rows::new());
        let mut seen: HashSet<AuthorNo> = HashSet::new();
        for au in 0..authors {
            let papers = &c.author_papers[au];
            let (mut cs, mut rs, mut hs, mut ls) = (0u64, 0f64, 0u32, 0u32);
            let mut row_cites = Vec::new();
            let mut row_forward = Vec::new();
            let mut row_final = Vec::new();
            seen.clear();
            for &q in papers {
                let qi = q as usize;
                let qd = c.day[qi];
                days.items.push(qd);
                cs += u64::from(c182[qi]);
                rs += f64::from(r182[qi]);
                hs += u32::from(r182[qi] >= 0.9);
                ls += u32::from(labels.label[qi] == Some(true));
                c182_sum.items.push(cs);
                r182_sum.items.push(rs);
                hi182_sum.items.push(hs);
                high_sum.items.push(ls);
                let list = &c.cited_by[qi];
                for &(rd, _) in list {
                    if rd >= qd {
                        row_cites.push(rd);
                    } else {
                        row_forward.push((qd, rd));
                    }
                }
                if !list.is_empty() {
                    row_final.push((list.len() as u32, q));
                }
                for &x in &c.authors[qi] {
                    if x as usize != au && seen.insert(x) {
                        coauthors.items.push((qd, x));
                    }
                }
            }
            row_cites.sort_unstable();
            row_forward.sort_unstable();
            row_final.sort_unstable_by(|x, y| y.cmp(x));
            by_final.items.extend(row_final);
            cites.items.extend(row_cites);
            forward.items.extend(row_forward);
            days.end_row();
            c182_sum.end_row();
            r182_sum.end_row();
            hi182_sum.end_row();
            high_sum.end_row();
            cites.end_row();
            forward.end_row();
            by_final.end_row();
            coauthors.end_row();
        }
        AuthorIndex {
            corpus,
            days,
            c182_sum,
            r182_sum,
            hi182_sum,
            high_sum,
            cites,
            forward,
            by_final,
            coauthors,
            hubs: Mutex::new(HashMap::new()),
            spec: spec.clone(),
        }
    }

    /// Citations of `author`'s papers dated by `a`, made by papers dated by `a`.
    pub fn citations(&self, author: AuthorNo, a: Day) -> u64 {
        let au = author as usize;
        let normal = self.cites.row(au).partition_point(|d| *d <= a);
        let forward = self.forward.row(au).partition_point(|(qd, _)| *qd <= a);
        (normal + forward) as u64
    }

    /// As [`Self::citations`], leaving out the citations of paper `exclude`.
    pub fn citations_without(&self, author: AuthorNo, a: Day, exclude: PaperNo) -> u64 {
        let all = self.citations(author, a);
        if self.position(author, exclude, a).is_some() {
            all - self.corpus.citations_by(exclude, a) as u64
        } else {
            all
        }
    }

    /// As [`Self::citations`], made by papers dated in `from..=a`.
    fn citations_since(&self, author: AuthorNo, from: Day, a: Day) -> u64 {
        let au = author as usize;
        let row = self.cites.row(au);
        let normal = row.partition_point(|d| *d <= a) - row.partition_point(|d| *d < from);
        // A forward citation made on or after `from` cites a paper dated after `from`.
        let fwd = self.forward.row(au);
        let lo = fwd.partition_point(|(qd, _)| *qd <= from);
        let hi = fwd.partition_point(|(qd, _)| *qd <= a);
        let forward = fwd[lo.min(hi)..hi].iter().filter(|(_, rd)| *rd >= from).count();
        (normal + forward) as u64
    }

    /// Where `q` stands among `author`'s papers, if it is one of them dated by `a`.
    fn position(&self, author: AuthorNo, q: PaperNo, a: Day) -> Option<usize> {
        if self.corpus.day[q as usize] > a {
            return None;
        }
        self.corpus.author_papers[author as usize].binary_search(&q).ok()
    }

    /// Statistics of `author`'s papers dated by `a`, leaving out `exclude`.
    pub fn stats(&self, author: AuthorNo, a: Day, exclude: Option<PaperNo>, r182: &[f32]) -> AuthorStats {
        let c = &*self.corpus;
        let au = author as usize;
        let papers = &c.author_papers[au];
        let days = self.days.row(au);
        let k = days.partition_point(|d| *d <= a);
        let pos = exclude.and_then(|q| self.position(author, q, a));
        let excluded = pos.map(|j| papers[j]);
        let mut s =
            AuthorStats { papers: (k - usize::from(excluded.is_some())) as f64, ..Default::default() };
        let mut citations = self.citations(author, a);
        let mut recent = self.citations_since(author, a - 364, a);
        if let Some(q) = excluded {
            citations -= c.citations_by(q, a) as u64;
            recent -= c.citations_between(q, a - 364, a) as u64;
        }
        s.citations = citations as f64;
        s.recent_citations = recent as f64;

        // Early-wait figures of the papers whose wait ended by `a` (a prefix: the end is
        // monotone in the paper's day).
        let k2 = days.partition_point(|d| self.spec.early_end(*d) <= a);
        let (mut n2, mut e_sum, mut hi) =
            (k2, upto(self.c182_sum.row(au), k2), upto(self.hi182_sum.row(au), k2));
        let r_sum = match pos.filter(|&j| j < k2) {
            None => upto(self.r182_sum.row(au), k2),
            Some(j) => {
                // Sum as the walk does: everything before the paper, then the rest in order.
                let qi = papers[j] as usize;
                n2 -= 1;
                e_sum -= upto(self.c182_sum.row(au), j + 1) - upto(self.c182_sum.row(au), j);
                hi -= u32::from(r182[qi] >= 0.9);
                let mut sum = upto(self.r182_sum.row(au), j);
                for &q in &papers[j + 1..k2] {
                    sum += f64::from(r182[q as usize]);
                }
                sum
            }
        };
        if n2 > 0 {
            s.e182_mean = e_sum as f64 / n2 as f64;
            s.r182_mean = r_sum / n2 as f64;
        }
        s.hi182 = f64::from(hi);

        // Labels become public in date order too.
        let k3 = days.partition_point(|d| self.spec.label_known(*d) <= a);
        let mut high = upto(self.high_sum.row(au), k3);
        if let Some(j) = pos.filter(|&j| j < k3) {
            high -= upto(self.high_sum.row(au), j + 1) - upto(self.high_sum.row(au), j);
        }
        s.high_impact = f64::from(high);

        s.first_day = match pos {
            Some(0) if k > 1 => Some(days[1]),
            Some(0) => None,
            _ if k > 0 => Some(days[0]),
            _ => None,
        };
        s.age_years = s.first_day.map(|d| (a - d) as f64 / 365.0).unwrap_or(0.0);

        // Most cited paper and h-index by `a`, over the papers most cited in the end first:
        // once a paper's final count is at most the h-index so far, neither it nor any
        // later one can raise the h-index or the maximum (which is at least the h-index).
        // `top` holds the `h` largest counts so far, smallest on top.
        let (mut h, mut most) = (0usize, 0usize);
        let mut top: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = Default::default();
        for &(ever, q) in self.by_final.row(au) {
            if ever as usize <= h {
                break;
            }
            if Some(q) == excluded || c.day[q as usize] > a {
                continue;
            }
            let n = c.citations_by(q, a);
            most = most.max(n);
            if n > h {
                top.push(std::cmp::Reverse(n));
                if top.peek().is_some_and(|m| m.0 > h) {
                    h += 1;
                } else {
                    top.pop();
                }
            }
        }
        s.max_citations = most as f64;
        s.h_index = h as f64;
        s
    }

    /// Distinct co-authors of `author` on papers dated by `a`, and the citations their
    /// papers received by `a` (each co-author's as in [`Self::citations`]), summed.
    pub fn collaborators(&self, author: AuthorNo, a: Day) -> (usize, u64) {
        let row = self.coauthors.row(author as usize);
        let degree = row.partition_point(|(d, _)| *d <= a);
        if row.len() <= HUB_DEGREE {
            let sum = row[..degree].iter().map(|&(_, x)| self.citations(x, a)).sum();
            return (degree, sum);
        }
        let counted = self.hub(author);
        (degree, counted.partition_point(|d| *d <= a) as u64)
    }

    /// For a hub author: per co-author citation, the day from which it counts.
    fn hub(&self, author: AuthorNo) -> Arc<Vec<Day>> {
        if let Some(v) = self.hubs.lock().ok().and_then(|h| h.get(&author).cloned()) {
            return v;
        }
        let mut out = Vec::new();
        for &(joint, x) in self.coauthors.row(author as usize) {
            let xi = x as usize;
            out.extend(self.cites.row(xi).iter().map(|d| (*d).max(joint)));
            out.extend(self.forward.row(xi).iter().map(|(qd, _)| (*qd).max(joint)));
        }
        out.sort_unstable();
        let out = Arc::new(out);
        if let Ok(mut h) = self.hubs.lock() {
            h.insert(author, out.clone());
        }
        out
    }
}

/// The walks over an author's papers that [`AuthorIndex`] replaces: the definitions its
/// figures must equal, kept for the tests and for `benches/author_hub.rs`, which times
/// both. Not used by the server.
#[doc(hidden)]
pub mod reference {
    use super::*;

    /// The walk over an author's papers this index replaces (the definition).
    #[allow(clippy::too_many_arguments)]
    pub fn stats_by_walk(
        c: &Corpus,
        spec: &TaskSpec,
        c182: &[u32],
        r182: &[f32],
        labels: &Labels,
        author: u32,
        a: Day,
        exclude: Option<PaperNo>,
    ) -> AuthorStats {
        let papers = &c.author_papers[author as usize];
        let k = papers.partition_point(|&q| c.day[q as usize] <= a);
        let mut s = AuthorStats::default();
        let mut counts = Vec::new();
        let (mut e182, mut rr): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
        for &q in &papers[..k] {
            if Some(q) == exclude {
                continue;
            }
            let qd = c.day[q as usize];
            let cites = c.citations_by(q, a);
            counts.push(cites);
            s.papers += 1.0;
            s.citations += cites as f64;
            s.recent_citations += c.citations_between(q, a - 364, a) as f64;
            if spec.early_end(qd) <= a {
                e182.push(c182[q as usize] as f64);
                rr.push(r182[q as usize] as f64);
                if r182[q as usize] >= 0.9 {
                    s.hi182 += 1.0;
                }
            }
            if spec.label_known(qd) <= a && labels.label[q as usize] == Some(true) {
                s.high_impact += 1.0;
            }
            if s.first_day.is_none() {
                s.first_day = Some(qd);
            }
        }
        let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
        counts.sort_unstable_by(|x, y| y.cmp(x));
        s.max_citations = counts.first().copied().unwrap_or(0) as f64;
        s.h_index = counts.iter().enumerate().take_while(|(i, c)| **c > *i).count() as f64;
        s.age_years = s.first_day.map(|d| (a - d) as f64 / 365.0).unwrap_or(0.0);
        s.e182_mean = mean(&e182);
        s.r182_mean = mean(&rr);
        s
    }

    pub fn collaborators_by_walk(c: &Corpus, author: u32, a: Day) -> (usize, u64) {
        let mut co = HashSet::new();
        for &q in &c.author_papers[author as usize] {
            if c.day[q as usize] > a {
                break;
            }
            co.extend(c.authors[q as usize].iter().copied().filter(|&x| x != author));
        }
        let cites = |x: u32| -> u64 {
            c.author_papers[x as usize]
                .iter()
                .take_while(|&&q| c.day[q as usize] <= a)
                .map(|&q| c.citations_by(q, a) as u64)
                .sum()
        };
        (co.len(), co.iter().map(|&x| cites(x)).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::reference::{collaborators_by_walk, stats_by_walk};
    use super::*;
    use crate::dates;
    use crate::forecast::task::{Resolution, Span};
    use crate::records::{AuthorRef, Citation, Paper};

    /// A corpus with one prolific author key (a hub with many co-authors), papers on
    /// shared days, citations both ways in time, and labels.
    fn synthetic() -> Corpus {
        let mut papers = Vec::new();
        let base = dates::from_ymd(1994, 1, 1);
        for i in 0..400u32 {
            let mut authors =
                vec![AuthorRef { raw: "J. Smith".into(), display: "J. Smith".into(), key: "smith_j".into() }];
            if i % 3 != 0 {
                let k = format!("co{}", i % 97);
                authors.push(AuthorRef { raw: k.clone(), display: k.clone(), key: k });
            }
            if i % 5 == 0 {
                let k = format!("other{}", i % 11);
                authors = vec![AuthorRef { raw: k.clone(), display: k.clone(), key: k }];
            }
            papers.push(Paper {
                id: format!("p{i}"),
                aliases: vec![],
                title: format!("Paper {i}"),
                authors,
                submitted: base + (i as Day * 13) % 2900,
                submitted_secs: None,
                revised: vec![],
                abstract_text: String::new(),
                subject: None,
                journal_ref: None,
                comments: None,
                report_no: None,
            });
        }
        let mut citations = Vec::new();
        for i in 0..400u32 {
            for k in 1..(i % 23) {
                let j = (i * 31 + k * 17) % 400;
                citations.push(Citation {
                    citing: format!("p{i}"),
                    cited: format!("p{j}"),
                    citing_date: 0,
                    cited_date: 0,
                });
            }
        }
        Corpus::build(papers, citations)
    }

    fn compare(c: Arc<Corpus>, spec: &TaskSpec) -> usize {
        let labels = Labels::compute(&c, spec);
        let n = c.len();
        let c182: Vec<u32> =
            (0..n).map(|p| c.citations_by(p as PaperNo, spec.early_end(c.day[p])) as u32).collect();
        let r182: Vec<f32> = (0..n).map(|p| ((p * 37) % 101) as f32 / 100.0).collect();
        let index = AuthorIndex::new(c.clone(), &c182, &r182, &labels, spec);
        let mut checked = 0;
        for p in 0..n {
            for a in [c.day[p] - 1, spec.early_end(c.day[p]), c.day[p] + 2000] {
                for &au in &c.authors[p] {
                    for exclude in [None, Some(p as PaperNo)] {
                        let want = stats_by_walk(&c, spec, &c182, &r182, &labels, au, a, exclude);
                        let got = index.stats(au, a, exclude, &r182);
                        // Bit for bit, NaN-free: `==` on every field.
                        assert_eq!(got, want, "paper {p} author {au} as of {a} exclude {exclude:?}");
                        assert_eq!(got.r182_mean.to_bits(), want.r182_mean.to_bits());
                    }
                    assert_eq!(
                        index.collaborators(au, a),
                        collaborators_by_walk(&c, au, a),
                        "author {au} as of {a}"
                    );
                    checked += 1;
                }
            }
        }
        checked
    }

    #[test]
    fn the_index_gives_the_walks_figures_bit_for_bit() {
        let c = Arc::new(synthetic());
        let hub = c.author_by_key["smith_j"] as usize;
        assert!(c.author_papers[hub].len() > 200);
        let index_rows = {
            let spec = TaskSpec::bundled();
            let labels = Labels::compute(&c, &spec);
            let zeros = vec![0u32; c.len()];
            let r = vec![0f32; c.len()];
            AuthorIndex::new(c.clone(), &zeros, &r, &labels, &spec).coauthors.row(hub).len()
        };
        assert!(index_rows > HUB_DEGREE, "the hub path is exercised");
        let mut forward = 0;
        for p in 0..c.len() {
            forward += c.cited_by[p].iter().filter(|(d, _)| *d < c.day[p]).count();
        }
        assert!(forward > 100, "citations from earlier papers are exercised ({forward})");
        assert!(compare(c.clone(), &TaskSpec::bundled()) > 1000);
        // Calendar-month and whole-year windows keep the prefix searches exact too.
        let months =
            TaskSpec { label_window: Span::Months(24), early_wait: Span::Months(6), ..TaskSpec::bundled() };
        assert!(compare(c.clone(), &months) > 1000);
        let years = TaskSpec { resolution: Resolution::Year, ..months };
        assert!(compare(c, &years) > 1000);
    }

    #[test]
    fn the_index_matches_the_walk_on_the_fixture_corpus() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let c =
            Corpus::from_files(&[fixtures.join("papers.jsonl"), fixtures.join("citations.tsv.gz")]).unwrap();
        assert!(compare(Arc::new(c), &TaskSpec::bundled()) > 500);
    }
}
