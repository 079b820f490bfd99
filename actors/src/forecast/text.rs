//! Text features fitted on training papers only: a term vocabulary (words and word
//! pairs seen in at least five training papers) for topic statistics, and a compact
//! embedding: hashed TF-IDF reduced to a few dimensions by a randomised SVD.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::metrics::SplitMix;

pub const EMBED_DIMS: usize = 6;
const HASH_DIMS: usize = 1 << 14;
const MIN_DF: u32 = 5;

const STOP: &[&str] = &[
    "the",
    "and",
    "for",
    "with",
    "that",
    "this",
    "are",
    "from",
    "which",
    "its",
    "can",
    "has",
    "have",
    "been",
    "our",
    "their",
    "these",
    "those",
    "into",
    "also",
    "than",
    "then",
    "such",
    "using",
    "use",
    "used",
    "two",
    "one",
    "new",
    "show",
    "shown",
    "given",
    "give",
    "gives",
    "find",
    "found",
    "where",
    "when",
    "while",
    "both",
    "more",
    "most",
    "other",
    "some",
    "there",
    "here",
    "they",
    "them",
    "not",
    "but",
    "all",
    "any",
    "only",
    "via",
    "between",
    "within",
    "under",
    "over",
    "about",
    "each",
    "per",
    "may",
    "how",
    "what",
    "who",
    "whose",
    "paper",
    "present",
    "study",
    "studied",
    "discuss",
    "discussed",
    "consider",
    "considered",
    "obtain",
    "obtained",
    "result",
    "results",
    "case",
    "cases",
    "way",
    "well",
    "much",
    "many",
    "very",
    "however",
    "thus",
    "therefore",
    "will",
    "would",
    "could",
    "should",
    "being",
    "were",
    "was",
    "had",
    "does",
    "did",
    "non",
    "first",
    "second",
];

fn is_stop(w: &str) -> bool {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> = std::sync::OnceLock::new();
    SET.get_or_init(|| STOP.iter().copied().collect()).contains(w)
}

