//! Deterministic gradient-boosted decision trees for regression (squared loss), in the
//! style of LightGBM's `LGBMRegressor`: histogram split finding on per-feature quantile
//! bins, leaf-wise (best-first) growth up to `num_leaves`, L2-regularised leaf values,
//! the initial score at the target mean (`boost_from_average`), row bagging every
//! iteration and feature sampling per tree.
//!
//! Parameter mapping from LightGBM (scikit-learn name / native name → [`GbdtParams`]):
//!
//! - `n_estimators` / `num_iterations` → `trees`
//! - `learning_rate` → `learning_rate`
//! - `num_leaves` → `num_leaves`
//! - `min_child_samples` / `min_data_in_leaf` → `min_data_in_leaf`
//! - `min_child_weight` / `min_sum_hessian_in_leaf` → `min_sum_hessian`
//! - `reg_lambda` / `lambda_l2` → `lambda_l2`
//! - `subsample` / `bagging_fraction`, with `subsample_freq=1` → `bagging_fraction`
//!   (LightGBM only bags when the frequency is positive; use 1.0 otherwise)
//! - `colsample_bytree` / `feature_fraction` → `feature_fraction`
//! - `max_bin` → `max_bins`
//!
//! Differences from LightGBM that are deliberate: NaN always goes to the left child (it
//! is binned with the smallest values) instead of learning a default direction; the
//! random streams (bagging, feature sampling) are this module's own SplitMix64, so models
//! are reproducible bit for bit for a seed but not identical to LightGBM's; there is no
//! L1 penalty, depth limit, or early stopping. Training is single-threaded and fully
//! deterministic for a given seed.
//!
//! Split thresholds are stored as raw `f32` values (`value <= threshold` goes left), so
//! prediction needs no binning. A model holds only `f32`s and integers (plus its
//! parameters) and serialises with serde; a binary codec round-trips it exactly, and so
//! does JSON in practice (serde_json without `float_roundtrip` may in principle move the
//! last bit of a float).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Minimum number of training values per bin when building bin edges (LightGBM's
/// `min_data_in_bin` default).
const MIN_DATA_IN_BIN: usize = 3;

/// Training parameters. Defaults match the project's LightGBM regressor settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GbdtParams {
    /// Number of boosting iterations (one tree each).
    pub trees: usize,
    /// Shrinkage applied to every leaf value.
    pub learning_rate: f32,
    /// Maximum number of leaves per tree (at least 2).
    pub num_leaves: usize,
    /// Minimum number of (bagged) training rows in a leaf.
    pub min_data_in_leaf: usize,
    /// Minimum sum of hessians in a leaf (the hessian is 1 per row for squared loss).
    pub min_sum_hessian: f64,
    /// L2 penalty on leaf values.
    pub lambda_l2: f64,
    /// Fraction of rows sampled without replacement every iteration, in (0, 1].
    pub bagging_fraction: f64,
    /// Fraction of (non-constant) features sampled per tree, in (0, 1].
    pub feature_fraction: f64,
    /// Maximum number of bins per feature, in 2..=255.
    pub max_bins: usize,
    /// Seed of the bagging / feature-sampling random stream.
    pub seed: u64,
}

impl Default for GbdtParams {
    fn default() -> Self {
        GbdtParams {
            trees: 600,
            learning_rate: 0.02,
            num_leaves: 15,
            min_data_in_leaf: 40,
            min_sum_hessian: 1e-3,
            lambda_l2: 1.0,
            bagging_fraction: 0.8,
            feature_fraction: 0.7,
            max_bins: 255,
            seed: 0,
        }
    }
}

/// Why [`Gbdt::fit`] refused its input.
#[derive(Debug, Clone, PartialEq)]
pub enum GbdtError {
    /// No rows or no features.
    Empty,
    /// A buffer length does not match the stated shape.
    ShapeMismatch { what: &'static str, expected: usize, got: usize },
    /// More rows or features than the model's index types hold.
    TooLarge,
    /// A target value is NaN or infinite.
    NonFiniteTarget { row: usize },
    /// A parameter is out of range.
    InvalidParam { name: &'static str, reason: &'static str },
}

impl fmt::Display for GbdtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GbdtError::Empty => write!(f, "gbdt: no training rows or no features"),
            GbdtError::ShapeMismatch { what, expected, got } => {
                write!(f, "gbdt: {what} has length {got}, expected {expected}")
            }
            GbdtError::TooLarge => write!(f, "gbdt: too many rows or features"),
            GbdtError::NonFiniteTarget { row } => write!(f, "gbdt: target of row {row} is not finite"),
            GbdtError::InvalidParam { name, reason } => write!(f, "gbdt: parameter {name} {reason}"),
        }
    }
}

impl std::error::Error for GbdtError {}

/// One tree node. Internal nodes come first, then one node per leaf whose children are
/// itself, so that a walk of any fixed number of steps (at least the tree's depth) ends on
/// the row's leaf; batch prediction relies on this to run without branches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Node {
    feature: u32,
    threshold: f32,
    left: u32,
    right: u32,
}

/// One tree in flat form: nodes `0..gain.len()` are splits (node 0 is the root when there
/// is one), the rest are leaves; a tree without splits is the single leaf node 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tree {
    nodes: Vec<Node>,
    /// Per node: for a leaf its output (shrinkage included); for a split the expected
    /// output over the training rows that reached it (count-weighted mean of the values of
    /// the leaves below), used for contributions.
    value: Vec<f32>,
    /// Per node: number of (bagged) training rows that reached it.
    count: Vec<u32>,
    /// Per split: its gain (before shrinkage).
    gain: Vec<f32>,
    /// Longest root-to-leaf path, in splits.
    depth: u32,
}

