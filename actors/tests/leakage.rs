//! Features as of a date must not depend on anything dated later: computing them on a
//! corpus truncated at the as-of date gives exactly the same values as on the full one,
//! for the bundled hep-th fixture and for a year-only corpus with non-arXiv ids.

use std::path::Path;
use std::sync::Arc;

use citecast_actors::forecast::corpus::Corpus;
use citecast_actors::forecast::features::{cutoff, feature_names, FeatureContext};
use citecast_actors::forecast::task::{synthetic, Mode, Resolution, TaskOptions, TaskSpec};
use citecast_actors::forecast::text::TextModel;
use citecast_actors::ingest::{ingest_file, StoreSink};
use citecast_actors::records::{AuthorRef, Citation, Paper};
use citecast_actors::store::{Store, StoreConfig};

/// Compares every `step`-th paper's features on `full` and on `full` truncated at its
/// as-of date, in both modes; returns how many were compared.
fn compare_truncated(full: &Arc<Corpus>, spec: &TaskSpec, step: usize) -> usize {
    let docs: Vec<(&str, &str)> =
        (0..full.len()).map(|p| (full.title[p].as_str(), full.abstract_text[p].as_str())).collect();
    let text = Arc::new(TextModel::fit(&docs, 7));
    let ctx = FeatureContext::new(full.clone(), text.clone(), spec);
    let mut compared = 0;
    for mode in Mode::ALL {
        let names = feature_names(mode);
        assert!(names.len() <= 50, "{mode:?} has {} features", names.len());
        for p in (0..full.len()).step_by(step) {
            // The paper itself is known from its submission day; at publication the
            // features then look only at data before that day (before its year when
            // only years are known).
            let a = cutoff(spec, mode, full.day[p]).max(full.day[p]);
            let truncated = full.truncated(a);
            let tctx = FeatureContext::new(Arc::new(truncated), text.clone(), spec);
            let tp = tctx.corpus.by_id[&full.ids[p]];
            let (x, y) = (ctx.features(p as u32, mode), tctx.features(tp, mode));
            for (i, (u, v)) in x.iter().zip(&y).enumerate() {
                assert!(
                    u.to_bits() == v.to_bits(),
                    "{} {mode:?} {}: full {u} vs truncated {v}",
                    full.ids[p],
                    names[i].0
                );
            }
            if mode == Mode::AtPublication {
                // Stricter: only the paper itself and what is dated before it (nothing of
                // its own day; with year-only dates nothing of its own year).
                let sub = subset(full, |q| q == p || full.day[q] < full.day[p]);
                let sctx = FeatureContext::new(Arc::new(sub), text.clone(), spec);
                let z = sctx.features(sctx.corpus.by_id[&full.ids[p]], mode);
                for (i, (u, v)) in x.iter().zip(&z).enumerate() {
                    assert!(
                        u.to_bits() == v.to_bits(),
                        "{} {mode:?} {}: full {u} vs without its own date {v}",
                        full.ids[p],
                        names[i].0
                    );
                }
            }
            compared += 1;
        }
    }
    compared
}

/// The papers of `full` that `keep` selects, with the citations among them.
fn subset(full: &Corpus, keep: impl Fn(usize) -> bool) -> Corpus {
    let kept: Vec<usize> = (0..full.len()).filter(|&q| keep(q)).collect();
    let papers = kept.iter().map(|&q| Paper {
        id: full.ids[q].clone(),
        aliases: vec![],
        title: full.title[q].clone(),
        authors: full.authors[q]
            .iter()
            .map(|&a| {
                let key = full.author_keys[a as usize].clone();
                AuthorRef { raw: key.clone(), display: key.clone(), key }
            })
            .collect(),
        submitted: full.day[q],
        submitted_secs: full.secs[q],
        revised: vec![],
        abstract_text: full.abstract_text[q].clone(),
        subject: None,
        journal_ref: None,
        comments: None,
        report_no: None,
    });
    let citations = kept.iter().flat_map(|&q| {
        full.refs[q].iter().filter(|&&r| keep(r as usize)).map(move |&r| Citation {
            citing: full.ids[q].clone(),
            cited: full.ids[r as usize].clone(),
            citing_date: full.day[q],
            cited_date: full.day[r as usize],
        })
    });
    Corpus::build(papers.collect::<Vec<_>>(), citations.collect::<Vec<_>>())
}

#[test]
fn features_on_a_truncated_corpus_equal_features_on_the_full_one() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    let mut sink = StoreSink(Store::open(dir.path(), &StoreConfig::default()).unwrap());
    for f in ["papers.jsonl", "citations.tsv.gz"] {
        ingest_file(&fixtures.join(f), &mut sink, None).unwrap();
    }
    let full = Corpus::from_store(&sink.0).unwrap();
    assert_eq!(full.len(), 300);
    let full = Arc::new(full);
    let spec = TaskSpec::bundled();
    assert_eq!(compare_truncated(&full, &spec, 3), 200);

    // The test can fail: a feature that peeks past its date differs on the truncated corpus.
    let p = full.by_id["hep-th/9711200"] as usize;
    let later = full.citations_by(p as u32, full.day[p] + 3650);
    let at = full.citations_by(p as u32, cutoff(&spec, Mode::Early, full.day[p]));
    assert!(later > at, "the fixture has citations after the cutoff, so truncation matters");
}

#[test]
fn features_of_a_year_only_corpus_do_not_look_past_their_date() {
    // Every paper dated YYYY-07-01, ids like `10.1234/abc-17`, no times of day.
    let full = Arc::new(synthetic::year_only(1990..=2001, 25, 21));
    assert!(full.ids.iter().all(|id| id.starts_with("10.1234/abc-")));
    let spec = TaskSpec::derive(&full, &TaskOptions { min_positives: 2, ..TaskOptions::default() }).unwrap();
    assert_eq!(spec.resolution, Resolution::Year);
    assert_eq!(compare_truncated(&full, &spec, 4), 2 * 75);

    // Not vacuous: same-year citations exist, and the truncated corpus at publication
    // holds the paper's own year, which the features must not read.
    let p = full.ids.len() / 2;
    let same_year = full.cited_by[p].iter().filter(|(d, _)| *d == full.day[p]).count();
    let total: usize =
        (0..full.len()).map(|q| full.cited_by[q].iter().filter(|(d, _)| *d == full.day[q]).count()).sum();
    assert!(total > 50, "same-year citations: {total} ({same_year} for paper {p})");
}