/// Lower-cased words of 3+ characters (letters, digits, hyphens; starting with a letter),
/// with inline `$...$` maths removed and stop words dropped.
pub fn words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    let mut in_math = false;
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        let w = cur.trim_end_matches('-');
        if w.len() >= 3 && !is_stop(w) {
            out.push(w.to_string());
        }
        cur.clear();
    };
    for ch in lower.chars() {
        if ch == '$' {
            flush(&mut cur, &mut out);
            in_math = !in_math;
            continue;
        }
        if in_math {
            continue;
        }
        if ch.is_ascii_lowercase() || (!cur.is_empty() && (ch.is_ascii_digit() || ch == '-')) {
            cur.push(ch);
        } else {
            flush(&mut cur, &mut out);
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// The distinct terms of [`terms`] without a string each: `(word, "")` for a word,
/// `(first, second)` for the pair `first_second` (words hold no `_`, so equal parts are
/// equal terms).
fn term_parts(ws: &[String]) -> Vec<(&str, &str)> {
    let mut t: Vec<(&str, &str)> = ws.windows(2).map(|p| (p[0].as_str(), p[1].as_str())).collect();
    t.extend(ws.iter().map(|w| (w.as_str(), "")));
    t.sort_unstable();
    t.dedup();
    t
}

/// Distinct terms of a document: its words and adjacent word pairs.
pub fn terms(title: &str, abstract_text: &str) -> Vec<String> {
    let ws = words(&format!("{title} {abstract_text}"));
    let mut t: Vec<String> = ws.windows(2).map(|p| format!("{}_{}", p[0], p[1])).collect();
    t.extend(ws);
    t.sort_unstable();
    t.dedup();
    t
}

fn bucket(term: &str) -> usize {
    bucket_of(term.bytes())
}

/// [`bucket`] of the term `first_second` (or `first` when `second` is empty).
fn bucket_of_parts((first, second): (&str, &str)) -> usize {
    if second.is_empty() {
        return bucket(first);
    }
    bucket_of(first.bytes().chain(std::iter::once(b'_')).chain(second.bytes()))
}

fn bucket_of(bytes: impl Iterator<Item = u8>) -> usize {
    // FNV-1a: stable across runs and platforms, unlike the std hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % HASH_DIMS as u64) as usize
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextModel {
    vocab: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, u32>,
    /// Inverse document frequency per hash bucket.
    idf: Vec<f32>,
    /// `EMBED_DIMS` rows of `HASH_DIMS` weights.
    projection: Vec<f32>,
}

impl TextModel {
    /// Fits on training documents (title, abstract).
    pub fn fit(docs: &[(&str, &str)], seed: u64) -> TextModel {
        let doc_terms: Vec<Vec<String>> = docs.iter().map(|(t, a)| terms(t, a)).collect();
        let mut df: HashMap<&str, u32> = HashMap::new();
        for ts in &doc_terms {
            for t in ts {
                *df.entry(t.as_str()).or_default() += 1;
            }
        }
        let mut vocab: Vec<String> =
            df.iter().filter(|(_, c)| **c >= MIN_DF).map(|(t, _)| t.to_string()).collect();
        vocab.sort_unstable();
        let mut bdf = vec![0u32; HASH_DIMS];
        let rows: Vec<Vec<(usize, f32)>> = doc_terms.iter().map(|ts| hashed_tf(ts)).collect();
        for r in &rows {
            for (b, _) in r {
                bdf[*b] += 1;
            }
        }
        let n = docs.len().max(1) as f32;
        let idf: Vec<f32> = bdf.iter().map(|d| ((1.0 + n) / (1.0 + *d as f32)).ln() + 1.0).collect();
        let x: Vec<Vec<(usize, f32)>> = rows.into_iter().map(|r| weight(r, &idf)).collect();
        let projection = randomized_svd(&x, EMBED_DIMS, seed);
        let mut m = TextModel { vocab, index: HashMap::new(), idf, projection };
        m.reindex();
        m
    }

    /// Rebuilds the term index after deserialising.
    pub fn reindex(&mut self) {
        self.index = self.vocab.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    }

    pub fn vocab_len(&self) -> usize {
        self.vocab.len()
    }

    /// The vocabulary ids of a document's distinct terms, ascending. The vocabulary is
    /// sorted, so this is the order of the terms themselves; no string is made per term
    /// (it was most of a feature context's build).
    pub fn term_ids(&self, title: &str, abstract_text: &str) -> Vec<u32> {
        let ws = words(&format!("{title} {abstract_text}"));
        let mut ids: Vec<u32> = ws.iter().filter_map(|w| self.index.get(w.as_str()).copied()).collect();
        let mut pair = String::new();
        for p in ws.windows(2) {
            pair.clear();
            pair.push_str(&p[0]);
            pair.push('_');
            pair.push_str(&p[1]);
            if let Some(&id) = self.index.get(pair.as_str()) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The document's position in the learned topic space (unit length).
    pub fn embed(&self, title: &str, abstract_text: &str) -> Vec<f32> {
        let ws = words(&format!("{title} {abstract_text}"));
        let x = weight(count_buckets(term_parts(&ws).into_iter().map(bucket_of_parts)), &self.idf);
        let mut z: Vec<f32> = (0..EMBED_DIMS)
            .map(|k| x.iter().map(|(b, v)| v * self.projection[k * HASH_DIMS + b]).sum())
            .collect();
        let norm = z.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-9);
        z.iter_mut().for_each(|v| *v /= norm);
        z
    }
}

fn hashed_tf(terms: &[String]) -> Vec<(usize, f32)> {
    count_buckets(terms.iter().map(|t| bucket(t)))
}

/// Terms per hash bucket, by bucket.
fn count_buckets(buckets: impl Iterator<Item = usize>) -> Vec<(usize, f32)> {
    let mut m: HashMap<usize, f32> = HashMap::new();
    for b in buckets {
        *m.entry(b).or_default() += 1.0;
    }
    let mut v: Vec<(usize, f32)> = m.into_iter().collect();
    v.sort_unstable_by_key(|(b, _)| *b);
    v
}

/// Sublinear TF times IDF, L2-normalised.
fn weight(tf: Vec<(usize, f32)>, idf: &[f32]) -> Vec<(usize, f32)> {
    let mut v: Vec<(usize, f32)> = tf.into_iter().map(|(b, c)| (b, (1.0 + c.ln()) * idf[b])).collect();
    let norm = v.iter().map(|(_, x)| x * x).sum::<f32>().sqrt().max(1e-9);
    v.iter_mut().for_each(|(_, x)| *x /= norm);
    v
}

/// Orthonormalises the columns of `m` (rows x cols, row-major) in place (Gram-Schmidt).
fn orthonormalise(m: &mut [f64], rows: usize, cols: usize) {
    for j in 0..cols {
        for k in 0..j {
            let dot: f64 = (0..rows).map(|i| m[i * cols + j] * m[i * cols + k]).sum();
            for i in 0..rows {
                m[i * cols + j] -= dot * m[i * cols + k];
            }
        }
        let norm = (0..rows).map(|i| m[i * cols + j].powi(2)).sum::<f64>().sqrt().max(1e-12);
        for i in 0..rows {
            m[i * cols + j] /= norm;
        }
    }
}

/// Top-`k` right singular vectors of the sparse rows `x` (Halko et al.), as `k` rows of
/// `HASH_DIMS`. Deterministic for a seed.
fn randomized_svd(x: &[Vec<(usize, f32)>], k: usize, seed: u64) -> Vec<f32> {
    let l = k + 6;
    let n = x.len();
    let mut rng = SplitMix(seed);
    // Z: HASH_DIMS x l random, then Y = X Z (n x l), with two power iterations.
    let mut z: Vec<f64> = (0..HASH_DIMS * l).map(|_| rng.unit() * 2.0 - 1.0).collect();
    let mut y = vec![0f64; n * l];
    for _ in 0..3 {
        y.iter_mut().for_each(|v| *v = 0.0);
        for (i, row) in x.iter().enumerate() {
            for (b, v) in row {
                for j in 0..l {
                    y[i * l + j] += *v as f64 * z[b * l + j];
                }
            }
        }
        orthonormalise(&mut y, n, l);
        z.iter_mut().for_each(|v| *v = 0.0);
        for (i, row) in x.iter().enumerate() {
            for (b, v) in row {
                for j in 0..l {
                    z[b * l + j] += *v as f64 * y[i * l + j];
                }
            }
        }
        orthonormalise(&mut z, HASH_DIMS, l);
    }
    // B = Q^T X with Q = y (n x l): B is l x HASH_DIMS; its top right singular vectors
    // are the eigenvectors of B^T B, obtained from the small l x l matrix B B^T.
    let mut b = vec![0f64; l * HASH_DIMS];
    for (i, row) in x.iter().enumerate() {
        for (bk, v) in row {
            for j in 0..l {
                b[j * HASH_DIMS + bk] += y[i * l + j] * *v as f64;
            }
        }
    }
    let mut g = vec![0f64; l * l];
    for a in 0..l {
        for c in 0..=a {
            let dot: f64 = (0..HASH_DIMS).map(|t| b[a * HASH_DIMS + t] * b[c * HASH_DIMS + t]).sum();
            g[a * l + c] = dot;
            g[c * l + a] = dot;
        }
    }
    let (vals, vecs) = jacobi_eigen(&mut g, l);
    let mut order: Vec<usize> = (0..l).collect();
    order.sort_by(|a, b| vals[*b].total_cmp(&vals[*a]));
    let mut out = vec![0f32; k * HASH_DIMS];
    for (r, &e) in order.iter().take(k).enumerate() {
        let sigma = vals[e].max(1e-12).sqrt();
        // v = B^T u / sigma; fix the sign so the largest weight is positive.
        let mut v: Vec<f64> = (0..HASH_DIMS)
            .map(|t| (0..l).map(|a| b[a * HASH_DIMS + t] * vecs[a * l + e]).sum::<f64>() / sigma)
            .collect();
        let big = v.iter().copied().fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        if big < 0.0 {
            v.iter_mut().for_each(|x| *x = -*x);
        }
        for t in 0..HASH_DIMS {
            out[r * HASH_DIMS + t] = v[t] as f32;
        }
    }
    out
}

/// Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations; returns
/// (eigenvalues, eigenvectors as columns of a row-major matrix).
fn jacobi_eigen(a: &mut [f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _ in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |j| *j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off < 1e-18 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-30 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenises_like_the_study() {
        assert_eq!(
            words("Black-hole entropy in $AdS_5$ and the D-branes"),
            vec!["black-hole", "entropy", "d-branes"]
        );
        let t = terms("Black hole entropy", "");
        assert!(t.contains(&"black_hole".to_string()) && t.contains(&"entropy".to_string()));
    }

    #[test]
    fn jacobi_finds_eigenvalues() {
        let mut a = vec![2.0, 1.0, 1.0, 2.0];
        let (vals, _) = jacobi_eigen(&mut a, 2);
        let mut vals = vals;
        vals.sort_by(f64::total_cmp);
        assert!((vals[0] - 1.0).abs() < 1e-9 && (vals[1] - 3.0).abs() < 1e-9);
    }

    #[test]
    fn embedding_separates_topics_and_is_deterministic() {
        let mut docs = Vec::new();
        for i in 0..60 {
            if i % 2 == 0 {
                docs.push(("black hole entropy", "horizon area thermodynamics black hole entropy counting"));
            } else {
                docs.push(("lattice gauge theory", "confinement quarks lattice simulation gauge fields"));
            }
        }
        let m = TextModel::fit(&docs, 1);
        let m2 = TextModel::fit(&docs, 1);
        assert_eq!(m.projection, m2.projection);
        let a = m.embed("black hole entropy", "horizon");
        let b = m.embed("lattice gauge theory", "quarks");
        let dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!(dot < 0.5, "different topics should not align: {dot}");
        assert!(m.vocab_len() > 5);
    }

    #[test]
    fn term_ids_and_embeddings_equal_the_string_per_term_definitions() {
        let docs: Vec<(&str, &str)> = vec![
            ("Black hole entropy", "black hole entropy of the black hole; horizon area"),
            ("Lattice gauge theory", "quarks on the lattice: gauge theory gauge fields, $SU(3)$ lattice"),
            ("Black-hole horizons", "entropy-area law and black-hole horizon area, non first second"),
            ("String theory dualities", "string theory string dualities and black hole entropy"),
            ("Gauge fields on a lattice", "lattice gauge fields confinement quarks lattice gauge"),
        ];
        let training: Vec<(&str, &str)> = docs.iter().cycle().take(40).copied().collect();
        let m = TextModel::fit(&training, 3);
        let reference_ids = |t: &str, a: &str| -> Vec<u32> {
            terms(t, a).iter().filter_map(|x| m.index.get(x).copied()).collect()
        };
        let reference_embed = |t: &str, a: &str| -> Vec<f32> {
            let x = weight(hashed_tf(&terms(t, a)), &m.idf);
            let mut z: Vec<f32> = (0..EMBED_DIMS)
                .map(|k| x.iter().map(|(b, v)| v * m.projection[k * HASH_DIMS + b]).sum())
                .collect();
            let norm = z.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-9);
            z.iter_mut().for_each(|v| *v /= norm);
            z
        };
        let mut unseen = docs.clone();
        unseen.push(("Nothing known here", "zebra quokka zebra quokka"));
        unseen.push(("", ""));
        for (t, a) in unseen {
            assert_eq!(m.term_ids(t, a), reference_ids(t, a), "{t}");
            let (fast, slow) = (m.embed(t, a), reference_embed(t, a));
            assert_eq!(
                fast.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                slow.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{t}"
            );
        }
        assert!(!m.term_ids(docs[0].0, docs[0].1).is_empty());
    }
}