impl Tree {
    fn splits(&self) -> usize {
        self.gain.len()
    }

    /// Index of the (leaf) node that `row` ends in.
    #[inline]
    fn leaf_node(&self, row: &[f32]) -> usize {
        let splits = self.splits();
        let mut i = 0usize;
        while i < splits {
            let s = &self.nodes[i];
            // `!(v > t)` rather than `v <= t`, so NaN goes left.
            i = if row[s.feature as usize] > s.threshold { s.right } else { s.left } as usize;
        }
        i
    }

    /// Output of the tree for `row`.
    #[inline]
    fn predict(&self, row: &[f32]) -> f32 {
        self.value[self.leaf_node(row)]
    }

    /// Builds the flat form from splits whose children are `c >= 0` (another split) or
    /// `c < 0` (the leaf `!c`), and per-leaf values and counts.
    fn assemble(
        splits: &[(u32, f32, i32, i32)],
        gain: Vec<f32>,
        leaf_value: &[f32],
        leaf_count: &[u32],
    ) -> Tree {
        let ns = splits.len();
        let node = |c: i32| if c < 0 { ns + !c as usize } else { c as usize } as u32;
        let mut nodes: Vec<Node> = splits
            .iter()
            .map(|&(f, t, l, r)| Node { feature: f, threshold: t, left: node(l), right: node(r) })
            .collect();
        nodes.extend((0..leaf_value.len()).map(|k| {
            let me = (ns + k) as u32;
            Node { feature: 0, threshold: 0.0, left: me, right: me }
        }));
        let mut value = vec![0.0f32; ns];
        value.extend_from_slice(leaf_value);
        let mut count = vec![0u32; ns];
        count.extend_from_slice(leaf_count);
        let mut depth = vec![0u32; nodes.len()];
        // Children are created after their parents, so a reverse sweep sees them first.
        for k in (0..ns).rev() {
            let (l, r) = (nodes[k].left as usize, nodes[k].right as usize);
            let (cl, cr) = (f64::from(count[l]), f64::from(count[r]));
            value[k] = ((cl * f64::from(value[l]) + cr * f64::from(value[r])) / (cl + cr)) as f32;
            count[k] = count[l] + count[r];
            depth[k] = 1 + depth[l].max(depth[r]);
        }
        Tree { nodes, value, count, gain, depth: depth[0] }
    }
}

/// A fitted boosted-tree regressor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gbdt {
    base_score: f32,
    features: usize,
    trees: Vec<Tree>,
    params: GbdtParams,
}

impl Gbdt {
    /// Fits on `x` (row-major, `n` rows of `d` features) against targets `y`. Feature
    /// values may be NaN (they go to the left child); targets must be finite.
    pub fn fit(x: &[f32], n: usize, d: usize, y: &[f32], params: &GbdtParams) -> Result<Gbdt, GbdtError> {
        validate(x, n, d, y, params)?;
        let data = Binned::new(x, n, d, params.max_bins);
        let valid: Vec<usize> = (0..d).filter(|&f| data.num_bins(f) > 1).collect();

        // Start from the stored (f32) base, so training scores equal model predictions.
        let base = f64::from((y.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64) as f32);
        let mut score = vec![base; n];
        let mut grad = vec![0.0f64; n];
        let mut rng = SplitMix64(params.seed);
        let bag_k = ((params.bagging_fraction * n as f64).round() as usize).clamp(1, n);
        let feat_k =
            ((params.feature_fraction * valid.len() as f64).round() as usize).clamp(1, valid.len().max(1));
        let mut grower = Grower::new(&data, params);
        let mut rows: Vec<u32> = Vec::with_capacity(n);
        let mut feats: Vec<usize> = Vec::with_capacity(valid.len());
        let mut trees = Vec::with_capacity(params.trees);

        for _ in 0..params.trees {
            for ((g, &s), &t) in grad.iter_mut().zip(&score).zip(y) {
                *g = s - f64::from(t);
            }
            rows.clear();
            if bag_k == n {
                rows.extend(0..n as u32);
            } else {
                // Selection sampling (Knuth's algorithm S): exactly bag_k rows, in order.
                let mut need = bag_k as u64;
                for i in 0..n {
                    if rng.below((n - i) as u64) < need {
                        rows.push(i as u32);
                        need -= 1;
                    }
                }
            }
            feats.clear();
            feats.extend_from_slice(&valid);
            if feat_k < feats.len() {
                for i in 0..feat_k {
                    let j = i + rng.below((feats.len() - i) as u64) as usize;
                    feats.swap(i, j);
                }
                feats.truncate(feat_k);
                feats.sort_unstable();
            }
            let tree = grower.grow(&mut rows, &grad, &feats);
            add_trees(std::slice::from_ref(&tree), x, d, &mut score);
            trees.push(tree);
        }
        Ok(Gbdt { base_score: base as f32, features: d, trees, params: params.clone() })
    }

