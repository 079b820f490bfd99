//! Author statistics on a corpus with one hub author key (issue 17 item 7): 40,000
//! papers of which 10,000 share the key `smith_j` (as a flood of imported papers, or a
//! common surname and initial, would), each citing up to ten earlier papers.
//!
//! Run with `cargo bench --bench author_hub`. Prints, for every paper of the hub, the
//! author figures (statistics of each author and the co-authorship figures, as the
//! feature code asks for them) computed by the walk over the author's papers that the
//! server used before (`authors::reference`) and by the index (`AuthorIndex`), with the
//! speed-up; then the whole feature warm-up of the corpus (context and both modes'
//! features of every paper) with the index. Under `cargo test --benches` a tiny corpus
//! runs once.

mod common;

use std::sync::Arc;
use std::time::Instant;

use citecast_actors::dates::{self, Day};
use citecast_actors::forecast::authors::{reference, AuthorIndex};
use citecast_actors::forecast::corpus::{Corpus, PaperNo};
use citecast_actors::forecast::features::{cutoff, FeatureContext};
use citecast_actors::forecast::task::{Labels, Mode, TaskSpec};
use citecast_actors::forecast::text::TextModel;
use citecast_actors::records::{AuthorRef, Citation, Paper};

fn author(key: &str) -> AuthorRef {
    AuthorRef { raw: key.into(), display: key.into(), key: key.into() }
}

fn lcg(x: &mut u64) -> u64 {
    *x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *x >> 33
}

fn corpus(papers: usize, hub: usize) -> Corpus {
    let base = dates::from_ymd(1992, 1, 1);
    let span = 3650u64;
    let mut rng = 17u64;
    let mut list = Vec::with_capacity(papers);
    for i in 0..papers {
        let mut authors = Vec::new();
        if i % (papers / hub).max(1) == 0 {
            authors.push(author("smith_j"));
        }
        authors.push(author(&format!("a{}", lcg(&mut rng) % 5_000)));
        authors.push(author(&format!("b{}", lcg(&mut rng) % 20_000)));
        list.push(Paper {
            id: format!("p{i}"),
            aliases: vec![],
            title: format!("Paper {i} on topic {}", lcg(&mut rng) % 300),
            authors,
            submitted: base + (i as u64 * span / papers as u64) as Day,
            submitted_secs: None,
            revised: vec![],
            abstract_text: format!("words {} and {}", lcg(&mut rng) % 1000, lcg(&mut rng) % 1000),
            subject: None,
            journal_ref: None,
            comments: None,
            report_no: None,
        });
    }
    let mut citations = Vec::new();
    for i in 1..papers {
        for _ in 0..(lcg(&mut rng) % 11) {
            let j = lcg(&mut rng) as usize % i;
            citations.push(Citation {
                citing: format!("p{i}"),
                cited: format!("p{j}"),
                citing_date: 0,
                cited_date: 0,
            });
        }
    }
    Corpus::build(list, citations)
}

fn main() {
    let (n, hub) = if common::bench_mode() { (40_000, 10_000) } else { (600, 200) };
    let started = Instant::now();
    let c = Arc::new(corpus(n, hub));
    let hub_no = c.author_by_key["smith_j"];
    let hub_papers: Vec<PaperNo> = c.author_papers[hub_no as usize].clone();
    println!(
        "corpus: {} papers, {} citations, hub author with {} papers (built in {:.1} s)",
        c.len(),
        c.cited_by.iter().map(Vec::len).sum::<usize>(),
        hub_papers.len(),
        started.elapsed().as_secs_f64()
    );

    let spec = TaskSpec::bundled();
    let labels = Labels::compute(&c, &spec);
    let c182: Vec<u32> =
        (0..c.len()).map(|p| c.citations_by(p as PaperNo, spec.early_end(c.day[p])) as u32).collect();
    let r182: Vec<f32> = (0..c.len()).map(|p| ((p * 37) % 101) as f32 / 100.0).collect();
    let t = Instant::now();
    let index = AuthorIndex::new(c.clone(), &c182, &r182, &labels, &spec);
    println!("index build: {:.2} s", t.elapsed().as_secs_f64());

    // The figures the feature code asks for, per hub paper, in both modes.
    let mut checksum = (0.0f64, 0.0f64);
    let t = Instant::now();
    for &p in &hub_papers {
        for mode in Mode::ALL {
            let a = cutoff(&spec, mode, c.day[p as usize]);
            for &au in &c.authors[p as usize] {
                checksum.0 += index.stats(au, a, Some(p), &r182).h_index;
                checksum.0 += index.collaborators(au, a).1 as f64;
            }
        }
    }
    let indexed = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for &p in &hub_papers {
        for mode in Mode::ALL {
            let a = cutoff(&spec, mode, c.day[p as usize]);
            for &au in &c.authors[p as usize] {
                checksum.1 +=
                    reference::stats_by_walk(&c, &spec, &c182, &r182, &labels, au, a, Some(p)).h_index;
                checksum.1 += reference::collaborators_by_walk(&c, au, a).1 as f64;
            }
        }
    }
    let walked = t.elapsed().as_secs_f64();
    assert_eq!(checksum.0, checksum.1, "the index and the walk agree");
    let per = |s: f64| s * 1e6 / (hub_papers.len() * 2) as f64;
    println!(
        "hub papers' author figures, both modes: walk {walked:.2} s ({:.0} µs/paper-mode), index {indexed:.3} s ({:.1} µs/paper-mode): {:.0}x faster",
        per(walked),
        per(indexed),
        walked / indexed.max(1e-9)
    );

    // The warm-up's feature work with the index: context, then every paper in both modes.
    let docs: Vec<(&str, &str)> =
        (0..c.len()).map(|p| (c.title[p].as_str(), c.abstract_text[p].as_str())).collect();
    let text = Arc::new(TextModel::fit(&docs, 7));
    let t = Instant::now();
    let ctx = FeatureContext::new(c.clone(), text, &spec);
    let context = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut sum = 0.0f64;
    for p in 0..c.len() {
        for mode in Mode::ALL {
            sum += ctx.features(p as PaperNo, mode).iter().map(|v| *v as f64).sum::<f64>();
        }
    }
    println!(
        "feature warm-up: context {context:.2} s, features of all {} papers in both modes {:.2} s (checksum {sum:.3e})",
        c.len(),
        t.elapsed().as_secs_f64()
    );
}
