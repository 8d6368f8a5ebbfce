//! v2.1 pair coverage (the report's Table 5): with `models` independently drawn feature subsets
//! of size n, the share of all feature pairs that at least one model builds.
//!
//! Analytic: a given pair is in one model's subset with probability n(n−1)/(F(F−1)), so the
//! expected coverage is `1 − (1 − n(n−1)/(F(F−1)))^models` (F = 15: n(n−1)/210).

use crate::model::draw_features;
use crate::ops::ts_features::pairs_among;

#[derive(Debug, Clone, Copy)]
pub struct Coverage {
    pub n: usize,
    pub simulated: f64,
    pub analytic: f64,
}

pub fn analytic(features: usize, models: usize, n: usize) -> f64 {
    let p = (n * (n - 1)) as f64 / (features * (features - 1)) as f64;
    1.0 - (1.0 - p).powi(models as i32)
}

/// Mean coverage over `trials` simulated ensembles; each model's draw is the same function the
/// trainer uses (`draw_features`), seeded by (seed, trial, model).
pub fn simulate(features: usize, models: usize, n: usize, trials: usize, seed: u64) -> Coverage {
    let total_pairs = features * (features - 1) / 2;
    let mut sum = 0.0;
    for trial in 0..trials {
        let mut covered = vec![false; features * features];
        for m in 0..models {
            let model_seed = seed
                .wrapping_mul(1_000_003)
                .wrapping_add((trial * models + m) as u64);
            for (i, j) in pairs_among(&draw_features(features, n, model_seed)) {
                covered[i as usize * features + j as usize] = true;
            }
        }
        sum += covered.iter().filter(|&&c| c).count() as f64 / total_pairs as f64;
    }
    Coverage {
        n,
        simulated: sum / trials as f64,
        analytic: analytic(features, models, n),
    }
}