    /// Checks a decoded model against the `d` features its rows will have: every split
    /// reads a feature below `d`, every child index lies after its parent and inside the
    /// tree (so a walk always ends on a leaf), leaves point at themselves, and the per-node
    /// tables have one entry per node. A model read from a damaged or hand-edited file
    /// fails here instead of indexing out of bounds or looping while serving.
    pub fn validate(&self, d: usize) -> Result<(), String> {
        if self.features != d {
            return Err(format!("built for {} features, the model has {d}", self.features));
        }
        if !self.base_score.is_finite() {
            return Err("its base score is not a number".into());
        }
        for (t, tree) in self.trees.iter().enumerate() {
            let n = tree.nodes.len();
            let splits = tree.splits();
            if n == 0 || tree.value.len() != n || tree.count.len() != n || splits >= n {
                return Err(format!("tree {t} has inconsistent node tables"));
            }
            if tree.value.iter().any(|v| !v.is_finite()) {
                return Err(format!("tree {t} holds a non-finite value"));
            }
            for (i, node) in tree.nodes.iter().enumerate() {
                let (l, r) = (node.left as usize, node.right as usize);
                if i < splits {
                    if node.feature as usize >= d {
                        return Err(format!("tree {t} splits on feature {} of {d}", node.feature));
                    }
                    if l <= i || r <= i || l >= n || r >= n {
                        return Err(format!("tree {t} node {i} has children outside the tree"));
                    }
                } else if l != i || r != i {
                    return Err(format!("tree {t} leaf {i} is not terminal"));
                }
            }
        }
        Ok(())
    }

    /// Points the first split of the first tree at `feature` (tests of the load checks).
    #[cfg(test)]
    pub(crate) fn corrupt_first_split_for_test(&mut self, feature: u32) {
        if let Some(node) = self.trees.iter_mut().find(|t| t.splits() > 0).map(|t| &mut t.nodes[0]) {
            node.feature = feature;
        }
    }

    /// Number of features a row must have.
    pub fn features(&self) -> usize {
        self.features
    }

    /// Number of trees.
    pub fn trees(&self) -> usize {
        self.trees.len()
    }

    /// The initial score (mean training target).
    pub fn base_score(&self) -> f32 {
        self.base_score
    }

    /// The parameters the model was fitted with.
    pub fn params(&self) -> &GbdtParams {
        &self.params
    }

    /// Predicts one row of `self.features()` values. Panics if the row is shorter.
    pub fn predict_row(&self, row: &[f32]) -> f32 {
        assert!(row.len() >= self.features, "gbdt: row has {} values, expected {}", row.len(), self.features);
        let mut s = f64::from(self.base_score);
        for t in &self.trees {
            s += f64::from(t.predict(row));
        }
        s as f32
    }

    /// Predicts every row of `x` (row-major, `self.features()` values per row).
    pub fn predict(&self, x: &[f32]) -> Vec<f32> {
        let d = self.features;
        assert!(x.len().is_multiple_of(d), "gbdt: input length {} is not a multiple of {d}", x.len());
        let mut acc = vec![f64::from(self.base_score); x.len() / d];
        add_trees(&self.trees, x, d, &mut acc);
        acc.into_iter().map(|v| v as f32).collect()
    }

    /// The constant part of [`Gbdt::contributions`]: the base score plus each tree's
    /// expected output over its training rows.
    pub fn contribution_bias(&self) -> f32 {
        (f64::from(self.base_score) + self.trees.iter().map(|t| f64::from(t.value[0])).sum::<f64>()) as f32
    }

    /// Per-feature attributions of one prediction by the Saabas path method: at each split
    /// on the row's path, the change in the tree's expected output from the node to the
    /// child taken (expected output = mean of leaf values over the training rows that
    /// reached the node) is credited to the split feature.
    ///
    /// `contribution_bias() + contributions(row).iter().sum() == predict_row(row)` up to
    /// rounding (well within 1e-4 for ordinary targets). Features never split on get 0.
    pub fn contributions(&self, row: &[f32]) -> Vec<f32> {
        assert!(row.len() >= self.features, "gbdt: row has {} values, expected {}", row.len(), self.features);
        let mut out = vec![0.0f64; self.features];
        for t in &self.trees {
            let mut i = 0usize;
            while i < t.splits() {
                let s = &t.nodes[i];
                let next = if row[s.feature as usize] > s.threshold { s.right } else { s.left } as usize;
                out[s.feature as usize] += f64::from(t.value[next]) - f64::from(t.value[i]);
                i = next;
            }
        }
        out.into_iter().map(|v| v as f32).collect()
    }

    /// Total split gain per feature over all trees (LightGBM's `importance_type="gain"`).
    pub fn split_gain_importance(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.features];
        for t in &self.trees {
            for (s, g) in t.nodes.iter().zip(&t.gain) {
                out[s.feature as usize] += f64::from(*g);
            }
        }
        out
    }

    /// Number of splits per feature over all trees (LightGBM's `importance_type="split"`).
    pub fn split_count_importance(&self) -> Vec<u32> {
        let mut out = vec![0; self.features];
        for t in &self.trees {
            for s in &t.nodes[..t.splits()] {
                out[s.feature as usize] += 1;
            }
        }
        out
    }
}

/// Rows predicted together in [`add_trees`].
const BLOCK: usize = 8;

