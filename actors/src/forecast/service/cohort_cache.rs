//! The cohort score tables kept on disk, so a restart on unchanged data scores nothing.
//!
//! A model's table holds its raw score of every corpus paper at the paper's own as-of
//! date: a function of the model and the corpus alone. Filling it is most of a warm-up
//! (every paper's features and one model call each: minutes at a million papers), and
//! before this every start did it again. A table is saved once complete, as
//! `DIR/<collection>--<version>.scores`, and read back only for the same corpus (the
//! corpus digest, [`Corpus::digest`]) and the same number of papers; anything else is a
//! miss and the table is filled as before.
//!
//! Format (little-endian): the magic `CCSCORE1`, the digest (64 hex bytes), the paper
//! count (u64), then one f32 per paper (NaN: not scorable in the model's mode).

use std::path::{Path, PathBuf};

use super::*;

const MAGIC: &[u8; 8] = b"CCSCORE1";
const DIGEST_LEN: usize = 64;
const HEADER: usize = MAGIC.len() + DIGEST_LEN + 8;

/// The file of one model's table: names keep to `[A-Za-z0-9._-]`.
fn file_of(dir: &Path, collection: &str, version: &str) -> PathBuf {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect()
    };
    dir.join(format!("{}--{}.scores", clean(collection), clean(version)))
}

/// The table stored for `corpus`, if there is one and it is whole.
pub(super) fn load(dir: &Path, collection: &str, version: &str, corpus: &Corpus) -> Option<Vec<f32>> {
    let digest = corpus.digest().as_bytes();
    if digest.len() != DIGEST_LEN {
        return None;
    }
    let bytes = std::fs::read(file_of(dir, collection, version)).ok()?;
    let (head, body) = bytes.split_at_checked(HEADER)?;
    let n = u64::from_le_bytes(head[MAGIC.len() + DIGEST_LEN..].try_into().ok()?);
    if &head[..MAGIC.len()] != MAGIC
        || &head[MAGIC.len()..MAGIC.len() + DIGEST_LEN] != digest
        || n != corpus.len() as u64
        || body.len() as u64 != 4 * n
    {
        return None;
    }
    Some(body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Saves a complete table (atomically: a crash leaves the old file or the new one).
pub(super) fn save(
    dir: &Path,
    collection: &str,
    version: &str,
    corpus: &Corpus,
    scores: &[f32],
) -> std::io::Result<()> {
    if corpus.digest().len() != DIGEST_LEN || scores.len() != corpus.len() {
        return Ok(());
    }
    let mut bytes = Vec::with_capacity(HEADER + 4 * scores.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(corpus.digest().as_bytes());
    bytes.extend_from_slice(&(scores.len() as u64).to_le_bytes());
    for s in scores {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::create_dir_all(dir)?;
    crate::files::write_atomically(&file_of(dir, collection, version), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{AuthorRef, Citation, Paper};

    fn paper(id: &str, day: Day, title: &str) -> Paper {
        Paper {
            id: id.into(),
            aliases: Vec::new(),
            title: title.into(),
            authors: vec![AuthorRef { raw: "A".into(), display: "A".into(), key: "a".into() }],
            submitted: day,
            submitted_secs: None,
            revised: Vec::new(),
            abstract_text: String::new(),
            subject: None,
            journal_ref: None,
            comments: None,
            report_no: None,
        }
    }

    fn corpus(title: &str, cite: bool) -> Corpus {
        let papers = vec![paper("p1", 10, "one"), paper("p2", 20, title)];
        let citations = if cite {
            vec![Citation { citing: "p2".into(), cited: "p1".into(), citing_date: 20, cited_date: 10 }]
        } else {
            Vec::new()
        };
        Corpus::build(papers, citations)
    }

    #[test]
    fn a_table_comes_back_only_for_the_same_corpus() {
        let dir = tempfile::tempdir().unwrap();
        let c = corpus("two", true);
        assert_eq!(c.digest().len(), DIGEST_LEN);
        assert!(load(dir.path(), "default", "m1", &c).is_none(), "nothing saved yet");
        save(dir.path(), "default", "m1", &c, &[0.25, f32::NAN]).unwrap();
        let back = load(dir.path(), "default", "m1", &c).unwrap();
        assert_eq!(back[0], 0.25);
        assert!(back[1].is_nan());
        // The same data built again: the same digest.
        assert!(load(dir.path(), "default", "m1", &corpus("two", true)).is_some());
        // Another model, another collection, a changed title, a lost citation: misses.
        assert!(load(dir.path(), "default", "m2", &c).is_none());
        assert!(load(dir.path(), "other", "m1", &c).is_none());
        assert!(load(dir.path(), "default", "m1", &corpus("2", true)).is_none());
        assert!(load(dir.path(), "default", "m1", &corpus("two", false)).is_none());
        // A torn file is a miss, not an error.
        let f = file_of(dir.path(), "default", "m1");
        let bytes = std::fs::read(&f).unwrap();
        std::fs::write(&f, &bytes[..bytes.len() - 2]).unwrap();
        assert!(load(dir.path(), "default", "m1", &c).is_none());
        // An odd version string stays inside the directory.
        assert!(file_of(dir.path(), "default", "../x/y").starts_with(dir.path()));
    }
}
