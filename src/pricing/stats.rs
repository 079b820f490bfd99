//! The statistics of a conversion report: Wilson score intervals for one proportion and
//! the pooled two-proportion z-test for a difference. Plain functions of counts, so each
//! is checked against figures worked out by hand.

use serde::Serialize;

/// The normal quantile of a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A proportion with its 95 % Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub successes: u64,
    pub trials: u64,
    /// `successes / trials`; 0 when there are no trials.
    pub rate: f64,
    pub low: f64,
    pub high: f64,
}

/// `successes` of `trials` with its 95 % Wilson interval. Wilson rather than the textbook
/// `p ± z·se` because it stays inside [0, 1] and is honest for small counts and rates
/// near 0, which is where conversion rates live. No trials: the interval is all of [0, 1].
pub fn wilson(successes: u64, trials: u64) -> Rate {
    if trials == 0 {
        return Rate { successes, trials, rate: 0.0, low: 0.0, high: 1.0 };
    }
    let n = trials as f64;
    let p = (successes.min(trials)) as f64 / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    Rate { successes, trials, rate: p, low: (centre - half).max(0.0), high: (centre + half).min(1.0) }
}

/// The comparison of a variant (`b`) against the control (`a`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    /// `b.rate − a.rate`, in absolute terms (0.02 is two percentage points).
    pub difference: f64,
    /// 95 % interval of the difference (unpooled standard error).
    pub low: f64,
    pub high: f64,
    /// The pooled two-proportion z statistic.
    pub z: f64,
    /// Its two-sided p-value.
    pub p_value: f64,
    /// `p_value < alpha`.
    pub significant: bool,
    pub alpha: f64,
}

/// The two-proportion z-test of `b` against `a` at level `alpha` (two-sided, pooled
/// variance under the null hypothesis of equal rates). Without trials on either side, or
/// without any variation (everyone or nobody converted), nothing is significant.
pub fn compare(a: &Rate, b: &Rate, alpha: f64) -> Comparison {
    let difference = b.rate - a.rate;
    let (n1, n2) = (a.trials as f64, b.trials as f64);
    if a.trials == 0 || b.trials == 0 {
        return Comparison {
            difference,
            low: -1.0,
            high: 1.0,
            z: 0.0,
            p_value: 1.0,
            significant: false,
            alpha,
        };
    }
    let unpooled = (a.rate * (1.0 - a.rate) / n1 + b.rate * (1.0 - b.rate) / n2).sqrt();
    let (low, high) = (difference - Z95 * unpooled, difference + Z95 * unpooled);
    let pooled = (a.successes + b.successes) as f64 / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return Comparison { difference, low, high, z: 0.0, p_value: 1.0, significant: false, alpha };
    }
    let z = difference / se;
    let p_value = (2.0 * (1.0 - normal_cdf(z.abs()))).clamp(0.0, 1.0);
    Comparison { difference, low, high, z, p_value, significant: p_value < alpha, alpha }
}

/// The standard normal distribution function, via the complementary error function
/// (Numerical Recipes' `erfcc`, relative error below 1.2e-7 everywhere).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, eps: f64) -> bool {
        (a - b).abs() < eps
    }

    #[test]
    fn wilson_interval_matches_the_hand_worked_example() {
        // 10 of 100: p = 0.1, z² = 3.841459; centre = (0.1 + 0.019207) / 1.038415 = 0.114798;
        // half = 1.959964 · √(0.0009 + 0.000096036) / 1.038415 = 0.059568.
        let r = wilson(10, 100);
        assert!(close(r.rate, 0.1, 1e-12));
        assert!(close(r.low, 0.055229, 1e-5), "{r:?}");
        assert!(close(r.high, 0.174366, 1e-5), "{r:?}");
        // 0 of 20: the interval starts at 0 and is not empty (z²/(n+z²) = 0.161125).
        let r = wilson(0, 20);
        assert!(close(r.low, 0.0, 1e-12));
        assert!(close(r.high, 0.161125, 1e-5), "{r:?}");
        // 20 of 20 mirrors it.
        let r = wilson(20, 20);
        assert!(close(r.low, 1.0 - 0.161125, 1e-5) && r.high == 1.0, "{r:?}");
        // Nothing observed: nothing known.
        let r = wilson(0, 0);
        assert_eq!((r.low, r.high), (0.0, 1.0));
    }

    #[test]
    fn z_test_matches_the_hand_worked_example() {
        // 10/100 against 20/100: pooled p = 0.15, se = √(0.15 · 0.85 · 0.02) = 0.050498,
        // z = 0.1 / 0.050498 = 1.980295, two-sided p = 2 · (1 − Φ(1.980295)) = 0.047676.
        let c = compare(&wilson(10, 100), &wilson(20, 100), 0.05);
        assert!(close(c.difference, 0.1, 1e-12));
        assert!(close(c.z, 1.980295, 1e-5), "{c:?}");
        assert!(close(c.p_value, 0.047676, 1e-4), "{c:?}");
        assert!(c.significant);
        // Unpooled interval: 0.1 ± 1.959964 · √(0.0009 + 0.0016) = 0.1 ± 0.098.
        assert!(close(c.low, 0.002002, 1e-5) && close(c.high, 0.197998, 1e-5), "{c:?}");
        // The same at a stricter level (two variants against one control: 0.025) is not.
        assert!(!compare(&wilson(10, 100), &wilson(20, 100), 0.025).significant);
        // 10/100 against 12/100: z = 0.02 / 0.044249 = 0.451985, p = 0.651280.
        let c = compare(&wilson(10, 100), &wilson(12, 100), 0.05);
        assert!(close(c.p_value, 0.651280, 1e-4) && !c.significant, "{c:?}");
        // No variation, no trials: never significant.
        assert!(!compare(&wilson(0, 50), &wilson(0, 50), 0.05).significant);
        assert!(!compare(&wilson(0, 0), &wilson(5, 10), 0.05).significant);
    }

    #[test]
    fn the_normal_distribution_function() {
        assert!(close(normal_cdf(0.0), 0.5, 1e-7));
        assert!(close(normal_cdf(1.959964), 0.975, 1e-6));
        assert!(close(normal_cdf(-1.644854), 0.05, 1e-6));
    }
}