/// Adds the outputs of `trees` to `acc` for each row of `x` (row-major, `d` per row).
/// Full blocks of rows walk each tree in lockstep for exactly its depth (leaves loop onto
/// themselves), which keeps the loop free of data-dependent branches and lets the rows'
/// walks overlap.
fn add_trees(trees: &[Tree], x: &[f32], d: usize, acc: &mut [f64]) {
    let full = acc.len() / BLOCK * BLOCK;
    let (x_full, x_rest) = x.split_at(full * d);
    let (acc_full, acc_rest) = acc.split_at_mut(full);
    for (xb, ab) in x_full.chunks_exact(BLOCK * d).zip(acc_full.chunks_exact_mut(BLOCK)) {
        for t in trees {
            let mut node = [0usize; BLOCK];
            for _ in 0..t.depth {
                for (k, i) in node.iter_mut().enumerate() {
                    let s = &t.nodes[*i];
                    let v = xb[k * d + s.feature as usize];
                    *i = if v > s.threshold { s.right } else { s.left } as usize;
                }
            }
            for (a, &i) in ab.iter_mut().zip(&node) {
                *a += f64::from(t.value[i]);
            }
        }
    }
    for (row, a) in x_rest.chunks_exact(d).zip(acc_rest) {
        for t in trees {
            *a += f64::from(t.predict(row));
        }
    }
}

fn validate(x: &[f32], n: usize, d: usize, y: &[f32], p: &GbdtParams) -> Result<(), GbdtError> {
    if n == 0 || d == 0 {
        return Err(GbdtError::Empty);
    }
    if n > u32::MAX as usize || d > u32::MAX as usize || d > i32::MAX as usize {
        return Err(GbdtError::TooLarge);
    }
    let expected = n.checked_mul(d).ok_or(GbdtError::TooLarge)?;
    if x.len() != expected {
        return Err(GbdtError::ShapeMismatch { what: "x", expected, got: x.len() });
    }
    if y.len() != n {
        return Err(GbdtError::ShapeMismatch { what: "y", expected: n, got: y.len() });
    }
    if let Some(row) = y.iter().position(|v| !v.is_finite()) {
        return Err(GbdtError::NonFiniteTarget { row });
    }
    let bad = |name, reason| Err(GbdtError::InvalidParam { name, reason });
    if !(p.learning_rate.is_finite() && p.learning_rate > 0.0) {
        return bad("learning_rate", "must be finite and > 0");
    }
    if p.num_leaves < 2 || p.num_leaves > i32::MAX as usize {
        return bad("num_leaves", "must be at least 2");
    }
    if !(p.min_sum_hessian.is_finite() && p.min_sum_hessian >= 0.0) {
        return bad("min_sum_hessian", "must be finite and >= 0");
    }
    if !(p.lambda_l2.is_finite() && p.lambda_l2 >= 0.0) {
        return bad("lambda_l2", "must be finite and >= 0");
    }
    if !(p.bagging_fraction > 0.0 && p.bagging_fraction <= 1.0) {
        return bad("bagging_fraction", "must be in (0, 1]");
    }
    if !(p.feature_fraction > 0.0 && p.feature_fraction <= 1.0) {
        return bad("feature_fraction", "must be in (0, 1]");
    }
    if !(2..=255).contains(&p.max_bins) {
        return bad("max_bins", "must be in 2..=255");
    }
    Ok(())
}

/// SplitMix64: small, fast, and good enough for sampling.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..m` (Lemire's multiply-shift; bias below 2^-40 for our sizes).
    fn below(&mut self, m: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(m)) >> 64) as u64
    }
}

/// Upper bin edges of one feature, LightGBM's greedy quantile binning: with at most
/// `max_bins` distinct values, one bin per value (merging values seen fewer than
/// `MIN_DATA_IN_BIN` times into the next); otherwise bins of roughly equal count, with a
/// value as frequent as a whole bin getting its own bin. Edges lie at midpoints between
/// neighbouring distinct values, rounded to `f32` so that `v <= edge` separates them.
/// NaN is ignored (it is binned with the smallest values). Empty for a constant feature.
fn bin_edges(values: &mut Vec<f32>, max_bins: usize) -> Vec<f32> {
    values.retain(|v| !v.is_nan());
    for v in values.iter_mut() {
        if *v == 0.0 {
            *v = 0.0; // fold -0.0 into +0.0
        }
    }
    values.sort_unstable_by(f32::total_cmp);
    let mut distinct: Vec<f32> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    for &v in values.iter() {
        if distinct.last() == Some(&v) {
            *counts.last_mut().unwrap() += 1;
        } else {
            distinct.push(v);
            counts.push(1);
        }
    }
    let nd = distinct.len();
    if nd < 2 {
        return Vec::new();
    }
    let total = values.len();
    let mut cuts: Vec<usize> = Vec::new(); // edge between distinct[i] and distinct[i + 1]
    if nd <= max_bins {
        let mut cur = 0;
        for (i, &c) in counts.iter().enumerate().take(nd - 1) {
            cur += c;
            if cur >= MIN_DATA_IN_BIN {
                cuts.push(i);
                cur = 0;
            }
        }
    } else {
        let max_bin = max_bins.min(total / MIN_DATA_IN_BIN).max(1);
        let mean0 = total as f64 / max_bin as f64;
        let big: Vec<bool> = counts.iter().map(|&c| c as f64 >= mean0).collect();
        let mut rest_bins = max_bin as i64;
        let mut rest_cnt = total as i64;
        for (&c, &b) in counts.iter().zip(&big) {
            if b {
                rest_bins -= 1;
                rest_cnt -= c as i64;
            }
        }
        let mean_of = |cnt: i64, bins: i64| if bins > 0 { cnt as f64 / bins as f64 } else { f64::INFINITY };
        let mut mean = mean_of(rest_cnt, rest_bins);
        let mut cur = 0usize;
        for i in 0..nd - 1 {
            if cuts.len() + 1 >= max_bin {
                break;
            }
            if !big[i] {
                rest_cnt -= counts[i] as i64;
            }
            cur += counts[i];
            let cur_f = cur as f64;
            if big[i] || cur_f >= mean || (big[i + 1] && cur_f >= (mean * 0.5).max(1.0)) {
                cuts.push(i);
                cur = 0;
                if !big[i] {
                    rest_bins -= 1;
                    mean = mean_of(rest_cnt, rest_bins);
                }
            }
        }
    }
    cuts.into_iter()
        .map(|i| {
            let (a, b) = (distinct[i], distinct[i + 1]);
            let t = ((f64::from(a) + f64::from(b)) / 2.0) as f32;
            // Rounding (or an infinite neighbour) can push the midpoint onto `b`; `a`
            // itself separates the two values just as well.
            if t >= a && t < b {
                t
            } else {
                a
            }
        })
        .collect()
}

