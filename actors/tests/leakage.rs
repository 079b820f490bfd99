//! Features as of a date must not depend on anything dated later: computing them on a
//! corpus truncated at the as-of date gives exactly the same values as on the full one.

use std::path::Path;
use std::sync::Arc;

use citecast_actors::forecast::corpus::Corpus;
use citecast_actors::forecast::features::{cutoff, feature_names, FeatureContext};
use citecast_actors::forecast::task::Mode;
use citecast_actors::forecast::text::TextModel;
use citecast_actors::ingest::{ingest_file, StoreSink};
use citecast_actors::store::{Store, StoreConfig};

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
    let docs: Vec<(&str, &str)> =
        (0..full.len()).map(|p| (full.title[p].as_str(), full.abstract_text[p].as_str())).collect();
    let text = Arc::new(TextModel::fit(&docs, 7));
    let full = Arc::new(full);
    let ctx = FeatureContext::new(full.clone(), text.clone());

    let mut compared = 0;
    for mode in Mode::ALL {
        let names = feature_names(mode);
        assert!(names.len() <= 50, "{mode:?} has {} features", names.len());
        for p in (0..full.len()).step_by(3) {
            // The paper itself is known from its submission day; at publication the
            // features then look only at data before that day.
            let a = cutoff(mode, full.day[p]).max(full.day[p]);
            let truncated = full.truncated(a);
            let tctx = FeatureContext::new(Arc::new(truncated), text.clone());
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
            compared += 1;
        }
    }
    assert_eq!(compared, 200);

    // The test can fail: a feature that peeks past its date differs on the truncated corpus.
    let p = full.by_id["hep-th/9711200"] as usize;
    let later = full.citations_by(p as u32, full.day[p] + 3650);
    let at = full.citations_by(p as u32, cutoff(Mode::Early, full.day[p]));
    assert!(later > at, "the fixture has citations after the cutoff, so truncation matters");
}
