//! L2-regularised, class-weighted logistic regression fitted by Newton's method
//! (iteratively reweighted least squares). With at most 50 standardised features the
//! Hessian is tiny, so each step is exact and the fit is deterministic.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Logistic {
    /// Weights per feature, then the intercept last.
    pub weights: Vec<f64>,
}

pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Solves `a x = b` for symmetric positive-definite `a` (row-major d x d) by Cholesky.
fn solve_spd(a: &[f64], b: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= l[i * d + k] * l[j * d + k];
            }
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    let mut y = vec![0.0; d];
    for i in 0..d {
        let s: f64 = (0..i).map(|k| l[i * d + k] * y[k]).sum();
        y[i] = (b[i] - s) / l[i * d + i];
    }
    let mut x = vec![0.0; d];
    for i in (0..d).rev() {
        let s: f64 = (i + 1..d).map(|k| l[k * d + i] * x[k]).sum();
        x[i] = (y[i] - s) / l[i * d + i];
    }
    Some(x)
}

impl Logistic {
    /// Fits on `x` (row-major, `d` features per row) with labels `y`; positives weigh
    /// `pos_weight`, and `l2` penalises the weights (not the intercept).
    pub fn fit(x: &[f32], y: &[bool], d: usize, l2: f64, pos_weight: f64) -> Logistic {
        let n = y.len();
        let p = d + 1;
        let mut w = vec![0.0; p];
        for _ in 0..50 {
            let mut grad = vec![0.0; p];
            let mut hess = vec![0.0; p * p];
            let mut row = vec![0.0; p];
            for i in 0..n {
                for j in 0..d {
                    row[j] = x[i * d + j] as f64;
                }
                row[d] = 1.0;
                let z: f64 = row.iter().zip(&w).map(|(a, b)| a * b).sum();
                let mu = sigmoid(z);
                let cw = if y[i] { pos_weight } else { 1.0 };
                let r = cw * (mu - y[i] as u8 as f64);
                let s = cw * (mu * (1.0 - mu)).max(1e-9);
                for a in 0..p {
                    grad[a] += r * row[a];
                    let sa = s * row[a];
                    for b in 0..=a {
                        hess[a * p + b] += sa * row[b];
                    }
                }
            }
            for a in 0..p {
                for b in 0..a {
                    hess[b * p + a] = hess[a * p + b];
                }
            }
            for a in 0..d {
                grad[a] += l2 * w[a];
                hess[a * p + a] += l2;
            }
            hess[d * p + d] += 1e-9;
            let Some(step) = solve_spd(&hess, &grad, p) else { break };
            let mut change = 0.0f64;
            for a in 0..p {
                w[a] -= step[a];
                change = change.max(step[a].abs());
            }
            if change < 1e-8 {
                break;
            }
        }
        Logistic { weights: w }
    }

    pub fn logit(&self, row: &[f32]) -> f64 {
        let d = self.weights.len() - 1;
        self.weights[d] + row.iter().zip(&self.weights[..d]).map(|(a, b)| *a as f64 * b).sum::<f64>()
    }

    pub fn predict(&self, row: &[f32]) -> f64 {
        sigmoid(self.logit(row))
    }

    /// Each feature's share of the logit for `row`: its weight times its value.
    pub fn contributions(&self, row: &[f32]) -> Vec<f64> {
        row.iter().zip(&self.weights).map(|(a, b)| *a as f64 * b).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::metrics::{roc_auc, SplitMix};

    #[test]
    fn recovers_a_separating_direction() {
        let mut rng = SplitMix(3);
        let n = 2000;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let a = rng.unit() * 2.0 - 1.0;
            let b = rng.unit() * 2.0 - 1.0;
            x.extend([a as f32, b as f32]);
            y.push(2.0 * a - b + (rng.unit() - 0.5) * 0.5 > 0.8);
        }
        let m = Logistic::fit(&x, &y, 2, 1e-3, 3.0);
        assert!(m.weights[0] > 0.0 && m.weights[1] < 0.0, "{:?}", m.weights);
        let scores: Vec<f64> = x.chunks(2).map(|r| m.predict(r)).collect();
        assert!(roc_auc(&scores, &y) > 0.95);
    }
}