/// Training matrix as bin indices, row-major, plus each feature's edges.
struct Binned {
    d: usize,
    bins: Vec<u8>,
    edges: Vec<Vec<f32>>,
    /// Start of each feature's bins in a flat histogram; `d + 1` entries.
    offsets: Vec<usize>,
}

impl Binned {
    fn new(x: &[f32], n: usize, d: usize, max_bins: usize) -> Binned {
        let mut edges = Vec::with_capacity(d);
        let mut col = Vec::with_capacity(n);
        for f in 0..d {
            col.clear();
            col.extend((0..n).map(|i| x[i * d + f]));
            edges.push(bin_edges(&mut col, max_bins));
        }
        let mut bins = vec![0u8; n * d];
        for (row, out) in x.chunks_exact(d).zip(bins.chunks_exact_mut(d)) {
            for ((o, &v), e) in out.iter_mut().zip(row).zip(&edges) {
                // Bin b holds edges[b - 1] < v <= edges[b]; NaN lands in bin 0.
                *o = if v.is_nan() { 0 } else { e.partition_point(|&t| v > t) as u8 };
            }
        }
        let mut offsets = Vec::with_capacity(d + 1);
        let mut acc = 0;
        offsets.push(0);
        for e in &edges {
            acc += e.len() + 1;
            offsets.push(acc);
        }
        Binned { d, bins, edges, offsets }
    }

    fn num_bins(&self, f: usize) -> usize {
        self.edges[f].len() + 1
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct HistBin {
    grad: f64,
    count: u32,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    feature: usize,
    bin: u8,
    gain: f64,
    left_grad: f64,
    left_count: u32,
}

#[derive(Debug, Clone)]
struct Leaf {
    start: usize,
    len: usize,
    grad: f64,
    /// Internal node pointing at this leaf, and whether as its left child.
    parent: Option<(usize, bool)>,
    best: Option<Candidate>,
}

/// Reusable buffers for growing trees.
struct Grower<'a> {
    data: &'a Binned,
    params: &'a GbdtParams,
    /// One histogram per leaf slot (`num_leaves` of them).
    hists: Vec<Vec<HistBin>>,
    scratch: Vec<u32>,
    /// (feature, histogram offset, bin count) of the features sampled for this tree.
    cols: Vec<(usize, usize, usize)>,
}

impl<'a> Grower<'a> {
    fn new(data: &'a Binned, params: &'a GbdtParams) -> Grower<'a> {
        let total = *data.offsets.last().unwrap_or(&0);
        Grower {
            data,
            params,
            hists: vec![vec![HistBin::default(); total]; params.num_leaves],
            scratch: Vec::new(),
            cols: Vec::new(),
        }
    }

    fn min_data(&self) -> u32 {
        self.params.min_data_in_leaf.clamp(1, u32::MAX as usize) as u32
    }

    /// Whether a leaf of `count` rows could be split at all.
    fn splittable(&self, count: usize) -> bool {
        let m = self.min_data() as usize;
        count >= 2 * m && count as f64 >= 2.0 * self.params.min_sum_hessian
    }

    fn build_hist(&mut self, slot: usize, rows: &[u32], grad: &[f64]) {
        let d = self.data.d;
        let hist = &mut self.hists[slot];
        for &(_, off, nb) in &self.cols {
            hist[off..off + nb].fill(HistBin::default());
        }
        for &r in rows {
            let r = r as usize;
            let g = grad[r];
            let row = &self.data.bins[r * d..(r + 1) * d];
            for &(f, off, _) in &self.cols {
                let e = &mut hist[off + row[f] as usize];
                e.grad += g;
                e.count += 1;
            }
        }
    }

    /// `hists[a] -= hists[b]` over the sampled features.
    fn subtract_hist(&mut self, a: usize, b: usize) {
        let (lo, hi) = self.hists.split_at_mut(a.max(b));
        let (ha, hb) = if a < b { (&mut lo[a], &hi[0]) } else { (&mut hi[0], &lo[b]) };
        for &(_, off, nb) in &self.cols {
            for (x, y) in ha[off..off + nb].iter_mut().zip(&hb[off..off + nb]) {
                x.grad -= y.grad;
                x.count -= y.count;
            }
        }
    }

    /// Best split of a leaf from its histogram, LightGBM's way: for each feature, scan
    /// thresholds from the top bin down, keeping the first strictly best gain; features in
    /// increasing order, so ties go to the lower feature index.
    fn best_split(&self, slot: usize, grad: f64, count: usize) -> Option<Candidate> {
        let lambda = self.params.lambda_l2;
        let min_h = self.params.min_sum_hessian;
        let min_n = self.min_data();
        let count = count as u32;
        let parent_gain = grad * grad / (f64::from(count) + lambda);
        let hist = &self.hists[slot];
        let mut best: Option<Candidate> = None;
        let mut best_gain = 0.0;
        for &(f, off, nb) in &self.cols {
            let h = &hist[off..off + nb];
            let (mut rg, mut rn) = (0.0f64, 0u32);
            for t in (1..nb).rev() {
                if h[t].count == 0 {
                    continue; // same split as the previous threshold, so never strictly better
                }
                rg += h[t].grad;
                rn += h[t].count;
                if rn < min_n || f64::from(rn) < min_h {
                    continue;
                }
                let ln = count - rn;
                if ln < min_n || f64::from(ln) < min_h {
                    break;
                }
                let lg = grad - rg;
                let gain =
                    lg * lg / (f64::from(ln) + lambda) + rg * rg / (f64::from(rn) + lambda) - parent_gain;
                if gain > best_gain {
                    best_gain = gain;
                    best = Some(Candidate {
                        feature: f,
                        bin: (t - 1) as u8,
                        gain,
                        left_grad: lg,
                        left_count: ln,
                    });
                }
            }
        }
        best
    }

    /// Grows one tree on the rows `rows` (reordered in place) with gradients `grad`
    /// (hessian 1 per row), considering only the features `feats`.
    fn grow(&mut self, rows: &mut [u32], grad: &[f64], feats: &[usize]) -> Tree {
        let data = self.data;
        let d = data.d;
        self.cols.clear();
        self.cols.extend(feats.iter().map(|&f| (f, data.offsets[f], data.num_bins(f))));
        let num_leaves = self.params.num_leaves;

        let root_grad: f64 = rows.iter().map(|&r| grad[r as usize]).sum();
        let mut leaves = vec![Leaf { start: 0, len: rows.len(), grad: root_grad, parent: None, best: None }];
        if self.splittable(rows.len()) && !self.cols.is_empty() {
            self.build_hist(0, rows, grad);
            leaves[0].best = self.best_split(0, root_grad, rows.len());
        }
        // (feature, threshold, left, right); a child `c < 0` is the leaf `!c`.
        let mut splits: Vec<(u32, f32, i32, i32)> = Vec::new();
        let mut gain = Vec::new();

        while leaves.len() < num_leaves {
            // Leaf with the largest gain; ties go to the lower leaf index.
            let mut pick: Option<(usize, f64)> = None;
            for (i, l) in leaves.iter().enumerate() {
                if let Some(c) = &l.best {
                    if pick.is_none_or(|(_, g)| c.gain > g) {
                        pick = Some((i, c.gain));
                    }
                }
            }
            let Some((li, _)) = pick else { break };
            let c = leaves[li].best.take().expect("picked leaf has a split");
            let (start, len, parent_grad, parent) =
                (leaves[li].start, leaves[li].len, leaves[li].grad, leaves[li].parent);

            // Stable partition of the leaf's rows: left rows first, in order.
            let seg = &mut rows[start..start + len];
            self.scratch.clear();
            let mut nl = 0;
            for k in 0..seg.len() {
                let r = seg[k];
                if data.bins[r as usize * d + c.feature] <= c.bin {
                    seg[nl] = r;
                    nl += 1;
                } else {
                    self.scratch.push(r);
                }
            }
            seg[nl..].copy_from_slice(&self.scratch);
            debug_assert_eq!(nl as u32, c.left_count);

            let node = splits.len();
            let threshold = data.edges[c.feature][c.bin as usize];
            splits.push((c.feature as u32, threshold, !(li as i32), !(leaves.len() as i32)));
            gain.push(c.gain as f32);
            if let Some((p, is_left)) = parent {
                if is_left {
                    splits[p].2 = node as i32;
                } else {
                    splits[p].3 = node as i32;
                }
            }
            let ri = leaves.len();
            let nr = len - nl;
            leaves[li] = Leaf { start, len: nl, grad: c.left_grad, parent: Some((node, true)), best: None };
            leaves.push(Leaf {
                start: start + nl,
                len: nr,
                grad: parent_grad - c.left_grad,
                parent: Some((node, false)),
                best: None,
            });

            let more = leaves.len() < num_leaves;
            if more && (self.splittable(nl) || self.splittable(nr)) {
                // Histogram of the smaller child into the new slot, the larger one by
                // subtraction from the parent's (slot `li`), then swap if needed.
                let left_smaller = nl <= nr;
                let small = if left_smaller { start..start + nl } else { start + nl..start + len };
                let small_rows = &rows[small];
                self.build_hist(ri, small_rows, grad);
                self.subtract_hist(li, ri);
                if left_smaller {
                    self.hists.swap(li, ri);
                }
                for k in [li, ri] {
                    if self.splittable(leaves[k].len) {
                        leaves[k].best = self.best_split(k, leaves[k].grad, leaves[k].len);
                    }
                }
            }
        }

        let lambda = self.params.lambda_l2;
        let lr = f64::from(self.params.learning_rate);
        let leaf_value: Vec<f32> =
            leaves.iter().map(|l| (-l.grad / (l.len as f64 + lambda) * lr) as f32).collect();
        let leaf_count: Vec<u32> = leaves.iter().map(|l| l.len as u32).collect();
        Tree::assemble(&splits, gain, &leaf_value, &leaf_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(rng: &mut SplitMix64) -> f32 {
        (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// `n` rows of `d` uniform(-1, 1) features; y depends on features 0 and 1 only.
    fn synth(n: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = SplitMix64(seed);
        let mut x = Vec::with_capacity(n * d);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let row: Vec<f32> = (0..d).map(|_| 2.0 * uniform(&mut rng) - 1.0).collect();
            let noise = (0..4).map(|_| uniform(&mut rng) - 0.5).sum::<f32>() * 0.2;
            let step = if row[0] > 0.3 { 2.0 } else { 0.0 };
            y.push(step + (3.0 * row[1]).sin() + noise);
            x.extend(row);
        }
        (x, y)
    }

    fn small_params() -> GbdtParams {
        GbdtParams { trees: 150, learning_rate: 0.1, min_data_in_leaf: 20, ..GbdtParams::default() }
    }

    fn mse(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(p, q)| f64::from(p - q).powi(2)).sum::<f64>() / a.len() as f64
    }

    #[test]
    fn fits_nonlinear_function_of_two_features() {
        let (d, ntr, nte) = (10, 3000, 1000);
        let (x, y) = synth(ntr + nte, d, 7);
        let model = Gbdt::fit(&x[..ntr * d], ntr, d, &y[..ntr], &small_params()).unwrap();
        let pred = model.predict(&x[ntr * d..]);
        // Batch prediction (blocks of rows in lockstep) equals row-by-row prediction.
        let single: Vec<f32> = x[ntr * d..].chunks_exact(d).map(|r| model.predict_row(r)).collect();
        assert_eq!(pred, single);
        let yt = &y[ntr..];
        let mean = yt.iter().sum::<f32>() / nte as f32;
        let var = yt.iter().map(|v| f64::from(v - mean).powi(2)).sum::<f64>() / nte as f64;
        let err = mse(&pred, yt);
        assert!(err < 0.05 * var, "mse {err} vs variance {var}");
        // The informative features dominate the gain importance.
        let imp = model.split_gain_importance();
        let noise_max = imp[2..].iter().cloned().fold(0.0, f64::max);
        assert!(imp[0] > 10.0 * noise_max && imp[1] > 10.0 * noise_max, "{imp:?}");
    }

    #[test]
    fn deterministic_for_a_seed() {
        let (x, y) = synth(1500, 10, 3);
        let p = GbdtParams { trees: 40, ..small_params() };
        let a = Gbdt::fit(&x, 1500, 10, &y, &p).unwrap();
        let b = Gbdt::fit(&x, 1500, 10, &y, &p).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.predict(&x), b.predict(&x));
        let c = Gbdt::fit(&x, 1500, 10, &y, &GbdtParams { seed: 1, ..p }).unwrap();
        assert_ne!(a, c);
        assert_ne!(a.predict(&x), c.predict(&x));
    }

    #[test]
    fn serde_round_trip_keeps_predictions() {
        let (x, y) = synth(1000, 6, 5);
        let model = Gbdt::fit(&x, 1000, 6, &y, &GbdtParams { trees: 30, ..small_params() }).unwrap();
        let json = serde_json::to_string(&model).unwrap();
        let back: Gbdt = serde_json::from_str(&json).unwrap();
        assert_eq!(back, model);
        assert_eq!(back.predict(&x), model.predict(&x));
        let pj = serde_json::to_string(&GbdtParams::default()).unwrap();
        assert_eq!(serde_json::from_str::<GbdtParams>(&pj).unwrap(), GbdtParams::default());
        let partial: GbdtParams = serde_json::from_str(r#"{"trees": 5}"#).unwrap();
        assert_eq!(partial, GbdtParams { trees: 5, ..GbdtParams::default() });
    }

    #[test]
    fn contributions_sum_to_prediction() {
        let (n, d) = (1200, 8);
        let (mut x, y) = synth(n, d, 11);
        // Feature 5 constant, feature 6 all NaN: neither can ever be split on.
        for i in 0..n {
            x[i * d + 5] = 4.0;
            x[i * d + 6] = f32::NAN;
        }
        let model = Gbdt::fit(&x, n, d, &y, &GbdtParams { trees: 80, ..small_params() }).unwrap();
        let bias = model.contribution_bias();
        for row in x.chunks_exact(d).take(200) {
            let c = model.contributions(row);
            assert_eq!(c.len(), d);
            let total = bias + c.iter().sum::<f32>();
            let p = model.predict_row(row);
            assert!((total - p).abs() < 1e-4, "{total} vs {p}");
            assert_eq!(c[5], 0.0);
            assert_eq!(c[6], 0.0);
        }
        let imp = model.split_count_importance();
        assert_eq!((imp[5], imp[6]), (0, 0));
        assert_eq!(model.split_gain_importance()[5], 0.0);
    }

    #[test]
    fn leaves_respect_min_data_and_num_leaves() {
        let (n, d) = (2000, 5);
        let (x, y) = synth(n, d, 13);
        let p = GbdtParams { trees: 30, num_leaves: 31, min_data_in_leaf: 70, ..small_params() };
        let model = Gbdt::fit(&x, n, d, &y, &p).unwrap();
        let bag = (0.8 * n as f64).round() as u32;
        let mut split_trees = 0;
        for t in &model.trees {
            let leaves = &t.count[t.splits()..];
            assert!(leaves.len() <= 31);
            assert_eq!(leaves.len(), t.splits() + 1);
            assert_eq!(leaves.iter().sum::<u32>(), bag);
            assert_eq!(t.count[0], bag);
            if t.splits() > 0 {
                split_trees += 1;
                assert!(leaves.iter().all(|&c| c >= 70), "{leaves:?}");
            }
        }
        assert!(split_trees > 20);
    }

    #[test]
    fn tree_structure_and_nan_goes_left() {
        // y jumps where x crosses 0.5; NaN rows must follow the left (low) branch.
        let n = 400;
        let x: Vec<f32> = (0..n).map(|i| i as f32 / n as f32).collect();
        let y: Vec<f32> = x.iter().map(|&v| if v > 0.5 { 1.0 } else { 0.0 }).collect();
        let p = GbdtParams {
            trees: 50,
            learning_rate: 0.3,
            num_leaves: 2,
            min_data_in_leaf: 5,
            bagging_fraction: 1.0,
            feature_fraction: 1.0,
            ..GbdtParams::default()
        };
        let model = Gbdt::fit(&x, n, 1, &y, &p).unwrap();
        let t = &model.trees[0];
        assert_eq!((t.splits(), t.nodes.len(), t.depth), (1, 3, 1));
        assert!(t.nodes[0].threshold > 0.49 && t.nodes[0].threshold < 0.51, "{:?}", t.nodes[0]);
        assert!(model.predict_row(&[0.1]) < 0.05);
        assert!(model.predict_row(&[0.9]) > 0.95);
        assert_eq!(model.predict_row(&[f32::NAN]), model.predict_row(&[f32::NEG_INFINITY]));
    }

    #[test]
    fn bin_edges_follow_distinct_values_and_quantiles() {
        let mut v = vec![1.0, 2.0, 2.0, 1.0, 3.0, 1.0, 2.0, 3.0, 3.0, f32::NAN];
        assert_eq!(bin_edges(&mut v, 255), vec![1.5, 2.5]);
        let mut c = vec![7.0; 50];
        assert!(bin_edges(&mut c, 255).is_empty());
        let mut many: Vec<f32> = (0..10_000).map(|i| (i as f32 * 0.37).sin()).collect();
        let e = bin_edges(&mut many, 64);
        assert!(e.len() < 64 && e.len() > 50, "{}", e.len());
        assert!(e.windows(2).all(|w| w[0] < w[1]));
        // A heavy value (half the data at zero) gets its own bin.
        let mut z: Vec<f32> = (0..1000).map(|i| if i % 2 == 0 { 0.0 } else { i as f32 }).collect();
        let e = bin_edges(&mut z, 16);
        assert!(e.iter().any(|&t| t > 0.0 && t < 1.0), "{e:?}");
        // Neighbouring f32 values still get a separating edge.
        let a = 1.0f32;
        let b = f32::from_bits(a.to_bits() + 1);
        let mut ab = vec![a, a, a, b, b, b];
        let e = bin_edges(&mut ab, 255);
        assert_eq!(e.len(), 1);
        assert!(a <= e[0] && b > e[0]);
    }

    #[test]
    fn bad_input_is_rejected() {
        let p = GbdtParams::default();
        let x = vec![0.0f32; 20];
        let y = vec![0.0f32; 10];
        assert_eq!(Gbdt::fit(&[], 0, 2, &[], &p), Err(GbdtError::Empty));
        assert_eq!(Gbdt::fit(&x, 10, 0, &y, &p), Err(GbdtError::Empty));
        assert!(matches!(Gbdt::fit(&x, 10, 3, &y, &p), Err(GbdtError::ShapeMismatch { what: "x", .. })));
        assert!(matches!(Gbdt::fit(&x, 10, 2, &y[..9], &p), Err(GbdtError::ShapeMismatch { what: "y", .. })));
        let mut yn = y.clone();
        yn[4] = f32::NAN;
        assert_eq!(Gbdt::fit(&x, 10, 2, &yn, &p), Err(GbdtError::NonFiniteTarget { row: 4 }));
        let bad = [
            GbdtParams { num_leaves: 1, ..p.clone() },
            GbdtParams { learning_rate: 0.0, ..p.clone() },
            GbdtParams { learning_rate: f32::NAN, ..p.clone() },
            GbdtParams { bagging_fraction: 0.0, ..p.clone() },
            GbdtParams { feature_fraction: 1.5, ..p.clone() },
            GbdtParams { max_bins: 256, ..p.clone() },
            GbdtParams { max_bins: 1, ..p.clone() },
            GbdtParams { lambda_l2: -1.0, ..p.clone() },
            GbdtParams { min_sum_hessian: f64::NAN, ..p.clone() },
        ];
        for b in &bad {
            let e = Gbdt::fit(&x, 10, 2, &y, b).unwrap_err();
            assert!(matches!(e, GbdtError::InvalidParam { .. }), "{b:?}");
            assert!(e.to_string().starts_with("gbdt: parameter"));
        }
    }

    #[test]
    fn degenerate_data_gives_base_score() {
        // All features constant: every tree is one leaf; prediction tends to the mean.
        let x = vec![1.0f32; 100 * 3];
        let y: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let model = Gbdt::fit(
            &x,
            100,
            3,
            &y,
            &GbdtParams { trees: 5, bagging_fraction: 1.0, ..GbdtParams::default() },
        )
        .unwrap();
        assert_eq!(model.trees(), 5);
        assert!((model.predict_row(&[1.0, 1.0, 1.0]) - 49.5).abs() < 1e-3);
        assert_eq!(model.contributions(&[1.0, 1.0, 1.0]), vec![0.0; 3]);
        let zero = Gbdt::fit(&x, 100, 3, &y, &GbdtParams { trees: 0, ..GbdtParams::default() }).unwrap();
        assert_eq!(zero.predict_row(&[0.0; 3]), 49.5);
    }
}
